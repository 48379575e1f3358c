//! People: who am I, the federation's list of people, federation admins, and linking two
//! accounts of the same person.

use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::{Cap, Resolve};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::error::ApiError;
use potluck_app::model::{CollectiveId, ProviderId, UserId};
use potluck_app::model::{IdentityView, Me, MembershipSummary, Role, UserSummary};
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeMap;

/// The person behind a capability (none when signed out), as the pages show them: a token
/// sees only its collective, with at most its role.
pub async fn me<S: Resolve>(st: &AppState, cap: &Cap<S>) -> Result<Option<Me>> {
    let Some(user_id) = cap.user_id() else { return Ok(None) };
    let row = sqlx::query("SELECT display_name, email, is_federation_admin FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(st.db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let rows = sqlx::query(
        "SELECT c.slug, c.name, m.role FROM memberships m JOIN collectives c ON c.id = m.collective_id \
         WHERE m.user_id = $1 ORDER BY c.slug",
    )
    .bind(user_id)
    .fetch_all(st.db.pool())
    .await?;
    let mut best: BTreeMap<String, (String, Role)> = BTreeMap::new();
    // (rows are read again below for a token's collective)
    for r in &rows {
        let Some(role) = Role::parse(&r.try_get::<String, _>("role")?) else { continue };
        let slug: String = r.try_get("slug")?;
        let name: String = r.try_get("name")?;
        let e = best.entry(slug).or_insert((name, role));
        e.1 = e.1.max(role);
    }
    let token_scope = cap.token();
    let mut memberships: Vec<MembershipSummary> = best
        .into_iter()
        .map(|(slug, (name, role))| MembershipSummary { collective_slug: slug, collective_name: name, role })
        .collect();
    let is_admin = row.try_get::<i64, _>("is_federation_admin")? != 0;
    if let Some((token_collective, token_role)) = token_scope {
        // A token sees only its collective, with at most its role.
        let c = sqlx::query("SELECT slug, name FROM collectives WHERE id = $1")
            .bind(token_collective)
            .fetch_optional(st.db.pool())
            .await?;
        memberships.clear();
        if let Some(c) = c {
            let held = if cap.acts_for_federation_admin() {
                Some(Role::Admin)
            } else {
                best_role(&rows, &c.try_get::<String, _>("slug")?)?
            };
            if let Some(held) = held {
                memberships.push(MembershipSummary {
                    collective_slug: c.try_get("slug")?,
                    collective_name: c.try_get("name")?,
                    role: held.min(token_role),
                });
            }
        }
    }
    Ok(Some(Me {
        user_id,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        is_federation_admin: is_admin && token_scope.is_none(),
        memberships,
    }))
}

fn best_role(rows: &[sqlx::any::AnyRow], slug: &str) -> Result<Option<Role>> {
    let mut best = None;
    for r in rows {
        if r.try_get::<String, _>("slug")? == slug {
            best = best.max(Role::parse(&r.try_get::<String, _>("role")?));
        }
    }
    Ok(best)
}

async fn identities_of(st: &AppState, user_id: UserId) -> Result<Vec<IdentityView>> {
    let rows = sqlx::query(
        "SELECT i.provider_id, p.display_name, i.subject, i.email, i.groups FROM identities i \
         JOIN identity_providers p ON p.id = i.provider_id WHERE i.user_id = $1 ORDER BY p.display_name, i.subject",
    )
    .bind(user_id)
    .fetch_all(st.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let groups: String = r.try_get("groups")?;
            Ok(IdentityView {
                provider_id: r.try_get("provider_id")?,
                provider_name: r.try_get("display_name")?,
                subject: r.try_get("subject")?,
                email: r.try_get("email")?,
                groups: serde_json::from_str(&groups).unwrap_or_default(),
            })
        })
        .collect()
}

/// `whoami`: like [`me`], for a principal that must be signed in.
pub async fn whoami(st: &AppState, cap: &Cap<scope::SignedIn>) -> Result<Me> {
    me(st, cap).await?.ok_or_else(|| ApiError::Unauthenticated.into())
}

pub async fn my_identities(st: &AppState, cap: &Cap<scope::SignedIn>) -> Result<Vec<IdentityView>> {
    identities_of(st, cap.user()).await
}

pub async fn list_users(st: &AppState, _cap: &Cap<scope::Federation>) -> Result<Vec<UserSummary>> {
    let rows = sqlx::query(
        "SELECT id, display_name, email, is_federation_admin, created_at, last_login_at FROM users ORDER BY display_name, id",
    )
    .fetch_all(st.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let id: UserId = r.try_get("id")?;
        out.push(UserSummary {
            id,
            display_name: r.try_get("display_name")?,
            email: r.try_get("email")?,
            is_federation_admin: r.try_get::<i64, _>("is_federation_admin")? != 0,
            identities: identities_of(st, id).await?,
            created_at: r.try_get("created_at")?,
            last_login_at: r.try_get("last_login_at")?,
        });
    }
    Ok(out)
}

