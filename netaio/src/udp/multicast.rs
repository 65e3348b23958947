//! Multicast for [`UdpNode`](super::UdpNode): [`MulticastConfig`], joining the group on the chosen
//! interfaces, and sending one datagram to the group on each of them.
//!
//! Layout (as libp2p's mDNS does it, minus the per-interface sockets): the node's own socket sends
//! to the group, so every advert's source address is the node's unicast address and the unicast
//! `PEER_DISCOVERED` replies reach it. A second socket, bound to the group port with
//! `SO_REUSEADDR` + `SO_REUSEPORT`, receives the group's datagrams, so several nodes on one host
//! share the group port while each keeps its own unicast port. (When the node itself is bound to
//! the wildcard address on the group port, as Python's node is, its own socket joins and receives
//! instead.) Sends to the group are serialized: each sets `IP_MULTICAST_IF` /
//! `IPV6_MULTICAST_IF` for its interface, then sends.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::interfaces::{Interface, interfaces};
use super::socket::{BufferSizes, set_buffers};
use crate::error::MulticastError;

/// Which interfaces a node joins its multicast group on, and sends to the group on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MulticastInterface {
    /// Every interface that can carry the group (the default). For a node bound to a specific
    /// address: the interface holding that address (even `lo`, whose IPv4 multicast works when
    /// chosen explicitly). For a node bound to the wildcard address: every interface that is up,
    /// multicast-capable and not loopback (with an IPv4 address, for an IPv4 group). When the
    /// interfaces cannot be listed (outside Linux), the kernel's default interface.
    #[default]
    All,
    /// The interface with this index.
    Index(u32),
    /// The interface with this name (`eth0`).
    Name(String),
    /// The interface holding this address.
    Addr(IpAddr),
}

/// A node's multicast group, port and socket options; see
/// [`UdpNodeBuilder::multicast`](super::UdpNodeBuilder::multicast).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`group`](Self::group) (IPv4) | [`DEFAULT_GROUP_V4`](Self::DEFAULT_GROUP_V4) `239.255.110.97` | organization-local scope (RFC 2365): never routed off the site, unlike a global group, and not the all-hosts group `224.0.0.1` that Python uses (every host on the link receives that one, netaio or not) |
/// | [`group`](Self::group) (IPv6) | [`DEFAULT_GROUP_V6`](Self::DEFAULT_GROUP_V6) `ff02::6e61:696f` | link-local scope, joined by interface index; the low bits spell "naio" |
/// | [`port`](Self::port) | [`DEFAULT_PORT`](Self::DEFAULT_PORT) 8889 | a port of its own, next to the node's default 8888, so that many nodes on one host share it |
/// | [`interface`](Self::interface) | [`MulticastInterface::All`] | see there |
/// | [`ttl`](Self::ttl) (TTL / hop limit) | 1 | the local link only |
/// | [`loopback`](Self::loopback) | on | nodes on the same host find each other |
///
/// The group's family must match the node's address family; left unset, the default group of
/// the node's family is used. `MulticastConfig::python()` (with the `python-compat` feature) is
/// the Python library's setup (all-hosts group `224.0.0.1` on the node's own port), for mixed
/// networks.
///
/// Setters take the plain names and consume the config; the getters are `get_`-prefixed
/// ([`get_port`](Self::get_port), …).
///
/// ```
/// use std::net::Ipv4Addr;
/// use netaio::udp::{MulticastConfig, MulticastInterface};
///
/// let lan = MulticastConfig::default()
///     .group(Ipv4Addr::new(239, 255, 0, 42).into())
///     .port(7400)
///     .interface(MulticastInterface::Name("eth0".into()))
///     .ttl(1);
/// assert_eq!(lan.get_port(), Some(7400));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastConfig {
    group: Option<IpAddr>,
    port: Option<u16>,
    interface: MulticastInterface,
    ttl: u32,
    loopback: bool,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        Self {
            group: None,
            port: Some(Self::DEFAULT_PORT),
            interface: MulticastInterface::All,
            ttl: 1,
            loopback: true,
        }
    }
}

