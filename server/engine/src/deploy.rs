//! Applying a stack plan to a swarm, in `docker stack deploy`'s order: check the node is a
//! manager → prune (optional, services only) → networks (create missing, check externals) →
//! secrets and configs (create, or update labels) → services (create, or update keeping
//! `ForceUpdate` and the stored image when unchanged). Within a phase the calls are independent
//! and run concurrently; the CLI makes them one after another. And removing a stack like
//! `docker stack rm`. No Docker CLI is involved: every call is bollard.

use super::convert::{StackPlan, IMAGE_LABEL, NAMESPACE_LABEL};
use super::docker::{error_text, status_of};
use bollard::models::{ConfigSpec, NetworkCreateRequest, SecretSpec, ServiceSpec};
use bollard::query_parameters::{
    ListConfigsOptions, ListNetworksOptions, ListSecretsOptions, ListServicesOptions, ListTasksOptions,
    UpdateServiceOptions,
};
use bollard::Docker;
use futures::future::{try_join_all, BoxFuture};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// `--resolve-image`: whether image tags are pinned to registry digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveImage {
    Always,
    Changed,
    Never,
}

impl std::str::FromStr for ResolveImage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(ResolveImage::Always),
            "changed" => Ok(ResolveImage::Changed),
            "never" => Ok(ResolveImage::Never),
            other => Err(format!("invalid option {other} for flag --resolve-image: use always, changed or never")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub prune: bool,
    pub resolve_image: ResolveImage,
    /// Labels Potluck adds to every object it creates (its collective and app). When set,
    /// existing objects of the stack must carry the same values, or Potluck refuses to touch them.
    pub ownership: BTreeMap<String, String>,
    /// How long a registry lookup may take before `--resolve-image always` gives up.
    pub registry_timeout: Duration,
    /// Restart every task even when nothing changed (a forced redeploy).
    pub force: bool,
    /// Objects of the stack that another tool made (an abra deploy) and whose app's operator
    /// took them over, by id: accepted without the ownership labels (and given them when updated).
    pub adopted: BTreeSet<String>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            prune: false,
            resolve_image: ResolveImage::Always,
            ownership: BTreeMap::new(),
            registry_timeout: Duration::from_secs(20),
            force: false,
            adopted: BTreeSet::new(),
        }
    }
}

/// What happened, step by step (shown live and logged like the CLI's output).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Network { name: String, action: String },
    Secret { name: String, action: String },
    Config { name: String, action: String },
    Service { name: String, action: String, id: String },
    Removed { object: String, name: String },
    Warning { message: String },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Network { name, action } => write!(f, "{} network {name}", capitalize(action)),
            Step::Secret { name, action } => write!(f, "{} secret {name}", capitalize(action)),
            Step::Config { name, action } => write!(f, "{} config {name}", capitalize(action)),
            Step::Service { name, action, id } => write!(f, "{} service {name} (id: {id})", capitalize(action)),
            Step::Removed { object, name } => write!(f, "Removing {object} {name}"),
            Step::Warning { message } => write!(f, "warning: {message}"),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Engine(String),
}

fn engine(context: &str, e: bollard::errors::Error) -> DeployError {
    DeployError::Engine(format!("{context}: {}", error_text(&e)))
}

fn ns_filter(ns: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={ns}")])])
}

/// Refuses objects of the stack that Potluck did not create for this owner, unless its operator
/// took them over (`adopted`, by id).
fn check_owner(
    kind: &str,
    name: &str,
    id: Option<&str>,
    labels: Option<&HashMap<String, String>>,
    ownership: &BTreeMap<String, String>,
    adopted: &BTreeSet<String>,
) -> Result<(), DeployError> {
    if id.is_some_and(|id| adopted.contains(id)) {
        return Ok(());
    }
    for (k, v) in ownership {
        let found = labels.and_then(|l| l.get(k));
        if found != Some(v) {
            return Err(DeployError::Refused(format!(
                "{kind} {name} exists but was not created by Potluck for this app ({k} is {}): refusing to touch it",
                found.map_or("missing".to_string(), |f| format!("{f:?}"))
            )));
        }
    }
    Ok(())
}

