//! Page benchmark (a bench binary, not a test), against a release `potluck serve` process:
//!
//! 1. Resident memory: idle after start, and with 20 servers connected (each watched by a
//!    monitor on the harness's engine). Targets: ≤ 40 MB and ≤ 80 MB.
//! 2. A collective's apps page with 500 apps over those 20 servers, 50 concurrent clients
//!    (wrk, signed in): throughput and p99 latency, against Debian's nginx serving the same
//!    HTML from a file in the same run. Targets: ≥ 0.2× nginx's throughput, p99 ≤ 5× nginx's.
//! 3. The first load: what a browser fetches from /pkg/ (gzip, as sent) to run the start page
//!    and, arriving there first, the apps page, against the whole bundle of the same build.
//!    Target: ≤ 300 KB for the first page.
//!
//!   make bench     (or, after `scripts/build.sh release`: cargo bench -p potluck-tests --bench pages -- [seconds] [--hold])

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark: a failed step ends the run")]

use potluck_app::model::*;
use potluck_tests::process::{bootstrap_token, free_port, ready, secret_key, serve, Process};
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::{swarm, workspace_root, Browser};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SLUG: &str = "bench";
const SERVERS: usize = 20;
const APPS: usize = 500;
const CLIENTS: usize = 50;

/// What wrk measured.
struct Load {
    requests_per_sec: f64,
    p99_ms: f64,
    errors: String,
}

/// wrk's latency as milliseconds ("812.00us", "7.41ms", "1.20s").
fn millis(text: &str) -> f64 {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len()));
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, cookie: &str, seconds: u64) -> Load {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{CLIENTS}"), &format!("-d{seconds}s"), "--latency", "--timeout", "10s"])
        .args(["-H", &format!("Cookie: {cookie}"), url])
        .output()
        .expect("Debian's wrk (make bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string())).unwrap_or_default()
    };
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    Load {
        requests_per_sec: field("Requests/sec:").parse().unwrap_or(0.0),
        p99_ms: millis(field("99%").split_whitespace().next().unwrap_or("")),
        errors,
    }
}

