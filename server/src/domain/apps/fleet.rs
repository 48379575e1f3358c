//! The fleet: every app the caller can see, by recipe, with how far behind the newest release
//! each is; and batch upgrades of several apps of one recipe, run one after another.
//!
//! A batch is kept in `upgrade_batches` with its apps in order (`upgrade_batch_items`). The
//! runner ([`spawn_runner`]) looks at running batches every second: when the current app's job
//! has ended it records the outcome and queues the next app's upgrade (as the person who started
//! the batch, audited as their upgrade request); with `stop_on_failure` the apps after a failure
//! are skipped. Each step first moves the batch's `seq` on with a compare-and-set, so replicas
//! queue each job once.

use super::apps::{self, AppRow};
use super::{jobs, plan};
use crate::adapters::db::now_ms;
use crate::domain::audit::{self, Actor, Event, Origin};
use crate::domain::authz::{collective_by_id, Cap};
use crate::domain::recipes::store;
use crate::domain::recipes::version::RecipeVersion;
use crate::error::Result;
use crate::state::AppState;
use potluck_app::actions::AuditAction;
use potluck_app::api::{GetUpgradeBatch, PreviewJob, PreviewUpgradeBatch, StartUpgradeBatch};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The most apps one batch upgrades.
const MAX_BATCH: usize = 100;

/// `fleet`: the apps of every collective where the caller may view apps.
pub async fn fleet(st: &AppState, access: &Cap<scope::SignedIn>) -> Result<Fleet> {
    let visible = access.collectives_with(&st.db, Permission::ViewApps).await?;
    let operable = access.collectives_with(&st.db, Permission::OperateApps).await?;
    let rows = sqlx::query(
        "SELECT a.id, a.collective_id, c.slug, a.domain, s.name AS server_name, r.name AS recipe_name, a.version, \
         a.status, a.unhealthy_since, a.unhealthy_reason, a.live_running, a.live_desired, a.live_restarts, a.live_at \
         FROM apps a JOIN collectives c ON c.id = a.collective_id \
         JOIN servers s ON s.id = a.server_id JOIN recipes r ON r.id = a.recipe_id ORDER BY r.name, c.slug, a.domain",
    )
    .fetch_all(st.db.pool())
    .await?;
    let sees = |list: &Option<Vec<CollectiveId>>, c: CollectiveId| list.as_ref().is_none_or(|l| l.contains(&c));
    let mut by_recipe: BTreeMap<String, Vec<FleetApp>> = BTreeMap::new();
    for r in &rows {
        let collective: CollectiveId = r.try_get("collective_id")?;
        if !sees(&visible, collective) {
            continue;
        }
        by_recipe.entry(r.try_get("recipe_name")?).or_default().push(FleetApp {
            collective: r.try_get("slug")?,
            domain: r.try_get("domain")?,
            server: r.try_get("server_name")?,
            version: r.try_get("version")?,
            status: crate::adapters::db::stored(r, "status")?,
            unhealthy: r
                .try_get::<Option<i64>, _>("unhealthy_since")?
                .map(|_| r.try_get::<Option<String>, _>("unhealthy_reason").ok().flatten().unwrap_or_default()),
            health: super::apps::health_of(r)?,
            behind: None,
            can_operate: sees(&operable, collective),
        });
    }
    let mut recipes = Vec::new();
    for (name, mut apps) in by_recipe {
        let releases = match store::find(st, &name).await? {
            Some(recipe) => plan::versions(st, &recipe).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let releases: Vec<String> = releases.into_iter().filter(|v| RecipeVersion::parse(v).semver.is_some()).collect();
        for a in &mut apps {
            a.behind = a.version.as_deref().filter(|v| releases.iter().any(|r| r == v)).map(|v| {
                let running = RecipeVersion::parse(v);
                releases.iter().filter(|r| RecipeVersion::parse(r) > running).count() as i64
            });
        }
        recipes.push(FleetRecipe { recipe: name, newest: releases.first().cloned(), releases, apps });
    }
    Ok(Fleet { recipes })
}

/// The apps a batch names (`collective/domain`, in order), each checked as an app scope is: the
/// caller must be allowed to operate it, and it must run `recipe`.
async fn named_apps(
    st: &AppState,
    access: &Cap<scope::SignedIn>,
    recipe: &str,
    list: &str,
) -> Result<Vec<Cap<scope::App>>> {
    let names = potluck_app::api::split_list(list);
    if names.is_empty() {
        return Err(ApiError::invalid("apps", "choose at least one app").into());
    }
    if names.len() > MAX_BATCH {
        return Err(ApiError::invalid("apps", format!("at most {MAX_BATCH} apps in one batch")).into());
    }
    let mut out: Vec<Cap<scope::App>> = Vec::new();
    for name in names {
        let (slug, domain) = name
            .split_once('/')
            .ok_or_else(|| ApiError::invalid("apps", format!("{name:?}: name each app as collective/domain")))?;
        let cap = access.app_access(st, slug, domain, Permission::OperateApps).await?;
        if cap.app().recipe != recipe {
            return Err(ApiError::invalid("apps", format!("{name} runs {}, not {recipe}", cap.app().recipe)).into());
        }
        if out.iter().any(|c| c.app().id == cap.app().id) {
            return Err(ApiError::invalid("apps", format!("{name} is named twice")).into());
        }
        out.push(cap);
    }
    Ok(out)
}

/// The version the batch goes to: the one given, or the recipe's newest release.
async fn target_of(st: &AppState, recipe: &str, target: &str) -> Result<String> {
    let row = store::find(st, recipe).await?.ok_or_else(|| ApiError::not_found(format!("recipe {recipe}")))?;
    let releases = plan::versions(st, &row).await?;
    match target.trim() {
        "" => releases
            .into_iter()
            .find(|v| RecipeVersion::parse(v).semver.is_some())
            .ok_or_else(|| ApiError::invalid("target", format!("{recipe} has no release")).into()),
        t if releases.iter().any(|r| r == t) => Ok(t.to_string()),
        t => Err(ApiError::invalid("target", format!("{recipe} has no release {t}")).into()),
    }
}

/// `preview_upgrade_batch`: each app's upgrade previewed as a single upgrade is.
pub async fn preview(
    st: &AppState,
    access: &Cap<scope::SignedIn>,
    input: PreviewUpgradeBatch,
) -> Result<Vec<BatchPreviewItem>> {
    let caps = named_apps(st, access, &input.recipe, &input.apps).await?;
    let target = target_of(st, &input.recipe, &input.target).await?;
    let mut out = Vec::new();
    for cap in caps {
        let a = cap.app();
        let ask = PreviewJob {
            slug: cap.collective().slug.clone(),
            domain: a.domain.clone(),
            kind: "upgrade".into(),
            target: target.clone(),
        };
        let (preview, error) = match super::preview(st, &cap, ask).await {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e.to_string())),
        };
        out.push(BatchPreviewItem {
            collective: cap.collective().slug.clone(),
            domain: a.domain.clone(),
            preview,
            error,
        });
    }
    Ok(out)
}

