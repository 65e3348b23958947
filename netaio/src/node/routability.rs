//! Return routability on UDP: which source addresses have proved that they receive what is sent
//! to them. A datagram's source address can be forged, so a node that answered any address in
//! full would let anyone aim its replies at a victim, larger than what they sent (amplification).
//! The rule: a node never sends an unverified address more bytes than it received from it.
//!
//! An address is verified when it sent a datagram that passed an auth plugin that
//! [authenticates its sender](crate::plugin::AuthPlugin::authenticates_sender), or when it echoed
//! a cookie this node sent it (a return-routability round trip, as DTLS's `HelloVerifyRequest` and
//! QUIC's Retry do). The cookie is stateless: a MAC, keyed with a secret drawn at random when the
//! node is bound, over the source address and a coarse time slot ([`COOKIE_SLOT`]); it is valid
//! in its slot and the next, so between one and two slots. An address that echoed a valid cookie
//! is remembered ([`VerifiedAddrs`]) for a while, so that its later datagrams need no cookie.
//!
//! I/O-free: time comes in as `now`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ::hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::time::Instant;

/// Bytes of a cookie (a truncated HMAC-SHA256): guessing one for an address takes 2¹²⁸ tries.
pub(crate) const COOKIE_LEN: usize = 16;

/// The time slot of a cookie: a cookie is valid in the slot it was made in and the next one.
pub(crate) const COOKIE_SLOT: Duration = Duration::from_secs(60);

/// Makes and checks the cookies of one node.
pub(crate) struct CookieKey {
    mac: Hmac<Sha256>,
    origin: Instant,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieKey").finish_non_exhaustive()
    }
}

impl CookieKey {
    /// A key from a fresh random secret; slots are counted from `origin`.
    pub(crate) fn random(origin: Instant) -> Self {
        let mut secret = [0u8; 64];
        rand::fill(&mut secret[..]);
        Self::from_secret(secret, origin)
    }

    fn from_secret(secret: [u8; 64], origin: Instant) -> Self {
        Self {
            mac: Hmac::<Sha256>::new(&secret.into()),
            origin,
        }
    }

    fn slot(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() / COOKIE_SLOT.as_secs()
    }

    /// The MAC over the slot and the address, before truncation.
    fn tagged(&self, addr: SocketAddr, slot: u64) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(&slot.to_be_bytes());
        match addr.ip() {
            IpAddr::V4(ip) => {
                mac.update(&[4]);
                mac.update(&ip.octets());
            }
            IpAddr::V6(ip) => {
                mac.update(&[6]);
                mac.update(&ip.octets());
            }
        }
        mac.update(&addr.port().to_be_bytes());
        mac
    }

    /// The cookie for `addr` at `now`.
    pub(crate) fn cookie(&self, addr: SocketAddr, now: Instant) -> [u8; COOKIE_LEN] {
        let full = self.tagged(addr, self.slot(now)).finalize().into_bytes();
        let mut out = [0u8; COOKIE_LEN];
        for (o, b) in out.iter_mut().zip(full) {
            *o = b;
        }
        out
    }

    /// True when `cookie` is one this key made for `addr` in the current slot or the one
    /// before. Compared in constant time.
    pub(crate) fn check(&self, addr: SocketAddr, cookie: &[u8], now: Instant) -> bool {
        if cookie.len() != COOKIE_LEN {
            return false;
        }
        let slot = self.slot(now);
        std::iter::once(slot)
            .chain(slot.checked_sub(1))
            .any(|s| self.tagged(addr, s).verify_truncated_left(cookie).is_ok())
    }
}

/// The limits of a [`VerifiedAddrs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VerifiedLimits {
    /// Addresses remembered at most; beyond, the one verified longest ago is forgotten.
    pub(crate) capacity: usize,
    /// How long a verification lasts.
    pub(crate) ttl: Duration,
}

/// Addresses that completed a cookie round trip, each until its verification expires. Bounded:
/// at capacity, the entry that expires first is forgotten (that address is challenged again
/// the next time; nothing worse).
///
/// A tree, not a hash map: it is looked up for nearly every datagram of a node without auth, and
/// comparing addresses costs less than hashing one with SipHash (a dozen comparisons at 4,096
/// entries, one or two for a node with a few peers), with no hash to flood.
#[derive(Debug)]
pub(crate) struct VerifiedAddrs {
    until: BTreeMap<SocketAddr, Instant>,
    by_expiry: BTreeSet<(Instant, SocketAddr)>,
    limits: VerifiedLimits,
}

impl VerifiedAddrs {
    pub(crate) fn new(limits: VerifiedLimits) -> Self {
        Self {
            until: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            limits,
        }
    }

