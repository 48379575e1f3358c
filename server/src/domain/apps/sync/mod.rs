//! Operator sync through git: a collective's apps kept in a git remote in abra's own layout,
//! `servers/<server>/<domain>.env` (each file exactly what `export_app` gives), so that abra
//! users and Potluck share one state and one log.
//!
//! A sync compares three sides per file: Potluck's, the remote's, and the base (the blob both
//! last agreed on, `git_sync_base`). Potluck's changes become commits on the remote's head,
//! authored by the person the audit log names, pushed at once; a refused push fetches and tries
//! again, so changes to other files are rebased and never forced. The remote's changes become
//! incoming changes (`git_sync_incoming`) an operator applies or rejects; a file both sides
//! changed is a conflict that keeps both (Potluck's in the app, the remote's in the row and its
//! history). The base of a file with a change waiting does not move, so Potluck never pushes
//! over a change nobody decided on.
//!
//! Syncs run in the background (`spawn_worker`): when the audit log has a change to a
//! collective's apps it has not accounted for, when a webhook or an operator asks, and on
//! schedule; a lease in `git_sync` keeps one replica at a time on a collective.

pub mod remote;

use super::apps::{self as app_rows, AppRow};
use super::servers;
use crate::adapters::crypto;
use crate::adapters::db::now_ms;
use crate::domain::audit::{self, AuditAction, Event, Origin};
use crate::domain::authz::{Cap, CollectiveRef};
use crate::domain::recipes::store::{self, Credential};
use crate::error::{Error, Result};
use crate::state::AppState;
use hmac::{Hmac, Mac};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use remote::{Outgoing, Remote, Sides};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// Rounds of fetch-and-push before a sync gives up on a remote that keeps moving.
const ROUNDS: usize = 3;
/// A sync holds its collective this long at most (a fetch and a push are bounded well below).
const LEASE_MS: i64 = 15 * 60 * 1000;
/// After a failed sync, the next scheduled one waits this long (asking still runs one).
const RETRY_MS: i64 = 60 * 1000;
/// At most one sync of a collective this often, however many changes arrive.
const PACE_MS: i64 = 2000;
/// Collectives synced at once by one replica.
const CONCURRENCY: usize = 4;
/// Decided and superseded changes are kept this long.
const DECIDED_KEPT_MS: i64 = 30 * 24 * 3600 * 1000;
/// Files longer than this are not diffed on a page.
const DIFF_INPUT_LINES: usize = 5_000;
/// Lines of a diff shown at most.
const DIFF_LINES: usize = 400;
/// The largest webhook body read.
pub const MAX_WEBHOOK_BODY: usize = 1 << 20;

/// The actions that change an app's file (its env, version or existence), and the sync's own
/// decisions, whose events a push is attributed to.
const CHANGES: &[AuditAction] = &[
    AuditAction::AppCreate,
    AuditAction::AppEnvUpdate,
    AuditAction::AppImport,
    AuditAction::AppAdopt,
    AuditAction::AppDelete,
    AuditAction::Deploy,
    AuditAction::Upgrade,
    AuditAction::Rollback,
    AuditAction::Redeploy,
    AuditAction::Undeploy,
    AuditAction::Chaos,
    AuditAction::SecretGenerate,
    AuditAction::SecretInsert,
    AuditAction::SecretRotate,
    AuditAction::SyncApply,
    AuditAction::SyncReject,
];

/// Where a file stands between Potluck, the base and the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Both sides hold the same.
    Synced,
    /// Only Potluck changed it: push.
    Outgoing,
    /// Only the remote changed it: an incoming change.
    Incoming,
    /// Both changed it, differently.
    Conflict,
}

/// The three-way decision for one file, from its blob on each side (`None`: absent).
pub fn decide(potluck: Option<&str>, base: Option<&str>, remote: Option<&str>) -> FileState {
    if potluck == remote {
        FileState::Synced
    } else if remote == base {
        FileState::Outgoing
    } else if potluck == base {
        FileState::Incoming
    } else {
        FileState::Conflict
    }
}

/// The file an app is in the tree.
pub fn path_of(server: &str, domain: &str) -> String {
    format!("servers/{server}/{domain}.env")
}

/// `servers/<server>/<domain>.env` → (server, domain); anything else is not an app's file.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("servers/")?;
    let (server, file) = rest.split_once('/')?;
    let domain = file.strip_suffix(".env")?;
    // What Potluck's server names and abra's domains may be: a path of the remote that is
    // neither is not an app's file.
    let server_ok = !server.is_empty()
        && server.len() <= 100
        && !server.starts_with('.')
        && server.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && !domain.starts_with('.')
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
    (server_ok && domain_ok).then_some((server, domain))
}

/// A collective's sync settings and bookkeeping.
struct Settings {
    collective: CollectiveId,
    slug: String,
    url: String,
    branch: String,
    credential_kind: Option<String>,
    credential: Option<Credential>,
    webhook_secret: String,
    auto_apply: bool,
    remote_head: Option<String>,
    audit_seq: i64,
    generation: i64,
    synced_at: Option<i64>,
    last_error: Option<String>,
}

async fn settings(st: &AppState, collective: CollectiveId) -> Result<Option<Settings>> {
    let row = sqlx::query(
        "SELECT g.*, c.slug FROM git_sync g JOIN collectives c ON c.id = g.collective_id WHERE g.collective_id = $1",
    )
    .bind(collective)
    .fetch_optional(st.db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let open = |sealed: Option<Vec<u8>>| sealed.and_then(|s| st.secrets.open(&s).ok());
    Ok(Some(Settings {
        collective,
        slug: r.try_get("slug")?,
        url: r.try_get("url")?,
        branch: r.try_get("branch")?,
        credential_kind: r.try_get("credential_kind")?,
        credential: open(r.try_get("credential_enc")?).as_deref().and_then(Credential::decode),
        webhook_secret: open(r.try_get("webhook_enc")?).unwrap_or_default(),
        auto_apply: r.try_get::<i64, _>("auto_apply")? != 0,
        remote_head: r.try_get("remote_head")?,
        audit_seq: r.try_get("audit_seq")?,
        generation: r.try_get("generation")?,
        synced_at: r.try_get("synced_at")?,
        last_error: r.try_get("last_error")?,
    }))
}

fn clone_dir(st: &AppState, collective: CollectiveId) -> PathBuf {
    st.config.data_dir.join("sync").join(format!("{collective}.git"))
}

/// Potluck's side: each app's file, by path.
async fn potluck_files(st: &AppState, collective: CollectiveId) -> Result<BTreeMap<String, String>> {
    let rows = sqlx::query(
        "SELECT s.name AS server_name, a.domain, a.env FROM apps a JOIN servers s ON s.id = a.server_id \
         WHERE a.collective_id = $1",
    )
    .bind(collective)
    .fetch_all(st.db.pool())
    .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let (server, domain): (String, String) = (r.try_get("server_name")?, r.try_get("domain")?);
        out.insert(path_of(&server, &domain), r.try_get("env")?);
    }
    Ok(out)
}

