//! People, identity providers, collectives, memberships, invitations and API tokens as the
//! pages and the API show them.

use super::ids::*;
use super::roles::{Permission, Role};
use serde::{Deserialize, Serialize};
use std::fmt;

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
    pub user_id: UserId,
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
    pub id: ProviderId,
    pub display_name: String,
}

/// An identity provider as a federation admin sees it. The client secret never leaves the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProviderAdmin {
    pub id: ProviderId,
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
    pub user_id: UserId,
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
    pub id: MappingId,
    pub provider_id: ProviderId,
    pub provider_name: String,
    pub claim: String,
    pub value: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvitationSummary {
    pub id: InvitationId,
    pub role: Role,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedInvitation {
    pub id: InvitationId,
    pub link: OneTimeSecret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiTokenSummary {
    pub id: TokenId,
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
    pub id: UserId,
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
    pub provider_id: ProviderId,
    pub provider_name: String,
    pub subject: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}
