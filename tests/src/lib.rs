//! The integration-test harness: a real Potluck router on port 0 over a real database (a SQLite
//! file, or a fresh PostgreSQL database when `POTLUCK_TEST_DATABASE=postgres`), real OpenID
//! Providers (tests/idp, started by scripts/test-services.sh), and a cookie-keeping HTTP client
//! that signs in the way a browser does.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test harness: a failed step is a failed test")]

pub mod process;
pub mod recipes;
pub mod swarm;

use potluck_app::error::ApiError;
use potluck_server::config::Config;
use potluck_server::state::SharedState;
use potluck_server::transport::serve::{self, Running};
use reqwest::cookie::Jar;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;

/// A service address the suites need; without it the suite fails loudly (never skips).
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suites with `make test`, which starts the services they need (scripts/test-services.sh) and sets it")
    })
}

/// A new, empty bucket on the harness's S3 server (`POTLUCK_TEST_S3`): its endpoint and name.
/// The keys the tests sign with are any: moto takes every signature.
pub fn new_s3_bucket(hint: &str) -> (String, String) {
    let endpoint = required_env("POTLUCK_TEST_S3");
    let bucket = format!("{hint}-{}", uuid::Uuid::new_v4().simple());
    let bucket = bucket[..bucket.len().min(63)].to_string();
    let out = std::process::Command::new("curl")
        .args(["-fsS", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "making bucket {bucket}: {}", String::from_utf8_lossy(&out.stderr));
    (endpoint, bucket)
}

/// Keys for the harness's S3 server.
pub const S3_KEYS: [(&str, &str); 2] =
    [("AWS_ACCESS_KEY_ID", "potluck-test"), ("AWS_SECRET_ACCESS_KEY", "potluck-test-secret")];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Which database this run of the suite uses (`make test` runs it once per backend).
pub fn backend() -> Backend {
    match std::env::var("POTLUCK_TEST_DATABASE").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("POTLUCK_TEST_DATABASE={other}: use sqlite or postgres"),
    }
}

/// The workspace root (tests run with the package directory as cwd).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap()
}

/// The `potluck` binary built by `make test` before the suites run.
pub fn potluck_bin() -> PathBuf {
    std::env::var_os("POTLUCK_BIN").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target/debug/potluck"))
}

