//! Broadcast: Plumtree's eager and lazy push over the active view.
//!
//! Follows the paper (Leitão, Pereira, Rodrigues, SRDS 2007), with these changes:
//! - one tree for the whole overlay, whatever the topic (every node relays every message);
//! - a new neighbour starts lazy unless configured otherwise: the tree grows from grafts, and the
//!   first message does not flood every link (the paper's all-eager start costs one redundant
//!   payload per link, once);
//! - an announced message is grafted soon when the node has no eager neighbour (nothing could bring
//!   it along the tree): after `graft_window`, from the announcer with the fewest hops; else after
//!   `graft_timeout`;
//! - a graft joins the link to the tree only when the tree is broken here: no eager neighbour
//!   left, an eager neighbour lost since the last join, or a grafted message whose copy never
//!   came along the tree afterwards (checked `tree_check` later). Otherwise the tree was merely
//!   slow for that sender, and the graft only fetches the message. The paper joins on every graft
//!   and prunes the link of the late copy: with many senders at once that tears the tree apart,
//!   since a path slow for one sender is the best path for others;
//! - a copy that left the tree somewhere (answered a graft) is marked `repaired`; a duplicate
//!   prunes its link only when both copies came purely along the tree, which is what shows a
//!   cycle, or when the link joined the tree and has not brought a new message yet (a join too
//!   many, when several nodes repaired the same break);
//! - a message fetched by anti-entropy is announced to the other neighbours, so that a message the
//!   broadcast missed spreads again by grafts;
//! - a hop budget: a message is neither pushed nor announced past `max_hops`.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rand::Rng;
use rustc_hash::FxHashMap;

use super::cache::{PayloadCache, SeenCache};
use super::config::Config;
use super::message::{Announcement, Gossip, Message};
use super::queue::Priority;
use super::state::Cx;
use super::timers::Timer;
use super::{MessageId, PeerId, TopicId};

/// Messages remembered as delivered by a graft, to judge later copies.
const VIA_GRAFT: usize = 4096;

/// A message whose first copy answered a graft of ours.
#[derive(Debug)]
struct Grafted<P> {
    peer: P,
    /// The graft joined the link to the tree.
    joined: bool,
    /// A pure tree copy arrived since.
    tree_copy: bool,
}

#[derive(Debug)]
pub(crate) struct Broadcast<P> {
    eager: Vec<P>,
    lazy: Vec<P>,
    seen: SeenCache,
    payloads: PayloadCache,
    /// Announced messages not received yet: who announced them (in order) and with what hops.
    missing: FxHashMap<MessageId, Vec<(P, u8)>>,
    /// Messages grafted and not received yet: the peers asked, and whether the last ask joined.
    grafting: FxHashMap<MessageId, (Vec<P>, bool)>,
    /// Messages received by graft. Bounded FIFO.
    via_graft: FxHashMap<MessageId, Grafted<P>>,
    via_graft_order: VecDeque<MessageId>,
    /// An eager neighbour was lost since the last joining graft.
    repair: bool,
    /// Eager links that joined the tree by a graft and have not brought a new message yet: a
    /// duplicate over one of them prunes it whatever the copies' marks (the join was one too many).
    speculative: Vec<P>,
    /// Announcements waiting for the dispatch timer, per lazy neighbour.
    lazy_queue: Vec<(P, Vec<Announcement>)>,
    dispatch_scheduled: bool,
}

impl<P: PeerId> Broadcast<P> {
    pub(crate) fn new(cfg: &Config) -> Self {
        Self {
            eager: Vec::new(),
            lazy: Vec::new(),
            seen: SeenCache::new(cfg.seen_lifetime, cfg.seen_capacity),
            payloads: PayloadCache::new(
                cfg.payload_cache_lifetime,
                cfg.payload_cache_messages,
                cfg.payload_cache_bytes,
            ),
            missing: FxHashMap::default(),
            grafting: FxHashMap::default(),
            via_graft: FxHashMap::default(),
            via_graft_order: VecDeque::new(),
            repair: false,
            speculative: Vec::new(),
            lazy_queue: Vec::new(),
            dispatch_scheduled: false,
        }
    }

    pub(crate) fn eager(&self) -> &[P] {
        &self.eager
    }

    pub(crate) fn lazy(&self) -> &[P] {
        &self.lazy
    }

    pub(crate) fn is_seen(&self, id: &MessageId, now: Instant) -> bool {
        self.seen.contains(id, now)
    }

