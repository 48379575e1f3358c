//! Hostile input gets a clear error within bounded time and memory, and the process stays up
//! for everyone else: an env file whose `$VAR`s grow exponentially, a recipe whose compose file
//! is an alias bomb or nests without end, and a git remote that accepts and never answers.

use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::swarm::{self, BlackHole};
use potluck_tests::{Browser, TestApp};
use std::path::Path;
use std::time::{Duration, Instant};

const SLUG: &str = "collective-a";

async fn world() -> (TestApp, Browser, tempfile::TempDir) {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", SLUG), ("name", "A"), ("description", "")])
        .await
        .unwrap();
    admin
        .call::<ServerView>(
            "add_server",
            &[("slug", SLUG), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    (app, admin, tempfile::tempdir().unwrap())
}

/// Still answering, quickly, for everyone else.
async fn alive(app: &TestApp) {
    let started = Instant::now();
    let r = app.browser().get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// A one-version recipe made of these files.
fn recipe(root: &Path, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = root.join(format!("{name}-src"));
    let version = dir.join("versions/0.1.0+1");
    std::fs::create_dir_all(&version).unwrap();
    for (path, content) in files {
        std::fs::write(dir.join(path), content).unwrap();
        std::fs::write(version.join(path), content).unwrap();
    }
    std::fs::write(dir.join("TAGS"), "0.1.0+1\ttag\tcommit=0\t2026-01-01T00:00:00Z\tchore: publish 0.1.0+1 release\n")
        .unwrap();
    publish(&dir, root, name).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_file_that_expands_without_end_is_refused_with_its_line() {
    let (app, admin, dir) = world().await;
    let (_, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    admin
        .call::<AppSummary>(
            "create_app",
            &[("slug", SLUG), ("server", "local"), ("recipe", "hello"), ("domain", "bomb.example.org")],
        )
        .await
        .unwrap();
    // Twelve short lines, each doubling the last: gigabytes if expanded.
    let mut env = String::from(
        "DOMAIN=bomb.example.org\nTYPE=hello\nA0=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    );
    for i in 1..30 {
        env.push_str(&format!("A{i}=$A{}$A{}\n", i - 1, i - 1));
    }
    let started = Instant::now();
    let e = admin
        .call::<()>("set_app_env", &[("slug", SLUG), ("domain", "bomb.example.org"), ("env", &env)])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("line 14") && e.body.contains("expands to more than"), "{}", e.body);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let stored: AppDetail = admin.call("get_app", &[("slug", SLUG), ("domain", "bomb.example.org")]).await.unwrap();
    assert!(!stored.env.contains("A29"), "nothing of it was stored");
    alive(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_file_that_is_an_alias_bomb_or_nests_without_end_is_refused() {
    let (app, admin, dir) = world().await;
    let mut bomb = String::from(
        "version: \"3.8\"\nx-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = "a".to_string();
    for n in ["b", "c", "d", "e", "f", "g", "h", "i"] {
        bomb.push_str(&format!(
            "x-{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = n.to_string();
    }
    bomb.push_str("services:\n  app:\n    image: potluck-test/busybox:1\n    environment:\n      - DOMAIN\n");
    let deep = format!(
        "version: \"3.8\"\nservices:\n  app:\n    image: potluck-test/busybox:1\n    labels: {}1{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let sample = "TYPE=x\nDOMAIN=x.example.org\n";
    // (yaml-rust2 stops flow collections nested too deep itself; block ones stop at Potluck's limit)
    for (name, compose, expected) in
        [("aliasbomb", bomb.as_str(), "excessive aliasing"), ("deepnest", deep.as_str(), "recursion limit")]
    {
        let remote = recipe(dir.path(), name, &[("compose.yml", compose), (".env.sample", sample)]);
        admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
        let started = Instant::now();
        let v: VersionDetail = admin.call("get_recipe_version", &[("name", name), ("tag", "0.1.0+1")]).await.unwrap();
        let lint = serde_json::to_string(&v.lint).unwrap();
        assert!(lint.contains(expected), "{name}: lint says why: {lint}");
        let domain = format!("{name}.example.org");
        admin
            .call::<AppSummary>(
                "create_app",
                &[("slug", SLUG), ("server", "local"), ("recipe", name), ("domain", &domain)],
            )
            .await
            .unwrap();
        let e = admin
            .call::<DeployPreview>("preview_job", &[("slug", SLUG), ("domain", &domain), ("kind", "deploy")])
            .await
            .unwrap_err();
        assert_eq!(e.status, 422, "{}", e.body);
        assert!(e.body.contains(expected), "{name}: {}", e.body);
        assert!(started.elapsed() < Duration::from_secs(10), "{name}: {:?}", started.elapsed());
        alive(&app).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_remote_that_never_answers_fails_in_bounded_time() {
    let (app, admin, _dir) = world().await;
    let hole = BlackHole::start().await;
    let registering = {
        let admin = admin.clone();
        let url = format!("https://{}/recipes/hangs.git", hole.addr);
        tokio::spawn(async move {
            let started = Instant::now();
            let r = admin.call::<RecipeSummary>("register_recipe", &[("repository", &url)]).await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Meanwhile Potluck works for everyone (the clone holds no lock).
    let started = Instant::now();
    admin
        .call::<CollectiveSummary>("update_collective", &[("slug", SLUG), ("name", "A"), ("description", "busy")])
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    alive(&app).await;
    let (r, took) = registering.await.unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains(&hole.addr.to_string()), "the error names the remote: {}", e.body);
    assert!(took < Duration::from_secs(55), "bounded: {took:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM recipes").await, 0);
    app.stop().await;
}
