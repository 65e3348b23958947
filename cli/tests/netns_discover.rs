//! `netaio discover` across hosts: three network-namespace hosts joined by a bridge, one
//! `netaio discover` on each; the two sharing a secret list each other (id and address) and not
//! the third, which has another secret. Once over IPv4 (239.255.110.97), once over IPv6
//! (ff02::6e61:696f).
//!
//! Needs root and iproute2, so plain `cargo test` does not run it (`test = false`); `.ci/run`
//! runs it in its namespace step:
//!
//! ```text
//! cargo test -p netaio-cli --test netns_discover
//! ```
//!
//! If a namespace cannot be created the test fails; it never skips. The LAN is
//! `netaio_tests::netns::Lan` (host `i` has `eth0` with `10.244.0.<i>/24` and
//! `fd00:244::<i>/64`). Guards kill the programs and delete the namespaces even when an assertion
//! fails; every wait is bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

#[allow(dead_code)]
#[path = "integration/common.rs"]
mod common;

use std::process::Command;

use common::{NETAIO, Proc};
use netaio_tests::netns::Lan;

fn discover(lan: &Lan, host: usize, v6: bool, secret: &str, seconds: &str) -> Proc {
    let bind = if v6 { lan.v6(host) } else { lan.v4(host) }.to_string();
    let id = format!("h{host}");
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        lan.host(host),
        NETAIO,
        "--json",
        "discover",
    ])
    .args([
        "--bind",
        &bind,
        "--interval",
        "200ms",
        "--id",
        &id,
        "--seconds",
        seconds,
    ])
    .env("RUST_LOG", "warn")
    .env("NETAIO_HMAC", secret);
    Proc::spawn(cmd)
}

fn lan_discovery(tag: &str, net: u8, v6: bool) {
    let lan = Lan::new(tag, net, 3);
    // h1 stops first: the peers it lists at its end are all still there.
    let mut h1 = discover(&lan, 1, v6, "s3cret", "5");
    let mut h2 = discover(&lan, 2, v6, "s3cret", "60");
    let mut h3 = discover(&lan, 3, v6, "other", "60");
    for p in [&mut h1, &mut h2, &mut h3] {
        let group = p.event("started")["group"].as_str().unwrap().to_owned();
        let expected = if v6 {
            "[ff02::6e61:696f"
        } else {
            "239.255.110.97:"
        };
        assert!(group.starts_with(expected), "{group}");
    }
    for (p, other) in [(&mut h1, 2), (&mut h2, 1)] {
        let found = p.event_where("discovered", |v| v["peer"]["id"] == format!("h{other}"));
        let addr: std::net::SocketAddr =
            found["peer"]["addrs"][0].as_str().unwrap().parse().unwrap();
        let expected = if v6 { lan.v6(other) } else { lan.v4(other) };
        assert_eq!(addr.ip(), expected, "{found}");
    }
    // At the end of its --seconds, h1 lists the peers it heard: never the one with another
    // secret (whose adverts fail the HMAC check); and it says goodbye to h2.
    let end = h1.event("peers");
    let ids: Vec<&str> = end["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["h2"], "{end}");
    assert_eq!(h1.wait(), Some(0));
    h2.event_where("disconnected", |v| v["peer"]["id"] == "h1");
    assert!(
        !h2.seen.iter().any(|l| l.contains("\"h3\"")),
        "{:#?}",
        h2.seen
    );
    // h3 (another secret) recorded nobody.
    assert!(
        !h3.seen.iter().any(|l| l.contains("discovered")),
        "{:#?}",
        h3.seen
    );
}

#[test]
fn discover_across_hosts_ipv4() {
    lan_discovery("cli4", 244, false);
}

#[test]
fn discover_across_hosts_ipv6() {
    lan_discovery("cli6", 245, true);
}
