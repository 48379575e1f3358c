//! Notifications: what happened, to whom it goes, and getting it there.
//!
//! A notice is written as delivery rows in the transaction of the change that caused it (a job's
//! outcome, an app seen failing, a proposal opened), one per channel of the collective that
//! chose its event and one per person who asked for it: an outbox, so a notice exists exactly
//! when its cause does. The worker ([`deliver`]) claims due rows with a compare-and-set (several
//! replicas send each once), sends outside any transaction, and retries with back-off.
//!
//! - `channels.rs`: the collective's channels (operations) and its delivery log.
//! - `relay.rs`: the federation's mail relay (operations) and the person's own choices.
//! - `deliver.rs`: the worker, the signed webhook POST and the email.

pub mod channels;
pub mod deliver;
pub mod relay;

use crate::adapters::db::now_ms;
use crate::error::Result;
use potluck_app::model::{CollectiveId, NotifyEvent, UserId};
use serde_json::{json, Value};
use sqlx::Row;

/// Something to tell people, as every channel receives it.
#[derive(Debug, Clone)]
pub struct Notice {
    pub event: NotifyEvent,
    /// The event's precise name: the event itself, or its good news (`app_recovered`,
    /// `server_reachable`) sent to the channels that chose the event.
    pub name: &'static str,
    /// One line ("upgrade of wiki.example.org failed").
    pub subject: String,
    /// A few lines more (the job's result, what to look at).
    pub text: String,
    /// Where to look, a path of Potluck's (`/c/coop/apps/wiki.example.org`).
    pub path: Option<String>,
    /// The event's facts, for machines (ids, names, versions).
    pub data: Value,
}

impl Notice {
    pub fn new(event: NotifyEvent, subject: impl Into<String>) -> Notice {
        Notice {
            event,
            name: event.as_str(),
            subject: subject.into(),
            text: String::new(),
            path: None,
            data: json!({}),
        }
    }

    pub fn named(mut self, name: &'static str) -> Notice {
        self.name = name;
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Notice {
        self.text = text.into();
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Notice {
        self.path = Some(path.into());
        self
    }

    pub fn data(mut self, data: Value) -> Notice {
        self.data = data;
        self
    }

    fn payload(&self, collective: Option<&str>) -> String {
        json!({
            "event": self.event.as_str(),
            "name": self.name,
            "collective": collective,
            "subject": self.subject,
            "text": self.text,
            "path": self.path,
            "data": self.data,
        })
        .to_string()
    }
}

/// Queues the notice for every channel of the collective that chose its event, in `conn`'s
/// transaction. Answers how many deliveries it queued (wake the worker after the commit:
/// [`deliver::wake`]).
pub async fn emit(conn: &mut sqlx::AnyConnection, collective: CollectiveId, notice: &Notice) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT ch.id, ch.events, c.slug FROM notification_channels ch JOIN collectives c ON c.id = ch.collective_id \
         WHERE ch.collective_id = $1 ORDER BY ch.id",
    )
    .bind(collective)
    .fetch_all(&mut *conn)
    .await?;
    let now = now_ms();
    let mut queued = 0;
    for r in rows {
        let events: Vec<NotifyEvent> = serde_json::from_str(&r.try_get::<String, _>("events")?).unwrap_or_default();
        if !events.contains(&notice.event) {
            continue;
        }
        let slug: String = r.try_get("slug")?;
        sqlx::query(
            "INSERT INTO notification_deliveries (collective_id, channel_id, event, subject, payload, state, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        )
        .bind(collective)
        .bind(r.try_get::<i64, _>("id")?)
        .bind(notice.name)
        .bind(&notice.subject)
        .bind(notice.payload(Some(&slug)))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        queued += 1;
    }
    Ok(queued)
}

/// Commits a transaction that queued `queued` deliveries, then wakes the worker for them.
pub async fn commit(st: &crate::state::AppState, tx: crate::adapters::db::Tx, queued: usize) -> Result<()> {
    tx.commit().await?;
    if queued > 0 {
        deliver::wake(st);
    }
    Ok(())
}

/// Queues the notice as an email to each person (who asked for it and has an address), in
/// `conn`'s transaction.
pub async fn emit_to_people(conn: &mut sqlx::AnyConnection, people: &[UserId], notice: &Notice) -> Result<usize> {
    let now = now_ms();
    let mut queued = 0;
    for user in people {
        let row = sqlx::query("SELECT email, notify_reviews FROM users WHERE id = $1")
            .bind(*user)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { continue };
        let wants = row.try_get::<i64, _>("notify_reviews")? == 1;
        let has_address = row.try_get::<Option<String>, _>("email")?.is_some_and(|e| e.contains('@'));
        if !(wants && has_address) {
            continue;
        }
        sqlx::query(
            "INSERT INTO notification_deliveries (user_id, event, subject, payload, state, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $5)",
        )
        .bind(*user)
        .bind(notice.name)
        .bind(&notice.subject)
        .bind(notice.payload(None))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        queued += 1;
    }
    Ok(queued)
}
