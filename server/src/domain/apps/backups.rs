//! Backups of apps: each collective's restic repositories (their passwords sealed like other
//! credentials), backup and restore as jobs of the app (see `jobs`), the snapshots Potluck took
//! (recorded only after their checks passed), and what each app's labels cover.
//!
//! A repository kept on the Potluck machine lives in `<backups_dir>/<collective id>/<name>`:
//! the collective names it, Potluck places it, so no collective reaches another's directory or
//! any other path; and only collectives the configuration grants (`local_backups`) keep one.

use super::apps::{self, AppRow};
use super::stack::Stack;
use crate::adapters::backup::declared::{Coverage, Declared};
use crate::adapters::backup::repo::{Location, Password, Repo};
use crate::adapters::backup::run::{BackedUp, Report, Restored, Tags};
use crate::adapters::backup::s3;
use crate::adapters::backup::sftp::{self, HostKey};
use crate::adapters::backup::stream::{OnProgress, Progress};
use crate::adapters::crypto::random_token;
use crate::adapters::db::now_ms;
use crate::adapters::reach;
use crate::domain::audit::{self, Event};
use crate::domain::authz::{Cap, CollectiveRef};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::actions::AuditAction;
use potluck_app::api::{AddBackupRepo, RemoveBackupRepo};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many snapshots of an app the pages list.
const LISTED: i64 = 30;

/// A repository as stored.
pub struct RepoRow {
    pub id: BackupRepoId,
    pub name: String,
    pub kind: String,
    pub location: String,
    password_enc: Vec<u8>,
    /// SFTP: the private key (sealed) and the pinned host key fingerprint.
    ssh_key_enc: Option<Vec<u8>>,
    host_key: Option<String>,
    /// S3: the access key id, the secret key (sealed) and the region.
    s3_key_id: Option<String>,
    s3_secret_enc: Option<Vec<u8>>,
    s3_region: Option<String>,
    pub created_at: i64,
}

impl RepoRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<RepoRow> {
        Ok(RepoRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            location: r.try_get("location")?,
            password_enc: r.try_get("password_enc")?,
            ssh_key_enc: r.try_get("ssh_key_enc")?,
            host_key: r.try_get("host_key")?,
            s3_key_id: r.try_get("s3_key_id")?,
            s3_secret_enc: r.try_get("s3_secret_enc")?,
            s3_region: r.try_get("s3_region")?,
            created_at: r.try_get("created_at")?,
        })
    }

    /// Where it is and how to open it. A remote host is checked again each time (its name may
    /// resolve elsewhere since it was added).
    pub async fn open(&self, st: &AppState) -> std::result::Result<(Location, Password), String> {
        let sealed = |what: &str| format!("repository {}: no {what} stored", self.name);
        let unseal = |v: &[u8]| st.secrets.open(v).map_err(|e| format!("repository {}: {e}", self.name));
        let password = unseal(&self.password_enc)?;
        let location = match Location::parse(&self.location).map_err(|e| e.to_string())? {
            sftp @ Location::Sftp { .. } => {
                let (Some(key), Some(host_key)) = (&self.ssh_key_enc, &self.host_key) else {
                    return Err(sealed("SSH key or host key"));
                };
                let private_key = unseal(key)?;
                sftp.with_sftp_auth(sftp::Auth { private_key, host_key: HostKey::Pinned(host_key.clone()) })
            }
            bucket @ Location::S3 { .. } => {
                let (Some(access_key_id), Some(secret)) = (&self.s3_key_id, &self.s3_secret_enc) else {
                    return Err(sealed("access key"));
                };
                let secret_access_key = unseal(secret)?;
                bucket.with_s3_auth(s3::Auth {
                    access_key_id: access_key_id.clone(),
                    secret_access_key,
                    region: self.s3_region.clone(),
                })
            }
            local => local,
        };
        check_reach(st, &location).await.map_err(|e| format!("repository {}: {e}", self.name))?;
        Ok((location, Password::new(password).map_err(|e| e.to_string())?))
    }
}

