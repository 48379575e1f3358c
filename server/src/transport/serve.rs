//! Starting Potluck: configuration → database (migrated) → state → the HTTP server, with a
//! bootstrap link printed while the federation has no admin.

use crate::adapters::crypto::SecretBox;
use crate::adapters::db::Db;
use crate::config::Config;
use crate::domain::identity::bootstrap;
use crate::state::{AppState, SharedState};
use anyhow::Context;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Connects, migrates and builds the shared state.
pub async fn prepare(config: Config) -> anyhow::Result<SharedState> {
    crate::adapters::git::set_network_timeouts();
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    let secrets = SecretBox::load_or_create(config.secret_key.as_deref(), &config.data_dir)?;
    // Potluck before the tenant wall wrote servers' TLS and SSH keys here in clear; keys now
    // stay in memory. Remove what an older version left.
    let legacy = config.data_dir.join("servers");
    if legacy.exists() {
        std::fs::remove_dir_all(&legacy).with_context(|| format!("cannot remove {}", legacy.display()))?;
        tracing::warn!(path = %legacy.display(), "removed server key files an older Potluck had written in clear");
    }
    AppState::new(config, db, secrets)
}

/// A running server (used by `potluck serve` and by the integration tests).
pub struct Running {
    pub addr: SocketAddr,
    pub state: SharedState,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        // Live streams last minutes; the graceful shutdown would wait for them.
        self.state.live.stop();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.handle.await;
        for task in self.background.drain(..) {
            task.abort();
        }
        self.state.monitors.stop_all().await;
    }
}

/// The work that runs beside the HTTP server: jobs a stopped Potluck left behind are recovered
/// and the job worker, the backup scheduler and the notification worker start; every server's event stream is watched;
/// recipes are fetched on schedule.
pub async fn start_background(state: &SharedState) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    if !state.config.background {
        return Ok(Vec::new());
    }
    crate::domain::apps::jobs::recover(state).await?;
    let mut tasks = vec![
        crate::domain::apps::jobs::spawn_worker(state.clone()),
        crate::domain::apps::schedules::spawn_scheduler(state.clone()),
        crate::domain::notify::deliver::spawn_worker(state.clone()),
        crate::domain::apps::health::spawn_sweeper(state.clone()),
        crate::domain::apps::fleet::spawn_runner(state.clone()),
        crate::domain::recipes::staging::spawn_runner(state.clone()),
        crate::domain::apps::sync::spawn_worker(state.clone()),
    ];
    for server in crate::domain::apps::servers::all(state).await? {
        state.monitors.start(state.clone(), server.uid).await;
    }
    let checkpoint_minutes = state.config.audit_checkpoint_minutes;
    if checkpoint_minutes > 0.0 {
        let st = state.clone();
        tasks.push(tokio::spawn(async move {
            let every = std::time::Duration::from_secs_f64(60.0 * checkpoint_minutes);
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) =
                    crate::domain::audit::checkpoint(&st.db, &st.secrets, st.config.audit_checkpoint_export.as_deref())
                        .await
                {
                    tracing::warn!(error = %e, "cannot record an audit checkpoint");
                }
            }
        }));
    }
    let minutes = state.config.recipe_fetch_minutes;
    if minutes > 0.0 {
        let st = state.clone();
        tasks.push(tokio::spawn(async move {
            let every = std::time::Duration::from_secs_f64(60.0 * minutes);
            let tick = every.min(std::time::Duration::from_secs(60));
            loop {
                match crate::domain::recipes::store::fetch_stale(&st, every.as_millis() as i64).await {
                    Ok(n) if n > 0 => tracing::info!(recipes = n, "fetched recipes on schedule"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "scheduled recipe fetch failed"),
                }
                tokio::time::sleep(tick).await;
            }
        }));
    }
    Ok(tasks)
}

/// Binds `listener` and serves until [`Running::stop`], with the background work running.
pub async fn start(state: SharedState, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let background = start_background(&state).await?;
    let app = crate::transport::http::router(state.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(Running { addr, state, handle, shutdown: Some(tx), background })
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    if listen.ip().is_unspecified() && config.public_url.is_none() {
        tracing::warn!(
            "listening on all interfaces without public_url: set POTLUCK_PUBLIC_URL to the address people use"
        );
    }
    let site = config.site_root.join("hash.txt");
    if !site.exists() {
        tracing::warn!(path = %site.display(), "the site is not built: pages work, but without their wasm (run `make run`)");
    }
    let state = prepare(config).await?;
    if !bootstrap::federation_admin_exists(&state.db).await? {
        let link = bootstrap::create_link(&state.db, &state.config.public_base()).await?;
        println!("\n  No federation admin yet. Open this one-time link (valid 24 h) to become the first one:\n\n    {link}\n");
    }
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let running = start(state.clone(), listener).await?;
    println!("Potluck is serving on {} (database: {:?})", state.config.public_base(), state.db.backend());
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    release_leases(&state).await;
    state.db.close().await;
    Ok(())
}

/// On a clean stop, what this process held is given up at once instead of when its leases run
/// out: its interrupted jobs run again on the next replica to look (or the next start), and
/// its server monitors are taken over.
async fn release_leases(state: &SharedState) {
    let jobs = crate::domain::apps::jobs::release_leases(state).await;
    let monitors = crate::domain::apps::servers::release_monitors(state).await;
    if let Err(e) = jobs.and(monitors) {
        tracing::warn!(error = %e, "cannot give up this process's leases; they run out by themselves");
    }
}
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
