//! The `potluck` command line.

use crate::config::Config;
use crate::db::Db;
use crate::{audit, identity, serve, telemetry};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "potluck", version, about = "Shared infrastructure for a federation of tech co-operatives")]
pub struct Cli {
    /// TOML configuration file (default: $POTLUCK_CONFIG, else ./potluck.toml when it exists).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Potluck (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets redacted).
    PrintConfig,
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Print a new one-time link that makes whoever opens it a federation admin.
    BootstrapLink,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exits non-zero naming the first broken event.
    Verify,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config)?;
    telemetry::init(&config.log_format);
    match cli.command {
        Command::Serve => serve::serve(config).await?,
        Command::Migrate => {
            let db = Db::connect(&config.database_url).await?;
            db.migrate().await?;
            println!("database is up to date ({:?})", db.backend());
        }
        Command::PrintConfig => print!("{}", config.to_redacted_toml()),
        Command::Admin { command: AdminCommand::BootstrapLink } => {
            let db = Db::connect(&config.database_url).await?;
            db.migrate().await?;
            let link = identity::bootstrap::create_link(&db, &config.public_base()).await?;
            println!("{link}");
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let db = Db::connect(&config.database_url).await?;
            db.migrate().await?;
            let report = audit::verify(&db).await?;
            match report.broken {
                None => println!("audit log intact: {} events, chain verified", report.events),
                Some(b) => {
                    eprintln!("audit log BROKEN at event {}: {}", b.seq, b.reason);
                    eprintln!("{} events before it verified", report.events);
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
