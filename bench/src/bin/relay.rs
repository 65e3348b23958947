//! The relay scenario: `relay [--count N] [--concurrency K] [--sizes 64,60000] [--rounds R]
//! [--transport tcp|udp] [--in-process] [--no-pin] [--no-fifo] [--no-nice] [--server-cpu 0|1]
//! [--mode both|direct|relay] [--udp-buffer BYTES] [--proxy]`.
//! Request/response directly and through a relay, each role a process of its own (the relay on
//! CPU 1; caller, server and service on CPU 0), both paths interleaved in R rounds; prints a
//! table (per round, the medians, each role's CPU per call) and one JSON line.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use netaio_bench::relay::{RelayCli, RelayRole, RelayRow, RoleCpu, roles};

fn cpu(v: &[RoleCpu]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|c| format!("{} {:.1}", c.role, c.us_per_call))
        .collect();
    parts.join(", ")
}

fn report(out: &mut impl Write, rows: &[RelayRow]) -> std::io::Result<()> {
    if let Some(r) = rows.first() {
        writeln!(
            out,
            "{} over {}{}, {} calls per measurement, {} in flight ({}{}), load average {} → {}",
            r.setup,
            r.transport,
            if r.relayed_by == "proxy" {
                ", relayed by a plain proxy"
            } else {
                ""
            },
            r.count,
            r.concurrency,
            match (r.pinned, r.server_cpu) {
                (false, _) => "not pinned".to_owned(),
                (true, cpu) => format!("pinned, server on CPU {cpu}"),
            },
            if r.priority.is_empty() {
                String::new()
            } else {
                format!(", {}", r.priority)
            },
            r.load_average[0],
            r.load_average[1]
        )?;
    }
    writeln!(
        out,
        "{:>7}  {:>5}  {:>14} {:>10}  {:>14} {:>10}  {:>6}",
        "bytes", "round", "direct calls/s", "MB/s", "relay calls/s", "MB/s", "ratio"
    )?;
    for r in rows {
        let line = |out: &mut dyn Write,
                    round: &str,
                    d: &netaio_bench::relay::Rates,
                    rel: &netaio_bench::relay::Rates,
                    ratio: f64| {
            writeln!(
                out,
                "{:>7}  {round:>5}  {:>14.0} {:>10.1}  {:>14.0} {:>10.1}  {:>6.2}",
                r.size, d.calls_per_s, d.mb_per_s, rel.calls_per_s, rel.mb_per_s, ratio
            )
        };
        for (i, x) in r.per_round.iter().enumerate() {
            line(out, &(i + 1).to_string(), &x.direct, &x.relayed, x.ratio)?;
        }
        line(out, "med", &r.direct, &r.relayed, r.ratio)?;
        if !r.direct_cpu.is_empty() || !r.relayed_cpu.is_empty() {
            writeln!(
                out,
                "{:>7}  CPU µs per call: direct {}; relayed {}",
                "",
                cpu(&r.direct_cpu),
                cpu(&r.relayed_cpu)
            )?;
        }
    }
    writeln!(out, "{}", serde_json::to_string(rows).unwrap_or_default())
}

fn main() -> ExitCode {
    let cli = RelayCli::parse();
    let result = match cli.role {
        Some(RelayRole::Server(a)) => roles::server_role(a),
        Some(RelayRole::Relay(a)) => roles::relay_role(a),
        Some(RelayRole::Service(a)) => roles::service_role(a),
        Some(RelayRole::Caller(a)) => roles::caller_role(a),
        Some(RelayRole::Proxy(a)) => roles::proxy_role(a),
        None => roles::run(&cli.driver).map(|rows| {
            // A closed stdout (`| head`) is no error worth a failure.
            let _ = report(&mut std::io::stdout().lock(), &rows);
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
