//! `serve`: routes from the command line, NOT_FOUND beside them, and what it prints.

use crate::common::{run, serve};

#[test]
fn routes_answer_and_everything_else_is_not_found() {
    let (mut server, port) = serve(
        "127.0.0.1:0",
        &[
            "--route",
            "REQUEST_URI hello=world greet=hi",
            "--route",
            "CREATE_URI users=created",
        ],
    );
    let addr = format!("127.0.0.1:{port}");
    for (cmd, uri, t, content) in [
        ("request", "hello", "RESPOND_URI", "world"),
        ("request", "greet", "RESPOND_URI", "hi"),
        ("create", "users", "OK", "created"),
    ] {
        let out = run(&["--json", cmd, &addr, uri, "ignored"]);
        out.assert_code(0);
        let reply = &out.events("reply")[0];
        assert_eq!(
            (reply["type"].as_str(), reply["content"].as_str()),
            (Some(t), Some(content))
        );
        let got = server.event("received");
        assert_eq!(
            (got["uri"].as_str(), got["content"].as_str()),
            (Some(uri), Some("ignored"))
        );
    }
    // No echo beside the routes.
    run(&["request", &addr, "echo", "x"]).assert_code(3);
    assert_eq!(server.event("received")["uri"], "echo");
}

#[test]
fn a_bad_route_or_address_is_refused_with_one_line() {
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--route",
        "REQUEST_URI nothing",
    ]);
    out.assert_code(1);
    assert!(out.stderr.contains("URI=CONTENT"), "{}", out.stderr);
    // An address this host does not have.
    let out = run(&["serve", "--listen", "192.0.2.1:0"]);
    out.assert_code(1);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn human_output_is_aligned_and_without_colour_in_a_pipe() {
    let mut server =
        crate::common::Proc::spawn(crate::common::netaio(&["serve", "--listen", "127.0.0.1:0"]));
    let first = server.line();
    let port: u16 = first
        .strip_prefix("listening tcp://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{first:?}"));
    run(&[
        "request",
        &format!("127.0.0.1:{port}"),
        "echo",
        "\u{1}binary",
    ])
    .assert_code(0);
    let line = loop {
        let l = server.line();
        if l.contains("REQUEST_URI") {
            break l;
        }
    };
    assert!(!line.contains('\x1b'), "{line:?}");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words[1..],
        ["REQUEST_URI", "echo", "0x0162696e617279"],
        "{line:?}"
    );
}

#[test]
fn connections_are_shown_coming_and_going_with_the_reason() {
    let (mut server, port) = serve("127.0.0.1:0", &["--hmac", "s"]);
    let addr = format!("127.0.0.1:{port}");
    run(&["--hmac", "s", "request", &addr, "echo", "x"]).assert_code(0);
    let up = server.event("connected");
    let down = server.event("disconnected");
    assert_eq!(up["connection"], down["connection"]);
    assert_eq!(up["peer"], down["peer"]);
    assert!(
        down["reason"].as_str().unwrap().contains("closed"),
        "{down}"
    );
}

#[test]
fn a_cipher_key_both_ways_and_a_wrong_one_refused() {
    let (_server, port) = serve("127.0.0.1:0", &["--cipher", "k3y", "--hmac", "s"]);
    let addr = format!("127.0.0.1:{port}");
    let out = run(&[
        "--json", "--cipher", "k3y", "--hmac", "s", "request", &addr, "echo", "sealed",
    ]);
    out.assert_code(0);
    assert_eq!(out.events("reply")[0]["content"], "sealed");
    let out = run(&[
        "--json", "--cipher", "wrong", "--hmac", "s", "request", &addr, "echo", "x",
    ]);
    out.assert_code(4);
    assert!(
        !out.stdout.contains("k3y") && !out.stderr.contains("wrong"),
        "{out:?}"
    );
}
