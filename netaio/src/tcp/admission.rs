//! Which connections a server takes and which it lets go to make room: the connection limit, the
//! per-source limit, and eviction when full. I/O-free: the registry asks [`Admission::admit`]
//! under its lock and acts on the answer.
//!
//! The rules, in order, for a new connection from source `s` (an IPv4 address, or the /64 prefix
//! of an IPv6 address, which one host usually holds whole):
//!
//! 1. `s` already has `max_per_source` connections: the oldest of them that has not
//!    authenticated yet is evicted for it; if all of them have, the new one is refused (a
//!    source cannot take the slots of others, nor its own authenticated ones).
//! 2. Below `max_connections`: accepted.
//! 3. Full: the oldest connection that has not authenticated is evicted for it; if every one
//!    has, the one idle the longest (no valid traffic for the longest time).
//!
//! Unauthenticated connections go first because a peer without the key can open them at will;
//! the newest are kept because a legitimate client authenticates with its first frame, within a
//! round trip of connecting, while a slot held for its own sake has been so the longest. An
//! attacker can therefore only ever displace connections that are themselves unauthenticated,
//! or (when every slot is authenticated) the longest idle one, once per connection it opens.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::ConnectionId;

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Room: take it.
    Accept,
    /// Close this connection, then take the new one.
    Evict(ConnectionId),
    /// Refuse it (its source holds its limit in authenticated connections, or the limits are
    /// zero).
    Refuse,
}

/// The connections of one source.
#[derive(Debug, Default)]
struct Source {
    count: usize,
    unauthenticated: BTreeSet<ConnectionId>,
}

/// The open connections as the admission rules see them.
#[derive(Debug)]
pub(crate) struct Admission {
    max_connections: usize,
    max_per_source: usize,
    count: usize,
    sources: HashMap<IpAddr, Source>,
    /// Connections that have not presented a valid frame yet, oldest (lowest id) first.
    unauthenticated: BTreeSet<ConnectionId>,
}

/// The source a connection from `ip` counts against: the IPv4 address (an IPv4-mapped IPv6
/// address is its IPv4 address), or the /64 prefix of an IPv6 address.
pub(crate) fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

impl Admission {
    pub(crate) fn new(max_connections: usize, max_per_source: usize) -> Self {
        Self {
            max_connections,
            max_per_source,
            count: 0,
            sources: HashMap::new(),
            unauthenticated: BTreeSet::new(),
        }
    }

    /// What to do with a new connection from `source`; `longest_idle` finds the open connection
    /// idle the longest (asked only when every open connection has authenticated).
    pub(crate) fn admit(
        &self,
        source: IpAddr,
        longest_idle: impl FnOnce() -> Option<ConnectionId>,
    ) -> Admit {
        if let Some(s) = self.sources.get(&source)
            && s.count >= self.max_per_source
        {
            return s
                .unauthenticated
                .first()
                .map_or(Admit::Refuse, |id| Admit::Evict(*id));
        }
        if self.max_per_source == 0 {
            return Admit::Refuse;
        }
        if self.count < self.max_connections {
            return Admit::Accept;
        }
        if let Some(id) = self.unauthenticated.first() {
            return Admit::Evict(*id);
        }
        longest_idle().map_or(Admit::Refuse, Admit::Evict)
    }

    /// A connection was taken (not yet authenticated).
    pub(crate) fn insert(&mut self, id: ConnectionId, source: IpAddr) {
        let s = self.sources.entry(source).or_default();
        s.count += 1;
        s.unauthenticated.insert(id);
        self.unauthenticated.insert(id);
        self.count += 1;
    }

    /// A connection presented its first valid frame.
    pub(crate) fn authenticated(&mut self, id: ConnectionId, source: IpAddr) {
        if self.unauthenticated.remove(&id)
            && let Some(s) = self.sources.get_mut(&source)
        {
            s.unauthenticated.remove(&id);
        }
    }

    /// Whether `id` has presented a valid frame.
    pub(crate) fn is_authenticated(&self, id: ConnectionId) -> bool {
        !self.unauthenticated.contains(&id)
    }

    /// A connection left (call once per [`Admission::insert`]).
    pub(crate) fn remove(&mut self, id: ConnectionId, source: IpAddr) {
        self.unauthenticated.remove(&id);
        if let Some(s) = self.sources.get_mut(&source) {
            s.unauthenticated.remove(&id);
            s.count = s.count.saturating_sub(1);
            if s.count == 0 {
                self.sources.remove(&source);
            }
        }
        self.count = self.count.saturating_sub(1);
    }

