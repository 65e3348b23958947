//! What a relay between interfaces remembers (RFC 8990 sections 2.5.4.4 and 2.5.6.2): the
//! (session id, initiator) pairs it relayed, so that none is relayed twice ([`RelayCache`]),
//! and a limit on the rate it relays at ([`RateLimit`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Relayed (session id, initiator) pairs, each remembered until its expiry; bounded.
#[derive(Debug)]
pub struct RelayCache {
    seen: HashMap<(u32, IpAddr), Instant>,
    order: VecDeque<((u32, IpAddr), Instant)>,
    max: usize,
}

impl RelayCache {
    /// At most `max` pairs (past that, the oldest is forgotten first).
    pub fn new(max: usize) -> RelayCache {
        RelayCache {
            seen: HashMap::new(),
            order: VecDeque::new(),
            max,
        }
    }

    /// Record `key` until `until`; false when it is known already (and not expired): do not relay.
    pub fn first_time(&mut self, now: Instant, key: (u32, IpAddr), until: Instant) -> bool {
        self.expire(now);
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key, until);
        self.order.push_back((key, until));
        while self.seen.len() > self.max {
            let Some((old, t)) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&old) == Some(&t) {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// True when `key` is remembered at `now`.
    pub fn contains(&self, now: Instant, key: &(u32, IpAddr)) -> bool {
        self.seen.get(key).is_some_and(|t| *t > now)
    }

    fn expire(&mut self, now: Instant) {
        while let Some((k, t)) = self.order.front().copied() {
            if t > now {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&k) == Some(&t) {
                self.seen.remove(&k);
            }
        }
    }

    /// How many pairs are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A token bucket: `burst` relays at once, refilled at `per_second`.
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimit {
    /// Allow `per_second` on average and `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: None,
        }
    }

    /// Take one token at `now`; false when none is left (drop the relay).
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.per_second).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How long a relayed flood's pair is remembered: at least twice the default timeout.
pub const FLOOD_MEMORY: Duration = Duration::from_millis(2 * 60_000);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_relayed_once_until_it_expires() {
        let t0 = Instant::now();
        let ini: IpAddr = "fd00::1".parse().unwrap();
        let mut c = RelayCache::new(10);
        assert!(c.first_time(t0, (1, ini), t0 + FLOOD_MEMORY));
        assert!(!c.first_time(t0 + Duration::from_secs(119), (1, ini), t0 + FLOOD_MEMORY));
        // Another initiator with the same session id is another pair.
        assert!(c.first_time(t0, (1, "fd00::2".parse().unwrap()), t0 + FLOOD_MEMORY));
        assert!(c.first_time(t0 + FLOOD_MEMORY, (1, ini), t0 + 2 * FLOOD_MEMORY));
    }

    #[test]
    fn the_relay_cache_is_bounded() {
        let t0 = Instant::now();
        let ini: IpAddr = "fd00::1".parse().unwrap();
        let mut c = RelayCache::new(3);
        for id in 0..10 {
            c.first_time(t0, (id, ini), t0 + FLOOD_MEMORY);
        }
        assert_eq!(c.len(), 3);
        assert!(c.contains(t0, &(9, ini)));
        assert!(!c.contains(t0, &(0, ini)));
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(10, 5);
        assert_eq!((0..20).filter(|_| r.allow(t0)).count(), 5);
        // 100 ms later: one more token.
        assert!(r.allow(t0 + Duration::from_millis(100)));
        assert!(!r.allow(t0 + Duration::from_millis(100)));
        // A long pause refills no more than the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| r.allow(later)).count(), 5);
    }
}
