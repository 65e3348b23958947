//! [`CoreConfig`]: what the protocol core knows of its node (interfaces, addresses, mode) and its
//! bounds, each with a default.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::wire::DEFAULT_MAX_SIZE;

/// An address family GRASP runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv6, group `ff02::13` (the default).
    V6,
    /// IPv4, group `224.0.0.119`.
    V4,
}

/// One interface GRASP runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreInterface {
    /// Its index (the zone of its link-local addresses).
    pub index: u32,
    /// Its IPv6 link-local address, if it has one.
    pub link_local: Option<Ipv6Addr>,
    /// Its IPv4 address, if it has one.
    pub ipv4: Option<Ipv4Addr>,
}

/// The protocol core's configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CoreConfig {
    /// The interfaces.
    pub interfaces: Vec<CoreInterface>,
    /// The node's unique-local or global IPv6 address: its locators and its initiator field
    /// (`None`: link-local locators, and the first interface's link-local address as initiator).
    pub address: Option<Ipv6Addr>,
    /// Run on IPv6.
    pub ipv6: bool,
    /// Run on IPv4.
    pub ipv4: bool,
    /// DULL mode (RFC 8990 2.5.2): link-local only, loop count 1, no relaying, no divert.
    pub dull: bool,
    /// Relay discovery and floods between interfaces (`None`: when there are several).
    pub relay: Option<bool>,
    /// The largest unicast message accepted and sent (at least 2,048).
    pub max_unicast: usize,
    /// The largest multicast message accepted and sent.
    pub max_multicast: usize,
    /// Relays per second, on average, and at once.
    pub relay_rate: (u32, u32),
    /// Sessions active at once.
    pub max_sessions: usize,
    /// Discovery cache: objectives, locators per objective, bytes.
    pub discovery_cache: (usize, usize, usize),
    /// Flood cache: entries, bytes.
    pub flood_cache: (usize, usize),
    /// Relayed (session id, initiator) pairs remembered.
    pub relay_memory: usize,
    /// Discoveries pending at once (local and relayed).
    pub max_pending: usize,
    /// ASAs and objectives registered.
    pub registry: (usize, usize),
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            interfaces: Vec::new(),
            address: None,
            ipv6: true,
            ipv4: false,
            dull: false,
            relay: None,
            max_unicast: DEFAULT_MAX_SIZE,
            max_multicast: DEFAULT_MAX_SIZE,
            relay_rate: (20, 40),
            max_sessions: 1024,
            discovery_cache: (500, 16, 256 * 1024),
            flood_cache: (256, 256 * 1024),
            relay_memory: 4096,
            max_pending: 256,
            registry: (100, 200),
        }
    }
}

impl CoreConfig {
    /// True when this node relays between its interfaces.
    pub fn relaying(&self) -> bool {
        !self.dull && self.relay.unwrap_or(self.interfaces.len() > 1)
    }
}

/// The default timeout, `GRASP_DEF_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(60_000);

/// What the RFC suggests per loop count for a discovery's timeout.
pub const DISCOVERY_TIMEOUT_UNIT: Duration = Duration::from_millis(100);

/// An address that only has meaning on one link: IPv6 `fe80::/10` or IPv4 `169.254.0.0/16`.
pub fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V6(v6) => crate::wire::is_link_local_v6(&v6),
        IpAddr::V4(v4) => v4.is_link_local(),
    }
}
