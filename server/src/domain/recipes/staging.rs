//! Release CI: every release proposal, and every new commit of one, is tried on a staging server
//! before anyone approves it.
//!
//! The federation admin designates servers (a collective's registered server, with how many runs
//! it takes at once). Opening a proposal, moving it to a new commit or asking again queues a run
//! (`staging_runs`); the runner ([`spawn_runner`]) gives queued runs to staging servers with a
//! free slot, claiming each with a compare-and-set, and runs a [`trial`] of the proposal's commit
//! there under the server's guardrails: the throw-away install with the recipe's test env, the
//! smoke check, the backup round trip, the upgrade from the previous release, and the cleanup,
//! checked. The run holds a lease it renews while it goes; a run whose lease ran out (its
//! Potluck stopped) is failed as interrupted and its stack removed. Each line of the run's log is
//! stored as it comes, so the run's page shows it live; a failed run names the failing
//! service's task errors and last log lines, and is announced to the maintaining collectives
//! (`staging_failed`). A recipe may require a passed run of the current commit to publish.

use super::review::ProposalRow;
use super::store::{self, RecipeRow};
use super::trial::{self, Plans, Settings};
use crate::adapters::db::now_ms;
use crate::adapters::engine::deploy::ResolveImage;
use crate::adapters::git::LocalRecipe;
use crate::domain::apps::servers::{self, ServerRow};
use crate::domain::audit::{self, Event};
use crate::domain::authz::{Cap, CollectiveRef};
use crate::domain::notify::{self, Notice};
use crate::error::{Error, Result};
use crate::state::AppState;
use potluck_app::actions::AuditAction;
use potluck_app::api::{GetStagingRun, SetRecipeTesting, SetStagingServer};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// How long a run's claim lasts without being renewed.
const LEASE_MS: i64 = 60_000;
/// The most lines a run's log keeps (the rest is summed up in one line).
const MAX_LINES: i64 = 4000;
/// The most runs a staging server takes at once.
const MAX_RUNS: i64 = 8;
/// Bounds of a recipe's test settings.
const MAX_TEST_ENV: usize = 16 * 1024;
const MAX_COMMAND: usize = 2048;

async fn display_name(st: &AppState, user: UserId) -> Result<String> {
    Ok(sqlx::query("SELECT display_name FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(st.db.pool())
        .await?
        .map(|r| r.try_get::<String, _>("display_name"))
        .transpose()?
        .unwrap_or_else(|| "someone".into()))
}

// ---- Staging servers (the federation admin's) ----

pub async fn list_servers(st: &AppState, _fed: &Cap<scope::Federation>) -> Result<Vec<StagingServerView>> {
    let rows = sqlx::query(
        "SELECT c.slug, s.name, g.max_runs, g.designated_by_name, \
         (SELECT COUNT(*) FROM staging_runs r WHERE r.server_id = g.server_id AND r.state = 'running') AS running \
         FROM staging_servers g JOIN servers s ON s.id = g.server_id JOIN collectives c ON c.id = s.collective_id \
         ORDER BY c.slug, s.name",
    )
    .fetch_all(st.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StagingServerView {
                collective: r.try_get("slug")?,
                server: r.try_get("name")?,
                max_runs: r.try_get("max_runs")?,
                running: r.try_get("running")?,
                designated_by: r.try_get("designated_by_name")?,
            })
        })
        .collect()
}

pub async fn set_server(
    st: &AppState,
    fed: &Cap<scope::Federation>,
    input: SetStagingServer,
) -> Result<Vec<StagingServerView>> {
    if !(0..=MAX_RUNS).contains(&input.max_runs) {
        return Err(ApiError::invalid("max_runs", format!("0 (withdraw) to {MAX_RUNS}")).into());
    }
    let c = sqlx::query("SELECT id, slug, name FROM collectives WHERE slug = $1")
        .bind(input.slug.trim())
        .fetch_optional(st.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("collective {:?}", input.slug)))?;
    let c = CollectiveRef { id: c.try_get("id")?, slug: c.try_get("slug")?, name: c.try_get("name")? };
    let server = servers::by_name(st, &c, input.name.trim()).await?;
    let name = display_name(st, fed.user()).await?;
    let mut tx = audit::begin(&st.db).await?;
    if input.max_runs == 0 {
        sqlx::query("DELETE FROM staging_servers WHERE server_id = $1").bind(server.id).execute(&mut *tx).await?;
    } else {
        sqlx::query(
            "INSERT INTO staging_servers (server_id, max_runs, designated_by_name, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (server_id) DO UPDATE SET max_runs = excluded.max_runs, designated_by_name = excluded.designated_by_name",
        )
        .bind(server.id)
        .bind(input.max_runs)
        .bind(&name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    }
    let event = Event::new(AuditAction::StagingServerSet, format!("server {}/{}", c.slug, server.name))
        .details(json!({ "collective": c.slug, "server": server.name, "max_runs": input.max_runs }));
    tx.record(fed.origin(), event).await?;
    tx.commit().await?;
    st.staging.notify_one();
    list_servers(st, fed).await
}