    /// A message held for the application's verdict: seen (copies are duplicates), and no
    /// longer waited for.
    pub(crate) fn hold(&mut self, id: MessageId, now: Instant) {
        self.seen.insert(id, now);
        self.missing.remove(&id);
    }

    pub(crate) fn neighbor_up(&mut self, peer: P, eager: bool) {
        self.eager.retain(|p| *p != peer);
        self.lazy.retain(|p| *p != peer);
        if eager {
            self.eager.push(peer);
        } else {
            self.lazy.push(peer);
        }
    }

    pub(crate) fn neighbor_down(&mut self, peer: &P) {
        if self.eager.contains(peer) {
            self.repair = true;
        }
        self.eager.retain(|p| p != peer);
        self.lazy.retain(|p| p != peer);
        self.speculative.retain(|p| p != peer);
        // The paper: announcements of a failed neighbour are forgotten (a graft to it would fail).
        for announcers in self.missing.values_mut() {
            announcers.retain(|(p, _)| p != peer);
        }
        self.lazy_queue.retain(|(p, _)| p != peer);
    }

    fn add_eager(&mut self, peer: P) {
        if let Some(i) = self.lazy.iter().position(|p| *p == peer) {
            self.lazy.swap_remove(i);
            self.eager.push(peer);
        }
    }

    /// A link joins the tree by a graft (ours or the peer's): on probation until it brings a new
    /// message.
    fn join(&mut self, peer: P) {
        if self.lazy.contains(&peer) {
            self.add_eager(peer);
            if !self.speculative.contains(&peer) {
                self.speculative.push(peer);
            }
        }
    }

    fn add_lazy(&mut self, peer: P) {
        self.speculative.retain(|p| *p != peer);
        if let Some(i) = self.eager.iter().position(|p| *p == peer) {
            self.eager.swap_remove(i);
            self.lazy.push(peer);
        }
    }

    /// Publishes a message of this node: pushed to the eager neighbours, announced to the lazy
    /// ones. Returns how many got each, or `None` if the id was seen already.
    pub(crate) fn publish<R: Rng>(
        &mut self,
        id: MessageId,
        topic: TopicId,
        payload: Bytes,
        cx: &mut Cx<'_, P, R>,
    ) -> Option<(usize, usize)> {
        if !self.seen.insert(id, cx.now) {
            return None;
        }
        self.payloads
            .insert(id, topic, 0, false, payload.clone(), cx.now);
        let g = Gossip {
            id,
            topic,
            hops: 0,
            repaired: false,
            payload,
        };
        for &peer in &self.eager {
            cx.send(peer, Message::Gossip(g.clone()), Priority::High);
        }
        self.lazy_push(id, 0, None, cx);
        Some((self.eager.len(), self.lazy.len()))
    }

    /// A message already seen came from `from` (pushed, or answering a graft).
    pub(crate) fn on_duplicate<R: Rng>(&mut self, from: P, g: &Gossip, cx: &mut Cx<'_, P, R>) {
        if self.speculative.contains(&from) {
            self.add_lazy(from);
            cx.send(from, Message::Prune, Priority::High);
            return;
        }
        if let Some(grafted) = self.via_graft.get_mut(&g.id) {
            // We grafted it because the tree was slow; a copy pushed by another neighbour shows
            // the tree does reach us. No cycle shown either way: the tree stays.
            if grafted.peer != from && self.eager.contains(&from) {
                grafted.tree_copy = true;
            }
            return;
        }
        let first_repaired = self.payloads.get(&g.id, cx.now).is_some_and(|c| c.repaired);
        if g.repaired || first_repaired {
            return;
        }
        // Both copies came purely along the tree: it has a cycle; cut it here.
        self.add_lazy(from);
        cx.send(from, Message::Prune, Priority::High);
    }

    /// A message fetched by anti-entropy: the broadcast missed this node, and may have missed
    /// its neighbours too. It is announced to all of them (not pushed: most have it), so those
    /// that lack it graft it, and it spreads again at the broadcast's pace rather than one
    /// anti-entropy exchange per hop.
    pub(crate) fn accept_fetched<R: Rng>(&mut self, from: P, g: &Gossip, cx: &mut Cx<'_, P, R>) {
        self.seen.insert(g.id, cx.now);
        self.missing.remove(&g.id);
        self.grafting.remove(&g.id);
        let next = g.hops.saturating_add(1);
        self.payloads
            .insert(g.id, g.topic, next, true, g.payload.clone(), cx.now);
        if next >= cx.cfg.max_hops {
            return;
        }
        let entry = Announcement {
            id: g.id,
            hops: next,
        };
        let cap = cx.cfg.limits.max_ids;
        for &peer in self.eager.iter().chain(&self.lazy).filter(|&&p| p != from) {
            match self.lazy_queue.iter_mut().find(|(p, _)| *p == peer) {
                Some((_, list)) if list.len() >= cap => {}
                Some((_, list)) => list.push(entry),
                None => self.lazy_queue.push((peer, vec![entry])),
            }
        }
        if !self.dispatch_scheduled && !self.lazy_queue.is_empty() {
            self.dispatch_scheduled = true;
            cx.timer(cx.cfg.ihave_delay, Timer::DispatchIHave);
        }
    }

