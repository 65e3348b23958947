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
//! If a namespace cannot be created the test fails; it never skips. The LAN is
//! `netaio_tests::netns::Lan` (a switch namespace with a bridge, multicast snooping off; host `i`
//! has `eth0` with `10.232.0.<i>/24` and `fd00:232::<i>/64`, addresses that exist only inside
//! these namespaces). Guards kill the chats and delete the namespaces even when an assertion fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::Chat;
use netaio_tests::netns::Lan;

fn said<'a>(nick: &'a str, text: &'a str) -> impl Fn(&str) -> bool + 'a {
    move |l| l == format!("<{nick}> {text}")
}

/// Three chats, one per host, bound to their LAN address of one family.
fn three_hosts_talk(v6: bool) {
    let lan = Lan::new(if v6 { "v6" } else { "v4" }, 232, 3);
    let home = tempfile::tempdir().unwrap();
    let nicks = ["alice", "bob", "carol"];
    let mut chats: Vec<Chat> = nicks
        .iter()
        .enumerate()
        .map(|(i, nick)| {
            let bind = if v6 { lan.v6(i + 1) } else { lan.v4(i + 1) }.to_string();
            let ns = lan.host(i + 1);
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
