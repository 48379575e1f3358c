//! Changed outside Potluck: an `abra app deploy` from a laptop, a `docker stack deploy` or
//! `docker service update` by hand, a stack removed or started behind Potluck's back.
//!
//! After every job of an app (and at import and adoption) Potluck records its stack's services as
//! it left them: each service's name and the swarm's version of its spec, which moves whenever
//! anything changes the spec. The server's monitor compares each reading with that record and
//! with the version labels (`coop-cloud.<stack>.version`, `.chaos`, `.chaos-version`) against the
//! version Potluck deployed, and keeps the differences in `apps.drift` until a job, an adoption
//! or the stack itself puts them right. An operator adopts what runs ([`adopt`]: Potluck records
//! the live version) or redeploys Potluck's own.
//!
//! Another tool's deploy leaves objects without Potluck's ownership labels, which Potluck
//! refuses to touch (a collective sharing the engine could have planted them). Adopting, or a
//! deploy with `take_over`, records their ids ([`claim`]: `apps.adopted_objects`) so that Potluck
//! updates and removes them; refused while another collective has the engine registered.

use super::apps::AppRow;
use super::servers::{self, ServerRow};
use crate::adapters::db::now_ms;
use crate::adapters::engine::convert::NAMESPACE_LABEL;
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::AppState;
use bollard::models::Service;
use bollard::query_parameters::ListServicesOptions;
use potluck_app::error::ApiError;
use potluck_app::model::{AppDrift, AppId, AppStatus, AppSummary};
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// A stack as it runs: its services' spec versions and what its labels say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// Service name (without the stack's prefix) → the swarm's version of its spec.
    pub services: BTreeMap<String, u64>,
    pub version: Option<String>,
    pub chaos: bool,
    pub chaos_version: Option<String>,
    /// Services without Potluck's labels (deployed by another tool).
    pub foreign: Vec<String>,
}

/// Every stack of a list of services, by namespace.
pub fn stacks(services: &[Service]) -> BTreeMap<String, Live> {
    let mut out: BTreeMap<String, Live> = BTreeMap::new();
    for s in services {
        let Some(spec) = &s.spec else { continue };
        let labels = spec.labels.clone().unwrap_or_default();
        let Some(stack) = labels.get(NAMESPACE_LABEL) else { continue };
        let live = out.entry(stack.clone()).or_default();
        let full = spec.name.clone().unwrap_or_default();
        let name = full.strip_prefix(&format!("{stack}_")).unwrap_or(&full).to_string();
        live.services.insert(name.clone(), s.version.as_ref().and_then(|v| v.index).unwrap_or(0));
        if let Some(v) = labels.get(&format!("coop-cloud.{stack}.version")).filter(|v| !v.is_empty()) {
            live.version.get_or_insert_with(|| v.clone());
        }
        if labels.get(&format!("coop-cloud.{stack}.chaos")).is_some_and(|v| v == "true") {
            live.chaos = true;
        }
        if let Some(v) = labels.get(&format!("coop-cloud.{stack}.chaos-version")).filter(|v| !v.is_empty()) {
            live.chaos_version.get_or_insert_with(|| v.clone());
        }
        if !labels.contains_key("potluck.app") {
            live.foreign.push(name);
        }
    }
    out
}

/// What Potluck's record of an app says.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub status: AppStatus,
    pub version: Option<&'a str>,
    pub chaos: bool,
    pub chaos_version: Option<&'a str>,
    /// The services as Potluck's last job (or import, or adoption) left them; none before any.
    pub services: Option<&'a BTreeMap<String, u64>>,
}

