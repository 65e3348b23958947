//! Deadlines as data: the protocol keeps its timers and tells the driver only the next one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::MessageId;

/// What a deadline is for. A timer that is no longer relevant when it fires (the message arrived,
/// the peer answered) is ignored then, rather than searched for and cancelled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer<P> {
    /// Periodic: shuffle the passive view, refill the active view, rejoin if isolated.
    Shuffle,
    /// Periodic: anti-entropy with one neighbour.
    Sync,
    /// Periodic: expire cache entries and bans.
    Evict,
    /// Send the batched announcements.
    DispatchIHave,
    /// A `Neighbor` request to this peer is unanswered.
    NeighborTimeout(P),
    /// An announced message has not arrived: graft it.
    Graft(MessageId),
    /// A message was grafted without joining the tree: has the tree brought a copy since?
    TreeCheck(MessageId),
}

/// The pending deadlines, earliest first; ties fire in the order they were set, so that a run is
/// reproducible.
#[derive(Debug)]
pub(crate) struct Timers<P> {
    heap: BinaryHeap<Reverse<(Instant, u64, Timer<P>)>>,
    seq: u64,
}

impl<P: Ord> Timers<P> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub(crate) fn set(&mut self, at: Instant, timer: Timer<P>) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, timer)));
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The earliest timer due at `now`, removed.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer<P>> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, _, t))| t)
    }
}
