//! [`Leases`]: subscriptions held as leases, for a node whose subscribers are addresses (UDP).
//! Nothing tells a UDP node that a subscriber has gone, and the address of one that has may be
//! anyone's later, so a subscription lasts a time to live unless it is renewed (the subscriber
//! subscribes again), and at the node-wide limit the least recently renewed one is evicted
//! instead of the new one being refused: whoever fills the table cannot lock the others out.
//!
//! A layer over [`Subscriptions`] (which keeps the per-subscriber limit); I/O-free: time comes
//! in as `now`.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::subscriptions::Subscriptions;
use crate::error::SubscribeError;

/// When a lease was last renewed, with a sequence number to order renewals at the same instant.
type Stamp = (Instant, u64);

/// Subscriptions of subscribers `S` that expire `ttl` after their last renewal (never, with
/// `None`), the least recently renewed evicted at the node-wide limit.
#[derive(Debug)]
pub(crate) struct Leases<S> {
    subs: Subscriptions<S>,
    stamps: HashMap<(S, Bytes), Stamp>,
    by_age: BTreeMap<Stamp, (S, Bytes)>,
    seq: u64,
    ttl: Option<Duration>,
    evicted: u64,
    expired: u64,
}

impl<S: Copy + Eq + Hash + Ord> Leases<S> {
    pub(crate) fn new(subs: Subscriptions<S>, ttl: Option<Duration>) -> Self {
        Self {
            subs,
            stamps: HashMap::new(),
            by_age: BTreeMap::new(),
            seq: 0,
            ttl,
            evicted: 0,
            expired: 0,
        }
    }

