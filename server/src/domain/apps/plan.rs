//! What deploying an app at a version means: the recipe's files at that tag (or a commit, for
//! chaos), the app's env, abra's labels and Potluck's ownership labels → a stack plan. Also the
//! checks before a deploy, and the dry run: what would change on the swarm.

use super::apps::AppRow;
use super::servers;
use super::stack::Stack;
use crate::adapters::engine::convert::StackPlan;
use crate::adapters::engine::deploy::typed;
use crate::adapters::engine::envfile::EnvFile;
use crate::adapters::engine::guard;
use crate::adapters::engine::load::RecipeFiles;
use crate::adapters::engine::{self, AbraDeploy};
use crate::adapters::git;
use crate::domain::recipes::{inspect, store, version::RecipeVersion};
use crate::error::{Error, Result};
use crate::state::AppState;
use bollard::Docker;
use potluck_app::error::ApiError;
use potluck_app::model::{DeployCheck, JobKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A recipe's version tags, newest first.
pub async fn versions(st: &AppState, recipe: &store::RecipeRow) -> Result<Vec<String>> {
    let path = store::local_clone(st, recipe).await?;
    tokio::task::spawn_blocking(move || -> std::result::Result<Vec<String>, String> {
        let repo = git::open(&path).map_err(|e| e.to_string())?;
        let mut v: Vec<RecipeVersion> =
            git::tags(&repo).map_err(|e| e.to_string())?.iter().map(|t| RecipeVersion::parse(&t.name)).collect();
        v.sort();
        Ok(v.into_iter().rev().map(|v| v.tag).collect())
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| ApiError::unavailable(format!("recipe {} cannot be read: {e}", recipe.name)).into())
}

/// What to deploy.
#[derive(Debug, Clone)]
pub enum Target {
    /// A tagged version.
    Version(String),
    /// A commit (or branch) of the recipe, deployed as chaos.
    Chaos(String),
}

pub struct AppPlan {
    pub plan: StackPlan,
    pub files: RecipeFiles,
    pub env: indexmap::IndexMap<String, String>,
    pub version_label: Option<String>,
    pub chaos_version: Option<String>,
}

/// Renders the app's stack at `target` from its recipe (loaded once by the caller).
pub async fn build(st: &AppState, app: &AppRow, recipe: &store::RecipeRow, target: &Target) -> Result<AppPlan> {
    let (rev, chaos_commit) = match target {
        Target::Version(v) => (v.clone(), None),
        Target::Chaos(c) => {
            let path = store::local_clone(st, recipe).await?;
            let c2 = c.clone();
            let full = tokio::task::spawn_blocking(move || -> std::result::Result<String, String> {
                let repo = git::open(&path).map_err(|e| e.to_string())?;
                let obj = repo.revparse_single(&c2).map_err(|_| format!("no commit {c2:?} in the recipe"))?;
                let id = obj.peel_to_commit().map_err(|e| e.to_string())?.id().to_string();
                Ok(id)
            })
            .await
            .map_err(Error::internal)?
            .map_err(|e| ApiError::invalid("commit", e))?;
            (full.clone(), Some(full[..8].to_string()))
        }
    };
    let files = inspect::files_of(st, recipe, &rev).await?;
    let mut env_file = EnvFile::parse(&app.env).map_err(|e| ApiError::invalid("env", format!("the app's env: {e}")))?;
    // The services see the version being deployed, as abra writes it into the env before it
    // deploys (the app's record keeps the one that runs until the deploy succeeds).
    if let Target::Version(v) = target {
        let key = if env_file.entry("RECIPE").is_some() { "RECIPE" } else { "TYPE" };
        env_file.set(key, &format!("{}:{v}", recipe.name));
    }
    let abra_sh = files.text("abra.sh");
    let env = engine::app_environment(&env_file, abra_sh.as_deref(), &app.stack_name);
    let mut app_env = env_file.values(&|_| None);
    if let Some(sh) = &abra_sh {
        app_env.extend(engine::envfile::abra_sh_exports(sh));
    }
    let version_label = match target {
        Target::Version(v) => Some(v.clone()),
        Target::Chaos(_) => None,
    };
    let abra = AbraDeploy {
        recipe: recipe.name.clone(),
        // As abra: a chaos deploy keeps the last release's version label (the commit goes in
        // chaos-version).
        version: version_label.clone().or_else(|| app.version.clone()).unwrap_or_default(),
        chaos: chaos_commit.is_some(),
        chaos_version: chaos_commit.clone(),
        app_env,
    };
    let plan = engine::render(&files, &env, &app.stack_name, Some(&abra))
        .map_err(|e| ApiError::invalid("recipe", e.to_string()))?;
    Ok(AppPlan { plan, files, env, version_label, chaos_version: chaos_commit })
}

/// The external secrets the stack needs: (compose key, Docker name).
pub fn external_secrets(plan: &StackPlan) -> Vec<String> {
    let own: BTreeSet<&str> = plan.secrets.iter().map(|s| s.name.as_str()).collect();
    let mut names = BTreeSet::new();
    for s in &plan.services {
        for r in s.spec.pointer("/TaskTemplate/ContainerSpec/Secrets").and_then(Value::as_array).into_iter().flatten() {
            if let Some(n) = r["SecretName"].as_str() {
                if !own.contains(n) {
                    names.insert(n.to_string());
                }
            }
        }
    }
    names.into_iter().collect()
}

/// The checks before a deploy: errors stop it, warnings are shown. Among them the server's
/// guardrails: what the stack asks of the host and the server's policy does not allow.
pub async fn checks(
    st: &AppState,
    app: &AppRow,
    p: &AppPlan,
    stack: Option<&Stack>,
    kind: JobKind,
) -> Vec<DeployCheck> {
    let mut out = Vec::new();
    let err = |m: String| DeployCheck { level: "error".into(), message: m };
    let warn = |m: String| DeployCheck { level: "warning".into(), message: m };
    if let Some(sample) = p.files.text(".env.sample").and_then(|t| EnvFile::parse(&t).ok()) {
        let have = EnvFile::parse(&app.env).map(|e| e.values(&|_| None)).unwrap_or_default();
        for key in sample.entries().map(|e| e.key.clone()).collect::<BTreeSet<_>>() {
            if !have.contains_key(&key) {
                out.push(warn(format!("{key} missing from {}.env (the recipe's sample has it)", app.domain)));
            }
        }
    }
    for w in &p.plan.warnings {
        out.push(warn(w.clone()));
    }
    match servers::by_id(st, app.server_id).await {
        Ok(server) => {
            for finding in guard::check(&p.plan, &server.policy) {
                out.push(err(format!("{finding} (server {}; a federation admin sets what it allows)", server.name)));
            }
        }
        Err(e) => out.push(err(format!("server of {}: {e}", app.domain))),
    }
    // Docker refuses secret and config names over 64 characters (R015, for this stack's names).
    let mut names: Vec<String> = external_secrets(&p.plan);
    names.extend(p.plan.secrets.iter().map(|s| s.name.clone()));
    names.extend(p.plan.configs.iter().map(|c| c.name.clone()));
    for name in names.iter().filter(|n| n.len() > 64) {
        out.push(err(format!(
            "{name} is {} characters, over Docker's 64: use a shorter domain (stack name) or secret name",
            name.len()
        )));
    }
    for finding in crate::domain::recipes::lint::lint_files(&p.files, &app.recipe) {
        if finding.level == "error" {
            out.push(err(format!("lint {} failed: {}", finding.rule, finding.message)));
        }
    }
    match stack {
        None => out.push(err(format!("server {} is unreachable", app.server))),
        Some(stack) => {
            match stack.secret_names().await {
                Ok(existing) => {
                    for name in external_secrets(&p.plan) {
                        if !existing.contains(&name) {
                            out.push(err(format!(
                                "secret not generated: {name} (generate or insert it on the secrets tab)"
                            )));
                        }
                    }
                }
                Err(e) => out.push(err(format!("server {} cannot list secrets: {e}", app.server))),
            }
            let deployed = stack.exists().await;
            if kind == JobKind::Deploy && deployed {
                out.push(err(format!("{} is already deployed: upgrade, roll back or redeploy it instead", app.domain)));
            }
            if matches!(kind, JobKind::Upgrade | JobKind::Rollback) && !deployed {
                out.push(err(format!("{} is not deployed: deploy it first", app.domain)));
            }
        }
    }
    out
}

fn strip_ids(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("SecretID");
            m.remove("ConfigID");
            m.remove("ForceUpdate");
            for (_, x) in m.iter_mut() {
                strip_ids(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_ids),
        _ => {}
    }
}

/// What the engine fills in when a spec leaves it out: a live spec that carries one of these
/// where the wanted spec has nothing is unchanged.
fn daemon_default(path: &str, v: &Value) -> bool {
    match path {
        "EndpointSpec.Mode" => v == "vip",
        "TaskTemplate.ContainerSpec.Isolation" => v == "default",
        "TaskTemplate.Runtime" => v == "container",
        "Mode.Replicated.Replicas" => v == 1,
        // The platforms of the image, whatever they are.
        "TaskTemplate.Placement.Platforms" => true,
        _ => false,
    }
}

/// Nothing in it: null, false, 0, "", [] or an object of such. The engine leaves out what is
/// empty, so empty and absent are the same setting.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(is_empty),
    }
}

