//! The audit log as the pages and the API read it.

use super::ids::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    pub seq: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<UserId>,
    pub actor_name: String,
    pub collective: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
    pub client_addr: String,
    pub details: String,
}

/// Filters for the audit log. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditFilter {
    pub collective: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Show events with a sequence number below this one (the next page).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    pub next_before: Option<i64>,
}
