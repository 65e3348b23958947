//! The UDP example programs, run as a user runs them on 127.0.0.1: two `udp_node`s (one given
//! `--peer`), three `discovery` nodes (plus one without the secret) finding each other by
//! multicast, and usage errors.
//!
//! Every child is killed when its guard drops, and every wait is bounded.

// Helpers are test code too: a panic is how they report a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const UDP_NODE: &str = env!("CARGO_BIN_EXE_udp_node");
const DISCOVERY: &str = env!("CARGO_BIN_EXE_discovery");

/// How long any one program may take to do something (debug builds on a busy 2-core machine).
const LIMIT: Duration = Duration::from_secs(60);

/// A running example program: its stdout lines, kept as they arrive; killed on drop.
struct Program {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Program {
    fn start(path: &'static str, args: &[&str]) -> Program {
        let mut cmd = Command::new(path);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        cmd.stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {path}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let name = path.rsplit('/').next().unwrap_or(path);
        let name: &'static str = if name.contains("udp_node") {
            "udp_node"
        } else {
            "discovery"
        };
        Program {
            name,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (seen already or arriving within `limit`) for which `pred` holds.
    fn expect(&mut self, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "{} did not print {what} within {limit:?}; it printed {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Wait (bounded) for the program to exit on its own; returns its status and all its output.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) => self.seen.push(l),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{} did not exit within {limit:?}", self.name)
                }
            }
        }
        self.child.wait().expect("wait")
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_of(line: &str) -> u16 {
    line.strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not `listening P`: {line:?}"))
}

#[test]
fn udp_node_with_peer_advertises_gets_its_echo_and_says_goodbye() {
    let mut a = Program::start(
        UDP_NODE,
        &["--bind", "127.0.0.1", "--port", "0", "--id", "alpha"],
    );
    let pa = port_of(&a.expect(LIMIT, "listening", |l| l.starts_with("listening ")));
    let peer = format!("127.0.0.1:{pa}");
    let mut b = Program::start(
        UDP_NODE,
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--id",
            "beta",
            "--peer",
            &peer,
            "--message",
            "hi there",
            "--seconds",
            "2",
        ],
    );
    b.expect(LIMIT, "its reply", |l| {
        l == r#"reply RESPOND_URI "echo" "hi there""#
    });
    b.expect(LIMIT, "alpha discovered", |l| {
        l == format!("discovered alpha {peer}")
    });
    a.expect(LIMIT, "beta discovered", |l| {
        l.starts_with("discovered beta 127.0.0.1:")
    });
    let status = b.wait_exit(LIMIT);
    assert!(status.success(), "{status:?}");
    // On stop, beta told alpha it was leaving.
    a.expect(LIMIT, "beta leaving", |l| l == "disconnected beta");
    assert!(!a.seen.iter().any(|l| l == "expired beta"));
}

#[test]
fn three_discovery_nodes_find_each_other_and_one_without_the_secret_is_ignored() {
    let group_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let app = format!("example-test-{}", std::process::id());
    let args = |id: &'static str, secret: Option<&'static str>, seconds: Option<&'static str>| {
        let mut v = vec![
            "--bind".to_owned(),
            "127.0.0.1".into(),
            "--group-port".into(),
            group_port.clone(),
            "--interval-ms".into(),
            "300".into(),
            "--app".into(),
            app.clone(),
            "--id".into(),
            id.into(),
        ];
        if let Some(s) = secret {
            v.extend(["--secret".into(), s.into()]);
        }
        if let Some(s) = seconds {
            v.extend(["--seconds".into(), s.into()]);
        }
        v
    };
    let start = |v: Vec<String>| {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        Program::start(DISCOVERY, &refs)
    };
    let mut intruder = start(args("intruder", None, None));
    let mut d1 = start(args("d1", Some("s3cret"), None));
    let mut d2 = start(args("d2", Some("s3cret"), None));
    let mut d3 = start(args("d3", Some("s3cret"), Some("3")));
    for d in [&mut d1, &mut d2, &mut d3] {
        d.expect(LIMIT, "its group", |l| {
            l == format!("group 239.255.110.97:{group_port}")
        });
    }
    for (d, others) in [
        (&mut d1, ["d2", "d3"]),
        (&mut d2, ["d1", "d3"]),
        (&mut d3, ["d1", "d2"]),
    ] {
        for o in others {
            d.expect(LIMIT, &format!("{o} discovered"), |l| {
                l.starts_with(&format!("discovered {o} 127.0.0.1:"))
            });
        }
    }
    // The intruder hears the others (it checks nothing) ...
    intruder.expect(LIMIT, "d1 discovered", |l| l.starts_with("discovered d1 "));
    let status = d3.wait_exit(LIMIT);
    assert!(status.success(), "{status:?}");
    for d in [&mut d1, &mut d2] {
        d.expect(LIMIT, "d3 leaving", |l| l == "disconnected d3");
    }
    // ... but none of them ever recorded it.
    for d in [&d1, &d2, &d3] {
        assert!(
            !d.seen.iter().any(|l| l.contains("intruder")),
            "{:#?}",
            d.seen
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for (program, args) in [
        (UDP_NODE, &["--port", "not-a-port"][..]),
        (UDP_NODE, &["--bogus", "1"][..]),
        (DISCOVERY, &["--interval-ms", "soon"][..]),
        (DISCOVERY, &["--group", "not-an-ip"][..]),
    ] {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{program} {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Usage:"), "{program} {args:?}: {err}");
    }
    // A group of the wrong family fails at bind, with a message, exit 1.
    let out = Command::new(DISCOVERY)
        .args([
            "--bind",
            "127.0.0.1",
            "--group",
            "ff02::1",
            "--seconds",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("different families"));
}

#[test]
fn udp_node_exits_1_when_its_peer_does_not_answer() {
    // A bound socket that never answers: the echo request times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = silent.local_addr().unwrap().to_string();
    let mut b = Program::start(
        UDP_NODE,
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--peer",
            &peer,
            "--timeout",
            "0.5",
            "--seconds",
            "2",
        ],
    );
    b.expect(LIMIT, "the failed request", |l| l.starts_with("error "));
    let status = b.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(1), "{:#?}", b.seen);
}
