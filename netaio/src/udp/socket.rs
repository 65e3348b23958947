//! The node's socket: bound with the options a multicast node needs.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// Bind a non-blocking UDP socket (IPv6 sockets v6-only), with `SO_REUSEADDR` and
/// `SO_REUSEPORT` when `reuse`.
pub(super) fn bind_socket(addr: SocketAddr, reuse: bool) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse {
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
