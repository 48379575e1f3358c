//! Recipes, their versions and lint findings, and release proposals with their diffs and reviews.

use super::ids::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecipeSummary {
    pub name: String,
    pub repository: String,
    pub description: String,
    pub category: String,
    pub latest_version: Option<String>,
    pub version_count: i64,
    pub maintainers: Vec<String>,
    pub last_fetched_at: Option<i64>,
    pub fetch_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MaintainerView {
    /// `user` or `collective`.
    pub kind: String,
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServiceImage {
    pub service: String,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionView {
    pub tag: String,
    /// The recipe's own semver part, when the tag has one.
    pub semver: Option<String>,
    /// Whether the tag follows the `x.y.z+upstream` scheme exactly.
    pub canonical: bool,
    pub annotated: bool,
    pub commit: String,
    /// Seconds since the epoch.
    pub time: i64,
    pub message: String,
    pub release_note: Option<String>,
    pub images: Vec<ServiceImage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EnvSampleEntry {
    pub key: String,
    pub value: String,
    /// The comment lines above it in `.env.sample`.
    pub doc: Vec<String>,
    /// Trailing `# key=value` modifiers (`length=128`, `generate=false`…).
    pub modifiers: Vec<(String, String)>,
    /// Written commented out in the sample (an option to enable).
    pub commented: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecipeDeployment {
    pub collective: String,
    pub app: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecipeDetail {
    pub name: String,
    pub repository: String,
    pub default_branch: String,
    pub description: String,
    pub metadata: Vec<(String, String)>,
    pub maintainers: Vec<MaintainerView>,
    /// Newest first.
    pub versions: Vec<VersionView>,
    pub last_fetched_at: Option<i64>,
    pub fetch_error: Option<String>,
    pub can_maintain: bool,
    pub required_approvals: i64,
    pub required_collectives: i64,
    pub deployments: Vec<RecipeDeployment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionDetail {
    pub recipe: String,
    pub version: VersionView,
    pub compose_files: Vec<String>,
    pub env_sample: Vec<EnvSampleEntry>,
    pub abra_exports: Vec<(String, String)>,
    pub readme_metadata: Vec<(String, String)>,
    pub lint: Vec<LintFindingView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LintFindingView {
    pub rule: String,
    /// `error` or `warning`.
    pub level: String,
    pub service: Option<String>,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImageChange {
    pub service: String,
    pub from: String,
    pub to: String,
    /// The tag's leading number changed.
    pub major: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VariableChange {
    pub key: String,
    /// Its default (the sample's value, or "(compose default)"); none means operators must set it.
    pub default: Option<String>,
    /// In `.env.sample`, or only referenced by a compose file.
    pub in_sample: bool,
}

/// What a release changes for operators, against the previous release.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseDiff {
    pub services_added: Vec<String>,
    pub services_removed: Vec<String>,
    pub image_changes: Vec<ImageChange>,
    pub env_added: Vec<VariableChange>,
    pub env_removed: Vec<String>,
    pub secrets_added: Vec<String>,
    pub secrets_rotated: Vec<String>,
    pub volumes_removed: Vec<String>,
    /// Problems that block publishing (configs changed without a new name, malformed files).
    pub errors: Vec<String>,
    /// What operators must act on or could lose.
    pub risks: Vec<String>,
    pub lint: Vec<LintFindingView>,
    pub files_changed: Vec<String>,
    /// `major`, `minor` or `patch`.
    pub suggested_bump: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseProposalSummary {
    pub id: ProposalId,
    pub recipe: String,
    pub version: String,
    pub bump: String,
    /// open | published | withdrawn
    pub state: String,
    pub commit: String,
    pub proposed_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub approvals: i64,
    pub approved: bool,
    pub publish_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseReviewView {
    pub id: ReviewId,
    pub reviewer: String,
    pub collective: Option<String>,
    /// approve | request_changes | comment
    pub verdict: String,
    pub comment: String,
    pub commit: String,
    /// Counts toward the policy: an approval of the current commit by someone else than the proposer.
    pub counts: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseProposalDetail {
    pub summary: ReleaseProposalSummary,
    pub notes: String,
    pub base_version: Option<String>,
    pub branch: String,
    pub diff: ReleaseDiff,
    pub reviews: Vec<ReleaseReviewView>,
    pub required_approvals: i64,
    pub required_collectives: i64,
    pub approving_collectives: Vec<String>,
    pub changes_requested: bool,
    pub can_review: bool,
    pub is_proposer: bool,
    pub published_commit: Option<String>,
    /// Staging runs, newest first.
    pub staging: Vec<super::StagingRunSummary>,
    /// The recipe's policy: a passed staging run of the current commit before publishing.
    pub require_green_run: bool,
    /// A staging run of the current commit passed.
    pub green: bool,
    /// Whether the federation has a staging server at all.
    pub staging_available: bool,
}
