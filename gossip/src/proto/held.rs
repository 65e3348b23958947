//! Messages held for the application's verdict ([`Config::hold_subscribed`](super::Config)):
//! valid as far as the host can tell, but neither stored nor forwarded until the application
//! releases them. Bounded in count and bytes; beyond either bound the oldest is dropped (as if it
//! had never arrived: it is not forwarded).

use std::collections::VecDeque;

use super::MessageId;
use super::message::Gossip;

/// One held message: where it came from, and whether anti-entropy fetched it.
#[derive(Debug)]
pub(crate) struct HeldMessage<P> {
    pub(crate) from: P,
    pub(crate) message: Gossip,
    pub(crate) fetched: bool,
}

/// The held messages, oldest first.
#[derive(Debug)]
pub(crate) struct Held<P> {
    list: VecDeque<HeldMessage<P>>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

impl<P> Held<P> {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            list: VecDeque::new(),
            bytes: 0,
            max_messages: max_messages.max(1),
            max_bytes,
        }
    }

    /// Holds `held`; returns how many older messages were dropped to make room.
    pub(crate) fn push(&mut self, held: HeldMessage<P>) -> usize {
        let len = held.message.payload.len();
        let mut dropped = 0;
        while !self.list.is_empty()
            && (self.list.len() >= self.max_messages || self.bytes + len > self.max_bytes)
        {
            if let Some(old) = self.list.pop_front() {
                self.bytes -= old.message.payload.len();
                dropped += 1;
            }
        }
        self.bytes += len;
        self.list.push_back(held);
        dropped
    }

    /// Takes the held message with this id.
    pub(crate) fn take(&mut self, id: &MessageId) -> Option<HeldMessage<P>> {
        let i = self.list.iter().position(|h| h.message.id == *id)?;
        let held = self.list.remove(i)?;
        self.bytes -= held.message.payload.len();
        Some(held)
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;

    use super::*;
    use crate::proto::TopicId;

    fn held(n: u8, len: usize) -> HeldMessage<u64> {
        HeldMessage {
            from: 1,
            message: Gossip {
                id: MessageId([n; 32]),
                topic: TopicId::default(),
                hops: 0,
                repaired: false,
                payload: Bytes::from(vec![0; len]),
            },
            fetched: false,
        }
    }

    #[test]
    fn bounded_in_count_and_bytes_oldest_dropped() {
        let mut h = Held::new(2, 100);
        assert_eq!(h.push(held(1, 10)), 0);
        assert_eq!(h.push(held(2, 10)), 0);
        assert_eq!(h.push(held(3, 10)), 1, "count bound: the oldest goes");
        assert!(h.take(&MessageId([1; 32])).is_none());
        assert_eq!((h.len(), h.bytes()), (2, 20));
        assert_eq!(h.push(held(4, 95)), 2, "byte bound: both older ones go");
        assert_eq!((h.len(), h.bytes()), (1, 95));
        let m = h.take(&MessageId([4; 32])).unwrap();
        assert_eq!(m.message.payload.len(), 95);
        assert_eq!((h.len(), h.bytes()), (0, 0));
        assert!(h.take(&MessageId([4; 32])).is_none(), "taken once");
    }
}
