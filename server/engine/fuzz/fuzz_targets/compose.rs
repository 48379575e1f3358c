//! A whole recipe through the engine: compose file and `.env.sample` → load, interpolate,
//! validate, merge, convert to swarm specs → the deploy guardrails.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck_engine::load::RecipeFiles;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line is the env file's content (escaped newlines), the rest the compose file.
    let (env_line, compose) = text.split_once('\n').unwrap_or(("", text));
    let sample = env_line.replace("\\n", "\n");
    let mut files = BTreeMap::new();
    files.insert("compose.yml".to_string(), compose.as_bytes().to_vec());
    files.insert(".env.sample".to_string(), sample.as_bytes().to_vec());
    let files = RecipeFiles { root: "/recipe".into(), files };
    let Ok(env_file) = potluck_engine::envfile::EnvFile::parse(&sample) else { return };
    let env = potluck_engine::app_environment(&env_file, None, "app_example_org");
    if let Ok(plan) = potluck_engine::render(&files, &env, "app_example_org", None) {
        let _ = potluck_engine::guard::check(&plan, &potluck_engine::guard::Policy::default());
    }
});