/// Whether the federation has a staging server.
pub async fn available(st: &AppState) -> Result<bool> {
    Ok(sqlx::query("SELECT server_id FROM staging_servers LIMIT 1").fetch_optional(st.db.pool()).await?.is_some())
}

// ---- A recipe's test settings ----

fn smoke_of(json: &str) -> SmokeCheck {
    serde_json::from_str(json).unwrap_or_default()
}

pub async fn testing(st: &AppState, cap: &Cap<scope::Recipe>) -> Result<RecipeTesting> {
    testing_of(st, cap.recipe()).await
}

async fn testing_of(st: &AppState, r: &RecipeRow) -> Result<RecipeTesting> {
    let row = sqlx::query("SELECT test_env, smoke_check, require_green_run FROM recipes WHERE id = $1")
        .bind(r.id)
        .fetch_one(st.db.pool())
        .await?;
    Ok(RecipeTesting {
        recipe: r.name.clone(),
        test_env: row.try_get("test_env")?,
        smoke: smoke_of(&row.try_get::<String, _>("smoke_check")?),
        require_green_run: row.try_get::<i64, _>("require_green_run")? != 0,
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The smoke check the form describes, checked.
fn smoke_from(input: &SetRecipeTesting) -> std::result::Result<SmokeCheck, ApiError> {
    let service = input.smoke_service.trim().to_string();
    let needs_service = || {
        if is_name(&service) {
            Ok(())
        } else {
            Err(ApiError::invalid("smoke_service", "the service's name in the compose file (letters, digits, - and _)"))
        }
    };
    match input.smoke_kind.trim() {
        "" | "none" => Ok(SmokeCheck::None),
        "http" => {
            needs_service()?;
            let port: u16 = input
                .smoke_port
                .trim()
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ApiError::invalid("smoke_port", "a port from 1 to 65535"))?;
            let path = match input.smoke_path.trim() {
                "" => "/".to_string(),
                p => p.to_string(),
            };
            let url_safe = |c: char| c.is_ascii_alphanumeric() || "/-._~%?&=+:@,;".contains(c);
            if !path.starts_with('/') || path.len() > 512 || !path.chars().all(url_safe) {
                return Err(ApiError::invalid("smoke_path", "a path starting with / (at most 512 URL characters)"));
            }
            Ok(SmokeCheck::Http { service, port, path })
        }
        "command" => {
            needs_service()?;
            let command = input.smoke_command.trim().to_string();
            if command.is_empty() || command.len() > MAX_COMMAND || command.contains('\0') {
                return Err(ApiError::invalid(
                    "smoke_command",
                    format!("a shell command of at most {MAX_COMMAND} bytes"),
                ));
            }
            Ok(SmokeCheck::Command { service, command })
        }
        other => Err(ApiError::invalid("smoke_kind", format!("{other:?}: none, http or command"))),
    }
}

pub async fn set_testing(st: &AppState, cap: &Cap<scope::Recipe>, input: SetRecipeTesting) -> Result<RecipeTesting> {
    let r = cap.recipe();
    if input.test_env.len() > MAX_TEST_ENV {
        return Err(ApiError::invalid("test_env", format!("at most {} KiB", MAX_TEST_ENV / 1024)).into());
    }
    trial::parse_overrides(&input.test_env).map_err(|e| ApiError::invalid("test_env", e))?;
    let smoke = smoke_from(&input)?;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE recipes SET test_env = $1, smoke_check = $2, require_green_run = $3 WHERE id = $4")
        .bind(input.test_env.trim())
        .bind(serde_json::to_string(&smoke).map_err(Error::internal)?)
        .bind(input.require_green_run as i64)
        .bind(r.id)
        .execute(&mut *tx)
        .await?;
    // The env's values are the maintainers' test settings, not secrets; the log keeps its keys.
    let keys: Vec<String> =
        trial::parse_overrides(&input.test_env).unwrap_or_default().into_iter().map(|(k, _)| k).collect();
    let event = Event::new(AuditAction::RecipeTestingSet, format!("recipe {}", r.name)).details(json!({
        "test_env_keys": keys, "smoke": smoke.describe(), "require_green_run": input.require_green_run,
    }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    testing_of(st, r).await
}

// ---- Runs ----

fn summary_of(r: &sqlx::any::AnyRow) -> Result<StagingRunSummary> {
    let server = match (r.try_get::<Option<String>, _>("slug")?, r.try_get::<Option<String>, _>("server_name")?) {
        (Some(c), Some(s)) => Some(format!("{c}/{s}")),
        _ => None,
    };
    Ok(StagingRunSummary {
        id: r.try_get("id")?,
        commit: r.try_get("commit_id")?,
        version: r.try_get("version")?,
        upgrade_from: r.try_get("upgrade_from")?,
        state: r.try_get("state")?,
        server,
        requested_by: r.try_get("requested_by_name")?,
        failure: r.try_get("failure")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

const RUN_COLUMNS: &str = "r.id, r.commit_id, r.version, r.upgrade_from, r.state, r.requested_by_name, r.failure, \
     r.created_at, r.started_at, r.finished_at, r.stack_name, r.details, r.left_behind, r.proposal_id, \
     c.slug, s.name AS server_name \
     FROM staging_runs r LEFT JOIN servers s ON s.id = r.server_id LEFT JOIN collectives c ON c.id = s.collective_id";

/// The proposal's runs, newest first (at most 20).
pub async fn of_proposal(st: &AppState, proposal: ProposalId) -> Result<Vec<StagingRunSummary>> {
    let rows = sqlx::query(&format!("SELECT {RUN_COLUMNS} WHERE r.proposal_id = $1 ORDER BY r.id DESC LIMIT 20"))
        .bind(proposal)
        .fetch_all(st.db.pool())
        .await?;
    rows.iter().map(summary_of).collect()
}

/// Whether a run of the proposal's `commit` passed.
pub async fn green(st: &AppState, proposal: ProposalId, commit: &str) -> Result<bool> {
    Ok(sqlx::query(
        "SELECT id FROM staging_runs WHERE proposal_id = $1 AND commit_id = $2 AND state = 'passed' LIMIT 1",
    )
    .bind(proposal)
    .bind(commit)
    .fetch_optional(st.db.pool())
    .await?
    .is_some())
}

pub async fn get(st: &AppState, cap: &Cap<scope::Proposal>, input: GetStagingRun) -> Result<StagingRunView> {
    let p = cap.proposal();
    // Scoped by the proposal the capability carries: a run of another proposal is absent.
    let r = sqlx::query(&format!("SELECT {RUN_COLUMNS} WHERE r.id = $1 AND r.proposal_id = $2"))
        .bind(input.run)
        .bind(p.id)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("staging run {} of proposal {}", input.run, p.id)))?;
    let log = sqlx::query("SELECT at, text FROM staging_run_lines WHERE run_id = $1 ORDER BY seq")
        .bind(input.run)
        .fetch_all(st.db.pool())
        .await?
        .iter()
        .map(|l| Ok(StagingLine { at: l.try_get("at")?, text: l.try_get("text")? }))
        .collect::<Result<Vec<_>>>()?;
    Ok(StagingRunView {
        summary: summary_of(&r)?,
        recipe: cap.recipe().name.clone(),
        proposal_id: p.id,
        stack: r.try_get("stack_name")?,
        details: serde_json::from_str(&r.try_get::<String, _>("details")?).unwrap_or_default(),
        left_behind: serde_json::from_str(&r.try_get::<String, _>("left_behind")?).unwrap_or_default(),
        log,
    })
}

/// Queues a run of the proposal's current commit in the caller's transaction (an earlier queued
/// run of the proposal is cancelled); none when the federation has no staging server.
pub(crate) async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    recipe: RecipeId,
    p: &ProposalRow,
    requested_by: &str,
) -> Result<Option<StagingRunId>> {
    if sqlx::query("SELECT server_id FROM staging_servers LIMIT 1").fetch_optional(&mut *conn).await?.is_none() {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE staging_runs SET state = 'cancelled', finished_at = $1 WHERE proposal_id = $2 AND state = 'queued'",
    )
    .bind(now_ms())
    .bind(p.id)
    .execute(&mut *conn)
    .await?;
    let stack = format!("staging-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let id: StagingRunId = sqlx::query(
        "INSERT INTO staging_runs (recipe_id, proposal_id, commit_id, version, upgrade_from, state, stack_name, requested_by_name, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8) RETURNING id",
    )
    .bind(recipe)
    .bind(p.id)
    .bind(&p.commit)
    .bind(&p.version)
    .bind(&p.base_version)
    .bind(&stack)
    .bind(requested_by)
    .bind(now_ms())
    .fetch_one(&mut *conn)
    .await?
    .try_get("id")?;
    Ok(Some(id))
}

/// `start_staging_run`: a run of the proposal's current commit, asked for by a maintainer.
pub async fn start(st: &AppState, cap: &Cap<scope::Proposal>) -> Result<StagingRunSummary> {
    let (p, r) = (cap.proposal(), cap.recipe());
    if p.state != "open" {
        return Err(
            ApiError::conflict(format!("proposal {} is {}: only open proposals are tested", p.id, p.state)).into()
        );
    }
    let name = display_name(st, cap.user_id().unwrap_or_default()).await?;
    let mut tx = audit::begin(&st.db).await?;
    let id = enqueue(&mut tx, r.id, p, &name)
        .await?
        .ok_or_else(|| ApiError::conflict("the federation has no staging server: a federation admin designates one"))?;
    let event = Event::new(AuditAction::StagingRunStart, format!("recipe {} {}", r.name, p.version))
        .details(json!({ "proposal_id": p.id, "run": id, "commit": p.commit }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    st.staging.notify_one();
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} WHERE r.id = $1")).bind(id).fetch_one(st.db.pool()).await?;
    summary_of(&row)
}

// ---- The runner ----

/// Gives queued runs to staging servers with a free slot, every few seconds or when woken.
pub fn spawn_runner(st: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = expire(&st).await {
                tracing::warn!(error = %e, "cannot look for interrupted staging runs");
            }
            if let Err(e) = dispatch(&st).await {
                tracing::warn!(error = %e, "cannot start staging runs");
            }
            tokio::select! {
                _ = st.staging.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(3)) => {}
            }
        }
    })
}

/// Fails the runs whose lease ran out (their Potluck stopped) and removes their stacks; cancels
/// queued runs of proposals no longer open.
async fn expire(st: &Arc<AppState>) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "UPDATE staging_runs SET state = 'cancelled', finished_at = $1 WHERE state = 'queued' \
         AND proposal_id IN (SELECT id FROM release_proposals WHERE state <> 'open')",
    )
    .bind(now)
    .execute(st.db.pool())
    .await?;
    let stale =
        sqlx::query("SELECT id, server_id, stack_name FROM staging_runs WHERE state = 'running' AND lease_until < $1")
            .bind(now)
            .fetch_all(st.db.pool())
            .await?;
    for r in stale {
        let id: StagingRunId = r.try_get("id")?;
        let taken = sqlx::query(
            "UPDATE staging_runs SET state = 'failed', failure = $1, finished_at = $2 WHERE id = $3 AND state = 'running' AND lease_until < $2",
        )
        .bind("interrupted: the Potluck process running it stopped; its stack was removed")
        .bind(now)
        .bind(id)
        .execute(st.db.pool())
        .await?
        .rows_affected();
        if taken == 0 {
            continue;
        }
        let (server, stack): (Option<ServerId>, String) = (r.try_get("server_id")?, r.try_get("stack_name")?);
        if let Some(server) = server {
            let st = st.clone();
            tokio::spawn(async move {
                if let Ok(s) = servers::by_id(&st, server).await {
                    if let Ok(docker) = servers::docker_for(&st, &s).await {
                        let left = trial::clean(&docker, &stack, &|_| {}).await;
                        let _ = sqlx::query("UPDATE staging_runs SET left_behind = $1 WHERE id = $2")
                            .bind(serde_json::to_string(&left).unwrap_or_default())
                            .bind(id)
                            .execute(st.db.pool())
                            .await;
                    }
                }
            });
        }
    }
    Ok(())
}