fn with_labels(mut spec: Value, path: &[&str], extra: &BTreeMap<String, String>) -> Value {
    if extra.is_empty() {
        return spec;
    }
    let mut target = &mut spec;
    for p in path {
        target = &mut target[*p];
    }
    if let Some(obj) = target.as_object_mut() {
        for (k, v) in extra {
            obj.insert(k.clone(), Value::String(v.clone()));
        }
    } else {
        *target = serde_json::to_value(extra).unwrap_or(Value::Null);
    }
    spec
}

/// The Engine API model of a spec. The Engine reads JSON keys case-insensitively, bollard does
/// not: the one key whose case differs from the Docker CLI's is renamed.
pub fn typed<T: serde::de::DeserializeOwned>(mut v: Value, what: &str) -> Result<T, DeployError> {
    if let Some(cs) = v.pointer_mut("/TaskTemplate/ContainerSpec").and_then(Value::as_object_mut) {
        if let Some(h) = cs.remove("Healthcheck") {
            cs.insert("HealthCheck".into(), h);
        }
    }
    serde_json::from_value(v)
        .map_err(|e| DeployError::Refused(format!("{what}: not accepted by the Engine API model: {e}")))
}

pub struct Deployed {
    /// Service name → id.
    pub services: BTreeMap<String, String>,
}

/// Checks the Engine is a swarm manager.
pub async fn require_manager(docker: &Docker) -> Result<(), DeployError> {
    let info = docker.info().await.map_err(|e| engine("cannot read the Engine's info", e))?;
    let manager = info.swarm.as_ref().and_then(|s| s.control_available).unwrap_or(false);
    if !manager {
        return Err(DeployError::Refused(
            "this node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again".into(),
        ));
    }
    Ok(())
}

async fn resolve_digest(docker: &Docker, image: &str, timeout: Duration) -> Result<String, DeployError> {
    let lookup = docker.inspect_registry_image(image, None);
    match tokio::time::timeout(timeout, lookup).await {
        Err(_) => Err(DeployError::Refused(format!(
            "cannot resolve image {image} to a digest: the registry did not answer within {} s (use --resolve-image never when no registry is reachable)",
            timeout.as_secs()
        ))),
        Ok(Err(e)) => Err(DeployError::Refused(format!(
            "cannot resolve image {image} to a digest: {} (use --resolve-image never when no registry is reachable)",
            error_text(&e)
        ))),
        Ok(Ok(d)) => {
            let digest = d.descriptor.digest.unwrap_or_default();
            if digest.is_empty() {
                return Err(DeployError::Refused(format!("the registry returned no digest for {image}")));
            }
            let base = image.split('@').next().unwrap_or(image);
            Ok(format!("{base}@{digest}"))
        }
    }
}

