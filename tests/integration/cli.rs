//! The `potluck` command line: configuration, migrations, the bootstrap link.

use potluck_tests::{potluck_bin, TestApp};
use std::process::Command;

/// Runs `potluck`; returns its exit code, its standard output, and both outputs together.
fn potluck(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(potluck_bin());
    cmd.args(args).env("POTLUCK_DATABASE_URL", &app.database_url).env("POTLUCK_DATA_DIR", app.dir.path().join("data"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), stdout, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_comes_from_file_environment_and_secret_files() {
    let app = TestApp::spawn().await;
    let dir = app.dir.path();
    std::fs::write(dir.join("potluck.toml"), "listen = \"127.0.0.1:4999\"\nsession_idle_minutes = 30\n").unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, "c2VjcmV0LWtleS1jMmxrYm1WNUxXdGxlUzFqTW14cmJt\n").unwrap();
    let config = dir.join("potluck.toml").display().to_string();
    let (code, _, out) = potluck(
        &app,
        &["--config", &config, "print-config"],
        &[("POTLUCK_SESSION_IDLE_MINUTES", "45"), ("POTLUCK_SECRET_KEY_FILE", key_file.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("listen = \"127.0.0.1:4999\""), "file: {out}");
    assert!(out.contains("session_idle_minutes = 45"), "environment wins over the file: {out}");
    assert!(out.contains("secret_key = \"<redacted>\"") && !out.contains("c2VjcmV0"), "secrets are redacted: {out}");

    let (code, _, out) = potluck(&app, &["print-config"], &[("POTLUCK_LOG_FORMAT", "xml")]);
    assert_ne!(code, 0);
    assert!(out.contains("log_format"), "{out}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_bootstrap_link() {
    let app = TestApp::spawn().await;
    let (code, _, out) = potluck(&app, &["migrate"], &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = potluck(&app, &["admin", "bootstrap-link"], &[("POTLUCK_PUBLIC_URL", &app.base)]);
    assert_eq!(code, 0, "{out}");
    let link = out.trim().to_string();
    assert!(link.starts_with(&format!("{}/bootstrap/", app.base)), "{link}");
    let token = link.rsplit('/').next().unwrap();
    let b = app.browser();
    let r = b.post_form("/auth/bootstrap", &[("token", token)]).await;
    assert_eq!(potluck_tests::location(&r), "/admin/providers");
    let (code, _, out) = potluck(&app, &["migrate"], &[("POTLUCK_DATABASE_URL", "mysql://nope")]);
    assert_ne!(code, 0);
    assert!(out.contains("unsupported database URL"), "{out}");
    app.stop().await;
}

/// The stack a `potluck recipe test` run named ("testing hello 0.2.0+1.1 as recipe-test-…").
fn tested_stack(stdout: &str) -> String {
    stdout.lines().find_map(|l| l.split(" as ").nth(1)).expect("the run names its stack").trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_test_deploys_a_throw_away_app_upgrades_it_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let remotes: std::collections::HashMap<&str, std::path::PathBuf> = ["hello", "faulty", "backed-up", "sickly"]
        .into_iter()
        .map(|r| {
            let (work, remote) =
                potluck_tests::recipes::publish(&potluck_tests::recipes::fixture_recipe(r), dir.path(), r);
            if r == "backed-up" {
                potluck_tests::recipes::release(&work, &remote, &[], "1.0.0+1");
            }
            (r, remote)
        })
        .collect();
    let run = |recipe: &str, args: &[&str]| {
        let remote = &remotes[recipe];
        let out = Command::new(potluck_bin())
            .args(["recipe", "test", "--recipe", &remote.display().to_string(), "--resolve-image", "never"])
            .args(args)
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Green: 0.1.0 converges, the upgrade to 0.2.0 converges, everything goes.
    let (code, stdout, stderr) = run("hello", &["--version", "0.2.0+1.1", "--upgrade-from", "0.1.0+1.0"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("0.1.0+1.0 converged; upgrading to 0.2.0+1.1"), "{stdout}");
    assert!(stdout.contains("converged after the upgrade; everything removed"), "{stdout}");
    assert!(stdout.contains("secret ") && stdout.contains("generated for the test"), "{stdout}");
    assert_eq!(potluck_tests::swarm::leftovers(&tested_stack(&stdout)), "", "{stdout}\n{stderr}");
    // Red: an image that cannot exist never converges; the run fails and still leaves nothing.
    let (code, stdout, stderr) = run("faulty", &["--version", "0.1.0+1", "--timeout", "15"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("FAILED") && stderr.contains("does-not-exist"), "{stderr}");
    assert_eq!(potluck_tests::swarm::leftovers(&tested_stack(&stdout)), "", "{stdout}\n{stderr}");
    // Red: the process runs but its healthcheck never passes; the run names the unhealthy task
    // and leaves nothing.
    let (code, stdout, stderr) = run("sickly", &["--version", "0.1.0+1", "--timeout", "15"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("FAILED") && stderr.contains("did not converge"), "{stderr}");
    assert_eq!(potluck_tests::swarm::leftovers(&tested_stack(&stdout)), "", "{stdout}\n{stderr}");
    // Backups declared: the smoke check writes a table, the round trip backs it up and restores
    // it (the database's pre-hook dumps it) from a scratch repository, and nothing is left.
    let (code, stdout, stderr) =
        run("backed-up", &["--version", "1.0.0+1", "--smoke-command", "db:printf 'row 1\\n' > /var/lib/db/table.1"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("smoke check passed"), "{stdout}");
    assert!(stdout.contains("round trip: ") && stdout.contains("files backed up and restored"), "{stdout}");
    assert_eq!(potluck_tests::swarm::leftovers(&tested_stack(&stdout)), "", "{stdout}\n{stderr}");
    // A smoke check that fails is red, and the run still leaves nothing.
    let (code, stdout, stderr) = run("hello", &["--version", "0.1.0+1.0", "--smoke-command", "app:exit 3"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("smoke check"), "{stderr}");
    assert_eq!(potluck_tests::swarm::leftovers(&tested_stack(&stdout)), "", "{stdout}\n{stderr}");
    // A release the recipe does not have: refused before anything is deployed.
    let (code, _, stderr) = run("hello", &["--version", "9.9.9+9"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("9.9.9+9"), "{stderr}");
}
