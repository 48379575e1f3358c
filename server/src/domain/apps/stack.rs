//! One app's stack on its server: the only way Potluck code touches an app's Docker objects.
//! Services, tasks, containers and volumes are found by their namespace label being *equal* to
//! the app's stack name (never by a name prefix: the operator of `a_example` must not reach
//! `a_example_org_*`), secrets by Potluck's own labels; and whatever a caller names (a service
//! to read logs from or run a command in, a secret to create) must belong to the stack.

use super::apps::AppRow;
use super::servers;
use crate::adapters::backup::{
    self,
    declared::Declared,
    repo::{Location, Password},
    run::{BackedUp, Report, Restored, Tags},
};
use crate::adapters::engine::converge::{self, Outcome, Progress};
use crate::adapters::engine::convert::{StackPlan, NAMESPACE_LABEL};
use crate::adapters::engine::deploy::{self, DeployError, DeployOptions, Deployed, Step};
use crate::adapters::engine::docker::error_text;
use crate::state::AppState;
use bollard::container::LogOutput;
use bollard::models::{Task, TaskState};
use bollard::query_parameters::{ListServicesOptions, ListTasksOptions};
use bollard::Docker;
use futures::Stream;
use potluck_app::error::ApiError;
use potluck_app::model::AppId;
use potluck_app::model::{LiveService, TaskView};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

pub struct Stack {
    docker: Docker,
    name: String,
    app_id: AppId,
    collective: String,
    server: String,
}

/// A task the swarm means to run (desired state running).
pub fn meant_to_run(t: &Task) -> bool {
    t.desired_state == Some(TaskState::RUNNING)
}

/// A task that runs for its service: meant to run and running. A task the swarm is still
/// stopping (desired shutdown, say the one an update replaced) does not, whatever its state.
pub fn runs(t: &Task) -> bool {
    meant_to_run(t) && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
}

fn ns_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={stack}")])])
}

