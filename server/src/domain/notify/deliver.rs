//! Getting notices there: the worker that claims due deliveries, the signed webhook POST and
//! the email through the federation's relay, and the retries.
//!
//! A webhook receives `POST <url>` with the notice as JSON (`id` is the delivery's, the same
//! on every retry: receivers drop repeats by it) and `Potluck-Signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256 over "<t>.<body>" under the channel's signing key>`; a 2xx answer
//! delivers it, a 408, 429, 5xx or a network failure is tried again later (back-off doubling
//! from `notify_retry_secs`, at most `notify_attempts` in all), any other answer fails it.

use super::relay::{self, Security};
use crate::adapters::db::now_ms;
use crate::adapters::reach;
use crate::error::Result;
use crate::state::AppState;
use hmac::{Hmac, Mac};
use potluck_app::error::ApiError;
use potluck_app::model::{ChannelId, ChannelKind, DeliveryId, UserId};
use serde_json::Value;
use sha2::Sha256;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// A delivery being sent belongs to its replica for this long (then another may try it).
pub const LEASE_MS: i64 = 120_000;
/// Deliveries sent at once.
const CONCURRENCY: usize = 8;
/// The longest an attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest error kept with a delivery.
const MAX_ERROR: usize = 500;

/// Where a delivery goes, with its secrets opened.
pub enum Destination {
    Webhook { url: url::Url, key: String },
    Email { to: Vec<String>, footer: String },
}

impl Destination {
    pub async fn of_channel(st: &AppState, id: ChannelId) -> Result<Destination> {
        let r = sqlx::query(
            "SELECT ch.name, ch.kind, ch.target_enc, ch.secret_enc, c.name AS collective_name FROM notification_channels ch \
             JOIN collectives c ON c.id = ch.collective_id WHERE ch.id = $1",
        )
        .bind(id)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("the channel (removed)"))?;
        let open = |v: Vec<u8>| {
            st.secrets
                .open(&v)
                .map_err(|_| ApiError::unavailable("the channel's settings cannot be opened with this instance key"))
        };
        let target = open(r.try_get("target_enc")?)?;
        match ChannelKind::parse(&r.try_get::<String, _>("kind")?) {
            Some(ChannelKind::Email) => Ok(Destination::Email {
                to: potluck_app::api::split_list(&target),
                footer: format!(
                    "You receive this through the notification channel \"{}\" of {}.",
                    r.try_get::<String, _>("name")?,
                    r.try_get::<String, _>("collective_name")?
                ),
            }),
            _ => {
                let key = r.try_get::<Option<Vec<u8>>, _>("secret_enc")?.map(open).transpose()?.unwrap_or_default();
                let url =
                    url::Url::parse(&target).map_err(|e| ApiError::unavailable(format!("the channel's URL: {e}")))?;
                Ok(Destination::Webhook { url, key })
            }
        }
    }

    async fn of_person(st: &AppState, user: UserId) -> Result<Destination> {
        let email: Option<String> = sqlx::query("SELECT email FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(st.db.pool())
            .await?
            .map(|r| r.try_get("email"))
            .transpose()?
            .flatten();
        let email = email.ok_or_else(|| ApiError::not_found("an email address for this person"))?;
        Ok(Destination::Email {
            to: vec![email],
            footer: "You receive this because you asked for it on your account page in Potluck.".into(),
        })
    }
}

/// How an attempt failed.
#[derive(Debug)]
pub struct Attempt {
    /// The HTTP status or SMTP reply code, when there was an answer.
    pub code: Option<i64>,
    pub error: String,
    /// Trying again will not help.
    pub permanent: bool,
}

impl Attempt {
    pub fn permanent(code: Option<i64>, error: impl Into<String>) -> Attempt {
        Attempt { code, error: error.into(), permanent: true }
    }

    fn transient(code: Option<i64>, error: impl Into<String>) -> Attempt {
        Attempt { code, error: error.into(), permanent: false }
    }
}

/// The answer's code when it went through.
pub type Outcome = std::result::Result<Option<i64>, Attempt>;

/// Wakes the worker (after a commit that queued deliveries).
pub fn wake(st: &AppState) {
    st.notifications.notify_one();
}

/// One attempt at a delivery.
pub async fn send(st: &AppState, dest: &Destination, id: DeliveryId, payload: &str) -> Outcome {
    let attempt = async {
        match dest {
            Destination::Webhook { url, key } => post(st, url, key, id, payload).await,
            Destination::Email { to, footer } => mail(st, to, footer, payload).await,
        }
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(Attempt::transient(None, format!("no answer in {} s", ATTEMPT_TIMEOUT.as_secs()))))
}

