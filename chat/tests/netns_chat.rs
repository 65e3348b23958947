//! The chat across hosts: three `chat` processes in network namespaces joined by a bridge (a LAN
//! of veth interfaces), discovering each other by multicast over IPv6 (where Linux cannot loop
//! multicast back on `lo`, so `chat/tests/chat.rs` cannot cover it) and IPv4, then talking.
//!
//! Needs root and iproute2, so plain `cargo test` does not run it (`test = false`); `.ci/run`
//! runs it in its namespace step:
//!
//! ```text
//! cargo test -p netaio-chat --test netns_chat
//! ```
//!
//! If a namespace cannot be created the test fails; it never skips. The LAN is built as in
//! `tests/tests/netns.rs` (a switch namespace with a bridge, multicast snooping off; host `i` has
//! `eth0` with `10.232.0.<i>/24` and `fd00:232::<i>/64`, addresses that exist only inside these
//! namespaces). Guards kill the chats and delete the namespaces even when an assertion fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Chat;

static RUN: AtomicUsize = AtomicUsize::new(0);

fn ip(args: &[&str]) {
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

/// A switch namespace with a bridge and `hosts` host namespaces plugged into it; deleted on drop.
struct Lan {
    names: Vec<String>,
    hosts: Vec<String>,
}

impl Lan {
    fn new(tag: &str, hosts: usize) -> Lan {
        let prefix = format!(
            "nc{}-{}-{tag}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::SeqCst)
        );
        let mut lan = Lan {
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
            ip(&[
                "-n",
                &h,
                "addr",
                "add",
                &format!("10.232.0.{i}/24"),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                &h,
                "addr",
                "add",
                &format!("fd00:232::{i}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", &h, "link", "set", "eth0", "up"]);
            lan.hosts.push(h);
        }
        lan
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

fn said<'a>(nick: &'a str, text: &'a str) -> impl Fn(&str) -> bool + 'a {
    move |l| l == format!("<{nick}> {text}")
}

/// Three chats, one per host, bound to their LAN address of one family.
fn three_hosts_talk(v6: bool) {
    let lan = Lan::new(if v6 { "v6" } else { "v4" }, 3);
    let home = tempfile::tempdir().unwrap();
    let nicks = ["alice", "bob", "carol"];
    let mut chats: Vec<Chat> = nicks
        .iter()
        .enumerate()
        .map(|(i, nick)| {
            let bind = if v6 {
                format!("fd00:232::{}", i + 1)
            } else {
                format!("10.232.0.{}", i + 1)
            };
            let ns = lan.hosts[i].as_str();
            Chat::spawn(
                &["ip", "netns", "exec", ns],
                home.path(),
                nick,
                nick,
                &["--bind", &bind, "--room-secret", "netns room"],
            )
        })
        .collect();
    let group = if v6 {
        "[ff02::6e61:696f]:8889"
    } else {
        "239.255.110.97:8889"
    };
    for (i, me) in chats.iter_mut().enumerate() {
        assert!(
            me.log
                .iter()
                .any(|l| l.contains(&format!("finding peers on {group}"))),
            "{:?}",
            me.log
        );
        for (j, other) in nicks.iter().enumerate() {
            if i != j {
                let host = if v6 {
                    format!("[fd00:232::{}]:", j + 1)
                } else {
                    format!("10.232.0.{}:", j + 1)
                };
                let line = me.wait_for(&format!("{other} joined"), |l| {
                    l.starts_with(&format!("* {other} joined ("))
                });
                assert!(line.contains(&host), "{line}");
            }
        }
    }
    let [alice, bob, carol] = &mut chats[..] else {
        unreachable!()
    };
    alice.type_line("hello across the LAN");
    alice.type_line("marker");
    for c in [&mut *bob, &mut *carol] {
        c.wait_for("the marker", said("alice", "marker"));
        assert_eq!(c.count(said("alice", "hello across the LAN")), 1);
    }
    bob.type_line("/msg carol only you");
    carol.wait_for("the direct message", |l| l == "<bob> (private) only you");
    bob.type_line("marker two");
    alice.wait_for("bob's marker", said("bob", "marker two"));
    assert_eq!(alice.count(|l| l.contains("only you")), 0);
    assert!(carol.quit().success());
    alice.wait_for("carol's leave notice", |l| l == "* carol left");
    bob.wait_for("carol's leave notice", |l| l == "* carol left");
    assert!(alice.quit().success());
    assert!(bob.quit().success());
}

#[test]
fn three_hosts_talk_over_ipv6() {
    three_hosts_talk(true);
}

#[test]
fn three_hosts_talk_over_ipv4() {
    three_hosts_talk(false);
}
