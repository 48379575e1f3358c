//! A collective's swarm managers: registered by the collective's admins — a local engine the
//! federation's configuration grants the collective, TCP with TLS client certificates, or SSH
//! with the server's own key and pinned host key — checked before anything is written, and
//! watched through the Engine's event stream (reconnecting with back-off) so that the server
//! page shows live state. Keys are opened in memory for each connection and never written out
//! (SSH hands the key to `ssh` in a private temporary file that is removed once connected).
//! Clients are cached by the server's `uid`, which is never reused, and evicted on failure.

use super::{health, live};
use crate::adapters::db::now_ms;
use crate::adapters::engine::docker;
use crate::adapters::engine::guard::Policy;
use crate::adapters::engine::{ssh, tls};
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::{Cap, CollectiveRef};
use crate::error::{Error, Result};
use crate::state::AppState;
use bollard::Docker;
use futures::StreamExt;
use potluck_app::api::{AddServer, SetServerPolicy, TrustHostKey};
use potluck_app::error::ApiError;
use potluck_app::model::{CollectiveId, ServerId};
use potluck_app::model::{ServerSummary, ServerView};
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long adding or re-pinning a server waits for its engine to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct ServerRow {
    pub id: ServerId,
    /// Random and never reused: what engine clients are cached by.
    pub uid: String,
    pub collective_id: CollectiveId,
    pub collective: String,
    pub name: String,
    pub kind: String,
    pub address: String,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub private_key_enc: Option<Vec<u8>>,
    /// SSH: the pinned host key lines.
    pub host_key: Option<String>,
    pub policy: Policy,
    pub engine_version: Option<String>,
    pub api_version: Option<String>,
    pub is_manager: bool,
    pub nodes: i64,
    pub last_checked_at: Option<i64>,
    pub last_error: Option<String>,
    /// Whether the replica watching its event stream is connected (as it last recorded).
    pub monitor_connected: bool,
    /// The swarm at a glance, as the replica watching it last read it (`live.rs`).
    pub summary: Option<ServerSummary>,
}

const SELECT: &str =
    "SELECT s.id, s.uid, s.collective_id, c.slug, s.name, s.kind, s.address, s.tls_ca, s.tls_cert, s.private_key_enc, \
     s.host_key, s.policy, s.engine_version, s.api_version, s.is_manager, s.nodes, s.last_checked_at, s.last_error, s.monitor_connected, \
     s.live_summary FROM servers s JOIN collectives c ON c.id = s.collective_id";

impl ServerRow {
    /// What a client of this server is built from, as one SHA-256 digest.
    pub fn connection_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.kind.as_bytes(),
            self.address.as_bytes(),
            self.tls_ca.as_deref().unwrap_or_default().as_bytes(),
            self.tls_cert.as_deref().unwrap_or_default().as_bytes(),
            self.private_key_enc.as_deref().unwrap_or_default(),
            self.host_key.as_deref().unwrap_or_default().as_bytes(),
        ] {
            // Length-prefixed, so that no two different rows give the same input.
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }

    fn from_row(r: &sqlx::any::AnyRow) -> Result<ServerRow> {
        Ok(ServerRow {
            id: r.try_get("id")?,
            uid: r.try_get::<Option<String>, _>("uid")?.unwrap_or_default(),
            collective_id: r.try_get("collective_id")?,
            collective: r.try_get("slug")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            address: r.try_get("address")?,
            tls_ca: r.try_get("tls_ca")?,
            tls_cert: r.try_get("tls_cert")?,
            private_key_enc: r.try_get("private_key_enc")?,
            host_key: r.try_get("host_key")?,
            policy: Policy::from_json(&r.try_get::<String, _>("policy")?),
            engine_version: r.try_get("engine_version")?,
            api_version: r.try_get("api_version")?,
            is_manager: r.try_get::<i64, _>("is_manager")? != 0,
            monitor_connected: r.try_get::<i64, _>("monitor_connected")? != 0,
            nodes: r.try_get("nodes")?,
            last_checked_at: r.try_get("last_checked_at")?,
            last_error: r.try_get("last_error")?,
            summary: r.try_get::<Option<String>, _>("live_summary")?.and_then(|j| serde_json::from_str(&j).ok()),
        })
    }
}

