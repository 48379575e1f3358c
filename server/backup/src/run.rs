//! A backup or a restore of a running stack, through one engine connection.
//!
//! Backup: read the stack's declarations from its services → for each service that declares
//! backups, find its running container, note the declared files, run the pre-hook and check it
//! wrote them anew → stream every declared path out of the containers into one snapshot → run
//! the post-hooks → check the snapshot holds what was declared. A check that fails deletes the
//! snapshot and fails the backup: there is no "success with nothing".
//!
//! Restore: find the snapshot (the newest of the stack unless one is named) → run the restore
//! pre-hooks → stream each volume's subtree back into the container that mounts it → run the
//! restore post-hooks.

use crate::declared::{self, Coverage, Declared};
use crate::repo::{Location, Password, Repo, RepoError, Snapshot};
use crate::stream::{self, OnProgress, Part, TarSource};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, DownloadFromContainerOptionsBuilder, ListServicesOptions,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures::TryStreamExt;
use potluck_engine::containers;
use potluck_engine::convert::NAMESPACE_LABEL;
use potluck_engine::docker::error_text;
use rustic_core::{BackupOptions, SnapshotOptions};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Where backup-bot-two (and so every snapshot) puts a volume's files.
pub const VOLUMES_ROOT: &str = "/var/lib/docker/volumes";

pub fn volume_root(docker_name: &str) -> PathBuf {
    Path::new(VOLUMES_ROOT).join(docker_name).join("_data")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

/// What the snapshot is of, as tags (`key:value`): restic lists them, Potluck finds by them.
#[derive(Debug, Clone, Default)]
pub struct Tags {
    pub app: Option<String>,
    pub recipe: Option<String>,
    pub version: Option<String>,
    /// manual, schedule, before-upgrade, drill, …
    pub trigger: String,
}

/// Progress and steps, as a backup or restore goes.
pub struct Report<'a> {
    pub step: &'a (dyn Fn(String) + Send + Sync),
    pub progress: OnProgress,
}

/// A finished backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackedUp {
    pub snapshot: Snapshot,
    /// The paths the snapshot holds (each volume whole, or the paths its labels name).
    pub paths: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
}

/// One path to copy out of a container.
#[derive(Debug, Clone)]
struct Item {
    service: String,
    container: String,
    /// In the container.
    container_path: String,
    /// In the snapshot.
    snapshot_path: PathBuf,
    /// A path the recipe named (rather than a whole volume): it must be in the snapshot.
    named: bool,
}

/// The stack's services with their specs, as the engine has them.
async fn services(docker: &Docker, stack: &str) -> Result<Vec<(String, serde_json::Value)>, Error> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={stack}")])]);
    let list = docker
        .list_services(Some(ListServicesOptions { filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|e| Error::Failed(format!("cannot list the services of {stack}: {}", error_text(&e))))?;
    if list.is_empty() {
        return Err(Error::Refused(format!("there is no stack {stack} on this engine")));
    }
    Ok(list
        .into_iter()
        .filter_map(|s| {
            let spec = s.spec?;
            Some((spec.name.clone()?, serde_json::to_value(&spec).ok()?))
        })
        .collect())
}

/// What the running stack declares.
pub async fn declarations(docker: &Docker, stack: &str) -> Result<Declared, Error> {
    Ok(declared::of_services(stack, &services(docker, stack).await?))
}

fn hook_argv(service: &str, which: &str, hook: &str) -> Result<Vec<String>, Error> {
    shlex::split(hook)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::Refused(format!("the {which} of {service} cannot be read as a command: {hook:?}")))
}

async fn run_hook(
    docker: &Docker,
    container: &str,
    service: &str,
    which: &str,
    hook: &str,
    report: &Report<'_>,
) -> Result<(), Error> {
    (report.step)(format!("{service}: {which}: {hook}"));
    let ran = containers::run(docker, container, hook_argv(service, which, hook)?)
        .await
        .map_err(|e| Error::Failed(format!("the {which} of {service} could not run: {e}")))?;
    if !ran.ok() {
        let code = ran.exit_code.map_or("unknown".to_string(), |c| c.to_string());
        return Err(Error::Failed(format!("the {which} of {service} failed (exit {code}): {}", ran.tail(3))));
    }
    Ok(())
}

