//! Every operation the pages can call, declared once: the server function (`/api/fn/<name>`),
//! what it acts on, what the caller needs, the audit actions it may write and its REST route
//! (`/api/v1/…`). The body is always the same: hand the input to the server's registry, whose
//! handler for it receives a capability from the authorization step (see `ops.rs`).

// A server function takes its form's fields as arguments: some forms have many.
#![allow(clippy::too_many_arguments)]

use crate::actions::AuditAction;
use crate::error::ApiError;
use crate::model::*;
use crate::ops::{scope, Http, Need, Op};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use crate::error::ApiError;
    use crate::ops::Op;
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

    /// Runs `input` through the server's registry, answering errors with their own HTTP status
    /// (a server function would otherwise say 500).
    pub async fn dispatch<O: Op>(input: O) -> Result<O::Output, ApiError> {
        let (caller, ports) = context()?;
        let result = ports.dispatch(&caller, O::NAME, Box::new(input)).await.and_then(|out| {
            out.downcast::<O::Output>()
                .map(|b| *b)
                .map_err(|_| ApiError::Internal { request_id: caller.request_id.clone() })
        });
        if let Err(e) = &result {
            if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
                // A page that already sends the browser elsewhere (to sign in) keeps doing so.
                let redirecting = options.0.read().is_ok_and(|p| p.status.is_some_and(|s| s.is_redirection()));
                if let (false, Ok(status)) = (redirecting, http::StatusCode::from_u16(e.status())) {
                    options.set_status(status);
                }
            }
        }
        result
    }
}

