//! Live state: the replica holding a server's monitor reads the swarm after the engine's events
//! (at most twice a second, and every half minute regardless) and writes what the pages show at a
//! glance to the database (`servers.live_summary`, `apps.live_*`), bumping `servers.live_seq`
//! when anything changed. Every replica follows those numbers with one query per half second
//! ([`LiveHub`]), and its live streams (the app page, the apps list, the servers page) send what
//! changed for them.

use super::{drift, stack};
use crate::adapters::db::now_ms;
use crate::adapters::engine::docker::error_text;
use crate::error::Result;
use crate::state::AppState;
use bollard::models::{Node, NodeState, Service, Task, TaskState};
use bollard::query_parameters::{ListNodesOptions, ListServicesOptions, ListTasksOptions};
use bollard::Docker;
use potluck_app::model::{AppDrift, AppHealth, ServerId, ServerSummary};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

const NAMESPACE: &str = "com.docker.stack.namespace";
/// How far back a failed task counts as a restart.
const RESTART_WINDOW_MS: i64 = 60 * 60 * 1000;
/// How often a replica reads the servers' change numbers while someone follows them.
const POLL: Duration = Duration::from_millis(500);
/// A monitor reads its swarm at most this often after events…
pub const READ_AFTER: Duration = Duration::from_millis(500);
/// …and this often regardless.
pub const READ_ANYWAY: Duration = Duration::from_secs(30);

/// What the swarm holds, summarized: the server's glance and each stack's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub server: ServerSummary,
    pub stacks: BTreeMap<String, AppHealth>,
    /// Each stack's services and labels, for what changed outside Potluck (`drift.rs`).
    pub specs: BTreeMap<String, super::drift::Live>,
}

/// Reads a swarm's nodes, services and tasks (three calls, whatever the number of apps).
pub async fn read(docker: &Docker) -> std::result::Result<Reading, String> {
    // The reading's time is when it began: a change recorded after it is newer (`record`).
    let at = now_ms();
    let nodes = docker.list_nodes(None::<ListNodesOptions>).await.map_err(|e| error_text(&e))?;
    let services = docker.list_services(None::<ListServicesOptions>).await.map_err(|e| error_text(&e))?;
    let tasks = docker.list_tasks(None::<ListTasksOptions>).await.map_err(|e| error_text(&e))?;
    Ok(summarize(&nodes, &services, &tasks, at))
}

