//! abra's `~/.abra/servers` tree, whole: a collective's apps exported as
//! `servers/<server>/<domain>.env` in a tar.gz (each file exactly the app's env, as
//! `export_app` gives it), and such a tree imported at once: each server directory mapped to one
//! of the collective's servers, each env file previewed as the app it becomes or refused with
//! why, then every app that is not refused created in one transaction.
//!
//! An archive is untrusted: at most [`MAX_ARCHIVE`] bytes packed and [`MAX_UNPACKED`] unpacked,
//! [`MAX_ENTRIES`] entries, env files of at most [`MAX_FILE`]; links are never followed and
//! paths never leave the tree (nothing is written to disk).

use super::apps::{self as app_rows, Imported};
use super::servers::{self, ServerRow};
use crate::adapters::db::now_ms;
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::AppState;
use base64::Engine as _;
use potluck_app::error::ApiError;
use potluck_app::model::{AbraTreeApp, AbraTreeDir, AbraTreeImported, AbraTreePreview, AppSummary};
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// The largest archive taken, packed (an abra tree of a thousand apps packs to well under this).
pub const MAX_ARCHIVE: usize = 1 << 20;
/// At most this much is unpacked from an archive, whatever it claims.
pub const MAX_UNPACKED: u64 = 16 << 20;
pub const MAX_ENTRIES: usize = 5_000;
/// The largest env file taken.
pub const MAX_FILE: u64 = 256 << 10;
/// An upload waits this long for its import (milliseconds).
const UPLOAD_TTL_MS: i64 = 24 * 3600 * 1000;
/// Uploads kept per person; older ones go.
const UPLOADS_KEPT: i64 = 10;
/// How many ignored entries a preview names.
const IGNORED_SHOWN: usize = 100;

/// An env file of the tree: `<dir>/<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeFile {
    pub dir: String,
    pub name: String,
    pub text: String,
}

/// What an archive holds: its env files, and its other entries with why they are not apps.
#[derive(Debug, Default, PartialEq)]
pub struct Tree {
    pub files: Vec<TreeFile>,
    pub ignored: Vec<String>,
}

/// Reads an abra tree from a tar archive, gzip-compressed or not. Paths are taken below a
/// `servers/` component when there is one (`.abra/servers/…`, `servers/…`), else from the
/// archive's root; an app is a regular file `<server>/<domain>.env`.
pub fn read_archive(bytes: &[u8]) -> std::result::Result<Tree, String> {
    if bytes.len() > MAX_ARCHIVE {
        return Err(format!("the archive is larger than {} KiB", MAX_ARCHIVE >> 10));
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut gz = Limited { inner: flate2::read::GzDecoder::new(bytes), left: MAX_UNPACKED, exceeded: false };
        let tree = read_tar(&mut gz);
        if gz.exceeded {
            return Err(format!("the archive unpacks to more than {} MiB", MAX_UNPACKED >> 20));
        }
        tree
    } else {
        // Unpacked already, and no larger than MAX_ARCHIVE.
        read_tar(&mut &bytes[..])
    }
}