/// The header a webhook request carries: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(key: &str, unix: i64, body: &str) -> String {
    // HMAC takes a key of any length: this never answers the empty signature.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else { return String::new() };
    mac.update(format!("{unix}.{body}").as_bytes());
    format!("t={unix},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(st: &AppState, url: &url::Url, key: &str, id: DeliveryId, payload: &str) -> Outcome {
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    // Connect to exactly the addresses checked (a name that changes its answer in between
    // cannot lead the request to the Potluck machine).
    let addrs = reach::check(&host, port, &st.config.notify_hosts_allow, "a webhook", "notify_hosts_allow")
        .await
        .map_err(|e| Attempt::transient(None, e))?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("potluck/", env!("CARGO_PKG_VERSION")))
        .resolve_to_addrs(&host, &addrs)
        .build()
        .map_err(|e| Attempt::transient(None, e.to_string()))?;
    let mut body: Value = serde_json::from_str(payload).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.insert("id".into(), Value::from(id.0));
        map.insert("sent_at".into(), Value::from(now_ms()));
    }
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let body = body.to_string();
    let unix = now_ms() / 1000;
    let answer = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Potluck-Event", name)
        .header("Potluck-Delivery", id.0.to_string())
        .header("Potluck-Signature", signature(key, unix, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| Attempt::transient(None, error_chain(&e)))?;
    let status = answer.status();
    let code = Some(i64::from(status.as_u16()));
    if status.is_success() {
        Ok(code)
    } else if status.is_redirection() {
        Err(Attempt::permanent(code, format!("{status}: redirects are not followed; give the final URL")))
    } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(Attempt::transient(code, format!("{status}")))
    } else {
        Err(Attempt::permanent(code, format!("{status}: the endpoint refused the notification")))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn mail(st: &AppState, to: &[String], footer: &str, payload: &str) -> Outcome {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let relay = relay::load(st)
        .await
        .map_err(|e| Attempt::transient(None, e.to_string()))?
        .ok_or_else(|| Attempt::transient(None, "the federation has no mail relay (a federation admin sets one)"))?;
    let addrs =
        reach::check(&relay.host, relay.port, &st.config.notify_hosts_allow, "the mail relay", "notify_hosts_allow")
            .await
            .map_err(|e| Attempt::transient(None, e))?;
    let ip = addrs.first().map(|a| a.ip().to_string()).unwrap_or_else(|| relay.host.clone());
    let mut params = TlsParameters::builder(relay.host.clone());
    if let Some(ca) = &relay.ca_pem {
        let cert = Certificate::from_pem(ca.as_bytes())
            .map_err(|e| Attempt::permanent(None, format!("the relay's CA: {e}")))?;
        params = params.add_root_certificate(cert);
    }
    let params = params.build_rustls().map_err(|e| Attempt::permanent(None, format!("TLS: {e}")))?;
    let tls = match relay.security {
        Security::StartTls => Tls::Required(params),
        Security::Tls => Tls::Wrapper(params),
        Security::None => Tls::None,
    };
    // Connect to the address checked; TLS verifies the relay's name.
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip)
        .port(relay.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(15)));
    if let (Some(user), Some(password)) = (&relay.username, &relay.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let transport = builder.build();
    let notice: Value = serde_json::from_str(payload).unwrap_or_default();
    let field = |k: &str| notice.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut body = field("text");
    if let Some(path) = notice.get("path").and_then(Value::as_str) {
        body.push_str(&format!("\n\n{}{path}", st.config.public_base()));
    }
    body.push_str(&format!("\n\n-- \n{footer}\n"));
    let sender = relay::mailbox("sender", &relay.sender).map_err(|e| Attempt::permanent(None, e.to_string()))?;
    let mut message = Message::builder().from(sender).subject(format!("[Potluck] {}", field("subject")));
    for address in to {
        message = message.to(relay::mailbox("target", address).map_err(|e| Attempt::permanent(None, e.to_string()))?);
    }
    let message = message
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| Attempt::permanent(None, format!("the message: {e}")))?;
    let code = |c: Option<lettre::transport::smtp::response::Code>| c.and_then(|c| c.to_string().parse::<i64>().ok());
    match transport.send(message).await {
        Ok(answer) => Ok(code(Some(answer.code()))),
        Err(e) => Err(Attempt { code: code(e.status()), permanent: e.is_permanent(), error: error_chain(&e) }),
    }
}

/// Records how an attempt went: delivered, failed for good (permanent, or the last attempt),
/// or due again after the back-off.
pub async fn settle(st: &AppState, id: DeliveryId, attempts: i64, max: i64, outcome: Outcome) -> Result<()> {
    let now = now_ms();
    match outcome {
        Ok(code) => {
            sqlx::query(
                "UPDATE notification_deliveries SET state = 'delivered', last_code = $1, last_error = NULL, lease_until = NULL, finished_at = $2 WHERE id = $3",
            )
            .bind(code)
            .bind(now)
            .bind(id)
            .execute(st.db.pool())
            .await?;
        }
        Err(a) => {
            let error: String = a.error.chars().take(MAX_ERROR).collect();
            let last = a.permanent || attempts >= max;
            if !last {
                tracing::info!(delivery = id.0, attempts, error = %error, "notification not delivered yet; trying again later");
            } else {
                tracing::warn!(delivery = id.0, attempts, error = %error, "notification not delivered");
            }
            sqlx::query(
                "UPDATE notification_deliveries SET state = $1, last_code = $2, last_error = $3, lease_until = NULL, \
                 next_attempt_at = $4, finished_at = $5 WHERE id = $6",
            )
            .bind(if last { "failed" } else { "pending" })
            .bind(a.code)
            .bind(&error)
            .bind(now + backoff_ms(st.config.notify_retry_secs, attempts))
            .bind(last.then_some(now))
            .bind(id)
            .execute(st.db.pool())
            .await?;
        }
    }
    Ok(())
}