/// How what runs differs from Potluck's record, in words; empty when it does not.
pub fn differences(rec: Recorded<'_>, live: Option<&Live>) -> Vec<String> {
    let running = live.filter(|l| !l.services.is_empty());
    let Some(live) = running else {
        return match rec.status {
            AppStatus::Deployed => vec!["the stack is not running: removed outside Potluck".into()],
            _ => Vec::new(),
        };
    };
    let mut out = Vec::new();
    match rec.status {
        AppStatus::New | AppStatus::Undeployed => {
            let what = live.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default();
            out.push(format!("the stack runs{what}, though Potluck has the app {}", rec.status.as_str()));
            return out;
        }
        AppStatus::Deployed => match (rec.chaos, live.chaos) {
            (false, false) => {
                if let (Some(live_v), Some(ours)) = (live.version.as_deref(), rec.version) {
                    if live_v != ours {
                        out.push(format!("runs {live_v}, Potluck deployed {ours}"));
                    }
                }
            }
            (false, true) => out.push(format!(
                "runs a chaos deploy ({}), Potluck deployed {}",
                live.chaos_version.as_deref().unwrap_or("a commit"),
                rec.version.unwrap_or("a release")
            )),
            (true, false) => out.push(format!(
                "runs {}, Potluck deployed chaos {}",
                live.version.as_deref().unwrap_or("a release"),
                rec.chaos_version.unwrap_or("-")
            )),
            (true, true) => {
                if let (Some(live_c), Some(ours)) = (live.chaos_version.as_deref(), rec.chaos_version) {
                    if live_c != ours {
                        out.push(format!("runs chaos {live_c}, Potluck deployed chaos {ours}"));
                    }
                }
            }
        },
        // A failed deploy leaves whatever the swarm kept: only the services tell.
        AppStatus::Failed => {}
    }
    match rec.services {
        Some(ours) => {
            for (name, version) in &live.services {
                match ours.get(name) {
                    None => out.push(format!("service {name} added")),
                    Some(v) if v != version => out.push(format!("service {name} changed")),
                    Some(_) => {}
                }
            }
            for name in ours.keys().filter(|n| !live.services.contains_key(*n)) {
                out.push(format!("service {name} removed"));
            }
        }
        // No record yet (deployed before Potluck kept one): another tool's deploy drops Potluck's labels.
        None => {
            for name in &live.foreign {
                out.push(format!("service {name} was deployed by another tool (it lacks Potluck's labels)"));
            }
        }
    }
    out
}

/// The drift to store for these differences: none when there are none, else since `now` unless
/// the stored one already said the same.
pub fn next(stored: Option<&AppDrift>, changes: Vec<String>, live: Option<&Live>, now: i64) -> Option<AppDrift> {
    if changes.is_empty() {
        return None;
    }
    let since = stored.map(|d| d.since).unwrap_or(now);
    Some(AppDrift {
        since,
        changes,
        live_version: live.and_then(|l| l.version.clone()),
        live_chaos: live.filter(|l| l.chaos).and_then(|l| l.chaos_version.clone()),
    })
}

/// The stacks a server's engine runs now (`stack`: only that one), within 20 seconds.
pub async fn read(
    st: &AppState,
    server: &ServerRow,
    stack: Option<&str>,
) -> std::result::Result<BTreeMap<String, Live>, String> {
    let docker = servers::docker_for(st, server).await.map_err(|e| e.to_string())?;
    let label = match stack {
        Some(stack) => format!("{NAMESPACE_LABEL}={stack}"),
        None => NAMESPACE_LABEL.to_string(),
    };
    let filters = HashMap::from([("label".to_string(), vec![label])]);
    let listed = tokio::time::timeout(
        Duration::from_secs(20),
        docker.list_services(Some(ListServicesOptions { filters: Some(filters), ..Default::default() })),
    )
    .await
    .map_err(|_| "the engine did not answer within 20 s".to_string())?
    .map_err(|e| crate::adapters::engine::docker::error_text(&e))?;
    Ok(stacks(&listed))
}

/// The app's stack as its server's engine lists it now.
pub async fn observe(st: &AppState, app: &AppRow) -> std::result::Result<Live, String> {
    let server = servers::by_id(st, app.server_id).await.map_err(|e| e.to_string())?;
    Ok(read(st, &server, Some(&app.stack_name)).await?.remove(&app.stack_name).unwrap_or_default())
}

