//! [`DiscoveryCache`]: the locators discovered per objective, each with its lifetime (RFC 8990
//! section 2.5.4.3), bounded in objectives, locators per objective and bytes.

use std::collections::VecDeque;
use std::net::{SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use crate::wire::{Locator, Objective};

/// A discovered peer ASA (RFC 8991's `ASA_locator`).
#[derive(Debug, Clone, PartialEq)]
pub struct AsaLocator {
    /// Where it is.
    pub locator: Locator,
    /// The interface the answer came in on (the zone of a link-local locator).
    pub ifindex: u32,
    /// It came in a divert option (a relay's cached answer), not from the ASA's node itself.
    pub diverted: bool,
    /// When the answer's time to live ends.
    pub expires_at: Instant,
}

impl AsaLocator {
    /// The address to connect to: the locator's, with the interface as the zone of an IPv6
    /// link-local address. `None` for FQDN and URI locators.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.locator.socket_addr()? {
            SocketAddr::V6(a) if self.locator.is_link_local() => Some(SocketAddr::V6(
                SocketAddrV6::new(*a.ip(), a.port(), 0, self.ifindex),
            )),
            other => Some(other),
        }
    }
}

#[derive(Debug)]
struct Entry {
    name: String,
    locators: Vec<AsaLocator>,
    /// The objective with its value from a rapid-mode response, if one came.
    received: Option<Objective>,
    bytes: usize,
}

/// Discovered locators per objective name, least recently used first.
#[derive(Debug)]
pub struct DiscoveryCache {
    entries: VecDeque<Entry>,
    max_objectives: usize,
    max_locators: usize,
    max_bytes: usize,
    bytes: usize,
}

/// What one locator costs in the byte bound: the structure and its strings.
fn cost(l: &AsaLocator) -> usize {
    let text = match &l.locator {
        Locator::Fqdn { name, .. } => name.len(),
        Locator::Uri { uri, .. } => uri.len(),
        Locator::Ipv6 { .. } | Locator::Ipv4 { .. } => 0,
    };
    std::mem::size_of::<AsaLocator>() + text
}

fn objective_cost(o: &Objective) -> usize {
    crate::wire::objective_value(o)
        .to_cbor()
        .map_or(usize::MAX / 4, |b| b.len())
        + o.name.len()
}

impl DiscoveryCache {
    /// At most `max_objectives` objectives with `max_locators` locators each, `max_bytes` in all.
    pub fn new(max_objectives: usize, max_locators: usize, max_bytes: usize) -> DiscoveryCache {
        DiscoveryCache {
            entries: VecDeque::new(),
            max_objectives,
            max_locators,
            max_bytes,
            bytes: 0,
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// Add (or refresh) a locator for `name`. A known locator keeps one entry, with the later
    /// expiry; `received` replaces the rapid-mode value when given.
    pub fn insert(&mut self, name: &str, loc: AsaLocator, received: Option<Objective>) {
        let idx = match self.position(name) {
            Some(i) => i,
            None => {
                self.entries.push_back(Entry {
                    name: name.to_owned(),
                    locators: Vec::new(),
                    received: None,
                    bytes: name.len(),
                });
                self.bytes += name.len();
                self.entries.len() - 1
            }
        };
        let Some(mut e) = self.entries.remove(idx) else {
            return;
        };
        if let Some(old) = e
            .locators
            .iter_mut()
            .find(|l| l.locator == loc.locator && l.ifindex == loc.ifindex)
        {
            old.expires_at = old.expires_at.max(loc.expires_at);
        } else {
            if e.locators.len() >= self.max_locators {
                // The one expiring first goes.
                if let Some(i) =
                    (0..e.locators.len()).min_by_key(|&i| e.locators.get(i).map(|l| l.expires_at))
                {
                    let gone = e.locators.remove(i);
                    e.bytes = e.bytes.saturating_sub(cost(&gone));
                    self.bytes = self.bytes.saturating_sub(cost(&gone));
                }
            }
            e.bytes += cost(&loc);
            self.bytes += cost(&loc);
            e.locators.push(loc);
        }
        if let Some(r) = received {
            let c = objective_cost(&r);
            if let Some(old) = e.received.take() {
                let oc = objective_cost(&old);
                e.bytes = e.bytes.saturating_sub(oc);
                self.bytes = self.bytes.saturating_sub(oc);
            }
            e.bytes += c;
            self.bytes += c;
            e.received = Some(r);
        }
        // Most recently used last.
        self.entries.push_back(e);
        while self.entries.len() > self.max_objectives
            || (self.bytes > self.max_bytes && self.entries.len() > 1)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes = self.bytes.saturating_sub(old.bytes);
            }
        }
    }