/// Deploys `plan`, reporting each step to `report`.
pub async fn deploy(
    docker: &Docker,
    plan: &StackPlan,
    opts: &DeployOptions,
    report: &(dyn Fn(Step) + Send + Sync),
) -> Result<Deployed, DeployError> {
    let ns = &plan.namespace;
    // Everything deploying needs to know, read at once.
    let (manager, services, networks, secrets, configs) = tokio::join!(
        require_manager(docker),
        docker.list_services(Some(ListServicesOptions { filters: Some(ns_filter(ns)), ..Default::default() })),
        docker.list_networks(Some(ListNetworksOptions { filters: Some(ns_filter(ns)) })),
        docker.list_secrets(None::<ListSecretsOptions>),
        docker.list_configs(None::<ListConfigsOptions>),
    );
    manager?;
    let existing_services = services.map_err(|e| engine("cannot list the stack's services", e))?;
    let stack_networks = networks.map_err(|e| engine("cannot list networks", e))?;
    let all_secrets = secrets.map_err(|e| engine("cannot list secrets", e))?;
    let all_configs = configs.map_err(|e| engine("cannot list configs", e))?;
    for w in &plan.warnings {
        report(Step::Warning { message: w.clone() });
    }
    let mut existing: HashMap<String, bollard::models::Service> = HashMap::new();
    for s in existing_services {
        let name = s.spec.as_ref().and_then(|sp| sp.name.clone()).unwrap_or_default();
        existing.insert(name, s);
    }

    if opts.prune {
        let wanted: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
        let mut stale: Vec<(&String, &bollard::models::Service)> =
            existing.iter().filter(|(n, _)| !wanted.contains(&n.as_str())).collect();
        stale.sort_by_key(|(n, _)| n.as_str());
        for (name, svc) in stale {
            check_owner(
                "service",
                name,
                svc.id.as_deref(),
                svc.spec.as_ref().and_then(|s| s.labels.as_ref()),
                &opts.ownership,
                &opts.adopted,
            )?;
            report(Step::Removed { object: "service".into(), name: name.clone() });
            docker.delete_service(name).await.map_err(|e| engine(&format!("cannot remove service {name}"), e))?;
        }
    }

    // Networks: each step of a phase is independent of the others, so they run together;
    // the phases keep the CLI's order.
    let have: Vec<String> = stack_networks.iter().filter_map(|n| n.name.clone()).collect();
    let mut steps: Vec<BoxFuture<'_, Result<(), DeployError>>> = Vec::new();
    for net in &plan.networks {
        if net.external {
            if matches!(net.name.as_str(), "host" | "bridge" | "none" | "default") {
                continue;
            }
            steps.push(Box::pin(async move {
                match docker.inspect_network(&net.name, None::<bollard::query_parameters::InspectNetworkOptions>).await {
                    Ok(n) if n.scope.as_deref() != Some("swarm") => Err(DeployError::Refused(format!(
                        "network \"{}\" is declared as external, but it is not in the right scope: \"{}\" instead of \"swarm\"",
                        net.name,
                        n.scope.unwrap_or_default()
                    ))),
                    Ok(_) => {
                        report(Step::Network { name: net.name.clone(), action: "using external".into() });
                        Ok(())
                    }
                    Err(e) if status_of(&e) == Some(404) => Err(DeployError::Refused(format!(
                        "network \"{}\" is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed",
                        net.name
                    ))),
                    Err(e) => Err(engine(&format!("cannot inspect network {}", net.name), e)),
                }
            }));
            continue;
        }
        if have.contains(&net.name) {
            if let Some(n) = stack_networks.iter().find(|n| n.name.as_deref() == Some(&net.name)) {
                check_owner("network", &net.name, n.id.as_deref(), n.labels.as_ref(), &opts.ownership, &opts.adopted)?;
            }
            continue;
        }
        let Some(create) = net.create.clone() else { continue };
        let req: NetworkCreateRequest = typed(with_labels(create, &["Labels"], &opts.ownership), "network")?;
        steps.push(Box::pin(async move {
            report(Step::Network { name: net.name.clone(), action: "creating".into() });
            docker
                .create_network(req)
                .await
                .map_err(|e| engine(&format!("failed to create network {}", net.name), e))?;
            Ok(())
        }));
    }
    try_join_all(steps).await?;

    // Secrets and configs: create, or update (only labels may change).
    let mut secret_ids: HashMap<String, String> = HashMap::new();
    let mut found_secrets = HashMap::new();
    for s in all_secrets {
        if let (Some(name), Some(id)) = (s.spec.as_ref().and_then(|sp| sp.name.clone()), s.id.clone()) {
            secret_ids.insert(name.clone(), id);
            found_secrets.insert(name, s);
        }
    }
    let mut config_ids: HashMap<String, String> = HashMap::new();
    let mut found_configs = HashMap::new();
    for c in all_configs {
        if let (Some(name), Some(id)) = (c.spec.as_ref().and_then(|sp| sp.name.clone()), c.id.clone()) {
            config_ids.insert(name.clone(), id);
            found_configs.insert(name, c);
        }
    }
    let mut steps: Vec<BoxFuture<'_, Result<Option<Created>, DeployError>>> = Vec::new();
    for s in &plan.secrets {
        let spec: SecretSpec = typed(with_labels(s.spec.clone(), &["Labels"], &opts.ownership), "secret")?;
        match found_secrets.remove(&s.name) {
            Some(found) => {
                check_owner(
                    "secret",
                    &s.name,
                    found.id.as_deref(),
                    found.spec.as_ref().and_then(|sp| sp.labels.as_ref()),
                    &opts.ownership,
                    &opts.adopted,
                )?;
                let version = found.version.and_then(|v| v.index).unwrap_or(0);
                let id = found.id.unwrap_or_default();
                steps.push(Box::pin(async move {
                    report(Step::Secret { name: s.name.clone(), action: "updating".into() });
                    let options = bollard::query_parameters::UpdateSecretOptions { version: version as i64 };
                    docker
                        .update_secret(&id, spec, options)
                        .await
                        .map_err(|e| engine(&format!("failed to update secret {}", s.name), e))?;
                    Ok(None)
                }));
            }
            None => steps.push(Box::pin(async move {
                report(Step::Secret { name: s.name.clone(), action: "creating".into() });
                let created = docker
                    .create_secret(spec)
                    .await
                    .map_err(|e| engine(&format!("failed to create secret {}", s.name), e))?;
                Ok(Some(("secret", s.name.clone(), created.id)))
            })),
        }
    }
    for c in &plan.configs {
        let spec: ConfigSpec = typed(with_labels(c.spec.clone(), &["Labels"], &opts.ownership), "config")?;
        match found_configs.remove(&c.name) {
            Some(found) => {
                check_owner(
                    "config",
                    &c.name,
                    found.id.as_deref(),
                    found.spec.as_ref().and_then(|sp| sp.labels.as_ref()),
                    &opts.ownership,
                    &opts.adopted,
                )?;
                let version = found.version.and_then(|v| v.index).unwrap_or(0);
                let id = found.id.unwrap_or_default();
                steps.push(Box::pin(async move {
                    report(Step::Config { name: c.name.clone(), action: "updating".into() });
                    let options = bollard::query_parameters::UpdateConfigOptions { version: version as i64 };
                    docker
                        .update_config(&id, spec, options)
                        .await
                        .map_err(|e| engine(&format!("failed to update config {}", c.name), e))?;
                    Ok(None)
                }));
            }
            None => steps.push(Box::pin(async move {
                report(Step::Config { name: c.name.clone(), action: "creating".into() });
                let created = docker
                    .create_config(spec)
                    .await
                    .map_err(|e| engine(&format!("failed to create config {}", c.name), e))?;
                Ok(Some(("config", c.name.clone(), created.id)))
            })),
        }
    }
    for (kind, name, id) in try_join_all(steps).await?.into_iter().flatten() {
        if kind == "secret" {
            secret_ids.insert(name, id);
        } else {
            config_ids.insert(name, id);
        }
    }

    // Services.
    let mut steps: Vec<BoxFuture<'_, Result<(String, String), DeployError>>> = Vec::new();
    for svc in &plan.services {
        let mut spec = svc.spec.clone();
        let cs = &mut spec["TaskTemplate"]["ContainerSpec"];
        for (list, key, id_key, ids, kind) in [
            ("Secrets", "SecretName", "SecretID", &secret_ids, "secret"),
            ("Configs", "ConfigName", "ConfigID", &config_ids, "config"),
        ] {
            if let Some(items) = cs.get_mut(list).and_then(Value::as_array_mut) {
                for item in items {
                    let name = item[key].as_str().unwrap_or_default().to_string();
                    let id = ids.get(&name).ok_or_else(|| DeployError::Refused(format!("{kind} not found: {name}")))?;
                    item[id_key] = Value::String(id.clone());
                }
            }
        }
        spec = with_labels(spec, &["Labels"], &opts.ownership);
        let current = existing.get(&svc.name);
        if let Some(current) = current {
            let labels = current.spec.as_ref().and_then(|s| s.labels.as_ref());
            check_owner("service", &svc.name, current.id.as_deref(), labels, &opts.ownership, &opts.adopted)?;
        }
        steps.push(Box::pin(deploy_service(docker, svc, spec, current, opts, report)));
    }
    let deployed = try_join_all(steps).await?.into_iter().collect();
    Ok(Deployed { services: deployed })
}

