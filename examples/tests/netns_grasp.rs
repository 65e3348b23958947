//! GRASP across hosts: `grasp_peer listen` and `grasp_peer initiate` in network namespaces, over
//! IPv6 with unique-local addresses, with link-local addresses only, and over IPv4, in both
//! directions; then three namespaces in a chain, a relay node in the middle, where discovery
//! goes through the relay (answered with `O_DIVERT`) and the flood is relayed with its loop
//! count decremented.
//!
//! Needs root and iproute2, so plain `cargo test` does not run it (`test = false`); `.ci/run`
//! runs it in its namespace step:
//!
//! ```text
//! cargo test -p netaio-examples --test netns_grasp
//! ```
//!
//! If a namespace cannot be created the test fails; it never skips. The LAN is
//! `netaio_tests::netns::Lan` (a bridge; host `i` has `eth0` with `10.233.0.<i>/24` and
//! `fd00:233::<i>/64`); the chain is built here. Guards kill the peers and delete the
//! namespaces even when an assertion fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netaio_tests::netns::{Lan, ip};

const PEER: &str = env!("CARGO_BIN_EXE_grasp_peer");
const BRIGGS: &str = env!("CARGO_BIN_EXE_grasp_briggs");
const GRAY: &str = env!("CARGO_BIN_EXE_grasp_gray");

/// A `grasp_peer` in a namespace, its stdout lines collected; killed on drop.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Peer {
    fn spawn(ns: &str, args: &[&str]) -> Peer {
        Peer::spawn_program(ns, PEER, args)
    }

    fn spawn_program(ns: &str, program: &str, args: &[&str]) -> Peer {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "netaio_grasp=info");
        }
        let mut child = cmd.spawn().expect("spawn grasp_peer");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Its log goes to the test's stderr, shown when the test fails.
        let mut err = child.stderr.take().unwrap();
        let tag = format!("[{ns} {}]", args.first().copied().unwrap_or(""));
        thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            for l in s.lines() {
                eprintln!("{tag} {l}");
            }
        });
        Peer {
            child,
            lines: rx,
            log: Vec::new(),
        }
    }

    /// Wait for a line `pred` accepts, within `limit`.
    fn wait_for(&mut self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.log.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!("no {what} within {limit:?}; output: {:#?}", self.log),
            }
        }
    }

    /// Every line until it exits (within `limit`), and its exit status.
    fn finish(mut self, limit: Duration) -> (bool, Vec<String>) {
        let deadline = Instant::now() + limit;
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.log.push(l);
        }
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not exit: {:#?}", self.log);
            thread::sleep(Duration::from_millis(50));
        };
        (status.success(), std::mem::take(&mut self.log))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const STEPS: [&str; 5] = [
    "discover",
    "negotiate",
    "decline",
    "synchronize",
    "get_flood",
];

/// Run the scenario: the listener in `listen_ns`, the initiator in `init_ns`; return the
/// initiator's output after checking every step passed.
fn scenario(listen_ns: &str, init_ns: &str, extra: &[&str], relay: Option<&str>) -> Vec<String> {
    let mut args = vec!["--interface", "eth0", "--secs", "90"];
    args.extend_from_slice(extra);
    let _relay = relay.map(|ns| {
        let mut r = Peer::spawn(
            ns,
            &[
                "relay",
                "--interface",
                "eth0",
                "--interface",
                "eth1",
                "--secs",
                "90",
            ],
        );
        r.wait_for("READY", Duration::from_secs(30), |l| l == "READY");
        r
    });
    let mut listener = Peer::spawn(listen_ns, &[&["listen"], &args[..]].concat());
    listener.wait_for("READY", Duration::from_secs(30), |l| l == "READY");
    let init = Peer::spawn(init_ns, &[&["initiate"], &args[..]].concat());
    let (ok, out) = init.finish(Duration::from_secs(80));
    for step in STEPS {
        assert!(
            out.iter().any(|l| l.starts_with(&format!("PASS {step}"))),
            "{step}: {out:#?}"
        );
    }
    assert!(out.iter().any(|l| l == "RESULT ALL-PASS"), "{out:#?}");
    assert!(ok, "{out:#?}");
    out
}

