//! Two `potluck serve` processes on one database behind Debian's HAProxy (round robin, health
//! checked), as docs/DEPLOYING.md runs them, on SQLite and PostgreSQL: a person signs in and
//! sets up an app through the proxy, each request going to either replica; a deploy started
//! through the proxy is watched live on the replica that is not running it; that replica running
//! it is killed mid-deploy, the other takes the job over and finishes it once, the watcher sees
//! every event in order, and the proxy keeps serving.

use potluck_app::model::*;
use potluck_tests::process::{bootstrap_token, free_port, haproxy, ready, secret_key, Process};
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::{backend, potluck_bin, swarm, Backend, Browser};
use sqlx::Row;
use std::path::Path;
use std::time::Duration;

const SLUG: &str = "collective-a";

/// A replica as docs/DEPLOYING.md runs it, with short leases.
fn serve(dir: &Path, name: &str, port: u16, proxy: u16, database: &str, key: &str) -> Process {
    let extra = "lease_secs = 3.0\nlogin_attempts_per_minute = 10000";
    potluck_tests::process::serve(&potluck_bin(), dir, name, port, proxy, database, key, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_haproxy_share_sessions_and_finish_a_deploy_whose_replica_dies() {
    let dir = tempfile::tempdir().unwrap();
    let database = match backend() {
        Backend::Sqlite => format!("sqlite://{}/potluck.db", dir.path().display()),
        Backend::Postgres => potluck_tests::fresh_postgres_database().await,
    };
    let key = secret_key();
    let (proxy, ports) = (free_port(), [free_port(), free_port()]);
    // The first replica migrates the database; then the second, then the proxy.
    let mut replicas = vec![Some(serve(dir.path(), "r1", ports[0], proxy, &database, &key))];
    ready(&format!("http://127.0.0.1:{}/healthz", ports[0])).await;
    replicas.push(Some(serve(dir.path(), "r2", ports[1], proxy, &database, &key)));
    ready(&format!("http://127.0.0.1:{}/healthz", ports[1])).await;
    let _proxy = haproxy(dir.path(), proxy, &ports);
    let base = format!("http://127.0.0.1:{proxy}");
    ready(&format!("{base}/healthz")).await;
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&database).await.unwrap();

    // The bootstrap link the first replica printed, claimed through the proxy.
    let token = bootstrap_token(dir.path(), "r1");
    let b = Browser::new(&base);
    let claimed = b.post_form("/auth/bootstrap", &[("token", &token)]).await;
    assert_eq!(claimed.status(), 303, "bootstrap claim");

    // Every request goes to either replica; the one session holds on both.
    b.call::<CollectiveSummary>("create_collective", &[("slug", SLUG), ("name", "A"), ("description", "")])
        .await
        .unwrap();
    b.call::<ServerView>(
        "add_server",
        &[("slug", SLUG), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
    )
    .await
    .unwrap();
    let (_, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    b.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    for _ in 0..4 {
        let recipes: Vec<RecipeSummary> = b.call("list_recipes", &[]).await.unwrap();
        assert_eq!(recipes.len(), 1, "both replicas read the recipe (each from its own clone)");
    }
    let domain = format!("replicas-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app: AppSummary = b
        .call(
            "create_app",
            &[("slug", SLUG), ("server", "local"), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    let _stack = swarm::StackGuard(app.stack_name.clone());
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let job: JobSummary =
        b.call("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "deploy")]).await.unwrap();
    for name in ["r1", "r2"] {
        let log = std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap();
        assert!(log.contains("/api/fn/"), "{name} served some of the requests through the proxy:\n{log}");
    }

    // Which process runs it: its lease names its pid.
    let holder = || async {
        let row =
            sqlx::query(&format!("SELECT lease_holder FROM jobs WHERE id = {}", job.id)).fetch_one(&db).await.unwrap();
        row.try_get::<Option<String>, _>(0).unwrap()
    };
    let mut held = None;
    for _ in 0..300 {
        if let Some(h) = holder().await {
            held = Some(h);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = held.expect("a replica claimed the job");
    let pid: u32 = held.split(':').nth(1).unwrap().parse().unwrap();
    let running = replicas.iter().position(|r| r.as_ref().unwrap().0.id() == pid).expect("one of the two");
    let other = 1 - running;

    // Watched live on the other replica (the session cookie is the proxy's, for 127.0.0.1).
    let watcher =
        Browser { base: format!("http://127.0.0.1:{}", ports[other]), client: b.client.clone(), jar: b.jar.clone() };
    let watched = tokio::spawn(async move { watcher.watch_job(job.id).await });

    // Killed mid-convergence, without a chance to give anything up.
    let events = format!("SELECT data FROM job_events WHERE job_id = {} ORDER BY seq", job.id);
    let mut converging = false;
    for _ in 0..1000 {
        let rows = sqlx::query(&events).fetch_all(&db).await.unwrap();
        if rows.iter().any(|r| r.get::<String, _>(0).contains("waiting up to")) {
            converging = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(converging, "the deploy reached convergence");
    drop(replicas[running].take());

    let (seen, end, result) = watched.await.unwrap();
    let log: Vec<String> =
        sqlx::query(&events).fetch_all(&db).await.unwrap().iter().map(|r| r.get::<String, _>(0)).collect();
    assert_eq!(end, "succeeded", "{result}\n{}", log.join("\n"));
    let seqs: Vec<i64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=log.len() as i64).collect::<Vec<_>>(), "every event, in order, once");
    assert!(seen.iter().any(|e| e.text.contains("The Potluck running this job stopped")), "{seen:?}");
    let count = |sql: String| {
        let db = db.clone();
        async move { sqlx::query(&sql).fetch_one(&db).await.unwrap().get::<i64, _>(0) }
    };
    assert_eq!(count(format!("SELECT attempts FROM jobs WHERE id = {}", job.id)).await, 2);
    assert_eq!(count("SELECT COUNT(*) FROM audit_events WHERE action = 'app.deploy'".into()).await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM jobs".into()).await, 1, "no job twice");
    let docker = swarm::connect().await;
    assert_eq!(swarm::services_of(&docker, &app.stack_name).await, 1, "no service twice");

    // The proxy sends everything to the survivor now; the session still holds.
    for _ in 0..4 {
        let d: AppDetail = b.call("get_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
        assert_eq!(d.app.status, AppStatus::Deployed);
    }
    swarm::remove_stack_and_secrets(&docker, &app.stack_name).await;
}
