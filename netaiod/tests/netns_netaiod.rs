//! Ten `netaiod` daemons across network-namespace hosts (three, three, two and two on four
//! hosts joined by a bridge), one bootstrapper, each with a `netaiod-client` module subscribed
//! to type 1: an announce reaches every subscriber; three daemons killed with SIGKILL, the
//! other seven stay connected (the failed neighbours replaced within a few `search_cooldown`s),
//! and a second announce reaches every surviving subscriber.
//!
//! Needs root and iproute2, so plain `cargo test` does not run it (`test = false`); `.ci/run`
//! runs it in its namespace step:
//!
//! ```text
//! cargo test -p netaiod --test netns_netaiod
//! ```
//!
//! If a namespace cannot be created the test fails; it never skips. The LAN is
//! `netaio_tests::netns::Lan` (host `i` has `10.244.0.<i>/24`). The test follows each daemon's
//! neighbours from its `neighbour up` / `neighbour down` log lines. Every wait is bounded; the
//! processes are killed and the namespaces deleted on drop, also when an assertion fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netaio_tests::netns::Lan;

const NETAIOD: &str = env!("CARGO_BIN_EXE_netaiod");
const CLIENT: &str = env!("CARGO_BIN_EXE_netaiod-client");
/// Generous for one step: debug builds on a busy 2-core machine.
const LIMIT: Duration = Duration::from_secs(60);
const DEGREE: usize = 4;
/// Seconds between peer searches (and shuffles).
const SEARCH_COOLDOWN: u64 = 2;
/// Fewest neighbours before a daemon searches for more.
const MIN_CONNECTIONS: usize = 2;

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Daemon(SocketAddr),
    Client(SocketAddr),
}

struct Daemon {
    _proc: Proc,
    ns: String,
    api: SocketAddr,
    neighbors: BTreeSet<SocketAddr>,
    log: Vec<String>,
    client: Option<Proc>,
    notes: Vec<String>,
}

struct Net {
    daemons: BTreeMap<SocketAddr, Daemon>,
    tx: mpsc::Sender<(Source, String)>,
    lines: mpsc::Receiver<(Source, String)>,
    dir: std::path::PathBuf,
}

fn pipe(
    tx: &mpsc::Sender<(Source, String)>,
    source: Source,
    out: impl std::io::Read + Send + 'static,
) {
    let tx = tx.clone();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((source, line)).is_err() {
                break;
            }
        }
    });
}

impl Net {
    fn spawn(&mut self, ns: &str, p2p: SocketAddr, bootstrapper: Option<SocketAddr>) {
        let api = SocketAddr::new(p2p.ip(), p2p.port() + 100);
        let mut ini = format!(
            "hostkey = {}/key-{}-{}\n[gossip]\ndegree = {DEGREE}\nsearch_cooldown = {SEARCH_COOLDOWN}\nmin_connections = {MIN_CONNECTIONS}\n\
             p2p_address = {p2p}\napi_address = {api}\n",
            self.dir.display(),
            p2p.ip(),
            p2p.port()
        );
        if let Some(b) = bootstrapper {
            ini.push_str(&format!("bootstrapper = {b}\n"));
        }
        let path = self.dir.join(format!("{}-{}.ini", p2p.ip(), p2p.port()));
        std::fs::write(&path, ini).unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, NETAIOD, "-c"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netaiod");
        pipe(&self.tx, Source::Daemon(p2p), child.stderr.take().unwrap());
        self.daemons.insert(
            p2p,
            Daemon {
                _proc: Proc(child),
                ns: ns.to_owned(),
                api,
                neighbors: BTreeSet::new(),
                log: Vec::new(),
                client: None,
                notes: Vec::new(),
            },
        );
        self.until(&format!("{p2p} to start"), |n| {
            n.daemons[&p2p]
                .log
                .iter()
                .any(|l| l.contains("netaiod started"))
        });
    }

    /// Starts a module on `daemon` subscribed to type 1 (answering valid).
    fn subscribe(&mut self, daemon: SocketAddr) {
        let d = &self.daemons[&daemon];
        let api = d.api.to_string();
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &d.ns,
                CLIENT,
                "--api",
                &api,
                "subscribe",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn netaiod-client");
        pipe(
            &self.tx,
            Source::Client(daemon),
            child.stdout.take().unwrap(),
        );
        self.daemons.get_mut(&daemon).unwrap().client = Some(Proc(child));
    }

