//! `potluck backup`: the backup engine on its own, against DOCKER_HOST and a restic repository,
//! without a database (as `potluck stack` is for deploys). The password follows restic's
//! conventions (`RESTIC_PASSWORD`, `RESTIC_PASSWORD_FILE`), and an existing repository is used
//! as it is. An `sftp:` repository signs in with the key in `POTLUCK_SFTP_KEY_FILE` (else
//! `~/.ssh/id_ed25519`…) and trusts the host keys of `~/.ssh/known_hosts`
//! (`POTLUCK_SFTP_KNOWN_HOSTS`), the way restic's `ssh` would; an `s3:` repository signs with
//! restic's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_DEFAULT_REGION`.

use crate::adapters::engine::docker::{self, Endpoint};
use clap::{Args, Subcommand};
use potluck_app::model::human_bytes as human;
use potluck_backup::declared::Coverage;
use potluck_backup::repo::{Location, Password, Repo};
use potluck_backup::run::{self, Report, Tags};
use potluck_backup::stream::Progress;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Show what the running stack's labels back up: each volume, covered, excluded or undeclared.
    Coverage {
        #[arg(long)]
        stack: String,
    },
    /// Back up the stack's declared volumes into the repository (created when absent).
    Create {
        #[command(flatten)]
        at: RepoArgs,
        /// Recorded as the snapshot's `app:` tag (default: the stack name).
        #[arg(long)]
        app: Option<String>,
        /// Recorded as the `recipe:` tag.
        #[arg(long)]
        recipe: Option<String>,
        /// Recorded as the `version:` tag.
        #[arg(long)]
        version: Option<String>,
        /// Why: manual, schedule, before-upgrade, drill.
        #[arg(long, default_value = "manual")]
        trigger: String,
        /// The snapshot's host (default: this machine's name).
        #[arg(long)]
        host: Option<String>,
    },
    /// List the stack's snapshots, oldest first.
    List {
        #[command(flatten)]
        at: RepoArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a snapshot (the stack's newest unless --snapshot names one) into the running stack.
    Restore {
        #[command(flatten)]
        at: RepoArgs,
        /// A snapshot id, or a unique prefix of one.
        #[arg(long)]
        snapshot: Option<String>,
        /// Restore a snapshot of another stack (a clone): volumes are matched by name.
        #[arg(long)]
        from_stack: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RepoArgs {
    /// The stack (abra's app name with dots as underscores).
    #[arg(long)]
    pub stack: String,
    /// The restic repository (a directory, local:/path, sftp:user@host:/path,
    /// sftp://user@host:port//path, s3:https://host/bucket/path); default $RESTIC_REPOSITORY.
    #[arg(long, env = "RESTIC_REPOSITORY")]
    pub repo: String,
}

/// The repository of the arguments, with the command line's SSH key or S3 keys where it is remote.
fn location(repo: &str) -> anyhow::Result<Location> {
    Ok(match Location::parse(repo)? {
        sftp @ Location::Sftp { .. } => {
            sftp.with_sftp_auth(potluck_backup::sftp::Auth::from_env().map_err(anyhow::Error::msg)?)
        }
        s3 @ Location::S3 { .. } => s3.with_s3_auth(potluck_backup::s3::Auth::from_env().map_err(anyhow::Error::msg)?),
        local => local,
    })
}

/// Steps as lines; progress at most once a second.
fn terminal_report() -> (Box<dyn Fn(String) + Send + Sync>, potluck_backup::stream::OnProgress) {
    let last = Mutex::new(Instant::now() - Duration::from_secs(2));
    let progress = Arc::new(move |p: &Progress| {
        if let Ok(mut at) = last.lock() {
            if at.elapsed() >= Duration::from_secs(1) {
                *at = Instant::now();
                eprintln!("  {} files, {} … {}", p.files, human(p.bytes), p.current);
            }
        }
    });
    (Box::new(|s: String| println!("{s}")), progress)
}

pub async fn run(command: BackupCommand) -> anyhow::Result<ExitCode> {
    let docker = docker::connect(&Endpoint::from_env()?, 120).await?;
    let (step, progress) = terminal_report();
    let report = Report { step: &*step, progress };
    match command {
        BackupCommand::Coverage { stack } => {
            let d = run::declarations(&docker, &stack).await?;
            if !d.enabled() {
                println!("{stack} declares no backups (no service has backupbot.backup=true)");
            }
            for s in &d.services {
                println!("service {} backs up{}", s.service, hooks_text(&s.hooks));
            }
            for (name, v) in &d.volumes {
                let how = match &v.coverage {
                    Coverage::Whole { service } => format!("backed up whole through {service}"),
                    Coverage::Paths { service, paths } => format!("backed up through {service}: {}", paths.join(", ")),
                    Coverage::Excluded { service } => format!("excluded by {service}"),
                    Coverage::Undeclared => "NOT backed up: no service that mounts it declares backups".into(),
                };
                println!("volume {name} ({}): {how}", v.docker_name);
            }
            for p in &d.problems {
                println!("problem: {p}");
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Create { at, app, recipe, version, trigger, host } => {
            let location = location(&at.repo)?;
            let password = Password::from_env()?;
            let host = host.unwrap_or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "potluck".into())
            });
            let tags = Tags { app: Some(app.unwrap_or_else(|| at.stack.clone())), recipe, version, trigger };
            let started = Instant::now();
            let done = run::backup(&docker, &at.stack, &location, &password, &host, &tags, &report).await?;
            for w in &done.warnings {
                eprintln!("warning: {w}");
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "snapshot {} saved: {} files, {} in {secs:.1} s ({}/s), checked",
                done.snapshot.short_id(),
                done.files,
                human(done.bytes),
                human((done.bytes as f64 / secs.max(0.001)) as u64)
            );
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::List { at, json } => {
            let location = location(&at.repo)?;
            let password = Password::from_env()?;
            let stack = at.stack.clone();
            let list =
                tokio::task::spawn_blocking(move || Repo::open_or_init(&location, &password)?.snapshots(Some(&stack)))
                    .await??;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no snapshot of {}", at.stack);
            } else {
                for s in &list {
                    println!(
                        "{}  {}  {:>8} files  {:>10}  {}",
                        s.short_id(),
                        s.time,
                        s.files,
                        human(s.bytes),
                        s.tag("trigger").unwrap_or("-")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Restore { at, snapshot, from_stack } => {
            let location = location(&at.repo)?;
            let password = Password::from_env()?;
            let from = from_stack.unwrap_or_else(|| at.stack.clone());
            let done =
                run::restore(&docker, &at.stack, &from, &location, &password, snapshot.as_deref(), &report).await?;
            for w in &done.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "snapshot {} restored into {}: {} files, {} ({})",
                done.snapshot.short_id(),
                at.stack,
                done.files,
                human(done.bytes),
                done.volumes.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn hooks_text(h: &potluck_backup::declared::Hooks) -> String {
    let mut parts = Vec::new();
    for (name, hook) in [
        ("backup pre-hook", &h.backup_pre),
        ("backup post-hook", &h.backup_post),
        ("restore pre-hook", &h.restore_pre),
        ("restore post-hook", &h.restore_post),
    ] {
        if let Some(hook) = hook {
            parts.push(format!("{name}: {hook}"));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}
