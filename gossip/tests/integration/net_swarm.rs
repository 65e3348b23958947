//! 24 `GossipNode`s on 127.0.0.1 over real TCP, default settings: one publish reaches every
//! node, a node that dies is replaced in its neighbours' views (and later publishes reach every
//! survivor), and a node publishing bulletins without a valid proof of work is banned by the
//! neighbours it sends them to, its bulletins neither delivered, stored nor forwarded.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use netaio_gossip::net::{GossipEvent, Subscription};
use netaio_gossip::proto::Config;
use netaio_gossip::{
    Bulletin, BulletinHeader, BulletinPolicy, Difficulty, GossipNode, ProofOfWork, TopicId,
};
use tokio::sync::mpsc;

use crate::net_common::{WAIT, delivery, node, within};

const NODES: usize = 24;
const ACTIVE_VIEW: usize = 5;

/// The defaults, but shuffles every 2 s instead of 60 s: a node refused by a full peer asks it
/// again after one shuffle interval, and the test should see the views settle in seconds.
fn builder() -> netaio_gossip::GossipNodeBuilder {
    let config = Config::default()
        .neighbor_timeout(Duration::from_secs(2))
        .shuffle_interval(Duration::from_secs(2));
    assert_eq!(config.get_active_view(), ACTIVE_VIEW);
    GossipNode::builder().config(config)
}

fn topic() -> TopicId {
    TopicId::from_descriptor(b"swarm/news")
}

/// The live nodes, and a signal each time a neighbour view changes (to re-check a condition
/// instead of sleeping).
struct Swarm {
    nodes: Vec<Option<GossipNode>>,
    changes: mpsc::Receiver<()>,
    tx: mpsc::Sender<()>,
}

impl Swarm {
    fn new() -> Self {
        // Capacity 1: changes coalesce; one pending signal is enough to re-check.
        let (tx, changes) = mpsc::channel(1);
        Self {
            nodes: Vec::new(),
            changes,
            tx,
        }
    }

    fn add(&mut self, node: GossipNode) -> usize {
        let mut watch = node.watch_neighbors();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                let _ = tx.try_send(());
            }
        });
        self.nodes.push(Some(node));
        self.nodes.len() - 1
    }

    fn live(&self) -> impl Iterator<Item = &GossipNode> {
        self.nodes.iter().flatten()
    }

    fn get(&self, i: usize) -> &GossipNode {
        self.nodes[i].as_ref().expect("a live node")
    }

    /// Waits until `cond` holds, re-checking at every change of a view.
    async fn until(&mut self, what: &str, limit: Duration, cond: impl Fn(&Swarm) -> bool) {
        let done = tokio::time::timeout(limit, async {
            while !cond(self) {
                self.changes.recv().await;
            }
        })
        .await;
        if done.is_err() {
            panic!(
                "timed out after {limit:?} waiting for {what}; views: {:#?}",
                self.live()
                    .map(|n| (
                        n.addr().port(),
                        n.neighbors().iter().map(|a| a.port()).collect::<Vec<_>>()
                    ))
                    .collect::<Vec<_>>()
            );
        }
    }

    /// Whether no two live nodes could still become neighbours: every node with a free slot is
    /// linked to every other node that has one (HyParView fills a slot from any peer with
    /// room; in a full overlay a slot can stay free).
    fn maximal(&self) -> bool {
        let live: Vec<(SocketAddr, Vec<SocketAddr>)> =
            self.live().map(|n| (n.addr(), n.neighbors())).collect();
        let free: Vec<&(SocketAddr, Vec<SocketAddr>)> =
            live.iter().filter(|(_, v)| v.len() < ACTIVE_VIEW).collect();
        free.iter()
            .all(|(a, va)| free.iter().all(|(b, _)| a == b || va.contains(b)))
    }

    fn by_addr(&self, addr: SocketAddr) -> &GossipNode {
        self.live().find(|n| n.addr() == addr).expect("a live node")
    }

    /// Two neighbours of node `i` that are not neighbours of each other.
    fn unlinked_neighbors(&self, i: usize) -> Option<(SocketAddr, SocketAddr)> {
        let view = self.nodes.get(i)?.as_ref()?.neighbors();
        view.iter().enumerate().find_map(|(k, &a)| {
            let of_a = self.live().find(|n| n.addr() == a)?.neighbors();
            view.iter()
                .skip(k + 1)
                .find(|b| !of_a.contains(b))
                .map(|&b| (a, b))
        })
    }

    /// Whether the overlay of live nodes is connected.
    fn connected(&self) -> bool {
        let live: Vec<&GossipNode> = self.live().collect();
        let Some(first) = live.first() else {
            return true;
        };
        let mut seen = BTreeSet::from([first.addr()]);
        let mut todo = VecDeque::from([first.addr()]);
        while let Some(a) = todo.pop_front() {
            let Some(n) = live.iter().find(|n| n.addr() == a) else {
                continue;
            };
            for b in n.neighbors() {
                if live.iter().any(|m| m.addr() == b) && seen.insert(b) {
                    todo.push_back(b);
                }
            }
        }
        seen.len() == live.len()
    }
}

