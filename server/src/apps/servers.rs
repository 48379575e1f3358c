//! A collective's swarm managers: registered by the collective's admins (local socket, TCP with
//! TLS client certificates, or SSH), checked when added, and watched through the Engine's event
//! stream (reconnecting with back-off) so that the server page shows live state.

use crate::audit::{self, Event};
use crate::authz::{authorize, can, CollectiveRef};
use crate::db::now_ms;
use crate::engine::docker::{self, Endpoint, TlsFiles};
use crate::engine::ssh;
use crate::error::{Error, Result};
use crate::state::AppState;
use bollard::Docker;
use futures::StreamExt;
use potluck_app::error::ApiError;
use potluck_app::model::ServerView;
use potluck_app::ports::Caller;
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct ServerRow {
    pub id: i64,
    pub collective_id: i64,
    pub collective: String,
    pub name: String,
    pub kind: String,
    pub address: String,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub private_key_enc: Option<Vec<u8>>,
    pub engine_version: Option<String>,
    pub api_version: Option<String>,
    pub is_manager: bool,
    pub nodes: i64,
    pub last_checked_at: Option<i64>,
    pub last_error: Option<String>,
}

const SELECT: &str =
    "SELECT s.id, s.collective_id, c.slug, s.name, s.kind, s.address, s.tls_ca, s.tls_cert, s.private_key_enc, \
     s.engine_version, s.api_version, s.is_manager, s.nodes, s.last_checked_at, s.last_error \
     FROM servers s JOIN collectives c ON c.id = s.collective_id";

impl ServerRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<ServerRow> {
        Ok(ServerRow {
            id: r.try_get("id")?,
            collective_id: r.try_get("collective_id")?,
            collective: r.try_get("slug")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            address: r.try_get("address")?,
            tls_ca: r.try_get("tls_ca")?,
            tls_cert: r.try_get("tls_cert")?,
            private_key_enc: r.try_get("private_key_enc")?,
            engine_version: r.try_get("engine_version")?,
            api_version: r.try_get("api_version")?,
            is_manager: r.try_get::<i64, _>("is_manager")? != 0,
            nodes: r.try_get("nodes")?,
            last_checked_at: r.try_get("last_checked_at")?,
            last_error: r.try_get("last_error")?,
        })
    }
}

pub async fn all(st: &AppState) -> Result<Vec<ServerRow>> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY s.id")).fetch_all(st.db.pool()).await?;
    rows.iter().map(ServerRow::from_row).collect()
}

pub async fn in_collective(st: &AppState, collective_id: i64) -> Result<Vec<ServerRow>> {
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

pub async fn by_id(st: &AppState, id: i64) -> Result<ServerRow> {
    let row = sqlx::query(&format!("{SELECT} WHERE s.id = $1")).bind(id).fetch_optional(st.db.pool()).await?;
    row.as_ref().map(ServerRow::from_row).transpose()?.ok_or_else(|| ApiError::not_found(format!("server {id}")).into())
}

pub use potluck_app::ports::NewServer;

/// Files a connection needs on disk (TLS PEMs, an SSH key), written 0600 under the data dir.
fn key_dir(st: &AppState, id: i64) -> PathBuf {
    st.config.data_dir.join("servers").join(id.to_string())
}

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())
}

fn endpoint(st: &AppState, s: &ServerRow) -> std::result::Result<Endpoint, String> {
    match s.kind.as_str() {
        "unix" => Ok(Endpoint::Unix(PathBuf::from(&s.address))),
        "tcp" => {
            let tls = match (&s.tls_ca, &s.tls_cert, &s.private_key_enc) {
                (Some(ca), Some(cert), Some(sealed)) => {
                    let key = st.secrets.open(sealed).map_err(|e| e.to_string())?;
                    let dir = key_dir(st, s.id);
                    let files =
                        TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") };
                    write_private(&files.ca, ca).map_err(|e| e.to_string())?;
                    write_private(&files.cert, cert).map_err(|e| e.to_string())?;
                    write_private(&files.key, &key).map_err(|e| e.to_string())?;
                    Some(files)
                }
                _ => None,
            };
            Ok(Endpoint::Tcp { host: s.address.clone(), tls })
        }
        "ssh" => Ok(Endpoint::Ssh { destination: s.address.clone() }),
        other => Err(format!("unknown server kind {other:?}")),
    }
}

