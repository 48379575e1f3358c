//! Load run (a bench binary): two release `potluck serve` replicas on the harness's PostgreSQL
//! behind Debian's HAProxy (round robin), as docs/DEPLOYING.md runs them. 100 people signed in
//! through the test identity provider browse the collective's pages and watch job streams for
//! 5 minutes while deploys and undeploys of an app run on the test swarm. Reported: requests,
//! errors (target: none), and latency percentiles of pages and of whole job streams.
//!
//!   make bench     (or, after `scripts/build.sh release`, with the test services up:
//!                   cargo bench -p potluck-tests --bench load -- [seconds] [sessions])

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark: a failed step ends the run")]

use potluck_app::model::*;
use potluck_tests::process::{bootstrap_token, free_port, haproxy, ready, secret_key, serve};
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::{swarm, workspace_root, Browser, Idp};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SLUG: &str = "collective-a";

#[derive(Default)]
struct Tally {
    pages: Vec<Duration>,
    streams: Vec<Duration>,
    errors: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    format!("{:.1} ms", sorted[i].as_secs_f64() * 1000.0)
}

/// Follows a job's event stream to its `end` event; any other outcome is an error to count.
async fn watch(b: &Browser, job: JobId) -> Result<(), String> {
    use futures_util::StreamExt;
    let r = b
        .client
        .get(b.url(&format!("/jobs/{job}/events")))
        .send()
        .await
        .map_err(|e| format!("job {job}'s stream: {e}"))?;
    if r.status() != 200 {
        return Err(format!("job {job}'s stream: HTTP {}", r.status()));
    }
    let mut stream = r.bytes_stream();
    let mut seen = String::new();
    while let Some(chunk) = stream.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.map_err(|e| format!("job {job}'s stream: {e}"))?));
        if seen.contains("event: end") {
            return Ok(());
        }
    }
    Err(format!("job {job}'s stream closed before its end"))
}