const REPO_COLUMNS: &str =
    "id, name, kind, location, password_enc, ssh_key_enc, host_key, s3_key_id, s3_secret_enc, s3_region, created_at";

pub async fn repos_of(st: &AppState, collective: CollectiveId) -> Result<Vec<RepoRow>> {
    let rows = sqlx::query(&format!("SELECT {REPO_COLUMNS} FROM backup_repos WHERE collective_id = $1 ORDER BY id"))
        .bind(collective)
        .fetch_all(st.db.pool())
        .await?;
    rows.iter().map(RepoRow::from_row).collect()
}

/// The collective's repository `name`, or its first one.
pub async fn repo_for(st: &AppState, collective: CollectiveId, name: Option<&str>) -> Result<RepoRow> {
    let repos = repos_of(st, collective).await?;
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let found = match name {
        Some(n) => repos.into_iter().find(|r| r.name == n),
        None => repos.into_iter().next(),
    };
    found.ok_or_else(|| {
        match name {
            Some(n) => ApiError::not_found(format!("backup repository {n}")),
            None => ApiError::conflict("the collective has no backup repository: add one on its backups page"),
        }
        .into()
    })
}

pub async fn repo_by_id(st: &AppState, collective: CollectiveId, id: BackupRepoId) -> Result<RepoRow> {
    let row = sqlx::query(&format!("SELECT {REPO_COLUMNS} FROM backup_repos WHERE id = $1 AND collective_id = $2"))
        .bind(id)
        .bind(collective)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("backup repository"))?;
    RepoRow::from_row(&row)
}

/// A repository's name: it becomes a directory, so letters, digits and `-` only.
fn check_name(name: &str) -> std::result::Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("name", "1 to 40 lowercase letters, digits and dashes (e.g. nightly)"))
    }
}

async fn view_of(st: &AppState, r: &RepoRow) -> Result<BackupRepoView> {
    let totals = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS bytes FROM backups WHERE repo_id = $1",
    )
    .bind(r.id)
    .fetch_one(st.db.pool())
    .await?;
    Ok(BackupRepoView {
        id: r.id,
        name: r.name.clone(),
        kind: r.kind.clone(),
        location: r.location.clone(),
        host_key: r.host_key.clone(),
        s3_key_id: r.s3_key_id.clone(),
        created_at: r.created_at,
        snapshots: totals.try_get("n")?,
        bytes: totals.try_get("bytes")?,
    })
}

/// The largest private key accepted (an RSA 16384 key in OpenSSH's format is under 13 KiB).
const MAX_SSH_KEY: usize = 16 * 1024;
/// The longest S3 key id, secret key and region accepted (AWS's are 20, 40 and under 20).
const MAX_S3_FIELD: usize = 256;

/// Where a new repository goes: Potluck's own directory for the collective, a directory over
/// SFTP with the key and the host key it pins, or a bucket with its keys.
enum Placement {
    Local(std::path::PathBuf),
    Sftp { location: Location, private_key: String, host_key: String },
    S3 { location: Location, auth: s3::Auth },
}

/// What a remote repository keeps beside its password: (sealed SSH key, pinned host key) or
/// (S3 key id, sealed secret key, region).
#[derive(Default)]
struct Stored {
    ssh_key_enc: Option<Vec<u8>>,
    host_key: Option<String>,
    s3_key_id: Option<String>,
    s3_secret_enc: Option<Vec<u8>>,
    s3_region: Option<String>,
}

