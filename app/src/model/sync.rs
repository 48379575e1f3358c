//! Operator sync through git: a collective's apps kept in a git remote in abra's layout
//! (`servers/<server>/<domain>.env`), Potluck's changes pushed as commits and the remote's
//! brought in as changes an operator applies or rejects.

use super::ids::*;
use super::people::OneTimeSecret;
use serde::{Deserialize, Serialize};

/// The collective's sync: where it goes, how it went, and each file's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncView {
    pub configured: bool,
    /// The remote (never with a password in it).
    pub url: String,
    pub branch: String,
    /// `https` (a token), `ssh` (a key) or none.
    pub credential_kind: Option<String>,
    /// Remote changes to an existing app's env are applied as they arrive.
    pub auto_apply: bool,
    /// The remote's head when last synced.
    pub remote_head: Option<String>,
    pub synced_at: Option<i64>,
    /// Why the last sync failed (it is tried again).
    pub last_error: Option<String>,
    /// Where the remote's push webhook goes (signed with the secret shown when sync was set up).
    pub webhook_url: String,
    /// Every app file of either side, with its state.
    pub files: Vec<SyncFile>,
    /// Changes from the remote waiting for an operator, oldest first.
    pub incoming: Vec<IncomingChange>,
    /// Potluck's recent commits and what arrived, newest first (from the audit log).
    pub activity: Vec<SyncActivity>,
    pub can_configure: bool,
    pub can_apply: bool,
}

/// One `servers/<server>/<domain>.env` file and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncFile {
    pub path: String,
    pub server: String,
    pub domain: String,
    /// `synced`, `outgoing` (Potluck's change not pushed yet), `incoming` (the remote's change
    /// waiting), `conflict` (both changed it), `unsynced` (never synced yet).
    pub state: String,
}

/// A change the remote has: what it does to Potluck's file, who committed it, and its diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IncomingChange {
    pub id: IncomingId,
    pub path: String,
    pub server: String,
    pub domain: String,
    /// `change` (an app's env), `new` (a file Potluck has no app for), `removed` (the remote
    /// deleted the app's file), `conflict` (Potluck changed the file too).
    pub kind: String,
    pub commit: String,
    pub author: String,
    pub summary: String,
    pub committed_at: i64,
    pub arrived_at: i64,
    /// Potluck's file → the remote's, line by line.
    pub diff: Vec<DiffLine>,
}

/// One line of a diff: `tag` is ` ` (both), `-` (only Potluck's) or `+` (only the remote's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DiffLine {
    pub tag: String,
    pub text: String,
}

/// A sync event: commits Potluck pushed or changes that arrived, applied or rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncActivity {
    pub at: i64,
    pub action: String,
    pub actor: String,
    pub what: String,
}

/// Sync set up: its view, and the webhook's secret when it was made (shown this once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncConfigured {
    pub sync: SyncView,
    pub webhook_secret: Option<OneTimeSecret>,
}

/// What "apply all" did: the files applied, and those refused with why (they keep waiting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AppliedChanges {
    pub applied: Vec<String>,
    pub refused: Vec<RefusedChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RefusedChange {
    pub path: String,
    pub reason: String,
}
