//! The replay cache behind [`Freshness`](super::Freshness): nonces seen within the window, bounded
//! in total, with the heaviest sender paying when it is full. No clock here: `now` is passed in.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use super::AuthError;

/// Who sent a nonce: an identity the auth plugin verified (a sender id covered by the MAC, a
/// public key). The empty sender stands for "unknown": every caller of `accept` shares it.
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
    /// Nonces remembered for one sender.
    pub per_sender: usize,
    /// This node's clock, seconds since the Unix epoch.
    pub now: u64,
}

/// Nonces with the second they expire (`ts + window`), grouped by that second so that one
/// sender's oldest second can be forgotten at once.
#[derive(Default)]
pub(super) struct ReplayCache {
    /// nonce -> its sender.
    seen: HashMap<Nonce, Sender>,
    /// expiry second -> (sender, nonce) of every nonce expiring then.
    buckets: BTreeMap<u64, Vec<(Sender, Nonce)>>,
    /// What each sender holds. Fx-hashed: senders are identities the MAC or signature verified,
    /// so only a key holder could choose colliding ones.
    senders: HashMap<Sender, SenderState, FxBuildHasher>,
    /// The sender that held the most nonces, with its count: the one that pays when the cache
    /// is full. Taken over by a sender whose count passes it on insert; its count follows its
    /// evictions and expiries.
    heaviest: Option<(Sender, usize)>,
    /// Timestamps below this are refused from every sender: raised only when sender states had
    /// to be dropped before their floors aged out (see `evict_expired`).
    floor: u64,
    /// The most sender states kept (the capacity at the last insert).
    max_senders: usize,
}

/// One sender's share of the cache.
struct SenderState {
    /// The map's key, kept here so that one lookup gives both.
    key: Sender,
    /// Timestamps of this sender below this are refused: its nonces from then were forgotten to
    /// make room. Safe because a replay carries the same (authenticated) sender.
    floor: u64,
    /// Its live nonces.
    count: usize,
    /// (expiry second, how many of its nonces expire then), soonest first.
    per_expiry: VecDeque<(u64, usize)>,
}

impl SenderState {
    fn new(key: Sender) -> Self {
        Self {
            key,
            floor: 0,
            count: 0,
            per_expiry: VecDeque::new(),
        }
    }

    fn add(&mut self, expires: u64) {
        self.count += 1;
        match self.per_expiry.back_mut() {
            Some((e, n)) if *e == expires => *n += 1,
            Some((e, _)) if *e > expires => {
                // Out of order (timestamps may go back within the window): keep it sorted.
                let i = self.per_expiry.partition_point(|(e, _)| *e < expires);
                match self.per_expiry.get_mut(i) {
                    Some((e, n)) if *e == expires => *n += 1,
                    _ => self.per_expiry.insert(i, (expires, 1)),
                }
            }
            _ => self.per_expiry.push_back((expires, 1)),
        }
    }

    /// Forget the count of second `expires` (its nonces are gone).
    fn drop_second(&mut self, expires: u64) {
        if let Some(i) = self.per_expiry.iter().position(|(e, _)| *e == expires)
            && let Some((_, n)) = self.per_expiry.remove(i)
        {
            self.count = self.count.saturating_sub(n);
        }
    }
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
    /// Room is made by forgetting the oldest second of one sender and raising that sender's floor
    /// past it (its timestamps up to that second are refused as stale from then on): the sender's
    /// own, when it is at its `per_sender` quota; otherwise, when the cache is full, the heaviest
    /// sender's. So a sender that sends faster than the cache holds narrows its own window and
    /// never the others'. [`AuthError::CacheFull`] only when a sender would have to forget its
    /// own current second (or later) to take its own message.
    pub(super) fn insert(
        &mut self,
        limits: Limits,
        sender: &[u8],
        ts: u64,
        nonce: &[u8],
    ) -> Result<(), AuthError> {
        self.max_senders = limits.capacity;
        self.evict_expired(limits.now, limits.window);
        if self.seen.contains_key(nonce) {
            return Err(AuthError::Replay);
        }
        let own = self.senders.get(sender);
        if ts < self.floor || ts < own.map_or(0, |s| s.floor) {
            return Err(AuthError::Stale {
                ts,
                now: limits.now,
            });
        }
        if own.is_some_and(|s| s.count >= limits.per_sender) {
            // Its oldest second goes (`CacheFull` if that is this message's own).
            self.forget_oldest_of(sender, limits.window, Some(ts))?;
        }
        // Each round forgets at least one nonce; a round that cannot (a stale pointer to the
        // heaviest) drops the pointer, and a second such round refuses: bounded either way.
        let mut stuck = false;
        while self.seen.len() >= limits.capacity {
            let Some(victim) = self.victim(sender) else {
                return Err(AuthError::CacheFull);
            };
            let own = (&*victim == sender).then_some(ts);
            if self.forget_oldest_of(&victim, limits.window, own)? == 0 {
                if stuck {
                    return Err(AuthError::CacheFull);
                }
                stuck = true;
                self.heaviest = None;
            }
        }
        let expires = ts.saturating_add(limits.window);
        let state = match self.senders.get_mut(sender) {
            Some(state) => state,
            // One allocation per sender, not per message.
            None => {
                let key: Sender = Arc::from(sender);
                self.senders
                    .entry(key.clone())
                    .or_insert_with(|| SenderState::new(key))
            }
        };
        state.add(expires);
        let key = state.key.clone();
        match &mut self.heaviest {
            Some((h, n)) if Arc::ptr_eq(h, &key) => *n = state.count,
            Some((_, n)) if *n >= state.count => {}
            _ => self.heaviest = Some((key.clone(), state.count)),
        }
        let nonce: Nonce = Arc::from(nonce);
        self.seen.insert(nonce.clone(), key.clone());
        self.buckets.entry(expires).or_default().push((key, nonce));
        Ok(())
    }