/// A value the engine puts where the spec said nothing (an object: when all that is in it is).
fn is_default(path: &str, v: &Value) -> bool {
    daemon_default(path, v)
        || match v {
            Value::Object(m) => m.iter().all(|(k, x)| is_default(&format!("{path}.{k}"), x)),
            _ => is_empty(v),
        }
}

/// The differences from the live spec `a` to the wanted spec `b`, one line each: a key only one
/// side has counts when its value is more than the engine's default.
fn walk(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => walk(l, r, p, out),
                    (Some(l), None) if !is_default(&p, l) => out.push(format!("{p}: {l} removed")),
                    (None, Some(r)) if !is_default(&p, r) => out.push(format!("{p}: {r} added")),
                    _ => {}
                }
            }
        }
        // `{}` against `null`, `0` against `false`: the same nothing.
        _ if is_empty(a) && is_empty(b) => {}
        _ if a != b => out.push(format!("{path}: {a} → {b}")),
        _ => {}
    }
}

/// The engine reports a service's healthcheck as `Healthcheck`, which bollard's model (reading
/// the API's `HealthCheck`) drops: when the wanted spec has one, the live one is read from a
/// running task's container instead; where no task runs on the engine's node, the healthcheck
/// is left out of the comparison rather than reported as added.
async fn healthcheck_of_live(docker: &Docker, service: &str, live: &mut Value, wanted: &mut Value) {
    use bollard::query_parameters::{InspectContainerOptions, ListTasksOptions};
    const CS: &str = "/TaskTemplate/ContainerSpec";
    let has = |v: &Value| v.pointer(CS).and_then(|c| c.get("HealthCheck")).is_some();
    if !has(wanted) || has(live) {
        return;
    }
    let filters = std::collections::HashMap::from([
        ("service".to_string(), vec![service.to_string()]),
        ("desired-state".to_string(), vec!["running".to_string()]),
    ]);
    let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.unwrap_or_default();
    let mut found = None;
    for t in tasks {
        let Some(id) = t.status.and_then(|s| s.container_status).and_then(|c| c.container_id) else { continue };
        if let Ok(c) = docker.inspect_container(&id, None::<InspectContainerOptions>).await {
            found = c.config.and_then(|cfg| cfg.healthcheck).and_then(|h| serde_json::to_value(h).ok());
            break;
        }
    }
    match found {
        Some(h) => {
            if let Some(cs) = live.pointer_mut(CS).and_then(Value::as_object_mut) {
                cs.insert("HealthCheck".into(), h);
            }
        }
        None => {
            if let Some(cs) = wanted.pointer_mut(CS).and_then(Value::as_object_mut) {
                cs.remove("HealthCheck");
            }
        }
    }
}

