//! The command line against a remote Potluck, with an API token (`POTLUCK_URL`,
//! `POTLUCK_TOKEN`): `potluck abra export|import` move a collective's apps as abra's
//! `servers/<server>/<domain>.env` files, through the same operations (and authorization) as the
//! apps page.

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

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(r: &Remote) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
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
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or(body);
        bail!("{status}: {}", message.trim())
    }

    async fn post<T: serde::de::DeserializeOwned>(&self, path: &str, body: serde_json::Value) -> anyhow::Result<T> {
        let res = self.send(self.http.post(format!("{}/api/v1{path}", self.base)).json(&body)).await?;
        Ok(res.json().await?)
    }
}

pub async fn abra(command: AbraCommand) -> anyhow::Result<ExitCode> {
    match command {
        AbraCommand::Export { remote, dir, out } => {
            let client = Client::new(&remote)?;
            let url = format!("{}/c/{}/abra/servers.tar.gz", client.base, remote.collective);
            let archive = client.send(client.http.get(url)).await?.bytes().await?;
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
    let mut servers: Vec<_> = std::fs::read_dir(&root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    servers.sort_by_key(|e| e.file_name());
    for server in servers {
        let mut files: Vec<_> = std::fs::read_dir(server.path())?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file() && e.file_name().to_string_lossy().ends_with(".env"))
            .collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            let name = format!("servers/{}/{}", server.file_name().to_string_lossy(), f.file_name().to_string_lossy());
            tar.append_path_with_name(f.path(), &name).with_context(|| format!("reading {}", f.path().display()))?;
        }
    }
    Ok(tar.into_inner()?.finish()?)
}