/// Waits for `id` on every subscription but the publisher's.
async fn all_deliver(
    subs: &mut [(SocketAddr, Subscription)],
    publisher: SocketAddr,
    id: netaio_gossip::BulletinId,
) {
    for (addr, sub) in subs.iter_mut().filter(|(a, _)| *a != publisher) {
        let what = format!("{addr} to deliver {id:?}");
        within(WAIT, &what, async {
            loop {
                if delivery(sub, &what, WAIT).await.bulletin.id() == id {
                    return;
                }
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_four_nodes_deliver_replace_the_dead_and_ban_a_spammer() {
    let mut swarm = Swarm::new();
    let first = node(builder()).await;
    let bootstrap = first.addr();
    swarm.add(first);
    for _ in 1..NODES {
        swarm.add(node(builder().bootstrap(bootstrap)).await);
    }
    swarm
        .until("the overlay to connect and settle", 3 * WAIT, |s| {
            s.connected() && s.maximal()
        })
        .await;
    let mut subs = Vec::new();
    for n in swarm.live() {
        subs.push((n.addr(), n.subscribe(topic()).await.unwrap()));
    }

    // One publish reaches every other node.
    let publisher = swarm.get(5).clone();
    let first = publisher.publish(topic(), "to all 24").await.unwrap();
    all_deliver(&mut subs, publisher.addr(), first.id).await;

    // A node dies (no goodbye): it leaves every view, and its neighbours fill the slots it
    // freed. The victim has two neighbours that are not linked to each other: both get a free
    // slot, so once the views settle (`maximal`) at least one of them has a new neighbour.
    let (victim, (a, b)) = (1..NODES)
        .filter(|&i| i != 5)
        .find_map(|i| swarm.unlinked_neighbors(i).map(|pair| (i, pair)))
        .expect("a node with two neighbours not linked to each other");
    let dead = swarm.get(victim).addr();
    let before_a = swarm.by_addr(a).neighbors();
    let before_b = swarm.by_addr(b).neighbors();
    swarm.nodes[victim] = None;
    subs.retain(|(addr, _)| *addr != dead);
    swarm
        .until(
            "the dead node to be replaced in its neighbours' views",
            3 * WAIT,
            |s| s.live().all(|n| !n.neighbors().contains(&dead)) && s.maximal() && s.connected(),
        )
        .await;
    let gained = |addr, before: &[SocketAddr]| {
        swarm
            .by_addr(addr)
            .neighbors()
            .iter()
            .any(|p| !before.contains(p))
    };
    assert!(
        gained(a, &before_a) || gained(b, &before_b),
        "neither {a} nor {b} replaced {dead}"
    );
    let second = publisher
        .publish(topic(), "to the survivors")
        .await
        .unwrap();
    all_deliver(&mut subs, publisher.addr(), second.id).await;

    // A spammer: its own policy asks no work, so it publishes bulletins the swarm refuses.
    let lax = BulletinPolicy::default().proof_of_work(ProofOfWork::new(
        ProofOfWork::DEFAULT_FUNCTION,
        Difficulty::LeadingZeroBits(0),
    ));
    let spammer = node(builder().policy(lax).bootstrap(bootstrap)).await;
    let spammer_addr = spammer.addr();
    let spammer_idx = swarm.add(spammer.clone());
    swarm
        .until("the spammer to have neighbours", 3 * WAIT, |s| {
            s.get(spammer_idx).neighbors().len() >= 2
        })
        .await;
    let mut events: Vec<_> = swarm.live().map(|n| (n.addr(), n.events())).collect();
    let targets: Vec<SocketAddr> = swarm
        .live()
        .filter(|n| n.neighbors().contains(&spammer_addr))
        .map(GossipNode::addr)
        .collect();
    let honest = BulletinPolicy::default();
    let valid = honest
        .mint(topic(), "buy now", netaio_gossip_now(), 0)
        .unwrap();
    let mut header: BulletinHeader = *valid.bulletin().header();
    header.nonce = (0..)
        .find(|&n| {
            !honest
                .get_proof_of_work()
                .is_met_by(&BulletinHeader { nonce: n, ..header })
        })
        .unwrap();
    let spam = Bulletin::new(header, "buy now");
    let spam_id = spam.id();
    spammer.publish_bulletin(spam).await.unwrap();
    for (addr, rx) in events.iter_mut().filter(|(a, _)| targets.contains(a)) {
        let what = format!("{addr} to ban the spammer");
        crate::net_common::event(rx, &what, WAIT, |e| {
            matches!(e, GossipEvent::PeerBanned { peer, bulletin } if *peer == spammer_addr && *bulletin == spam_id)
        })
        .await;
    }
    swarm
        .until("the spammer to be dropped by every view", 3 * WAIT, |s| {
            s.live()
                .filter(|n| n.addr() != spammer_addr)
                .all(|n| !n.neighbors().contains(&spammer_addr))
        })
        .await;
    // Nothing of it delivered, stored or forwarded: only the spammer's direct neighbours ever
    // received it (and rejected it).
    for (addr, sub) in &mut subs {
        while let Some(d) = sub.try_recv() {
            assert_ne!(d.bulletin.id(), spam_id, "{addr} delivered spam");
        }
    }
    // Had an honest node forwarded it, its neighbours would have banned that node: every ban
    // names the spammer. (The spammer goes on finding new neighbours, which fetch its bulletin
    // by anti-entropy, reject it and ban it too: their number is not fixed.)
    let mut rejected = 0;
    for n in swarm.live().filter(|n| n.addr() != spammer_addr) {
        assert!(
            n.bulletin(spam_id).await.unwrap().is_none(),
            "{} stored spam",
            n.addr()
        );
        rejected += n.stats().await.unwrap().protocol.rejected;
    }
    assert!(rejected >= targets.len() as u64, "{rejected} rejections");
    for (addr, rx) in &mut events {
        while let Ok(e) = rx.try_recv() {
            if let GossipEvent::PeerBanned { peer, .. } = e {
                assert_eq!(peer, spammer_addr, "{addr} banned an honest node");
            }
        }
    }
    for n in swarm.live() {
        n.shutdown().await;
    }
}

fn netaio_gossip_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