/// Claims queued runs for staging servers with a free slot and starts them.
async fn dispatch(st: &Arc<AppState>) -> Result<()> {
    let slots = sqlx::query(
        "SELECT g.server_id, g.max_runs, (SELECT COUNT(*) FROM staging_runs r WHERE r.server_id = g.server_id AND r.state = 'running') AS running \
         FROM staging_servers g ORDER BY g.server_id",
    )
    .fetch_all(st.db.pool())
    .await?;
    for s in slots {
        let server: ServerId = s.try_get("server_id")?;
        let free = s.try_get::<i64, _>("max_runs")? - s.try_get::<i64, _>("running")?;
        for _ in 0..free.max(0) {
            let now = now_ms();
            // The oldest queued run of an open proposal, if no other replica took it first.
            let claimed = sqlx::query(
                "UPDATE staging_runs SET state = 'running', server_id = $1, started_at = $2, lease_until = $3 \
                 WHERE id = (SELECT id FROM staging_runs WHERE state = 'queued' ORDER BY id LIMIT 1) AND state = 'queued' \
                 RETURNING id",
            )
            .bind(server)
            .bind(now)
            .bind(now + LEASE_MS)
            .fetch_optional(st.db.pool())
            .await?;
            let Some(row) = claimed else { break };
            let id: StagingRunId = row.try_get("id")?;
            let st = st.clone();
            tokio::spawn(async move {
                if let Err(e) = run(&st, id, server).await {
                    tracing::warn!(run = id.0, error = %e, "staging run failed to run");
                    let _ = finish(&st, id, Some(format!("Potluck could not run it: {e}")), &[], &[]).await;
                }
            });
        }
    }
    Ok(())
}

