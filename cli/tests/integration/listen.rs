//! `listen --udp`: what arrives, and why datagrams are refused.

use crate::common::{Proc, netaio, run};

#[test]
fn messages_are_printed_and_refusals_explained() {
    let mut listener = Proc::spawn(netaio(&[
        "--json",
        "--hmac",
        "s3cret",
        "listen",
        "--udp",
        "127.0.0.1:0",
        "--count",
        "1",
    ]));
    let port = listener.port();
    let addr = format!("udp://127.0.0.1:{port}");
    // A wrong secret: refused, and said why.
    run(&[
        "--hmac",
        "wrong",
        "send",
        &addr,
        "-t",
        "PUBLISH_URI",
        "news",
        "x",
    ])
    .assert_code(0);
    let refused = listener.event("refused");
    assert_eq!(refused["reason"], "auth_failed");
    assert_eq!(refused["count"], 1);
    // The right one: printed, with the sender and the content; then --count 1 ends it.
    run(&[
        "--hmac",
        "s3cret",
        "send",
        &addr,
        "-t",
        "PUBLISH_URI",
        "news",
        "hello",
    ])
    .assert_code(0);
    let got = listener.event("received");
    assert_eq!(
        (got["uri"].as_str(), got["content"].as_str()),
        (Some("news"), Some("hello"))
    );
    assert!(got["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(listener.wait(), Some(0));
}

#[test]
fn a_multicast_group_is_joined_on_the_port_given() {
    let group_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gp = group_port.to_string();
    let mut listener = Proc::spawn(netaio(&[
        "--json",
        "listen",
        "--udp",
        "127.0.0.1:0",
        "--group",
        "239.255.110.97",
        "--group-port",
        &gp,
    ]));
    listener.port();
    assert_eq!(
        listener.event("group")["group"],
        format!("239.255.110.97:{gp}")
    );
}
