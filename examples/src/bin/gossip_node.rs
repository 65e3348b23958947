//! A gossip node (`netaio-gossip`): joins a swarm, follows topics and prints their bulletins as
//! they arrive; publishes `--publish TEXT` once it has a neighbour, then each line typed on
//! stdin, to the first topic.
//!
//! ```text
//! gossip_node --listen 127.0.0.1:7000 --topic news
//! gossip_node --listen 127.0.0.1:7001 --bootstrap 127.0.0.1:7000 --topic news --publish "hello"
//! ```
//!
//! Options: `--secret TEXT` for a closed swarm (`HmacAuth` on every message), `--seed HEX` for
//! per-peer encryption and signatures (`X25519Cipher` + `Ed25519Auth` with the identity of this
//! 32-byte seed; every node of the swarm needs one) with `--trust KEY` to accept only the listed
//! Ed25519 keys, `--advertise ADDR` when listening on 0.0.0.0 or ::, `--active-view N`,
//! `--shuffle-interval SECS`. For
//! tests of the swarm's defences, `--invalid-work` publishes bulletins whose proof of work is
//! wrong (the node's neighbours refuse them and ban it).
//!
//! It prints one line per event: `listening ADDR`, `key HEX`, `neighbor up|down ADDR`,
//! `published ID to TOPIC: …`, `bulletin TOPIC from ADDR: TEXT`, `banned ADDR`, `slow ADDR`,
//! `link lost ADDR: REASON`. It runs until Ctrl-C, SIGTERM or `--seconds N`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use netaio_asymmetric::Identity;
use netaio_gossip::net::{GossipEvent, PublishError, PublishOutcome};
use netaio_gossip::proto::Published;
use netaio_gossip::{
    Bulletin, BulletinHeader, BulletinPolicy, Difficulty, GossipNode, ProofOfWork, TopicId,
};
use netaio_support::signals::{after, stop_signals};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// A gossip node: joins a swarm, follows topics, prints their bulletins, publishes.
#[derive(Debug, Parser)]
#[command(name = "gossip_node")]
struct Cli {
    /// Address to accept neighbours on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address peers are told to dial (required with 0.0.0.0 or ::)
    #[arg(long, value_name = "ADDR")]
    advertise: Option<SocketAddr>,
    /// Join through this node (repeat for several)
    #[arg(long, value_name = "ADDR")]
    bootstrap: Vec<SocketAddr>,
    /// Follow this topic (repeat for several; the first is where bulletins are published;
    /// default: the node beacon channel)
    #[arg(long, value_name = "NAME")]
    topic: Vec<String>,
    /// Publish this once a neighbour is up (at once without --bootstrap)
    #[arg(long, value_name = "TEXT")]
    publish: Option<String>,
    /// Swarm secret: HmacAuth on every message
    #[arg(long, value_name = "TEXT")]
    secret: Option<String>,
    /// 32-byte identity seed in hex: per-peer encryption and signatures
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    seed: Option<[u8; 32]>,
    /// With --seed: accept only peers with this Ed25519 key (hex; repeat for several)
    #[arg(long, value_name = "KEY", value_parser = parse_key)]
    trust: Vec<[u8; 32]>,
    /// Neighbours to keep (the active view)
    #[arg(long, value_name = "N", default_value_t = 5)]
    active_view: usize,
    /// Seconds between two shuffles of the views (a peer that refused to be a neighbour is
    /// asked again after one)
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    shuffle_interval: u64,
    /// Publish with an invalid proof of work (to see the swarm refuse and ban this node)
    #[arg(long)]
    invalid_work: bool,
    /// Stop after N seconds
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
}

fn parse_key(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
    <[u8; 32]>::try_from(bytes).map_err(|b| format!("{} bytes, 32 expected", b.len()))
}

/// A topic's id and the name it was given on the command line.
struct Topics {
    names: HashMap<TopicId, String>,
    first: (TopicId, String),
}

impl Topics {
    fn new(names: &[String]) -> Self {
        let mut map = HashMap::new();
        for n in names {
            map.insert(TopicId::from_descriptor(n.as_bytes()), n.clone());
        }
        let first = match names.first() {
            Some(n) => (TopicId::from_descriptor(n.as_bytes()), n.clone()),
            None => (TopicId::beacon(), "beacon".to_owned()),
        };
        map.insert(first.0, first.1.clone());
        Self { names: map, first }
    }

