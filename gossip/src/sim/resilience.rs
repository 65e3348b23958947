//! Scenarios beyond iroh-gossip's simulator: mass failure, a node away and back, spammers.

use std::time::{Duration, Instant};

use rand::RngExt;
use rustc_hash::{FxHashMap, FxHashSet};

use super::host::payload;
use super::network::{NetworkConfig, NodeId};
use super::rounds::{RoundStats, Simulator, TOPIC};
use crate::proto::{Event, MessageId};

/// What [`churn`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnReport {
    /// Nodes alive after the kill.
    pub survivors: usize,
    /// Messages published after the kill.
    pub published: usize,
    /// Of which reached every survivor within the window.
    pub complete: usize,
    /// Deliveries made within the window, over deliveries expected.
    pub delivery_ratio: f64,
    /// The longest time a complete message took to reach its last survivor.
    pub slowest_complete: Duration,
    /// Survivors without any neighbour at the end.
    pub isolated_at_end: usize,
}

impl ChurnReport {
    /// `complete / published`.
    pub fn complete_ratio(&self) -> f64 {
        self.complete as f64 / self.published.max(1) as f64
    }
}

/// Kills `fraction` of `nodes` at once, after five warm-up rounds, then publishes one message per
/// `every` from a random survivor for `publish_for`, and checks which reach every survivor within
/// `window` of their publish.
pub fn churn(
    config: &NetworkConfig,
    seed: u64,
    nodes: usize,
    fraction: f64,
    every: Duration,
    publish_for: Duration,
    window: Duration,
) -> ChurnReport {
    let mut sim = Simulator::new(config.clone(), seed);
    sim.bootstrap(nodes);
    for _ in 0..5 {
        let s = sim.random_alive();
        sim.gossip_round(&[s]);
    }
    let kill = ((nodes as f64) * fraction).round() as usize;
    for _ in 0..kill {
        let victim = sim.random_alive();
        sim.network.kill(victim);
    }
    let survivors: FxHashSet<NodeId> = sim.network.alive().into_iter().collect();
    let start = sim.network.now();
    let mut published: Vec<(MessageId, Instant)> = Vec::new();
    let mut reached: FxHashMap<MessageId, FxHashMap<NodeId, Instant>> = FxHashMap::default();
    let mut t = start;
    let end_publish = start + publish_for;
    while t < end_publish {
        sim.network.run_until(t);
        collect(&mut sim, &mut reached);
        let from = sim.random_alive();
        let id = sim.next_message_id();
        let body = id.0.get(..8).unwrap_or_default();
        let _ = sim.network.publish(from, TOPIC, id, payload(true, body));
        reached.entry(id).or_default().insert(from, t);
        published.push((id, t));
        t += every;
    }
    let last_publish = published.last().map_or(start, |&(_, at)| at);
    let stop = last_publish + window;
    while sim.network.step_until(stop) {
        collect(&mut sim, &mut reached);
    }
    collect(&mut sim, &mut reached);
    sim.network.run_until(stop);

    let mut complete = 0;
    let mut made = 0usize;
    let mut slowest = Duration::ZERO;
    for (id, at) in &published {
        let got = reached.get(id);
        let in_time: Vec<Duration> = survivors
            .iter()
            .filter_map(|n| got.and_then(|g| g.get(n)))
            .map(|&t| t - *at)
            .filter(|d| *d <= window)
            .collect();
        made += in_time.len();
        if in_time.len() == survivors.len() {
            complete += 1;
            slowest = slowest.max(in_time.into_iter().max().unwrap_or_default());
        }
    }
    let isolated_at_end = survivors
        .iter()
        .filter(|&&n| {
            sim.network
                .proto(n)
                .is_some_and(|p| p.neighbors().is_empty())
        })
        .count();
    ChurnReport {
        survivors: survivors.len(),
        published: published.len(),
        complete,
        delivery_ratio: made as f64 / (published.len() * survivors.len()).max(1) as f64,
        slowest_complete: slowest,
        isolated_at_end,
    }
}

fn collect(sim: &mut Simulator, reached: &mut FxHashMap<MessageId, FxHashMap<NodeId, Instant>>) {
    for e in sim.network.take_events() {
        if let Event::Received { message, .. } = e.event {
            reached
                .entry(message.id)
                .or_default()
                .entry(e.node)
                .or_insert(e.at);
        }
    }
}

/// What [`away`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct AwayReport {
    /// Messages published while the node was away.
    pub missed_while_away: usize,
    /// Time from its return until it held all of them (`None`: not within the limit).
    pub caught_up_after: Option<Duration>,
    /// How many it got by anti-entropy (fetched) after its return.
    pub fetched: usize,
    /// Deliveries the returned node missed in the rounds after its return.
    pub missed_after_return: f64,
    /// Deliveries every node missed in the rounds while it was away.
    pub missed_while_away_by_others: f64,
}