/// nginx, stopped with SIGTERM so that its master takes its workers along.
struct Nginx(Process);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.pid().to_string()).status();
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Debian's nginx serving `html` at `path`, with the headers Potluck sends a page with.
fn nginx(dir: &Path, port: u16, path: &str, html: &str) -> Nginx {
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("page.html"), html).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nuser root;\nworker_processes 2;\npid {pid};\nerror_log {log};\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  \
             fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n  server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    \
             location = {path} {{ default_type \"text/html; charset=utf-8\"; add_header Cache-Control no-cache; try_files /page.html =404; }}\n  }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            log = dir.join("nginx.log").display(),
            root = root.display(),
            tmp = dir.display(),
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .args(["-c", &conf.display().to_string(), "-p", &dir.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Debian's nginx (make bench installs nginx-light)");
    Nginx(Process(child))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    let bin = std::env::var_os("POTLUCK_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/potluck"));
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/potluck.db", dir.path().display());
    let key = secret_key();
    let port = free_port();
    // Recipes are fetched only when registered. "20 servers connected" are 20 servers on the
    // harness's one engine, each watched by its own monitor as a remote one would be.
    let potluck = serve(&bin, dir.path(), "potluck", port, port, &database, &key, "recipe_fetch_minutes = 0.0");
    let base = format!("http://127.0.0.1:{port}");
    ready(&format!("{base}/healthz")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = potluck.rss_kib();

    let b = Browser::new(&base);
    let claimed = b.post_form("/auth/bootstrap", &[("token", &bootstrap_token(dir.path(), "potluck"))]).await;
    assert_eq!(claimed.status(), 303, "bootstrap claim");
    b.call::<CollectiveSummary>("create_collective", &[("slug", SLUG), ("name", "Bench"), ("description", "")])
        .await
        .unwrap();
    for i in 1..=SERVERS {
        let name = format!("server-{i:02}");
        b.call::<ServerView>(
            "add_server",
            &[("slug", SLUG), ("name", &name), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    }
    let (_, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    b.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    for i in 0..APPS {
        let server = format!("server-{:02}", i % SERVERS + 1);
        let domain = format!("app-{i:03}.bench.example.org");
        b.call::<AppSummary>(
            "create_app",
            &[("slug", SLUG), ("server", &server), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let connected = potluck.rss_kib();
    let servers: Vec<ServerView> = b.call("list_servers", &[("slug", SLUG)]).await.unwrap();
    let watching = servers.iter().filter(|s| s.connected).count();

    let path = format!("/c/{SLUG}/apps");
    let page = b.get(&path).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let rows = html.matches("<tr data-app=").count();
    assert_eq!(rows, APPS, "the page lists every app");
    let cookie = format!("potluck_session={}", b.cookie("potluck_session").expect("signed in"));
    let nginx_port = free_port();
    let _nginx = nginx(dir.path(), nginx_port, &path, &html);
    ready(&format!("http://127.0.0.1:{nginx_port}{path}")).await;

    if std::env::args().any(|a| a == "--hold") {
        // For profiling by hand: the instance stays up with its data until interrupted.
        println!("holding {base}{path} (nginx: http://127.0.0.1:{nginx_port}{path}) with\n  Cookie: {cookie}");
        tokio::signal::ctrl_c().await.unwrap();
        return;
    }
    println!("resident memory of the release build ({})", bin.display());
    println!("  idle after start            : {:>9}   target ≤ 40 MB", mib(idle));
    println!("  {watching:>2} of {SERVERS} servers connected : {:>9}   target ≤ 80 MB", mib(connected));

    // Warm both up, then measure each alone.
    let _ = wrk(&format!("{base}{path}"), &cookie, 2);
    let ours = wrk(&format!("{base}{path}"), &cookie, seconds);
    let after = potluck.rss_kib();
    let theirs = wrk(&format!("http://127.0.0.1:{nginx_port}{path}"), &cookie, seconds);
    println!(
        "\napps page: {APPS} apps over {SERVERS} servers, {} KB of HTML, {CLIENTS} clients, {seconds} s each (wrk)",
        html.len() / 1024
    );
    println!("  potluck        : {:>9.0} requests/s   p99 {:>8.1} ms", ours.requests_per_sec, ours.p99_ms);
    println!("  nginx (base)   : {:>9.0} requests/s   p99 {:>8.1} ms", theirs.requests_per_sec, theirs.p99_ms);
    println!("  throughput     : {:>9.3}× nginx's     target ≥ 0.2×", ours.requests_per_sec / theirs.requests_per_sec);
    println!("  p99            : {:>9.1}× nginx's     target ≤ 5×", ours.p99_ms / theirs.p99_ms);
    println!("  resident memory under load: {}", mib(after));
    if !ours.errors.is_empty() {
        println!("  potluck errors : {}", ours.errors);
    }
    // What a change costs: the next request renders the page again, the ones after get the copy.
    b.call::<CollectiveSummary>("update_collective", &[("slug", SLUG), ("name", "Bench again"), ("description", "")])
        .await
        .unwrap();
    let timed = |b: &Browser| {
        let (b, path) = (b.clone(), path.clone());
        async move {
            let at = std::time::Instant::now();
            let page = b.get(&path).await;
            let kept = page.headers().get("x-potluck-cache").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            page.text().await.unwrap();
            (at.elapsed().as_secs_f64() * 1000.0, kept)
        }
    };
    let (render, first) = timed(&b).await;
    let (again, second) = timed(&b).await;
    println!("  after a change : rendered in {render:.1} ms ({first}), then served in {again:.1} ms ({second})");

    let whole = whole_bundle();
    println!("\nfirst load, gzip as sent (the whole bundle of this build: {} KB in {} files)", whole.0 / 1024, whole.1);
    for (name, path) in [("start page", "/"), ("apps page", path.as_str())] {
        let response = b.get(path).await;
        // The page's own files, and its area's modules named in its `Link` headers.
        let links: Vec<String> =
            response.headers().get_all("link").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        let html = response.text().await.unwrap();
        let (bytes, files) =
            first_load(&base, &format!("{}\n{html}", links.join("\n").replace(['<', '>'], "\""))).await;
        let target = if path == "/" { "   target ≤ 300 KB" } else { "" };
        println!(
            "  {name:<11}: {:>5} KB in {files:>2} files, {:.2}× the whole bundle{target}",
            bytes / 1024,
            bytes as f64 / whole.0 as f64
        );
    }
    drop(potluck);
}

/// The gzip size and count of every script, module and stylesheet of this build: the ones
/// hash.txt names, and every area's modules in the split manifest.
fn whole_bundle() -> (usize, usize) {
    let site = workspace_root().join("target/site");
    let hashes = std::fs::read_to_string(site.join("hash.txt")).expect("a built site (scripts/build.sh)");
    let hash =
        |key: &str| hashes.lines().find_map(|l| l.strip_prefix(&format!("{key}: ")).map(str::to_string)).unwrap();
    let manifest: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(
        &std::fs::read_to_string(site.join(format!("pkg/__wasm_split_manifest.{}.json", hash("manifest")))).unwrap(),
    )
    .unwrap();
    let mut files: std::collections::BTreeSet<String> =
        manifest.into_values().flatten().map(|m| format!("{m}.wasm")).collect();
    files.extend([
        format!("potluck.{}.js", hash("js")),
        format!("potluck.{}.wasm", hash("wasm")),
        format!("potluck.{}.css", hash("css")),
        format!("__wasm_split.{}.js", hash("split")),
    ]);
    let bytes =
        files.iter().map(|f| std::fs::metadata(site.join("pkg").join(format!("{f}.gz"))).unwrap().len() as usize).sum();
    (bytes, files.len())
}

/// What a browser fetches from /pkg/ to run a page: the files its HTML and headers name
/// (scripts, preloads, stylesheet) and the modules those scripts import, gzip as sent.
async fn first_load(base: &str, html: &str) -> (usize, usize) {
    let client = reqwest::Client::new();
    let mut queue: Vec<String> = pkg_references(html, "/pkg/").into_iter().map(|f| format!("/pkg/{f}")).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut bytes = 0;
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let response = client.get(format!("{base}{path}")).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.bytes().await.unwrap();
        bytes += body.len();
        if path.ends_with(".js") {
            // Its static imports (`… from "./x.js"`), relative to it: inflate the script to read them.
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
            let imports = pkg_references(&text, "from \"./").into_iter().chain(pkg_references(&text, "from './"));
            queue.extend(imports.filter(|f| f.ends_with(".js")).map(|f| format!("/pkg/{f}")));
        }
    }
    (bytes, seen.len())
}

/// The file names that follow `prefix` up to a quote.
fn pkg_references(text: &str, prefix: &str) -> Vec<String> {
    text.split(prefix)
        .skip(1)
        .filter_map(|rest| rest.split(['"', '\'']).next())
        .filter(|name| !name.is_empty() && !name.contains(['/', ' ', '<', '>']))
        .map(str::to_string)
        .collect()
}
