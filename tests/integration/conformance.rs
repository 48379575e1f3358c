//! Conformance with `docker stack deploy`: every recipe of ../shared/recipes (with the overlays
//! its .env.sample selects) and the project's own fixtures (tests/fixtures/stacks) is deployed on
//! the test swarm by the real Docker CLI and by Potluck's engine; the normalized objects must be
//! identical, and redeploying with either tool over the other must change nothing. Compose files
//! the CLI rejects must be rejected with the same reason, leaving nothing behind.

use indexmap::IndexMap;
use potluck_server::adapters::engine::{self, convert::StackPlan, deploy, envfile::EnvFile, load::RecipeFiles};
use potluck_tests::swarm::{self, cli_deploy, dump, remove_stack};
use potluck_tests::workspace_root;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

/// The swarm is shared (published ports are cluster-wide): one case at a time.
pub static SWARM: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

struct Prepared {
    dir: PathBuf,
    env: IndexMap<String, String>,
    plan: StackPlan,
}

fn prepare(dir: &Path, env_file: &Path, stack: &str) -> Prepared {
    let files = RecipeFiles::from_dir(dir).unwrap();
    let text = std::fs::read_to_string(env_file).unwrap_or_else(|e| panic!("{}: {e}", env_file.display()));
    let env = engine::app_environment(&EnvFile::parse(&text).unwrap(), files.text("abra.sh").as_deref(), stack);
    let plan = engine::render(&files, &env, stack, None).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    Prepared { dir: files.root.clone(), env, plan }
}

async fn potluck_deploy(docker: &bollard::Docker, plan: &StackPlan) {
    let opts = deploy::DeployOptions { resolve_image: deploy::ResolveImage::Never, ..deploy::DeployOptions::default() };
    deploy::deploy(docker, plan, &opts, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("potluck deploy of {}: {e}", plan.namespace));
}

/// The running tasks after the stack has settled.
async fn settled_tasks(docker: &bollard::Docker, plan: &StackPlan) -> Vec<String> {
    let services = plan.services.iter().map(|s| (s.name.clone(), s.name.clone())).collect();
    let outcome = engine::converge::wait(docker, &plan.namespace, &services, Duration::from_secs(60), &|_| {}).await;
    assert_eq!(outcome, engine::converge::Outcome::Converged, "{} converges", plan.namespace);
    swarm::task_ids(&plan.namespace)
}

async fn conforms(dir: &Path, env_file: &Path, stack: &str, services_run: bool) {
    let _guard = SWARM.lock().await;
    let docker = swarm::connect().await;
    let p = prepare(dir, env_file, stack);
    swarm::ensure_external_secrets(&docker, &p.plan).await;
    remove_stack(&docker, stack).await;

    let out = cli_deploy(&p.dir, &engine::compose_files(&p.env), &p.env, stack)
        .unwrap_or_else(|e| panic!("docker stack deploy {stack}: {e}"));
    let reference = dump(stack);
    assert!(!reference["services"].as_object().unwrap().is_empty(), "the CLI deployed services: {out}");
    remove_stack(&docker, stack).await;

    potluck_deploy(&docker, &p.plan).await;
    let ours = dump(stack);
    let differences = swarm::diff(&reference, &ours);
    assert!(differences.is_empty(), "{stack}: Potluck differs from docker stack deploy:\n{}", differences.join("\n"));

    // Redeploying, with either tool over the other, changes nothing (and restarts nothing).
    let tasks = if services_run { Some(settled_tasks(&docker, &p.plan).await) } else { None };
    cli_deploy(&p.dir, &engine::compose_files(&p.env), &p.env, stack).unwrap();
    assert!(
        swarm::diff(&ours, &dump(stack)).is_empty(),
        "{stack}: the CLI's redeploy over Potluck's changed the stack"
    );
    potluck_deploy(&docker, &p.plan).await;
    assert!(swarm::diff(&ours, &dump(stack)).is_empty(), "{stack}: Potluck's redeploy changed the stack");
    if let Some(before) = tasks {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(before, swarm::task_ids(stack), "{stack}: a redeploy without changes restarted tasks");
    }
    remove_stack(&docker, stack).await;
}

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures/stacks").join(name)
}

