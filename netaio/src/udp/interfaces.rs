//! [`interfaces`]: the host's network interfaces with their flags and addresses, for choosing where
//! to join a multicast group.
//!
//! On Linux this asks the kernel over an rtnetlink socket (`RTM_GETLINK` and `RTM_GETADDR` dumps),
//! built with `socket2` and parsed here in safe code: no new dependency, and it sees the interfaces
//! of the calling thread's network namespace, IPv4 addresses included (which `/proc/net` and
//! `/sys/class/net` do not list). Elsewhere it returns [`std::io::ErrorKind::Unsupported`], and the
//! node falls back to the interface the kernel picks.

use std::io;
use std::net::IpAddr;

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Interface {
    /// The kernel's interface index (what IPv6 multicast membership and scope ids use).
    pub index: u32,
    /// The interface name (`eth0`, `lo`, …).
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The loopback interface (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// Multicast-capable (`IFF_MULTICAST`). Linux's `lo` is not, yet IPv4 multicast with the
    /// interface chosen explicitly works on it.
    pub multicast: bool,
    /// Its IPv4 and IPv6 addresses.
    pub addrs: Vec<IpAddr>,
}

impl Interface {
    /// Its first IPv4 address.
    pub fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        self.addrs.iter().find_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
    }

    /// True when it holds `ip`.
    pub fn has(&self, ip: IpAddr) -> bool {
        self.addrs.contains(&ip)
    }
}

