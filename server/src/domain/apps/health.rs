//! Health between jobs, from the engine's event stream: an app whose containers die while no job
//! of Potluck's runs is unhealthy (announced once per episode, and again when it has been quiet
//! and whole for a while), and a server whose engine cannot be reached for a while is
//! unreachable (announced once per outage, and when it is back).
//!
//! Each announcement follows a compare-and-set on the row (`apps.unhealthy_since`,
//! `servers.unreachable_notified`), so several replicas watching one engine announce it once.

use super::apps;
use super::stack::Stack;
use crate::adapters::db::now_ms;
use crate::domain::notify::{self, Notice};
use crate::error::Result;
use crate::state::AppState;
use bollard::models::{EventMessage, EventMessageTypeEnum, TaskState};
use bollard::Docker;
use potluck_app::model::{AppId, CollectiveId, NotifyEvent, ServerId};
use serde_json::json;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// How often unhealthy apps are looked at for recovery.
const SWEEP: Duration = Duration::from_secs(5);

const NAMESPACE: &str = "com.docker.stack.namespace";

/// A container of a stack that failed, as one engine event tells it.
pub struct Failure {
    stack: String,
    /// "<service>: a container exited with code 137".
    reason: String,
    task: Option<String>,
}

/// Whether an event of a server's engine is a container of a stack that died with a failure,
/// ran out of memory or turned unhealthy. Synchronous: the monitor asks it of every event and
/// looks further (a task, the database) only for these.
pub fn failure(ev: &EventMessage) -> Option<Failure> {
    if ev.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let attributes = ev.actor.as_ref()?.attributes.as_ref()?;
    let reason = match ev.action.as_deref()? {
        "die" => match attributes.get("exitCode").map(String::as_str) {
            None | Some("0") => return None,
            Some(code) => format!("a container exited with code {code}"),
        },
        "health_status: unhealthy" => "a container's healthcheck failed".to_string(),
        "oom" => "a container ran out of memory".to_string(),
        _ => return None,
    };
    let stack = attributes.get(NAMESPACE)?.clone();
    let reason = match attributes.get("com.docker.swarm.service.name") {
        Some(service) => format!("{service}: {reason}"),
        None => reason,
    };
    Some(Failure { stack, reason, task: attributes.get("com.docker.swarm.task.id").cloned() })
}

/// Records a failure of an app's container while it was meant to run.
pub async fn on_failure(st: Arc<AppState>, server: ServerId, docker: Docker, f: Failure) {
    // A task the swarm itself was stopping (an update, a scale-down, a removal) is no failure.
    if let Some(task) = &f.task {
        match docker.inspect_task(task).await {
            Ok(t) if t.desired_state == Some(TaskState::RUNNING) => {}
            _ => return,
        }
    }
    if let Err(e) = app_failing(&st, server, &f.stack, &f.reason).await {
        tracing::warn!(error = %e, stack = f.stack, "cannot record an app's health");
    }
}

async fn app_failing(st: &AppState, server: ServerId, stack: &str, reason: &str) -> Result<()> {
    let row = sqlx::query(
        "SELECT a.id, a.collective_id, a.domain, a.status, c.slug, s.name AS server_name FROM apps a \
         JOIN collectives c ON c.id = a.collective_id JOIN servers s ON s.id = a.server_id \
         WHERE a.server_id = $1 AND a.stack_name = $2",
    )
    .bind(server)
    .bind(stack)
    .fetch_optional(st.db.pool())
    .await?;
    let Some(row) = row else { return Ok(()) };
    let app: AppId = row.try_get("id")?;
    if row.try_get::<String, _>("status")? != "deployed" {
        return Ok(());
    }
    let now = now_ms();
    let busy = sqlx::query(
        "SELECT 1 AS one FROM jobs WHERE app_id = $1 AND (state IN ('queued', 'running') OR finished_at > $2) LIMIT 1",
    )
    .bind(app)
    .bind(now - (st.config.notify_after_job_secs * 1000) as i64)
    .fetch_optional(st.db.pool())
    .await?;
    if busy.is_some() {
        return Ok(());
    }
    let collective: CollectiveId = row.try_get("collective_id")?;
    let (domain, slug, server_name): (String, String, String) =
        (row.try_get("domain")?, row.try_get("slug")?, row.try_get("server_name")?);
    let mut tx = st.db.begin().await?;
    let first = sqlx::query(
        "UPDATE apps SET unhealthy_since = $1, unhealthy_last_at = $1, unhealthy_reason = $2 WHERE id = $3 AND unhealthy_since IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(app)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let mut queued = 0;
    if first {
        let notice = Notice::new(NotifyEvent::AppUnhealthy, format!("{domain} is failing"))
            .text(format!(
                "{reason}, on {server_name}, while no job of Potluck's was running. The swarm restarts failed tasks; Potluck tells you again once the app has run whole for a while."
            ))
            .path(format!("/c/{slug}/apps/{domain}"))
            .data(json!({ "app": domain, "server": server_name, "reason": reason }));
        queued = notify::emit(&mut tx, collective, &notice).await?;
        tracing::info!(app = %domain, reason, "app unhealthy");
    } else {
        sqlx::query("UPDATE apps SET unhealthy_last_at = $1, unhealthy_reason = $2 WHERE id = $3")
            .bind(now)
            .bind(reason)
            .bind(app)
            .execute(&mut *tx)
            .await?;
    }
    notify::commit(st, tx, queued).await?;
    if first {
        super::live::touch(st, server).await;
    }
    Ok(())
}

/// Unhealthy apps that have been quiet for `notify_recovery_secs` and run every task they
/// should are healthy again (and their channels hear it).
pub async fn sweep(st: &AppState) -> Result<()> {
    let now = now_ms();
    let quiet = (st.config.notify_recovery_secs * 1000.0) as i64;
    let rows = sqlx::query(
        "SELECT a.id, a.collective_id, a.domain, a.unhealthy_since, c.slug, s.name AS server_name \
         FROM apps a JOIN collectives c ON c.id = a.collective_id JOIN servers s ON s.id = a.server_id \
         WHERE a.unhealthy_since IS NOT NULL AND a.unhealthy_last_at < $1",
    )
    .bind(now - quiet)
    .fetch_all(st.db.pool())
    .await?;
    for r in rows {
        let Some(app) = apps::by_id(st, r.try_get("id")?).await? else { continue };
        let Ok(stack) = Stack::of(st, &app).await else { continue };
        let Ok(services) = stack.services().await else { continue };
        if services.is_empty() || services.iter().any(|s| s.desired >= 0 && s.running < s.desired) {
            continue;
        }
        let since: i64 = r.try_get("unhealthy_since")?;
        let (domain, slug, server_name): (String, String, String) =
            (r.try_get("domain")?, r.try_get("slug")?, r.try_get("server_name")?);
        let mut tx = st.db.begin().await?;
        let cleared = sqlx::query(
            "UPDATE apps SET unhealthy_since = NULL, unhealthy_last_at = NULL, unhealthy_reason = NULL WHERE id = $1 AND unhealthy_since = $2",
        )
        .bind(r.try_get::<AppId, _>("id")?)
        .bind(since)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let mut queued = 0;
        if cleared {
            let minutes = (now - since) / 60_000;
            let notice = Notice::new(NotifyEvent::AppUnhealthy, format!("{domain} runs again"))
                .named("app_recovered")
                .text(format!("Every task of {domain} on {server_name} runs, and none has failed for a while (it was failing for about {minutes} min)."))
                .path(format!("/c/{slug}/apps/{domain}"))
                .data(json!({ "app": domain, "server": server_name, "unhealthy_since": since }));
            queued = notify::emit(&mut tx, r.try_get("collective_id")?, &notice).await?;
        }
        notify::commit(st, tx, queued).await?;
        if cleared {
            super::live::touch(st, app.server_id).await;
        }
    }
    Ok(())
}

/// Looks for recovered apps every few seconds.
pub fn spawn_sweeper(st: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP).await;
            if let Err(e) = sweep(&st).await {
                tracing::warn!(error = %e, "cannot look at unhealthy apps");
            }
        }
    })
}

