//! Gossip rounds and the scenarios of iroh-gossip's simulator (`GossipSingle`, `GossipMulti`,
//! `GossipAll`), with the same metrics.

use std::time::Duration;

use rand::RngExt;
use rustc_hash::{FxHashMap, FxHashSet};

use super::host::payload;
use super::network::{Network, NetworkConfig, NodeId};
use crate::proto::{Event, MessageId, TopicId};

/// The topic every simulated node subscribes to.
pub const TOPIC: TopicId = TopicId([0x5a; 32]);

/// A round is given up after this long (iroh-gossip's simulator uses the same 5 s).
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(5);

/// The measurements of one round (some messages published at once, run until every live node has
/// them all or [`ROUND_TIMEOUT`]).
///
/// The definitions are iroh-gossip's, so that the figures compare:
/// - `rmr`: relative message redundancy, `payload messages received / (deliveries − 1) − 1`, where
///   a delivery is one message reaching one node other than its publisher. 0 would be a perfect
///   spanning tree with one delivery fewer than messages (the formula's `− 1`); each redundant
///   payload adds `1 / (deliveries − 1)`.
/// - `ldh`: last delivery hop, the largest hop count of a delivery *as iroh counts it*: the
///   publisher's neighbours are at 0 (the true number of hops is one more).
/// - `missed`: deliveries that did not happen within the round.
/// - `duration`: from the publish to the last delivery.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RoundStats {
    /// Publish to last delivery (the timeout if deliveries were missed).
    pub duration: Duration,
    /// Relative message redundancy.
    pub rmr: f64,
    /// Last delivery hop (publisher's neighbours: 0).
    pub ldh: f64,
    /// Deliveries missed.
    pub missed: f64,
    /// Payload messages received during the round.
    pub payloads: u64,
    /// Deliveries made.
    pub deliveries: u64,
}

impl RoundStats {
    /// The mean of each figure over `rounds` (zero for none).
    pub fn mean(rounds: &[RoundStats]) -> RoundStats {
        let n = rounds.len().max(1) as f64;
        let sum = |f: fn(&RoundStats) -> f64| rounds.iter().map(f).sum::<f64>() / n;
        RoundStats {
            duration: Duration::from_secs_f64(sum(|r| r.duration.as_secs_f64())),
            rmr: sum(|r| r.rmr),
            ldh: sum(|r| r.ldh),
            missed: sum(|r| r.missed),
            payloads: (sum(|r| r.payloads as f64)).round() as u64,
            deliveries: (sum(|r| r.deliveries as f64)).round() as u64,
        }
    }

    /// Each figure's minimum over `rows` — how iroh-gossip's simulator combines its per-seed means
    /// (`RoundStatsAvg::avg` takes the `min` of the means), kept to compare with its printout.
    pub fn min_each(rows: &[RoundStats]) -> RoundStats {
        let mut it = rows.iter();
        let Some(first) = it.next() else {
            return RoundStats::default();
        };
        it.fold(*first, |a, r| RoundStats {
            duration: a.duration.min(r.duration),
            rmr: a.rmr.min(r.rmr),
            ldh: a.ldh.min(r.ldh),
            missed: a.missed.min(r.missed),
            payloads: a.payloads.min(r.payloads),
            deliveries: a.deliveries.min(r.deliveries),
        })
    }
}

/// Who sends in each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Senders {
    /// One node, chosen at random once, sends one message per round (`GossipSingle`).
    Single,
    /// A node chosen at random each round sends one message (`GossipMulti`).
    Multi,
    /// Every node sends one message, all at once (`GossipAll`).
    All,
}

/// One scenario of iroh-gossip's `simulations/all.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Who sends.
    pub senders: Senders,
    /// Nodes in the swarm.
    pub nodes: usize,
    /// Rounds.
    pub rounds: usize,
}

impl Scenario {
    /// A label like iroh-gossip's: `GossipSingle-n100-r30`.
    pub fn label(&self) -> String {
        let sim = match self.senders {
            Senders::Single => "GossipSingle",
            Senders::Multi => "GossipMulti",
            Senders::All => "GossipAll",
        };
        format!("{sim}-n{}-r{}", self.nodes, self.rounds)
    }

    /// Bootstraps a network and runs the rounds; one [`RoundStats`] per round.
    pub fn run(&self, config: &NetworkConfig, seed: u64) -> Vec<RoundStats> {
        let mut sim = Simulator::new(config.clone(), seed);
        sim.bootstrap(self.nodes);
        let single = sim.random_alive();
        (0..self.rounds)
            .map(|_| {
                let senders = match self.senders {
                    Senders::Single => vec![single],
                    Senders::Multi => vec![sim.random_alive()],
                    Senders::All => sim.network.alive(),
                };
                sim.gossip_round(&senders)
            })
            .collect()
    }
}

