//! What runs now: an app's services and tasks as the swarm reports them, its logs, and commands
//! run in its containers (abra's `app run`).

use crate::adapters::engine::convert::NAMESPACE_LABEL;
use crate::adapters::engine::docker::error_text;
use bollard::models::TaskState;
use bollard::query_parameters::{ListServicesOptions, ListTasksOptions};
use bollard::Docker;
use potluck_app::model::{LiveService, TaskView};
use std::collections::HashMap;

fn ns_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={stack}")])])
}

/// Whether any service of the stack exists.
pub async fn stack_exists(docker: &Docker, stack: &str) -> bool {
    docker
        .list_services(Some(ListServicesOptions { filters: Some(ns_filter(stack)), ..Default::default() }))
        .await
        .map(|s| !s.is_empty())
        .unwrap_or(false)
}

/// The stack's services with their tasks (newest first, at most ten per service).
pub async fn services(docker: &Docker, stack: &str) -> Result<Vec<LiveService>, String> {
    let services = docker
        .list_services(Some(ListServicesOptions { filters: Some(ns_filter(stack)), ..Default::default() }))
        .await
        .map_err(|e| error_text(&e))?;
    let tasks = docker
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
        let running = mine
            .iter()
            .filter(|t| {
                t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
                    && t.desired_state == Some(TaskState::RUNNING)
            })
            .count() as i64;
        let desired = if desired < 0 {
            mine.iter().filter(|t| t.desired_state == Some(TaskState::RUNNING)).count() as i64
        } else {
            desired
        };
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