/// The run's log, written as it goes (bounded).
struct Log {
    tx: tokio::sync::mpsc::UnboundedSender<String>,
}

fn log_writer(st: Arc<AppState>, id: StagingRunId) -> (Log, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let task = tokio::spawn(async move {
        let mut seq: i64 = 0;
        while let Some(text) = rx.recv().await {
            seq += 1;
            if seq > MAX_LINES {
                continue;
            }
            let text = if seq == MAX_LINES { "… (the rest of the log is not kept)".to_string() } else { text };
            let text: String = text.chars().take(2000).collect();
            let _ = sqlx::query("INSERT INTO staging_run_lines (run_id, seq, at, text) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(seq)
                .bind(now_ms())
                .bind(&text)
                .execute(st.db.pool())
                .await;
        }
    });
    (Log { tx }, task)
}

async fn run(st: &Arc<AppState>, id: StagingRunId, server_id: ServerId) -> Result<()> {
    let row = sqlx::query(
        "SELECT r.recipe_id, r.commit_id, r.version, r.upgrade_from, r.stack_name, rc.name, rc.test_env, rc.smoke_check \
         FROM staging_runs r JOIN recipes rc ON rc.id = r.recipe_id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_one(st.db.pool())
    .await?;
    let recipe_name: String = row.try_get("name")?;
    let (commit, version): (String, String) = (row.try_get("commit_id")?, row.try_get("version")?);
    let upgrade_from: Option<String> = row.try_get("upgrade_from")?;
    let stack: String = row.try_get("stack_name")?;
    let overrides = trial::parse_overrides(&row.try_get::<String, _>("test_env")?).unwrap_or_default();
    let smoke = smoke_of(&row.try_get::<String, _>("smoke_check")?);
    let server: ServerRow = servers::by_id(st, server_id).await?;
    let (log, writer) = log_writer(st.clone(), id);
    let say = move |line: String| {
        let _ = log.tx.send(line);
    };
    say(format!(
        "staging run {id} of {version} (commit {}) on {}/{}",
        &commit[..12.min(commit.len())],
        server.collective,
        server.name
    ));
    // The lease is renewed while the run goes.
    let heartbeat = {
        let st = st.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis((LEASE_MS / 3) as u64)).await;
                let _ = sqlx::query("UPDATE staging_runs SET lease_until = $1 WHERE id = $2 AND state = 'running'")
                    .bind(now_ms() + LEASE_MS)
                    .bind(id)
                    .execute(st.db.pool())
                    .await;
            }
        })
    };
    let outcome = async {
        // This replica's clone (made first where it has none).
        let path = match store::get(st, &recipe_name).await {
            Ok(recipe) => store::local_clone(st, &recipe).await,
            Err(e) => Err(e),
        };
        let path = match path {
            Ok(p) => p,
            Err(e) => {
                return Ok(trial::Verdict {
                    failure: Some(format!("the recipe cannot be read: {e}")),
                    ..Default::default()
                })
            }
        };
        let (s2, c2, v2, f2) = (stack.clone(), commit.clone(), version.clone(), upgrade_from.clone());
        let plans = tokio::task::spawn_blocking(move || -> std::result::Result<Plans, String> {
            let recipe = LocalRecipe::open(&path).map_err(|e| e.to_string())?;
            Ok(Plans {
                to: (v2.clone(), trial::plan_of(&recipe, &c2, &v2, &s2, &overrides)?),
                from: f2.map(|f| trial::plan_of(&recipe, &f, &f, &s2, &overrides).map(|p| (f, p))).transpose()?,
                stack: s2,
            })
        })
        .await
        .map_err(Error::internal)?;
        let plans = match plans {
            Ok(p) => p,
            Err(e) => {
                return Ok(trial::Verdict {
                    failure: Some(format!("the recipe cannot be read: {e}")),
                    ..Default::default()
                })
            }
        };
        let docker = match servers::docker_for(st, &server).await {
            Ok(d) => d,
            Err(e) => return Ok(trial::Verdict { failure: Some(e.to_string()), ..Default::default() }),
        };
        let settings = Settings {
            smoke,
            // Staging runs the images the recipe names as the server has or pulls them.
            resolve_image: ResolveImage::Never,
            timeout: None,
            policy: Some(server.policy.clone()),
            probe_image: st.config.staging_probe_image.clone(),
            scratch: Some(st.config.data_dir.join("staging")),
        };
        Ok::<_, Error>(trial::run(&docker, &plans, &settings, &say).await)
    }
    .await;
    heartbeat.abort();
    let verdict = outcome?;
    say(if verdict.green() { "passed: every step passed and nothing is left".into() } else { "failed".to_string() });
    drop(say);
    let _ = writer.await;
    let mut failure = verdict.failure.clone();
    if failure.is_none() && !verdict.left.is_empty() {
        failure = Some(format!("the cleanup left {}", verdict.left.join(", ")));
    }
    finish(st, id, failure, &verdict.details, &verdict.left).await
}

