//! Potluck as separate processes, as people run it: `potluck serve` with a configuration file of
//! its own, Debian's HAProxy in front of replicas, and the helpers to wait for them. Used by the
//! replica tests and the benchmarks.

use crate::{swarm, workspace_root};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed when it goes out of scope, however the run ends.
pub struct Process(pub Child);

impl Process {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Its resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A new instance key (32 bytes, base64), as replicas of one Potluck share it.
pub fn secret_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `url` answers 200.
pub async fn ready(url: &str) {
    for _ in 0..300 {
        if reqwest::get(url).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer in 30 s");
}

/// `bin serve` with a configuration file of its own (`<dir>/<name>.toml`, data in `<dir>/<name>`,
/// the harness's Docker socket allowed to every collective, `extra` TOML lines appended);
/// its output goes to `<dir>/<name>.log`. `public` is the port people use (the proxy's).
#[allow(clippy::too_many_arguments, reason = "each is one line of the configuration")]
pub fn serve(
    bin: &Path,
    dir: &Path,
    name: &str,
    port: u16,
    public: u16,
    database: &str,
    key: &str,
    extra: &str,
) -> Process {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "database_url = {database:?}\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{public}\"\n\
             data_dir = {data:?}\nsecret_key = {key:?}\nsite_root = {site:?}\n{extra}\n\n[local_engines]\n{socket:?} = [\"*\"]\n",
            data = dir.join(name).display().to_string(),
            site = workspace_root().join("target/site").display().to_string(),
            socket = swarm::SOCKET,
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(bin)
        .args(["serve", "--config", &config.display().to_string()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/build.sh builds it)", bin.display()));
    Process(child)
}

/// The bootstrap link a first start printed to `<dir>/<name>.log`: its token.
pub fn bootstrap_token(dir: &Path, name: &str) -> String {
    let printed = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
    let link = printed.lines().find(|l| l.contains("/bootstrap/")).expect("the first start prints a link").trim();
    link.rsplit('/').next().unwrap().to_string()
}

/// HAProxy in front of replicas: round robin, each checked every 500 ms on /healthz, a
/// request to one that is down sent to another.
pub fn haproxy(dir: &Path, proxy: u16, ports: &[u16]) -> Process {
    let config = dir.join("haproxy.cfg");
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("  server r{} 127.0.0.1:{p} check inter 500ms fall 2 rise 1\n", i + 1))
        .collect();
    std::fs::write(
        &config,
        format!(
            "global\n  maxconn 1024\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 5m\n  timeout server 5m\n  \
             retries 3\n  option redispatch\n\nfrontend potluck\n  bind 127.0.0.1:{proxy}\n  default_backend replicas\n\n\
             backend replicas\n  balance roundrobin\n  option httpchk GET /healthz\n{servers}",
        ),
    )
    .unwrap();
    let child = Command::new("haproxy")
        .args(["-db", "-f", &config.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
        .spawn()
        .expect("Debian's haproxy (scripts/setup.sh installs it)");
    Process(child)
}
