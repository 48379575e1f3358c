//! The deploy engine: what `abra app deploy` and `docker stack deploy` do, without the Docker CLI.
//!
//! env file (+ abra.sh exports, STACK_NAME) → compose files of `COMPOSE_FILE` → load, interpolate,
//! validate, merge → abra's labels → swarm objects (`convert`) → applied through bollard
//! (`deploy`) → watched until converged (`converge`).

pub mod compose;
pub mod containers;
pub mod converge;
pub mod convert;
pub mod deploy;
pub mod docker;
pub mod envfile;
pub mod guard;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod schema;
pub mod ssh;
pub mod tls;
pub mod yaml;

use convert::StackPlan;
use indexmap::IndexMap;
use load::{RecipeFiles, StackError};

/// The default convergence timeout when a recipe sets none (abra's).
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// abra's stack name for an app domain: dots become underscores, at most 45 characters (which
/// leaves room for `_<secret>_v<n>` inside Docker's 64-character names).
pub fn stack_name_for(domain: &str) -> String {
    let mut s: String = domain.trim().replace('.', "_");
    if s.len() > 45 {
        s.truncate(45);
    }
    s
}

/// The compose files an env selects (`COMPOSE_FILE`, colon-separated), else `compose.yml`.
pub fn compose_files(env: &IndexMap<String, String>) -> Vec<String> {
    match env.get("COMPOSE_FILE").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(list) => list.split(':').filter(|f| !f.is_empty()).map(String::from).collect(),
        None => vec!["compose.yml".into()],
    }
}

/// The interpolation environment of an app, as abra builds it: the app's env file (with `$VAR`
/// expansion), the recipe's `abra.sh` exports over it, and `STACK_NAME`.
pub fn app_environment(env_file: &envfile::EnvFile, abra_sh: Option<&str>, stack: &str) -> IndexMap<String, String> {
    let mut env = env_file.values(&|_| None);
    if let Some(sh) = abra_sh {
        env.extend(envfile::abra_sh_exports(sh));
    }
    env.insert("STACK_NAME".into(), stack.into());
    env
}

/// What abra adds to a deploy: its labels on the `app` service, and the app's env exposed to it.
#[derive(Debug, Clone, Default)]
pub struct AbraDeploy {
    pub recipe: String,
    /// The version label (`2.0.1+1.0.6`); on a chaos deploy the previous non-chaos version.
    pub version: String,
    pub chaos: bool,
    /// Short commit (8 hex), `+U` when uncommitted changes were included.
    pub chaos_version: Option<String>,
    /// The app's env (file + abra.sh): every key missing from the `app` service's environment is added.
    pub app_env: IndexMap<String, String>,
}

/// Applies abra's labels and `ExposeAllEnv` to the `app` service.
pub fn apply_abra(config: &mut compose::Config, stack: &str, abra: &AbraDeploy) {
    for s in config.services.iter_mut().filter(|s| s.name == "app") {
        let labels = &mut s.deploy.labels;
        labels.insert(format!("coop-cloud.{stack}.recipe"), abra.recipe.clone());
        labels.insert(format!("coop-cloud.{stack}.chaos"), abra.chaos.to_string());
        if let Some(cv) = &abra.chaos_version {
            labels.insert(format!("coop-cloud.{stack}.chaos-version"), cv.clone());
        }
        if !abra.version.is_empty() {
            labels.insert(format!("coop-cloud.{stack}.version"), abra.version.clone());
        }
        for (k, v) in &abra.app_env {
            s.environment.entry(k.clone()).or_insert_with(|| Some(v.clone()));
        }
    }
}

/// Loads and converts a stack: `env` is the full interpolation environment.
pub fn render(
    files: &RecipeFiles,
    env: &IndexMap<String, String>,
    stack: &str,
    abra: Option<&AbraDeploy>,
) -> Result<StackPlan, StackError> {
    if stack.trim().is_empty() || stack.contains(['"', '\'', ' ']) {
        return Err(StackError(format!("invalid stack name {stack:?}")));
    }
    let compose = compose_files(env);
    let mut loaded = load::load(files, &compose, env)?;
    if let Some(a) = abra {
        apply_abra(&mut loaded.config, stack, a);
    }
    let home = env.get("HOME").cloned().unwrap_or_else(|| "/root".into());
    let read = |p: &std::path::Path| files.read_abs(p);
    let mut plan =
        convert::convert(&loaded.config, stack, &loaded.working_dir, &home, &read).map_err(|e| StackError(e.0))?;
    plan.warnings = loaded.warnings;
    plan.ignored = loaded.ignored;
    Ok(plan)
}

/// The convergence timeout a stack asks for (`coop-cloud.<stack>.timeout` on any service), in seconds.
pub fn timeout_of(plan: &StackPlan) -> u64 {
    let key = format!("coop-cloud.{}.timeout", plan.namespace);
    plan.services
        .iter()
        .filter_map(|s| s.spec["Labels"][&key].as_str().and_then(|v| v.trim().parse::<u64>().ok()))
        .next()
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_like_abra() {
        assert_eq!(stack_name_for("bonfire.example.com"), "bonfire_example_com");
        let long = stack_name_for("a-very-long-subdomain-name.of-a-collective.example.org");
        assert_eq!(long.len(), 45);
    }

    #[test]
    fn compose_files_from_env() {
        let mut env = IndexMap::new();
        assert_eq!(compose_files(&env), ["compose.yml"]);
        env.insert("COMPOSE_FILE".to_string(), "compose.yml:compose.postgres.yml".to_string());
        assert_eq!(compose_files(&env), ["compose.yml", "compose.postgres.yml"]);
    }
}
