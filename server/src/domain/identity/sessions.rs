//! Server-side sessions behind an opaque cookie, and API tokens: both are random values whose
//! SHA-256 alone is stored.

use crate::adapters::crypto::{random_token, token_hash};
use crate::adapters::db::now_ms;
use crate::error::Result;
use crate::state::AppState;
use potluck_app::model::Role;
use potluck_app::model::{ProviderId, TokenId, UserId};
use potluck_app::ports::{TokenPrincipal, UserPrincipal};
use sqlx::Row;

/// Sliding expiry is written back at most this often, not on every request.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Starts a session for `user_id`; returns the cookie value. The id is new at every sign-in.
pub async fn create(
    st: &AppState,
    tx: &mut sqlx::AnyConnection,
    user_id: UserId,
    provider_id: Option<ProviderId>,
) -> Result<String> {
    let token = random_token("");
    let now = now_ms();
    let expires = now + st.config.session_absolute_minutes * 60_000;
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, provider_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash(&token))
    .bind(user_id)
    .bind(provider_id)
    .bind(now)
    .bind(now)
    .bind(expires)
    .execute(&mut *tx)
    .await?;
    Ok(token)
}

/// The person behind a session cookie, if the session exists and has not expired (idle or
/// absolute), with the origin their provider's sign-out page lives at (the logout form is
/// redirected there, so the page's `form-action` must allow it). Expired sessions are deleted.
pub async fn resolve(st: &AppState, token: &str) -> Result<Option<(UserPrincipal, Option<String>)>> {
    let hash = token_hash(token);
    let row = sqlx::query(
        "SELECT s.user_id, s.last_seen_at, s.expires_at, u.display_name, u.is_federation_admin, \
         p.end_session_endpoint \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         LEFT JOIN identity_providers p ON p.id = s.provider_id WHERE s.id_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(st.db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let now = now_ms();
    let last_seen: i64 = row.try_get("last_seen_at")?;
    let expires: i64 = row.try_get("expires_at")?;
    if now > expires || now - last_seen > st.config.session_idle_minutes * 60_000 {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(&hash).execute(st.db.pool()).await?;
        return Ok(None);
    }
    if now - last_seen > TOUCH_EVERY_MS {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(&hash)
            .execute(st.db.pool())
            .await?;
    }
    Ok(Some((
        UserPrincipal {
            user_id: row.try_get("user_id")?,
            display_name: row.try_get("display_name")?,
            is_federation_admin: row.try_get::<i64, _>("is_federation_admin")? != 0,
        },
        row.try_get::<Option<String>, _>("end_session_endpoint")?.as_deref().and_then(origin_of),
    )))
}

/// `scheme://host[:port]` of a URL, as CSP source expressions spell an origin.
fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Ends a session; returns the provider it was started with (for RP-initiated logout).
pub async fn end(st: &AppState, token: &str) -> Result<Option<(UserId, Option<ProviderId>)>> {
    let row = sqlx::query("DELETE FROM sessions WHERE id_hash = $1 RETURNING user_id, provider_id")
        .bind(token_hash(token))
        .fetch_optional(st.db.pool())
        .await?;
    row.map(|r| Ok((r.try_get("user_id")?, r.try_get("provider_id")?))).transpose()
}

/// The principal behind an API token, if it is valid: not revoked, not expired. Its role is
/// capped by the creator's current role at each use (see `authz::authorize`).
pub async fn resolve_token(st: &AppState, token: &str) -> Result<Option<TokenPrincipal>> {
    let row = sqlx::query(
        "SELECT t.id, t.user_id, t.collective_id, t.role, t.expires_at, t.last_used_at, u.display_name, u.is_federation_admin \
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
    )
    .bind(token_hash(token))
    .fetch_optional(st.db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let now = now_ms();
    let expires: Option<i64> = row.try_get("expires_at")?;
    if expires.is_some_and(|e| now > e) {
        return Ok(None);
    }
    let id: TokenId = row.try_get("id")?;
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    if last_used.is_none_or(|t| now - t > TOUCH_EVERY_MS) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(st.db.pool())
            .await?;
    }
    let role: String = row.try_get("role")?;
    let Some(role) = Role::parse(&role) else { return Ok(None) };
    let name: String = row.try_get("display_name")?;
    Ok(Some(TokenPrincipal {
        token_id: id,
        user_id: row.try_get("user_id")?,
        display_name: name,
        collective_id: row.try_get("collective_id")?,
        role,
        owner_is_federation_admin: row.try_get::<i64, _>("is_federation_admin")? != 0,
    }))
}
