//! Restore drills: a snapshot restored into a throw-away stack on the app's server, with its own
//! secrets (generated for the drill) and its own volumes, no published ports and a domain of
//! its own, then redeployed onto the restored data and waited for until every service runs and
//! passes its healthchecks. Whatever happens, the drill's stack, volumes and secrets are removed
//! at the end. The outcome is kept with the snapshot: the app's "last verified restore".

use super::apps::AppRow;
use super::backups::{self, Lines};
use super::plan::{self, Target};
use super::secrets;
use super::stack::Stack;
use crate::adapters::backup::run::Report;
use crate::adapters::db::now_ms;
use crate::adapters::engine::converge::Outcome;
use crate::adapters::engine::convert::StackPlan;
use crate::adapters::engine::deploy::{DeployOptions, ResolveImage};
use crate::adapters::engine::envfile::EnvFile;
use crate::state::AppState;
use potluck_app::model::{human_bytes, JobId, JobOptions};
use std::collections::HashMap;
use std::time::Duration;

/// Docker names a service `<stack>_<service>` in at most 63 characters: the drill's stack name
/// is kept short.
const MAX_STACK: usize = 40;

/// How a drill went.
pub struct Drilled {
    /// The snapshot's full id.
    pub snapshot: String,
    pub ok: bool,
    pub text: String,
}

/// The drill's stack name: `drill-<job>-_` and as much of the app's stack as fits. No app's
/// stack is named so (`-_` would need a domain label ending in `-`), and the drill refuses to
/// start where a stack of that name exists all the same.
pub fn stack_name(app: &AppRow, job: JobId) -> String {
    let mut name = format!("drill-{}-_{}", job.0, app.stack_name);
    name.truncate(MAX_STACK);
    name.trim_end_matches(['_', '-']).to_string()
}

/// What marks everything the drill makes: the app's labels and the drill's job, so that the
/// deploy refuses to adopt (and the cleanup to remove) anything that is not the drill's own.
fn ownership(drill: &AppRow, job: JobId) -> std::collections::BTreeMap<String, String> {
    let mut labels = drill.ownership();
    labels.insert("potluck.drill".into(), job.0.to_string());
    labels
}

/// The app as the drill deploys it: another stack, another domain, the same recipe and version.
fn drill_app(app: &AppRow, job: JobId) -> AppRow {
    let mut d = app.clone();
    d.stack_name = stack_name(app, job);
    d.domain = format!("drill-{}.{}.invalid", job.0, app.stack_name.replace('_', "-"));
    let mut env = EnvFile::parse(&app.env).unwrap_or_default();
    env.set("DOMAIN", &d.domain);
    d.env = env.to_string();
    d
}

/// No published ports (the app's own stack holds them), no route from a reverse proxy
/// (`traefik.enable=false` on every service, so no certificate is asked for) and no network
/// outside its own stack (an external network would let the drill's services reach, under the
/// same aliases, the services of the app itself): a drill serves nobody and reaches nobody.
fn unpublished(mut plan: StackPlan) -> StackPlan {
    let own = format!("{}_", plan.namespace);
    for s in &mut plan.services {
        if let Some(endpoint) = s.spec.get_mut("EndpointSpec").and_then(|e| e.as_object_mut()) {
            endpoint.remove("Ports");
        }
        if let Some(networks) = s.spec.pointer_mut("/TaskTemplate/Networks").and_then(|n| n.as_array_mut()) {
            networks.retain(|n| n.get("Target").and_then(|t| t.as_str()).is_some_and(|t| t.starts_with(&own)));
        }
        if let Some(spec) = s.spec.as_object_mut() {
            let labels = spec.entry("Labels").or_insert_with(|| serde_json::json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("traefik.enable".into(), "false".into());
            }
        }
    }
    plan
}

