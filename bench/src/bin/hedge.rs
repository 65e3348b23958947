//! The hedging scenario: `hedge [--count N] [--rounds R] [--stall-ms MS] [--stall-percent P]
//! [--soft-us US] [--udp] [--concurrent N] [--in-process] [--no-pin] [--no-fifo] [--no-nice]`. Two netaio servers, one
//! stalling on a share of its requests, each a process of its own (`hedge server`, CPU 0), and a
//! client process (`hedge client`, CPU 1) running the phases interleaved in R rounds: p50/p99 of
//! calls to each server alone and of hedged calls over both, and per round the hedged p99 ÷ the
//! fast p99. Prints a table and one JSON line.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use netaio_bench::hedge::{HedgeCli, HedgeResult, HedgeRole, Latency, TARGET_RATIO, roles};

fn row(out: &mut impl Write, name: &str, l: &Latency) -> std::io::Result<()> {
    writeln!(
        out,
        "{name:<28} p50 {:>9.1} µs   p99 {:>9.1} µs   max {:>9.1} µs",
        l.p50_us, l.p99_us, l.max_us
    )
}

fn report(out: &mut impl Write, r: &HedgeResult) -> std::io::Result<()> {
    writeln!(
        out,
        "{} calls per phase, {} rounds interleaved, {} ({}{}), load average {} → {}",
        r.count,
        r.rounds,
        r.setup,
        if r.pinned { "pinned" } else { "not pinned" },
        if r.priority.is_empty() {
            String::new()
        } else {
            format!(", {}", r.priority)
        },
        r.load_average[0],
        r.load_average[1]
    )?;
    row(out, "fast server alone", &r.fast_only)?;
    row(out, "stalling server alone", &r.stalling_only)?;
    row(
        out,
        &format!("stalling, soft {} µs", r.soft_us),
        &r.soft_only,
    )?;
    writeln!(
        out,
        "  of which passed their soft timeout: {} of {}",
        r.soft_only_passed, r.count
    )?;
    row(out, &format!("hedged (soft {} µs)", r.soft_us), &r.hedged)?;
    writeln!(
        out,
        "hedged calls answered by the fast server: {} of {}{}",
        r.hedged_by_second,
        r.count,
        r.budget
            .map(|b| format!(" (hedge budget {b})"))
            .unwrap_or_default()
    )?;
    let ratios: Vec<String> = r
        .per_round
        .iter()
        .map(|x| format!("{:.2}", x.ratio))
        .collect();
    writeln!(
        out,
        "hedged p99 ÷ fast p99 per round: {}; median {}; {} of {} rounds ≤ {TARGET_RATIO}",
        ratios.join(" "),
        r.ratio_median.map_or("-".into(), |m| format!("{m:.2}")),
        r.rounds_meeting_target,
        r.per_round.len()
    )?;
    writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default())
}

fn main() -> ExitCode {
    let cli = HedgeCli::parse();
    let result = match cli.role {
        Some(HedgeRole::Server(s)) => roles::server(s),
        Some(HedgeRole::Client(c)) => roles::client(c),
        None => roles::run(&cli.driver).map(|r| {
            // A closed stdout (`| head`) is no error worth a failure.
            let _ = report(&mut std::io::stdout().lock(), &r);
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
