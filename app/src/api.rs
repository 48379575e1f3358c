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

// ---- Recipes ----

#[server(prefix = "/api/fn", endpoint = "list_recipes")]
pub async fn list_recipes() -> Result<Vec<RecipeSummary>, ApiError> {
    call!(|caller, ports| ports.recipes.list_recipes(&caller))
}

#[server(prefix = "/api/fn", endpoint = "get_recipe")]
pub async fn get_recipe(name: String) -> Result<RecipeDetail, ApiError> {
    call!(|caller, ports| ports.recipes.get_recipe(&caller, &name))
}

#[server(prefix = "/api/fn", endpoint = "get_recipe_version")]
pub async fn get_recipe_version(name: String, tag: String) -> Result<VersionDetail, ApiError> {
    call!(|caller, ports| ports.recipes.get_recipe_version(&caller, &name, &tag))
}

/// `credential_kind`: empty, `https` (username + token) or `ssh` (username + private key).
#[server(prefix = "/api/fn", endpoint = "register_recipe")]
pub async fn register_recipe(
    repository: String,
    #[server(default)] name: String,
    #[server(default)] collective: String,
    #[server(default)] credential_kind: String,
    #[server(default)] credential_username: String,
    #[server(default)] credential_secret: String,
) -> Result<RecipeSummary, ApiError> {
    let input = crate::ports::NewRecipe {
        repository,
        name: Some(name).filter(|n| !n.trim().is_empty()),
        collective: Some(collective).filter(|c| !c.trim().is_empty()),
        credential_kind: Some(credential_kind).filter(|c| !c.trim().is_empty()),
        credential_username,
        credential_secret,
    };
    call!(|caller, ports| ports.recipes.register_recipe(&caller, input))
}

#[server(prefix = "/api/fn", endpoint = "fetch_recipe")]
pub async fn fetch_recipe(name: String) -> Result<(), ApiError> {
    call!(|caller, ports| ports.recipes.fetch_recipe(&caller, &name))
}

/// `users`: user ids; `collectives`: slugs; both comma- or space-separated.
#[server(prefix = "/api/fn", endpoint = "set_recipe_maintainers")]
pub async fn set_recipe_maintainers(
    name: String,
    #[server(default)] users: String,
    #[server(default)] collectives: String,
) -> Result<(), ApiError> {
    let mut ids = Vec::new();
    for u in split_list(&users) {
        ids.push(u.parse::<i64>().map_err(|_| ApiError::invalid("users", format!("{u:?} is not a user id")))?);
    }
    call!(|caller, ports| ports.recipes.set_recipe_maintainers(&caller, &name, ids, split_list(&collectives)))
}

// ---- Release review ----

#[server(prefix = "/api/fn", endpoint = "list_releases")]
pub async fn list_releases(recipe: String) -> Result<Vec<ReleaseProposalSummary>, ApiError> {
    call!(|caller, ports| ports.recipes.list_releases(&caller, &recipe))
}

/// Empty `commit`, `bump`, `version` take the branch's head, the suggested bump, the next version.
#[server(prefix = "/api/fn", endpoint = "open_release")]
pub async fn open_release(
    recipe: String,
    #[server(default)] commit: String,
    #[server(default)] bump: String,
    #[server(default)] version: String,
    notes: String,
) -> Result<ReleaseProposalDetail, ApiError> {
    let input = crate::ports::NewRelease { commit, bump, version, notes };
    call!(|caller, ports| ports.recipes.open_release(&caller, &recipe, input))
}

#[server(prefix = "/api/fn", endpoint = "get_release")]
pub async fn get_release(id: i64) -> Result<ReleaseProposalDetail, ApiError> {
    call!(|caller, ports| ports.recipes.get_release(&caller, id))
}

/// `verdict`: approve, request_changes or comment.
#[server(prefix = "/api/fn", endpoint = "review_release")]
pub async fn review_release(
    id: i64,
    verdict: String,
    #[server(default)] comment: String,
) -> Result<ReleaseProposalDetail, ApiError> {
    call!(|caller, ports| ports.recipes.review_release(&caller, id, &verdict, &comment))
}

/// Empty `commit` means the branch's current head; empty `notes` keeps them.
#[server(prefix = "/api/fn", endpoint = "update_release")]
pub async fn update_release(
    id: i64,
    #[server(default)] commit: String,
    #[server(default)] notes: String,
) -> Result<ReleaseProposalDetail, ApiError> {
    call!(|caller, ports| ports.recipes.update_release(&caller, id, &commit, &notes))
}

#[server(prefix = "/api/fn", endpoint = "withdraw_release")]
pub async fn withdraw_release(id: i64) -> Result<(), ApiError> {
    call!(|caller, ports| ports.recipes.withdraw_release(&caller, id))
}

#[server(prefix = "/api/fn", endpoint = "publish_release")]
pub async fn publish_release(id: i64) -> Result<ReleaseProposalDetail, ApiError> {
    call!(|caller, ports| ports.recipes.publish_release(&caller, id))
}

// ---- Servers and apps ----

#[server(prefix = "/api/fn", endpoint = "list_servers")]
pub async fn list_servers(slug: String) -> Result<Vec<ServerView>, ApiError> {
    call!(|caller, ports| ports.apps.list_servers(&caller, &slug))
}