/// What deploying `plan` would change on the swarm, one line each.
/// `ownership`: the labels the deploy adds to every service (so they are no change).
pub(super) async fn dry_run(
    docker: &Docker,
    plan: &StackPlan,
    ownership: &BTreeMap<String, String>,
) -> std::result::Result<Vec<String>, String> {
    use bollard::query_parameters::{ListNetworksOptions, ListServicesOptions};
    let filter = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("{}={}", crate::adapters::engine::convert::NAMESPACE_LABEL, plan.namespace)],
    )]);
    let services = docker
        .list_services(Some(ListServicesOptions { filters: Some(filter.clone()), ..Default::default() }))
        .await
        .map_err(|e| crate::adapters::engine::docker::error_text(&e))?;
    let networks = docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .map_err(|e| crate::adapters::engine::docker::error_text(&e))?;
    let net_names: BTreeMap<String, String> =
        networks.iter().filter_map(|n| Some((n.id.clone()?, n.name.clone()?))).collect();
    let mut live: BTreeMap<String, Value> = BTreeMap::new();
    for s in services {
        let Some(spec) = s.spec else { continue };
        let mut v = serde_json::to_value(&spec).unwrap_or_default();
        if let Some(nets) = v.pointer_mut("/TaskTemplate/Networks").and_then(Value::as_array_mut) {
            for n in nets.iter_mut() {
                if let Some(name) = n["Target"].as_str().and_then(|id| net_names.get(id)) {
                    n["Target"] = Value::String(name.clone());
                }
            }
        }
        // The stored image carries a digest when one was resolved; compare without it.
        if let Some(img) = v.pointer_mut("/TaskTemplate/ContainerSpec/Image") {
            if let Some(s) = img.as_str().and_then(|s| s.split('@').next()).map(String::from) {
                *img = Value::String(s);
            }
        }
        strip_ids(&mut v);
        live.insert(spec.name.unwrap_or_default(), v);
    }
    let mut out = Vec::new();
    let existing_nets: BTreeSet<&String> = net_names.values().collect();
    for n in plan.networks.iter().filter(|n| !n.external && !existing_nets.contains(&n.name)) {
        out.push(format!("create network {}", n.name));
    }
    let secrets: BTreeSet<String> = docker
        .list_secrets(None::<bollard::query_parameters::ListSecretsOptions>)
        .await
        .map_err(|e| crate::adapters::engine::docker::error_text(&e))?
        .into_iter()
        .filter_map(|s| s.spec.and_then(|x| x.name))
        .collect();
    for s in plan.secrets.iter().filter(|s| !secrets.contains(&s.name)) {
        out.push(format!("create secret {}", s.name));
    }
    let configs: BTreeSet<String> = docker
        .list_configs(None::<bollard::query_parameters::ListConfigsOptions>)
        .await
        .map_err(|e| crate::adapters::engine::docker::error_text(&e))?
        .into_iter()
        .filter_map(|c| c.spec.and_then(|x| x.name))
        .collect();
    for c in plan.configs.iter().filter(|c| !configs.contains(&c.name)) {
        out.push(format!("create config {}", c.name));
    }
    for s in &plan.services {
        let model: bollard::models::ServiceSpec = typed(s.spec.clone(), &s.name).map_err(|e| e.to_string())?;
        let mut wanted = serde_json::to_value(&model).unwrap_or_default();
        if let Some(labels) =
            wanted.as_object_mut().map(|o| o.entry("Labels").or_insert_with(|| Value::Object(Default::default())))
        {
            if let Some(labels) = labels.as_object_mut() {
                for (k, v) in ownership {
                    labels.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        strip_ids(&mut wanted);
        match live.remove(&s.name) {
            None => out.push(format!("create service {} ({})", s.name, s.image)),
            Some(mut current) => {
                healthcheck_of_live(docker, &s.name, &mut current, &mut wanted).await;
                let mut changes = Vec::new();
                walk(&current, &wanted, String::new(), &mut changes);
                if changes.is_empty() {
                    out.push(format!("service {} unchanged", s.name));
                } else {
                    out.push(format!("update service {}:", s.name));
                    out.extend(changes.into_iter().map(|c| format!("  {c}")));
                }
            }
        }
    }
    for name in live.keys() {
        out.push(format!("service {name} is not in the recipe any more (left running; undeploy removes it)"));
    }
    Ok(out)
}

/// Release notes of every version after `from` up to and including `to` (oldest first).
pub async fn release_notes_between(
    st: &AppState,
    app: &AppRow,
    from: Option<&str>,
    to: &str,
) -> Result<Vec<(String, String)>> {
    let recipe = store::get(st, &app.recipe).await?;
    let detail_versions = {
        let path = store::local_clone(st, &recipe).await?;
        tokio::task::spawn_blocking(move || inspect::versions(&git::open(&path)?, &path))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)?
    };
    let lo = from.map(RecipeVersion::parse);
    let hi = RecipeVersion::parse(to);
    let mut notes: Vec<(RecipeVersion, String)> = detail_versions
        .into_iter()
        .filter_map(|v| {
            let rv = RecipeVersion::parse(&v.tag);
            let after_lo = lo.as_ref().is_none_or(|l| rv > *l);
            (after_lo && rv <= hi).then(|| (rv, v.release_note.unwrap_or_else(|| "(no release note)".into())))
        })
        .collect();
    notes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(notes.into_iter().map(|(v, n)| (v.tag, n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn changes(live: Value, wanted: Value) -> Vec<String> {
        let mut out = Vec::new();
        walk(&live, &wanted, String::new(), &mut out);
        out
    }

    #[test]
    fn what_the_engine_fills_in_is_no_change() {
        let live = json!({
            "Labels": { "potluck.app": "7" },
            "EndpointSpec": { "Mode": "vip" },
            "Mode": { "Replicated": { "Replicas": 1 } },
            "TaskTemplate": {
                "Runtime": "container",
                "ForceUpdate": 0,
                "Placement": { "Platforms": [{ "Architecture": "amd64", "OS": "linux" }] },
                "ContainerSpec": {
                    "Isolation": "default",
                    "Env": ["A=1"],
                    "HealthCheck": { "Test": ["CMD", "true"], "Interval": 1_000_000_000_i64 }
                }
            }
        });
        let wanted = json!({
            "Labels": { "potluck.app": "7" },
            "EndpointSpec": {},
            "Mode": { "Replicated": {} },
            "TaskTemplate": {
                "Placement": {},
                "ContainerSpec": {
                    "Env": ["A=1"],
                    "HealthCheck": { "Test": ["CMD", "true"], "Interval": 1_000_000_000_i64, "StartPeriod": 0 },
                    "Mounts": []
                }
            }
        });
        assert_eq!(changes(live, wanted), Vec::<String>::new());
    }

    #[test]
    fn real_changes_are_each_one_line() {
        let live = json!({
            "EndpointSpec": { "Mode": "dnsrr" },
            "Mode": { "Replicated": { "Replicas": 3 } },
            "TaskTemplate": { "ContainerSpec": { "Env": ["A=1"], "User": "nobody" } }
        });
        let wanted = json!({
            "EndpointSpec": {},
            "TaskTemplate": { "ContainerSpec": { "Env": ["A=2"], "HealthCheck": { "Test": ["CMD", "true"] } } }
        });
        assert_eq!(
            changes(live, wanted),
            [
                "EndpointSpec.Mode: \"dnsrr\" removed",
                "Mode: {\"Replicated\":{\"Replicas\":3}} removed",
                "TaskTemplate.ContainerSpec.Env: [\"A=1\"] → [\"A=2\"]",
                "TaskTemplate.ContainerSpec.HealthCheck: {\"Test\":[\"CMD\",\"true\"]} added",
                "TaskTemplate.ContainerSpec.User: \"nobody\" removed",
            ]
        );
    }
}