/// Removes the app's stack from the test swarm however the run ends.
struct Stack(String);

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["-H", &format!("unix://{}", swarm::SOCKET), "stack", "rm", &self.0])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// One person's browsing until `until`: the collective, its apps, the app, its servers, the
/// newest job's page, and every third round that job's event stream to its end.
async fn browse(b: Browser, domain: String, latest: Arc<Mutex<JobId>>, until: Instant, tally: Arc<Mutex<Tally>>) {
    let mut round = 0usize;
    while Instant::now() < until {
        round += 1;
        let job = *latest.lock().unwrap();
        let pages = [
            format!("/c/{SLUG}"),
            format!("/c/{SLUG}/apps"),
            format!("/c/{SLUG}/apps/{domain}"),
            format!("/c/{SLUG}/servers"),
            format!("/jobs/{job}"),
        ];
        for path in pages {
            let t = Instant::now();
            let outcome = match b.client.get(b.url(&path)).send().await {
                Ok(r) if r.status() == 200 => r.bytes().await.map(|_| ()).map_err(|e| format!("{path}: {e}")),
                Ok(r) => Err(format!("{path}: HTTP {}", r.status())),
                Err(e) => Err(format!("{path}: {e}")),
            };
            let mut t2 = tally.lock().unwrap();
            match outcome {
                Ok(()) => t2.pages.push(t.elapsed()),
                Err(e) => t2.errors.push(e),
            }
        }
        if round.is_multiple_of(3) {
            let t = Instant::now();
            let watched = tokio::time::timeout(Duration::from_secs(120), watch(&b, job)).await;
            let mut t2 = tally.lock().unwrap();
            match watched {
                Ok(Ok(())) => t2.streams.push(t.elapsed()),
                Ok(Err(e)) => t2.errors.push(e),
                Err(_) => t2.errors.push(format!("job {job}'s stream did not end in 120 s")),
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter_map(|a| a.parse::<u64>().ok());
    let seconds = args.next().unwrap_or(300);
    let sessions = args.next().unwrap_or(100) as usize;
    let bin = std::env::var_os("POTLUCK_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/potluck"));
    let dir = tempfile::tempdir().unwrap();
    let database = potluck_tests::fresh_postgres_database().await;
    let key = secret_key();
    let (proxy, ports) = (free_port(), [free_port(), free_port()]);
    let extra = "login_attempts_per_minute = 100000\nrecipe_fetch_minutes = 0.0";
    let r1 = serve(&bin, dir.path(), "r1", ports[0], proxy, &database, &key, extra);
    ready(&format!("http://127.0.0.1:{}/healthz", ports[0])).await;
    let r2 = serve(&bin, dir.path(), "r2", ports[1], proxy, &database, &key, extra);
    ready(&format!("http://127.0.0.1:{}/healthz", ports[1])).await;
    let _proxy = haproxy(dir.path(), proxy, &ports);
    let base = format!("http://127.0.0.1:{proxy}");
    ready(&format!("{base}/healthz")).await;

    // A federation admin sets up the collective, its provider, a server, a recipe and an app.
    let admin = Browser::new(&base);
    let claimed = admin.post_form("/auth/bootstrap", &[("token", &bootstrap_token(dir.path(), "r1"))]).await;
    assert_eq!(claimed.status(), 303, "bootstrap claim");
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", SLUG), ("name", "A"), ("description", "")])
        .await
        .unwrap();
    let idp = Idp::a();
    let (client_id, secret) = idp.register_client(&base).await;
    let provider: ProviderAdmin = admin
        .call(
            "add_provider",
            &[
                ("display_name", idp.display_name),
                ("issuer_url", &idp.issuer),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("groups_claim", "groups"),
                ("collectives", SLUG),
            ],
        )
        .await
        .unwrap();
    for (group, role) in
        [("collective-a-admins", "admin"), ("collective-a-operators", "operator"), ("collective-a-members", "viewer")]
    {
        admin
            .call::<GroupMapping>(
                "add_group_mapping",
                &[("slug", SLUG), ("provider_id", &provider.id.to_string()), ("value", group), ("role", role)],
            )
            .await
            .unwrap();
    }
    admin
        .call::<ServerView>(
            "add_server",
            &[("slug", SLUG), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    let (_, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    let domain = format!("load-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app: AppSummary = admin
        .call(
            "create_app",
            &[("slug", SLUG), ("server", "local"), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    admin.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let _stack = Stack(app.stack_name.clone());
    let job = |kind: &'static str| {
        let (admin, domain) = (admin.clone(), domain.clone());
        async move {
            admin
                .call::<JobSummary>("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", kind), ("target", "")])
                .await
                .unwrap()
        }
    };
    let first = job("deploy").await;
    let _ = admin.watch_job(first.id).await;
    let latest = Arc::new(Mutex::new(first.id));

    // The people, each signed in through the identity provider (alice, bob, carol by turns).
    let people = [("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw")];
    let t = Instant::now();
    let mut browsers = Vec::new();
    for i in 0..sessions {
        let (user, password) = people[i % people.len()];
        let b = Browser::new(&base);
        let end = b.sign_in(provider.id, user, password).await;
        assert!(!end.contains("error"), "{user} signed in: {end}");
        browsers.push(b);
    }
    println!("{sessions} people signed in through the identity provider in {:.1} s", t.elapsed().as_secs_f64());

    let tally = Arc::new(Mutex::new(Tally::default()));
    let until = Instant::now() + Duration::from_secs(seconds);
    let people: Vec<_> = browsers
        .into_iter()
        .map(|b| tokio::spawn(browse(b, domain.clone(), latest.clone(), until, tally.clone())))
        .collect();
    // Jobs run all along: an undeploy, a deploy, … each watched live by whoever looks.
    let mut jobs = 1;
    let mut kinds = ["undeploy", "deploy"].into_iter().cycle();
    while Instant::now() + Duration::from_secs(20) < until {
        let j = job(kinds.next().unwrap()).await;
        *latest.lock().unwrap() = j.id;
        let _ = admin.watch_job(j.id).await;
        jobs += 1;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    for p in people {
        p.await.unwrap();
    }
    let rss = (r1.rss_kib(), r2.rss_kib());

    let mut t = tally.lock().unwrap();
    t.pages.sort();
    t.streams.sort();
    let total = t.pages.len() + t.streams.len() + t.errors.len();
    println!(
        "\nload: {sessions} sessions for {seconds} s across two replicas behind HAProxy, {jobs} jobs run meanwhile"
    );
    println!("  requests        : {total} ({:.0}/s)", total as f64 / seconds as f64);
    println!("  errors          : {}   target 0", t.errors.len());
    println!(
        "  pages           : {} · p50 {} · p99 {} · max {}",
        t.pages.len(),
        percentile(&t.pages, 0.5),
        percentile(&t.pages, 0.99),
        percentile(&t.pages, 1.0)
    );
    println!(
        "  job streams     : {} watched to their end (a running job's until it ends) · p50 {} · p99 {}",
        t.streams.len(),
        percentile(&t.streams, 0.5),
        percentile(&t.streams, 0.99)
    );
    println!("  resident memory : {:.1} MB and {:.1} MB", rss.0 as f64 / 1024.0, rss.1 as f64 / 1024.0);
    for e in t.errors.iter().take(10) {
        println!("  error: {e}");
    }
}