/// Records the outcome (unless the run was failed as interrupted meanwhile) and announces a
/// failure to the collectives maintaining the recipe, in the same transaction.
async fn finish(
    st: &AppState,
    id: StagingRunId,
    failure: Option<String>,
    details: &[String],
    left: &[String],
) -> Result<()> {
    let mut tx = st.db.begin().await?;
    let done = sqlx::query(
        "UPDATE staging_runs SET state = $1, failure = $2, details = $3, left_behind = $4, finished_at = $5, lease_until = NULL \
         WHERE id = $6 AND state = 'running'",
    )
    .bind(if failure.is_some() { "failed" } else { "passed" })
    .bind(&failure)
    .bind(serde_json::to_string(details).map_err(Error::internal)?)
    .bind(serde_json::to_string(left).map_err(Error::internal)?)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let mut queued = 0;
    if let (1, Some(failure)) = (done, &failure) {
        let r = sqlx::query(
            "SELECT r.proposal_id, r.version, r.commit_id, r.recipe_id, rc.name FROM staging_runs r \
             JOIN recipes rc ON rc.id = r.recipe_id WHERE r.id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let (proposal, recipe_id): (ProposalId, RecipeId) = (r.try_get("proposal_id")?, r.try_get("recipe_id")?);
        let (name, version): (String, String) = (r.try_get("name")?, r.try_get("version")?);
        let notice = Notice::new(NotifyEvent::StagingFailed, format!("staging run of {name} {version} failed"))
            .text(format!("{failure}\n\n{}", details.join("\n")))
            .path(format!("/releases/{proposal}/runs/{id}"))
            .data(json!({ "recipe": name, "version": version, "proposal_id": proposal, "run": id, "commit": r.try_get::<String, _>("commit_id")? }));
        let collectives: Vec<CollectiveId> = sqlx::query(
            "SELECT collective_id FROM recipe_maintainers WHERE recipe_id = $1 AND collective_id IS NOT NULL",
        )
        .bind(recipe_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("collective_id"))
        .collect::<std::result::Result<_, _>>()?;
        for c in collectives {
            queued += notify::emit(&mut tx, c, &notice).await?;
        }
    }
    tx.commit().await?;
    if queued > 0 {
        notify::deliver::wake(st);
    }
    Ok(())
}