/// (mtime, size) of a path in a container, or `None` when it does not exist.
async fn stat(docker: &Docker, container: &str, path: &str) -> Option<(String, i64)> {
    let opts = ContainerArchiveInfoOptionsBuilder::default().path(path).build();
    let s = docker.get_container_archive_info(container, Some(opts)).await.ok()?;
    Some((s.modification_time.unwrap_or_default(), s.size))
}

/// The paths to copy for one backed-up service, leaving out paths inside another one.
fn items_of(d: &Declared, service: &str, container: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for v in d.volumes.values() {
        if v.coverage.service() != Some(service) {
            continue;
        }
        let Some((_, target)) = v.mounts.iter().find(|(s, _)| s == service) else { continue };
        let root = volume_root(&v.docker_name);
        match &v.coverage {
            Coverage::Whole { .. } => items.push(Item {
                service: service.into(),
                container: container.into(),
                container_path: target.clone(),
                snapshot_path: root,
                named: false,
            }),
            Coverage::Paths { paths, .. } => {
                for p in paths {
                    items.push(Item {
                        service: service.into(),
                        container: container.into(),
                        container_path: format!("{}/{p}", target.trim_end_matches('/')),
                        snapshot_path: root.join(p),
                        named: true,
                    });
                }
            }
            Coverage::Excluded { .. } | Coverage::Undeclared => {}
        }
    }
    items.sort_by(|a, b| a.snapshot_path.cmp(&b.snapshot_path));
    let mut kept: Vec<Item> = Vec::new();
    for i in items {
        if !kept.iter().any(|k| i.snapshot_path.starts_with(&k.snapshot_path)) {
            kept.push(i);
        }
    }
    kept
}

/// A tar stream of `path` in `container`, readable on a blocking thread.
fn download(docker: &Docker, container: &str, path: &str, rt: tokio::runtime::Handle) -> Box<dyn Read + Send> {
    let opts = DownloadFromContainerOptionsBuilder::default().path(path).build();
    let stream = docker.download_from_container(container, Some(opts)).map_err(|e| io::Error::other(error_text(&e)));
    let reader = tokio_util::io::StreamReader::new(stream);
    Box::new(tokio_util::io::SyncIoBridge::new_with_handle(reader, rt))
}

/// Backs up `stack` into the repository at `location`.
pub async fn backup(
    docker: &Docker,
    stack: &str,
    location: &Location,
    password: &Password,
    hostname: &str,
    tags: &Tags,
    report: &Report<'_>,
) -> Result<BackedUp, Error> {
    let d = declarations(docker, stack).await?;
    if !d.enabled() {
        return Err(Error::Refused(format!(
            "stack {stack} declares no backups: no service has the label backupbot.backup=true"
        )));
    }
    // The repository first: a wrong password or a place that cannot be written fails before
    // any hook runs in the app's containers.
    let (loc, pw) = (location.clone(), password.clone());
    tokio::task::spawn_blocking(move || Repo::open_or_init(&loc, &pw).map(drop))
        .await
        .map_err(|e| Error::Failed(e.to_string()))??;
    let mut warnings: Vec<String> = d.problems.clone();
    for (name, v) in &d.volumes {
        if v.coverage == Coverage::Undeclared {
            warnings.push(format!("volume {name} is not backed up: no service that mounts it declares backups"));
        }
    }
    // Containers, the paths to copy, and the hooks, per backed-up service.
    let mut plan = Vec::new();
    for s in &d.services {
        let full = format!("{stack}_{}", s.service);
        let container = containers::running(docker, stack, &full)
            .await
            .map_err(|e| Error::Failed(format!("cannot back up {}: {e}", s.service)))?;
        let items = items_of(&d, &s.service, &container);
        plan.push((s.clone(), container, items));
    }
    let mut pre_hooks_ran = Vec::new();
    let outcome = copy(docker, stack, &mut plan, &mut pre_hooks_ran, location, password, hostname, tags, report).await;
    // Post-hooks run whenever their pre-hook did, whatever the copy did.
    for (service, container) in &pre_hooks_ran {
        if let Some(post) = d.service(service).and_then(|s| s.hooks.backup_post.as_deref()) {
            if let Err(e) = run_hook(docker, container, service, "backup post-hook", post, report).await {
                warnings.push(e.to_string());
            }
        }
    }
    let mut done = outcome?;
    done.warnings.splice(0..0, warnings);
    Ok(done)
}

