//! Wire types shared by the pages and the server: what crosses HTTP, and the pure role table.
//!
//! Nothing here holds a long-lived secret. The two values that are shown exactly once (a new API
//! token, an invitation link) travel in [`OneTimeSecret`], whose `Debug` is redacted.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A member's role in one collective. The order is meaningful: a higher role grants everything a
/// lower one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Maintainer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Maintainer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Maintainer => "maintainer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// The one table that says what a role allows in its collective.
    pub fn grants(self, permission: Permission) -> bool {
        self >= Role::least_granting(permission)
    }

    /// The lowest role that allows `permission`.
    pub fn least_granting(permission: Permission) -> Role {
        use Permission::*;
        match permission {
            ViewCollective | ViewRecipes | ViewApps | ViewServers | CreateOwnApiToken => Role::Viewer,
            MaintainRecipes | ReviewReleases => Role::Maintainer,
            ManageApps | OperateApps | ManageSecrets | RunCommands => Role::Operator,
            ManageMembers | ManageGroupMappings | ManageServers | ViewAudit | EditCollective => Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a role may allow inside one collective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    ViewCollective,
    ViewRecipes,
    ViewApps,
    ViewServers,
    CreateOwnApiToken,
    MaintainRecipes,
    ReviewReleases,
    ManageApps,
    OperateApps,
    ManageSecrets,
    RunCommands,
    ManageMembers,
    ManageGroupMappings,
    ManageServers,
    ViewAudit,
    EditCollective,
}

impl Permission {
    pub const ALL: [Permission; 16] = [
        Permission::ViewCollective,
        Permission::ViewRecipes,
        Permission::ViewApps,
        Permission::ViewServers,
        Permission::CreateOwnApiToken,
        Permission::MaintainRecipes,
        Permission::ReviewReleases,
        Permission::ManageApps,
        Permission::OperateApps,
        Permission::ManageSecrets,
        Permission::RunCommands,
        Permission::ManageMembers,
        Permission::ManageGroupMappings,
        Permission::ManageServers,
        Permission::ViewAudit,
        Permission::EditCollective,
    ];

    /// What the permission lets someone do, to finish "… can" in a sentence.
    pub fn what(self) -> &'static str {
        match self {
            Permission::ViewCollective => "see the collective",
            Permission::ViewRecipes => "see its recipes",
            Permission::ViewApps => "see its apps",
            Permission::ViewServers => "see its servers",
            Permission::CreateOwnApiToken => "create API tokens",
            Permission::MaintainRecipes => "maintain recipes",
            Permission::ReviewReleases => "review releases",
            Permission::ManageApps => "create, configure and delete apps",
            Permission::OperateApps => "deploy and operate apps",
            Permission::ManageSecrets => "manage app secrets",
            Permission::RunCommands => "run commands in apps",
            Permission::ManageMembers => "manage members and invitations",
            Permission::ManageGroupMappings => "map provider groups to roles",
            Permission::ManageServers => "manage servers",
            Permission::ViewAudit => "read the audit log",
            Permission::EditCollective => "edit the collective",
        }
    }
}

/// A value shown to its creator once (a new API token, an invitation link). It is never stored in
/// clear by the server and never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OneTimeSecret(pub String);

impl fmt::Debug for OneTimeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Me {
    pub user_id: i64,
    pub display_name: String,
    pub email: Option<String>,
    pub is_federation_admin: bool,
    pub memberships: Vec<MembershipSummary>,
}

impl Me {
    pub fn role_in(&self, collective: &str) -> Option<Role> {
        self.memberships.iter().find(|m| m.collective_slug == collective).map(|m| m.role)
    }

