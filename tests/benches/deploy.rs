//! Deploy benchmark (a bench binary), on the test swarm, in one run:
//!
//! 1. wall time of a fresh deploy of the bonfire recipe with its postgres overlay (the
//!    overlays its .env.sample selects): `docker stack deploy --resolve-image never --detach`
//!    (the baseline) against Potluck's engine (render from the recipe files + deploy); median of
//!    several rounds, each starting from an empty stack. Target: Potluck ≤ 0.5× the CLI.
//! 2. convergence lag: a stack whose services really run (tests/fixtures/stacks/objects) is
//!    deployed and watched by Potluck; the lag is the time between the last task's `running`
//!    timestamp on the swarm and Potluck reporting convergence. Target: ≤ 250 ms.
//!
//!   make bench     (or, with the test services up: cargo bench -p potluck-tests --bench deploy -- [rounds])

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark: a failed step ends the run")]

use bollard::query_parameters::ListTasksOptions;
use potluck_server::adapters::engine::{self, converge, deploy, envfile::EnvFile, load::RecipeFiles};
use potluck_tests::swarm::{self, cli_deploy, remove_stack};
use potluck_tests::workspace_root;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Potluck's deploy as the job runs it: read the recipe, render, deploy (no convergence wait).
async fn potluck_deploy(docker: &bollard::Docker, dir: &Path, env_text: &str, stack: &str) -> deploy::Deployed {
    let files = RecipeFiles::from_dir(dir).unwrap();
    let env = engine::app_environment(&EnvFile::parse(env_text).unwrap(), files.text("abra.sh").as_deref(), stack);
    let plan = engine::render(&files, &env, stack, None).unwrap();
    let opts = deploy::DeployOptions { resolve_image: deploy::ResolveImage::Never, ..deploy::DeployOptions::default() };
    deploy::deploy(docker, &plan, &opts, &|_| {}).await.unwrap()
}

async fn deploy_times(docker: &bollard::Docker, rounds: usize) -> (Duration, Duration) {
    let dir = swarm::shared_dir().join("recipes/bonfire");
    let env_text = std::fs::read_to_string(dir.join(".env.sample")).unwrap();
    let stack = "bench_bonfire";
    let files = RecipeFiles::from_dir(&dir).unwrap();
    let env = engine::app_environment(&EnvFile::parse(&env_text).unwrap(), files.text("abra.sh").as_deref(), stack);
    let compose_files = engine::compose_files(&env);
    assert!(
        compose_files.iter().any(|f| f.contains("postgres")),
        "the postgres overlay is selected: {compose_files:?}"
    );
    let plan = engine::render(&files, &env, stack, None).unwrap();
    swarm::ensure_external_secrets(docker, &plan).await;
    println!(
        "bonfire ({}): {} services, {} secrets, {} configs, {} networks",
        compose_files.join(":"),
        plan.services.len(),
        plan.secrets.len(),
        plan.configs.len(),
        plan.networks.len()
    );

    let (mut cli, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        remove_stack(docker, stack).await;
        let t = Instant::now();
        cli_deploy(&dir, &compose_files, &env, stack).unwrap();
        cli.push(t.elapsed());
        remove_stack(docker, stack).await;
        let t = Instant::now();
        potluck_deploy(docker, &dir, &env_text, stack).await;
        ours.push(t.elapsed());
        println!("  round {}: docker stack deploy {}, potluck {}", round + 1, ms(cli[round]), ms(ours[round]));
    }
    remove_stack(docker, stack).await;
    (median(cli), median(ours))
}

/// When the newest running task of the stack reached `running`, by the swarm's clock.
async fn last_running(docker: &bollard::Docker, stack: &str) -> SystemTime {
    let filters = HashMap::from([("label".to_string(), vec![format!("com.docker.stack.namespace={stack}")])]);
    let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.unwrap();
    let mut newest = SystemTime::UNIX_EPOCH;
    for t in tasks {
        let Some(status) = t.status else { continue };
        if status.state != Some(bollard::models::TaskState::RUNNING) {
            continue;
        }
        let ts = status.timestamp.unwrap();
        let at = time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339).unwrap();
        newest = newest.max(SystemTime::from(at));
    }
    assert!(newest > SystemTime::UNIX_EPOCH, "no running task in {stack}");
    newest
}

async fn convergence_lags(docker: &bollard::Docker, rounds: usize) -> Vec<Duration> {
    let dir = workspace_root().join("tests/fixtures/stacks/objects");
    let env_text = std::fs::read_to_string(dir.join(".env")).unwrap();
    let stack = "bench_lag";
    let files = RecipeFiles::from_dir(&dir).unwrap();
    let env = engine::app_environment(&EnvFile::parse(&env_text).unwrap(), None, stack);
    swarm::ensure_external_secrets(docker, &engine::render(&files, &env, stack, None).unwrap()).await;
    let mut lags = Vec::new();
    for round in 0..rounds {
        remove_stack(docker, stack).await;
        let deployed = potluck_deploy(docker, &dir, &env_text, stack).await;
        let outcome = converge::wait(docker, stack, &deployed.services, Duration::from_secs(120), &|_| {}).await;
        let reported = SystemTime::now();
        assert_eq!(outcome, converge::Outcome::Converged, "{stack} converges");
        let lag = reported.duration_since(last_running(docker, stack).await).unwrap_or_default();
        println!("  round {}: converged {} after the last task was running", round + 1, ms(lag));
        lags.push(lag);
    }
    remove_stack(docker, stack).await;
    lags
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5);
    let docker = swarm::connect().await;

    let (cli, ours) = deploy_times(&docker, rounds).await;
    let ratio = ours.as_secs_f64() / cli.as_secs_f64();
    println!(
        "deploy (median of {rounds}): docker stack deploy {}, potluck {}: potluck takes {ratio:.2}× the CLI's time (target ≤ 0.5×) {}",
        ms(cli),
        ms(ours),
        if ratio <= 0.5 { "✓" } else { "✗" }
    );

    let lags = convergence_lags(&docker, rounds).await;
    let worst = *lags.iter().max().unwrap();
    let med = median(lags);
    println!(
        "convergence lag (median of {rounds}): {}, worst {} (target ≤ 250 ms) {}",
        ms(med),
        ms(worst),
        if worst <= Duration::from_millis(250) { "✓" } else { "✗" }
    );
}
