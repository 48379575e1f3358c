//! Release CI: the servers a federation runs proposals on, each run's outcome, and a recipe's
//! test settings (env over its `.env.sample`, a smoke check, whether a green run is required).

use super::StagingRunId;
use serde::{Deserialize, Serialize};

/// A server the federation admin designated for staging runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StagingServerView {
    pub collective: String,
    pub server: String,
    /// How many runs it takes at once.
    pub max_runs: i64,
    pub running: i64,
    pub designated_by: String,
}

/// The smoke check a recipe declares for its staging runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmokeCheck {
    /// None declared.
    #[default]
    None,
    /// `http://<service>:<port><path>` must answer 2xx, asked from inside the stack's network.
    Http { service: String, port: u16, path: String },
    /// The command (run by `sh -c`) must exit 0 in a running container of the service.
    Command { service: String, command: String },
}

impl SmokeCheck {
    /// In words, for the pages and the run's log.
    pub fn describe(&self) -> String {
        match self {
            SmokeCheck::None => "none".into(),
            SmokeCheck::Http { service, port, path } => format!("GET http://{service}:{port}{path} answers"),
            SmokeCheck::Command { service, command } => format!("`{command}` exits 0 in {service}"),
        }
    }
}

/// A recipe's test settings and publishing policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecipeTesting {
    pub recipe: String,
    /// `KEY=VALUE` lines over the recipe's `.env.sample`.
    pub test_env: String,
    pub smoke: SmokeCheck,
    /// A release is published only after a passed staging run of its current commit.
    pub require_green_run: bool,
}

/// A staging run, as a proposal's page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StagingRunSummary {
    pub id: StagingRunId,
    pub commit: String,
    pub version: String,
    pub upgrade_from: Option<String>,
    /// queued | running | passed | failed | cancelled
    pub state: String,
    /// `collective/server`, once a staging server took it.
    pub server: Option<String>,
    pub requested_by: String,
    pub failure: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A staging run with its log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StagingRunView {
    pub summary: StagingRunSummary,
    pub recipe: String,
    pub proposal_id: super::ProposalId,
    pub stack: String,
    /// The failing service's task errors and last log lines.
    pub details: Vec<String>,
    /// What the cleanup could not remove (a run that left anything is red).
    pub left_behind: Vec<String>,
    /// The run's log, line by line, as it went.
    pub log: Vec<StagingLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StagingLine {
    pub at: i64,
    pub text: String,
}
