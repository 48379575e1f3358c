//! Notifications against real parts, on SQLite and PostgreSQL: a webhook receiver this test
//! starts (axum on a port of its own) that checks each request's HMAC signature and fails the
//! first delivery so that it is retried; the harness's SMTP server (aiosmtpd: STARTTLS with the
//! harness's CA, one account) receiving email; a failed deploy, an app whose container is killed
//! while no job runs, and a server whose engine goes away, each announced once.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::swarm::{self, EngineProxy};
use potluck_tests::{required_env, Browser, TestApp};
use serde_json::Value;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SLUG: &str = "collective-a";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    headers: HeaderMap,
    body: String,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub(crate) fn name(&self) -> String {
        self.json()["name"].as_str().unwrap_or_default().to_string()
    }

    /// Checks `Potluck-Signature` against the body with the channel's key, as a receiver would.
    fn assert_signed_by(&self, key: &str) {
        let header = self.headers.get("potluck-signature").expect("a signature header").to_str().unwrap();
        let (t, v1) = header.split_once(',').expect("t=…,v1=…");
        let t = t.strip_prefix("t=").unwrap();
        let v1 = v1.strip_prefix("v1=").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{t}.{}", self.body).as_bytes());
        mac.verify_slice(&hex::decode(v1).unwrap()).expect("the signature matches the body under the key");
        let sent = t.parse::<i64>().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - sent).abs() < 120, "the signed time is now");
    }
}

/// A real HTTP endpoint: records every request and answers with the statuses given in turn
/// (the last one from then on).
pub(crate) struct Receiver {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Received>>>,
    _server: tokio::task::JoinHandle<()>,
}

type Shared = (Arc<Mutex<Vec<Received>>>, Arc<Vec<u16>>);

async fn hook(State((got, answers)): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let mut got = got.lock().unwrap();
    got.push(Received { headers, body });
    let answer = answers.get(got.len() - 1).or(answers.last()).copied().unwrap_or(200);
    StatusCode::from_u16(answer).unwrap()
}

