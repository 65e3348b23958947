//! Multi-host tests: nodes in separate network namespaces joined by a bridge, discovering each other
//! by multicast over real (veth) interfaces, for IPv4 and IPv6.
//!
//! Needs root and iproute2 (`ip netns`, veth, bridge). Not run by plain `cargo test` (the target
//! has `test = false`); `.ci/run` runs it in its own step:
//!
//! ```text
//! cargo test -p netaio-tests --test netns
//! ```
//!
//! If a namespace cannot be created the tests fail; they never skip. Each test builds its own LAN
//! (`netaio_tests::netns::Lan`, names unique to the run): a switch namespace holding a bridge
//! (multicast snooping off), and one namespace per host with a veth `eth0` plugged into the bridge,
//! addressed `10.231.0.<i>/24` and `fd00:231::<i>/64` (addresses that exist only inside these
//! namespaces). The node program (`netaio-netns-node`, built by cargo before the tests run) is
//! started in a namespace with `ip netns exec`. Guards kill the nodes and delete the namespaces
//! even when an assertion fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netaio_tests::netns::Lan;

const NODE: &str = env!("CARGO_BIN_EXE_netaio-netns-node");

/// This binary's subnet: hosts are `10.231.0.<i>` and `fd00:231::<i>`.
const NET: u8 = 231;

/// Advert interval of the nodes under test.
const INTERVAL: Duration = Duration::from_millis(400);
/// Peer timeout of the nodes under test: long enough that a removal within a second of a
/// `stop` can only come from the DISCONNECT.
const TIMEOUT: Duration = Duration::from_millis(3000);
/// How long a node process may take to start (debug build on a busy machine).
const START: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn bind(self, host: usize) -> String {
        match self {
            Family::V4 => format!("10.231.0.{host}:0"),
            Family::V6 => format!("[fd00:231::{host}]:0"),
        }
    }
}

/// A node process in a namespace; killed when dropped.
struct Node {
    id: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Instant, String)>,
    /// Every line read so far, with the time it was read.
    log: Vec<(Instant, String)>,
    ready_at: Instant,
}