/// A [`Network`] with the round logic on top.
#[derive(Debug)]
pub struct Simulator {
    /// The network.
    pub network: Network,
    next_id: u64,
    duplicate_deliveries: u64,
}

impl Simulator {
    /// An empty simulator.
    pub fn new(config: NetworkConfig, seed: u64) -> Self {
        Self {
            network: Network::new(config, seed),
            next_id: 0,
            duplicate_deliveries: 0,
        }
    }

    /// Creates `nodes` nodes as iroh-gossip's simulator does (`BootstrapMode::Single`): node 0
    /// first, then every other node joins through node 0, all at the same time; all subscribe to
    /// [`TOPIC`]; then the network runs for 20 × the largest latency (1 s by default).
    pub fn bootstrap(&mut self, nodes: usize) {
        let first = self.network.add_node();
        self.network.subscribe(first, TOPIC);
        for _ in 1..nodes {
            let id = self.network.add_node();
            self.network.subscribe(id, TOPIC);
            self.network.join(id, first);
        }
        let settle = self.network.config().get_latency_max() * 20;
        self.network.run_for(settle);
    }

    /// A random live node.
    pub fn random_alive(&mut self) -> NodeId {
        let alive = self.network.alive();
        let i = self.network.rng().random_range(0..alive.len().max(1));
        alive.get(i).copied().unwrap_or(0)
    }

    /// A fresh message id (opaque: a counter).
    pub fn next_message_id(&mut self) -> MessageId {
        self.next_id += 1;
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&self.next_id.to_be_bytes());
        id[8] = 0x1d;
        MessageId(id)
    }

    /// Deliveries of a message to a node that had it already, or to its publisher (0 unless the
    /// protocol is broken).
    pub fn duplicate_deliveries(&self) -> u64 {
        self.duplicate_deliveries
    }

    /// Publishes one valid message from each of `senders` at once and runs until every live
    /// node has every message, or [`ROUND_TIMEOUT`].
    pub fn gossip_round(&mut self, senders: &[NodeId]) -> RoundStats {
        let alive = self.network.alive();
        let msgs: Vec<(NodeId, MessageId)> = senders
            .iter()
            .map(|&s| (s, self.next_message_id()))
            .collect();
        self.round(&msgs, &alive, |_| true)
    }

    /// Publishes `msgs` (sender, id) at once — payloads valid unless `valid(id)` says no — and
    /// runs until each of `recipients` (other than the sender) has each valid message, or the
    /// timeout.
    pub(crate) fn round(
        &mut self,
        msgs: &[(NodeId, MessageId)],
        recipients: &[NodeId],
        valid: impl Fn(&MessageId) -> bool,
    ) -> RoundStats {
        self.network.reset_stats();
        let _ = self.network.take_events();
        let start = self.network.now();
        let mut waiting: FxHashMap<MessageId, FxHashSet<NodeId>> = FxHashMap::default();
        let mut got: FxHashMap<MessageId, FxHashSet<NodeId>> = FxHashMap::default();
        let mut expected = 0u64;
        for &(from, id) in msgs {
            got.entry(id).or_default().insert(from);
            let ok = valid(&id);
            if ok {
                let set: FxHashSet<NodeId> =
                    recipients.iter().copied().filter(|&n| n != from).collect();
                expected += set.len() as u64;
                waiting.insert(id, set);
            }
            let body = id.0.get(..8).unwrap_or_default();
            let _ = self.network.publish(from, TOPIC, id, payload(ok, body));
        }
        let deadline = start + ROUND_TIMEOUT;
        let mut remaining = expected;
        let mut last = start;
        loop {
            for e in self.network.take_events() {
                if let Event::Received { message, .. } = &e.event {
                    if let Some(seen) = got.get_mut(&message.id)
                        && !seen.insert(e.node)
                    {
                        self.duplicate_deliveries += 1;
                    }
                    if waiting
                        .get_mut(&message.id)
                        .is_some_and(|set| set.remove(&e.node))
                    {
                        remaining -= 1;
                        last = e.at;
                    }
                }
            }
            if remaining == 0 || !self.network.step_until(deadline) {
                break;
            }
        }
        if remaining > 0 {
            // The clock stopped at the last event before the deadline; a missed round lasts the
            // whole timeout.
            self.network.run_until(deadline);
            last = deadline;
        }
        let stats = self.network.stats();
        let deliveries = expected - remaining;
        let rmr = if deliveries > 1 {
            stats.payload_received as f64 / (deliveries - 1) as f64 - 1.0
        } else {
            0.0
        };
        RoundStats {
            duration: last - start,
            rmr,
            ldh: f64::from(stats.max_hops),
            missed: remaining as f64,
            payloads: stats.payload_received,
            deliveries,
        }
    }
}
