//! `relay` as a user runs it: the driver starts the server, the relay, the service and the caller
//! as processes, reads the caller's JSON line and reports. Untimed: only that both paths were
//! measured (every call answered, or the caller fails) and the bookkeeping across processes.

use std::process::Command;

use netaio_bench::Result;
use netaio_bench::relay::{RelayRow, RoleCpu};

fn run(extra: &[&str]) -> Result<Vec<RelayRow>> {
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["--count", "64", "--concurrency", "4", "--rounds", "2"])
        .args(["--no-pin", "--no-fifo", "--no-nice"])
        .args(extra)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().ok_or("no output")?;
    Ok(serde_json::from_str(last)?)
}

fn roles(v: &[RoleCpu]) -> Vec<&str> {
    v.iter().map(|c| c.role.as_str()).collect()
}

/// Both paths measured in every round, at every size.
fn check(rows: &[RelayRow], sizes: &[usize], transport: &str, setup: &str) {
    assert_eq!(rows.iter().map(|r| r.size).collect::<Vec<_>>(), sizes);
    for r in rows {
        assert_eq!((r.transport.as_str(), r.setup.as_str()), (transport, setup));
        assert_eq!((r.count, r.concurrency, r.per_round.len()), (64, 4, 2));
        for x in &r.per_round {
            assert!(x.direct.calls_per_s > 0.0, "{r:?}");
            assert!(x.relayed.calls_per_s > 0.0, "{r:?}");
            assert!(x.ratio > 0.0, "{r:?}");
        }
        assert!(r.ratio > 0.0 && r.direct.mb_per_s > 0.0 && r.relayed.mb_per_s > 0.0);
        assert!(!r.pinned, "--no-pin");
        assert_eq!(r.priority, "normal");
    }
}

#[test]
fn the_driver_runs_each_role_as_a_process_over_tcp_and_udp() -> Result<()> {
    for (transport, sizes) in [("tcp", [64, 60_000]), ("udp", [64, 1_200])] {
        let rows = run(&["--transport", transport])?;
        check(&rows, &sizes, transport, "processes");
        for r in &rows {
            assert_eq!(r.relayed_by, "netaio");
            // The caller read its own CPU time and each other role's.
            assert_eq!(roles(&r.direct_cpu), ["caller", "server"]);
            assert_eq!(roles(&r.relayed_cpu), ["caller", "relay", "service"]);
            let relay = r.relayed_cpu.iter().find(|c| c.role == "relay");
            assert!(relay.is_some_and(|c| c.us_per_call > 0.0), "{r:?}");
        }
    }
    Ok(())
}

#[test]
fn a_plain_proxy_stands_in_for_the_relay() -> Result<()> {
    let rows = run(&["--proxy", "--sizes", "64,60000"])?;
    check(&rows, &[64, 60_000], "tcp", "processes");
    for r in &rows {
        assert_eq!(r.relayed_by, "proxy");
        // The proxy's CPU is read as the relay's, the server answers for the service.
        assert_eq!(roles(&r.relayed_cpu), ["caller", "relay", "service"]);
        let proxy = r.relayed_cpu.iter().find(|c| c.role == "relay");
        assert!(proxy.is_some_and(|c| c.us_per_call > 0.0), "{r:?}");
    }
    let rows = run(&["--proxy", "--in-process", "--sizes", "100"])?;
    check(&rows, &[100], "tcp", "in-process");
    assert_eq!(rows[0].relayed_by, "proxy");
    // A TCP proxy only.
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["--proxy", "--transport", "udp", "--count", "10"])
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--proxy"));
    Ok(())
}

#[test]
fn in_process_keeps_the_old_setup() -> Result<()> {
    let rows = run(&["--in-process", "--sizes", "100"])?;
    check(&rows, &[100], "tcp", "in-process");
    assert_eq!(roles(&rows[0].relayed_cpu), ["process"]);
    // One path only (for callgrind): the other is not measured.
    let rows = run(&["--in-process", "--sizes", "100", "--mode", "direct"])?;
    assert!(rows[0].relayed.calls_per_s.is_nan() && rows[0].ratio.is_nan());
    assert!(rows[0].direct.calls_per_s > 0.0);
    Ok(())
}
