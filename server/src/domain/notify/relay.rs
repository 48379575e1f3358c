//! The federation's mail relay (one, set by a federation admin: email channels and personal
//! notifications go through it) and each person's own notification choices.

use crate::adapters::db::now_ms;
use crate::adapters::reach;
use crate::domain::audit::{self, Event};
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::AppState;
use potluck_app::actions::AuditAction;
use potluck_app::api::{SetMailRelay, SetMyNotifications};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;

/// How the relay's connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS; refused when the relay does not offer it.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only to hosts the federation allows (`notify_hosts_allow`).
    None,
}

impl Security {
    fn parse(s: &str) -> Option<Security> {
        match s.trim() {
            "" | "starttls" => Some(Security::StartTls),
            "tls" => Some(Security::Tls),
            "none" => Some(Security::None),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Security::StartTls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        }
    }
}

/// The relay with its password opened, for sending.
#[derive(Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sender: String,
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

/// The relay, if one is set.
pub async fn load(st: &AppState) -> Result<Option<Relay>> {
    let row = sqlx::query(
        "SELECT host, port, security, username, password_enc, sender, ca_pem FROM mail_settings WHERE id = 1",
    )
    .fetch_optional(st.db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let password =
        match r.try_get::<Option<Vec<u8>>, _>("password_enc")? {
            Some(sealed) => Some(st.secrets.open(&sealed).map_err(|_| {
                ApiError::unavailable("the mail relay's password cannot be opened with this instance key")
            })?),
            None => None,
        };
    Ok(Some(Relay {
        host: r.try_get("host")?,
        port: u16::try_from(r.try_get::<i64, _>("port")?).unwrap_or(587),
        security: Security::parse(&r.try_get::<String, _>("security")?).unwrap_or(Security::StartTls),
        username: r.try_get("username")?,
        password,
        sender: r.try_get("sender")?,
        ca_pem: r.try_get("ca_pem")?,
    }))
}

async fn view(st: &AppState) -> Result<Option<MailSettingsView>> {
    let row = sqlx::query(
        "SELECT host, port, security, username, password_enc, sender, ca_pem, updated_by_name, updated_at FROM mail_settings WHERE id = 1",
    )
    .fetch_optional(st.db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(MailSettingsView {
        host: r.try_get("host")?,
        port: u16::try_from(r.try_get::<i64, _>("port")?).unwrap_or(587),
        security: r.try_get("security")?,
        username: r.try_get("username")?,
        has_password: r.try_get::<Option<Vec<u8>>, _>("password_enc")?.is_some(),
        sender: r.try_get("sender")?,
        has_ca: r.try_get::<Option<String>, _>("ca_pem")?.is_some(),
        updated_by: r.try_get("updated_by_name")?,
        updated_at: r.try_get("updated_at")?,
    }))
}

pub async fn get(st: &AppState, _access: &Cap<scope::Federation>) -> Result<Option<MailSettingsView>> {
    view(st).await
}

/// Whether email can be sent at all.
pub async fn ready(st: &AppState) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 AS one FROM mail_settings WHERE id = 1").fetch_optional(st.db.pool()).await?.is_some())
}

/// An email address as a mailbox lettre accepts (`Name <a@b>` or `a@b`).
pub fn mailbox(field: &str, s: &str) -> std::result::Result<lettre::message::Mailbox, ApiError> {
    s.trim()
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| ApiError::invalid(field, format!("{:?} is not an email address: {e}", s.trim())))
}

