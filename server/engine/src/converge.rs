//! Waiting for a deployed stack to converge, driven by the Engine's event stream: every service
//! or container event of the stack triggers an immediate look at the tasks, so "the last task is
//! running" is reported within milliseconds. A slow safety re-check (1 s) covers what produces no
//! event on this manager (tasks rejected before a container exists, e.g. "No such image", or
//! containers on other nodes).
//!
//! A service has converged when, for every slot (replicated) or node (global), the newest task
//! that should run is running, and no update is in progress. A swarm rollback
//! (`update_config.failure_action: rollback`) and repeated task failures end the wait with the
//! Engine's own reason; the timeout (the recipe's `coop-cloud.<stack>.timeout`, 300 s by default)
//! ends it too.

use super::docker::error_text;
use bollard::models::{Task, TaskState};
use bollard::query_parameters::{EventsOptions, ListTasksOptions};
use bollard::Docker;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// After this many failed attempts in one slot with no running task, the service is failing.
const FAILED_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Progress {
    /// A task changed state.
    Task { service: String, slot: String, task: String, state: String, message: String, error: String },
    /// A service's running/desired count changed.
    Service { service: String, running: u64, desired: u64, state: String },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Converged,
    Failed { service: String, reason: String },
    RolledBack { service: String, reason: String },
    TimedOut { waiting_for: Vec<String> },
    Lost { reason: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Converged => f.write_str("converged"),
            Outcome::Failed { service, reason } => write!(f, "service {service} is failing: {reason}"),
            Outcome::RolledBack { service, reason } => write!(f, "the swarm rolled back service {service}: {reason}"),
            Outcome::TimedOut { waiting_for } => write!(f, "deploy timed out waiting for {}", waiting_for.join(", ")),
            Outcome::Lost { reason } => f.write_str(reason),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ServiceView {
    running: u64,
    desired: u64,
    done: bool,
    update_state: String,
    update_message: String,
    failing: Option<String>,
    /// No update status, yet a task that runs is older than the service's last change: right
    /// after an update the swarm clears the status before it makes the new tasks, and for that
    /// moment the old tasks alone look converged.
    stale: bool,
}

fn state_name(s: Option<TaskState>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into())
}

fn is_running_desired(t: &Task) -> bool {
    matches!(t.desired_state, Some(TaskState::RUNNING))
}

fn slot_key(t: &Task) -> String {
    match t.slot {
        Some(s) if s > 0 => s.to_string(),
        _ => t.node_id.clone().unwrap_or_default(),
    }
}

fn created(t: &Task) -> String {
    t.created_at.clone().unwrap_or_default()
}

async fn view(docker: &Docker, name: &str, id: &str) -> Result<(ServiceView, Vec<Task>), bollard::errors::Error> {
    let svc = docker.inspect_service(id, None::<bollard::query_parameters::InspectServiceOptions>).await?;
    let id = svc.id.clone().unwrap_or_else(|| id.to_string());
    let id = id.as_str();
    let spec = svc.spec.clone().unwrap_or_default();
    let mode = spec.mode.clone().unwrap_or_default();
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(HashMap::from([("service".to_string(), vec![name.to_string()])])),
        }))
        .await?;
    let tasks: Vec<Task> = tasks.into_iter().filter(|t| t.service_id.as_deref() == Some(id)).collect();
    let update = svc.update_status.clone();
    let update_state = update.as_ref().and_then(|u| u.state).map(|s| s.to_string()).unwrap_or_default();
    let update_message = update.and_then(|u| u.message).unwrap_or_default();

    // Newest task per slot among those that should run.
    let mut newest: BTreeMap<String, &Task> = BTreeMap::new();
    for t in tasks.iter().filter(|t| is_running_desired(t)) {
        let k = slot_key(t);
        if newest.get(&k).is_none_or(|cur| created(cur) < created(t)) {
            newest.insert(k, t);
        }
    }
    let running =
        newest.values().filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)).count() as u64;

    // Failing: in some slot, the last attempts all failed and nothing runs there.
    let mut by_slot: BTreeMap<String, Vec<&Task>> = BTreeMap::new();
    for t in &tasks {
        by_slot.entry(slot_key(t)).or_default().push(t);
    }
    let mut failing = None;
    for (_, mut attempts) in by_slot {
        attempts.sort_by_key(|t| std::cmp::Reverse(created(t)));
        let any_running = attempts.iter().any(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING));
        let failed: Vec<&&Task> = attempts
            .iter()
            .take_while(|t| {
                matches!(t.status.as_ref().and_then(|s| s.state), Some(TaskState::FAILED | TaskState::REJECTED))
            })
            .collect();
        if !any_running && failed.len() >= FAILED_ATTEMPTS {
            let err = failed[0].status.as_ref().and_then(|s| s.err.clone()).unwrap_or_default();
            let msg = failed[0].status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
            failing = Some(format!("{} attempts failed: {}", failed.len(), if err.is_empty() { msg } else { err }));
        }
    }

    let (desired, done) = if let Some(r) = mode.replicated {
        let desired = r.replicas.unwrap_or(1).max(0) as u64;
        (desired, running >= desired && newest.len() as u64 <= desired)
    } else if mode.global.is_some() {
        let desired = newest.len() as u64;
        (desired, running == desired)
    } else if let Some(job) = mode.replicated_job {
        let total = job.total_completions.unwrap_or(1).max(0) as u64;
        let complete =
            tasks.iter().filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::COMPLETE)).count()
                as u64;
        (total, complete >= total)
    } else {
        // global job: every task complete.
        let all = tasks.len() as u64;
        let complete =
            tasks.iter().filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::COMPLETE)).count()
                as u64;
        (all, all > 0 && complete == all)
    };
    let updating = matches!(update_state.as_str(), "updating" | "rollback_started" | "paused" | "rollback_paused");
    // Docker's timestamps are RFC 3339 in UTC: as text they sort as times do.
    let changed = svc.updated_at.clone().unwrap_or_default();
    let stale = update_state.is_empty() && newest.values().any(|t| created(t) < changed);
    Ok((ServiceView { running, desired, done: done && !updating, update_state, update_message, failing, stale }, tasks))
}

