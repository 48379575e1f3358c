//! `potluck stack render|deploy|rm`: the engine on the command line, reading a recipe from a
//! directory or git repository and an env file, talking to DOCKER_HOST.

use crate::adapters::engine::convert::StackPlan;
use crate::adapters::engine::deploy::{self, DeployOptions, ResolveImage};
use crate::adapters::engine::docker::{self, Endpoint};
use crate::adapters::engine::{self, converge, envfile::EnvFile, AbraDeploy};
use crate::adapters::git::{chaos_version, LocalRecipe};
use crate::domain::recipes::version::RecipeVersion;
use crate::transport::cli::{StackArgs, StackCommand};
use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

/// Loads the recipe at the requested version and renders the stack.
pub fn plan(args: &StackArgs) -> anyhow::Result<StackPlan> {
    let recipe = LocalRecipe::open(&args.recipe).with_context(|| format!("recipe {}", args.recipe.display()))?;
    let mut versions: Vec<RecipeVersion> = recipe.tag_names()?.iter().map(|t| RecipeVersion::parse(t)).collect();
    versions.sort();
    let version = match (&args.version, args.chaos) {
        (Some(v), _) => Some(v.clone()),
        (None, true) => None,
        (None, false) => versions.last().map(|v| v.tag.clone()),
    };
    let files = recipe.files(version.as_deref())?;
    let env_text = std::fs::read_to_string(&args.env).with_context(|| format!("cannot read {}", args.env.display()))?;
    let env_file = EnvFile::parse(&env_text).map_err(|e| anyhow!("{}: {e}", args.env.display()))?;
    let abra_sh = files.text("abra.sh");
    let env = engine::app_environment(&env_file, abra_sh.as_deref(), &args.stack);
    let abra = if args.plain {
        None
    } else {
        let recipe_name = env
            .get("RECIPE")
            .or_else(|| env.get("TYPE"))
            .map(|t| t.split(':').next().unwrap_or(t).to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| recipe.name());
        let chaos = version.is_none();
        let chaos_version = if chaos { recipe.repo.as_ref().and_then(|r| chaos_version(r).ok()) } else { None };
        let mut app_env = env_file.values(&|_| None);
        if let Some(sh) = &abra_sh {
            app_env.extend(engine::envfile::abra_sh_exports(sh));
        }
        Some(AbraDeploy {
            recipe: recipe_name,
            version: version.clone().unwrap_or_default(),
            chaos,
            chaos_version,
            app_env,
        })
    };
    Ok(engine::render(&files, &env, &args.stack, abra.as_ref())?)
}

pub async fn run(command: StackCommand) -> anyhow::Result<ExitCode> {
    match command {
        StackCommand::Render(args) => {
            let plan = plan(&args)?;
            for w in &plan.warnings {
                eprintln!("{w}");
            }
            println!("{}", serde_json::to_string_pretty(&plan)?);
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Deploy { args, detach, resolve_image, prune, timeout } => {
            let resolve: ResolveImage = resolve_image.parse().map_err(|e: String| anyhow!(e))?;
            let plan = plan(&args)?;
            let endpoint = Endpoint::from_env()?;
            let docker = docker::connect(&endpoint, 120).await?;
            let opts = DeployOptions { prune, resolve_image: resolve, ..DeployOptions::default() };
            let deployed = deploy::deploy(&docker, &plan, &opts, &|step| println!("{step}")).await?;
            if detach {
                return Ok(ExitCode::SUCCESS);
            }
            let secs = timeout.unwrap_or_else(|| engine::timeout_of(&plan));
            println!("waiting up to {secs} s for {} to converge", plan.namespace);
            let outcome =
                converge::wait(&docker, &plan.namespace, &deployed.services, Duration::from_secs(secs), &|p| match p {
                    converge::Progress::Task { service, slot, state, error, .. } => {
                        if error.is_empty() {
                            println!("  {service}.{slot}: {state}");
                        } else {
                            println!("  {service}.{slot}: {state}: {error}");
                        }
                    }
                    converge::Progress::Service { service, running, desired, state } => {
                        println!("{service}: {running}/{desired} {state}");
                    }
                })
                .await;
            match outcome {
                converge::Outcome::Converged => {
                    println!("{} converged", plan.namespace);
                    Ok(ExitCode::SUCCESS)
                }
                other => {
                    eprintln!("deploy did not converge: {}", other);
                    Ok(ExitCode::from(1))
                }
            }
        }
        StackCommand::Rm { stack, detach } => {
            let endpoint = Endpoint::from_env()?;
            let docker = docker::connect(&endpoint, 120).await?;
            let wait = if detach { None } else { Some(Duration::from_secs(120)) };
            let found = deploy::remove(&docker, &stack, &BTreeMap::new(), &Default::default(), wait, &|step| {
                println!("{step}")
            })
            .await?;
            if !found {
                eprintln!("Nothing found in stack: {stack}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