fn line<'a>(out: &'a [String], prefix: &str) -> &'a str {
    out.iter()
        .find(|l| l.starts_with(prefix))
        .map_or("", String::as_str)
}

fn ready(lan: &Lan) {
    for i in 1..=2 {
        wait_link_local(lan.host(i), "eth0");
    }
}

#[test]
fn scenario_over_ipv6_unique_local_both_directions() {
    let lan = Lan::new("g6", 233, 2);
    ready(&lan);
    let out = scenario(lan.host(1), lan.host(2), &[], None);
    // The locator is the listener's unique-local address; its flood keeps loop count 6.
    assert!(
        line(&out, "PASS discover").contains("[fd00:233::1]:"),
        "{out:#?}"
    );
    assert!(
        line(&out, "PASS get_flood").contains("loop count 6"),
        "{out:#?}"
    );
    let out = scenario(lan.host(2), lan.host(1), &[], None);
    assert!(
        line(&out, "PASS discover").contains("[fd00:233::2]:"),
        "{out:#?}"
    );
}

#[test]
fn scenario_over_ipv6_link_local_only_both_directions() {
    let lan = Lan::new("gl", 235, 2);
    ready(&lan);
    for i in 1..=2 {
        let v6 = format!("{}/64", lan.v6(i));
        ip(&["-n", lan.host(i), "addr", "del", &v6, "dev", "eth0"]);
    }
    let out = scenario(lan.host(1), lan.host(2), &[], None);
    assert!(line(&out, "PASS discover").contains("[fe80::"), "{out:#?}");
    // A node with a link-local initiator floods on its link only: loop count 1.
    assert!(
        line(&out, "PASS get_flood").contains("loop count 1"),
        "{out:#?}"
    );
    scenario(lan.host(2), lan.host(1), &[], None);
}

#[test]
fn scenario_over_ipv4_both_directions() {
    let lan = Lan::new("g4", 236, 2);
    ready(&lan);
    let out = scenario(lan.host(1), lan.host(2), &["--ipv4"], None);
    assert!(
        line(&out, "PASS discover").contains("10.236.0.1:"),
        "{out:#?}"
    );
    scenario(lan.host(2), lan.host(1), &["--ipv4"], None);
}

#[test]
fn scenario_in_dull_mode() {
    let lan = Lan::new("gd", 238, 2);
    ready(&lan);
    let out = scenario(lan.host(1), lan.host(2), &["--dull"], None);
    // Link-local locators and loop count 1, though both hosts have unique-local addresses.
    assert!(line(&out, "PASS discover").contains("[fe80::"), "{out:#?}");
    assert!(
        line(&out, "PASS get_flood").contains("loop count 1"),
        "{out:#?}"
    );
}

/// Three namespaces in a chain: `a` – `r` – `b`, each link a veth pair, `r` forwarding between
/// `fd00:234:1::/64` and `fd00:234:2::/64`. Deleted on drop.
struct Chain {
    names: Vec<String>,
}

