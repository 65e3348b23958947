//! [`Network`]: nodes running [`Protocol`] in one process, connected by links with latency,
//! driven by a discrete-event queue.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rustc_hash::{FxHashMap, FxHashSet};
use tracing::trace;

use super::host::SimHost;
use crate::proto::{
    Config, Event, InEvent, Message, MessageId, Output, Protocol, PublishError, Published, Stats,
    TopicId, wire,
};

/// A simulated node's id (also its [`PeerId`](crate::proto::PeerId)).
pub type NodeId = u64;

/// How the simulated network behaves.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`latency`](Self::latency) | 10–50 ms | one-way latency of a link, drawn once per pair of nodes, uniformly |
/// | [`proto`](Self::proto) | [`Config::default`] | every node's protocol configuration |
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    latency_min: Duration,
    latency_max: Duration,
    proto: Config,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            latency_min: Duration::from_millis(10),
            latency_max: Duration::from_millis(50),
            proto: Config::default(),
        }
    }
}

impl NetworkConfig {
    /// Link latencies are drawn uniformly from `min..max` (default 10–50 ms, as iroh-gossip's
    /// `simulations/all.toml`). `max` below `min` is taken as `min`.
    #[must_use]
    pub fn latency(mut self, min: Duration, max: Duration) -> Self {
        self.latency_min = min;
        self.latency_max = max.max(min);
        self
    }

    /// The protocol configuration of every node.
    #[must_use]
    pub fn proto(mut self, config: Config) -> Self {
        self.proto = config;
        self
    }

    /// The protocol configuration of every node.
    pub fn get_proto(&self) -> &Config {
        &self.proto
    }

    /// The largest link latency.
    pub fn get_latency_max(&self) -> Duration {
        self.latency_max
    }
}

#[derive(Debug)]
enum Ev {
    /// A frame arrives at `to` from `from`.
    Deliver {
        to: NodeId,
        from: NodeId,
        frame: Bytes,
    },
    /// `to` learns that its connection to `peer` is gone.
    Lost { to: NodeId, peer: NodeId },
    /// A node's protocol deadline.
    Wake(NodeId),
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug)]
struct Node {
    proto: Protocol<NodeId, SmallRng>,
    /// The earliest wake-up scheduled and not fired yet.
    wake: Option<Instant>,
}

/// An application event of one node, with when it happened.
#[derive(Debug, Clone)]
pub struct NodeEvent {
    /// The node.
    pub node: NodeId,
    /// When.
    pub at: Instant,
    /// What.
    pub event: Event<NodeId>,
}

/// A deterministic in-process network: same seed, same run.
///
/// Every message goes through the wire encoding ([`wire::encode`] then [`wire::decode`]) and
/// arrives after its link's latency; messages on one link arrive in order. A node can be killed
/// (its protocol state is dropped, its store kept, as a process that restarts with its disk) and
/// revived. Its peers learn of the death as a lost connection one latency later, if they had a
/// connection to it; a node that sends to a dead node learns it the same way.
#[derive(Debug)]
pub struct Network {
    config: NetworkConfig,
    start: Instant,
    now: Instant,
    nodes: Vec<Option<Node>>,
    hosts: Vec<SimHost>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    latencies: FxHashMap<(NodeId, NodeId), Duration>,
    conns: FxHashSet<(NodeId, NodeId)>,
    lost_pending: FxHashSet<(NodeId, NodeId)>,
    rng: SmallRng,
    events: VecDeque<NodeEvent>,
    record_payloads: bool,
    payload_sends: Vec<(NodeId, MessageId)>,
    decode_errors: u64,
    messages_sent: u64,
    bytes_sent: u64,
}