fn placement(st: &AppState, c: &CollectiveRef, name: &str, input: &AddBackupRepo) -> Result<Placement> {
    let raw = input.location.trim();
    if raw.is_empty() {
        if !st.config.local_backups_allow(&c.slug) {
            return Err(ApiError::forbidden(format!(
                "{} may not keep backup repositories on the Potluck machine: the federation's configuration grants that (local_backups); give an sftp: or s3: location instead",
                c.slug
            ))
            .into());
        }
        return Ok(Placement::Local(st.config.backups_root().join(c.id.to_string()).join(name)));
    }
    if raw.len() > 512 {
        return Err(ApiError::invalid("location", "at most 512 characters").into());
    }
    // A collective names places on its own servers only: never a path on the Potluck machine.
    let location = Location::parse(raw).map_err(|e| ApiError::invalid("location", e.to_string()))?;
    match location {
        Location::Local(_) => Err(ApiError::invalid(
            "location",
            "sftp:user@host:/path, sftp://user@host:port//path or s3:https://host/bucket/path (leave it empty for a repository on the Potluck machine)",
        )
        .into()),
        Location::Sftp { .. } => {
            let private_key = input.ssh_key.trim().to_string();
            if private_key.is_empty() || private_key.len() > MAX_SSH_KEY || !private_key.starts_with("-----BEGIN ") {
                return Err(ApiError::invalid(
                    "ssh_key",
                    "the private key Potluck signs in with, in OpenSSH or PEM form, without a passphrase (at most 16 KiB)",
                )
                .into());
            }
            let host_key = input.host_key.trim().to_string();
            Ok(Placement::Sftp { location, private_key, host_key })
        }
        Location::S3 { .. } => {
            let field = |name: &'static str, value: &str, required: bool| {
                let v = value.trim();
                let ok = v.len() <= MAX_S3_FIELD
                    && v.chars().all(|c| c.is_ascii_graphic())
                    && (!required || !v.is_empty());
                if ok {
                    Ok(v.to_string())
                } else {
                    Err(ApiError::invalid(
                        name,
                        if required { "needed for an s3: repository (printable, at most 256 characters)" } else { "printable, at most 256 characters" },
                    ))
                }
            };
            let auth = s3::Auth {
                access_key_id: field("s3_key_id", &input.s3_key_id, true)?,
                secret_access_key: field("s3_secret", &input.s3_secret, true)?,
                region: Some(field("s3_region", &input.s3_region, false)?).filter(|r| !r.is_empty()),
            };
            Ok(Placement::S3 { location, auth })
        }
    }
}

/// Whether a collective's remote repository may be reached (see [`reach::check`]).
async fn check_reach(st: &AppState, location: &Location) -> std::result::Result<(), String> {
    let Some((host, port)) = location.remote_host() else { return Ok(()) };
    reach::check(&host, port, &st.config.backup_hosts_allow, "a collective's repository", "backup_hosts_allow")
        .await
        .map(|_| ())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, String> + Send + 'static,
) -> std::result::Result<std::result::Result<T, String>, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::unavailable(e.to_string()))
}