impl Chain {
    fn new() -> Chain {
        let prefix = format!("g{}-chain", std::process::id());
        let mut chain = Chain { names: Vec::new() };
        for n in ["a", "r", "b"] {
            let ns = format!("{prefix}-{n}");
            ip(&["netns", "add", &ns]);
            chain.names.push(ns.clone());
            sysctl(&ns, "net.ipv6.conf.all.accept_dad=0");
            sysctl(&ns, "net.ipv6.conf.default.accept_dad=0");
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        let (a, r, b) = (chain.ns(0), chain.ns(1), chain.ns(2));
        sysctl(r, "net.ipv6.conf.all.forwarding=1");
        ip(&[
            "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", r,
        ]);
        ip(&[
            "-n", b, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1", "netns", r,
        ]);
        for (ns, dev, addr) in [
            (a, "eth0", "fd00:234:1::1/64"),
            (r, "eth0", "fd00:234:1::2/64"),
            (r, "eth1", "fd00:234:2::2/64"),
            (b, "eth0", "fd00:234:2::1/64"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&[
            "-n",
            a,
            "-6",
            "route",
            "add",
            "fd00:234:2::/64",
            "via",
            "fd00:234:1::2",
        ]);
        ip(&[
            "-n",
            b,
            "-6",
            "route",
            "add",
            "fd00:234:1::/64",
            "via",
            "fd00:234:2::2",
        ]);
        for (ns, dev) in [(a, "eth0"), (r, "eth0"), (r, "eth1"), (b, "eth0")] {
            wait_link_local(ns, dev);
        }
        chain
    }

    fn ns(&self, i: usize) -> &str {
        &self.names[i]
    }
}

/// Wait (up to 10 s) until `dev` in `ns` has its IPv6 link-local address: the kernel adds it
/// shortly after the link comes up, and a node started before then would not use the link.
fn wait_link_local(ns: &str, dev: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("ip")
            .args(["-n", ns, "-6", "addr", "show", "dev", dev, "scope", "link"])
            .output()
            .expect("run ip");
        if String::from_utf8_lossy(&out.stdout).contains("fe80::") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ns} {dev}: no link-local address"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn sysctl(ns: &str, setting: &str) {
    ip(&["netns", "exec", ns, "sysctl", "-qw", setting]);
}

impl Drop for Chain {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

#[test]
fn scenario_through_a_relay_with_o_divert_and_a_relayed_flood() {
    let chain = Chain::new();
    let out = scenario(chain.ns(0), chain.ns(2), &[], Some(chain.ns(1)));
    // Found through the relay's answer, which points at the listener's own address.
    let discover = line(&out, "PASS discover");
    assert!(discover.contains("via O_DIVERT"), "{out:#?}");
    assert!(discover.contains("[fd00:234:1::1]:"), "{out:#?}");
    // The flood crossed the relay, which decremented its loop count (6 → 5).
    assert!(
        line(&out, "PASS get_flood").contains("loop count 5"),
        "{out:#?}"
    );
    // And the other way round.
    let out = scenario(chain.ns(2), chain.ns(0), &[], Some(chain.ns(1)));
    assert!(
        line(&out, "PASS discover").contains("via O_DIVERT"),
        "{out:#?}"
    );
}

#[test]
fn gray_and_briggs_haggle() {
    let lan = Lan::new("gb", 237, 2);
    ready(&lan);
    let mut briggs = Peer::spawn_program(
        lan.host(1),
        BRIGGS,
        &[
            "--interface",
            "eth0",
            "--secs",
            "120",
            "--flood-every-secs",
            "2",
        ],
    );
    briggs.wait_for("ready", Duration::from_secs(30), |l| {
        l.starts_with("Briggs is ready")
    });
    let gray = Peer::spawn_program(
        lan.host(2),
        GRAY,
        &[
            "--interface",
            "eth0",
            "--rounds",
            "4",
            "--pause-ms",
            "200",
            "--secs",
            "110",
        ],
    );
    let (ok, out) = gray.finish(Duration::from_secs(115));
    assert!(ok, "{out:#?}");
    // EX2 is served by Briggs; "Nonsense" by nobody.
    assert!(
        out.iter().any(|l| l
            .starts_with("synchronized EX2: Some(Array([Integer(1), Text(\"two\"), Integer(3)]))")),
        "{out:#?}"
    );
    assert!(
        out.iter().any(|l| l.starts_with("synch failed Nonsense")),
        "{out:#?}"
    );
    // Every round ended in a negotiated outcome: agreed, declined by Briggs, or given up.
    for round in 1..=4 {
        let end = out
            .iter()
            .find(|l| l.starts_with(&format!("round {round}: ")) && !l.contains("asking for"))
            .unwrap_or_else(|| panic!("round {round}: {out:#?}"));
        assert!(
            [
                "agreed",
                "declined: Invalid currency",
                "declined: Insufficient funds",
                "declined: Loop count exhausted",
                "gave up"
            ]
            .iter()
            .any(|w| end.contains(w)),
            "{end}: {out:#?}"
        );
    }
    // Briggs floods EX1 every 2 s: Gray has seen one.
    assert!(
        out.iter().any(|l| l.starts_with("flooded EX1 from")),
        "{out:#?}"
    );
}