/// The mounts through which a drill would touch what is not its own: a volume named outside the
/// drill's stack (`external`, or a `name:` of its own) or with driver options is the app's data,
/// a writable bind mount is the server's, and the engine's socket is everything. A drill that has any is refused rather than restored into them.
fn shared_mounts(plan: &StackPlan) -> Vec<String> {
    let own = format!("{}_", plan.namespace);
    let mut shared = Vec::new();
    for s in &plan.services {
        let mounts = s.spec.pointer("/TaskTemplate/ContainerSpec/Mounts").and_then(|m| m.as_array());
        for m in mounts.into_iter().flatten() {
            let kind = m.get("Type").and_then(|v| v.as_str()).unwrap_or_default();
            let source = m.get("Source").and_then(|v| v.as_str()).unwrap_or_default();
            let read_only = m.get("ReadOnly").and_then(|v| v.as_bool()).unwrap_or(false);
            // A volume with driver options may be a bind of a host directory or a network share
            // in disguise: the same storage under another name.
            let driver = m.pointer("/VolumeOptions/DriverConfig").is_some_and(|d| !d.is_null());
            let outside = match kind {
                "volume" => (!source.is_empty() && !source.starts_with(&own)) || driver,
                "bind" => !read_only || source.ends_with("docker.sock"),
                _ => false,
            };
            if outside {
                shared.push(format!("{} mounts {kind} {source}", s.key));
            }
        }
    }
    shared
}

/// Drills `snapshot` (full id; one of the app's, in the collective's repository `repo`) and
/// records the outcome with it. `Err` only when the drill could not be recorded.
pub async fn run(
    st: &AppState,
    app: &AppRow,
    job: JobId,
    snapshot: &str,
    repo: potluck_app::model::BackupRepoId,
    timeout_secs: Option<u64>,
    lines: &Lines,
) -> std::result::Result<Drilled, String> {
    let drill = drill_app(app, job);
    (lines.step)(format!(
        "restore drill of snapshot {} in throw-away stack {}",
        &snapshot[..snapshot.len().min(8)],
        drill.stack_name
    ));
    let stack = Stack::of(st, &drill).await.map_err(|e| e.to_string())?;
    if stack.exists().await {
        // Left by an earlier attempt of this same job (Potluck stopped mid-drill, and the job
        // runs again): everything of it carries this job's label, and goes first. Anything
        // else is not the drill's: neither deployed over nor cleaned up.
        let step = lines.step.clone();
        let ours = stack
            .remove(&ownership(&drill, job), &Default::default(), Some(Duration::from_secs(180)), &|s| {
                step(s.to_string())
            })
            .await;
        if let Err(e) = ours {
            return Err(format!(
                "a stack named {} exists already ({e}): the drill does not touch it",
                drill.stack_name
            ));
        }
        (lines.step)(format!("removed what an earlier attempt of this drill left in {}", drill.stack_name));
        let step = lines.step.clone();
        stack.remove_volumes(&|m| step(m)).await?;
        let step = lines.step.clone();
        stack.remove_secrets(&|m| step(m)).await?;
    }
    let outcome = attempt(st, app, job, &drill, &stack, snapshot, repo, timeout_secs, lines).await;
    // Everything the drill made goes, whatever it did.
    (lines.step)(format!("removing the drill's stack {}", drill.stack_name));
    let step = lines.step.clone();
    let mut cleanup = Vec::new();
    if let Err(e) = stack
        .remove(&ownership(&drill, job), &Default::default(), Some(Duration::from_secs(180)), &|s| step(s.to_string()))
        .await
    {
        cleanup.push(e.to_string());
    }
    let step = lines.step.clone();
    if let Err(e) = stack.remove_volumes(&|m| step(m)).await {
        cleanup.push(e);
    }
    let step = lines.step.clone();
    if let Err(e) = stack.remove_secrets(&|m| step(m)).await {
        cleanup.push(e);
    }
    let (ok, mut text) = match outcome {
        Ok(text) => (true, text),
        Err(e) => (false, format!("the restore drill failed: {e}")),
    };
    if !cleanup.is_empty() {
        text.push_str(&format!("; cleaning up the drill's stack failed: {}", cleanup.join("; ")));
    }
    sqlx::query(
        "UPDATE backups SET drilled_at = $1, drill_ok = $2, drill_result = $3, drill_job_id = $4 \
         WHERE app_id = $5 AND snapshot_id = $6",
    )
    .bind(now_ms())
    .bind(i64::from(ok))
    .bind(&text)
    .bind(job)
    .bind(app.id)
    .bind(snapshot)
    .execute(st.db.pool())
    .await
    .map_err(|e| e.to_string())?;
    Ok(Drilled { snapshot: snapshot.to_string(), ok, text })
}