pub async fn all(st: &AppState) -> Result<Vec<ServerRow>> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY s.id")).fetch_all(st.db.pool()).await?;
    rows.iter().map(ServerRow::from_row).collect()
}

pub async fn in_collective(st: &AppState, collective_id: CollectiveId) -> Result<Vec<ServerRow>> {
    let rows = sqlx::query(&format!("{SELECT} WHERE s.collective_id = $1 ORDER BY s.name"))
        .bind(collective_id)
        .fetch_all(st.db.pool())
        .await?;
    rows.iter().map(ServerRow::from_row).collect()
}

/// A server of this collective by name (never another collective's).
pub async fn by_name(st: &AppState, c: &CollectiveRef, name: &str) -> Result<ServerRow> {
    let row = sqlx::query(&format!("{SELECT} WHERE s.collective_id = $1 AND s.name = $2"))
        .bind(c.id)
        .bind(name)
        .fetch_optional(st.db.pool())
        .await?;
    row.as_ref()
        .map(ServerRow::from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found(format!("server {name:?} in {}", c.slug)).into())
}

pub async fn by_id(st: &AppState, id: ServerId) -> Result<ServerRow> {
    let row = sqlx::query(&format!("{SELECT} WHERE s.id = $1")).bind(id).fetch_optional(st.db.pool()).await?;
    row.as_ref().map(ServerRow::from_row).transpose()?.ok_or_else(|| ApiError::not_found(format!("server {id}")).into())
}

async fn by_uid(st: &AppState, uid: &str) -> Result<Option<ServerRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE s.uid = $1")).bind(uid).fetch_optional(st.db.pool()).await?;
    row.as_ref().map(ServerRow::from_row).transpose()
}

/// How a connection's host keys are checked.
enum HostKeyMode {
    /// The pinned ones (a server that is registered).
    Pinned,
    /// First contact: learn what the host presents.
    Learn(Arc<std::sync::Mutex<Option<String>>>),
}

/// A new client for a server, from its row (keys opened in memory). Nothing is cached here.
async fn connect(st: &AppState, s: &ServerRow, mode: HostKeyMode) -> std::result::Result<Docker, String> {
    let docker = match s.kind.as_str() {
        "unix" => {
            if !st.config.local_engine_allows(&s.address, &s.collective) {
                return Err(format!(
                    "{} is a local engine this Potluck's configuration does not grant to {} (local_engines)",
                    s.address, s.collective
                ));
            }
            docker::connect(&docker::Endpoint::Unix(s.address.clone().into()), 120).await.map_err(|e| e.to_string())?
        }
        "tcp" => {
            let (Some(ca), Some(cert), Some(sealed)) = (&s.tls_ca, &s.tls_cert, &s.private_key_enc) else {
                return Err("a TCP server needs its TLS CA, client certificate and key".into());
            };
            let key = st.secrets.open(sealed).map_err(|e| e.to_string())?;
            let material = tls::TlsMaterial { ca, cert, key: &key };
            let d = tls::client(&s.address, &material, 120)?;
            d.negotiate_version().await.map_err(|e| docker::error_text(&e))?
        }
        "ssh" => {
            let sealed = s.private_key_enc.as_ref().ok_or("an SSH server needs its own private key")?;
            let key = st.secrets.open(sealed).map_err(|e| e.to_string())?;
            let host_keys = match mode {
                HostKeyMode::Learn(slot) => ssh::HostKeys::Learn(slot),
                HostKeyMode::Pinned => match &s.host_key {
                    Some(k) if !k.trim().is_empty() => ssh::HostKeys::Pinned(k.clone()),
                    _ => return Err("no host key is pinned for this server".into()),
                },
            };
            let target = ssh::Target::parse(&s.address, ssh::Auth::Own { key: Arc::new(key), host_keys })?;
            let d = ssh::client(target, 120).map_err(|e| e.to_string())?;
            d.negotiate_version().await.map_err(|e| explain_ssh(s, &docker::error_text(&e)))?
        }
        other => return Err(format!("unknown server kind {other:?}")),
    };
    Ok(docker)
}

