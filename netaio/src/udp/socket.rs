//! The node's socket: bound with the options a multicast node needs, and the buffer sizes asked
//! for.

use std::net::SocketAddr;

use socket2::Socket;
use tokio::net::UdpSocket;

/// The kernel buffer sizes asked for (`None`: the kernel's default).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BufferSizes {
    pub(super) recv: Option<usize>,
    pub(super) send: Option<usize>,
}

/// Bind a non-blocking UDP socket (IPv6 sockets v6-only), with `SO_REUSEADDR` and
/// `SO_REUSEPORT` when `reuse`, and the buffer sizes in `buffers`.
pub(super) fn bind_socket(
    addr: SocketAddr,
    reuse: bool,
    buffers: BufferSizes,
) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse {
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    set_buffers(&socket, buffers, addr);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Which buffer: the option's name and the Linux sysctl that caps it.
#[derive(Clone, Copy)]
enum Which {
    Recv,
    Send,
}

impl Which {
    fn sysctl(self) -> &'static str {
        match self {
            Which::Recv => "net.core.rmem_max",
            Which::Send => "net.core.wmem_max",
        }
    }

    fn option(self) -> &'static str {
        match self {
            Which::Recv => "SO_RCVBUF",
            Which::Send => "SO_SNDBUF",
        }
    }
}

/// Set the buffer sizes asked for on `socket` (before it is bound: the receive buffer then holds
/// from the first datagram). The kernel caps a request at a sysctl without an error; what it
/// granted is read back, and a shortfall is logged at `WARN`, naming the sysctl to raise. Nothing
/// here fails the bind: the node works with smaller buffers, it only loses datagrams in bursts.
pub(super) fn set_buffers(socket: &Socket, buffers: BufferSizes, addr: SocketAddr) {
    if let Some(n) = buffers.recv {
        set_buffer(socket, Which::Recv, n, addr);
    }
    if let Some(n) = buffers.send {
        set_buffer(socket, Which::Send, n, addr);
    }
}

fn set_buffer(socket: &Socket, which: Which, requested: usize, addr: SocketAddr) {
    // The option is a C int: a larger request is the largest int (the kernel caps it anyway).
    let asked = requested.min(i32::MAX as usize);
    let set = match which {
        Which::Recv => socket.set_recv_buffer_size(asked),
        Which::Send => socket.set_send_buffer_size(asked),
    };
    if let Err(e) = set {
        tracing::warn!(%addr, option = which.option(), requested, error = %e,
            "cannot set the UDP socket's buffer size; the kernel's default stays");
        return;
    }
    let read = match which {
        Which::Recv => socket.recv_buffer_size(),
        Which::Send => socket.send_buffer_size(),
    };
    match read {
        Ok(reported) => {
            if let Some(granted) = shortfall(asked, reported) {
                tracing::warn!(%addr, option = which.option(), requested, granted,
                    sysctl = which.sysctl(),
                    "the kernel granted a smaller UDP socket buffer than asked: raise {} \
                     (e.g. sysctl -w {}={requested}) for large datagrams in bursts",
                    which.sysctl(), which.sysctl());
            }
        }
        Err(e) => {
            tracing::debug!(%addr, option = which.option(), error = %e,
                "cannot read the UDP socket's buffer size back");
        }
    }
}

/// The size granted when it is less than `asked`, from what `getsockopt` `reported` after the
/// `setsockopt`: Linux doubles the size it grants (the other half is for its bookkeeping) and
/// reports the double.
fn shortfall(asked: usize, reported: usize) -> Option<usize> {
    let granted = if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    };
    (granted < asked).then_some(granted)
}

#[cfg(test)]
mod tests {
    use super::shortfall;

    /// What `bind` warns about: on Linux a request is granted when the double is reported, and
    /// capped when less is (8 MiB asked at a 4 MiB cap reads 8 MiB: 4 MiB granted).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_shortfall_is_read_from_the_doubled_report() {
        assert_eq!(shortfall(1 << 20, 2 << 20), None);
        assert_eq!(shortfall(8 << 20, 8 << 20), Some(4 << 20));
        assert_eq!(shortfall(8 << 20, (16 << 20) - 2), Some((8 << 20) - 1));
        // The kernel's minimum is above a tiny request: granted more, nothing to say.
        assert_eq!(shortfall(1, 4608), None);
    }
}
