//! Deploys run as persisted jobs: queued in the same transaction as their audit event, one
//! unfinished job per app (a second request is told who is deploying), worked off in the
//! background, their progress written to `job_events` and broadcast live. A job left running by
//! a stopped Potluck is run again at the next start (deploys are idempotent), or failed with the
//! reason after three attempts: none is ever left "running".

use super::apps::{self, AppRow};
use super::backups::{self, Lines};
use super::plan::{self, Target};
use super::stack::Stack;
use super::target;
use super::{drills, schedules};
use crate::adapters::db::now_ms;
use crate::adapters::engine::converge::{Outcome, Progress};
use crate::adapters::engine::convert::StackPlan;
use crate::adapters::engine::deploy::{DeployOptions, ResolveImage, Step};
use crate::adapters::engine::envfile::EnvFile;
use crate::domain::audit::{self, Actor, Event, Origin};
use crate::domain::authz::{Cap, CollectiveRef};
use crate::domain::notify::{self, Notice};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::api::StartJob;
use potluck_app::error::ApiError;
use potluck_app::model::{AppId, JobId, NotifyEvent};
use potluck_app::model::{AppStatus, JobDetail, JobEventView, JobKind, JobState, JobSummary, VolumeCoverage};
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, Notify};
use tracing::Instrument;

/// How many times a job is started before a crash-looping Potluck gives up on it.
const MAX_ATTEMPTS: i64 = 3;

pub use potluck_app::model::JobOptions;

/// The live side of jobs: wakes the worker, and carries events to whoever watches.
pub struct JobHub {
    pub wake: Notify,
    pub events: broadcast::Sender<(JobId, JobEventView)>,
}

impl Default for JobHub {
    fn default() -> Self {
        JobHub { wake: Notify::new(), events: broadcast::channel(1024).0 }
    }
}

fn summary(r: &sqlx::any::AnyRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: r.try_get("id")?,
        app_id: r.try_get("app_id")?,
        kind: crate::adapters::db::stored(r, "kind")?,
        state: crate::adapters::db::stored(r, "state")?,
        target_version: r.try_get("target_version")?,
        requested_by: r.try_get("requested_by_name")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        result: r.try_get("result")?,
    })
}

const JOB_COLUMNS: &str =
    "id, app_id, kind, state, target_version, requested_by_name, created_at, started_at, finished_at, result";

pub async fn for_app(st: &AppState, app_id: AppId, limit: i64) -> Result<Vec<JobSummary>> {
    let rows = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE app_id = $1 ORDER BY id DESC LIMIT $2"))
        .bind(app_id)
        .bind(limit)
        .fetch_all(st.db.pool())
        .await?;
    rows.iter().map(summary).collect()
}

pub async fn get(st: &AppState, id: JobId) -> Result<Option<JobSummary>> {
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(st.db.pool())
        .await?;
    row.as_ref().map(summary).transpose()
}