/// A secret or config just created: kind, name, id.
type Created = (&'static str, String, String);

/// Creates or updates one service; returns its name and id.
async fn deploy_service(
    docker: &Docker,
    svc: &super::convert::ServicePlan,
    mut spec: Value,
    current: Option<&bollard::models::Service>,
    opts: &DeployOptions,
    report: &(dyn Fn(Step) + Send + Sync),
) -> Result<(String, String), DeployError> {
    let compose_image = svc.image.clone();
    let normalized = spec["TaskTemplate"]["ContainerSpec"]["Image"].as_str().unwrap_or_default().to_string();
    match current {
        Some(current) => {
            let current_spec = current.spec.clone().unwrap_or_default();
            let stored_label = current_spec.labels.as_ref().and_then(|l| l.get(IMAGE_LABEL)).cloned();
            let stored_image = current_spec
                .task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.image.clone());
            let unchanged = stored_label.as_deref() == Some(compose_image.as_str());
            let image = match opts.resolve_image {
                ResolveImage::Always => resolve_digest(docker, &normalized, opts.registry_timeout).await?,
                ResolveImage::Changed if !unchanged => {
                    resolve_digest(docker, &normalized, opts.registry_timeout).await?
                }
                _ if unchanged => stored_image.unwrap_or(normalized),
                _ => normalized,
            };
            spec["TaskTemplate"]["ContainerSpec"]["Image"] = Value::String(image);
            let current_force = current_spec.task_template.as_ref().and_then(|t| t.force_update).unwrap_or(0);
            if opts.force {
                spec["TaskTemplate"]["ForceUpdate"] = Value::from(current_force + 1);
            } else if current_force != 0 {
                spec["TaskTemplate"]["ForceUpdate"] = Value::from(current_force);
            }
            let typed_spec: ServiceSpec = typed(spec, &format!("service {}", svc.name))?;
            let id = current.id.clone().unwrap_or_default();
            let version = current.version.as_ref().and_then(|v| v.index).unwrap_or(0);
            report(Step::Service { name: svc.name.clone(), action: "updating".into(), id: id.clone() });
            let resp = docker
                .update_service(
                    &id,
                    typed_spec,
                    UpdateServiceOptions { version: version as i32, ..Default::default() },
                    None,
                )
                .await
                .map_err(|e| engine(&format!("failed to update service {}", svc.name), e))?;
            for w in resp.warnings.unwrap_or_default() {
                report(Step::Warning { message: w });
            }
            Ok((svc.name.clone(), id))
        }
        None => {
            if opts.resolve_image != ResolveImage::Never {
                let image = resolve_digest(docker, &normalized, opts.registry_timeout).await?;
                spec["TaskTemplate"]["ContainerSpec"]["Image"] = Value::String(image);
            }
            let typed_spec: ServiceSpec = typed(spec, &format!("service {}", svc.name))?;
            let resp = docker
                .create_service(typed_spec, None)
                .await
                .map_err(|e| engine(&format!("failed to create service {}", svc.name), e))?;
            let id = resp.id.unwrap_or_default();
            report(Step::Service { name: svc.name.clone(), action: "creating".into(), id: id.clone() });
            for w in resp.warnings.unwrap_or_default() {
                report(Step::Warning { message: w });
            }
            Ok((svc.name.clone(), id))
        }
    }
}

