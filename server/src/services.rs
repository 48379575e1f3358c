//! The ports the pages' server functions call, implemented over the domain modules. Each method
//! calls one service function and turns its error into what the caller may hear.

use crate::error::Error;
use crate::state::SharedState;
use crate::{apps, audit_service, collectives, identity, recipes};
use async_trait::async_trait;
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ports::*;
use std::sync::Arc;

#[derive(Clone)]
pub struct Services(pub SharedState);

impl Services {
    pub fn ports(state: SharedState) -> Ports {
        let s = Arc::new(Services(state));
        Ports { identity: s.clone(), collectives: s.clone(), audit: s.clone(), recipes: s.clone(), apps: s }
    }
}

fn api<T>(caller: &Caller, r: Result<T, Error>) -> Result<T, ApiError> {
    r.map_err(|e| e.into_api(&caller.request_id))
}

#[async_trait]
impl IdentityPort for Services {
    async fn me(&self, caller: &Caller) -> Result<Option<Me>, ApiError> {
        api(caller, identity::users::me(&self.0, caller).await)
    }
    async fn public_providers(&self) -> Result<Vec<ProviderPublic>, ApiError> {
        identity::providers::public_providers(&self.0).await.map_err(|e| e.into_api("-"))
    }
    async fn list_providers(&self, caller: &Caller) -> Result<ProvidersOverview, ApiError> {
        api(caller, identity::providers::list_providers(&self.0, caller).await)
    }
    async fn add_provider(&self, caller: &Caller, input: NewProvider) -> Result<ProviderAdmin, ApiError> {
        api(caller, identity::providers::add_provider(&self.0, caller, input).await)
    }
    async fn set_provider_collectives(
        &self,
        caller: &Caller,
        id: i64,
        collectives: Vec<String>,
    ) -> Result<ProviderAdmin, ApiError> {
        api(caller, identity::providers::set_provider_collectives(&self.0, caller, id, collectives).await)
    }
    async fn remove_provider(&self, caller: &Caller, id: i64) -> Result<(), ApiError> {
        api(caller, identity::providers::remove_provider(&self.0, caller, id).await)
    }
    async fn list_users(&self, caller: &Caller) -> Result<Vec<UserSummary>, ApiError> {
        api(caller, identity::users::list_users(&self.0, caller).await)
    }
    async fn set_federation_admin(&self, caller: &Caller, user_id: i64, admin: bool) -> Result<(), ApiError> {
        api(caller, identity::users::set_federation_admin(&self.0, caller, user_id, admin).await)
    }
    async fn link_users(&self, caller: &Caller, keep: i64, merge: i64) -> Result<(), ApiError> {
        api(caller, identity::users::link_users(&self.0, caller, keep, merge).await)
    }
    async fn my_identities(&self, caller: &Caller) -> Result<Vec<IdentityView>, ApiError> {
        api(caller, identity::users::my_identities(&self.0, caller).await)
    }
    async fn list_api_tokens(&self, caller: &Caller) -> Result<Vec<ApiTokenSummary>, ApiError> {
        api(caller, identity::tokens::list(&self.0, caller).await)
    }
    async fn create_api_token(&self, caller: &Caller, input: NewApiToken) -> Result<CreatedApiToken, ApiError> {
        api(caller, identity::tokens::create(&self.0, caller, input).await)
    }
    async fn revoke_api_token(&self, caller: &Caller, token_id: i64) -> Result<(), ApiError> {
        api(caller, identity::tokens::revoke(&self.0, caller, token_id).await)
    }
}

