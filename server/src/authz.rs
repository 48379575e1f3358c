//! Authorization as types. A privileged service function takes a capability value — e.g.
//! `CollectiveAccess<ManageMembers>` — that only [`authorize`] can build, after checking the
//! caller's role in that collective against the one role table (`Role::grants`). Tenant scoping
//! comes from the capability's collective id, never from request input.

use crate::audit::Origin;
use crate::db::Db;
use crate::error::{Error, Result};
use potluck_app::error::ApiError;
use potluck_app::model::{Permission, Role};
use potluck_app::ports::{Caller, Principal};
use sqlx::Row;
use std::marker::PhantomData;

/// A permission as a type, so that capabilities say what they allow.
pub trait Perm {
    const PERMISSION: Permission;
}

/// Marker types, one per [`Permission`].
pub mod can {
    use super::Perm;
    use potluck_app::model::Permission;
    macro_rules! perms {
        ($($name:ident),* $(,)?) => {
            $(
                #[derive(Debug)]
                pub struct $name;
                impl Perm for $name {
                    const PERMISSION: Permission = Permission::$name;
                }
            )*
        };
    }
    perms!(
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
    );
}

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
    pub id: i64,
    pub slug: String,
    pub name: String,
}

/// Proof that the caller may do `P` in `collective`.
#[derive(Debug)]
pub struct CollectiveAccess<P: Perm> {
    pub collective: CollectiveRef,
    /// The caller's effective role there (`Admin` for a federation admin).
    pub role: Role,
    pub user_id: i64,
    pub origin: Origin,
    _permission: PhantomData<P>,
}

/// Proof that the caller is a federation admin (never true for API tokens).
#[derive(Debug)]
pub struct FederationAdmin {
    pub user_id: i64,
    pub origin: Origin,
}

/// Proof that a person is signed in (through a session or a token).
#[derive(Debug)]
pub struct SignedIn {
    pub user_id: i64,
    pub is_federation_admin: bool,
    pub origin: Origin,
}

pub fn signed_in(caller: &Caller) -> Result<SignedIn> {
    match &caller.principal {
        Principal::Anonymous => Err(ApiError::Unauthenticated.into()),
        Principal::User(u) => {
            Ok(SignedIn { user_id: u.user_id, is_federation_admin: u.is_federation_admin, origin: Origin::of(caller) })
        }
        Principal::Token(t) => {
            Ok(SignedIn { user_id: t.user_id, is_federation_admin: false, origin: Origin::of(caller) })
        }
    }
}

/// Only a person signed in through a browser session (not an API token).
pub fn session_user(caller: &Caller) -> Result<SignedIn> {
    match &caller.principal {
        Principal::Token(_) => Err(ApiError::forbidden("API tokens cannot do this; sign in").into()),
        _ => signed_in(caller),
    }
}

pub fn authorize_federation(caller: &Caller) -> Result<FederationAdmin> {
    match &caller.principal {
        Principal::Anonymous => Err(ApiError::Unauthenticated.into()),
        Principal::User(u) if u.is_federation_admin => {
            Ok(FederationAdmin { user_id: u.user_id, origin: Origin::of(caller) })
        }
        _ => Err(ApiError::forbidden("only a federation admin can do this").into()),
    }
}

pub async fn find_collective(db: &Db, slug: &str) -> Result<Option<CollectiveRef>> {
    let row = sqlx::query("SELECT id, slug, name FROM collectives WHERE slug = $1")
        .bind(slug)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| Ok(CollectiveRef { id: r.try_get("id")?, slug: r.try_get("slug")?, name: r.try_get("name")? }))
        .transpose()
}

/// The highest role `user_id` holds in `collective_id`, from any source.
pub async fn effective_role(db: &Db, collective_id: i64, user_id: i64) -> Result<Option<Role>> {
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

/// Checks that the caller may do `P` in the collective `slug`. Someone with no role there is
/// told it does not exist, exactly as for a collective that does not: tenants do not see each other.
pub async fn authorize<P: Perm>(db: &Db, caller: &Caller, slug: &str) -> Result<CollectiveAccess<P>> {
    let not_found = || Error::from(ApiError::not_found(format!("collective {slug:?}")));
    let (user_id, fed_admin, token_scope) = match &caller.principal {
        Principal::Anonymous => return Err(ApiError::Unauthenticated.into()),
        Principal::User(u) => (u.user_id, u.is_federation_admin, None),
        Principal::Token(t) => (t.user_id, t.owner_is_federation_admin, Some((t.collective_id, t.role))),
    };
    CollectiveSlug::parse(slug)?;
    let collective = find_collective(db, slug).await?.ok_or_else(not_found)?;
    // What the person holds there (a federation admin holds admin everywhere)…
    let held = if fed_admin { Some(Role::Admin) } else { effective_role(db, collective.id, user_id).await? };
    // …capped, for a token, by the token's own collective and role.
    let role = match token_scope {
        Some((token_collective, _)) if token_collective != collective.id => None,
        Some((_, token_role)) => held.map(|r| r.min(token_role)),
        None => held,
    }
    .ok_or_else(not_found)?;
    if !role.grants(P::PERMISSION) {
        return Err(ApiError::forbidden(format!(
            "your role in {} ({role}) does not allow {}",
            collective.slug,
            permission_words(P::PERMISSION)
        ))
        .into());
    }
    Ok(CollectiveAccess { collective, role, user_id, origin: Origin::of(caller), _permission: PhantomData })
}

fn permission_words(p: Permission) -> String {
    format!("{p:?}")
        .chars()
        .flat_map(|c| if c.is_uppercase() { vec![' ', c.to_ascii_lowercase()] } else { vec![c] })
        .collect::<String>()
        .trim()
        .to_string()
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
        assert_eq!(permission_words(Permission::ManageMembers), "manage members");
    }
}