#[allow(clippy::too_many_arguments)]
async fn copy(
    docker: &Docker,
    stack: &str,
    plan: &mut [(declared::BackedUpService, String, Vec<Item>)],
    pre_hooks_ran: &mut Vec<(String, String)>,
    location: &Location,
    password: &Password,
    hostname: &str,
    tags: &Tags,
    report: &Report<'_>,
) -> Result<BackedUp, Error> {
    for (s, container, items) in plan.iter() {
        let Some(pre) = s.hooks.backup_pre.as_deref() else { continue };
        // A dump the pre-hook writes must be new: note what is there before it runs.
        let mut before = Vec::new();
        for i in items.iter().filter(|i| i.named) {
            before.push((i.container_path.clone(), stat(docker, container, &i.container_path).await));
        }
        pre_hooks_ran.push((s.service.clone(), container.clone()));
        run_hook(docker, container, &s.service, "backup pre-hook", pre, report).await?;
        for (path, was) in before {
            match (stat(docker, container, &path).await, was) {
                (None, _) => {
                    return Err(Error::Failed(format!(
                        "the backup pre-hook of {} did not leave {path}, which the recipe declares",
                        s.service
                    )))
                }
                (Some(now), Some(was)) if now == was => {
                    return Err(Error::Failed(format!(
                        "{path} in {} is the previous one (modified {}): the backup pre-hook did not write it",
                        s.service, was.0
                    )))
                }
                _ => {}
            }
        }
    }
    let items: Vec<Item> = plan.iter().flat_map(|(_, _, items)| items.iter().cloned()).collect();
    if items.is_empty() {
        return Err(Error::Refused(format!("stack {stack} declares backups but no volume to back up")));
    }
    for i in &items {
        (report.step)(format!("{}: {} → {}", i.service, i.container_path, i.snapshot_path.display()));
    }
    let rt = tokio::runtime::Handle::current();
    let parts: Vec<Part> = items
        .iter()
        .map(|i| {
            let (docker, container, path, rt) =
                (docker.clone(), i.container.clone(), i.container_path.clone(), rt.clone());
            Part {
                snapshot_path: i.snapshot_path.clone(),
                open: Box::new(move || Ok(download(&docker, &container, &path, rt))),
            }
        })
        .collect();
    let mut snap_opts = SnapshotOptions::default();
    snap_opts.host = Some(hostname.to_string());
    let mut tag_list = vec!["potluck".to_string(), format!("stack:{stack}"), format!("trigger:{}", tags.trigger)];
    for (k, v) in [("app", &tags.app), ("recipe", &tags.recipe), ("version", &tags.version)] {
        if let Some(v) = v {
            tag_list.push(format!("{k}:{v}"));
        }
    }
    let mut snap_opts = snap_opts
        .add_tags(&tag_list.join(","))
        .map_err(|e| Error::Refused(format!("the snapshot's tags: {}", e.display_log())))?;
    snap_opts.label = Some(format!("potluck {stack}"));
    let backup_paths: Vec<PathBuf> = items.iter().map(|i| i.snapshot_path.clone()).collect();
    let (location_c, password_c, progress) = (location.clone(), password.clone(), report.progress.clone());
    let written = tokio::task::spawn_blocking(
        move || -> Result<(rustic_core::repofile::SnapshotFile, Result<stream::Copied, String>), Error> {
            let (name, repo) = Repo::open_or_init(&location_c, &password_c)?.for_backup()?;
            let snap = snap_opts.to_snapshot().map_err(|e| Error::Failed(e.display_log()))?;
            let mut opts = BackupOptions::default();
            opts.parent_opts.force = true;
            opts.no_scan = true;
            let source = TarSource::start(parts, progress);
            let archived = repo.archive(&opts, &source, snap, &backup_paths);
            let copied = source.finish();
            let snap = archived.map_err(|e| Error::Failed(format!("repository {name}: {}", e.display_log())))?;
            Ok((snap, copied))
        },
    )
    .await
    .map_err(|e| Error::Failed(format!("the backup stopped: {e}")))??;
    let (snap, copied) = written;
    let id = snap.id.to_string();
    let copied = match copied {
        Ok(c) => c,
        Err(reason) => {
            let kept = discard(location, password, &id).await;
            return Err(Error::Failed(format!("the copy broke off{kept}: {reason}")));
        }
    };
    // The checks that make the snapshot worth having.
    let problems = verify(location, password, &id, &items).await?;
    if !problems.is_empty() {
        let kept = discard(location, password, &id).await;
        return Err(Error::Failed(format!("the backup failed its checks{kept}: {}", problems.join("; "))));
    }
    let snapshot = Snapshot::of(&snap);
    Ok(BackedUp {
        paths: items.iter().map(|i| i.snapshot_path.display().to_string()).collect(),
        files: copied.files,
        bytes: copied.bytes,
        warnings: copied.skipped,
        snapshot,
    })
}

