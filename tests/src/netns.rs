//! Test LANs in network namespaces (needs root and iproute2): a switch namespace holding a bridge
//! (multicast snooping off) and one namespace per host with a veth `eth0` plugged into it,
//! addressed `10.<net>.0.<i>/24` and `fd00:<net>::<i>/64` (addresses that exist only inside these
//! namespaces). Used by the namespace tests of `netaio-tests` (`tests/tests/netns.rs`) and of the
//! chat (`chat/tests/netns_chat.rs`).
//!
//! Creating a namespace that fails fails the test (it never skips). The namespaces are deleted,
//! in reverse order, when the [`Lan`] is dropped, failed test or not.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static RUN: AtomicUsize = AtomicUsize::new(0);

/// Run `ip` with `args`; panics with its stderr when it fails (or when iproute2 is missing).
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2 is required): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A LAN of `hosts` host namespaces behind one bridge; deleted on drop.
#[derive(Debug)]
pub struct Lan {
    net: u8,
    names: Vec<String>,
    hosts: Vec<String>,
}

impl Lan {
    /// Build it. `tag` makes the namespace names readable (`<tag>-sw`, `<tag>-h1`, … behind a
    /// prefix unique to the process and the call); `net` picks the addresses (`10.<net>.0.<i>`,
    /// `fd00:<net>::<i>`), so that two test binaries never share a subnet.
    pub fn new(tag: &str, net: u8, hosts: usize) -> Lan {
        let prefix = format!(
            "n{net}-{}-{}-{tag}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::SeqCst)
        );
        let mut lan = Lan {
            net,
            names: Vec::new(),
            hosts: Vec::new(),
        };
        let add = |lan: &mut Lan, name: &str| {
            let full = format!("{prefix}-{name}");
            ip(&["netns", "add", &full]);
            lan.names.push(full.clone());
            full
        };
        let sw = add(&mut lan, "sw");
        ip(&[
            "-n",
            &sw,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for i in 1..=hosts {
            let h = add(&mut lan, &format!("h{i}"));
            // No duplicate address detection: addresses are usable at once.
            ip(&[
                "netns",
                "exec",
                &h,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ]);
            ip(&["-n", &h, "link", "set", "lo", "up"]);
            let port = format!("p{i}");
            ip(&[
                "-n", &h, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &sw,
            ]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            let v4 = format!("{}/24", lan.v4(i));
            let v6 = format!("{}/64", lan.v6(i));
            ip(&["-n", &h, "addr", "add", &v4, "dev", "eth0"]);
            ip(&["-n", &h, "addr", "add", &v6, "dev", "eth0", "nodad"]);
            ip(&["-n", &h, "link", "set", "eth0", "up"]);
            lan.hosts.push(h);
        }
        lan
    }

    /// The namespace of host `i` (1-based).
    pub fn host(&self, i: usize) -> &str {
        self.hosts.get(i.wrapping_sub(1)).map_or("", String::as_str)
    }

    /// Host `i`'s IPv4 address, `10.<net>.0.<i>`.
    pub fn v4(&self, i: usize) -> IpAddr {
        format!("10.{}.0.{i}", self.net)
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// Host `i`'s IPv6 address, `fd00:<net>::<i>` (the digits as written, so `fd00:231::1`).
    pub fn v6(&self, i: usize) -> IpAddr {
        format!("fd00:{}::{i}", self.net)
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            match Command::new("ip").args(["netns", "del", n]).output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!(
                    "cleanup: ip netns del {n}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) => eprintln!("cleanup: ip netns del {n}: {e}"),
            }
        }
    }
}
