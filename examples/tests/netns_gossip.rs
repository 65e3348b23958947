//! Gossip across hosts: six `gossip_node` processes, two on each of three network-namespace
//! hosts joined by a bridge, over real TCP between the hosts: one publish reaches all; a node
//! killed with SIGKILL is replaced in its neighbours' views and later publishes reach every
//! survivor; a seventh node publishing without a valid proof of work is banned by its
//! neighbours, and nothing of it is delivered. Once over IPv4, once over IPv6.
//!
//! Needs root and iproute2, so plain `cargo test` does not run it (`test = false`); `.ci/run`
//! runs it in its namespace step:
//!
//! ```text
//! cargo test -p netaio-examples --test netns_gossip
//! ```
//!
//! If a namespace cannot be created the test fails; it never skips. The LAN is
//! `netaio_tests::netns::Lan` (host `i` has `eth0` with `10.239.0.<i>/24` and `fd00:239::<i>/64`).
//! The test follows each node's views from the `neighbor up` / `neighbor down` lines it prints.
//! Every node keeps 4 neighbours (`--active-view 4`: with 6 nodes, full views connect them all,
//! and a dead node frees slots others can fill) and shuffles every 2 s (`--shuffle-interval 2`:
//! a peer that refused to be a neighbour while full is asked again after one interval; with the
//! default 60 s the views settle in minutes). Guards kill the nodes and delete the namespaces
//! even when an assertion fails; every wait is bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netaio_tests::netns::Lan;

const GOSSIP_NODE: &str = env!("CARGO_BIN_EXE_gossip_node");
/// Generous for one step: debug builds on a busy 2-core machine.
const LIMIT: Duration = Duration::from_secs(30);
const ACTIVE_VIEW: usize = 4;

/// One `gossip_node` in a namespace: what it printed, and the neighbours that names; killed on
/// drop.
struct Node {
    child: Child,
    stdin: ChildStdin,
    log: Vec<String>,
    neighbors: BTreeSet<SocketAddr>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nodes, and every line they print on one channel (so a wait wakes on any of them).
struct Swarm {
    nodes: BTreeMap<SocketAddr, Node>,
    tx: mpsc::Sender<(SocketAddr, String)>,
    lines: mpsc::Receiver<(SocketAddr, String)>,
}

impl Swarm {
    fn new() -> Swarm {
        let (tx, lines) = mpsc::channel();
        Swarm {
            nodes: BTreeMap::new(),
            tx,
            lines,
        }
    }