/// `set_mail_relay`: checks the host may be reached (and without TLS only where allowed), the
/// sender and the CA, then stores the relay with its password sealed.
pub async fn set(st: &AppState, access: &Cap<scope::Federation>, input: SetMailRelay) -> Result<MailSettingsView> {
    let host = input.host.trim().to_string();
    if host.is_empty() || host.len() > 253 || host.contains(['/', ' ', '@']) {
        return Err(ApiError::invalid("host", "give the relay's host name or address").into());
    }
    if input.port == 0 {
        return Err(ApiError::invalid("port", "give the relay's port (587 for STARTTLS, 465 for TLS)").into());
    }
    let security = Security::parse(&input.security)
        .ok_or_else(|| ApiError::invalid("security", "choose starttls, tls or none"))?;
    let allowed = reach::allowed(&host, &st.config.notify_hosts_allow);
    if security == Security::None && !allowed {
        return Err(ApiError::invalid(
            "security",
            "a relay without TLS would carry the password and every message in the clear: only hosts the federation's configuration allows (notify_hosts_allow) may be used so",
        )
        .into());
    }
    reach::check(&host, input.port, &st.config.notify_hosts_allow, "the mail relay", "notify_hosts_allow")
        .await
        .map_err(|e| ApiError::invalid("host", e))?;
    mailbox("sender", &input.sender)?;
    let ca = input.ca_pem.trim();
    let ca = if ca.is_empty() {
        None
    } else {
        if ca.len() > 16 * 1024 {
            return Err(ApiError::invalid("ca_pem", "a CA certificate is a few kilobytes of PEM").into());
        }
        lettre::transport::smtp::client::Certificate::from_pem(ca.as_bytes())
            .map_err(|e| ApiError::invalid("ca_pem", format!("not a PEM certificate: {e}")))?;
        Some(ca.to_string())
    };
    let username = Some(input.username.trim().to_string()).filter(|u| !u.is_empty());
    let password = (!input.password.is_empty()).then(|| st.secrets.seal(&input.password));
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    // A password left empty keeps the one set (the form never shows it); no username, none.
    sqlx::query(
        "INSERT INTO mail_settings (id, host, port, security, username, password_enc, sender, ca_pem, updated_by_name, updated_at) \
         VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET host = excluded.host, port = excluded.port, security = excluded.security, \
         username = excluded.username, \
         password_enc = CASE WHEN excluded.username IS NULL THEN NULL ELSE COALESCE(excluded.password_enc, mail_settings.password_enc) END, \
         sender = excluded.sender, ca_pem = excluded.ca_pem, updated_by_name = excluded.updated_by_name, updated_at = excluded.updated_at",
    )
    .bind(&host)
    .bind(i64::from(input.port))
    .bind(security.as_str())
    .bind(&username)
    .bind(password.filter(|_| username.is_some()))
    .bind(input.sender.trim())
    .bind(&ca)
    .bind(&access.origin().actor.name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event = Event::new(AuditAction::MailRelaySet, format!("mail relay {host}:{}", input.port)).details(json!({
        "security": security.as_str(), "username": username, "sender": input.sender.trim(), "ca": ca.is_some(),
        "password_changed": !input.password.is_empty(),
    }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    view(st).await?.ok_or_else(|| ApiError::not_found("mail relay").into())
}

pub async fn remove(st: &AppState, access: &Cap<scope::Federation>) -> Result<()> {
    let mut tx = audit::begin(&st.db).await?;
    let gone = sqlx::query("DELETE FROM mail_settings WHERE id = 1").execute(&mut *tx).await?.rows_affected();
    if gone == 0 {
        return Err(ApiError::not_found("a mail relay").into());
    }
    tx.record(access.origin(), Event::new(AuditAction::MailRelayRemove, "mail relay")).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn mine(st: &AppState, access: &Cap<scope::SignedIn>) -> Result<MyNotifications> {
    let r = sqlx::query("SELECT email, notify_reviews FROM users WHERE id = $1")
        .bind(access.user())
        .fetch_one(st.db.pool())
        .await?;
    Ok(MyNotifications {
        review_email: r.try_get::<i64, _>("notify_reviews")? == 1,
        email: r.try_get("email")?,
        mail_ready: ready(st).await?,
    })
}

pub async fn set_mine(
    st: &AppState,
    access: &Cap<scope::SignedIn>,
    input: SetMyNotifications,
) -> Result<MyNotifications> {
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE users SET notify_reviews = $1 WHERE id = $2")
        .bind(i64::from(input.review_email))
        .bind(access.user())
        .execute(&mut *tx)
        .await?;
    let event = Event::new(AuditAction::MyNotificationsSet, format!("user {}", access.user()))
        .details(json!({ "review_email": input.review_email }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    mine(st, access).await
}
