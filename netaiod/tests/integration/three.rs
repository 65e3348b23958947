//! Three `netaiod` processes on loopback with the committed INI files (`config/node*.ini`: API
//! 7050-7052, P2P 7000-7002, nodes 1 and 2 bootstrapping from node 0), driven through the
//! gossip module API by [`ApiClient`]. What a daemon decided but no API message shows (an item
//! discarded, a type no longer followed) is read from its log.
//!
//! The fixed ports are the files': the test fails (never skips) if they are taken.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netaiod::ApiClient;
use netaiod::codec::ApiMessage;
use tokio::time::timeout;

const NETAIOD: &str = env!("CARGO_BIN_EXE_netaiod");
/// Generous for one step: debug builds on a busy machine.
const LIMIT: Duration = Duration::from_secs(30);
/// How long "no further notification" is watched for.
const QUIET: Duration = Duration::from_millis(1500);

/// A daemon process, killed on drop; its log lines (stderr) arrive on `lines`.
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    api: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(i: usize, dir: &Path) -> Node {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/node{i}.ini"));
        let mut child = Command::new(NETAIOD)
            .arg("-c")
            .arg(&config)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = Node {
            child,
            lines,
            log: Vec::new(),
            api: format!("127.0.0.1:705{i}").parse().unwrap(),
        };
        node.wait_for(|l| l.contains("netaiod started"), "start");
        node
    }

    /// Waits (bounded) until a log line satisfies `f`; lines seen before count too.
    fn wait_for(&mut self, f: impl Fn(&str) -> bool, what: &str) {
        if self.log.iter().any(|l| f(l)) {
            return;
        }
        let end = Instant::now() + LIMIT;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = f(&line);
                    self.log.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("{what}: not seen in time; log:\n{}", self.log.join("\n"));
    }

    /// Waits (bounded) until `n` log lines satisfy `f`.
    fn wait_count(&mut self, f: impl Fn(&str) -> bool, n: usize, what: &str) {
        let end = Instant::now() + LIMIT;
        while self.count(&f) < n {
            let Some(left) = end.checked_duration_since(Instant::now()) else {
                panic!("{what}: not seen in time; log:\n{}", self.log.join("\n"));
            };
            if let Ok(line) = self.lines.recv_timeout(left) {
                self.log.push(line);
            }
        }
    }

    fn count(&mut self, f: impl Fn(&str) -> bool) -> usize {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.iter().filter(|l| f(l)).count()
    }
}

async fn client(node: &Node, subscribe: &[u16]) -> ApiClient {
    let mut c = ApiClient::connect(node.api).await.unwrap();
    for &t in subscribe {
        c.notify(t).await.unwrap();
    }
    c
}

/// The next notification (bounded wait), as (message id, data type, data).
async fn next(c: &mut ApiClient) -> (u16, u16, Bytes) {
    match timeout(LIMIT, c.recv()).await {
        Ok(Ok(Some(ApiMessage::Notification {
            message_id,
            data_type,
            data,
        }))) => (message_id, data_type, data),
        other => panic!("no notification: {other:?}"),
    }
}

/// Nothing more arrives within `QUIET`.
async fn quiet(c: &mut ApiClient, what: &str) {
    if let Ok(got) = timeout(QUIET, c.recv()).await {
        panic!("{what}: unexpected {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_on_loopback_with_the_example_files() {
    let dir = std::env::temp_dir().join(format!("netaiod-three-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut nodes: Vec<Node> = (0..3).map(|i| Node::start(i, &dir)).collect();
    // Every node is every other's neighbour (a degree of 30 holds them all).
    for n in &mut nodes {
        n.wait_count(|l| l.contains("neighbour up"), 2, "two neighbours");
    }
    // The host keys were created where the daemons run.
    for i in 0..3 {
        assert_eq!(
            std::fs::metadata(dir.join(format!("netaiod-node{i}.key")))
                .unwrap()
                .len(),
            32
        );
    }

    // (1) Node 0 announces type 1: the type-1 modules of nodes 1 and 2 each get it once.
    let mut one = [client(&nodes[1], &[1]).await, client(&nodes[2], &[1]).await];
    let mut announcer = client(&nodes[0], &[]).await;
    wait_followed(&mut nodes[1], 1);
    wait_followed(&mut nodes[2], 1);
    announcer.announce(0, 1, "hello").await.unwrap();
    for c in &mut one {
        let (id, t, data) = next(c).await;
        assert_eq!((t, &data[..]), (1, &b"hello"[..]));
        c.validate(id, true).await.unwrap();
    }
    for c in &mut one {
        quiet(c, "scenario 1: a second notification").await;
    }

    // (2) Type 2 answered invalid on nodes 1 and 2: each gets it once (from node 0, its direct
    // neighbour) and discards it, so neither forwards it to the other.
    let mut two = [client(&nodes[1], &[2]).await, client(&nodes[2], &[2]).await];
    wait_followed(&mut nodes[1], 2);
    wait_followed(&mut nodes[2], 2);
    announcer.announce(0, 2, "bad").await.unwrap();
    for c in &mut two {
        let (id, t, _) = next(c).await;
        assert_eq!(t, 2);
        c.validate(id, false).await.unwrap();
    }
    for (i, c) in two.iter_mut().enumerate() {
        quiet(c, "scenario 2: a second notification").await;
        nodes[i + 1].wait_for(
            |l| l.contains("invalid data from peer discarded") && l.contains("127.0.0.1:7000"),
            "scenario 2: discarded, counted against node 0",
        );
    }

    // (3) A module subscribed only to type 5 gets type 5 and never type 4.
    let mut five = client(&nodes[1], &[5]).await;
    wait_followed(&mut nodes[1], 5);
    announcer.announce(0, 4, "four").await.unwrap();
    announcer.announce(0, 5, "five").await.unwrap();
    let (id, t, data) = next(&mut five).await;
    assert_eq!((t, &data[..]), (5, &b"five"[..]));
    five.validate(id, true).await.unwrap();
    quiet(&mut five, "scenario 3: type 4").await;

    // (4) A subscription ends when its connection closes: node 2 stops following type 6, and
    // a type-6 announce then reaches the module that stays on node 1 only.
    let mut stays = client(&nodes[1], &[6]).await;
    let leaves = client(&nodes[2], &[6]).await;
    wait_followed(&mut nodes[1], 6);
    wait_followed(&mut nodes[2], 6);
    drop(leaves);
    nodes[2].wait_for(
        |l| l.contains("data type no longer followed") && l.ends_with("data_type=6"),
        "scenario 4: node 2 stops following type 6",
    );
    announcer.announce(0, 6, "six").await.unwrap();
    let (id, t, _) = next(&mut stays).await;
    assert_eq!(t, 6);
    stays.validate(id, true).await.unwrap();
    // The other connections kept their subscriptions: type 1 still reaches both nodes.
    announcer.announce(0, 1, "again").await.unwrap();
    for c in &mut one {
        let (id, t, data) = next(c).await;
        assert_eq!((t, &data[..]), (1, &b"again"[..]));
        c.validate(id, true).await.unwrap();
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_followed(node: &mut Node, data_type: u16) {
    let tag = format!("data_type={data_type}");
    node.wait_for(
        |l| l.contains("data type followed") && l.split_whitespace().any(|w| w == tag),
        "data type followed",
    );
}
