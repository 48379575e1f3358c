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
        use Permission::*;
        let needed = match permission {
            ViewCollective | ViewRecipes | ViewApps | ViewServers | CreateOwnApiToken => Role::Viewer,
            MaintainRecipes | ReviewReleases => Role::Maintainer,
            ManageApps | OperateApps | ManageSecrets | RunCommands => Role::Operator,
            ManageMembers | ManageGroupMappings | ManageServers | ViewAudit | EditCollective => Role::Admin,
        };
        self >= needed
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