/// Declares an operation: the server function and its [`Op`] implementation.
macro_rules! operation {
    (
        $(#[doc = $doc:literal])*
        fn $fn:ident ( $( $(#[$am:meta])* $arg:ident : $ty:ty ),* $(,)? ) -> $out:ty {
            name: $name:tt, input: $Struct:ident, scope: $scope:ident, key: |$o:ident| $key:expr,
            need: $need:expr, session_only: $session:expr, audit: [$($action:ident),* $(,)?], http: $http:expr $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[server(name = $Struct, prefix = "/api/fn", endpoint = $name)]
        pub async fn $fn( $( $(#[$am])* $arg: $ty ),* ) -> Result<$out, ApiError> {
            ssr::dispatch($Struct { $($arg),* }).await
        }

        impl Op for $Struct {
            const NAME: &'static str = $name;
            type Scope = scope::$scope;
            const NEED: Need = $need;
            const SESSION_ONLY: bool = $session;
            const AUDIT: &'static [AuditAction] = &[$(AuditAction::$action),*];
            const HTTP: Option<Http> = $http;
            type Output = $out;
            #[allow(unused_variables)]
            fn key(&self) -> <scope::$scope as scope::Scope>::Key<'_> {
                let $o = self;
                $key
            }
            #[cfg(feature = "ssr")]
            fn schemas() -> crate::ops::OpSchemas {
                use utoipa::{PartialSchema, ToSchema};
                #[allow(unused_mut)]
                let mut components = Vec::new();
                #[allow(unused_mut)]
                let mut request = utoipa::openapi::schema::ObjectBuilder::new();
                $(
                    request = request.property(stringify!($arg), <$ty as PartialSchema>::schema());
                    <$ty as ToSchema>::schemas(&mut components);
                )*
                <$out as ToSchema>::schemas(&mut components);
                crate::ops::OpSchemas {
                    request: Some(request.into()),
                    response: Some(<$out as PartialSchema>::schema()),
                    components,
                }
            }
        }
    };
}

use Need::{MaintainRecipe, Nothing, SeeRecipe};
use Permission::*;

const fn perm(p: Permission) -> Need {
    Need::Permission(p)
}

// ---- Identity ----

operation! {
    /// The person calling (none when signed out).
    fn get_me() -> Option<Me> {
        name: "me", input: GetMe, scope: Public, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: None,
    }
}

operation! {
    /// The principal behind the request (a person or an API token); 401 when signed out.
    fn whoami() -> Me {
        name: "whoami", input: Whoami, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/me"),
    }
}

operation! {
    /// The identity providers people sign in with.
    fn public_providers() -> Vec<ProviderPublic> {
        name: "public_providers", input: PublicProviders, scope: Public, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/providers/public"),
    }
}

operation! {
    fn list_providers() -> ProvidersOverview {
        name: "list_providers", input: ListProviders, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [], http: Http::get("/providers"),
    }
}

operation! {
    /// `collectives` is a comma- or space-separated list of collective slugs. The secret is sent
    /// once and kept sealed; it is never shown again.
    fn add_provider(
        display_name: String,
        issuer_url: String,
        client_id: String,
        client_secret: String,
        groups_claim: String,
        collectives: String,
    ) -> ProviderAdmin {
        name: "add_provider", input: AddProvider, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [IdentityProviderAdd], http: Http::post("/providers"),
    }
}

operation! {
    fn set_provider_collectives(provider_id: ProviderId, collectives: String) -> ProviderAdmin {
        name: "set_provider_collectives", input: SetProviderCollectives, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [IdentityProviderSetCollectives],
        http: Http::put("/providers/{provider_id}/collectives"),
    }
}

operation! {
    fn remove_provider(provider_id: ProviderId) -> () {
        name: "remove_provider", input: RemoveProvider, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [IdentityProviderRemove], http: Http::delete("/providers/{provider_id}"),
    }
}

operation! {
    fn list_users() -> Vec<UserSummary> {
        name: "list_users", input: ListUsers, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [], http: Http::get("/users"),
    }
}

operation! {
    fn set_federation_admin(user_id: UserId, admin: bool) -> () {
        name: "set_federation_admin", input: SetFederationAdmin, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [FederationAdminGrant, FederationAdminRevoke],
        http: Http::put("/users/{user_id}/federation-admin"),
    }
}

operation! {
    fn link_users(keep_user_id: UserId, merge_user_id: UserId) -> () {
        name: "link_users", input: LinkUsers, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [UserLink], http: Http::post("/users/link"),
    }
}

operation! {
    fn my_identities() -> Vec<IdentityView> {
        name: "my_identities", input: MyIdentities, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/me/identities"),
    }
}

operation! {
    fn list_api_tokens() -> Vec<ApiTokenSummary> {
        name: "list_api_tokens", input: ListApiTokens, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: true, audit: [], http: Http::get("/tokens"),
    }
}

operation! {
    /// A token for one collective with at most the creator's role there. `expires_in_days`
    /// empty or 0 means it does not expire.
    fn create_api_token(name: String, collective: String, role: Role, #[server(default)] expires_in_days: Option<i64>) -> CreatedApiToken {
        name: "create_api_token", input: CreateApiToken, scope: Collective, key: |o| &o.collective,
        need: perm(CreateOwnApiToken), session_only: true, audit: [ApiTokenCreate], http: Http::post("/tokens"),
    }
}

operation! {
    fn revoke_api_token(token_id: TokenId) -> () {
        name: "revoke_api_token", input: RevokeApiToken, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: true, audit: [ApiTokenRevoke], http: Http::delete("/tokens/{token_id}"),
    }
}

// ---- Collectives ----

operation! {
    /// The collectives the caller belongs to (all of them for a federation admin).
    fn list_collectives() -> Vec<CollectiveSummary> {
        name: "list_collectives", input: ListCollectives, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/collectives"),
    }
}

operation! {
    /// One collective: members, group mappings, identity providers.
    fn get_collective(slug: String) -> CollectiveDetail {
        name: "get_collective", input: GetCollective, scope: Collective, key: |o| &o.slug,
        need: perm(ViewCollective), session_only: false, audit: [], http: Http::get("/collectives/{slug}"),
    }
}

operation! {
    fn create_collective(slug: String, name: String, description: String) -> CollectiveSummary {
        name: "create_collective", input: CreateCollective, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [CollectiveCreate], http: Http::post("/collectives"),
    }
}

operation! {
    fn update_collective(slug: String, name: String, description: String) -> CollectiveSummary {
        name: "update_collective", input: UpdateCollective, scope: Collective, key: |o| &o.slug,
        need: perm(EditCollective), session_only: false, audit: [CollectiveUpdate], http: Http::put("/collectives/{slug}"),
    }
}

operation! {
    fn set_member_role(slug: String, user_id: UserId, role: Role) -> () {
        name: "set_member_role", input: SetMemberRole, scope: Collective, key: |o| &o.slug,
        need: perm(ManageMembers), session_only: false, audit: [MemberSetRole],
        http: Http::put("/collectives/{slug}/members/{user_id}"),
    }
}

operation! {
    fn remove_member(slug: String, user_id: UserId) -> () {
        name: "remove_member", input: RemoveMember, scope: Collective, key: |o| &o.slug,
        need: perm(ManageMembers), session_only: false, audit: [MemberRemove],
        http: Http::delete("/collectives/{slug}/members/{user_id}"),
    }
}

operation! {
    fn create_invitation(slug: String, role: Role) -> CreatedInvitation {
        name: "create_invitation", input: CreateInvitation, scope: Collective, key: |o| &o.slug,
        need: perm(ManageMembers), session_only: true, audit: [InvitationCreate],
        http: Http::post("/collectives/{slug}/invitations"),
    }
}

operation! {
    fn revoke_invitation(slug: String, invitation_id: InvitationId) -> () {
        name: "revoke_invitation", input: RevokeInvitation, scope: Collective, key: |o| &o.slug,
        need: perm(ManageMembers), session_only: false, audit: [InvitationRevoke],
        http: Http::delete("/collectives/{slug}/invitations/{invitation_id}"),
    }
}

operation! {
    fn accept_invitation(token: String) -> CollectiveSummary {
        name: "accept_invitation", input: AcceptInvitation, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: true, audit: [InvitationAccept], http: Http::post("/invitations/accept"),
    }
}

operation! {
    fn add_group_mapping(slug: String, provider_id: ProviderId, value: String, role: Role) -> GroupMapping {
        name: "add_group_mapping", input: AddGroupMapping, scope: Collective, key: |o| &o.slug,
        need: perm(ManageGroupMappings), session_only: false, audit: [GroupMappingAdd],
        http: Http::post("/collectives/{slug}/group-mappings"),
    }
}

operation! {
    fn remove_group_mapping(slug: String, mapping_id: MappingId) -> () {
        name: "remove_group_mapping", input: RemoveGroupMapping, scope: Collective, key: |o| &o.slug,
        need: perm(ManageGroupMappings), session_only: false, audit: [GroupMappingRemove],
        http: Http::delete("/collectives/{slug}/group-mappings/{mapping_id}"),
    }
}

// ---- Audit ----

operation! {
    /// A page of the audit log, newest first: a collective's (its admins) or everything
    /// (federation admins). `from`/`to` are milliseconds since the epoch.
    fn query_audit(
        #[server(default)] collective: Option<String>,
        #[server(default)] actor: Option<String>,
        #[server(default)] action: Option<String>,
        #[server(default)] from: Option<i64>,
        #[server(default)] to: Option<i64>,
        #[server(default)] before: Option<i64>,
        #[server(default)] limit: Option<i64>,
    ) -> AuditPage {
        name: "query_audit", input: QueryAudit, scope: SignedIn, key: |o| (),
        need: Need::Anywhere(ViewAudit), session_only: false, audit: [], http: Http::get("/audit"),
    }
}

impl QueryAudit {
    pub fn filter(&self) -> AuditFilter {
        AuditFilter {
            collective: self.collective.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            from: self.from,
            to: self.to,
            before: self.before,
            limit: self.limit,
        }
    }
}

/// The audit page's query, as a filter.
pub async fn audit_page(f: AuditFilter) -> Result<AuditPage, ApiError> {
    query_audit(f.collective, f.actor, f.action, f.from, f.to, f.before, f.limit).await
}

// ---- Recipes ----

operation! {
    /// The recipes the caller may see.
    fn list_recipes() -> Vec<RecipeSummary> {
        name: "list_recipes", input: ListRecipes, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/recipes"),
    }
}

operation! {
    fn get_recipe(name: String) -> RecipeDetail {
        name: "get_recipe", input: GetRecipe, scope: Recipe, key: |o| &o.name,
        need: SeeRecipe, session_only: false, audit: [], http: Http::get("/recipes/{name}"),
    }
}

operation! {
    fn get_recipe_version(name: String, tag: String) -> VersionDetail {
        name: "get_recipe_version", input: GetRecipeVersion, scope: Recipe, key: |o| &o.name,
        need: SeeRecipe, session_only: false, audit: [], http: Http::get("/recipes/{name}/versions/{tag}"),
    }
}

operation! {
    /// `credential_kind`: empty, `https` (username + token) or `ssh` (username + private key).
    /// The credential is sealed and never shown again.
    fn register_recipe(
        repository: String,
        #[server(default)] name: String,
        #[server(default)] collective: String,
        #[server(default)] credential_kind: String,
        #[server(default)] credential_username: String,
        #[server(default)] credential_secret: String,
    ) -> RecipeSummary {
        name: "register_recipe", input: RegisterRecipe, scope: SignedIn, key: |o| (),
        need: Need::Anywhere(MaintainRecipes), session_only: true, audit: [RecipeRegister], http: Http::post("/recipes"),
    }
}

operation! {
    fn fetch_recipe(name: String) -> () {
        name: "fetch_recipe", input: FetchRecipe, scope: Recipe, key: |o| &o.name,
        need: MaintainRecipe, session_only: true, audit: [RecipeFetch], http: Http::post("/recipes/{name}/fetch"),
    }
}

operation! {
    /// `users`: user ids; `collectives`: slugs; both comma- or space-separated.
    fn set_recipe_maintainers(name: String, #[server(default)] users: String, #[server(default)] collectives: String) -> () {
        name: "set_recipe_maintainers", input: SetRecipeMaintainers, scope: Recipe, key: |o| &o.name,
        need: MaintainRecipe, session_only: true, audit: [RecipeSetMaintainers],
        http: Http::put("/recipes/{name}/maintainers"),
    }
}

// ---- Release review ----

operation! {
    fn list_releases(recipe: String) -> Vec<ReleaseProposalSummary> {
        name: "list_releases", input: ListReleases, scope: Recipe, key: |o| &o.recipe,
        need: SeeRecipe, session_only: false, audit: [], http: Http::get("/recipes/{recipe}/releases"),
    }
}

operation! {
    /// Empty `commit`, `bump`, `version` take the branch's head, the suggested bump, the next version.
    fn open_release(
        recipe: String,
        #[server(default)] commit: String,
        #[server(default)] bump: String,
        #[server(default)] version: String,
        notes: String,
    ) -> ReleaseProposalDetail {
        name: "open_release", input: OpenRelease, scope: Recipe, key: |o| &o.recipe,
        need: MaintainRecipe, session_only: true, audit: [ReleaseOpen], http: Http::post("/recipes/{recipe}/releases"),
    }
}

operation! {
    fn get_release(id: ProposalId) -> ReleaseProposalDetail {
        name: "get_release", input: GetRelease, scope: Proposal, key: |o| o.id,
        need: SeeRecipe, session_only: false, audit: [], http: Http::get("/releases/{id}"),
    }
}

operation! {
    /// `verdict`: approve, request_changes or comment. The approval that completes the policy
    /// publishes the release.
    fn review_release(id: ProposalId, verdict: String, #[server(default)] comment: String) -> ReleaseProposalDetail {
        name: "review_release", input: ReviewRelease, scope: Proposal, key: |o| o.id,
        need: Need::ReviewRelease, session_only: true,
        audit: [ReleaseReview, ReleasePublishIntent, ReleasePublish],
        http: Http::post("/releases/{id}/reviews"),
    }
}

operation! {
    /// Empty `commit` means the branch's current head; empty `notes` keeps them.
    fn update_release(id: ProposalId, #[server(default)] commit: String, #[server(default)] notes: String) -> ReleaseProposalDetail {
        name: "update_release", input: UpdateRelease, scope: Proposal, key: |o| o.id,
        need: MaintainRecipe, session_only: true, audit: [ReleaseUpdate], http: Http::put("/releases/{id}"),
    }
}

operation! {
    fn withdraw_release(id: ProposalId) -> () {
        name: "withdraw_release", input: WithdrawRelease, scope: Proposal, key: |o| o.id,
        need: MaintainRecipe, session_only: true, audit: [ReleaseWithdraw], http: Http::post("/releases/{id}/withdraw"),
    }
}

operation! {
    fn publish_release(id: ProposalId) -> ReleaseProposalDetail {
        name: "publish_release", input: PublishRelease, scope: Proposal, key: |o| o.id,
        need: MaintainRecipe, session_only: true, audit: [ReleasePublishIntent, ReleasePublish],
        http: Http::post("/releases/{id}/publish"),
    }
}

// ---- Servers ----

operation! {
    fn list_servers(slug: String) -> Vec<ServerView> {
        name: "list_servers", input: ListServers, scope: Collective, key: |o| &o.slug,
        need: perm(ViewServers), session_only: false, audit: [], http: Http::get("/collectives/{slug}/servers"),
    }
}

operation! {
    /// `kind`: `unix` (a local engine the federation's configuration grants this collective),
    /// `tcp` (TLS client certificates) or `ssh` (`user@host[:port]` with its own private key;
    /// `host_key`: the expected fingerprint, `SHA256:…`, optional). Keys are sealed, never shown.
    fn add_server(
        slug: String,
        name: String,
        kind: String,
        address: String,
        #[server(default)] tls_ca: String,
        #[server(default)] tls_cert: String,
        #[server(default)] private_key: String,
        #[server(default)] host_key: String,
    ) -> ServerView {
        name: "add_server", input: AddServer, scope: Collective, key: |o| &o.slug,
        need: perm(ManageServers), session_only: false, audit: [ServerAdd], http: Http::post("/collectives/{slug}/servers"),
    }
}

operation! {
    fn remove_server(slug: String, name: String) -> () {
        name: "remove_server", input: RemoveServer, scope: Server, key: |o| (&o.slug, &o.name),
        need: perm(ManageServers), session_only: false, audit: [ServerRemove],
        http: Http::delete("/collectives/{slug}/servers/{name}"),
    }
}

operation! {
    /// Pins the SSH host key the server presents now, after it changed. `fingerprint` must be
    /// the new one (`SHA256:…`), checked out of band.
    fn trust_host_key(slug: String, name: String, fingerprint: String) -> ServerView {
        name: "trust_host_key", input: TrustHostKey, scope: Server, key: |o| (&o.slug, &o.name),
        need: perm(ManageServers), session_only: true, audit: [ServerHostKeyTrust],
        http: Http::post("/collectives/{slug}/servers/{name}/host-key"),
    }
}

operation! {
    /// What deploys to this server may ask of the host (federation admins only): each of
    /// `bind_mounts`, `docker_socket`, `privileged`, `capabilities`, `host_namespaces`,
    /// `devices`, `foreign_objects` is allowed when listed in `allow` (comma-separated).
    fn set_server_policy(slug: String, name: String, #[server(default)] allow: String) -> ServerView {
        name: "set_server_policy", input: SetServerPolicy, scope: Server, key: |o| (&o.slug, &o.name),
        need: Need::FederationAdmin, session_only: true, audit: [ServerPolicySet],
        http: Http::put("/collectives/{slug}/servers/{name}/policy"),
    }
}

// ---- Apps ----

operation! {
    fn list_apps(slug: String) -> Vec<AppSummary> {
        name: "list_apps", input: ListApps, scope: Collective, key: |o| &o.slug,
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/collectives/{slug}/apps"),
    }
}

operation! {
    /// `version` empty means the recipe's latest version.
    fn create_app(slug: String, server: String, recipe: String, domain: String, #[server(default)] version: String) -> AppSummary {
        name: "create_app", input: CreateApp, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [AppCreate], http: Http::post("/collectives/{slug}/apps"),
    }
}

operation! {
    fn get_app(slug: String, domain: String) -> AppDetail {
        name: "get_app", input: GetApp, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/collectives/{slug}/apps/{domain}"),
    }
}

operation! {
    fn set_app_env(slug: String, domain: String, env: String) -> () {
        name: "set_app_env", input: SetAppEnv, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageApps), session_only: false, audit: [AppEnvUpdate],
        http: Http::put("/collectives/{slug}/apps/{domain}/env"),
    }
}

operation! {
    /// `files`: the overlays to enable (`compose.mariadb.yml`…); absent means none.
    fn set_app_overlays(slug: String, domain: String, #[server(default)] files: Vec<String>) -> () {
        name: "set_app_overlays", input: SetAppOverlays, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageApps), session_only: false, audit: [AppEnvUpdate],
        http: Http::put("/collectives/{slug}/apps/{domain}/overlays"),
    }
}

operation! {
    /// One abra env file: its name is the app's domain followed by `.env`.
    fn import_app(slug: String, server: String, file_name: String, content: String) -> Vec<AppSummary> {
        name: "import_app", input: ImportApp, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [AppImport], http: Http::post("/collectives/{slug}/apps/import"),
    }
}

operation! {
    /// What importing an abra `servers/` tree would do, without doing it. The tree is `archive`
    /// (a tar.gz, base64) or the archive uploaded on the apps page (`upload`); `servers` maps a
    /// directory to a Potluck server (default: the server of the same name).
    fn preview_abra_tree(
        slug: String,
        #[server(default)] upload: Option<i64>,
        #[server(default)] archive: String,
        #[server(default)] servers: std::collections::BTreeMap<String, String>,
    ) -> AbraTreePreview {
        name: "preview_abra_tree", input: PreviewAbraTree, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [], http: Http::post("/collectives/{slug}/abra/preview"),
    }
}

operation! {
    /// Imports an abra `servers/` tree (as `preview_abra_tree` reads it): every env file that is
    /// not refused becomes an app, all in one transaction.
    fn import_abra_tree(
        slug: String,
        #[server(default)] upload: Option<i64>,
        #[server(default)] archive: String,
        #[server(default)] servers: std::collections::BTreeMap<String, String>,
    ) -> AbraTreeImported {
        name: "import_abra_tree", input: ImportAbraTree, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [AppImport], http: Http::post("/collectives/{slug}/abra/import"),
    }
}

operation! {
    fn export_app(slug: String, domain: String) -> String {
        name: "export_app", input: ExportApp, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/collectives/{slug}/apps/{domain}/export"),
    }
}

operation! {
    /// Takes what the app's stack runs as Potluck's record after it was changed outside Potluck
    /// (the app's `drift`): its version (a release of the recipe, or a chaos commit), status and
    /// services. 409 when nothing differs, or when the stack runs no release of the recipe.
    fn adopt_app(slug: String, domain: String) -> AppSummary {
        name: "adopt_app", input: AdoptApp, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageApps), session_only: false, audit: [AppAdopt],
        http: Http::post("/collectives/{slug}/apps/{domain}/adopt"),
    }
}

operation! {
    /// The collective's operator sync through git: its remote, each app file's state (synced,
    /// outgoing, incoming, conflict), the remote's changes waiting, and recent activity.
    fn get_sync(slug: String) -> SyncView {
        name: "get_sync", input: GetSync, scope: Collective, key: |o| &o.slug,
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/collectives/{slug}/sync"),
    }
}

operation! {
    /// Keeps the collective's apps in a git remote in abra's layout (`servers/<server>/<domain>.env`):
    /// `url` is `https://`, `ssh://` or `user@host:path` (a path on the Potluck machine for
    /// federation admins), `branch` `main` when empty; `credential_kind` `https` (a token) or `ssh`
    /// (a private key), sealed; left empty when changing the settings, the kept one stays.
    /// With `auto_apply`, the remote's changes to an existing app's env are applied as they
    /// arrive. The remote is reached before anything is kept. The webhook's secret is in the
    /// answer when sync is first set up, and never again.
    fn set_sync(
        slug: String,
        url: String,
        #[server(default)] branch: String,
        #[server(default)] credential_kind: String,
        #[server(default)] credential_username: String,
        #[server(default)] credential_secret: String,
        #[server(default)] auto_apply: bool,
    ) -> SyncConfigured {
        name: "set_sync", input: SetSync, scope: Collective, key: |o| &o.slug,
        need: perm(ManageServers), session_only: false, audit: [SyncConfigure],
        http: Http::put("/collectives/{slug}/sync"),
    }
}

operation! {
    /// Stops syncing: forgets the remote, its credential and the changes waiting (the remote stays).
    fn remove_sync(slug: String) -> () {
        name: "remove_sync", input: RemoveSync, scope: Collective, key: |o| &o.slug,
        need: perm(ManageServers), session_only: false, audit: [SyncRemove],
        http: Http::delete("/collectives/{slug}/sync"),
    }
}

operation! {
    /// Syncs now: fetches the remote, pushes Potluck's changes as commits, and brings in the
    /// remote's as incoming changes (applying env changes when the collective auto-applies).
    fn sync_now(slug: String) -> SyncView {
        name: "sync_now", input: SyncNow, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [SyncPush, SyncIncoming, SyncApply],
        http: Http::post("/collectives/{slug}/sync/run"),
    }
}

operation! {
    /// Takes the remote's change: the app's env becomes the remote's file (a new file imports
    /// an app, a removed one deletes the app, which must be undeployed). Deploying is separate.
    fn apply_incoming(slug: String, id: IncomingId) -> () {
        name: "apply_incoming", input: ApplyIncoming, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [SyncApply],
        http: Http::post("/collectives/{slug}/sync/incoming/{id}/apply"),
    }
}

operation! {
    /// Takes every change waiting from the remote at once (a whole abra tree pushed to it becomes
    /// the collective's apps), each as `apply_incoming` would; what cannot be applied is listed
    /// with why and keeps waiting.
    fn apply_all_incoming(slug: String) -> AppliedChanges {
        name: "apply_all_incoming", input: ApplyAllIncoming, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [SyncApply],
        http: Http::post("/collectives/{slug}/sync/incoming/apply"),
    }
}

operation! {
    /// Keeps Potluck's file: the next sync pushes it over the remote's change (which stays in
    /// the remote's history).
    fn reject_incoming(slug: String, id: IncomingId) -> () {
        name: "reject_incoming", input: RejectIncoming, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [SyncReject],
        http: Http::post("/collectives/{slug}/sync/incoming/{id}/reject"),
    }
}

operation! {
    fn delete_app(slug: String, domain: String) -> () {
        name: "delete_app", input: DeleteApp, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageApps), session_only: false, audit: [AppDelete], http: Http::delete("/collectives/{slug}/apps/{domain}"),
    }
}

operation! {
    /// What `kind` (deploy, upgrade, rollback, redeploy, chaos, undeploy) would do, without doing it.
    fn preview_job(slug: String, domain: String, kind: String, #[server(default)] target: String) -> DeployPreview {
        name: "preview_job", input: PreviewJob, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(OperateApps), session_only: false, audit: [], http: Http::post("/collectives/{slug}/apps/{domain}/preview"),
    }
}

operation! {
    /// `options` as `options[remove_volumes]=true`, `options[timeout_secs]=600`…
    fn start_job(
        slug: String,
        domain: String,
        kind: String,
        #[server(default)] target: String,
        #[server(default)] options: JobOptions,
    ) -> JobSummary {
        name: "start_job", input: StartJob, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(OperateApps), session_only: false,
        audit: [DeployRequest, UpgradeRequest, RollbackRequest, RedeployRequest, ChaosRequest, UndeployRequest, BackupRequest, RestoreRequest, DrillRequest],
        http: Http::post("/collectives/{slug}/apps/{domain}/jobs"),
    }
}

operation! {
    fn get_job(id: JobId) -> JobDetail {
        name: "get_job", input: GetJob, scope: Job, key: |o| o.id,
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/jobs/{id}"),
    }
}

operation! {
    /// `only` empty generates every missing secret. Each value is shown once, to the caller.
    fn generate_secrets(slug: String, domain: String, #[server(default)] only: String) -> Vec<GeneratedSecret> {
        name: "generate_secrets", input: GenerateSecrets, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageSecrets), session_only: false, audit: [SecretGenerateIntent, SecretGenerate],
        http: Http::post("/collectives/{slug}/apps/{domain}/secrets/generate"),
    }
}