fn millis(date: Option<&String>) -> Option<i64> {
    let t = time::OffsetDateTime::parse(date?, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// A task counts as a restart when it failed or was rejected within the window (the swarm
/// replaces it; a task it stopped itself, for an update or a removal, ends `shutdown`).
fn restarted(t: &Task, now: i64) -> bool {
    let Some(status) = &t.status else { return false };
    matches!(status.state, Some(TaskState::FAILED | TaskState::REJECTED))
        && millis(status.timestamp.as_ref()).is_some_and(|at| now - at <= RESTART_WINDOW_MS)
}

/// The glance at a swarm from what its engine listed. Pure, for the tests.
pub fn summarize(nodes: &[Node], services: &[Service], tasks: &[Task], now: i64) -> Reading {
    let mut server = ServerSummary { nodes: nodes.len() as i64, at: now, ..Default::default() };
    for n in nodes {
        if n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY) {
            server.nodes_ready += 1;
        }
        if n.manager_status.is_some() {
            server.managers += 1;
        }
    }
    let mut stack_of: HashMap<&str, &str> = HashMap::new();
    let mut stacks: BTreeMap<String, AppHealth> = BTreeMap::new();
    for s in services {
        let spec = s.spec.as_ref();
        let id = s.id.as_deref().unwrap_or_default();
        let stack = spec.and_then(|s| s.labels.as_ref()).and_then(|l| l.get(NAMESPACE));
        let mode = spec.and_then(|s| s.mode.as_ref());
        // One-off jobs complete; they are neither running nor desired once done.
        let job = mode.is_some_and(|m| m.replicated_job.is_some() || m.global_job.is_some());
        // Counted from the tasks by the app page's rule (`stack::runs`).
        let mine = tasks.iter().filter(|t| t.service_id.as_deref() == Some(id));
        let running = mine.clone().filter(|t| stack::runs(t)).count() as i64;
        let desired = match mode.and_then(|m| m.replicated.as_ref()) {
            Some(r) => r.replicas.unwrap_or(1),
            None => mine.filter(|t| stack::meant_to_run(t)).count() as i64,
        };
        let (running, desired) = if job { (0, 0) } else { (running, desired) };
        server.services += 1;
        if running >= desired {
            server.services_converged += 1;
        }
        server.tasks_running += running;
        server.tasks_desired += desired;
        if let Some(stack) = stack {
            stack_of.insert(id, stack);
            let h = stacks.entry(stack.clone()).or_insert(AppHealth { at: now, ..Default::default() });
            h.running += running;
            h.desired += desired;
        }
    }
    for t in tasks.iter().filter(|t| restarted(t, now)) {
        server.restarts += 1;
        if let Some(stack) = t.service_id.as_deref().and_then(|id| stack_of.get(id)) {
            if let Some(h) = stacks.get_mut(*stack) {
                h.restarts += 1;
            }
        }
    }
    Reading { server, stacks, specs: super::drift::stacks(services) }
}

/// Writes a reading of a server: what differs from `last` (the reading this monitor wrote
/// before; everything when none), bumping the server's `live_seq` when anything did. An app whose
/// stack runs nothing reads as nothing running. An app's `at` is the reading that first saw it so.
/// Each app's drift (`drift.rs`) is compared too, except while a job of it runs or when it
/// changed after the reading began (the job's end records what it left).
pub async fn record(st: &AppState, server: ServerId, reading: &Reading, last: Option<&Reading>) -> Result<bool> {
    let glance = |s: &ServerSummary| ServerSummary { at: 0, events_seen: 0, last_event_at: None, ..s.clone() };
    let of = |r: &Reading, stack: &str| r.stacks.get(stack).map(|h| AppHealth { at: 0, ..*h }).unwrap_or_default();
    let stacks_same = |l: &Reading| {
        l.stacks.len() == reading.stacks.len()
            && reading.stacks.keys().all(|k| of(l, k) == of(reading, k))
            && l.specs == reading.specs
    };
    if last.is_some_and(|l| glance(&l.server) == glance(&reading.server) && stacks_same(l)) {
        return Ok(false);
    }
    let mut tx = st.db.pool().begin().await?;
    let apps = sqlx::query(
        "SELECT a.id, a.stack_name, a.live_at, a.status, a.version, a.chaos, a.chaos_version, a.deployed_services, \
         a.drift, a.updated_at, \
         (SELECT COUNT(*) FROM jobs j WHERE j.app_id = a.id AND j.state IN ('queued', 'running')) AS busy \
         FROM apps a WHERE a.server_id = $1",
    )
    .bind(server)
    .fetch_all(&mut *tx)
    .await?;
    for a in apps {
        let id: i64 = a.try_get("id")?;
        let stack: String = a.try_get("stack_name")?;
        let read_before = a.try_get::<Option<i64>, _>("live_at")?.is_some();
        if !(read_before && last.is_some_and(|l| of(l, &stack) == of(reading, &stack))) {
            let h = AppHealth { at: reading.server.at, ..of(reading, &stack) };
            sqlx::query(
                "UPDATE apps SET live_running = $1, live_desired = $2, live_restarts = $3, live_at = $4 WHERE id = $5",
            )
            .bind(h.running)
            .bind(h.desired)
            .bind(h.restarts)
            .bind(h.at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let busy = a.try_get::<i64, _>("busy")? > 0;
        if busy || a.try_get::<i64, _>("updated_at")? >= reading.server.at {
            continue;
        }
        let stored: Option<AppDrift> =
            a.try_get::<Option<String>, _>("drift")?.and_then(|t| serde_json::from_str(&t).ok());
        let services = drift::parse_services(a.try_get::<Option<String>, _>("deployed_services")?.as_deref());
        let version: Option<String> = a.try_get("version")?;
        let chaos_version: Option<String> = a.try_get("chaos_version")?;
        let recorded = drift::Recorded {
            status: crate::adapters::db::stored(&a, "status")?,
            version: version.as_deref(),
            chaos: a.try_get::<i64, _>("chaos")? != 0,
            chaos_version: chaos_version.as_deref(),
            services: services.as_ref(),
        };
        let live = reading.specs.get(&stack);
        let next = drift::next(stored.as_ref(), drift::differences(recorded, live), live, reading.server.at);
        if next.as_ref().map(|d| &d.changes) != stored.as_ref().map(|d| &d.changes) {
            sqlx::query("UPDATE apps SET drift = $1 WHERE id = $2")
                .bind(next.map(|d| serde_json::to_string(&d).unwrap_or_default()))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query("UPDATE servers SET live_summary = $1, live_seq = live_seq + 1 WHERE id = $2")
        .bind(serde_json::to_string(&reading.server).unwrap_or_default())
        .bind(server)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Tells every replica's live streams that something of the server changed that they read from
/// the database (an app's status after a job, its health, the monitor's connection).
pub async fn touch(st: &AppState, server: ServerId) {
    if let Err(e) =
        sqlx::query("UPDATE servers SET live_seq = live_seq + 1 WHERE id = $1").bind(server).execute(st.db.pool()).await
    {
        tracing::warn!(error = %e, "cannot mark a server's live state changed");
    }
}

/// Each server's change number, as this replica last read them.
pub type Seqs = Arc<BTreeMap<ServerId, i64>>;

/// One reader of the servers' change numbers per replica, started by the first live stream and
/// idle while nobody follows.
pub struct LiveHub {
    seqs: OnceLock<watch::Sender<Seqs>>,
    /// True once the process stops: the live streams end (the browser reconnects elsewhere).
    stopping: watch::Sender<bool>,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub { seqs: OnceLock::new(), stopping: watch::channel(false).0 }
    }
}

impl LiveHub {
    /// Ends every live stream of this process (on a stop: the server waits for open answers).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn subscribe(&self, st: &Arc<AppState>) -> watch::Receiver<Seqs> {
        self.seqs
            .get_or_init(|| {
                let (tx, _) = watch::channel(Seqs::default());
                tokio::spawn(poll(Arc::downgrade(st), tx.clone()));
                tx
            })
            .subscribe()
    }
}

async fn poll(st: Weak<AppState>, tx: watch::Sender<Seqs>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(st) = st.upgrade() else { return };
        if tx.receiver_count() == 0 {
            continue;
        }
        let rows = match sqlx::query("SELECT id, live_seq FROM servers").fetch_all(st.db.pool()).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the servers' live state");
                continue;
            }
        };
        let now: BTreeMap<ServerId, i64> = rows
            .iter()
            .filter_map(|r| Some((r.try_get::<ServerId, _>("id").ok()?, r.try_get::<i64, _>("live_seq").ok()?)))
            .collect();
        tx.send_if_modified(|seqs| {
            if **seqs == now {
                return false;
            }
            *seqs = Arc::new(now);
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{NodeStatus, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskStatus};

    fn service(id: &str, stack: &str, replicas: i64) -> Service {
        Service {
            id: Some(id.into()),
            spec: Some(ServiceSpec {
                labels: Some([(NAMESPACE.to_string(), stack.to_string())].into()),
                mode: Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated { replicas: Some(replicas) }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn task(service: &str, desired: TaskState, state: TaskState, at: &str) -> Task {
        Task {
            service_id: Some(service.into()),
            desired_state: Some(desired),
            status: Some(TaskStatus { state: Some(state), timestamp: Some(at.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn a_stack_is_summed_over_its_services_and_failed_tasks_of_the_last_hour_are_restarts() {
        let now = millis(Some(&"2026-12-06T12:00:00Z".to_string())).unwrap();
        let nodes = [
            Node {
                status: Some(NodeStatus { state: Some(NodeState::READY), ..Default::default() }),
                ..Default::default()
            },
            Node {
                status: Some(NodeStatus { state: Some(NodeState::DOWN), ..Default::default() }),
                ..Default::default()
            },
        ];
        let services = [service("a", "shop", 1), service("b", "shop", 2), service("c", "blog", 1)];
        use TaskState::{FAILED, REJECTED, RUNNING, SHUTDOWN};
        let tasks = [
            task("a", RUNNING, RUNNING, "2026-12-06T11:00:00Z"),
            // The task an update replaced, still stopping: not running for the service.
            task("a", SHUTDOWN, RUNNING, "2026-12-06T11:00:00Z"),
            task("b", SHUTDOWN, FAILED, "2026-12-06T11:30:00.123456789Z"),
            task("b", SHUTDOWN, REJECTED, "2026-12-06T11:59:00Z"),
            // Too old, and stopped by the swarm for an update: neither is a restart.
            task("b", SHUTDOWN, FAILED, "2026-12-06T10:30:00Z"),
            task("c", SHUTDOWN, SHUTDOWN, "2026-12-06T11:59:00Z"),
            task("c", RUNNING, RUNNING, "2026-12-06T11:59:00Z"),
        ];
        let r = summarize(&nodes, &services, &tasks, now);
        assert_eq!(r.stacks["shop"], AppHealth { running: 1, desired: 3, restarts: 2, at: now });
        assert_eq!(r.stacks["blog"], AppHealth { running: 1, desired: 1, restarts: 0, at: now });
        assert_eq!((r.server.nodes_ready, r.server.nodes), (1, 2));
        assert_eq!((r.server.services_converged, r.server.services), (2, 3));
        assert_eq!((r.server.tasks_running, r.server.tasks_desired, r.server.restarts), (2, 4, 2));
    }

    #[test]
    fn the_badge_says_failing_for_restarts_even_without_the_monitors_reason() {
        use potluck_app::model::Verdict;
        let h = |running, desired, restarts| AppHealth { running, desired, restarts, at: 1 };
        assert_eq!(AppHealth::verdict(Some(&h(2, 2, 0)), None), Verdict::Healthy);
        assert_eq!(AppHealth::verdict(Some(&h(1, 2, 0)), None), Verdict::Degraded);
        assert_eq!(AppHealth::verdict(Some(&h(2, 2, 1)), None), Verdict::Degraded);
        assert_eq!(AppHealth::verdict(Some(&h(2, 2, 3)), None), Verdict::Failing);
        assert_eq!(AppHealth::verdict(Some(&h(2, 2, 0)), Some("db: exited")), Verdict::Failing);
        assert_eq!(AppHealth::verdict(Some(&h(0, 0, 0)), None), Verdict::Stopped);
        assert_eq!(AppHealth::verdict(None, None), Verdict::Unknown);
    }
}