/// A new, empty database on the harness's PostgreSQL; answers its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Executor;
    let admin_url = required_env("POTLUCK_TEST_POSTGRES_URL");
    let name = format!("potluck_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await.unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// One Potluck instance with its own database and data directory.
pub struct TestApp {
    pub base: String,
    pub state: SharedState,
    pub database_url: String,
    pub dir: TempDir,
    config: Config,
    running: Option<Running>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let database_url = match backend() {
            Backend::Sqlite => format!("sqlite://{}/potluck.db", dir.path().display()),
            Backend::Postgres => fresh_postgres_database().await,
        };
        let mut config = Config {
            database_url: database_url.clone(),
            listen: addr,
            public_url: Some(url::Url::parse(&base).unwrap()),
            data_dir: dir.path().join("data"),
            site_root: workspace_root().join("target/site"),
            login_attempts_per_minute: 10_000,
            // Short, so that a job whose Potluck stopped runs again within seconds.
            lease_secs: 3.0,
            // The harness's engine, granted to every collective of this instance (the tenant
            // wall's tests grant it to one collective instead).
            local_engines: [(swarm::SOCKET.to_string(), vec!["*".to_string()])].into_iter().collect(),
            ..Config::default()
        };
        adjust(&mut config);
        potluck_server::telemetry::init("text");
        let state = serve::prepare(config.clone()).await.unwrap();
        let running = serve::start(state.clone(), listener).await.unwrap();
        TestApp { base, state, database_url, dir, config, running: Some(running) }
    }

    /// Stops this Potluck as a crash would leave things (jobs mid-way, nothing cleaned up) and
    /// starts a new one on the same address, database and data directory.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        self.state.db.close().await;
        let state = serve::prepare(self.config.clone()).await.unwrap();
        let mut listener = None;
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(self.config.listen).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        let listener = listener.expect("the old address is free again");
        self.running = Some(serve::start(state.clone(), listener).await.unwrap());
        self.state = state;
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// A browser signed in as a new federation admin through the bootstrap link.
    pub async fn bootstrap_admin(&self) -> Browser {
        let link = potluck_server::domain::identity::bootstrap::create_link(&self.state.db, &self.base).await.unwrap();
        let token = link.rsplit('/').next().unwrap().to_string();
        let b = self.browser();
        let r = b.post_form("/auth/bootstrap", &[("token", &token)]).await;
        assert_eq!(r.status(), 303, "bootstrap claim");
        assert_eq!(location(&r), "/admin/providers");
        b
    }

    /// Registers Potluck at `idp` (dynamic client registration, as an IdP admin would by hand)
    /// and adds the provider through the admin's server function. Returns the provider id.
    pub async fn add_provider(
        &self,
        admin: &Browser,
        idp: &Idp,
        collectives: &[&str],
    ) -> potluck_app::model::ProviderId {
        let (client_id, secret) = idp.register_client(&self.base).await;
        self.add_provider_with(admin, idp, &client_id, &secret, collectives).await.unwrap().id
    }

    pub async fn add_provider_with(
        &self,
        admin: &Browser,
        idp: &Idp,
        client_id: &str,
        secret: &str,
        collectives: &[&str],
    ) -> Result<potluck_app::model::ProviderAdmin, Failure> {
        admin
            .call(
                "add_provider",
                &[
                    ("display_name", idp.display_name),
                    ("issuer_url", &idp.issuer),
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("groups_claim", "groups"),
                    ("collectives", &collectives.join(",")),
                ],
            )
            .await
    }

    /// A new browser signed in as `username` at `idp` through the real login page.
    pub async fn login(&self, provider_id: potluck_app::model::ProviderId, username: &str, password: &str) -> Browser {
        let b = self.browser();
        let end = b.sign_in(provider_id, username, password).await;
        assert!(!end.contains("/login?error="), "sign-in of {username} failed: {end}");
        b
    }

    /// Runs a SQL query returning one text column, for assertions on stored state.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        use sqlx::Row;
        let rows = sqlx::query(sql).fetch_all(self.state.db.pool()).await.unwrap();
        rows.iter().map(|r| r.try_get::<Option<String>, _>(0).unwrap().unwrap_or_default()).collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(sql).fetch_one(self.state.db.pool()).await.unwrap().try_get::<i64, _>(0).unwrap()
    }

    pub async fn exec(&self, sql: &str) {
        sqlx::query(sql).execute(self.state.db.pool()).await.unwrap();
    }

    /// The configuration this instance runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A second Potluck on this one's database, with the same secret key and a data directory
    /// of its own (as on another machine), on an address of its own: a replica, as several
    /// processes behind a proxy run.
    pub async fn replica(&self) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let dir = tempfile::tempdir().unwrap();
        let key = std::fs::read_to_string(self.config.data_dir.join("secret.key")).expect("the first one's key");
        // Replicas behind one proxy share the address people use (and so its origin).
        let config = Config {
            listen: addr,
            data_dir: dir.path().join("data"),
            secret_key: Some(key.trim().to_string()),
            ..self.config.clone()
        };
        let state = serve::prepare(config.clone()).await.unwrap();
        let running = serve::start(state.clone(), listener).await.unwrap();
        TestApp { base, state, database_url: self.database_url.clone(), dir, config, running: Some(running) }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        self.state.db.close().await;
    }
}

/// A test identity provider (tests/idp).
pub struct Idp {
    pub issuer: String,
    pub display_name: &'static str,
}

impl Idp {
    pub fn a() -> Idp {
        Idp { issuer: required_env("POTLUCK_TEST_IDP_A"), display_name: "Collective A SSO" }
    }

    pub fn b() -> Idp {
        Idp { issuer: required_env("POTLUCK_TEST_IDP_B"), display_name: "Collective B SSO" }
    }