/// ssh's refusal of a changed host key, with both fingerprints.
fn explain_ssh(s: &ServerRow, error: &str) -> String {
    match ssh::changed_host_key(error) {
        Some(now) => format!(
            "the SSH host key of {} changed: Potluck pinned {}, the server now presents {now}. \
             If that change is expected, trust the new key on the server's page (with its fingerprint)",
            s.address,
            s.host_key.as_deref().map(ssh::fingerprints).unwrap_or_default().join(", ")
        ),
        None => error.to_string(),
    }
}

/// A connected client for a server, cached by uid together with a digest of the settings it
/// was built from. A client built from an older row (a host key trusted since, a key replaced,
/// or a change another replica made) is never served for the newer one, even when its
/// connection was under way while the row changed. A cached client that fails is evicted and
/// replaced.
pub async fn docker_for(st: &AppState, s: &ServerRow) -> std::result::Result<Docker, ApiError> {
    let settings = s.connection_digest();
    let cached = st.dockers.lock().await.get(&s.uid).filter(|(built, _)| *built == settings).map(|(_, d)| d.clone());
    if let Some(d) = cached {
        if d.ping().await.is_ok() {
            return Ok(d);
        }
        st.dockers.lock().await.remove(&s.uid);
    }
    let d = connect(st, s, HostKeyMode::Pinned)
        .await
        .map_err(|e| ApiError::unavailable(format!("server {} is unreachable: {e}", s.name)))?;
    st.dockers.lock().await.insert(s.uid.clone(), (settings, d.clone()));
    Ok(d)
}

/// Forgets the cached client of a server.
pub async fn evict(st: &AppState, uid: &str) {
    st.dockers.lock().await.remove(uid);
}

/// What checking a server found.
pub struct Checked {
    pub engine_version: String,
    pub api_version: String,
    pub is_manager: bool,
    pub nodes: i64,
    /// The swarm's cluster id (managers see it).
    pub swarm_id: Option<String>,
}

pub async fn check(docker: &Docker) -> std::result::Result<Checked, String> {
    let version = docker.version().await.map_err(|e| docker::error_text(&e))?;
    let info = docker.info().await.map_err(|e| docker::error_text(&e))?;
    let swarm = info.swarm.unwrap_or_default();
    Ok(Checked {
        engine_version: version.version.unwrap_or_default(),
        api_version: version.api_version.unwrap_or_default(),
        is_manager: swarm.control_available.unwrap_or(false),
        nodes: swarm.nodes.unwrap_or(0),
        swarm_id: swarm.cluster.and_then(|c| c.id).filter(|id| !id.is_empty()),
    })
}

fn check_server_name(name: &str) -> std::result::Result<(), ApiError> {
    // It names a directory of abra's tree: not `.`, `..` or hidden.
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("name", "use letters, digits, '.', '-' and '_' (a host name works)"))
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Connects to a server that is not registered yet and checks it is a swarm manager; for SSH,
/// learns the host key it presents. Nothing is cached and nothing is written.
async fn probe(st: &AppState, candidate: &ServerRow) -> std::result::Result<(Checked, Option<String>), ApiError> {
    let learned = Arc::new(std::sync::Mutex::new(None));
    let mode = if candidate.kind == "ssh" { HostKeyMode::Learn(learned.clone()) } else { HostKeyMode::Pinned };
    let attempt = async {
        let docker = connect(st, candidate, mode)
            .await
            .map_err(|e| ApiError::invalid("address", format!("server {} is unreachable: {e}", candidate.name)))?;
        let checked = check(&docker)
            .await
            .map_err(|e| ApiError::invalid("address", format!("the Docker Engine answered with an error: {e}")))?;
        Ok::<_, ApiError>(checked)
    };
    let checked = tokio::time::timeout(CHECK_TIMEOUT, attempt).await.map_err(|_| {
        ApiError::invalid(
            "address",
            format!("{} did not answer within {} s", candidate.address, CHECK_TIMEOUT.as_secs()),
        )
    })??;
    let host_key = learned.lock().ok().and_then(|l| l.clone());
    if candidate.kind == "ssh" && host_key.is_none() {
        return Err(ApiError::invalid("address", "the SSH server presented no host key Potluck could record"));
    }
    Ok((checked, host_key))
}