async fn user_name(st: &AppState, user_id: UserId) -> Result<String> {
    let row =
        sqlx::query("SELECT display_name FROM users WHERE id = $1").bind(user_id).fetch_optional(st.db.pool()).await?;
    Ok(row.ok_or_else(|| ApiError::not_found(format!("user {user_id}")))?.try_get("display_name")?)
}

pub async fn set_federation_admin(
    st: &AppState,
    cap: &Cap<scope::Federation>,
    input: potluck_app::api::SetFederationAdmin,
) -> Result<()> {
    let (user_id, admin) = (input.user_id, input.admin);
    let name = user_name(st, user_id).await?;
    let mut tx = audit::begin(&st.db).await?;
    if !admin {
        let others: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE is_federation_admin = $1 AND id <> $2")
            .bind(1_i64)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if others == 0 {
            return Err(ApiError::conflict("this is the last federation admin; make someone else admin first").into());
        }
    }
    sqlx::query("UPDATE users SET is_federation_admin = $1 WHERE id = $2")
        .bind(i64::from(admin))
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let action = if admin { AuditAction::FederationAdminGrant } else { AuditAction::FederationAdminRevoke };
    tx.record(cap.origin(), Event::new(action, format!("user {name}")).details(json!({ "user_id": user_id }))).await?;
    tx.commit().await?;
    Ok(())
}

/// Moves everything of `merge` (sign-ins, memberships, tokens) to `keep` and removes `merge`.
pub async fn link_users(st: &AppState, cap: &Cap<scope::Federation>, input: potluck_app::api::LinkUsers) -> Result<()> {
    let (keep, merge) = (input.keep_user_id, input.merge_user_id);
    if keep == merge {
        return Err(ApiError::invalid("merge_user_id", "choose two different accounts").into());
    }
    let keep_name = user_name(st, keep).await?;
    let merge_name = user_name(st, merge).await?;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE identities SET user_id = $1 WHERE user_id = $2")
        .bind(keep)
        .bind(merge)
        .execute(&mut *tx)
        .await?;
    let rows =
        sqlx::query("SELECT collective_id, source, provider_id, role, granted_at FROM memberships WHERE user_id = $1")
            .bind(merge)
            .fetch_all(&mut *tx)
            .await?;
    for r in &rows {
        let collective_id: CollectiveId = r.try_get("collective_id")?;
        let source: String = r.try_get("source")?;
        let provider_id: ProviderId = r.try_get("provider_id")?;
        let role: String = r.try_get("role")?;
        let existing: Option<String> = sqlx::query(
            "SELECT role FROM memberships WHERE collective_id = $1 AND user_id = $2 AND source = $3 AND provider_id = $4",
        )
        .bind(collective_id)
        .bind(keep)
        .bind(&source)
        .bind(provider_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("role"))
        .transpose()?;
        let merged = match existing.as_deref().and_then(Role::parse) {
            Some(old) => old.max(Role::parse(&role).unwrap_or(Role::Viewer)),
            None => Role::parse(&role).unwrap_or(Role::Viewer),
        };
        sqlx::query(
            "INSERT INTO memberships (collective_id, user_id, source, provider_id, role, granted_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (collective_id, user_id, source, provider_id) DO UPDATE SET role = $5",
        )
        .bind(collective_id)
        .bind(keep)
        .bind(&source)
        .bind(provider_id)
        .bind(merged.as_str())
        .bind(r.try_get::<i64, _>("granted_at")?)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE api_tokens SET user_id = $1 WHERE user_id = $2")
        .bind(keep)
        .bind(merge)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE invitations SET created_by = $1 WHERE created_by = $2")
        .bind(keep)
        .bind(merge)
        .execute(&mut *tx)
        .await?;
    let merged_admin = sqlx::query("SELECT is_federation_admin FROM users WHERE id = $1")
        .bind(merge)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64, _>("is_federation_admin")?
        != 0;
    if merged_admin {
        sqlx::query("UPDATE users SET is_federation_admin = $1 WHERE id = $2")
            .bind(1_i64)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM users WHERE id = $1").bind(merge).execute(&mut *tx).await?;
    let event = Event::new(AuditAction::UserLink, format!("user {keep_name}")).details(json!({
        "kept_user_id": keep,
        "merged_user_id": merge,
        "merged_user": merge_name,
    }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}
