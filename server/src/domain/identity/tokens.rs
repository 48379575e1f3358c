//! API tokens: made by a person for one collective with at most their role there, shown once,
//! stored as a hash, revocable.

use crate::adapters::crypto::{random_token, token_hash};
use crate::adapters::db::now_ms;
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::AppState;
use potluck_app::api::{CreateApiToken, RevokeApiToken};
use potluck_app::error::ApiError;
use potluck_app::model::{ApiTokenSummary, CreatedApiToken, OneTimeSecret, Role};
use potluck_app::model::{TokenId, UserId};
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;

pub const TOKEN_PREFIX: &str = "plk_";

fn summary(r: &sqlx::any::AnyRow) -> Result<ApiTokenSummary> {
    let role: String = r.try_get("role")?;
    let revoked: Option<i64> = r.try_get("revoked_at")?;
    Ok(ApiTokenSummary {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        collective_slug: r.try_get("slug")?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked: revoked.is_some(),
    })
}

const SELECT: &str = "SELECT t.id, t.name, c.slug, t.role, t.created_at, t.last_used_at, t.expires_at, t.revoked_at \
                      FROM api_tokens t JOIN collectives c ON c.id = t.collective_id";

pub async fn list(st: &AppState, cap: &Cap<scope::SignedIn>) -> Result<Vec<ApiTokenSummary>> {
    let rows = sqlx::query(&format!("{SELECT} WHERE t.user_id = $1 ORDER BY t.id DESC"))
        .bind(cap.user())
        .fetch_all(st.db.pool())
        .await?;
    rows.iter().map(summary).collect()
}

/// A token for the capability's collective, with at most the creator's role there.
pub async fn create(st: &AppState, cap: &Cap<scope::Collective>, input: CreateApiToken) -> Result<CreatedApiToken> {
    let name = input.name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::invalid("name", "give the token a name of 1 to 100 characters").into());
    }
    let collective = cap.collective().clone();
    let held = cap.role().unwrap_or(Role::Viewer);
    let expires_in_days = input.expires_in_days.filter(|d| *d > 0);
    if input.role > held {
        return Err(ApiError::forbidden(format!(
            "a token can have at most your own role in {} ({held})",
            collective.slug
        ))
        .into());
    }
    if let Some(days) = expires_in_days {
        if !(1..=3650).contains(&days) {
            return Err(ApiError::invalid("expires_in_days", "between 1 and 3650 days, or empty for no expiry").into());
        }
    }
    let token = random_token(TOKEN_PREFIX);
    let now = now_ms();
    let expires_at = expires_in_days.map(|d| now + d * 86_400_000);
    let mut tx = audit::begin(&st.db).await?;
    let id: TokenId = sqlx::query(
        "INSERT INTO api_tokens (user_id, collective_id, name, role, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(cap.user_id())
    .bind(collective.id)
    .bind(&name)
    .bind(input.role.as_str())
    .bind(token_hash(&token))
    .bind(now)
    .bind(expires_at)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let event = Event::new(AuditAction::ApiTokenCreate, format!("API token {name}"))
        .in_collective(collective.id, &collective.slug)
        .details(json!({ "token_id": id, "role": input.role, "expires_at": expires_at }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    let summary = ApiTokenSummary {
        id,
        name,
        collective_slug: collective.slug,
        role: input.role,
        created_at: now,
        last_used_at: None,
        expires_at,
        revoked: false,
    };
    Ok(CreatedApiToken { summary, token: OneTimeSecret(token) })
}

/// Revokes one of the caller's tokens (a federation admin: anyone's).
pub async fn revoke(st: &AppState, cap: &Cap<scope::SignedIn>, input: RevokeApiToken) -> Result<()> {
    let token_id = input.token_id;
    let row = sqlx::query(
        "SELECT t.user_id, t.name, t.collective_id, c.slug FROM api_tokens t JOIN collectives c ON c.id = t.collective_id \
         WHERE t.id = $1 AND t.revoked_at IS NULL",
    )
    .bind(token_id)
    .fetch_optional(st.db.pool())
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found(format!("active API token {token_id}")))?;
    let owner: UserId = row.try_get("user_id")?;
    if owner != cap.user() && !cap.is_federation_admin() {
        return Err(ApiError::not_found(format!("active API token {token_id}")).into());
    }
    let name: String = row.try_get("name")?;
    let slug: String = row.try_get("slug")?;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(token_id)
        .execute(&mut *tx)
        .await?;
    let event = Event::new(AuditAction::ApiTokenRevoke, format!("API token {name}"))
        .in_collective(row.try_get("collective_id")?, &slug)
        .details(json!({ "token_id": token_id }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}
