//! [`ContentStore`]: the bulletins a node holds, bounded in count and bytes, expiring with time
//! and evicting the oldest first, with lookups by topic (what anti-entropy exchanges).

use std::collections::{BTreeSet, HashMap};

use crate::bulletin::{Bulletin, BulletinHeader};
use crate::ids::{BulletinId, ContentId, TopicId};
use crate::policy::VerifiedBulletin;

/// Why a bulletin was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// It expires at or before `now`.
    #[error("expired at {expires_at}, now {now}")]
    Expired {
        /// When it expires (Unix seconds).
        expires_at: i64,
        /// The clock given.
        now: u64,
    },
    /// It alone is larger than the store's byte bound.
    #[error("{size} bytes exceed the store's bound of {max}")]
    TooLarge {
        /// Its size (header and content).
        size: usize,
        /// The store's bound.
        max: usize,
    },
    /// The store is full and it is older than everything stored: keeping it would evict itself.
    #[error("the store is full of younger bulletins")]
    OlderThanStored,
}

/// What [`ContentStore::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored, after removing `evicted` older bulletins (expired ones included) to make room.
    Stored {
        /// Bulletins removed to make room.
        evicted: usize,
    },
    /// A bulletin with the same id was already there; nothing changed.
    AlreadyStored,
}

/// Bounds of a [`ContentStore`]: defaults 10,000 bulletins and 64 MiB.
///
/// ```
/// use netaio_gossip::StoreConfig;
/// let config = StoreConfig::default().max_bulletins(1_000).max_bytes(8 << 20);
/// assert_eq!(config.get_max_bulletins(), 1_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    max_bulletins: usize,
    max_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_bulletins: Self::DEFAULT_MAX_BULLETINS,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

impl StoreConfig {
    /// Default bound on the number of bulletins.
    pub const DEFAULT_MAX_BULLETINS: usize = 10_000;
    /// Default bound on the bytes held (headers and contents).
    pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

    /// At most `n` bulletins (at least 1).
    #[must_use]
    pub fn max_bulletins(mut self, n: usize) -> Self {
        self.max_bulletins = n.max(1);
        self
    }

    /// At most `n` bytes of headers and contents (at least one header's worth).
    #[must_use]
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n.max(BulletinHeader::LEN);
        self
    }

    /// The bound on the number of bulletins.
    pub fn get_max_bulletins(&self) -> usize {
        self.max_bulletins
    }

    /// The bound on bytes.
    pub fn get_max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[derive(Debug)]
struct Entry {
    bulletin: Bulletin,
    expires_at: i64,
}

/// The bulletins a node holds, keyed by [`BulletinId`].
///
/// Only [`VerifiedBulletin`]s go in. Each leaves when it expires (its timestamp plus the ttl of
/// the policy that verified it: [`expire`](Self::expire), also run by every insert) or when room
/// is needed, the oldest first (the earliest to expire). Bytes counted are each bulletin's
/// encoded size (72 + content); lookups by topic give the ids and content ids held, for
/// anti-entropy. Time is passed in (`now`, Unix seconds).
///
/// ```
/// use netaio_gossip::{BulletinPolicy, ContentStore, Inserted, StoreConfig, TopicId};
///
/// let policy = BulletinPolicy::default();
/// let weather = TopicId::from_descriptor(b"weather");
/// let mut store = ContentStore::new(StoreConfig::default());
/// let now = 1_700_000_000;
/// let b = policy.mint(weather, "rain at noon", now, 0)?;
/// let id = b.id();
/// assert_eq!(store.insert(b, now)?, Inserted::Stored { evicted: 0 });
/// assert_eq!(store.ids(&weather), vec![id]);
/// assert_eq!(store.get(&id).unwrap().content().as_ref(), b"rain at noon");
/// assert_eq!(store.expire(now + 3_600), 1);
/// assert!(store.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct ContentStore {
    config: StoreConfig,
    entries: HashMap<BulletinId, Entry>,
    /// (expires at, id): the oldest first.
    by_age: BTreeSet<(i64, BulletinId)>,
    /// Per topic, (content id, id) of what is held.
    by_topic: HashMap<TopicId, BTreeSet<(ContentId, BulletinId)>>,
    bytes: usize,
}