operation! {
    fn insert_secret(slug: String, domain: String, name: String, value: String) -> () {
        name: "insert_secret", input: InsertSecret, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageSecrets), session_only: false, audit: [SecretInsertIntent, SecretInsert],
        http: Http::put("/collectives/{slug}/apps/{domain}/secrets/{name}"),
    }
}

operation! {
    /// A new version of the secret, then a redeploy (which needs the operator role too).
    fn rotate_secret(slug: String, domain: String, name: String) -> RotatedSecret {
        name: "rotate_secret", input: RotateSecret, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageSecrets), session_only: false,
        audit: [SecretRotateIntent, SecretRotate, RedeployRequest],
        http: Http::post("/collectives/{slug}/apps/{domain}/secrets/{name}/rotate"),
    }
}

operation! {
    /// Every app's backup coverage and snapshots, and the collective's repositories.
    fn list_backups(slug: String) -> CollectiveBackups {
        name: "list_backups", input: ListBackups, scope: Collective, key: |o| &o.slug,
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/collectives/{slug}/backups"),
    }
}

operation! {
    /// A restic repository for the collective's backups. `password` empty: Potluck makes one and
    /// shows it once; given: it opens the repository already there (or makes one with it).
    /// `location` empty: on the Potluck machine (where the configuration allows it); else
    /// `sftp:user@host:/path` with `ssh_key` (a private key, sealed) and `host_key` (the
    /// server's SHA-256 fingerprint, pinned; left empty, the error names the one presented), or
    /// `s3:https://host/bucket/path` with `s3_key_id`, `s3_secret` (sealed) and `s3_region`
    /// (`us-east-1` when empty). The bucket must exist.
    fn add_backup_repo(
        slug: String,
        name: String,
        #[server(default)] password: String,
        #[server(default)] location: String,
        #[server(default)] ssh_key: String,
        #[server(default)] host_key: String,
        #[server(default)] s3_key_id: String,
        #[server(default)] s3_secret: String,
        #[server(default)] s3_region: String,
    ) -> AddedBackupRepo {
        name: "add_backup_repo", input: AddBackupRepo, scope: Collective, key: |o| &o.slug,
        need: perm(ManageServers), session_only: false, audit: [BackupRepoAdd],
        http: Http::post("/collectives/{slug}/backup-repos"),
    }
}

