//! The `potluck` command line.

use super::backup_cli::{self, BackupCommand};
use super::recipe_test_cli::{self, RecipeTestArgs};
use super::remote_cli::{self, AbraCommand, RemoteCommand};
use super::{recipe_cli, serve, stack_cli};
use crate::adapters::crypto::SecretBox;
use crate::adapters::db::Db;
use crate::config::Config;
use crate::domain::{audit, identity};
use crate::telemetry;
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
    /// Lint a recipe (a repository or a directory): abra's rules and the federation's policy.
    /// Exits 1 when there are errors.
    Lint {
        #[arg(long)]
        recipe: PathBuf,
        /// Lint this tag (default: the working tree, or HEAD of a bare repository).
        #[arg(long)]
        version: Option<String>,
    },
    /// Recipes against a real swarm, without a database.
    Recipe {
        #[command(subcommand)]
        command: RecipeCommand,
    },
    /// The recipe catalogue (Co-op Cloud's recipes.json), offline.
    Catalogue {
        #[command(subcommand)]
        command: CatalogueCommand,
    },
    /// The deploy engine on its own, without a database: render, deploy or remove a stack.
    Stack {
        #[command(subcommand)]
        command: StackCommand,
    },
    /// A collective's apps as abra's `~/.abra/servers` tree, against a remote Potluck with an API
    /// token (POTLUCK_URL, POTLUCK_TOKEN).
    Abra {
        #[command(subcommand)]
        command: AbraCommand,
    },
    /// A remote Potluck with an API token (POTLUCK_URL, POTLUCK_TOKEN), with abra's verbs.
    Remote {
        #[command(subcommand)]
        command: RemoteCommand,
    },
    /// Backups of a running stack into a restic repository, without a database (DOCKER_HOST,
    /// RESTIC_PASSWORD or RESTIC_PASSWORD_FILE).
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Print the swarm objects a deploy would create, as JSON.
    Render(StackArgs),
    /// Deploy to the Docker Engine of DOCKER_HOST (default: the local socket) and wait until converged.
    Deploy {
        #[command(flatten)]
        args: StackArgs,
        /// Return once the objects are created, without waiting for the tasks.
        #[arg(long)]
        detach: bool,
        /// Pin images to registry digests: always, changed or never (as `docker stack deploy`).
        #[arg(long, default_value = "always")]
        resolve_image: String,
        /// Remove services of the stack that the compose files no longer define.
        #[arg(long)]
        prune: bool,
        /// Seconds to wait for convergence (default: the recipe's coop-cloud.<stack>.timeout, else 300).
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Remove a stack's services, secrets, configs and networks (volumes stay).
    Rm {
        #[arg(long)]
        stack: String,
        /// Return without waiting for the tasks to stop.
        #[arg(long)]
        detach: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct StackArgs {
    /// The recipe: a git repository (bare or not) or a directory.
    #[arg(long)]
    pub recipe: PathBuf,
    /// Deploy this tagged version (default: the newest tag, or the working tree when there is none).
    #[arg(long, conflicts_with = "chaos")]
    pub version: Option<String>,
    /// Deploy the working tree as it is (abra's --chaos).
    #[arg(long)]
    pub chaos: bool,
    /// The app's env file (as ~/.abra/servers/<server>/<domain>.env).
    #[arg(long)]
    pub env: PathBuf,
    /// The stack name (abra derives it from the domain: dots become underscores).
    #[arg(long)]
    pub stack: String,
    /// Exactly what `docker stack deploy` does: no abra labels, no app env exposed to `app`.
    #[arg(long)]
    pub plain: bool,
}

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Build recipes.json from recipe repositories.
    Generate {
        /// A directory of recipe repositories (or one repository), or a file of git URLs.
        #[arg(long)]
        recipes: PathBuf,
        /// Where to write the catalogue (`-` for stdout).
        #[arg(long, default_value = "catalogue.json")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Print a new one-time link that makes whoever opens it a federation admin.
    BootstrapLink,
}

#[derive(Debug, Subcommand)]
pub enum RecipeCommand {
    /// Deploy a release (or a commit) as a throw-away app on DOCKER_HOST's swarm, wait until it
    /// converges and passes its healthchecks (after `--upgrade-from` first, when given), remove
    /// everything it made and check that nothing is left. Exits 0 only when green and clean.
    Test(RecipeTestArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and the signed checkpoints; exits non-zero naming the first broken
    /// event.
    Verify,
    /// Record a signed checkpoint of the chain's head now (Potluck also does every
    /// `audit_checkpoint_minutes`), also to `audit_checkpoint_export` when set.
    Checkpoint,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // No database, no configuration: the engine and the recipe tools alone.
    match cli.command {
        Command::Stack { command } => {
            telemetry::init("text");
            return stack_cli::run(command).await;
        }
        Command::Backup { command } => {
            telemetry::init("text");
            return backup_cli::run(command).await;
        }
        Command::Abra { command } => return remote_cli::abra(command).await,
        Command::Remote { command } => return remote_cli::remote(command).await,
        Command::Recipe { command: RecipeCommand::Test(args) } => {
            telemetry::init("text");
            return recipe_test_cli::run(args).await;
        }
        Command::Lint { recipe, version } => {
            return tokio::task::spawn_blocking(move || recipe_cli::lint_command(&recipe, version.as_deref())).await?;
        }
        Command::Catalogue { command: CatalogueCommand::Generate { recipes, out } } => {
            return tokio::task::spawn_blocking(move || recipe_cli::generate_command(&recipes, &out)).await?;
        }
        _ => {}
    }
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
        Command::Stack { .. }
        | Command::Abra { .. }
        | Command::Remote { .. }
        | Command::Backup { .. }
        | Command::Recipe { .. }
        | Command::Lint { .. }
        | Command::Catalogue { .. } => {}
        Command::Audit { command: AuditCommand::Checkpoint } => {
            let db = Db::connect(&config.database_url).await?;
            db.migrate().await?;
            let secrets = SecretBox::load_or_create(config.secret_key.as_deref(), &config.data_dir)?;
            match audit::checkpoint(&db, &secrets, config.audit_checkpoint_export.as_deref()).await? {
                Some(cp) => println!("checkpoint of event {} recorded ({})", cp.seq, cp.hash),
                None => println!("the chain's head already has a checkpoint (or the log is empty)"),
            }
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let db = Db::connect(&config.database_url).await?;
            db.migrate().await?;
            let secrets = SecretBox::load_or_create(config.secret_key.as_deref(), &config.data_dir)?;
            let report = audit::verify(&db, Some(&secrets), config.audit_checkpoint_export.as_deref()).await?;
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