/// The services record as stored (`apps.deployed_services`).
pub fn services_json(live: &Live) -> String {
    serde_json::to_string(&live.services).unwrap_or_else(|_| "{}".into())
}

pub fn parse_services(text: Option<&str>) -> Option<BTreeMap<String, u64>> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// The objects of the app's stack that another tool made (no Potluck labels), by id, for the
/// app to take over. Refused when one carries another Potluck app's labels, or while another
/// collective has the same engine registered (it could have planted them).
pub async fn claim(st: &AppState, app: &AppRow) -> Result<BTreeSet<String>> {
    let server = servers::by_id(st, app.server_id).await?;
    claim_on(st, &server, &app.stack_name, Some(app.id)).await
}

/// What an import of a running stack takes over (as [`claim`], for an app not yet made:
/// objects of other Potluck apps are left out); nothing when it cannot be.
pub async fn claim_for_import(st: &AppState, server: &ServerRow, stack: &str) -> BTreeSet<String> {
    match claim_on(st, server, stack, None).await {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::info!(stack, error = %e, "the imported stack's objects are not taken over");
            BTreeSet::new()
        }
    }
}

async fn claim_on(st: &AppState, server: &ServerRow, stack: &str, app: Option<AppId>) -> Result<BTreeSet<String>> {
    let docker = servers::docker_for(st, server).await?;
    let answer = |what: &str| ApiError::conflict(format!("cannot take the stack over: {what}"));
    let swarm = tokio::time::timeout(Duration::from_secs(20), docker.info())
        .await
        .map_err(|_| answer("the engine did not answer within 20 s"))?
        .map_err(|e| answer(&crate::adapters::engine::docker::error_text(&e)))?
        .swarm
        .and_then(|s| s.cluster)
        .and_then(|c| c.id)
        .filter(|id| !id.is_empty());
    // Another collective on the same swarm (by its cluster id, else by the same address) could
    // have planted what lacks Potluck's labels.
    let address = canonical_address(&server.kind, &server.address);
    let mut shared = false;
    for r in sqlx::query("SELECT kind, address, swarm_id FROM servers WHERE collective_id <> $1")
        .bind(server.collective_id)
        .fetch_all(st.db.pool())
        .await?
    {
        let their_swarm: Option<String> = r.try_get("swarm_id")?;
        let same_swarm = swarm.is_some() && their_swarm == swarm;
        let same_address = r.try_get::<String, _>("kind")? == server.kind
            && canonical_address(&server.kind, &r.try_get::<String, _>("address")?) == address;
        shared |= same_swarm || same_address;
    }
    if shared {
        return Err(answer("its engine is registered in more than one collective").into());
    }
    // What other apps took over stays theirs.
    let mut taken_elsewhere = BTreeSet::new();
    for r in sqlx::query("SELECT adopted_objects FROM apps WHERE adopted_objects IS NOT NULL AND id <> $1")
        .bind(app.map(|a| a.0).unwrap_or(0))
        .fetch_all(st.db.pool())
        .await?
    {
        let ids: BTreeSet<String> =
            serde_json::from_str(&r.try_get::<String, _>("adopted_objects")?).unwrap_or_default();
        taken_elsewhere.extend(ids);
    }
    let objects = tokio::time::timeout(Duration::from_secs(20), stack_objects(&docker, stack))
        .await
        .map_err(|_| answer("the engine did not answer within 20 s"))?
        .map_err(|e| answer(&e))?;
    let mine = app.map(|a| a.to_string());
    let mut claimed = BTreeSet::new();
    for (kind, name, id, owner) in objects {
        if taken_elsewhere.contains(&id) {
            if mine.is_some() {
                return Err(answer(&format!("{kind} {name} was taken over by another app")).into());
            }
            continue;
        }
        match (owner, &mine) {
            (None, _) => {
                claimed.insert(id);
            }
            (Some(o), Some(m)) if &o == m => {}
            (Some(_), Some(_)) => return Err(answer(&format!("{kind} {name} belongs to another Potluck app")).into()),
            (Some(_), None) => {}
        }
    }
    Ok(claimed)
}