operation! {
    /// Forgets the repository, Potluck's record of its snapshots and the schedules writing into
    /// it; the repository itself stays.
    fn remove_backup_repo(slug: String, name: String) -> () {
        name: "remove_backup_repo", input: RemoveBackupRepo, scope: Collective, key: |o| &o.slug,
        need: perm(ManageServers), session_only: false, audit: [BackupRepoRemove],
        http: Http::delete("/collectives/{slug}/backup-repos/{name}"),
    }
}

operation! {
    /// Backs the app up on a cron pattern (UTC; backup-bot-two's `30 3 * * *`), into `repo` (the
    /// collective's first when empty), then applies the keep rules to the snapshots the schedule
    /// took; with `drill`, each new snapshot is also restored into a throw-away stack that must
    /// converge. Replaces the app's schedule if it has one.
    fn set_backup_schedule(
        slug: String,
        domain: String,
        cron: String,
        #[server(default)] repo: String,
        #[server(default)] keep_last: u32,
        #[server(default)] keep_hourly: u32,
        #[server(default)] keep_daily: u32,
        #[server(default)] keep_weekly: u32,
        #[server(default)] keep_monthly: u32,
        #[server(default)] keep_yearly: u32,
        #[server(default)] drill: bool,
    ) -> BackupScheduleView {
        name: "set_backup_schedule", input: SetBackupSchedule, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageApps), session_only: false, audit: [BackupScheduleSet],
        http: Http::put("/collectives/{slug}/apps/{domain}/backup-schedule"),
    }
}

