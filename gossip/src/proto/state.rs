//! [`Protocol`]: one node's state; inputs in, outputs out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, RngExt};
use tracing::{debug, trace, warn};

use super::broadcast::Broadcast;
use super::config::Config;
use super::event::{Event, InEvent, Output, PublishError, Published, Stats, SubscribeError};
use super::held::Held;
use super::host::Host;
use super::membership::Membership;
use super::message::{Gossip, Message};
use super::queue::{Priority, SendQueues};
use super::sync::Topics;
use super::timers::{Timer, Timers};
use super::{MessageId, PeerId, TopicId};

// Receiving a payload, the hold and its release.
mod receive;

/// How often caches and bans are checked for expired entries.
const EVICT_INTERVAL: Duration = Duration::from_secs(1);

/// What the sub-protocols ask the state to do, applied in order by [`Protocol::flush`].
#[derive(Debug)]
pub(crate) enum Effect<P> {
    Send(P, Message<P>, Priority),
    Timer(Instant, Timer<P>),
    NeighborUp(P),
    NeighborDown(P),
    Disconnect(P),
}

/// What the sub-protocols get while handling an input.
pub(crate) struct Cx<'a, P, R> {
    pub(crate) now: Instant,
    pub(crate) cfg: &'a Config,
    pub(crate) rng: &'a mut R,
    pub(crate) fx: &'a mut VecDeque<Effect<P>>,
}

impl<P, R> Cx<'_, P, R> {
    pub(crate) fn send(&mut self, to: P, message: Message<P>, priority: Priority) {
        self.fx.push_back(Effect::Send(to, message, priority));
    }

    pub(crate) fn timer(&mut self, after: Duration, timer: Timer<P>) {
        self.fx.push_back(Effect::Timer(self.now + after, timer));
    }
}

/// One node of the gossip protocol, generic over the peer identity `P` and the random number
/// generator `R` (seed it for reproducible runs).
///
/// The driver feeds inputs ([`handle`](Self::handle), and the commands [`join`](Self::join),
/// [`subscribe`](Self::subscribe), [`publish`](Self::publish), [`leave`](Self::leave)), then
/// drains [`poll_output`](Self::poll_output) and [`poll_transmit`](Self::poll_transmit), and
/// calls `handle(now, InEvent::Timeout, …)` at [`poll_timeout`](Self::poll_timeout).
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use netaio_gossip::proto::{Config, Event, InEvent, MessageId, Output, Protocol, Published, TopicId};
/// use rand::{SeedableRng, rngs::SmallRng};
///
/// let now = Instant::now();
/// let topic = TopicId([7; 32]);
/// let mut a = Protocol::new(1u64, Config::default(), SmallRng::seed_from_u64(1));
/// let mut b = Protocol::new(2u64, Config::default(), SmallRng::seed_from_u64(2));
/// b.subscribe(now, topic).unwrap();
/// a.join(now, 2);
///
/// // A tiny driver: carry what `from` queued to `to` at once, collect `from`'s events.
/// type Node = Protocol<u64, SmallRng>;
/// fn carry(now: Instant, from: &mut Node, to: &mut Node, events: &mut Vec<Event<u64>>) {
///     while let Some(out) = from.poll_output() {
///         match out {
///             Output::Transmit(peer) => {
///                 while let Some(message) = from.poll_transmit(&peer) {
///                     to.handle(now, InEvent::Message { from: from.me(), message }, &mut ());
///                 }
///             }
///             Output::Event(e) => events.push(e),
///             Output::Disconnect(_) => {}
///         }
///     }
/// }
/// fn pump(now: Instant, a: &mut Node, b: &mut Node) -> Vec<Event<u64>> {
///     let mut events = Vec::new();
///     for _ in 0..10 {
///         carry(now, a, b, &mut events);
///         carry(now, b, a, &mut events);
///     }
///     events
/// }
/// pump(now, &mut a, &mut b);
/// assert_eq!(a.neighbors(), &[2]);
///
/// let sent = a.publish(now, topic, MessageId([1; 32]), Bytes::from_static(b"hello")).unwrap();
/// assert!(matches!(sent, Published::Sent { neighbors: 1, subscribers: 1, .. }));
/// // b is a lazy neighbour: it gets an announcement (after a 5 ms batching delay), waits 5 ms
/// // for other announcers, grafts, and receives the message.
/// let mut events = Vec::new();
/// for ms in [5, 10, 15] {
///     let t = now + std::time::Duration::from_millis(ms);
///     a.handle(t, InEvent::Timeout, &mut ());
///     b.handle(t, InEvent::Timeout, &mut ());
///     events.extend(pump(t, &mut a, &mut b));
/// }
/// assert!(events.iter().any(|e| matches!(e, Event::Received { message, .. } if message.payload == "hello")));
/// ```
#[derive(Debug)]
pub struct Protocol<P, R> {
    me: P,
    cfg: Config,
    rng: R,
    fx: VecDeque<Effect<P>>,
    membership: Membership<P>,
    broadcast: Broadcast<P>,
    topics: Topics<P>,
    queues: SendQueues<P>,
    timers: Timers<P>,
    outputs: VecDeque<Output<P>>,
    held: Held<P>,
    started: bool,
    stats: Stats,
}