pub async fn events_after(st: &AppState, job_id: JobId, after: i64) -> Result<Vec<JobEventView>> {
    let rows = sqlx::query("SELECT seq, at, data FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq")
        .bind(job_id)
        .bind(after)
        .fetch_all(st.db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            let data: String = r.try_get("data")?;
            let v: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
            Ok(JobEventView {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                text: v["text"].as_str().unwrap_or_default().to_string(),
                kind: v["kind"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// A job with its events, for whoever may see the app.
pub async fn detail(st: &AppState, access: &Cap<scope::Job>) -> Result<JobDetail> {
    let app = access.app();
    let job = access.job().clone();
    Ok(JobDetail {
        events: events_after(st, job.id, 0).await?,
        app_domain: app.domain.clone(),
        collective: app.collective.clone(),
        job,
    })
}

/// `start_job`: queues a job for the capability's app.
pub async fn start(st: &AppState, access: &Cap<scope::App>, input: StartJob) -> Result<JobSummary> {
    let kind = JobKind::parse(&input.kind).map_err(|e| ApiError::invalid("kind", e))?;
    if input.options.scheduled {
        return Err(
            ApiError::invalid("options.scheduled", "only Potluck's backup scheduler starts scheduled backups").into()
        );
    }
    enqueue(st, access.collective(), access.app(), access.origin(), kind, Some(&input.target), input.options).await
}

/// Queues a job for an app; refuses when one is already queued or running. The caller holds
/// the operator's permission on the app (a capability, or the secret rotation that needs it).
pub async fn enqueue(
    st: &AppState,
    c: &CollectiveRef,
    app: &AppRow,
    origin: &Origin,
    kind: JobKind,
    target: Option<&str>,
    options: JobOptions,
) -> Result<JobSummary> {
    options.resolve_image.parse::<ResolveImage>().map_err(|e| ApiError::invalid("resolve_image", e))?;
    if options.timeout_secs.is_some_and(|t| t == 0 || t > 86_400) {
        return Err(
            ApiError::invalid("timeout_secs", "give 1 to 86400 seconds (or nothing for the recipe's timeout)").into()
        );
    }
    let target = if kind.is_deploy() {
        target::resolve(st, app, kind, target).await?.version
    } else {
        backups::check_request(st, app, kind, &options).await?;
        app.version.clone()
    };
    // Taking over another tool's objects asks the engine, before the transaction.
    let claimed = if options.take_over && kind.is_deploy() { Some(super::drift::claim(st, app).await?) } else { None };
    let actor = &origin.actor;
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    if let Some(claimed) = &claimed {
        super::drift::record_claim(&mut tx, app, claimed).await?;
    }
    let inserted = sqlx::query(
        "INSERT INTO jobs (app_id, collective_id, kind, state, requested_by, requested_by_name, target_version, options, created_at) \
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(app.id)
    .bind(app.collective_id)
    .bind(kind.as_str())
    .bind(actor.id)
    .bind(&actor.name)
    .bind(&target)
    .bind(serde_json::to_string(&options).unwrap_or_else(|_| "{}".into()))
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let id: JobId = match inserted {
        Ok(r) => r.try_get("id")?,
        Err(e) if crate::adapters::db::is_unique_violation(&e) => {
            drop(tx);
            let active = sqlx::query(
                "SELECT id, kind, requested_by_name FROM jobs WHERE app_id = $1 AND state IN ('queued', 'running')",
            )
            .bind(app.id)
            .fetch_optional(st.db.pool())
            .await?;
            let who = match active {
                Some(r) => format!(
                    "{} is already being changed: {} (job {}) requested by {}",
                    app.domain,
                    r.try_get::<String, _>("kind")?,
                    r.try_get::<JobId, _>("id")?,
                    r.try_get::<String, _>("requested_by_name")?
                ),
                None => format!("{} is already being changed", app.domain),
            };
            return Err(ApiError::conflict(who).into());
        }
        Err(e) => return Err(e.into()),
    };
    let event = Event::new(kind.requested(), format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .details(json!({ "job_id": id, "target": target, "options": options }));
    tx.record(origin, event).await?;
    tx.commit().await?;
    st.jobs.wake.notify_one();
    get(st, id).await?.ok_or_else(|| ApiError::not_found("job").into())
}

/// Jobs whose replica stopped renewing their lease (it was stopped or crashed) run again, or
/// fail after three attempts. Each is taken with a compare-and-set on the lease it was read
/// with, so that of several replicas one requeues it. Runs at start and on every worker tick.
pub async fn recover(st: &AppState) -> Result<()> {
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT id, attempts, lease_until FROM jobs WHERE state = 'running' AND (lease_until IS NULL OR lease_until < $1)",
    )
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    for r in rows {
        let id: JobId = r.try_get("id")?;
        let attempts: i64 = r.try_get("attempts")?;
        let lease: Option<i64> = r.try_get("lease_until")?;
        let give_up = attempts >= MAX_ATTEMPTS;
        let taken = sqlx::query(
            "UPDATE jobs SET state = $1, lease_holder = NULL, lease_until = NULL, result = $2, finished_at = $3 \
             WHERE id = $4 AND state = 'running' AND COALESCE(lease_until, -1) = $5",
        )
        .bind(if give_up { JobState::Failed } else { JobState::Queued }.as_str())
        .bind(give_up.then(|| {
            format!("the Potluck running this job stopped {attempts} times; giving up (check the app's services before retrying)")
        }))
        .bind(give_up.then_some(now))
        .bind(id)
        .bind(lease.unwrap_or(-1))
        .execute(st.db.pool())
        .await?
        .rows_affected()
            == 1;
        if !taken {
            continue;
        }
        if give_up {
            let reason = format!("the Potluck running this job stopped {attempts} times; giving up");
            append_event(st, id, "done", &reason).await?;
            announce_end(st, id, false, &reason);
            tracing::warn!(job.id = id.0, attempts, "job given up: its replica stopped each time");
        } else {
            append_event(
                st,
                id,
                "step",
                "The Potluck running this job stopped (restarted or crashed; its lease ran out): it runs again (deploys are idempotent)",
            )
            .await?;
            tracing::info!(job.id = id.0, "job requeued: the replica running it stopped renewing its lease");
            st.jobs.wake.notify_one();
        }
    }
    Ok(())
}

/// Gives up the leases of the jobs this process runs (on a clean stop, after its tasks were
/// stopped), so that they run again at once.
pub async fn release_leases(st: &AppState) -> Result<()> {
    sqlx::query("UPDATE jobs SET lease_until = 0 WHERE state = 'running' AND lease_holder = $1")
        .bind(&st.replica)
        .execute(st.db.pool())
        .await?;
    Ok(())
}

/// Renews the job's lease every third of its length for as long as this replica holds it;
/// returns when the lease is lost (another replica took the job after this one could not renew
/// in time), so that the caller stops working on it.
async fn hold_lease(st: &AppState, job_id: JobId) {
    let lease = st.lease();
    let mut renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(lease / 3).await;
        let until = now_ms() + lease.as_millis() as i64;
        let held =
            sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND state = 'running' AND lease_holder = $3")
                .bind(until)
                .bind(job_id)
                .bind(&st.replica)
                .execute(st.db.pool())
                .await;
        match held {
            Ok(done) if done.rows_affected() == 1 => renewed = std::time::Instant::now(),
            Ok(_) => {
                tracing::warn!(job.id = job_id.0, "this replica lost the job's lease: it stops working on it");
                return;
            }
            Err(e) => {
                tracing::warn!(job.id = job_id.0, error = %e, "cannot renew the job's lease");
                if renewed.elapsed() >= lease {
                    return;
                }
            }
        }
    }
}

/// Writes a job event in `tx` (the caller commits, then broadcasts it).
async fn insert_event(tx: &mut sqlx::AnyConnection, job_id: JobId, kind: &str, text: &str) -> Result<JobEventView> {
    let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM job_events WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("next")?;
    let at = now_ms();
    sqlx::query("INSERT INTO job_events (job_id, seq, at, data) VALUES ($1, $2, $3, $4)")
        .bind(job_id)
        .bind(seq)
        .bind(at)
        .bind(json!({ "kind": kind, "text": text }).to_string())
        .execute(&mut *tx)
        .await?;
    Ok(JobEventView { seq, at, text: text.to_string(), kind: kind.to_string() })
}

async fn append_event(st: &AppState, job_id: JobId, kind: &str, text: &str) -> Result<JobEventView> {
    let mut tx = st.db.begin().await?;
    let view = insert_event(&mut tx, job_id, kind, text).await?;
    tx.commit().await?;
    let _ = st.jobs.events.send((job_id, view.clone()));
    Ok(view)
}

/// Tells live watchers the job ended (after its state is committed).
fn announce_end(st: &AppState, job_id: JobId, ok: bool, result: &str) {
    let _ = st.jobs.events.send((
        job_id,
        JobEventView {
            seq: i64::MAX,
            at: now_ms(),
            text: result.to_string(),
            kind: if ok { "succeeded" } else { "failed" }.into(),
        },
    ));
}

async fn finish(st: &AppState, job_id: JobId, ok: bool, result: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET state = $1, result = $2, finished_at = $3 WHERE id = $4")
        .bind(if ok { JobState::Succeeded } else { JobState::Failed }.as_str())
        .bind(result)
        .bind(now_ms())
        .bind(job_id)
        .execute(st.db.pool())
        .await?;
    announce_end(st, job_id, ok, result);
    Ok(())
}

/// The background worker: requeues jobs whose replica stopped, claims queued jobs under a
/// lease and runs each in its own task beside the renewal of its lease. The job tasks belong to
/// the worker: stopping it stops them where they are (as a crash would), and once their leases
/// run out [`recover`] (here or on another replica) queues them again.
pub fn spawn_worker(st: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            if let Err(e) = recover(&st).await {
                tracing::warn!(error = %e, "cannot look for jobs whose replica stopped");
            }
            let now = now_ms();
            let claimed = sqlx::query(
                "UPDATE jobs SET state = 'running', started_at = $1, attempts = attempts + 1, lease_until = $2, lease_holder = $3 \
                 WHERE state = 'queued' AND id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1) RETURNING id",
            )
            .bind(now)
            .bind(now + st.lease().as_millis() as i64)
            .bind(&st.replica)
            .fetch_optional(st.db.pool())
            .await;
            match claimed {
                Ok(Some(row)) => {
                    if let Ok(id) = row.try_get::<JobId, _>("id") {
                        let st2 = st.clone();
                        running.spawn(
                            async move {
                                let outcome = tokio::select! {
                                    outcome = run(&st2, id) => outcome,
                                    () = hold_lease(&st2, id) => return,
                                };
                                if let Err(e) = outcome {
                                    tracing::error!(job.id = id.0, error = %e, "job failed to run");
                                    let _ = append_event(&st2, id, "done", &format!("internal error: {e}")).await;
                                    let _ = finish(&st2, id, false, "internal error (see Potluck's log)").await;
                                }
                            }
                            .instrument(tracing::info_span!(
                                "job",
                                job.id = id.0,
                                job.kind = tracing::field::Empty,
                                app = tracing::field::Empty,
                            )),
                        );
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim jobs"),
            }
            tokio::select! {
                _ = st.jobs.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    })
}

/// Collects progress from the engine's synchronous callbacks and writes it in order.
#[derive(Clone)]
struct Emitter {
    tx: mpsc::UnboundedSender<(String, String)>,
}

impl Emitter {
    fn start(st: Arc<AppState>, job_id: JobId) -> (Emitter, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, String)>();
        let writer = tokio::spawn(async move {
            while let Some((kind, text)) = rx.recv().await {
                if let Err(e) = append_event(&st, job_id, &kind, &text).await {
                    tracing::warn!(job.id = job_id.0, error = %e, "cannot record job progress");
                }
            }
        });
        (Emitter { tx }, writer)
    }

    fn emit(&self, kind: &str, text: impl Into<String>) {
        let _ = self.tx.send((kind.to_string(), text.into()));
    }

    /// Steps and progress lines, for the backup engine's callbacks.
    fn lines(&self) -> Lines {
        let (a, b) = (self.clone(), self.clone());
        Lines {
            step: std::sync::Arc::new(move |s| a.emit("step", s)),
            progress: std::sync::Arc::new(move |s| b.emit("progress", s)),
        }
    }
}

async fn run(st: &Arc<AppState>, job_id: JobId) -> Result<()> {
    let row = sqlx::query("SELECT app_id, kind, target_version, options, requested_by, requested_by_name, attempts FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_one(st.db.pool())
        .await?;
    let app_id: AppId = row.try_get("app_id")?;
    let kind: JobKind = crate::adapters::db::stored(&row, "kind")?;
    let target: Option<String> = row.try_get("target_version")?;
    let options: JobOptions = serde_json::from_str(&row.try_get::<String, _>("options")?).unwrap_or_default();
    let requester = Actor {
        kind: "user",
        id: row.try_get("requested_by")?,
        name: row.try_get("requested_by_name")?,
        token_id: None,
    };
    let app = apps::by_id(st, app_id).await?.ok_or_else(|| ApiError::not_found("app"))?;
    let span = tracing::Span::current();
    span.record("job.kind", kind.as_str());
    span.record("app", format!("{}/{}", app.collective, app.domain).as_str());
    tracing::info!("job started");
    let (em, writer) = Emitter::start(st.clone(), job_id);
    em.emit(
        "step",
        format!("{kind} of {} ({}) on {} started", app.domain, target.as_deref().unwrap_or("-"), app.server),
    );
    // A deploy that a stopped Potluck left half-way finds its own stack: that is no reason to stop.
    let resumed = row.try_get::<i64, _>("attempts")? > 1;
    let outcome = execute(st, &app, job_id, kind, target.as_deref(), &options, resumed, &em).await;
    drop(em);
    let _ = writer.await;
    let (ok, result, chaos_version) = match &outcome {
        Ok(done) => (true, done.text.clone(), done.chaos_version.clone()),
        Err(failure) => (false, failure.text.clone(), None),
    };
    let rolled_back = outcome.as_ref().err().is_some_and(|f| f.rolled_back);
    let done = outcome.as_ref().ok();
    // What a deploy left on the swarm (read before the transaction): what the monitor measures
    // changes outside Potluck against (`drift.rs`). Unreadable, the previous record stays; so
    // does a failed deploy's when the stack had changed outside Potluck (a deploy refused to
    // touch another tool's objects leaves that change standing).
    let record_left = kind.is_deploy() && (ok || app.drift.is_none());
    let left = if record_left { super::drift::observe(st, &app).await.ok() } else { None };
    // The job's last event and outcome, the app's new state and their audit event commit
    // together: nothing reads "deployed" without the event that says who did it.
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    // Only while this replica holds the job: one that lost its lease leaves the end to the
    // replica that took it over (the whole transaction is dropped).
    let ended = sqlx::query(
        "UPDATE jobs SET state = $1, result = $2, finished_at = $3, lease_until = NULL \
         WHERE id = $4 AND state = 'running' AND lease_holder = $5",
    )
    .bind(if ok { JobState::Succeeded } else { JobState::Failed }.as_str())
    .bind(&result)
    .bind(now)
    .bind(job_id)
    .bind(&st.replica)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if ended == 0 {
        tracing::warn!(job.id = job_id.0, "the job was taken over by another replica; its end is theirs");
        return Ok(());
    }
    let done_event = insert_event(&mut tx, job_id, "done", &result).await?;
    if ok {
        match kind {
            JobKind::Undeploy => {
                sqlx::query("UPDATE apps SET status = $1, updated_at = $2 WHERE id = $3")
                    .bind(AppStatus::Undeployed.as_str())
                    .bind(now)
                    .bind(app.id)
                    .execute(&mut *tx)
                    .await?;
            }
            JobKind::Backup | JobKind::Restore | JobKind::Drill => {}
            JobKind::Chaos => {
                let short = chaos_version.clone().unwrap_or_else(|| target.clone().unwrap_or_default());
                sqlx::query("UPDATE apps SET status = $1, chaos = 1, chaos_version = $2, deployed_at = $3, updated_at = $3 WHERE id = $4")
                    .bind(AppStatus::Deployed.as_str())
                    .bind(short)
                    .bind(now)
                    .bind(app.id)
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {
                // abra records the deployed version in the env's TYPE line.
                let mut env = EnvFile::parse(&app.env).unwrap_or_default();
                let version = target.clone().unwrap_or_default();
                let key = if env.entry("RECIPE").is_some() { "RECIPE" } else { "TYPE" };
                env.set(key, &format!("{}:{version}", app.recipe));
                sqlx::query("UPDATE apps SET status = $1, version = $2, chaos = 0, chaos_version = NULL, env = $3, deployed_at = $4, updated_at = $4 WHERE id = $5")
                    .bind(AppStatus::Deployed.as_str())
                    .bind(&version)
                    .bind(env.to_string())
                    .bind(now)
                    .bind(app.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    } else if kind.is_deploy() && kind != JobKind::Undeploy {
        // Rolled back: the app runs the version it ran, and its record says so.
        sqlx::query("UPDATE apps SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(if rolled_back { AppStatus::Deployed } else { AppStatus::Failed }.as_str())
            .bind(now)
            .bind(app.id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(left) = &left {
        sqlx::query("UPDATE apps SET deployed_services = $1, drift = NULL WHERE id = $2")
            .bind(super::drift::services_json(left))
            .bind(app.id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(taken) = done.and_then(|d| d.taken.as_ref()) {
        backups::record(&mut tx, &app, job_id, taken).await?;
    }
    if let Some(coverage) = done.and_then(|d| d.coverage.as_ref()) {
        backups::save_coverage(&mut tx, app.id, coverage).await?;
    }
    if let Some(d) = done.filter(|d| !d.forgotten.is_empty()) {
        backups::forget_recorded(&mut tx, app.id, &d.forgotten).await?;
    }
    if options.scheduled {
        schedules::record_end(&mut tx, app.id, job_id, &result).await?;
    }
    if ok && kind.is_deploy() {
        // A deploy that went through starts the app's health afresh: the next failure is news.
        sqlx::query(
            "UPDATE apps SET unhealthy_since = NULL, unhealthy_last_at = NULL, unhealthy_reason = NULL WHERE id = $1",
        )
        .bind(app.id)
        .execute(&mut *tx)
        .await?;
    }
    let notified = if ok {
        0
    } else {
        notify::emit(
            &mut tx,
            app.collective_id,
            &failure_notice(&app, job_id, kind, target.as_deref(), &result, rolled_back),
        )
        .await?
    };
    let origin = Origin { actor: requester, request_id: format!("job-{job_id}"), client_addr: "potluck".into() };
    let event = Event::new(kind.done(), format!("app {}", app.domain))
        .in_collective(app.collective_id, &app.collective)
        .outcome(if ok { "success" } else { "failure" })
        .details(json!({ "job_id": job_id, "target": target, "result": result }));
    tx.record(&origin, event).await?;
    tx.commit().await?;
    // The apps list and the app page show the app's new status.
    super::live::touch(st, app.server_id).await;
    if notified > 0 {
        notify::deliver::wake(st);
    }
    let _ = st.jobs.events.send((job_id, done_event));
    announce_end(st, job_id, ok, &result);
    tracing::info!(job.ok = ok, job.result = %result, "job finished");
    Ok(())
}

/// What the collective's channels hear when a job fails.
fn failure_notice(
    app: &AppRow,
    job: JobId,
    kind: JobKind,
    target: Option<&str>,
    result: &str,
    rolled_back: bool,
) -> Notice {
    let event = match kind {
        JobKind::Backup | JobKind::Restore => NotifyEvent::BackupFailed,
        JobKind::Drill => NotifyEvent::DrillFailed,
        _ => NotifyEvent::DeployFailed,
    };
    let mut text = format!("{kind} of {} on {} failed: {result}", app.domain, app.server);
    if rolled_back {
        text.push_str("\nThe version that ran before was deployed again and runs.");
    }
    Notice::new(event, format!("{kind} of {} failed", app.domain)).text(text).path(format!("/jobs/{job}")).data(json!({
        "app": app.domain, "server": app.server, "recipe": app.recipe, "job_id": job, "kind": kind.as_str(),
        "target": target, "result": result, "rolled_back": rolled_back,
    }))
}

/// How a job that ran to the end went.
#[derive(Default)]
struct Done {
    text: String,
    /// A chaos deploy's short commit.
    chaos_version: Option<String>,
    /// A backup's snapshot, recorded with the job's end.
    taken: Option<backups::Taken>,
    /// What the backup labels of the stack just deployed cover.
    coverage: Option<Vec<VolumeCoverage>>,
    /// Snapshots a schedule's keep rules removed (full ids), dropped from the record.
    forgotten: Vec<String>,
}

/// How a job that did not run to the end went.
struct Failure {
    text: String,
    /// A failed upgrade whose previous version was deployed again and converged: the app runs
    /// as it did before the job.
    rolled_back: bool,
}

impl From<String> for Failure {
    fn from(text: String) -> Failure {
        Failure { text, rolled_back: false }
    }
}

impl From<&str> for Failure {
    fn from(text: &str) -> Failure {
        Failure { text: text.to_string(), rolled_back: false }
    }
}

/// Runs one job; `Ok` and `Err` carry the sentence that ends it.
#[allow(clippy::too_many_arguments)]
async fn execute(
    st: &Arc<AppState>,
    app: &AppRow,
    job_id: JobId,
    kind: JobKind,
    target: Option<&str>,
    options: &JobOptions,
    resumed: bool,
    em: &Emitter,
) -> std::result::Result<Done, Failure> {
    let stack = Stack::of(st, app).await.map_err(|e| e.to_string())?;
    if kind == JobKind::Undeploy {
        em.emit("step", format!("removing stack {}", app.stack_name));
        let found = stack
            .remove(&app.ownership(), &app.adopted, Some(Duration::from_secs(180)), &|s| em.emit("step", s.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        if !found {
            em.emit("step", format!("nothing found in stack {}", app.stack_name));
        }
        if options.remove_secrets {
            stack.remove_secrets(&|m| em.emit("step", m)).await?;
        }
        if options.remove_volumes {
            stack.remove_volumes(&|m| em.emit("step", m)).await?;
        } else {
            em.emit("step", "volumes are kept (undeploy with \"remove volumes\" to delete them)");
        }
        return Ok(Done { text: format!("{} undeployed", app.domain), ..Done::default() });
    }
    if kind == JobKind::Backup {
        let reason = if options.scheduled { "schedule" } else { "manual" };
        let taken = backups::take(st, app, &stack, options, reason, &em.lines()).await?;
        let b = &taken.backed_up;
        let mut text = format!(
            "snapshot {} saved: {} files, {}, checked",
            b.snapshot.short_id(),
            b.files,
            potluck_app::model::human_bytes(b.bytes)
        );
        let mut forgotten = Vec::new();
        if options.scheduled {
            // The snapshot is safe whatever retention does: its failure is told, not fatal.
            let kept = match backups::repo_by_id(st, app.collective_id, taken.repo).await {
                Ok(repo) => match repo.open(st).await {
                    Ok((location, password)) => schedules::retain(st, app, location, password, &em.lines()).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.to_string()),
            };
            match kept {
                Ok(gone) => {
                    if !gone.is_empty() {
                        text.push_str(&format!("; {} older scheduled snapshots forgotten", gone.len()));
                    }
                    forgotten = gone;
                }
                Err(e) => {
                    em.emit("step", format!("the keep rules were not applied: {e}"));
                    text.push_str(&format!("; the keep rules were not applied: {e}"));
                }
            }
            if options.drill {
                // The snapshot is recorded first: the drill's outcome is kept with it.
                let mut tx = st.db.begin().await.map_err(|e| e.to_string())?;
                backups::record(&mut tx, app, job_id, &taken).await.map_err(|e| e.to_string())?;
                backups::forget_recorded(&mut tx, app.id, &forgotten).await.map_err(|e| e.to_string())?;
                tx.commit().await.map_err(|e| e.to_string())?;
                let id = taken.backed_up.snapshot.id.clone();
                let drilled = drills::run(st, app, job_id, &id, taken.repo, None, &em.lines()).await?;
                text.push_str(&format!("; {}", drilled.text));
                // A snapshot that does not restore is a failed scheduled backup: the snapshot
                // stays, marked, and the run is red where people look.
                return if drilled.ok { Ok(Done { text, ..Done::default() }) } else { Err(text.into()) };
            }
        }
        return Ok(Done { text, taken: Some(taken), forgotten, ..Done::default() });
    }
    if kind == JobKind::Drill {
        let (snapshot, repo) = drills::chosen(st, app, options).await.map_err(|e| e.to_string())?;
        let drilled = drills::run(st, app, job_id, &snapshot, repo, options.timeout_secs, &em.lines()).await?;
        return if drilled.ok { Ok(Done { text: drilled.text, ..Done::default() }) } else { Err(drilled.text.into()) };
    }
    if kind == JobKind::Restore {
        let r = backups::restore(st, app, &stack, options, &em.lines()).await?;
        return Ok(Done {
            text: format!(
                "snapshot {} restored into {}: {} files, {} ({})",
                r.snapshot.short_id(),
                app.domain,
                r.files,
                potluck_app::model::human_bytes(r.bytes),
                r.volumes.join(", ")
            ),
            ..Done::default()
        });
    }
    let target_enum = if kind == JobKind::Chaos {
        Target::Chaos(target.unwrap_or("HEAD").to_string())
    } else {
        Target::Version(target.unwrap_or_default().to_string())
    };
    let recipe = crate::domain::recipes::store::get(st, &app.recipe).await.map_err(|e| e.to_string())?;
    let p = plan::build(st, app, &recipe, &target_enum).await.map_err(|e| e.to_string())?;
    let check_kind = if resumed && kind == JobKind::Deploy { JobKind::Redeploy } else { kind };
    let checks = plan::checks(st, app, &p, Some(&stack), check_kind).await;
    let mut blocked = false;
    for c in &checks {
        em.emit("check", format!("{}: {}", c.level, c.message));
        blocked |= c.level == "error";
    }
    if blocked {
        return Err("the checks before deploying failed (see above)".into());
    }
    let resolve: ResolveImage = options.resolve_image.parse().unwrap_or(ResolveImage::Never);
    let opts = DeployOptions {
        resolve_image: resolve,
        ownership: app.ownership(),
        force: kind == JobKind::Redeploy,
        adopted: app.adopted.clone(),
        ..DeployOptions::default()
    };
    // An upgrade runs once a backup of what it changes is safe (a resumed one already has it).
    let before = if kind == JobKind::Upgrade && !resumed {
        backups::before_upgrade(st, app, &stack, options, &em.lines(), job_id).await?
    } else {
        None
    };
    let restorable = |e: String| match &before {
        Some(id) => format!(
            "{e}; snapshot {id} was taken before the upgrade: restore it from the app's backups if the data changed"
        ),
        None => e,
    };
    let secs = options.timeout_secs.unwrap_or_else(|| crate::adapters::engine::timeout_of(&p.plan));
    if let Err(e) = deploy_and_converge(app, &stack, &p.plan, &opts, secs, em).await {
        // A failed upgrade puts the version that ran back, unless the operator asked to keep it.
        let previous = app.version.clone().filter(|_| kind == JobKind::Upgrade && !app.chaos && !options.no_rollback);
        let Some(previous) = previous else { return Err(restorable(e).into()) };
        em.emit("step", format!("the upgrade failed: rolling {} back to {previous}", app.domain));
        let back = plan::build(st, app, &recipe, &Target::Version(previous.clone())).await.map_err(|e| e.to_string());
        let rolled = match back {
            Ok(back) => {
                let opts = DeployOptions { force: false, ..opts };
                let secs = crate::adapters::engine::timeout_of(&back.plan);
                deploy_and_converge(app, &stack, &back.plan, &opts, secs, em).await
            }
            Err(e) => Err(e),
        };
        return Err(match rolled {
            Ok(()) => Failure {
                text: restorable(format!("{e}; rolled back to {previous}, which runs again")),
                rolled_back: true,
            },
            Err(r) => restorable(format!("{e}; the rollback to {previous} failed too: {r}")).into(),
        });
    }
    Ok(Done {
        text: match (&p.version_label, &p.chaos_version) {
            (_, Some(cv)) => format!("{} converged at chaos version {cv}", app.domain),
            (Some(v), None) => format!("{} converged at {v}", app.domain),
            _ => format!("{} converged", app.domain),
        },
        chaos_version: p.chaos_version.clone(),
        taken: None,
        forgotten: Vec::new(),
        coverage: Some(backups::coverage(&crate::adapters::backup::declared(&p.plan))),
    })
}

/// A convergence report as a job event: its kind and line.
pub(super) fn progress_line(p: Progress) -> (&'static str, String) {
    match p {
        Progress::Task { service, slot, state, error, .. } => {
            let line = if error.is_empty() {
                format!("{service}.{slot}: {state}")
            } else {
                format!("{service}.{slot}: {state}: {error}")
            };
            ("task", line)
        }
        Progress::Service { service, running, desired, state } => {
            ("service", format!("{service}: {running}/{desired} {state}"))
        }
    }
}

/// Deploys a plan and waits for it to converge, its progress as job events.
async fn deploy_and_converge(
    app: &AppRow,
    stack: &Stack,
    plan: &StackPlan,
    opts: &DeployOptions,
    secs: u64,
    em: &Emitter,
) -> std::result::Result<(), String> {
    let deployed =
        stack.deploy(plan, opts, &|s: Step| em.emit("step", s.to_string())).await.map_err(|e| e.to_string())?;
    em.emit("step", format!("waiting up to {secs} s for {} to converge", app.stack_name));
    let outcome = stack
        .converge(&deployed.services, Duration::from_secs(secs), &|pr| {
            let (kind, line) = progress_line(pr);
            em.emit(kind, line)
        })
        .await;
    match outcome {
        Outcome::Converged => Ok(()),
        other => Err(format!("deploy did not converge: {other}")),
    }
}
