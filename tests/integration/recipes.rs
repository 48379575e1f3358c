//! The recipe store against real git repositories built from ../shared/recipes and the
//! project's fixtures: registration (file path remotes), versions and their files read from tag
//! trees, fetch, maintainers, lint, and the errors a maintainer can make.

use potluck_app::model::{GroupMapping, RecipeDetail, RecipeSummary, VersionDetail};
use potluck_tests::recipes::{fixture_recipe, publish, release, shared_recipe};
use potluck_tests::{Browser, Idp, TestApp};

async fn register(
    b: &Browser,
    remote: &std::path::Path,
    collective: &str,
) -> Result<RecipeSummary, potluck_tests::Failure> {
    b.call("register_recipe", &[("repository", &remote.display().to_string()), ("collective", collective)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_shared_recipes_and_reads_versions_from_tags() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, bonfire) = publish(&shared_recipe("bonfire"), dir.path(), "bonfire");
    let (_, traefik) = publish(&shared_recipe("traefik-2021"), dir.path(), "traefik-2021");
    let (_, foodsharing) = publish(&shared_recipe("foodsharing-cms"), dir.path(), "foodsharing-cms");

    let summary = register(&fed, &bonfire, "").await.unwrap();
    assert_eq!(summary.name, "bonfire");
    assert_eq!(summary.version_count, 3);
    assert_eq!(summary.latest_version.as_deref(), Some("2.0.1+1.0.6-social-amd64"));
    register(&fed, &traefik, "").await.unwrap();
    register(&fed, &foodsharing, "").await.unwrap();

    let list: Vec<RecipeSummary> = fed.call("list_recipes", &[]).await.unwrap();
    let names: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["bonfire", "foodsharing-cms", "traefik-2021"]);

    // Versions newest first by their semver part; annotated vs lightweight known; notes and
    // images read from each tag's tree.
    let detail: RecipeDetail = fed.call("get_recipe", &[("name", "bonfire")]).await.unwrap();
    let tags: Vec<&str> = detail.versions.iter().map(|v| v.tag.as_str()).collect();
    assert_eq!(tags, ["2.0.1+1.0.6-social-amd64", "2.0.0+1.0.5-social-amd64", "1.0.0+1.0.5-social-amd64"]);
    assert!(detail.versions.iter().all(|v| v.annotated && v.canonical));
    let v200 = &detail.versions[1];
    assert_eq!(v200.semver.as_deref(), Some("2.0.0"));
    let note = std::fs::read_to_string(shared_recipe("bonfire").join("release/2.0.0+1.0.5-social-amd64")).unwrap();
    assert_eq!(v200.release_note.as_deref(), Some(note.trim()));
    assert!(v200.message.contains("publish 2.0.0+1.0.5-social-amd64"), "{}", v200.message);
    assert!(
        detail.versions[0].images.iter().any(|i| i.service == "app" && i.image.contains("bonfire")),
        "{:?}",
        detail.versions[0].images
    );
    assert!(detail.can_maintain, "the registering admin maintains it");
    assert_eq!((detail.required_approvals, detail.required_collectives), (2, 2));

    let traefik: RecipeDetail = fed.call("get_recipe", &[("name", "traefik-2021")]).await.unwrap();
    assert_eq!(traefik.versions.len(), 1);
    assert!(!traefik.versions[0].annotated, "v2.4.8 is a lightweight tag");
    assert!(!traefik.versions[0].canonical, "v2.4.8 is shown as it is, not as x.y.z+upstream");

    let food: RecipeDetail = fed.call("get_recipe", &[("name", "foodsharing-cms")]).await.unwrap();
    let tags: Vec<&str> = food.versions.iter().map(|v| v.tag.as_str()).collect();
    assert_eq!(tags, ["v1.0.3", "v1.0.2", "v1.0.1", "v1.0.0"]);

    // One version in full: compose files, the sample with its modifiers, abra.sh exports, lint.
    let v: VersionDetail =
        fed.call("get_recipe_version", &[("name", "bonfire"), ("tag", "2.0.1+1.0.6-social-amd64")]).await.unwrap();
    assert!(
        v.compose_files.contains(&"compose.yml".to_string())
            && v.compose_files.contains(&"compose.postgres.yml".to_string())
    );
    let pg =
        v.env_sample.iter().find(|e| e.key == "SECRET_POSTGRES_PASSWORD_VERSION").expect("secret version in sample");
    assert_eq!(pg.value, "v1");
    assert!(!pg.commented);
    let domain = v.env_sample.iter().find(|e| e.key == "DOMAIN").unwrap();
    assert!(domain.doc.iter().any(|d| d.contains("instance's domain name")), "{:?}", domain.doc);
    assert!(v.env_sample.iter().any(|e| e.key == "APP_FLAVOUR" && e.commented));
    assert!(v.abra_exports.iter().any(|(k, v)| k == "APP_ENTRYPOINT_VERSION" && !v.is_empty()), "{:?}", v.abra_exports);
    for f in &v.lint {
        assert!(f.rule.starts_with('R') || f.rule.starts_with('P'), "{f:?}");
        assert!(!f.message.is_empty() && !f.fix.is_empty(), "{f:?}");
    }

    let missing = fed
        .call::<VersionDetail>("get_recipe_version", &[("name", "bonfire"), ("tag", "9.9.9+nope")])
        .await
        .unwrap_err();
    assert_eq!(missing.status, 404, "{}", missing.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_modifiers_and_lints_the_fixture() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, hello) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    register(&fed, &hello, "").await.unwrap();
    let v: VersionDetail = fed.call("get_recipe_version", &[("name", "hello"), ("tag", "1.0.0+2.0")]).await.unwrap();
    let db = v.env_sample.iter().find(|e| e.key == "SECRET_DB_PASSWORD_VERSION").unwrap();
    assert_eq!(db.modifiers, [("length".to_string(), "32".to_string())]);
    let api = v.env_sample.iter().find(|e| e.key == "SECRET_API_KEY_VERSION").unwrap();
    assert_eq!(api.modifiers, [("generate".to_string(), "false".to_string())]);
    assert_eq!(api.doc, ["An API key from the upstream service: insert it by hand"]);
    assert_eq!(v.abra_exports, [("PAGE_VERSION".to_string(), "v1".to_string())]);
    assert!(v.readme_metadata.iter().any(|(k, v)| k == "Category" && v == "Utilities"));
    assert_eq!(
        v.version.release_note.as_deref(),
        Some("Upgrades to busybox 2 and needs an API key: insert the api_key secret before upgrading.")
    );
    let errors: Vec<_> = v.lint.iter().filter(|f| f.level == "error").collect();
    assert!(errors.is_empty(), "the fixture is a clean recipe: {errors:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_brings_new_tags() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    let dir = tempfile::tempdir().unwrap();
    let (work, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    register(&fed, &remote, "").await.unwrap();
    release(&work, &remote, &[("release/1.0.1+2.0", "A fix.\n")], "1.0.1+2.0");
    let before: RecipeDetail = fed.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert_eq!(before.versions[0].tag, "1.0.0+2.0", "nothing changes before a fetch");
    fed.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    let after: RecipeDetail = fed.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert_eq!(after.versions[0].tag, "1.0.1+2.0");
    assert_eq!(after.versions[0].release_note.as_deref(), Some("A fix."));
    assert!(after.last_fetched_at >= before.last_fetched_at);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'recipe.fetch'").await, 1);

    // A remote that went away: the fetch fails with the reason, the recipe stays readable.
    std::fs::remove_dir_all(&remote).unwrap();
    let gone = fed.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap_err();
    assert_eq!(gone.status, 503, "{}", gone.body);
    assert!(gone.body.contains("cannot fetch"), "{}", gone.body);
    let still: RecipeDetail = fed.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert_eq!(still.versions.len(), 4);
    assert!(still.fetch_error.is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_are_fetched_on_schedule() {
    // Every 1.2 s (0.02 minutes) instead of every 30 minutes.
    let app = TestApp::spawn_with(|c| c.recipe_fetch_minutes = 0.02).await;
    let fed = app.bootstrap_admin().await;
    let dir = tempfile::tempdir().unwrap();
    let (work, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    register(&fed, &remote, "").await.unwrap();
    release(&work, &remote, &[("release/1.0.1+2.0", "A fix.\n")], "1.0.1+2.0");
    let mut newest = String::new();
    for _ in 0..150 {
        let d: RecipeDetail = fed.call("get_recipe", &[("name", "hello")]).await.unwrap();
        newest = d.versions[0].tag.clone();
        if newest == "1.0.1+2.0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(newest, "1.0.1+2.0", "the schedule fetched the new tag without anyone asking");
    app.stop().await;
}

/// Recipe clones are per replica: of two replicas whose schedules find a recipe stale at once,
/// one fetches it from its remote; the other's clone catches up before it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_fetch_runs_on_one_replica_and_the_other_catches_up() {
    use potluck_server::domain::recipes::store::fetch_stale;
    // The schedules run when the test says.
    let first = TestApp::spawn_with(|c| c.recipe_fetch_minutes = 0.0).await;
    let fed = first.bootstrap_admin().await;
    let second = first.replica().await;
    let other = Browser { base: second.base.clone(), client: fed.client.clone(), jar: fed.jar.clone() };
    let dir = tempfile::tempdir().unwrap();
    let (work, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    register(&fed, &remote, "").await.unwrap();
    let cloned: RecipeDetail = other.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert_eq!(cloned.versions[0].tag, "1.0.0+2.0", "the second replica cloned the recipe to read it");

    release(&work, &remote, &[("release/1.0.1+2.0", "A fix.\n")], "1.0.1+2.0");
    first.exec("UPDATE recipes SET last_fetched_at = 0").await;
    let (a, b) = tokio::join!(fetch_stale(&first.state, 60_000), fetch_stale(&second.state, 60_000));
    assert_eq!(a.unwrap() + b.unwrap(), 1, "one replica fetched the recipe from its remote");
    for (replica, browser) in [("first", &fed), ("second", &other)] {
        let d: RecipeDetail = browser.call("get_recipe", &[("name", "hello")]).await.unwrap();
        assert_eq!(d.versions[0].tag, "1.0.1+2.0", "the {replica} replica reads the new release");
        assert_eq!(d.versions[0].release_note.as_deref(), Some("A fix."));
    }
    assert_eq!(first.count("SELECT COUNT(*) FROM recipes WHERE fetch_error IS NULL").await, 1);

    // The first replica fetches a newer release; then the remote goes out of reach. The second
    // reads its clone as it is, and its failed catch-up is not the recipe's fetch error.
    release(&work, &remote, &[("release/1.0.2+2.0", "Another fix.\n")], "1.0.2+2.0");
    fed.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    std::fs::remove_dir_all(&remote).unwrap();
    let stale: RecipeDetail = other.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert_eq!(stale.versions[0].tag, "1.0.1+2.0", "the second replica reads what it has");
    let errors = first.texts("SELECT fetch_error FROM recipes").await;
    assert_eq!(errors, [""], "the recipe's last fetch (the first replica's) went well");
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_repositories_are_refused_and_leave_nothing() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    let dir = tempfile::tempdir().unwrap();

    // Not a recipe: a repository without compose.yml.
    let plain = dir.path().join("plain");
    let repo = git2::Repository::init(&plain).unwrap();
    std::fs::write(plain.join("README.md"), "# not a recipe\n").unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(std::path::Path::new("README.md")).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.org").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[]).unwrap();
    let e = register(&fed, &plain, "").await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("is not a recipe"), "{}", e.body);

    // Unreachable remotes.
    let e = register(&fed, &dir.path().join("nowhere.git"), "").await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    let e = fed
        .call::<RecipeSummary>("register_recipe", &[("repository", "https://127.0.0.1:9/recipes/x.git")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("127.0.0.1:9"), "the error names the remote: {}", e.body);

    // Bad names, empty URLs, unknown credential kinds.
    let e = fed.call::<RecipeSummary>("register_recipe", &[("repository", "")]).await.unwrap_err();
    assert_eq!(e.status, 422);
    let (_, hello) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    let e = fed
        .call::<RecipeSummary>("register_recipe", &[("repository", &hello.display().to_string()), ("name", "Bad Name")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422);
    let e = fed
        .call::<RecipeSummary>(
            "register_recipe",
            &[("repository", &hello.display().to_string()), ("credential_kind", "ftp"), ("credential_secret", "x")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422);

    assert_eq!(app.count("SELECT COUNT(*) FROM recipes").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'recipe.register'").await, 0);
    let leftovers: Vec<_> = std::fs::read_dir(app.state.config.data_dir.join("recipes"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "no half-made clone stays behind: {leftovers:?}");

    // Registered once; the same name again is a conflict.
    register(&fed, &hello, "").await.unwrap();
    let e = register(&fed, &hello, "").await.unwrap_err();
    assert_eq!(e.status, 409, "{}", e.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintainers_are_people_and_collectives() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    for slug in ["collective-a", "collective-b"] {
        fed.call::<serde_json::Value>("create_collective", &[("slug", slug), ("name", slug), ("description", "")])
            .await
            .unwrap();
    }
    let pa = app.add_provider(&fed, &Idp::a(), &["collective-a", "collective-b"]).await;
    for (group, role) in [("collective-a-maintainers", "maintainer"), ("collective-a-members", "viewer")] {
        fed.call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", "collective-a"), ("provider_id", &pa.to_string()), ("value", group), ("role", role)],
        )
        .await
        .unwrap();
    }
    let dave = app.login(pa, "dave", "dave-pw").await; // maintainer in collective-a
    let bob = app.login(pa, "bob", "bob-pw").await; // viewer in collective-a
    let dir = tempfile::tempdir().unwrap();
    let (_, hello) = publish(&fixture_recipe("hello"), dir.path(), "hello");

    let e = register(&bob, &hello, "").await.unwrap_err();
    assert_eq!(e.status, 403, "a viewer cannot register recipes: {}", e.body);
    let e = register(&app.browser(), &hello, "").await.unwrap_err();
    assert_eq!(e.status, 401);
    let e = register(&dave, &hello, "collective-b").await.unwrap_err();
    assert_eq!(e.status, 404, "dave is not in collective-b: {}", e.body);

    // A path on the Potluck machine is for federation admins only (it could be another
    // recipe's private clone); dave would give an https or ssh URL.
    let e = register(&dave, &hello, "collective-a").await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("only a federation admin"), "{}", e.body);
    let r = register(&fed, &hello, "collective-a").await.unwrap();
    assert_eq!(r.maintainers.len(), 2, "the registrar and collective-a: {:?}", r.maintainers);
    let d: RecipeDetail = dave.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert!(
        d.maintainers.iter().any(|m| m.kind == "collective" && m.name.contains("collective-a")),
        "{:?}",
        d.maintainers
    );
    assert!(d.can_maintain);
    let seen_by_bob: RecipeDetail = bob.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert!(!seen_by_bob.can_maintain, "viewers read recipes but do not maintain them");
    let e = bob.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap_err();
    assert_eq!(e.status, 403);

    // Maintainers hand the recipe to collective-b only; dave (no longer a maintainer) cannot act.
    dave.call::<()>("set_recipe_maintainers", &[("name", "hello"), ("collectives", "collective-b")]).await.unwrap();
    let d: RecipeDetail = dave.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert_eq!(d.maintainers.len(), 1);
    assert!(!d.can_maintain);
    let e = dave
        .call::<()>("set_recipe_maintainers", &[("name", "hello"), ("collectives", "collective-a")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 403);
    let e = fed.call::<()>("set_recipe_maintainers", &[("name", "hello")]).await.unwrap_err();
    assert_eq!(e.status, 422, "a recipe keeps at least one maintainer");
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'recipe.set_maintainers'").await, 1);
    app.stop().await;
}