/// `start_upgrade_batch`: records the batch with its apps in order; the runner takes it from
/// there.
pub async fn start(st: &AppState, access: &Cap<scope::SignedIn>, input: StartUpgradeBatch) -> Result<BatchView> {
    let caps = named_apps(st, access, &input.recipe, &input.apps).await?;
    let target = target_of(st, &input.recipe, &input.target).await?;
    let recipe = store::get(st, &input.recipe).await?;
    let origin = access.origin();
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let id: BatchId = sqlx::query(
        "INSERT INTO upgrade_batches (recipe_id, target, stop_on_failure, state, created_by, created_by_name, request_id, client_addr, created_at) \
         VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(recipe.id)
    .bind(&target)
    .bind(i64::from(input.stop_on_failure))
    .bind(origin.actor.id)
    .bind(&origin.actor.name)
    .bind(&origin.request_id)
    .bind(&origin.client_addr)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    for (i, cap) in caps.iter().enumerate() {
        let a = cap.app();
        sqlx::query(
            "INSERT INTO upgrade_batch_items (batch_id, position, app_id, collective_id, domain, from_version, state) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
        )
        .bind(id)
        .bind(i as i64)
        .bind(a.id)
        .bind(a.collective_id)
        .bind(&a.domain)
        .bind(&a.version)
        .execute(&mut *tx)
        .await?;
    }
    let names: Vec<String> = caps.iter().map(|c| format!("{}/{}", c.collective().slug, c.app().domain)).collect();
    let event = Event::new(AuditAction::BatchUpgradeStart, format!("recipe {} {target}", input.recipe))
        .details(json!({ "batch_id": id, "apps": names, "stop_on_failure": input.stop_on_failure }));
    tx.record(origin, event).await?;
    tx.commit().await?;
    st.batches.notify_one();
    view(st, id).await
}

async fn view(st: &AppState, id: BatchId) -> Result<BatchView> {
    let b = sqlx::query(
        "SELECT b.id, r.name AS recipe_name, b.target, b.stop_on_failure, b.state, b.created_by_name, b.created_at, b.finished_at \
         FROM upgrade_batches b JOIN recipes r ON r.id = b.recipe_id WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(st.db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found(format!("batch {id}")))?;
    let items = sqlx::query(
        "SELECT i.position, c.slug, i.domain, i.from_version, i.job_id, i.state, i.result FROM upgrade_batch_items i \
         JOIN collectives c ON c.id = i.collective_id WHERE i.batch_id = $1 ORDER BY i.position",
    )
    .bind(id)
    .fetch_all(st.db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(BatchItemView {
            position: r.try_get("position")?,
            collective: r.try_get("slug")?,
            domain: r.try_get("domain")?,
            from_version: r.try_get("from_version")?,
            job: r.try_get("job_id")?,
            state: r.try_get("state")?,
            result: r.try_get("result")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(BatchView {
        id,
        recipe: b.try_get("recipe_name")?,
        target: b.try_get("target")?,
        stop_on_failure: b.try_get::<i64, _>("stop_on_failure")? == 1,
        state: b.try_get("state")?,
        created_by: b.try_get("created_by_name")?,
        created_at: b.try_get("created_at")?,
        finished_at: b.try_get("finished_at")?,
        items,
    })
}

/// `get_upgrade_batch`: for who may view every app in it (another collective's batch looks
/// absent).
pub async fn get(st: &AppState, access: &Cap<scope::SignedIn>, input: GetUpgradeBatch) -> Result<BatchView> {
    let visible = access.collectives_with(&st.db, Permission::ViewApps).await?;
    let collectives: Vec<CollectiveId> =
        sqlx::query("SELECT DISTINCT collective_id FROM upgrade_batch_items WHERE batch_id = $1")
            .bind(input.id)
            .fetch_all(st.db.pool())
            .await?
            .iter()
            .map(|r| r.try_get("collective_id"))
            .collect::<std::result::Result<_, _>>()?;
    let sees_all = visible.as_ref().is_none_or(|v| collectives.iter().all(|c| v.contains(c)));
    if collectives.is_empty() || !sees_all {
        return Err(ApiError::not_found(format!("batch {}", input.id)).into());
    }
    view(st, input.id).await
}

/// Moves one running batch on, if its current app's job has ended.
async fn step(st: &AppState, id: BatchId) -> Result<()> {
    let b = sqlx::query(
        "SELECT target, stop_on_failure, seq, created_by, created_by_name, request_id, client_addr FROM upgrade_batches \
         WHERE id = $1 AND state = 'running'",
    )
    .bind(id)
    .fetch_optional(st.db.pool())
    .await?;
    let Some(b) = b else { return Ok(()) };
    let seq: i64 = b.try_get("seq")?;
    let stop = b.try_get::<i64, _>("stop_on_failure")? == 1;
    let items = sqlx::query(
        "SELECT position, app_id, job_id, state FROM upgrade_batch_items WHERE batch_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(st.db.pool())
    .await?;
    // The app under way: has its job ended?
    let mut outcome: Option<(i64, &'static str, String)> = None;
    if let Some(r) = items.iter().find(|r| r.try_get::<String, _>("state").is_ok_and(|s| s == "running")) {
        let job: JobId = r.try_get::<Option<JobId>, _>("job_id")?.unwrap_or_default();
        let Some(j) = jobs::get(st, job).await? else { return Ok(()) };
        match j.state {
            JobState::Succeeded => outcome = Some((r.try_get("position")?, "succeeded", j.result.unwrap_or_default())),
            JobState::Failed => outcome = Some((r.try_get("position")?, "failed", j.result.unwrap_or_default())),
            _ => return Ok(()),
        }
    }
    // Claim this step: of several replicas, one moves the batch on.
    let claimed = sqlx::query("UPDATE upgrade_batches SET seq = seq + 1 WHERE id = $1 AND seq = $2")
        .bind(id)
        .bind(seq)
        .execute(st.db.pool())
        .await?
        .rows_affected()
        == 1;
    if !claimed {
        return Ok(());
    }
    let mut failed = false;
    if let Some((position, state, result)) = &outcome {
        set_item(st, id, *position, state, result, None).await?;
        failed = *state == "failed";
    }
    let next = items.iter().find(|r| r.try_get::<String, _>("state").is_ok_and(|s| s == "pending"));
    let next = match next {
        Some(n) if !(failed && stop) => n,
        _ => {
            if failed && stop {
                sqlx::query("UPDATE upgrade_batch_items SET state = 'skipped', result = 'skipped: an upgrade before it failed' WHERE batch_id = $1 AND state = 'pending'")
                    .bind(id)
                    .execute(st.db.pool())
                    .await?;
            }
            sqlx::query("UPDATE upgrade_batches SET state = $1, finished_at = $2 WHERE id = $3")
                .bind(if failed && stop { "stopped" } else { "done" })
                .bind(now_ms())
                .bind(id)
                .execute(st.db.pool())
                .await?;
            return Ok(());
        }
    };
    let position: i64 = next.try_get("position")?;
    let app = apps::by_id(st, next.try_get("app_id")?).await?;
    let origin = Origin {
        actor: match b.try_get::<Option<UserId>, _>("created_by")? {
            Some(user) => Actor::user(user, &b.try_get::<String, _>("created_by_name")?),
            None => Actor::system("batch upgrade"),
        },
        request_id: b.try_get("request_id")?,
        client_addr: b.try_get("client_addr")?,
    };
    let queued = match app {
        None => Err("the app was deleted".to_string()),
        Some(app) => queue(st, &app, &origin, &b.try_get::<String, _>("target")?).await,
    };
    match queued {
        Ok(job) => set_item(st, id, position, "running", "", Some(job)).await?,
        Err(e) => {
            // Counted as a failure; the next step moves on (or stops) from it.
            set_item(st, id, position, "failed", &e, None).await?;
            if stop {
                sqlx::query("UPDATE upgrade_batch_items SET state = 'skipped', result = 'skipped: an upgrade before it failed' WHERE batch_id = $1 AND state = 'pending'")
                    .bind(id)
                    .execute(st.db.pool())
                    .await?;
            }
        }
    }
    Ok(())
}

/// Queues the upgrade of one app of a batch, as the person who started it.
async fn queue(st: &AppState, app: &AppRow, origin: &Origin, target: &str) -> std::result::Result<JobId, String> {
    let c = collective_by_id(&st.db, app.collective_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the collective is gone".to_string())?;
    let job = jobs::enqueue(st, &c, app, origin, JobKind::Upgrade, Some(target), JobOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(job.id)
}

async fn set_item(
    st: &AppState,
    id: BatchId,
    position: i64,
    state: &str,
    result: &str,
    job: Option<JobId>,
) -> Result<()> {
    sqlx::query(
        "UPDATE upgrade_batch_items SET state = $1, result = $2, job_id = COALESCE($3, job_id) WHERE batch_id = $4 AND position = $5",
    )
    .bind(state)
    .bind(Some(result).filter(|r| !r.is_empty()))
    .bind(job)
    .bind(id)
    .bind(position)
    .execute(st.db.pool())
    .await?;
    Ok(())
}

/// The batch runner: every second (and when a batch starts), each running batch moves on.
pub fn spawn_runner(st: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let running = sqlx::query("SELECT id FROM upgrade_batches WHERE state = 'running' ORDER BY id")
                .fetch_all(st.db.pool())
                .await;
            match running {
                Ok(rows) => {
                    for r in rows {
                        let Ok(id) = r.try_get::<BatchId, _>("id") else { continue };
                        if let Err(e) = step(&st, id).await {
                            tracing::warn!(batch = id.0, error = %e, "cannot move a batch upgrade on");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read batch upgrades"),
            }
            tokio::select! {
                _ = st.batches.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}
