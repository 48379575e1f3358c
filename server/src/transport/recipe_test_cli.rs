//! `potluck recipe test`: a trial (`domain::recipes::trial`, what a staging run does) of a
//! recipe version on the swarm of DOCKER_HOST: a throw-away install, the smoke check, a backup
//! round trip where backups are declared and, with `--upgrade-from`, the upgrade path. It exits
//! 0 only when every step passed and nothing is left. No database.

use crate::adapters::engine::docker::{self, Endpoint};
use crate::adapters::git::LocalRecipe;
use crate::domain::recipes::trial::{self, Plans, Settings};
use anyhow::{anyhow, Context};
use potluck_app::model::SmokeCheck;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `potluck recipe test` takes.
#[derive(Debug, clap::Args)]
pub struct RecipeTestArgs {
    /// The recipe: a git repository (bare or not).
    #[arg(long)]
    pub recipe: PathBuf,
    /// The release to test (a tag).
    #[arg(long, conflicts_with = "commit", required_unless_present = "commit")]
    pub version: Option<String>,
    /// A commit to test (a proposal's), by id or any revision git understands.
    #[arg(long)]
    pub commit: Option<String>,
    /// Deploy this release first, then upgrade to the one tested.
    #[arg(long)]
    pub upgrade_from: Option<String>,
    /// `KEY=VALUE` over the recipe's `.env.sample` (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Pin images to registry digests: always, changed or never (as `docker stack deploy`).
    #[arg(long, default_value = "always")]
    pub resolve_image: String,
    /// Seconds to wait for each convergence (default: the recipe's timeout, else 300).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// A smoke check: `http://SERVICE:PORT/PATH` must answer, from inside the stack's network.
    #[arg(long, value_name = "SERVICE:PORT/PATH", conflicts_with = "smoke_command")]
    pub smoke_http: Option<String>,
    /// A smoke check: `COMMAND` (by `sh -c`) must exit 0 in a running container of SERVICE.
    #[arg(long, value_name = "SERVICE:COMMAND")]
    pub smoke_command: Option<String>,
    /// The image the HTTP smoke check runs busybox's `wget` in.
    #[arg(long, default_value = "busybox:stable")]
    pub probe_image: String,
}

/// `SERVICE:PORT/PATH` (HTTP) or `SERVICE:COMMAND` into a smoke check.
fn smoke_of(args: &RecipeTestArgs) -> anyhow::Result<SmokeCheck> {
    if let Some(http) = &args.smoke_http {
        let (service, rest) = http.split_once(':').ok_or_else(|| anyhow!("--smoke-http {http}: SERVICE:PORT/PATH"))?;
        let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let port = port.parse().map_err(|_| anyhow!("--smoke-http {http}: {port:?} is not a port"))?;
        let path = if path.is_empty() { "/".to_string() } else { path.to_string() };
        return Ok(SmokeCheck::Http { service: service.to_string(), port, path });
    }
    if let Some(cmd) = &args.smoke_command {
        let (service, command) =
            cmd.split_once(':').ok_or_else(|| anyhow!("--smoke-command {cmd}: SERVICE:COMMAND"))?;
        return Ok(SmokeCheck::Command { service: service.to_string(), command: command.to_string() });
    }
    Ok(SmokeCheck::None)
}

pub async fn run(args: RecipeTestArgs) -> anyhow::Result<ExitCode> {
    let recipe = LocalRecipe::open(&args.recipe).with_context(|| format!("recipe {}", args.recipe.display()))?;
    let rev =
        args.version.clone().or_else(|| args.commit.clone()).ok_or_else(|| anyhow!("give --version or --commit"))?;
    let overrides: Vec<(String, String)> = args
        .set
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--set {s}: KEY=VALUE"))
        })
        .collect::<anyhow::Result<_>>()?;
    let stack = format!("recipe-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let settings = Settings {
        smoke: smoke_of(&args)?,
        resolve_image: args.resolve_image.parse().map_err(|e: String| anyhow!(e))?,
        timeout: args.timeout,
        policy: None,
        probe_image: args.probe_image.clone(),
        scratch: Some(std::env::temp_dir()),
    };
    let endpoint = Endpoint::from_env()?;
    let docker = docker::connect(&endpoint, 120).await?;
    // The plans are made before anything is deployed: a recipe that cannot be read leaves nothing.
    let plans = Plans {
        stack: stack.clone(),
        from: args
            .upgrade_from
            .as_deref()
            .map(|v| trial::plan_of(&recipe, v, v, &stack, &overrides).map(|p| (v.to_string(), p)))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        to: (rev.clone(), trial::plan_of(&recipe, &rev, &rev, &stack, &overrides).map_err(anyhow::Error::msg)?),
    };
    println!("testing {} {rev} as {stack}", recipe.name());
    let verdict = trial::run(&docker, &plans, &settings, &|line| println!("{line}")).await;
    if verdict.green() {
        println!(
            "{} {rev}: converged{}; everything removed",
            recipe.name(),
            if plans.from.is_some() { " after the upgrade" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(f) = &verdict.failure {
        eprintln!("FAILED: {f}");
        for d in &verdict.details {
            eprintln!("  {d}");
        }
    }
    if !verdict.left.is_empty() {
        eprintln!("NOT CLEAN: left behind: {}", verdict.left.join(", "));
    }
    Ok(ExitCode::from(1))
}
