//! Topics and anti-entropy: subscriptions told to neighbours, and ids exchanged per topic so a
//! node fetches what it lacks (the Python library's `request_synchronization` / `synchronize_to`
//! / `request_content` actions).

use std::collections::VecDeque;
use std::time::Instant;

use rand::Rng;
use rustc_hash::FxHashMap;

use super::membership::pick;
use super::message::Message;
use super::queue::Priority;
use super::state::Cx;
use super::{MessageId, PeerId, TopicId};

#[derive(Debug)]
pub(crate) struct Topics<P> {
    /// This node's topics, sorted.
    mine: Vec<TopicId>,
    /// Each neighbour's topics, as it told them.
    theirs: FxHashMap<P, Vec<TopicId>>,
    /// When each neighbour's sync request for each topic was last answered (neighbours only,
    /// at most `max_topics` each).
    answered: FxHashMap<(P, TopicId), Instant>,
    /// Ids asked for with `Fetch` and not received yet, until when they are waited for.
    fetching: FxHashMap<MessageId, Instant>,
    fetch_order: VecDeque<(MessageId, Instant)>,
}

impl<P: PeerId> Topics<P> {
    pub(crate) fn new() -> Self {
        Self {
            mine: Vec::new(),
            theirs: FxHashMap::default(),
            answered: FxHashMap::default(),
            fetching: FxHashMap::default(),
            fetch_order: VecDeque::new(),
        }
    }

    pub(crate) fn mine(&self) -> &[TopicId] {
        &self.mine
    }

    pub(crate) fn is_subscribed(&self, topic: &TopicId) -> bool {
        self.mine.binary_search(topic).is_ok()
    }

    /// Adds `topic`; `Ok(false)` if it was there, `Err(())` if the set is full.
    pub(crate) fn subscribe(&mut self, topic: TopicId, max: usize) -> Result<bool, ()> {
        match self.mine.binary_search(&topic) {
            Ok(_) => Ok(false),
            Err(_) if self.mine.len() >= max => Err(()),
            Err(i) => {
                self.mine.insert(i, topic);
                Ok(true)
            }
        }
    }

    pub(crate) fn unsubscribe(&mut self, topic: &TopicId) -> bool {
        match self.mine.binary_search(topic) {
            Ok(i) => {
                self.mine.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// How many of `neighbors` told us they subscribe to `topic`.
    pub(crate) fn subscribers(&self, neighbors: &[P], topic: &TopicId) -> usize {
        neighbors
            .iter()
            .filter(|p| self.theirs.get(p).is_some_and(|t| t.contains(topic)))
            .count()
    }

    /// Tells every neighbour our topics (after a change).
    pub(crate) fn announce<R: Rng>(&self, neighbors: &[P], cx: &mut Cx<'_, P, R>) {
        for &peer in neighbors {
            cx.send(
                peer,
                Message::Subscriptions(self.mine.clone()),
                Priority::High,
            );
        }
    }

    /// A new link: tell our topics, and ask what the neighbour holds of them.
    pub(crate) fn neighbor_up<R: Rng>(&mut self, peer: P, cx: &mut Cx<'_, P, R>) {
        if self.mine.is_empty() {
            return;
        }
        cx.send(
            peer,
            Message::Subscriptions(self.mine.clone()),
            Priority::High,
        );
        cx.send(peer, Message::SyncRequest(self.mine.clone()), Priority::Low);
    }

    pub(crate) fn neighbor_down(&mut self, peer: &P) {
        self.theirs.remove(peer);
        self.answered.retain(|(p, _), _| p != peer);
    }

    pub(crate) fn on_subscriptions(&mut self, from: P, mut topics: Vec<TopicId>, max: usize) {
        topics.truncate(max);
        topics.sort_unstable();
        topics.dedup();
        self.theirs.insert(from, topics);
    }

    /// The periodic exchange: ask one random neighbour.
    pub(crate) fn on_sync_timer<R: Rng>(&self, neighbors: &[P], cx: &mut Cx<'_, P, R>) {
        if self.mine.is_empty() {
            return;
        }
        if let Some(peer) = pick(neighbors, &[], cx.rng) {
            cx.send(peer, Message::SyncRequest(self.mine.clone()), Priority::Low);
        }
    }

    /// Whether `from`'s sync request for `topic` may be answered now (once per
    /// `sync_answer_gap` and topic, so a neighbour cannot make us send id lists in a loop).
    pub(crate) fn may_answer(
        &mut self,
        from: P,
        topic: TopicId,
        now: Instant,
        gap: std::time::Duration,
    ) -> bool {
        if self
            .answered
            .get(&(from, topic))
            .is_some_and(|&t| now < t + gap)
        {
            return false;
        }
        self.answered.insert((from, topic), now);
        true
    }

    /// Keeps the ids not being fetched already, up to the room left, and marks them fetched.
    pub(crate) fn start_fetch(
        &mut self,
        ids: impl IntoIterator<Item = MessageId>,
        until: Instant,
        max: usize,
    ) -> Vec<MessageId> {
        let mut out = Vec::new();
        // Entries of ids already received stay in the queue until they reach its front: bound
        // the queue too, by forgetting the oldest fetches (they can be fetched again later).
        while self.fetch_order.len() >= max.saturating_mul(2).max(1) {
            self.pop_fetch();
        }
        for id in ids {
            if self.fetching.len() >= max {
                break;
            }
            if self.fetching.contains_key(&id) {
                continue;
            }
            self.fetching.insert(id, until);
            self.fetch_order.push_back((id, until));
            out.push(id);
        }
        out
    }

    /// Whether `id` was being fetched (and no longer is).
    pub(crate) fn take_fetching(&mut self, id: &MessageId) -> bool {
        self.fetching.remove(id).is_some()
    }

    pub(crate) fn evict(&mut self, now: Instant) {
        while let Some(&(id, until)) = self.fetch_order.front() {
            let live = self.fetching.get(&id) == Some(&until);
            if live && until > now {
                break;
            }
            self.pop_fetch();
        }
    }

    fn pop_fetch(&mut self) {
        if let Some((id, until)) = self.fetch_order.pop_front()
            && self.fetching.get(&id) == Some(&until)
        {
            self.fetching.remove(&id);
        }
    }
}
