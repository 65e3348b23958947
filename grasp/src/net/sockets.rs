//! The sockets of a GRASP node (RFC 8990 sections 2.5.4.4 and 2.8.4, and what the Python
//! prototype does on the wire):
//!
//! - per interface, a UDP socket bound to the GRASP port and joined to the group on that
//!   interface only, to receive discoveries and floods;
//! - per interface, a UDP socket on an ephemeral port P to multicast from, and a TCP listener on
//!   the same port number P, where responders send their `M_RESPONSE`;
//! - per negotiable or synchronizable objective, a TCP listener on its own port, which peers
//!   learn from the locator of a discovery response (nothing listens on TCP 7017).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::proto::{CoreInterface, Family};

/// `GRASP_LISTEN_PORT`, the UDP port of link-local multicast.
pub const GRASP_LISTEN_PORT: u16 = 7017;
/// `ALL_GRASP_NEIGHBORS` for IPv6.
pub const ALL_GRASP_NEIGHBORS_6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x13);
/// `ALL_GRASP_NEIGHBORS` for IPv4.
pub const ALL_GRASP_NEIGHBORS_4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 119);

/// The group address of `family` at `port`, scoped to `ifindex` for IPv6.
pub fn group(family: Family, port: u16, ifindex: u32) -> SocketAddr {
    match family {
        Family::V6 => SocketAddr::V6(SocketAddrV6::new(ALL_GRASP_NEIGHBORS_6, port, 0, ifindex)),
        Family::V4 => SocketAddr::V4(SocketAddrV4::new(ALL_GRASP_NEIGHBORS_4, port)),
    }
}

fn udp(domain: Domain) -> io::Result<Socket> {
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if domain == Domain::IPV6 {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// The receiving socket of `iface`: the GRASP port, the group joined on this interface only.
/// Shared with other GRASP instances on the host (address and port reuse).
pub fn multicast_receiver(
    family: Family,
    iface: &CoreInterface,
    port: u16,
) -> io::Result<UdpSocket> {
    let s = match family {
        Family::V6 => {
            let s = udp(Domain::IPV6)?;
            s.set_reuse_address(true)?;
            #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
            s.set_reuse_port(true)?;
            // Bound to the group with the interface as zone: Linux binds the socket to that
            // device, so the interface of every datagram is known.
            s.bind(&group(family, port, iface.index).into())?;
            s.join_multicast_v6(&ALL_GRASP_NEIGHBORS_6, iface.index)?;
            #[cfg(target_os = "linux")]
            s.set_multicast_all_v6(false)?;
            s
        }
        Family::V4 => {
            let addr = iface.ipv4.ok_or_else(|| {
                io::Error::new(io::ErrorKind::AddrNotAvailable, "no IPv4 address")
            })?;
            let s = udp(Domain::IPV4)?;
            s.set_reuse_address(true)?;
            #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
            s.set_reuse_port(true)?;
            s.bind(&SocketAddr::V4(SocketAddrV4::new(ALL_GRASP_NEIGHBORS_4, port)).into())?;
            s.join_multicast_v4(&ALL_GRASP_NEIGHBORS_4, &addr)?;
            // Only this socket's own membership (group, interface) delivers to it.
            #[cfg(target_os = "linux")]
            s.set_multicast_all_v4(false)?;
            s
        }
    };
    UdpSocket::from_std(s.into())
}

/// The discovery sockets of `iface`: a UDP socket on an ephemeral port to multicast from (one
/// hop, looped back to this host only when asked) and a TCP listener on the same port number.
pub fn discovery_pair(
    family: Family,
    iface: &CoreInterface,
    multicast_loop: bool,
) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no port free for UDP and TCP");
    // The port the system gives the UDP socket may be taken for TCP: try another.
    for _ in 0..16 {
        let (s, any) = match family {
            Family::V6 => {
                let s = udp(Domain::IPV6)?;
                s.set_multicast_if_v6(iface.index)?;
                s.set_multicast_hops_v6(1)?;
                s.set_multicast_loop_v6(multicast_loop)?;
                (s, SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
            }
            Family::V4 => {
                let addr = iface.ipv4.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::AddrNotAvailable, "no IPv4 address")
                })?;
                let s = udp(Domain::IPV4)?;
                s.set_multicast_if_v4(&addr)?;
                s.set_multicast_ttl_v4(1)?;
                s.set_multicast_loop_v4(multicast_loop)?;
                (s, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            }
        };
        s.bind(&any.into())?;
        let port = s.local_addr()?.as_socket().map_or(0, |a| a.port());
        let mut tcp_addr = any;
        tcp_addr.set_port(port);
        match tcp_listener(tcp_addr, true) {
            Ok(l) => return Ok((UdpSocket::from_std(s.into())?, l)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A TCP listener on `addr` (an IPv6 one accepting IPv4 too unless `v6_only`).
pub fn tcp_listener(addr: SocketAddr, v6_only: bool) -> io::Result<TcpListener> {
    let domain = Domain::for_address(addr);
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if domain == Domain::IPV6 {
        s.set_only_v6(v6_only)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(128)?;
    TcpListener::from_std(s.into())
}

/// Connect to `to` within `timeout`, with `TCP_NODELAY`: every GRASP message goes in its own
/// segment (the prototype reads one message per read and drops what follows it).
pub async fn connect(to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = tokio::time::timeout(timeout, TcpStream::connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    s.set_nodelay(true)?;
    Ok(s)
}
