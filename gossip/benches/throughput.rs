//! Throughput of `GossipNode` on loopback: 16 nodes in one process (a 2-thread tokio runtime),
//! joined through one of them, all subscribed to one topic; one node publishes.
//!
//! `cargo bench -p netaio-gossip --bench throughput` (release build; `-- --bulletins N`,
//! `--content BYTES`, `--window N`). Three figures:
//!
//! 1. the proof of work at the default difficulty: minting (mean over `--mint` bulletins on one
//!    thread) and verifying one bulletin;
//! 2. publish with minting: `GossipNode::publish` as fast as the node mints (on its blocking
//!    threads, `max_minting` at once), until every other node has delivered every bulletin;
//! 3. the network alone: bulletins minted beforehand, given to `publish_bulletin` as fast as the
//!    slowest subscriber allows (at most `--window` bulletins published and not yet delivered
//!    everywhere), until every other node has delivered every bulletin.
//!
//! Rates are bulletins per second; "delivered" counts a bulletin once it reached all 15 other
//! nodes, so the swarm made 15 deliveries per bulletin.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use netaio_gossip::{Bulletin, BulletinPolicy, GossipNode, TopicId};
use tokio::sync::Notify;

#[derive(Debug, Parser)]
struct Args {
    /// Bulletins per run
    #[arg(long, default_value_t = 2000)]
    bulletins: u64,
    /// Bulletins published with minting (figure 2)
    #[arg(long, default_value_t = 400)]
    minted: u64,
    /// Bulletins minted on one thread for the proof-of-work cost (figure 1)
    #[arg(long, default_value_t = 400)]
    mint: u64,
    /// Content bytes per bulletin
    #[arg(long, default_value_t = 100)]
    content: usize,
    /// Bulletins in flight at most (published, not yet delivered by every node)
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Nodes
    #[arg(long, default_value_t = 16)]
    nodes: usize,
    // `cargo bench` passes `--bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn content(i: u64, len: usize) -> Vec<u8> {
    let mut c = format!("bulletin {i} ").into_bytes();
    c.resize(len.max(c.len()), b'.');
    c
}

/// Every other node's delivery count, and a wake-up at each delivery.
struct Counts {
    counts: Vec<Arc<AtomicU64>>,
    notify: Arc<Notify>,
}

impl Counts {
    fn min(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Waits until every node delivered `n`, at most `limit`; false on timeout.
    async fn wait_all(&self, n: u64, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            while self.min() < n {
                let woken = self.notify.notified();
                if self.min() >= n {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), woken).await;
            }
        })
        .await
        .is_ok()
    }
}

fn connected(nodes: &[GossipNode]) -> bool {
    let views: Vec<(SocketAddr, Vec<SocketAddr>)> =
        nodes.iter().map(|n| (n.addr(), n.neighbors())).collect();
    let mut seen = vec![views[0].0];
    let mut i = 0;
    while let Some(a) = seen.get(i).copied() {
        i += 1;
        for b in views
            .iter()
            .find(|(x, _)| *x == a)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
        {
            if !seen.contains(&b) {
                seen.push(b);
            }
        }
    }
    seen.len() == nodes.len()
}

