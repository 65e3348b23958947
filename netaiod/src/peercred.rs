//! Who is on the other end of a loopback TCP connection: the owner (uid) of the client's socket,
//! from the kernel's socket tables (`/proc/net/tcp`, `/proc/net/tcp6`; Linux). The native API
//! checks `allowed_uids` this way on its loopback TCP address; on its Unix socket the kernel
//! tells the connecting process's credentials directly (`SO_PEERCRED`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The uid owning the socket at `client` connected to `server`, if the tables show one.
pub fn loopback_peer_uid(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let table = match client {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    find_uid(&text, client, server)
}

/// The uid of the table line whose local address is `client` and remote address `server`.
pub fn find_uid(table: &str, client: SocketAddr, server: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let _slot = fields.next()?;
        let local = parse_addr(fields.next()?)?;
        let remote = parse_addr(fields.next()?)?;
        if local != client || remote != server {
            return None;
        }
        // st, tx:rx, tr:when, retrnsmt, then uid.
        fields.nth(4)?.parse().ok()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word is printed in
/// the host's byte order.
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn finds_the_owner_of_a_real_loopback_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let uid = loopback_peer_uid(client.local_addr().unwrap(), listener.local_addr().unwrap());
        let ours = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").unwrap().uid()
        };
        assert_eq!(uid, Some(ours));
        // Another pair of addresses: nothing.
        let other = SocketAddr::from(([127, 0, 0, 1], 1));
        assert_eq!(
            loopback_peer_uid(other, listener.local_addr().unwrap()),
            None
        );
    }

    #[test]
    fn parses_the_table_layout() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:C70E 0100007F:A0F9 01 00000000:00000000 00:00000000 00000000  1000        0 2145188 1\n";
        let client = parse_addr("0100007F:C70E").unwrap();
        let server = parse_addr("0100007F:A0F9").unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(client, "127.0.0.1:50958".parse().unwrap());
        }
        assert_eq!(find_uid(table, client, server), Some(1000));
        assert_eq!(find_uid(table, server, client), None);
        assert!(parse_addr("00000000000000000000000001000000:0050").is_some());
        assert!(parse_addr("zz:1").is_none());
    }
}
