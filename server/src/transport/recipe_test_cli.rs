//! `potluck recipe test`: a recipe version deployed as a throw-away app on the swarm of
//! DOCKER_HOST (its own stack name and domain, secrets generated for it, the recipe's
//! `.env.sample` with `--set` overrides), waited for until every service converges and passes
//! its healthchecks; with `--upgrade-from`, that release first and then the upgrade. Whatever
//! happens, everything it made is removed and the removal checked: it exits 0 only when the
//! recipe converged and nothing is left. No database.

use crate::adapters::engine::convert::{StackPlan, NAMESPACE_LABEL};
use crate::adapters::engine::deploy::{self, DeployOptions, ResolveImage};
use crate::adapters::engine::docker::{self, Endpoint};
use crate::adapters::engine::{self, converge, envfile::EnvFile, AbraDeploy};
use crate::adapters::git::LocalRecipe;
use crate::domain::apps::{plan, secrets};
use anyhow::{anyhow, Context};
use base64::Engine as _;
use bollard::Docker;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
}

fn ns_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={stack}")])])
}

/// The plan of `rev` as a throw-away app named `stack`.
fn plan_of(recipe: &LocalRecipe, rev: &str, stack: &str, overrides: &[(String, String)]) -> anyhow::Result<StackPlan> {
    let files = recipe.files(Some(rev)).with_context(|| format!("{} at {rev}", recipe.name()))?;
    let mut env_file = EnvFile::parse(&files.text(".env.sample").unwrap_or_default())
        .map_err(|e| anyhow!("{rev}: .env.sample: {e}"))?;
    env_file.set("DOMAIN", &format!("{}.recipe-test.invalid", stack.replace('_', "-")));
    env_file.set("TYPE", &format!("{}:{rev}", recipe.name()));
    for (k, v) in overrides {
        env_file.set(k, v);
    }
    let abra_sh = files.text("abra.sh");
    let env = engine::app_environment(&env_file, abra_sh.as_deref(), stack);
    let mut app_env = env_file.values(&|_| None);
    if let Some(sh) = &abra_sh {
        app_env.extend(engine::envfile::abra_sh_exports(sh));
    }
    let abra =
        AbraDeploy { recipe: recipe.name(), version: rev.to_string(), chaos: false, chaos_version: None, app_env };
    Ok(engine::render(&files, &env, stack, Some(&abra))?)
}

/// Creates the external secrets the plan needs that do not exist yet, labelled with the stack.
async fn secrets_for(docker: &Docker, plan: &StackPlan) -> anyhow::Result<()> {
    for name in plan::external_secrets(plan) {
        if docker.inspect_secret(&name).await.is_ok() {
            continue;
        }
        let value = secrets::generate_value(Some(32), None).map_err(|e| anyhow!(e))?;
        let spec = bollard::models::SecretSpec {
            name: Some(name.clone()),
            data: Some(base64::engine::general_purpose::STANDARD.encode(value)),
            labels: Some(HashMap::from([(NAMESPACE_LABEL.to_string(), plan.namespace.clone())])),
            ..Default::default()
        };
        docker.create_secret(spec).await.map_err(|e| anyhow!("secret {name}: {}", docker::error_text(&e)))?;
        println!("secret {name} generated for the test");
    }
    Ok(())
}

/// Deploys the plan and waits until it converges.
async fn deploy_and_wait(docker: &Docker, plan: &StackPlan, args: &RecipeTestArgs) -> anyhow::Result<()> {
    let resolve: ResolveImage = args.resolve_image.parse().map_err(|e: String| anyhow!(e))?;
    secrets_for(docker, plan).await?;
    let opts = DeployOptions { resolve_image: resolve, prune: true, ..DeployOptions::default() };
    let deployed = deploy::deploy(docker, plan, &opts, &|step| println!("{step}")).await?;
    let secs = args.timeout.unwrap_or_else(|| engine::timeout_of(plan));
    println!("waiting up to {secs} s for {} to converge", plan.namespace);
    let outcome = converge::wait(docker, &plan.namespace, &deployed.services, Duration::from_secs(secs), &|p| {
        if let converge::Progress::Task { service, slot, state, error, .. } = p {
            if error.is_empty() {
                println!("  {service}.{slot}: {state}");
            } else {
                println!("  {service}.{slot}: {state}: {error}");
            }
        }
    })
    .await;
    match outcome {
        converge::Outcome::Converged => Ok(()),
        other => Err(anyhow!("{} did not converge: {other}", plan.namespace)),
    }
}

