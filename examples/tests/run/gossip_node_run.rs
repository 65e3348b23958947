//! `gossip_node` as a user runs it: `--help`, usage errors, and two nodes on loopback, the
//! second publishing (`--publish`, then a line typed on its standard input) to the first.

// Test code (clippy.toml allows these only inside `#[test]` functions): a panic reports a failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const GOSSIP_NODE: &str = env!("CARGO_BIN_EXE_gossip_node");
const LIMIT: Duration = Duration::from_secs(60);

/// A running `gossip_node`; killed on drop.
struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Node {
    fn start(args: &[&str]) -> Node {
        let mut cmd = Command::new(GOSSIP_NODE);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn().expect("spawn gossip_node");
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Node {
            child,
            stdin,
            lines,
            log: Vec::new(),
        }
    }

    /// The first line (from now on) that `pred` accepts, within [`LIMIT`].
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) => {
                    self.log.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!("no {what} within {LIMIT:?}; output: {:#?}", self.log),
            }
        }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn help_and_usage_errors() {
    let help = Command::new(GOSSIP_NODE).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--bootstrap",
        "--topic",
        "--publish",
        "--secret",
        "--seed",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help: {text}");
    }
    for bad in [
        &["--bogus"][..],
        &["--seed", "not hex"],
        &["--listen", "nowhere"],
    ] {
        let out = Command::new(GOSSIP_NODE).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Usage: gossip_node"), "{bad:?}: {err}");
    }
}

#[test]
fn two_nodes_on_loopback() {
    let mut a = Node::start(&["--listen", "127.0.0.1:0", "--topic", "news"]);
    let listening = a.wait_for("a's address", |l| l.starts_with("listening "));
    let addr = listening.trim_start_matches("listening ").to_owned();
    let mut b = Node::start(&[
        "--bootstrap",
        &addr,
        "--topic",
        "news",
        "--publish",
        "hello from b",
    ]);
    let b_addr = b
        .wait_for("b's address", |l| l.starts_with("listening "))
        .trim_start_matches("listening ")
        .to_owned();
    b.wait_for("b's neighbour", |l| l == format!("neighbor up {addr}"));
    b.wait_for("b's publish", |l| l.starts_with("published "));
    a.wait_for("a's delivery", |l| {
        l == format!("bulletin news from {b_addr}: hello from b")
    });
    b.say("typed on stdin");
    a.wait_for("the typed line", |l| {
        l == format!("bulletin news from {b_addr}: typed on stdin")
    });
}
