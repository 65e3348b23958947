//! The hard deadlines of a request table, in order, at O(1) per request in the usual case.
//!
//! Most requests of a node share one timeout, so each new deadline comes at or after the last
//! one: such a deadline is pushed at the back of a queue that is then in order by construction,
//! and left there when its request is answered (no removal per request; an ordered tree cost a
//! `BTreeSet` insert and remove per call). A left entry is recognized by its request's
//! registration number (`seq`), so an id used again by a later request is never mistaken for it,
//! and the queue is compacted when the entries left behind outnumber the requests waiting, so it
//! stays bounded by twice the table's size (plus a constant). A deadline earlier than the back of
//! the queue (a call with a shorter timeout) goes to an ordered tree instead, removed eagerly.

use std::collections::{BTreeSet, VecDeque};

use tokio::time::Instant;

/// Entries left in the queue beyond twice the requests waiting before it is compacted.
const SLACK: usize = 64;

/// A hard deadline: when, and which request (`id`, `seq`).
type Deadline = (Instant, u64, u64);

/// Hard deadlines in order (see the module's text).
#[derive(Debug, Default)]
pub(super) struct HardDeadlines {
    /// Deadlines pushed in order, with entries of requests no longer waiting among them.
    queue: VecDeque<Deadline>,
    /// Deadlines that came before the queue's back, in order; only of requests waiting.
    tree: BTreeSet<Deadline>,
}

impl HardDeadlines {
    /// Add the deadline of request `id` (registration number `seq`); `waiting` requests are in
    /// the table and `live` says whether an entry's request still waits with this deadline.
    pub(super) fn push(&mut self, d: Deadline, waiting: usize, live: impl Fn(u64, u64) -> bool) {
        if self.queue.back().is_some_and(|b| d.0 < b.0) {
            self.tree.insert(d);
            return;
        }
        if self.queue.len() >= 2 * waiting + SLACK {
            self.queue.retain(|&(_, id, seq)| live(id, seq));
        }
        self.queue.push_back(d);
    }

    /// Request `id` left the table: its deadline goes with it (a queue entry is left behind).
    pub(super) fn remove(&mut self, d: Deadline) {
        if !self.tree.is_empty() {
            self.tree.remove(&d);
        }
    }

    /// The earliest deadline of a request still waiting.
    pub(super) fn first(&self, live: impl Fn(u64, u64) -> bool) -> Option<Instant> {
        let queued = self
            .queue
            .iter()
            .find(|&&(_, id, seq)| live(id, seq))
            .map(|d| d.0);
        let tree = self.tree.first().map(|d| d.0);
        match (queued, tree) {
            (Some(q), Some(t)) => Some(q.min(t)),
            (q, t) => q.or(t),
        }
    }

    /// Drop the queue's front entries of requests no longer waiting (so that
    /// [`first`](Self::first) finds the next one at once).
    fn prune(&mut self, live: impl Fn(u64, u64) -> bool) {
        while let Some(&(_, id, seq)) = self.queue.front() {
            if live(id, seq) {
                break;
            }
            self.queue.pop_front();
        }
    }

    /// Take out the earliest deadline at or before `now` of a request still waiting: its id.
    pub(super) fn pop_due(&mut self, now: Instant, live: impl Fn(u64, u64) -> bool) -> Option<u64> {
        self.prune(&live);
        let queued = self.queue.front().filter(|d| d.0 <= now).copied();
        let tree = self.tree.first().filter(|d| d.0 <= now).copied();
        match (queued, tree) {
            (Some(q), Some(t)) if t < q => self.tree.pop_first().map(|d| d.1),
            (Some(_), _) => self.queue.pop_front().map(|d| d.1),
            (None, Some(_)) => self.tree.pop_first().map(|d| d.1),
            (None, None) => None,
        }
    }

    /// Entries held (left-behind ones included), for the bound's test.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.queue.len() + self.tree.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    #[test]
    fn in_order_deadlines_queue_and_earlier_ones_go_to_the_tree() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let waiting: HashMap<u64, u64> = [(1, 1), (2, 2), (3, 3)].into();
        let live = |id, seq| waiting.get(&id) == Some(&seq);
        let mut d = HardDeadlines::default();
        d.push((t0 + 3 * s, 1, 1), 1, live);
        d.push((t0 + 5 * s, 2, 2), 2, live);
        d.push((t0 + s, 3, 3), 3, live);
        assert_eq!(d.first(live), Some(t0 + s));
        assert_eq!(d.pop_due(t0 + 4 * s, live), Some(3));
        assert_eq!(d.pop_due(t0 + 4 * s, live), Some(1));
        assert_eq!(d.pop_due(t0 + 4 * s, live), None);
        assert_eq!(d.first(live), Some(t0 + 5 * s));
    }

    #[test]
    fn left_entries_are_skipped_and_a_reused_id_is_not_mistaken_for_them() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = HardDeadlines::default();
        // Request 7 (seq 1) answered, then id 7 used again by seq 2.
        let live = |id, seq| (id, seq) == (7, 2);
        d.push((t0 + s, 7, 1), 1, live);
        d.push((t0 + 2 * s, 7, 2), 1, live);
        assert_eq!(d.first(live), Some(t0 + 2 * s));
        assert_eq!(
            d.pop_due(t0 + s, live),
            None,
            "the first deadline was seq 1's"
        );
        assert_eq!(d.pop_due(t0 + 2 * s, live), Some(7));
    }

    #[test]
    fn the_queue_stays_bounded_by_the_requests_waiting() {
        let t0 = Instant::now();
        let mut d = HardDeadlines::default();
        // One request waits at a time; every earlier one was answered.
        for seq in 1..10_000u64 {
            let live = |_, s| s == seq;
            d.push((t0 + Duration::from_millis(seq), seq, seq), 1, live);
            assert!(d.held() <= 2 + SLACK + 1, "{} held", d.held());
        }
    }
}