/// Deploys the drill, restores into it, redeploys onto the restored data and waits for it.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    st: &AppState,
    app: &AppRow,
    job: JobId,
    drill: &AppRow,
    stack: &Stack,
    snapshot: &str,
    repo: potluck_app::model::BackupRepoId,
    timeout_secs: Option<u64>,
    lines: &Lines,
) -> std::result::Result<String, String> {
    let version = app.version.clone().ok_or("the app has no version to drill")?;
    let recipe = crate::domain::recipes::store::get(st, &app.recipe).await.map_err(|e| e.to_string())?;
    let p = plan::build(st, drill, &recipe, &Target::Version(version.clone())).await.map_err(|e| e.to_string())?;
    let plan = unpublished(p.plan);
    let shared = shared_mounts(&plan);
    if !shared.is_empty() {
        return Err(format!(
            "a drill would write into data that is not its own ({}): drill this app by restoring a clone instead",
            shared.join(", ")
        ));
    }
    // Its own secrets: fresh values, never the app's.
    let declared = secrets::declared(st, drill).await.map_err(|e| e.to_string())?;
    for d in &declared {
        let value = secrets::generate_value(d.length, d.charset.as_deref())
            .or_else(|_| secrets::generate_value(None, None))
            .map_err(|e| format!("secret {}: {e}", d.key))?;
        let labels = HashMap::from([("potluck.drill".to_string(), job.0.to_string())]);
        stack.create_secret(&d.docker_name, labels, &value).await.map_err(|e| e.to_string())?;
    }
    if !declared.is_empty() {
        (lines.step)(format!("{} secrets generated for the drill", declared.len()));
    }
    // The images the app runs are on its server already: a drill pulls nothing new.
    let opts = DeployOptions {
        ownership: ownership(drill, job),
        resolve_image: ResolveImage::Never,
        ..DeployOptions::default()
    };
    let secs = timeout_secs.unwrap_or_else(|| crate::adapters::engine::timeout_of(&plan));
    converge(stack, &plan, &opts, secs, lines, "deployed").await?;
    let repo = backups::repo_by_id(st, app.collective_id, repo).await.map_err(|e| e.to_string())?;
    let (location, password) = repo.open(st).await?;
    let step = lines.step.clone();
    let report = Report { step: &move |s| step(s), progress: backups::throttled(lines.progress.clone()) };
    let restored = stack.restore(&app.stack_name, &location, &password, Some(snapshot), &report).await?;
    for w in &restored.warnings {
        (lines.step)(format!("warning: {w}"));
    }
    if restored.files == 0 {
        return Err("the snapshot restored no file".into());
    }
    // The services start again on the restored data, and must come up healthy.
    let opts = DeployOptions { force: true, ..opts };
    converge(stack, &plan, &opts, secs, lines, "runs on the restored data").await?;
    Ok(format!(
        "restore drill passed: {} files, {} restored into a throw-away stack of {version}, which converged and passed its healthchecks",
        restored.files,
        human_bytes(restored.bytes)
    ))
}

async fn converge(
    stack: &Stack,
    plan: &StackPlan,
    opts: &DeployOptions,
    secs: u64,
    lines: &Lines,
    what: &str,
) -> std::result::Result<(), String> {
    let step = lines.step.clone();
    let deployed = stack.deploy(plan, opts, &|s| step(s.to_string())).await.map_err(|e| e.to_string())?;
    (lines.step)(format!("waiting up to {secs} s for the drill to converge"));
    let progress = lines.progress.clone();
    let outcome = stack
        .converge(&deployed.services, Duration::from_secs(secs), &|p| progress(super::jobs::progress_line(p).1))
        .await;
    match outcome {
        Outcome::Converged => {
            (lines.step)(format!("the drill {what} and converged"));
            Ok(())
        }
        other => Err(format!("the drill's stack did not converge: {other}")),
    }
}

