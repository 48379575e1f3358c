//! The tenant wall, tried as a hostile collective admin would, against the real engine, sshd and
//! identity providers the harness runs: no path from a collective to the Potluck host (local
//! engines, host access through recipes, the Potluck user's SSH keys, recipe clones, keys on
//! disk) or to another collective (cached engine clients, stacks with a common prefix, roles
//! that outlive their mapping), and no slow engine holding every other write.

use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, over_ssh, publish};
use potluck_tests::swarm::{self, BlackHole, RefusingProxy};
use potluck_tests::{required_env, Browser, Idp, TestApp};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const A: &str = "collective-a";
const B: &str = "collective-b";

struct Wall {
    app: TestApp,
    fed: Browser,
    /// collective-a: admin (groups), operator (groups).
    alice: Browser,
    carol: Browser,
    /// collective-b's admin (granted by hand).
    erin: Browser,
    provider_a: potluck_app::model::ProviderId,
    dir: tempfile::TempDir,
}

async fn wall(adjust: impl FnOnce(&mut potluck_server::config::Config)) -> Wall {
    let app = TestApp::spawn_with(adjust).await;
    let fed = app.bootstrap_admin().await;
    for (slug, name) in [(A, "Collective A"), (B, "Collective B")] {
        fed.call::<CollectiveSummary>("create_collective", &[("slug", slug), ("name", name), ("description", "")])
            .await
            .unwrap();
    }
    let provider_a = app.add_provider(&fed, &Idp::a(), &[A, B]).await;
    for (group, role) in
        [("collective-a-admins", "admin"), ("collective-a-operators", "operator"), ("collective-a-members", "viewer")]
    {
        fed.call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", A), ("provider_id", &provider_a.to_string()), ("value", group), ("role", role)],
        )
        .await
        .unwrap();
    }
    let alice = app.login(provider_a, "alice", "alice-pw").await;
    let carol = app.login(provider_a, "carol", "carol-pw").await;
    let erin = app.login(provider_a, "erin", "erin-pw").await;
    let erin_id = erin.call::<Option<Me>>("me", &[]).await.unwrap().unwrap().user_id;
    fed.call::<()>("set_member_role", &[("slug", B), ("user_id", &erin_id.to_string()), ("role", "admin")])
        .await
        .unwrap();
    Wall { app, fed, alice, carol, erin, provider_a, dir: tempfile::tempdir().unwrap() }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn add_unix<'a>(slug: &'a str, name: &'a str, socket: &'a str) -> [(&'a str, &'a str); 4] {
    [("slug", slug), ("name", name), ("kind", "unix"), ("address", socket)]
}

