//! Authorization as a type. Every operation's handler receives a [`Cap`] for the scope its
//! declaration names (`app/src/ops.rs`); only [`authorize`] can make one, after checking the
//! caller against the declaration, and the capability carries the resolved tenant (the
//! collective, app, server, job, recipe or proposal) that every query of the handler uses.
//! Token capping, "another collective's member is told it does not exist", and "API tokens
//! cannot do this" are written here once.

use crate::adapters::db::Db;
use crate::domain::apps::apps::AppRow;
use crate::domain::apps::servers::ServerRow;
use crate::domain::audit::Origin;
use crate::domain::recipes::review::ProposalRow;
use crate::domain::recipes::store::RecipeRow;
use crate::error::{Error, Result};
use crate::state::AppState;
use potluck_app::error::ApiError;
use potluck_app::model::{CollectiveId, JobId, ProposalId, UserId};
use potluck_app::model::{JobSummary, Permission, Role};
use potluck_app::ops::{scope, Need, Op};
use potluck_app::ports::{Caller, Principal};
use sqlx::Row;
use std::future::Future;

/// A collective slug: 2 to 63 characters of `a-z`, `0-9` and `-`, starting with a letter or
/// digit and not ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectiveSlug(String);

impl CollectiveSlug {
    pub fn parse(s: &str) -> Result<CollectiveSlug, ApiError> {
        let ok = (2..=63).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(CollectiveSlug(s.to_string()))
        } else {
            Err(ApiError::invalid(
                "slug",
                format!(
                    "{s:?} is not a valid slug: use 2-63 characters a-z, 0-9 and '-', not starting or ending with '-'"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectiveRef {
    pub id: CollectiveId,
    pub slug: String,
    pub name: String,
}

/// Who is acting, as far as authorization is concerned.
#[derive(Debug, Clone)]
pub struct Who {
    user_id: UserId,
    /// A federation admin in a browser session (never through a token).
    federation_admin: bool,
    /// The person is a federation admin (for a token: its owner), so holds admin in every
    /// collective, within the token's cap.
    admin_everywhere: bool,
    /// A token acts only in its collective, with at most its role.
    token: Option<(CollectiveId, Role)>,
}

/// Proof that the caller passed the checks an operation declares, with what they act on.
pub struct Cap<S: Resolve> {
    data: S::Data,
    who: Option<Who>,
    /// The caller's effective role in the resource's collective, when the scope has one.
    role: Option<Role>,
    origin: Origin,
}

impl<S: Resolve> Cap<S> {
    /// Where the request came from: the audit event's actor, request id and address.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The acting person (for a token, its owner). Anonymous callers reach only public scopes.
    pub fn user_id(&self) -> Option<UserId> {
        self.who.as_ref().map(|w| w.user_id)
    }

    pub fn is_federation_admin(&self) -> bool {
        self.who.as_ref().is_some_and(|w| w.federation_admin)
    }

    pub fn is_token(&self) -> bool {
        self.who.as_ref().is_some_and(|w| w.token.is_some())
    }

    /// A token's collective and role.
    pub fn token(&self) -> Option<(CollectiveId, Role)> {
        self.who.as_ref().and_then(|w| w.token)
    }

    /// A federation admin in person, or the owner of the token in use.
    pub fn acts_for_federation_admin(&self) -> bool {
        self.who.as_ref().is_some_and(|w| w.admin_everywhere)
    }

    /// The caller's role in the resource's collective (`Admin` for a federation admin).
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// What this capability names, for the log.
    pub fn label(&self) -> String {
        S::label(&self.data)
    }

    /// One more permission in the same collective (an operation that does two things).
    pub fn require(&self, p: Permission) -> Result<()> {
        match self.role {
            Some(r) if r.grants(p) => Ok(()),
            Some(r) => {
                Err(ApiError::forbidden(format!("your role ({r}) does not allow {}", permission_words(p))).into())
            }
            None => Err(ApiError::forbidden(format!("your role does not allow {}", permission_words(p))).into()),
        }
    }

    /// The same caller's access to another collective that the input names (a token's
    /// collective, the maintainers of a recipe), checked exactly as a collective scope is.
    pub async fn collective_access(&self, db: &Db, slug: &str, p: Permission) -> Result<(CollectiveRef, Role)> {
        let who = self.who.as_ref().ok_or(ApiError::Unauthenticated)?;
        let (c, role) = collective_role(db, who, slug).await?;
        if !role.grants(p) {
            return Err(refusal(&c.slug, role, p).into());
        }
        Ok((c, role))
    }

    /// The same caller's access to an app the input names among others (a batch upgrade names
    /// several), checked as an app scope is: in another collective, or without `p` there, it is
    /// refused as `collective_access` refuses; an app the collective does not have is absent.
    pub async fn app_access(&self, st: &AppState, slug: &str, domain: &str, p: Permission) -> Result<Cap<scope::App>> {
        let (c, role) = self.collective_access(&st.db, slug, p).await?;
        let app = crate::domain::apps::apps::in_collective(st, &c, domain).await?;
        Ok(Cap { data: (c, app), who: self.who.clone(), role: Some(role), origin: self.origin.clone() })
    }

    /// Whether the caller holds `p` in any collective (capped to its collective for a token).
    pub async fn holds_anywhere(&self, db: &Db, p: Permission) -> Result<bool> {
        let Some(who) = &self.who else { return Ok(false) };
        if who.federation_admin {
            return Ok(true);
        }
        if let (true, Some((_, token_role))) = (who.admin_everywhere, who.token) {
            return Ok(token_role.grants(p));
        }
        let rows = sqlx::query("SELECT collective_id, role FROM memberships WHERE user_id = $1")
            .bind(who.user_id)
            .fetch_all(db.pool())
            .await?;
        for r in &rows {
            let cid: CollectiveId = r.try_get("collective_id")?;
            let Some(mut role) = Role::parse(&r.try_get::<String, _>("role")?) else { continue };
            if let Some((token_collective, token_role)) = who.token {
                if token_collective != cid {
                    continue;
                }
                role = role.min(token_role);
            }
            if role.grants(p) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The collectives where the caller holds `p` (every one for a federation admin: `None`).
    pub async fn collectives_with(&self, db: &Db, p: Permission) -> Result<Option<Vec<CollectiveId>>> {
        let Some(who) = &self.who else { return Ok(Some(Vec::new())) };
        if who.federation_admin {
            return Ok(None);
        }
        if let (true, Some((token_collective, token_role))) = (who.admin_everywhere, who.token) {
            return Ok(Some(if token_role.grants(p) { vec![token_collective] } else { Vec::new() }));
        }
        let rows = sqlx::query("SELECT collective_id, role FROM memberships WHERE user_id = $1")
            .bind(who.user_id)
            .fetch_all(db.pool())
            .await?;
        let mut ids = Vec::new();
        for r in &rows {
            let cid: CollectiveId = r.try_get("collective_id")?;
            let Some(mut role) = Role::parse(&r.try_get::<String, _>("role")?) else { continue };
            if let Some((token_collective, token_role)) = who.token {
                if token_collective != cid {
                    continue;
                }
                role = role.min(token_role);
            }
            if role.grants(p) && !ids.contains(&cid) {
                ids.push(cid);
            }
        }
        Ok(Some(ids))
    }
}

impl Cap<scope::SignedIn> {
    pub fn user(&self) -> UserId {
        self.user_id().unwrap_or_default()
    }
}

impl Cap<scope::Federation> {
    pub fn user(&self) -> UserId {
        self.user_id().unwrap_or_default()
    }
}

impl Cap<scope::Collective> {
    pub fn collective(&self) -> &CollectiveRef {
        &self.data
    }
}

impl Cap<scope::Server> {
    pub fn collective(&self) -> &CollectiveRef {
        &self.data.0
    }
    pub fn server(&self) -> &ServerRow {
        &self.data.1
    }
}

impl Cap<scope::App> {
    pub fn collective(&self) -> &CollectiveRef {
        &self.data.0
    }
    pub fn app(&self) -> &AppRow {
        &self.data.1
    }
}

impl Cap<scope::Job> {
    pub fn collective(&self) -> &CollectiveRef {
        &self.data.0
    }
    pub fn app(&self) -> &AppRow {
        &self.data.1
    }
    pub fn job(&self) -> &JobSummary {
        &self.data.2
    }
}

/// What a caller may do with a recipe, decided once per request.
#[derive(Debug, Clone)]
pub struct RecipeAccess {
    pub recipe: RecipeRow,
    pub maintains: bool,
    pub reviews: bool,
}

impl Cap<scope::Recipe> {
    pub fn recipe(&self) -> &RecipeRow {
        &self.data.recipe
    }
    pub fn maintains(&self) -> bool {
        self.data.maintains
    }
}

impl Cap<scope::Proposal> {
    pub fn recipe(&self) -> &RecipeRow {
        &self.data.0.recipe
    }
    pub fn proposal(&self) -> &ProposalRow {
        &self.data.1
    }
    pub fn reviews(&self) -> bool {
        self.data.0.reviews
    }
}

/// How a scope's key is turned into what the handler acts on. Implemented here, for each scope
/// of `ops::scope`: nothing else can make a [`Cap`].
pub trait Resolve: scope::Scope + Sized {
    type Data: Send + Sync + 'static;
    /// What the capability names, for the log (`collective-a/app.example.org`).
    fn label(data: &Self::Data) -> String;
    /// The resource named by `key`, and the caller's role in its collective. `who` is `None`
    /// only for public scopes.
    fn resolve<'a>(
        st: &'a AppState,
        who: Option<&'a Who>,
        key: Self::Key<'a>,
        need: Need,
    ) -> impl Future<Output = Result<(Self::Data, Option<Role>)>> + Send + 'a;
}

fn who_of(caller: &Caller) -> Option<Who> {
    match &caller.principal {
        Principal::Anonymous => None,
        Principal::User(u) => Some(Who {
            user_id: u.user_id,
            federation_admin: u.is_federation_admin,
            admin_everywhere: u.is_federation_admin,
            token: None,
        }),
        Principal::Token(t) => Some(Who {
            user_id: t.user_id,
            federation_admin: false,
            admin_everywhere: t.owner_is_federation_admin,
            token: Some((t.collective_id, t.role)),
        }),
    }
}

/// The one authorization step: checks the caller against `O`'s declaration and resolves what
/// `input` names. Refusals are 401 (not signed in), 403 (signed in, not allowed) or 404 (the
/// resource does not exist *for this caller*: another collective's things look absent).
pub async fn authorize<O: Op>(st: &AppState, caller: &Caller, input: &O) -> Result<Cap<O::Scope>>
where
    O::Scope: Resolve,
{
    let who = who_of(caller);
    let public = <O::Scope as scope::Scope>::NAME == "public";
    match &who {
        None if !public => return Err(ApiError::Unauthenticated.into()),
        Some(w) if O::SESSION_ONLY && w.token.is_some() => {
            return Err(ApiError::forbidden("API tokens cannot do this; sign in").into())
        }
        _ => {}
    }
    let federation_only = <O::Scope as scope::Scope>::NAME == "federation" || O::NEED == Need::FederationAdmin;
    if federation_only && !who.as_ref().is_some_and(|w| w.federation_admin) {
        return Err(ApiError::forbidden("only a federation admin can do this").into());
    }
    let (data, role) = <O::Scope as Resolve>::resolve(st, who.as_ref(), input.key(), O::NEED).await?;
    let cap = Cap { data, who, role, origin: Origin::of(caller) };
    if let Need::Anywhere(p) = O::NEED {
        if !cap.holds_anywhere(&st.db, p).await? {
            return Err(ApiError::forbidden(format!(
                "only collective {}s can {}, and you are not one in any collective",
                Role::least_granting(p),
                p.what()
            ))
            .into());
        }
    }
    Ok(cap)
}

/// For code that acts for the system itself, outside any request (the job worker, the
/// scheduler, the command line): a capability for a resource it already holds. Grep-able on
/// purpose; never reachable from a request.
pub fn system_app(collective: CollectiveRef, app: AppRow, origin: Origin) -> Cap<scope::App> {
    Cap { data: (collective, app), who: None, role: Some(Role::Admin), origin }
}

pub async fn find_collective(db: &Db, slug: &str) -> Result<Option<CollectiveRef>> {
    let row = sqlx::query("SELECT id, slug, name FROM collectives WHERE slug = $1")
        .bind(slug)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| Ok(CollectiveRef { id: r.try_get("id")?, slug: r.try_get("slug")?, name: r.try_get("name")? }))
        .transpose()
}

pub async fn collective_by_id(db: &Db, id: CollectiveId) -> Result<Option<CollectiveRef>> {
    let row =
        sqlx::query("SELECT id, slug, name FROM collectives WHERE id = $1").bind(id).fetch_optional(db.pool()).await?;
    row.map(|r| Ok(CollectiveRef { id: r.try_get("id")?, slug: r.try_get("slug")?, name: r.try_get("name")? }))
        .transpose()
}

/// The highest role `user_id` holds in `collective_id`, from any source.
pub async fn effective_role(db: &Db, collective_id: CollectiveId, user_id: UserId) -> Result<Option<Role>> {
    let rows = sqlx::query("SELECT role FROM memberships WHERE collective_id = $1 AND user_id = $2")
        .bind(collective_id)
        .bind(user_id)
        .fetch_all(db.pool())
        .await?;
    let mut best = None;
    for r in rows {
        let role: String = r.try_get("role")?;
        best = best.max(Role::parse(&role));
    }
    Ok(best)
}

/// The role `who` acts with in `collective_id`: what the person holds there (a federation admin
/// holds admin everywhere), capped for a token by its own collective and role.
async fn role_in(db: &Db, who: &Who, collective_id: CollectiveId) -> Result<Option<Role>> {
    let held =
        if who.admin_everywhere { Some(Role::Admin) } else { effective_role(db, collective_id, who.user_id).await? };
    Ok(match who.token {
        Some((token_collective, _)) if token_collective != collective_id => None,
        Some((_, token_role)) => held.map(|r| r.min(token_role)),
        None => held,
    })
}

/// A collective by slug with `who`'s role there. Someone with no role there is told it does
/// not exist, exactly as for a collective that does not: tenants do not see each other.
async fn collective_role(db: &Db, who: &Who, slug: &str) -> Result<(CollectiveRef, Role)> {
    CollectiveSlug::parse(slug)?;
    let not_found = || Error::from(ApiError::not_found(format!("collective {slug:?}")));
    let c = find_collective(db, slug).await?.ok_or_else(not_found)?;
    let role = role_in(db, who, c.id).await?.ok_or_else(not_found)?;
    Ok((c, role))
}

fn refusal(slug: &str, role: Role, p: Permission) -> ApiError {
    ApiError::forbidden(format!("your role in {slug} ({role}) does not allow {}", permission_words(p)))
}

/// A collective-scoped resource's collective and the caller's role, checked against `need`.
async fn collective_for(st: &AppState, who: Option<&Who>, slug: &str, need: Need) -> Result<(CollectiveRef, Role)> {
    let who = who.ok_or(ApiError::Unauthenticated)?;
    if need == Need::FederationAdmin {
        // Checked before resolving: only a federation admin gets here.
        CollectiveSlug::parse(slug)?;
        let c =
            find_collective(&st.db, slug).await?.ok_or_else(|| ApiError::not_found(format!("collective {slug:?}")))?;
        return Ok((c, Role::Admin));
    }
    let (c, role) = collective_role(&st.db, who, slug).await?;
    check_need(&c.slug, role, need)?;
    Ok((c, role))
}

fn check_need(slug: &str, role: Role, need: Need) -> Result<()> {
    match need {
        Need::Permission(p) if !role.grants(p) => Err(refusal(slug, role, p).into()),
        Need::SeeRecipe | Need::MaintainRecipe | Need::ReviewRelease | Need::Anywhere(_) => {
            Err(Error::internal("a recipe or signed-in need declared on a collective scope"))
        }
        _ => Ok(()),
    }
}

impl Resolve for scope::Public {
    type Data = ();
    fn label(_: &()) -> String {
        String::new()
    }
    async fn resolve<'a>(_: &'a AppState, _: Option<&'a Who>, _: (), _: Need) -> Result<((), Option<Role>)> {
        Ok(((), None))
    }
}

impl Resolve for scope::SignedIn {
    type Data = ();
    fn label(_: &()) -> String {
        String::new()
    }
    async fn resolve<'a>(_: &'a AppState, who: Option<&'a Who>, _: (), _: Need) -> Result<((), Option<Role>)> {
        who.ok_or(ApiError::Unauthenticated)?;
        Ok(((), None))
    }
}

impl Resolve for scope::Federation {
    type Data = ();
    fn label(_: &()) -> String {
        "federation".into()
    }
    async fn resolve<'a>(_: &'a AppState, who: Option<&'a Who>, _: (), _: Need) -> Result<((), Option<Role>)> {
        match who {
            Some(w) if w.federation_admin => Ok(((), Some(Role::Admin))),
            _ => Err(ApiError::forbidden("only a federation admin can do this").into()),
        }
    }
}

impl Resolve for scope::Collective {
    type Data = CollectiveRef;
    fn label(c: &CollectiveRef) -> String {
        c.slug.clone()
    }
    async fn resolve<'a>(
        st: &'a AppState,
        who: Option<&'a Who>,
        slug: &'a str,
        need: Need,
    ) -> Result<(CollectiveRef, Option<Role>)> {
        let (c, role) = collective_for(st, who, slug, need).await?;
        Ok((c, Some(role)))
    }
}

impl Resolve for scope::Server {
    type Data = (CollectiveRef, ServerRow);
    fn label((c, s): &(CollectiveRef, ServerRow)) -> String {
        format!("{}/server {}", c.slug, s.name)
    }
    async fn resolve<'a>(
        st: &'a AppState,
        who: Option<&'a Who>,
        (slug, name): (&'a str, &'a str),
        need: Need,
    ) -> Result<((CollectiveRef, ServerRow), Option<Role>)> {
        let (c, role) = collective_for(st, who, slug, need).await?;
        let server = crate::domain::apps::servers::by_name(st, &c, name.trim()).await?;
        Ok(((c, server), Some(role)))
    }
}

