//! The interfaces GRASP runs on and the node's address, read from the system (`getifaddrs`, so
//! on Linux the calling thread's network namespace).

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use getifaddrs::InterfaceFlags;

use crate::proto::CoreInterface;

/// One interface as the system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInterface {
    /// Its index.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Up, multicast-capable and not loopback.
    pub usable: bool,
    /// Its addresses.
    pub addrs: Vec<IpAddr>,
}

/// The system's interfaces, by index.
pub fn system_interfaces() -> io::Result<Vec<SystemInterface>> {
    let mut by_index: BTreeMap<u32, SystemInterface> = BTreeMap::new();
    for entry in getifaddrs::getifaddrs()? {
        let Some(index) = entry.index else {
            continue;
        };
        let flags = entry.flags;
        let i = by_index.entry(index).or_insert_with(|| SystemInterface {
            index,
            name: entry.name.clone(),
            usable: flags.contains(InterfaceFlags::UP)
                && flags.contains(InterfaceFlags::MULTICAST)
                && !flags.contains(InterfaceFlags::LOOPBACK),
            addrs: Vec::new(),
        });
        if let Some(ip) = entry.address.ip_addr()
            && !i.addrs.contains(&ip)
        {
            i.addrs.push(ip);
        }
    }
    Ok(by_index.into_values().collect())
}

/// `fc00::/7`.
fn is_unique_local(a: &Ipv6Addr) -> bool {
    a.segments().first().is_some_and(|s| s & 0xfe00 == 0xfc00)
}

/// A unique-local or global unicast address (not loopback, link-local, multicast or
/// unspecified).
fn is_routable(a: &Ipv6Addr) -> bool {
    !(a.is_loopback() || a.is_unspecified() || a.is_multicast() || crate::wire::is_link_local_v6(a))
}

/// The interfaces to run on: those named (all usable ones when `names` is empty) with an IPv6
/// link-local address (`ipv6`) or an IPv4 address (`ipv4`). And the node's address: its first
/// unique-local address on them, else its first global one.
pub fn select(
    all: &[SystemInterface],
    names: &[String],
    ipv6: bool,
    ipv4: bool,
) -> (Vec<CoreInterface>, Option<Ipv6Addr>) {
    let chosen: Vec<&SystemInterface> = all
        .iter()
        .filter(|i| {
            if names.is_empty() {
                i.usable
            } else {
                names.contains(&i.name)
            }
        })
        .collect();
    let mut out = Vec::new();
    for i in &chosen {
        let link_local = i.addrs.iter().find_map(|a| match a {
            IpAddr::V6(v6) if crate::wire::is_link_local_v6(v6) => Some(*v6),
            _ => None,
        });
        let v4: Option<Ipv4Addr> = i.addrs.iter().find_map(|a| match a {
            IpAddr::V4(v4) if !v4.is_loopback() => Some(*v4),
            _ => None,
        });
        let ci = CoreInterface {
            index: i.index,
            link_local: link_local.filter(|_| ipv6),
            ipv4: v4.filter(|_| ipv4),
        };
        if ci.link_local.is_some() || ci.ipv4.is_some() {
            out.push(ci);
        }
    }
    let v6s = || {
        chosen
            .iter()
            .flat_map(|i| i.addrs.iter())
            .filter_map(|a| match a {
                IpAddr::V6(v6) if is_routable(v6) => Some(*v6),
                _ => None,
            })
    };
    let address = v6s().find(is_unique_local).or_else(|| v6s().next());
    (out, address.filter(|_| ipv6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(index: u32, name: &str, usable: bool, addrs: &[&str]) -> SystemInterface {
        SystemInterface {
            index,
            name: name.into(),
            usable,
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn usable_interfaces_and_the_unique_local_address_are_chosen() {
        let all = [
            iface(1, "lo", false, &["127.0.0.1", "::1"]),
            iface(
                2,
                "eth0",
                true,
                &["10.0.0.2", "2001:db8::2", "fe80::2", "fd00::2"],
            ),
            iface(3, "eth1", true, &["fe80::3"]),
            iface(4, "eth2", true, &["10.0.1.2"]),
        ];
        let (ifs, addr) = select(&all, &[], true, false);
        assert_eq!(ifs.iter().map(|i| i.index).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(ifs[0].link_local, Some("fe80::2".parse().unwrap()));
        assert_eq!(ifs[0].ipv4, None);
        assert_eq!(addr, Some("fd00::2".parse().unwrap()));
        let (ifs, addr) = select(&all, &["eth2".into()], true, true);
        assert_eq!(ifs.len(), 1);
        assert_eq!(ifs[0].ipv4, Some("10.0.1.2".parse().unwrap()));
        assert_eq!(addr, None);
        // Only a global address: that one.
        let g = [iface(2, "eth0", true, &["2001:db8::2", "fe80::2"])];
        assert_eq!(
            select(&g, &[], true, false).1,
            Some("2001:db8::2".parse().unwrap())
        );
    }

    #[test]
    fn the_system_lists_loopback() {
        let all = system_interfaces().unwrap();
        assert!(
            all.iter()
                .any(|i| i.addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)))
        );
    }
}