operation! {
    /// Stops the app's scheduled backups; its snapshots stay.
    fn remove_backup_schedule(slug: String, domain: String) -> () {
        name: "remove_backup_schedule", input: RemoveBackupSchedule, scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ManageApps), session_only: false, audit: [BackupScheduleRemove],
        http: Http::delete("/collectives/{slug}/apps/{domain}/backup-schedule"),
    }
}

operation! {
    /// Drills the collective's apps on a cron pattern (UTC): each round restores the newest
    /// snapshot of every app that has not passed a drill yet into a throw-away stack, one app
    /// after another. Replaces the collective's drill schedule if it has one.
    fn set_drill_schedule(slug: String, cron: String) -> DrillScheduleView {
        name: "set_drill_schedule", input: SetDrillSchedule, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [DrillScheduleSet],
        http: Http::put("/collectives/{slug}/drill-schedule"),
    }
}

operation! {
    /// Stops the collective's scheduled drills (a drill under way finishes).
    fn remove_drill_schedule(slug: String) -> () {
        name: "remove_drill_schedule", input: RemoveDrillSchedule, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [DrillScheduleRemove],
        http: Http::delete("/collectives/{slug}/drill-schedule"),
    }
}

// ---- Notifications ----

operation! {
    /// The collective's notification channels and its most recent deliveries.
    fn list_notifications(slug: String) -> CollectiveNotifications {
        name: "list_notifications", input: ListNotifications, scope: Collective, key: |o| &o.slug,
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/collectives/{slug}/notifications"),
    }
}

