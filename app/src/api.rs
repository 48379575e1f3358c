//! Server functions: the UI's calls into the server. Each one takes the caller, calls one port
//! method and maps the result; authorization and every rule live behind the port.

use crate::error::ApiError;
use crate::model::*;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use crate::error::ApiError;
    use crate::ports::{Caller, Ports};
    use leptos::prelude::*;

    /// The caller (set by the server's auth middleware) and the ports, from the request context.
    pub fn context() -> Result<(Caller, Ports), ApiError> {
        let internal = || ApiError::Internal { request_id: String::new() };
        let parts = use_context::<http::request::Parts>().ok_or_else(internal)?;
        let caller = parts.extensions.get::<Caller>().cloned().ok_or_else(internal)?;
        let ports = use_context::<Ports>().ok_or_else(internal)?;
        Ok((caller, ports))
    }

    /// Answers errors with their own HTTP status (a server function would otherwise say 500).
    pub fn respond<T>(result: Result<T, ApiError>) -> Result<T, ApiError> {
        if let Err(e) = &result {
            if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
                if let Ok(status) = http::StatusCode::from_u16(e.status()) {
                    options.set_status(status);
                }
            }
        }
        result
    }
}

#[cfg(feature = "ssr")]
macro_rules! call {
    (|$caller:ident, $ports:ident| $body:expr) => {{
        let ($caller, $ports) = ssr::context()?;
        ssr::respond($body.await)
    }};
}

#[cfg(feature = "ssr")]
fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

#[server(prefix = "/api/fn", endpoint = "me")]
pub async fn get_me() -> Result<Option<Me>, ApiError> {
    call!(|caller, ports| ports.identity.me(&caller))
}

#[server(prefix = "/api/fn", endpoint = "public_providers")]
pub async fn public_providers() -> Result<Vec<ProviderPublic>, ApiError> {
    let (_, ports) = ssr::context()?;
    ssr::respond(ports.identity.public_providers().await)
}

#[server(prefix = "/api/fn", endpoint = "list_providers")]
pub async fn list_providers() -> Result<ProvidersOverview, ApiError> {
    call!(|caller, ports| ports.identity.list_providers(&caller))
}

/// `collectives` is a comma- or space-separated list of collective slugs.
#[server(prefix = "/api/fn", endpoint = "add_provider")]
pub async fn add_provider(
    display_name: String,
    issuer_url: String,
    client_id: String,
    client_secret: String,
    groups_claim: String,
    collectives: String,
) -> Result<ProviderAdmin, ApiError> {
    let input = crate::ports::NewProvider {
        display_name,
        issuer_url,
        client_id,
        client_secret,
        groups_claim,
        collectives: split_list(&collectives),
    };
    call!(|caller, ports| ports.identity.add_provider(&caller, input))
}

#[server(prefix = "/api/fn", endpoint = "set_provider_collectives")]
pub async fn set_provider_collectives(provider_id: i64, collectives: String) -> Result<ProviderAdmin, ApiError> {
    call!(|caller, ports| ports.identity.set_provider_collectives(&caller, provider_id, split_list(&collectives)))
}

#[server(prefix = "/api/fn", endpoint = "remove_provider")]
pub async fn remove_provider(provider_id: i64) -> Result<(), ApiError> {
    call!(|caller, ports| ports.identity.remove_provider(&caller, provider_id))
}

#[server(prefix = "/api/fn", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserSummary>, ApiError> {
    call!(|caller, ports| ports.identity.list_users(&caller))
}

#[server(prefix = "/api/fn", endpoint = "set_federation_admin")]
pub async fn set_federation_admin(user_id: i64, admin: bool) -> Result<(), ApiError> {
    call!(|caller, ports| ports.identity.set_federation_admin(&caller, user_id, admin))
}

#[server(prefix = "/api/fn", endpoint = "link_users")]
pub async fn link_users(keep_user_id: i64, merge_user_id: i64) -> Result<(), ApiError> {
    call!(|caller, ports| ports.identity.link_users(&caller, keep_user_id, merge_user_id))
}

#[server(prefix = "/api/fn", endpoint = "my_identities")]
pub async fn my_identities() -> Result<Vec<IdentityView>, ApiError> {
    call!(|caller, ports| ports.identity.my_identities(&caller))
}

