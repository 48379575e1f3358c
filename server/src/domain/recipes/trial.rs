//! A trial of a recipe version on a swarm: what `potluck recipe test` and a staging run do.
//!
//! The version is deployed as a throw-away app (its own stack name and `.invalid` domain,
//! secrets generated for it, the recipe's `.env.sample` with overrides) and waited for until
//! every service converges and passes its healthchecks; then the smoke check, where one is
//! declared, and a backup → restore round trip into a scratch repository, where the stack
//! declares backups. With a previous release, the upgrade path follows on the same stack name:
//! that release, converged, then the version, converged and smoke-checked again. Whatever
//! happens, everything the trial made is removed and the removal checked: a trial is green only
//! when every step passed and nothing is left.

use crate::adapters::backup::repo::{Location, Password};
use crate::adapters::backup::run as backup_run;
use crate::adapters::engine::convert::{StackPlan, NAMESPACE_LABEL};
use crate::adapters::engine::deploy::{self, DeployOptions, ResolveImage};
use crate::adapters::engine::docker::error_text;
use crate::adapters::engine::guard::{self, Policy};
use crate::adapters::engine::{self, containers, converge, envfile::EnvFile, AbraDeploy};
use crate::adapters::git::LocalRecipe;
use crate::domain::apps::{plan, secrets};
use base64::Engine as _;
use bollard::models::{
    NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::*;
use bollard::Docker;
use futures::StreamExt;
use potluck_app::model::SmokeCheck;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a trial says what it does, line by line.
pub type Say<'a> = &'a (dyn Fn(String) + Send + Sync);

/// The plans a trial deploys, made before anything is deployed (a recipe that cannot be read
/// leaves nothing behind).
pub struct Plans {
    pub stack: String,
    /// The release tested, as it will be called, and its plan.
    pub to: (String, StackPlan),
    /// The release the upgrade path starts from.
    pub from: Option<(String, StackPlan)>,
}

/// How a trial runs.
pub struct Settings {
    pub smoke: SmokeCheck,
    pub resolve_image: ResolveImage,
    /// Seconds to wait for each convergence (default: the recipe's timeout).
    pub timeout: Option<u64>,
    /// The server's guardrails: what the stack may ask of the host.
    pub policy: Option<Policy>,
    /// The image the HTTP smoke check runs `wget` in (any image with busybox or wget).
    pub probe_image: String,
    /// Where the backup round trip keeps its scratch repository (none: no round trip).
    pub scratch: Option<PathBuf>,
}

/// How a trial ended.
#[derive(Debug, Default)]
pub struct Verdict {
    /// What failed, in a sentence.
    pub failure: Option<String>,
    /// The failing service's task errors and last log lines.
    pub details: Vec<String>,
    /// What the cleanup could not remove.
    pub left: Vec<String>,
}

impl Verdict {
    pub fn green(&self) -> bool {
        self.failure.is_none() && self.left.is_empty()
    }
}

struct Failed {
    message: String,
    details: Vec<String>,
}

impl Failed {
    fn new(message: impl Into<String>) -> Failed {
        Failed { message: message.into(), details: Vec::new() }
    }
}

fn ns_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={stack}")])])
}

/// The plan of `rev` (a tag or commit), called `version`, as a throw-away app named `stack`.
pub fn plan_of(
    recipe: &LocalRecipe,
    rev: &str,
    version: &str,
    stack: &str,
    overrides: &[(String, String)],
) -> Result<StackPlan, String> {
    let files = recipe.files(Some(rev)).map_err(|e| format!("{} at {rev}: {e}", recipe.name()))?;
    let mut env_file = EnvFile::parse(&files.text(".env.sample").unwrap_or_default())
        .map_err(|e| format!("{rev}: .env.sample: {e}"))?;
    env_file.set("DOMAIN", &format!("{}.recipe-test.invalid", stack.replace('_', "-")));
    env_file.set("TYPE", &format!("{}:{version}", recipe.name()));
    for (k, v) in overrides {
        env_file.set(k, v);
    }
    let abra_sh = files.text("abra.sh");
    let env = engine::app_environment(&env_file, abra_sh.as_deref(), stack);
    let mut app_env = env_file.values(&|_| None);
    if let Some(sh) = &abra_sh {
        app_env.extend(engine::envfile::abra_sh_exports(sh));
    }
    let abra =
        AbraDeploy { recipe: recipe.name(), version: version.to_string(), chaos: false, chaos_version: None, app_env };
    engine::render(&files, &env, stack, Some(&abra)).map_err(|e| format!("{rev}: {e}"))
}