    /// Remove the leases not renewed within the TTL before `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        let Some(ttl) = self.ttl else {
            return;
        };
        while let Some((&(at, _), _)) = self.by_age.first_key_value() {
            if now.saturating_duration_since(at) < ttl {
                break;
            }
            if let Some((_, (sub, key))) = self.by_age.pop_first() {
                self.stamps.remove(&(sub, key.clone()));
                self.subs.unsubscribe(&key, sub);
                self.expired += 1;
            }
        }
    }

    fn stamp(&mut self, now: Instant) -> Stamp {
        self.seq += 1;
        (now, self.seq)
    }

    /// Subscribe `sub` to `key`, or renew its lease. At the node-wide limit the least recently
    /// renewed lease is evicted to make room; the per-subscriber limit refuses
    /// ([`SubscribeError::Limit`]). A refused subscription leaves nothing behind.
    pub(crate) fn subscribe(
        &mut self,
        key: &[u8],
        sub: S,
        now: Instant,
    ) -> Result<(), SubscribeError> {
        self.expire(now);
        let stamp = self.stamp(now);
        if let Some((stored, old)) = self
            .subs
            .stored_key(key)
            .and_then(|k| self.stamps.get(&(sub, k.clone())).map(|s| (k, *s)))
        {
            self.by_age.remove(&old);
            self.by_age.insert(stamp, (sub, stored.clone()));
            self.stamps.insert((sub, stored), stamp);
            return Ok(());
        }
        let mut result = self.subs.subscribe(key, sub);
        if let Err(SubscribeError::NodeLimit(_)) = result
            && let Some((_, (old_sub, old_key))) = self.by_age.pop_first()
        {
            self.stamps.remove(&(old_sub, old_key.clone()));
            self.subs.unsubscribe(&old_key, old_sub);
            self.evicted += 1;
            result = self.subs.subscribe(key, sub);
        }
        result?;
        let stored = self
            .subs
            .stored_key(key)
            .unwrap_or_else(|| Bytes::copy_from_slice(key));
        self.by_age.insert(stamp, (sub, stored.clone()));
        self.stamps.insert((sub, stored), stamp);
        Ok(())
    }

    /// Remove one subscription; false if there was none.
    pub(crate) fn unsubscribe(&mut self, key: &[u8], sub: S) -> bool {
        if let Some(stored) = self.subs.stored_key(key)
            && let Some(stamp) = self.stamps.remove(&(sub, stored))
        {
            self.by_age.remove(&stamp);
        }
        self.subs.unsubscribe(key, sub)
    }

    /// Remove every subscription of `sub`; how many.
    pub(crate) fn remove_subscriber(&mut self, sub: S) -> usize {
        for key in self.subs.keys_of(sub) {
            if let Some(stamp) = self.stamps.remove(&(sub, key)) {
                self.by_age.remove(&stamp);
            }
        }
        self.subs.remove_subscriber(sub)
    }

    /// The subscribers of `key` whose leases are live at `now`, in order.
    pub(crate) fn subscribers(&mut self, key: &[u8], now: Instant) -> Vec<S> {
        self.expire(now);
        self.subs.subscribers(key)
    }

    /// How many keys have subscribers (leases expired but not yet removed included).
    pub(crate) fn key_count(&self) -> usize {
        self.subs.key_count()
    }

    /// Leases evicted at the node-wide limit so far.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Leases expired so far.
    pub(crate) fn expired(&self) -> u64 {
        self.expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::subscriptions::SubscriptionLimits;

    const MIN: Duration = Duration::from_secs(60);

    fn leases(per_subscriber: usize, total: usize, ttl: Option<Duration>) -> Leases<u16> {
        Leases::new(
            Subscriptions::new(SubscriptionLimits {
                per_subscriber,
                total,
                per_subscriber_bytes: usize::MAX,
                total_bytes: usize::MAX,
            }),
            ttl,
        )
    }

    #[test]
    fn a_lease_expires_unless_renewed() {
        let t0 = Instant::now();
        let mut l = leases(4, 8, Some(MIN));
        l.subscribe(b"k", 1, t0).unwrap();
        l.subscribe(b"k", 2, t0).unwrap();
        // 2 renews half-way; 1 does not.
        l.subscribe(b"k", 2, t0 + MIN / 2).unwrap();
        assert_eq!(
            l.subscribers(b"k", t0 + MIN - Duration::from_secs(1)),
            [1, 2]
        );
        assert_eq!(l.subscribers(b"k", t0 + MIN), [2]);
        assert_eq!(l.expired(), 1);
        assert!(l.subscribers(b"k", t0 + MIN * 3 / 2).is_empty());
        assert_eq!(l.key_count(), 0, "an expired key leaves nothing behind");
        // Without a TTL nothing expires.
        let mut forever = leases(4, 8, None);
        forever.subscribe(b"k", 1, t0).unwrap();
        assert_eq!(forever.subscribers(b"k", t0 + MIN * 1000), [1]);
    }

    #[test]
    fn at_the_node_wide_limit_the_least_recently_renewed_is_evicted() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut l = leases(4, 3, Some(MIN));
        l.subscribe(b"a", 1, t0).unwrap();
        l.subscribe(b"b", 2, t0 + s).unwrap();
        l.subscribe(b"c", 3, t0 + s * 2).unwrap();
        // 1 renews: 2 is now the least recently renewed.
        l.subscribe(b"a", 1, t0 + s * 3).unwrap();
        l.subscribe(b"d", 4, t0 + s * 4).unwrap();
        let now = t0 + s * 4;
        assert!(l.subscribers(b"b", now).is_empty(), "2 was evicted");
        assert_eq!(l.subscribers(b"a", now), [1]);
        assert_eq!(l.subscribers(b"d", now), [4]);
        assert_eq!(l.evicted(), 1);
        // A flood of new subscribers: each new one gets in, the oldest go.
        for sub in 100..200 {
            l.subscribe(b"flood", sub, now + s).unwrap();
        }
        assert_eq!(l.subscribers(b"flood", now + s), [197, 198, 199]);
        // The per-subscriber limit refuses, and leaves nothing behind.
        let mut p = leases(1, 8, Some(MIN));
        p.subscribe(b"a", 1, t0).unwrap();
        assert_eq!(p.subscribe(b"b", 1, t0), Err(SubscribeError::Limit(1)));
        assert!(p.subscribers(b"b", t0).is_empty());
        assert_eq!(p.evicted(), 0);
    }

    #[test]
    fn unsubscribing_forgets_the_lease() {
        let t0 = Instant::now();
        let mut l = leases(4, 2, Some(MIN));
        l.subscribe(b"a", 1, t0).unwrap();
        l.subscribe(b"b", 1, t0).unwrap();
        assert!(l.unsubscribe(b"a", 1));
        assert!(!l.unsubscribe(b"a", 1));
        l.subscribe(b"c", 2, t0).unwrap();
        assert_eq!(l.evicted(), 0, "room was made by the unsubscribe");
        assert_eq!(l.remove_subscriber(1), 1);
        assert_eq!(l.remove_subscriber(1), 0);
        // No stale lease of 1 is left to expire or evict later.
        assert_eq!((l.stamps.len(), l.by_age.len()), (1, 1));
        l.subscribe(b"d", 3, t0).unwrap();
        l.subscribe(b"e", 4, t0).unwrap();
        assert_eq!(l.evicted(), 1);
        assert!(l.subscribers(b"c", t0).is_empty());
    }
}
