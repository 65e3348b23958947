//! The replay cache behind [`Freshness`](super::Freshness): nonces seen within the window, bounded
//! in total, with the heaviest sender paying when it is full. No clock here: `now` is passed in.
//!
//! Built for the hot path of every authenticated message: a nonce is hashed once (keyed SipHash,
//! kept with it), stored inline when it is at most 32 bytes (no allocation per nonce), and filed
//! under its sender's second, so that a sender's oldest second is forgotten without looking at
//! anyone else's nonces.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::AuthError;

/// Bytes of a key stored inline: every bundled plugin's nonces (16 to 32 bytes) and sender ids.
const INLINE: usize = 32;

/// A nonce or a sender id: inline up to [`INLINE`] bytes, on the heap beyond (up to the 64 bytes
/// `Freshness` allows).
#[derive(Clone)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Key {
    fn new(src: &[u8]) -> Self {
        let mut bytes = [0u8; INLINE];
        match (bytes.get_mut(..src.len()), u8::try_from(src.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(src);
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(src.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Self::Heap(b) => b,
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

// As `[u8]` hashes, so that a map keyed by `Key` can be searched with a `&[u8]`.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// The index of a sender's state in [`ReplayCache::senders`].
type SenderIdx = u32;

/// One remembered nonce.
struct Seen {
    /// Its hash, computed once: lookups, removals and the table's rehashing use it.
    hash: u64,
    nonce: Key,
    /// Who sent it, and the second it expires: with the hash, they tell it from any other nonce
    /// when its second is dropped (see [`ReplayCache::remove_second`]).
    sender: SenderIdx,
    expires: u64,
}

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

/// Nonces with the second they expire (`ts + window`), grouped per sender by that second so that
/// one sender's oldest second can be forgotten at once.
pub(super) struct ReplayCache {
    /// Keyed SipHash with a random key per cache: senders hold the key of the MAC, but a
    /// misbehaving one still cannot choose nonces that collide here.
    hasher: RandomState,
    /// Every remembered nonce.
    seen: HashTable<Seen>,
    /// Sender states; `None` is a free slot (listed in `free`).
    senders: Vec<Option<SenderState>>,
    free: Vec<SenderIdx>,
    /// Sender id -> its slot. Fx-hashed: sender ids are identities the MAC or signature verified.
    ids: HashMap<Key, SenderIdx, FxBuildHasher>,
    /// Expiry second -> the senders that opened that second (some may have forgotten it since, or
    /// left and had their slot reused: harmless, see `drop_expired_of`).
    expiring: BTreeMap<u64, Vec<SenderIdx>>,
    /// Entries in `expiring`, to know when stale ones are worth a rebuild.
    expiring_len: usize,
    /// Emptied per-second lists, reused so that a new second costs no allocation.
    spare: Vec<Vec<u64>>,
    /// The sender that held the most nonces, with its count: the one that pays when the cache
    /// is full. Taken over by a sender whose count passes it on insert; its count follows its
    /// evictions and expiries.
    heaviest: Option<(SenderIdx, usize)>,
    /// Timestamps below this are refused from every sender: raised only when sender states had
    /// to be dropped before their floors aged out (see `evict_expired`).
    floor: u64,
    /// The most sender states kept (the capacity at the last insert).
    max_senders: usize,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            seen: HashTable::new(),
            senders: Vec::new(),
            free: Vec::new(),
            ids: HashMap::default(),
            expiring: BTreeMap::new(),
            expiring_len: 0,
            spare: Vec::new(),
            heaviest: None,
            floor: 0,
            max_senders: 0,
        }
    }
}

/// One sender's share of the cache.
struct SenderState {
    key: Key,
    /// Timestamps of this sender below this are refused: its nonces from then were forgotten to
    /// make room. Safe because a replay carries the same (authenticated) sender.
    floor: u64,
    /// Its live nonces.
    count: usize,
    /// Its nonces' hashes by expiry second, soonest first; none empty.
    seconds: VecDeque<Second>,
}

struct Second {
    expires: u64,
    hashes: Vec<u64>,
}

/// Below this many sender states, empty ones are not swept (a sweep is a scan of them all).
const MIN_SENDERS_BEFORE_SWEEP: usize = 64;

/// Emptied per-second lists kept for reuse.
const MAX_SPARE: usize = 256;

impl ReplayCache {
    /// The number of nonces remembered.
    pub(super) fn len(&self) -> usize {
        self.seen.len()
    }

    /// The number of sender states.
    #[cfg(test)]
    pub(super) fn senders(&self) -> usize {
        self.ids.len()
    }

    fn state(&self, idx: SenderIdx) -> Option<&SenderState> {
        self.senders.get(idx as usize).and_then(Option::as_ref)
    }

    fn state_mut(&mut self, idx: SenderIdx) -> Option<&mut SenderState> {
        self.senders.get_mut(idx as usize).and_then(Option::as_mut)
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
        let hash = self.hasher.hash_one(nonce);
        if self
            .seen
            .find(hash, |e| e.hash == hash && e.nonce.as_bytes() == nonce)
            .is_some()
        {
            return Err(AuthError::Replay);
        }
        let own = self.ids.get(sender).copied();
        let own_state = own.and_then(|i| self.state(i));
        if ts < self.floor || ts < own_state.map_or(0, |s| s.floor) {
            return Err(AuthError::Stale {
                ts,
                now: limits.now,
            });
        }
        if let Some(idx) = own
            && own_state.is_some_and(|s| s.count >= limits.per_sender)
        {
            // Its oldest second goes (`CacheFull` if that is this message's own).
            self.forget_oldest_of(idx, limits.window, Some(ts))?;
        }
        // Each round forgets at least one nonce; a round that cannot (a stale pointer to the
        // heaviest) drops the pointer, and a second such round refuses: bounded either way.
        let mut stuck = false;
        while self.seen.len() >= limits.capacity {
            let Some(victim) = self.victim(own) else {
                return Err(AuthError::CacheFull);
            };
            let own_ts = (Some(victim) == own).then_some(ts);
            if self.forget_oldest_of(victim, limits.window, own_ts)? == 0 {
                if stuck {
                    return Err(AuthError::CacheFull);
                }
                stuck = true;
                self.heaviest = None;
            }
        }
        let expires = ts.saturating_add(limits.window);
        // Making room never drops a state, so `own` is still this sender's slot.
        let idx = match own {
            Some(idx) => idx,
            None => self.new_sender(sender),
        };
        let opened = self.add(idx, expires, hash);
        if opened {
            self.expiring.entry(expires).or_default().push(idx);
            self.expiring_len += 1;
        }
        self.seen.insert_unique(
            hash,
            Seen {
                hash,
                nonce: Key::new(nonce),
                sender: idx,
                expires,
            },
            |e| e.hash,
        );
        Ok(())
    }

    /// A state for a new sender, in a free slot if there is one (one allocation per sender for
    /// an id longer than 32 bytes, none per message).
    fn new_sender(&mut self, sender: &[u8]) -> SenderIdx {
        let key = Key::new(sender);
        let state = SenderState {
            key: key.clone(),
            floor: 0,
            count: 0,
            seconds: VecDeque::new(),
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                if let Some(slot) = self.senders.get_mut(idx as usize) {
                    *slot = Some(state);
                }
                idx
            }
            None => {
                // At most `capacity + 1` states plus the free ones (see `evict_expired`), far
                // below `u32::MAX` for any cache that fits in memory.
                let idx = SenderIdx::try_from(self.senders.len()).unwrap_or(SenderIdx::MAX);
                self.senders.push(Some(state));
                idx
            }
        };
        self.ids.insert(key, idx);
        idx
    }

    /// File a nonce's hash under its sender's second; true when that second is new for it.
    fn add(&mut self, idx: SenderIdx, expires: u64, hash: u64) -> bool {
        let spare = &mut self.spare;
        let Some(state) = self.senders.get_mut(idx as usize).and_then(Option::as_mut) else {
            return false;
        };
        state.count += 1;
        let mut new_second = || {
            let mut hashes = spare.pop().unwrap_or_default();
            hashes.push(hash);
            Second { expires, hashes }
        };
        let opened = match state.seconds.back_mut() {
            Some(s) if s.expires == expires => {
                s.hashes.push(hash);
                false
            }
            Some(s) if s.expires > expires => {
                // Out of order (timestamps may go back within the window): keep it sorted.
                let i = state.seconds.partition_point(|s| s.expires < expires);
                match state.seconds.get_mut(i) {
                    Some(s) if s.expires == expires => {
                        s.hashes.push(hash);
                        false
                    }
                    _ => {
                        state.seconds.insert(i, new_second());
                        true
                    }
                }
            }
            _ => {
                state.seconds.push_back(new_second());
                true
            }
        };
        let count = state.count;
        match &mut self.heaviest {
            Some((h, n)) if *h == idx => *n = count,
            Some((_, n)) if *n >= count => {}
            _ => self.heaviest = Some((idx, count)),
        }
        opened
    }

    /// Who pays for room: the heaviest sender, or the inserting one if it holds more.
    fn victim(&self, inserting: Option<SenderIdx>) -> Option<SenderIdx> {
        let own = inserting.filter(|&i| self.state(i).is_some_and(|s| s.count > 0));
        let own_count = own.and_then(|i| self.state(i)).map_or(0, |s| s.count);
        match (self.heaviest, own) {
            (Some((h, n)), own) if n > 0 && (own.is_none() || own_count <= n) => Some(h),
            (_, Some(own)) => Some(own),
            // The heaviest is gone and the inserting sender holds nothing: look for the heaviest.
            _ => self
                .senders
                .iter()
                .zip(0..)
                .filter_map(|(s, i)| s.as_ref().map(|s| (s.count, i)))
                .max_by_key(|&(count, _)| count)
                .map(|(_, i)| i),
        }
    }

    /// Record the sender's new count if it is the heaviest.
    fn recount(&mut self, idx: SenderIdx) {
        let count = self.state(idx).map_or(0, |s| s.count);
        if let Some((h, n)) = &mut self.heaviest
            && *h == idx
        {
            *n = count;
        }
    }

    /// Remove the nonces of one of `idx`'s seconds from the table; recycle the list.
    fn remove_second(&mut self, idx: SenderIdx, second: Second) {
        for &hash in &second.hashes {
            let found = self.seen.find_entry(hash, |e| {
                e.hash == hash && e.sender == idx && e.expires == second.expires
            });
            if let Ok(entry) = found {
                entry.remove();
            }
        }
        if self.spare.len() < MAX_SPARE {
            let mut hashes = second.hashes;
            hashes.clear();
            self.spare.push(hashes);
        }
    }

    /// Forget the sender's oldest second and raise its floor past it; how many nonces went. With
    /// `own_ts` (the sender's own message is the one being inserted), refuse instead when that
    /// second is the message's own or later: there is no room that keeps its replays refused.
    fn forget_oldest_of(
        &mut self,
        idx: SenderIdx,
        window: u64,
        own_ts: Option<u64>,
    ) -> Result<usize, AuthError> {
        let Some(state) = self.state_mut(idx) else {
            return Ok(0);
        };
        let Some(oldest) = state.seconds.front().map(|s| s.expires) else {
            return Ok(0);
        };
        let oldest_ts = oldest.saturating_sub(window);
        if own_ts.is_some_and(|ts| oldest_ts >= ts) {
            return Err(AuthError::CacheFull);
        }
        let Some(second) = state.seconds.pop_front() else {
            return Ok(0);
        };
        state.floor = state.floor.max(oldest_ts.saturating_add(1));
        let forgotten = second.hashes.len();
        state.count = state.count.saturating_sub(forgotten);
        // The state stays (with count 0) even when empty: its floor must keep refusing replays
        // of what was just forgotten. It goes when its floor no longer matters.
        self.remove_second(idx, second);
        self.recount(idx);
        Ok(forgotten)
    }

    /// Forget `idx`'s seconds that expired before `now`; drop its state when nothing of it
    /// matters any more. Any sender in the slot may be asked: an entry of `expiring` can outlive
    /// the second it names (forgotten to make room) or its sender (the slot reused), and then
    /// this only forgets what has expired anyway.
    fn drop_expired_of(&mut self, idx: SenderIdx, now: u64, window: u64) {
        while let Some(state) = self.state_mut(idx)
            && state.seconds.front().is_some_and(|s| s.expires < now)
            && let Some(second) = state.seconds.pop_front()
        {
            state.count = state.count.saturating_sub(second.hashes.len());
            self.remove_second(idx, second);
        }
        self.recount(idx);
        if self
            .state(idx)
            .is_some_and(|s| s.count == 0 && s.floor.saturating_add(window) <= now)
        {
            self.free_sender(idx);
        }
    }

    /// Drop a sender's state (it holds no nonce).
    fn free_sender(&mut self, idx: SenderIdx) {
        let Some(state) = self.senders.get_mut(idx as usize).and_then(Option::take) else {
            return;
        };
        self.ids.remove(&state.key);
        self.free.push(idx);
        if self.heaviest.is_some_and(|(h, _)| h == idx) {
            self.heaviest = None;
        }
    }

    /// Forget every nonce expiring before `now`, and the senders that no longer need a state.
    fn evict_expired(&mut self, now: u64, window: u64) {
        while let Some(entry) = self.expiring.first_entry() {
            if *entry.key() >= now {
                break;
            }
            let due = entry.remove();
            self.expiring_len = self.expiring_len.saturating_sub(due.len());
            for idx in due {
                self.drop_expired_of(idx, now, window);
            }
        }
        // A sender with nothing live keeps its state only while its floor still matters: once
        // `floor + window <= now`, every timestamp below the floor is stale anyway. Checked when
        // there are more states than nonces, so the scan is paid for by the inserts before it.
        if self.ids.len() > self.seen.len().max(MIN_SENDERS_BEFORE_SWEEP) {
            let done: Vec<SenderIdx> = self
                .live()
                .filter(|(_, s)| s.count == 0 && s.floor.saturating_add(window) <= now)
                .map(|(i, _)| i)
                .collect();
            for idx in done {
                self.free_sender(idx);
            }
        }
        // Bounded in count however fast senders come and go: past the cap, empty states go, and
        // the common floor rises to the highest of their floors so that what they refused stays
        // refused (for everyone: the price of a flood of new sender ids, which needs the key).
        if self.ids.len() > self.max_senders {
            let empty: Vec<(SenderIdx, u64)> = self
                .live()
                .filter(|(_, s)| s.count == 0)
                .map(|(i, s)| (i, s.floor))
                .collect();
            for (idx, floor) in empty {
                self.floor = self.floor.max(floor);
                self.free_sender(idx);
            }
        }
        // Entries of `expiring` left behind by forgotten seconds and dropped senders go when
        // their second passes; if they pile up faster (many senders opening seconds that are
        // forgotten at once), rebuild the index from the live seconds: at most one entry per live
        // nonce, so the rebuild is paid for by the openings since the last one.
        if self.expiring_len > 2 * (self.seen.len() + self.ids.len()) + 1024 {
            self.rebuild_expiring();
        }
    }

    fn live(&self) -> impl Iterator<Item = (SenderIdx, &SenderState)> {
        self.senders
            .iter()
            .zip(0..)
            .filter_map(|(s, i)| s.as_ref().map(|s| (i, s)))
    }

    fn rebuild_expiring(&mut self) {
        let mut expiring: BTreeMap<u64, Vec<SenderIdx>> = BTreeMap::new();
        let mut len = 0;
        for (idx, state) in self.live() {
            for second in &state.seconds {
                expiring.entry(second.expires).or_default().push(idx);
                len += 1;
            }
        }
        self.expiring = expiring;
        self.expiring_len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(capacity: usize, now: u64) -> Limits {
        Limits {
            window: 60,
            capacity,
            per_sender: capacity,
            now,
        }
    }

    #[test]
    fn keys_are_their_bytes_inline_or_not() {
        for len in [0, 1, 16, 24, 32, 33, 64] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let k = Key::new(&bytes);
            assert_eq!(k.as_bytes(), &bytes[..], "{len}");
            assert_eq!(matches!(k, Key::Inline { .. }), len <= INLINE, "{len}");
            // Hashes as the byte slice does, so maps keyed by it are searched by slice.
            let h = FxBuildHasher;
            assert_eq!(h.hash_one(&k), h.hash_one(&bytes[..]));
        }
        assert!(Key::new(b"ab") != Key::new(b"ab\0"));
    }

    /// Seconds forgotten to make room leave entries in the expiry index behind; many senders
    /// doing that do not make it grow without bound, and what it indexes stays right.
    #[test]
    fn the_expiry_index_stays_bounded_and_correct() {
        let mut c = ReplayCache::default();
        let now = 1_000;
        let mut n = 0u64;
        // Capacity 8, 5,000 senders one nonce each in 30 different seconds: each newcomer makes
        // the previous heaviest forget, leaving a stale index entry behind.
        for i in 0..5_000u64 {
            let ts = now - 30 + (i % 30);
            n += 1;
            let _ = c.insert(limits(8, now), &i.to_be_bytes(), ts, &n.to_be_bytes());
            assert!(c.expiring_len <= 2 * (c.seen.len() + c.ids.len()) + 1024 + 1);
        }
        assert!(c.len() <= 8);
        // Every live nonce is indexed under its sender's second.
        let indexed: usize = c
            .live()
            .map(|(i, s)| {
                s.seconds
                    .iter()
                    .filter(|sec| c.expiring.get(&sec.expires).is_some_and(|v| v.contains(&i)))
                    .map(|sec| sec.hashes.len())
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(indexed, c.len());
        // Once all expire, everything goes.
        let later = now + 100;
        c.insert(limits(8, later), b"late", later, b"x").unwrap();
        assert_eq!(c.len(), 1);
        // Emptied states linger only up to the cap (their floors folded beyond it).
        assert!(c.senders() <= 8 + 1, "{}", c.senders());
    }

    /// Slots of dropped senders are reused; a stale index entry that names a reused slot does not
    /// drop the new sender's live nonces.
    #[test]
    fn reused_slots_keep_their_new_senders_nonces() {
        let mut c = ReplayCache::default();
        c.insert(limits(100, 1_000), b"a", 1_000, b"a1").unwrap();
        // "a" expires (1_000 + 60 < 1_061), its slot is freed and taken by "b".
        c.insert(limits(100, 1_061), b"b", 1_061, b"b1").unwrap();
        assert_eq!(c.senders(), 1);
        assert_eq!(c.senders.len(), 1, "slot reused");
        c.insert(limits(100, 1_062), b"b", 1_062, b"b2").unwrap();
        assert_eq!(
            c.insert(limits(100, 1_100), b"c", 1_100, b"b1"),
            Err(AuthError::Replay)
        );
        assert_eq!(c.len(), 2);
    }
}