fn recipe(name: &str) -> PathBuf {
    swarm::shared_dir().join("recipes").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_objects() {
    let dir = fixture("objects");
    conforms(&dir, &dir.join(".env"), "cf_objects", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_deploy_options() {
    let dir = fixture("deploy-options");
    conforms(&dir, &dir.join(".env"), "cf_options", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_storage_networks() {
    let dir = fixture("storage-networks");
    conforms(&dir, &dir.join(".env"), "cf_storage", true).await;
}

macro_rules! recipe_case {
    ($test:ident, $name:literal, $stack:literal) => {
        #[tokio::test]
        async fn $test() {
            let dir = recipe($name);
            conforms(&dir, &dir.join(".env.sample"), $stack, false).await;
        }
    };
}

recipe_case!(recipe_bonfire, "bonfire", "cr_bonfire");
recipe_case!(recipe_bore, "bore", "cr_bore");
recipe_case!(recipe_foodsharing_cms, "foodsharing-cms", "cr_foodsharing");
recipe_case!(recipe_gaseous, "gaseous", "cr_gaseous");
recipe_case!(recipe_go_ssb_room, "go-ssb-room", "cr_ssbroom");
recipe_case!(recipe_healthcheck, "healthcheck", "cr_healthcheck");
recipe_case!(recipe_lemp_custom_php, "lemp-custom-php", "cr_lemp");
recipe_case!(recipe_traefik_2021, "traefik-2021", "cr_traefik");

/// Compose files the Docker CLI rejects: Potluck rejects them with the same reason, and neither
/// leaves anything on the swarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_match_the_docker_cli() {
    let _guard = SWARM.lock().await;
    let docker = swarm::connect().await;
    let cases: &[(&str, &str)] = &[
        ("required", "services:\n  web:\n    image: ${NOPE?must set NOPE}\n"),
        ("invalid", "services:\n  web:\n    image: \"busybox:${\"\n"),
        ("pids-38", "version: \"3.8\"\nservices:\n  web:\n    image: busybox\n    deploy:\n      resources:\n        limits:\n          pids: 5\n"),
        ("cast", "services:\n  web:\n    image: busybox\n    deploy:\n      replicas: ${NOPE}\n"),
        ("version", "version: \"2.4\"\nservices:\n  web:\n    image: busybox\n"),
        ("forbidden", "services:\n  web:\n    image: busybox\n    cpu_shares: 5\n    volumes_from: [x]\n"),
        ("toplevel", "name: nope\nservices:\n  web:\n    image: busybox\n"),
        ("type", "services:\n  web:\n    image: busybox\n    deploy:\n      replicas: two\n"),
        ("duration", "services:\n  web:\n    image: busybox\n    stop_grace_period: soon\n"),
        ("network", "services:\n  web:\n    image: busybox\n    networks: [nope]\n"),
        ("secret", "services:\n  web:\n    image: busybox\n    secrets: [nope]\n"),
        ("noimage", "services:\n  web:\n    command: sleep 1\n"),
        ("mode", "services:\n  web:\n    image: busybox\n    deploy:\n      mode: global\n      replicas: 2\n"),
    ];
    for (name, compose) in cases {
        let stack = format!("rj_{}", name.replace('-', "_"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yml"), compose).unwrap();
        let env: IndexMap<String, String> = [("STACK_NAME".to_string(), stack.clone())].into_iter().collect();
        // Potluck first: it renders everything before it touches the swarm, so nothing is left.
        let files = RecipeFiles::from_dir(dir.path()).unwrap();
        let Err(ours) = engine::render(&files, &env, &stack, None) else { panic!("Potluck accepted {name}") };
        let ours = ours.to_string();
        let left = dump(&stack);
        assert!(
            ["services", "networks", "secrets", "configs"].iter().all(|k| left[k].as_object().unwrap().is_empty()),
            "{name}: Potluck left objects behind"
        );
        let Err(cli) = cli_deploy(dir.path(), &["compose.yml".to_string()], &env, &stack) else {
            panic!("the CLI accepted {name}")
        };
        assert!(cli.contains(ours.trim_end()), "{name}: Potluck says {ours:?}, the CLI said {cli:?}");
        // (The CLI itself may have created networks before failing.)
        remove_stack(&docker, &stack).await;
    }
}
