//! Membership: HyParView's active and passive views.
//!
//! Follows the paper (Leitão, Pereira, Rodrigues, DSN 2007) with the changes iroh-gossip made
//! and a few of our own:
//! - a node reached by a `ForwardJoin` walk asks the newcomer with a `Neighbor` request instead of
//!   adding it unasked, so an unreachable newcomer never enters an active view;
//! - a `Neighbor` request is answered (`NeighborAccept`/`NeighborRefuse`) rather than silently
//!   taken, and a refused peer is not asked again for one shuffle interval;
//! - missing neighbours are requested in parallel (one request per free slot), not one at a time;
//! - a node left with no neighbour and no passive peer rejoins through its bootstrap peers, with a
//!   backoff, so a node that was cut off returns on its own;
//! - peers banned for invalid messages are refused and kept out of the views.
//!
//! Not done yet: the optional proof-of-work admission of new connections (a random `u64`
//! challenge, the joiner finds a nonce such that SHA-512(challenge ‖ nonce) has 24 leading zero
//! bits, challenges expire). It belongs before a `Join` or `Neighbor` from an unknown peer is
//! accepted: a challenge round trip in the transport's handshake, or an `admit` hook on
//! [`Host`](super::Host) consulted here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};
use rustc_hash::FxHashMap;
use tracing::debug;

use super::PeerId;
use super::message::Message;
use super::queue::Priority;
use super::state::{Cx, Effect};
use super::timers::Timer;

/// Bootstrap peers remembered for rejoining.
const MAX_BOOTSTRAP: usize = 8;

#[derive(Debug)]
pub(crate) struct Membership<P> {
    me: P,
    active: Vec<P>,
    passive: Vec<P>,
    /// `Neighbor` (or `Join`) requests in flight, with their priority.
    pending: Vec<(P, bool)>,
    /// Peers that refused a request, and when they may be asked again.
    refused: Vec<(P, Instant)>,
    banned: FxHashMap<P, Instant>,
    ban_order: VecDeque<(P, Instant)>,
    bootstrap: Vec<P>,
    /// Earliest time of the next rejoin attempt, and the backoff after it.
    next_rejoin: Option<Instant>,
    rejoin_backoff: Duration,
}

impl<P: PeerId> Membership<P> {
    pub(crate) fn new(me: P) -> Self {
        Self {
            me,
            active: Vec::new(),
            passive: Vec::new(),
            pending: Vec::new(),
            refused: Vec::new(),
            banned: FxHashMap::default(),
            ban_order: VecDeque::new(),
            bootstrap: Vec::new(),
            next_rejoin: None,
            rejoin_backoff: Duration::ZERO,
        }
    }

    pub(crate) fn active(&self) -> &[P] {
        &self.active
    }

    pub(crate) fn passive(&self) -> &[P] {
        &self.passive
    }

    pub(crate) fn is_active(&self, peer: &P) -> bool {
        self.active.contains(peer)
    }