impl Node {
    fn start(ns: &str, id: &str, bind: &str, extra: &[&str]) -> Node {
        let interval = INTERVAL.as_millis().to_string();
        let timeout = TIMEOUT.as_millis().to_string();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, NODE])
            .args(["--id", id, "--bind", bind])
            .args(["--interval-ms", &interval, "--timeout-ms", &timeout])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn ip netns exec netaio-netns-node");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut node = Node {
            id: id.to_owned(),
            child,
            stdin,
            lines,
            log: Vec::new(),
            ready_at: Instant::now(),
        };
        let (at, _) = node.wait_for(START, "ready", |l| l.starts_with("ready "));
        node.ready_at = at;
        node
    }

    fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("node stdin");
        writeln!(stdin, "{command}").expect("write to node");
        stdin.flush().expect("flush node stdin");
    }

    /// The first line (already read or still to come, within `limit`) for which `pred` holds.
    fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> (Instant, String) {
        if let Some(found) = self.log.iter().find(|(_, l)| pred(l)) {
            return found.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(entry) => {
                    self.log.push(entry.clone());
                    if pred(&entry.1) {
                        return entry;
                    }
                }
                Err(_) => panic!(
                    "node {} did not print {what} within {limit:?}; it printed: {:#?}",
                    self.id,
                    self.log.iter().map(|(_, l)| l).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Read whatever has arrived so far.
    fn drain(&mut self) {
        while let Ok(entry) = self.lines.try_recv() {
            self.log.push(entry);
        }
    }

    fn printed(&mut self, pred: impl Fn(&str) -> bool) -> bool {
        self.drain();
        self.log.iter().any(|(_, l)| pred(l))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every node in `nodes` prints `discovered` for every other one by `deadline`.
fn all_discover_each_other(nodes: &mut [Node], deadline: Instant) {
    let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    for n in nodes.iter_mut() {
        let me = n.id.clone();
        for other in ids.iter().filter(|o| **o != me) {
            let limit = deadline.saturating_duration_since(Instant::now());
            let want = format!("discovered {other} ");
            let (at, _) = n.wait_for(limit, &want, |l| l.starts_with(&want));
            assert!(at <= deadline, "{} discovered {other} late", n.id);
        }
    }
}

fn multi_host(family: Family) {
    let lan = Lan::new(&format!("{family:?}").to_lowercase(), NET, 4);
    let secret = ["--secret", "s3cret"];
    // The intruder (host 4) has no secret; it starts first so its adverts are there all along.
    let mut intruder = Node::start(lan.host(4), "intruder", &family.bind(4), &[]);
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node::start(lan.host(i), &format!("n{i}"), &family.bind(i), &secret))
        .collect();
    let last_ready = nodes.iter().map(|n| n.ready_at).max().unwrap();

    // Discovery by multicast within two advert intervals.
    all_discover_each_other(&mut nodes, last_ready + INTERVAL * 2);
    let addr_of_n2 = nodes[0]
        .wait_for(Duration::ZERO, "n2's address", |l| {
            l.starts_with("discovered n2 ")
        })
        .1;
    let prefix = match family {
        Family::V4 => "discovered n2 10.231.0.2:",
        Family::V6 => "discovered n2 [fd00:231::2]:",
    };
    assert!(addr_of_n2.starts_with(prefix), "{addr_of_n2}");

    // An authenticated request and its reply, across namespaces.
    nodes[0].send("request n2 hello");
    nodes[0].wait_for(Duration::from_secs(5), "the reply from n2", |l| {
        l == "reply n2:hello"
    });
    // The intruder learned the others (it checks nothing), but they do not answer it.
    intruder.wait_for(Duration::from_secs(5), "intruder hears n1", |l| {
        l.starts_with("discovered n1 ")
    });
    intruder.send("request n1 hi");
    let (_, e) = intruder.wait_for(
        Duration::from_secs(5),
        "the intruder's request to fail",
        |l| l.starts_with("reply ") || l.starts_with("error "),
    );
    assert!(e.starts_with("error no reply within"), "{e}");

    // A node that stops says goodbye: gone from the others well before the timeout.
    nodes[2].send("stop");
    let stopped = nodes[2]
        .wait_for(Duration::from_secs(10), "stopped", |l| l == "stopped")
        .0;
    for n in nodes.iter_mut().take(2) {
        let (at, line) = n.wait_for(Duration::from_secs(2), "n3 leaving", |l| {
            l == "disconnected n3" || l == "expired n3"
        });
        assert_eq!(line, "disconnected n3", "{}", n.id);
        assert!(
            at.saturating_duration_since(stopped) < TIMEOUT / 2,
            "{} saw the DISCONNECT late",
            n.id
        );
    }

    // A node that is killed sends nothing: it expires after the peer timeout.
    nodes[1].kill();
    let killed = Instant::now();
    let (at, line) = nodes[0].wait_for(
        TIMEOUT + INTERVAL * 2 + Duration::from_secs(2),
        "n2 leaving",
        |l| l == "disconnected n2" || l == "expired n2",
    );
    assert_eq!(line, "expired n2");
    let after = at.saturating_duration_since(killed);
    // Its last advert came at most one interval (plus jitter) before the kill.
    assert!(
        after + INTERVAL * 2 >= TIMEOUT,
        "expired {after:?} after the kill, before the {TIMEOUT:?} timeout"
    );

    // The node without the secret was never added by anyone.
    nodes[0].send("peers");
    let (_, peers) = nodes[0].wait_for(Duration::from_secs(5), "peers", |l| l.starts_with("peers"));
    assert_eq!(peers.trim(), "peers", "n1 should know nobody now");
    for n in &mut nodes {
        assert!(
            !n.printed(|l| l.contains("intruder")),
            "{} recorded the intruder: {:#?}",
            n.id,
            n.log
        );
    }
    drop(intruder);
    drop(nodes);
    drop(lan);
}

#[test]
fn ipv4_discovery_auth_disconnect_and_expiry_across_namespaces() {
    multi_host(Family::V4);
}

#[test]
fn ipv6_discovery_auth_disconnect_and_expiry_across_namespaces() {
    multi_host(Family::V6);
}

/// IPv6 multicast cannot loop back on Linux's `lo` (no multicast route for `::1`), so the
/// three-nodes-on-one-host test for IPv6 runs here: three nodes in one namespace, on one address,
/// sharing the group port.
#[test]
fn ipv6_three_nodes_on_one_host_share_the_group_port() {
    let lan = Lan::new("v6host", NET, 1);
    let secret = ["--secret", "s3cret"];
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .into_iter()
        .map(|id| Node::start(lan.host(1), id, "[fd00:231::1]:0", &secret))
        .collect();
    let last_ready = nodes.iter().map(|n| n.ready_at).max().unwrap();
    all_discover_each_other(&mut nodes, last_ready + INTERVAL * 2);
    nodes[2].send("stop");
    for n in nodes.iter_mut().take(2) {
        let (_, line) = n.wait_for(Duration::from_secs(2), "c leaving", |l| {
            l == "disconnected c" || l == "expired c"
        });
        assert_eq!(line, "disconnected c");
    }
    nodes[0].send("request b ping");
    nodes[0].wait_for(Duration::from_secs(5), "the reply from b", |l| {
        l == "reply b:ping"
    });
    drop(nodes);
    drop(lan);
}

/// Python's layout: every node bound to `0.0.0.0:8888`, the all-hosts group `224.0.0.1` on that
/// same port, received on the node's own socket (one node per host).
#[test]
fn ipv4_python_layout_all_hosts_group_on_the_node_port() {
    let lan = Lan::new("pylayout", NET, 3);
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            Node::start(
                lan.host(i),
                &format!("p{i}"),
                "0.0.0.0:8888",
                &["--python-layout", "1"],
            )
        })
        .collect();
    let last_ready = nodes.iter().map(|n| n.ready_at).max().unwrap();
    all_discover_each_other(&mut nodes, last_ready + INTERVAL * 2);
    let (_, line) = nodes[0].wait_for(Duration::ZERO, "p2's address", |l| {
        l.starts_with("discovered p2 ")
    });
    assert_eq!(line, "discovered p2 10.231.0.2:8888");
    nodes[0].send("request p3 hi");
    nodes[0].wait_for(Duration::from_secs(5), "the reply from p3", |l| {
        l == "reply p3:hi"
    });
    drop(nodes);
    drop(lan);
}