impl Resolve for scope::App {
    type Data = (CollectiveRef, AppRow);
    fn label((c, a): &(CollectiveRef, AppRow)) -> String {
        format!("{}/{}", c.slug, a.domain)
    }
    async fn resolve<'a>(
        st: &'a AppState,
        who: Option<&'a Who>,
        (slug, domain): (&'a str, &'a str),
        need: Need,
    ) -> Result<((CollectiveRef, AppRow), Option<Role>)> {
        let (c, role) = collective_for(st, who, slug, need).await?;
        let app = crate::domain::apps::apps::in_collective(st, &c, domain.trim()).await?;
        Ok(((c, app), Some(role)))
    }
}

impl Resolve for scope::Job {
    type Data = (CollectiveRef, AppRow, JobSummary);
    fn label((c, a, j): &(CollectiveRef, AppRow, JobSummary)) -> String {
        format!("{}/{} job {}", c.slug, a.domain, j.id)
    }
    async fn resolve<'a>(
        st: &'a AppState,
        who: Option<&'a Who>,
        id: JobId,
        need: Need,
    ) -> Result<((CollectiveRef, AppRow, JobSummary), Option<Role>)> {
        let who = who.ok_or(ApiError::Unauthenticated)?;
        let not_found = || Error::from(ApiError::not_found(format!("job {id}")));
        let job = crate::domain::apps::jobs::get(st, id).await?.ok_or_else(not_found)?;
        let app = crate::domain::apps::apps::by_id(st, job.app_id).await?.ok_or_else(not_found)?;
        let c = collective_by_id(&st.db, app.collective_id).await?.ok_or_else(not_found)?;
        let role = if need == Need::FederationAdmin {
            Role::Admin
        } else {
            role_in(&st.db, who, c.id).await?.ok_or_else(not_found)?
        };
        check_need(&c.slug, role, need)?;
        Ok(((c, app, job), Some(role)))
    }
}