impl MulticastConfig {
    /// The default IPv4 group: `239.255.110.97`, organization-local scope.
    pub const DEFAULT_GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 110, 97);
    /// The default IPv6 group: `ff02::6e61:696f`, link-local scope.
    pub const DEFAULT_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0x6e61, 0x696f);
    /// The default group port: 8889.
    pub const DEFAULT_PORT: u16 = 8889;
    /// Python netaio's group: `224.0.0.1`, the all-hosts group.
    #[cfg(feature = "python-compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "python-compat")))]
    pub const PYTHON_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);

    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Python netaio's setup: group `224.0.0.1` on the node's own port. Use it only to discover
    /// Python nodes; the all-hosts group reaches every host on the link.
    /// [`UdpNodeBuilder::python_compat`](super::UdpNodeBuilder::python_compat) sets it.
    ///
    /// ```
    /// use netaio::udp::MulticastConfig;
    ///
    /// let python = MulticastConfig::python();
    /// assert_eq!(python.get_group(), Some(MulticastConfig::PYTHON_GROUP.into()));
    /// assert_eq!(python.get_port(), None); // the node's own port
    /// ```
    #[cfg(feature = "python-compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "python-compat")))]
    pub fn python() -> Self {
        Self {
            group: Some(IpAddr::V4(Self::PYTHON_GROUP)),
            port: None,
            ..Self::default()
        }
    }

    /// The group address, a multicast address of the node's family (default: unset, meaning
    /// [`DEFAULT_GROUP_V4`](Self::DEFAULT_GROUP_V4) or [`DEFAULT_GROUP_V6`](Self::DEFAULT_GROUP_V6)
    /// after the node's family).
    #[must_use]
    pub fn group(mut self, group: IpAddr) -> Self {
        self.group = Some(group);
        self
    }

    /// The group port (default [`DEFAULT_PORT`](Self::DEFAULT_PORT), 8889).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Use the node's own port as the group port, as Python does (default: off, the group port is
    /// [`DEFAULT_PORT`](Self::DEFAULT_PORT)); undone by [`port`](Self::port).
    #[must_use]
    pub fn node_port(mut self) -> Self {
        self.port = None;
        self
    }

    /// The interfaces to join and send on (default [`MulticastInterface::All`]).
    #[must_use]
    pub fn interface(mut self, interface: MulticastInterface) -> Self {
        self.interface = interface;
        self
    }

    /// The TTL (IPv4) or hop limit (IPv6) of datagrams sent to the group (default 1).
    #[must_use]
    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// Whether the host's own sockets receive what it sends to the group (default on).
    #[must_use]
    pub fn loopback(mut self, on: bool) -> Self {
        self.loopback = on;
        self
    }

    /// The group set with [`group`](Self::group), if any (otherwise the default of the node's
    /// family is used).
    pub fn get_group(&self) -> Option<IpAddr> {
        self.group
    }

    /// The group port set with [`port`](Self::port); `None` means the node's own port
    /// ([`node_port`](Self::node_port)).
    pub fn get_port(&self) -> Option<u16> {
        self.port
    }

    /// The interface choice set with [`interface`](Self::interface).
    pub fn get_interface(&self) -> &MulticastInterface {
        &self.interface
    }

    /// The TTL / hop limit set with [`ttl`](Self::ttl).
    pub fn get_ttl(&self) -> u32 {
        self.ttl
    }

    /// Whether loopback is on (see [`loopback`](Self::loopback)).
    pub fn get_loopback(&self) -> bool {
        self.loopback
    }
}

/// One interface the group is joined and sent on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// 0: the kernel's default interface.
    index: u32,
    name: String,
    /// IPv4: the address that selects the interface for sending (`IP_MULTICAST_IF`).
    v4_if: Option<Ipv4Addr>,
    /// The group address with the interface as scope (IPv6).
    dest: SocketAddr,
}