/// Registers a server after checking, outside any transaction, that it answers as a swarm
/// manager; only then is the row written, with its audit event, in one short transaction.
pub async fn add(st: &Arc<AppState>, access: &Cap<scope::Collective>, input: AddServer) -> Result<ServerView> {
    let c = access.collective();
    let name = input.name.trim().to_string();
    check_server_name(&name)?;
    let kind = input.kind.trim().to_string();
    let address = input.address.trim().to_string();
    let (tls_ca, tls_cert, private_key) = (some(&input.tls_ca), some(&input.tls_cert), some(&input.private_key));
    match kind.as_str() {
        "unix" if address.starts_with('/') => {
            if !st.config.local_engine_allows(&address, &c.slug) {
                return Err(ApiError::forbidden(format!(
                    "{address} is a local engine on the Potluck machine; only the federation's configuration can grant it to {} (local_engines). Register your own swarm over TLS or SSH instead",
                    c.slug
                ))
                .into());
            }
        }
        "unix" => {
            return Err(
                ApiError::invalid("address", "a local socket is an absolute path, e.g. /var/run/docker.sock").into()
            )
        }
        "tcp" if address.contains(':') => {
            let (Some(ca), Some(cert), Some(key)) = (&tls_ca, &tls_cert, &private_key) else {
                return Err(ApiError::invalid(
                    "tls",
                    "a TCP engine needs TLS: give the CA certificate, the client certificate and the client key (plain TCP is refused)",
                )
                .into());
            };
            tls::check(&tls::TlsMaterial { ca, cert, key }).map_err(|e| ApiError::invalid("tls", e))?;
        }
        "tcp" => return Err(ApiError::invalid("address", "give host:port, e.g. swarm.example.org:2376").into()),
        "ssh" => {
            if let Err(e) = ssh::Target::parse(&address, ssh::Auth::System) {
                return Err(ApiError::invalid("address", e).into());
            }
            if private_key.is_none() {
                return Err(ApiError::invalid(
                    "private_key",
                    "an SSH server needs its own private key: Potluck never uses its own keys, agent or SSH configuration",
                )
                .into());
            }
        }
        _ => return Err(ApiError::invalid("kind", "choose unix, tcp or ssh").into()),
    }
    if in_collective(st, c.id).await?.iter().any(|s| s.name == name) {
        return Err(ApiError::conflict(format!("{} already has a server named {name:?}", c.slug)).into());
    }
    let sealed = private_key.as_deref().map(|k| st.secrets.seal(k));
    let mut candidate = ServerRow {
        id: ServerId::default(),
        uid: uuid::Uuid::new_v4().simple().to_string(),
        collective_id: c.id,
        collective: c.slug.clone(),
        name: name.clone(),
        kind: kind.clone(),
        address: address.clone(),
        tls_ca: tls_ca.clone(),
        tls_cert: tls_cert.clone(),
        private_key_enc: sealed.clone(),
        host_key: None,
        policy: Policy::default(),
        engine_version: None,
        api_version: None,
        is_manager: false,
        nodes: 0,
        last_checked_at: None,
        last_error: None,
        monitor_connected: false,
        summary: None,
    };
    let (checked, host_key) = probe(st, &candidate).await?;
    if !checked.is_manager {
        return Err(ApiError::invalid(
            "address",
            format!(
                "{address} is Docker {} but not a swarm manager: run `docker swarm init` there (or give a manager)",
                checked.engine_version
            ),
        )
        .into());
    }
    if let (Some(expected), Some(keys)) = (some(&input.host_key), &host_key) {
        let presented = ssh::fingerprints(keys);
        if !presented.contains(&expected) {
            return Err(ApiError::invalid(
                "host_key",
                format!(
                    "the server presents {}, not {expected}: do not add it until you know why",
                    presented.join(", ")
                ),
            )
            .into());
        }
    }
    candidate.host_key = host_key.clone();
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let id: ServerId = sqlx::query(
        "INSERT INTO servers (uid, collective_id, name, kind, address, tls_ca, tls_cert, private_key_enc, host_key, \
         engine_version, api_version, is_manager, nodes, last_checked_at, created_at, swarm_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) RETURNING id",
    )
    .bind(&candidate.uid)
    .bind(c.id)
    .bind(&name)
    .bind(&kind)
    .bind(&address)
    .bind(&tls_ca)
    .bind(&tls_cert)
    .bind(&sealed)
    .bind(&host_key)
    .bind(&checked.engine_version)
    .bind(&checked.api_version)
    .bind(i64::from(checked.is_manager))
    .bind(checked.nodes)
    .bind(now)
    .bind(&checked.swarm_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::adapters::db::is_unique_violation(&e) {
            ApiError::conflict(format!("{} already has a server named {name:?}", c.slug)).into()
        } else {
            Error::from(e)
        }
    })?
    .try_get("id")?;
    let event =
        Event::new(AuditAction::ServerAdd, format!("server {name}")).in_collective(c.id, &c.slug).details(json!({
            "server_id": id,
            "kind": kind,
            "address": address,
            "tls": tls_ca.is_some(),
            "host_key": host_key.as_deref().map(ssh::fingerprints),
            "engine_version": checked.engine_version,
            "nodes": checked.nodes,
        }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    let row = by_id(st, id).await?;
    st.monitors.start(st.clone(), row.uid.clone()).await;
    view(st, &row).await
}

pub async fn remove(st: &Arc<AppState>, access: &Cap<scope::Server>) -> Result<()> {
    let c = access.collective();
    let s = access.server();
    let apps: i64 = sqlx::query("SELECT COUNT(*) AS n FROM apps WHERE server_id = $1 AND status = 'deployed'")
        .bind(s.id)
        .fetch_one(st.db.pool())
        .await?
        .try_get("n")?;
    if apps > 0 {
        return Err(ApiError::conflict(format!("{apps} app(s) are deployed on {}: undeploy them first", s.name)).into());
    }
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("DELETE FROM servers WHERE id = $1").bind(s.id).execute(&mut *tx).await?;
    let event = Event::new(AuditAction::ServerRemove, format!("server {}", s.name))
        .in_collective(c.id, &c.slug)
        .details(json!({ "server_id": s.id }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    st.monitors.stop(&s.uid).await;
    evict(st, &s.uid).await;
    Ok(())
}

/// Pins the host key an SSH server presents now, when the admin confirms its fingerprint.
pub async fn trust_host_key(
    st: &Arc<AppState>,
    access: &Cap<scope::Server>,
    input: TrustHostKey,
) -> Result<ServerView> {
    let c = access.collective();
    let s = access.server();
    if s.kind != "ssh" {
        return Err(ApiError::invalid("name", format!("{} is not an SSH server", s.name)).into());
    }
    let expected = input.fingerprint.trim().to_string();
    if !expected.starts_with("SHA256:") {
        return Err(ApiError::invalid("fingerprint", "give the new key's fingerprint, SHA256:…").into());
    }
    let (_, learned) = probe(st, s).await?;
    let learned = learned.unwrap_or_default();
    let presented = ssh::fingerprints(&learned);
    if !presented.contains(&expected) {
        return Err(ApiError::invalid(
            "fingerprint",
            format!("{} presents {}, not {expected}", s.address, presented.join(", ")),
        )
        .into());
    }
    let before = s.host_key.as_deref().map(ssh::fingerprints).unwrap_or_default();
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE servers SET host_key = $1 WHERE id = $2").bind(&learned).bind(s.id).execute(&mut *tx).await?;
    let event = Event::new(AuditAction::ServerHostKeyTrust, format!("server {}", s.name))
        .in_collective(c.id, &c.slug)
        .details(json!({ "server_id": s.id, "from": before, "to": presented }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    evict(st, &s.uid).await;
    st.monitors.start(st.clone(), s.uid.clone()).await;
    view(st, &by_id(st, s.id).await?).await
}

/// Sets what deploys to a server may ask of its host (federation admins).
pub async fn set_policy(st: &AppState, access: &Cap<scope::Server>, input: SetServerPolicy) -> Result<ServerView> {
    let c = access.collective();
    let s = access.server();
    let policy =
        Policy::parse_list(&potluck_app::api::split_list(&input.allow)).map_err(|e| ApiError::invalid("allow", e))?;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE servers SET policy = $1 WHERE id = $2")
        .bind(policy.to_json())
        .bind(s.id)
        .execute(&mut *tx)
        .await?;
    let event = Event::new(AuditAction::ServerPolicySet, format!("server {}", s.name))
        .in_collective(c.id, &c.slug)
        .details(json!({ "server_id": s.id, "allow": policy.allow }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    view(st, &by_id(st, s.id).await?).await
}

pub async fn view(st: &AppState, s: &ServerRow) -> Result<ServerView> {
    let live = st.monitors.state(&s.uid).await;
    Ok(ServerView {
        id: s.id,
        collective: s.collective.clone(),
        name: s.name.clone(),
        kind: s.kind.clone(),
        address: s.address.clone(),
        tls: s.tls_ca.is_some(),
        engine_version: s.engine_version.clone(),
        api_version: s.api_version.clone(),
        is_manager: s.is_manager,
        nodes: s.nodes,
        last_checked_at: s.last_checked_at,
        last_error: s.last_error.clone(),
        // Watched here, or by another replica that records it.
        connected: live.connected || s.monitor_connected,
        last_event_at: live.last_event_at.or(s.summary.as_ref().and_then(|g| g.last_event_at)),
        events_seen: live.events_seen.max(s.summary.as_ref().map_or(0, |g| g.events_seen)),
        host_key_fingerprints: s.host_key.as_deref().map(ssh::fingerprints).unwrap_or_default(),
        policy_allows: s.policy.allow.iter().map(|g| g.as_str().to_string()).collect(),
        summary: s.summary.clone(),
    })
}

pub async fn list(st: &AppState, access: &Cap<scope::Collective>) -> Result<Vec<ServerView>> {
    let mut out = Vec::new();
    for s in in_collective(st, access.collective().id).await? {
        out.push(view(st, &s).await?);
    }
    Ok(out)
}

/// Live state of one server's event stream.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub connected: bool,
    pub last_event_at: Option<i64>,
    pub events_seen: i64,
    pub last_error: Option<String>,
}

/// Takes or renews this replica's lease on a server's monitor; false while another replica holds
/// it (and its lease has not run out).
async fn hold_monitor(st: &AppState, server: ServerId) -> bool {
    let now = now_ms();
    sqlx::query(
        "UPDATE servers SET monitor_holder = $1, monitor_lease_until = $2 WHERE id = $3 \
         AND (monitor_holder IS NULL OR monitor_holder = $1 OR monitor_lease_until IS NULL OR monitor_lease_until < $4)",
    )
    .bind(&st.replica)
    .bind(now + st.lease().as_millis() as i64)
    .bind(server)
    .bind(now)
    .execute(st.db.pool())
    .await
    .is_ok_and(|done| done.rows_affected() == 1)
}

/// Gives up this process's server monitors (on a clean stop), so that another replica takes
/// them over at once.
pub async fn release_monitors(st: &AppState) -> Result<()> {
    sqlx::query(
        "UPDATE servers SET monitor_holder = NULL, monitor_lease_until = NULL, monitor_connected = 0 WHERE monitor_holder = $1",
    )
    .bind(&st.replica)
    .execute(st.db.pool())
    .await?;
    Ok(())
}

/// Records whether this replica's watch of the server is connected, while it holds it.
async fn record_connected(st: &AppState, server: ServerId, connected: bool) {
    // Live streams follow `live_seq`: the servers page shows the connection.
    let _ = sqlx::query(
        "UPDATE servers SET monitor_connected = $1, live_seq = live_seq + 1 WHERE id = $2 AND monitor_holder = $3",
    )
    .bind(i64::from(connected))
    .bind(server)
    .bind(&st.replica)
    .execute(st.db.pool())
    .await;
}

/// One watcher task per server, which watches only while this replica holds the server's
/// monitor lease (renewed every third of `lease_secs`; taken over when its holder stops renewing
/// it): follows the Engine's events, reconnecting with back-off
/// (1 s doubling to 60 s), and keeps the server's live state and check results fresh.
#[derive(Default)]
pub struct Monitors {
    tasks: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    state: Arc<LiveStates>,
}

/// What this replica's watchers know and the database does not (connection, events seen), with
/// a count of its changes: the pages that show the connection are as new as that count.
#[derive(Default)]
struct LiveStates {
    map: Mutex<HashMap<String, Live>>,
    changes: std::sync::atomic::AtomicU64,
}

impl LiveStates {
    async fn get(&self, uid: &str) -> Live {
        self.map.lock().await.get(uid).cloned().unwrap_or_default()
    }

    /// Counts a change of the connection or its error; events seen and the last event's time
    /// come and go with every engine event, and pages show them as of their render.
    async fn update(&self, uid: &str, change: impl FnOnce(&mut Live)) {
        let mut map = self.map.lock().await;
        let live = map.entry(uid.to_string()).or_default();
        let before = (live.connected, live.last_error.clone());
        change(live);
        if (live.connected, &live.last_error) != (before.0, &before.1) {
            self.changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    async fn remove(&self, uid: &str) {
        self.map.lock().await.remove(uid);
        self.changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Monitors {
    pub async fn state(&self, uid: &str) -> Live {
        self.state.get(uid).await
    }

    /// Moves whenever a watcher's state here changes (part of the pages' version).
    pub fn changes(&self) -> u64 {
        self.state.changes.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn start(&self, st: Arc<AppState>, uid: String) {
        let state = self.state.clone();
        let key = uid.clone();
        let handle = tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let server = match by_uid(&st, &uid).await {
                    Ok(Some(s)) => s,
                    _ => return,
                };
                let id = server.id;
                // One replica at a time watches a server; the others wait to take over.
                if !hold_monitor(&st, id).await {
                    state.update(&uid, |l| l.connected = false).await;
                    tokio::time::sleep(st.lease() / 3).await;
                    continue;
                }
                let reached = match docker_for(&st, &server).await {
                    Ok(docker) => check(&docker).await.map(|c| (docker, c)),
                    Err(e) => Err(e.to_string()),
                };
                match reached {
                    Ok((docker, c)) => {
                        let _ = sqlx::query(
                            "UPDATE servers SET engine_version = $1, api_version = $2, is_manager = $3, nodes = $4, last_checked_at = $5, last_error = NULL, \
                             live_seq = live_seq + 1, swarm_id = COALESCE($6, swarm_id) WHERE id = $7",
                        )
                        .bind(&c.engine_version)
                        .bind(&c.api_version)
                        .bind(i64::from(c.is_manager))
                        .bind(c.nodes)
                        .bind(now_ms())
                        .bind(&c.swarm_id)
                        .bind(id)
                        .execute(st.db.pool())
                        .await;
                        if let Err(e) = health::server_reachable(&st, id).await {
                            tracing::warn!(error = %e, server = %server.name, "cannot record a server's reachability");
                        }
                        state.update(&uid, |l| l.connected = true).await;
                        record_connected(&st, id, true).await;
                        let mut events = docker.events(None::<bollard::query_parameters::EventsOptions>);
                        backoff = Duration::from_secs(1);
                        let mut renew = tokio::time::interval(st.lease() / 3);
                        renew.tick().await;
                        // The swarm is read again after events (at most every READ_AFTER) and
                        // every READ_ANYWAY regardless: tasks on other nodes, restarts ageing out.
                        let mut reread = tokio::time::interval(live::READ_AFTER);
                        reread.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        let (mut dirty, mut read_at, mut last) = (true, tokio::time::Instant::now(), None);
                        loop {
                            let ev = tokio::select! {
                                ev = events.next() => ev,
                                _ = renew.tick() => {
                                    if hold_monitor(&st, id).await {
                                        continue;
                                    }
                                    tracing::warn!(server = %server.name, "another replica took over this server's monitor");
                                    break;
                                }
                                _ = reread.tick() => {
                                    if dirty || read_at.elapsed() >= live::READ_ANYWAY {
                                        let seen = state.get(&uid).await;
                                        match live::read(&docker).await {
                                            Ok(mut reading) => {
                                                reading.server.events_seen = seen.events_seen;
                                                reading.server.last_event_at = seen.last_event_at;
                                                match live::record(&st, id, &reading, last.as_ref()).await {
                                                    Ok(_) => last = Some(reading),
                                                    Err(e) => tracing::warn!(error = %e, server = %server.name, "cannot record a server's live state"),
                                                }
                                            }
                                            Err(e) => tracing::debug!(error = %e, server = %server.name, "cannot read a swarm's state"),
                                        }
                                        (dirty, read_at) = (false, tokio::time::Instant::now());
                                    }
                                    continue;
                                }
                            };
                            let Some(ev) = ev else { break };
                            match ev {
                                Ok(ev) => {
                                    dirty = true;
                                    state
                                        .update(&uid, |live| {
                                            live.connected = true;
                                            live.last_event_at = Some(now_ms());
                                            live.events_seen += 1;
                                        })
                                        .await;
                                    if let Some(f) = health::failure(&ev) {
                                        tokio::spawn(health::on_failure(st.clone(), id, docker.clone(), f));
                                    }
                                }
                                Err(e) => {
                                    let error = docker::error_text(&e);
                                    state.update(&uid, |l| l.last_error = Some(error)).await;
                                    break;
                                }
                            }
                        }
                        evict(&st, &uid).await;
                    }
                    Err(e) => {
                        let _ = sqlx::query("UPDATE servers SET last_error = $1, last_checked_at = $2, live_seq = live_seq + 1 WHERE id = $3")
                            .bind(&e)
                            .bind(now_ms())
                            .bind(id)
                            .execute(st.db.pool())
                            .await;
                        evict(&st, &uid).await;
                        if let Err(e) = health::server_unreachable(&st, id, &e).await {
                            tracing::warn!(error = %e, server = %server.name, "cannot record a server's reachability");
                        }
                    }
                }
                state.update(&uid, |l| l.connected = false).await;
                record_connected(&st, id, false).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        });
        if let Some(old) = self.tasks.lock().await.insert(key, handle) {
            old.abort();
        }
    }

    pub async fn stop(&self, uid: &str) {
        if let Some(h) = self.tasks.lock().await.remove(uid) {
            h.abort();
        }
        self.state.remove(uid).await;
    }

    pub async fn stop_all(&self) {
        for (_, h) in self.tasks.lock().await.drain() {
            h.abort();
        }
    }
}
