//! [`FloodCache`]: flooded objectives keyed by (objective name, locator), each with the flood's
//! time to live (RFC 8990 section 2.8.11): the same key overwrites, a new locator adds an entry.
//! Bounded in entries and bytes.

use std::time::Instant;

use crate::wire::{Locator, Objective};

/// A flooded objective with its source (RFC 8991's `tagged_objective`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedObjective {
    /// The objective and its value.
    pub objective: Objective,
    /// The locator it was flooded with (`None`: the null locator).
    pub locator: Option<Locator>,
    /// The interface it came in on.
    pub ifindex: u32,
    /// When it expires (`None`: a ttl of zero, indefinite).
    pub expires_at: Option<Instant>,
}

impl TaggedObjective {
    fn alive(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

#[derive(Debug)]
struct Entry {
    tagged: TaggedObjective,
    bytes: usize,
}

/// The flood cache, oldest entry first.
#[derive(Debug)]
pub struct FloodCache {
    entries: Vec<Entry>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
}

impl FloodCache {
    /// At most `max_entries` entries of `max_bytes` in all (each counted as its encoded size).
    pub fn new(max_entries: usize, max_bytes: usize) -> FloodCache {
        FloodCache {
            entries: Vec::new(),
            max_entries,
            max_bytes,
            bytes: 0,
        }
    }

    /// Store a flooded objective: it replaces the entry of the same name and locator. Expired
    /// entries are dropped first; then, past a bound, the oldest.
    pub fn insert(&mut self, now: Instant, tagged: TaggedObjective, encoded_len: usize) {
        self.expire(now);
        let name = &tagged.objective.name;
        if let Some(i) = self
            .entries
            .iter()
            .position(|e| &e.tagged.objective.name == name && e.tagged.locator == tagged.locator)
        {
            let old = self.entries.remove(i);
            self.bytes = self.bytes.saturating_sub(old.bytes);
        }
        let bytes = encoded_len + name.len();
        self.bytes += bytes;
        self.entries.push(Entry { tagged, bytes });
        while self.entries.len() > self.max_entries
            || (self.bytes > self.max_bytes && !self.entries.is_empty())
        {
            let old = self.entries.remove(0);
            self.bytes = self.bytes.saturating_sub(old.bytes);
        }
    }

    /// The unexpired entries for `name`.
    pub fn get(&self, now: Instant, name: &str) -> Vec<TaggedObjective> {
        self.entries
            .iter()
            .filter(|e| e.tagged.objective.name == name && e.tagged.alive(now))
            .map(|e| e.tagged.clone())
            .collect()
    }

    /// Mark the entry of `tagged`'s name and locator expired (RFC 8991 `expire_flood`). True
    /// when there was one.
    pub fn expire_entry(&mut self, tagged: &TaggedObjective) -> bool {
        let before = self.entries.len();
        let mut bytes = self.bytes;
        self.entries.retain(|e| {
            let same = e.tagged.objective.name == tagged.objective.name
                && e.tagged.locator == tagged.locator;
            if same {
                bytes = bytes.saturating_sub(e.bytes);
            }
            !same
        });
        self.bytes = bytes;
        self.entries.len() < before
    }

    /// Drop what expired by `now`.
    pub fn expire(&mut self, now: Instant) {
        let mut bytes = self.bytes;
        self.entries.retain(|e| {
            let keep = e.tagged.alive(now);
            if !keep {
                bytes = bytes.saturating_sub(e.bytes);
            }
            keep
        });
        self.bytes = bytes;
    }

    /// The next expiry, for the timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| e.tagged.expires_at)
            .min()
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::wire::Value;

    fn tagged(name: &str, value: &str, loc: Option<u16>, exp: Option<Instant>) -> TaggedObjective {
        TaggedObjective {
            objective: Objective::new(name).synch(true).value(Value::from(value)),
            locator: loc.map(|port| Locator::Ipv6 {
                addr: "fd00::1".parse().unwrap(),
                protocol: 6,
                port,
            }),
            ifindex: 1,
            expires_at: exp,
        }
    }

    #[test]
    fn same_name_and_locator_overwrites_another_locator_adds() {
        let t0 = Instant::now();
        let mut c = FloodCache::new(10, 1 << 20);
        c.insert(t0, tagged("EX1", "a", None, None), 10);
        c.insert(t0, tagged("EX1", "b", None, None), 10);
        let got = c.get(t0, "EX1");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].objective.value, Some(Value::from("b")));
        c.insert(t0, tagged("EX1", "c", Some(7017), None), 10);
        c.insert(t0, tagged("EX1", "d", Some(7018), None), 10);
        assert_eq!(c.get(t0, "EX1").len(), 3);
        assert!(c.get(t0, "EX2").is_empty());
    }

    #[test]
    fn entries_expire_with_the_flood_ttl_zero_is_indefinite() {
        let t0 = Instant::now();
        let ten = t0 + Duration::from_secs(10);
        let mut c = FloodCache::new(10, 1 << 20);
        c.insert(t0, tagged("EX1", "a", None, Some(ten)), 10);
        c.insert(t0, tagged("EX1", "b", Some(1), None), 10);
        assert_eq!(c.get(t0 + Duration::from_secs(9), "EX1").len(), 2);
        assert_eq!(c.get(ten, "EX1").len(), 1);
        assert_eq!(c.next_expiry(), Some(ten));
        c.expire(ten);
        assert_eq!(c.len(), 1);
        assert!(c.expire_entry(&tagged("EX1", "x", Some(1), None)));
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn the_cache_is_bounded_in_entries_and_bytes() {
        let t0 = Instant::now();
        let mut c = FloodCache::new(4, 1 << 20);
        for p in 0..10 {
            c.insert(t0, tagged("EX1", "a", Some(p), None), 10);
        }
        assert_eq!(c.len(), 4);
        // The newest are kept.
        assert!(c.get(t0, "EX1").iter().any(|t| {
            t.locator
                .as_ref()
                .and_then(|l| l.socket_addr())
                .map(|a| a.port())
                == Some(9)
        }));
        let mut small = FloodCache::new(100, 100);
        for p in 0..10 {
            small.insert(t0, tagged("EX1", "a", Some(p), None), 40);
            assert!(small.bytes() <= 100);
        }
    }
}
