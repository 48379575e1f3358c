//! Swarm managers reached over the network, as collectives run them: the Docker API over TCP with
//! TLS client certificates, and over SSH (`docker system dial-stdio` on the far side). The harness
//! runs both in front of its real dockerd (scripts/test-services.sh); an app deploys, converges
//! and undeploys through each. Wrong credentials are refused when the server is added, with the
//! reason, and add nothing. Private keys are never shown again.

use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::{required_env, swarm, Browser, TestApp};
use std::path::PathBuf;

const SLUG: &str = "collective-a";

fn tls_file(name: &str) -> String {
    let dir = PathBuf::from(required_env("POTLUCK_TEST_DOCKER_TLS_DIR"));
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn world() -> (TestApp, Browser, tempfile::TempDir) {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>(
            "create_collective",
            &[("slug", SLUG), ("name", "Collective A"), ("description", "")],
        )
        .await
        .unwrap();
    let recipes = tempfile::tempdir().unwrap();
    let (_, remote) = publish(&fixture_recipe("hello"), recipes.path(), "hello");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    (app, admin, recipes)
}

/// Creates a hello app on `server`, generates its secret, deploys it, checks it converged and
/// runs on the swarm, then undeploys it (removing its secrets) and checks it is gone.
async fn deploy_through(b: &Browser, server: &str) {
    let domain = format!("{server}-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app: AppSummary = b
        .call(
            "create_app",
            &[("slug", SLUG), ("server", server), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let job: JobSummary =
        b.call("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "deploy"), ("target", "")]).await.unwrap();
    let (events, state, result) = b.watch_job(job.id).await;
    let log = events.iter().map(|e| e.text.clone()).collect::<Vec<_>>().join("\n");
    assert_eq!(state, "succeeded", "deploy through {server}: {result}\n{log}");
    let docker = swarm::connect().await;
    let svc = docker.inspect_service(&format!("{}_app", app.stack_name), None).await.unwrap();
    let labels = svc.spec.unwrap().labels.unwrap_or_default();
    assert_eq!(labels.get(&format!("coop-cloud.{}.version", app.stack_name)).map(String::as_str), Some("0.1.0+1.0"));
    let d: AppDetail = b.call("get_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    assert!(d.services.iter().any(|s| s.running >= 1), "the app page reads the live services: {:?}", d.services);
    // The server's live state comes from the engine's event stream, over the same transport.
    let views: Vec<ServerView> = b.call("list_servers", &[("slug", SLUG)]).await.unwrap();
    let view = views.iter().find(|v| v.name == server).unwrap();
    assert!(view.connected && view.events_seen > 0, "the deploy's events reached the server page: {view:?}");

    let job: JobSummary = b
        .call(
            "start_job",
            &[
                ("slug", SLUG),
                ("domain", &domain),
                ("kind", "undeploy"),
                ("target", ""),
                ("options[remove_secrets]", "true"),
                ("options[remove_volumes]", "true"),
            ],
        )
        .await
        .unwrap();
    let (_, state, result) = b.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "undeploy through {server}: {result}");
    assert!(docker.inspect_service(&format!("{}_app", app.stack_name), None).await.is_err());
    swarm::remove_stack(&docker, &app.stack_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_with_tls_client_certificates() {
    let (app, b, _recipes) = world().await;
    let address = required_env("POTLUCK_TEST_DOCKER_TLS");
    let key = tls_file("key.pem");

    // A client certificate from another CA: the engine refuses the handshake; nothing is added.
    let rogue_key = tls_file("rogue/key.pem");
    let e = b
        .call::<ServerView>(
            "add_server",
            &[
                ("slug", SLUG),
                ("name", "rogue"),
                ("kind", "tcp"),
                ("address", &address),
                ("tls_ca", &tls_file("ca.pem")),
                ("tls_cert", &tls_file("rogue/cert.pem")),
                ("private_key", &rogue_key),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("server rogue is unreachable"), "{}", e.body);
    // Without TLS, the TLS port answers nothing Docker can use.
    let e = b
        .call::<ServerView>("add_server", &[("slug", SLUG), ("name", "plain"), ("kind", "tcp"), ("address", &address)])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM servers").await, 0, "refused servers are not stored");

    let server: ServerView = b
        .call(
            "add_server",
            &[
                ("slug", SLUG),
                ("name", "tls"),
                ("kind", "tcp"),
                ("address", &address),
                ("tls_ca", &tls_file("ca.pem")),
                ("tls_cert", &tls_file("cert.pem")),
                ("private_key", &key),
            ],
        )
        .await
        .unwrap();
    assert!(server.is_manager && server.nodes >= 1, "{server:?}");
    assert!(server.engine_version.as_deref().is_some_and(|v| !v.is_empty()), "{server:?}");
    assert!(server.tls, "{server:?}");
    let key_body = key.lines().nth(1).unwrap().to_string();
    let views: Vec<ServerView> = b.call("list_servers", &[("slug", SLUG)]).await.unwrap();
    assert!(!serde_json::to_string(&views).unwrap().contains(&key_body), "the private key is never shown again");
    let audit = app.texts("SELECT details FROM audit_events").await.join("\n");
    assert!(!audit.contains(&key_body), "the private key is not in the audit log");

    deploy_through(&b, "tls").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_with_a_private_key() {
    let (app, b, _recipes) = world().await;
    let destination = required_env("POTLUCK_TEST_SSH");
    let key = std::fs::read_to_string(required_env("POTLUCK_TEST_SSH_KEY")).unwrap();

    // A key the server does not accept: refused with the reason, nothing stored.
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join("id");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(status.success());
    let e = b
        .call::<ServerView>(
            "add_server",
            &[
                ("slug", SLUG),
                ("name", "stranger"),
                ("kind", "ssh"),
                ("address", &destination),
                ("private_key", &std::fs::read_to_string(&other_key).unwrap()),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("server stranger is unreachable"), "{}", e.body);
    assert!(e.body.contains("Permission denied (publickey)"), "ssh's own reason is passed on: {}", e.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM servers").await, 0);

    let server: ServerView = b
        .call(
            "add_server",
            &[("slug", SLUG), ("name", "ssh"), ("kind", "ssh"), ("address", &destination), ("private_key", &key)],
        )
        .await
        .unwrap();
    assert!(server.is_manager && server.nodes >= 1, "{server:?}");
    let key_body = key.lines().nth(1).unwrap().to_string();
    let views: Vec<ServerView> = b.call("list_servers", &[("slug", SLUG)]).await.unwrap();
    assert!(!serde_json::to_string(&views).unwrap().contains(&key_body), "the private key is never shown again");

    deploy_through(&b, "ssh").await;
    app.stop().await;
}

/// Whether `app`'s monitor of the server is connected, as that replica's memory holds it.
async fn watching(app: &TestApp, uid: &str) -> bool {
    app.state.monitors.state(uid).await.connected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_at_a_time_watches_a_server_and_another_takes_over_when_it_dies() {
    let (first, admin, _recipes) = world().await;
    admin
        .call::<ServerView>(
            "add_server",
            &[("slug", SLUG), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    let second = first.replica().await;
    let uid = first.texts("SELECT uid FROM servers WHERE name = 'local'").await.remove(0);
    let holder = "SELECT monitor_holder FROM servers WHERE name = 'local'";
    // Over several lease periods (3 s in tests), the first keeps it and the second only waits.
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        assert!(!watching(&second, &uid).await, "the second replica must not watch a server the first holds");
    }
    assert!(watching(&first, &uid).await);
    assert_eq!(first.texts(holder).await, vec![first.state.replica.clone()]);
    // The second replica's pages still show the server connected (recorded by the holder).
    let on_second = Browser { base: second.base.clone(), client: admin.client.clone(), jar: admin.jar.clone() };
    let views: Vec<ServerView> = on_second.call("list_servers", &[("slug", SLUG)]).await.unwrap();
    assert!(views[0].connected, "{views:?}");

    // The first dies without a word: once its lease has run out, the second takes over.
    first.stop().await;
    let mut taken = false;
    for _ in 0..100 {
        if watching(&second, &uid).await {
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(taken, "the second replica took the monitor over within 10 s");
    assert_eq!(second.texts(holder).await, vec![second.state.replica.clone()]);
    let views: Vec<ServerView> = on_second.call("list_servers", &[("slug", SLUG)]).await.unwrap();
    assert!(views[0].connected && views[0].events_seen >= 0, "{views:?}");
    second.stop().await;
}
