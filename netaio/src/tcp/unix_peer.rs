//! Who is at the other end of a Unix socket: the peer's credentials, and the address it is
//! given where the API speaks of socket addresses.
//!
//! The handlers, the peer table and the events name a peer by its `SocketAddr`; a Unix socket's
//! peer has none (its path is usually unnamed). It is given one that no TCP peer can have, in the
//! discard-only prefix `100::/64` (RFC 6666): `[100::UID]:N`, the peer's uid (from the kernel,
//! `SO_PEERCRED`; `ffff:ffff` when it cannot be told) as the last 32 bits of the address, and
//! the connection's number modulo 2^16 as the port. Rules that key on the address then key on
//! the uid, as they key on the host for TCP: the per-source connection limit
//! (`max_connections_per_ip`) counts a uid's connections, and at-most-once requests are
//! remembered per uid across reconnects. [`unix_peer_uid`] reads the uid back.

use std::net::{Ipv6Addr, SocketAddr};

/// The credentials of the process at the other end of a Unix socket, as the kernel recorded them
/// when it connected (`SO_PEERCRED`); see
/// [`ServerHandle::peer_credentials`](super::ServerHandle::peer_credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
    /// Its process id, where the platform tells it.
    pub pid: Option<i32>,
}

/// The first 64 bits of a Unix peer's address: `100::/64`, discard-only (RFC 6666).
const PREFIX: u128 = 0x0100 << 112;
/// The uid of a peer whose credentials cannot be told.
const UNKNOWN_UID: u32 = u32::MAX;

/// The address a Unix peer with uid `uid` is given on connection number `n` (see the module
/// documentation).
pub(crate) fn peer_addr(uid: Option<u32>, n: u64) -> SocketAddr {
    let ip = Ipv6Addr::from(PREFIX | u128::from(uid.unwrap_or(UNKNOWN_UID)));
    // Truncation wanted: the port tells connections of one uid apart, modulo 2^16.
    SocketAddr::new(ip.into(), (n & 0xffff) as u16)
}

/// The uid of a Unix peer's address: a Unix peer is named by an address in the discard-only
/// `100::/64` (RFC 6666) with its uid in the low 32 bits and its connection's number modulo 2^16
/// as the port. `None` for any other address, and for a peer whose uid could not be told.
///
/// ```
/// use netaio::tcp::unix_peer_uid;
///
/// assert_eq!(unix_peer_uid("[100::3e8]:7".parse().unwrap()), Some(1000));
/// assert_eq!(unix_peer_uid("127.0.0.1:8888".parse().unwrap()), None);
/// ```
pub fn unix_peer_uid(addr: SocketAddr) -> Option<u32> {
    let SocketAddr::V6(v6) = addr else {
        return None;
    };
    let bits = u128::from(*v6.ip());
    if bits >> 64 != PREFIX >> 64 || (bits >> 32) & 0xffff_ffff != 0 {
        return None;
    }
    // The mask keeps 32 bits.
    let uid = (bits & 0xffff_ffff) as u32;
    (uid != UNKNOWN_UID).then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_peer_address_carries_the_uid_and_no_tcp_address_does() {
        let a = peer_addr(Some(1000), 0x1_0007);
        assert_eq!(a, "[100::3e8]:7".parse().unwrap());
        assert_eq!(unix_peer_uid(a), Some(1000));
        assert_eq!(unix_peer_uid(peer_addr(Some(0), 1)), Some(0));
        assert_eq!(unix_peer_uid(peer_addr(None, 1)), None);
        assert_eq!(unix_peer_uid("[::1]:5".parse().unwrap()), None);
        assert_eq!(
            unix_peer_uid("[100::1:3e8]:5".parse().unwrap()),
            Some(0x1_03e8)
        );
        assert_eq!(unix_peer_uid("[100::1:0:3e8]:5".parse().unwrap()), None);
        assert_eq!(unix_peer_uid("[100:0:0:1::3e8]:5".parse().unwrap()), None);
    }
}