impl<P: PeerId, R: Rng> Protocol<P, R> {
    /// A node with identity `me`.
    pub fn new(me: P, config: Config, rng: R) -> Self {
        Self {
            me,
            broadcast: Broadcast::new(&config),
            queues: SendQueues::new(config.queue_messages, config.queue_bytes),
            held: Held::new(config.max_held, config.max_held_bytes),
            cfg: config,
            rng,
            fx: VecDeque::new(),
            membership: Membership::new(me),
            topics: Topics::new(),
            timers: Timers::new(),
            outputs: VecDeque::new(),
            started: false,
            stats: Stats::default(),
        }
    }

    /// This node's identity.
    pub fn me(&self) -> P {
        self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The active view: current neighbours.
    pub fn neighbors(&self) -> &[P] {
        self.membership.active()
    }

    /// The passive view: known peers that are not neighbours.
    pub fn passive(&self) -> &[P] {
        self.membership.passive()
    }

    /// Neighbours on the broadcast tree (payloads are pushed to them).
    pub fn eager(&self) -> &[P] {
        self.broadcast.eager()
    }

    /// Neighbours off the tree (they get announcements).
    pub fn lazy(&self) -> &[P] {
        self.broadcast.lazy()
    }

    /// Subscribed topics, sorted.
    pub fn topics(&self) -> &[TopicId] {
        self.topics.mine()
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &P, now: Instant) -> bool {
        self.membership.is_banned(peer, now)
    }

    /// Messages queued for `peer`.
    pub fn queued(&self, peer: &P) -> usize {
        self.queues.len(peer)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Sets the counters back to zero.
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }

    /// Joins the swarm through one bootstrap peer (calling it again with another peer is fine).
    pub fn join(&mut self, now: Instant, bootstrap: P) {
        self.start(now);
        let mut cx = Cx {
            now,
            cfg: &self.cfg,
            rng: &mut self.rng,
            fx: &mut self.fx,
        };
        self.membership.join(bootstrap, &mut cx);
        self.flush(now);
    }

    /// Leaves the swarm: neighbours are told, views emptied. Messages still arrive until the
    /// neighbours have dropped the links; join again to come back.
    pub fn leave(&mut self, now: Instant) {
        let mut cx = Cx {
            now,
            cfg: &self.cfg,
            rng: &mut self.rng,
            fx: &mut self.fx,
        };
        self.membership.leave(&mut cx);
        self.flush(now);
    }

    /// Subscribes to `topic`: its messages are delivered as [`Event::Received`] and fetched by
    /// anti-entropy. `Ok(false)` if already subscribed.
    pub fn subscribe(&mut self, now: Instant, topic: TopicId) -> Result<bool, SubscribeError> {
        self.start(now);
        let max = self.cfg.max_topics;
        let added = self
            .topics
            .subscribe(topic, max)
            .map_err(|()| SubscribeError::TooMany { max })?;
        if added {
            let mut cx = Cx {
                now,
                cfg: &self.cfg,
                rng: &mut self.rng,
                fx: &mut self.fx,
            };
            let neighbors = self.membership.active();
            self.topics.announce(neighbors, &mut cx);
            for &peer in neighbors {
                cx.send(peer, Message::SyncRequest(vec![topic]), Priority::Low);
            }
            self.flush(now);
        }
        Ok(added)
    }

    /// Unsubscribes from `topic` (its messages are still relayed); false if not subscribed.
    pub fn unsubscribe(&mut self, now: Instant, topic: &TopicId) -> bool {
        if !self.topics.unsubscribe(topic) {
            return false;
        }
        let mut cx = Cx {
            now,
            cfg: &self.cfg,
            rng: &mut self.rng,
            fx: &mut self.fx,
        };
        self.topics.announce(self.membership.active(), &mut cx);
        self.flush(now);
        true
    }

    /// Publishes a message: pushed to the neighbours on the tree, announced to the others.
    ///
    /// The id must be new (two publishes of the same content need two ids). The host is not
    /// called: the application validated and stored its own message.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: TopicId,
        id: MessageId,
        payload: Bytes,
    ) -> Result<Published, PublishError> {
        self.start(now);
        let max = self.cfg.limits.max_payload;
        if payload.len() > max {
            return Err(PublishError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let mut cx = Cx {
            now,
            cfg: &self.cfg,
            rng: &mut self.rng,
            fx: &mut self.fx,
        };
        let (pushed, announced) = self
            .broadcast
            .publish(id, topic, payload, &mut cx)
            .ok_or(PublishError::Duplicate(id))?;
        self.flush(now);
        let neighbors = pushed + announced;
        let subscribers = self.topics.subscribers(self.membership.active(), &topic);
        Ok(if neighbors == 0 {
            Published::NoNeighbors
        } else if subscribers == 0 {
            Published::NoKnownSubscriber { neighbors, pushed }
        } else {
            Published::Sent {
                neighbors,
                pushed,
                subscribers,
            }
        })
    }

    /// Handles an input.
    pub fn handle(&mut self, now: Instant, event: InEvent<P>, host: &mut impl Host<P>) {
        self.start(now);
        match event {
            InEvent::Message { from, message } => self.on_message(now, from, message, host),
            InEvent::ConnectionLost(peer) => {
                self.queues.clear(&peer);
                let mut cx = Cx {
                    now,
                    cfg: &self.cfg,
                    rng: &mut self.rng,
                    fx: &mut self.fx,
                };
                self.membership.connection_lost(peer, &mut cx);
            }
            InEvent::Timeout => self.on_timeout(now),
        }
        self.flush(now);
    }

    /// When [`InEvent::Timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next thing for the driver to do.
    pub fn poll_output(&mut self) -> Option<Output<P>> {
        self.outputs.pop_front()
    }

    /// The next message to send to `peer`, highest priority first.
    pub fn poll_transmit(&mut self, peer: &P) -> Option<Message<P>> {
        self.queues.pop(peer)
    }

    fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        // Spread the periodic work so that nodes started together do not act in lockstep.
        let shuffle = jitter(self.cfg.shuffle_interval, &mut self.rng);
        let sync = jitter(self.cfg.sync_interval, &mut self.rng);
        self.timers.set(now + shuffle, Timer::Shuffle);
        self.timers.set(now + sync, Timer::Sync);
        self.timers.set(now + EVICT_INTERVAL, Timer::Evict);
    }

    fn on_message(&mut self, now: Instant, from: P, message: Message<P>, host: &mut impl Host<P>) {
        if from == self.me {
            return;
        }
        if message.is_payload() {
            self.stats.payload_received += 1;
        } else {
            self.stats.control_received += 1;
        }
        if self.membership.is_banned(&from, now) {
            trace!(peer = ?from, kind = message.kind(), "dropped: peer is banned");
            return;
        }
        let mut cx = Cx {
            now,
            cfg: &self.cfg,
            rng: &mut self.rng,
            fx: &mut self.fx,
        };
        let message = match message {
            Message::Join
            | Message::ForwardJoin { .. }
            | Message::Neighbor { .. }
            | Message::NeighborAccept
            | Message::NeighborRefuse
            | Message::Disconnect { .. }
            | Message::Shuffle { .. }
            | Message::ShuffleReply { .. } => {
                self.membership.handle(from, message, &mut cx);
                return;
            }
            other => other,
        };
        // Everything else is between neighbours only.
        if !self.membership.is_active(&from) {
            trace!(peer = ?from, kind = message.kind(), "dropped: not a neighbour");
            return;
        }
        match message {
            Message::Gossip(g) => self.on_gossip(now, from, g, false, host),
            Message::Fetched(g) => {
                if self.topics.take_fetching(&g.id) {
                    self.on_gossip(now, from, g, true, host);
                } else {
                    trace!(peer = ?from, id = ?g.id, "dropped: not fetched");
                }
            }
            Message::IHave(list) => self.broadcast.on_ihave(from, list, &mut cx),
            Message::Graft { id, join } => {
                self.broadcast
                    .on_graft(from, id, join, |id| host.payload(id), &mut cx);
            }
            Message::Prune => self.broadcast.on_prune(from),
            Message::Subscriptions(topics) => {
                self.topics
                    .on_subscriptions(from, topics, self.cfg.max_topics);
            }
            Message::SyncRequest(topics) => {
                let limit = self.cfg.limits.max_ids;
                for topic in topics.into_iter().take(self.cfg.max_topics) {
                    if !self
                        .topics
                        .may_answer(from, topic, now, self.cfg.sync_answer_gap)
                    {
                        continue;
                    }
                    let mut ids = host.held_ids(&topic, limit);
                    ids.truncate(limit);
                    if !ids.is_empty() {
                        cx.send(from, Message::SyncIds { topic, ids }, Priority::Low);
                    }
                }
            }
            Message::SyncIds { topic, ids } => {
                if !self.topics.is_subscribed(&topic) {
                    return;
                }
                let broadcast = &self.broadcast;
                let lacking: Vec<MessageId> = ids
                    .into_iter()
                    .filter(|id| !broadcast.is_seen(id, now) && !host.holds(id))
                    .collect();
                let until = now + self.cfg.sync_interval;
                let ids = self
                    .topics
                    .start_fetch(lacking, until, self.cfg.max_fetching);
                if !ids.is_empty() {
                    debug!(peer = ?from, n = ids.len(), "anti-entropy: fetching");
                    cx.send(from, Message::Fetch(ids), Priority::Low);
                }
            }
            Message::Fetch(ids) => {
                for id in ids.into_iter().take(self.cfg.limits.max_ids) {
                    let found = match self.broadcast.cached(&id, now) {
                        Some(c) => Some(c),
                        None => host
                            .payload(&id)
                            .map(|(topic, payload)| (topic, 0, payload)),
                    };
                    if let Some((topic, hops, payload)) = found {
                        let g = Gossip {
                            id,
                            topic,
                            hops,
                            repaired: true,
                            payload,
                        };
                        cx.send(from, Message::Fetched(g), Priority::Low);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            let mut cx = Cx {
                now,
                cfg: &self.cfg,
                rng: &mut self.rng,
                fx: &mut self.fx,
            };
            match timer {
                Timer::Shuffle => {
                    self.membership.on_shuffle_timer(&mut cx);
                    cx.timer(cx.cfg.shuffle_interval, Timer::Shuffle);
                }
                Timer::Sync => {
                    self.topics.on_sync_timer(self.membership.active(), &mut cx);
                    cx.timer(cx.cfg.sync_interval, Timer::Sync);
                }
                Timer::Evict => {
                    self.broadcast.evict(now);
                    self.membership.evict(now);
                    self.topics.evict(now);
                    cx.timer(EVICT_INTERVAL, Timer::Evict);
                }
                Timer::DispatchIHave => self.broadcast.dispatch(&mut cx),
                Timer::NeighborTimeout(peer) => self.membership.on_neighbor_timeout(peer, &mut cx),
                Timer::Graft(id) => self.broadcast.on_graft_timer(id, &mut cx),
                Timer::TreeCheck(id) => self.broadcast.on_tree_check(id, &mut cx),
            }
            // Timers set by this one (possibly due now) must be in the heap before the next pop.
            self.flush(now);
        }
    }

    /// Applies the effects the sub-protocols queued, in order (an effect may queue more).
    fn flush(&mut self, now: Instant) {
        while let Some(effect) = self.fx.pop_front() {
            match effect {
                Effect::Send(to, message, priority) => {
                    if to == self.me {
                        continue;
                    }
                    match &message {
                        Message::Graft { id, join } => {
                            self.stats.grafts_sent += u64::from(id.is_some());
                            self.stats.joins_sent += u64::from(*join);
                        }
                        Message::Prune => self.stats.prunes_sent += 1,
                        _ => {}
                    }
                    let pushed = self.queues.push(to, message, priority);
                    if pushed.ready {
                        self.outputs.push_back(Output::Transmit(to));
                    }
                    if pushed.dropped > 0 {
                        self.stats.queue_drops += pushed.dropped as u64;
                    }
                    if pushed.overflow_started {
                        warn!(peer = ?to, dropped = pushed.dropped, "send queue overflow");
                        self.outputs.push_back(Output::Event(Event::SlowPeer {
                            peer: to,
                            dropped: pushed.dropped,
                        }));
                        let mut cx = Cx {
                            now,
                            cfg: &self.cfg,
                            rng: &mut self.rng,
                            fx: &mut self.fx,
                        };
                        self.broadcast.demote(to, &mut cx);
                    }
                }
                Effect::Timer(at, timer) => self.timers.set(at, timer),
                Effect::NeighborUp(peer) => {
                    self.broadcast
                        .neighbor_up(peer, self.cfg.eager_new_neighbors);
                    let mut cx = Cx {
                        now,
                        cfg: &self.cfg,
                        rng: &mut self.rng,
                        fx: &mut self.fx,
                    };
                    self.topics.neighbor_up(peer, &mut cx);
                    self.outputs
                        .push_back(Output::Event(Event::NeighborUp(peer)));
                }
                Effect::NeighborDown(peer) => {
                    self.broadcast.neighbor_down(&peer);
                    self.topics.neighbor_down(&peer);
                    self.outputs
                        .push_back(Output::Event(Event::NeighborDown(peer)));
                }
                Effect::Disconnect(peer) => self.outputs.push_back(Output::Disconnect(peer)),
            }
        }
    }
}

/// `d` scaled by a random factor in [0.5, 1.5).
fn jitter<R: Rng>(d: Duration, rng: &mut R) -> Duration {
    d.mul_f64(rng.random_range(0.5..1.5))
}