    /// Drop what expired by `now`, and for `name` also what would expire within
    /// `min_remaining` (RFC 8991's `minimum_TTL`; zero flushes every locator of `name`).
    pub fn prune(&mut self, now: Instant, name: &str, min_remaining: Option<Duration>) {
        if min_remaining.is_some_and(|d| d.is_zero()) {
            self.flush(name);
        }
        let mut bytes = self.bytes;
        for e in self.entries.iter_mut() {
            let deadline = match min_remaining {
                Some(d) if e.name == name => Some(now + d),
                _ => None,
            };
            e.locators.retain(|l| {
                let keep = l.expires_at > now && deadline.is_none_or(|d| l.expires_at > d);
                if !keep {
                    e.bytes = e.bytes.saturating_sub(cost(l));
                    bytes = bytes.saturating_sub(cost(l));
                }
                keep
            });
        }
        self.bytes = bytes;
        let mut gone = 0;
        self.entries.retain(|e| {
            let keep = !e.locators.is_empty();
            if !keep {
                gone += e.bytes;
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(gone);
    }

    /// Forget `name` entirely (discovery with `flush`).
    pub fn flush(&mut self, name: &str) {
        if let Some(i) = self.position(name)
            && let Some(e) = self.entries.remove(i)
        {
            self.bytes = self.bytes.saturating_sub(e.bytes);
        }
    }

    /// The unexpired locators of `name`, marking it recently used.
    pub fn get(&mut self, now: Instant, name: &str) -> Vec<AsaLocator> {
        let Some(i) = self.position(name) else {
            return Vec::new();
        };
        let Some(e) = self.entries.remove(i) else {
            return Vec::new();
        };
        let out = e
            .locators
            .iter()
            .filter(|l| l.expires_at > now)
            .cloned()
            .collect();
        self.entries.push_back(e);
        out
    }

    /// The objective with value of a rapid-mode response for `name`, if one is cached and
    /// some locator of it is unexpired.
    pub fn received(&self, now: Instant, name: &str) -> Option<Objective> {
        let e = self.entries.iter().find(|e| e.name == name)?;
        if e.locators.iter().any(|l| l.expires_at > now) {
            e.received.clone()
        } else {
            None
        }
    }

    /// The approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many objectives are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(port: u16, t: Instant) -> AsaLocator {
        AsaLocator {
            locator: Locator::Ipv6 {
                addr: "fd00::1".parse().unwrap(),
                protocol: 6,
                port,
            },
            ifindex: 2,
            diverted: false,
            expires_at: t,
        }
    }

    #[test]
    fn locators_expire_with_their_ttl_and_duplicates_merge() {
        let t0 = Instant::now();
        let mut c = DiscoveryCache::new(10, 10, 1 << 20);
        c.insert("EX3", loc(1, t0 + Duration::from_secs(10)), None);
        c.insert("EX3", loc(1, t0 + Duration::from_secs(20)), None);
        c.insert("EX3", loc(2, t0 + Duration::from_secs(5)), None);
        assert_eq!(c.get(t0, "EX3").len(), 2);
        // At 6 s the second has expired; the first lives to 20 s (the later of its two).
        assert_eq!(c.get(t0 + Duration::from_secs(6), "EX3").len(), 1);
        assert_eq!(c.get(t0 + Duration::from_secs(19), "EX3").len(), 1);
        assert!(c.get(t0 + Duration::from_secs(20), "EX3").is_empty());
    }

    #[test]
    fn minimum_ttl_drops_what_would_expire_soon_and_zero_flushes() {
        let t0 = Instant::now();
        let mut c = DiscoveryCache::new(10, 10, 1 << 20);
        c.insert("EX3", loc(1, t0 + Duration::from_secs(10)), None);
        c.insert("EX3", loc(2, t0 + Duration::from_secs(60)), None);
        c.prune(t0, "EX3", Some(Duration::from_secs(30)));
        assert_eq!(c.get(t0, "EX3").len(), 1);
        c.prune(t0, "EX3", Some(Duration::ZERO));
        assert!(c.get(t0, "EX3").is_empty());
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn the_cache_is_bounded_in_objectives_locators_and_bytes() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(600);
        let mut c = DiscoveryCache::new(3, 2, 1 << 20);
        for p in 0..5 {
            c.insert("EX3", loc(p, far + Duration::from_secs(p.into())), None);
        }
        assert_eq!(c.get(t0, "EX3").len(), 2);
        for n in 0..5 {
            c.insert(&format!("O{n}"), loc(1, far), None);
        }
        assert_eq!(c.len(), 3);
        // EX3, the least recently used, went first.
        assert!(c.get(t0, "EX3").is_empty());
        let mut small = DiscoveryCache::new(100, 100, 400);
        for n in 0..50 {
            small.insert(&format!("objective-{n}"), loc(1, far), None);
            assert!(small.bytes() <= 400);
        }
    }
}