impl Receiver {
    pub(crate) async fn start(answers: &[u16]) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Default::default();
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state((got.clone(), Arc::new(answers.to_vec())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Receiver { url, got, _server: server }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests came (up to `secs`).
    pub(crate) async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        for _ in 0..secs * 10 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{n} requests expected in {secs} s, got {:?}", self.received());
    }
}

async fn wait_for_mail(address: &str) -> Vec<Value> {
    for _ in 0..300 {
        let got = potluck_tests::mail_to(address, 0.0);
        if !got.is_empty() {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no email reached {address}");
}

async fn spawn(adjust: impl FnOnce(&mut potluck_server::config::Config)) -> (TestApp, Browser) {
    let app = TestApp::spawn_with(|c| {
        c.notify_hosts_allow = vec!["127.0.0.1".into()];
        c.notify_retry_secs = 0.3;
        c.notify_attempts = 4;
        c.notify_after_job_secs = 1;
        adjust(c);
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
    (app, admin)
}

/// The harness's engine as server `local`, a fixture recipe registered, and an app of it.
async fn app_on_the_swarm(admin: &Browser, recipe: &str, version: &str) -> (AppSummary, tempfile::TempDir) {
    admin
        .call::<ServerView>(
            "add_server",
            &[("slug", SLUG), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    let recipes = tempfile::tempdir().unwrap();
    let (_, remote) = publish(&fixture_recipe(recipe), recipes.path(), recipe);
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    let domain = format!("{}.example.org", unique(recipe));
    let created: AppSummary = admin
        .call(
            "create_app",
            &[("slug", SLUG), ("server", "local"), ("recipe", recipe), ("domain", &domain), ("version", version)],
        )
        .await
        .unwrap();
    (created, recipes)
}

pub(crate) async fn add_webhook(admin: &Browser, name: &str, url: &str, events: &[&str]) -> AddedChannel {
    let mut form = vec![("slug", SLUG), ("name", name), ("kind", "webhook"), ("target", url)];
    let keys: Vec<String> = (0..events.len()).map(|i| format!("events[{i}]")).collect();
    for (k, e) in keys.iter().zip(events) {
        form.push((k.as_str(), e));
    }
    admin.call("add_notification_channel", &form).await.unwrap_or_else(|e| panic!("add channel: {e:?}"))
}

async fn deliveries(admin: &Browser) -> Vec<DeliveryView> {
    admin.call::<CollectiveNotifications>("list_notifications", &[("slug", SLUG)]).await.unwrap().deliveries
}

/// Waits until every delivery of the collective has ended (delivered or failed).
async fn settled(admin: &Browser) -> Vec<DeliveryView> {
    for _ in 0..300 {
        let list = deliveries(admin).await;
        if list.iter().all(|d| d.state == "delivered" || d.state == "failed") {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deliveries still on their way: {:?}", deliveries(admin).await);
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_reaches_a_signed_webhook_after_a_retry_and_an_email_over_starttls() {
    let (app, admin) = spawn(|_| {}).await;
    let receiver = Receiver::start(&[500, 200]).await;

    // Where a webhook may point: https, or http to a host the configuration allows; never the
    // Potluck machine or a link-local address by another name; no credentials in the URL.
    for (bad, why) in [
        ("http://example.org/hook", "use https"),
        ("https://localhost:9/hook", "may not be there"),
        ("https://169.254.169.254/latest/meta-data", "may not be there"),
        ("https://user:pw@example.org/hook", "no credentials"),
        ("ftp://example.org/hook", "https URL"),
    ] {
        let refused = admin
            .call::<AddedChannel>(
                "add_notification_channel",
                &[
                    ("slug", SLUG),
                    ("name", "bad"),
                    ("kind", "webhook"),
                    ("target", bad),
                    ("events[0]", "deploy_failed"),
                ],
            )
            .await
            .unwrap_err();
        assert_eq!(refused.status, 422, "{bad}: {}", refused.body);
        assert!(refused.body.contains(why), "{bad}: {}", refused.body);
    }
    let no_events = admin
        .call::<AddedChannel>(
            "add_notification_channel",
            &[("slug", SLUG), ("name", "quiet"), ("kind", "webhook"), ("target", &receiver.url)],
        )
        .await
        .unwrap_err();
    assert_eq!(no_events.status, 422, "{}", no_events.body);

    let hook = add_webhook(&admin, "ops hook", &receiver.url, &["deploy_failed", "backup_failed"]).await;
    let key = hook.signing_key.clone().expect("a webhook's signing key is shown once").0;
    assert_eq!(hook.channel.target, "http://127.0.0.1/…", "the URL itself is not shown");
    assert_eq!(hook.channel.events, [NotifyEvent::DeployFailed, NotifyEvent::BackupFailed]);
    let twice = admin
        .call::<AddedChannel>(
            "add_notification_channel",
            &[
                ("slug", SLUG),
                ("name", "ops hook"),
                ("kind", "webhook"),
                ("target", &receiver.url),
                ("events[0]", "deploy_failed"),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(twice.status, 409);

    // The federation's relay: STARTTLS against the harness's CA, an account, a sender.
    let (user, password) = (required_env("POTLUCK_TEST_SMTP_USER"), required_env("POTLUCK_TEST_SMTP_PASSWORD"));
    let smtp = required_env("POTLUCK_TEST_SMTP");
    let (host, port) = smtp.split_once(':').unwrap();
    let ca = std::fs::read_to_string(format!("{}/ca.pem", required_env("POTLUCK_TEST_DOCKER_TLS_DIR"))).unwrap();
    let plain = admin
        .call::<MailSettingsView>(
            "set_mail_relay",
            &[("host", "smtp.example.org"), ("port", "25"), ("security", "none"), ("sender", "potluck@example.org")],
        )
        .await
        .unwrap_err();
    assert_eq!(plain.status, 422, "no TLS is only for allowed hosts: {}", plain.body);
    let relay: MailSettingsView = admin
        .call(
            "set_mail_relay",
            &[
                ("host", host),
                ("port", port),
                ("security", "starttls"),
                ("username", &user),
                ("password", &password),
                ("sender", "Potluck <potluck@example.org>"),
                ("ca_pem", &ca),
            ],
        )
        .await
        .unwrap();
    assert!(relay.has_password && relay.has_ca);
    assert!(!format!("{relay:?}").contains(&password));
    let address = format!("{}@example.org", unique("ops"));
    let mail: AddedChannel = admin
        .call(
            "add_notification_channel",
            &[
                ("slug", SLUG),
                ("name", "ops mail"),
                ("kind", "email"),
                ("target", &address),
                ("events[0]", "deploy_failed"),
            ],
        )
        .await
        .unwrap();
    assert!(mail.signing_key.is_none());
    assert_eq!(mail.channel.target, address);

    // Nothing of the sealed values is stored in the clear.
    let clear = format!(
        "SELECT COUNT(*) FROM notification_channels WHERE CAST(target_enc AS TEXT) LIKE '%127.0.0.1%' OR CAST(secret_enc AS TEXT) LIKE '%{key}%'"
    );
    assert_eq!(app.count(&clear).await, 0);
    let clear = format!("SELECT COUNT(*) FROM mail_settings WHERE CAST(password_enc AS TEXT) LIKE '%{password}%'");
    assert_eq!(app.count(&clear).await, 0);

    // A deploy that fails: the collective's channels hear it.
    let (created, _recipes) = app_on_the_swarm(&admin, "faulty", "").await;
    let domain = created.domain.clone();
    let _stack = swarm::StackGuard(created.stack_name.clone());
    let job: JobSummary =
        admin.call("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "deploy")]).await.unwrap();
    let (_, state, _) = admin.watch_job(job.id).await;
    assert_eq!(state, "failed");

    // The webhook answered 500 first: the same delivery came again, and was then delivered.
    let got = receiver.wait_for(2, 30).await;
    for r in &got {
        r.assert_signed_by(&key);
        let body = r.json();
        assert_eq!(body["event"], "deploy_failed");
        assert_eq!(body["collective"], SLUG);
        assert_eq!(body["data"]["app"], domain.as_str());
        assert_eq!(body["data"]["job_id"], job.id.0);
        assert_eq!(body["path"], format!("/jobs/{}", job.id));
        assert_eq!(r.headers.get("potluck-event").unwrap(), "deploy_failed");
    }
    assert_eq!(
        got[0].headers.get("potluck-delivery"),
        got[1].headers.get("potluck-delivery"),
        "a retry is the same delivery"
    );
    assert_eq!(got[0].json()["id"], got[1].json()["id"]);

    // The email went through STARTTLS, signed in with the relay's account.
    let mails = wait_for_mail(&address).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["login"], user.as_str());
    assert_eq!(mails[0]["tls"], true);
    let data = mails[0]["data"].as_str().unwrap();
    assert!(data.contains(&format!("Subject: [Potluck] deploy of {domain} failed")), "{data}");
    assert!(data.contains(&format!("/jobs/{}", job.id)), "the email links the job: {data}");

    // The log: both delivered, the webhook after two attempts with the answers it got.
    let log = settled(&admin).await;
    let of = |channel: &str| log.iter().find(|d| d.channel == channel).cloned().unwrap();
    let webhook = of("ops hook");
    assert_eq!((webhook.state.as_str(), webhook.attempts, webhook.last_code), ("delivered", 2, Some(200)));
    let email = of("ops mail");
    assert_eq!((email.state.as_str(), email.attempts, email.last_code), ("delivered", 1, Some(250)));
    assert_eq!(log.len(), 2, "one delivery per channel: {log:?}");
    let page: CollectiveNotifications = admin.call("list_notifications", &[("slug", SLUG)]).await.unwrap();
    assert!(!format!("{page:?}").contains(&key), "the signing key is never shown again");
    assert!(!format!("{page:?}").contains("/hook"), "the URL is never shown");

    // "Send a test": one attempt now, its answer shown.
    let tested: DeliveryView = admin
        .call("test_notification_channel", &[("slug", SLUG), ("channel", &hook.channel.id.to_string())])
        .await
        .unwrap();
    assert_eq!((tested.state.as_str(), tested.last_code), ("delivered", Some(200)));
    assert_eq!(receiver.received().last().unwrap().name(), "test");

    // An endpoint that keeps failing is tried notify_attempts times, then given up; one that
    // refuses (a 4xx) is not tried again.
    let down = Receiver::start(&[503]).await;
    let gone = Receiver::start(&[410]).await;
    add_webhook(&admin, "down", &down.url, &["deploy_failed"]).await;
    add_webhook(&admin, "gone", &gone.url, &["deploy_failed"]).await;
    let job: JobSummary =
        admin.call("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "deploy")]).await.unwrap();
    let (_, state, _) = admin.watch_job(job.id).await;
    assert_eq!(state, "failed");
    let log = settled(&admin).await;
    let latest = |channel: &str| log.iter().find(|d| d.channel == channel).cloned().unwrap();
    let d = latest("down");
    assert_eq!((d.state.as_str(), d.attempts, d.last_code), ("failed", 4, Some(503)), "{d:?}");
    assert_eq!(down.received().len(), 4);
    let g = latest("gone");
    assert_eq!((g.state.as_str(), g.attempts, g.last_code), ("failed", 1, Some(410)), "{g:?}");
    assert_eq!(gone.received().len(), 1);

    // A collective keeps at most 20 channels (each event is a delivery per channel).
    let mut n = 4;
    while n < 20 {
        let name = format!("extra {n}");
        admin
            .call::<AddedChannel>(
                "add_notification_channel",
                &[
                    ("slug", SLUG),
                    ("name", &name),
                    ("kind", "email"),
                    ("target", "x@example.org"),
                    ("events[0]", "drill_failed"),
                ],
            )
            .await
            .unwrap();
        n += 1;
    }
    let full = admin
        .call::<AddedChannel>(
            "add_notification_channel",
            &[
                ("slug", SLUG),
                ("name", "one too many"),
                ("kind", "email"),
                ("target", "x@example.org"),
                ("events[0]", "drill_failed"),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(full.status, 409, "{}", full.body);

    // The log keeps notify_log_days: an older delivery is forgotten, a recent one kept.
    let old = potluck_server::adapters::db::now_ms() - 31 * 86_400_000;
    app.exec(&format!(
        "UPDATE notification_deliveries SET finished_at = {old} WHERE id = (SELECT MIN(id) FROM notification_deliveries)"
    ))
    .await;
    let kept = app.count("SELECT COUNT(*) FROM notification_deliveries").await;
    assert_eq!(potluck_server::domain::notify::deliver::prune(&app.state).await.unwrap(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM notification_deliveries").await, kept - 1);

    // Removing a channel removes its log; every change is in the audit log.
    admin
        .call::<()>("remove_notification_channel", &[("slug", SLUG), ("channel", &hook.channel.id.to_string())])
        .await
        .unwrap();
    assert!(deliveries(&admin).await.iter().all(|d| d.channel != "ops hook"));
    let actions = app.texts("SELECT action FROM audit_events ORDER BY seq").await;
    for a in ["notification_channel.add", "mail_relay.set", "notification_channel.test", "notification_channel.remove"]
    {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_whose_container_is_killed_is_announced_once_and_again_when_it_runs() {
    let (app, admin) = spawn(|c| c.notify_recovery_secs = 3.0).await;
    let receiver = Receiver::start(&[200]).await;
    add_webhook(&admin, "health", &receiver.url, &["app_unhealthy"]).await;
    let (created, _recipes) = app_on_the_swarm(&admin, "hello", "0.1.0+1.0").await;
    let domain = created.domain.clone();
    let stack = created.stack_name.clone();
    let _stack = swarm::StackGuard(stack.clone());
    admin.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let job: JobSummary =
        admin.call("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "deploy")]).await.unwrap();
    let (_, state, result) = admin.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "{result}");
    // A deploy of Potluck's is no news, however its containers come and go.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());

    // Killed behind Potluck's back: the swarm restarts it; the channel hears of it once.
    swarm::docker(&["kill", &swarm::container(&stack, "app")]);
    let got = receiver.wait_for(1, 30).await;
    assert_eq!(got[0].name(), "app_unhealthy");
    // The apps list shows it failing, with the reason.
    let listed: Vec<AppSummary> = admin.call("list_apps", &[("slug", SLUG)]).await.unwrap();
    assert!(listed[0].unhealthy.as_deref().is_some_and(|r| r.contains("137")), "{listed:?}");
    let body = got[0].json();
    assert_eq!(body["data"]["app"], domain.as_str());
    assert!(body["text"].as_str().unwrap().contains("exited with code 137"), "{body}");
    // Killed again while still unhealthy: the same episode, no second notice.
    swarm::docker(&["kill", &swarm::container(&stack, "app")]);
    // Then it runs whole and quiet for notify_recovery_secs: it is announced as running again.
    let got = receiver.wait_for(2, 60).await;
    assert_eq!(got[1].name(), "app_recovered", "{:?}", got.iter().map(Received::name).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let names: Vec<String> = receiver.received().iter().map(Received::name).collect();
    assert_eq!(names, ["app_unhealthy", "app_recovered"], "exactly one notice each");
    let listed: Vec<AppSummary> = admin.call("list_apps", &[("slug", SLUG)]).await.unwrap();
    assert_eq!(listed[0].unhealthy, None);
    assert_eq!(app.count("SELECT COUNT(*) FROM apps WHERE unhealthy_since IS NOT NULL").await, 0);
    swarm::remove_stack_and_secrets(&swarm::connect().await, &stack).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_engine_goes_away_is_announced_once_and_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = EngineProxy::start(dir.path());
    let socket = proxy.path.display().to_string();
    let (app, admin) = spawn(|c| {
        c.notify_unreachable_secs = 1;
        c.local_engines.insert(socket.clone(), vec!["*".into()]);
    })
    .await;
    let receiver = Receiver::start(&[200]).await;
    add_webhook(&admin, "servers", &receiver.url, &["server_unreachable"]).await;
    admin
        .call::<ServerView>("add_server", &[("slug", SLUG), ("name", "edge"), ("kind", "unix"), ("address", &socket)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    let got = receiver.wait_for(1, 30).await;
    assert_eq!(got[0].name(), "server_unreachable");
    assert_eq!(got[0].json()["data"]["server"], "edge");
    // Back on the same socket: the monitor reconnects and says so, once.
    let _back = EngineProxy::start(dir.path());
    let got = receiver.wait_for(2, 90).await;
    assert_eq!(got[1].name(), "server_reachable");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let names: Vec<String> = receiver.received().iter().map(Received::name).collect();
    assert_eq!(names, ["server_unreachable", "server_reachable"]);
    app.stop().await;
}