operation! {
    /// A channel receiving the chosen `events` (`deploy_failed`, `app_unhealthy`…). `kind`
    /// webhook: `target` is an https URL (http only on hosts the federation allows); each POST
    /// carries `Potluck-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under
    /// the signing key shown once in the answer. `kind` email: `target` lists addresses, sent
    /// through the federation's mail relay.
    fn add_notification_channel(
        slug: String,
        name: String,
        kind: String,
        target: String,
        #[server(default)] events: Vec<String>,
    ) -> AddedChannel {
        name: "add_notification_channel", input: AddNotificationChannel, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [ChannelAdd],
        http: Http::post("/collectives/{slug}/notifications/channels"),
    }
}

operation! {
    /// Removes the channel and its delivery log.
    fn remove_notification_channel(slug: String, channel: ChannelId) -> () {
        name: "remove_notification_channel", input: RemoveNotificationChannel, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [ChannelRemove],
        http: Http::delete("/collectives/{slug}/notifications/channels/{channel}"),
    }
}

operation! {
    /// Sends a test notification through the channel now and answers how it went (once, no
    /// retries; it is kept in the delivery log).
    fn test_notification_channel(slug: String, channel: ChannelId) -> DeliveryView {
        name: "test_notification_channel", input: TestNotificationChannel, scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [ChannelTest],
        http: Http::post("/collectives/{slug}/notifications/channels/{channel}/test"),
    }
}

operation! {
    /// The federation's mail relay, if one is set (never its password).
    fn get_mail_relay() -> Option<MailSettingsView> {
        name: "get_mail_relay", input: GetMailRelay, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [], http: Http::get("/mail-relay"),
    }
}

operation! {
    /// The relay every email goes through. `security`: starttls (the default), tls or none
    /// (none only to hosts the federation allows); `password` empty keeps the one set;
    /// `ca_pem`: a CA certificate to trust besides the system's (a private relay).
    fn set_mail_relay(
        host: String,
        port: u16,
        #[server(default)] security: String,
        #[server(default)] username: String,
        #[server(default)] password: String,
        sender: String,
        #[server(default)] ca_pem: String,
    ) -> MailSettingsView {
        name: "set_mail_relay", input: SetMailRelay, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [MailRelaySet], http: Http::put("/mail-relay"),
    }
}

operation! {
    fn remove_mail_relay() -> () {
        name: "remove_mail_relay", input: RemoveMailRelay, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [MailRelayRemove], http: Http::delete("/mail-relay"),
    }
}

operation! {
    fn my_notifications() -> MyNotifications {
        name: "my_notifications", input: GetMyNotifications, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: true, audit: [], http: Http::get("/me/notifications"),
    }
}

operation! {
    /// `review_email`: email me when a release proposal awaits my review.
    fn set_my_notifications(#[server(default)] review_email: bool) -> MyNotifications {
        name: "set_my_notifications", input: SetMyNotifications, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: true, audit: [MyNotificationsSet], http: Http::put("/me/notifications"),
    }
}

// ---- The fleet ----

operation! {
    /// Every app of the collectives where the caller may view apps (all of them for a federation
    /// admin), by recipe: version, releases behind, health.
    fn fleet() -> Fleet {
        name: "fleet", input: GetFleet, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/fleet"),
    }
}

operation! {
    /// The upgrade of each app (`apps`: `collective/domain`, comma- or space-separated) of the
    /// recipe to `target` (the newest release when empty), previewed as a single upgrade is.
    /// Every app must be one the caller may operate.
    fn preview_upgrade_batch(recipe: String, apps: String, #[server(default)] target: String) -> Vec<BatchPreviewItem> {
        name: "preview_upgrade_batch", input: PreviewUpgradeBatch, scope: SignedIn, key: |o| (),
        need: Need::Anywhere(OperateApps), session_only: false, audit: [], http: Http::post("/fleet/upgrades/preview"),
    }
}