/// `KEY=VALUE` lines (blank lines and `#` comments skipped).
pub fn parse_overrides(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| format!("line {}: {line:?} is not KEY=VALUE", n + 1))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: {k:?} is not a variable name", n + 1));
        }
        out.push((k.to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// Creates the external secrets the plan needs that do not exist yet, labelled with the stack.
async fn secrets_for(docker: &Docker, plan: &StackPlan, say: Say<'_>) -> Result<(), Failed> {
    for name in plan::external_secrets(plan) {
        if docker.inspect_secret(&name).await.is_ok() {
            continue;
        }
        let value = secrets::generate_value(Some(32), None).map_err(|e| Failed::new(e.to_string()))?;
        let spec = bollard::models::SecretSpec {
            name: Some(name.clone()),
            data: Some(base64::engine::general_purpose::STANDARD.encode(value)),
            labels: Some(HashMap::from([(NAMESPACE_LABEL.to_string(), plan.namespace.clone())])),
            ..Default::default()
        };
        docker.create_secret(spec).await.map_err(|e| Failed::new(format!("secret {name}: {}", error_text(&e))))?;
        say(format!("secret {name} generated for the test"));
    }
    Ok(())
}

/// The tasks of the stack that failed or were refused, newest first, and the last log lines of
/// `service`'s newest container.
async fn failure_details(docker: &Docker, stack: &str, service: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(ns_filter(stack)) })).await.unwrap_or_default();
    let names: HashMap<String, String> = docker
        .list_services(Some(ListServicesOptions { filters: Some(ns_filter(stack)), ..Default::default() }))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| Some((s.id?, s.spec?.name?)))
        .collect();
    let mut tasks: Vec<_> = tasks
        .into_iter()
        .filter(|t| {
            let st = t.status.as_ref();
            st.and_then(|s| s.err.as_deref()).is_some_and(|e| !e.is_empty())
                || matches!(st.and_then(|s| s.state), Some(TaskState::FAILED | TaskState::REJECTED))
        })
        .collect();
    tasks.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let mut newest_container = None;
    for t in tasks.iter().take(6) {
        let name = t.service_id.as_ref().and_then(|id| names.get(id)).cloned().unwrap_or_default();
        let status = t.status.clone().unwrap_or_default();
        out.push(format!(
            "task {name}.{}: {}: {}",
            t.slot.unwrap_or_default(),
            status.state.map(|s| s.to_string()).unwrap_or_default(),
            status.err.unwrap_or_default()
        ));
        if newest_container.is_none() && service.is_none_or(|s| name == s) {
            newest_container = status.container_status.and_then(|c| c.container_id);
        }
    }
    if let Some(id) = newest_container {
        let mut logs =
            docker.logs(&id, Some(LogsOptions { stdout: true, stderr: true, tail: "20".into(), ..Default::default() }));
        let mut lines = Vec::new();
        while let Some(Ok(chunk)) = logs.next().await {
            lines.extend(String::from_utf8_lossy(&chunk.into_bytes()).lines().map(|l| format!("log: {l}")));
        }
        out.extend(lines.into_iter().rev().take(20).collect::<Vec<_>>().into_iter().rev());
    }
    out
}

/// Deploys the plan and waits until it converges; answers the services deployed.
async fn deploy_and_wait(
    docker: &Docker,
    plan: &StackPlan,
    s: &Settings,
    say: Say<'_>,
) -> Result<BTreeMap<String, String>, Failed> {
    secrets_for(docker, plan, say).await?;
    let opts = DeployOptions { resolve_image: s.resolve_image, prune: true, ..DeployOptions::default() };
    let deployed = deploy::deploy(docker, plan, &opts, &|step| say(step.to_string()))
        .await
        .map_err(|e| Failed::new(e.to_string()))?;
    let secs = s.timeout.unwrap_or_else(|| engine::timeout_of(plan));
    say(format!("waiting up to {secs} s for {} to converge", plan.namespace));
    converged(docker, &plan.namespace, &deployed.services, secs, say).await?;
    Ok(deployed.services)
}