    /// A new, valid message from `from`: push it on along the tree, announce it to the lazy
    /// neighbours, and rewire the tree if an announcement showed a much shorter path.
    pub(crate) fn accept<R: Rng>(&mut self, from: P, g: &Gossip, cx: &mut Cx<'_, P, R>) {
        self.seen.insert(g.id, cx.now);
        self.speculative.retain(|p| *p != from);
        if let Some((asked, joined)) = self.grafting.remove(&g.id)
            && asked.contains(&from)
        {
            self.remember_graft(g.id, from, joined);
            if !joined {
                cx.timer(cx.cfg.tree_check, Timer::TreeCheck(g.id));
            }
        }
        let next = g.hops.saturating_add(1);
        self.payloads
            .insert(g.id, g.topic, next, g.repaired, g.payload.clone(), cx.now);
        if next < cx.cfg.max_hops {
            let fwd = Gossip {
                hops: next,
                ..g.clone()
            };
            for &peer in self.eager.iter().filter(|&&p| p != from) {
                cx.send(peer, Message::Gossip(fwd.clone()), Priority::Forward);
            }
            self.lazy_push(g.id, next, Some(from), cx);
        }
        let Some(announcers) = self.missing.remove(&g.id) else {
            return;
        };
        let threshold = cx.cfg.optimization_threshold;
        if threshold == 0 || g.repaired {
            return;
        }
        if let Some(&(peer, hops)) = announcers.iter().min_by_key(|(_, h)| *h)
            && g.hops >= hops.saturating_add(threshold)
            && peer != from
        {
            // The announcer is much closer to the source: take its link into the tree, and the
            // one this copy came over out of it.
            if self.lazy.contains(&peer) {
                self.join(peer);
                cx.send(
                    peer,
                    Message::Graft {
                        id: None,
                        join: true,
                    },
                    Priority::High,
                );
            }
            self.add_lazy(from);
            cx.send(from, Message::Prune, Priority::High);
        }
    }

    fn remember_graft(&mut self, id: MessageId, peer: P, joined: bool) {
        while self.via_graft_order.len() >= VIA_GRAFT {
            if let Some(old) = self.via_graft_order.pop_front() {
                self.via_graft.remove(&old);
            }
        }
        let entry = Grafted {
            peer,
            joined,
            tree_copy: false,
        };
        if self.via_graft.insert(id, entry).is_none() {
            self.via_graft_order.push_back(id);
        }
    }

    /// A message grafted without joining: if no tree copy came since, the tree does not reach
    /// this node from that sender's side; join the link the graft used.
    pub(crate) fn on_tree_check<R: Rng>(&mut self, id: MessageId, cx: &mut Cx<'_, P, R>) {
        let Some(g) = self.via_graft.get(&id) else {
            return;
        };
        if g.tree_copy || g.joined || !self.lazy.contains(&g.peer) {
            return;
        }
        let peer = g.peer;
        self.join(peer);
        cx.send(
            peer,
            Message::Graft {
                id: None,
                join: true,
            },
            Priority::High,
        );
    }

    fn lazy_push<R: Rng>(
        &mut self,
        id: MessageId,
        hops: u8,
        except: Option<P>,
        cx: &mut Cx<'_, P, R>,
    ) {
        let cap = cx.cfg.limits.max_ids;
        for &peer in self.lazy.iter().filter(|&&p| Some(p) != except) {
            let entry = Announcement { id, hops };
            match self.lazy_queue.iter_mut().find(|(p, _)| *p == peer) {
                // Announcements are best effort: beyond one message's worth per dispatch, the
                // peer learns of the rest from the tree or from anti-entropy.
                Some((_, list)) if list.len() >= cap => {}
                Some((_, list)) => list.push(entry),
                None => self.lazy_queue.push((peer, vec![entry])),
            }
        }
        if !self.dispatch_scheduled && !self.lazy_queue.is_empty() {
            self.dispatch_scheduled = true;
            cx.timer(cx.cfg.ihave_delay, Timer::DispatchIHave);
        }
    }