async fn swarm(n: usize, topic: TopicId) -> (Vec<GossipNode>, Counts) {
    let builder = || GossipNode::builder().subscription_queue(1 << 16);
    let first = builder().bind().await.unwrap();
    let bootstrap = first.addr();
    let mut nodes = vec![first];
    for _ in 1..n {
        nodes.push(builder().bootstrap(bootstrap).bind().await.unwrap());
    }
    // Joined: every node has a neighbour and the overlay is connected.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !connected(&nodes) {
        assert!(Instant::now() < deadline, "the overlay did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let notify = Arc::new(Notify::new());
    let mut counts = Vec::new();
    for node in nodes.iter().skip(1) {
        let mut sub = node.subscribe(topic).await.unwrap();
        let count = Arc::new(AtomicU64::new(0));
        counts.push(count.clone());
        let notify = notify.clone();
        tokio::spawn(async move {
            while sub.recv().await.is_some() {
                count.fetch_add(1, Ordering::Relaxed);
                notify.notify_waiters();
            }
        });
    }
    (nodes, Counts { counts, notify })
}

fn pow_cost(args: &Args, topic: TopicId) {
    let policy = BulletinPolicy::default();
    let t = Instant::now();
    let minted: Vec<Bulletin> = (0..args.mint)
        .map(|i| {
            policy
                .mint(topic, content(i, args.content), now(), 0)
                .unwrap()
                .into_bulletin()
        })
        .collect();
    let mint = t.elapsed() / u32::try_from(args.mint).unwrap();
    let t = Instant::now();
    for b in &minted {
        policy.verify(b.clone(), now()).unwrap();
    }
    let verify = t.elapsed() / u32::try_from(args.mint).unwrap();
    println!(
        "proof of work ({}, {}): mint {:.2} ms, verify {:.1} µs per bulletin (mean of {}, one thread)",
        policy.get_proof_of_work().function(),
        policy.get_proof_of_work().difficulty(),
        mint.as_secs_f64() * 1e3,
        verify.as_secs_f64() * 1e6,
        args.mint
    );
}

async fn publish_minted(args: &Args, topic: TopicId, publisher: &GossipNode, counts: &Counts) {
    counts.reset();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.minted {
        let node = publisher.clone();
        let c = content(1_000_000 + i, args.content);
        tasks.spawn(async move { node.publish(topic, c).await.unwrap() });
    }
    while tasks.join_next().await.is_some() {}
    let published = t.elapsed();
    let all = counts.wait_all(args.minted, Duration::from_secs(120)).await;
    let delivered = t.elapsed();
    println!(
        "publish with minting: {} bulletins of {} B published in {:.2} s ({:.0}/s), delivered by all {} others in {:.2} s ({:.0}/s){}",
        args.minted,
        args.content,
        published.as_secs_f64(),
        args.minted as f64 / published.as_secs_f64(),
        counts.counts.len(),
        delivered.as_secs_f64(),
        args.minted as f64 / delivered.as_secs_f64(),
        if all { "" } else { " — NOT ALL DELIVERED" }
    );
}

async fn publish_preminted(args: &Args, topic: TopicId, publisher: &GossipNode, counts: &Counts) {
    // Mint on every core first: this figure is the network's.
    let policy = BulletinPolicy::default();
    let threads = std::thread::available_parallelism().map_or(2, usize::from) as u64;
    let n = args.bulletins;
    let len = args.content;
    let bulletins: Vec<Bulletin> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..n)
                        .step_by(threads as usize)
                        .map(|i| {
                            policy
                                .mint(topic, content(2_000_000 + i, len), now(), 0)
                                .unwrap()
                                .into_bulletin()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    counts.reset();
    let t = Instant::now();
    let mut waited = Duration::ZERO;
    for (i, b) in bulletins.into_iter().enumerate() {
        let i = i as u64;
        while i >= counts.min() + args.window {
            let w = Instant::now();
            let woken = counts.notify.notified();
            if i < counts.min() + args.window {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), woken).await;
            waited += w.elapsed();
        }
        publisher.publish_bulletin(b).await.unwrap();
    }
    let published = t.elapsed();
    let all = counts.wait_all(n, Duration::from_secs(120)).await;
    let delivered = t.elapsed();
    let stats = publisher.stats().await.unwrap();
    println!(
        "network alone (pre-minted, window {}): {} bulletins of {} B delivered by all {} others in {:.2} s: {:.0} bulletins/s ({:.0} deliveries/s); publisher waited {:.2} s for the window, dropped {} messages{}",
        args.window,
        n,
        len,
        counts.counts.len(),
        delivered.as_secs_f64(),
        n as f64 / delivered.as_secs_f64(),
        (n * counts.counts.len() as u64) as f64 / delivered.as_secs_f64(),
        waited.as_secs_f64(),
        stats.protocol.queue_drops,
        if all { "" } else { " — NOT ALL DELIVERED" }
    );
    let _ = published;
}

fn main() {
    let args = Args::parse();
    let topic = TopicId::from_descriptor(b"bench/throughput");
    pow_cost(&args, topic);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (nodes, counts) = swarm(args.nodes, topic).await;
        let publisher = nodes[0].clone();
        println!(
            "{} nodes on 127.0.0.1, publisher {} with {} neighbours",
            nodes.len(),
            publisher.addr(),
            publisher.neighbors().len()
        );
        publish_minted(&args, topic, &publisher, &counts).await;
        publish_preminted(&args, topic, &publisher, &counts).await;
        for n in &nodes {
            n.shutdown().await;
        }
    });
}