    fn name(&self, t: &TopicId) -> String {
        self.names.get(t).cloned().unwrap_or_else(|| t.to_string())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    netaio_support::init_tracing("warn");
    let cli: Cli = netaio_support::parse_args();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gossip_node: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = netaio_gossip::proto::Config::default()
        .neighbor_timeout(Duration::from_secs(2))
        .active_view(cli.active_view)
        .shuffle_interval(Duration::from_secs(cli.shuffle_interval));
    let mut builder = GossipNode::builder().listen(cli.listen).config(config);
    if let Some(a) = cli.advertise {
        builder = builder.advertise(a);
    }
    for b in &cli.bootstrap {
        builder = builder.bootstrap(*b);
    }
    if let Some(s) = &cli.secret {
        builder = builder.secret(s);
    }
    let identity = cli.seed.map(Identity::from_seed);
    if let Some(id) = &identity {
        builder = builder.identity(id.clone()).trusted_keys(cli.trust.clone());
    }
    if cli.invalid_work {
        // Its own policy asks for no work, so that it sends what the others refuse.
        builder = builder.policy(BulletinPolicy::default().proof_of_work(ProofOfWork::new(
            ProofOfWork::DEFAULT_FUNCTION,
            Difficulty::LeadingZeroBits(0),
        )));
    }
    let node = builder.bind().await?;
    let mut events = node.events();
    println!("listening {}", node.addr());
    if let Some(id) = &identity {
        println!("key {}", hex::encode(id.public_keys().ed25519));
    }
    let topics = Topics::new(&cli.topic);
    let (deliveries_tx, mut deliveries) = mpsc::channel(256);
    for topic in topics.names.keys() {
        let mut sub = node.subscribe(*topic).await?;
        let tx = deliveries_tx.clone();
        tokio::spawn(async move {
            while let Some(d) = sub.recv().await {
                if tx.send(d).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(deliveries_tx);

    let mut pending = cli.publish.clone();
    if cli.bootstrap.is_empty()
        && let Some(text) = pending.take()
    {
        publish(&node, &topics, text, cli.invalid_work).await;
    }
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let stop = stop_signals();
    tokio::pin!(stop);
    let deadline = after(cli.seconds);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            s = &mut stop => {
                eprintln!("gossip_node: {s}, leaving");
                break;
            }
            () = &mut deadline => break,
            Some(d) = deliveries.recv() => {
                let b = d.bulletin.bulletin();
                println!(
                    "bulletin {} from {}: {}{}",
                    topics.name(&b.topic()),
                    d.from,
                    b.content().escape_ascii(),
                    if d.fetched { " (fetched)" } else { "" }
                );
            }
            event = events.recv() => match event {
                Ok(e) => {
                    let up = matches!(e, GossipEvent::NeighborUp(_));
                    show(&e);
                    if up && let Some(text) = pending.take() {
                        publish(&node, &topics, text, cli.invalid_work).await;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    println!("({n} events missed)");
                }
                Err(_) => break,
            },
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(text)) if !text.is_empty() => {
                    publish(&node, &topics, text, cli.invalid_work).await;
                }
                Ok(Some(_)) => {}
                // Standard input closed: keep running for the swarm.
                Ok(None) | Err(_) => stdin_open = false,
            },
        }
    }
    node.shutdown().await;
    Ok(())
}

fn show(event: &GossipEvent) {
    match event {
        GossipEvent::NeighborUp(p) => println!("neighbor up {p}"),
        GossipEvent::NeighborDown(p) => println!("neighbor down {p}"),
        GossipEvent::SlowPeer { peer, dropped } => {
            println!("slow {peer} ({dropped} messages dropped)");
        }
        GossipEvent::PeerBanned { peer, bulletin } => {
            println!("banned {peer} (bulletin {bulletin})");
        }
        GossipEvent::LinkLost { peer, reason } => println!("link lost {peer}: {reason}"),
        GossipEvent::DeliveryCodeChanged(c) => println!("delivery topic now {}", c.new_topic),
        other => println!("{other:?}"),
    }
}

async fn publish(node: &GossipNode, topics: &Topics, text: String, invalid: bool) {
    let (topic, name) = &topics.first;
    let result = if invalid {
        forged(node, *topic, text).await
    } else {
        node.publish(*topic, text).await
    };
    match result {
        Ok(PublishOutcome { id, sent }) => {
            let what = match sent {
                Published::Sent {
                    neighbors,
                    subscribers,
                    ..
                } => format!("sent to {neighbors} neighbours ({subscribers} subscribed)"),
                Published::NoKnownSubscriber { neighbors, .. } => {
                    format!("sent to {neighbors} neighbours, none known to subscribe")
                }
                Published::NoNeighbors => "no neighbours yet: stored for them".to_owned(),
            };
            println!("published {id} to {name}: {what}");
        }
        Err(e) => println!("not published: {e}"),
    }
}

/// A bulletin minted properly, then given a nonce whose proof of work fails the default
/// difficulty.
async fn forged(
    node: &GossipNode,
    topic: TopicId,
    text: String,
) -> Result<PublishOutcome, PublishError> {
    let honest = BulletinPolicy::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let minted = honest.mint(topic, text.clone(), now, 0)?;
    let header = *minted.bulletin().header();
    let nonce = (0..i32::MAX)
        .find(|&n| {
            !honest
                .get_proof_of_work()
                .is_met_by(&BulletinHeader { nonce: n, ..header })
        })
        .unwrap_or(0);
    node.publish_bulletin(Bulletin::new(BulletinHeader { nonce, ..header }, text))
        .await
}
