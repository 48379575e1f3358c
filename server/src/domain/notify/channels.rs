//! A collective's notification channels (operations) and its delivery log.

use super::deliver::{self, Attempt, Destination};
use super::relay;
use crate::adapters::crypto::random_token;
use crate::adapters::db::{is_unique_violation, now_ms};
use crate::adapters::reach;
use crate::domain::audit::{self, Event};
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::AppState;
use potluck_app::actions::AuditAction;
use potluck_app::api::{AddNotificationChannel, RemoveNotificationChannel, TestNotificationChannel};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;

/// The deliveries the page lists.
const LOG: i64 = 50;
/// The most addresses an email channel sends to.
const MAX_ADDRESSES: usize = 20;
/// The longest webhook URL taken.
const MAX_URL: usize = 2048;
/// The most channels a collective keeps (each event is one delivery per channel).
const MAX_CHANNELS: i64 = 20;

/// A webhook URL a collective may give: https (http only to hosts the federation allows), no
/// credentials in it, a host. The host's addresses are checked when it is added and before
/// every delivery.
pub fn webhook_url(s: &str, allow: &[String]) -> std::result::Result<url::Url, ApiError> {
    let s = s.trim();
    if s.len() > MAX_URL {
        return Err(ApiError::invalid("target", format!("a webhook URL of at most {MAX_URL} characters")));
    }
    let url = url::Url::parse(s).map_err(|e| ApiError::invalid("target", format!("not a URL: {e}")))?;
    let host =
        url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| ApiError::invalid("target", "the URL has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if reach::allowed(host, allow) => {}
        "http" => {
            return Err(ApiError::invalid(
                "target",
                "use https: a notification names the collective's apps and what failed (http only to hosts the federation's configuration allows: notify_hosts_allow)",
            ))
        }
        other => return Err(ApiError::invalid("target", format!("{other}: a webhook is an https URL"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid("target", "put no credentials in the URL: each request is signed instead"));
    }
    Ok(url)
}

/// The addresses of an email channel.
fn addresses(s: &str) -> std::result::Result<Vec<String>, ApiError> {
    let list = potluck_app::api::split_list(s);
    if list.is_empty() {
        return Err(ApiError::invalid("target", "give one or more email addresses"));
    }
    if list.len() > MAX_ADDRESSES {
        return Err(ApiError::invalid("target", format!("at most {MAX_ADDRESSES} addresses")));
    }
    for a in &list {
        relay::mailbox("target", a)?;
    }
    Ok(list)
}

fn view_of(r: &sqlx::any::AnyRow) -> Result<ChannelView> {
    Ok(ChannelView {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: ChannelKind::parse(&r.try_get::<String, _>("kind")?).unwrap_or(ChannelKind::Webhook),
        target: r.try_get("target_shown")?,
        events: serde_json::from_str(&r.try_get::<String, _>("events")?).unwrap_or_default(),
        created_by: r.try_get("created_by_name")?,
        created_at: r.try_get("created_at")?,
        delivered: r.try_get("delivered")?,
        failed: r.try_get("failed")?,
        pending: r.try_get("pending")?,
    })
}

const CHANNELS: &str = "SELECT ch.id, ch.name, ch.kind, ch.target_shown, ch.events, ch.created_by_name, ch.created_at, \
     (SELECT COUNT(*) FROM notification_deliveries d WHERE d.channel_id = ch.id AND d.state = 'delivered') AS delivered, \
     (SELECT COUNT(*) FROM notification_deliveries d WHERE d.channel_id = ch.id AND d.state = 'failed') AS failed, \
     (SELECT COUNT(*) FROM notification_deliveries d WHERE d.channel_id = ch.id AND d.state IN ('pending', 'sending')) AS pending \
     FROM notification_channels ch";

fn delivery_of(r: &sqlx::any::AnyRow) -> Result<DeliveryView> {
    Ok(DeliveryView {
        id: r.try_get("id")?,
        channel: r.try_get::<Option<String>, _>("channel_name")?.unwrap_or_default(),
        event: r.try_get("event")?,
        subject: r.try_get("subject")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        last_code: r.try_get("last_code")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

const DELIVERIES: &str = "SELECT d.id, ch.name AS channel_name, d.event, d.subject, d.state, d.attempts, d.last_code, \
     d.last_error, d.created_at, d.next_attempt_at, d.finished_at \
     FROM notification_deliveries d LEFT JOIN notification_channels ch ON ch.id = d.channel_id";

async fn channel(st: &AppState, collective: CollectiveId, id: ChannelId) -> Result<ChannelView> {
    let row = sqlx::query(&format!("{CHANNELS} WHERE ch.collective_id = $1 AND ch.id = $2"))
        .bind(collective)
        .bind(id)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("notification channel {id}")))?;
    view_of(&row)
}

async fn delivery(st: &AppState, id: DeliveryId) -> Result<DeliveryView> {
    let row = sqlx::query(&format!("{DELIVERIES} WHERE d.id = $1")).bind(id).fetch_one(st.db.pool()).await?;
    delivery_of(&row)
}

/// `list_notifications`.
pub async fn list(st: &AppState, access: &Cap<scope::Collective>) -> Result<CollectiveNotifications> {
    let c = access.collective();
    let channels = sqlx::query(&format!("{CHANNELS} WHERE ch.collective_id = $1 ORDER BY ch.name"))
        .bind(c.id)
        .fetch_all(st.db.pool())
        .await?
        .iter()
        .map(view_of)
        .collect::<Result<Vec<_>>>()?;
    let deliveries = sqlx::query(&format!("{DELIVERIES} WHERE d.collective_id = $1 ORDER BY d.id DESC LIMIT {LOG}"))
        .bind(c.id)
        .fetch_all(st.db.pool())
        .await?
        .iter()
        .map(delivery_of)
        .collect::<Result<Vec<_>>>()?;
    Ok(CollectiveNotifications {
        slug: c.slug.clone(),
        channels,
        deliveries,
        mail_ready: relay::ready(st).await?,
        can_manage: access.role().is_some_and(|r| r.grants(Permission::ManageApps)),
    })
}

/// `add_notification_channel`: checks the target (a webhook's host may be reached; email
/// addresses parse), seals it, and for a webhook makes the signing key shown this once.
pub async fn add(
    st: &AppState,
    access: &Cap<scope::Collective>,
    input: AddNotificationChannel,
) -> Result<AddedChannel> {
    let c = access.collective();
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "give the channel a name of at most 64 characters").into());
    }
    let kind =
        ChannelKind::parse(input.kind.trim()).ok_or_else(|| ApiError::invalid("kind", "choose webhook or email"))?;
    let mut events = Vec::new();
    for e in input.events.iter().flat_map(|e| potluck_app::api::split_list(e)) {
        let ev = NotifyEvent::parse(&e).ok_or_else(|| {
            ApiError::invalid(
                "events",
                format!("{e:?} is not an event: {}", NotifyEvent::ALL.map(NotifyEvent::as_str).join(", ")),
            )
        })?;
        if !events.contains(&ev) {
            events.push(ev);
        }
    }
    if events.is_empty() {
        return Err(ApiError::invalid("events", "choose at least one event").into());
    }
    let (target, shown, key) = match kind {
        ChannelKind::Webhook => {
            let url = webhook_url(&input.target, &st.config.notify_hosts_allow)?;
            let host = url.host_str().unwrap_or_default().to_string();
            reach::check(
                &host,
                url.port_or_known_default().unwrap_or(443),
                &st.config.notify_hosts_allow,
                "a webhook",
                "notify_hosts_allow",
            )
            .await
            .map_err(|e| ApiError::invalid("target", e))?;
            let shown = format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or_default());
            (url.to_string(), shown, Some(random_token("whsec_")))
        }
        ChannelKind::Email => {
            let list = addresses(&input.target)?;
            (list.join(", "), list.join(", "), None)
        }
    };
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM notification_channels WHERE collective_id = $1")
        .bind(c.id)
        .fetch_one(st.db.pool())
        .await?
        .try_get("n")?;
    if count >= MAX_CHANNELS {
        return Err(
            ApiError::conflict(format!("{} has {MAX_CHANNELS} channels, the most a collective keeps", c.slug)).into()
        );
    }
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let inserted = sqlx::query(
        "INSERT INTO notification_channels (collective_id, name, kind, target_enc, target_shown, secret_enc, events, created_by_name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(c.id)
    .bind(&name)
    .bind(kind.as_str())
    .bind(st.secrets.seal(&target))
    .bind(&shown)
    .bind(key.as_deref().map(|k| st.secrets.seal(k)))
    .bind(serde_json::to_string(&events).unwrap_or_default())
    .bind(&access.origin().actor.name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let id: ChannelId = match inserted {
        Ok(r) => r.try_get("id")?,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::conflict(format!("{} already has a channel named {name}", c.slug)).into())
        }
        Err(e) => return Err(e.into()),
    };
    let event = Event::new(AuditAction::ChannelAdd, format!("notification channel {name}"))
        .in_collective(c.id, &c.slug)
        .details(json!({ "channel_id": id, "kind": kind.as_str(), "target": shown, "events": events }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(AddedChannel { channel: channel(st, c.id, id).await?, signing_key: key.map(OneTimeSecret) })
}

/// `remove_notification_channel`: the channel and its deliveries (sent or not) go.
pub async fn remove(st: &AppState, access: &Cap<scope::Collective>, input: RemoveNotificationChannel) -> Result<()> {
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    let row = sqlx::query("DELETE FROM notification_channels WHERE collective_id = $1 AND id = $2 RETURNING name")
        .bind(c.id)
        .bind(input.channel)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("notification channel {}", input.channel)))?;
    sqlx::query("DELETE FROM notification_deliveries WHERE channel_id = $1")
        .bind(input.channel)
        .execute(&mut *tx)
        .await?;
    let name: String = row.try_get("name")?;
    let event = Event::new(AuditAction::ChannelRemove, format!("notification channel {name}"))
        .in_collective(c.id, &c.slug)
        .details(json!({ "channel_id": input.channel }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

/// `test_notification_channel`: one attempt now, recorded in the log, no retries.
pub async fn test(
    st: &AppState,
    access: &Cap<scope::Collective>,
    input: TestNotificationChannel,
) -> Result<DeliveryView> {
    let c = access.collective();
    let ch = channel(st, c.id, input.channel).await?;
    let notice =
        super::Notice::new(NotifyEvent::DeployFailed, format!("test notification from Potluck for {}", c.slug))
            .named("test")
            .text(format!("{} sent this test through the channel {}.", access.origin().actor.name, ch.name))
            .path(format!("/c/{}/notifications", c.slug))
            .data(json!({ "channel": ch.name }));
    // The intent and the queued row commit before the network call; the outcome follows.
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let id: DeliveryId = sqlx::query(
        "INSERT INTO notification_deliveries (collective_id, channel_id, event, subject, payload, state, attempts, next_attempt_at, lease_until, created_at) \
         VALUES ($1, $2, 'test', $3, $4, 'sending', 1, $5, $6, $5) RETURNING id",
    )
    .bind(c.id)
    .bind(ch.id)
    .bind(&notice.subject)
    .bind(notice.payload(Some(&c.slug)))
    .bind(now)
    .bind(now + deliver::LEASE_MS)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let event = Event::new(AuditAction::ChannelTest, format!("notification channel {}", ch.name))
        .in_collective(c.id, &c.slug)
        .details(json!({ "channel_id": ch.id, "delivery_id": id }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    let outcome = match Destination::of_channel(st, ch.id).await {
        Ok(dest) => deliver::send(st, &dest, id, &notice.payload(Some(&c.slug))).await,
        Err(e) => Err(Attempt::permanent(None, e.to_string())),
    };
    deliver::settle(st, id, 1, 1, outcome).await?;
    delivery(st, id).await
}