/// How long old tasks of a just-changed service are not taken for converged (see `stale`).
const STALE_GRACE: Duration = Duration::from_secs(5);

/// How often to look again while the swarm settles after an event, and for how long.
const SETTLE_TICK: Duration = Duration::from_millis(100);
const SETTLE_WINDOW: Duration = Duration::from_secs(3);

/// Waits for `services` (name → id) of stack `ns` to converge, reporting progress as it happens.
pub async fn wait(
    docker: &Docker,
    ns: &str,
    services: &BTreeMap<String, String>,
    timeout: Duration,
    report: &(dyn Fn(Progress) + Send + Sync),
) -> Outcome {
    let filters = HashMap::from([("type".to_string(), vec!["container".to_string(), "service".to_string()])]);
    let mut events = docker.events(Some(EventsOptions { filters: Some(filters), ..Default::default() }));
    let started = Instant::now();
    let deadline = started + timeout;
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut counts: HashMap<String, (u64, u64, String)> = HashMap::new();
    // Right after a deploy, tasks are being scheduled: start in the settling rhythm.
    let mut hot_until = Instant::now() + SETTLE_WINDOW;
    loop {
        let mut pending = Vec::new();
        for (name, id) in services {
            let (v, tasks) = match view(docker, name, id).await {
                Ok(x) => x,
                Err(e) => {
                    return Outcome::Lost {
                        reason: format!("lost the Docker Engine while watching {name}: {}", error_text(&e)),
                    }
                }
            };
            let mut tasks = tasks;
            tasks.sort_by_key(created);
            for t in &tasks {
                let tid = t.id.clone().unwrap_or_default();
                let st = state_name(t.status.as_ref().and_then(|s| s.state));
                if seen.get(&tid) != Some(&st) {
                    seen.insert(tid.clone(), st.clone());
                    report(Progress::Task {
                        service: name.clone(),
                        slot: slot_key(t),
                        task: tid,
                        state: st,
                        message: t.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default(),
                        error: t.status.as_ref().and_then(|s| s.err.clone()).unwrap_or_default(),
                    });
                }
            }
            let state = if v.done {
                "converged".to_string()
            } else if v.update_state.is_empty() {
                "starting".into()
            } else {
                v.update_state.clone()
            };
            let key = (v.running, v.desired, state.clone());
            if counts.get(name) != Some(&key) {
                counts.insert(name.clone(), key);
                report(Progress::Service { service: name.clone(), running: v.running, desired: v.desired, state });
            }
            if v.update_state.starts_with("rollback") {
                let reason = if v.update_message.is_empty() {
                    "the update failed".to_string()
                } else {
                    v.update_message.clone()
                };
                if v.update_state == "rollback_completed" || v.update_state == "rollback_started" {
                    return Outcome::RolledBack { service: name.clone(), reason };
                }
            }
            if let Some(f) = v.failing {
                return Outcome::Failed { service: name.clone(), reason: f };
            }
            // A change that replaces no task (labels alone) leaves the old tasks for good: they
            // are taken as converged once the swarm has had a moment to start an update.
            if !v.done || (v.stale && started.elapsed() < STALE_GRACE) {
                pending.push(name.clone());
            }
        }
        if pending.is_empty() {
            return Outcome::Converged;
        }
        let now = Instant::now();
        if now >= deadline {
            return Outcome::TimedOut { waiting_for: pending };
        }
        // The swarm records a task's new state a moment after the container event that announced
        // it: for a while after an event, look again soon; otherwise once a second as a safety net.
        let settle = if now < hot_until { SETTLE_TICK } else { Duration::from_secs(1) };
        let wake = now + settle.min(deadline - now);
        // Wait for an event of this stack (or the tick), then look again.
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(m)) => {
                        let attrs = m.actor.and_then(|a| a.attributes).unwrap_or_default();
                        let ours = attrs.get("com.docker.stack.namespace").is_some_and(|n| n == ns)
                            || attrs.get("name").is_some_and(|n| services.contains_key(n));
                        if ours {
                            hot_until = Instant::now() + SETTLE_WINDOW;
                            break;
                        }
                    }
                    Some(Err(e)) => return Outcome::Lost { reason: format!("lost the Docker Engine: its event stream ended: {}", error_text(&e)) },
                    None => return Outcome::Lost { reason: "lost the Docker Engine: its event stream ended".into() },
                },
                _ = tokio::time::sleep_until(wake.into()) => break,
            }
        }
    }
}