/// A connected client for a server (cached; reconnects when the cached one fails).
pub async fn docker_for(st: &AppState, s: &ServerRow) -> std::result::Result<Docker, ApiError> {
    if let Some(d) = st.dockers.lock().await.get(&s.id).cloned() {
        if d.ping().await.is_ok() {
            return Ok(d);
        }
    }
    let ep = endpoint(st, s).map_err(|e| ApiError::unavailable(format!("server {}: {e}", s.name)))?;
    if let Endpoint::Ssh { .. } = ep {
        if let Some(sealed) = &s.private_key_enc {
            let key = st.secrets.open(sealed).map_err(|e| ApiError::unavailable(e.to_string()))?;
            let path = key_dir(st, s.id).join("id_ssh");
            write_private(&path, &key).map_err(|e| ApiError::unavailable(e.to_string()))?;
            let target = ssh::Target::parse(&s.address, Some(&path))
                .map_err(|e| ApiError::unavailable(format!("server {}: {e}", s.name)))?;
            let d = ssh::client(target, 120)
                .map_err(|e| ApiError::unavailable(format!("server {} is unreachable: {e}", s.name)))?
                .negotiate_version()
                .await
                .map_err(|e| {
                    ApiError::unavailable(format!("server {} is unreachable: {}", s.name, docker::error_text(&e)))
                })?;
            st.dockers.lock().await.insert(s.id, d.clone());
            return Ok(d);
        }
    }
    let d = docker::connect(&ep, 120)
        .await
        .map_err(|e| ApiError::unavailable(format!("server {} is unreachable: {e}", s.name)))?;
    st.dockers.lock().await.insert(s.id, d.clone());
    Ok(d)
}

/// What checking a server found.
pub struct Checked {
    pub engine_version: String,
    pub api_version: String,
    pub is_manager: bool,
    pub nodes: i64,
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
    })
}

fn check_server_name(name: &str) -> std::result::Result<(), ApiError> {
    let ok =
        !name.is_empty() && name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("name", "use letters, digits, '.', '-' and '_' (a host name works)"))
    }
}

pub async fn add(st: &Arc<AppState>, caller: &Caller, slug: &str, input: NewServer) -> Result<ServerView> {
    let access = authorize::<can::ManageServers>(&st.db, caller, slug).await?;
    let c = &access.collective;
    let name = input.name.trim().to_string();
    check_server_name(&name)?;
    let kind = input.kind.trim().to_string();
    let address = input.address.trim().to_string();
    match kind.as_str() {
        "unix" if address.starts_with('/') => {}
        "unix" => {
            return Err(
                ApiError::invalid("address", "a local socket is an absolute path, e.g. /var/run/docker.sock").into()
            )
        }
        "tcp" if address.contains(':') => {
            let all = input.tls_ca.is_some() && input.tls_cert.is_some() && input.private_key.is_some();
            let none = input.tls_ca.is_none() && input.tls_cert.is_none() && input.private_key.is_none();
            if !all && !none {
                return Err(ApiError::invalid(
                    "tls",
                    "give the CA certificate, the client certificate and the client key together",
                )
                .into());
            }
        }
        "tcp" => return Err(ApiError::invalid("address", "give host:port, e.g. swarm.example.org:2376").into()),
        "ssh" => {
            if let Err(e) = ssh::Target::parse(&address, None) {
                return Err(ApiError::invalid("address", e).into());
            }
        }
        _ => return Err(ApiError::invalid("kind", "choose unix, tcp or ssh").into()),
    }
    let sealed = input.private_key.as_deref().filter(|k| !k.trim().is_empty()).map(|k| st.secrets.seal(k));
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO servers (collective_id, name, kind, address, tls_ca, tls_cert, private_key_enc, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(c.id)
    .bind(&name)
    .bind(&kind)
    .bind(&address)
    .bind(&input.tls_ca)
    .bind(&input.tls_cert)
    .bind(&sealed)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            ApiError::conflict(format!("{} already has a server named {name:?}", c.slug)).into()
        } else {
            Error::from(e)
        }
    })?
    .try_get("id")?;
    // Check the connection before committing: a server that cannot be reached is not added.
    let row = ServerRow {
        id,
        collective_id: c.id,
        collective: c.slug.clone(),
        name: name.clone(),
        kind: kind.clone(),
        address: address.clone(),
        tls_ca: input.tls_ca.clone(),
        tls_cert: input.tls_cert.clone(),
        private_key_enc: sealed,
        engine_version: None,
        api_version: None,
        is_manager: false,
        nodes: 0,
        last_checked_at: None,
        last_error: None,
    };
    let docker = docker_for(st, &row).await.map_err(|e| match e {
        ApiError::Unavailable { reason } => ApiError::invalid("address", reason),
        other => other,
    })?;
    let checked = check(&docker)
        .await
        .map_err(|e| ApiError::invalid("address", format!("the Docker Engine answered with an error: {e}")))?;
    if !checked.is_manager {
        st.dockers.lock().await.remove(&id);
        return Err(ApiError::invalid(
            "address",
            format!(
                "{address} is Docker {} but not a swarm manager: run `docker swarm init` there (or give a manager)",
                checked.engine_version
            ),
        )
        .into());
    }
    sqlx::query("UPDATE servers SET engine_version = $1, api_version = $2, is_manager = $3, nodes = $4, last_checked_at = $5 WHERE id = $6")
        .bind(&checked.engine_version)
        .bind(&checked.api_version)
        .bind(i64::from(checked.is_manager))
        .bind(checked.nodes)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = Event::new("server.add", format!("server {name}")).in_collective(c.id, &c.slug).details(json!({
        "server_id": id,
        "kind": kind,
        "address": address,
        "tls": input.tls_ca.is_some(),
        "engine_version": checked.engine_version,
        "nodes": checked.nodes,
    }));
    audit::append(&mut tx, &access.origin, event).await?;
    tx.commit().await?;
    st.monitors.start(st.clone(), id).await;
    view(st, &by_id(st, id).await?).await
}