/// The wait before attempt `attempts + 1`: the base, doubling, at most an hour.
fn backoff_ms(base_secs: f64, attempts: i64) -> i64 {
    let factor = 2f64.powi(i32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30));
    ((base_secs * factor).min(3600.0) * 1000.0) as i64
}

struct Claimed {
    id: DeliveryId,
    channel: Option<ChannelId>,
    user: Option<UserId>,
    payload: String,
    attempts: i64,
}

/// Takes the next due delivery (or one whose sender's lease ran out), moving it to `sending`
/// with a compare-and-set: of several replicas, one takes it.
async fn claim(st: &AppState) -> Result<Option<Claimed>> {
    let now = now_ms();
    let row = sqlx::query(
        "UPDATE notification_deliveries SET state = 'sending', attempts = attempts + 1, lease_until = $1 \
         WHERE id = (SELECT id FROM notification_deliveries \
                     WHERE (state = 'pending' AND next_attempt_at <= $2) OR (state = 'sending' AND lease_until < $2) \
                     ORDER BY next_attempt_at, id LIMIT 1) \
           AND ((state = 'pending' AND next_attempt_at <= $2) OR (state = 'sending' AND lease_until < $2)) \
         RETURNING id, channel_id, user_id, payload, attempts",
    )
    .bind(now + LEASE_MS)
    .bind(now)
    .fetch_optional(st.db.pool())
    .await?;
    row.map(|r| {
        Ok(Claimed {
            id: r.try_get("id")?,
            channel: r.try_get("channel_id")?,
            user: r.try_get("user_id")?,
            payload: r.try_get("payload")?,
            attempts: r.try_get("attempts")?,
        })
    })
    .transpose()
}

async fn deliver_one(st: &AppState, c: Claimed) -> Result<()> {
    let dest = match (c.channel, c.user) {
        (Some(ch), _) => Destination::of_channel(st, ch).await,
        (None, Some(user)) => Destination::of_person(st, user).await,
        (None, None) => Err(ApiError::not_found("a destination").into()),
    };
    let outcome = match dest {
        Ok(d) => send(st, &d, c.id, &c.payload).await,
        Err(e) => Err(Attempt::permanent(None, e.to_string())),
    };
    settle(st, c.id, c.attempts, i64::from(st.config.notify_attempts), outcome).await
}

/// Forgets deliveries that ended more than `notify_log_days` ago; answers how many.
pub async fn prune(st: &AppState) -> Result<u64> {
    let before = now_ms() - i64::from(st.config.notify_log_days) * 86_400_000;
    Ok(sqlx::query("DELETE FROM notification_deliveries WHERE state IN ('delivered', 'failed') AND finished_at < $1")
        .bind(before)
        .execute(st.db.pool())
        .await?
        .rows_affected())
}

/// The delivery worker: sends due deliveries, a few at a time, woken by [`wake`] and every
/// second for retries that come due; prunes the log once an hour.
pub fn spawn_worker(st: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sending = tokio::task::JoinSet::new();
        let mut pruned_at = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            if pruned_at.elapsed() >= Duration::from_secs(3600) {
                pruned_at = std::time::Instant::now();
                if let Err(e) = prune(&st).await {
                    tracing::warn!(error = %e, "cannot prune the notification log");
                }
            }
            while sending.try_join_next().is_some() {}
            if sending.len() < CONCURRENCY {
                match claim(&st).await {
                    Ok(Some(c)) => {
                        let st2 = st.clone();
                        sending.spawn(async move {
                            let id = c.id;
                            if let Err(e) = deliver_one(&st2, c).await {
                                tracing::warn!(delivery = id.0, error = %e, "cannot record a notification's delivery");
                            }
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot claim notifications"),
                }
            }
            tokio::select! {
                _ = st.notifications.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_the_time_and_the_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(
            signature("whsec_test", 1_700_000_001, r#"{"a":1}"#),
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#)
        );
    }

    #[test]
    fn retries_back_off_doubling_up_to_an_hour() {
        assert_eq!(backoff_ms(30.0, 1), 30_000);
        assert_eq!(backoff_ms(30.0, 2), 60_000);
        assert_eq!(backoff_ms(30.0, 4), 240_000);
        assert_eq!(backoff_ms(30.0, 20), 3_600_000);
    }
}