/// The server's engine did not answer: announced once the outage lasts `notify_unreachable_secs`.
pub async fn server_unreachable(st: &AppState, server: ServerId, error: &str) -> Result<()> {
    let now = now_ms();
    sqlx::query("UPDATE servers SET unreachable_since = $1 WHERE id = $2 AND unreachable_since IS NULL")
        .bind(now)
        .bind(server)
        .execute(st.db.pool())
        .await?;
    let row = sqlx::query(
        "SELECT s.name, s.collective_id, s.unreachable_since, c.slug FROM servers s JOIN collectives c ON c.id = s.collective_id WHERE s.id = $1",
    )
    .bind(server)
    .fetch_optional(st.db.pool())
    .await?;
    let Some(row) = row else { return Ok(()) };
    let since: i64 = row.try_get::<Option<i64>, _>("unreachable_since")?.unwrap_or(now);
    if now - since < (st.config.notify_unreachable_secs * 1000) as i64 {
        return Ok(());
    }
    let mut tx = st.db.begin().await?;
    let first = sqlx::query("UPDATE servers SET unreachable_notified = 1 WHERE id = $1 AND unreachable_notified = 0")
        .bind(server)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    let mut queued = 0;
    if first {
        let (name, slug): (String, String) = (row.try_get("name")?, row.try_get("slug")?);
        let minutes = (now - since) / 60_000;
        let notice = Notice::new(NotifyEvent::ServerUnreachable, format!("server {name} cannot be reached"))
            .text(format!("Potluck has not reached the engine of {name} for {minutes} min: {error}. Deploys and backups there cannot run until it is back."))
            .path(format!("/c/{slug}/servers"))
            .data(json!({ "server": name, "since": since, "error": error }));
        queued = notify::emit(&mut tx, row.try_get("collective_id")?, &notice).await?;
    }
    notify::commit(st, tx, queued).await?;
    Ok(())
}

/// The server's engine answered: an outage that was announced is announced over.
pub async fn server_reachable(st: &AppState, server: ServerId) -> Result<()> {
    let mut tx = st.db.begin().await?;
    let row = sqlx::query(
        "UPDATE servers SET unreachable_since = NULL, unreachable_notified = 0 WHERE id = $1 AND unreachable_notified = 1 \
         RETURNING name, collective_id",
    )
    .bind(server)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query("UPDATE servers SET unreachable_since = NULL WHERE id = $1 AND unreachable_since IS NOT NULL")
        .bind(server)
        .execute(&mut *tx)
        .await?;
    let mut queued = 0;
    if let Some(row) = row {
        let name: String = row.try_get("name")?;
        let collective: CollectiveId = row.try_get("collective_id")?;
        let slug: String = sqlx::query("SELECT slug FROM collectives WHERE id = $1")
            .bind(collective)
            .fetch_one(&mut *tx)
            .await?
            .try_get("slug")?;
        let notice = Notice::new(NotifyEvent::ServerUnreachable, format!("server {name} is reached again"))
            .named("server_reachable")
            .text(format!("Potluck reaches the engine of {name} again."))
            .path(format!("/c/{slug}/servers"))
            .data(json!({ "server": name }));
        queued = notify::emit(&mut tx, collective, &notice).await?;
    }
    notify::commit(st, tx, queued).await?;
    Ok(())
}
