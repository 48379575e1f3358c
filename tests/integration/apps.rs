//! Servers, apps, secrets and deploy jobs against the real swarm the harness started: the
//! fixture recipe `hello` (busybox httpd, built locally) really converges; `faulty` cannot.
//! Each test uses its own domains, so stacks never collide, and removes what it made.

use bollard::Docker;
use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::swarm::{self, EngineProxy};
use potluck_tests::{Browser, Idp, TestApp};
use std::collections::HashMap;
use std::time::Duration;

const SLUG: &str = "collective-a";

struct World {
    app: TestApp,
    admin: Browser,
    _recipes: tempfile::TempDir,
    docker: Docker,
}

/// A Potluck with collective-a, its local swarm manager as server `local`, and the fixture
/// recipes registered.
async fn world() -> World {
    world_with(&[]).await
}

/// A world whose configuration also grants these local engine sockets to every collective.
async fn world_with(extra_engines: &[&str]) -> World {
    let engines: Vec<String> = extra_engines.iter().map(|s| s.to_string()).collect();
    let app = TestApp::spawn_with(|c| {
        for e in engines {
            c.local_engines.insert(e, vec!["*".into()]);
        }
    })
    .await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>(
            "create_collective",
            &[("slug", SLUG), ("name", "Collective A"), ("description", "")],
        )
        .await
        .unwrap();
    let server: ServerView = admin
        .call("add_server", &[("slug", SLUG), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)])
        .await
        .unwrap();
    assert!(server.is_manager, "the harness's engine is a swarm manager: {server:?}");
    assert!(server.nodes >= 1);
    assert!(server.engine_version.as_deref().is_some_and(|v| !v.is_empty()));
    let recipes = tempfile::tempdir().unwrap();
    for name in ["hello", "faulty"] {
        let (_, remote) = publish(&fixture_recipe(name), recipes.path(), name);
        admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    }
    World { app, admin, _recipes: recipes, docker: swarm::connect().await }
}

