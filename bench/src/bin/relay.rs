//! The relay scenario: `relay [--count N] [--concurrency K] [--sizes 64,60000]`. Request/response
//! directly and through a relay, in this process; prints a table and one JSON line.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use netaio_bench::relay::{RelayArgs, run};

fn main() -> ExitCode {
    let args = RelayArgs::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(rows) => {
            let out = &mut std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{:>7}  {:>14} {:>10}  {:>14} {:>10}  {:>6}",
                "bytes", "direct calls/s", "MB/s", "relay calls/s", "MB/s", "ratio"
            );
            for r in &rows {
                let _ = writeln!(
                    out,
                    "{:>7}  {:>14.0} {:>10.1}  {:>14.0} {:>10.1}  {:>6.2}",
                    r.size,
                    r.direct.calls_per_s,
                    r.direct.mb_per_s,
                    r.relayed.calls_per_s,
                    r.relayed.mb_per_s,
                    r.ratio
                );
            }
            let _ = writeln!(out, "{}", serde_json::to_string(&rows).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
