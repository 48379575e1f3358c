//! `potluck`: see `potluck --help`.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    potluck_server::recipes::store::set_network_timeouts();
    let cli = potluck_server::cli::Cli::parse();
    match potluck_server::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("potluck: {e:#}");
            ExitCode::from(2)
        }
    }
}
