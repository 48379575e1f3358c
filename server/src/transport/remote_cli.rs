//! The command line against a remote Potluck, with an API token (`POTLUCK_URL`,
//! `POTLUCK_TOKEN`), through the REST API and so the same operations and authorization as the
//! pages: `potluck abra export|import` move a collective's apps as abra's
//! `servers/<server>/<domain>.env` files; `potluck remote app …` has abra's verbs (ls, deploy,
//! upgrade, rollback, undeploy, logs, secret generate), a job's progress streamed in the terminal.

use crate::domain::apps::tree;
use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use clap::{Args, Subcommand};
use potluck_app::model::{AbraTreeImported, AbraTreePreview};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct Remote {
    /// The Potluck to talk to (`https://potluck.example.org`).
    #[arg(long, env = "POTLUCK_URL")]
    pub url: String,
    /// An API token of the collective (`plk_…`; made on the account page).
    #[arg(long, env = "POTLUCK_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The collective's slug.
    #[arg(long, short)]
    pub collective: String,
}

#[derive(Debug, Subcommand)]
pub enum AbraCommand {
    /// Write the collective's apps as abra's tree: into a directory (`--dir ~/.abra` gives
    /// `~/.abra/servers/<server>/<domain>.env`), else as a tar.gz archive.
    Export {
        #[command(flatten)]
        remote: Remote,
        /// Unpack into this directory (its `servers/`); existing files of the same names are replaced.
        #[arg(long, conflicts_with = "out")]
        dir: Option<PathBuf>,
        /// The archive to write (default: `<collective>-servers.tar.gz`; `-` for stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import abra's tree (a directory such as `~/.abra` or its `servers/`, or a tar.gz): prints
    /// what it would create and refuse, and imports with `--yes`.
    Import {
        #[command(flatten)]
        remote: Remote,
        /// The tree: a directory or a tar(.gz) archive.
        path: PathBuf,
        /// Map a server directory to a Potluck server of another name (`DIR=SERVER`; repeatable).
        #[arg(long = "server", value_parser = parse_mapping)]
        servers: Vec<(String, String)>,
        /// Import, instead of only showing what would happen.
        #[arg(long)]
        yes: bool,
    },
}

fn parse_mapping(s: &str) -> Result<(String, String), String> {
    let (dir, server) = s.split_once('=').ok_or("expected DIR=SERVER")?;
    Ok((dir.trim().to_string(), server.trim().to_string()))
}

/// How long a request (not a stream) may take to answer.
const ANSWER: std::time::Duration = std::time::Duration::from_secs(120);
/// A job's stream says something at least this often (its keep-alives come every 15 s).
const STREAM_SILENCE: std::time::Duration = std::time::Duration::from_secs(60);

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(r: &Remote) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(20))
            .user_agent(concat!("potluck-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client { http, base: r.url.trim_end_matches('/').to_string(), token: r.token.clone() })
    }

    /// Sends a request; an error answer becomes an error naming what the server said.
    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let res = req.bearer_auth(&self.token).send().await.with_context(|| format!("cannot reach {}", self.base))?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let body = res.text().await.unwrap_or_default();
        let message =
            serde_json::from_str::<potluck_app::error::ApiError>(&body).map(|e| e.to_string()).unwrap_or(body);
        bail!("{status}: {}", message.trim())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let res = self.send(self.http.get(format!("{}/api/v1{path}", self.base)).timeout(ANSWER)).await?;
        Ok(res.json().await?)
    }

    async fn post<T: serde::de::DeserializeOwned>(&self, path: &str, body: serde_json::Value) -> anyhow::Result<T> {
        let res = self.send(self.http.post(format!("{}/api/v1{path}", self.base)).json(&body).timeout(ANSWER)).await?;
        Ok(res.json().await?)
    }
}