/// An engine's address as compared between servers: a socket's path resolved.
fn canonical_address(kind: &str, address: &str) -> String {
    if kind == "unix" {
        let path = address.trim_start_matches("unix://");
        return std::fs::canonicalize(path).map(|p| p.display().to_string()).unwrap_or_else(|_| path.to_string());
    }
    address.trim().to_ascii_lowercase()
}

/// Every object of a stack: (kind, name, id, its `potluck.app` label). Secrets are those its
/// services use (abra makes them without the stack's label).
async fn stack_objects(
    docker: &bollard::Docker,
    stack: &str,
) -> std::result::Result<Vec<(&'static str, String, String, Option<String>)>, String> {
    use bollard::query_parameters::{ListConfigsOptions, ListNetworksOptions, ListSecretsOptions};
    let filters = || Some(HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={stack}")])]));
    let err = |e: bollard::errors::Error| crate::adapters::engine::docker::error_text(&e);
    let mut out = Vec::new();
    let owner = |l: Option<&HashMap<String, String>>| l.and_then(|l| l.get("potluck.app").cloned());
    let mut used_secrets = BTreeSet::new();
    for s in docker
        .list_services(Some(ListServicesOptions { filters: filters(), ..Default::default() }))
        .await
        .map_err(err)?
    {
        let spec = s.spec.unwrap_or_default();
        let refs = spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref()).and_then(|c| c.secrets.as_ref());
        used_secrets.extend(refs.into_iter().flatten().filter_map(|r| r.secret_id.clone()));
        out.push(("service", spec.name.unwrap_or_default(), s.id.unwrap_or_default(), owner(spec.labels.as_ref())));
    }
    for n in docker.list_networks(Some(ListNetworksOptions { filters: filters() })).await.map_err(err)? {
        out.push(("network", n.name.unwrap_or_default(), n.id.unwrap_or_default(), owner(n.labels.as_ref())));
    }
    for c in docker.list_configs(Some(ListConfigsOptions { filters: filters() })).await.map_err(err)? {
        let spec = c.spec.unwrap_or_default();
        out.push(("config", spec.name.unwrap_or_default(), c.id.unwrap_or_default(), owner(spec.labels.as_ref())));
    }
    if !used_secrets.is_empty() {
        for s in docker.list_secrets(None::<ListSecretsOptions>).await.map_err(err)? {
            let id = s.id.unwrap_or_default();
            if used_secrets.contains(&id) {
                let spec = s.spec.unwrap_or_default();
                out.push(("secret", spec.name.unwrap_or_default(), id, owner(spec.labels.as_ref())));
            }
        }
    }
    Ok(out)
}

/// Adds taken-over objects to the app's record (in the caller's transaction), merged with what
/// the row holds now (a compare-and-set, so two take-overs at once lose nothing).
pub async fn record_claim(tx: &mut audit::Audited, app: &AppRow, claimed: &BTreeSet<String>) -> Result<()> {
    for _ in 0..5 {
        let now: Option<String> = sqlx::query("SELECT adopted_objects FROM apps WHERE id = $1")
            .bind(app.id)
            .fetch_one(&mut **tx)
            .await?
            .try_get("adopted_objects")?;
        let held: BTreeSet<String> = now.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
        let all: BTreeSet<&String> = held.iter().chain(claimed.iter()).collect();
        let changed =
            sqlx::query("UPDATE apps SET adopted_objects = $1 WHERE id = $2 AND COALESCE(adopted_objects, '') = $3")
                .bind(serde_json::to_string(&all).unwrap_or_else(|_| "[]".into()))
                .bind(app.id)
                .bind(now.unwrap_or_default())
                .execute(&mut **tx)
                .await?
                .rows_affected();
        if changed == 1 {
            return Ok(());
        }
    }
    Err(ApiError::conflict("the app's record changed meanwhile: try again").into())
}

