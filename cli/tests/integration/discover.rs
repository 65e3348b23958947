//! `discover` on one host: two nodes on 127.0.0.1 find each other through the group (looped
//! back), and one that leaves says so. The LAN version is `tests/netns_discover.rs`.

use crate::common::{Proc, netaio};

fn node(group_port: &str, app: &str, id: &str, more: &[&str]) -> Proc {
    let mut args = vec![
        "--json",
        "discover",
        "--bind",
        "127.0.0.1",
        "--group-port",
        group_port,
        "--interval",
        "100ms",
        "--app",
        app,
        "--id",
        id,
    ];
    args.extend_from_slice(more);
    Proc::spawn(netaio(&args))
}

#[test]
fn two_nodes_find_each_other_and_a_leaving_one_is_seen_going() {
    let group_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let app = format!("cli-test-{}", std::process::id());
    let mut a = node(&group_port, &app, "alpha", &[]);
    let mut b = node(&group_port, &app, "beta", &["--seconds", "3"]);
    for (p, me, other) in [(&mut a, "alpha", "beta"), (&mut b, "beta", "alpha")] {
        let started = p.event("started");
        assert_eq!(started["id"], me);
        assert_eq!(started["group"], format!("239.255.110.97:{group_port}"));
        let found = p.event_where("discovered", |v| v["peer"]["id"] == other);
        assert!(
            found["peer"]["addrs"][0]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{found}"
        );
    }
    // beta stops after its --seconds, listing what it heard, and tells alpha.
    let end = b.event("peers");
    let ids: Vec<&str> = end["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha"]);
    assert_eq!(b.wait(), Some(0));
    a.event_where("disconnected", |v| v["peer"]["id"] == "beta");
}
