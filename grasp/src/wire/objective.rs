//! [`Objective`] (RFC 8990 section 2.10) and [`Locator`] (section 2.9.5).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Value;

/// `IPPROTO_TCP`, the transport protocol number of a locator reached over TCP.
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`, the transport protocol number of a locator reached over UDP.
pub const IPPROTO_UDP: u8 = 17;

/// The default loop count, `GRASP_DEF_LOOPCT`.
pub const DEFAULT_LOOP_COUNT: u8 = 6;

/// An objective's flag bits (`objective-flags = uint .bits objective-flag`). Bits GRASP does not
/// define are kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u64);

impl Flags {
    /// `F_DISC` (bit 0): valid for discovery.
    pub const DISC: Flags = Flags(1);
    /// `F_NEG` (bit 1): valid for negotiation.
    pub const NEG: Flags = Flags(1 << 1);
    /// `F_SYNCH` (bit 2): valid for synchronization.
    pub const SYNCH: Flags = Flags(1 << 2);
    /// `F_NEG_DRY` (bit 3): the negotiation is a dry run.
    pub const NEG_DRY: Flags = Flags(1 << 3);

    /// True when every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with `other`'s bits set (`on`) or cleared.
    #[must_use]
    pub fn with(self, other: Flags, on: bool) -> Flags {
        if on {
            Flags(self.0 | other.0)
        } else {
            Flags(self.0 & !other.0)
        }
    }
}

/// A GRASP objective: `[objective-name, objective-flags, loop-count, ?objective-value]`.
///
/// ```
/// use netaio_grasp::{Objective, Value};
///
/// let ex3 = Objective::new("EX3").neg(true).loop_count(8).value(vec![Value::from("NZD"), Value::from(150)]);
/// assert!(ex3.is_neg() && !ex3.is_synch());
/// assert_eq!(ex3.loop_count, 8);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// Its name, compared byte by byte. Privately defined names contain a colon
    /// (`"example.com:EX1"`); the examples of RFC 8990 use `"EX1"` and the like.
    pub name: String,
    /// Its flags.
    pub flags: Flags,
    /// Its loop count, decremented at each relay (discovery, flood) or negotiation step.
    pub loop_count: u8,
    /// Its value: absent on the wire when `None` (a discovery), else any CBOR item.
    pub value: Option<Value>,
}

impl Objective {
    /// An objective valid for discovery only (`F_DISC`), with the default loop count and no
    /// value.
    pub fn new(name: impl Into<String>) -> Objective {
        Objective {
            name: name.into(),
            flags: Flags::DISC,
            loop_count: DEFAULT_LOOP_COUNT,
            value: None,
        }
    }

    /// Valid for negotiation (`F_NEG`) or not.
    #[must_use]
    pub fn neg(mut self, on: bool) -> Objective {
        self.flags = self.flags.with(Flags::NEG, on);
        self
    }

    /// Valid for synchronization (`F_SYNCH`) or not.
    #[must_use]
    pub fn synch(mut self, on: bool) -> Objective {
        self.flags = self.flags.with(Flags::SYNCH, on);
        self
    }

    /// A dry-run negotiation (`F_NEG_DRY`) or not.
    #[must_use]
    pub fn dry(mut self, on: bool) -> Objective {
        self.flags = self.flags.with(Flags::NEG_DRY, on);
        self
    }

    /// Valid for discovery (`F_DISC`) or not.
    #[must_use]
    pub fn disc(mut self, on: bool) -> Objective {
        self.flags = self.flags.with(Flags::DISC, on);
        self
    }

    /// With this loop count.
    #[must_use]
    pub fn loop_count(mut self, n: u8) -> Objective {
        self.loop_count = n;
        self
    }

    /// With this value.
    #[must_use]
    pub fn value(mut self, v: impl Into<Value>) -> Objective {
        self.value = Some(v.into());
        self
    }

    /// `F_NEG` is set.
    pub fn is_neg(&self) -> bool {
        self.flags.contains(Flags::NEG)
    }

    /// `F_SYNCH` is set.
    pub fn is_synch(&self) -> bool {
        self.flags.contains(Flags::SYNCH)
    }

