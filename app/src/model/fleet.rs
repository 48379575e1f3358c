//! The federation's fleet: which version of each recipe runs where, what is behind, and batch
//! upgrades of several apps of one recipe.

use super::{AppHealth, AppStatus, BatchId, DeployPreview, JobId};
use serde::{Deserialize, Serialize};

/// One app in the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FleetApp {
    pub collective: String,
    pub domain: String,
    pub server: String,
    /// The version running (none before the first deploy).
    pub version: Option<String>,
    pub status: AppStatus,
    /// Why it is failing, when its containers die while no job runs.
    pub unhealthy: Option<String>,
    /// Its tasks at a glance (none until its server's monitor read them).
    #[serde(default)]
    pub health: Option<AppHealth>,
    /// Releases newer than the one it runs (none when it is not deployed or runs an unknown
    /// version).
    pub behind: Option<i64>,
    /// The caller may upgrade it.
    pub can_operate: bool,
}

/// A recipe's apps across the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FleetRecipe {
    pub recipe: String,
    /// Its newest release.
    pub newest: Option<String>,
    /// Its releases, newest first (the targets a batch may choose).
    pub releases: Vec<String>,
    pub apps: Vec<FleetApp>,
}

/// Every recipe that runs somewhere the caller can see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Fleet {
    pub recipes: Vec<FleetRecipe>,
}

/// One app of a batch upgrade, before it starts: the same preview as a single upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BatchPreviewItem {
    pub collective: String,
    pub domain: String,
    pub preview: Option<DeployPreview>,
    /// Why it cannot be upgraded (then the batch would fail it).
    pub error: Option<String>,
}

/// One app of a batch upgrade, as it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BatchItemView {
    pub position: i64,
    pub collective: String,
    pub domain: String,
    pub from_version: Option<String>,
    pub job: Option<JobId>,
    /// pending | running | succeeded | failed | skipped
    pub state: String,
    pub result: Option<String>,
}

/// A batch upgrade: apps of one recipe upgraded one after another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BatchView {
    pub id: BatchId,
    pub recipe: String,
    pub target: String,
    pub stop_on_failure: bool,
    /// running | done | stopped
    pub state: String,
    pub created_by: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub items: Vec<BatchItemView>,
}