fn read_tar<R: Read>(reader: &mut R) -> std::result::Result<Tree, String> {
    let not_tar = |e: std::io::Error| format!("not a tar or tar.gz archive of an abra servers directory: {e}");
    let mut archive = tar::Archive::new(reader);
    let mut tree = Tree::default();
    let mut seen = BTreeSet::new();
    let ignore = |tree: &mut Tree, path: &str, why: &str| {
        if tree.ignored.len() < IGNORED_SHOWN {
            tree.ignored.push(format!("{path}: {why}"));
        } else if tree.ignored.len() == IGNORED_SHOWN {
            tree.ignored.push("… and more".into());
        }
    };
    for (n, entry) in archive.entries().map_err(not_tar)?.enumerate() {
        if n >= MAX_ENTRIES {
            return Err(format!("the archive has more than {MAX_ENTRIES} entries"));
        }
        let mut entry = entry.map_err(not_tar)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let Some(parts) = tree_path(&raw) else {
            ignore(&mut tree, &raw, "outside the servers directory");
            continue;
        };
        if parts.iter().any(|p| p.starts_with('.')) {
            // A sync repository's .git, editor files: not abra's.
            continue;
        }
        let [dir, name] = parts.as_slice() else {
            ignore(&mut tree, &raw, "not an app's env file (servers/<server>/<domain>.env)");
            continue;
        };
        if !name.ends_with(".env") || name.len() <= ".env".len() {
            ignore(&mut tree, &raw, "not an env file");
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            ignore(&mut tree, &raw, "a link (links are not followed)");
            continue;
        }
        if !kind.is_file() {
            ignore(&mut tree, &raw, "not a regular file");
            continue;
        }
        if entry.size() > MAX_FILE {
            ignore(&mut tree, &raw, &format!("larger than {} KiB", MAX_FILE >> 10));
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.by_ref().take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(not_tar)?;
        let Ok(text) = String::from_utf8(bytes) else {
            ignore(&mut tree, &raw, "not UTF-8 text");
            continue;
        };
        if !seen.insert((dir.to_string(), name.to_string())) {
            ignore(&mut tree, &raw, "appears twice in the archive (the first is taken)");
            continue;
        }
        tree.files.push(TreeFile { dir: dir.to_string(), name: name.to_string(), text });
    }
    tree.files.sort_by(|a, b| (&a.dir, &a.name).cmp(&(&b.dir, &b.name)));
    Ok(tree)
}

/// The path's components below `servers/` (or from the root), or `None` when it is absolute or
/// climbs out.
fn tree_path(raw: &str) -> Option<Vec<String>> {
    if raw.starts_with('/') || raw.contains('\\') {
        return None;
    }
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") || parts.is_empty() {
        return None;
    }
    let below = match parts.iter().position(|p| *p == "servers") {
        Some(i) => &parts[i + 1..],
        None => &parts[..],
    };
    Some(below.iter().map(|p| p.to_string()).collect())
}

/// A reader that stops after `left` bytes with an error.
struct Limited<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more than allowed tells a bomb from an archive that ends exactly here.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(std::io::Error::other(format!("unpacks to more than {} MiB", MAX_UNPACKED >> 20)));
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The collective's apps as a tar.gz of `servers/<server>/<domain>.env`, sorted, each file the
/// app's env exactly, dated when the app last changed.
pub fn write_archive(apps: &[(String, String, String, i64)]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut dirs = BTreeSet::new();
    let dir = |tar: &mut tar::Builder<_>, path: &str| -> std::io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, path, std::io::empty())
    };
    dir(&mut tar, "servers/")?;
    for (server, domain, env, updated_ms) in apps {
        if dirs.insert(server.clone()) {
            dir(&mut tar, &format!("servers/{server}/"))?;
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(env.len() as u64);
        h.set_mtime((*updated_ms / 1000).max(0) as u64);
        tar.append_data(&mut h, format!("servers/{server}/{domain}.env"), env.as_bytes())?;
    }
    tar.into_inner()?.finish()
}

/// The export of a collective's apps (see [`write_archive`]).
pub async fn export(st: &AppState, access: &Cap<scope::Collective>) -> Result<Vec<u8>> {
    let rows = sqlx::query(
        "SELECT s.name AS server_name, a.domain, a.env, a.updated_at FROM apps a JOIN servers s ON s.id = a.server_id \
         WHERE a.collective_id = $1 ORDER BY s.name, a.domain",
    )
    .bind(access.collective().id)
    .fetch_all(st.db.pool())
    .await?;
    let mut apps = Vec::with_capacity(rows.len());
    for r in rows {
        apps.push((r.try_get("server_name")?, r.try_get("domain")?, r.try_get("env")?, r.try_get("updated_at")?));
    }
    tokio::task::spawn_blocking(move || write_archive(&apps))
        .await
        .map_err(|e| crate::error::Error::internal(e.to_string()))?
        .map_err(|e| crate::error::Error::internal(format!("writing the archive: {e}")))
}