/// What `who` may do with `recipe`: a private recipe (registered with credentials) is visible
/// only to federation admins, its maintainers and the collectives that run it.
async fn recipe_access(st: &AppState, who: Option<&Who>, recipe: RecipeRow) -> Result<(RecipeAccess, bool)> {
    let private = recipe.credential_enc.is_some();
    let Some(who) = who else {
        return Ok((RecipeAccess { recipe, maintains: false, reviews: false }, !private));
    };
    if who.federation_admin {
        return Ok((RecipeAccess { recipe, maintains: true, reviews: true }, true));
    }
    let mut maintains = false;
    let mut reviews = false;
    let mut visible = !private;
    let rows = sqlx::query("SELECT user_id, collective_id FROM recipe_maintainers WHERE recipe_id = $1")
        .bind(recipe.id)
        .fetch_all(st.db.pool())
        .await?;
    for r in &rows {
        let uid: Option<UserId> = r.try_get("user_id")?;
        let cid: Option<CollectiveId> = r.try_get("collective_id")?;
        if uid == Some(who.user_id) && who.token.is_none() {
            (maintains, reviews, visible) = (true, true, true);
        }
        if let Some(cid) = cid {
            if let Some(role) = role_in(&st.db, who, cid).await? {
                visible |= role.grants(Permission::ViewRecipes);
                // Maintaining is a person's act: never through a token.
                if who.token.is_none() {
                    maintains |= role.grants(Permission::MaintainRecipes);
                    reviews |= role.grants(Permission::ReviewReleases);
                }
            }
        }
    }
    if !visible {
        let runs = sqlx::query("SELECT DISTINCT collective_id FROM apps WHERE recipe_id = $1")
            .bind(recipe.id)
            .fetch_all(st.db.pool())
            .await?;
        for r in &runs {
            let cid: CollectiveId = r.try_get("collective_id")?;
            if role_in(&st.db, who, cid).await?.is_some_and(|role| role.grants(Permission::ViewRecipes)) {
                visible = true;
                break;
            }
        }
    }
    Ok((RecipeAccess { recipe, maintains, reviews }, visible))
}