    /// Whether the UI should offer an action; the server checks again, always.
    pub fn can(&self, collective: &str, permission: Permission) -> bool {
        self.is_federation_admin || self.role_in(collective).is_some_and(|r| r.grants(permission))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MembershipSummary {
    pub collective_slug: String,
    pub collective_name: String,
    pub role: Role,
}

/// An identity provider as the login page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProviderPublic {
    pub id: i64,
    pub display_name: String,
}

/// An identity provider as a federation admin sees it. The client secret never leaves the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProviderAdmin {
    pub id: i64,
    pub display_name: String,
    pub issuer_url: String,
    pub client_id: String,
    pub groups_claim: String,
    pub collectives: Vec<String>,
    pub end_session_supported: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProvidersOverview {
    /// The redirect URI to register at every identity provider.
    pub redirect_uri: String,
    pub providers: Vec<ProviderAdmin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CollectiveSummary {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub my_role: Option<Role>,
    pub member_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CollectiveDetail {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub my_role: Option<Role>,
    pub members: Vec<Member>,
    pub group_mappings: Vec<GroupMapping>,
    pub providers: Vec<ProviderPublic>,
    pub invitations: Vec<InvitationSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: i64,
    pub display_name: String,
    pub email: Option<String>,
    /// The role that counts: the higher of the manual grant and the identity provider's groups.
    pub role: Role,
    pub manual_role: Option<Role>,
    pub idp_role: Option<Role>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GroupMapping {
    pub id: i64,
    pub provider_id: i64,
    pub provider_name: String,
    pub claim: String,
    pub value: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvitationSummary {
    pub id: i64,
    pub role: Role,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedInvitation {
    pub id: i64,
    pub link: OneTimeSecret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiTokenSummary {
    pub id: i64,
    pub name: String,
    pub collective_slug: String,
    pub role: Role,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedApiToken {
    pub summary: ApiTokenSummary,
    pub token: OneTimeSecret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserSummary {
    pub id: i64,
    pub display_name: String,
    pub email: Option<String>,
    pub is_federation_admin: bool,
    pub identities: Vec<IdentityView>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IdentityView {
    pub provider_id: i64,
    pub provider_name: String,
    pub subject: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    pub seq: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub collective: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
    pub client_addr: String,
    pub details: String,
}

/// Filters for the audit log. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditFilter {
    pub collective: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Show events with a sequence number below this one (the next page).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    pub next_before: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecipeSummary {
    pub name: String,
    pub repository: String,
    pub description: String,
    pub category: String,
    pub latest_version: Option<String>,
    pub version_count: i64,
    pub maintainers: Vec<String>,
    pub last_fetched_at: Option<i64>,
    pub fetch_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MaintainerView {
    /// `user` or `collective`.
    pub kind: String,
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServiceImage {
    pub service: String,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionView {
    pub tag: String,
    /// The recipe's own semver part, when the tag has one.
    pub semver: Option<String>,
    /// Whether the tag follows the `x.y.z+upstream` scheme exactly.
    pub canonical: bool,
    pub annotated: bool,
    pub commit: String,
    /// Seconds since the epoch.
    pub time: i64,
    pub message: String,
    pub release_note: Option<String>,
    pub images: Vec<ServiceImage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EnvSampleEntry {
    pub key: String,
    pub value: String,
    /// The comment lines above it in `.env.sample`.
    pub doc: Vec<String>,
    /// Trailing `# key=value` modifiers (`length=128`, `generate=false`…).
    pub modifiers: Vec<(String, String)>,
    /// Written commented out in the sample (an option to enable).
    pub commented: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecipeDeployment {
    pub collective: String,
    pub app: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecipeDetail {
    pub name: String,
    pub repository: String,
    pub default_branch: String,
    pub description: String,
    pub metadata: Vec<(String, String)>,
    pub maintainers: Vec<MaintainerView>,
    /// Newest first.
    pub versions: Vec<VersionView>,
    pub last_fetched_at: Option<i64>,
    pub fetch_error: Option<String>,
    pub can_maintain: bool,
    pub required_approvals: i64,
    pub required_collectives: i64,
    pub deployments: Vec<RecipeDeployment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionDetail {
    pub recipe: String,
    pub version: VersionView,
    pub compose_files: Vec<String>,
    pub env_sample: Vec<EnvSampleEntry>,
    pub abra_exports: Vec<(String, String)>,
    pub readme_metadata: Vec<(String, String)>,
    pub lint: Vec<LintFindingView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LintFindingView {
    pub rule: String,
    /// `error` or `warning`.
    pub level: String,
    pub service: Option<String>,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RotatedSecret {
    pub secret: GeneratedSecret,
    pub job: Option<JobSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServerView {
    pub id: i64,
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
        }
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
    pub id: i64,
    pub collective: String,
    pub domain: String,
    pub recipe: String,
    pub server: String,
    pub stack_name: String,
    pub version: Option<String>,
    pub chaos: bool,
    pub status: AppStatus,
    pub updated_at: i64,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobSummary {
    pub id: i64,
    pub app_id: i64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_back() {
        assert!(Role::Viewer < Role::Maintainer);
        assert!(Role::Maintainer < Role::Operator);
        assert!(Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn a_higher_role_grants_everything_a_lower_one_does() {
        for p in Permission::ALL {
            for w in Role::ALL.windows(2) {
                if w[0].grants(p) {
                    assert!(w[1].grants(p), "{} grants {p:?} but {} does not", w[0], w[1]);
                }
            }
        }
    }

    #[test]
    fn the_role_table() {
        use Permission::*;
        assert!(Role::Viewer.grants(ViewApps));
        assert!(!Role::Viewer.grants(OperateApps));
        assert!(Role::Maintainer.grants(ReviewReleases));
        assert!(!Role::Maintainer.grants(OperateApps));
        assert!(Role::Operator.grants(OperateApps));
        assert!(!Role::Operator.grants(ManageMembers));
        assert!(!Role::Operator.grants(ManageServers));
        assert!(Role::Admin.grants(ManageMembers));
        assert!(Role::Admin.grants(ViewAudit));
    }

    #[test]
    fn one_time_secrets_do_not_debug_print() {
        let s = OneTimeSecret("plk_supersecret".into());
        assert!(!format!("{s:?}").contains("supersecret"));
    }
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImageChange {
    pub service: String,
    pub from: String,
    pub to: String,
    /// The tag's leading number changed.
    pub major: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VariableChange {
    pub key: String,
    /// Its default (the sample's value, or "(compose default)"); none means operators must set it.
    pub default: Option<String>,
    /// In `.env.sample`, or only referenced by a compose file.
    pub in_sample: bool,
}

/// What a release changes for operators, against the previous release.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseDiff {
    pub services_added: Vec<String>,
    pub services_removed: Vec<String>,
    pub image_changes: Vec<ImageChange>,
    pub env_added: Vec<VariableChange>,
    pub env_removed: Vec<String>,
    pub secrets_added: Vec<String>,
    pub secrets_rotated: Vec<String>,
    pub volumes_removed: Vec<String>,
    /// Problems that block publishing (configs changed without a new name, malformed files).
    pub errors: Vec<String>,
    /// What operators must act on or could lose.
    pub risks: Vec<String>,
    pub lint: Vec<LintFindingView>,
    pub files_changed: Vec<String>,
    /// `major`, `minor` or `patch`.
    pub suggested_bump: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseProposalSummary {
    pub id: i64,
    pub recipe: String,
    pub version: String,
    pub bump: String,
    /// open | published | withdrawn
    pub state: String,
    pub commit: String,
    pub proposed_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub approvals: i64,
    pub approved: bool,
    pub publish_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseReviewView {
    pub id: i64,
    pub reviewer: String,
    pub collective: Option<String>,
    /// approve | request_changes | comment
    pub verdict: String,
    pub comment: String,
    pub commit: String,
    /// Counts toward the policy: an approval of the current commit by someone else than the proposer.
    pub counts: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseProposalDetail {
    pub summary: ReleaseProposalSummary,
    pub notes: String,
    pub base_version: Option<String>,
    pub branch: String,
    pub diff: ReleaseDiff,
    pub reviews: Vec<ReleaseReviewView>,
    pub required_approvals: i64,
    pub required_collectives: i64,
    pub approving_collectives: Vec<String>,
    pub changes_requested: bool,
    pub can_review: bool,
    pub is_proposer: bool,
    pub published_commit: Option<String>,
}
