//! `hedge` as a user runs it: the driver starts its two servers and its client as processes,
//! reads the client's JSON line and reports. Untimed: only the bookkeeping across processes is
//! checked (nothing stalls, the soft timeout is never reached).

use std::process::Command;

use netaio_bench::Result;
use netaio_bench::hedge::HedgeResult;

fn run(extra: &[&str]) -> Result<HedgeResult> {
    let out = Command::new(env!("CARGO_BIN_EXE_hedge"))
        .args(["--count", "40", "--rounds", "4", "--stall-percent", "0"])
        .args([
            "--soft-us",
            "10000000",
            "--no-pin",
            "--no-fifo",
            "--no-nice",
        ])
        .args(extra)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().ok_or("no output")?;
    Ok(serde_json::from_str(last)?)
}

#[test]
fn the_driver_runs_servers_and_client_as_processes() -> Result<()> {
    for udp in [false, true] {
        // The client on two workers once, on its current-thread runtime once.
        let extra: &[&str] = if udp {
            &["--udp"]
        } else {
            &["--client-workers", "2"]
        };
        let r = run(extra)?;
        assert_eq!(r.setup, "processes");
        assert_eq!(r.transport, if udp { "udp" } else { "tcp" });
        assert!(!r.pinned, "--no-pin");
        assert_eq!(r.priority, "normal");
        assert_eq!((r.count, r.rounds, r.per_round.len()), (40, 4, 4));
        assert_eq!((r.hedged_by_second, r.soft_only_passed), (0, 0));
        assert_eq!(r.soft_us, 10_000_000);
    }
    Ok(())
}

#[test]
fn in_process_keeps_the_old_setup() -> Result<()> {
    let r = run(&["--in-process", "--concurrent", "4"])?;
    assert_eq!((r.setup.as_str(), r.concurrent), ("in-process", 4));
    assert_eq!((r.count, r.rounds), (40, 4));
    Ok(())
}