async fn base_of(st: &AppState, collective: CollectiveId) -> Result<BTreeMap<String, String>> {
    let rows = sqlx::query("SELECT path, blob FROM git_sync_base WHERE collective_id = $1")
        .bind(collective)
        .fetch_all(st.db.pool())
        .await?;
    rows.iter().map(|r| Ok((r.try_get("path")?, r.try_get("blob")?))).collect()
}

/// A change waiting (or decided), as stored.
#[derive(Debug, Clone)]
struct IncomingRow {
    id: IncomingId,
    path: String,
    server: String,
    domain: String,
    kind: String,
    content: Option<String>,
    blob: Option<String>,
    /// Potluck's file when the change was recorded.
    base_blob: Option<String>,
    commit: String,
    author: String,
    summary: String,
    committed_at: i64,
    created_at: i64,
    status: String,
}

impl IncomingRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<IncomingRow> {
        Ok(IncomingRow {
            id: r.try_get("id")?,
            path: r.try_get("path")?,
            server: r.try_get("server")?,
            domain: r.try_get("domain")?,
            kind: r.try_get("kind")?,
            content: r.try_get("content")?,
            blob: r.try_get("blob")?,
            base_blob: r.try_get("base_blob")?,
            commit: r.try_get("commit_id")?,
            author: r.try_get("author")?,
            summary: r.try_get("summary")?,
            committed_at: r.try_get("committed_at")?,
            created_at: r.try_get("created_at")?,
            status: r.try_get("status")?,
        })
    }

    fn view(&self, potluck: Option<&str>) -> IncomingChange {
        IncomingChange {
            id: self.id,
            path: self.path.clone(),
            server: self.server.clone(),
            domain: self.domain.clone(),
            kind: self.kind.clone(),
            commit: self.commit.clone(),
            author: self.author.clone(),
            summary: self.summary.clone(),
            committed_at: self.committed_at,
            arrived_at: self.created_at,
            diff: diff(potluck.unwrap_or(""), self.content.as_deref().unwrap_or("")),
        }
    }
}

async fn pending(st: &AppState, collective: CollectiveId, path: Option<&str>) -> Result<Vec<IncomingRow>> {
    let rows = sqlx::query(
        "SELECT * FROM git_sync_incoming WHERE collective_id = $1 AND status = 'pending' \
         AND ($2 = '' OR path = $2) ORDER BY id",
    )
    .bind(collective)
    .bind(path.unwrap_or(""))
    .fetch_all(st.db.pool())
    .await?;
    rows.iter().map(IncomingRow::from_row).collect()
}

/// Potluck's file → the remote's, line by line, with three lines of context around changes.
pub fn diff(potluck: &str, remote: &str) -> Vec<DiffLine> {
    if potluck.lines().count() > DIFF_INPUT_LINES || remote.lines().count() > DIFF_INPUT_LINES {
        return vec![DiffLine {
            tag: "…".into(),
            text: format!("(a file of more than {DIFF_INPUT_LINES} lines: compare it in git)"),
        }];
    }
    // Bounded in time too: past the deadline the diff is approximate, never slow.
    let d = similar::TextDiff::configure().timeout(Duration::from_millis(100)).diff_lines(potluck, remote);
    let mut out = Vec::new();
    for (i, group) in d.grouped_ops(3).iter().enumerate() {
        if i > 0 {
            out.push(DiffLine { tag: "…".into(), text: String::new() });
        }
        for op in group {
            for change in d.iter_changes(op) {
                let tag = match change.tag() {
                    similar::ChangeTag::Equal => " ",
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                };
                out.push(DiffLine { tag: tag.into(), text: change.value().trim_end_matches('\n').to_string() });
                if out.len() >= DIFF_LINES {
                    out.push(DiffLine { tag: "…".into(), text: "(the rest is not shown)".into() });
                    return out;
                }
            }
        }
    }
    out
}

/// The changes waiting for an app's file, for its page.
pub async fn incoming_for_app(st: &AppState, app: &AppRow) -> Result<Vec<IncomingChange>> {
    let path = path_of(&app.server, &app.domain);
    Ok(pending(st, app.collective_id, Some(&path)).await?.iter().map(|r| r.view(Some(&app.env))).collect())
}

/// The collective's sync page.
pub async fn view(st: &AppState, access: &Cap<scope::Collective>) -> Result<SyncView> {
    let c = access.collective();
    let role = access.role().unwrap_or(Role::Viewer);
    let mut v = SyncView {
        webhook_url: format!("{}/hooks/git/{}", st.config.public_base(), c.slug),
        can_configure: role.grants(Permission::ManageServers),
        can_apply: role.grants(Permission::ManageApps),
        ..SyncView::default()
    };
    let Some(s) = settings(st, c.id).await? else { return Ok(v) };
    v.configured = true;
    v.url = s.url.clone();
    v.branch = s.branch.clone();
    v.credential_kind = s.credential_kind.clone();
    v.auto_apply = s.auto_apply;
    v.remote_head = s.remote_head.clone();
    v.synced_at = s.synced_at;
    v.last_error = s.last_error.clone();
    let potluck = potluck_files(st, c.id).await?;
    let base = base_of(st, c.id).await?;
    let waiting = pending(st, c.id, None).await?;
    let mut paths: BTreeSet<&String> = potluck.keys().chain(base.keys()).collect();
    paths.extend(waiting.iter().map(|r| &r.path));
    for path in paths {
        let (server, domain) = split_path(path).unwrap_or(("", path));
        let p = potluck.get(path).map(|t| remote::blob_id(t));
        let state = match waiting.iter().find(|r| &r.path == path) {
            Some(r) if r.kind == "conflict" => "conflict",
            Some(_) => "incoming",
            None if p.as_ref() == base.get(path) => "synced",
            None if !base.contains_key(path) => "unsynced",
            None => "outgoing",
        };
        v.files.push(SyncFile {
            path: path.clone(),
            server: server.to_string(),
            domain: domain.to_string(),
            state: state.into(),
        });
    }
    v.incoming = waiting.iter().map(|r| r.view(potluck.get(&r.path).map(String::as_str))).collect();
    if !role.grants(Permission::ViewAudit) {
        return Ok(v);
    }
    let rows = sqlx::query(
        "SELECT at, action, actor_name, target FROM audit_events WHERE collective_id = $1 AND action LIKE 'sync.%' \
         ORDER BY seq DESC LIMIT 20",
    )
    .bind(c.id)
    .fetch_all(st.db.pool())
    .await?;
    for r in rows {
        v.activity.push(SyncActivity {
            at: r.try_get("at")?,
            action: r.try_get("action")?,
            actor: r.try_get("actor_name")?,
            what: r.try_get("target")?,
        });
    }
    Ok(v)
}