    pub(crate) fn dispatch<R: Rng>(&mut self, cx: &mut Cx<'_, P, R>) {
        self.dispatch_scheduled = false;
        for (peer, list) in std::mem::take(&mut self.lazy_queue) {
            cx.send(peer, Message::IHave(list), Priority::Low);
        }
    }

    pub(crate) fn on_ihave<R: Rng>(
        &mut self,
        from: P,
        list: Vec<Announcement>,
        cx: &mut Cx<'_, P, R>,
    ) {
        let max_announcers = cx.cfg.active_view;
        for a in list {
            if self.seen.contains(&a.id, cx.now) {
                continue;
            }
            if let Some(announcers) = self.missing.get_mut(&a.id) {
                if announcers.len() < max_announcers && !announcers.iter().any(|(p, _)| *p == from)
                {
                    announcers.push((from, a.hops));
                }
                continue;
            }
            if self.missing.len() >= cx.cfg.max_missing {
                continue;
            }
            self.missing.insert(a.id, vec![(from, a.hops)]);
            if self.eager.is_empty() {
                // No tree link could bring it: graft soon rather than wait, after a short window
                // to hear the other announcers and pick the fewest hops.
                if cx.cfg.graft_window.is_zero() {
                    self.on_graft_timer(a.id, cx);
                } else {
                    cx.timer(cx.cfg.graft_window, Timer::Graft(a.id));
                }
            } else {
                cx.timer(cx.cfg.graft_timeout, Timer::Graft(a.id));
            }
        }
    }

    pub(crate) fn on_graft_timer<R: Rng>(&mut self, id: MessageId, cx: &mut Cx<'_, P, R>) {
        if self.seen.contains(&id, cx.now) {
            self.missing.remove(&id);
            self.grafting.remove(&id);
            return;
        }
        // The announcer closest to the source (the earliest of those).
        let next = self.missing.get_mut(&id).and_then(|a| {
            let (i, _) = a.iter().enumerate().min_by_key(|(_, (_, hops))| *hops)?;
            Some(a.remove(i))
        });
        let Some((peer, _)) = next else {
            self.missing.remove(&id);
            self.grafting.remove(&id);
            return;
        };
        // Join the tree only where it is broken (see the module doc).
        let join = self.eager.is_empty() || self.repair;
        if join {
            self.repair = false;
            self.join(peer);
        }
        let entry = self.grafting.entry(id).or_default();
        entry.0.push(peer);
        entry.1 = join;
        cx.send(peer, Message::Graft { id: Some(id), join }, Priority::High);
        cx.timer(cx.cfg.graft_retry, Timer::Graft(id));
    }

    /// A neighbour grafted: with `join`, it joins the tree; with an id, it gets that message
    /// (from the payload cache, else from the store), marked repaired.
    pub(crate) fn on_graft<R: Rng>(
        &mut self,
        from: P,
        id: Option<MessageId>,
        join: bool,
        stored: impl FnOnce(&MessageId) -> Option<(TopicId, Bytes)>,
        cx: &mut Cx<'_, P, R>,
    ) {
        if join {
            self.join(from);
        }
        let Some(id) = id else { return };
        let found = match self.payloads.get(&id, cx.now) {
            Some(c) => Some((c.topic, c.hops, c.payload.clone())),
            None => stored(&id).map(|(topic, payload)| (topic, 0, payload)),
        };
        if let Some((topic, hops, payload)) = found {
            let g = Gossip {
                id,
                topic,
                hops,
                repaired: true,
                payload,
            };
            cx.send(from, Message::Gossip(g), Priority::High);
        }
    }

    pub(crate) fn on_prune(&mut self, from: P) {
        self.add_lazy(from);
    }

    /// A neighbour's queue overflowed: stop pushing payloads to it (it stays a lazy neighbour and
    /// can graft what it misses).
    pub(crate) fn demote<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        if self.eager.contains(&peer) {
            self.add_lazy(peer);
            cx.send(peer, Message::Prune, Priority::High);
        }
    }

    pub(crate) fn cached(&self, id: &MessageId, now: Instant) -> Option<(TopicId, u8, Bytes)> {
        self.payloads
            .get(id, now)
            .map(|c| (c.topic, c.hops, c.payload.clone()))
    }

    pub(crate) fn evict(&mut self, now: Instant) {
        self.seen.evict(now);
        self.payloads.evict(now);
    }
}
