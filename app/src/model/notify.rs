//! Notifications: a collective's channels (signed webhooks, email through the federation's mail
//! relay), the events each receives, and the log of what was sent.

use super::{ChannelId, DeliveryId, OneTimeSecret};
use serde::{Deserialize, Serialize};

/// Something that happened that a person should hear about without watching a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A deploy, upgrade, rollback, chaos deploy or undeploy failed.
    DeployFailed,
    /// An app's containers died while no job of Potluck's was running (and when it recovers).
    AppUnhealthy,
    /// A server's engine could not be reached for a while (and when it is reached again).
    ServerUnreachable,
    /// A backup or restore job failed.
    BackupFailed,
    /// A restore drill failed.
    DrillFailed,
    /// A release proposal of a recipe the collective maintains awaits reviews.
    ReviewRequested,
    /// A new release of a recipe the collective's apps run.
    NewRelease,
    /// A staging run of a release proposal of a recipe the collective maintains failed.
    StagingFailed,
    /// An app's scheduled backup has not succeeded for twice its interval.
    BackupOverdue,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 9] = [
        NotifyEvent::DeployFailed,
        NotifyEvent::AppUnhealthy,
        NotifyEvent::ServerUnreachable,
        NotifyEvent::BackupFailed,
        NotifyEvent::DrillFailed,
        NotifyEvent::ReviewRequested,
        NotifyEvent::NewRelease,
        NotifyEvent::StagingFailed,
        NotifyEvent::BackupOverdue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::DeployFailed => "deploy_failed",
            NotifyEvent::AppUnhealthy => "app_unhealthy",
            NotifyEvent::ServerUnreachable => "server_unreachable",
            NotifyEvent::BackupFailed => "backup_failed",
            NotifyEvent::DrillFailed => "drill_failed",
            NotifyEvent::ReviewRequested => "review_requested",
            NotifyEvent::NewRelease => "new_release",
            NotifyEvent::StagingFailed => "staging_failed",
            NotifyEvent::BackupOverdue => "backup_overdue",
        }
    }

    pub fn parse(s: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// In words, for the channel form.
    pub fn label(self) -> &'static str {
        match self {
            NotifyEvent::DeployFailed => "a deploy, upgrade or rollback failed",
            NotifyEvent::AppUnhealthy => "an app's containers keep failing while no job runs (and recover)",
            NotifyEvent::ServerUnreachable => "a server cannot be reached (and is back)",
            NotifyEvent::BackupFailed => "a backup or restore failed",
            NotifyEvent::DrillFailed => "a restore drill failed",
            NotifyEvent::ReviewRequested => "a release proposal of a recipe we maintain awaits reviews",
            NotifyEvent::NewRelease => "a new release of a recipe our apps run",
            NotifyEvent::StagingFailed => "a staging run of a release of a recipe we maintain failed",
            NotifyEvent::BackupOverdue => "a scheduled backup is overdue",
        }
    }
}

/// Where a channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// An HTTPS POST of a JSON body signed with HMAC-SHA256.
    Webhook,
    /// Email through the federation's mail relay.
    Email,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        match s {
            "webhook" => Some(ChannelKind::Webhook),
            "email" => Some(ChannelKind::Email),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChannelView {
    pub id: ChannelId,
    pub name: String,
    pub kind: ChannelKind,
    /// A webhook's scheme and host (its URL is kept sealed), or the email addresses.
    pub target: String,
    pub events: Vec<NotifyEvent>,
    pub created_by: String,
    pub created_at: i64,
    /// How its most recent deliveries went: delivered, failed and still trying.
    pub delivered: i64,
    pub failed: i64,
    pub pending: i64,
}

/// A new channel; a webhook's signing key is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AddedChannel {
    pub channel: ChannelView,
    pub signing_key: Option<OneTimeSecret>,
}

/// One notification: to a channel, or to a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: DeliveryId,
    /// The channel's name (empty for a person's own email).
    pub channel: String,
    /// The event's name (`deploy_failed`…, or `test`).
    pub event: String,
    pub subject: String,
    /// pending | sending | delivered | failed
    pub state: String,
    pub attempts: i64,
    /// The HTTP status or SMTP reply code of the last attempt.
    pub last_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub finished_at: Option<i64>,
}

/// A collective's notifications at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CollectiveNotifications {
    pub slug: String,
    pub channels: Vec<ChannelView>,
    /// The most recent deliveries, newest first.
    pub deliveries: Vec<DeliveryView>,
    /// The federation has a mail relay (email channels can send).
    pub mail_ready: bool,
    pub can_manage: bool,
}

/// The federation's mail relay, as the admin page shows it (never the password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MailSettingsView {
    pub host: String,
    pub port: u16,
    /// starttls | tls | none
    pub security: String,
    pub username: Option<String>,
    pub has_password: bool,
    pub sender: String,
    pub has_ca: bool,
    pub updated_by: String,
    pub updated_at: i64,
}

/// A person's own notification choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MyNotifications {
    /// Email me when a release proposal awaits my review.
    pub review_email: bool,
    /// The address it goes to (from the identity provider), if any.
    pub email: Option<String>,
    pub mail_ready: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_back_from_their_names() {
        for e in NotifyEvent::ALL {
            assert_eq!(NotifyEvent::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_string(&e).unwrap(), format!("\"{}\"", e.as_str()));
        }
        assert_eq!(NotifyEvent::parse("everything"), None);
    }
}