    fn announce(&mut self, daemon: SocketAddr, data: &str) {
        let d = &self.daemons[&daemon];
        let api = d.api.to_string();
        let status = Command::new("ip")
            .args([
                "netns", "exec", &d.ns, CLIENT, "--api", &api, "announce", "1", data,
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn take(&mut self, (source, line): (Source, String)) {
        match source {
            Source::Daemon(a) => {
                let Some(d) = self.daemons.get_mut(&a) else {
                    return; // a killed daemon's last lines
                };
                let peer = |tag: &str| {
                    line.contains(tag)
                        .then(|| {
                            line.rsplit_once("peer=")
                                .and_then(|(_, p)| p.trim().parse().ok())
                        })
                        .flatten()
                };
                if let Some(p) = peer("neighbour up") {
                    d.neighbors.insert(p);
                }
                if let Some(p) = peer("neighbour down") {
                    d.neighbors.remove(&p);
                }
                d.log.push(line);
            }
            Source::Client(a) => {
                if let Some(d) = self.daemons.get_mut(&a) {
                    d.notes.push(line);
                }
            }
        }
    }

    /// Waits until `cond` holds, taking lines as they come, within [`LIMIT`].
    fn until(&mut self, what: &str, cond: impl Fn(&Net) -> bool) {
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
                        .daemons
                        .iter()
                        .map(|(a, d)| (a, &d.neighbors, &d.notes))
                        .collect();
                    panic!("no {what} within {LIMIT:?}: {views:#?}");
                }
            }
        }
    }

    /// Whether the daemons' overlay is connected (views naming only live daemons count).
    fn connected(&self) -> bool {
        let Some(&first) = self.daemons.keys().next() else {
            return true;
        };
        let mut seen = BTreeSet::from([first]);
        let mut todo = VecDeque::from([first]);
        while let Some(a) = todo.pop_front() {
            for b in &self.daemons[&a].neighbors {
                if self.daemons.contains_key(b) && seen.insert(*b) {
                    todo.push_back(*b);
                }
            }
        }
        seen.len() == self.daemons.len()
    }

    fn all_notified(&self, data: &str) -> bool {
        let want = format!("data={data}");
        self.daemons
            .values()
            .all(|d| d.notes.iter().filter(|l| l.ends_with(&want)).count() == 1)
    }
}

#[test]
fn ten_daemons_spread_to_every_subscriber_and_survive_three_kills() {
    let lan = Lan::new("nd", 244, 4);
    let (tx, lines) = mpsc::channel();
    let dir = std::env::temp_dir().join(format!("netaiod-netns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut net = Net {
        daemons: BTreeMap::new(),
        tx,
        lines,
        dir: dir.clone(),
    };
    let per_host = [3, 3, 2, 2];
    let boot = SocketAddr::new(lan.v4(1), 7000);
    net.spawn(lan.host(1), boot, None);
    for (h, &count) in per_host.iter().enumerate() {
        let host = h + 1;
        for k in 0..count {
            let addr = SocketAddr::new(lan.v4(host), 7000 + k as u16);
            if addr != boot {
                net.spawn(lan.host(host), addr, Some(boot));
            }
        }
    }
    assert_eq!(net.daemons.len(), 10);
    net.until("a connected overlay of ten", Net::connected);

    let all: Vec<SocketAddr> = net.daemons.keys().copied().collect();
    for &a in &all {
        net.subscribe(a);
    }
    net.until("every module subscribed", |n| {
        n.daemons.values().all(|d| {
            d.log
                .iter()
                .any(|l| l.contains("data type followed") && l.ends_with("data_type=1"))
        })
    });
    // From a daemon on host 4: every module gets it once (the announcer's own daemon's module
    // locally, the others through the network).
    let from = SocketAddr::new(lan.v4(4), 7001);
    net.announce(from, "first");
    net.until("the first announce at every module", |n| {
        n.all_notified("first")
    });

    // Kill three daemons on three hosts (not the bootstrapper).
    let victims = [
        SocketAddr::new(lan.v4(1), 7001),
        SocketAddr::new(lan.v4(2), 7000),
        SocketAddr::new(lan.v4(3), 7001),
    ];
    for v in victims {
        net.daemons.remove(&v);
    }
    let killed_at = Instant::now();
    net.until(
        "the seven survivors connected, each with min_connections neighbours, none dead",
        |n| {
            n.connected()
                && n.daemons.values().all(|d| {
                    d.neighbors.iter().all(|p| !victims.contains(p))
                        && d.neighbors.len() >= MIN_CONNECTIONS
                })
        },
    );
    eprintln!("repaired in {:?}", killed_at.elapsed());
    net.announce(from, "second");
    net.until("the second announce at every surviving module", |n| {
        n.all_notified("second")
    });
    drop(net);
    drop(lan);
    let _ = std::fs::remove_dir_all(&dir);
}