/// Kills a random node after five rounds, runs `away_rounds` rounds (a random sender each), revives
/// it (fresh protocol state, its store kept) through a random live node, and measures how long it
/// takes to hold every message published meanwhile (looking at most `limit` ahead); then five more
/// rounds.
pub fn away(
    config: &NetworkConfig,
    seed: u64,
    nodes: usize,
    away_rounds: usize,
    limit: Duration,
) -> AwayReport {
    let mut sim = Simulator::new(config.clone(), seed);
    sim.bootstrap(nodes);
    for _ in 0..5 {
        let s = sim.random_alive();
        sim.gossip_round(&[s]);
    }
    let node = sim.random_alive();
    sim.network.kill(node);
    let mut missed_ids = Vec::new();
    let mut others_missed = 0.0;
    for _ in 0..away_rounds {
        let s = sim.random_alive();
        let id = sim.next_message_id();
        let alive = sim.network.alive();
        others_missed += sim.round(&[(s, id)], &alive, |_| true).missed;
        missed_ids.push(id);
    }
    let bootstrap = sim.random_alive();
    sim.network.revive(node, bootstrap);
    let back = sim.network.now();
    let _ = sim.network.take_events();
    let mut fetched = 0;
    let mut caught_up_after = None;
    let deadline = back + limit;
    loop {
        for e in sim.network.take_events() {
            if e.node == node && matches!(e.event, Event::Received { fetched: true, .. }) {
                fetched += 1;
            }
        }
        let has_all = sim
            .network
            .host(node)
            .is_some_and(|h| missed_ids.iter().all(|id| h.has(id)));
        if has_all {
            caught_up_after = Some(sim.network.now() - back);
            break;
        }
        if !sim.network.step_until(deadline) {
            break;
        }
    }
    let mut missed_after_return = 0.0;
    for _ in 0..5 {
        let mut s = sim.random_alive();
        while s == node {
            s = sim.random_alive();
        }
        let id = sim.next_message_id();
        sim.round(&[(s, id)], &[node], |_| true);
        if !sim.network.host(node).is_some_and(|h| h.has(&id)) {
            missed_after_return += 1.0;
        }
    }
    AwayReport {
        missed_while_away: missed_ids.len(),
        caught_up_after,
        fetched,
        missed_after_return,
        missed_while_away_by_others: others_missed,
    }
}

/// What [`spam`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamReport {
    /// Spamming nodes.
    pub spammers: usize,
    /// Spam messages published.
    pub spam_published: usize,
    /// Spam messages delivered to any application (should be 0: validated before delivery).
    pub spam_delivered: usize,
    /// Spam payloads sent by honest nodes (should be 0: spam goes no further than the first hop).
    pub spam_forwarded_by_honest: usize,
    /// Honest messages' deliveries to honest nodes missed.
    pub honest_missed: f64,
    /// Mean round figures of the honest messages.
    pub honest: RoundStats,
    /// Bans of a spammer by an honest node.
    pub bans: usize,
    /// Spammers that still had an honest neighbour at the end.
    pub spammers_connected_at_end: usize,
}

/// `fraction` of `nodes` are spammers; each round one random honest node publishes a valid message
/// and every spammer publishes one without a valid proof, all at once.
pub fn spam(
    config: &NetworkConfig,
    seed: u64,
    nodes: usize,
    fraction: f64,
    rounds: usize,
) -> SpamReport {
    let mut sim = Simulator::new(config.clone(), seed);
    sim.bootstrap(nodes);
    let count = ((nodes as f64) * fraction).round() as usize;
    let mut spammers: Vec<NodeId> = Vec::new();
    while spammers.len() < count.min(nodes) {
        let n = sim.random_alive();
        if !spammers.contains(&n) {
            spammers.push(n);
        }
    }
    let honest: Vec<NodeId> = sim
        .network
        .alive()
        .into_iter()
        .filter(|n| !spammers.contains(n))
        .collect();
    sim.network.record_payload_sends(true);
    let mut spam_ids: FxHashSet<MessageId> = FxHashSet::default();
    let mut spam_delivered = 0;
    let mut bans = 0;
    let mut rows = Vec::new();
    for _ in 0..rounds {
        let i = sim.network.rng().random_range(0..honest.len().max(1));
        let sender = honest.get(i).copied().unwrap_or(0);
        let mut msgs = vec![(sender, sim.next_message_id())];
        for &s in &spammers {
            let id = sim.next_message_id();
            spam_ids.insert(id);
            msgs.push((s, id));
        }
        let ids = spam_ids.clone();
        let r = sim.round(&msgs, &honest, |id| !ids.contains(id));
        rows.push(r);
        // Let the spam's consequences (rejections, bans) finish before counting them.
        sim.network.run_for(Duration::from_millis(500));
        for e in sim.network.take_events() {
            match e.event {
                Event::Received { message, .. } if spam_ids.contains(&message.id) => {
                    spam_delivered += 1;
                }
                Event::PeerBanned { peer, .. } if spammers.contains(&peer) => bans += 1,
                _ => {}
            }
        }
    }
    let spam_forwarded_by_honest = sim
        .network
        .payload_sends()
        .iter()
        .filter(|(from, id)| spam_ids.contains(id) && !spammers.contains(from))
        .count();
    let spammers_connected_at_end = spammers
        .iter()
        .filter(|&&s| {
            sim.network
                .proto(s)
                .is_some_and(|p| p.neighbors().iter().any(|n| !spammers.contains(n)))
        })
        .count();
    let honest_summary = RoundStats::mean(&rows);
    SpamReport {
        spammers: spammers.len(),
        spam_published: spam_ids.len(),
        spam_delivered,
        spam_forwarded_by_honest,
        honest_missed: rows.iter().map(|r| r.missed).sum(),
        honest: honest_summary,
        bans,
        spammers_connected_at_end,
    }
}