/// The host's interfaces (in the caller's network namespace), ordered by index.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// let all = netaio::udp::interfaces().unwrap();
/// let lo = all.iter().find(|i| i.loopback).unwrap();
/// assert!(lo.has("127.0.0.1".parse().unwrap()));
/// # }
/// ```
pub fn interfaces() -> io::Result<Vec<Interface>> {
    imp::interfaces()
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn interfaces() -> std::io::Result<Vec<super::Interface>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "interface enumeration is implemented for Linux only",
        ))
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io::{self, Read};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    use socket2::{Domain, Protocol, Socket, Type};

    use super::Interface;

    const AF_NETLINK: i32 = 16;
    const NETLINK_ROUTE: i32 = 0;
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;

    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const RTM_NEWLINK: u16 = 16;
    const RTM_GETLINK: u16 = 18;
    const RTM_NEWADDR: u16 = 20;
    const RTM_GETADDR: u16 = 22;
    const IFLA_IFNAME: u16 = 3;
    const IFA_ADDRESS: u16 = 1;
    const IFA_LOCAL: u16 = 2;

    const IFF_UP: u32 = 0x1;
    const IFF_LOOPBACK: u32 = 0x8;
    const IFF_MULTICAST: u32 = 0x1000;

    const HEADER: usize = 16;
    /// Reads per dump, at most: a bound on the loop (a host with thousands of interfaces fits
    /// in a few dozen reads of 64 KiB).
    const MAX_READS: usize = 4096;

    fn invalid(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"))
    }

    fn align4(n: usize) -> usize {
        (n + 3) & !3
    }

    fn u16_at(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
    }

    fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    /// The route attributes (type, value) in `b`.
    fn attributes(b: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while let (Some(len), Some(kind)) = (u16_at(b, at), u16_at(b, at + 2)) {
            let len = usize::from(len);
            let Some(value) = b.get(at + 4..at + len).filter(|_| len >= 4) else {
                break;
            };
            // The top two bits are flags (nested, byte order).
            out.push((kind & 0x3fff, value));
            at += align4(len);
        }
        out
    }

    /// Send one dump request and collect the bodies of its replies of type `want`.
    fn dump(
        sock: &Socket,
        kind: u16,
        seq: u32,
        payload: &[u8],
        want: u16,
    ) -> io::Result<Vec<Vec<u8>>> {
        let len = u32::try_from(HEADER + payload.len()).map_err(|_| invalid("request too long"))?;
        let mut req = Vec::with_capacity(HEADER + payload.len());
        req.extend_from_slice(&len.to_ne_bytes());
        req.extend_from_slice(&kind.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&seq.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(payload);
        // Unconnected and unbound: the kernel (port id 0) is the default destination.
        sock.send(&req)?;
        let mut bodies = Vec::new();
        let mut buf = vec![0u8; 65_536];
        for _ in 0..MAX_READS {
            let n = (&*sock).read(&mut buf)?;
            let data = buf.get(..n).ok_or_else(|| invalid("short read"))?;
            let mut at = 0;
            while at + HEADER <= n {
                let (Some(len), Some(ty), Some(got_seq)) =
                    (u32_at(data, at), u16_at(data, at + 4), u32_at(data, at + 8))
                else {
                    return Err(invalid("truncated header"));
                };
                let len = usize::try_from(len).map_err(|_| invalid("length"))?;
                let msg = data
                    .get(at..at + len)
                    .filter(|_| len >= HEADER)
                    .ok_or_else(|| invalid("bad message length"))?;
                at += align4(len);
                if got_seq != seq {
                    continue;
                }
                let body = msg.get(HEADER..).unwrap_or_default();
                match ty {
                    NLMSG_DONE => return Ok(bodies),
                    NLMSG_ERROR => {
                        let code = u32_at(body, 0).ok_or_else(|| invalid("short error"))?;
                        let errno = (code as i32).wrapping_neg();
                        if errno != 0 {
                            return Err(io::Error::from_raw_os_error(errno));
                        }
                    }
                    t if t == want => bodies.push(body.to_vec()),
                    _ => {}
                }
            }
        }
        Err(invalid("dump did not end"))
    }

    pub(super) fn interfaces() -> io::Result<Vec<Interface>> {
        let sock = Socket::new(
            Domain::from(AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(NETLINK_ROUTE)),
        )?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;

        let mut out = Vec::new();
        for body in dump(&sock, RTM_GETLINK, 1, &[0u8; 16], RTM_NEWLINK)? {
            // struct ifinfomsg: family u8, pad u8, type u16, index i32, flags u32, change u32.
            let (Some(index), Some(flags)) = (u32_at(&body, 4), u32_at(&body, 8)) else {
                continue;
            };
            let name = attributes(body.get(16..).unwrap_or_default())
                .into_iter()
                .find(|(k, _)| *k == IFLA_IFNAME)
                .map(|(_, v)| {
                    let v = v.split(|b| *b == 0).next().unwrap_or_default();
                    String::from_utf8_lossy(v).into_owned()
                })
                .unwrap_or_default();
            out.push(Interface {
                index,
                name,
                up: flags & IFF_UP != 0,
                loopback: flags & IFF_LOOPBACK != 0,
                multicast: flags & IFF_MULTICAST != 0,
                addrs: Vec::new(),
            });
        }
        for body in dump(&sock, RTM_GETADDR, 2, &[0u8; 8], RTM_NEWADDR)? {
            // struct ifaddrmsg: family u8, prefixlen u8, flags u8, scope u8, index u32.
            let (Some(family), Some(index)) = (body.first().copied(), u32_at(&body, 4)) else {
                continue;
            };
            let attrs = attributes(body.get(8..).unwrap_or_default());
            // IFA_LOCAL is the local address (IFA_ADDRESS is the far end on point-to-point links).
            let value = attrs
                .iter()
                .find(|(k, _)| *k == IFA_LOCAL)
                .or_else(|| attrs.iter().find(|(k, _)| *k == IFA_ADDRESS))
                .map(|(_, v)| *v);
            let addr = match (family, value) {
                (AF_INET, Some(v)) => <[u8; 4]>::try_from(v)
                    .ok()
                    .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
                (AF_INET6, Some(v)) => <[u8; 16]>::try_from(v)
                    .ok()
                    .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                _ => None,
            };
            if let (Some(addr), Some(iface)) = (addr, out.iter_mut().find(|i| i.index == index)) {
                iface.addrs.push(addr);
            }
        }
        out.sort_by_key(|i| i.index);
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn attributes_parse_and_stop_at_garbage() {
            let mut b = Vec::new();
            b.extend_from_slice(&7u16.to_ne_bytes());
            b.extend_from_slice(&3u16.to_ne_bytes());
            b.extend_from_slice(b"lo\0\0"); // 3 value bytes + padding
            b.extend_from_slice(&2u16.to_ne_bytes()); // length below the attribute header
            b.extend_from_slice(&1u16.to_ne_bytes());
            let attrs = attributes(&b);
            assert_eq!(attrs, vec![(3, &b"lo\0"[..])]);
            assert!(attributes(&[1, 2]).is_empty());
        }

        #[test]
        fn loopback_is_listed_with_its_addresses() {
            let all = interfaces().unwrap();
            let lo = all.iter().find(|i| i.loopback).unwrap();
            assert_eq!(lo.name, "lo");
            assert!(lo.up);
            assert!(lo.has(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        }
    }
}