    /// How many sources have connections (for tests).
    #[cfg(test)]
    fn source_count(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn id(n: u64) -> ConnectionId {
        ConnectionId(n)
    }

    const NONE_IDLE: fn() -> Option<ConnectionId> = || None;

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        assert_eq!(source_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            source_of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            source_of(ip("2001:db8:1:2::9"))
        );
        assert_ne!(source_of(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(source_of(ip("::1")), ip("::"));
    }

    #[test]
    fn below_the_limits_every_connection_is_accepted() {
        let mut a = Admission::new(3, 2);
        assert_eq!(a.admit(ip("10.0.0.1"), NONE_IDLE), Admit::Accept);
        a.insert(id(1), ip("10.0.0.1"));
        assert_eq!(a.admit(ip("10.0.0.2"), NONE_IDLE), Admit::Accept);
        a.insert(id(2), ip("10.0.0.2"));
        assert_eq!(a.admit(ip("10.0.0.1"), NONE_IDLE), Admit::Accept);
    }

    #[test]
    fn a_full_server_evicts_the_oldest_unauthenticated_connection() {
        let mut a = Admission::new(3, 10);
        for n in 1..=3 {
            a.insert(id(n), ip(&format!("10.0.0.{n}")));
        }
        a.authenticated(id(1), ip("10.0.0.1"));
        let never = || -> Option<ConnectionId> { panic!("an unauthenticated one exists") };
        assert_eq!(a.admit(ip("10.0.0.9"), never), Admit::Evict(id(2)));
        a.remove(id(2), ip("10.0.0.2"));
        a.insert(id(4), ip("10.0.0.9"));
        // The newest unauthenticated connection is kept over an older one.
        assert_eq!(a.admit(ip("10.0.0.8"), never), Admit::Evict(id(3)));
    }

    #[test]
    fn a_full_server_of_authenticated_connections_evicts_the_longest_idle() {
        let mut a = Admission::new(2, 10);
        a.insert(id(1), ip("10.0.0.1"));
        a.insert(id(2), ip("10.0.0.2"));
        a.authenticated(id(1), ip("10.0.0.1"));
        a.authenticated(id(2), ip("10.0.0.2"));
        assert!(a.is_authenticated(id(1)) && a.is_authenticated(id(2)));
        assert_eq!(a.admit(ip("10.0.0.3"), || Some(id(2))), Admit::Evict(id(2)));
        // Nothing to evict at all (a limit of zero): refused.
        assert_eq!(
            Admission::new(0, 10).admit(ip("10.0.0.3"), NONE_IDLE),
            Admit::Refuse
        );
    }

    #[test]
    fn a_source_at_its_limit_evicts_its_own_unauthenticated_or_is_refused() {
        let mut a = Admission::new(100, 2);
        a.insert(id(1), ip("10.0.0.1"));
        a.insert(id(2), ip("10.0.0.1"));
        a.insert(id(3), ip("10.0.0.2"));
        // Another source's unauthenticated connection (3, the oldest but for 1 and 2) is not
        // touched: the source's own oldest is.
        assert_eq!(a.admit(ip("10.0.0.1"), NONE_IDLE), Admit::Evict(id(1)));
        a.authenticated(id(1), ip("10.0.0.1"));
        assert_eq!(a.admit(ip("10.0.0.1"), NONE_IDLE), Admit::Evict(id(2)));
        a.authenticated(id(2), ip("10.0.0.1"));
        // Both authenticated: refused, even though the server has room.
        assert_eq!(a.admit(ip("10.0.0.1"), NONE_IDLE), Admit::Refuse);
        // Other sources are unaffected.
        assert_eq!(a.admit(ip("10.0.0.2"), NONE_IDLE), Admit::Accept);
        // A connection of the source leaves: room again.
        a.remove(id(1), ip("10.0.0.1"));
        assert_eq!(a.admit(ip("10.0.0.1"), NONE_IDLE), Admit::Accept);
    }

    #[test]
    fn an_ipv6_host_counts_as_one_source_whatever_address_of_its_64_it_uses() {
        let mut a = Admission::new(100, 2);
        a.insert(id(1), source_of(ip("2001:db8::1")));
        a.insert(id(2), source_of(ip("2001:db8::2")));
        assert_eq!(
            a.admit(source_of(ip("2001:db8::abcd")), NONE_IDLE),
            Admit::Evict(id(1))
        );
        assert_eq!(
            a.admit(source_of(ip("2001:db8:0:1::1")), NONE_IDLE),
            Admit::Accept
        );
    }

    #[test]
    fn removal_forgets_the_connection_and_empty_sources() {
        let mut a = Admission::new(2, 2);
        a.insert(id(1), ip("10.0.0.1"));
        a.insert(id(2), ip("10.0.0.2"));
        a.authenticated(id(2), ip("10.0.0.2"));
        a.remove(id(1), ip("10.0.0.1"));
        a.remove(id(2), ip("10.0.0.2"));
        assert_eq!(a.source_count(), 0);
        assert_eq!(a.admit(ip("10.0.0.3"), NONE_IDLE), Admit::Accept);
        // Authenticating a connection that already left changes nothing.
        a.authenticated(id(1), ip("10.0.0.1"));
        assert_eq!(a.source_count(), 0);
    }
}
