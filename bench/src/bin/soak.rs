//! The soak run: `soak [--clients 50] [--minutes 10] [--restarts 4] [--size 256]`. N clients send
//! requests to an in-process server for M minutes, with the server restarted (graceful stop, same
//! address, clients reconnecting) between equal rounds; it prints each round and fails (exit 1)
//! when a request the server accepted lost its reply or resident memory kept growing.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use netaio_bench::soak::{RoundLength, SoakConfig, run};

/// Soak netaio: many clients for minutes, with server restarts; lost replies and memory.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Cli {
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Total length of the run, in minutes (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Server restarts, evenly spaced.
    #[arg(long, default_value_t = 4)]
    restarts: u32,
    /// Content bytes per request (at least 16).
    #[arg(long, default_value_t = 256)]
    size: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rounds = cli.restarts + 1;
    let secs = (cli.minutes.max(0.0) * 60.0 / f64::from(rounds)).max(0.1);
    let config = SoakConfig {
        clients: cli.clients.max(1),
        rounds,
        round: RoundLength::Time(Duration::from_secs_f64(secs)),
        size: cli.size,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run(&config)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (i, served) in report.per_round.iter().enumerate() {
        let rss = report
            .rss_kib
            .get(i)
            .map_or("n/a".into(), |k| format!("{k} KiB"));
        println!("round {}: {served} replies, RSS {rss}", i + 1);
    }
    println!(
        "handled {}, replied {}, refused (typed error, not accepted) {}, lost {}",
        report.handled, report.replied, report.refused, report.lost
    );
    let plateau = report.rss_plateaued();
    println!("resident memory plateaued: {plateau}");
    if report.lost == 0 && plateau {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