#[async_trait]
impl CollectivesPort for Services {
    async fn list_collectives(&self, caller: &Caller) -> Result<Vec<CollectiveSummary>, ApiError> {
        api(caller, collectives::list_collectives(&self.0, caller).await)
    }
    async fn get_collective(&self, caller: &Caller, slug: &str) -> Result<CollectiveDetail, ApiError> {
        api(caller, collectives::get_collective(&self.0, caller, slug).await)
    }
    async fn create_collective(
        &self,
        caller: &Caller,
        slug: String,
        name: String,
        description: String,
    ) -> Result<CollectiveSummary, ApiError> {
        api(caller, collectives::create_collective(&self.0, caller, slug, name, description).await)
    }
    async fn update_collective(
        &self,
        caller: &Caller,
        slug: &str,
        name: String,
        description: String,
    ) -> Result<CollectiveSummary, ApiError> {
        api(caller, collectives::update_collective(&self.0, caller, slug, name, description).await)
    }
    async fn set_member_role(&self, caller: &Caller, slug: &str, user_id: i64, role: Role) -> Result<(), ApiError> {
        api(caller, collectives::set_member_role(&self.0, caller, slug, user_id, role).await)
    }
    async fn remove_member(&self, caller: &Caller, slug: &str, user_id: i64) -> Result<(), ApiError> {
        api(caller, collectives::remove_member(&self.0, caller, slug, user_id).await)
    }
    async fn create_invitation(&self, caller: &Caller, slug: &str, role: Role) -> Result<CreatedInvitation, ApiError> {
        api(caller, collectives::create_invitation(&self.0, caller, slug, role).await)
    }
    async fn revoke_invitation(&self, caller: &Caller, slug: &str, id: i64) -> Result<(), ApiError> {
        api(caller, collectives::revoke_invitation(&self.0, caller, slug, id).await)
    }
    async fn accept_invitation(&self, caller: &Caller, token: &str) -> Result<CollectiveSummary, ApiError> {
        api(caller, collectives::accept_invitation(&self.0, caller, token).await)
    }
    async fn add_group_mapping(
        &self,
        caller: &Caller,
        slug: &str,
        provider_id: i64,
        value: String,
        role: Role,
    ) -> Result<GroupMapping, ApiError> {
        api(caller, collectives::add_group_mapping(&self.0, caller, slug, provider_id, value, role).await)
    }
    async fn remove_group_mapping(&self, caller: &Caller, slug: &str, id: i64) -> Result<(), ApiError> {
        api(caller, collectives::remove_group_mapping(&self.0, caller, slug, id).await)
    }
}

#[async_trait]
impl AuditPort for Services {
    async fn query_audit(&self, caller: &Caller, filter: AuditFilter) -> Result<AuditPage, ApiError> {
        api(caller, audit_service::query_audit(&self.0, caller, filter).await)
    }
}

#[async_trait]
impl RecipesPort for Services {
    async fn list_recipes(&self, caller: &Caller) -> Result<Vec<RecipeSummary>, ApiError> {
        api(caller, recipes::inspect::list(&self.0, caller).await)
    }
    async fn get_recipe(&self, caller: &Caller, name: &str) -> Result<RecipeDetail, ApiError> {
        api(caller, recipes::inspect::detail(&self.0, caller, name).await)
    }
    async fn get_recipe_version(&self, caller: &Caller, name: &str, tag: &str) -> Result<VersionDetail, ApiError> {
        api(caller, recipes::inspect::version_detail(&self.0, caller, name, tag).await)
    }
    async fn register_recipe(&self, caller: &Caller, input: NewRecipe) -> Result<RecipeSummary, ApiError> {
        let r = async {
            let credential = recipes::store::Credential::from_input(&input)?;
            let row = recipes::store::register(
                &self.0,
                caller,
                &input.repository,
                input.name.as_deref(),
                input.collective.as_deref(),
                credential,
            )
            .await?;
            recipes::inspect::summary(&self.0, row).await
        };
        api(caller, r.await)
    }
    async fn fetch_recipe(&self, caller: &Caller, name: &str) -> Result<(), ApiError> {
        api(caller, recipes::store::fetch_now(&self.0, caller, name).await)
    }
    async fn set_recipe_maintainers(
        &self,
        caller: &Caller,
        name: &str,
        users: Vec<i64>,
        collectives: Vec<String>,
    ) -> Result<(), ApiError> {
        api(caller, recipes::store::set_maintainers(&self.0, caller, name, &users, &collectives).await)
    }
    async fn list_releases(&self, caller: &Caller, recipe: &str) -> Result<Vec<ReleaseProposalSummary>, ApiError> {
        api(caller, recipes::review::list(&self.0, caller, recipe).await)
    }
    async fn open_release(
        &self,
        caller: &Caller,
        recipe: &str,
        input: NewRelease,
    ) -> Result<ReleaseProposalDetail, ApiError> {
        let opening = recipes::review::Opening {
            commit: input.commit,
            bump: input.bump,
            version: input.version,
            notes: input.notes,
        };
        api(caller, recipes::review::open(&self.0, caller, recipe, opening).await)
    }
    async fn get_release(&self, caller: &Caller, id: i64) -> Result<ReleaseProposalDetail, ApiError> {
        api(caller, recipes::review::detail(&self.0, caller, id).await)
    }
    async fn review_release(
        &self,
        caller: &Caller,
        id: i64,
        verdict: &str,
        comment: &str,
    ) -> Result<ReleaseProposalDetail, ApiError> {
        api(caller, recipes::review::review(&self.0, caller, id, verdict, comment).await)
    }
    async fn update_release(
        &self,
        caller: &Caller,
        id: i64,
        commit: &str,
        notes: &str,
    ) -> Result<ReleaseProposalDetail, ApiError> {
        api(caller, recipes::review::update(&self.0, caller, id, commit, notes).await)
    }
    async fn withdraw_release(&self, caller: &Caller, id: i64) -> Result<(), ApiError> {
        api(caller, recipes::review::withdraw(&self.0, caller, id).await)
    }
    async fn publish_release(&self, caller: &Caller, id: i64) -> Result<ReleaseProposalDetail, ApiError> {
        api(caller, recipes::review::publish(&self.0, caller, id).await)
    }
}