    /// Starts a node listening on `addr` in namespace `ns`, and waits for its `listening` line.
    fn spawn(&mut self, ns: &str, addr: SocketAddr, extra: &[&str]) {
        let (listen, view) = (addr.to_string(), ACTIVE_VIEW.to_string());
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, GOSSIP_NODE, "--listen", &listen])
            .args(["--topic", "news", "--active-view", &view])
            .args(["--shuffle-interval", "2"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn().expect("spawn gossip_node");
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let tx = self.tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((addr, line)).is_err() {
                    break;
                }
            }
        });
        // Its log goes to the test's stderr, shown when the test fails.
        let mut err = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            for l in s.lines() {
                eprintln!("[{addr}] {l}");
            }
        });
        let node = Node {
            child,
            stdin,
            log: Vec::new(),
            neighbors: BTreeSet::new(),
        };
        self.nodes.insert(addr, node);
        let want = format!("listening {addr}");
        self.until(&format!("{addr} to listen"), |s| s.saw(addr, |l| l == want));
    }

    fn take(&mut self, (addr, line): (SocketAddr, String)) {
        let Some(n) = self.nodes.get_mut(&addr) else {
            return; // a killed node's last lines
        };
        let peer = |prefix: &str| line.strip_prefix(prefix).and_then(|a| a.parse().ok());
        if let Some(p) = peer("neighbor up ") {
            n.neighbors.insert(p);
        }
        if let Some(p) = peer("neighbor down ") {
            n.neighbors.remove(&p);
        }
        n.log.push(line);
    }

    /// Waits until `cond` holds, taking the nodes' lines as they come, within [`LIMIT`].
    fn until(&mut self, what: &str, cond: impl Fn(&Swarm) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while let Ok(l) = self.lines.try_recv() {
            self.take(l);
        }
        while !cond(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.take(l),
                Err(_) => {
                    let views: Vec<_> = self
                        .nodes
                        .iter()
                        .map(|(a, n)| (a, &n.neighbors, &n.log))
                        .collect();
                    panic!("no {what} within {LIMIT:?}: {views:#?}");
                }
            }
        }
    }

    fn saw(&self, addr: SocketAddr, pred: impl Fn(&str) -> bool) -> bool {
        self.nodes
            .get(&addr)
            .is_some_and(|n| n.log.iter().any(|l| pred(l)))
    }

    fn view(&self, addr: SocketAddr) -> BTreeSet<SocketAddr> {
        self.nodes
            .get(&addr)
            .map(|n| n.neighbors.clone())
            .unwrap_or_default()
    }

    /// Whether the overlay of the nodes is connected.
    fn connected(&self) -> bool {
        let Some(&first) = self.nodes.keys().next() else {
            return true;
        };
        let mut seen = BTreeSet::from([first]);
        let mut todo = VecDeque::from([first]);
        while let Some(a) = todo.pop_front() {
            for b in self.view(a) {
                if self.nodes.contains_key(&b) && seen.insert(b) {
                    todo.push_back(b);
                }
            }
        }
        seen.len() == self.nodes.len()
    }

    /// Whether no two nodes could still become neighbours (every node with a free slot is linked
    /// to every other one that has one), and no view names a node that is gone.
    fn settled(&self) -> bool {
        let free: Vec<SocketAddr> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.neighbors.len() < ACTIVE_VIEW)
            .map(|(a, _)| *a)
            .collect();
        let maximal = free
            .iter()
            .all(|a| free.iter().all(|b| a == b || self.view(*a).contains(b)));
        let current = self
            .nodes
            .values()
            .all(|n| n.neighbors.iter().all(|p| self.nodes.contains_key(p)));
        maximal && current && self.connected()
    }

    /// Has `addr` publish `text` (a line on its standard input) and waits for its `published`.
    fn publish(&mut self, addr: SocketAddr, text: &str) {
        let n = self.nodes.get_mut(&addr).unwrap();
        writeln!(n.stdin, "{text}").unwrap();
        n.stdin.flush().unwrap();
        let count = n.log.iter().filter(|l| l.starts_with("published ")).count();
        self.until(&format!("{addr}'s publish"), |s| {
            s.nodes[&addr]
                .log
                .iter()
                .filter(|l| l.starts_with("published "))
                .count()
                > count
        });
    }

    /// Waits for `text` (published by `from`) on every other node, from whichever neighbour it
    /// comes, fetched by anti-entropy or not.
    fn all_deliver(&mut self, from: SocketAddr, text: &str) {
        let delivered = |l: &str| {
            l.starts_with("bulletin news from ")
                && (l.ends_with(&format!(": {text}"))
                    || l.ends_with(&format!(": {text} (fetched)")))
        };
        self.until(&format!("every node's delivery of {text:?}"), |s| {
            s.nodes
                .keys()
                .filter(|a| **a != from)
                .all(|a| s.saw(*a, delivered))
        });
    }

    /// Two neighbours of `addr` that are not neighbours of each other.
    fn unlinked_neighbors(&self, addr: SocketAddr) -> Option<(SocketAddr, SocketAddr)> {
        let view: Vec<SocketAddr> = self.view(addr).into_iter().collect();
        view.iter().enumerate().find_map(|(k, &a)| {
            let of_a = self.view(a);
            view.iter()
                .skip(k + 1)
                .find(|b| !of_a.contains(b))
                .map(|&b| (a, b))
        })
    }
}

