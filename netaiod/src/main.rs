//! `netaiod -c FILE`: runs the daemon until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use netaiod::{Daemon, DaemonConfig};

/// A daemon that gives local applications gossip (the gossip module API).
#[derive(Debug, Parser)]
#[command(name = "netaiod", version)]
struct Args {
    /// The INI configuration file.
    #[arg(short = 'c', long = "config")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let config = match DaemonConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("netaiod: {e}");
            return ExitCode::FAILURE;
        }
    };
    let daemon = match Daemon::start(config).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("netaiod: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The tests and scripts wait for this line.
    println!(
        "netaiod p2p {} api {:?}",
        daemon.node().addr(),
        daemon.api_addrs()
    );
    wait_for_signal().await;
    daemon.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