/// Takes what runs as the app's record: its version (a release of the recipe, or a chaos
/// commit), its status and its services. Refused when nothing differs, or when the labels name
/// a version that is no release of the recipe (redeploy Potluck's then).
pub async fn adopt(st: &AppState, access: &Cap<scope::App>) -> Result<AppSummary> {
    let app = access.app();
    let Some(drift) = app.drift.clone() else {
        return Err(ApiError::conflict(format!("{} runs as Potluck deployed it: nothing to adopt", app.domain)).into());
    };
    // The engine first: no database transaction waits on the network.
    let live = observe(st, app).await.map_err(|e| ApiError::conflict(format!("cannot read the stack: {e}")))?;
    let claimed = claim(st, app).await?;
    let running = !live.services.is_empty();
    let (version, chaos, chaos_version) = if !running {
        (app.version.clone(), app.chaos, app.chaos_version.clone())
    } else if live.chaos {
        (live.version.clone().or(app.version.clone()), true, live.chaos_version.clone())
    } else {
        let Some(v) = live.version.clone() else {
            return Err(ApiError::conflict(format!(
                "the stack's labels do not say which version of {} runs (no coop-cloud.{}.version): redeploy Potluck's instead",
                app.recipe, app.stack_name
            ))
            .into());
        };
        let recipe = crate::domain::recipes::store::get(st, &app.recipe).await?;
        if !super::plan::versions(st, &recipe).await?.contains(&v) {
            return Err(ApiError::conflict(format!(
                "the stack runs {v}, which is no release of {}: redeploy Potluck's instead",
                app.recipe
            ))
            .into());
        }
        (Some(v), false, None)
    };
    let status = if running { AppStatus::Deployed } else { AppStatus::Undeployed };
    // abra records the deployed version in the env's TYPE line; so does an adoption.
    let mut env = crate::adapters::engine::envfile::EnvFile::parse(&app.env).unwrap_or_default();
    if let (Some(v), false) = (&version, chaos) {
        let key = if env.entry("RECIPE").is_some() { "RECIPE" } else { "TYPE" };
        env.set(key, &format!("{}:{v}", app.recipe));
    }
    let now = now_ms();
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    // A job under way would change what runs while it is recorded.
    let busy: i64 = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE app_id = $1 AND state IN ('queued', 'running')")
        .bind(app.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if busy > 0 {
        return Err(ApiError::conflict(format!("{} is being changed by a job: adopt once it ended", app.domain)).into());
    }
    sqlx::query(
        "UPDATE apps SET status = $1, version = $2, chaos = $3, chaos_version = $4, env = $5, deployed_services = $6, \
         drift = NULL, updated_at = $7 WHERE id = $8",
    )
    .bind(status.as_str())
    .bind(&version)
    .bind(chaos as i64)
    .bind(&chaos_version)
    .bind(env.to_string())
    .bind(services_json(&live))
    .bind(now)
    .bind(app.id)
    .execute(&mut *tx)
    .await?;
    record_claim(&mut tx, app, &claimed).await?;
    tx.record(
        access.origin(),
        Event::new(AuditAction::AppAdopt, format!("app {}", app.domain)).in_collective(c.id, &c.slug).details(json!({
            "from": { "status": app.status.as_str(), "version": app.version, "chaos_version": app.chaos_version },
            "to": { "status": status.as_str(), "version": version, "chaos_version": chaos_version },
            "changes": drift.changes,
            "taken_over": claimed.len(),
        })),
    )
    .await?;
    tx.commit().await?;
    super::live::touch(st, app.server_id).await;
    Ok(super::apps::by_id(st, app.id).await?.map(|a| a.summary()).ok_or_else(|| ApiError::not_found("app"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(version: &str, services: &[(&str, u64)]) -> Live {
        Live {
            services: services.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            version: Some(version.into()),
            ..Default::default()
        }
    }

    fn rec<'a>(status: AppStatus, version: &'a str, services: Option<&'a BTreeMap<String, u64>>) -> Recorded<'a> {
        Recorded { status, version: Some(version), chaos: false, chaos_version: None, services }
    }

    #[test]
    fn what_potluck_left_is_no_drift() {
        let l = live("1.0.0", &[("app", 12), ("db", 9)]);
        let ours = l.services.clone();
        assert!(differences(rec(AppStatus::Deployed, "1.0.0", Some(&ours)), Some(&l)).is_empty());
        assert!(differences(rec(AppStatus::Undeployed, "1.0.0", None), None).is_empty());
        assert!(differences(rec(AppStatus::New, "1.0.0", None), Some(&Live::default())).is_empty());
    }

    #[test]
    fn a_deploy_from_a_laptop_names_the_version_and_the_services() {
        let ours: BTreeMap<String, u64> = [("app".to_string(), 12), ("db".to_string(), 9)].into();
        let l = live("1.1.0", &[("app", 15), ("db", 9), ("worker", 3)]);
        assert_eq!(
            differences(rec(AppStatus::Deployed, "1.0.0", Some(&ours)), Some(&l)),
            ["runs 1.1.0, Potluck deployed 1.0.0", "service app changed", "service worker added"]
        );
        let fewer = live("1.0.0", &[("app", 12)]);
        assert_eq!(differences(rec(AppStatus::Deployed, "1.0.0", Some(&ours)), Some(&fewer)), ["service db removed"]);
    }

    #[test]
    fn stacks_removed_or_started_behind_potlucks_back() {
        assert_eq!(
            differences(rec(AppStatus::Deployed, "1.0.0", None), None),
            ["the stack is not running: removed outside Potluck"]
        );
        let l = live("1.0.0", &[("app", 3)]);
        assert_eq!(
            differences(rec(AppStatus::Undeployed, "1.0.0", None), Some(&l)),
            ["the stack runs (1.0.0), though Potluck has the app undeployed"]
        );
    }

    #[test]
    fn without_a_record_only_the_labels_tell() {
        let mut l = live("1.0.0", &[("app", 3)]);
        assert!(differences(rec(AppStatus::Deployed, "1.0.0", None), Some(&l)).is_empty());
        l.foreign = vec!["app".into()];
        assert_eq!(
            differences(rec(AppStatus::Deployed, "1.0.0", None), Some(&l)),
            ["service app was deployed by another tool (it lacks Potluck's labels)"]
        );
    }

    #[test]
    fn chaos_deploys_compare_their_commits() {
        let mut l = live("1.0.0", &[("app", 3)]);
        l.chaos = true;
        l.chaos_version = Some("abcdef12".into());
        let ours = Recorded {
            status: AppStatus::Deployed,
            version: Some("1.0.0"),
            chaos: true,
            chaos_version: Some("abcdef12"),
            services: None,
        };
        assert!(differences(ours, Some(&l)).is_empty());
        assert_eq!(
            differences(Recorded { chaos_version: Some("12345678"), ..ours }, Some(&l)),
            ["runs chaos abcdef12, Potluck deployed chaos 12345678"]
        );
        assert_eq!(
            differences(rec(AppStatus::Deployed, "1.0.0", None), Some(&l)),
            ["runs a chaos deploy (abcdef12), Potluck deployed 1.0.0"]
        );
    }

    #[test]
    fn a_drift_keeps_its_start_while_it_lasts() {
        let first = next(None, vec!["x".into()], None, 100).unwrap();
        assert_eq!(first.since, 100);
        assert_eq!(next(Some(&first), vec!["y".into()], None, 200).unwrap().since, 100);
        assert!(next(Some(&first), vec![], None, 300).is_none());
    }
}
