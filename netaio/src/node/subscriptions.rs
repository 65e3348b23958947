//! Who is subscribed to which key: one type for the TCP server (subscribers are connections) and
//! the UDP node (subscribers are addresses), bounded per subscriber and in total, in number and in
//! key bytes (a key is any bytes a peer sent: without the byte bounds, 1,024 keys of 64 KB each
//! per subscriber).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use bytes::Bytes;

use crate::error::SubscribeError;

/// The default budget of key bytes per subscriber.
pub(crate) const DEFAULT_KEY_BYTES_PER_SUBSCRIBER: usize = 64 * 1024;

/// The default budget of key bytes of a node.
pub(crate) const DEFAULT_TOTAL_KEY_BYTES: usize = 16 * 1024 * 1024;

/// The bounds of a [`Subscriptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubscriptionLimits {
    /// Keys one subscriber may hold.
    pub(crate) per_subscriber: usize,
    /// Subscriptions in the whole node.
    pub(crate) total: usize,
    /// The sum of the lengths of one subscriber's keys.
    pub(crate) per_subscriber_bytes: usize,
    /// The sum of the key lengths of all subscriptions of the node (each subscription counts its
    /// key, even a key several subscribers share: an upper bound of what is stored).
    pub(crate) total_bytes: usize,
}

/// The keys one subscriber holds, and their total length.
#[derive(Debug, Default)]
struct Held {
    keys: HashSet<Bytes>,
    bytes: usize,
}

/// Subscriptions of subscribers `S` to keys (any bytes, usually a uri).
#[derive(Debug)]
pub(crate) struct Subscriptions<S> {
    by_key: HashMap<Bytes, HashSet<S>>,
    by_subscriber: HashMap<S, Held>,
    total: usize,
    total_bytes: usize,
    limits: SubscriptionLimits,
}

impl<S: Copy + Eq + Hash + Ord> Subscriptions<S> {
    pub(crate) fn new(limits: SubscriptionLimits) -> Self {
        Self {
            by_key: HashMap::new(),
            by_subscriber: HashMap::new(),
            total: 0,
            total_bytes: 0,
            limits,
        }
    }

    /// Subscribe `sub` to `key`; subscribing again is no change and always allowed. A refused
    /// subscription leaves nothing behind. The count limits are checked before the byte limits.
    pub(crate) fn subscribe(&mut self, key: &[u8], sub: S) -> Result<(), SubscribeError> {
        let held = self.by_subscriber.get(&sub);
        if held.is_some_and(|h| h.keys.contains(key)) {
            return Ok(());
        }
        if held.map_or(0, |h| h.keys.len()) >= self.limits.per_subscriber {
            return Err(SubscribeError::Limit(self.limits.per_subscriber));
        }
        if self.total >= self.limits.total {
            return Err(SubscribeError::NodeLimit(self.limits.total));
        }
        if held.map_or(0, |h| h.bytes).saturating_add(key.len()) > self.limits.per_subscriber_bytes
        {
            return Err(SubscribeError::KeyBytes(self.limits.per_subscriber_bytes));
        }
        if self.total_bytes.saturating_add(key.len()) > self.limits.total_bytes {
            return Err(SubscribeError::NodeKeyBytes(self.limits.total_bytes));
        }
        // A stored key gets its own allocation, or shares the one already stored: a key sliced
        // out of a received frame would keep the whole read buffer alive as long as it is stored.
        let key = match self.by_key.get_key_value(key) {
            Some((stored, _)) => stored.clone(),
            None => Bytes::copy_from_slice(key),
        };
        let len = key.len();
        self.by_key.entry(key.clone()).or_default().insert(sub);
        let held = self.by_subscriber.entry(sub).or_default();
        held.keys.insert(key);
        held.bytes += len;
        self.total += 1;
        self.total_bytes += len;
        Ok(())
    }

    /// Remove one subscription; false if there was none.
    pub(crate) fn unsubscribe(&mut self, key: &[u8], sub: S) -> bool {
        let Some(held) = self.by_subscriber.get_mut(&sub) else {
            return false;
        };
        if !held.keys.remove(key) {
            return false;
        }
        held.bytes -= key.len();
        if held.keys.is_empty() {
            self.by_subscriber.remove(&sub);
        }
        if let Some(subs) = self.by_key.get_mut(key) {
            subs.remove(&sub);
            if subs.is_empty() {
                self.by_key.remove(key);
            }
        }
        self.total -= 1;
        self.total_bytes -= key.len();
        true
    }