operation! {
    /// Upgrades the apps one after another, in the order given, each as its own job (audited as
    /// its upgrade request); with `stop_on_failure`, the apps after a failed one are skipped.
    fn start_upgrade_batch(
        recipe: String,
        apps: String,
        #[server(default)] target: String,
        #[server(default)] stop_on_failure: bool,
    ) -> BatchView {
        name: "start_upgrade_batch", input: StartUpgradeBatch, scope: SignedIn, key: |o| (),
        need: Need::Anywhere(OperateApps), session_only: false, audit: [BatchUpgradeStart], http: Http::post("/fleet/upgrades"),
    }
}

operation! {
    /// A batch upgrade as it goes (for who may view every app in it).
    fn get_upgrade_batch(id: BatchId) -> BatchView {
        name: "get_upgrade_batch", input: GetUpgradeBatch, scope: SignedIn, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/fleet/upgrades/{id}"),
    }
}

// ---- Release CI ----

operation! {
    /// The servers designated for staging runs.
    fn list_staging_servers() -> Vec<StagingServerView> {
        name: "list_staging_servers", input: ListStagingServers, scope: Federation, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/staging/servers"),
    }
}

operation! {
    /// Designates a collective's server for staging runs taking `max_runs` at once (1 to 8);
    /// `max_runs` 0 withdraws it.
    fn set_staging_server(slug: String, name: String, max_runs: i64) -> Vec<StagingServerView> {
        name: "set_staging_server", input: SetStagingServer, scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [StagingServerSet], http: Http::put("/staging/servers"),
    }
}

operation! {
    /// A recipe's test settings and publishing policy (its maintainers').
    fn get_recipe_testing(name: String) -> RecipeTesting {
        name: "get_recipe_testing", input: GetRecipeTesting, scope: Recipe, key: |o| &o.name,
        need: MaintainRecipe, session_only: false, audit: [], http: Http::get("/recipes/{name}/testing"),
    }
}

operation! {
    /// `test_env`: `KEY=VALUE` lines over `.env.sample`; `smoke_kind`: none, http (`service`,
    /// `port`, `path`) or command (`service`, `command`).
    fn set_recipe_testing(
        name: String,
        #[server(default)] test_env: String,
        #[server(default)] smoke_kind: String,
        #[server(default)] smoke_service: String,
        #[server(default)] smoke_port: String,
        #[server(default)] smoke_path: String,
        #[server(default)] smoke_command: String,
        #[server(default)] require_green_run: bool,
    ) -> RecipeTesting {
        name: "set_recipe_testing", input: SetRecipeTesting, scope: Recipe, key: |o| &o.name,
        need: MaintainRecipe, session_only: true, audit: [RecipeTestingSet], http: Http::put("/recipes/{name}/testing"),
    }
}

operation! {
    /// Queues a staging run of the proposal's current commit (an earlier queued one is cancelled).
    fn start_staging_run(id: ProposalId) -> StagingRunSummary {
        name: "start_staging_run", input: StartStagingRun, scope: Proposal, key: |o| o.id,
        need: MaintainRecipe, session_only: false, audit: [StagingRunStart], http: Http::post("/releases/{id}/runs"),
    }
}

operation! {
    /// A staging run of the proposal with its log.
    fn get_staging_run(id: ProposalId, run: StagingRunId) -> StagingRunView {
        name: "get_staging_run", input: GetStagingRun, scope: Proposal, key: |o| o.id,
        need: SeeRecipe, session_only: false, audit: [], http: Http::get("/releases/{id}/runs/{run}"),
    }
}

// ---- Streaming endpoints (answered by the server itself, outside `/api/v1`) ----