    /// `F_NEG_DRY` is set.
    pub fn is_dry(&self) -> bool {
        self.flags.contains(Flags::NEG_DRY)
    }

    /// `F_DISC` is set.
    pub fn is_disc(&self) -> bool {
        self.flags.contains(Flags::DISC)
    }
}

/// A locator option: where an ASA (or a flooded objective's source) is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Locator {
    /// `[O_IPv6_LOCATOR, ipv6-address, transport-proto, port-number]`.
    Ipv6 {
        /// The address.
        addr: Ipv6Addr,
        /// The transport protocol number ([`IPPROTO_TCP`] or [`IPPROTO_UDP`]).
        protocol: u8,
        /// The port.
        port: u16,
    },
    /// `[O_IPv4_LOCATOR, ipv4-address, transport-proto, port-number]`.
    Ipv4 {
        /// The address.
        addr: Ipv4Addr,
        /// The transport protocol number.
        protocol: u8,
        /// The port.
        port: u16,
    },
    /// `[O_FQDN_LOCATOR, text, transport-proto, port-number]`.
    Fqdn {
        /// The fully qualified domain name.
        name: String,
        /// The transport protocol number.
        protocol: u8,
        /// The port.
        port: u16,
    },
    /// `[O_URI_LOCATOR, text, transport-proto / null, port-number / null]`.
    Uri {
        /// The URI.
        uri: String,
        /// The transport protocol number, if given.
        protocol: Option<u8>,
        /// The port, if given.
        port: Option<u16>,
    },
}

impl Locator {
    /// A TCP locator for `addr` (IPv6 or IPv4 by its family).
    pub fn tcp(addr: SocketAddr) -> Locator {
        match addr {
            SocketAddr::V6(a) => Locator::Ipv6 {
                addr: *a.ip(),
                protocol: IPPROTO_TCP,
                port: a.port(),
            },
            SocketAddr::V4(a) => Locator::Ipv4 {
                addr: *a.ip(),
                protocol: IPPROTO_TCP,
                port: a.port(),
            },
        }
    }

    /// The IP socket address of an IPv6 or IPv4 locator (an IPv6 link-local one without its
    /// zone, which only the receiving interface can tell).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Locator::Ipv6 { addr, port, .. } => Some(SocketAddr::from((*addr, *port))),
            Locator::Ipv4 { addr, port, .. } => Some(SocketAddr::from((*addr, *port))),
            Locator::Fqdn { .. } | Locator::Uri { .. } => None,
        }
    }

    /// Its transport protocol number, if given.
    pub fn protocol(&self) -> Option<u8> {
        match self {
            Locator::Ipv6 { protocol, .. }
            | Locator::Ipv4 { protocol, .. }
            | Locator::Fqdn { protocol, .. } => Some(*protocol),
            Locator::Uri { protocol, .. } => *protocol,
        }
    }

    /// An IPv6 link-local address (`fe80::/10`), meaningful on one link only.
    pub fn is_link_local(&self) -> bool {
        matches!(self, Locator::Ipv6 { addr, .. } if is_link_local_v6(addr))
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = |p: Option<u8>| match p {
            Some(IPPROTO_TCP) => "tcp".to_owned(),
            Some(IPPROTO_UDP) => "udp".to_owned(),
            Some(n) => format!("proto {n}"),
            None => "-".to_owned(),
        };
        match self {
            Locator::Ipv6 {
                addr,
                protocol,
                port,
            } => write!(f, "[{addr}]:{port}/{}", proto(Some(*protocol))),
            Locator::Ipv4 {
                addr,
                protocol,
                port,
            } => write!(f, "{addr}:{port}/{}", proto(Some(*protocol))),
            Locator::Fqdn {
                name,
                protocol,
                port,
            } => write!(f, "{name}:{port}/{}", proto(Some(*protocol))),
            Locator::Uri { uri, protocol, .. } => write!(f, "{uri} ({})", proto(*protocol)),
        }
    }
}

/// `fe80::/10`.
pub(crate) fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    a.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80)
}