impl Stack {
    /// The app's stack on its server (connecting, or the reason it cannot).
    pub async fn of(st: &AppState, app: &AppRow) -> Result<Stack, ApiError> {
        let server = servers::by_id(st, app.server_id).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
        let docker = servers::docker_for(st, &server).await?;
        Ok(Stack {
            docker,
            name: app.stack_name.clone(),
            app_id: app.id,
            collective: app.collective.clone(),
            server: app.server.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn prefix(&self) -> String {
        format!("{}_", self.name)
    }

    /// Whether any service of the stack exists.
    pub async fn exists(&self) -> bool {
        self.docker
            .list_services(Some(ListServicesOptions { filters: Some(ns_filter(&self.name)), ..Default::default() }))
            .await
            .map(|s| !s.is_empty())
            .unwrap_or(false)
    }

    /// The full name of one of the stack's services, given as `web` or `<stack>_web`: it must
    /// carry the stack's namespace label.
    pub async fn service(&self, given: &str) -> Result<String, ApiError> {
        let given = given.trim();
        let services = self
            .docker
            .list_services(Some(ListServicesOptions { filters: Some(ns_filter(&self.name)), ..Default::default() }))
            .await
            .map_err(|e| ApiError::unavailable(error_text(&e)))?;
        let wanted = format!("{}{given}", self.prefix());
        services
            .into_iter()
            .filter_map(|s| s.spec.and_then(|spec| spec.name))
            .find(|n| *n == wanted || n == given)
            .ok_or_else(|| ApiError::not_found(format!("service {given:?} in stack {}", self.name)))
    }

    /// The stack's services with their tasks (newest first, at most ten per service).
    pub async fn services(&self) -> Result<Vec<LiveService>, String> {
        let stack = &self.name;
        let services = self
            .docker
            .list_services(Some(ListServicesOptions { filters: Some(ns_filter(stack)), ..Default::default() }))
            .await
            .map_err(|e| error_text(&e))?;
        let tasks = self
            .docker
            .list_tasks(Some(ListTasksOptions { filters: Some(ns_filter(stack)) }))
            .await
            .map_err(|e| error_text(&e))?;
        let mut out = Vec::new();
        for s in services {
            let spec = s.spec.clone().unwrap_or_default();
            let name = spec.name.clone().unwrap_or_default();
            let id = s.id.clone().unwrap_or_default();
            let mode = spec.mode.clone().unwrap_or_default();
            let (mode_name, desired) = if let Some(r) = mode.replicated {
                ("replicated".to_string(), r.replicas.unwrap_or(1))
            } else if mode.global.is_some() {
                ("global".to_string(), -1)
            } else if let Some(j) = mode.replicated_job {
                ("replicated-job".to_string(), j.total_completions.unwrap_or(1))
            } else {
                ("global-job".to_string(), -1)
            };
            let mut mine: Vec<_> = tasks.iter().filter(|t| t.service_id.as_deref() == Some(id.as_str())).collect();
            mine.sort_by_key(|t| std::cmp::Reverse(t.updated_at.clone().unwrap_or_default()));
            let running = mine.iter().filter(|t| runs(t)).count() as i64;
            let desired = if desired < 0 { mine.iter().filter(|t| meant_to_run(t)).count() as i64 } else { desired };
            let labels = spec.labels.clone().unwrap_or_default();
            let version_label = labels.get(&format!("coop-cloud.{stack}.version")).cloned().unwrap_or_default();
            out.push(LiveService {
                name,
                image: spec
                    .task_template
                    .as_ref()
                    .and_then(|t| t.container_spec.as_ref())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default(),
                mode: mode_name,
                running,
                desired,
                update_state: s.update_status.and_then(|u| u.state).map(|s| s.to_string()).unwrap_or_default(),
                version_label,
                tasks: mine
                    .into_iter()
                    .take(10)
                    .map(|t| TaskView {
                        id: t.id.clone().unwrap_or_default(),
                        slot: t.slot.map(|s| s.to_string()).unwrap_or_else(|| t.node_id.clone().unwrap_or_default()),
                        state: t.status.as_ref().and_then(|s| s.state).map(|s| s.to_string()).unwrap_or_default(),
                        desired_state: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                        message: t.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default(),
                        error: t.status.as_ref().and_then(|s| s.err.clone()).unwrap_or_default(),
                        node: t.node_id.clone().unwrap_or_default(),
                        image: t
                            .spec
                            .as_ref()
                            .and_then(|s| s.container_spec.as_ref())
                            .and_then(|c| c.image.clone())
                            .unwrap_or_default(),
                        updated_at: t.updated_at.clone().unwrap_or_default(),
                    })
                    .collect(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A service's logs (the service must be the stack's: see [`Stack::service`]).
    pub fn logs(
        &self,
        service: &str,
        follow: bool,
        tail: &str,
    ) -> impl Stream<Item = Result<LogOutput, bollard::errors::Error>> + use<> {
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(tail)
            .timestamps(true)
            .build();
        self.docker.service_logs(service, Some(options))
    }

    /// A running container of one of the stack's services on the node Potluck talks to (exec
    /// works only there).
    pub async fn running_container(&self, service: &str) -> Result<String, String> {
        crate::adapters::engine::containers::running(&self.docker, &self.name, service).await
    }

    /// Runs `argv` in a container of the stack (see [`Stack::running_container`]).
    pub async fn exec(
        &self,
        container: &str,
        argv: Vec<String>,
    ) -> Result<(String, bollard::exec::StartExecResults), String> {
        crate::adapters::engine::containers::start(&self.docker, container, argv).await
    }

    /// What the running stack's backup labels declare.
    pub async fn backup_declarations(&self) -> Result<Declared, String> {
        backup::run::declarations(&self.docker, &self.name).await.map_err(|e| e.to_string())
    }

    /// Backs the stack's declared volumes up into `repo` (see `potluck_backup::run::backup`);
    /// the snapshot's host is the server's name.
    pub async fn backup(
        &self,
        repo: &Location,
        password: &Password,
        tags: &Tags,
        report: &Report<'_>,
    ) -> Result<BackedUp, String> {
        backup::run::backup(&self.docker, &self.name, repo, password, &self.server, tags, report)
            .await
            .map_err(|e| e.to_string())
    }

    /// Restores a snapshot of `from_stack` (this stack, or the one it is a clone of) into the
    /// stack's volumes.
    pub async fn restore(
        &self,
        from_stack: &str,
        repo: &Location,
        password: &Password,
        snapshot: Option<&str>,
        report: &Report<'_>,
    ) -> Result<Restored, String> {
        backup::run::restore(&self.docker, &self.name, from_stack, repo, password, snapshot, report)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn exec_exit_code(&self, exec: &str) -> Option<i64> {
        self.docker.inspect_exec(exec).await.ok().and_then(|i| i.exit_code)
    }

    /// The names of every secret on the swarm (what a deploy's external secrets are checked against).
    pub async fn secret_names(&self) -> Result<BTreeSet<String>, String> {
        Ok(self
            .docker
            .list_secrets(None::<bollard::query_parameters::ListSecretsOptions>)
            .await
            .map_err(|e| error_text(&e))?
            .into_iter()
            .filter_map(|s| s.spec.and_then(|x| x.name))
            .collect())
    }

    /// Creates one of the app's secrets. Its name must be the stack's (`<stack>_…`): a recipe
    /// cannot make Potluck create, and so squat, another app's secret.
    pub async fn create_secret(
        &self,
        name: &str,
        labels: HashMap<String, String>,
        value: &str,
    ) -> Result<(), ApiError> {
        use base64::Engine;
        if !name.starts_with(&self.prefix()) {
            return Err(ApiError::invalid(
                "secret",
                format!("{name} is not a secret of stack {}: its name must start with {}", self.name, self.prefix()),
            ));
        }
        let mut labels = labels;
        labels.insert("potluck.collective".into(), self.collective.clone());
        labels.insert("potluck.app".into(), self.app_id.to_string());
        let spec = bollard::models::SecretSpec {
            name: Some(name.to_string()),
            labels: Some(labels),
            data: Some(base64::engine::general_purpose::STANDARD.encode(value.as_bytes())),
            ..Default::default()
        };
        self.docker.create_secret(spec).await.map(|_| ()).map_err(|e| {
            if crate::adapters::engine::docker::status_of(&e) == Some(409) {
                ApiError::conflict(format!("secret {name} already exists: rotate it to a new version instead"))
            } else {
                ApiError::unavailable(format!("cannot create secret {name}: {}", error_text(&e)))
            }
        })
    }

    /// Undeploy with "remove secrets": every secret Potluck made for this app (its labels, and a
    /// name in the stack).
    pub async fn remove_secrets(&self, report: &(dyn Fn(String) + Send + Sync)) -> Result<(), String> {
        let filters = HashMap::from([("label".to_string(), vec![format!("potluck.app={}", self.app_id)])]);
        let list = self
            .docker
            .list_secrets(Some(bollard::query_parameters::ListSecretsOptions { filters: Some(filters) }))
            .await
            .map_err(|e| error_text(&e))?;
        for s in list {
            let labels: BTreeMap<String, String> =
                s.spec.as_ref().and_then(|x| x.labels.clone()).unwrap_or_default().into_iter().collect();
            let name = s.spec.and_then(|x| x.name).unwrap_or_default();
            // App ids are Potluck's own; on a swarm the stack name is what makes a secret this app's.
            if labels.get("potluck.collective") != Some(&self.collective) || !name.starts_with(&self.prefix()) {
                continue;
            }
            report(format!("Removing secret {name}"));
            self.docker
                .delete_secret(s.id.as_deref().unwrap_or(&name))
                .await
                .map_err(|e| format!("cannot remove secret {name}: {}", error_text(&e)))?;
        }
        Ok(())
    }

    /// Undeploy with "remove volumes": the stack's named volumes (once their containers are gone).
    pub async fn remove_volumes(&self, report: &(dyn Fn(String) + Send + Sync)) -> Result<(), String> {
        let list = self
            .docker
            .list_volumes(Some(bollard::query_parameters::ListVolumesOptions { filters: Some(ns_filter(&self.name)) }))
            .await
            .map_err(|e| error_text(&e))?;
        for v in list.volumes.unwrap_or_default() {
            // The label filter is exact; the name must be the stack's too.
            if v.labels.get(NAMESPACE_LABEL).map(String::as_str) != Some(self.name.as_str())
                || !v.name.starts_with(&self.prefix())
            {
                continue;
            }
            report(format!("Removing volume {}", v.name));
            let mut last = String::new();
            for _ in 0..60 {
                match self.docker.remove_volume(&v.name, None::<bollard::query_parameters::RemoveVolumeOptions>).await {
                    Ok(()) => {
                        last.clear();
                        break;
                    }
                    Err(e) => {
                        last = error_text(&e);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            if !last.is_empty() {
                return Err(format!("cannot remove volume {}: {last}", v.name));
            }
        }
        Ok(())
    }

    /// Deploys `plan` (which must be this stack's).
    pub async fn deploy(
        &self,
        plan: &StackPlan,
        opts: &DeployOptions,
        report: &(dyn Fn(Step) + Send + Sync),
    ) -> Result<Deployed, DeployError> {
        if plan.namespace != self.name {
            return Err(DeployError::Refused(format!(
                "a plan for stack {} is not one for {}",
                plan.namespace, self.name
            )));
        }
        deploy::deploy(&self.docker, plan, opts, report).await
    }

    /// `docker stack rm`, for objects that carry the app's ownership labels or that its
    /// operator took over (`adopted`, by id).
    pub async fn remove(
        &self,
        ownership: &BTreeMap<String, String>,
        adopted: &std::collections::BTreeSet<String>,
        wait: Option<Duration>,
        report: &(dyn Fn(Step) + Send + Sync),
    ) -> Result<bool, DeployError> {
        deploy::remove(&self.docker, &self.name, ownership, adopted, wait, report).await
    }

    pub async fn converge(
        &self,
        services: &BTreeMap<String, String>,
        timeout: Duration,
        report: &(dyn Fn(Progress) + Send + Sync),
    ) -> Outcome {
        converge::wait(&self.docker, &self.name, services, timeout, report).await
    }

    /// What deploying `plan` would change (see `plan::dry_run`).
    pub async fn dry_run(&self, plan: &StackPlan, ownership: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
        super::plan::dry_run(&self.docker, plan, ownership).await
    }
}