/// Deletes a snapshot that must not be used; says whether anything was kept.
async fn discard(location: &Location, password: &Password, id: &str) -> String {
    let (location, password, id) = (location.clone(), password.clone(), id.to_string());
    let deleted = tokio::task::spawn_blocking(move || Repo::open_or_init(&location, &password)?.delete(&id)).await;
    match deleted {
        Ok(Ok(())) => ", nothing was kept".into(),
        Ok(Err(e)) => format!(" and its partial snapshot could not be removed ({e})"),
        Err(e) => format!(" and its partial snapshot could not be removed ({e})"),
    }
}

/// What is wrong with a snapshot just written: a declared path missing, a declared file empty,
/// nothing at all.
async fn verify(location: &Location, password: &Password, id: &str, items: &[Item]) -> Result<Vec<String>, Error> {
    let (location, password, id) = (location.clone(), password.clone(), id.to_string());
    let items = items.to_vec();
    tokio::task::spawn_blocking(move || -> Result<Vec<String>, Error> {
        let repo = Repo::open_or_init(&location, &password)?;
        let snap = repo.snapshot_file(&id)?;
        let (_, repo) = repo.for_reading()?;
        let mut problems = Vec::new();
        if snap.summary.as_ref().is_none_or(|s| s.total_files_processed == 0) {
            problems.push("the snapshot holds no files".to_string());
        }
        for i in &items {
            let path = i.snapshot_path.display().to_string();
            match repo.node_from_snapshot_and_path(&snap, &path) {
                Err(_) => problems.push(format!("{path} is not in the snapshot")),
                Ok(node) if i.named && !node.is_dir() && node.meta.size == 0 => {
                    problems.push(format!("{path} ({} in {}) is empty", i.container_path, i.service))
                }
                Ok(_) => {}
            }
        }
        Ok(problems)
    })
    .await
    .map_err(|e| Error::Failed(format!("the checks stopped: {e}")))?
}

/// A finished restore.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub snapshot: Snapshot,
    /// Volumes written, by their compose name.
    pub volumes: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
}

/// The snapshot to restore: `id` (or a unique prefix), else the newest of `from_stack`.
pub fn choose_snapshot(repo: &Repo, from_stack: &str, id: Option<&str>) -> Result<Snapshot, Error> {
    let list = repo.snapshots(Some(from_stack))?;
    match id {
        Some(id) => {
            let found: Vec<&Snapshot> = list.iter().filter(|s| s.id.starts_with(id)).collect();
            match found.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(Error::Refused(format!("no snapshot {id} of stack {from_stack} in {}", repo.location))),
                _ => Err(Error::Refused(format!("{id} names several snapshots: give more of its id"))),
            }
        }
        None => list
            .last()
            .cloned()
            .ok_or_else(|| Error::Refused(format!("stack {from_stack} has no snapshot in {}", repo.location))),
    }
}