/// A node's joined group: the receiving socket (unless the node's own socket receives) and the
/// interfaces to send on.
pub(crate) struct Multicast {
    pub(crate) recv: Option<Arc<UdpSocket>>,
    group: SocketAddr,
    targets: Vec<Target>,
    send_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Multicast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multicast")
            .field("group", &self.group)
            .field(
                "interfaces",
                &self.targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn target(iface: &Interface, group: IpAddr, port: u16, bound: IpAddr) -> Option<Target> {
    let (v4_if, dest) = match group {
        IpAddr::V4(g) => {
            let v4_if = match bound {
                IpAddr::V4(b) if !b.is_unspecified() => Some(b),
                _ => iface.ipv4(),
            };
            (Some(v4_if?), SocketAddr::V4(SocketAddrV4::new(g, port)))
        }
        IpAddr::V6(g) => (
            None,
            SocketAddr::V6(SocketAddrV6::new(g, port, 0, iface.index)),
        ),
    };
    Some(Target {
        index: iface.index,
        name: iface.name.clone(),
        v4_if,
        dest,
    })
}

fn default_target(group: IpAddr, port: u16, bound: IpAddr) -> Target {
    Target {
        index: 0,
        name: "the default interface".into(),
        v4_if: match bound {
            IpAddr::V4(b) if !b.is_unspecified() => Some(b),
            _ => None,
        },
        dest: SocketAddr::new(group, port),
    }
}

/// The interfaces to use for `choice`.
fn resolve(
    choice: &MulticastInterface,
    group: IpAddr,
    port: u16,
    bound: IpAddr,
) -> Result<Vec<Target>, MulticastError> {
    let listed = interfaces();
    let list = match (&listed, choice) {
        (Ok(list), _) => list.as_slice(),
        (Err(e), MulticastInterface::All) => {
            tracing::warn!(error = %e, "cannot list interfaces: using the default multicast interface");
            return Ok(vec![default_target(group, port, bound)]);
        }
        (Err(_), MulticastInterface::Addr(IpAddr::V4(a))) if group.is_ipv4() => {
            let mut t = default_target(group, port, IpAddr::V4(*a));
            t.name = a.to_string();
            return Ok(vec![t]);
        }
        (Err(e), _) => {
            return Err(MulticastError::Interfaces {
                interface: format!("{choice:?}"),
                source: io::Error::new(e.kind(), e.to_string()),
            });
        }
    };
    let chosen: Vec<&Interface> = match choice {
        MulticastInterface::All if !bound.is_unspecified() => {
            let holding: Vec<_> = list.iter().filter(|i| i.has(bound)).collect();
            if holding.is_empty() {
                return Err(MulticastError::NoInterfaceHolds(bound));
            }
            holding
        }
        MulticastInterface::All => {
            let usable: Vec<_> = list
                .iter()
                .filter(|i| i.up && i.multicast && !i.loopback)
                .filter(|i| group.is_ipv6() || i.ipv4().is_some())
                .collect();
            if usable.is_empty() {
                tracing::warn!("no multicast-capable interface found: using the default one");
                return Ok(vec![default_target(group, port, bound)]);
            }
            usable
        }
        MulticastInterface::Index(n) => list.iter().filter(|i| i.index == *n).collect(),
        MulticastInterface::Name(n) => list.iter().filter(|i| i.name == *n).collect(),
        MulticastInterface::Addr(a) => list.iter().filter(|i| i.has(*a)).collect(),
    };
    let targets: Vec<Target> = chosen
        .into_iter()
        .filter_map(|i| target(i, group, port, bound))
        .collect();
    if targets.is_empty() {
        return Err(MulticastError::NoInterfaceMatches {
            interface: format!("{choice:?}"),
            group,
        });
    }
    Ok(targets)
}

fn join(sock: &Socket, group: IpAddr, t: &Target) -> io::Result<()> {
    match group {
        IpAddr::V4(g) => {
            #[cfg(target_os = "linux")]
            if t.index != 0 {
                return sock
                    .join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(t.index));
            }
            sock.join_multicast_v4(&g, &t.v4_if.unwrap_or(Ipv4Addr::UNSPECIFIED))
        }
        IpAddr::V6(g) => sock.join_multicast_v6(&g, t.index),
    }
}

/// The socket that receives the group's datagrams when the node's own socket does not. It is
/// given the node's receive buffer size (a burst to the group overflows it as one to the node
/// would); not its send buffer size, as it never sends.
fn group_socket(group: IpAddr, port: u16, buffers: BufferSizes) -> io::Result<Socket> {
    let bind = match group {
        // Bound to the group itself, the socket gets only the group's datagrams, not unicast to
        // the port. Windows refuses to bind a multicast address.
        #[cfg(unix)]
        IpAddr::V4(g) => SocketAddr::new(IpAddr::V4(g), port),
        #[cfg(not(unix))]
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        // Binding a link-local IPv6 group would tie the socket to one interface.
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    };
    let sock = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    #[cfg(unix)]
    sock.set_reuse_port(true)?;
    if group.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // Only the groups this socket joined, not every group any socket on the host joined.
    #[cfg(target_os = "linux")]
    {
        let all = match group {
            IpAddr::V4(_) => sock.set_multicast_all_v4(false),
            IpAddr::V6(_) => sock.set_multicast_all_v6(false),
        };
        if let Err(e) = all {
            tracing::debug!(error = %e, "cannot clear IP(V6)_MULTICAST_ALL");
        }
    }
    let recv_only = BufferSizes {
        recv: buffers.recv,
        send: None,
    };
    set_buffers(&sock, recv_only, bind);
    sock.set_nonblocking(true)?;
    sock.bind(&bind.into())?;
    Ok(sock)
}

impl Multicast {
    /// Join the group for a node whose socket is `main`, bound to `local`; a receiving socket of
    /// the group's own gets the receive buffer size in `buffers`.
    pub(crate) fn setup(
        config: &MulticastConfig,
        main: &UdpSocket,
        local: SocketAddr,
        buffers: BufferSizes,
    ) -> Result<Self, MulticastError> {
        let group = match (config.group, local) {
            (Some(g), _) => g,
            (None, SocketAddr::V4(_)) => IpAddr::V4(MulticastConfig::DEFAULT_GROUP_V4),
            (None, SocketAddr::V6(_)) => IpAddr::V6(MulticastConfig::DEFAULT_GROUP_V6),
        };
        if !group.is_multicast() {
            return Err(MulticastError::NotMulticast(group));
        }
        if group.is_ipv4() != local.is_ipv4() {
            return Err(MulticastError::FamilyMismatch { group, local });
        }
        let port = config.port.unwrap_or(local.port());
        let targets = resolve(&config.interface, group, port, local.ip())?;

        let socket_err = |source| MulticastError::Socket {
            group: SocketAddr::new(group, port),
            source,
        };
        let main_ref = SockRef::from(main);
        match group {
            IpAddr::V4(_) => main_ref
                .set_multicast_loop_v4(config.loopback)
                .and_then(|()| main_ref.set_multicast_ttl_v4(config.ttl)),
            IpAddr::V6(_) => main_ref
                .set_multicast_loop_v6(config.loopback)
                .and_then(|()| main_ref.set_multicast_hops_v6(config.ttl)),
        }
        .map_err(socket_err)?;

        // Python's layout: a wildcard-bound node on the group port receives on its own socket.
        let shared = local.ip().is_unspecified() && local.port() == port;
        let recv = if shared {
            None
        } else {
            Some(group_socket(group, port, buffers).map_err(socket_err)?)
        };
        let joiner: &Socket = match &recv {
            Some(s) => s,
            None => &main_ref,
        };
        let mut joined = Vec::new();
        let mut last_err = None;
        let mut tried = 0;
        for t in targets {
            if joined
                .iter()
                .any(|j: &Target| j.index == t.index && t.index != 0)
            {
                continue;
            }
            match join(joiner, group, &t) {
                Ok(()) => {
                    tracing::debug!(%group, port, interface = %t.name, "joined multicast group");
                    joined.push(t);
                }
                Err(e) => {
                    tracing::warn!(%group, interface = %t.name, index = t.index, error = %e, "cannot join multicast group");
                    tried += 1;
                    last_err = Some((t, e));
                }
            }
        }
        if joined.is_empty() {
            // `resolve` returns at least one target, so a join was tried and failed.
            let (t, source) = last_err.unwrap_or_else(|| {
                let t = default_target(group, port, local.ip());
                (
                    t,
                    io::Error::new(io::ErrorKind::NotFound, "no interface to join"),
                )
            });
            return Err(MulticastError::Join {
                group,
                interface: t.name,
                index: t.index,
                tried,
                source,
            });
        }
        let recv = match recv {
            Some(s) => Some(Arc::new(UdpSocket::from_std(s.into()).map_err(socket_err)?)),
            None => None,
        };
        tracing::info!(
            group = %SocketAddr::new(group, port),
            interfaces = ?joined.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            "multicast group joined"
        );
        Ok(Self {
            recv,
            group: SocketAddr::new(group, port),
            targets: joined,
            send_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The group address and port.
    pub(crate) fn group(&self) -> SocketAddr {
        self.group
    }

    /// Send `bytes` to the group on every joined interface; how many sends succeeded (an error
    /// when none did).
    pub(crate) async fn send(&self, main: &UdpSocket, bytes: &[u8]) -> io::Result<usize> {
        let _one_at_a_time = self.send_lock.lock().await;
        let sock = SockRef::from(main);
        let mut sent = 0;
        let mut last_err = None;
        for t in &self.targets {
            let chosen = match (t.dest, t.v4_if) {
                (SocketAddr::V4(_), Some(a)) => sock.set_multicast_if_v4(&a),
                (SocketAddr::V4(_), None) => Ok(()),
                (SocketAddr::V6(_), _) => sock.set_multicast_if_v6(t.index),
            };
            let result = match chosen {
                Ok(()) => main.send_to(bytes, t.dest).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::debug!(interface = %t.name, error = %e, "multicast send failed");
                    last_err = Some(e);
                }
            }
        }
        match (sent, last_err) {
            (0, Some(e)) => Err(e),
            (n, _) => Ok(n),
        }
    }
}

/// Receive the group's datagrams on `sock` and hand them to the node until `cancel`.
pub(crate) async fn receive(
    sock: Arc<UdpSocket>,
    cancel: CancellationToken,
    mut on_datagram: impl FnMut(Bytes, SocketAddr),
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, src) = tokio::select! {
            () = cancel.cancelled() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "multicast receive error");
                    continue;
                }
            },
        };
        on_datagram(
            Bytes::copy_from_slice(buf.get(..len).unwrap_or_default()),
            src,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let d = MulticastConfig::default();
        assert_eq!(d.get_group(), None);
        assert_eq!(d.get_port(), Some(8889));
        assert_eq!(d.get_ttl(), 1);
        assert!(d.get_loopback());
        assert!(MulticastConfig::DEFAULT_GROUP_V4.is_multicast());
        assert!(MulticastConfig::DEFAULT_GROUP_V6.is_multicast());
    }

    #[cfg(feature = "python-compat")]
    #[test]
    fn python_mode() {
        let p = MulticastConfig::python();
        assert_eq!(p.get_group(), Some(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1))));
        assert_eq!(p.get_port(), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_node_bound_to_loopback_uses_lo() {
        let group = IpAddr::V4(MulticastConfig::DEFAULT_GROUP_V4);
        let t = resolve(
            &MulticastInterface::All,
            group,
            9,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "lo");
        assert_eq!(t[0].v4_if, Some(Ipv4Addr::LOCALHOST));
        let err = resolve(
            &MulticastInterface::Name("no-such-interface".into()),
            group,
            9,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .unwrap_err();
        assert!(
            matches!(&err, MulticastError::NoInterfaceMatches { interface, .. } if interface.contains("no-such-interface")),
            "{err:?}"
        );
    }

    /// The group's own receiving socket gets the node's receive buffer size (Linux reports the
    /// double), and keeps the default send buffer: it never sends.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_group_socket_gets_the_receive_buffer_size() {
        let group = IpAddr::V4(MulticastConfig::DEFAULT_GROUP_V4);
        let plain = group_socket(group, 0, BufferSizes::default()).unwrap();
        let sized = BufferSizes {
            recv: Some(96 * 1024),
            send: Some(96 * 1024),
        };
        let sock = group_socket(group, 0, sized).unwrap();
        assert_eq!(sock.recv_buffer_size().unwrap(), 2 * 96 * 1024);
        assert_eq!(
            sock.send_buffer_size().unwrap(),
            plain.send_buffer_size().unwrap()
        );
    }
}