    /// Remove every subscription of `sub` (its connection ended, the peer left). Returns how many.
    pub(crate) fn remove_subscriber(&mut self, sub: S) -> usize {
        let Some(Held { keys, bytes }) = self.by_subscriber.remove(&sub) else {
            return 0;
        };
        for key in &keys {
            if let Some(subs) = self.by_key.get_mut(key) {
                subs.remove(&sub);
                if subs.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
        self.total -= keys.len();
        self.total_bytes -= bytes;
        keys.len()
    }

    /// The subscribers of `key`, in order.
    pub(crate) fn subscribers(&self, key: &[u8]) -> Vec<S> {
        let mut v: Vec<S> = self
            .by_key
            .get(key)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// The keys `sub` is subscribed to (in no particular order).
    pub(crate) fn keys_of(&self, sub: S) -> Vec<Bytes> {
        self.by_subscriber
            .get(&sub)
            .map(|h| h.keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The stored copy of `key`, when it has subscribers (to share it rather than copy it again).
    pub(crate) fn stored_key(&self, key: &[u8]) -> Option<Bytes> {
        self.by_key.get_key_value(key).map(|(k, _)| k.clone())
    }

    /// How many keys have subscribers.
    pub(crate) fn key_count(&self) -> usize {
        self.by_key.len()
    }

    /// How many subscriptions there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.total
    }

    /// The key bytes held, counted as the limits count them (each subscription its key).
    pub(crate) fn key_bytes(&self) -> usize {
        self.total_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(per_subscriber: usize, total: usize) -> Subscriptions<u8> {
        Subscriptions::new(SubscriptionLimits {
            per_subscriber,
            total,
            per_subscriber_bytes: usize::MAX,
            total_bytes: usize::MAX,
        })
    }

    fn subs_bytes(per_subscriber_bytes: usize, total_bytes: usize) -> Subscriptions<u8> {
        Subscriptions::new(SubscriptionLimits {
            per_subscriber: 100,
            total: 100,
            per_subscriber_bytes,
            total_bytes,
        })
    }

    #[test]
    fn key_bytes_are_bounded_per_subscriber_and_in_total() {
        let mut s = subs_bytes(10, 16);
        // A single key over the subscriber's budget is refused, whatever else it holds.
        assert_eq!(
            s.subscribe(&[b'x'; 11], 1),
            Err(SubscribeError::KeyBytes(10))
        );
        s.subscribe(b"aaaaaa", 1).unwrap();
        s.subscribe(b"bbbb", 1).unwrap();
        assert_eq!(s.subscribe(b"c", 1), Err(SubscribeError::KeyBytes(10)));
        // Already held: no new bytes.
        s.subscribe(b"bbbb", 1).unwrap();
        s.subscribe(b"dddddd", 2).unwrap();
        assert_eq!(s.key_bytes(), 16);
        // Subscriber 3 is within its own budget but the node's is spent; a shared key counts
        // again for each subscriber.
        assert_eq!(
            s.subscribe(b"bbbb", 3),
            Err(SubscribeError::NodeKeyBytes(16))
        );
        assert!(
            s.subscribers(b"bbbb") == vec![1],
            "refused subscription left behind"
        );
        // Bytes come back with unsubscribe and with the subscriber's removal.
        assert!(s.unsubscribe(b"aaaaaa", 1));
        assert_eq!(s.key_bytes(), 10);
        s.subscribe(b"cccccc", 1).unwrap();
        assert_eq!(s.subscribe(b"e", 3), Err(SubscribeError::NodeKeyBytes(16)));
        assert_eq!(s.remove_subscriber(1), 2);
        assert_eq!(s.key_bytes(), 6);
        s.subscribe(b"bbbb", 3).unwrap();
        s.subscribe(b"aaaaaa", 3).unwrap();
        assert_eq!(s.key_bytes(), 16);
    }

    #[test]
    fn subscribe_is_idempotent_and_listed_in_order() {
        let mut s = subs(4, 8);
        s.subscribe(b"k", 2).unwrap();
        s.subscribe(b"k", 1).unwrap();
        s.subscribe(b"k", 1).unwrap();
        assert_eq!(s.subscribers(b"k"), vec![1, 2]);
        assert_eq!((s.len(), s.key_count()), (2, 1));
        assert_eq!(s.keys_of(1), vec![Bytes::from_static(b"k")]);
        assert!(s.subscribers(b"other").is_empty());
    }

    #[test]
    fn per_subscriber_limit_and_total_limit_refuse_without_leaving_anything() {
        let mut s = subs(2, 3);
        s.subscribe(b"a", 1).unwrap();
        s.subscribe(b"b", 1).unwrap();
        assert_eq!(s.subscribe(b"c", 1), Err(SubscribeError::Limit(2)));
        // Already held: still fine at the limit.
        s.subscribe(b"a", 1).unwrap();
        s.subscribe(b"a", 2).unwrap();
        assert_eq!(s.subscribe(b"d", 3), Err(SubscribeError::NodeLimit(3)));
        assert_eq!((s.len(), s.key_count()), (3, 2), "refused keys were kept");
        assert!(s.subscribers(b"c").is_empty() && s.subscribers(b"d").is_empty());
        // Room again once a subscription leaves.
        assert!(s.unsubscribe(b"a", 2));
        s.subscribe(b"d", 3).unwrap();
    }

    #[test]
    fn unsubscribe_and_remove_subscriber_keep_the_counts_right() {
        let mut s = subs(4, 8);
        for k in [&b"a"[..], b"b", b"c"] {
            s.subscribe(k, 1).unwrap();
        }
        s.subscribe(b"a", 2).unwrap();
        assert!(!s.unsubscribe(b"zz", 1));
        assert!(!s.unsubscribe(b"a", 3));
        assert!(s.unsubscribe(b"b", 1));
        assert!(!s.unsubscribe(b"b", 1));
        assert_eq!(s.remove_subscriber(1), 2);
        assert_eq!(s.remove_subscriber(1), 0);
        assert_eq!(s.subscribers(b"a"), vec![2]);
        assert_eq!((s.len(), s.key_count()), (1, 1));
        assert!(s.keys_of(1).is_empty());
    }

    #[test]
    fn a_stored_key_does_not_pin_the_buffer_it_was_sliced_from() {
        let mut s = subs(4, 8);
        let frame = Bytes::from(vec![b'k'; 16 * 1024]);
        s.subscribe(&frame[..3], 1).unwrap();
        let stored = s.keys_of(1).pop().unwrap();
        assert_eq!(stored.as_ref(), b"kkk");
        assert_ne!(stored.as_ptr(), frame.as_ptr());
    }
}
