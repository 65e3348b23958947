//! [`Recency`]: the peers of a [`PeerTable`](super::PeerTable) in the order they were last heard,
//! in all and per source IP: the order in which they expire, and in which they are evicted to
//! make room for a new peer.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Peer;

/// The source a peer counts under for the per-IP share: the IP address of its latest address,
/// for IPv6 its /64 (one host, or one site's subnet, gets many addresses of one /64).
pub(super) fn source_ip(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V4(ip) => IpAddr::V4(ip),
        IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from(u128::from(ip) & !u128::from(u64::MAX))),
    }
}

/// Peer ids by when they were last heard, least recent first, in all and per source IP.
#[derive(Debug, Default)]
pub(super) struct Recency {
    by_age: BTreeSet<(Instant, Bytes)>,
    by_ip: HashMap<IpAddr, BTreeSet<(Instant, Bytes)>>,
}

impl Recency {
    /// Where a peer sits (a peer in a table always has a last-seen time and an address).
    fn key(p: &Peer) -> Option<((Instant, Bytes), IpAddr)> {
        Some(((p.last_seen?, p.id.clone()), source_ip(*p.addrs.first()?)))
    }

    /// Add `p` as it is now (its last-seen time, its latest address).
    pub(super) fn insert(&mut self, p: &Peer) {
        if let Some((key, ip)) = Self::key(p) {
            self.by_age.insert(key.clone());
            self.by_ip.entry(ip).or_default().insert(key);
        }
    }

    /// Remove `p` as it was added.
    pub(super) fn remove(&mut self, p: &Peer) {
        let Some((key, ip)) = Self::key(p) else {
            return;
        };
        self.by_age.remove(&key);
        if let Some(set) = self.by_ip.get_mut(&ip) {
            set.remove(&key);
            if set.is_empty() {
                self.by_ip.remove(&ip);
            }
        }
    }

    /// The least recently heard peer.
    pub(super) fn oldest(&self) -> Option<&Bytes> {
        self.by_age.first().map(|(_, id)| id)
    }

    /// The least recently heard peer of `addr`'s source IP, if that IP has `share` peers or more.
    pub(super) fn oldest_of_full_ip(&self, addr: SocketAddr, share: usize) -> Option<&Bytes> {
        let set = self.by_ip.get(&source_ip(addr))?;
        if set.len() < share {
            return None;
        }
        set.first().map(|(_, id)| id)
    }

    /// When the least recently heard peer was heard.
    pub(super) fn first_seen(&self) -> Option<Instant> {
        self.by_age.first().map(|(seen, _)| *seen)
    }

    /// The peers heard longer than `timeout` before `now`, least recent first.
    pub(super) fn silent_since(&self, now: Instant, timeout: Duration) -> Vec<Bytes> {
        self.by_age
            .iter()
            .take_while(|(seen, _)| now.saturating_duration_since(*seen) > timeout)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, addr: &str, seen: Instant) -> Peer {
        let mut p = Peer::new(id.to_owned()).with_addr(addr.parse().unwrap());
        p.last_seen = Some(seen);
        p
    }

    #[test]
    fn least_recently_heard_first_in_all_and_per_ip() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut r = Recency::default();
        let a = peer("a", "10.0.0.1:1", t0 + s);
        let b = peer("b", "10.0.0.2:1", t0);
        let c = peer("c", "10.0.0.1:2", t0 + s * 2);
        for p in [&a, &b, &c] {
            r.insert(p);
        }
        assert_eq!(r.oldest().unwrap(), "b");
        assert_eq!(r.first_seen(), Some(t0));
        let from_1 = "10.0.0.1:9".parse().unwrap();
        assert_eq!(r.oldest_of_full_ip(from_1, 2).unwrap(), "a");
        assert_eq!(r.oldest_of_full_ip(from_1, 3), None, "below its share");
        assert_eq!(
            r.silent_since(t0 + s * 3, Duration::from_millis(1500)),
            [Bytes::from("b"), Bytes::from("a")]
        );
        r.remove(&b);
        r.remove(&a);
        assert_eq!(r.oldest().unwrap(), "c");
        assert_eq!(r.oldest_of_full_ip(from_1, 1).unwrap(), "c");
        r.remove(&c);
        assert!(r.oldest().is_none() && r.by_ip.is_empty());
    }

    #[test]
    fn an_ipv6_source_is_its_slash_64() {
        let ip = |s: &str| source_ip(s.parse().unwrap());
        assert_eq!(ip("[2001:db8::1]:1"), ip("[2001:db8::ffff:2]:2"));
        assert_ne!(ip("[2001:db8::1]:1"), ip("[2001:db8:0:1::1]:1"));
        assert_ne!(ip("10.0.0.1:1"), ip("10.0.0.2:1"));
        assert_eq!(ip("10.0.0.1:1"), ip("10.0.0.1:2"));
    }
}