    /// Dynamic client registration: a confidential client for one Potluck instance.
    pub async fn register_client(&self, base: &str) -> (String, String) {
        let body = serde_json::json!({
            "redirect_uris": [format!("{base}/auth/callback")],
            "post_logout_redirect_uris": [format!("{base}/")],
            "client_name": "potluck-test",
        });
        let r: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/reg", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        (r["client_id"].as_str().unwrap().to_string(), r["client_secret"].as_str().unwrap().to_string())
    }

    /// Changes a user's groups at the provider (what an IdP admin does).
    pub async fn set_groups(&self, username: &str, groups: &[&str]) {
        reqwest::Client::new()
            .post(format!("{}/_test/groups", self.issuer))
            .json(&serde_json::json!({ "username": username, "groups": groups }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

/// A failed call: the HTTP status and the `ApiError` the body carried.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub error: Option<ApiError>,
    pub body: String,
}

/// An HTTP client with a cookie jar that does not follow redirects by itself.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let jar = Arc::new(Jar::default());
        // A browser says where its requests come from; Potluck refuses cookie-carrying writes
        // that do not.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::ORIGIN,
            reqwest::header::HeaderValue::from_str(base.trim_end_matches('/')).unwrap(),
        );
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            // A hung request fails the test with its URL instead of hanging the suite.
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        Browser { base: base.to_string(), client, jar }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// Calls a server function the way the pages do (form-encoded POST, JSON answer).
    pub async fn call<T: DeserializeOwned>(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<T, Failure> {
        let r = self
            .client
            .post(format!("{}/api/fn/{endpoint}", self.base))
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        if (200..300).contains(&status) {
            Ok(serde_json::from_str(&body).unwrap_or_else(|e| panic!("{endpoint}: cannot decode {body}: {e}")))
        } else {
            Err(Failure { status, error: serde_json::from_str(&body).ok(), body })
        }
    }

    /// Watches a job through its Server-Sent Events until it ends, as the job page does.
    /// Returns the progress events in order and the end (state, result).
    pub async fn watch_job(
        &self,
        id: potluck_app::model::JobId,
    ) -> (Vec<potluck_app::model::JobEventView>, String, String) {
        use futures_util::StreamExt;
        let r = self
            .client
            .get(format!("{}/jobs/{id}/events", self.base))
            .timeout(std::time::Duration::from_secs(300))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "job {id} events");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let mut stream = r.bytes_stream();
        let mut buf = String::new();
        let mut events = Vec::new();
        while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            for (kind, data) in sse_events(&mut buf) {
                match kind.as_str() {
                    "progress" => events.push(serde_json::from_str(&data).unwrap()),
                    "end" => {
                        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
                        return (events, v["state"].as_str().unwrap().into(), v["result"].as_str().unwrap().into());
                    }
                    _ => {}
                }
            }
        }
        panic!("the event stream of job {id} closed before the job ended: {events:?}");
    }

    /// Opens a live stream (Server-Sent Events) of a page, as its script does.
    pub async fn live(&self, path: &str) -> LiveStream {
        let r = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"), "{path}");
        LiveStream { path: path.to_string(), body: Box::pin(r.bytes_stream()), buf: String::new(), seen: Vec::new() }
    }

    /// Follows redirects (GET) from `r`, and forms a page submits by itself on load (as a
    /// browser with JavaScript does: the provider uses one to end a replaced session),
    /// returning the last response and its URL.
    pub async fn follow(&self, mut r: reqwest::Response) -> (reqwest::Response, String) {
        let mut url = r.url().to_string();
        let form_re = regex::Regex::new(r#"<form method="post" action="([^"]+)""#).unwrap();
        let input_re = regex::Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)""#).unwrap();
        for _ in 0..15 {
            if r.status().is_redirection() {
                let next = location(&r);
                url = r.url().join(&next).unwrap().to_string();
                r = self.client.get(&url).send().await.unwrap();
                continue;
            }
            let is_html =
                r.headers().get("content-type").is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html"));
            if !is_html {
                return (r, url);
            }
            let status = r.status();
            let page_url = r.url().clone();
            let html = r.text().await.unwrap();
            if !html.contains("forms[0].submit()") {
                let rebuilt =
                    http::Response::builder().status(status).header("content-type", "text/html").body(html).unwrap();
                return (reqwest::Response::from(rebuilt), url);
            }
            let action = form_re.captures(&html).unwrap()[1].to_string();
            let fields: Vec<(String, String)> =
                input_re.captures_iter(&html).map(|c| (c[1].to_string(), c[2].to_string())).collect();
            url = page_url.join(&action).unwrap().to_string();
            r = self.client.post(&url).form(&fields).send().await.unwrap();
        }
        panic!("too many redirects ending at {url}");
    }

