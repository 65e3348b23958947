//! Per-peer send queues: bounded in messages and bytes, drained by priority.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::message::Message;
use super::{PeerId, wire};

/// How urgent a queued message is; a queue is drained highest first, and on overflow the lowest
/// are dropped first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Own publishes, grafts and their answers, membership and tree control.
    High = 0,
    /// Messages relayed along the tree.
    Forward = 1,
    /// Announcements (`IHave`) and anti-entropy.
    Low = 2,
}

const LANES: usize = 3;

#[derive(Debug)]
struct PeerQueue<P> {
    lanes: [VecDeque<(Message<P>, usize)>; LANES],
    messages: usize,
    bytes: usize,
    /// Set when the queue overflowed; cleared once it drained to half. One `SlowPeer` event per
    /// episode, not one per dropped message.
    overflowing: bool,
}

// Not derived: that would require `P: Default`.
impl<P> Default for PeerQueue<P> {
    fn default() -> Self {
        Self {
            lanes: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            messages: 0,
            bytes: 0,
            overflowing: false,
        }
    }
}

/// What [`SendQueues::push`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// The queue was empty and now has something: tell the driver.
    pub(crate) ready: bool,
    /// Messages dropped to stay within the bounds (the new one or lower-priority ones).
    pub(crate) dropped: usize,
    /// The queue started overflowing with this push.
    pub(crate) overflow_started: bool,
}

#[derive(Debug)]
pub(crate) struct SendQueues<P> {
    queues: FxHashMap<P, PeerQueue<P>>,
    max_messages: usize,
    max_bytes: usize,
}

impl<P: PeerId> SendQueues<P> {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            queues: FxHashMap::default(),
            max_messages: max_messages.max(1),
            max_bytes,
        }
    }

    pub(crate) fn push(&mut self, peer: P, message: Message<P>, priority: Priority) -> Pushed {
        let size = wire::encoded_len(&message);
        let (max_messages, max_bytes) = (self.max_messages, self.max_bytes);
        let q = self.queues.entry(peer).or_default();
        let was_empty = q.messages == 0;
        let mut out = Pushed::default();
        let lane = priority as usize;
        // Make room by dropping queued messages of strictly lower priority, newest first (the
        // oldest are closest to being sent); a message never displaces its own kind.
        while q.messages + 1 > max_messages || q.bytes + size > max_bytes {
            let victim = (lane + 1..LANES)
                .rev()
                .find(|&l| q.lanes.get(l).is_some_and(|v| !v.is_empty()));
            let Some(dropped) = victim
                .and_then(|l| q.lanes.get_mut(l))
                .and_then(VecDeque::pop_back)
            else {
                break;
            };
            q.messages -= 1;
            q.bytes -= dropped.1;
            out.dropped += 1;
        }
        if q.messages + 1 > max_messages || q.bytes + size > max_bytes {
            out.dropped += 1;
        } else if let Some(l) = q.lanes.get_mut(lane) {
            l.push_back((message, size));
            q.messages += 1;
            q.bytes += size;
        }
        if out.dropped > 0 && !q.overflowing {
            q.overflowing = true;
            out.overflow_started = true;
        }
        out.ready = was_empty && q.messages > 0;
        out
    }

    pub(crate) fn pop(&mut self, peer: &P) -> Option<Message<P>> {
        let q = self.queues.get_mut(peer)?;
        let (message, size) = q.lanes.iter_mut().find_map(VecDeque::pop_front)?;
        q.messages -= 1;
        q.bytes -= size;
        if q.overflowing && q.messages <= self.max_messages / 2 && q.bytes <= self.max_bytes / 2 {
            q.overflowing = false;
        }
        if q.messages == 0 {
            self.queues.remove(peer);
        }
        Some(message)
    }

    pub(crate) fn clear(&mut self, peer: &P) {
        self.queues.remove(peer);
    }

    pub(crate) fn len(&self, peer: &P) -> usize {
        self.queues.get(peer).map_or(0, |q| q.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_by_priority_then_fifo() {
        let mut q = SendQueues::<u64>::new(10, 1 << 20);
        assert!(q.push(1, Message::IHave(vec![]), Priority::Low).ready);
        assert!(!q.push(1, Message::Prune, Priority::Forward).ready);
        q.push(
            1,
            Message::Graft {
                id: None,
                join: true,
            },
            Priority::High,
        );
        q.push(1, Message::NeighborAccept, Priority::High);
        let kinds: Vec<_> = std::iter::from_fn(|| q.pop(&1)).map(|m| m.kind()).collect();
        assert_eq!(kinds, ["Graft", "NeighborAccept", "Prune", "IHave"]);
        assert_eq!(q.len(&1), 0);
    }

    #[test]
    fn overflow_drops_lower_priority_first_and_reports_once() {
        let mut q = SendQueues::<u64>::new(3, 1 << 20);
        q.push(1, Message::IHave(vec![]), Priority::Low);
        q.push(1, Message::Prune, Priority::Forward);
        q.push(1, Message::Prune, Priority::Forward);
        let p = q.push(1, Message::Join, Priority::High);
        assert_eq!(
            (p.dropped, p.overflow_started),
            (1, true),
            "the announcement went"
        );
        let p = q.push(1, Message::Join, Priority::High);
        assert_eq!(
            (p.dropped, p.overflow_started),
            (1, false),
            "a forward went, no new event"
        );
        let p = q.push(1, Message::IHave(vec![]), Priority::Low);
        assert_eq!(
            p.dropped, 1,
            "nothing lower to drop: the new message is dropped"
        );
        let kinds: Vec<_> = std::iter::from_fn(|| q.pop(&1)).map(|m| m.kind()).collect();
        assert_eq!(kinds, ["Join", "Join", "Prune"]);
    }

    #[test]
    fn byte_bound_counts_encoded_sizes() {
        // Join is 1 byte, Disconnect 2: 3 bytes fit, a fourth does not.
        let mut q = SendQueues::<u64>::new(100, 3);
        q.push(1, Message::Join, Priority::High);
        q.push(1, Message::Disconnect { alive: true }, Priority::High);
        let p = q.push(1, Message::Join, Priority::High);
        assert_eq!(p.dropped, 1);
        assert_eq!(q.len(&1), 2);
    }
}