fn unique_domain(prefix: &str) -> String {
    format!("{prefix}-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

async fn create(b: &Browser, recipe: &str, domain: &str, version: &str) -> AppSummary {
    b.call(
        "create_app",
        &[("slug", SLUG), ("server", "local"), ("recipe", recipe), ("domain", domain), ("version", version)],
    )
    .await
    .unwrap()
}

async fn start(b: &Browser, domain: &str, kind: &str, target: &str) -> Result<JobSummary, potluck_tests::Failure> {
    b.call("start_job", &[("slug", SLUG), ("domain", domain), ("kind", kind), ("target", target)]).await
}

async fn preview(b: &Browser, domain: &str, kind: &str, target: &str) -> DeployPreview {
    b.call("preview_job", &[("slug", SLUG), ("domain", domain), ("kind", kind), ("target", target)]).await.unwrap()
}

async fn app_detail(b: &Browser, domain: &str) -> AppDetail {
    b.call("get_app", &[("slug", SLUG), ("domain", domain)]).await.unwrap()
}

/// Runs a job to its end and returns its events (and checks the SSE end matches the record).
async fn run(b: &Browser, domain: &str, kind: &str, target: &str) -> (Vec<JobEventView>, String, String) {
    let job = start(b, domain, kind, target).await.unwrap_or_else(|e| panic!("{kind} {domain}: {e:?}"));
    let (events, state, result) = b.watch_job(job.id).await;
    let stored: JobDetail = b.call("get_job", &[("id", &job.id.to_string())]).await.unwrap();
    assert_eq!(stored.job.state.as_str(), state, "the live end and the record agree");
    assert_eq!(stored.events.len(), events.len(), "the live stream and the record agree");
    (events, state, result)
}

fn texts(events: &[JobEventView]) -> String {
    events.iter().map(|e| format!("[{}] {}", e.kind, e.text)).collect::<Vec<_>>().join("\n")
}

async fn service_labels(docker: &Docker, name: &str) -> HashMap<String, String> {
    docker.inspect_service(name, None).await.unwrap().spec.unwrap().labels.unwrap_or_default()
}

async fn secret_names(docker: &Docker, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = docker
        .list_secrets(None::<bollard::query_parameters::ListSecretsOptions>)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.spec?.name)
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Removes everything a test left of an app: stack, secrets, volumes.
async fn cleanup(docker: &Docker, stack: &str) {
    swarm::remove_stack(docker, stack).await;
    for name in secret_names(docker, &format!("{stack}_")).await {
        let _ = docker.delete_secret(&name).await;
    }
    for _ in 0..40 {
        let volumes = docker.list_volumes(None::<bollard::query_parameters::ListVolumesOptions>).await.unwrap();
        let mine: Vec<String> = volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .filter(|n| n.starts_with(&format!("{stack}_")))
            .collect();
        if mine.is_empty() {
            return;
        }
        for v in mine {
            let _ = docker.remove_volume(&v, None::<bollard::query_parameters::RemoveVolumeOptions>).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_lives_through_deploy_upgrade_rollback_rotation_and_undeploy() {
    let w = world().await;
    let b = &w.admin;
    let domain = unique_domain("hello");
    let app = create(b, "hello", &domain, "0.1.0+1.0").await;
    let stack = app.stack_name.clone();
    assert_eq!(stack, domain.replace('.', "_"), "STACK_NAME as abra derives it");
    assert_eq!(app.status, AppStatus::New);

    // The env starts as the version's sample, with DOMAIN and the pinned version.
    let d = app_detail(b, &domain).await;
    assert!(d.env.contains(&format!("DOMAIN={domain}")), "{}", d.env);
    assert!(d.env.contains("TYPE=hello:0.1.0+1.0"), "{}", d.env);
    let greeting = d.entries.iter().find(|e| e.key == "GREETING").unwrap();
    assert_eq!(greeting.doc, ["What the page says"]);
    assert_eq!(d.overlays.len(), 1);
    assert!(!d.overlays[0].enabled && d.overlays[0].file == "compose.worker.yml");
    assert_eq!(d.secrets.len(), 1);
    assert_eq!(d.secrets[0].exists, Some(false));

    // Before secrets exist, the checks say so and the deploy would stop.
    let p = preview(b, &domain, "deploy", "").await;
    let missing = format!("{stack}_db_password_v1");
    assert!(p.checks.iter().any(|c| c.level == "error" && c.message.contains(&missing)), "{:?}", p.checks);

    // Generate: each value once, to the caller; never stored or audited.
    let generated: Vec<GeneratedSecret> =
        b.call("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    assert_eq!(generated.len(), 1);
    assert_eq!(generated[0].docker_name, missing);
    let value = generated[0].value.0.clone();
    assert_eq!(value.len(), 32, "length=32 from the sample");
    let again: Vec<GeneratedSecret> = b.call("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    assert!(again.is_empty(), "existing secrets are not generated twice");
    let one = b
        .call::<Vec<GeneratedSecret>>(
            "generate_secrets",
            &[("slug", SLUG), ("domain", &domain), ("only", "db_password")],
        )
        .await
        .unwrap_err();
    assert_eq!(one.status, 409, "{}", one.body);
    for (table, column) in [("apps", "env"), ("audit_events", "details"), ("job_events", "data")] {
        let dump = w.app.texts(&format!("SELECT {column} FROM {table}")).await.join("\n");
        assert!(!dump.contains(&value), "the generated value leaked into {table}");
    }
    let labels = w.docker.inspect_secret(&missing).await.unwrap().spec.unwrap().labels.unwrap_or_default();
    assert_eq!(labels.get("potluck.collective").map(String::as_str), Some(SLUG));

    // Dry run: everything is to be created.
    let p = preview(b, &domain, "deploy", "").await;
    assert_eq!(p.to_version.as_deref(), Some("0.1.0+1.0"));
    assert!(p.checks.iter().all(|c| c.level != "error"), "{:?}", p.checks);
    assert!(
        p.changes.iter().any(|c| c == &format!("create service {stack}_app (potluck-test/busybox:1)")),
        "{:?}",
        p.changes
    );

    // Deploy; a second request meanwhile is told who is deploying.
    let job = start(b, &domain, "deploy", "").await.unwrap();
    let busy = start(b, &domain, "redeploy", "").await.unwrap_err();
    assert_eq!(busy.status, 409);
    assert!(busy.body.contains("already being changed") && busy.body.contains("Federation admin"), "{}", busy.body);
    let (events, state, result) = b.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "{result}\n{}", texts(&events));
    assert!(events.iter().any(|e| e.kind == "task" && e.text.contains("running")), "{}", texts(&events));
    assert!(result.contains("converged at 0.1.0+1.0"), "{result}");
    let labels = service_labels(&w.docker, &format!("{stack}_app")).await;
    assert_eq!(labels.get(&format!("coop-cloud.{stack}.version")).map(String::as_str), Some("0.1.0+1.0"));
    assert_eq!(labels.get("potluck.collective").map(String::as_str), Some(SLUG));
    assert_eq!(labels.get("potluck.app"), Some(&app.id.to_string()));
    // The golang-templated config is rendered by the swarm inside the container.
    let page = b
        .post_form(&format!("/c/{SLUG}/apps/{domain}/run"), &[("service", "app"), ("command", "cat /www/index.html")])
        .await;
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("hello from {domain}")), "the template ran: {page}");
    let d = app_detail(b, &domain).await;
    assert_eq!(d.app.status, AppStatus::Deployed);
    assert_eq!(d.app.version.as_deref(), Some("0.1.0+1.0"));
    let svc = d.services.iter().find(|s| s.name == format!("{stack}_app")).unwrap();
    assert_eq!((svc.running, svc.desired), (1, 1));
    assert_eq!(svc.version_label, "0.1.0+1.0");
    assert_eq!(d.secrets[0].exists, Some(true));

    // A redeploy of what runs changes nothing, and the preview says so: neither Potluck's own
    // labels nor what the engine fills in (endpoint mode, isolation, runtime) count as changes.
    let p = preview(b, &domain, "redeploy", "").await;
    assert!(!p.changes.is_empty() && p.changes.iter().all(|c| c.ends_with(" unchanged")), "{:?}", p.changes);

    // Deploying again is refused: it is deployed.
    let p = preview(b, &domain, "deploy", "").await;
    assert!(p.checks.iter().any(|c| c.level == "error" && c.message.contains("already deployed")), "{:?}", p.checks);

    // Upgrade preview: notes of every version passed, newest version by default.
    let p = preview(b, &domain, "upgrade", "").await;
    assert_eq!(p.to_version.as_deref(), Some("1.0.0+2.0"));
    let noted: Vec<&str> = p.release_notes.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(noted, ["0.2.0+1.1", "1.0.0+2.0"]);
    assert!(
        p.checks.iter().any(|c| c.level == "error" && c.message.contains("api_key")),
        "the new secret is missing: {:?}",
        p.checks
    );
    // …and to 0.2.0: the sample's new WORKERS key is missing from the env (a warning).
    let p = preview(b, &domain, "upgrade", "0.2.0+1.1").await;
    assert!(p.checks.iter().any(|c| c.level == "warning" && c.message.contains("WORKERS")), "{:?}", p.checks);
    assert!(p.changes.iter().any(|c| c.contains(&format!("update service {stack}_app"))), "{:?}", p.changes);
    let (events, state, result) = run(b, &domain, "upgrade", "0.2.0+1.1").await;
    assert_eq!(state, "succeeded", "{result}\n{}", texts(&events));
    let labels = service_labels(&w.docker, &format!("{stack}_app")).await;
    assert_eq!(labels.get(&format!("coop-cloud.{stack}.version")).map(String::as_str), Some("0.2.0+1.1"));
    let env = w
        .docker
        .inspect_service(&format!("{stack}_app"), None)
        .await
        .unwrap()
        .spec
        .unwrap()
        .task_template
        .unwrap()
        .container_spec
        .unwrap()
        .env
        .unwrap();
    assert!(env.contains(&"WORKERS=2".to_string()), "{env:?}");
    assert!(env.contains(&"TYPE=hello:0.2.0+1.1".to_string()), "the service sees the version deployed: {env:?}");

    // Rollback: to the version before by default, with the volume warning.
    let p = preview(b, &domain, "rollback", "").await;
    assert_eq!(p.to_version.as_deref(), Some("0.1.0+1.0"));
    assert!(p.notes.iter().any(|n| n.contains("volumes") && n.contains("not rolled back")), "{:?}", p.notes);
    let wrong = start(b, &domain, "rollback", "1.0.0+2.0").await.unwrap_err();
    assert_eq!(wrong.status, 422, "a rollback goes to an older version: {}", wrong.body);
    let (events, state, _) = run(b, &domain, "rollback", "").await;
    assert_eq!(state, "succeeded", "{}", texts(&events));
    let labels = service_labels(&w.docker, &format!("{stack}_app")).await;
    assert_eq!(labels.get(&format!("coop-cloud.{stack}.version")).map(String::as_str), Some("0.1.0+1.0"));

    // At the oldest version, the preview refuses a rollback as the job does, in the same words;
    // an action that does not exist is named with the ones that do.
    let preview_of = |kind: &'static str| {
        let domain = domain.clone();
        async move {
            b.call::<DeployPreview>(
                "preview_job",
                &[("slug", SLUG), ("domain", &domain), ("kind", kind), ("target", "")],
            )
            .await
        }
    };
    let refused_preview = preview_of("rollback").await.unwrap_err();
    let refused_job = start(b, &domain, "rollback", "").await.unwrap_err();
    assert_eq!((refused_preview.status, refused_job.status), (409, 409), "{}", refused_preview.body);
    assert_eq!(refused_preview.error, refused_job.error, "the preview says what the job would say");
    assert!(refused_preview.body.contains("is at the oldest version (0.1.0+1.0)"), "{}", refused_preview.body);
    let unknown = preview_of("explode").await.unwrap_err();
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("deploy, upgrade, rollback, redeploy, chaos, undeploy"), "{}", unknown.body);

    // Rotate: a new version in the env, a new secret, a redeploy that uses it.
    let rotated: RotatedSecret =
        b.call("rotate_secret", &[("slug", SLUG), ("domain", &domain), ("name", "db_password")]).await.unwrap();
    assert_eq!(rotated.secret.docker_name, format!("{stack}_db_password_v2"));
    assert_ne!(rotated.secret.value.0, value);
    let job = rotated.job.expect("a deployed app is redeployed");
    let (events, state, _) = b.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "{}", texts(&events));
    let d = app_detail(b, &domain).await;
    assert!(d.env.contains("SECRET_DB_PASSWORD_VERSION=v2"), "{}", d.env);
    let refs = w
        .docker
        .inspect_service(&format!("{stack}_app"), None)
        .await
        .unwrap()
        .spec
        .unwrap()
        .task_template
        .unwrap()
        .container_spec
        .unwrap()
        .secrets
        .unwrap();
    assert_eq!(refs[0].secret_name.as_deref(), Some(format!("{stack}_db_password_v2").as_str()));

    // Undeploy keeps volumes and secrets unless asked.
    let (events, state, _) = run(b, &domain, "undeploy", "").await;
    assert_eq!(state, "succeeded", "{}", texts(&events));
    assert!(w.docker.inspect_service(&format!("{stack}_app"), None).await.is_err(), "the service is gone");
    assert_eq!(
        secret_names(&w.docker, &format!("{stack}_")).await,
        [format!("{stack}_db_password_v1"), format!("{stack}_db_password_v2")]
    );
    assert!(w.docker.inspect_volume(&format!("{stack}_data")).await.is_ok(), "the volume stays");
    let d = app_detail(b, &domain).await;
    assert_eq!(d.app.status, AppStatus::Undeployed);

    // Every step is in the audit log, with outcomes.
    let actions =
        w.app.texts("SELECT action || ':' || outcome FROM audit_events WHERE action LIKE 'app.%' ORDER BY seq").await;
    for expected in [
        "app.create:success",
        "app.secret.generate:success",
        "app.deploy.request:success",
        "app.deploy:success",
        "app.upgrade:success",
        "app.rollback:success",
        "app.secret.rotate:success",
        "app.redeploy:success",
        "app.undeploy:success",
    ] {
        assert!(actions.contains(&expected.to_string()), "{expected} missing from {actions:?}");
    }
    // Undeployed apps can be deleted; deployed ones cannot.
    b.call::<()>("delete_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    cleanup(&w.docker, &stack).await;
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_tasks_are_reported_with_the_swarms_reason() {
    let w = world().await;
    let b = &w.admin;
    let domain = unique_domain("faulty");
    let app = create(b, "faulty", &domain, "").await;
    let (events, state, result) = run(b, &domain, "deploy", "").await;
    assert_eq!(state, "failed");
    let all = texts(&events);
    assert!(all.contains("No such image") || all.contains("does-not-exist"), "the task's error is shown: {all}");
    assert!(result.contains("did not converge"), "{result}");
    assert_eq!(app_detail(b, &domain).await.app.status, AppStatus::Failed);
    let audit = w.app.texts("SELECT outcome FROM audit_events WHERE action = 'app.deploy'").await;
    assert_eq!(audit, ["failure"]);
    cleanup(&w.docker, &app.stack_name).await;
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_whose_replica_dies_is_finished_once_by_another() {
    let World { app: first, admin: b, _recipes, docker } = world().await;
    // A second Potluck on the same database, its worker claiming jobs all the while.
    let second = first.replica().await;
    let domain = unique_domain("replica");
    let app = create(&b, "hello", &domain, "0.1.0+1.0").await;
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let job = start(&b, &domain, "deploy", "").await.unwrap();
    let events_sql = format!("SELECT data FROM job_events WHERE job_id = {} ORDER BY seq", job.id);
    let events = |app: &TestApp| {
        let app = app.state.clone();
        let sql = events_sql.clone();
        async move {
            use sqlx::Row;
            let rows = sqlx::query(&sql).fetch_all(app.db.pool()).await.unwrap();
            rows.iter().map(|r| r.get::<String, _>(0)).collect::<Vec<String>>()
        }
    };
    // Whichever replica claimed it, a browser on the other one watches it live.
    let held = format!("SELECT COUNT(*) FROM jobs WHERE id = {} AND lease_holder IS NOT NULL", job.id);
    for _ in 0..600 {
        if first.count(&held).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let holder = first.texts(&format!("SELECT lease_holder FROM jobs WHERE id = {}", job.id)).await;
    let first_holds = holder == [first.state.replica.clone()];
    let watcher = Browser {
        base: if first_holds { second.base.clone() } else { first.base.clone() },
        client: b.client.clone(),
        jar: b.jar.clone(),
    };
    let watched = tokio::spawn(async move { watcher.watch_job(job.id).await });
    // Wait until it is converging, then kill the replica running it.
    let mut converging = false;
    for _ in 0..600 {
        if events(&first).await.iter().any(|e| e.contains("waiting up to")) {
            converging = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(converging, "the deploy reached convergence: {:?}", events(&first).await);
    let (dying, survivor) = if first_holds {
        (first, second)
    } else {
        assert_eq!(holder, vec![second.state.replica.clone()], "one of the two holds it");
        (second, first)
    };
    dying.stop().await;
    // The survivor takes it over once the lease has run out, and finishes it.
    let state = format!("SELECT state FROM jobs WHERE id = {}", job.id);
    for _ in 0..600 {
        if survivor.texts(&state).await == ["succeeded"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = events(&survivor).await.join("\n");
    assert_eq!(survivor.texts(&state).await, ["succeeded"], "{log}");
    assert!(log.contains("The Potluck running this job stopped"), "{log}");
    let holder = survivor.texts(&format!("SELECT lease_holder FROM jobs WHERE id = {}", job.id)).await;
    assert_eq!(holder, vec![survivor.state.replica.clone()], "the survivor ended it");
    // Once each: two attempts (none while the first replica still renewed its lease), one
    // service, one audit event of the deploy's outcome, one end in the job's log.
    assert_eq!(survivor.count(&format!("SELECT attempts FROM jobs WHERE id = {}", job.id)).await, 2);
    assert_eq!(survivor.count("SELECT COUNT(*) FROM audit_events WHERE action = 'app.deploy'").await, 1);
    assert_eq!(log.matches("\"kind\":\"done\"").count(), 1, "{log}");
    // The browser on the survivor saw all of it live, across the hand-over: every event in
    // order, none missing, none twice, and the end.
    let (seen, end, _) = watched.await.unwrap();
    assert_eq!(end, "succeeded");
    let seqs: Vec<i64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "in order, without gaps or repeats");
    assert_eq!(seqs.len(), events(&survivor).await.len(), "every stored event was streamed");
    assert_eq!(swarm::services_of(&docker, &app.stack_name).await, 1, "nothing duplicated");
    cleanup(&docker, &app.stack_name).await;
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_interrupted_by_a_potluck_restart_resumes_without_duplicates() {
    let mut w = world().await;
    let b = w.admin.clone();
    let domain = unique_domain("restart");
    let app = create(&b, "hello", &domain, "0.1.0+1.0").await;
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let job = start(&b, &domain, "deploy", "").await.unwrap();
    // Wait until it is converging, then stop Potluck under it.
    let mut seen = false;
    for _ in 0..600 {
        let d: JobDetail = b.call("get_job", &[("id", &job.id.to_string())]).await.unwrap();
        if d.events.iter().any(|e| e.text.contains("waiting up to")) {
            assert!(d.job.finished_at.is_none(), "the job must still run when Potluck stops");
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "the deploy reached convergence");
    w.app.restart().await;
    let (events, state, _) = b.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "{}", texts(&events));
    assert!(
        events
            .iter()
            .any(|e| e.text.contains("The Potluck running this job stopped") && e.text.contains("it runs again")),
        "{}",
        texts(&events)
    );
    assert_eq!(w.app.count(&format!("SELECT attempts FROM jobs WHERE id = {}", job.id)).await, 2);
    assert_eq!(swarm::services_of(&w.docker, &app.stack_name).await, 1, "nothing duplicated");
    cleanup(&w.docker, &app.stack_name).await;
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_goes_away_ends_the_job_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let proxy_path = dir.path().join("docker-proxy.sock").display().to_string();
    let w = world_with(&["/nonexistent/docker.sock", &proxy_path]).await;
    let b = &w.admin;

    // A server that cannot be reached is not added.
    let e = b
        .call::<ServerView>(
            "add_server",
            &[("slug", SLUG), ("name", "gone"), ("kind", "unix"), ("address", "/nonexistent/docker.sock")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("server gone is unreachable") && e.body.contains("/nonexistent/docker.sock"), "{}", e.body);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM servers WHERE name = 'gone'").await, 0);

    // A server behind a proxy that the test cuts mid-deploy.
    let proxy = EngineProxy::start(dir.path());
    b.call::<ServerView>(
        "add_server",
        &[("slug", SLUG), ("name", "flaky"), ("kind", "unix"), ("address", &proxy.path.display().to_string())],
    )
    .await
    .unwrap();
    let domain = unique_domain("flaky");
    let app: AppSummary = b
        .call(
            "create_app",
            &[("slug", SLUG), ("server", "flaky"), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let job = start(b, &domain, "deploy", "").await.unwrap();
    for _ in 0..600 {
        let d: JobDetail = b.call("get_job", &[("id", &job.id.to_string())]).await.unwrap();
        if d.events.iter().any(|e| e.text.contains("waiting up to")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut();
    let (events, state, result) = b.watch_job(job.id).await;
    assert_eq!(state, "failed", "{}", texts(&events));
    assert!(
        result.contains("lost the Docker Engine") || result.contains("unreachable"),
        "the reason is given: {result}"
    );
    // With the engine unreachable, the next action fails before it starts, with the reason.
    let p = preview(b, &domain, "redeploy", "").await;
    assert!(p.checks.iter().any(|c| c.level == "error" && c.message.contains("unreachable")), "{:?}", p.checks);
    let (_, state, result) = run(b, &domain, "redeploy", "").await;
    assert_eq!(state, "failed");
    assert!(result.contains("unreachable"), "{result}");
    cleanup(&w.docker, &app.stack_name).await;
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_commands_stream_and_only_the_right_people_reach_them() {
    let w = world().await;
    let b = &w.admin;
    let pa = w.app.add_provider(b, &Idp::a(), &[SLUG]).await;
    b.call::<CollectiveSummary>("create_collective", &[("slug", "collective-b"), ("name", "B"), ("description", "")])
        .await
        .unwrap();
    for (group, role) in [("collective-a-operators", "operator"), ("collective-a-members", "viewer")] {
        b.call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", SLUG), ("provider_id", &pa.to_string()), ("value", group), ("role", role)],
        )
        .await
        .unwrap();
    }
    let carol = w.app.login(pa, "carol", "carol-pw").await; // operator
    let bob = w.app.login(pa, "bob", "bob-pw").await; // viewer
    let erin = w.app.login(pa, "erin", "erin-pw").await;
    let erin_id = erin.call::<Option<Me>>("me", &[]).await.unwrap().unwrap().user_id;
    b.call::<()>("set_member_role", &[("slug", "collective-b"), ("user_id", &erin_id.to_string()), ("role", "admin")])
        .await
        .unwrap();

    let domain = unique_domain("logs");
    let app = create(b, "hello", &domain, "0.1.0+1.0").await;
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let (events, state, _) = run(&carol, &domain, "deploy", "").await;
    assert_eq!(state, "succeeded", "{}", texts(&events));

    // The viewer sees the app but cannot act; another collective's admin does not see it.
    let seen = app_detail(&bob, &domain).await;
    assert!(!seen.can_operate && !seen.can_manage_secrets);
    assert_eq!(start(&bob, &domain, "redeploy", "").await.unwrap_err().status, 403);
    assert_eq!(
        bob.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)])
            .await
            .unwrap_err()
            .status,
        403
    );
    assert_eq!(
        erin.call::<AppDetail>("get_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap_err().status,
        404
    );
    assert_eq!(erin.call::<Vec<AppSummary>>("list_apps", &[("slug", SLUG)]).await.unwrap_err().status, 404);
    assert_eq!(erin.call::<Vec<ServerView>>("list_servers", &[("slug", SLUG)]).await.unwrap_err().status, 404);
    let logs_path = format!("/c/{SLUG}/apps/{domain}/logs?service=app");
    assert_eq!(bob.get(&logs_path).await.status(), 403);
    assert_eq!(erin.get(&logs_path).await.status(), 404);
    assert_eq!(w.app.browser().get(&logs_path).await.status(), 401);

    // Logs: the healthcheck's requests show up in httpd's log.
    let mut text = String::new();
    for _ in 0..40 {
        let r = carol.get(&logs_path).await;
        assert_eq!(r.status(), 200);
        text = r.text().await.unwrap();
        if text.contains("GET /") || text.contains("response:200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(text.contains("GET /") || text.contains("response:200"), "httpd's access log: {text}");
    // Following keeps the answer open and streams.
    {
        use futures_util::StreamExt;
        let r = carol.get(&format!("{logs_path}&follow=1&tail=1")).await;
        let mut body = r.bytes_stream();
        let first =
            tokio::time::timeout(Duration::from_secs(20), body.next()).await.expect("a line arrives while following");
        assert!(first.is_some());
    }
    let unknown = carol.get(&format!("/c/{SLUG}/apps/{domain}/logs?service=nope")).await;
    assert_eq!(unknown.status(), 404);

    // Run a command: output streamed, exit code last; audited (the command, not the output).
    let run_path = format!("/c/{SLUG}/apps/{domain}/run");
    let r = bob.post_form(&run_path, &[("service", "app"), ("command", "echo hi")]).await;
    assert_eq!(r.status(), 403, "viewers cannot run commands");
    let r = carol.post_form(&run_path, &[("service", "app"), ("command", "sh -c 'echo output-of-run; exit 3'")]).await;
    assert_eq!(r.status(), 200);
    let out = r.text().await.unwrap();
    assert!(out.contains("output-of-run"), "{out}");
    assert!(out.trim_end().ends_with("[exit code 3]"), "{out}");
    let audited = w.app.texts("SELECT details FROM audit_events WHERE action = 'app.run'").await;
    assert_eq!(audited.len(), 1);
    assert!(audited[0].contains("output-of-run") && audited[0].contains("sh"), "{audited:?}");
    let r = carol.post_form(&run_path, &[("service", "app"), ("command", "sh -c 'unterminated")]).await;
    assert_eq!(r.status(), 422);

    // The env file downloads in abra's format for whoever can view the app.
    let r = bob.get(&format!("/c/{SLUG}/apps/{domain}/env")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains(&format!("{domain}.env")));
    let exported = r.text().await.unwrap();
    assert_eq!(exported, app_detail(b, &domain).await.env);
    cleanup(&w.docker, &app.stack_name).await;
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_overlays_and_abra_files_round_trip() {
    let w = world().await;
    let b = &w.admin;
    let domain = unique_domain("env");
    create(b, "hello", &domain, "0.2.0+1.1").await;

    // The overlay checkbox edits COMPOSE_FILE in place (the sample's commented line).
    b.call::<()>("set_app_overlays", &[("slug", SLUG), ("domain", &domain), ("files[0]", "compose.worker.yml")])
        .await
        .unwrap();
    let d = app_detail(b, &domain).await;
    assert!(d.env.contains("\nCOMPOSE_FILE=\"compose.yml:compose.worker.yml\"\n"), "{}", d.env);
    assert!(d.overlays[0].enabled);
    let p = preview(b, &domain, "deploy", "").await;
    assert!(
        p.changes.iter().any(|c| c.contains(&format!("create service {}_worker", domain.replace('.', "_")))),
        "{:?}",
        p.changes
    );
    b.call::<()>("set_app_overlays", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let d = app_detail(b, &domain).await;
    assert!(!d.overlays[0].enabled, "{}", d.env);
    assert!(d.env.contains("#COMPOSE_FILE=\"compose.yml:compose.worker.yml\""), "{}", d.env);
    let e = b
        .call::<()>("set_app_overlays", &[("slug", SLUG), ("domain", &domain), ("files[0]", "compose.nope.yml")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422);

    // Job options are checked before anything is queued.
    let e = b
        .call::<JobSummary>(
            "start_job",
            &[("slug", SLUG), ("domain", &domain), ("kind", "deploy"), ("options[resolve_image]", "sometimes")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    let e =
        b.call::<JobSummary>("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "dance")]).await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM jobs").await, 0);

    // Editing the env: it must parse, DOMAIN stays; only changed keys are audited.
    let mut env = d.env.clone();
    env = env.replace("GREETING=hello", "GREETING=\"hi there\" # friendlier");
    b.call::<()>("set_app_env", &[("slug", SLUG), ("domain", &domain), ("env", &env)]).await.unwrap();
    let audit = w.app.texts("SELECT details FROM audit_events WHERE action = 'app.env.update'").await;
    assert!(audit.last().unwrap().contains("GREETING"), "{audit:?}");
    assert!(audit.iter().all(|a| !a.contains("hi there")), "values are not audited: {audit:?}");
    let e = b
        .call::<()>("set_app_env", &[("slug", SLUG), ("domain", &domain), ("env", "GREETING=\"unterminated\n")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    let e = b
        .call::<()>(
            "set_app_env",
            &[("slug", SLUG), ("domain", &domain), ("env", &env.replace(&domain, "other.example.org"))],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422);
    assert_eq!(app_detail(b, &domain).await.env, env, "a refused edit loses nothing");

    // Export, import elsewhere, export again: byte for byte.
    let exported: String = b.call("export_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let other = unique_domain("imported");
    let abra_file = exported.replace(&domain, &other);
    let imported: Vec<AppSummary> = b
        .call(
            "import_app",
            &[("slug", SLUG), ("server", "local"), ("file_name", &format!("{other}.env")), ("content", &abra_file)],
        )
        .await
        .unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].domain, other);
    assert_eq!(imported[0].recipe, "hello");
    assert_eq!(imported[0].version.as_deref(), Some("0.2.0+1.1"), "the version after TYPE=hello:");
    let back: String = b.call("export_app", &[("slug", SLUG), ("domain", &other)]).await.unwrap();
    assert_eq!(back, abra_file);
    let e = b
        .call::<Vec<AppSummary>>(
            "import_app",
            &[
                ("slug", SLUG),
                ("server", "local"),
                ("file_name", "x.env"),
                ("content", "TYPE=unknown\nDOMAIN=x.example.org\n"),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422);
    assert!(e.body.contains("not registered"), "{}", e.body);
    let e = b
        .call::<Vec<AppSummary>>(
            "import_app",
            &[("slug", SLUG), ("server", "local"), ("file_name", &format!("{other}.env")), ("content", &abra_file)],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 409, "the same app twice: {}", e.body);
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaos_deploy_runs_a_commit_and_keeps_the_release_label() {
    let w = world().await;
    let b = &w.admin;
    let domain = unique_domain("chaos");
    let app = create(b, "hello", &domain, "0.1.0+1.0").await;
    let stack = app.stack_name.clone();
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let (_, state, result) = run(b, &domain, "deploy", "").await;
    assert_eq!(state, "succeeded", "{result}");

    // The commit the 0.1.0+1.0 release points at, deployed as a commit (abra app deploy -C).
    let remote = git2::Repository::open_bare(w._recipes.path().join("hello.git")).unwrap();
    let commit = remote.revparse_single("refs/tags/0.1.0+1.0").unwrap().peel_to_commit().unwrap().id().to_string();
    let (events, state, result) = run(b, &domain, "chaos", &commit).await;
    assert_eq!(state, "succeeded", "{result}\n{}", texts(&events));
    assert!(result.contains(&format!("chaos version {}", &commit[..8])), "{result}");
    let labels = service_labels(&w.docker, &format!("{stack}_app")).await;
    assert_eq!(labels.get(&format!("coop-cloud.{stack}.chaos")).map(String::as_str), Some("true"));
    assert_eq!(labels.get(&format!("coop-cloud.{stack}.chaos-version")), Some(&commit[..8].to_string()));
    assert_eq!(
        labels.get(&format!("coop-cloud.{stack}.version")).map(String::as_str),
        Some("0.1.0+1.0"),
        "as abra, a chaos deploy keeps the last release's version label"
    );
    let d = app_detail(b, &domain).await;
    assert!(d.app.chaos, "the app shows it runs a chaos deploy");
    assert_eq!(d.app.version.as_deref(), Some("0.1.0+1.0"));

    // Something that is not a commit of the recipe: the job fails with the reason, nothing changes.
    let (_, state, result) = run(b, &domain, "chaos", "no-such-branch").await;
    assert_eq!(state, "failed");
    assert!(result.contains("no commit \"no-such-branch\""), "{result}");
    let after = service_labels(&w.docker, &format!("{stack}_app")).await;
    assert_eq!(after, labels);
    cleanup(&w.docker, &stack).await;
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_outcome_the_apps_state_and_the_audit_event_commit_together() {
    let w = world().await;
    let b = &w.admin;
    let domain = unique_domain("atomic");
    let app = create(b, "hello", &domain, "0.1.0+1.0").await;
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    // Secret creation records its intent before it touches the engine, and its outcome after.
    let actions = w.app.texts("SELECT action FROM audit_events ORDER BY seq").await;
    let intent = actions.iter().position(|a| a == "app.secret.generate.intent").expect("intent recorded");
    let outcome = actions.iter().position(|a| a == "app.secret.generate").expect("outcome recorded");
    assert!(intent < outcome, "{actions:?}");
    // The database refuses the deploy's audit event (what a failing write at the end looks like).
    match potluck_tests::backend() {
        potluck_tests::Backend::Sqlite => {
            w.app
                .exec(
                    "CREATE TRIGGER refuse_deploy_event BEFORE INSERT ON audit_events WHEN NEW.action = 'app.deploy' \
                     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                )
                .await
        }
        potluck_tests::Backend::Postgres => {
            w.app
                .exec(
                    "CREATE FUNCTION refuse_deploy_event() RETURNS trigger AS $$ BEGIN \
                     IF NEW.action = 'app.deploy' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                )
                .await;
            w.app
                .exec(
                    "CREATE TRIGGER refuse_deploy_event BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_deploy_event()",
                )
                .await;
        }
    }
    let (_, state, _) = run(b, &domain, "deploy", "").await;
    assert_eq!(state, "failed", "the job cannot end as a success without its audit event");
    // Neither the app's new state nor a half-written outcome is left: the app is as it was.
    let status = w.app.texts(&format!("SELECT status FROM apps WHERE id = {}", app.id)).await.remove(0);
    assert_eq!(status, "new", "the app's state rolled back with the event");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'app.deploy'").await, 0);
    cleanup(&w.docker, &app.stack_name).await;
    w.app.stop().await;
}

/// The pages that show the swarm follow it live, through any replica: streams opened on the
/// replica that does not watch the server send the app (services, tasks, status, health), the
/// apps list and the servers at once, and again when the swarm changes behind Potluck's back (a
/// container killed: a failed task, a restart in the last hour, the badge) and when a job changes
/// the app; a stream of an app removed from Potluck says it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_streams_follow_the_swarm_through_the_replica_that_does_not_watch_it() {
    let World { app: first, admin: b, _recipes, docker } = world().await;
    let second = first.replica().await;
    let holder = first.texts("SELECT monitor_holder FROM servers WHERE name = 'local'").await;
    assert_eq!(holder, std::slice::from_ref(&first.state.replica), "the first replica watches the server");
    let other = Browser { base: second.base.clone(), client: b.client.clone(), jar: b.jar.clone() };

    let domain = unique_domain("live");
    let app = create(&b, "hello", &domain, "0.1.0+1.0").await;
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let mut page = other.live(&format!("/c/{SLUG}/apps/{domain}/live")).await;
    let mut list = other.live(&format!("/c/{SLUG}/live/apps")).await;
    let mut servers = other.live(&format!("/c/{SLUG}/live/servers")).await;
    let first_state: AppLiveView = page.until("app", 10, |_| true).await;
    assert_eq!(first_state.app.status, AppStatus::New);
    assert!(first_state.services.is_empty(), "{first_state:?}");

    // A deploy: the app page sees it deployed with its service running, the list its health.
    let (_, state, result) = run(&b, &domain, "deploy", "").await;
    assert_eq!(state, "succeeded", "{result}");
    let live: AppLiveView = page
        .until("app", 30, |v: &AppLiveView| {
            v.app.status == AppStatus::Deployed && v.services.iter().any(|s| s.running == 1 && s.desired == 1)
        })
        .await;
    assert_eq!(live.services.len(), 1, "{live:?}");
    let healthy = |l: &Vec<AppSummary>| {
        l.iter().any(|a| a.domain == domain && a.health.is_some_and(|h| h.running == 1 && h.desired == 1))
    };
    list.until("apps", 30, healthy).await;
    let glance: Vec<ServerView> = servers
        .until("servers", 30, |l: &Vec<ServerView>| {
            l.iter()
                .any(|s| s.connected && s.summary.as_ref().is_some_and(|g| g.nodes_ready >= 1 && g.tasks_running >= 1))
        })
        .await;
    assert_eq!(glance.len(), 1);

    // Killed behind Potluck's back: a failed task on the page, a restart and the badge in the list.
    swarm::docker(&["kill", &swarm::container(&app.stack_name, "app")]);
    let failed: AppLiveView = page
        .until("app", 30, |v: &AppLiveView| v.services.iter().any(|s| s.tasks.iter().any(|t| t.state == "failed")))
        .await;
    assert!(failed.services[0].tasks.iter().any(|t| t.error.contains("137")), "{failed:?}");
    let listed: Vec<AppSummary> = list
        .until("apps", 30, |l: &Vec<AppSummary>| {
            l.iter().any(|a| a.domain == domain && a.health.is_some_and(|h| h.restarts >= 1))
        })
        .await;
    let mine = listed.iter().find(|a| a.domain == domain).unwrap();
    assert_ne!(AppHealth::verdict(mine.health.as_ref(), mine.unhealthy.as_deref()), Verdict::Healthy, "{mine:?}");
    // The swarm runs it again: running whole, the restart still counted for the hour.
    page.until("app", 30, |v: &AppLiveView| v.services.iter().all(|s| s.running == s.desired)).await;
    servers.until("servers", 30, |l: &Vec<ServerView>| l[0].summary.as_ref().is_some_and(|g| g.restarts >= 1)).await;

    // Undeployed and removed from Potluck: the page's stream says it is gone.
    let (_, state, result) = run(&b, &domain, "undeploy", "").await;
    assert_eq!(state, "succeeded", "{result}");
    page.until("app", 30, |v: &AppLiveView| v.app.status == AppStatus::Undeployed && v.services.is_empty()).await;
    b.call::<serde_json::Value>("delete_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let gone: String = page.until("gone", 30, |_: &String| true).await;
    assert!(gone.contains("removed"), "{gone}");
    cleanup(&docker, &app.stack_name).await;
    second.stop().await;
    first.stop().await;
}

/// Polls the app until `pred` holds (the monitor reads the swarm after its events).
async fn app_until(b: &Browser, domain: &str, what: &str, pred: impl Fn(&AppDetail) -> bool) -> AppDetail {
    for _ in 0..240 {
        let d = app_detail(b, domain).await;
        if pred(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{domain}: {what} within 60 s: {:?}", app_detail(b, domain).await.app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_behind_potlucks_back_is_drift_until_adopted_or_redeployed() {
    use potluck_server::adapters::engine::{self, envfile::EnvFile, load::RecipeFiles};
    let w = world().await;
    let b = &w.admin;
    let domain = unique_domain("drift");
    let app = create(b, "hello", &domain, "0.1.0+1.0").await;
    let stack = app.stack_name.clone();
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let (_, state, result) = run(b, &domain, "deploy", "").await;
    assert_eq!(state, "succeeded", "{result}");
    let none = b.call::<AppSummary>("adopt_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap_err();
    assert_eq!(none.status, 409, "nothing to adopt: {}", none.body);

    // An abra user upgrades it from a laptop: the real `docker stack deploy` of 0.2.0+1.1 with
    // the app's env, which replaces the services without Potluck's labels.
    let env_text: String = b.call("export_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let files = RecipeFiles::from_dir(&fixture_recipe("hello").join("versions/0.2.0+1.1")).unwrap();
    let env = engine::app_environment(&EnvFile::parse(&env_text).unwrap(), files.text("abra.sh").as_deref(), &stack);
    let laptop_deploy = || swarm::cli_deploy(&files.root, &engine::compose_files(&env), &env, &stack).unwrap();
    laptop_deploy();

    let d = app_until(b, &domain, "drift seen", |d| d.app.drift.is_some()).await;
    let drift = d.app.drift.clone().unwrap();
    assert!(drift.changes.contains(&"runs 0.2.0+1.1, Potluck deployed 0.1.0+1.0".to_string()), "{drift:?}");
    assert!(drift.changes.contains(&"service app changed".to_string()), "{drift:?}");
    assert_eq!(drift.live_version.as_deref(), Some("0.2.0+1.1"));
    let listed: Vec<AppSummary> = b.call("list_apps", &[("slug", SLUG)]).await.unwrap();
    assert!(listed.iter().find(|a| a.domain == domain).unwrap().drift.is_some(), "the apps list shows it too");
    let page = b.get(&format!("/c/{SLUG}/apps/{domain}")).await.text().await.unwrap();
    assert!(page.contains("Changed outside Potluck") && page.contains("runs 0.2.0+1.1, Potluck deployed 0.1.0+1.0"));

    // Potluck will not touch what another tool made unless told to take it over.
    let (_, state, result) = run(b, &domain, "redeploy", "").await;
    assert_eq!(state, "failed");
    assert!(result.contains("not created by Potluck"), "{result}");
    assert!(app_detail(b, &domain).await.app.drift.is_some(), "a refused redeploy leaves the drift standing");
    let job = b
        .call::<JobSummary>(
            "start_job",
            &[("slug", SLUG), ("domain", &domain), ("kind", "redeploy"), ("options[take_over]", "true")],
        )
        .await
        .unwrap();
    let (_, state, result) = b.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "{result}");
    let d = app_detail(b, &domain).await;
    assert!(d.app.drift.is_none(), "{:?}", d.app.drift);
    assert_eq!(d.app.version.as_deref(), Some("0.1.0+1.0"), "Potluck's own version is back");
    let labels = service_labels(&w.docker, &format!("{stack}_app")).await;
    assert_eq!(labels.get(&format!("coop-cloud.{stack}.version")).map(String::as_str), Some("0.1.0+1.0"));
    assert_eq!(labels.get("potluck.app"), Some(&app.id.to_string()), "and its labels");

    // The laptop deploys again; this time the operator adopts it. Potluck records what runs,
    // and the env's TYPE line says so (as abra's would).
    laptop_deploy();
    app_until(b, &domain, "the second drift seen", |d| d.app.drift.is_some()).await;
    let adopted: AppSummary = b.call("adopt_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    assert_eq!(adopted.version.as_deref(), Some("0.2.0+1.1"));
    assert!(adopted.drift.is_none());
    let env_after: String = b.call("export_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    assert!(env_after.contains("TYPE=hello:0.2.0+1.1"), "{env_after}");
    let audit = w.app.texts("SELECT details FROM audit_events WHERE action = 'app.adopt'").await;
    assert!(audit.len() == 1 && audit[0].contains("0.2.0+1.1") && audit[0].contains("0.1.0+1.0"), "{audit:?}");
    // What runs is now the record: a scale by hand is the only difference then.
    swarm::docker(&["service", "scale", "--detach", &format!("{stack}_app=2")]);
    let d = app_until(b, &domain, "the scale seen", |d| d.app.drift.is_some()).await;
    assert_eq!(d.app.drift.unwrap().changes, ["service app changed"], "only the scale, not the adopted deploy");

    // An adopted stack is Potluck's to redeploy, which ends the drift too.
    let (_, state, result) = run(b, &domain, "redeploy", "").await;
    assert_eq!(state, "succeeded", "{result}");
    assert!(app_detail(b, &domain).await.app.drift.is_none());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(app_detail(b, &domain).await.app.drift.is_none(), "and the monitor agrees");

    // A stack removed behind Potluck's back.
    swarm::remove_stack(&w.docker, &stack).await;
    let d = app_until(b, &domain, "the removal seen", |d| d.app.drift.is_some()).await;
    assert_eq!(d.app.drift.unwrap().changes, ["the stack is not running: removed outside Potluck"]);
    let adopted: AppSummary = b.call("adopt_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    assert_eq!(adopted.status, AppStatus::Undeployed);
    cleanup(&w.docker, &stack).await;
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_over_another_tools_objects_is_refused_on_an_engine_another_collective_shares() {
    let w = world().await;
    let b = &w.admin;
    let domain = unique_domain("shared");
    create(b, "hello", &domain, "0.1.0+1.0").await;
    b.call::<CollectiveSummary>("create_collective", &[("slug", "collective-b"), ("name", "B"), ("description", "")])
        .await
        .unwrap();
    // Registered under another spelling of the same socket: the same swarm all the same.
    let spelled = swarm::SOCKET.replacen("/var/run/", "/run/", 1);
    assert_ne!(spelled, swarm::SOCKET);
    b.call::<ServerView>(
        "add_server",
        &[("slug", "collective-b"), ("name", "b-local"), ("kind", "unix"), ("address", &spelled)],
    )
    .await
    .unwrap();
    let jobs_before = w.app.count("SELECT COUNT(*) FROM jobs").await;
    let e = b
        .call::<JobSummary>(
            "start_job",
            &[("slug", SLUG), ("domain", &domain), ("kind", "deploy"), ("options[take_over]", "true")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 409, "{}", e.body);
    assert!(e.body.contains("its engine is registered in more than one collective"), "{}", e.body);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM jobs").await, jobs_before, "no job");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM apps WHERE adopted_objects IS NOT NULL").await, 0, "nothing taken");
    w.app.stop().await;
}

/// What one app took over stays its own: a laptop deploys a second stack whose service uses the
/// first app's secret (made by abra, so without Potluck's labels, and taken over when the first
/// app adopted its stack); adopting the second stack is refused rather than claiming the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_one_app_took_over_are_not_taken_over_again_by_another() {
    use potluck_server::adapters::engine::{self, envfile::EnvFile, load::RecipeFiles};
    let w = world().await;
    let b = &w.admin;
    let (first, second) = (unique_domain("first"), unique_domain("second"));
    let one = create(b, "hello", &first, "0.1.0+1.0").await;
    let two = create(b, "hello", &second, "0.1.0+1.0").await;
    let secret = format!("{}_db_password_v1", one.stack_name);
    let _guards = (swarm::StackGuard(two.stack_name.clone()), swarm::StackGuard(one.stack_name.clone()));
    let version = fixture_recipe("hello").join("versions/0.1.0+1.0");
    let laptop = |text: &str, stack: &str, dir: &std::path::Path| {
        let files = RecipeFiles::from_dir(dir).unwrap();
        let env = engine::app_environment(&EnvFile::parse(text).unwrap(), files.text("abra.sh").as_deref(), stack);
        swarm::cli_deploy(&files.root, &engine::compose_files(&env), &env, stack).unwrap();
    };
    let env_of =
        async |domain: &str| -> String { b.call("export_app", &[("slug", SLUG), ("domain", domain)]).await.unwrap() };

    // abra's secret (no labels) and its deploy of the first app, which the operator adopts.
    let made = std::process::Command::new("sh")
        .args(["-c", &format!("printf pw | {} secret create {secret} -", swarm::docker_cli().display())])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    laptop(&env_of(&first).await, &one.stack_name, &version);
    app_until(b, &first, "the first stack seen", |d| d.app.drift.is_some()).await;
    b.call::<AppSummary>("adopt_app", &[("slug", SLUG), ("domain", &first)]).await.unwrap();
    let secret_id = swarm::docker(&["secret", "inspect", "--format", "{{.ID}}", &secret]).trim().to_string();
    let taken = w.app.texts(&format!("SELECT adopted_objects FROM apps WHERE id = {}", one.id)).await;
    assert!(taken[0].contains(&secret_id), "the first app took the secret over: {taken:?}");

    // The second stack's service uses the first app's secret by its name.
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&version).unwrap().flatten() {
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    let compose = std::fs::read_to_string(dir.path().join("compose.yml")).unwrap();
    let hostile = compose.replace("${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}", &secret);
    assert_ne!(compose, hostile);
    std::fs::write(dir.path().join("compose.yml"), hostile).unwrap();
    laptop(&env_of(&second).await, &two.stack_name, dir.path());
    app_until(b, &second, "the second stack seen", |d| d.app.drift.is_some()).await;
    let e = b.call::<AppSummary>("adopt_app", &[("slug", SLUG), ("domain", &second)]).await.unwrap_err();
    assert_eq!(e.status, 409, "{}", e.body);
    assert!(e.body.contains(&format!("secret {secret} was taken over by another app")), "{}", e.body);
    let left = w.app.texts(&format!("SELECT COALESCE(adopted_objects, '-') FROM apps WHERE id = {}", two.id)).await;
    assert_eq!(left, ["-"], "nothing taken");
    drop(_guards);
    let _ = std::process::Command::new(swarm::docker_cli()).args(["secret", "rm", &secret]).output();
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn potluck_remote_deploys_upgrades_and_undeploys_an_app_with_abras_verbs() {
    let w = world().await;
    let b = &w.admin;
    let domain = unique_domain("remote");
    let app = create(b, "hello", &domain, "0.1.0+1.0").await;
    let stack = app.stack_name.clone();
    let token = |role: &str| {
        let role = role.to_string();
        async move {
            let t: CreatedApiToken = b
                .call(
                    "create_api_token",
                    &[("name", "cli"), ("collective", SLUG), ("role", &role), ("expires_in_days", "1")],
                )
                .await
                .unwrap();
            t.token.0
        }
    };
    let operator = token("operator").await;
    let viewer = token("viewer").await;
    let potluck = |token: &str, args: &[&str]| {
        let out = std::process::Command::new(potluck_tests::potluck_bin())
            .arg("remote")
            .arg("app")
            .args(["-c", SLUG])
            .args(args)
            .env("POTLUCK_URL", &w.app.base)
            .env("POTLUCK_TOKEN", token)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains(token), "the token is never printed");
        (out.status.code(), text)
    };

    let (code, text) = potluck(&operator, &["secret", "generate", &domain]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("db_password") && text.contains("shown this once"), "{text}");
    let (code, text) = potluck(&operator, &["deploy", &domain]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("add --yes"), "no terminal to ask: {text}");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM jobs").await, 0);

    let (code, text) = potluck(&operator, &["deploy", &domain, "--yes"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("deploy {domain}: 0.1.0+1.0 → 0.1.0+1.0")), "the preview first: {text}");
    assert!(text.contains("started") && text.contains("succeeded"), "{text}");
    assert!(text.contains("waiting up to"), "the job's steps as they come: {text}");
    // The monitor reads the swarm after the deploy's events; ls shows what it read.
    app_until(b, &domain, "its task seen running", |d| d.app.health.is_some_and(|h| h.running == 1)).await;
    let (code, text) = potluck(&viewer, &["ls"]);
    assert_eq!(code, Some(0), "{text}");
    let line = text.lines().find(|l| l.starts_with(&domain)).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("0.1.0+1.0") && line.contains("deployed 1/1"), "{line}");

    let (code, text) = potluck(&operator, &["upgrade", &domain, "0.2.0+1.1", "--yes"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("0.1.0+1.0 → 0.2.0+1.1"), "{text}");
    assert_eq!(app_detail(b, &domain).await.app.version.as_deref(), Some("0.2.0+1.1"));
    let (code, text) = potluck(&operator, &["logs", &domain, "--tail", "20"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = potluck(&operator, &["rollback", &domain, "--yes"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(app_detail(b, &domain).await.app.version.as_deref(), Some("0.1.0+1.0"));

    // A viewer's token may look, not deploy; the refusal is said plainly.
    let (code, text) = potluck(&viewer, &["redeploy", &domain, "--yes"]);
    assert_ne!(code, Some(0));
    assert!(text.contains("403"), "{text}");

    let (code, text) = potluck(&operator, &["undeploy", &domain, "--yes", "--volumes", "--secrets"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(app_detail(b, &domain).await.app.status, AppStatus::Undeployed);
    assert_eq!(swarm::services_of(&w.docker, &stack).await, 0);
    assert!(secret_names(&w.docker, &format!("{stack}_")).await.is_empty());
    let jobs = w.app.texts("SELECT kind || '|' || state FROM jobs ORDER BY id").await;
    assert_eq!(
        jobs,
        ["deploy|succeeded", "upgrade|succeeded", "rollback|succeeded", "undeploy|succeeded"],
        "each verb ran once"
    );
    cleanup(&w.docker, &stack).await;
    w.app.stop().await;
}