    /// Signs in through the provider's real login page; returns the URL the flow ends on in
    /// Potluck (the page after sign-in, or `/login?error=…`).
    pub async fn sign_in(&self, provider_id: potluck_app::model::ProviderId, username: &str, password: &str) -> String {
        let start = self.get(&format!("/auth/login/{provider_id}")).await;
        self.complete_at_idp(start, username, password).await
    }

    /// Given the response that sends the browser to the provider, logs in there and comes back.
    pub async fn complete_at_idp(&self, start: reqwest::Response, username: &str, password: &str) -> String {
        let (page, url) = self.follow(start).await;
        if url.starts_with(&self.base) {
            return url; // Potluck answered without going to the provider (an error)
        }
        let html = page.text().await.unwrap();
        let action = regex::Regex::new(r#"action="([^"]+)""#)
            .unwrap()
            .captures(&html)
            .unwrap_or_else(|| panic!("no login form at {url}: {html}"))[1]
            .to_string();
        let post_url = url::Url::parse(&url).unwrap().join(&action).unwrap();
        let r =
            self.client.post(post_url).form(&[("username", username), ("password", password)]).send().await.unwrap();
        let (_, end) = self.follow(r).await;
        end
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = url::Url::parse(&self.base).unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().ok()?.split("; ").find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(String::from))
    }
}

/// The email the harness's SMTP server (`POTLUCK_TEST_SMTP_SPOOL`) accepted for `address` since
/// `since` (unix seconds): each as its record (`rcpt_tos`, `login`, `tls`, `data`, `received_at`).
pub fn mail_to(address: &str, since: f64) -> Vec<serde_json::Value> {
    let spool = required_env("POTLUCK_TEST_SMTP_SPOOL");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&spool).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
            let to_them = v["rcpt_tos"].as_array().is_some_and(|r| r.iter().any(|a| a == address));
            if to_them && v["received_at"].as_f64().unwrap_or_default() >= since {
                out.push(v);
            }
        }
    }
    out
}

/// Complete events at the start of `buf` (taken out of it): their `event:` name and `data:`.
fn sse_events(buf: &mut String) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block = buf[..end].to_string();
        buf.drain(..end + 2);
        let (mut kind, mut data) = (String::new(), String::new());
        for line in block.lines() {
            if let Some(k) = line.strip_prefix("event:") {
                kind = k.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
        if !kind.is_empty() {
            out.push((kind, data));
        }
    }
    out
}

type Bytes = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// A page's live stream, read event by event.
pub struct LiveStream {
    path: String,
    body: Bytes,
    buf: String,
    /// Every event so far (name, data), for the failure message.
    pub seen: Vec<(String, String)>,
}

impl LiveStream {
    /// Reads events until one named `event` satisfies `pred`, for up to `secs`.
    pub async fn until<T: DeserializeOwned>(&mut self, event: &str, secs: u64, pred: impl Fn(&T) -> bool) -> T {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            for (kind, data) in sse_events(&mut self.buf) {
                self.seen.push((kind.clone(), data.clone()));
                if kind == event {
                    let value: T = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{}: {e}: {data}", self.path));
                    if pred(&value) {
                        return value;
                    }
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
                Ok(None) => panic!("{} ended; it sent {:?}", self.path, self.seen),
                Err(_) => panic!("{}: no such {event} in {secs} s; it sent {:?}", self.path, self.seen.last()),
            }
        }
    }
}
