//! [`interfaces`]: the host's network interfaces with their flags and addresses, for choosing where
//! to join a multicast group.
//!
//! The listing comes from the `getifaddrs` crate: `getifaddrs(3)` on Unix (on Linux it asks the
//! kernel over rtnetlink, so it sees the calling thread's network namespace), `GetAdaptersAddresses`
//! on Windows. It gives one entry per address, each with its interface's index and flags; this
//! module groups them per interface.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use getifaddrs::InterfaceFlags;

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

/// The host's interfaces (in the caller's network namespace on Linux), ordered by index.
///
/// An interface with neither an address nor a hardware address (a down tunnel, say) is not
/// listed: the platform reports interfaces through their addresses.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// let all = netaio::udp::interfaces().unwrap();
/// let lo = all.iter().find(|i| i.loopback).unwrap();
/// assert!(lo.has("127.0.0.1".parse().unwrap()));
/// # }
/// ```
pub fn interfaces() -> io::Result<Vec<Interface>> {
    Ok(group(getifaddrs::getifaddrs()?))
}

/// One [`Interface`] per index from the per-address entries, ordered by index. Entries without
/// an index cannot be joined on and are left out; the flags are the interface's, so the first
/// entry's stand for all.
fn group(entries: impl IntoIterator<Item = getifaddrs::Interface>) -> Vec<Interface> {
    let mut by_index: BTreeMap<u32, Interface> = BTreeMap::new();
    for entry in entries {
        let Some(index) = entry.index else {
            continue;
        };
        let iface = by_index.entry(index).or_insert_with(|| Interface {
            index,
            name: entry.name.clone(),
            up: entry.flags.contains(InterfaceFlags::UP),
            loopback: entry.flags.contains(InterfaceFlags::LOOPBACK),
            multicast: entry.flags.contains(InterfaceFlags::MULTICAST),
            addrs: Vec::new(),
        });
        // A hardware address entry lists the interface but adds no IP address.
        if let Some(ip) = entry.address.ip_addr()
            && !iface.addrs.contains(&ip)
        {
            iface.addrs.push(ip);
        }
    }
    by_index.into_values().collect()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn loopback_is_listed_with_its_addresses() {
        let all = interfaces().unwrap();
        let lo = all.iter().find(|i| i.loopback).unwrap();
        #[cfg(target_os = "linux")]
        assert_eq!(lo.name, "lo");
        assert!(lo.up);
        assert!(lo.has(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(all.windows(2).all(|w| w[0].index < w[1].index), "{all:?}");
    }

    // `getifaddrs::Interface` has an extra field on Windows; the grouping is the same there.
    #[cfg(not(windows))]
    #[test]
    fn entries_are_grouped_per_index_with_their_flags() {
        use getifaddrs::{Address, NetworkAddress};

        let v4 = |a: Ipv4Addr| {
            Address::V4(NetworkAddress {
                address: a,
                netmask: None,
                associated_address: None,
            })
        };
        let v6 = |a: Ipv6Addr| {
            Address::V6(NetworkAddress {
                address: a,
                netmask: None,
                associated_address: None,
            })
        };
        let entry = |name: &str, index, flags, address| getifaddrs::Interface {
            name: name.into(),
            address,
            flags,
            index,
        };
        let eth = InterfaceFlags::UP | InterfaceFlags::MULTICAST | InterfaceFlags::BROADCAST;
        let lo = InterfaceFlags::UP | InterfaceFlags::LOOPBACK;
        let link_local: Ipv6Addr = "fe80::1".parse().unwrap();
        let got = group([
            entry("eth0", Some(2), eth, Address::Mac([2, 0, 0, 0, 0, 1])),
            entry("lo", Some(1), lo, v4(Ipv4Addr::LOCALHOST)),
            entry("eth0", Some(2), eth, v4(Ipv4Addr::new(192, 0, 2, 7))),
            entry("eth0", Some(2), eth, v6(link_local)),
            entry("ghost", None, eth, v4(Ipv4Addr::new(192, 0, 2, 9))),
            entry("lo", Some(1), lo, v4(Ipv4Addr::LOCALHOST)),
            entry(
                "dummy0",
                Some(5),
                InterfaceFlags::empty(),
                Address::Mac([2; 6]),
            ),
        ]);
        assert_eq!(
            got,
            vec![
                Interface {
                    index: 1,
                    name: "lo".into(),
                    up: true,
                    loopback: true,
                    multicast: false,
                    addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                },
                Interface {
                    index: 2,
                    name: "eth0".into(),
                    up: true,
                    loopback: false,
                    multicast: true,
                    addrs: vec![
                        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
                        IpAddr::V6(link_local),
                    ],
                },
                Interface {
                    index: 5,
                    name: "dummy0".into(),
                    up: false,
                    loopback: false,
                    multicast: false,
                    addrs: vec![],
                },
            ]
        );
    }
}