/// Restores a snapshot of `from_stack` (the same stack, or another one the snapshot is cloned
/// into) into the volumes of the running `stack`.
pub async fn restore(
    docker: &Docker,
    stack: &str,
    from_stack: &str,
    location: &Location,
    password: &Password,
    snapshot: Option<&str>,
    report: &Report<'_>,
) -> Result<Restored, Error> {
    let chosen = {
        let (location, password, from, id) =
            (location.clone(), password.clone(), from_stack.to_string(), snapshot.map(String::from));
        tokio::task::spawn_blocking(move || {
            let repo = Repo::open_or_init(&location, &password)?;
            choose_snapshot(&repo, &from, id.as_deref())
        })
        .await
        .map_err(|e| Error::Failed(e.to_string()))??
    };
    (report.step)(format!("restoring snapshot {} of {} ({})", chosen.short_id(), chosen.time, from_stack));
    let d = declarations(docker, stack).await?;
    // Each volume in the snapshot goes to the volume of the same compose name in this stack.
    let prefix = format!("{VOLUMES_ROOT}/{from_stack}_");
    let mut targets: BTreeMap<String, (String, String, String)> = BTreeMap::new(); // volume → (service, target, snapshot dir)
    let mut warnings = Vec::new();
    for p in &chosen.paths {
        let Some(rest) = p.strip_prefix(&prefix) else {
            warnings.push(format!("{p} is not a volume of {from_stack}: left alone"));
            continue;
        };
        let volume = rest.split('/').next().unwrap_or_default().to_string();
        let Some(v) = d.volumes.get(&volume) else {
            warnings.push(format!("volume {volume} is not mounted by any service of {stack}: left alone"));
            continue;
        };
        let mount = v
            .coverage
            .service()
            .and_then(|s| v.mounts.iter().find(|(m, _)| m == s))
            .or_else(|| v.mounts.first())
            .cloned();
        if let Some((service, target)) = mount {
            let dir = format!("{prefix}{volume}/_data");
            targets.entry(volume).or_insert((service, target, dir));
        }
    }
    if targets.is_empty() {
        return Err(Error::Refused(format!("snapshot {} holds no volume of {stack}", chosen.short_id())));
    }
    // The containers, then the restore pre-hooks, before anything is written.
    let mut container_of: BTreeMap<String, String> = BTreeMap::new();
    let needed: Vec<String> =
        d.services.iter().map(|s| s.service.clone()).chain(targets.values().map(|t| t.0.clone())).collect();
    for service in needed {
        if container_of.contains_key(&service) {
            continue;
        }
        let c = containers::running(docker, stack, &format!("{stack}_{service}"))
            .await
            .map_err(|e| Error::Failed(format!("cannot restore into {service}: {e}")))?;
        container_of.insert(service, c);
    }
    for s in &d.services {
        if let Some(pre) = s.hooks.restore_pre.as_deref() {
            run_hook(docker, &container_of[&s.service], &s.service, "restore pre-hook", pre, report).await?;
        }
    }
    let (mut files, mut bytes) = (0, 0);
    for (volume, (service, target, dir)) in &targets {
        (report.step)(format!("{volume}: {dir} → {service}:{target}"));
        let copied = upload(
            docker,
            &container_of[service],
            target,
            location,
            password,
            &chosen.id,
            dir,
            report.progress.clone(),
        )
        .await
        .map_err(|e| Error::Failed(format!("restoring volume {volume} failed: {e}")))?;
        files += copied.files;
        bytes += copied.bytes;
        warnings.extend(copied.skipped);
    }
    for s in &d.services {
        if let Some(post) = s.hooks.restore_post.as_deref() {
            run_hook(docker, &container_of[&s.service], &s.service, "restore post-hook", post, report).await?;
        }
    }
    Ok(Restored { snapshot: chosen, volumes: targets.into_keys().collect(), files, bytes, warnings })
}

