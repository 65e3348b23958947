//! `relay`: a relay, a service behind it (`serve --reserve-at`) and calls by id through it
//! (`request --peer`), with what the relay prints; no route for an unknown id or a service gone;
//! a second reservation of a held id; a wrong secret.

use crate::common::{Proc, netaio, run};

/// `netaio --json [PRE…] relay --listen 127.0.0.1:0 MORE…`, started; its port.
fn relay(pre: &[&str], more: &[&str]) -> (Proc, u16) {
    let mut args = vec!["--json"];
    args.extend_from_slice(pre);
    args.extend_from_slice(&["relay", "--listen", "127.0.0.1:0"]);
    args.extend_from_slice(more);
    let mut p = Proc::spawn(netaio(&args));
    let port = p.port();
    (p, port)
}

#[test]
fn a_service_behind_the_relay_is_called_by_id_and_unknown_ids_have_no_route() {
    let (mut relay, port) = relay(&[], &["--max-reservations", "8"]);
    let at = format!("127.0.0.1:{port}");

    // A service that is reachable only through the relay (no --listen).
    let mut service = Proc::spawn(netaio(&[
        "--json",
        "serve",
        "--reserve-at",
        &at,
        "--id",
        "node-c",
        "--route",
        "REQUEST_URI hello=from-c",
    ]));
    let reserved = service.event("reserved");
    assert_eq!(reserved["id"], "node-c");
    assert_eq!(reserved["reservation_secs"], 3600);
    let seen = relay.event("reserved");
    assert_eq!(seen["id"], "node-c");
    assert!(seen["peer"].as_str().unwrap().starts_with("127.0.0.1:"));

    // A call by id through the relay, answered by the service's route.
    let out = run(&["--json", "request", &at, "--peer", "node-c", "hello", "hi"]);
    out.assert_code(0);
    let reply = &out.events("reply")[0];
    assert_eq!(reply["type"], "RESPOND_URI");
    assert_eq!(reply["content"], "from-c");
    let got = service.event("received");
    assert_eq!(
        (got["uri"].as_str(), got["content"].as_str()),
        (Some("hello"), Some("hi"))
    );

    // An id nobody reserved: the relay's "no route", an error reply (exit 3) that says so.
    let out = run(&["--json", "request", &at, "--peer", "nobody", "hello"]);
    out.assert_code(3);
    let e = &out.events("error_reply")[0];
    assert_eq!(
        (e["type"].as_str(), e["relay_refusal"].as_str()),
        (Some("NOT_FOUND"), Some("no-route"))
    );
    let failure = &out.events("failure")[0];
    assert_eq!(failure["kind"], "error_reply");
    assert!(
        failure["message"].as_str().unwrap().contains("no-route"),
        "{failure}"
    );
    let refused = relay.event("refused");
    assert_eq!(
        (refused["to"].as_str(), refused["refusal"].as_str()),
        (Some("nobody"), Some("no-route"))
    );

    // The id is held: a second service cannot reserve it.
    let out = run(&["--json", "serve", "--reserve-at", &at, "--id", "node-c"]);
    out.assert_code(3);
    assert!(out.stderr.contains("taken"), "{}", out.stderr);
    let r = relay.event("reservation_refused");
    assert_eq!(
        (r["id"].as_str(), r["refusal"].as_str()),
        (Some("node-c"), Some("taken"))
    );

    // The service goes: its reservation ends with its connection, and node-c has no route.
    drop(service);
    relay.event_where("stats", |s| s["reservations"] == 0);
    let out = run(&["request", &at, "--peer", "node-c", "hello"]);
    out.assert_code(3);
    assert!(out.stderr.contains("no-route"), "{}", out.stderr);
}

#[test]
fn a_wrong_secret_cannot_reserve_and_peer_needs_tcp() {
    let (mut relay, port) = relay(&["--hmac", "right"], &[]);
    let at = format!("127.0.0.1:{port}");
    let out = run(&["--hmac", "wrong", "serve", "--reserve-at", &at, "--id", "x"]);
    out.assert_code(4);
    // Refused by the server's plugins before the relay sees it: no reservation printed.
    let out = run(&[
        "--hmac", "right", "--json", "request", &at, "--peer", "x", "hello",
    ]);
    out.assert_code(3);
    let r = relay.event("refused");
    assert_eq!(r["to"], "x");
    assert_eq!(
        relay
            .seen
            .iter()
            .filter(|l| l.contains("\"reserved\""))
            .count(),
        0
    );
    let out = run(&["request", &format!("udp://{at}"), "--peer", "x", "hello"]);
    out.assert_code(1);
    assert!(out.stderr.contains("TCP"), "{}", out.stderr);
}

#[test]
fn limits_are_flags_and_bad_values_are_usage_errors() {
    run(&[
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--byte-rate-per-ip",
        "fast",
    ])
    .assert_code(2);
    run(&["relay", "--listen", "127.0.0.1:0", "--max-circuits", "-1"]).assert_code(2);
    let out = run(&["relay", "--help"]);
    out.assert_code(0);
    assert!(out.stdout.contains("[default: 128]"), "{}", out.stdout);
    assert!(out.stdout.contains("[default: 500/1]"), "{}", out.stdout);
    let out = run(&["relay", "--listen", "udp://127.0.0.1:0"]);
    out.assert_code(1);
}
