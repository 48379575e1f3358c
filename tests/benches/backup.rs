//! Backup benchmark (a bench binary), on the test swarm, in one run:
//!
//! 1. throughput: a stack of the `backed-up` fixture recipe whose files volume holds 1 GiB (64
//!    files of 16 MiB from /dev/urandom, so compression gains nothing), backed up into a new
//!    repository by Potluck (`run::backup`: hooks, the archive API streamed into the snapshot,
//!    the checks) against the pipeline an operator would script without it: `docker cp` of the
//!    same path to disk, then `restic init` and `restic backup` of the copy (the baseline). Median
//!    of several rounds, the order alternating. Target: Potluck's throughput ≥ 0.8× the
//!    baseline's.
//! 2. memory: the peak resident memory a Potluck backup adds to its process, at 256 MiB and at
//!    1 GiB of data (`/proc/self/clear_refs` resets the peak before each). Target: flat, the
//!    peak at 1 GiB ≤ 1.25× the peak at 256 MiB.
//!
//!   make bench     (or, with the test services up: cargo bench -p potluck-tests --bench backup -- [rounds])

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark: a failed step ends the run")]

use potluck_server::adapters::backup::repo::{Location, Password};
use potluck_server::adapters::backup::run::{self, Report, Tags};
use potluck_server::adapters::engine::{self, converge, deploy, envfile::EnvFile, load::RecipeFiles};
use potluck_tests::recipes::fixture_recipe;
use potluck_tests::swarm::{self, container, docker_cli, remove_stack_and_volumes, sh};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const STACK: &str = "bench_backup";
const PASSWORD: &str = "bench bench bench";
const FILE_MIB: u64 = 16;
const MIB: u64 = 1024 * 1024;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn rate(bytes: u64, d: Duration) -> String {
    format!("{:.0} MiB/s", bytes as f64 / MIB as f64 / d.as_secs_f64())
}

/// A field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

async fn deploy_stack(docker: &bollard::Docker) {
    let dir = fixture_recipe("backed-up");
    let env_text = "TYPE=backed-up\nDOMAIN=bench.example.com\nENABLE_BACKUPS=true\n";
    let files = RecipeFiles::from_dir(&dir).unwrap();
    let env = engine::app_environment(&EnvFile::parse(env_text).unwrap(), None, STACK);
    let plan = engine::render(&files, &env, STACK, None).unwrap();
    let opts = deploy::DeployOptions { resolve_image: deploy::ResolveImage::Never, ..deploy::DeployOptions::default() };
    let deployed = deploy::deploy(docker, &plan, &opts, &|_| {}).await.unwrap();
    let outcome = converge::wait(docker, STACK, &deployed.services, Duration::from_secs(120), &|_| {}).await;
    assert_eq!(outcome, converge::Outcome::Converged, "{STACK} converges");
}

/// Fills the files volume up to `mib` MiB (whole files of FILE_MIB), keeping what is there.
fn fill_to(mib: u64) {
    let have: u64 = sh(STACK, "app", "ls /srv/files | wc -l").trim().parse().unwrap();
    let want = mib / FILE_MIB;
    if want > have {
        sh(
            STACK,
            "app",
            &format!(
                "i={have}; while [ $i -lt {want} ]; do dd if=/dev/urandom of=/srv/files/f$i bs=1M count={FILE_MIB} 2>/dev/null; i=$((i+1)); done"
            ),
        );
    }
    sh(STACK, "db", "mkdir -p /var/lib/db && printf 'row\\n' > /var/lib/db/table.1");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `docker cp` of the files to disk, then `restic init` and `restic backup` of the copy.
fn baseline(work: &Path) -> (Duration, Duration) {
    let (copy, repo, cache) = (work.join("copy"), work.join("restic-repo"), work.join("restic-cache"));
    let started = Instant::now();
    run(Command::new(docker_cli()).arg("cp").arg(format!("{}:/srv/files", container(STACK, "app"))).arg(&copy));
    let copied = started.elapsed();
    for args in [vec!["init"], vec!["backup", "--quiet", copy.to_str().unwrap()]] {
        run(Command::new("restic")
            .arg("-r")
            .arg(&repo)
            .args(&args)
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", &cache));
    }
    let total = started.elapsed();
    for p in [copy, repo, cache] {
        std::fs::remove_dir_all(p).unwrap();
    }
    (copied, total)
}

/// Potluck's backup into a new repository; the time and the peak memory it added.
async fn potluck(docker: &bollard::Docker, work: &Path) -> (Duration, u64, u64) {
    let repo = work.join("potluck-repo");
    let location = Location::parse(repo.to_str().unwrap()).unwrap();
    let password = Password::new(PASSWORD).unwrap();
    let tags = Tags { app: Some(STACK.into()), trigger: "manual".into(), ..Tags::default() };
    let report = Report { step: &|_| {}, progress: Arc::new(|_| {}) };
    // Resets the peak resident set to the current one (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_bytes("VmRSS:");
    let started = Instant::now();
    let done = run::backup(docker, STACK, &location, &password, "bench", &tags, &report).await.unwrap();
    let took = started.elapsed();
    let added = status_bytes("VmHWM:").saturating_sub(before);
    std::fs::remove_dir_all(&repo).unwrap();
    (took, added, done.bytes)
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let docker = swarm::connect().await;
    remove_stack_and_volumes(STACK);
    deploy_stack(&docker).await;
    let work = tempfile::tempdir_in(std::env::temp_dir()).unwrap();

    // Memory at a quarter of the data, then at all of it.
    fill_to(256);
    let (_, small_peak, small_bytes) = potluck(&docker, work.path()).await;
    fill_to(1024);
    let (mut ours, mut theirs, mut copies, mut peaks) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for round in 0..rounds {
        // Alternate who reads the volume first, so the page cache favours neither.
        let (ours_first, mut o, mut t) = (round % 2 == 0, None, None);
        for turn in 0..2 {
            if (turn == 0) == ours_first {
                o = Some(potluck(&docker, work.path()).await);
            } else {
                t = Some(baseline(work.path()));
            }
        }
        let ((took, peak, b), (copied, total)) = (o.unwrap(), t.unwrap());
        bytes = b;
        println!(
            "  round {}: docker cp {} + restic {} = {}; potluck {} (peak +{} MiB)",
            round + 1,
            secs(copied),
            secs(total - copied),
            secs(total),
            secs(took),
            peak / MIB
        );
        ours.push(took);
        theirs.push(total);
        copies.push(copied);
        peaks.push(peak);
    }
    remove_stack_and_volumes(STACK);

    let (ours, theirs) = (median(ours), median(theirs));
    let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
    println!(
        "backup of {} MiB (median of {rounds}): docker cp + restic backup {} ({}), potluck {} ({}): potluck's throughput is {ratio:.2}× the pipeline's (target ≥ 0.8×) {}",
        bytes / MIB,
        secs(theirs),
        rate(bytes, theirs),
        secs(ours),
        rate(bytes, ours),
        if ratio >= 0.8 { "✓" } else { "✗" }
    );
    let big_peak = *peaks.iter().max().unwrap();
    let growth = big_peak as f64 / small_peak.max(1) as f64;
    println!(
        "memory a backup adds: {} MiB at {} MiB of data, {} MiB at {} MiB (worst round): {growth:.2}× for {:.1}× the data (target ≤ 1.25×, flat) {}",
        small_peak / MIB,
        small_bytes / MIB,
        big_peak / MIB,
        bytes / MIB,
        bytes as f64 / small_bytes.max(1) as f64,
        if growth <= 1.25 { "✓" } else { "✗" }
    );
}