/// Removes everything of the stack (services, networks, secrets, configs, then volumes) and
/// answers what is left, if anything.
async fn clean(docker: &Docker, stack: &str) -> Vec<String> {
    if let Err(e) =
        deploy::remove(docker, stack, &BTreeMap::new(), Some(Duration::from_secs(120)), &|s| println!("{s}")).await
    {
        eprintln!("removing {stack}: {e}");
    }
    let volumes = docker
        .list_volumes(Some(bollard::query_parameters::ListVolumesOptions { filters: Some(ns_filter(stack)) }))
        .await
        .ok()
        .and_then(|v| v.volumes)
        .unwrap_or_default();
    for v in volumes {
        // A volume is released a moment after its container is gone.
        for _ in 0..20 {
            if docker.remove_volume(&v.name, None::<bollard::query_parameters::RemoveVolumeOptions>).await.is_ok() {
                println!("volume {} removed", v.name);
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    left(docker, stack).await
}

async fn left(docker: &Docker, stack: &str) -> Vec<String> {
    let mut out = Vec::new();
    let f = ns_filter(stack);
    use bollard::query_parameters::*;
    for s in docker
        .list_services(Some(ListServicesOptions { filters: Some(f.clone()), ..Default::default() }))
        .await
        .unwrap_or_default()
    {
        out.push(format!("service {}", s.spec.and_then(|s| s.name).unwrap_or_default()));
    }
    for n in docker.list_networks(Some(ListNetworksOptions { filters: Some(f.clone()) })).await.unwrap_or_default() {
        out.push(format!("network {}", n.name.unwrap_or_default()));
    }
    for s in docker.list_secrets(Some(ListSecretsOptions { filters: Some(f.clone()) })).await.unwrap_or_default() {
        out.push(format!("secret {}", s.spec.and_then(|s| s.name).unwrap_or_default()));
    }
    for c in docker.list_configs(Some(ListConfigsOptions { filters: Some(f.clone()) })).await.unwrap_or_default() {
        out.push(format!("config {}", c.spec.and_then(|s| s.name).unwrap_or_default()));
    }
    let volumes = docker.list_volumes(Some(ListVolumesOptions { filters: Some(f) })).await.ok().and_then(|v| v.volumes);
    for v in volumes.unwrap_or_default() {
        out.push(format!("volume {}", v.name));
    }
    out
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
    let endpoint = Endpoint::from_env()?;
    let docker = docker::connect(&endpoint, 120).await?;
    // The plans are made before anything is deployed: a recipe that cannot be read leaves nothing.
    let from = args.upgrade_from.as_deref().map(|v| plan_of(&recipe, v, &stack, &overrides)).transpose()?;
    let to = plan_of(&recipe, &rev, &stack, &overrides)?;
    println!("testing {} {rev} as {stack}", recipe.name());
    let outcome = async {
        if let (Some(p), Some(v)) = (&from, &args.upgrade_from) {
            deploy_and_wait(&docker, p, &args).await.with_context(|| v.to_string())?;
            println!("{v} converged; upgrading to {rev}");
        }
        deploy_and_wait(&docker, &to, &args).await.with_context(|| rev.clone())
    }
    .await;
    let left = clean(&docker, &stack).await;
    match (&outcome, left.is_empty()) {
        (Ok(()), true) => {
            println!(
                "{} {rev}: converged{}; everything removed",
                recipe.name(),
                if from.is_some() { " after the upgrade" } else { "" }
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            if let Err(e) = &outcome {
                eprintln!("FAILED: {e:#}");
            }
            if !left.is_empty() {
                eprintln!("NOT CLEAN: left behind: {}", left.join(", "));
            }
            Ok(ExitCode::from(1))
        }
    }
}