fn now_i64(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

impl ContentStore {
    /// An empty store with these bounds.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The bounds.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Store `bulletin` at `now`: first removes what expired, then as many of the oldest
    /// bulletins as the bounds require. When the bulletin itself would be the oldest to go, it is
    /// refused ([`StoreError::OlderThanStored`]) and nothing else is removed.
    pub fn insert(&mut self, bulletin: VerifiedBulletin, now: u64) -> Result<Inserted, StoreError> {
        let expires_at = bulletin.expires_at();
        if expires_at <= now_i64(now) {
            return Err(StoreError::Expired { expires_at, now });
        }
        let size = bulletin.bulletin().encoded_len();
        if size > self.config.max_bytes {
            return Err(StoreError::TooLarge {
                size,
                max: self.config.max_bytes,
            });
        }
        let id = bulletin.id();
        if self.entries.contains_key(&id) {
            return Ok(Inserted::AlreadyStored);
        }
        let mut evicted = self.expire(now);
        let key = (expires_at, id);
        // Pick the oldest to evict before removing any, so that a refusal changes nothing
        // (beyond the expired ones removed above).
        let (mut count, mut bytes) = (self.entries.len(), self.bytes);
        let mut victims = Vec::new();
        for &(old_expiry, old_id) in &self.by_age {
            if count < self.config.max_bulletins && bytes + size <= self.config.max_bytes {
                break;
            }
            if (old_expiry, old_id) > key {
                return Err(StoreError::OlderThanStored);
            }
            count -= 1;
            bytes = bytes.saturating_sub(
                self.entries
                    .get(&old_id)
                    .map_or(0, |e| e.bulletin.encoded_len()),
            );
            victims.push(old_id);
        }
        for victim in &victims {
            self.remove(victim);
        }
        evicted += victims.len();
        let bulletin = bulletin.into_bulletin();
        let header = *bulletin.header();
        self.by_age.insert(key);
        self.by_topic
            .entry(header.topic)
            .or_default()
            .insert((header.content_id, id));
        self.bytes += size;
        self.entries.insert(
            id,
            Entry {
                bulletin,
                expires_at,
            },
        );
        Ok(Inserted::Stored { evicted })
    }

    /// Remove what expired at `now`; how many were removed.
    pub fn expire(&mut self, now: u64) -> usize {
        let now = now_i64(now);
        let mut removed = 0;
        while let Some(&(expires_at, id)) = self.by_age.first() {
            if expires_at > now {
                break;
            }
            self.remove(&id);
            removed += 1;
        }
        removed
    }

    /// Remove one bulletin; it, if it was there.
    pub fn remove(&mut self, id: &BulletinId) -> Option<Bulletin> {
        let entry = self.entries.remove(id)?;
        let header = entry.bulletin.header();
        self.by_age.remove(&(entry.expires_at, *id));
        if let Some(set) = self.by_topic.get_mut(&header.topic) {
            set.remove(&(header.content_id, *id));
            if set.is_empty() {
                self.by_topic.remove(&header.topic);
            }
        }
        self.bytes -= entry.bulletin.encoded_len();
        Some(entry.bulletin)
    }

    /// The bulletin with this id.
    pub fn get(&self, id: &BulletinId) -> Option<&Bulletin> {
        self.entries.get(id).map(|e| &e.bulletin)
    }

    /// Whether a bulletin with this id is held.
    pub fn contains(&self, id: &BulletinId) -> bool {
        self.entries.contains_key(id)
    }

    /// When the bulletin with this id expires (Unix seconds).
    pub fn expires_at(&self, id: &BulletinId) -> Option<i64> {
        self.entries.get(id).map(|e| e.expires_at)
    }

    /// The ids of the bulletins held for `topic`, in content id order.
    pub fn ids(&self, topic: &TopicId) -> Vec<BulletinId> {
        self.by_topic
            .get(topic)
            .map(|set| set.iter().map(|(_, id)| *id).collect())
            .unwrap_or_default()
    }

    /// At most `limit` ids held for `topic`, the youngest first (latest to expire; ties by id):
    /// what anti-entropy offers a neighbour, so that a topic with more bulletins than one answer
    /// carries sends the recent ones.
    pub fn newest_ids(&self, topic: &TopicId, limit: usize) -> Vec<BulletinId> {
        let Some(set) = self.by_topic.get(topic) else {
            return Vec::new();
        };
        let mut aged: Vec<(i64, BulletinId)> = set
            .iter()
            .filter_map(|(_, id)| self.entries.get(id).map(|e| (e.expires_at, *id)))
            .collect();
        aged.sort_unstable_by(|a, b| b.cmp(a));
        aged.truncate(limit);
        aged.into_iter().map(|(_, id)| id).collect()
    }

    /// The distinct content ids held for `topic`, sorted (Python's bulletin handler `list`).
    pub fn content_ids(&self, topic: &TopicId) -> Vec<ContentId> {
        let mut out: Vec<ContentId> = Vec::new();
        for (content_id, _) in self.by_topic.get(topic).into_iter().flatten() {
            if out.last() != Some(content_id) {
                out.push(*content_id);
            }
        }
        out
    }

    /// A bulletin of `topic` with this content (Python's `retrieve(topic_id, content_id)`); of
    /// several, the one with the smallest id.
    pub fn find(&self, topic: &TopicId, content_id: &ContentId) -> Option<&Bulletin> {
        let set = self.by_topic.get(topic)?;
        let lowest = (*content_id, BulletinId([0; 32]));
        let (found, id) = set.range(lowest..).next()?;
        (found == content_id).then(|| self.get(id)).flatten()
    }

    /// The topics with at least one bulletin held.
    pub fn topics(&self) -> impl Iterator<Item = &TopicId> {
        self.by_topic.keys()
    }

    /// Number of bulletins held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held (headers and contents).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::time::Duration;

    use netaio_tapehash::{Difficulty, Tapehash};
    use proptest::prelude::*;

    use super::*;
    use crate::policy::BulletinPolicy;
    use crate::work::ProofOfWork;

    const T: u64 = 1_700_000_000;

    /// Minting without work (one tapehash per bulletin), so tests can make many.
    fn policy() -> BulletinPolicy {
        BulletinPolicy::default().proof_of_work(ProofOfWork::new(
            Tapehash::v1(1).unwrap(),
            Difficulty::LeadingZeroBits(0),
        ))
    }

    fn topic(name: &str) -> TopicId {
        TopicId::from_descriptor(name.as_bytes())
    }

    fn bulletin(topic_name: &str, content: &str, ts: u64, nonce: i32) -> VerifiedBulletin {
        policy()
            .mint(topic(topic_name), content.to_owned(), ts, nonce)
            .unwrap()
    }

    #[test]
    fn lookups_by_id_and_topic() {
        let mut s = ContentStore::new(StoreConfig::default());
        let a = bulletin("weather", "rain", T, 0);
        let a_again = bulletin("weather", "rain", T, 1); // same content, another bulletin
        let b = bulletin("weather", "sun", T, 0);
        let c = bulletin("news", "rain", T, 0);
        let ids = [a.id(), a_again.id(), b.id(), c.id()];
        for v in [a, a_again, b, c] {
            assert_eq!(s.insert(v, T).unwrap(), Inserted::Stored { evicted: 0 });
        }
        assert_eq!(s.len(), 4);
        assert_eq!(s.bytes(), 4 * 72 + 4 + 4 + 3 + 4);
        let mut weather = s.ids(&topic("weather"));
        weather.sort();
        let mut want = ids[..3].to_vec();
        want.sort();
        assert_eq!(weather, want);
        let mut contents = vec![ContentId::of(b"rain"), ContentId::of(b"sun")];
        contents.sort();
        assert_eq!(s.content_ids(&topic("weather")), contents, "distinct");
        assert_eq!(s.content_ids(&topic("news")), [ContentId::of(b"rain")]);
        assert!(s.content_ids(&topic("nothing")).is_empty());
        let found = s.find(&topic("weather"), &ContentId::of(b"rain")).unwrap();
        assert_eq!(found.content().as_ref(), b"rain");
        assert!(ids[..2].contains(&found.id()));
        assert!(s.find(&topic("news"), &ContentId::of(b"sun")).is_none());
        assert!(s.contains(&ids[3]) && s.get(&ids[3]).is_some());
        assert_eq!(s.expires_at(&ids[3]), Some(T as i64 + 3_600));
        assert_eq!(s.topics().count(), 2);
        // The same bulletin again changes nothing.
        assert_eq!(
            s.insert(bulletin("news", "rain", T, 0), T).unwrap(),
            Inserted::AlreadyStored
        );
        assert_eq!(s.len(), 4);
        // Removing one cleans the topic index.
        assert!(s.remove(&ids[3]).is_some());
        assert!(s.ids(&topic("news")).is_empty());
        assert_eq!(s.topics().count(), 1);
        assert!(s.remove(&ids[3]).is_none());
    }

    #[test]
    fn newest_ids_youngest_first_and_bounded() {
        let mut s = ContentStore::new(StoreConfig::default());
        let old = bulletin("t", "a", T, 0);
        let mid = bulletin("t", "b", T + 10, 0);
        let new = bulletin("t", "c", T + 20, 0);
        let other = bulletin("u", "d", T + 30, 0);
        let ids = [old.id(), mid.id(), new.id()];
        for v in [mid, other, new, old] {
            s.insert(v, T).unwrap();
        }
        assert_eq!(s.newest_ids(&topic("t"), 10), [ids[2], ids[1], ids[0]]);
        assert_eq!(s.newest_ids(&topic("t"), 2), [ids[2], ids[1]]);
        assert_eq!(s.newest_ids(&topic("t"), 0), []);
        assert_eq!(s.newest_ids(&topic("none"), 5), []);
    }

    #[test]
    fn expiry_with_injected_time() {
        let mut s = ContentStore::new(StoreConfig::default());
        let early = bulletin("t", "early", T, 0);
        let late = bulletin("t", "late", T + 100, 0);
        let (early_id, late_id) = (early.id(), late.id());
        s.insert(early, T + 100).unwrap();
        s.insert(late, T + 100).unwrap();
        assert_eq!(s.expire(T + 3_599), 0);
        assert_eq!(s.expire(T + 3_600), 1, "timestamp + ttl reached");
        assert!(!s.contains(&early_id) && s.contains(&late_id));
        assert_eq!(s.bytes(), 72 + 4);
        // Insert sweeps what expired.
        let later = bulletin("u", "later", T + 3_700, 0);
        assert_eq!(
            s.insert(later, T + 3_700).unwrap(),
            Inserted::Stored { evicted: 1 }
        );
        assert!(!s.contains(&late_id));
        assert_eq!(s.ids(&topic("t")), []);
        // An expired bulletin is not stored.
        let stale = bulletin("t", "stale", T, 1);
        assert_eq!(
            s.insert(stale, T + 3_600),
            Err(StoreError::Expired {
                expires_at: T as i64 + 3_600,
                now: T + 3_600
            })
        );
        // The policy's ttl decides.
        let short = policy()
            .ttl(Duration::from_secs(5))
            .mint(topic("t"), "short", T, 0)
            .unwrap();
        let id = short.id();
        s.insert(short, T).unwrap();
        assert_eq!(s.expire(T + 5), 1);
        assert!(!s.contains(&id));
    }

    #[test]
    fn count_bound_evicts_the_oldest() {
        let mut s = ContentStore::new(StoreConfig::default().max_bulletins(2));
        let b0 = bulletin("t", "0", T, 0);
        let b1 = bulletin("t", "1", T + 1, 0);
        let b2 = bulletin("t", "2", T + 2, 0);
        let ids = [b0.id(), b1.id(), b2.id()];
        s.insert(b1, T + 2).unwrap();
        s.insert(b0, T + 2).unwrap();
        assert_eq!(
            s.insert(b2, T + 2).unwrap(),
            Inserted::Stored { evicted: 1 }
        );
        assert!(!s.contains(&ids[0]), "the oldest went");
        assert!(s.contains(&ids[1]) && s.contains(&ids[2]));
        // Older than all while full: refused, nothing removed.
        let old = bulletin("t", "old", T, 1);
        assert_eq!(s.insert(old, T + 2), Err(StoreError::OlderThanStored));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn byte_bound_evicts_as_many_as_needed() {
        // Room for 3 headers and 30 content bytes.
        let mut s = ContentStore::new(StoreConfig::default().max_bytes(3 * 72 + 30));
        let small: Vec<VerifiedBulletin> = (0..3)
            .map(|i| bulletin("t", "0123456789", T + i, 0))
            .collect();
        let ids: Vec<BulletinId> = small.iter().map(VerifiedBulletin::id).collect();
        for v in small {
            s.insert(v, T + 3).unwrap();
        }
        assert_eq!(s.bytes(), 3 * 72 + 30);
        // 72 + 80 bytes: two must go, the two oldest.
        let big = bulletin("t", &"x".repeat(80), T + 3, 0);
        assert_eq!(
            s.insert(big, T + 3).unwrap(),
            Inserted::Stored { evicted: 2 }
        );
        assert!(!s.contains(&ids[0]) && !s.contains(&ids[1]) && s.contains(&ids[2]));
        assert_eq!(s.bytes(), 72 + 10 + 72 + 80);
        // Larger than the whole store.
        let huge = bulletin("t", &"y".repeat(200), T + 3, 0);
        assert_eq!(
            s.insert(huge, T + 3),
            Err(StoreError::TooLarge {
                size: 272,
                max: 246
            })
        );
        assert_eq!(StoreConfig::default().max_bytes(0).get_max_bytes(), 72);
        assert_eq!(
            StoreConfig::default().max_bulletins(0).get_max_bulletins(),
            1
        );
    }

    proptest! {
        /// Whatever is inserted, removed or expired: within both bounds, the byte count is the
        /// sum of what is held, and the topic index lists exactly what is held.
        #[test]
        fn bounds_and_indexes_hold(
            ops in proptest::collection::vec((0u8..4, 0u64..50, 0usize..60, 0u8..3), 1..60),
        ) {
            let mut s = ContentStore::new(StoreConfig::default().max_bulletins(5).max_bytes(400));
            let mut now = T;
            let mut seen: Vec<BulletinId> = Vec::new();
            for (i, (op, dt, len, t)) in ops.into_iter().enumerate() {
                match op {
                    0 | 1 => {
                        let name = format!("topic{t}");
                        let v = policy()
                            .ttl(Duration::from_secs(100))
                            .mint(topic(&name), "z".repeat(len), now.saturating_sub(dt), i as i32)
                            .unwrap();
                        seen.push(v.id());
                        let _ = s.insert(v, now);
                    }
                    2 => now += dt,
                    _ => {
                        if let Some(id) = seen.get(len % seen.len().max(1)) {
                            s.remove(id);
                        }
                    }
                }
                s.expire(now);
                prop_assert!(s.len() <= 5);
                prop_assert!(s.bytes() <= 400);
                let held: Vec<&BulletinId> = seen.iter().filter(|id| s.contains(id)).collect();
                let bytes: usize = held.iter().map(|id| s.get(id).unwrap().encoded_len()).sum();
                prop_assert_eq!(s.bytes(), bytes);
                prop_assert_eq!(held.len(), s.len());
                let indexed: usize = (0..3).map(|t| s.ids(&topic(&format!("topic{t}"))).len()).sum();
                prop_assert_eq!(indexed, s.len());
                for id in held {
                    prop_assert!(s.expires_at(id).unwrap() > now as i64);
                }
            }
        }
    }
}