async fn converged(
    docker: &Docker,
    stack: &str,
    services: &BTreeMap<String, String>,
    secs: u64,
    say: Say<'_>,
) -> Result<(), Failed> {
    let outcome = converge::wait(docker, stack, services, Duration::from_secs(secs), &|p| {
        if let converge::Progress::Task { service, slot, state, error, .. } = p {
            if error.is_empty() {
                say(format!("  {service}.{slot}: {state}"));
            } else {
                say(format!("  {service}.{slot}: {state}: {error}"));
            }
        }
    })
    .await;
    let failing = match &outcome {
        converge::Outcome::Converged => return Ok(()),
        converge::Outcome::Failed { service, .. } | converge::Outcome::RolledBack { service, .. } => {
            Some(service.clone())
        }
        _ => None,
    };
    Err(Failed {
        message: format!("{stack} did not converge: {outcome}"),
        details: failure_details(docker, stack, failing.as_deref()).await,
    })
}

/// The recipe's smoke check against the converged stack.
async fn smoke(docker: &Docker, stack: &str, s: &Settings, say: Say<'_>) -> Result<(), Failed> {
    match &s.smoke {
        SmokeCheck::None => Ok(()),
        SmokeCheck::Command { service, command } => {
            say(format!("smoke check: {}", s.smoke.describe()));
            let full = format!("{stack}_{service}");
            let container = containers::running(docker, stack, &full).await.map_err(Failed::new)?;
            let ran = tokio::time::timeout(
                Duration::from_secs(120),
                containers::run(docker, &container, vec!["sh".into(), "-c".into(), command.clone()]),
            )
            .await
            .map_err(|_| Failed::new("the smoke check did not end within 120 s"))?
            .map_err(Failed::new)?;
            if ran.ok() {
                say("smoke check passed".into());
                Ok(())
            } else {
                Err(Failed {
                    message: format!(
                        "the smoke check `{command}` in {service} exited {}",
                        ran.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "without a code".into())
                    ),
                    details: ran
                        .output
                        .lines()
                        .rev()
                        .take(20)
                        .map(|l| format!("output: {l}"))
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect(),
                })
            }
        }
        SmokeCheck::Http { service, port, path } => {
            say(format!("smoke check: {}", s.smoke.describe()));
            probe(docker, stack, service, &format!("http://{service}:{port}{path}"), &s.probe_image, say).await
        }
    }
}