/// `add_backup_repo`: opens the repository (or makes it) before anything is recorded, so a
/// wrong password, key or host key, or an unwritable place is told at once.
pub async fn add_repo(st: &AppState, access: &Cap<scope::Collective>, input: AddBackupRepo) -> Result<AddedBackupRepo> {
    let c = access.collective();
    let name = input.name.trim().to_string();
    check_name(&name)?;
    let place = placement(st, c, &name, &input)?;
    if repos_of(st, c.id).await?.iter().any(|r| r.name == name) {
        return Err(ApiError::conflict(format!("{} already has a backup repository named {name}", c.slug)).into());
    }
    let given = !input.password.is_empty();
    if given && input.password.len() > 1024 {
        return Err(ApiError::invalid("password", "at most 1024 characters").into());
    }
    let password = if given { input.password.clone() } else { random_token("") };
    let pw = Password::new(password.clone()).map_err(|e| ApiError::invalid("password", e.to_string()))?;
    let (location, kind, stored) = match place {
        Placement::Local(dir) => {
            let location = Location::Local(dir.clone());
            let at = location.clone();
            blocking(move || {
                if let Some(parent) = dir.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
                }
                Repo::open_or_init(&at, &pw).map(drop).map_err(|e| e.to_string())
            })
            .await?
            .map_err(|e| ApiError::invalid("password", e))?;
            (location, "local", Stored::default())
        }
        Placement::Sftp { location, private_key, host_key } => {
            check_reach(st, &location).await.map_err(|e| ApiError::invalid("location", e))?;
            let Location::Sftp { target, .. } = &location else { unreachable!("placement returns sftp") };
            let target = target.clone();
            if host_key.is_empty() {
                // Never trusted on first use: the person checks what the server presents, and pins it.
                let seen =
                    blocking(move || sftp::probe(&target)).await?.map_err(|e| ApiError::invalid("location", e))?;
                return Err(ApiError::invalid(
                    "host_key",
                    format!(
                        "{} presents the host key {seen}: check it against the server (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and give it to pin it",
                        location.display()
                    ),
                )
                .into());
            }
            if !sftp::is_fingerprint(&host_key) {
                return Err(ApiError::invalid(
                    "host_key",
                    "a SHA-256 fingerprint as ssh-keygen -lf prints it (SHA256:…)",
                )
                .into());
            }
            let auth = sftp::Auth { private_key: private_key.clone(), host_key: HostKey::Pinned(host_key.clone()) };
            let at = location.clone().with_sftp_auth(auth);
            blocking(move || Repo::open_or_init(&at, &pw).map(drop).map_err(|e| e.to_string()))
                .await?
                .map_err(|e| ApiError::invalid("location", e))?;
            let stored = Stored {
                ssh_key_enc: Some(st.secrets.seal(&private_key)),
                host_key: Some(host_key),
                ..Stored::default()
            };
            (location, "sftp", stored)
        }
        Placement::S3 { location, auth } => {
            check_reach(st, &location).await.map_err(|e| ApiError::invalid("location", e))?;
            let at = location.clone().with_s3_auth(auth.clone());
            blocking(move || Repo::open_or_init(&at, &pw).map(drop).map_err(|e| e.to_string()))
                .await?
                .map_err(|e| ApiError::invalid("location", e))?;
            let stored = Stored {
                s3_key_id: Some(auth.access_key_id),
                s3_secret_enc: Some(st.secrets.seal(&auth.secret_access_key)),
                s3_region: auth.region,
                ..Stored::default()
            };
            (location, "s3", stored)
        }
    };
    let sealed = st.secrets.seal(&password);
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let id: BackupRepoId = sqlx::query(
        "INSERT INTO backup_repos (collective_id, name, kind, location, password_enc, ssh_key_enc, host_key, \
         s3_key_id, s3_secret_enc, s3_region, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(c.id)
    .bind(&name)
    .bind(kind)
    .bind(location.display())
    .bind(&sealed)
    .bind(&stored.ssh_key_enc)
    .bind(&stored.host_key)
    .bind(&stored.s3_key_id)
    .bind(&stored.s3_secret_enc)
    .bind(&stored.s3_region)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::adapters::db::is_unique_violation(&e) {
            ApiError::conflict(format!("{} already has a backup repository named {name}", c.slug)).into()
        } else {
            crate::error::Error::from(e)
        }
    })?
    .try_get("id")?;
    let event = Event::new(AuditAction::BackupRepoAdd, format!("backup repository {name}"))
        .in_collective(c.id, &c.slug)
        .details(json!({
            "repo_id": id,
            "kind": kind,
            "location": location.display(),
            "host_key": stored.host_key,
            "s3_key_id": stored.s3_key_id,
            "s3_region": stored.s3_region,
            "password": if given { "given" } else { "generated" },
        }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    let row = repo_by_id(st, c.id, id).await?;
    Ok(AddedBackupRepo { repo: view_of(st, &row).await?, password: (!given).then_some(OneTimeSecret(password)) })
}

/// `remove_backup_repo`: Potluck forgets it (its record of the snapshots, and the schedules that
/// wrote into it); the repository and its snapshots stay where they are, readable with restic.
pub async fn remove_repo(st: &AppState, access: &Cap<scope::Collective>, input: RemoveBackupRepo) -> Result<()> {
    let c = access.collective();
    let repo = repo_for(st, c.id, Some(&input.name)).await?;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("DELETE FROM backups WHERE repo_id = $1").bind(repo.id).execute(&mut *tx).await?;
    let schedules = sqlx::query("DELETE FROM backup_schedules WHERE repo_id = $1 AND collective_id = $2")
        .bind(repo.id)
        .bind(c.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM backup_repos WHERE id = $1 AND collective_id = $2")
        .bind(repo.id)
        .bind(c.id)
        .execute(&mut *tx)
        .await?;
    let event = Event::new(AuditAction::BackupRepoRemove, format!("backup repository {}", repo.name))
        .in_collective(c.id, &c.slug)
        .details(json!({ "repo_id": repo.id, "location": repo.location, "schedules_removed": schedules }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

fn backup_view(r: &sqlx::any::AnyRow) -> Result<BackupView> {
    Ok(BackupView {
        id: r.try_get("id")?,
        app_domain: r.try_get("domain")?,
        repo: r.try_get("repo_name")?,
        snapshot: r.try_get("snapshot_id")?,
        taken_at: r.try_get("taken_at")?,
        reason: r.try_get("reason")?,
        version: r.try_get("version")?,
        files: r.try_get("files")?,
        bytes: r.try_get("bytes")?,
        job_id: r.try_get("job_id")?,
        drilled_at: r.try_get("drilled_at")?,
        drill_ok: r.try_get::<Option<i64>, _>("drill_ok")?.map(|v| v != 0),
        drill_result: r.try_get("drill_result")?,
    })
}

const BACKUP_SELECT: &str = "SELECT b.id, a.domain, r.name AS repo_name, b.snapshot_id, b.taken_at, b.reason, \
     b.version, b.files, b.bytes, b.job_id, b.repo_id, b.drilled_at, b.drill_ok, b.drill_result FROM backups b JOIN apps a ON a.id = b.app_id \
     JOIN backup_repos r ON r.id = b.repo_id";

/// The app's snapshots, newest first.
pub async fn for_app(st: &AppState, app: AppId) -> Result<Vec<BackupView>> {
    let rows =
        sqlx::query(&format!("{BACKUP_SELECT} WHERE b.app_id = $1 ORDER BY b.taken_at DESC, b.id DESC LIMIT $2"))
            .bind(app)
            .bind(LISTED)
            .fetch_all(st.db.pool())
            .await?;
    rows.iter().map(backup_view).collect()
}

/// One of the app's snapshots, by id or a unique prefix of one.
pub async fn find(st: &AppState, app: AppId, snapshot: &str) -> Result<(BackupView, BackupRepoId)> {
    let snapshot = snapshot.trim();
    if snapshot.len() < 4 || !snapshot.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("snapshot", "give a snapshot id (at least its first 4 hex digits)").into());
    }
    let rows = sqlx::query(&format!("{BACKUP_SELECT} WHERE b.app_id = $1 AND b.snapshot_id LIKE $2 ORDER BY b.id"))
        .bind(app)
        // Hex digits only (checked above): nothing in it is a LIKE wildcard.
        .bind(format!("{}%", snapshot.to_ascii_lowercase()))
        .fetch_all(st.db.pool())
        .await?;
    match rows.as_slice() {
        [one] => Ok((backup_view(one)?, one.try_get("repo_id")?)),
        [] => Err(ApiError::not_found(format!("snapshot {snapshot}")).into()),
        _ => Err(ApiError::invalid("snapshot", format!("{snapshot} names several snapshots: give more of it")).into()),
    }
}

/// Each volume's coverage as the labels declare it.
pub fn coverage(d: &Declared) -> Vec<VolumeCoverage> {
    d.volumes
        .iter()
        .map(|(name, v)| {
            let (state, service, paths) = match &v.coverage {
                Coverage::Whole { service } => (VolumeState::Whole, Some(service.clone()), Vec::new()),
                Coverage::Paths { service, paths } => (VolumeState::Paths, Some(service.clone()), paths.clone()),
                Coverage::Excluded { service } => (VolumeState::Excluded, Some(service.clone()), Vec::new()),
                Coverage::Undeclared => (VolumeState::Undeclared, None, Vec::new()),
            };
            VolumeCoverage { volume: name.clone(), state, service, paths }
        })
        .collect()
}

pub async fn coverage_of(st: &AppState, app: AppId) -> Result<Option<Vec<VolumeCoverage>>> {
    let raw: Option<String> = sqlx::query("SELECT backup_coverage FROM apps WHERE id = $1")
        .bind(app)
        .fetch_optional(st.db.pool())
        .await?
        .and_then(|r| r.try_get("backup_coverage").ok());
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

/// Records the app's coverage (in the job's transaction).
pub async fn save_coverage(tx: &mut sqlx::AnyConnection, app: AppId, cov: &[VolumeCoverage]) -> Result<()> {
    sqlx::query("UPDATE apps SET backup_coverage = $1 WHERE id = $2")
        .bind(serde_json::to_string(cov).unwrap_or_else(|_| "[]".into()))
        .bind(app)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `list_backups`: the collective's repositories and every app's coverage and snapshots.
pub async fn list(st: &AppState, access: &Cap<scope::Collective>) -> Result<CollectiveBackups> {
    let c = access.collective();
    let mut repos = Vec::new();
    for r in repos_of(st, c.id).await? {
        repos.push(view_of(st, &r).await?);
    }
    let mut out = Vec::new();
    for app in apps::list(st, access).await? {
        out.push(AppBackups {
            coverage: coverage_of(st, app.id).await?,
            backups: for_app(st, app.id).await?,
            schedule: super::schedules::of_app(st, app.id).await?,
            last_verified: last_verified(st, app.id).await?,
            domain: app.domain,
            recipe: app.recipe,
            status: app.status,
        });
    }
    let role = access.role().unwrap_or(Role::Viewer);
    Ok(CollectiveBackups {
        slug: c.slug.clone(),
        repos,
        apps: out,
        local_allowed: st.config.local_backups_allow(&c.slug),
        can_manage: role.grants(Permission::ManageServers),
        can_operate: role.grants(Permission::OperateApps),
        can_schedule: role.grants(Permission::ManageApps),
        drill_schedule: super::drill_schedules::of_collective(st, c.id).await?,
    })
}

pub async fn repo_names(st: &AppState, collective: CollectiveId) -> Result<Vec<String>> {
    Ok(repos_of(st, collective).await?.into_iter().map(|r| r.name).collect())
}

/// A snapshot taken by a job, to record with the job's end.
pub struct Taken {
    pub repo: BackupRepoId,
    pub backed_up: BackedUp,
    pub coverage: Vec<VolumeCoverage>,
    pub reason: String,
    pub version: Option<String>,
}

/// When a restore drill of one of the app's snapshots last passed.
pub async fn last_verified(st: &AppState, app: AppId) -> Result<Option<i64>> {
    Ok(sqlx::query("SELECT MAX(drilled_at) AS at FROM backups WHERE app_id = $1 AND drill_ok = 1")
        .bind(app)
        .fetch_one(st.db.pool())
        .await?
        .try_get("at")?)
}

/// Reports a copy's progress as job events: at most one a second.
pub(super) fn throttled(emit: Arc<dyn Fn(String) + Send + Sync>) -> OnProgress {
    let last = Mutex::new(Instant::now() - Duration::from_secs(2));
    Arc::new(move |p: &Progress| {
        if let Ok(mut at) = last.lock() {
            if at.elapsed() >= Duration::from_secs(1) {
                *at = Instant::now();
                emit(format!("{} files, {} … {}", p.files, human_bytes(p.bytes), p.current));
            }
        }
    })
}

/// Where a job's lines go: steps, and progress (throttled).
pub struct Lines {
    pub step: Arc<dyn Fn(String) + Send + Sync>,
    pub progress: Arc<dyn Fn(String) + Send + Sync>,
}

/// Backs the app up into the collective's repository (the one the options name, else its first).
pub async fn take(
    st: &AppState,
    app: &AppRow,
    stack: &Stack,
    options: &JobOptions,
    reason: &str,
    lines: &Lines,
) -> std::result::Result<Taken, String> {
    let repo = repo_for(st, app.collective_id, options.repo.as_deref()).await.map_err(|e| e.to_string())?;
    let (location, password) = repo.open(st).await?;
    (lines.step)(format!("backing up {} into repository {} ({})", app.stack_name, repo.name, repo.location));
    let version = app.version.clone();
    let tags = Tags {
        app: Some(app.domain.clone()),
        recipe: Some(app.recipe.clone()),
        version: version.clone(),
        trigger: reason.to_string(),
    };
    let step = lines.step.clone();
    let report = Report { step: &move |s| step(s), progress: throttled(lines.progress.clone()) };
    let declared = stack.backup_declarations().await?;
    let backed_up = stack.backup(&location, &password, &tags, &report).await?;
    for w in &backed_up.warnings {
        (lines.step)(format!("warning: {w}"));
    }
    Ok(Taken { repo: repo.id, backed_up, coverage: coverage(&declared), reason: reason.to_string(), version })
}

/// Records a snapshot a job took (in the job's transaction).
pub async fn record(tx: &mut sqlx::AnyConnection, app: &AppRow, job: JobId, taken: &Taken) -> Result<()> {
    let b = &taken.backed_up;
    sqlx::query(
        "INSERT INTO backups (collective_id, app_id, repo_id, job_id, snapshot_id, stack, reason, version, taken_at, files, bytes, paths, warnings) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(app.collective_id)
    .bind(app.id)
    .bind(taken.repo)
    .bind(job)
    .bind(&b.snapshot.id)
    .bind(&app.stack_name)
    .bind(&taken.reason)
    .bind(&taken.version)
    .bind(now_ms())
    .bind(i64::try_from(b.files).unwrap_or(i64::MAX))
    .bind(i64::try_from(b.bytes).unwrap_or(i64::MAX))
    .bind(serde_json::to_string(&b.paths).unwrap_or_default())
    .bind(serde_json::to_string(&b.warnings).unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    save_coverage(tx, app.id, &taken.coverage).await
}

/// Drops snapshots that retention removed from the repository from Potluck's record (in the
/// job's transaction).
pub async fn forget_recorded(tx: &mut sqlx::AnyConnection, app: AppId, snapshots: &[String]) -> Result<()> {
    for id in snapshots {
        sqlx::query("DELETE FROM backups WHERE app_id = $1 AND snapshot_id = $2")
            .bind(app)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Restores a snapshot into the app: the one the options name (of this app, or of the app named
/// by `from_app` for a clone), else the newest of the app in the repository.
pub async fn restore(
    st: &AppState,
    app: &AppRow,
    stack: &Stack,
    options: &JobOptions,
    lines: &Lines,
) -> std::result::Result<Restored, String> {
    let source = source_app(st, app, options).await.map_err(|e| e.to_string())?;
    let (repo, snapshot) = match options.snapshot.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => {
            let (found, repo) = find(st, source.id, id).await.map_err(|e| e.to_string())?;
            let repo = repo_by_id(st, app.collective_id, repo).await.map_err(|e| e.to_string())?;
            (repo, Some(found.snapshot))
        }
        None => (repo_for(st, app.collective_id, options.repo.as_deref()).await.map_err(|e| e.to_string())?, None),
    };
    let (location, password) = repo.open(st).await?;
    let step = lines.step.clone();
    let report = Report { step: &move |s| step(s), progress: throttled(lines.progress.clone()) };
    let restored = stack.restore(&source.stack_name, &location, &password, snapshot.as_deref(), &report).await?;
    for w in &restored.warnings {
        (lines.step)(format!("warning: {w}"));
    }
    Ok(restored)
}

/// Refuses a backup or restore request that cannot run, before it is queued: no repository, an
/// app that does not run, a snapshot or source app that is not the collective's.
pub async fn check_request(st: &AppState, app: &AppRow, kind: JobKind, options: &JobOptions) -> Result<()> {
    if kind == JobKind::Drill {
        // A drill needs no running app: the snapshot and the version it was deployed at.
        if app.version.is_none() {
            return Err(
                ApiError::conflict(format!("{} was never deployed: there is no version to drill", app.domain)).into()
            );
        }
        super::drills::chosen(st, app, options).await?;
        return Ok(());
    }
    if matches!(app.status, AppStatus::New | AppStatus::Undeployed) {
        return Err(ApiError::conflict(format!(
            "{} is not deployed: backups read (and restores write) the volumes of its running services",
            app.domain
        ))
        .into());
    }
    let snapshot = options.snapshot.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if kind == JobKind::Backup || snapshot.is_none() {
        repo_for(st, app.collective_id, options.repo.as_deref()).await?;
    }
    if kind == JobKind::Restore {
        let source = source_app(st, app, options).await?;
        if let Some(id) = snapshot {
            find(st, source.id, id).await?;
        }
    }
    Ok(())
}

/// The backup an upgrade takes first, recorded at once (it outlives a failed upgrade): when the
/// running stack declares backups, the collective has a repository, and the operator did not
/// turn it off. A backup that fails stops the upgrade before anything changes. Returns the
/// snapshot's short id.
pub async fn before_upgrade(
    st: &AppState,
    app: &AppRow,
    stack: &Stack,
    options: &JobOptions,
    lines: &Lines,
    job: JobId,
) -> std::result::Result<Option<String>, String> {
    if options.skip_backup {
        (lines.step)("no backup before this upgrade: the operator turned it off".into());
        return Ok(None);
    }
    if !stack.backup_declarations().await?.enabled() {
        (lines.step)(format!("{} declares no backups: upgrading without one", app.stack_name));
        return Ok(None);
    }
    if repos_of(st, app.collective_id).await.map_err(|e| e.to_string())?.is_empty() {
        (lines.step)("the collective has no backup repository: upgrading without a backup".into());
        return Ok(None);
    }
    let taken = take(st, app, stack, options, "before-upgrade", lines).await.map_err(|e| {
        format!(
            "the backup before the upgrade failed, so nothing was upgraded: {e} (upgrade without a backup to go on)"
        )
    })?;
    let short = taken.backed_up.snapshot.short_id().to_string();
    let mut tx = st.db.begin().await.map_err(|e| e.to_string())?;
    record(&mut tx, app, job, &taken).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    (lines.step)(format!("snapshot {short} taken before the upgrade"));
    Ok(Some(short))
}

/// The app whose snapshot a restore writes: `from_app` of the same collective (a clone), else
/// the app itself.
async fn source_app(st: &AppState, app: &AppRow, options: &JobOptions) -> Result<AppRow> {
    match options.from_app.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(domain) => {
            let c = crate::domain::authz::collective_by_id(&st.db, app.collective_id)
                .await?
                .ok_or_else(|| ApiError::not_found("collective"))?;
            apps::in_collective(st, &c, domain).await
        }
        None => Ok(app.clone()),
    }
}