fn conn(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl Network {
    /// An empty network; `seed` decides every random choice of the run.
    pub fn new(config: NetworkConfig, seed: u64) -> Self {
        let start = Instant::now();
        Self {
            config,
            start,
            now: start,
            nodes: Vec::new(),
            hosts: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            latencies: FxHashMap::default(),
            conns: FxHashSet::default(),
            lost_pending: FxHashSet::default(),
            rng: SmallRng::seed_from_u64(seed),
            events: VecDeque::new(),
            record_payloads: false,
            payload_sends: Vec::new(),
            decode_errors: 0,
            messages_sent: 0,
            bytes_sent: 0,
        }
    }

    /// The network's configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The simulated time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Simulated time since the network was created.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The network's random number generator (for scenarios: choosing senders, victims).
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    /// Adds a node (ids count up from 0).
    pub fn add_node(&mut self) -> NodeId {
        let id = self.nodes.len() as NodeId;
        let node = self.new_node(id);
        self.nodes.push(Some(node));
        self.hosts.push(SimHost::default());
        id
    }

    fn new_node(&mut self, id: NodeId) -> Node {
        let rng = SmallRng::seed_from_u64(self.rng.random());
        Node {
            proto: Protocol::new(id, self.config.proto.clone(), rng),
            wake: None,
        }
    }

    /// Every node id ever added, dead or alive.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node was ever added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The live nodes.
    pub fn alive(&self) -> Vec<NodeId> {
        (0..self.nodes.len() as NodeId)
            .filter(|&i| self.is_alive(i))
            .collect()
    }

    /// Whether `id` is alive.
    pub fn is_alive(&self, id: NodeId) -> bool {
        self.node_ref(id).is_some()
    }

    fn node_ref(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id as usize).and_then(Option::as_ref)
    }

    /// The protocol state of a live node.
    pub fn proto(&self, id: NodeId) -> Option<&Protocol<NodeId, SmallRng>> {
        self.node_ref(id).map(|n| &n.proto)
    }

    /// The store and validator of a node (kept when it dies).
    pub fn host(&self, id: NodeId) -> Option<&SimHost> {
        self.hosts.get(id as usize)
    }

    /// The store and validator of a node, to change.
    pub fn host_mut(&mut self, id: NodeId) -> Option<&mut SimHost> {
        self.hosts.get_mut(id as usize)
    }

    /// Has `id` join through `bootstrap`.
    pub fn join(&mut self, id: NodeId, bootstrap: NodeId) {
        let now = self.now;
        self.with_node(id, |p, _| p.join(now, bootstrap));
    }

    /// Subscribes `id` to `topic` (remembered across a kill and revive).
    pub fn subscribe(&mut self, id: NodeId, topic: TopicId) {
        let now = self.now;
        if let Some(h) = self.hosts.get_mut(id as usize)
            && !h.topics.contains(&topic)
        {
            h.topics.push(topic);
        }
        self.with_node(id, |p, _| {
            let _ = p.subscribe(now, topic);
        });
    }

    /// Publishes from `id`; the host stores the message as the application would.
    pub fn publish(
        &mut self,
        id: NodeId,
        topic: TopicId,
        msg: MessageId,
        payload: Bytes,
    ) -> Option<Result<Published, PublishError>> {
        let now = self.now;
        if let Some(h) = self.hosts.get_mut(id as usize) {
            h.put(msg, topic, payload.clone());
        }
        self.with_node(id, |p, _| p.publish(now, topic, msg, payload))
    }

    /// Kills a node: its state is gone; peers connected to it notice one latency later.
    pub fn kill(&mut self, id: NodeId) {
        let Some(slot) = self.nodes.get_mut(id as usize) else {
            return;
        };
        if slot.take().is_none() {
            return;
        }
        let peers: Vec<NodeId> = self
            .conns
            .iter()
            .filter_map(|&(a, b)| match (a == id, b == id) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect();
        for peer in peers {
            self.conns.remove(&conn(id, peer));
            self.schedule_lost(peer, id);
        }
    }

    /// Revives a dead node with a fresh protocol state (its store kept), resubscribes it to its
    /// topics and joins it through `bootstrap`.
    pub fn revive(&mut self, id: NodeId, bootstrap: NodeId) {
        if self.is_alive(id) || id as usize >= self.nodes.len() {
            return;
        }
        let node = self.new_node(id);
        if let Some(slot) = self.nodes.get_mut(id as usize) {
            *slot = Some(node);
        }
        let topics = self
            .hosts
            .get(id as usize)
            .map(|h| h.topics.clone())
            .unwrap_or_default();
        for t in topics {
            self.subscribe(id, t);
        }
        self.join(id, bootstrap);
    }

    /// Takes the application events collected so far.
    pub fn take_events(&mut self) -> VecDeque<NodeEvent> {
        std::mem::take(&mut self.events)
    }

    /// Records (sender, id) of every payload message sent from now on.
    pub fn record_payload_sends(&mut self, on: bool) {
        self.record_payloads = on;
    }

    /// The recorded payload sends.
    pub fn payload_sends(&self) -> &[(NodeId, MessageId)] {
        &self.payload_sends
    }

    /// Frames that failed to decode (a bug if not zero: every frame is produced by the encoder).
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors
    }

    /// Messages and bytes sent so far.
    pub fn traffic(&self) -> (u64, u64) {
        (self.messages_sent, self.bytes_sent)
    }

    /// The sum of the live nodes' counters, and the largest `max_hops`.
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for n in self.nodes.iter().flatten() {
            let s = n.proto.stats();
            total.payload_received += s.payload_received;
            total.control_received += s.control_received;
            total.duplicates += s.duplicates;
            total.delivered += s.delivered;
            total.rejected += s.rejected;
            total.ignored += s.ignored;
            total.queue_drops += s.queue_drops;
            total.grafts_sent += s.grafts_sent;
            total.joins_sent += s.joins_sent;
            total.prunes_sent += s.prunes_sent;
            total.max_hops = total.max_hops.max(s.max_hops);
        }
        total
    }

    /// Sets every live node's counters to zero.
    pub fn reset_stats(&mut self) {
        for n in self.nodes.iter_mut().flatten() {
            n.proto.reset_stats();
        }
    }

    /// Whether events are pending.
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Runs until the simulated time reaches `until` (time then is `until`).
    pub fn run_until(&mut self, until: Instant) {
        while self.queue.peek().is_some_and(|Reverse(s)| s.at <= until) {
            self.step();
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Handles the next event, if it is due at or before `until`; false if there was none.
    pub fn step_until(&mut self, until: Instant) -> bool {
        if self.queue.peek().is_some_and(|Reverse(s)| s.at <= until) {
            self.step();
            true
        } else {
            false
        }
    }

    fn step(&mut self) {
        let Some(Reverse(s)) = self.queue.pop() else {
            return;
        };
        self.now = self.now.max(s.at);
        match s.ev {
            Ev::Deliver { to, from, frame } => self.deliver(to, from, frame),
            Ev::Lost { to, peer } => {
                self.lost_pending.remove(&(to, peer));
                self.with_node(to, |p, h| p.handle(s.at, InEvent::ConnectionLost(peer), h));
            }
            Ev::Wake(id) => {
                if let Some(n) = self.nodes.get_mut(id as usize).and_then(Option::as_mut)
                    && n.wake == Some(s.at)
                {
                    n.wake = None;
                }
                self.with_node(id, |p, h| p.handle(s.at, InEvent::Timeout, h));
            }
        }
    }

    fn deliver(&mut self, to: NodeId, from: NodeId, frame: Bytes) {
        if !self.is_alive(to) {
            // The connection is refused or reset: the sender learns it one latency later.
            self.conns.remove(&conn(from, to));
            self.schedule_lost(from, to);
            return;
        }
        self.conns.insert(conn(from, to));
        let limits = self.config.proto.get_limits();
        match wire::decode::<NodeId>(frame, &limits) {
            Ok(message) => {
                let now = self.now;
                self.with_node(to, |p, h| {
                    p.handle(now, InEvent::Message { from, message }, h)
                });
            }
            Err(e) => {
                trace!(%e, "undecodable frame");
                self.decode_errors += 1;
            }
        }
    }

    fn schedule_lost(&mut self, to: NodeId, peer: NodeId) {
        if !self.lost_pending.insert((to, peer)) {
            return;
        }
        let at = self.now + self.latency(to, peer) + Duration::from_micros(1);
        self.schedule(at, Ev::Lost { to, peer });
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn latency(&mut self, a: NodeId, b: NodeId) -> Duration {
        let (min, max) = (self.config.latency_min, self.config.latency_max);
        let rng = &mut self.rng;
        *self.latencies.entry(conn(a, b)).or_insert_with(|| {
            if max > min {
                rng.random_range(min..max)
            } else {
                min
            }
        })
    }

    /// Runs `f` on a live node, then carries out its outputs: frames onto the links, events into
    /// the collected list, its next deadline into the queue.
    fn with_node<T>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut Protocol<NodeId, SmallRng>, &mut SimHost) -> T,
    ) -> Option<T> {
        let (node, host) = match (
            self.nodes.get_mut(id as usize).and_then(Option::as_mut),
            self.hosts.get_mut(id as usize),
        ) {
            (Some(n), Some(h)) => (n, h),
            _ => return None,
        };
        let out = f(&mut node.proto, host);
        let mut sends: Vec<(NodeId, Message<NodeId>)> = Vec::new();
        let mut closes = Vec::new();
        while let Some(o) = node.proto.poll_output() {
            match o {
                Output::Transmit(peer) => {
                    while let Some(m) = node.proto.poll_transmit(&peer) {
                        sends.push((peer, m));
                    }
                }
                Output::Disconnect(peer) => closes.push(peer),
                Output::Event(event) => self.events.push_back(NodeEvent {
                    node: id,
                    at: self.now,
                    event,
                }),
            }
        }
        let next = node.proto.poll_timeout();
        let rearm = match (next, node.wake) {
            (Some(t), None) => Some(t),
            (Some(t), Some(w)) if t < w => Some(t),
            _ => None,
        };
        if let Some(t) = rearm {
            let at = t.max(self.now);
            node.wake = Some(at);
            self.schedule(at, Ev::Wake(id));
        }
        for (peer, m) in sends {
            if m.is_payload()
                && self.record_payloads
                && let Message::Gossip(g) | Message::Fetched(g) = &m
            {
                self.payload_sends.push((id, g.id));
            }
            let mut buf = BytesMut::with_capacity(wire::encoded_len(&m));
            wire::encode(&m, &mut buf);
            self.messages_sent += 1;
            self.bytes_sent += buf.len() as u64;
            let at = self.now + self.latency(id, peer);
            self.schedule(
                at,
                Ev::Deliver {
                    to: peer,
                    from: id,
                    frame: buf.freeze(),
                },
            );
        }
        // A graceful close: frames already sent still arrive (same link, same latency, earlier
        // sequence); the other side is not told of a failure.
        for peer in closes {
            self.conns.remove(&conn(id, peer));
        }
        Some(out)
    }
}