/// The snapshot a drill job tests: the one the options name, else the app's newest.
pub async fn chosen(
    st: &AppState,
    app: &AppRow,
    options: &JobOptions,
) -> crate::error::Result<(String, potluck_app::model::BackupRepoId)> {
    match options.snapshot.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => {
            let (found, repo) = backups::find(st, app.id, id).await?;
            Ok((found.snapshot, repo))
        }
        None => {
            let newest = backups::for_app(st, app.id).await?.into_iter().next().ok_or_else(|| {
                potluck_app::error::ApiError::conflict(format!(
                    "{} has no snapshot to drill: back it up first",
                    app.domain
                ))
            })?;
            let (_, repo) = backups::find(st, app.id, &newest.snapshot).await?;
            Ok((newest.snapshot, repo))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::engine::convert::ServicePlan;
    use serde_json::json;

    fn plan(mounts: serde_json::Value) -> StackPlan {
        StackPlan {
            namespace: "drill7_app".into(),
            networks: vec![],
            secrets: vec![],
            configs: vec![],
            services: vec![ServicePlan {
                key: "db".into(),
                name: "drill7_app_db".into(),
                image: "busybox".into(),
                spec: json!({ "TaskTemplate": { "ContainerSpec": { "Mounts": mounts } } }),
            }],
            warnings: vec![],
            ignored: vec![],
        }
    }

    #[test]
    fn a_drill_never_mounts_the_apps_own_volumes_or_a_writable_host_path() {
        let own = plan(json!([
            { "Type": "volume", "Source": "drill7_app_data", "Target": "/data" },
            { "Type": "volume", "Target": "/anonymous" },
            { "Type": "bind", "Source": "/etc/localtime", "Target": "/etc/localtime", "ReadOnly": true },
            { "Type": "tmpfs", "Target": "/tmp" },
        ]));
        assert!(shared_mounts(&own).is_empty());
        let shared = plan(json!([
            { "Type": "volume", "Source": "app_data", "Target": "/data" },
            { "Type": "bind", "Source": "/srv/files", "Target": "/files" },
            { "Type": "volume", "Source": "drill7_app_nfs", "Target": "/nfs",
              "VolumeOptions": { "DriverConfig": { "Name": "local", "Options": { "type": "none", "o": "bind", "device": "/srv/app" } } } },
            { "Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock", "ReadOnly": true },
        ]));
        assert_eq!(
            shared_mounts(&shared),
            [
                "db mounts volume app_data",
                "db mounts bind /srv/files",
                "db mounts volume drill7_app_nfs",
                "db mounts bind /var/run/docker.sock"
            ]
        );
    }

    #[test]
    fn a_drill_publishes_no_port_and_no_proxy_route() {
        let mut p = plan(json!([]));
        p.services[0].spec["EndpointSpec"] = json!({ "Ports": [{ "PublishedPort": 8080, "TargetPort": 80 }] });
        p.services[0].spec["Labels"] =
            json!({ "traefik.enable": "true", "traefik.http.routers.app.rule": "Host(`x`)" });
        p.services[0].spec["TaskTemplate"]["Networks"] =
            json!([{ "Target": "proxy", "Aliases": ["app"] }, { "Target": "drill7_app_internal", "Aliases": ["app"] }]);
        let p = unpublished(p);
        assert_eq!(p.services[0].spec["EndpointSpec"], json!({}));
        assert_eq!(p.services[0].spec["Labels"]["traefik.enable"], "false");
        assert_eq!(
            p.services[0].spec["TaskTemplate"]["Networks"],
            json!([{ "Target": "drill7_app_internal", "Aliases": ["app"] }]),
            "no network outside the drill's stack"
        );
    }
}