impl<S: Resolve> Cap<S> {
    /// Whether the caller may see `recipe` (lists filter with it).
    pub async fn sees_recipe(&self, st: &AppState, recipe: &RecipeRow) -> Result<bool> {
        Ok(recipe_access(st, self.who.as_ref(), recipe.clone()).await?.1)
    }
}

fn check_recipe_need(access: &RecipeAccess, visible: bool, need: Need, what: &str) -> Result<()> {
    if !visible {
        return Err(ApiError::not_found(what).into());
    }
    let name = &access.recipe.name;
    match need {
        Need::MaintainRecipe if !access.maintains => {
            Err(ApiError::forbidden(format!("only maintainers of {name} can do this")).into())
        }
        Need::ReviewRelease if !access.reviews => {
            Err(ApiError::forbidden(format!("only maintainers of {name} review its releases")).into())
        }
        Need::Permission(_) | Need::Anywhere(_) => {
            Err(Error::internal("a collective permission declared on a recipe scope"))
        }
        _ => Ok(()),
    }
}

impl Resolve for scope::Recipe {
    type Data = RecipeAccess;
    fn label(r: &RecipeAccess) -> String {
        format!("recipe {}", r.recipe.name)
    }
    async fn resolve<'a>(
        st: &'a AppState,
        who: Option<&'a Who>,
        name: &'a str,
        need: Need,
    ) -> Result<(RecipeAccess, Option<Role>)> {
        let what = format!("recipe {name:?}");
        let recipe =
            crate::domain::recipes::store::find(st, name.trim()).await?.ok_or_else(|| ApiError::not_found(&what))?;
        let (access, visible) = recipe_access(st, who, recipe).await?;
        check_recipe_need(&access, visible, need, &what)?;
        Ok((access, None))
    }
}