/// Keeps an uploaded tree (checked first: a broken archive is refused here, not on the preview
/// page) for its preview; returns its id. Uploads older than a day, and all but a person's ten
/// newest, go.
pub async fn upload(st: &AppState, access: &Cap<scope::Collective>, archive: &str) -> Result<i64> {
    let bytes = decode(archive)?;
    read(bytes.clone()).await?;
    let user = access.user_id().unwrap_or_default();
    let now = now_ms();
    let pool = st.db.pool();
    sqlx::query("DELETE FROM abra_uploads WHERE created_at < $1").bind(now - UPLOAD_TTL_MS).execute(pool).await?;
    let id: i64 = sqlx::query(
        "INSERT INTO abra_uploads (collective_id, user_id, archive, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(access.collective().id)
    .bind(user)
    .bind(base64::engine::general_purpose::STANDARD.encode(&bytes))
    .bind(now)
    .fetch_one(pool)
    .await?
    .try_get("id")?;
    sqlx::query(
        "DELETE FROM abra_uploads WHERE user_id = $1 AND id NOT IN \
         (SELECT id FROM abra_uploads WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
    )
    .bind(user)
    .bind(UPLOADS_KEPT)
    .execute(pool)
    .await?;
    Ok(id)
}

fn decode(archive: &str) -> Result<Vec<u8>> {
    let archive = archive.trim();
    if archive.is_empty() {
        return Err(ApiError::invalid("archive", "choose a tar.gz of an abra servers directory").into());
    }
    if archive.len() > MAX_ARCHIVE / 3 * 4 + 8 {
        return Err(
            ApiError::invalid("archive", format!("the archive is larger than {} KiB", MAX_ARCHIVE >> 10)).into()
        );
    }
    base64::engine::general_purpose::STANDARD
        .decode(archive)
        .map_err(|e| ApiError::invalid("archive", format!("not base64: {e}")).into())
}

async fn read(bytes: Vec<u8>) -> Result<Tree> {
    tokio::task::spawn_blocking(move || read_archive(&bytes))
        .await
        .map_err(|e| crate::error::Error::internal(e.to_string()))?
        .map_err(|e| ApiError::invalid("archive", e).into())
}

/// Where a tree comes from, and the directories' servers.
pub struct Source {
    pub upload: Option<i64>,
    pub archive: String,
    pub servers: BTreeMap<String, String>,
}

/// A previewed import: what the page shows, and the apps to create with their servers.
struct Plan {
    preview: AbraTreePreview,
    create: Vec<(Imported, ServerRow)>,
}

async fn plan(st: &AppState, access: &Cap<scope::Collective>, source: &Source) -> Result<Plan> {
    let c = access.collective();
    let mut imported = None;
    let bytes = match source.upload {
        Some(id) => {
            // Only the uploader's own, in this collective.
            let row = sqlx::query(
                "SELECT archive, imported_at, imported_apps FROM abra_uploads WHERE id = $1 AND collective_id = $2 AND user_id = $3",
            )
                .bind(id)
                .bind(c.id)
                .bind(access.user_id().unwrap_or_default())
                .fetch_optional(st.db.pool())
                .await?
                .ok_or_else(|| ApiError::not_found("upload (older than a day, or not yours)"))?;
            if let Some(at) = row.try_get::<Option<i64>, _>("imported_at")? {
                imported = Some((at, row.try_get::<Option<i64>, _>("imported_apps")?.unwrap_or(0)));
            }
            decode(&row.try_get::<String, _>("archive")?)?
        }
        None => decode(&source.archive)?,
    };
    let tree = read(bytes).await?;
    let servers = servers::in_collective(st, c.id).await?;
    let by_name: BTreeMap<&str, &ServerRow> = servers.iter().map(|s| (s.name.as_str(), s)).collect();
    for (dir, chosen) in &source.servers {
        if !chosen.is_empty() && !by_name.contains_key(chosen.as_str()) {
            // Another collective's server is as good as absent.
            return Err(ApiError::not_found(format!("server {chosen:?} (for {dir})")).into());
        }
    }
    let mut dirs: BTreeMap<String, AbraTreeDir> = BTreeMap::new();
    for f in &tree.files {
        let d = dirs.entry(f.dir.clone()).or_insert_with(|| AbraTreeDir {
            dir: f.dir.clone(),
            server: match source.servers.get(&f.dir).filter(|s| !s.is_empty()) {
                Some(chosen) => Some(chosen.clone()),
                None => by_name.contains_key(f.dir.as_str()).then(|| f.dir.clone()),
            },
            apps: 0,
        });
        d.apps += 1;
    }
    // What the servers already have (domains and stacks are unique per server).
    let mut taken: BTreeSet<(i64, String)> = BTreeSet::new();
    for r in sqlx::query("SELECT a.server_id, a.domain, a.stack_name FROM apps a JOIN servers s ON s.id = a.server_id WHERE s.collective_id = $1")
        .bind(c.id)
        .fetch_all(st.db.pool())
        .await?
    {
        let server: i64 = r.try_get("server_id")?;
        taken.insert((server, format!("domain {}", r.try_get::<String, _>("domain")?)));
        taken.insert((server, format!("stack {}", r.try_get::<String, _>("stack_name")?)));
    }
    let mut apps = Vec::new();
    let mut create = Vec::new();
    for f in tree.files {
        let path = format!("{}/{}", f.dir, f.name);
        let mut app = AbraTreeApp {
            dir: f.dir.clone(),
            file: f.name.clone(),
            domain: f.name.trim_end_matches(".env").to_string(),
            recipe: String::new(),
            version: None,
            refused: None,
        };
        let server = dirs.get(&f.dir).and_then(|d| d.server.as_deref()).and_then(|n| by_name.get(n).copied());
        let Some(server) = server else {
            app.refused =
                Some(format!("no server chosen for {}: register a server of that name, or choose one", f.dir));
            apps.push(app);
            continue;
        };
        match app_rows::read_import(st, access, &path, f.text).await? {
            Err(why) => app.refused = Some(why),
            Ok(imported) => {
                app.domain = imported.domain.clone();
                app.recipe = imported.recipe.name.clone();
                app.version = imported.version.clone();
                let stack = crate::adapters::engine::stack_name_for(&imported.domain);
                let sid = server.id.0;
                if taken.contains(&(sid, format!("domain {}", imported.domain))) {
                    app.refused = Some(format!("server {} already has an app {}", server.name, imported.domain));
                } else if taken.contains(&(sid, format!("stack {stack}"))) {
                    app.refused = Some(format!("server {} already has a stack {stack}", server.name));
                } else {
                    taken.insert((sid, format!("domain {}", imported.domain)));
                    taken.insert((sid, format!("stack {stack}")));
                    create.push((imported, server.clone()));
                }
            }
        }
        apps.push(app);
    }
    Ok(Plan {
        preview: AbraTreePreview {
            upload: source.upload,
            imported,
            dirs: dirs.into_values().collect(),
            apps,
            ignored: tree.ignored,
            servers: servers.iter().map(|s| s.name.clone()).collect(),
        },
        create,
    })
}

pub async fn preview(st: &AppState, access: &Cap<scope::Collective>, source: Source) -> Result<AbraTreePreview> {
    Ok(plan(st, access, &source).await?.preview)
}

/// Creates every app the preview does not refuse, in one transaction with one `app.import`
/// event per server; the upload it came from is marked imported.
pub async fn import(st: &AppState, access: &Cap<scope::Collective>, source: Source) -> Result<AbraTreeImported> {
    let c = access.collective();
    let Plan { preview, create } = plan(st, access, &source).await?;
    if preview.imported.is_some() {
        return Err(ApiError::conflict("this tree was imported already").into());
    }
    if create.is_empty() {
        return Err(
            ApiError::conflict("nothing to import: every env file of the tree is refused (see the preview)").into()
        );
    }
    // Which stacks already run, asked of each engine before the write transaction.
    let mut running: BTreeMap<i64, BTreeMap<String, super::drift::Live>> = BTreeMap::new();
    for (_, server) in &create {
        if let std::collections::btree_map::Entry::Vacant(slot) = running.entry(server.id.0) {
            slot.insert(app_rows::running_stacks(st, server).await);
        }
    }
    let mut claimed: BTreeMap<(i64, String), BTreeSet<String>> = BTreeMap::new();
    for (app, server) in &create {
        let stack = crate::adapters::engine::stack_name_for(&app.domain);
        if running.get(&server.id.0).is_some_and(|r| r.contains_key(&stack)) {
            claimed.insert((server.id.0, app.domain.clone()), super::drift::claim_for_import(st, server, &stack).await);
        }
    }
    let mut tx = audit::begin(&st.db).await?;
    let mut per_server: BTreeMap<String, (Vec<i64>, Vec<String>)> = BTreeMap::new();
    let mut ids = Vec::new();
    for (app, server) in &create {
        let stacks = running.get(&server.id.0).cloned().unwrap_or_default();
        let taken = claimed.get(&(server.id.0, app.domain.clone())).cloned().unwrap_or_default();
        let id = app_rows::insert_imported(&mut tx, c.id, server, app, &stacks, &taken).await?;
        let e = per_server.entry(server.name.clone()).or_default();
        e.0.push(id.0);
        e.1.push(app.domain.clone());
        ids.push(id);
    }
    for (server, (app_ids, domains)) in per_server {
        let event =
            Event::new(AuditAction::AppImport, format!("{} app(s) on {server} from an abra tree", app_ids.len()))
                .in_collective(c.id, &c.slug)
                .details(json!({ "app_ids": app_ids, "domains": domains, "server": server }));
        tx.record(access.origin(), event).await?;
    }
    if let Some(upload) = source.upload {
        // Once only: a second import of the same upload (a double submit) changes nothing here
        // and fails the transaction.
        let marked = sqlx::query(
            "UPDATE abra_uploads SET imported_at = $1, imported_apps = $2 WHERE id = $3 AND collective_id = $4 AND imported_at IS NULL",
        )
        .bind(now_ms())
        .bind(ids.len() as i64)
        .bind(upload)
        .bind(c.id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            return Err(ApiError::conflict("this tree was imported already").into());
        }
    }
    tx.commit().await?;
    let servers: BTreeSet<_> = create.iter().map(|(_, s)| s.id).collect();
    for s in servers {
        super::live::touch(st, s).await;
    }
    let mut created: Vec<AppSummary> = Vec::new();
    for id in ids {
        if let Some(a) = app_rows::by_id(st, id).await? {
            created.push(a.summary());
        }
    }
    Ok(AbraTreeImported { created, refused: preview.apps.into_iter().filter(|a| a.refused.is_some()).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(if kind.is_file() { data.len() as u64 } else { 0 });
            if kind.is_symlink() {
                h.set_link_name("/etc/passwd").unwrap();
            }
            // set_path refuses `..`; a hostile archive writes the name bytes itself.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, if kind.is_file() { *data } else { &[][..] }).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn export_reads_back_as_the_same_files() {
        let apps = vec![
            (
                "a.example".to_string(),
                "cloud.a.example".to_string(),
                "TYPE=nextcloud:1.0.0\n# kept\n".to_string(),
                5_000,
            ),
            ("a.example".to_string(), "wiki.a.example".to_string(), "TYPE=mediawiki\n".to_string(), 0),
            ("b.example".to_string(), "x.b.example".to_string(), String::new(), 0),
        ];
        let archive = write_archive(&apps).unwrap();
        assert_eq!(archive, write_archive(&apps).unwrap(), "the same apps give the same bytes");
        let tree = read_archive(&archive).unwrap();
        assert!(tree.ignored.is_empty(), "{:?}", tree.ignored);
        let got: Vec<_> = tree.files.iter().map(|f| (f.dir.as_str(), f.name.as_str(), f.text.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("a.example", "cloud.a.example.env", "TYPE=nextcloud:1.0.0\n# kept\n"),
                ("a.example", "wiki.a.example.env", "TYPE=mediawiki\n"),
                ("b.example", "x.b.example.env", ""),
            ]
        );
    }

    #[test]
    fn paths_are_taken_below_servers_or_from_the_root() {
        let regular = tar::EntryType::Regular;
        let archive = tar_of(&[
            (".abra/servers/one/app.one.env", regular, b"TYPE=x\n"),
            ("two/app.two.env", regular, b"TYPE=y\n"),
            ("servers/one/README.md", regular, b"notes"),
            ("servers/.git/config", regular, b"[core]"),
            ("servers/one/deep/app.env", regular, b"TYPE=z\n"),
            ("servers/loose.env", regular, b"TYPE=z\n"),
        ]);
        let tree = read_archive(&gz(&archive)).unwrap();
        let got: Vec<_> = tree.files.iter().map(|f| format!("{}/{}", f.dir, f.name)).collect();
        assert_eq!(got, vec!["one/app.one.env", "two/app.two.env"]);
        assert_eq!(
            tree.ignored,
            vec![
                "servers/one/README.md: not an env file",
                "servers/one/deep/app.env: not an app's env file (servers/<server>/<domain>.env)",
                "servers/loose.env: not an app's env file (servers/<server>/<domain>.env)",
            ]
        );
    }

    #[test]
    fn hostile_entries_are_ignored_with_why() {
        let archive = tar_of(&[
            ("servers/one/evil.env", tar::EntryType::Symlink, b""),
            ("servers/one/hard.env", tar::EntryType::Link, b""),
            ("../../etc/x.env", tar::EntryType::Regular, b"TYPE=x\n"),
            ("/etc/passwd.env", tar::EntryType::Regular, b"TYPE=x\n"),
            ("servers/one/dev.env", tar::EntryType::Char, b""),
            ("servers/one/bin.env", tar::EntryType::Regular, &[0xff, 0xfe, 0x00]),
            ("servers/one/ok.env", tar::EntryType::Regular, b"TYPE=a\n"),
            ("servers/one/ok.env", tar::EntryType::Regular, b"TYPE=b\n"),
        ]);
        let tree = read_archive(&archive).unwrap();
        assert_eq!(tree.files, vec![TreeFile { dir: "one".into(), name: "ok.env".into(), text: "TYPE=a\n".into() }]);
        assert_eq!(
            tree.ignored,
            vec![
                "servers/one/evil.env: a link (links are not followed)",
                "servers/one/hard.env: a link (links are not followed)",
                "../../etc/x.env: outside the servers directory",
                "/etc/passwd.env: outside the servers directory",
                "servers/one/dev.env: not a regular file",
                "servers/one/bin.env: not UTF-8 text",
                "servers/one/ok.env: appears twice in the archive (the first is taken)",
            ]
        );
    }

    #[test]
    fn bombs_and_garbage_get_a_clear_error() {
        // 32 MiB of zeros in one entry packs to a few KiB.
        let big = vec![0u8; 32 << 20];
        let bomb = gz(&tar_of(&[("servers/one/a.env", tar::EntryType::Regular, &big)]));
        assert!(bomb.len() < MAX_ARCHIVE);
        let e = read_archive(&bomb).unwrap_err();
        assert!(e.contains("more than 16 MiB"), "{e}");

        let e = read_archive(&vec![7u8; MAX_ARCHIVE + 1]).unwrap_err();
        assert!(e.contains("larger than 1024 KiB"), "{e}");
        let e =
            read_archive(b"definitely not a tar archive, but long enough to be read as a header block").unwrap_err();
        assert!(e.starts_with("not a tar or tar.gz archive"), "{e}");

        let many: Vec<(String, tar::EntryType, &[u8])> = (0..MAX_ENTRIES + 1)
            .map(|i| (format!("servers/s/{i}.env"), tar::EntryType::Regular, &b"TYPE=x\n"[..]))
            .collect();
        let refs: Vec<(&str, tar::EntryType, &[u8])> = many.iter().map(|(p, k, d)| (p.as_str(), *k, *d)).collect();
        let e = read_archive(&gz(&tar_of(&refs))).unwrap_err();
        assert!(e.contains("more than 5000 entries"), "{e}");
    }

    #[test]
    fn a_large_env_file_is_ignored_not_read() {
        let big = vec![b'#'; (MAX_FILE + 1) as usize];
        let tree = read_archive(&gz(&tar_of(&[("servers/one/big.env", tar::EntryType::Regular, &big)]))).unwrap();
        assert!(tree.files.is_empty());
        assert_eq!(tree.ignored, vec!["servers/one/big.env: larger than 256 KiB"]);
    }
}