/// Asks `url` from a one-shot service on the checked service's network (so the check needs no
/// route from Potluck into the swarm), retrying for half a minute.
async fn probe(
    docker: &Docker,
    stack: &str,
    service: &str,
    url: &str,
    image: &str,
    say: Say<'_>,
) -> Result<(), Failed> {
    let target = docker
        .inspect_service(&format!("{stack}_{service}"), None::<InspectServiceOptions>)
        .await
        .map_err(|e| Failed::new(format!("the smoke check names service {service}: {}", error_text(&e))))?;
    let network = target
        .spec
        .and_then(|s| s.task_template)
        .and_then(|t| t.networks)
        .and_then(|n| n.into_iter().next())
        .and_then(|n| n.target)
        .ok_or_else(|| Failed::new(format!("service {service} is on no network the check can join")))?;
    // A running container's address on that network: the probe then needs neither name
    // resolution (not every image's wget does it) nor the swarm's virtual-IP balancing.
    let mut task_ip = None;
    if let Ok(id) = containers::running(docker, stack, &format!("{stack}_{service}")).await {
        if let Ok(c) = docker.inspect_container(&id, None::<InspectContainerOptions>).await {
            task_ip = c
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default()
                .into_values()
                .find(|e| e.network_id.as_deref() == Some(network.as_str()))
                .and_then(|e| e.ip_address)
                .filter(|ip| !ip.is_empty());
        }
    }
    let ask = match task_ip {
        Some(addr) => {
            let ip = addr.split('/').next().unwrap_or(&addr).to_string();
            url.replacen(&format!("//{service}:"), &format!("//{ip}:"), 1)
        }
        None => url.to_string(),
    };
    let labels = HashMap::from([(NAMESPACE_LABEL.to_string(), stack.to_string())]);
    // The URL is passed in the environment, never spliced into the script.
    // (No `-T`: some static busybox builds crash on it; the 90 s deadline below bounds a hang.)
    let script = "i=0; while [ $i -lt 15 ]; do wget -q -O /dev/null \"$PROBE_URL\" && exit 0; i=$((i+1)); sleep 2; done; wget -O /dev/null \"$PROBE_URL\"; exit 1";
    let name = format!("{stack}_smoke-check");
    let spec = ServiceSpec {
        name: Some(name.clone()),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.to_string()),
                command: Some(vec!["sh".into(), "-c".into(), script.into()]),
                env: Some(vec![format!("PROBE_URL={ask}")]),
                labels: Some(labels),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig { target: Some(network), ..Default::default() }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_service(spec, None)
        .await
        .map_err(|e| Failed::new(format!("cannot start the smoke check: {}", error_text(&e))))?;
    let filters = HashMap::from([("service".to_string(), vec![name.clone()])]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let result = loop {
        let tasks =
            docker.list_tasks(Some(ListTasksOptions { filters: Some(filters.clone()) })).await.unwrap_or_default();
        if let Some(status) = tasks
            .iter()
            .filter_map(|t| t.status.as_ref())
            .find(|s| matches!(s.state, Some(TaskState::COMPLETE | TaskState::FAILED | TaskState::REJECTED)))
        {
            break if status.state == Some(TaskState::COMPLETE) {
                Ok(())
            } else {
                let mut details = vec![format!("smoke check task: {}", status.err.clone().unwrap_or_default())];
                details.extend(
                    failure_details(docker, stack, Some(&name)).await.into_iter().filter(|l| l.starts_with("log:")),
                );
                Err(Failed { message: format!("the smoke check found no answer at {url}"), details })
            };
        }
        if tokio::time::Instant::now() > deadline {
            break Err(Failed::new(format!("the smoke check of {url} did not end within 90 s")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = docker.delete_service(&name).await;
    if result.is_ok() {
        say(format!("smoke check passed: {url} answered"));
    }
    result
}

/// Backs the stack up into a scratch repository, restores that snapshot, and checks the
/// restore wrote what the backup read and the stack still converges.
async fn round_trip(
    docker: &Docker,
    stack: &str,
    services: &BTreeMap<String, String>,
    scratch: &std::path::Path,
    secs: u64,
    say: Say<'_>,
) -> Result<(), Failed> {
    let declared = backup_run::declarations(docker, stack).await.map_err(|e| Failed::new(e.to_string()))?;
    if !declared.enabled() {
        say("no backups declared: no round trip".into());
        return Ok(());
    }
    say("backup → restore round trip into a scratch repository".into());
    let dir = scratch.join(stack);
    let location = Location::parse(&dir.display().to_string()).map_err(|e| Failed::new(e.to_string()))?;
    let password = Password::new(uuid::Uuid::new_v4().simple().to_string()).map_err(|e| Failed::new(e.to_string()))?;
    let step = |s: String| say(format!("  {s}"));
    let report = backup_run::Report { step: &step, progress: Arc::new(|_| {}) };
    let tags = backup_run::Tags { trigger: "staging".into(), ..Default::default() };
    let result = async {
        let backed = backup_run::backup(docker, stack, &location, &password, "potluck-staging", &tags, &report)
            .await
            .map_err(|e| Failed::new(format!("the backup failed: {e}")))?;
        let restored =
            backup_run::restore(docker, stack, stack, &location, &password, Some(&backed.snapshot.id), &report)
                .await
                .map_err(|e| Failed::new(format!("the restore failed: {e}")))?;
        if restored.files != backed.files {
            return Err(Failed::new(format!(
                "the restore wrote {} files of the {} backed up",
                restored.files, backed.files
            )));
        }
        say(format!("round trip: {} files backed up and restored", backed.files));
        converged(docker, stack, services, secs, say).await
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    result
}

/// Removes everything of the stack (services, networks, secrets, configs, then volumes) and
/// answers what is left, if anything.
pub async fn clean(docker: &Docker, stack: &str, say: Say<'_>) -> Vec<String> {
    if let Err(e) =
        deploy::remove(docker, stack, &BTreeMap::new(), &Default::default(), Some(Duration::from_secs(120)), &|s| {
            say(s.to_string())
        })
        .await
    {
        say(format!("removing {stack}: {e}"));
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions { filters: Some(ns_filter(stack)) }))
        .await
        .ok()
        .and_then(|v| v.volumes)
        .unwrap_or_default();
    for v in volumes {
        // A volume is released a moment after its container is gone.
        for _ in 0..20 {
            if docker.remove_volume(&v.name, None::<RemoveVolumeOptions>).await.is_ok() {
                say(format!("volume {} removed", v.name));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    left(docker, stack).await
}

/// What the engine still holds of the stack.
pub async fn left(docker: &Docker, stack: &str) -> Vec<String> {
    let mut out = Vec::new();
    let f = ns_filter(stack);
    for s in docker
        .list_services(Some(ListServicesOptions { filters: Some(f.clone()), ..Default::default() }))
        .await
        .unwrap_or_default()
    {
        out.push(format!("service {}", s.spec.and_then(|s| s.name).unwrap_or_default()));
    }
    for n in docker.list_networks(Some(ListNetworksOptions { filters: Some(f.clone()) })).await.unwrap_or_default() {
        out.push(format!("network {}", n.name.unwrap_or_default()));
    }
    for s in docker.list_secrets(Some(ListSecretsOptions { filters: Some(f.clone()) })).await.unwrap_or_default() {
        out.push(format!("secret {}", s.spec.and_then(|s| s.name).unwrap_or_default()));
    }
    for c in docker.list_configs(Some(ListConfigsOptions { filters: Some(f.clone()) })).await.unwrap_or_default() {
        out.push(format!("config {}", c.spec.and_then(|s| s.name).unwrap_or_default()));
    }
    let volumes = docker.list_volumes(Some(ListVolumesOptions { filters: Some(f) })).await.ok().and_then(|v| v.volumes);
    for v in volumes.unwrap_or_default() {
        out.push(format!("volume {}", v.name));
    }
    out
}

/// The server's guardrails over both plans, before anything is deployed.
fn guarded(plans: &Plans, policy: Option<&Policy>) -> Result<(), Failed> {
    let Some(policy) = policy else { return Ok(()) };
    let mut refused = Vec::new();
    for (version, p) in std::iter::once(&plans.to).chain(plans.from.as_ref()) {
        for f in guard::check(p, policy) {
            refused.push(format!("{version}: {f}"));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Failed {
            message: "the staging server's policy refuses what the recipe asks of the host".into(),
            details: refused,
        })
    }
}

/// Runs the trial and cleans up after each phase.
pub async fn run(docker: &Docker, plans: &Plans, s: &Settings, say: Say<'_>) -> Verdict {
    let stack = plans.stack.as_str();
    let (to_version, to) = &plans.to;
    let mut verdict = Verdict::default();
    if let Err(f) = guarded(plans, s.policy.as_ref()) {
        say(format!("FAILED: {}", f.message));
        return Verdict { failure: Some(f.message), details: f.details, left: Vec::new() };
    }
    say(format!("install: {to_version} as {stack}"));
    let install = async {
        let services = deploy_and_wait(docker, to, s, say).await?;
        say(format!("{to_version} converged"));
        smoke(docker, stack, s, say).await?;
        if let Some(scratch) = &s.scratch {
            let secs = s.timeout.unwrap_or_else(|| engine::timeout_of(to));
            round_trip(docker, stack, &services, scratch, secs, say).await?;
        }
        Ok::<_, Failed>(())
    }
    .await;
    verdict.left = clean(docker, stack, say).await;
    if let Err(f) = install {
        say(format!("FAILED: {}", f.message));
        verdict.failure = Some(format!("install: {}", f.message));
        verdict.details = f.details;
        return verdict;
    }
    let Some((from_version, from)) = &plans.from else { return verdict };
    if !verdict.left.is_empty() {
        return verdict;
    }
    say(format!("upgrade: {from_version} then {to_version}"));
    let upgrade = async {
        deploy_and_wait(docker, from, s, say).await?;
        say(format!("{from_version} converged; upgrading to {to_version}"));
        deploy_and_wait(docker, to, s, say).await?;
        say(format!("{to_version} converged after the upgrade"));
        smoke(docker, stack, s, say).await
    }
    .await;
    verdict.left = clean(docker, stack, say).await;
    if let Err(f) = upgrade {
        say(format!("FAILED: {}", f.message));
        verdict.failure = Some(format!("upgrade from {from_version}: {}", f.message));
        verdict.details = f.details;
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_key_value_lines() {
        assert_eq!(
            parse_overrides("# test\nA=1\n\n B = two words \n").unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        assert!(parse_overrides("NOVALUE").unwrap_err().contains("line 1"));
        assert!(parse_overrides("A-B=1").unwrap_err().contains("not a variable name"));
    }
}