/// Refuses what cannot be a remote for a collective's apps (see [`store::check_source`]), and
/// passwords in the URL (they belong in the sealed credential).
fn check_url(url: &str, federation_admin: bool, data_dir: &std::path::Path) -> std::result::Result<(), ApiError> {
    store::check_source(url, federation_admin, data_dir).map_err(|e| match e {
        ApiError::Validation { fields } => {
            ApiError::invalid("url", fields.into_iter().map(|f| f.message).collect::<Vec<_>>().join("; "))
        }
        other => other,
    })?;
    if url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
        return Err(ApiError::invalid("url", "put the token in the credential, not in the URL"));
    }
    Ok(())
}

/// `set_sync`: checks the URL, reaches the remote with the credential, then keeps the settings
/// (the credential sealed). A new remote or branch starts over: nothing is taken as agreed.
pub async fn configure(
    st: &AppState,
    access: &Cap<scope::Collective>,
    input: potluck_app::api::SetSync,
) -> Result<SyncConfigured> {
    let c = access.collective();
    let url = input.url.trim().to_string();
    check_url(&url, access.is_federation_admin(), &st.config.data_dir)?;
    let branch = match input.branch.trim() {
        "" => "main".to_string(),
        b => b.to_string(),
    };
    if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) || branch.starts_with('-') {
        return Err(ApiError::invalid("branch", format!("{branch:?} is not a branch name")).into());
    }
    let existing = settings(st, c.id).await?;
    let credential = match input.credential_kind.trim() {
        // The kept credential goes only to the remote it was given for.
        "" if existing.as_ref().is_some_and(|s| s.credential.is_some() && s.url != url) => {
            return Err(ApiError::invalid("credential_kind", "give the credential again for another remote").into())
        }
        "" => existing.as_ref().and_then(|s| s.credential.clone()),
        kind => Credential::new(kind, &input.credential_username, &input.credential_secret)?,
    };
    let probe = Remote { url: url.clone(), branch: branch.clone(), credential: credential.clone() };
    let scratch = st.config.data_dir.join("sync");
    tokio::task::spawn_blocking(move || remote::probe(&probe, &scratch))
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map_err(|why| ApiError::invalid("url", why))?;
    let fresh_secret = existing.is_none().then(|| crypto::random_token("plk_hook_"));
    let webhook = match (&fresh_secret, &existing) {
        (Some(secret), _) => st.secrets.seal(secret),
        (None, Some(s)) => st.secrets.seal(&s.webhook_secret),
        (None, None) => unreachable!("a secret is made when there are no settings"),
    };
    let starts_over = existing.as_ref().is_none_or(|s| s.url != url || s.branch != branch);
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let newest: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM audit_events")
        .fetch_one(&mut *tx)
        .await?
        .try_get("seq")?;
    sqlx::query(
        "INSERT INTO git_sync (collective_id, url, branch, credential_kind, credential_enc, webhook_enc, auto_apply, \
         audit_seq, wanted_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9) \
         ON CONFLICT (collective_id) DO UPDATE SET url = $2, branch = $3, credential_kind = $4, credential_enc = $5, \
         webhook_enc = $6, auto_apply = $7, wanted_at = $9, updated_at = $9, last_error = NULL",
    )
    .bind(c.id)
    .bind(&url)
    .bind(&branch)
    .bind(credential.as_ref().map(Credential::kind))
    .bind(credential.as_ref().map(|k| st.secrets.seal(&k.encode())))
    .bind(webhook)
    .bind(input.auto_apply as i64)
    .bind(newest)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if starts_over {
        sqlx::query("DELETE FROM git_sync_base WHERE collective_id = $1").bind(c.id).execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE git_sync_incoming SET status = 'superseded' WHERE collective_id = $1 AND status = 'pending'",
        )
        .bind(c.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE git_sync SET remote_head = NULL, audit_seq = $1, generation = generation + 1 WHERE collective_id = $2",
        )
            .bind(newest)
            .bind(c.id)
            .execute(&mut *tx)
            .await?;
    }
    let event = Event::new(AuditAction::SyncConfigure, format!("git sync to {url}"))
        .in_collective(c.id, &c.slug)
        .details(json!({
            "url": url, "branch": branch, "credential": credential.as_ref().map(Credential::kind),
            "auto_apply": input.auto_apply, "started_over": starts_over,
        }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    // The clone stays: a sync may be using it, and each fetch names its remote anew.
    st.sync.notify_one();
    Ok(SyncConfigured { sync: view(st, access).await?, webhook_secret: fresh_secret.map(OneTimeSecret) })
}

/// `remove_sync`: forgets the remote, its credential, the base and the changes waiting.
pub async fn remove(st: &AppState, access: &Cap<scope::Collective>) -> Result<()> {
    let c = access.collective();
    let Some(s) = settings(st, c.id).await? else {
        return Err(ApiError::not_found("the collective's git sync").into());
    };
    let mut tx = audit::begin(&st.db).await?;
    for table in ["git_sync_incoming", "git_sync_base", "git_sync"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE collective_id = $1")).bind(c.id).execute(&mut *tx).await?;
    }
    tx.record(
        access.origin(),
        Event::new(AuditAction::SyncRemove, format!("git sync to {}", s.url)).in_collective(c.id, &c.slug),
    )
    .await?;
    tx.commit().await?;
    let _ = std::fs::remove_dir_all(clone_dir(st, c.id));
    Ok(())
}

/// `sync_now`: one sync, by the caller, waiting for another replica's to end first.
pub async fn sync_now(st: &std::sync::Arc<AppState>, access: &Cap<scope::Collective>) -> Result<SyncView> {
    let c = access.collective();
    if settings(st, c.id).await?.is_none() {
        return Err(ApiError::conflict("the collective has no git remote to sync with: set one up first").into());
    }
    let mut ran = false;
    for _ in 0..120 {
        if run_to_end(st, c.id, access.origin().clone()).await? {
            ran = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if !ran {
        return Err(ApiError::conflict("another sync of the collective is running; try again in a moment").into());
    }
    view(st, access).await
}

/// An audit event a push is attributed to.
#[derive(Debug, Clone)]
struct Change {
    seq: i64,
    at: i64,
    action: String,
    actor_id: Option<i64>,
    actor: String,
    target: String,
    /// The domains an import names (its target names the server).
    domains: Vec<String>,
}

impl Change {
    fn touches(&self, domain: &str) -> bool {
        self.target == format!("app {domain}") || self.domains.iter().any(|d| d == domain)
    }
}

/// The changes to the collective's apps after `seq`, and the newest event of the collective
/// they were read up to (what the sync then accounts for, relevant or not).
/// `CHANGES` as an SQL list (`'app.create', …`): fixed names, never input.
fn change_actions() -> String {
    CHANGES.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
}

async fn changes_since(st: &AppState, collective: CollectiveId, seq: i64) -> Result<(Vec<Change>, i64)> {
    let newest: i64 =
        sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM audit_events WHERE collective_id = $1 AND seq > $2")
            .bind(collective)
            .bind(seq)
            .fetch_one(st.db.pool())
            .await?
            .try_get("seq")?;
    let newest = newest.max(seq);
    let rows = sqlx::query(&format!(
        "SELECT seq, at, action, actor_id, actor_name, target, details FROM audit_events \
         WHERE collective_id = $1 AND seq > $2 AND seq <= $3 AND action IN ({}) ORDER BY seq",
        change_actions()
    ))
    .bind(collective)
    .bind(seq)
    .bind(newest)
    .fetch_all(st.db.pool())
    .await?;
    let changes = rows
        .iter()
        .map(|r| {
            Ok(Change {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                action: r.try_get("action")?,
                actor_id: r.try_get("actor_id")?,
                actor: r.try_get("actor_name")?,
                target: r.try_get("target")?,
                domains: serde_json::from_str::<serde_json::Value>(&r.try_get::<String, _>("details")?)
                    .ok()
                    .and_then(|d| serde_json::from_value(d["domains"].clone()).ok())
                    .unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((changes, newest))
}

/// Whether the audit log has a change to the collective's apps after `seq` (its index on
/// (collective, seq) reads only what came since the last sync).
async fn changed_since(st: &AppState, collective: CollectiveId, seq: i64) -> Result<bool> {
    Ok(sqlx::query(&format!(
        "SELECT seq FROM audit_events WHERE collective_id = $1 AND seq > $2 AND action IN ({}) LIMIT 1",
        change_actions()
    ))
    .bind(collective)
    .bind(seq)
    .fetch_optional(st.db.pool())
    .await?
    .is_some())
}

/// Potluck's outgoing files as commits: one per app, authored by the person whose audit event
/// last changed it, naming every event since the last sync; files no event explains (the first
/// sync) in one commit by Potluck.
fn commits_for(
    states: &BTreeMap<String, FileState>,
    potluck: &BTreeMap<String, String>,
    changes: &[Change],
    host: &str,
) -> Vec<Outgoing> {
    let mut by_app: Vec<(i64, Outgoing)> = Vec::new();
    let mut unexplained = Vec::new();
    for (path, state) in states {
        if *state != FileState::Outgoing {
            continue;
        }
        let file = (path.clone(), potluck.get(path).cloned());
        let Some((server, domain)) = split_path(path) else { continue };
        let mine: Vec<&Change> = changes.iter().filter(|c| c.touches(domain)).collect();
        let Some(last) = mine.last() else {
            unexplained.push(file);
            continue;
        };
        let actions: BTreeSet<&str> = mine.iter().map(|c| c.action.as_str()).collect();
        let actions: Vec<&str> = actions.into_iter().collect();
        let mut message =
            format!("{} {domain} on {server} (Potluck audit event #{})\n\n", actions.join(", "), last.seq);
        for c in &mine {
            message.push_str(&format!("Potluck audit event #{}: {} by {}\n", c.seq, c.action, c.actor));
        }
        message.push_str(&format!("\nPotluck-Audit-Event: {}\nPotluck-Action: {}\n", last.seq, last.action));
        // Not the person's own address: the remote may be public, and their identity
        // provider's address is theirs to give.
        let email = match last.actor_id {
            Some(id) => format!("user-{id}@{host}"),
            None => format!("potluck@{host}"),
        };
        by_app
            .push((last.seq, Outgoing { files: vec![file], author: last.actor.clone(), email, at: last.at, message }));
    }
    by_app.sort_by_key(|(seq, _)| *seq);
    let mut out: Vec<Outgoing> = by_app.into_iter().map(|(_, o)| o).collect();
    if !unexplained.is_empty() {
        out.push(Outgoing {
            message: format!(
                "The collective's apps as Potluck has them ({} file{})\n",
                unexplained.len(),
                if unexplained.len() == 1 { "" } else { "s" }
            ),
            files: unexplained,
            author: "Potluck".into(),
            email: format!("potluck@{host}"),
            at: now_ms(),
        });
    }
    out
}

/// [`run`] as a task of its own: a caller that goes away (a closed page) or a panic does not
/// leave the collective held until its lease runs out.
async fn run_to_end(st: &std::sync::Arc<AppState>, collective: CollectiveId, origin: Origin) -> Result<bool> {
    let st = st.clone();
    tokio::spawn(async move { run(&st, collective, &origin).await })
        .await
        .map_err(|e| Error::internal(format!("the sync stopped: {e}")))?
}

/// One sync of a collective: claims it (`Ok(false)` when another replica holds it), runs up to
/// [`ROUNDS`] rounds with the remote, and records what came of it. A failure is kept in
/// `last_error` (and logged) for the page; it is not an error of the caller's.
pub async fn run(st: &AppState, collective: CollectiveId, origin: &Origin) -> Result<bool> {
    let now = now_ms();
    // A token of this run's own: not even another run of this replica takes the collective.
    let token = format!("{}:{}", st.replica, uuid::Uuid::new_v4().simple());
    let claimed = sqlx::query(
        "UPDATE git_sync SET holder = $1, lease_until = $2, started_at = $3 \
         WHERE collective_id = $4 AND (holder IS NULL OR lease_until < $3)",
    )
    .bind(&token)
    .bind(now + LEASE_MS)
    .bind(now)
    .bind(collective)
    .execute(st.db.pool())
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return Ok(false);
    }
    let outcome = rounds(st, collective, origin, &token).await;
    let error = match &outcome {
        Ok(None) => None,
        Ok(Some(why)) => Some(why.clone()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = &error {
        tracing::warn!(collective = collective.0, error = %why, "git sync failed");
    }
    sqlx::query(
        "UPDATE git_sync SET holder = NULL, lease_until = NULL, last_error = $1 WHERE collective_id = $2 AND holder = $3",
    )
    .bind(&error)
    .bind(collective)
    .bind(&token)
    .execute(st.db.pool())
    .await?;
    outcome.map(|_| true)
}

/// The rounds of a sync; `Ok(Some(why))` when the remote could not be synced with.
async fn rounds(st: &AppState, collective: CollectiveId, origin: &Origin, token: &str) -> Result<Option<String>> {
    for round_no in 1..=ROUNDS {
        // Each round renews the lease (a round is bounded well below it).
        sqlx::query("UPDATE git_sync SET lease_until = $1 WHERE collective_id = $2 AND holder = $3")
            .bind(now_ms() + LEASE_MS)
            .bind(collective)
            .bind(token)
            .execute(st.db.pool())
            .await?;
        let Some(s) = settings(st, collective).await? else { return Ok(None) };
        // The events first: a change that lands after them is pushed by the next sync.
        let (changes, accounted) = changes_since(st, collective, s.audit_seq).await?;
        let potluck = potluck_files(st, collective).await?;
        let base = base_of(st, collective).await?;
        let waiting = pending(st, collective, None).await?;
        let sides = Sides {
            potluck: potluck.iter().map(|(p, t)| (p.clone(), remote::blob_id(t))).collect(),
            base,
            known: waiting.iter().map(|r| (r.path.clone(), r.blob.clone().unwrap_or_default())).collect(),
        };
        let host = url::Url::parse(&st.config.public_base())
            .ok()
            .and_then(|u| u.host_str().map(String::from))
            .unwrap_or_else(|| "potluck.invalid".into());
        let dir = clone_dir(st, collective);
        let target = Remote { url: s.url.clone(), branch: s.branch.clone(), credential: s.credential.clone() };
        let since = s.remote_head.clone();
        let texts = potluck.clone();
        let round = tokio::task::spawn_blocking(move || {
            let committer = format!("potluck@{host}");
            remote::round(
                &dir,
                &target,
                since.as_deref(),
                &sides,
                |states| commits_for(states, &texts, &changes, &host),
                &committer,
            )
            .map(|r| (r, sides))
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        let (round, sides) = match round {
            Ok(r) => r,
            Err(why) => return Ok(Some(why)),
        };
        if let Some(why) = &round.refused {
            if round_no == ROUNDS {
                return Ok(Some(format!("the remote refused the push {ROUNDS} times: {why}")));
            }
            tracing::info!(collective = collective.0, why = %why, "git sync: the push was refused; fetching again");
            continue;
        }
        let Some(fresh) = record(st, &s, token, origin, &round, &sides, &potluck, &waiting, accounted).await? else {
            // The remote changed or sync stopped meanwhile: this round's findings are not theirs.
            return Ok(None);
        };
        if s.auto_apply {
            let system = Origin::system("git sync (auto-apply)");
            let c = CollectiveRef { id: collective, slug: s.slug.clone(), name: String::new() };
            for row in fresh.iter().filter(|r| r.kind == "change") {
                if let Err(e) = apply_row(st, &c, &system, row.id, None, origin).await {
                    tracing::warn!(collective = collective.0, path = %row.path, error = %e, "cannot apply a change automatically");
                }
            }
        }
        return Ok(None);
    }
    Ok(None)
}

/// Writes what a round found: the base of each file both sides now agree on (or Potluck
/// pushed), the incoming changes (a new row when the remote's blob or the kind changed; rows
/// whose file agrees again are superseded), and the bookkeeping; with an audit event for
/// commits pushed and changes that arrived. Returns the rows it added.
#[allow(clippy::too_many_arguments)]
async fn record(
    st: &AppState,
    s: &Settings,
    token: &str,
    origin: &Origin,
    round: &remote::Round,
    sides: &Sides,
    potluck: &BTreeMap<String, String>,
    waiting: &[IncomingRow],
    accounted: i64,
) -> Result<Option<Vec<IncomingRow>>> {
    let now = now_ms();
    let pushed: BTreeSet<&String> = round.pushed.iter().flat_map(|(_, paths)| paths).collect();
    let mut agreed: Vec<(&String, Option<&String>)> = Vec::new();
    let mut arriving: Vec<IncomingRow> = Vec::new();
    let mut keep: BTreeSet<IncomingId> = BTreeSet::new();
    for (path, state) in &round.states {
        match state {
            FileState::Synced => agreed.push((path, sides.potluck.get(path))),
            FileState::Outgoing if pushed.contains(path) => agreed.push((path, sides.potluck.get(path))),
            FileState::Outgoing => {}
            FileState::Incoming | FileState::Conflict => {
                let remote = round.remote.get(path);
                let kind = match (state, potluck.contains_key(path), remote) {
                    (FileState::Conflict, _, _) => "conflict",
                    (_, false, _) => "new",
                    (_, _, None) => "removed",
                    _ => "change",
                };
                let blob = remote.map(|f| f.blob.clone());
                let base_blob = sides.potluck.get(path).cloned();
                if let Some(w) = waiting
                    .iter()
                    .find(|w| &w.path == path && w.blob == blob && w.kind == kind && w.base_blob == base_blob)
                {
                    keep.insert(w.id);
                    continue;
                }
                let before = waiting.iter().find(|w| &w.path == path);
                let o = round.origins.get(path).cloned().unwrap_or_else(|| remote::Origin {
                    commit: before.map(|w| w.commit.clone()).unwrap_or_default(),
                    author: before.map(|w| w.author.clone()).unwrap_or_default(),
                    summary: before.map(|w| w.summary.clone()).unwrap_or_default(),
                    at: before.map_or(0, |w| w.committed_at / 1000),
                });
                let (server, domain) = split_path(path).unwrap_or(("", path));
                arriving.push(IncomingRow {
                    id: IncomingId(0),
                    path: path.clone(),
                    server: server.into(),
                    domain: domain.into(),
                    kind: kind.into(),
                    content: remote.map(|f| f.text.clone()),
                    blob,
                    base_blob,
                    commit: o.commit,
                    author: o.author,
                    summary: o.summary,
                    committed_at: o.at.saturating_mul(1000),
                    created_at: now,
                    status: "pending".into(),
                });
            }
        }
    }
    let superseded: Vec<IncomingId> = waiting.iter().map(|w| w.id).filter(|id| !keep.contains(id)).collect();
    let events = {
        let mut e = Vec::new();
        if !round.pushed.is_empty() {
            let commits: Vec<_> =
                round.pushed.iter().map(|(commit, paths)| json!({ "commit": commit, "files": paths })).collect();
            e.push(
                Event::new(AuditAction::SyncPush, format!("{} commit(s) to {}", round.pushed.len(), s.url))
                    .in_collective(s.collective, &s.slug)
                    .details(json!({ "branch": s.branch, "commits": commits })),
            );
        }
        if !arriving.is_empty() {
            let changes: Vec<_> = arriving
                .iter()
                .map(|r| json!({ "file": r.path, "kind": r.kind, "commit": r.commit, "author": r.author }))
                .collect();
            e.push(
                Event::new(AuditAction::SyncIncoming, format!("{} change(s) from {}", arriving.len(), s.url))
                    .in_collective(s.collective, &s.slug)
                    .details(json!({ "changes": changes })),
            );
        }
        e
    };
    let write = async |conn: &mut sqlx::AnyConnection| -> Result<Option<Vec<IncomingRow>>> {
        // First, and fenced: only the run holding the collective, on the settings it read.
        let current = sqlx::query(
            "UPDATE git_sync SET remote_head = $1, audit_seq = $2, synced_at = $3, updated_at = $3 \
             WHERE collective_id = $4 AND holder = $5 AND generation = $6",
        )
        .bind(&round.head)
        .bind(accounted)
        .bind(now)
        .bind(s.collective)
        .bind(token)
        .bind(s.generation)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if !current {
            return Ok(None);
        }
        for (path, blob) in &agreed {
            set_base(&mut *conn, s.collective, path, blob.map(String::as_str)).await?;
        }
        // Decided changes are kept a month (the audit log keeps who decided what for good).
        sqlx::query(
            "DELETE FROM git_sync_incoming WHERE collective_id = $1 AND status <> 'pending' AND created_at < $2",
        )
        .bind(s.collective)
        .bind(now - DECIDED_KEPT_MS)
        .execute(&mut *conn)
        .await?;
        for id in &superseded {
            sqlx::query(
                "UPDATE git_sync_incoming SET status = 'superseded', decided_at = $1 WHERE id = $2 AND status = 'pending'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        let mut added = Vec::new();
        for r in &arriving {
            let id: IncomingId = sqlx::query(
                "INSERT INTO git_sync_incoming (collective_id, path, server, domain, kind, content, blob, base_blob, \
                 commit_id, author, summary, committed_at, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13) RETURNING id",
            )
            .bind(s.collective)
            .bind(&r.path)
            .bind(&r.server)
            .bind(&r.domain)
            .bind(&r.kind)
            .bind(&r.content)
            .bind(&r.blob)
            .bind(&r.base_blob)
            .bind(&r.commit)
            .bind(&r.author)
            .bind(&r.summary)
            .bind(r.committed_at)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
            .try_get("id")?;
            added.push(IncomingRow { id, ..r.clone() });
        }
        Ok(Some(added))
    };
    if events.is_empty() {
        let mut tx = st.db.begin().await?;
        let added = write(&mut tx).await?;
        if added.is_some() {
            tx.commit().await?;
        }
        Ok(added)
    } else {
        let mut tx = audit::begin(&st.db).await?;
        let added = write(&mut tx).await?;
        if added.is_some() {
            tx.record_all(origin, events).await?;
            tx.commit().await?;
        }
        Ok(added)
    }
}

async fn incoming_row(st: &AppState, c: &CollectiveRef, id: IncomingId) -> Result<IncomingRow> {
    let row = sqlx::query("SELECT * FROM git_sync_incoming WHERE id = $1 AND collective_id = $2")
        .bind(id)
        .bind(c.id)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("incoming change {id}")))?;
    let row = IncomingRow::from_row(&row)?;
    if row.status != "pending" {
        return Err(ApiError::conflict(format!("the change to {} was already {}", row.path, row.status)).into());
    }
    Ok(row)
}

/// Marks a change decided, in the deciding transaction; refuses one another request decided first.
async fn decide_row(conn: &mut sqlx::AnyConnection, row: &IncomingRow, status: &str, by: &str) -> Result<()> {
    let done = sqlx::query(
        "UPDATE git_sync_incoming SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'pending'",
    )
    .bind(status)
    .bind(by)
    .bind(now_ms())
    .bind(row.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if done != 1 {
        return Err(ApiError::conflict(format!("the change to {} was decided meanwhile", row.path)).into());
    }
    Ok(())
}

/// `apply_incoming`.
pub async fn apply(st: &AppState, access: &Cap<scope::Collective>, id: IncomingId) -> Result<()> {
    apply_row(st, access.collective(), access.origin(), id, Some(access), access.origin()).await
}

/// `apply_all_incoming`: every change waiting, oldest first, each in its own transaction.
pub async fn apply_all(st: &AppState, access: &Cap<scope::Collective>) -> Result<AppliedChanges> {
    let c = access.collective();
    let mut done = AppliedChanges { applied: Vec::new(), refused: Vec::new() };
    let mut rows = pending(st, c.id, None).await?;
    // Removals first (an app moved to another server's directory is removed, then imported).
    rows.sort_by_key(|r| (r.kind != "removed", r.id));
    for row in rows {
        if row.kind == "conflict" {
            let reason = "changed in Potluck too: decide it on its own".to_string();
            done.refused.push(RefusedChange { path: row.path, reason });
            continue;
        }
        match apply_row(st, c, access.origin(), row.id, Some(access), access.origin()).await {
            Ok(()) => done.applied.push(row.path),
            Err(e) => done.refused.push(RefusedChange { path: row.path, reason: e.to_string() }),
        }
    }
    Ok(done)
}

/// Takes the remote's file: the app's env becomes it, a file Potluck has no app for is imported
/// (as `import_app` does; only by an operator, `access`), a removed file deletes the app (which
/// must be undeployed). `by` names who decided (the operator, or the sync that auto-applied).
async fn apply_row(
    st: &AppState,
    c: &CollectiveRef,
    origin: &Origin,
    id: IncomingId,
    access: Option<&Cap<scope::Collective>>,
    by: &Origin,
) -> Result<()> {
    let row = incoming_row(st, c, id).await?;
    let app = match app_rows::in_collective(st, c, &row.domain).await {
        Ok(app) => Some(app),
        Err(Error::Api(ApiError::NotFound { .. })) => None,
        Err(e) => return Err(e),
    };
    if let Some(app) = app.as_ref().filter(|a| a.server != row.server) {
        return Err(ApiError::conflict(format!(
            "{} is on server {} in Potluck, not {}: move the file at the remote, or reject the change",
            app.domain, app.server, row.server
        ))
        .into());
    }
    // The change replaces the file Potluck had when it was recorded, and no later edit: that
    // would be lost. The next sync shows the two as a conflict instead.
    let current = app.as_ref().map(|a| remote::blob_id(&a.env));
    if current != row.base_blob {
        return Err(moved(st, &row));
    }
    let event = |details: serde_json::Value| {
        Event::new(AuditAction::SyncApply, format!("app {}", row.domain)).in_collective(c.id, &c.slug).details(json!({
            "file": row.path, "kind": row.kind, "commit": row.commit, "author": row.author,
            "decided_by": by.actor.name, "change": details,
        }))
    };
    match (row.content.as_deref(), app) {
        (Some(text), Some(app)) => {
            let changed = app_rows::check_env(&app, text)?;
            let mut tx = audit::begin(&st.db).await?;
            // Only over the env compared above: an edit that lands meanwhile is kept.
            let written = sqlx::query("UPDATE apps SET env = $1, updated_at = $2 WHERE id = $3 AND env = $4")
                .bind(text)
                .bind(now_ms())
                .bind(app.id)
                .bind(&app.env)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if written != 1 {
                return Err(moved(st, &row));
            }
            decide_row(&mut tx, &row, "applied", &by.actor.name).await?;
            tx.record(origin, event(json!({ "changed_keys": changed }))).await?;
            tx.commit().await?;
            super::live::touch(st, app.server_id).await;
        }
        (Some(text), None) => {
            let Some(access) = access else {
                return Err(ApiError::conflict("a new app is applied by an operator, never automatically").into());
            };
            let server = servers::by_name(st, c, &row.server).await.map_err(|_| {
                ApiError::conflict(format!(
                    "the collective has no server named {:?} for {}: add it, or reject the change",
                    row.server, row.path
                ))
            })?;
            let file = format!("{}.env", row.domain);
            let imported = app_rows::read_import(st, access, &file, text.to_string())
                .await?
                .map_err(|why| ApiError::invalid("files", format!("{}: {why}", row.path)))?;
            if imported.domain != row.domain {
                // abra names an app's file by its domain; another name would be another file.
                return Err(ApiError::invalid(
                    "files",
                    format!(
                        "{}: its DOMAIN is {}, but abra would name it {}.env",
                        row.path, imported.domain, imported.domain
                    ),
                )
                .into());
            }
            let (running, claimed) = app_rows::engine_before_import(st, &server, &imported.domain).await;
            let mut tx = audit::begin(&st.db).await?;
            let app_id = app_rows::insert_imported(&mut tx, c.id, &server, &imported, &running, &claimed).await?;
            decide_row(&mut tx, &row, "applied", &by.actor.name).await?;
            tx.record(origin, event(json!({ "created": app_id, "recipe": imported.recipe.name }))).await?;
            tx.commit().await?;
            super::live::touch(st, server.id).await;
        }
        (None, Some(app)) => {
            if app.status == AppStatus::Deployed {
                return Err(ApiError::conflict(format!(
                    "{} is deployed: undeploy it before applying its removal",
                    app.domain
                ))
                .into());
            }
            let mut tx = audit::begin(&st.db).await?;
            let removed = sqlx::query(
                "DELETE FROM apps WHERE id = $1 AND collective_id = $2 AND env = $3 AND status <> 'deployed'",
            )
            .bind(app.id)
            .bind(c.id)
            .bind(&app.env)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed != 1 {
                return Err(moved(st, &row));
            }
            decide_row(&mut tx, &row, "applied", &by.actor.name).await?;
            tx.record(origin, event(json!({ "deleted": app.id }))).await?;
            tx.commit().await?;
            super::live::touch(st, app.server_id).await;
        }
        (None, None) => {
            let mut tx = audit::begin(&st.db).await?;
            decide_row(&mut tx, &row, "applied", &by.actor.name).await?;
            tx.record(origin, event(json!({}))).await?;
            tx.commit().await?;
        }
    }
    st.sync.notify_one();
    Ok(())
}

/// The refusal of a change whose file moved in Potluck since it arrived (the next sync, asked
/// for here, shows both sides as a conflict).
fn moved(st: &AppState, row: &IncomingRow) -> Error {
    st.sync.notify_one();
    ApiError::conflict(format!(
        "{} changed in Potluck since this change arrived: the next sync shows both sides",
        row.path
    ))
    .into()
}

/// What both sides last agreed a file holds: a blob, or nothing (the file is gone on both).
async fn set_base(
    conn: &mut sqlx::AnyConnection,
    collective: CollectiveId,
    path: &str,
    blob: Option<&str>,
) -> Result<(), sqlx::Error> {
    let query = match blob {
        Some(blob) => sqlx::query(
            "INSERT INTO git_sync_base (collective_id, path, blob) VALUES ($1, $2, $3) \
             ON CONFLICT (collective_id, path) DO UPDATE SET blob = $3",
        )
        .bind(collective)
        .bind(path)
        .bind(blob),
        None => {
            sqlx::query("DELETE FROM git_sync_base WHERE collective_id = $1 AND path = $2").bind(collective).bind(path)
        }
    };
    query.execute(conn).await.map(|_| ())
}

/// `reject_incoming`: keeps Potluck's file. The remote's blob becomes the base, so the next
/// sync finds only Potluck changed the file and pushes it back (attributed to who rejected).
pub async fn reject(st: &AppState, access: &Cap<scope::Collective>, id: IncomingId) -> Result<()> {
    let c = access.collective();
    let row = incoming_row(st, c, id).await?;
    let mut tx = audit::begin(&st.db).await?;
    set_base(&mut tx, c.id, &row.path, row.blob.as_deref()).await?;
    decide_row(&mut tx, &row, "rejected", &access.origin().actor.name).await?;
    let event = Event::new(AuditAction::SyncReject, format!("app {}", row.domain))
        .in_collective(c.id, &c.slug)
        .details(json!({ "file": row.path, "kind": row.kind, "commit": row.commit, "author": row.author }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    st.sync.notify_one();
    Ok(())
}

/// A push webhook from the remote (`POST /hooks/git/<slug>`): checked against the secret shown
/// at set-up — an HMAC-SHA256 of the body as GitHub, Gitea, Forgejo and Gogs sign it
/// (`X-Hub-Signature-256: sha256=<hex>`, `X-Gitea-Signature: <hex>`…), or the secret itself as
/// GitLab sends it (`X-Gitlab-Token`) or as a bearer token. A valid call asks for a sync and
/// says nothing more; anything else, an unknown collective included, is `false`.
pub async fn webhook(st: &AppState, slug: &str, headers: &axum::http::HeaderMap, body: &[u8]) -> Result<bool> {
    let row = sqlx::query("SELECT c.id FROM collectives c JOIN git_sync g ON g.collective_id = c.id WHERE c.slug = $1")
        .bind(slug)
        .fetch_optional(st.db.pool())
        .await?;
    let Some(id) = row.map(|r| r.try_get::<CollectiveId, _>("id")).transpose()? else { return Ok(false) };
    let Some(s) = settings(st, id).await? else { return Ok(false) };
    if !signed(&s.webhook_secret, headers, body) {
        return Ok(false);
    }
    sqlx::query("UPDATE git_sync SET wanted_at = $1 WHERE collective_id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(st.db.pool())
        .await?;
    st.sync.notify_one();
    Ok(true)
}

fn signed(secret: &str, headers: &axum::http::HeaderMap, body: &[u8]) -> bool {
    if secret.is_empty() {
        return false;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let hmac_ok = |hex_sig: &str| {
        let Ok(sig) = hex::decode(hex_sig) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    };
    // Compared as digests: equal length, and nothing learnt from where they differ.
    let token_ok = |token: &str| Sha256::digest(token.as_bytes()) == Sha256::digest(secret.as_bytes());
    if let Some(sig) = header("x-hub-signature-256").and_then(|v| v.strip_prefix("sha256=")) {
        return hmac_ok(sig);
    }
    for name in ["x-gitea-signature", "x-forgejo-signature", "x-gogs-signature"] {
        if let Some(sig) = header(name) {
            return hmac_ok(sig);
        }
    }
    if let Some(token) = header("x-gitlab-token") {
        return token_ok(token);
    }
    if let Some(token) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        return token_ok(token.trim());
    }
    false
}

/// Syncs each collective when due: the audit log has a change to its apps not synced yet, a
/// webhook or a decision asked for one, or `sync_fetch_minutes` passed since the last; a failed
/// sync waits a minute before its next scheduled try.
pub fn spawn_worker(st: std::sync::Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every_ms = (st.config.sync_fetch_minutes * 60_000.0) as i64;
        loop {
            match due(&st, every_ms).await {
                Ok(ids) => {
                    use futures::StreamExt;
                    // A few at a time: one slow remote does not hold the others.
                    futures::stream::iter(ids)
                        .for_each_concurrent(CONCURRENCY, |id| {
                            let st = st.clone();
                            async move {
                                if let Err(e) = run_to_end(&st, id, Origin::system("git sync")).await {
                                    tracing::warn!(collective = id.0, error = %e, "git sync failed");
                                }
                            }
                        })
                        .await;
                }
                Err(e) => tracing::warn!(error = %e, "cannot list the collectives to sync"),
            }
            tokio::select! {
                _ = st.sync.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}

async fn due(st: &AppState, every_ms: i64) -> Result<Vec<CollectiveId>> {
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT collective_id, audit_seq, wanted_at, started_at, last_error FROM git_sync \
         WHERE holder IS NULL OR lease_until < $1",
    )
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: CollectiveId = r.try_get("collective_id")?;
        let started: i64 = r.try_get::<Option<i64>, _>("started_at")?.unwrap_or(0);
        let wanted = r.try_get::<Option<i64>, _>("wanted_at")?.is_some_and(|w| w >= started);
        let failing = r.try_get::<Option<String>, _>("last_error")?.is_some();
        let since = now - started;
        if since < PACE_MS {
            continue;
        }
        let scheduled = every_ms > 0 && since >= every_ms;
        let resting = failing && since < RETRY_MS;
        if wanted || (!resting && (scheduled || changed_since(st, id, r.try_get("audit_seq")?).await?)) {
            out.push(id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_sides_decide_each_file() {
        use FileState::*;
        // Nobody changed it, or both made the same change.
        assert_eq!(decide(Some("a"), Some("a"), Some("a")), Synced);
        assert_eq!(decide(Some("b"), Some("a"), Some("b")), Synced);
        // One side changed it.
        assert_eq!(decide(Some("b"), Some("a"), Some("a")), Outgoing);
        assert_eq!(decide(Some("a"), Some("a"), Some("b")), Incoming);
        // Created or removed on one side.
        assert_eq!(decide(Some("a"), None, None), Outgoing);
        assert_eq!(decide(None, Some("a"), Some("a")), Outgoing);
        assert_eq!(decide(None, None, Some("a")), Incoming);
        assert_eq!(decide(Some("a"), Some("a"), None), Incoming);
        // Both, differently; the first sync of two sides that differ.
        assert_eq!(decide(Some("b"), Some("a"), Some("c")), Conflict);
        assert_eq!(decide(None, Some("a"), Some("c")), Conflict);
        assert_eq!(decide(Some("b"), None, Some("c")), Conflict);
    }

    #[test]
    fn only_app_files_are_paths_of_the_tree() {
        assert_eq!(split_path("servers/local/cloud.example.org.env"), Some(("local", "cloud.example.org")));
        for not in [
            "README.md",
            "servers/local/notes.md",
            "servers/local/.env",
            "servers/.hidden/x.env",
            "servers/a/b/c.env",
            "other/local/x.env",
            "servers/local/a b.env",
            "servers/local/x;rm -rf.env",
            "servers/lo cal/x.env",
            "servers/local/.env.env",
        ] {
            assert_eq!(split_path(not), None, "{not}");
        }
        assert_eq!(path_of("local", "cloud.example.org"), "servers/local/cloud.example.org.env");
    }

    #[test]
    fn a_diff_shows_context_around_each_change() {
        let before: String = (1..=20).map(|i| format!("K{i}=v\n")).collect();
        let after = before.replace("K3=v\n", "K3=w\n").replace("K18=v\n", "");
        let d = diff(&before, &after);
        let tags: String = d.iter().map(|l| l.tag.as_str()).collect::<Vec<_>>().join("");
        assert_eq!(tags, "  -+   …   -  ");
        assert_eq!(d[2], DiffLine { tag: "-".into(), text: "K3=v".into() });
        assert_eq!(d[3], DiffLine { tag: "+".into(), text: "K3=w".into() });
    }

    #[test]
    fn webhook_signatures_of_each_forge() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let sig = hex::encode(mac.finalize().into_bytes());
        let headers = |pairs: &[(&'static str, String)]| {
            let mut h = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(signed("s3cret", &headers(&[("x-hub-signature-256", format!("sha256={sig}"))]), body));
        assert!(signed("s3cret", &headers(&[("x-gitea-signature", sig.clone())]), body));
        assert!(signed("s3cret", &headers(&[("x-gitlab-token", "s3cret".into())]), body));
        assert!(signed("s3cret", &headers(&[("authorization", "Bearer s3cret".into())]), body));
        // Another body, another secret, no signature, an empty secret: refused.
        assert!(!signed("s3cret", &headers(&[("x-hub-signature-256", format!("sha256={sig}"))]), b"{}"));
        assert!(!signed("other", &headers(&[("x-gitea-signature", sig.clone())]), body));
        assert!(!signed("s3cret", &headers(&[]), body));
        assert!(!signed("", &headers(&[("x-gitlab-token", String::new())]), body));
    }
}