pub async fn abra(command: AbraCommand) -> anyhow::Result<ExitCode> {
    match command {
        AbraCommand::Export { remote, dir, out } => {
            let client = Client::new(&remote)?;
            let url = format!("{}/c/{}/abra/servers.tar.gz", client.base, remote.collective);
            let archive = client.send(client.http.get(url).timeout(ANSWER)).await?.bytes().await?;
            match (dir, out) {
                (Some(dir), _) => {
                    let tree = tree::read_archive(&archive).map_err(|e| anyhow!(e))?;
                    for f in &tree.files {
                        let path = dir.join("servers").join(&f.dir).join(&f.name);
                        std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
                        std::fs::write(&path, &f.text).with_context(|| format!("writing {}", path.display()))?;
                        println!("{}", path.display());
                    }
                    eprintln!("{} apps written under {}", tree.files.len(), dir.join("servers").display());
                }
                (None, Some(out)) if out.as_os_str() == "-" => {
                    use std::io::Write;
                    std::io::stdout().write_all(&archive)?;
                }
                (None, out) => {
                    let out = out.unwrap_or_else(|| PathBuf::from(format!("{}-servers.tar.gz", remote.collective)));
                    std::fs::write(&out, &archive).with_context(|| format!("writing {}", out.display()))?;
                    eprintln!("wrote {}", out.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AbraCommand::Import { remote, path, servers, yes } => {
            let archive = if path.is_dir() { pack_dir(&path)? } else { std::fs::read(&path)? };
            if archive.len() > tree::MAX_ARCHIVE {
                bail!("{} packs to more than {} KiB", path.display(), tree::MAX_ARCHIVE >> 10);
            }
            let client = Client::new(&remote)?;
            let body = json!({
                "archive": base64::engine::general_purpose::STANDARD.encode(&archive),
                "servers": servers.into_iter().collect::<BTreeMap<_, _>>(),
            });
            let slug = &remote.collective;
            let preview: AbraTreePreview =
                client.post(&format!("/collectives/{slug}/abra/preview"), body.clone()).await?;
            print_preview(&preview);
            if !yes {
                println!("\nNothing imported yet: run again with --yes to create these {} apps.", preview.creates());
                return Ok(ExitCode::SUCCESS);
            }
            let done: AbraTreeImported = client.post(&format!("/collectives/{slug}/abra/import"), body).await?;
            println!("\nimported {} apps ({} refused)", done.created.len(), done.refused.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_preview(p: &AbraTreePreview) {
    for d in &p.dirs {
        match &d.server {
            Some(s) => println!("{}/ → server {s} ({} apps)", d.dir, d.apps),
            None => println!("{}/ → no server (choose one with --server {}=SERVER)", d.dir, d.dir),
        }
    }
    for a in &p.apps {
        let what = match &a.refused {
            None => format!("create  {} ({} {})", a.domain, a.recipe, a.version.as_deref().unwrap_or("unversioned")),
            Some(why) => format!("refuse  {why}"),
        };
        println!("  {}/{}: {what}", a.dir, a.file);
    }
    for i in &p.ignored {
        println!("  ignored {i}");
    }
    println!("{} to create, {} refused", p.creates(), p.apps.len() - p.creates());
}

/// A tar.gz of a directory's abra tree: `<dir>/servers/<server>/*.env` when it has `servers/`,
/// else `<dir>/<server>/*.env`.
fn pack_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let root = if dir.join("servers").is_dir() { dir.join("servers") } else { dir.to_path_buf() };
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    // Links inside the tree are not followed (a link to ~/.ssh would upload it): only regular
    // files of real directories. The tree's root itself may be a link (a synced repository).
    let kind = |e: &std::fs::DirEntry| e.file_type().ok();
    let mut servers: Vec<_> = std::fs::read_dir(&root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| kind(e).is_some_and(|t| t.is_dir()) && !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    servers.sort_by_key(|e| e.file_name());
    for server in servers {
        let mut files: Vec<_> = std::fs::read_dir(server.path())?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".env"))
            .collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            if !kind(&f).is_some_and(|t| t.is_file()) {
                eprintln!("skipping {}: not a regular file (links are not followed)", f.path().display());
                continue;
            }
            let name = format!("servers/{}/{}", server.file_name().to_string_lossy(), f.file_name().to_string_lossy());
            let text = std::fs::read(f.path()).with_context(|| format!("reading {}", f.path().display()))?;
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(text.len() as u64);
            tar.append_data(&mut h, &name, text.as_slice())?;
        }
    }
    Ok(tar.into_inner()?.finish()?)
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Apps of the collective, as abra's verbs: ls, deploy, upgrade, rollback, redeploy,
    /// undeploy, logs, secret generate.
    App {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: AppCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// The collective's apps: version, status, health, and whether they changed outside Potluck.
    Ls,
    /// Deploy the app (its version, else the recipe's newest release, or VERSION).
    Deploy(JobArgs),
    /// Upgrade to the newest release, or VERSION.
    Upgrade(JobArgs),
    /// Roll back to the release before, or VERSION.
    Rollback(JobArgs),
    /// Deploy the running version again (new secrets, a changed env).
    Redeploy(JobArgs),
    /// Remove the stack (volumes and secrets stay unless asked).
    Undeploy {
        #[command(flatten)]
        job: JobArgs,
        /// Also remove the stack's volumes (their data is gone).
        #[arg(long)]
        volumes: bool,
        /// Also remove the app's secrets.
        #[arg(long)]
        secrets: bool,
    },
    /// A service's logs (the last 100 lines unless --tail; --follow keeps streaming).
    Logs {
        domain: String,
        /// The service (default: app).
        #[arg(long, default_value = "app")]
        service: String,
        #[arg(long)]
        tail: Option<u32>,
        #[arg(long, short)]
        follow: bool,
    },
    /// The app's secrets.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Generate the secrets the recipe declares and the app lacks (or only NAME), and print
    /// their values: they are shown this once.
    Generate {
        domain: String,
        /// Only this secret.
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// The app's domain.
    pub domain: String,
    /// The version to go to (default: what the action chooses).
    pub version: Option<String>,
    /// Do not ask before starting (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Start the job and return without following it.
    #[arg(long)]
    pub detach: bool,
}

pub async fn remote(command: RemoteCommand) -> anyhow::Result<ExitCode> {
    let RemoteCommand::App { remote, command } = command;
    let client = Client::new(&remote)?;
    let slug = remote.collective.as_str();
    match command {
        AppCommand::Ls => {
            let apps: Vec<potluck_app::model::AppSummary> = client.get(&format!("/collectives/{slug}/apps")).await?;
            let rows: Vec<[String; 6]> = apps
                .iter()
                .map(|a| {
                    let health = a.health.map(|h| format!("{}/{}", h.running, h.desired)).unwrap_or_else(|| "-".into());
                    let version = match (&a.version, a.chaos) {
                        (Some(v), false) => v.clone(),
                        (Some(v), true) => format!("{v} (chaos)"),
                        (None, _) => "-".into(),
                    };
                    let drift = if a.drift.is_some() { "changed outside Potluck" } else { "" };
                    [
                        a.domain.clone(),
                        a.recipe.clone(),
                        version,
                        a.server.clone(),
                        format!("{} {health}", a.status.as_str()),
                        drift.into(),
                    ]
                })
                .collect();
            print_table(&["DOMAIN", "RECIPE", "VERSION", "SERVER", "STATUS", ""], &rows);
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Deploy(job) => run_job(&client, slug, "deploy", job, json!({})).await,
        AppCommand::Upgrade(job) => run_job(&client, slug, "upgrade", job, json!({})).await,
        AppCommand::Rollback(job) => run_job(&client, slug, "rollback", job, json!({})).await,
        AppCommand::Redeploy(job) => run_job(&client, slug, "redeploy", job, json!({})).await,
        AppCommand::Undeploy { job, volumes, secrets } => {
            let options = json!({ "remove_volumes": volumes, "remove_secrets": secrets });
            run_job(&client, slug, "undeploy", job, options).await
        }
        AppCommand::Logs { domain, service, tail, follow } => {
            let mut query = vec![("service", service), ("tail", tail.unwrap_or(100).to_string())];
            if follow {
                query.push(("follow", "1".into()));
            }
            let url = format!("{}/c/{slug}/apps/{domain}/logs", client.base);
            let mut res = client.send(client.http.get(url).query(&query)).await?;
            use std::io::Write;
            let mut out = std::io::stdout();
            while let Some(chunk) = res.chunk().await? {
                out.write_all(&chunk)?;
                out.flush()?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Secret { command: SecretCommand::Generate { domain, name } } => {
            let generated: Vec<potluck_app::model::GeneratedSecret> = client
                .post(
                    &format!("/collectives/{slug}/apps/{domain}/secrets/generate"),
                    json!({ "only": name.unwrap_or_default() }),
                )
                .await?;
            if generated.is_empty() {
                println!("{domain} has every secret its recipe declares");
            } else {
                let rows: Vec<[String; 2]> = generated.iter().map(|g| [g.name.clone(), g.value.0.clone()]).collect();
                print_table(&["NAME", "VALUE (shown this once)"], &rows);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut width = [0usize; N];
    for (i, h) in head.iter().enumerate() {
        width[i] = h.len();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = width[i])).collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Previews a job (checks, changes, release notes), asks (unless `--yes`), starts it with an
/// idempotency key (retried once if the answer is lost) and follows its progress to the end.
async fn run_job(
    client: &Client,
    slug: &str,
    kind: &str,
    job: JobArgs,
    options: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    use potluck_app::model::{DeployPreview, JobSummary};
    let domain = &job.domain;
    let target = job.version.clone().unwrap_or_default();
    let app_path = format!("/collectives/{slug}/apps/{domain}");
    let preview: DeployPreview =
        client.post(&format!("{app_path}/preview"), json!({ "kind": kind, "target": target })).await?;
    let from = preview.from_version.as_deref().unwrap_or("-");
    let to = preview.to_version.as_deref().unwrap_or("-");
    println!("{kind} {domain}: {from} → {to}");
    for c in &preview.checks {
        println!("  {}: {}", c.level, c.message);
    }
    for c in &preview.changes {
        println!("  {c}");
    }
    for (v, notes) in &preview.release_notes {
        println!("\n{v}\n{}", notes.trim_end());
    }
    if preview.checks.iter().any(|c| c.level == "error") {
        bail!("the checks before {kind} failed (see above)");
    }
    if !job.yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask: add --yes to {kind} {domain}");
        }
        eprint!("continue with the {kind}? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing done");
            return Ok(ExitCode::from(1));
        }
    }
    let body = json!({ "kind": kind, "target": target, "options": options });
    let key = uuid::Uuid::new_v4().to_string();
    let start = || {
        client.send(
            client
                .http
                .post(format!("{}/api/v1{app_path}/jobs", client.base))
                .header("idempotency-key", &key)
                .json(&body)
                .timeout(ANSWER),
        )
    };
    // A lost answer is asked again with the same key: the job starts once. While the first
    // request still runs on the server, the retry hears 409 and waits for its answer.
    let mut res = start().await;
    let mut wait = std::time::Duration::from_millis(500);
    for _ in 0..8 {
        match &res {
            Err(e) if e.to_string().starts_with("cannot reach") || e.to_string().contains("is still running") => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(10));
                res = start().await;
            }
            _ => break,
        }
    }
    let res = res?;
    let started: JobSummary = res.json().await?;
    println!("job {} started: {}/jobs/{}", started.id, client.base, started.id);
    if job.detach {
        return Ok(ExitCode::SUCCESS);
    }
    follow_job(client, started.id).await
}

/// Follows a job's Server-Sent Events: steps as lines, the services' convergence as a bar.
async fn follow_job(client: &Client, id: potluck_app::model::JobId) -> anyhow::Result<ExitCode> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let url = format!("{}/jobs/{id}/events", client.base);
    let res = client.send(client.http.get(url)).await?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} tasks {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut services: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut events = res.bytes_stream().eventsource();
    loop {
        let next = tokio::time::timeout(STREAM_SILENCE, events.next())
            .await
            .map_err(|_| anyhow!("no word from the job's event stream for a minute: see {}/jobs/{id}", client.base))?;
        let Some(event) = next else { break };
        let event = event.map_err(|e| anyhow!("the job's event stream broke: {e}"))?;
        match event.event.as_str() {
            "progress" => {
                let Ok(e) = serde_json::from_str::<potluck_app::model::JobEventView>(&event.data) else { continue };
                if e.kind == "service" {
                    // "app: 1/2 running": the bar counts running tasks of desired ones.
                    if let Some((name, rest)) = e.text.split_once(": ") {
                        let counts = rest.split_whitespace().next().and_then(|c| c.split_once('/'));
                        if let Some((r, d)) = counts.and_then(|(r, d)| Some((r.parse().ok()?, d.parse().ok()?))) {
                            services.insert(name.to_string(), (r, d));
                            bar.set_length(services.values().map(|(_, d)| d).sum());
                            bar.set_position(services.values().map(|(r, d)| r.min(d)).sum());
                        }
                    }
                    bar.set_message(e.text.clone());
                } else {
                    bar.suspend(|| println!("{}", e.text));
                }
                bar.tick();
            }
            "end" => {
                bar.finish_and_clear();
                let end: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
                let state = end["state"].as_str().unwrap_or("unknown");
                println!("{state}: {}", end["result"].as_str().unwrap_or_default());
                return Ok(if state == "succeeded" { ExitCode::SUCCESS } else { ExitCode::from(1) });
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    bail!("the job's event stream ended before the job did: see {}/jobs/{id}", client.base)
}