    /// Who pays for room: the heaviest sender, or the inserting one if it holds more.
    fn victim(&self, inserting: &[u8]) -> Option<Sender> {
        let own = self.senders.get(inserting).filter(|s| s.count > 0);
        match (&self.heaviest, own) {
            (Some((h, n)), own) if *n > 0 && own.is_none_or(|o| o.count <= *n) => Some(h.clone()),
            (_, Some(own)) => Some(own.key.clone()),
            // The heaviest is gone and the inserting sender holds nothing: look for the heaviest.
            _ => self
                .senders
                .values()
                .max_by_key(|s| s.count)
                .map(|s| s.key.clone()),
        }
    }

    /// Record `sender`'s new count if it is the heaviest.
    fn recount(heaviest: &mut Option<(Sender, usize)>, state: &SenderState) {
        if let Some((h, n)) = heaviest
            && Arc::ptr_eq(h, &state.key)
        {
            *n = state.count;
        }
    }

    /// Forget `sender`'s oldest second and raise its floor past it; how many nonces went. With `own_ts` (the sender's
    /// own message is the one being inserted), refuse instead when that second is the message's
    /// own or later: there is no room that keeps its replays refused.
    fn forget_oldest_of(
        &mut self,
        sender: &[u8],
        window: u64,
        own_ts: Option<u64>,
    ) -> Result<usize, AuthError> {
        let Some(state) = self.senders.get_mut(sender) else {
            return Ok(0);
        };
        let Some(&(oldest, _)) = state.per_expiry.front() else {
            return Ok(0);
        };
        let oldest_ts = oldest.saturating_sub(window);
        if own_ts.is_some_and(|ts| oldest_ts >= ts) {
            return Err(AuthError::CacheFull);
        }
        state.per_expiry.pop_front();
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
        Self::recount(&mut self.heaviest, state);
        // The state stays (with count 0) even when empty: its floor must keep refusing replays
        // of what was just forgotten. It goes when its floor no longer matters.
        Ok(forgotten)
    }

    /// Forget every nonce expiring before `now`, and the senders that no longer need a state.
    fn evict_expired(&mut self, now: u64, window: u64) {
        while let Some((&exp, _)) = self.buckets.first_key_value() {
            if exp >= now {
                break;
            }
            let Some(bucket) = self.buckets.remove(&exp) else {
                break;
            };
            for (sender, nonce) in bucket {
                self.seen.remove(&nonce);
                if let Some(state) = self.senders.get_mut(&sender) {
                    state.drop_second(exp);
                    Self::recount(&mut self.heaviest, state);
                    if state.count == 0 && state.floor.saturating_add(window) <= now {
                        self.senders.remove(&sender);
                    }
                }
            }
        }
        // A sender with nothing live keeps its state only while its floor still matters: once
        // `floor + window <= now`, every timestamp below the floor is stale anyway. Checked when
        // there are more states than nonces, so the scan is paid for by the inserts before it.
        if self.senders.len() > self.seen.len().max(MIN_SENDERS_BEFORE_SWEEP) {
            self.senders
                .retain(|_, s| s.count > 0 || s.floor.saturating_add(window) > now);
        }
        // Bounded in count however fast senders come and go: past the cap, empty states go, and
        // the common floor rises to the highest of their floors so that what they refused stays
        // refused (for everyone: the price of a flood of new sender ids, which needs the key).
        if self.senders.len() > self.max_senders {
            let mut floor = self.floor;
            self.senders.retain(|_, s| {
                if s.count == 0 {
                    floor = floor.max(s.floor);
                }
                s.count > 0
            });
            self.floor = floor;
        }
    }
}

/// Below this many sender states, empty ones are not swept (a sweep is a scan of them all).
const MIN_SENDERS_BEFORE_SWEEP: usize = 64;