/// Removes a stack like `docker stack rm`: services (by name), then secrets, configs, networks
/// carrying the namespace label. Volumes and external objects stay. With `wait`, returns once
/// the stack's tasks have stopped and its networks are gone.
pub async fn remove(
    docker: &Docker,
    ns: &str,
    ownership: &BTreeMap<String, String>,
    adopted: &BTreeSet<String>,
    wait: Option<Duration>,
    report: &(dyn Fn(Step) + Send + Sync),
) -> Result<bool, DeployError> {
    let filters = || Some(ns_filter(ns));
    let mut services = docker
        .list_services(Some(ListServicesOptions { filters: filters(), ..Default::default() }))
        .await
        .map_err(|e| engine("cannot list services", e))?;
    let secrets = docker
        .list_secrets(Some(ListSecretsOptions { filters: filters() }))
        .await
        .map_err(|e| engine("cannot list secrets", e))?;
    let configs = docker
        .list_configs(Some(ListConfigsOptions { filters: filters() }))
        .await
        .map_err(|e| engine("cannot list configs", e))?;
    let networks = docker
        .list_networks(Some(ListNetworksOptions { filters: filters() }))
        .await
        .map_err(|e| engine("cannot list networks", e))?;
    if services.is_empty() && secrets.is_empty() && configs.is_empty() && networks.is_empty() {
        return Ok(false);
    }
    for s in &services {
        check_owner(
            "service",
            s.spec.as_ref().and_then(|x| x.name.as_deref()).unwrap_or("?"),
            s.id.as_deref(),
            s.spec.as_ref().and_then(|x| x.labels.as_ref()),
            ownership,
            adopted,
        )?;
    }
    services.sort_by_key(|s| s.spec.as_ref().and_then(|x| x.name.clone()).unwrap_or_default());
    let mut failures = Vec::new();
    for s in &services {
        let name = s.spec.as_ref().and_then(|x| x.name.clone()).unwrap_or_default();
        report(Step::Removed { object: "service".into(), name: name.clone() });
        if let Err(e) = docker.delete_service(s.id.as_deref().unwrap_or(&name)).await {
            failures.push(format!("failed to remove service {name}: {}", error_text(&e)));
        }
    }
    for s in &secrets {
        let name = s.spec.as_ref().and_then(|x| x.name.clone()).unwrap_or_default();
        if check_owner(
            "secret",
            &name,
            s.id.as_deref(),
            s.spec.as_ref().and_then(|x| x.labels.as_ref()),
            ownership,
            adopted,
        )
        .is_err()
        {
            continue;
        }
        report(Step::Removed { object: "secret".into(), name: name.clone() });
        if let Err(e) = docker.delete_secret(s.id.as_deref().unwrap_or(&name)).await {
            failures.push(format!("failed to remove secret {name}: {}", error_text(&e)));
        }
    }
    for c in &configs {
        let name = c.spec.as_ref().and_then(|x| x.name.clone()).unwrap_or_default();
        if check_owner(
            "config",
            &name,
            c.id.as_deref(),
            c.spec.as_ref().and_then(|x| x.labels.as_ref()),
            ownership,
            adopted,
        )
        .is_err()
        {
            continue;
        }
        report(Step::Removed { object: "config".into(), name: name.clone() });
        if let Err(e) = docker.delete_config(c.id.as_deref().unwrap_or(&name)).await {
            failures.push(format!("failed to remove config {name}: {}", error_text(&e)));
        }
    }
    for n in &networks {
        let name = n.name.clone().unwrap_or_default();
        if check_owner("network", &name, n.id.as_deref(), n.labels.as_ref(), ownership, adopted).is_err() {
            continue;
        }
        report(Step::Removed { object: "network".into(), name: name.clone() });
        if let Err(e) = remove_network_when_free(docker, n.id.as_deref().unwrap_or(&name), wait).await {
            failures.push(format!("failed to remove network {name}: {}", error_text(&e)));
        }
    }
    if !failures.is_empty() {
        return Err(DeployError::Engine(failures.join("; ")));
    }
    if let Some(limit) = wait {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let tasks = docker
                .list_tasks(Some(ListTasksOptions { filters: Some(ns_filter(ns)) }))
                .await
                .map_err(|e| engine("cannot list tasks", e))?;
            let running = tasks.iter().any(|t| {
                use bollard::models::TaskState::*;
                matches!(
                    t.status.as_ref().and_then(|s| s.state),
                    Some(NEW | ALLOCATED | PENDING | ASSIGNED | ACCEPTED | PREPARING | READY | STARTING | RUNNING)
                )
            });
            if !running || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(true)
}

/// A network is busy while the removed services' tasks shut down: retry until `wait` passes.
async fn remove_network_when_free(
    docker: &Docker,
    id: &str,
    wait: Option<Duration>,
) -> Result<(), bollard::errors::Error> {
    let deadline = tokio::time::Instant::now() + wait.unwrap_or(Duration::ZERO);
    loop {
        match docker.remove_network(id).await {
            Ok(()) => return Ok(()),
            Err(e) if status_of(&e) == Some(404) => return Ok(()),
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
