//! The narrow service interfaces the server functions call (server side only).
//!
//! `app` cannot depend on `server` (the server depends on `app` for its pages), so the server
//! implements these traits and hands them to Leptos through context as one [`Ports`] value.

use crate::error::ApiError;
use crate::model::*;
use async_trait::async_trait;
use std::sync::Arc;

/// Who is calling and from where: built once per request by the server's authentication
/// middleware and stored in the request's extensions. Nothing else reads cookies or tokens.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
    pub client_addr: String,
}

#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    /// A person signed in through a browser session.
    User(UserPrincipal),
    /// An API token: acts for its creator, in one collective, with at most the token's role.
    Token(TokenPrincipal),
}

#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user_id: i64,
    pub display_name: String,
    pub is_federation_admin: bool,
}

#[derive(Debug, Clone)]
pub struct TokenPrincipal {
    pub token_id: i64,
    pub user_id: i64,
    pub display_name: String,
    pub collective_id: i64,
    pub role: Role,
    /// A federation admin's token still acts only in its collective, as at most its role.
    pub owner_is_federation_admin: bool,
}

impl Caller {
    pub fn user_id(&self) -> Option<i64> {
        match &self.principal {
            Principal::Anonymous => None,
            Principal::User(u) => Some(u.user_id),
            Principal::Token(t) => Some(t.user_id),
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = (http::StatusCode, &'static str);

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Only missing when the authentication middleware is not installed: a wiring bug.
        parts.extensions.get::<Caller>().cloned().ok_or((http::StatusCode::INTERNAL_SERVER_ERROR, "no caller"))
    }
}

#[async_trait]
pub trait IdentityPort: Send + Sync {
    async fn me(&self, caller: &Caller) -> Result<Option<Me>, ApiError>;
    async fn public_providers(&self) -> Result<Vec<ProviderPublic>, ApiError>;
    async fn list_providers(&self, caller: &Caller) -> Result<ProvidersOverview, ApiError>;
    async fn add_provider(&self, caller: &Caller, input: NewProvider) -> Result<ProviderAdmin, ApiError>;
    async fn set_provider_collectives(
        &self,
        caller: &Caller,
        provider_id: i64,
        collectives: Vec<String>,
    ) -> Result<ProviderAdmin, ApiError>;
    async fn remove_provider(&self, caller: &Caller, provider_id: i64) -> Result<(), ApiError>;
    async fn list_users(&self, caller: &Caller) -> Result<Vec<UserSummary>, ApiError>;
    async fn set_federation_admin(&self, caller: &Caller, user_id: i64, admin: bool) -> Result<(), ApiError>;
    async fn link_users(&self, caller: &Caller, keep_user_id: i64, merge_user_id: i64) -> Result<(), ApiError>;
    async fn my_identities(&self, caller: &Caller) -> Result<Vec<IdentityView>, ApiError>;
    async fn list_api_tokens(&self, caller: &Caller) -> Result<Vec<ApiTokenSummary>, ApiError>;
    async fn create_api_token(&self, caller: &Caller, input: NewApiToken) -> Result<CreatedApiToken, ApiError>;
    async fn revoke_api_token(&self, caller: &Caller, token_id: i64) -> Result<(), ApiError>;
}

/// What a federation admin enters to add an identity provider. The secret is sent once by the
/// browser and kept encrypted by the server; it is never sent back.
#[derive(Clone)]
pub struct NewProvider {
    pub display_name: String,
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub groups_claim: String,
    pub collectives: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub name: String,
    pub collective: String,
    pub role: Role,
    pub expires_in_days: Option<i64>,
}

#[async_trait]
pub trait CollectivesPort: Send + Sync {
    async fn list_collectives(&self, caller: &Caller) -> Result<Vec<CollectiveSummary>, ApiError>;
    async fn get_collective(&self, caller: &Caller, slug: &str) -> Result<CollectiveDetail, ApiError>;
    async fn create_collective(
        &self,
        caller: &Caller,
        slug: String,
        name: String,
        description: String,
    ) -> Result<CollectiveSummary, ApiError>;
    async fn update_collective(
        &self,
        caller: &Caller,
        slug: &str,
        name: String,
        description: String,
    ) -> Result<CollectiveSummary, ApiError>;
    async fn set_member_role(&self, caller: &Caller, slug: &str, user_id: i64, role: Role) -> Result<(), ApiError>;
    async fn remove_member(&self, caller: &Caller, slug: &str, user_id: i64) -> Result<(), ApiError>;
    async fn create_invitation(&self, caller: &Caller, slug: &str, role: Role) -> Result<CreatedInvitation, ApiError>;
    async fn revoke_invitation(&self, caller: &Caller, slug: &str, invitation_id: i64) -> Result<(), ApiError>;
    async fn accept_invitation(&self, caller: &Caller, token: &str) -> Result<CollectiveSummary, ApiError>;
    async fn add_group_mapping(
        &self,
        caller: &Caller,
        slug: &str,
        provider_id: i64,
        value: String,
        role: Role,
    ) -> Result<GroupMapping, ApiError>;
    async fn remove_group_mapping(&self, caller: &Caller, slug: &str, mapping_id: i64) -> Result<(), ApiError>;
}

#[async_trait]
pub trait AuditPort: Send + Sync {
    async fn query_audit(&self, caller: &Caller, filter: AuditFilter) -> Result<AuditPage, ApiError>;
}

/// What a maintainer enters to register a recipe. The credential is kept encrypted and never
/// shown again.
#[derive(Clone, Default)]
pub struct NewRecipe {
    pub repository: String,
    pub name: Option<String>,
    /// A collective (slug) that maintains it together with the caller.
    pub collective: Option<String>,
    /// `https` (username + token) or `ssh` (username + private key), or none.
    pub credential_kind: Option<String>,
    pub credential_username: String,
    pub credential_secret: String,
}

#[async_trait]
pub trait RecipesPort: Send + Sync {
    async fn list_recipes(&self, caller: &Caller) -> Result<Vec<RecipeSummary>, ApiError>;
    async fn get_recipe(&self, caller: &Caller, name: &str) -> Result<RecipeDetail, ApiError>;
    async fn get_recipe_version(&self, caller: &Caller, name: &str, tag: &str) -> Result<VersionDetail, ApiError>;
    async fn register_recipe(&self, caller: &Caller, input: NewRecipe) -> Result<RecipeSummary, ApiError>;
    async fn fetch_recipe(&self, caller: &Caller, name: &str) -> Result<(), ApiError>;
    async fn set_recipe_maintainers(
        &self,
        caller: &Caller,
        name: &str,
        users: Vec<i64>,
        collectives: Vec<String>,
    ) -> Result<(), ApiError>;
    async fn list_releases(&self, caller: &Caller, recipe: &str) -> Result<Vec<ReleaseProposalSummary>, ApiError>;
    async fn open_release(
        &self,
        caller: &Caller,
        recipe: &str,
        input: NewRelease,
    ) -> Result<ReleaseProposalDetail, ApiError>;
    async fn get_release(&self, caller: &Caller, id: i64) -> Result<ReleaseProposalDetail, ApiError>;
    async fn review_release(
        &self,
        caller: &Caller,
        id: i64,
        verdict: &str,
        comment: &str,
    ) -> Result<ReleaseProposalDetail, ApiError>;
    async fn update_release(
        &self,
        caller: &Caller,
        id: i64,
        commit: &str,
        notes: &str,
    ) -> Result<ReleaseProposalDetail, ApiError>;
    async fn withdraw_release(&self, caller: &Caller, id: i64) -> Result<(), ApiError>;
    async fn publish_release(&self, caller: &Caller, id: i64) -> Result<ReleaseProposalDetail, ApiError>;
}

/// A release proposal as a maintainer opens it; empty fields take Potluck's suggestion (the
/// branch's head, the bump the change suggests, the next version).
#[derive(Clone, Debug, Default)]
pub struct NewRelease {
    pub commit: String,
    pub bump: String,
    pub version: String,
    pub notes: String,
}

/// What a collective admin enters to register a swarm manager. The private key is sealed and
/// never shown again.
#[derive(Clone)]
pub struct NewServer {
    pub name: String,
    /// `unix`, `tcp` (TLS) or `ssh`.
    pub kind: String,
    pub address: String,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    /// The TLS client key or the SSH private key (PEM).
    pub private_key: Option<String>,
}

#[async_trait]
pub trait AppsPort: Send + Sync {
    async fn list_servers(&self, caller: &Caller, slug: &str) -> Result<Vec<ServerView>, ApiError>;
    async fn add_server(&self, caller: &Caller, slug: &str, input: NewServer) -> Result<ServerView, ApiError>;
    async fn remove_server(&self, caller: &Caller, slug: &str, name: &str) -> Result<(), ApiError>;
    async fn list_apps(&self, caller: &Caller, slug: &str) -> Result<Vec<AppSummary>, ApiError>;
    async fn create_app(
        &self,
        caller: &Caller,
        slug: &str,
        server: &str,
        recipe: &str,
        domain: &str,
        version: Option<String>,
    ) -> Result<AppSummary, ApiError>;
    async fn get_app(&self, caller: &Caller, slug: &str, domain: &str) -> Result<AppDetail, ApiError>;
    async fn set_app_env(&self, caller: &Caller, slug: &str, domain: &str, env: &str) -> Result<(), ApiError>;
    async fn set_app_overlays(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        files: Vec<String>,
    ) -> Result<(), ApiError>;
    /// `files`: (file name, content) of abra env files, e.g. `~/.abra/servers/<server>/*.env`.
    async fn import_apps(
        &self,
        caller: &Caller,
        slug: &str,
        server: &str,
        files: Vec<(String, String)>,
    ) -> Result<Vec<AppSummary>, ApiError>;
    async fn export_app(&self, caller: &Caller, slug: &str, domain: &str) -> Result<String, ApiError>;
    async fn delete_app(&self, caller: &Caller, slug: &str, domain: &str) -> Result<(), ApiError>;
    async fn preview(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        kind: &str,
        target: Option<String>,
    ) -> Result<DeployPreview, ApiError>;
    async fn start_job(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        kind: &str,
        target: Option<String>,
        options: JobOptions,
    ) -> Result<JobSummary, ApiError>;
    async fn get_job(&self, caller: &Caller, id: i64) -> Result<JobDetail, ApiError>;
    async fn generate_secrets(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        only: Option<String>,
    ) -> Result<Vec<GeneratedSecret>, ApiError>;
    async fn insert_secret(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        name: &str,
        value: &str,
    ) -> Result<(), ApiError>;
    async fn rotate_secret(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        name: &str,
    ) -> Result<RotatedSecret, ApiError>;
}

/// Everything the server functions can reach, provided through Leptos context.
#[derive(Clone)]
pub struct Ports {
    pub identity: Arc<dyn IdentityPort>,
    pub collectives: Arc<dyn CollectivesPort>,
    pub audit: Arc<dyn AuditPort>,
    pub recipes: Arc<dyn RecipesPort>,
    pub apps: Arc<dyn AppsPort>,
}