/// Writes a snapshot directory's contents into `target` of `container`, as it reads them.
#[allow(clippy::too_many_arguments)]
async fn upload(
    docker: &Docker,
    container: &str,
    target: &str,
    location: &Location,
    password: &Password,
    id: &str,
    dir: &str,
    progress: OnProgress,
) -> Result<stream::Copied, String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let (location, password, id, dir) = (location.clone(), password.clone(), id.to_string(), dir.to_string());
    let writer = tokio::task::spawn_blocking(move || -> Result<stream::Copied, String> {
        let repo = Repo::open_or_init(&location, &password).map_err(|e| e.to_string())?;
        let snap = repo.snapshot_file(&id).map_err(|e| e.to_string())?;
        let (_, repo) = repo.for_reading().map_err(|e| e.to_string())?;
        let node = repo.node_from_snapshot_and_path(&snap, &dir).map_err(|e| e.display_log())?;
        stream::write_tar(&repo, &node, ChannelWriter { tx, buf: Vec::new() }, &progress)
    });
    let opts = UploadToContainerOptionsBuilder::default().path(target).copy_uidgid("1").build();
    let body = tokio_stream::wrappers::ReceiverStream::new(rx);
    let uploaded = docker.upload_to_container(container, Some(opts), bollard::body_stream(body)).await;
    let written = writer.await.map_err(|e| e.to_string())?;
    uploaded.map_err(|e| error_text(&e))?;
    written
}

/// Writes a whole snapshot as a tar archive into `tx`, in chunks as it reads it (the paths as
/// `restic ls` shows them, without the leading `/`). Call it on a blocking thread.
pub fn export_tar(
    location: &Location,
    password: &Password,
    id: &str,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> Result<stream::Copied, String> {
    let repo = Repo::open_or_init(location, password).map_err(|e| e.to_string())?;
    let snap = repo.snapshot_file(id).map_err(|e| e.to_string())?;
    let (_, repo) = repo.for_reading().map_err(|e| e.to_string())?;
    let root = repo.node_from_snapshot_and_path(&snap, "/").map_err(|e| e.display_log())?;
    let quiet: OnProgress = std::sync::Arc::new(|_| {});
    stream::write_tar(&repo, &root, ChannelWriter { tx, buf: Vec::new() }, &quiet)
}

/// A `Write` whose bytes go, in chunks, to an async receiver.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(chunk).map_err(|_| io::Error::other("the reader stopped reading"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declared::{BackedUpService, Volume};

    #[test]
    fn paths_inside_another_path_are_copied_once() {
        let mut d = Declared::default();
        d.services.push(BackedUpService { service: "db".into(), ..Default::default() });
        d.volumes.insert(
            "data".into(),
            Volume {
                docker_name: "s_data".into(),
                mounts: vec![("db".into(), "/var/lib/data/".into())],
                coverage: Coverage::Paths {
                    service: "db".into(),
                    paths: vec!["dumps".into(), "dumps/today.sql".into(), "a.sql".into()],
                },
            },
        );
        d.volumes.insert(
            "other".into(),
            Volume {
                docker_name: "s_other".into(),
                mounts: vec![("web".into(), "/x".into())],
                coverage: Coverage::Undeclared,
            },
        );
        let items = items_of(&d, "db", "c1");
        let paths: Vec<_> =
            items.iter().map(|i| (i.container_path.as_str(), i.snapshot_path.display().to_string())).collect();
        assert_eq!(
            paths,
            [
                ("/var/lib/data/a.sql", "/var/lib/docker/volumes/s_data/_data/a.sql".to_string()),
                ("/var/lib/data/dumps", "/var/lib/docker/volumes/s_data/_data/dumps".to_string()),
            ]
        );
        assert!(items.iter().all(|i| i.named && i.container == "c1"));
    }

    #[test]
    fn hooks_are_split_like_a_shell_does() {
        assert_eq!(hook_argv("db", "pre-hook", "sh -c 'pg_dump > /x.sql'").unwrap(), ["sh", "-c", "pg_dump > /x.sql"]);
        assert!(hook_argv("db", "pre-hook", "sh -c 'unclosed").is_err());
    }
}