/// Declares an operation answered with a stream (not a server function): its input and [`Op`].
macro_rules! raw_operation {
    (
        $(#[doc = $doc:literal])*
        struct $Struct:ident { $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)? } {
            name: $name:tt, scope: $scope:ident, key: |$o:ident| $key:expr,
            need: $need:expr, session_only: $session:expr, audit: [$($action:ident),* $(,)?], http: $http:expr $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        pub struct $Struct { $( $(#[$fm])* pub $field: $ty ),* }

        impl Op for $Struct {
            const NAME: &'static str = $name;
            type Scope = scope::$scope;
            const NEED: Need = $need;
            const SESSION_ONLY: bool = $session;
            const AUDIT: &'static [AuditAction] = &[$(AuditAction::$action),*];
            const HTTP: Option<Http> = $http;
            const RAW: bool = true;
            type Output = ();
            #[allow(unused_variables)]
            fn key(&self) -> <scope::$scope as scope::Scope>::Key<'_> {
                let $o = self;
                $key
            }
        }
    };
}

raw_operation! {
    /// A job's progress as Server-Sent Events: every event after `after`, then `end`.
    struct JobEvents { id: JobId, #[serde(default)] after: i64 } {
        name: "job_events", scope: Job, key: |o| o.id,
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/jobs/{id}/events"),
    }
}

raw_operation! {
    /// The app page, live (Server-Sent Events): `event: app` with the app's row and its services
    /// and tasks (`AppLiveView`) at once and at each change; `gone` when the app is removed.
    struct AppLive { slug: String, domain: String } {
        name: "app_live", scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/c/{slug}/apps/{domain}/live"),
    }
}

raw_operation! {
    /// The collective's apps, live (Server-Sent Events): `event: apps` with every app, its status
    /// and health, at once and at each change.
    struct AppsLive { slug: String } {
        name: "apps_live", scope: Collective, key: |o| &o.slug,
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/c/{slug}/live/apps"),
    }
}

raw_operation! {
    /// The collective's servers, live (Server-Sent Events): `event: servers` with every server,
    /// its connection and its swarm at a glance, at once and at each change.
    struct ServersLive { slug: String } {
        name: "servers_live", scope: Collective, key: |o| &o.slug,
        need: perm(ViewServers), session_only: false, audit: [], http: Http::get("/c/{slug}/live/servers"),
    }
}

raw_operation! {
    /// A service's logs as plain text; `follow=1` keeps streaming (operators: logs carry
    /// anything an app prints).
    struct ServiceLogs {
        slug: String,
        domain: String,
        service: String,
        #[serde(default)] follow: Option<String>,
        #[serde(default)] tail: Option<String>,
    } {
        name: "service_logs", scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(OperateApps), session_only: false, audit: [], http: Http::get("/c/{slug}/apps/{domain}/logs"),
    }
}

raw_operation! {
    /// `abra app run`: a command in a running container of one of the app's services.
    struct RunCommand { slug: String, domain: String, service: String, command: String } {
        name: "run_command", scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(RunCommands), session_only: false, audit: [AppRun], http: Http::post("/c/{slug}/apps/{domain}/run"),
    }
}

raw_operation! {
    /// The app's env file, as abra keeps it in `~/.abra/servers/<server>/<domain>.env`.
    struct DownloadEnv { slug: String, domain: String } {
        name: "download_env", scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/c/{slug}/apps/{domain}/env"),
    }
}

raw_operation! {
    /// The federation's catalogue in Co-op Cloud's `recipes.json` shape (public recipes only).
    struct CatalogueJson {} {
        name: "catalogue_json", scope: Public, key: |o| (),
        need: Nothing, session_only: false, audit: [], http: Http::get("/catalogue.json"),
    }
}

raw_operation! {
    /// Registers the recipes of an existing `recipes.json`, a line per recipe as it goes.
    struct ImportCatalogue { catalogue: String } {
        name: "import_catalogue", scope: Federation, key: |o| (),
        need: Nothing, session_only: true, audit: [RecipeRegister], http: Http::post("/catalogue/import"),
    }
}

raw_operation! {
    /// The audit log as JSON Lines, with the audit page's filters (`from`/`to` as dates).
    struct ExportAudit {
        #[serde(default)] collective: Option<String>,
        #[serde(default)] actor: Option<String>,
        #[serde(default)] action: Option<String>,
        #[serde(default)] from: Option<String>,
        #[serde(default)] to: Option<String>,
    } {
        name: "export_audit", scope: SignedIn, key: |o| (),
        need: Need::Anywhere(ViewAudit), session_only: false, audit: [], http: Http::get("/audit/export.jsonl"),
    }
}

raw_operation! {
    /// Keeps an uploaded abra `servers/` tree (a tar.gz, a file field of a form) for its preview
    /// page, and answers with a redirect to it.
    struct UploadAbraTree { slug: String, archive: String } {
        name: "upload_abra_tree", scope: Collective, key: |o| &o.slug,
        need: perm(ManageApps), session_only: false, audit: [], http: Http::post("/c/{slug}/abra/upload"),
    }
}

raw_operation! {
    /// The collective's apps as abra's `servers/<server>/<domain>.env` tree, a tar.gz archive.
    struct ExportAbraTree { slug: String } {
        name: "export_abra_tree", scope: Collective, key: |o| &o.slug,
        need: perm(ViewApps), session_only: false, audit: [], http: Http::get("/c/{slug}/abra/servers.tar.gz"),
    }
}

raw_operation! {
    /// A snapshot of the app as a tar archive, streamed out of its repository (operators: it
    /// holds the app's data).
    struct DownloadBackup { slug: String, domain: String, snapshot: String } {
        name: "download_backup", scope: App, key: |o| (&o.slug, &o.domain),
        need: perm(OperateApps), session_only: false, audit: [BackupDownload],
        http: Http::get("/c/{slug}/apps/{domain}/backups/{snapshot}"),
    }
}

/// Every operation's description, for the server's registry check and the matrix test.
pub fn all_operations() -> Vec<crate::ops::OpInfo> {
    use crate::ops::OpInfo;
    macro_rules! infos { ($($t:ty),* $(,)?) => { vec![$(OpInfo::of::<$t>()),*] }; }
    infos![
        GetMe,
        Whoami,
        PublicProviders,
        ListProviders,
        AddProvider,
        SetProviderCollectives,
        RemoveProvider,
        ListUsers,
        SetFederationAdmin,
        LinkUsers,
        MyIdentities,
        ListApiTokens,
        CreateApiToken,
        RevokeApiToken,
        ListCollectives,
        GetCollective,
        CreateCollective,
        UpdateCollective,
        SetMemberRole,
        RemoveMember,
        CreateInvitation,
        RevokeInvitation,
        AcceptInvitation,
        AddGroupMapping,
        RemoveGroupMapping,
        QueryAudit,
        ListRecipes,
        GetRecipe,
        GetRecipeVersion,
        RegisterRecipe,
        FetchRecipe,
        SetRecipeMaintainers,
        ListReleases,
        OpenRelease,
        GetRelease,
        ReviewRelease,
        UpdateRelease,
        WithdrawRelease,
        PublishRelease,
        ListServers,
        AddServer,
        RemoveServer,
        TrustHostKey,
        SetServerPolicy,
        ListApps,
        CreateApp,
        GetApp,
        SetAppEnv,
        SetAppOverlays,
        ImportApp,
        ExportApp,
        AdoptApp,
        PreviewAbraTree,
        ImportAbraTree,
        UploadAbraTree,
        ExportAbraTree,
        DeleteApp,
        GetSync,
        SetSync,
        RemoveSync,
        SyncNow,
        ApplyIncoming,
        ApplyAllIncoming,
        RejectIncoming,
        PreviewJob,
        StartJob,
        GetJob,
        GenerateSecrets,
        InsertSecret,
        RotateSecret,
        JobEvents,
        AppLive,
        AppsLive,
        ServersLive,
        ServiceLogs,
        RunCommand,
        DownloadEnv,
        ListBackups,
        AddBackupRepo,
        RemoveBackupRepo,
        SetBackupSchedule,
        RemoveBackupSchedule,
        SetDrillSchedule,
        RemoveDrillSchedule,
        DownloadBackup,
        ListNotifications,
        AddNotificationChannel,
        RemoveNotificationChannel,
        TestNotificationChannel,
        GetMailRelay,
        SetMailRelay,
        RemoveMailRelay,
        GetMyNotifications,
        SetMyNotifications,
        GetFleet,
        PreviewUpgradeBatch,
        StartUpgradeBatch,
        GetUpgradeBatch,
        ListStagingServers,
        SetStagingServer,
        GetRecipeTesting,
        SetRecipeTesting,
        StartStagingRun,
        GetStagingRun,
        CatalogueJson,
        ImportCatalogue,
        ExportAudit,
    ]
}

/// A comma-, space- or line-separated list, as the forms take them.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}
