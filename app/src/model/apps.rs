//! Servers, apps, secrets and jobs: what runs where, and what changes it.

use super::ids::*;
use super::people::OneTimeSecret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RotatedSecret {
    pub secret: GeneratedSecret,
    pub job: Option<JobSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServerView {
    pub id: ServerId,
    pub collective: String,
    pub name: String,
    /// `unix`, `tcp` or `ssh`.
    pub kind: String,
    pub address: String,
    pub tls: bool,
    pub engine_version: Option<String>,
    pub api_version: Option<String>,
    pub is_manager: bool,
    pub nodes: i64,
    pub last_checked_at: Option<i64>,
    pub last_error: Option<String>,
    /// From the live event stream: connected now, and when the last event arrived.
    pub connected: bool,
    pub last_event_at: Option<i64>,
    pub events_seen: i64,
    /// SSH: the fingerprints of the pinned host key (`SHA256:…`).
    #[serde(default)]
    pub host_key_fingerprints: Vec<String>,
    /// What deploys here may ask of the host (set by federation admins; empty: nothing).
    #[serde(default)]
    pub policy_allows: Vec<String>,
    /// The swarm at a glance, as the replica watching it last read it (none before the first).
    #[serde(default)]
    pub summary: Option<ServerSummary>,
}

/// A swarm at a glance: read by the replica holding the server's monitor after the engine's
/// events (and every half minute), shown by every replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServerSummary {
    pub nodes_ready: i64,
    pub nodes: i64,
    pub managers: i64,
    /// Services whose running tasks are the desired ones, of all.
    pub services_converged: i64,
    pub services: i64,
    pub tasks_running: i64,
    pub tasks_desired: i64,
    /// Tasks that failed or were rejected in the last hour.
    pub restarts: i64,
    /// Engine events seen since the monitor connected, and when the last one came.
    pub events_seen: i64,
    pub last_event_at: Option<i64>,
    /// When this was read.
    pub at: i64,
}

/// An app's tasks at a glance, as its server's monitor last read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AppHealth {
    /// Running tasks of the app's stack that are meant to run, and how many are meant to.
    pub running: i64,
    pub desired: i64,
    /// Tasks that failed or were rejected in the last hour (the swarm restarts them).
    pub restarts: i64,
    /// Since when it has been so (the reading that first saw it).
    pub at: i64,
}

/// How an app looks at a glance: what its badge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every task that should run runs and none failed lately.
    Healthy,
    /// Fewer running than desired, or a task failed in the last hour.
    Degraded,
    /// Its containers keep failing while no job runs, or its tasks keep restarting.
    Failing,
    /// Nothing is meant to run.
    Stopped,
    /// Not read yet (its server is not watched, or it was never deployed).
    Unknown,
}

impl AppHealth {
    /// From this many restarts in the last hour an app is failing, job or no job.
    pub const FAILING_RESTARTS: i64 = 3;