    /// Forget the entries expired at `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, addr)) = self.by_expiry.first() {
            if at > now {
                break;
            }
            self.by_expiry.pop_first();
            self.until.remove(&addr);
        }
    }

    /// Record that `addr` proved at `now` that it receives: verified for the TTL from now.
    pub(crate) fn verify(&mut self, addr: SocketAddr, now: Instant) {
        self.expire(now);
        if self.limits.capacity == 0 {
            return;
        }
        let until = now + self.limits.ttl;
        if let Some(old) = self.until.insert(addr, until) {
            self.by_expiry.remove(&(old, addr));
        } else if self.until.len() > self.limits.capacity
            && let Some((_, gone)) = self.by_expiry.pop_first()
        {
            self.until.remove(&gone);
        }
        self.by_expiry.insert((until, addr));
    }

    /// True when `addr` is verified at `now`.
    pub(crate) fn is_verified(&self, addr: SocketAddr, now: Instant) -> bool {
        self.until.get(&addr).is_some_and(|until| *until > now)
    }

    /// Until when `addr` is verified, if it is at `now`.
    pub(crate) fn until(&self, addr: SocketAddr, now: Instant) -> Option<Instant> {
        self.until.get(&addr).copied().filter(|until| *until > now)
    }

    /// How long a verification lasts.
    pub(crate) fn ttl(&self) -> Duration {
        self.limits.ttl
    }

    /// How many addresses are remembered (expired ones included until the next `verify`).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn a_cookie_is_bound_to_its_address_and_lasts_one_to_two_slots() {
        let t0 = Instant::now();
        let key = CookieKey::from_secret([7; 64], t0);
        let c = key.cookie(addr(1), t0);
        assert!(key.check(addr(1), &c, t0));
        assert!(key.check(addr(1), &c, t0 + COOKIE_SLOT));
        assert!(key.check(addr(1), &c, t0 + COOKIE_SLOT * 2 - Duration::from_secs(1)));
        assert!(!key.check(addr(1), &c, t0 + COOKIE_SLOT * 2), "expired");
        // Another port, another IP, another family: another cookie.
        assert!(!key.check(addr(2), &c, t0));
        assert!(!key.check(SocketAddr::from(([192, 0, 2, 2], 1)), &c, t0));
        assert!(!key.check("[::ffff:192.0.2.1]:1".parse().unwrap(), &c, t0));
        // Another key (another node, or this one restarted) refuses it.
        assert!(!CookieKey::from_secret([8; 64], t0).check(addr(1), &c, t0));
        assert!(!CookieKey::random(t0).check(addr(1), &c, t0));
    }

    #[test]
    fn truncated_extended_or_altered_cookies_are_refused() {
        let t0 = Instant::now();
        let key = CookieKey::random(t0);
        let c = key.cookie(addr(1), t0);
        assert!(!key.check(addr(1), &c[..COOKIE_LEN - 1], t0));
        assert!(!key.check(addr(1), &c[..1], t0));
        assert!(!key.check(addr(1), &[], t0));
        let mut longer = c.to_vec();
        longer.push(0);
        assert!(!key.check(addr(1), &longer, t0));
        for i in 0..COOKIE_LEN {
            let mut bad = c;
            bad[i] ^= 1;
            assert!(!key.check(addr(1), &bad, t0), "byte {i} altered");
        }
    }

    fn verified(capacity: usize, ttl_secs: u64) -> VerifiedAddrs {
        VerifiedAddrs::new(VerifiedLimits {
            capacity,
            ttl: Duration::from_secs(ttl_secs),
        })
    }

    #[test]
    fn a_verification_lasts_its_ttl_and_is_renewed_by_another() {
        let t0 = Instant::now();
        let mut v = verified(8, 60);
        assert!(!v.is_verified(addr(1), t0));
        v.verify(addr(1), t0);
        assert!(v.is_verified(addr(1), t0 + Duration::from_secs(59)));
        assert!(!v.is_verified(addr(1), t0 + Duration::from_secs(60)));
        v.verify(addr(1), t0 + Duration::from_secs(30));
        assert!(v.is_verified(addr(1), t0 + Duration::from_secs(89)));
        assert_eq!(v.len(), 1);
        // Expired entries go at the next verification.
        v.verify(addr(2), t0 + Duration::from_secs(200));
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn until_says_when_a_verification_ends_while_it_lasts() {
        let t0 = Instant::now();
        let mut v = verified(8, 60);
        assert_eq!(v.ttl(), Duration::from_secs(60));
        assert_eq!(v.until(addr(1), t0), None);
        v.verify(addr(1), t0);
        let end = t0 + Duration::from_secs(60);
        assert_eq!(v.until(addr(1), t0 + Duration::from_secs(59)), Some(end));
        assert_eq!(v.until(addr(1), end), None);
    }

    #[test]
    fn at_capacity_the_entry_expiring_first_is_forgotten() {
        let t0 = Instant::now();
        let mut v = verified(3, 60);
        for p in 1..=3 {
            v.verify(addr(p), t0 + Duration::from_secs(u64::from(p)));
        }
        // Renewing one moves it to the back.
        v.verify(addr(1), t0 + Duration::from_secs(10));
        v.verify(addr(4), t0 + Duration::from_secs(11));
        let now = t0 + Duration::from_secs(11);
        assert_eq!(v.len(), 3);
        assert!(!v.is_verified(addr(2), now), "the oldest was forgotten");
        for p in [1, 3, 4] {
            assert!(v.is_verified(addr(p), now), "{p}");
        }
        let mut none = verified(0, 60);
        none.verify(addr(1), t0);
        assert!(!none.is_verified(addr(1), t0));
    }
}
