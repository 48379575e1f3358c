//! The first federation admin: a one-time link, printed at start while there is no federation
//! admin, and by `potluck admin bootstrap-link` at any time (also a way back in).

use super::sessions;
use crate::adapters::crypto::{random_token, token_hash};
use crate::adapters::db::{now_ms, Db};
use crate::domain::audit::{self, Actor, AuditAction, Event, Origin};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::error::ApiError;
use potluck_app::model::UserId;
use potluck_app::ports::{Caller, Principal};
use serde_json::json;
use sqlx::Row;

/// How long a bootstrap link works.
pub const LINK_TTL_MS: i64 = 24 * 3600 * 1000;

pub async fn federation_admin_exists(db: &Db) -> Result<bool> {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE is_federation_admin = $1")
        .bind(1_i64)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
    Ok(n > 0)
}

/// Creates a new one-time link (`<public base>/bootstrap/<token>`).
pub async fn create_link(db: &Db, public_base: &str) -> Result<String> {
    let token = random_token("");
    let now = now_ms();
    let mut tx = audit::begin(db).await?;
    sqlx::query("INSERT INTO bootstrap_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)")
        .bind(token_hash(&token))
        .bind(now)
        .bind(now + LINK_TTL_MS)
        .execute(&mut *tx)
        .await?;
    let event = Event::new(AuditAction::BootstrapLinkCreate, "bootstrap link")
        .details(json!({ "expires_at": now + LINK_TTL_MS }));
    tx.record(&Origin::system("potluck admin bootstrap-link"), event).await?;
    tx.commit().await?;
    Ok(format!("{public_base}/bootstrap/{token}"))
}

pub struct Claimed {
    pub user_id: UserId,
    /// A new session when the person was not signed in.
    pub session_token: Option<String>,
}

/// Makes whoever presents a valid, unused link a federation admin: the signed-in person, or a
/// new local account (to which they link their identity provider account later).
pub async fn claim(st: &AppState, caller: &Caller, token: &str) -> Result<Claimed> {
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let used = sqlx::query(
        "UPDATE bootstrap_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING created_at",
    )
    .bind(now)
    .bind(token_hash(token))
    .fetch_optional(&mut *tx)
    .await?;
    if used.is_none() {
        return Err(ApiError::forbidden(
            "this bootstrap link is unknown, used or expired; run `potluck admin bootstrap-link` for a new one",
        )
        .into());
    }
    let (user_id, name, session_token) = match &caller.principal {
        Principal::User(u) => (u.user_id, u.display_name.clone(), None),
        _ => {
            let name = "Federation admin".to_string();
            let id: UserId = sqlx::query(
                "INSERT INTO users (display_name, email, is_federation_admin, created_at) VALUES ($1, NULL, $2, $3) RETURNING id",
            )
            .bind(&name)
            .bind(1_i64)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
            let session = sessions::create(st, &mut tx, id, None).await?;
            (id, name, Some(session))
        }
    };
    sqlx::query("UPDATE users SET is_federation_admin = $1 WHERE id = $2")
        .bind(1_i64)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE bootstrap_tokens SET used_by = $1 WHERE token_hash = $2")
        .bind(user_id)
        .bind(token_hash(token))
        .execute(&mut *tx)
        .await?;
    let origin = Origin::as_actor(caller, Actor::user(user_id, &name));
    tx.record(
        &origin,
        Event::new(AuditAction::BootstrapClaim, format!("user {name}")).details(json!({ "user_id": user_id })),
    )
    .await?;
    tx.commit().await?;
    Ok(Claimed { user_id, session_token })
}