    /// The badge: `unhealthy` is the monitor's reason while the app's containers fail.
    pub fn verdict(health: Option<&AppHealth>, unhealthy: Option<&str>) -> Verdict {
        if unhealthy.is_some() {
            return Verdict::Failing;
        }
        let Some(h) = health else { return Verdict::Unknown };
        if h.restarts >= Self::FAILING_RESTARTS {
            Verdict::Failing
        } else if h.desired == 0 && h.running == 0 {
            Verdict::Stopped
        } else if h.running < h.desired || h.restarts > 0 {
            Verdict::Degraded
        } else {
            Verdict::Healthy
        }
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Failing => "failing",
            Verdict::Stopped => "stopped",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What a job does to an app. Stored and sent by its lowercase name (`upgrade`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum JobKind {
    /// The app's version (or the newest release for a new app), or the version asked for.
    Deploy,
    /// A newer release: the newest, or the one asked for.
    Upgrade,
    /// An older release: the one just before, or the one asked for.
    Rollback,
    /// The version running now, again (new secrets, a changed env file, a forced update).
    Redeploy,
    /// A commit that is not a release (the default branch unless one is asked for).
    Chaos,
    /// The stack removed; volumes and secrets stay unless asked.
    Undeploy,
    /// A snapshot of the volumes the recipe's labels declare, checked before it is kept.
    Backup,
    /// A snapshot written back into the app's volumes (its newest unless one is named).
    Restore,
    /// A snapshot restored into a throw-away stack that must converge and pass its healthchecks,
    /// then removed (the app's newest snapshot unless one is named).
    Drill,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What the action is called on a button.
    pub fn label(self) -> &'static str {
        match self {
            JobKind::Deploy => "Deploy",
            JobKind::Upgrade => "Upgrade",
            JobKind::Rollback => "Roll back",
            JobKind::Redeploy => "Redeploy (force)",
            JobKind::Chaos => "Chaos deploy (a commit)",
            JobKind::Undeploy => "Undeploy",
            JobKind::Backup => "Back up now",
            JobKind::Restore => "Restore",
            JobKind::Drill => "Restore drill",
        }
    }

    /// The jobs that change which version runs (the others leave the services as they are).
    pub const DEPLOYS: [JobKind; 6] =
        [JobKind::Deploy, JobKind::Upgrade, JobKind::Rollback, JobKind::Redeploy, JobKind::Chaos, JobKind::Undeploy];

    pub fn is_deploy(self) -> bool {
        !matches!(self, JobKind::Backup | JobKind::Restore | JobKind::Drill)
    }

    /// The audit action of asking for this job.
    pub fn requested(self) -> crate::actions::AuditAction {
        use crate::actions::AuditAction as A;
        match self {
            JobKind::Deploy => A::DeployRequest,
            JobKind::Upgrade => A::UpgradeRequest,
            JobKind::Rollback => A::RollbackRequest,
            JobKind::Redeploy => A::RedeployRequest,
            JobKind::Chaos => A::ChaosRequest,
            JobKind::Undeploy => A::UndeployRequest,
            JobKind::Backup => A::BackupRequest,
            JobKind::Restore => A::RestoreRequest,
            JobKind::Drill => A::DrillRequest,
        }
    }

    /// The audit action of the job's end.
    pub fn done(self) -> crate::actions::AuditAction {
        use crate::actions::AuditAction as A;
        match self {
            JobKind::Deploy => A::Deploy,
            JobKind::Upgrade => A::Upgrade,
            JobKind::Rollback => A::Rollback,
            JobKind::Redeploy => A::Redeploy,
            JobKind::Chaos => A::Chaos,
            JobKind::Undeploy => A::Undeploy,
            JobKind::Backup => A::Backup,
            JobKind::Restore => A::Restore,
            JobKind::Drill => A::Drill,
        }
    }

    /// Reads an action as a form or an API client names it, with an error that lists the
    /// actions there are.
    pub fn parse(s: &str) -> Result<JobKind, String> {
        s.trim().parse().map_err(|_| {
            let known: Vec<&str> = <JobKind as strum::VariantArray>::VARIANTS.iter().map(|k| k.as_str()).collect();
            format!("unknown action {s:?}: one of {}", known.join(", "))
        })
    }
}

/// Where a job is: queued, then running, then succeeded or failed (never left running).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// What the last job left an app as.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AppStatus {
    /// Created, never deployed.
    New,
    Deployed,
    Undeployed,
    /// The last deploy failed; the swarm may run an older version.
    Failed,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AppSummary {
    pub id: AppId,
    pub collective: String,
    pub domain: String,
    pub recipe: String,
    pub server: String,
    pub stack_name: String,
    pub version: Option<String>,
    pub chaos: bool,
    pub status: AppStatus,
    /// Why it is failing, when its containers die while no job runs (seen on the engine's
    /// event stream; cleared once it runs whole and quiet again, or by a deploy).
    pub unhealthy: Option<String>,
    /// Its tasks at a glance (none until its server's monitor read them).
    #[serde(default)]
    pub health: Option<AppHealth>,
    /// What runs differs from what Potluck deployed (changed outside Potluck), while it does.
    #[serde(default)]
    pub drift: Option<AppDrift>,
    pub updated_at: i64,
}

/// The app's stack, changed outside Potluck: an `abra app deploy` from a laptop, a `docker
/// service update`, a stack removed or started by hand. Seen by its server's monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AppDrift {
    /// Since when (the first reading that saw it).
    pub since: i64,
    /// Each difference, in words ("runs 0.2.0+1.1, Potluck deployed 0.1.0+1.0", "service app changed").
    pub changes: Vec<String>,
    /// The version the stack's labels say runs (`coop-cloud.<stack>.version`), when they say one.
    pub live_version: Option<String>,
    /// The chaos version the labels say runs, when the stack is a chaos deploy.
    pub live_chaos: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EnvEditEntry {
    pub key: String,
    pub value: String,
    /// What the recipe's sample says about it.
    pub doc: Vec<String>,
    pub modifiers: Vec<(String, String)>,
    pub in_sample: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OverlayOption {
    pub file: String,
    pub enabled: bool,
    pub doc: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SecretStatus {
    /// The compose secret (`db_password`).
    pub name: String,
    pub version: String,
    /// The Docker secret (`<stack>_db_password_v1`).
    pub docker_name: String,
    pub exists: Option<bool>,
    pub generate: bool,
    pub length: Option<i64>,
    pub charset: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TaskView {
    pub id: String,
    pub slot: String,
    pub state: String,
    pub desired_state: String,
    pub message: String,
    pub error: String,
    pub node: String,
    pub image: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LiveService {
    pub name: String,
    pub image: String,
    pub mode: String,
    pub running: i64,
    pub desired: i64,
    pub update_state: String,
    pub version_label: String,
    pub tasks: Vec<TaskView>,
}

/// What the app page's live stream sends at each change: the app's row and its services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AppLiveView {
    pub app: AppSummary,
    pub services: Vec<LiveService>,
    pub live_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobSummary {
    pub id: JobId,
    pub app_id: AppId,
    pub kind: JobKind,
    pub state: JobState,
    pub target_version: Option<String>,
    pub requested_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub result: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobEventView {
    pub seq: i64,
    pub at: i64,
    /// A line for people.
    pub text: String,
    /// `step`, `task`, `service`, `check`, `done`…
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobDetail {
    pub job: JobSummary,
    pub app_domain: String,
    pub collective: String,
    pub events: Vec<JobEventView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeployCheck {
    /// `error` blocks the deploy; `warning` does not.
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeployPreview {
    pub kind: JobKind,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub checks: Vec<DeployCheck>,
    /// What the swarm would see change, one line each.
    pub changes: Vec<String>,
    /// Release notes of every version passed, oldest first.
    pub release_notes: Vec<(String, String)>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AppDetail {
    pub app: AppSummary,
    pub env: String,
    pub entries: Vec<EnvEditEntry>,
    pub overlays: Vec<OverlayOption>,
    pub missing_keys: Vec<String>,
    /// Recipe versions, newest first.
    pub versions: Vec<String>,
    pub secrets: Vec<SecretStatus>,
    pub services: Vec<LiveService>,
    pub live_error: Option<String>,
    pub jobs: Vec<JobSummary>,
    /// What the recipe's backup labels cover (from the last deploy or backup).
    pub coverage: Option<Vec<super::backups::VolumeCoverage>>,
    /// Snapshots Potluck took of the app, newest first.
    pub backups: Vec<super::backups::BackupView>,
    /// The collective's backup repositories, by name.
    pub backup_repos: Vec<String>,
    pub backup_schedule: Option<super::backups::BackupScheduleView>,
    /// Changes to the app's file waiting in the collective's git remote (or in conflict with it).
    pub incoming: Vec<super::sync::IncomingChange>,
    pub can_manage: bool,
    pub can_operate: bool,
    pub can_manage_secrets: bool,
    pub can_run: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GeneratedSecret {
    pub name: String,
    pub docker_name: String,
    pub value: OneTimeSecret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CommandOutput {
    pub exit_code: Option<i64>,
    pub output: String,
}

/// How a job runs, chosen by the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobOptions {
    /// undeploy: also remove the stack's volumes / the app's secrets.
    #[serde(default)]
    pub remove_volumes: bool,
    #[serde(default)]
    pub remove_secrets: bool,
    /// Seconds to wait for convergence instead of the recipe's timeout label.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// `always`, `changed` or `never`, as `docker stack deploy --resolve-image`.
    #[serde(default = "default_resolve")]
    pub resolve_image: String,
    /// backup, restore: the collective's repository by name (default: its first).
    #[serde(default)]
    pub repo: Option<String>,
    /// restore: a snapshot id or a unique prefix of one (default: the newest of the app).
    #[serde(default)]
    pub snapshot: Option<String>,
    /// restore: the domain of another app of the collective whose snapshot is cloned into this one.
    #[serde(default)]
    pub from_app: Option<String>,
    /// upgrade: no backup first (one is taken where the recipe declares backups and the
    /// collective has a repository).
    #[serde(default)]
    pub skip_backup: bool,
    /// deploys: take over the objects of the stack that another tool made (an `abra app
    /// deploy`), which Potluck otherwise refuses to touch. Refused while another collective has
    /// the same engine registered.
    #[serde(default)]
    pub take_over: bool,
    /// backup: fired by the app's schedule (its keep rules apply after it). Set by Potluck's
    /// scheduler only: a request that sets it is refused.
    #[serde(default)]
    pub scheduled: bool,
    /// scheduled backup: drill the snapshot once it is taken (the schedule's choice when the run
    /// was queued, so a schedule changed meanwhile does not change a run already under way).
    #[serde(default)]
    pub drill: bool,
    /// upgrade: leave a failed upgrade in place instead of deploying the previous version again.
    #[serde(default)]
    pub no_rollback: bool,
}

fn default_resolve() -> String {
    "never".into()
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            remove_volumes: false,
            remove_secrets: false,
            timeout_secs: None,
            resolve_image: default_resolve(),
            repo: None,
            snapshot: None,
            from_app: None,
            skip_backup: false,
            take_over: false,
            scheduled: false,
            drill: false,
            no_rollback: false,
        }
    }
}

/// What importing an abra `servers/` tree would do: each server directory with the Potluck server
/// it goes to, each env file with the app it becomes or why it is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AbraTreePreview {
    /// The uploaded archive this preview read (pages), none when the archive came inline.
    pub upload: Option<i64>,
    /// When the upload was imported, and how many apps that created.
    pub imported: Option<(i64, i64)>,
    pub dirs: Vec<AbraTreeDir>,
    pub apps: Vec<AbraTreeApp>,
    /// Entries of the archive that are not apps (`path: why`), e.g. a README or a symlink.
    pub ignored: Vec<String>,
    /// The collective's servers, which a directory may be mapped to.
    pub servers: Vec<String>,
}

impl AbraTreePreview {
    /// How many apps importing it creates.
    pub fn creates(&self) -> usize {
        self.apps.iter().filter(|a| a.refused.is_none()).count()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AbraTreeDir {
    /// The directory's name in the tree (abra's server name).
    pub dir: String,
    /// The Potluck server its apps go to: the one chosen, else the one of the same name.
    pub server: Option<String>,
    pub apps: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AbraTreeApp {
    pub dir: String,
    pub file: String,
    pub domain: String,
    pub recipe: String,
    pub version: Option<String>,
    /// Why it will not be imported (unknown recipe, a domain the server already has…).
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AbraTreeImported {
    pub created: Vec<AppSummary>,
    /// The env files that were not imported, with why.
    pub refused: Vec<AbraTreeApp>,
}