#[async_trait]
impl AppsPort for Services {
    async fn list_servers(&self, caller: &Caller, slug: &str) -> Result<Vec<ServerView>, ApiError> {
        api(caller, apps::servers::list(&self.0, caller, slug).await)
    }
    async fn add_server(&self, caller: &Caller, slug: &str, input: NewServer) -> Result<ServerView, ApiError> {
        api(caller, apps::servers::add(&self.0, caller, slug, input).await)
    }
    async fn remove_server(&self, caller: &Caller, slug: &str, name: &str) -> Result<(), ApiError> {
        api(caller, apps::servers::remove(&self.0, caller, slug, name).await)
    }
    async fn list_apps(&self, caller: &Caller, slug: &str) -> Result<Vec<AppSummary>, ApiError> {
        api(caller, apps::apps::list(&self.0, caller, slug).await)
    }
    async fn create_app(
        &self,
        caller: &Caller,
        slug: &str,
        server: &str,
        recipe: &str,
        domain: &str,
        version: Option<String>,
    ) -> Result<AppSummary, ApiError> {
        api(caller, apps::apps::create(&self.0, caller, slug, server, recipe, domain, version.as_deref()).await)
    }
    async fn get_app(&self, caller: &Caller, slug: &str, domain: &str) -> Result<AppDetail, ApiError> {
        api(caller, apps::detail(&self.0, caller, slug, domain).await)
    }
    async fn set_app_env(&self, caller: &Caller, slug: &str, domain: &str, env: &str) -> Result<(), ApiError> {
        api(caller, apps::apps::set_env(&self.0, caller, slug, domain, env).await)
    }
    async fn set_app_overlays(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        files: Vec<String>,
    ) -> Result<(), ApiError> {
        api(caller, apps::apps::set_overlays(&self.0, caller, slug, domain, files).await)
    }
    async fn import_apps(
        &self,
        caller: &Caller,
        slug: &str,
        server: &str,
        files: Vec<(String, String)>,
    ) -> Result<Vec<AppSummary>, ApiError> {
        api(caller, apps::apps::import(&self.0, caller, slug, server, files).await)
    }
    async fn export_app(&self, caller: &Caller, slug: &str, domain: &str) -> Result<String, ApiError> {
        api(caller, apps::apps::export(&self.0, caller, slug, domain).await)
    }
    async fn delete_app(&self, caller: &Caller, slug: &str, domain: &str) -> Result<(), ApiError> {
        api(caller, apps::apps::delete(&self.0, caller, slug, domain).await)
    }
    async fn preview(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        kind: &str,
        target: Option<String>,
    ) -> Result<DeployPreview, ApiError> {
        api(caller, apps::preview(&self.0, caller, slug, domain, kind, target).await)
    }
    async fn start_job(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        kind: &str,
        target: Option<String>,
        options: JobOptions,
    ) -> Result<JobSummary, ApiError> {
        api(caller, apps::jobs::enqueue(&self.0, caller, slug, domain, kind, target, options).await)
    }
    async fn get_job(&self, caller: &Caller, id: i64) -> Result<JobDetail, ApiError> {
        api(caller, apps::jobs::detail(&self.0, caller, id).await)
    }
    async fn generate_secrets(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        only: Option<String>,
    ) -> Result<Vec<GeneratedSecret>, ApiError> {
        api(caller, apps::secrets::generate(&self.0, caller, slug, domain, only.as_deref()).await)
    }
    async fn insert_secret(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        name: &str,
        value: &str,
    ) -> Result<(), ApiError> {
        api(caller, apps::secrets::insert(&self.0, caller, slug, domain, name, value).await)
    }
    async fn rotate_secret(
        &self,
        caller: &Caller,
        slug: &str,
        domain: &str,
        name: &str,
    ) -> Result<RotatedSecret, ApiError> {
        let r = apps::secrets::rotate(&self.0, caller, slug, domain, name).await;
        api(caller, r.map(|(secret, job)| RotatedSecret { secret, job }))
    }
}