#[server(prefix = "/api/fn", endpoint = "add_server")]
pub async fn add_server(
    slug: String,
    name: String,
    kind: String,
    address: String,
    #[server(default)] tls_ca: String,
    #[server(default)] tls_cert: String,
    #[server(default)] private_key: String,
) -> Result<ServerView, ApiError> {
    let some = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    let input = crate::ports::NewServer {
        name,
        kind,
        address,
        tls_ca: some(tls_ca),
        tls_cert: some(tls_cert),
        private_key: some(private_key),
    };
    call!(|caller, ports| ports.apps.add_server(&caller, &slug, input))
}

#[server(prefix = "/api/fn", endpoint = "remove_server")]
pub async fn remove_server(slug: String, name: String) -> Result<(), ApiError> {
    call!(|caller, ports| ports.apps.remove_server(&caller, &slug, &name))
}

#[server(prefix = "/api/fn", endpoint = "list_apps")]
pub async fn list_apps(slug: String) -> Result<Vec<AppSummary>, ApiError> {
    call!(|caller, ports| ports.apps.list_apps(&caller, &slug))
}

/// `version` empty means the recipe's latest version.
#[server(prefix = "/api/fn", endpoint = "create_app")]
pub async fn create_app(
    slug: String,
    server: String,
    recipe: String,
    domain: String,
    #[server(default)] version: String,
) -> Result<AppSummary, ApiError> {
    let version = Some(version).filter(|v| !v.trim().is_empty());
    call!(|caller, ports| ports.apps.create_app(&caller, &slug, &server, &recipe, &domain, version))
}

#[server(prefix = "/api/fn", endpoint = "get_app")]
pub async fn get_app(slug: String, domain: String) -> Result<AppDetail, ApiError> {
    call!(|caller, ports| ports.apps.get_app(&caller, &slug, &domain))
}

#[server(prefix = "/api/fn", endpoint = "set_app_env")]
pub async fn set_app_env(slug: String, domain: String, env: String) -> Result<(), ApiError> {
    call!(|caller, ports| ports.apps.set_app_env(&caller, &slug, &domain, &env))
}

/// `files`: the overlays to enable (`compose.mariadb.yml`…); absent means none.
#[server(prefix = "/api/fn", endpoint = "set_app_overlays")]
pub async fn set_app_overlays(
    slug: String,
    domain: String,
    #[server(default)] files: Vec<String>,
) -> Result<(), ApiError> {
    call!(|caller, ports| ports.apps.set_app_overlays(&caller, &slug, &domain, files))
}

/// One abra env file: its name is the app's domain followed by `.env`.
#[server(prefix = "/api/fn", endpoint = "import_app")]
pub async fn import_app(
    slug: String,
    server: String,
    file_name: String,
    content: String,
) -> Result<Vec<AppSummary>, ApiError> {
    call!(|caller, ports| ports.apps.import_apps(&caller, &slug, &server, vec![(file_name, content)]))
}

#[server(prefix = "/api/fn", endpoint = "export_app")]
pub async fn export_app(slug: String, domain: String) -> Result<String, ApiError> {
    call!(|caller, ports| ports.apps.export_app(&caller, &slug, &domain))
}

#[server(prefix = "/api/fn", endpoint = "delete_app")]
pub async fn delete_app(slug: String, domain: String) -> Result<(), ApiError> {
    call!(|caller, ports| ports.apps.delete_app(&caller, &slug, &domain))
}

/// What `kind` (deploy, upgrade, rollback, redeploy, chaos, undeploy) would do, without doing it.
#[server(prefix = "/api/fn", endpoint = "preview_job")]
pub async fn preview_job(
    slug: String,
    domain: String,
    kind: String,
    #[server(default)] target: String,
) -> Result<DeployPreview, ApiError> {
    let target = Some(target).filter(|t| !t.trim().is_empty());
    call!(|caller, ports| ports.apps.preview(&caller, &slug, &domain, &kind, target))
}

/// `options` as `options[remove_volumes]=true`, `options[timeout_secs]=600`…
#[server(prefix = "/api/fn", endpoint = "start_job")]
pub async fn start_job(
    slug: String,
    domain: String,
    kind: String,
    #[server(default)] target: String,
    #[server(default)] options: JobOptions,
) -> Result<JobSummary, ApiError> {
    let target = Some(target).filter(|t| !t.trim().is_empty());
    call!(|caller, ports| ports.apps.start_job(&caller, &slug, &domain, &kind, target, options))
}

#[server(prefix = "/api/fn", endpoint = "get_job")]
pub async fn get_job(id: i64) -> Result<JobDetail, ApiError> {
    call!(|caller, ports| ports.apps.get_job(&caller, id))
}

/// `only` empty generates every missing secret.
#[server(prefix = "/api/fn", endpoint = "generate_secrets")]
pub async fn generate_secrets(
    slug: String,
    domain: String,
    #[server(default)] only: String,
) -> Result<Vec<GeneratedSecret>, ApiError> {
    let only = Some(only).filter(|o| !o.trim().is_empty());
    call!(|caller, ports| ports.apps.generate_secrets(&caller, &slug, &domain, only))
}

#[server(prefix = "/api/fn", endpoint = "insert_secret")]
pub async fn insert_secret(slug: String, domain: String, name: String, value: String) -> Result<(), ApiError> {
    call!(|caller, ports| ports.apps.insert_secret(&caller, &slug, &domain, &name, &value))
}

#[server(prefix = "/api/fn", endpoint = "rotate_secret")]
pub async fn rotate_secret(slug: String, domain: String, name: String) -> Result<RotatedSecret, ApiError> {
    call!(|caller, ports| ports.apps.rotate_secret(&caller, &slug, &domain, &name))
}
