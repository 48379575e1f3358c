//! `potluck`: see `potluck --help`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    potluck_server::adapters::git::set_network_timeouts();
    let cli = potluck_server::transport::cli::Cli::parse();
    // At least two workers, even on a one-CPU machine: Leptos' streaming SSR has been seen to
    // stall a page on a single worker (leptos-rs/leptos#4647).
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(2);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("potluck: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(potluck_server::transport::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("potluck: {e:#}");
            ExitCode::from(2)
        }
    }
}