fn scenario(lan: &Lan, ip: impl Fn(usize) -> IpAddr) {
    let addr = |host: usize, port: u16| SocketAddr::new(ip(host), port);
    let bootstrap = addr(1, 7000);
    let join = bootstrap.to_string();
    let mut swarm = Swarm::new();
    swarm.spawn(lan.host(1), bootstrap, &[]);
    for (host, port) in [(2, 7000), (3, 7000), (1, 7001), (2, 7001), (3, 7001)] {
        swarm.spawn(lan.host(host), addr(host, port), &["--bootstrap", &join]);
    }
    swarm.until("the overlay to connect and settle", Swarm::settled);

    // One publish reaches all.
    let publisher = addr(3, 7001);
    swarm.publish(publisher, "first across hosts");
    swarm.all_deliver(publisher, "first across hosts");

    // A node dies (SIGKILL): it leaves every view, and its neighbours fill the slots it freed.
    // Two of its neighbours are not linked to each other: both get a free slot, so once the
    // views settle at least one of them has a new neighbour.
    let (dead, (a, b)) = [addr(2, 7000), addr(3, 7000), addr(1, 7001), addr(2, 7001)]
        .into_iter()
        .find_map(|v| swarm.unlinked_neighbors(v).map(|pair| (v, pair)))
        .expect("a node with two neighbours not linked to each other");
    let (before_a, before_b) = (swarm.view(a), swarm.view(b));
    let killed = swarm.nodes.remove(&dead).unwrap();
    drop(killed);
    swarm.until("the dead node to be replaced", Swarm::settled);
    let gained = |s: &Swarm, x, before: &BTreeSet<SocketAddr>| !s.view(x).is_subset(before);
    assert!(
        gained(&swarm, a, &before_a) || gained(&swarm, b, &before_b),
        "neither {a} nor {b} replaced {dead}"
    );
    swarm.publish(publisher, "after the death");
    swarm.all_deliver(publisher, "after the death");

    // A spammer on host 2: its bootstrap is its first neighbour, gets the spam (announced, then
    // grafted), refuses it and bans the spammer; later neighbours fetch it by anti-entropy and
    // ban it too. Nothing of it is delivered, and no honest node is banned (it would be, had
    // it forwarded the spam).
    let spammer = addr(2, 7002);
    swarm.spawn(
        lan.host(2),
        spammer,
        &[
            "--bootstrap",
            &join,
            "--invalid-work",
            "--publish",
            "buy now",
        ],
    );
    let banned = format!("banned {spammer} ");
    swarm.until("the spammer's publish and its ban", |s| {
        s.saw(spammer, |l| l.starts_with("published "))
            && s.saw(bootstrap, |l| l.starts_with(&banned))
    });
    swarm.until("the spammer to be dropped by every view", |s| {
        s.nodes
            .iter()
            .filter(|(a, _)| **a != spammer)
            .all(|(_, n)| !n.neighbors.contains(&spammer))
    });
    let honest = addr(1, 7001);
    swarm.publish(honest, "after the spam");
    swarm.nodes.remove(&spammer);
    swarm.all_deliver(honest, "after the spam");
    for (addr, n) in &swarm.nodes {
        assert!(
            !n.log.iter().any(|l| l.contains("buy now")),
            "{addr} delivered spam: {:#?}",
            n.log
        );
        assert!(
            !n.log
                .iter()
                .any(|l| l.starts_with("banned ") && !l.starts_with(&banned)),
            "{addr} banned an honest node: {:#?}",
            n.log
        );
    }
}

#[test]
fn six_nodes_on_three_hosts_ipv4() {
    let lan = Lan::new("gsp4", 239, 3);
    scenario(&lan, |i| lan.v4(i));
}

#[test]
fn six_nodes_on_three_hosts_ipv6() {
    let lan = Lan::new("gsp6", 240, 3);
    scenario(&lan, |i| lan.v6(i));
}