impl Resolve for scope::Proposal {
    type Data = (RecipeAccess, ProposalRow);
    fn label((r, p): &(RecipeAccess, ProposalRow)) -> String {
        format!("recipe {} proposal {}", r.recipe.name, p.id)
    }
    async fn resolve<'a>(
        st: &'a AppState,
        who: Option<&'a Who>,
        id: ProposalId,
        need: Need,
    ) -> Result<((RecipeAccess, ProposalRow), Option<Role>)> {
        let what = format!("release proposal {id}");
        let proposal =
            crate::domain::recipes::review::find_row(st, id).await?.ok_or_else(|| ApiError::not_found(&what))?;
        let recipe = crate::domain::recipes::store::find(st, &proposal.recipe)
            .await?
            .ok_or_else(|| ApiError::not_found(&what))?;
        let (access, visible) = recipe_access(st, who, recipe).await?;
        check_recipe_need(&access, visible, need, &what)?;
        Ok(((access, proposal), None))
    }
}

/// "to … (an admin's right)" — what `p` allows and who has it, for a refusal.
fn permission_words(p: Permission) -> String {
    let least = Role::least_granting(p);
    let article = if least == Role::Admin || least == Role::Operator { "an" } else { "a" };
    format!("you to {} ({article} {least}'s right)", p.what())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["ab", "collective-a", "co-op-42", "a1"] {
            assert!(CollectiveSlug::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "-ab", "ab-", "Ab", "a b", "a_b", "a.b", "", &"a".repeat(64)] {
            assert!(CollectiveSlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn permission_words_read_as_words() {
        assert_eq!(
            permission_words(Permission::ManageMembers),
            "you to manage members and invitations (an admin's right)"
        );
        assert_eq!(permission_words(Permission::OperateApps), "you to deploy and operate apps (an operator's right)");
    }
}