async fn register_fixture(w: &Wall, name: &str) {
    let (_, remote) = publish(&fixture_recipe(name), w.dir.path(), name);
    w.fed.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_engines_are_granted_by_the_configuration_only() {
    // The federation's configuration grants the harness's engine to collective-a alone.
    let w = wall(|c| {
        c.local_engines = [(swarm::SOCKET.to_string(), vec![A.to_string()])].into_iter().collect();
    })
    .await;
    // collective-b's admin points a server at the engine Potluck runs next to: refused, with why.
    let e = w.erin.call::<ServerView>("add_server", &add_unix(B, "host", swarm::SOCKET)).await.unwrap_err();
    assert_eq!(e.status, 403, "{}", e.body);
    assert!(e.body.contains("local_engines") && e.body.contains(B), "the refusal says why: {}", e.body);
    // Another name for the same socket is the same socket.
    let link = w.dir.path().join("docker.sock");
    std::os::unix::fs::symlink(swarm::SOCKET, &link).unwrap();
    let e =
        w.erin.call::<ServerView>("add_server", &add_unix(B, "host", &link.display().to_string())).await.unwrap_err();
    assert_eq!(e.status, 403, "{}", e.body);
    // Not even a federation admin can hand it to collective-b: the configuration is the grant.
    let e = w.fed.call::<ServerView>("add_server", &add_unix(B, "host", swarm::SOCKET)).await.unwrap_err();
    assert_eq!(e.status, 403, "{}", e.body);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM servers").await, 0, "nothing was stored");
    // collective-a was granted it.
    let s: ServerView = w.alice.call("add_server", &add_unix(A, "local", swarm::SOCKET)).await.unwrap();
    assert!(s.is_manager, "{s:?}");
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_guardrails_refuse_host_access_until_a_federation_admin_allows_it() {
    let w = wall(|_| {}).await;
    w.alice.call::<ServerView>("add_server", &add_unix(A, "local", swarm::SOCKET)).await.unwrap();
    register_fixture(&w, "hostile").await;
    let domain = format!("{}.example.org", unique("hostile-"));
    let app: AppSummary = w
        .carol
        .call(
            "create_app",
            &[("slug", A), ("server", "local"), ("recipe", "hostile"), ("domain", &domain), ("version", "0.1.0+1")],
        )
        .await
        .unwrap();
    let preview = |b: &Browser| {
        let (b, domain) = (b.clone(), domain.clone());
        async move {
            b.call::<DeployPreview>("preview_job", &[("slug", A), ("domain", &domain), ("kind", "deploy")])
                .await
                .unwrap()
                .checks
                .into_iter()
                .filter(|c| c.level == "error" && c.message.contains("does not allow"))
                .map(|c| c.message)
                .collect::<Vec<_>>()
        }
    };
    // The preview names each service and field the server's policy refuses.
    let refused = preview(&w.carol).await;
    let text = refused.join("\n");
    for expected in ["/:/host", "/var/run/docker.sock", "cap_add", "binds /etc", "victim_example_org_db_password_v1"] {
        assert!(text.contains(expected), "{expected} is named:\n{text}");
    }
    assert!(refused.iter().all(|m| m.contains("service app")), "{text}");
    // The deploy is refused at deploy time too, and nothing reaches the swarm.
    let job: JobSummary =
        w.carol.call("start_job", &[("slug", A), ("domain", &domain), ("kind", "deploy")]).await.unwrap();
    let (events, state, result) = w.carol.watch_job(job.id).await;
    assert_eq!(state, "failed", "{result}");
    assert!(result.contains("checks before deploying failed"), "{result}");
    assert!(events.iter().any(|e| e.text.contains("/:/host")), "the job says why");
    let docker = swarm::connect().await;
    assert!(docker.inspect_service(&format!("{}_app", app.stack_name), None).await.is_err(), "nothing deployed");
    // The collective's own admin cannot lift the guardrails: that is the federation's call.
    let e = w
        .alice
        .call::<ServerView>("set_server_policy", &[("slug", A), ("name", "local"), ("allow", "bind_mounts")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 403, "{}", e.body);
    let e = w
        .fed
        .call::<ServerView>("set_server_policy", &[("slug", A), ("name", "local"), ("allow", "root")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    // Allowing bind mounts does not allow the Docker socket.
    let s: ServerView =
        w.fed.call("set_server_policy", &[("slug", A), ("name", "local"), ("allow", "bind_mounts")]).await.unwrap();
    assert_eq!(s.policy_allows, vec!["bind_mounts"]);
    let refused = preview(&w.carol).await;
    assert!(refused.iter().any(|m| m.contains("Docker socket")), "{refused:?}");
    assert!(!refused.iter().any(|m| m.contains("binds /etc")), "{refused:?}");
    // A server a federation admin trusts with everything: nothing is refused.
    w.fed
        .call::<ServerView>(
            "set_server_policy",
            &[
                ("slug", A),
                ("name", "local"),
                (
                    "allow",
                    "bind_mounts, docker_socket, capabilities, foreign_objects, privileged, devices, host_namespaces",
                ),
            ],
        )
        .await
        .unwrap();
    assert!(preview(&w.carol).await.is_empty());
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'server.policy.set'").await,
        2,
        "each change of policy is audited"
    );
    w.app.stop().await;
}

fn ssh_keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    path
}

fn fingerprint_of(public_key_file: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen").arg("-lf").arg(public_key_file).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_servers_use_only_their_own_key_and_a_pinned_host_key() {
    let w = wall(|_| {}).await;
    let destination = required_env("POTLUCK_TEST_SSH");
    let key_file = PathBuf::from(required_env("POTLUCK_TEST_SSH_KEY"));
    let key = std::fs::read_to_string(&key_file).unwrap();
    let host_fingerprint = fingerprint_of(&key_file.with_file_name("host_ed25519.pub"));

    // Without its own key a server is refused: Potluck's own keys, agent and config are never used.
    let e = w
        .alice
        .call::<ServerView>("add_server", &[("slug", A), ("name", "nokey"), ("kind", "ssh"), ("address", &destination)])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("its own private key"), "{}", e.body);
    // An expected fingerprint that the host does not present: refused, both named.
    let e = w
        .alice
        .call::<ServerView>(
            "add_server",
            &[
                ("slug", A),
                ("name", "ssh"),
                ("kind", "ssh"),
                ("address", &destination),
                ("private_key", &key),
                ("host_key", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains(&host_fingerprint), "the presented key is shown: {}", e.body);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM servers").await, 0);

    // Added: the host key it presented is pinned and shown as its fingerprint.
    let s: ServerView = w
        .alice
        .call(
            "add_server",
            &[
                ("slug", A),
                ("name", "ssh"),
                ("kind", "ssh"),
                ("address", &destination),
                ("private_key", &key),
                ("host_key", &host_fingerprint),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s.host_key_fingerprints, vec![host_fingerprint.clone()]);
    let audit = w.app.texts("SELECT details FROM audit_events WHERE action = 'server.add'").await.join("\n");
    assert!(audit.contains(&host_fingerprint), "the pinned key is on record: {audit}");

    let domain = format!("{}.example.org", unique("pinned-"));
    register_fixture(&w, "hello").await;
    w.carol
        .call::<AppSummary>(
            "create_app",
            &[("slug", A), ("server", "ssh"), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    // The app page talks to the server: a client for the pinned key is cached now.
    let d: AppDetail = w.carol.call("get_app", &[("slug", A), ("domain", &domain)]).await.unwrap();
    assert_eq!(d.live_error, None, "the server answers with its pinned key");
    // The host presents another key than the pinned one (what a swapped or impersonated host
    // looks like from here): every connection is refused, with both fingerprints. The pinned
    // key changes behind this process's back, as another replica's change would: the client
    // cached for the app page is not used for the changed row.
    let other = tempfile::tempdir().unwrap();
    let impostor = ssh_keygen(other.path(), "impostor");
    let impostor_line = std::fs::read_to_string(impostor.with_extension("pub")).unwrap();
    let impostor_line: String = impostor_line.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let impostor_fingerprint = fingerprint_of(&impostor.with_extension("pub"));
    w.app.exec(&format!("UPDATE servers SET host_key = '{impostor_line}' WHERE name = 'ssh'")).await;
    let e = w
        .carol
        .call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", A), ("domain", &domain)])
        .await
        .unwrap_err();
    assert_eq!(e.status, 503, "{}", e.body);
    assert!(
        e.body.contains("host key") && e.body.contains(&impostor_fingerprint) && e.body.contains(&host_fingerprint),
        "both fingerprints are shown: {}",
        e.body
    );
    // Trusting the key the host presents needs its fingerprint, checked out of band.
    let e = w
        .alice
        .call::<ServerView>("trust_host_key", &[("slug", A), ("name", "ssh"), ("fingerprint", &impostor_fingerprint)])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    let s: ServerView = w
        .alice
        .call("trust_host_key", &[("slug", A), ("name", "ssh"), ("fingerprint", &host_fingerprint)])
        .await
        .unwrap();
    assert_eq!(s.host_key_fingerprints, vec![host_fingerprint.clone()]);
    let secrets: Vec<GeneratedSecret> =
        w.carol.call("generate_secrets", &[("slug", A), ("domain", &domain)]).await.unwrap();
    assert!(!secrets.is_empty(), "the server answers again");
    // The key file ssh read is gone: no private key is left on disk anywhere Potluck writes.
    assert_no_private_keys(&w.app.dir.path().join("data"));
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("potluck-ssh-"))
        .filter(|e| {
            std::fs::read_dir(e.path()).map(|mut d| d.any(|f| f.is_ok_and(|f| f.file_name() == "id"))).unwrap_or(false)
        })
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(30))
        })
        .collect();
    assert!(leftovers.is_empty(), "key files left behind: {leftovers:?}");
    let docker = swarm::connect().await;
    for s in secrets {
        let _ = docker.delete_secret(&s.docker_name).await;
    }
    w.app.stop().await;
}

/// No file under `dir` holds a private key in clear.
fn assert_no_private_keys(dir: &Path) {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if std::fs::read(&p).is_ok_and(|b| String::from_utf8_lossy(&b).contains("PRIVATE KEY")) {
                out.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    assert!(found.is_empty(), "private keys in clear: {found:?}");
}

fn tls_file(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(required_env("POTLUCK_TEST_DOCKER_TLS_DIR")).join(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_keys_never_touch_the_disk_in_clear() {
    let w = wall(|_| {}).await;
    let address = required_env("POTLUCK_TEST_DOCKER_TLS");
    // Plain TCP is refused before anything is tried.
    let e = w
        .alice
        .call::<ServerView>("add_server", &[("slug", A), ("name", "plain"), ("kind", "tcp"), ("address", &address)])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("plain TCP is refused"), "{}", e.body);
    // A key that is not a key is named as such.
    let e = w
        .alice
        .call::<ServerView>(
            "add_server",
            &[
                ("slug", A),
                ("name", "tls"),
                ("kind", "tcp"),
                ("address", &address),
                ("tls_ca", &tls_file("ca.pem")),
                ("tls_cert", &tls_file("cert.pem")),
                ("private_key", "not a key"),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("client key"), "{}", e.body);
    let s: ServerView = w
        .alice
        .call(
            "add_server",
            &[
                ("slug", A),
                ("name", "tls"),
                ("kind", "tcp"),
                ("address", &address),
                ("tls_ca", &tls_file("ca.pem")),
                ("tls_cert", &tls_file("cert.pem")),
                ("private_key", &tls_file("key.pem")),
            ],
        )
        .await
        .unwrap();
    assert!(s.is_manager && s.tls, "{s:?}");
    // Used after a restart too (the key is opened from its sealed form, in memory).
    w.app.state.dockers.lock().await.clear();
    let views: Vec<ServerView> = w.alice.call("list_servers", &[("slug", A)]).await.unwrap();
    assert_eq!(views.len(), 1);
    register_fixture(&w, "hello").await;
    let domain = format!("{}.example.org", unique("tls-"));
    w.carol
        .call::<AppSummary>(
            "create_app",
            &[("slug", A), ("server", "tls"), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    let secrets: Vec<GeneratedSecret> =
        w.carol.call("generate_secrets", &[("slug", A), ("domain", &domain)]).await.unwrap();
    assert!(!secrets.is_empty());
    assert_no_private_keys(&w.app.dir.path().join("data"));
    assert!(!w.app.dir.path().join("data/servers").exists(), "no per-server key directory");
    let docker = swarm::connect().await;
    for s in secrets {
        let _ = docker.delete_secret(&s.docker_name).await;
    }
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_server_never_lends_its_engine_to_another_collective() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = RefusingProxy::start(dir.path(), "/info");
    let proxy_path = proxy.path.display().to_string();
    let missing = dir.path().join("nothing-here.sock").display().to_string();
    let w = wall(|c| {
        c.local_engines.insert(proxy_path.clone(), vec!["*".into()]);
        c.local_engines.insert(missing.clone(), vec!["*".into()]);
    })
    .await;
    // collective-a's engine answers enough to be connected to, then fails the check.
    let e = w.alice.call::<ServerView>("add_server", &add_unix(A, "flaky", &proxy_path)).await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("refused by the test"), "{}", e.body);
    // collective-b adds its own server (here: one that cannot be reached). It must fail: the
    // engine collective-a named must not answer for it, whatever row id the server gets.
    let e = w.erin.call::<ServerView>("add_server", &add_unix(B, "mine", &missing)).await.unwrap_err();
    assert_eq!(e.status, 422, "collective-b's server is not collective-a's engine: {}", e.body);
    assert!(e.body.contains("unreachable"), "{}", e.body);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM servers").await, 0);
    assert!(w.app.state.dockers.lock().await.is_empty(), "failed servers leave no client behind");
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_collectives_stack_is_out_of_reach_of_logs_and_run() {
    let w = wall(|_| {}).await;
    w.alice.call::<ServerView>("add_server", &add_unix(A, "local", swarm::SOCKET)).await.unwrap();
    w.erin.call::<ServerView>("add_server", &add_unix(B, "local", swarm::SOCKET)).await.unwrap();
    register_fixture(&w, "hello").await;
    // collective-a runs `<x>.example.org` (stack <x>_example_org, service <x>_example_org_app);
    // collective-b's app `<x>.example` has stack <x>_example, a prefix of collective-a's.
    let x = unique("p");
    let a_domain = format!("{x}.example.org");
    let b_domain = format!("{x}.example");
    let a_app: AppSummary = w
        .carol
        .call(
            "create_app",
            &[("slug", A), ("server", "local"), ("recipe", "hello"), ("domain", &a_domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    w.carol.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", A), ("domain", &a_domain)]).await.unwrap();
    let job: JobSummary =
        w.carol.call("start_job", &[("slug", A), ("domain", &a_domain), ("kind", "deploy")]).await.unwrap();
    let (_, state, result) = w.carol.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "{result}");
    w.erin
        .call::<AppSummary>(
            "create_app",
            &[("slug", B), ("server", "local"), ("recipe", "hello"), ("domain", &b_domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    // collective-a's own operator reads its logs.
    let ok = w.carol.get(&format!("/c/{A}/apps/{a_domain}/logs?service=app")).await;
    assert_eq!(ok.status(), 200);
    // collective-b's admin names collective-a's service through the common prefix: not found.
    for service in ["org_app".to_string(), format!("{}_app", a_app.stack_name)] {
        let r = w.erin.get(&format!("/c/{B}/apps/{b_domain}/logs?service={service}")).await;
        assert_eq!(r.status(), 404, "logs of {service}: {}", r.text().await.unwrap());
        let r = w
            .erin
            .post_form(
                &format!("/c/{B}/apps/{b_domain}/run"),
                &[("service", &service), ("command", "cat /run/secrets/db_password")],
            )
            .await;
        assert_eq!(r.status(), 404, "run in {service}: {}", r.text().await.unwrap());
    }
    assert_eq!(w.app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'app.run'").await, 0);
    let docker = swarm::connect().await;
    swarm::remove_stack(&docker, &a_app.stack_name).await;
    for s in docker.list_secrets(None::<bollard::query_parameters::ListSecretsOptions>).await.unwrap() {
        if let Some(name) = s.spec.and_then(|s| s.name) {
            if name.starts_with(&format!("{}_", a_app.stack_name)) {
                let _ = docker.delete_secret(&name).await;
            }
        }
    }
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_end_when_their_mapping_or_provider_collective_goes() {
    let w = wall(|_| {}).await;
    // carol is operator of collective-a through her provider's groups, with a session and a token.
    let token: CreatedApiToken =
        w.carol.call("create_api_token", &[("name", "ci"), ("collective", A), ("role", "operator")]).await.unwrap();
    let client = reqwest::Client::new();
    let with_token = |path: &str| client.get(format!("{}{path}", w.app.base)).bearer_auth(&token.token.0).send();
    assert_eq!(with_token(&format!("/api/v1/collectives/{A}/apps")).await.unwrap().status(), 200);
    let mappings: CollectiveDetail = w.fed.call("get_collective", &[("slug", A)]).await.unwrap();
    let operators = mappings.group_mappings.iter().find(|m| m.value == "collective-a-operators").unwrap().id;
    // The mapping goes: her role ends now, for the session and the token, before any sign-in.
    w.alice.call::<()>("remove_group_mapping", &[("slug", A), ("mapping_id", &operators.to_string())]).await.unwrap();
    let e = w.carol.call::<Vec<AppSummary>>("list_apps", &[("slug", A)]).await.unwrap_err();
    assert_eq!(e.status, 404, "{}", e.body);
    assert_eq!(with_token(&format!("/api/v1/collectives/{A}/apps")).await.unwrap().status(), 404);
    // alice (admins and members groups) keeps hers; a provider that stops serving the
    // collective ends it too.
    assert!(w.alice.call::<Vec<AppSummary>>("list_apps", &[("slug", A)]).await.is_ok());
    w.fed
        .call::<ProviderAdmin>(
            "set_provider_collectives",
            &[("provider_id", &w.provider_a.to_string()), ("collectives", B)],
        )
        .await
        .unwrap();
    let e = w.alice.call::<Vec<AppSummary>>("list_apps", &[("slug", A)]).await.unwrap_err();
    assert_eq!(e.status, 404, "{}", e.body);
    let removed: i64 = w.app.count("SELECT COUNT(*) FROM memberships WHERE source = 'idp'").await;
    assert_eq!(removed, 0, "no role from the provider's groups is left");
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_engine_holds_no_write_lock() {
    let w = wall(|_| {}).await;
    let hole = BlackHole::start().await;
    let address = hole.addr.to_string();
    let adding = {
        let alice = w.alice.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = alice
                .call::<ServerView>(
                    "add_server",
                    &[
                        ("slug", A),
                        ("name", "hangs"),
                        ("kind", "tcp"),
                        ("address", &address),
                        ("tls_ca", &tls_file("ca.pem")),
                        ("tls_cert", &tls_file("cert.pem")),
                        ("private_key", &tls_file("key.pem")),
                    ],
                )
                .await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // While the engine hangs, other writes of the same Potluck go through at once.
    for i in 0..3 {
        let started = Instant::now();
        w.alice
            .call::<CollectiveSummary>(
                "update_collective",
                &[("slug", A), ("name", "Collective A"), ("description", &format!("write {i}"))],
            )
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3), "a write waited {:?}", started.elapsed());
    }
    let (r, took) = adding.await.unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("did not answer"), "{}", e.body);
    assert!(took < Duration::from_secs(60), "bounded: {took:?}");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM servers").await, 0);
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_from_paths_and_private_recipes() {
    let w = wall(|_| {}).await;
    // A federation admin registers from a path, but never from inside the data directory.
    register_fixture(&w, "hello").await;
    let clone = w.app.dir.path().join("data/recipes/1.git");
    assert!(clone.is_dir(), "the first recipe's clone");
    let e = w
        .fed
        .call::<RecipeSummary>("register_recipe", &[("repository", &clone.display().to_string()), ("name", "copy")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("data directory"), "{}", e.body);

    // A private recipe (registered with credentials) by collective-a's maintainers…
    let mapping_dave = [
        ("slug", A),
        ("provider_id", &w.provider_a.to_string()),
        ("value", "collective-a-maintainers"),
        ("role", "maintainer"),
    ];
    w.fed.call::<GroupMapping>("add_group_mapping", &mapping_dave).await.unwrap();
    let dave = w.app.login(w.provider_a, "dave", "dave-pw").await;
    let (_, remote) = publish(&fixture_recipe("hello"), w.dir.path(), "secret-hello");
    let mut form = over_ssh(&remote);
    form.push(("collective", A.into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    dave.call::<RecipeSummary>("register_recipe", &form).await.unwrap();
    let opened: ReleaseProposalDetail = dave
        .call("open_release", &[("recipe", "secret-hello"), ("notes", "Private."), ("version", "1.1.0+2.0")])
        .await
        .unwrap();
    // …is visible to its maintainers and collective-a, not to collective-b.
    let listed = |b: &Browser| {
        let b = b.clone();
        async move {
            b.call::<Vec<RecipeSummary>>("list_recipes", &[])
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
        }
    };
    assert!(listed(&dave).await.contains(&"secret-hello".to_string()));
    assert!(listed(&w.carol).await.contains(&"secret-hello".to_string()), "collective-a's operator sees it");
    assert!(!listed(&w.erin).await.contains(&"secret-hello".to_string()), "collective-b does not");
    assert!(listed(&w.erin).await.contains(&"hello".to_string()), "public recipes are public");
    for (endpoint, args) in [
        ("get_recipe", vec![("name", "secret-hello".to_string())]),
        ("get_recipe_version", vec![("name", "secret-hello".to_string()), ("tag", "1.0.0+2.0".to_string())]),
        ("list_releases", vec![("recipe", "secret-hello".to_string())]),
        ("get_release", vec![("id", opened.summary.id.to_string())]),
    ] {
        let form: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let e = w.erin.call::<serde_json::Value>(endpoint, &form).await.unwrap_err();
        assert_eq!(e.status, 404, "{endpoint} by collective-b: {}", e.body);
    }
    // collective-b cannot start running it either…
    w.erin.call::<ServerView>("add_server", &add_unix(B, "local", swarm::SOCKET)).await.unwrap();
    let e = w
        .erin
        .call::<AppSummary>(
            "create_app",
            &[("slug", B), ("server", "local"), ("recipe", "secret-hello"), ("domain", "s.example.org")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 404, "{}", e.body);
    // …and it is not in the public catalogue.
    let catalogue: serde_json::Value = w.app.browser().get("/catalogue.json").await.json().await.unwrap();
    assert!(catalogue.get("secret-hello").is_none() && catalogue.get("hello").is_some());
    w.app.stop().await;
}