pub async fn remove(st: &Arc<AppState>, caller: &Caller, slug: &str, name: &str) -> Result<()> {
    let access = authorize::<can::ManageServers>(&st.db, caller, slug).await?;
    let c = &access.collective;
    let s = by_name(st, c, name).await?;
    let apps: i64 = sqlx::query("SELECT COUNT(*) AS n FROM apps WHERE server_id = $1 AND status = 'deployed'")
        .bind(s.id)
        .fetch_one(st.db.pool())
        .await?
        .try_get("n")?;
    if apps > 0 {
        return Err(ApiError::conflict(format!("{apps} app(s) are deployed on {name}: undeploy them first")).into());
    }
    let mut tx = st.db.begin().await?;
    sqlx::query("DELETE FROM servers WHERE id = $1").bind(s.id).execute(&mut *tx).await?;
    let event = Event::new("server.remove", format!("server {name}"))
        .in_collective(c.id, &c.slug)
        .details(json!({ "server_id": s.id }));
    audit::append(&mut tx, &access.origin, event).await?;
    tx.commit().await?;
    st.monitors.stop(s.id).await;
    st.dockers.lock().await.remove(&s.id);
    let _ = std::fs::remove_dir_all(key_dir(st, s.id));
    Ok(())
}

pub async fn view(st: &AppState, s: &ServerRow) -> Result<ServerView> {
    let live = st.monitors.state(s.id).await;
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
        connected: live.connected,
        last_event_at: live.last_event_at,
        events_seen: live.events_seen,
    })
}

pub async fn list(st: &AppState, caller: &Caller, slug: &str) -> Result<Vec<ServerView>> {
    let access = authorize::<can::ViewServers>(&st.db, caller, slug).await?;
    let mut out = Vec::new();
    for s in in_collective(st, access.collective.id).await? {
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

/// One watcher task per server: follows the Engine's events, reconnecting with back-off
/// (1 s doubling to 60 s), and keeps the server's live state and check results fresh.
#[derive(Default)]
pub struct Monitors {
    tasks: Mutex<HashMap<i64, tokio::task::JoinHandle<()>>>,
    state: Arc<Mutex<HashMap<i64, Live>>>,
    /// Woken on every event of any server (pages that show live data listen to it).
    pub changed: Arc<tokio::sync::Notify>,
}

impl Monitors {
    pub async fn state(&self, id: i64) -> Live {
        self.state.lock().await.get(&id).cloned().unwrap_or_default()
    }

    pub async fn start(&self, st: Arc<AppState>, id: i64) {
        let state = self.state.clone();
        let changed = self.changed.clone();
        let handle = tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let server = match by_id(&st, id).await {
                    Ok(s) => s,
                    Err(_) => return,
                };
                match docker_for(&st, &server).await {
                    Ok(docker) => {
                        if let Ok(c) = check(&docker).await {
                            let _ = sqlx::query(
                                "UPDATE servers SET engine_version = $1, api_version = $2, is_manager = $3, nodes = $4, last_checked_at = $5, last_error = NULL WHERE id = $6",
                            )
                            .bind(&c.engine_version)
                            .bind(&c.api_version)
                            .bind(i64::from(c.is_manager))
                            .bind(c.nodes)
                            .bind(now_ms())
                            .bind(id)
                            .execute(st.db.pool())
                            .await;
                        }
                        state.lock().await.entry(id).or_default().connected = true;
                        changed.notify_waiters();
                        let mut events = docker.events(None::<bollard::query_parameters::EventsOptions>);
                        backoff = Duration::from_secs(1);
                        while let Some(ev) = events.next().await {
                            match ev {
                                Ok(_) => {
                                    let mut s = state.lock().await;
                                    let live = s.entry(id).or_default();
                                    live.connected = true;
                                    live.last_event_at = Some(now_ms());
                                    live.events_seen += 1;
                                    drop(s);
                                    changed.notify_waiters();
                                }
                                Err(e) => {
                                    state.lock().await.entry(id).or_default().last_error = Some(docker::error_text(&e));
                                    break;
                                }
                            }
                        }
                        st.dockers.lock().await.remove(&id);
                    }
                    Err(e) => {
                        let _ = sqlx::query("UPDATE servers SET last_error = $1, last_checked_at = $2 WHERE id = $3")
                            .bind(e.to_string())
                            .bind(now_ms())
                            .bind(id)
                            .execute(st.db.pool())
                            .await;
                    }
                }
                {
                    let mut s = state.lock().await;
                    s.entry(id).or_default().connected = false;
                }
                changed.notify_waiters();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        });
        if let Some(old) = self.tasks.lock().await.insert(id, handle) {
            old.abort();
        }
    }

    pub async fn stop(&self, id: i64) {
        if let Some(h) = self.tasks.lock().await.remove(&id) {
            h.abort();
        }
        self.state.lock().await.remove(&id);
    }

    pub async fn stop_all(&self) {
        for (_, h) in self.tasks.lock().await.drain() {
            h.abort();
        }
    }
}
