//! `relay_node` as README's "Peers behind a relay" runs it, on loopback: a relay, a service
//! reserved behind it, a client calling the service by id (its unreachable direct address tried
//! first), `unknown` for an unlisted id, and `no-route` once the service has left (Ctrl-C).

// Test code (clippy.toml allows these only inside `#[test]` functions): a panic reports a failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const RELAY_NODE: &str = env!("CARGO_BIN_EXE_relay_node");
const LIMIT: Duration = Duration::from_secs(60);

/// A running `relay_node`; killed on drop.
struct Program {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Program {
    fn start(args: &[&str]) -> Program {
        let mut cmd = Command::new(RELAY_NODE);
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("RUST_LOG", "warn");
        let mut child = cmd.spawn().expect("spawn relay_node");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Program { child, lines }
    }

    fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line {prefix:?} within {LIMIT:?}: {e}"),
            }
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call(args: &[&str]) -> Output {
    Command::new(RELAY_NODE)
        .arg("call")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run relay_node call")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_service_behind_a_relay_is_called_by_id_then_leaves() {
    let relay = Program::start(&["relay", "--listen", "127.0.0.1:0"]);
    let addr = relay
        .expect("listening ")
        .trim_start_matches("listening ")
        .to_owned();
    let mut service = Program::start(&["serve", "--relay", &addr, "--id", "node-c"]);
    service.expect("reserved node-c");
    // A port where nothing listens, tried first.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let o = call(&[
        "--relay",
        &addr,
        "--id",
        "node-c",
        "--direct",
        &dead,
        "--message",
        "from a",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o), "reply hello from node-c: from a\n");
    let o = call(&["--relay", &addr, "--id", "nobody", "--unlisted"]);
    assert_eq!((o.status.code(), text(&o).as_str()), (Some(2), "unknown\n"));
    // Ctrl-C: the service closes its connection, and with it its reservation.
    let pid = service.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(service.child.wait().unwrap().success());
    // (Tried again while the relay may not yet have read the end of the connection.)
    let deadline = Instant::now() + LIMIT;
    let o = loop {
        let o = call(&[
            "--relay",
            &addr,
            "--id",
            "node-c",
            "--direct",
            &dead,
            "--timeout",
            "2",
        ]);
        if o.status.code() == Some(3) || Instant::now() > deadline {
            break o;
        }
    };
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let out = text(&o);
    assert!(out.starts_with(&format!("tried tcp {dead}: ")), "{out}");
    assert!(out.ends_with("no-route\n"), "{out}");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let o = Command::new(RELAY_NODE).arg("--help").output().unwrap();
    assert!(o.status.success());
    assert!(text(&o).contains("serve"));
    let o = Command::new(RELAY_NODE)
        .args(["call", "--id", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "missing --relay: {o:?}");
}