#[server(prefix = "/api/fn", endpoint = "list_api_tokens")]
pub async fn list_api_tokens() -> Result<Vec<ApiTokenSummary>, ApiError> {
    call!(|caller, ports| ports.identity.list_api_tokens(&caller))
}

/// `expires_in_days` empty or 0 means the token does not expire.
#[server(prefix = "/api/fn", endpoint = "create_api_token")]
pub async fn create_api_token(
    name: String,
    collective: String,
    role: Role,
    expires_in_days: Option<i64>,
) -> Result<CreatedApiToken, ApiError> {
    let input =
        crate::ports::NewApiToken { name, collective, role, expires_in_days: expires_in_days.filter(|d| *d > 0) };
    call!(|caller, ports| ports.identity.create_api_token(&caller, input))
}

#[server(prefix = "/api/fn", endpoint = "revoke_api_token")]
pub async fn revoke_api_token(token_id: i64) -> Result<(), ApiError> {
    call!(|caller, ports| ports.identity.revoke_api_token(&caller, token_id))
}

#[server(prefix = "/api/fn", endpoint = "list_collectives")]
pub async fn list_collectives() -> Result<Vec<CollectiveSummary>, ApiError> {
    call!(|caller, ports| ports.collectives.list_collectives(&caller))
}

#[server(prefix = "/api/fn", endpoint = "get_collective")]
pub async fn get_collective(slug: String) -> Result<CollectiveDetail, ApiError> {
    call!(|caller, ports| ports.collectives.get_collective(&caller, &slug))
}

#[server(prefix = "/api/fn", endpoint = "create_collective")]
pub async fn create_collective(slug: String, name: String, description: String) -> Result<CollectiveSummary, ApiError> {
    call!(|caller, ports| ports.collectives.create_collective(&caller, slug, name, description))
}

#[server(prefix = "/api/fn", endpoint = "update_collective")]
pub async fn update_collective(slug: String, name: String, description: String) -> Result<CollectiveSummary, ApiError> {
    call!(|caller, ports| ports.collectives.update_collective(&caller, &slug, name, description))
}

#[server(prefix = "/api/fn", endpoint = "set_member_role")]
pub async fn set_member_role(slug: String, user_id: i64, role: Role) -> Result<(), ApiError> {
    call!(|caller, ports| ports.collectives.set_member_role(&caller, &slug, user_id, role))
}

#[server(prefix = "/api/fn", endpoint = "remove_member")]
pub async fn remove_member(slug: String, user_id: i64) -> Result<(), ApiError> {
    call!(|caller, ports| ports.collectives.remove_member(&caller, &slug, user_id))
}

#[server(prefix = "/api/fn", endpoint = "create_invitation")]
pub async fn create_invitation(slug: String, role: Role) -> Result<CreatedInvitation, ApiError> {
    call!(|caller, ports| ports.collectives.create_invitation(&caller, &slug, role))
}

#[server(prefix = "/api/fn", endpoint = "revoke_invitation")]
pub async fn revoke_invitation(slug: String, invitation_id: i64) -> Result<(), ApiError> {
    call!(|caller, ports| ports.collectives.revoke_invitation(&caller, &slug, invitation_id))
}

#[server(prefix = "/api/fn", endpoint = "accept_invitation")]
pub async fn accept_invitation(token: String) -> Result<CollectiveSummary, ApiError> {
    call!(|caller, ports| ports.collectives.accept_invitation(&caller, &token))
}

#[server(prefix = "/api/fn", endpoint = "add_group_mapping")]
pub async fn add_group_mapping(
    slug: String,
    provider_id: i64,
    value: String,
    role: Role,
) -> Result<GroupMapping, ApiError> {
    call!(|caller, ports| ports.collectives.add_group_mapping(&caller, &slug, provider_id, value, role))
}

#[server(prefix = "/api/fn", endpoint = "remove_group_mapping")]
pub async fn remove_group_mapping(slug: String, mapping_id: i64) -> Result<(), ApiError> {
    call!(|caller, ports| ports.collectives.remove_group_mapping(&caller, &slug, mapping_id))
}

#[server(prefix = "/api/fn", endpoint = "query_audit")]
pub async fn query_audit(#[server(default)] filter: AuditFilter) -> Result<AuditPage, ApiError> {
    call!(|caller, ports| ports.audit.query_audit(&caller, filter))
}
