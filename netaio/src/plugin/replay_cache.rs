//! The replay cache behind [`Freshness`](super::Freshness): nonces seen within the window, bounded
//! in total and per sender, with the time arithmetic passed in (no clock here).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::AuthError;

/// Who sent a nonce: an identity the auth plugin verified (a sender id covered by the MAC, a
/// public key). The empty sender stands for "unknown" and has no quota of its own.
type Sender = Arc<[u8]>;

/// A nonce, shared between the lookup map and its expiry bucket.
type Nonce = Arc<[u8]>;

/// The limits and the time of one [`ReplayCache::insert`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// Seconds a timestamp stays fresh, either way.
    pub window: u64,
    /// Nonces remembered in total.
    pub capacity: usize,
    /// Nonces remembered for one named sender.
    pub per_sender: usize,
    /// This node's clock, seconds since the Unix epoch.
    pub now: u64,
}

/// Nonces with the second they expire (`ts + window`), grouped by that second so that the
/// oldest second, of everyone or of one sender, can be forgotten at once.
#[derive(Default)]
pub(super) struct ReplayCache {
    /// Timestamps below this are refused: their nonces may have been forgotten to make room.
    floor: u64,
    /// nonce -> its sender.
    seen: HashMap<Nonce, Sender>,
    /// expiry second -> (sender, nonce) of every nonce expiring then.
    buckets: BTreeMap<u64, Vec<(Sender, Nonce)>>,
    /// What each sender holds; a sender with no live nonce is forgotten.
    senders: HashMap<Sender, SenderState>,
}

/// One sender's share of the cache.
#[derive(Default)]
struct SenderState {
    /// Timestamps of this sender below this are refused: its nonces from then were forgotten to
    /// keep it within its quota. Safe because a replay carries the same sender.
    floor: u64,
    /// Its live nonces.
    count: usize,
    /// expiry second -> how many of its nonces expire then.
    per_expiry: BTreeMap<u64, usize>,
}

impl ReplayCache {
    /// The number of nonces remembered.
    pub(super) fn len(&self) -> usize {
        self.seen.len()
    }

    /// The number of senders with a live nonce.
    #[cfg(test)]
    pub(super) fn senders(&self) -> usize {
        self.senders.len()
    }

    /// Record `nonce` from `sender`, with timestamp `ts` (already checked to be in the window).
    ///
    /// A sender over its quota forgets its own oldest second and refuses it from then on (its
    /// floor rises), so one busy sender narrows only its own window; a full cache forgets the
    /// oldest second of everyone and raises the common floor. Either is refused with
    /// [`AuthError::CacheFull`] only when the second to forget is the message's own or later.
    pub(super) fn insert(
        &mut self,
        limits: Limits,
        sender: &[u8],
        ts: u64,
        nonce: &[u8],
    ) -> Result<(), AuthError> {
        self.evict_expired(limits.now);
        if self.seen.contains_key(nonce) {
            return Err(AuthError::Replay);
        }
        let sender_floor = self.senders.get(sender).map_or(0, |s| s.floor);
        if ts < self.floor || ts < sender_floor {
            return Err(AuthError::Stale {
                ts,
                now: limits.now,
            });
        }
        if !sender.is_empty() {
            self.make_room_for(sender, limits, ts)?;
        }
        while self.seen.len() >= limits.capacity {
            let Some((&oldest, _)) = self.buckets.first_key_value() else {
                break;
            };
            let oldest_ts = oldest.saturating_sub(limits.window);
            if oldest_ts >= ts {
                return Err(AuthError::CacheFull);
            }
            self.forget_second(oldest);
            self.floor = self.floor.max(oldest_ts.saturating_add(1));
        }
        let expires = ts.saturating_add(limits.window);
        // One allocation per sender, not per message: reuse the key the sender already has.
        let key = match self.senders.get_key_value(sender) {
            Some((k, _)) => k.clone(),
            None => Arc::from(sender),
        };
        let state = self.senders.entry(key.clone()).or_default();
        state.count += 1;
        *state.per_expiry.entry(expires).or_default() += 1;
        let nonce: Nonce = Arc::from(nonce);
        self.seen.insert(nonce.clone(), key.clone());
        self.buckets.entry(expires).or_default().push((key, nonce));
        Ok(())
    }

    /// Keep `sender` below its quota by forgetting its own oldest seconds.
    fn make_room_for(&mut self, sender: &[u8], limits: Limits, ts: u64) -> Result<(), AuthError> {
        loop {
            let Some(state) = self.senders.get_mut(sender) else {
                return Ok(());
            };
            if state.count < limits.per_sender {
                return Ok(());
            }
            let Some((&oldest, _)) = state.per_expiry.first_key_value() else {
                return Ok(());
            };
            let oldest_ts = oldest.saturating_sub(limits.window);
            if oldest_ts >= ts {
                return Err(AuthError::CacheFull);
            }
            state.per_expiry.remove(&oldest);
            state.floor = state.floor.max(oldest_ts.saturating_add(1));
            let mut forgotten = 0;
            if let Some(bucket) = self.buckets.get_mut(&oldest) {
                let seen = &mut self.seen;
                bucket.retain(|(s, n)| {
                    let mine = &**s == sender;
                    if mine {
                        seen.remove(n);
                        forgotten += 1;
                    }
                    !mine
                });
                if bucket.is_empty() {
                    self.buckets.remove(&oldest);
                }
            }
            state.count = state.count.saturating_sub(forgotten);
        }
    }

    /// Forget every nonce expiring before `now`.
    fn evict_expired(&mut self, now: u64) {
        while let Some((&exp, _)) = self.buckets.first_key_value() {
            if exp >= now {
                break;
            }
            self.forget_second(exp);
        }
    }

    /// Forget every nonce expiring at `second`, of every sender.
    fn forget_second(&mut self, second: u64) {
        let Some(bucket) = self.buckets.remove(&second) else {
            return;
        };
        for (sender, nonce) in bucket {
            self.seen.remove(&nonce);
            let Some(state) = self.senders.get_mut(&sender) else {
                continue;
            };
            state.count = state.count.saturating_sub(1);
            state.per_expiry.remove(&second);
            if state.count == 0 {
                // Its floor, if raised, is below every timestamp the window still accepts.
                self.senders.remove(&sender);
            }
        }
    }
}
