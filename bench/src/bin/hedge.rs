//! The hedging scenario: `hedge [--count N] [--stall-ms MS] [--stall-percent P] [--soft-us US]`.
//! Two netaio servers in this process, one stalling on a share of its requests; p50/p99 of calls
//! to each alone and of hedged calls over both. Prints a table and one JSON line.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use netaio_bench::hedge::{HedgeArgs, Latency, run};

fn row(out: &mut impl Write, name: &str, l: &Latency) {
    let _ = writeln!(
        out,
        "{name:<28} p50 {:>9.1} µs   p99 {:>9.1} µs   max {:>9.1} µs",
        l.p50_us, l.p99_us, l.max_us
    );
}

fn main() -> ExitCode {
    let args = HedgeArgs::parse();
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
        Ok(r) => {
            // A closed stdout (`| head`) is no error worth a panic.
            let out = &mut std::io::stdout().lock();
            row(out, "fast server alone", &r.fast_only);
            row(out, "stalling server alone", &r.stalling_only);
            row(
                out,
                &format!("stalling, soft {} µs", r.soft_us),
                &r.soft_only,
            );
            let _ = writeln!(
                out,
                "  of which passed their soft timeout: {} of {}",
                r.soft_only_passed, args.count
            );
            row(out, &format!("hedged (soft {} µs)", r.soft_us), &r.hedged);
            let _ = writeln!(
                out,
                "hedged calls answered by the fast server: {} of {}",
                r.hedged_by_second, args.count
            );
            let _ = writeln!(out, "{}", serde_json::to_string(&r).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
