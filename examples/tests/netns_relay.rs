//! A peer reached by its id through a relay, across hosts (issue 14): three network namespaces
//! in a chain, `a` – `r` – `c`, `a` and `c` on two different subnets with no route between them
//! (`r` does not forward), `r` on both. `relay_node relay` runs on `r`, `relay_node serve`
//! (reserved as `node-c`) on `c`, and `relay_node call` on `a`:
//!
//! - `a` cannot reach `c` directly (no route: the connection fails at once);
//! - `a` calls `node-c` by id through `r` and gets its reply, also when `c`'s direct address is
//!   listed first (that strategy fails on `a`, the relay carries the call);
//! - a call to an id nobody knows fails at once (`unknown`);
//! - `c` leaves (killed); `a`'s next call gets `no-route` from `r`.
//!
//! Once over IPv4, once over IPv6. Needs root and iproute2, so plain `cargo test` does not run it
//! (`test = false`); `.ci/run` runs it in its namespace step:
//!
//! ```text
//! cargo test -p netaio-examples --test netns_relay
//! ```
//!
//! If a namespace cannot be created the test fails; it never skips. Guards kill the programs and
//! delete the namespaces even when an assertion fails; every wait is bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netaio_tests::netns::ip;

const RELAY_NODE: &str = env!("CARGO_BIN_EXE_relay_node");
/// Generous for one step: debug builds on a busy 2-core machine.
const LIMIT: Duration = Duration::from_secs(30);
const PORT: u16 = 9100;

/// `a` – `r` – `c`, each link a veth pair; deleted on drop.
struct Chain {
    names: Vec<String>,
}

impl Chain {
    /// Addresses: `a` and `r` on subnet 1, `r` and `c` on subnet 2 (`10.<net>.<k>.0/24`,
    /// `fd00:<net>:<k>::/64`); no routes beyond the two links.
    fn new(tag: &str, net: u8) -> Chain {
        let prefix = format!("rl{}-{tag}", std::process::id());
        let mut chain = Chain { names: Vec::new() };
        for n in ["a", "r", "c"] {
            let ns = format!("{prefix}-{n}");
            ip(&["netns", "add", &ns]);
            chain.names.push(ns.clone());
            for s in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv4.ip_forward=0",
                "net.ipv6.conf.all.forwarding=0",
            ] {
                ip(&["netns", "exec", &ns, "sysctl", "-qw", s]);
            }
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        let (a, r, c) = (chain.ns(0), chain.ns(1), chain.ns(2));
        ip(&[
            "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", r,
        ]);
        ip(&[
            "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1", "netns", r,
        ]);
        for (ns, dev, subnet, host) in [
            (a, "eth0", 1, 1),
            (r, "eth0", 1, 2),
            (r, "eth1", 2, 2),
            (c, "eth0", 2, 1),
        ] {
            let v4 = format!("10.{net}.{subnet}.{host}/24");
            let v6 = format!("fd00:{net}:{subnet}::{host}/64");
            ip(&["-n", ns, "addr", "add", &v4, "dev", dev]);
            ip(&["-n", ns, "addr", "add", &v6, "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        chain
    }

    fn ns(&self, i: usize) -> &str {
        &self.names[i]
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// A long-running `relay_node` in a namespace; killed on drop.
struct Program {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Program {
    fn spawn(ns: &str, args: &[&str]) -> Program {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, RELAY_NODE])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
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
        let mut err = child.stderr.take().unwrap();
        let name = format!("{ns} {}", args.first().copied().unwrap_or(""));
        thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            for l in s.lines() {
                eprintln!("[{name}] {l}");
            }
        });
        Program { child, lines }
    }

    /// Waits (within [`LIMIT`]) for a line starting with `prefix`.
    fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
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

/// Runs `relay_node call …` in `ns` to completion (it has its own timeouts): its output and how
/// long it took.
fn call(ns: &str, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", ns, RELAY_NODE, "call"])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run relay_node call");
    (out, started.elapsed())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn scenario(chain: &Chain, addr: impl Fn(u8, u8) -> String) {
    let (a, r, c) = (chain.ns(0), chain.ns(1), chain.ns(2));
    let relay = Program::spawn(r, &["relay", "--listen", &addr_port(&addr(0, 0), PORT)]);
    relay.expect("listening ");
    let r_for_a = addr_port(&addr(1, 2), PORT);
    let r_for_c = addr_port(&addr(2, 2), PORT);
    let c_direct = addr_port(&addr(2, 1), PORT);
    let service = Program::spawn(c, &["serve", "--relay", &r_for_c, "--id", "node-c"]);
    service.expect("reserved node-c");

    // No route from a to c: treating c's address as a relay's, the call cannot leave a.
    let (o, took) = call(
        a,
        &["--relay", &c_direct, "--id", "node-c", "--timeout", "5"],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stdout(&o).starts_with("unreachable "), "{o:?}");
    assert!(
        took < Duration::from_secs(5),
        "no route fails at once: {took:?}"
    );

    // By id through the relay, also with c's unreachable direct address tried first.
    let (o, _) = call(
        a,
        &[
            "--relay",
            &r_for_a,
            "--id",
            "node-c",
            "--message",
            "from a",
            "--count",
            "3",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| *l == "reply hello from node-c: from a")
            .count(),
        3,
        "{o:?}"
    );
    let (o, _) = call(
        a,
        &["--relay", &r_for_a, "--id", "node-c", "--direct", &c_direct],
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "reply hello from node-c: hi\n");

    // An id nobody knows: at once.
    let (o, took) = call(a, &["--relay", &r_for_a, "--id", "nobody", "--unlisted"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(2), "unknown\n"),
        "{o:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // c leaves: the relay answers no-route (it learns of the closed connection at once; a few
    // tries cover the moment between the kill and the relay reading the end of the stream).
    drop(service);
    let deadline = Instant::now() + LIMIT;
    loop {
        let (o, _) = call(
            a,
            &["--relay", &r_for_a, "--id", "node-c", "--timeout", "5"],
        );
        if o.status.code() == Some(3) {
            assert!(stdout(&o).ends_with("no-route\n"), "{o:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no no-route after c left: {o:?}");
        thread::sleep(Duration::from_millis(200));
    }
    drop(relay);
}

fn addr_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[test]
fn a_peer_on_another_subnet_is_called_through_a_relay_ipv4() {
    let chain = Chain::new("v4", 241);
    scenario(&chain, |subnet, host| {
        if subnet == 0 {
            "0.0.0.0".to_owned()
        } else {
            format!("10.241.{subnet}.{host}")
        }
    });
}

#[test]
fn a_peer_on_another_subnet_is_called_through_a_relay_ipv6() {
    let chain = Chain::new("v6", 242);
    scenario(&chain, |subnet, host| {
        if subnet == 0 {
            "::".to_owned()
        } else {
            format!("fd00:242:{subnet}::{host}")
        }
    });
}
