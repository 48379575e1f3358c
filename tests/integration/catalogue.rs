//! The catalogue: `GET /catalogue.json` in Co-op Cloud's `recipes.json` shape, built from the
//! recipes' real repositories; `POST /catalogue/import`, streaming one line per recipe; and the
//! `potluck catalogue generate` and `potluck lint` commands.

use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish, release, shared_recipe};
use potluck_tests::{potluck_bin, TestApp};
use serde_json::Value;
use std::process::Command;

/// `versions` of one catalogue entry as (tag, service, image, tag) rows, oldest first.
fn version_rows(entry: &Value) -> Vec<(String, String, String, String)> {
    let mut rows = Vec::new();
    for v in entry["versions"].as_array().expect("versions is a list") {
        for (tag, services) in v.as_object().expect("one object per version") {
            for (service, meta) in services.as_object().expect("services") {
                rows.push((
                    tag.clone(),
                    service.clone(),
                    meta["image"].as_str().unwrap().to_string(),
                    meta["tag"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    rows
}

async fn catalogue(b: &potluck_tests::Browser) -> Value {
    let r = b.get("/catalogue.json").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_lists_every_tag_and_follows_new_releases() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    let dir = tempfile::tempdir().unwrap();
    let (work, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    let (_, private) = publish(&fixture_recipe("hello"), dir.path(), "private-hello");
    fed.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    fed.call::<RecipeSummary>(
        "register_recipe",
        &[
            ("repository", &private.display().to_string()),
            ("name", "private-hello"),
            ("credential_kind", "https"),
            ("credential_username", "bot"),
            ("credential_secret", "s3cr3t-token"),
        ],
    )
    .await
    .unwrap();

    // Public: read without signing in.
    let anonymous = app.browser();
    let c = catalogue(&anonymous).await;
    let hello = &c["hello"];
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["repository"], remote.display().to_string());
    assert_eq!(hello["category"], "Utilities");
    assert_eq!(hello["features"]["image"]["image"], "potluck-test/busybox");
    assert_eq!(hello["features"]["status"], 2);
    let rows = version_rows(hello);
    let tags: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(tags.first(), Some(&"0.1.0+1.0"), "oldest first: {rows:?}");
    assert_eq!(tags.last(), Some(&"1.0.0+2.0"), "{rows:?}");
    assert!(
        rows.contains(&("0.1.0+1.0".into(), "app".into(), "potluck-test/busybox".into(), "1".into())),
        "each tag's own image: {rows:?}"
    );
    assert!(rows.contains(&("1.0.0+2.0".into(), "app".into(), "potluck-test/busybox".into(), "2".into())), "{rows:?}");
    assert!(c.get("private-hello").is_none(), "a recipe behind credentials is not published: {c}");
    assert!(!c.to_string().contains("s3cr3t"));

    // A new release upstream appears once Potluck has fetched it.
    release(&work, &remote, &[("README.md", "# Hello\n\nnew release\n")], "1.0.1+2.0");
    fed.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    let rows = version_rows(&catalogue(&anonymous).await["hello"]);
    assert_eq!(rows.last().map(|r| r.0.as_str()), Some("1.0.1+2.0"), "{rows:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_registers_recipes_line_by_line_and_only_for_federation_admins() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, hello) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    let (_, bore) = publish(&shared_recipe("bore"), dir.path(), "bore");
    fed.call::<RecipeSummary>("register_recipe", &[("repository", &hello.display().to_string())]).await.unwrap();
    let missing = dir.path().join("nowhere.git");
    let json = serde_json::json!({
        "hello": { "name": "hello", "repository": hello.display().to_string() },
        "bore": { "name": "bore", "repository": bore.display().to_string(), "versions": [] },
        "ghost": { "name": "ghost", "repository": missing.display().to_string() },
        "nourl": { "name": "nourl" },
    })
    .to_string();

    let anonymous = app.browser();
    let r = anonymous.post_form("/catalogue/import", &[("catalogue", &json)]).await;
    assert_eq!(r.status(), 401, "{}", r.text().await.unwrap());

    let r = fed.post_form("/catalogue/import", &[("catalogue", "{ not json")]).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("not a recipes.json"));

    let r = fed.post_form("/catalogue/import", &[("catalogue", &json)]).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 5, "one line per recipe and a total: {body}");
    assert!(lines.iter().any(|l| l.starts_with("bore: registered from")), "{body}");
    assert!(lines.iter().any(|l| l.starts_with("hello: skipped, already registered")), "{body}");
    assert!(lines.iter().any(|l| l.starts_with("ghost: failed:")), "{body}");
    assert!(lines.iter().any(|l| l.starts_with("nourl: failed: no repository given")), "{body}");
    assert_eq!(lines[4], "imported 1 of 4 recipes");

    let recipes: Vec<RecipeSummary> = fed.call("list_recipes", &[]).await.unwrap();
    let mut names: Vec<&str> = recipes.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["bore", "hello"], "failures register nothing");
    let c = catalogue(&fed).await;
    let want: Vec<String> =
        potluck_tests::recipes::read_tags(&shared_recipe("bore")).into_iter().map(|t| t.name).collect();
    let got: Vec<String> = version_rows(&c["bore"]).into_iter().map(|r| r.0).collect::<Vec<_>>();
    for tag in &want {
        assert!(got.contains(tag), "the imported recipe's tag {tag} is in the catalogue: {got:?}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'recipe.register' AND outcome = 'success'").await,
        2
    );
    app.stop().await;
}

fn potluck(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(potluck_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn catalogue_generate_and_lint_commands() {
    let dir = tempfile::tempdir().unwrap();
    let repos = dir.path().join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    for name in ["hello", "faulty"] {
        potluck_tests::recipes::build_repo(&fixture_recipe(name), &repos.join(name));
    }
    potluck_tests::recipes::build_repo(&shared_recipe("bonfire"), &repos.join("bonfire"));

    let out_file = dir.path().join("recipes.json");
    let (code, _, err) =
        potluck(&["catalogue", "generate", "--recipes", repos.to_str().unwrap(), "--out", out_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("[1/3] bonfire"), "progress per recipe: {err}");
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let names: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(names, ["bonfire", "faulty", "hello"]);
    let bonfire_tags: Vec<String> =
        potluck_tests::recipes::read_tags(&shared_recipe("bonfire")).into_iter().map(|t| t.name).collect();
    let rows = version_rows(&c["bonfire"]);
    for tag in &bonfire_tags {
        assert!(rows.iter().any(|r| &r.0 == tag), "tag {tag} listed: {rows:?}");
    }
    assert!(rows.iter().any(|r| r.1 == "app" && r.2.starts_with("bonfirenetworks/bonfire")), "{rows:?}");

    let (code, _, err) = potluck(&["catalogue", "generate", "--recipes", dir.path().join("none").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot read"), "{err}");

    let (code, out, _) =
        potluck(&["lint", "--recipe", repos.join("hello").to_str().unwrap(), "--version", "1.0.0+2.0"]);
    assert_eq!(code, 0, "{out}");
    // A directory on disk: no `app` service (an error) and the Docker socket mounted (policy).
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("compose.yml"),
        "version: \"3.8\"\nservices:\n  web:\n    image: nginx:1.27\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n",
    )
    .unwrap();
    let (code, out, _) = potluck(&["lint", "--recipe", broken.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("R009 error"), "{out}");
    assert!(out.contains("P001 warning [web]") && out.contains("Docker socket"), "{out}");
    assert!(out.contains("fix:"), "each finding says how to fix it: {out}");
    let (code, _, err) =
        potluck(&["lint", "--recipe", repos.join("hello").to_str().unwrap(), "--version", "9.9.9+nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("9.9.9+nope"), "{err}");
}