    pub(crate) fn is_banned(&self, peer: &P, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|&until| until > now)
    }

    /// Joins the swarm through `peer`.
    pub(crate) fn join<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        if peer == self.me || self.is_banned(&peer, cx.now) {
            return;
        }
        if !self.bootstrap.contains(&peer) {
            if self.bootstrap.len() >= MAX_BOOTSTRAP {
                self.bootstrap.remove(0);
            }
            self.bootstrap.push(peer);
        }
        self.send_join(peer, cx);
    }

    fn send_join<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        if self.active.contains(&peer) || self.pending.iter().any(|(p, _)| *p == peer) {
            return;
        }
        self.pending.push((peer, true));
        cx.send(peer, Message::Join, Priority::High);
        cx.timer(cx.cfg.neighbor_timeout, Timer::NeighborTimeout(peer));
    }

    /// Handles a membership message (others are ignored).
    pub(crate) fn handle<R: Rng>(&mut self, from: P, message: Message<P>, cx: &mut Cx<'_, P, R>) {
        match message {
            Message::Join => self.on_join(from, cx),
            Message::ForwardJoin { peer, ttl } => self.on_forward_join(from, peer, ttl, cx),
            Message::Neighbor { high_priority } => self.on_neighbor(from, high_priority, cx),
            Message::NeighborAccept => self.on_accept(from, cx),
            Message::NeighborRefuse => self.on_refuse(from, cx),
            Message::Disconnect { alive } => self.on_disconnect(from, alive, cx),
            Message::Shuffle { origin, ttl, peers } => {
                self.on_shuffle(from, origin, ttl, peers, cx);
            }
            Message::ShuffleReply { peers } => {
                for p in peers {
                    self.add_passive(p, cx);
                }
                self.refill(cx);
            }
            _ => {}
        }
    }

    fn on_join<R: Rng>(&mut self, from: P, cx: &mut Cx<'_, P, R>) {
        if from == self.me {
            return;
        }
        let known = self.active.contains(&from);
        if !known {
            self.add_active(from, cx);
        }
        cx.send(from, Message::NeighborAccept, Priority::High);
        if known {
            return;
        }
        self.send_sample(from, cx);
        let ttl = cx.cfg.active_walk;
        for &peer in self.active.iter().filter(|&&p| p != from) {
            cx.send(
                peer,
                Message::ForwardJoin { peer: from, ttl },
                Priority::High,
            );
        }
    }

    fn on_forward_join<R: Rng>(&mut self, sender: P, peer: P, ttl: u8, cx: &mut Cx<'_, P, R>) {
        if peer == self.me || self.active.contains(&peer) || self.is_banned(&peer, cx.now) {
            return;
        }
        if ttl == 0 || self.active.len() <= 1 {
            self.request_neighbor(peer, true, cx);
            return;
        }
        if ttl == cx.cfg.passive_walk {
            self.add_passive(peer, cx);
        }
        match pick(&self.active, &[sender, peer], cx.rng) {
            Some(next) => cx.send(
                next,
                Message::ForwardJoin { peer, ttl: ttl - 1 },
                Priority::High,
            ),
            None => self.request_neighbor(peer, true, cx),
        }
    }

    fn on_neighbor<R: Rng>(&mut self, from: P, high: bool, cx: &mut Cx<'_, P, R>) {
        if from == self.me {
            return;
        }
        if self.active.contains(&from) {
            cx.send(from, Message::NeighborAccept, Priority::High);
        } else if high || self.active.len() < cx.cfg.active_view {
            self.add_active(from, cx);
            cx.send(from, Message::NeighborAccept, Priority::High);
        } else {
            self.send_sample(from, cx);
            cx.send(from, Message::NeighborRefuse, Priority::High);
            self.add_passive(from, cx);
        }
    }

    fn on_accept<R: Rng>(&mut self, from: P, cx: &mut Cx<'_, P, R>) {
        let requested = self.take_pending(&from);
        if self.active.contains(&from) || from == self.me {
            return;
        }
        let full = self.active.len() >= cx.cfg.active_view;
        // An accept we asked for with high priority is taken even if full (the other side may not
        // have been able to refuse either); any other one only into a free slot.
        if full && requested != Some(true) {
            self.send_sample(from, cx);
            cx.send(from, Message::Disconnect { alive: true }, Priority::High);
            cx.fx.push_back(Effect::Disconnect(from));
            self.add_passive(from, cx);
        } else {
            self.add_active(from, cx);
        }
    }

    fn on_refuse<R: Rng>(&mut self, from: P, cx: &mut Cx<'_, P, R>) {
        self.take_pending(&from);
        let until = cx.now + cx.cfg.shuffle_interval;
        self.refused.retain(|(p, _)| *p != from);
        if self.refused.len() < cx.cfg.passive_view.max(1) {
            self.refused.push((from, until));
        }
        self.add_passive(from, cx);
        self.refill(cx);
    }

    fn on_disconnect<R: Rng>(&mut self, from: P, alive: bool, cx: &mut Cx<'_, P, R>) {
        self.take_pending(&from);
        if self.remove_active(&from, cx) {
            cx.fx.push_back(Effect::Disconnect(from));
        }
        if alive {
            self.add_passive(from, cx);
        } else {
            self.passive.retain(|p| *p != from);
        }
        self.refill(cx);
    }

    fn on_shuffle<R: Rng>(
        &mut self,
        from: P,
        origin: P,
        ttl: u8,
        peers: Vec<P>,
        cx: &mut Cx<'_, P, R>,
    ) {
        if origin == self.me {
            return;
        }
        if ttl > 0
            && self.active.len() > 1
            && let Some(next) = pick(&self.active, &[from, origin], cx.rng)
        {
            let message = Message::Shuffle {
                origin,
                ttl: ttl - 1,
                peers,
            };
            cx.send(next, message, Priority::High);
            return;
        }
        let want = peers.len().min(cx.cfg.limits.max_peers);
        let mut reply = sample(&self.passive, &[origin], want, cx.rng);
        if reply.len() < want {
            let more = sample(&self.active, &[origin], want - reply.len(), cx.rng);
            reply.extend(more);
        }
        cx.send(
            origin,
            Message::ShuffleReply { peers: reply },
            Priority::High,
        );
        for p in peers {
            self.add_passive(p, cx);
        }
    }

    /// The shuffle timer: exchange passive samples with a random walk's end, refill, rejoin if
    /// isolated.
    pub(crate) fn on_shuffle_timer<R: Rng>(&mut self, cx: &mut Cx<'_, P, R>) {
        if let Some(q) = pick(&self.active, &[], cx.rng) {
            let mut peers = vec![self.me];
            peers.extend(sample(&self.active, &[q], cx.cfg.shuffle_active, cx.rng));
            peers.extend(sample(&self.passive, &[q], cx.cfg.shuffle_passive, cx.rng));
            peers.truncate(cx.cfg.limits.max_peers);
            let message = Message::Shuffle {
                origin: self.me,
                ttl: cx.cfg.shuffle_walk,
                peers,
            };
            cx.send(q, message, Priority::High);
        }
        self.refill(cx);
    }

    pub(crate) fn on_neighbor_timeout<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        if self.take_pending(&peer).is_some() {
            debug!(?peer, "neighbour request timed out");
            self.passive.retain(|p| *p != peer);
            self.refill(cx);
        }
    }

    /// The transport lost the connection to `peer` (or could not open one).
    pub(crate) fn connection_lost<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        self.take_pending(&peer);
        self.remove_active(&peer, cx);
        self.passive.retain(|p| *p != peer);
        self.refill(cx);
    }

    /// Drops `peer` from every view and refuses it until the ban ends.
    pub(crate) fn ban<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        let until = cx.now + cx.cfg.ban_duration;
        if cx.cfg.max_banned > 0 {
            while self.ban_order.len() >= cx.cfg.max_banned {
                self.pop_ban();
            }
            self.banned.insert(peer, until);
            self.ban_order.push_back((peer, until));
        }
        self.take_pending(&peer);
        if self.remove_active(&peer, cx) {
            cx.send(peer, Message::Disconnect { alive: false }, Priority::High);
            cx.fx.push_back(Effect::Disconnect(peer));
        }
        self.passive.retain(|p| *p != peer);
        self.refill(cx);
    }

    fn pop_ban(&mut self) {
        if let Some((peer, until)) = self.ban_order.pop_front()
            && self.banned.get(&peer) == Some(&until)
        {
            self.banned.remove(&peer);
        }
    }

    pub(crate) fn evict(&mut self, now: Instant) {
        while self
            .ban_order
            .front()
            .is_some_and(|&(_, until)| until <= now)
        {
            self.pop_ban();
        }
        self.refused.retain(|&(_, until)| until > now);
    }

    /// Leaves the swarm: every neighbour is told, the views are emptied.
    pub(crate) fn leave<R: Rng>(&mut self, cx: &mut Cx<'_, P, R>) {
        for peer in std::mem::take(&mut self.active) {
            cx.send(peer, Message::Disconnect { alive: false }, Priority::High);
            cx.fx.push_back(Effect::NeighborDown(peer));
            cx.fx.push_back(Effect::Disconnect(peer));
        }
        self.pending.clear();
        self.passive.clear();
        self.bootstrap.clear();
    }

    /// Gives `to` peers to fill its passive view from (as a `ShuffleReply`): a newcomer, a peer
    /// refused or pushed out of the active view would otherwise have few to turn to (iroh-gossip
    /// does the same before a disconnect).
    fn send_sample<R: Rng>(&self, to: P, cx: &mut Cx<'_, P, R>) {
        let mut peers = sample(&self.active, &[to], cx.cfg.shuffle_active, cx.rng);
        peers.extend(sample(&self.passive, &[to], cx.cfg.shuffle_passive, cx.rng));
        if !peers.is_empty() {
            cx.send(to, Message::ShuffleReply { peers }, Priority::High);
        }
    }

    fn take_pending(&mut self, peer: &P) -> Option<bool> {
        let i = self.pending.iter().position(|(p, _)| p == peer)?;
        Some(self.pending.swap_remove(i).1)
    }

    fn request_neighbor<R: Rng>(&mut self, peer: P, high: bool, cx: &mut Cx<'_, P, R>) {
        // Walks ending here ask newcomers; more requests in flight than twice the view would be
        // a flood of walks, not joins.
        if self.pending.len() >= 2 * cx.cfg.active_view
            || self.pending.iter().any(|(p, _)| *p == peer)
        {
            return;
        }
        self.pending.push((peer, high));
        cx.send(
            peer,
            Message::Neighbor {
                high_priority: high,
            },
            Priority::High,
        );
        cx.timer(cx.cfg.neighbor_timeout, Timer::NeighborTimeout(peer));
    }

    /// Asks passive peers to fill the free slots of the active view; rejoins through a bootstrap
    /// peer when there is nobody to ask.
    fn refill<R: Rng>(&mut self, cx: &mut Cx<'_, P, R>) {
        let now = cx.now;
        while self.active.len() + self.pending.len() < cx.cfg.active_view {
            let skip: Vec<P> = self
                .pending
                .iter()
                .map(|(p, _)| *p)
                .chain(
                    self.refused
                        .iter()
                        .filter(|(_, t)| *t > now)
                        .map(|(p, _)| *p),
                )
                .collect();
            let Some(peer) = pick(&self.passive, &skip, cx.rng) else {
                break;
            };
            let high = self.active.is_empty();
            self.request_neighbor(peer, high, cx);
        }
        if !self.active.is_empty() {
            self.rejoin_backoff = Duration::ZERO;
            self.next_rejoin = None;
        } else if self.pending.is_empty()
            && self.next_rejoin.is_none_or(|t| t <= now)
            && let Some(peer) = pick(&self.bootstrap, &[], cx.rng)
        {
            debug!(?peer, "isolated: rejoining through a bootstrap peer");
            self.rejoin_backoff = (self.rejoin_backoff * 2)
                .max(cx.cfg.neighbor_timeout)
                .min(cx.cfg.shuffle_interval);
            self.next_rejoin = Some(now + self.rejoin_backoff);
            self.send_join(peer, cx);
        }
    }

    fn add_active<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        if self.active.len() >= cx.cfg.active_view
            && let Some(victim) = pick(&self.active, &[peer], cx.rng)
        {
            self.remove_active(&victim, cx);
            cx.send(victim, Message::Disconnect { alive: true }, Priority::High);
            cx.fx.push_back(Effect::Disconnect(victim));
            self.add_passive(victim, cx);
        }
        self.passive.retain(|p| *p != peer);
        self.take_pending(&peer);
        self.active.push(peer);
        cx.fx.push_back(Effect::NeighborUp(peer));
    }

    fn remove_active<R: Rng>(&mut self, peer: &P, cx: &mut Cx<'_, P, R>) -> bool {
        let Some(i) = self.active.iter().position(|p| p == peer) else {
            return false;
        };
        self.active.swap_remove(i);
        cx.fx.push_back(Effect::NeighborDown(*peer));
        true
    }

    fn add_passive<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        let cap = cx.cfg.passive_view;
        if cap == 0
            || peer == self.me
            || self.active.contains(&peer)
            || self.passive.contains(&peer)
            || self.is_banned(&peer, cx.now)
        {
            return;
        }
        if self.passive.len() >= cap {
            let i = cx.rng.random_range(0..self.passive.len());
            self.passive.swap_remove(i);
        }
        self.passive.push(peer);
    }
}

/// A random element of `from` not in `skip`.
pub(crate) fn pick<P: PartialEq + Copy, R: Rng>(from: &[P], skip: &[P], rng: &mut R) -> Option<P> {
    let n = from.iter().filter(|p| !skip.contains(p)).count();
    if n == 0 {
        return None;
    }
    let k = rng.random_range(0..n);
    from.iter().filter(|p| !skip.contains(p)).nth(k).copied()
}

/// Up to `k` distinct random elements of `from` not in `skip`.
pub(crate) fn sample<P: PartialEq + Copy, R: Rng>(
    from: &[P],
    skip: &[P],
    k: usize,
    rng: &mut R,
) -> Vec<P> {
    let mut pool: Vec<P> = from.iter().filter(|p| !skip.contains(p)).copied().collect();
    // A partial Fisher-Yates shuffle: the first `k` places get random distinct elements.
    let k = k.min(pool.len());
    for i in 0..k {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool
}
