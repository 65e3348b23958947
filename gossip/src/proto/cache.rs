//! Time- and size-bounded caches of message ids (seen) and payloads (to answer grafts).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustc_hash::FxHashMap;

use super::{MessageId, TopicId};

/// Ids seen recently. Every entry lives the same time, so insertion order is expiry order and one
/// queue serves both bounds (lifetime and count).
#[derive(Debug)]
pub(crate) struct SeenCache {
    expiry: FxHashMap<MessageId, Instant>,
    order: VecDeque<(MessageId, Instant)>,
    lifetime: Duration,
    capacity: usize,
}

impl SeenCache {
    pub(crate) fn new(lifetime: Duration, capacity: usize) -> Self {
        Self {
            expiry: FxHashMap::default(),
            order: VecDeque::new(),
            lifetime,
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn contains(&self, id: &MessageId, now: Instant) -> bool {
        self.expiry.get(id).is_some_and(|&at| at > now)
    }

    /// Remembers `id`; false if it was already there (and not expired).
    pub(crate) fn insert(&mut self, id: MessageId, now: Instant) -> bool {
        if self.contains(&id, now) {
            return false;
        }
        self.evict(now);
        while self.order.len() >= self.capacity {
            self.pop_front();
        }
        let at = now + self.lifetime;
        self.expiry.insert(id, at);
        self.order.push_back((id, at));
        true
    }

    pub(crate) fn evict(&mut self, now: Instant) {
        while self.order.front().is_some_and(|&(_, at)| at <= now) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((id, at)) = self.order.pop_front() {
            // Only drop the map entry this queue entry stands for (an expired id seen again has a
            // newer entry further back).
            if self.expiry.get(&id) == Some(&at) {
                self.expiry.remove(&id);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.expiry.len()
    }
}

/// A payload kept to answer grafts.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub(crate) topic: TopicId,
    /// The hop count the message carries when this node sends it.
    pub(crate) hops: u8,
    /// Whether the copy this node got was repaired (see [`Gossip::repaired`](super::Gossip)).
    pub(crate) repaired: bool,
    pub(crate) payload: Bytes,
    expires: Instant,
}

/// Recent payloads, bounded in lifetime, count and bytes.
#[derive(Debug)]
pub(crate) struct PayloadCache {
    map: FxHashMap<MessageId, Cached>,
    order: VecDeque<MessageId>,
    bytes: usize,
    lifetime: Duration,
    max_messages: usize,
    max_bytes: usize,
}

impl PayloadCache {
    pub(crate) fn new(lifetime: Duration, max_messages: usize, max_bytes: usize) -> Self {
        Self {
            map: FxHashMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            lifetime,
            max_messages,
            max_bytes,
        }
    }

    pub(crate) fn get(&self, id: &MessageId, now: Instant) -> Option<&Cached> {
        self.map.get(id).filter(|c| c.expires > now)
    }

    pub(crate) fn insert(
        &mut self,
        id: MessageId,
        topic: TopicId,
        hops: u8,
        repaired: bool,
        payload: Bytes,
        now: Instant,
    ) {
        if payload.len() > self.max_bytes || self.max_messages == 0 || self.map.contains_key(&id) {
            return;
        }
        self.evict(now);
        while self.order.len() >= self.max_messages || self.bytes + payload.len() > self.max_bytes {
            if !self.pop_front() {
                break;
            }
        }
        self.bytes += payload.len();
        self.map.insert(
            id,
            Cached {
                topic,
                hops,
                repaired,
                payload,
                expires: now + self.lifetime,
            },
        );
        self.order.push_back(id);
    }

    pub(crate) fn evict(&mut self, now: Instant) {
        while let Some(id) = self.order.front() {
            match self.map.get(id) {
                Some(c) if c.expires > now => break,
                _ => {
                    self.pop_front();
                }
            }
        }
    }

    fn pop_front(&mut self) -> bool {
        let Some(id) = self.order.pop_front() else {
            return false;
        };
        if let Some(c) = self.map.remove(&id) {
            self.bytes -= c.payload.len();
        }
        true
    }

    #[cfg(test)]
    pub(crate) fn totals(&self) -> (usize, usize) {
        (self.map.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId([n; 32])
    }

    #[test]
    fn seen_ids_expire_and_are_bounded_in_count() {
        let t0 = Instant::now();
        let mut seen = SeenCache::new(Duration::from_secs(10), 3);
        assert!(seen.insert(id(1), t0));
        assert!(!seen.insert(id(1), t0), "a second insert is a duplicate");
        assert!(seen.contains(&id(1), t0 + Duration::from_secs(9)));
        assert!(!seen.contains(&id(1), t0 + Duration::from_secs(10)));
        for n in 2..=5 {
            seen.insert(id(n), t0);
        }
        assert_eq!(seen.len(), 3);
        assert!(!seen.contains(&id(1), t0) && !seen.contains(&id(2), t0));
        assert!(seen.contains(&id(5), t0));
        seen.evict(t0 + Duration::from_secs(11));
        assert_eq!(seen.len(), 0);
        // An id seen again after it expired is new again.
        assert!(seen.insert(id(1), t0 + Duration::from_secs(20)));
    }

    #[test]
    fn payloads_are_bounded_in_count_bytes_and_time() {
        let t0 = Instant::now();
        let mut cache = PayloadCache::new(Duration::from_secs(5), 3, 10);
        let p = |n: usize| Bytes::from(vec![0u8; n]);
        cache.insert(id(1), TopicId::default(), 0, false, p(4), t0);
        cache.insert(id(2), TopicId::default(), 0, false, p(4), t0);
        cache.insert(id(3), TopicId::default(), 0, false, p(4), t0);
        assert_eq!(
            cache.totals(),
            (2, 8),
            "the oldest left to stay within 10 bytes"
        );
        assert!(cache.get(&id(1), t0).is_none());
        cache.insert(id(4), TopicId::default(), 0, false, p(11), t0);
        assert!(
            cache.get(&id(4), t0).is_none(),
            "larger than the whole cache"
        );
        assert!(cache.get(&id(3), t0 + Duration::from_secs(5)).is_none());
        cache.evict(t0 + Duration::from_secs(5));
        assert_eq!(cache.totals(), (0, 0));
    }
}
