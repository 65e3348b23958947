//! `request`, `create`, `update`, `delete`, `call` and `send` against `netaio serve`: replies
//! printed and parsed back, content from stdin and files, `--count`, and each exit code.

use std::net::TcpListener;

use crate::common::{Proc, netaio, run, run_with, serve};

#[test]
fn request_prints_the_echo_and_exits_0() {
    let (_server, port) = serve("127.0.0.1:0", &[]);
    let addr = format!("127.0.0.1:{port}");
    let out = run(&["request", &addr, "echo", "hello"]);
    out.assert_code(0);
    let line = out.stdout.lines().next().unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words, ["RESPOND_URI", "echo", "hello"], "{line:?}");
}

#[test]
fn json_replies_with_count_over_ipv6() {
    let (_server, port) = serve("[::1]:0", &[]);
    let addr = format!("[::1]:{port}");
    let out = run(&["--json", "request", &addr, "echo", "hi", "--count", "3"]);
    out.assert_code(0);
    let replies = out.events("reply");
    assert_eq!(replies.len(), 3, "{}", out.stdout);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r["seq"], i);
        assert_eq!(r["type"], "RESPOND_URI");
        assert_eq!(r["type_value"], 1);
        assert_eq!(r["uri"], "echo");
        assert_eq!(r["content"], "hi");
        assert!(r["elapsed_ms"].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn content_from_stdin_and_from_a_file() {
    let (_server, port) = serve("127.0.0.1:0", &[]);
    let addr = format!("127.0.0.1:{port}");
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    let out = run_with(
        netaio(&["--json", "request", &addr, "blob", "-d", "@-"]),
        Some(&binary),
    );
    out.assert_code(0);
    let reply = &out.events("reply")[0];
    assert_eq!(reply["content_hex"], hex::encode(&binary));
    assert_eq!(reply["content_len"], 256);

    let path = std::env::temp_dir().join(format!("netaio-cli-test-{}.txt", std::process::id()));
    std::fs::write(&path, "from a file").unwrap();
    let data = format!("@{}", path.display());
    let out = run(&["--json", "update", &addr, "doc", "-d", &data]);
    std::fs::remove_file(&path).unwrap();
    out.assert_code(0);
    let reply = &out.events("reply")[0];
    assert_eq!(
        (reply["type"].as_str(), reply["content"].as_str()),
        (Some("OK"), Some("from a file"))
    );

    let out = run(&["request", &addr, "x", "-d", "@/nonexistent/netaio-cli"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("/nonexistent/netaio-cli"),
        "{}",
        out.stderr
    );
}

#[test]
fn create_delete_and_call_with_any_type() {
    let (mut server, port) = serve("127.0.0.1:0", &[]);
    let addr = format!("127.0.0.1:{port}");
    for (cmd, content) in [("create", "c1"), ("delete", "")] {
        let out = run(&["--json", cmd, &addr, "users/alice", content]);
        out.assert_code(0);
        assert_eq!(out.events("reply")[0]["type"], "OK");
    }
    let out = run(&["--json", "call", &addr, "--type", "100", "chat", "yo"]);
    out.assert_code(0);
    let reply = &out.events("reply")[0];
    assert_eq!(
        (reply["type_value"].as_u64(), reply["content"].as_str()),
        (Some(100), Some("yo"))
    );
    // The server printed each message it received, with the client's address.
    for (t, uri) in [
        ("CREATE_URI", "users/alice"),
        ("DELETE_URI", "users/alice"),
        ("100", "chat"),
    ] {
        let got = server.event("received");
        assert_eq!(
            (got["type"].as_str(), got["uri"].as_str()),
            (Some(t), Some(uri))
        );
        assert!(got["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
}

#[test]
fn an_error_reply_exits_3() {
    let (_server, port) = serve("127.0.0.1:0", &["--route", "REQUEST_URI hello=world"]);
    let addr = format!("127.0.0.1:{port}");
    let out = run(&["--json", "request", &addr, "nowhere"]);
    out.assert_code(3);
    assert_eq!(out.events("error_reply")[0]["type"], "NOT_FOUND");
    let failure = &out.events("failure")[0];
    assert_eq!(
        (failure["kind"].as_str(), failure["exit_code"].as_u64()),
        (Some("error_reply"), Some(3))
    );
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
}

#[test]
fn a_wrong_secret_exits_4_and_no_secret_is_echoed() {
    let (_server, port) = serve("127.0.0.1:0", &["--hmac", "right-secret"]);
    let addr = format!("127.0.0.1:{port}");
    let out = run(&[
        "--json",
        "--hmac",
        "wrong-secret",
        "request",
        &addr,
        "echo",
        "x",
    ]);
    out.assert_code(4);
    assert_eq!(out.events("error_reply")[0]["type"], "AUTH_ERROR");
    assert_eq!(out.events("failure")[0]["kind"], "auth_refused");
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains("wrong-secret") && !text.contains("right-secret"),
            "{text}"
        );
    }
    // The right secret from the environment, and from a file.
    let mut cmd = netaio(&["request", &addr, "echo", "x"]);
    cmd.env("NETAIO_HMAC", "right-secret");
    run_with(cmd, None).assert_code(0);
    let path = std::env::temp_dir().join(format!("netaio-cli-secret-{}", std::process::id()));
    std::fs::write(&path, "right-secret\n").unwrap();
    let out = run(&[
        "--hmac-file",
        path.to_str().unwrap(),
        "request",
        &addr,
        "echo",
        "x",
    ]);
    std::fs::remove_file(&path).unwrap();
    out.assert_code(0);
    // --help shows that the variable exists, never its value.
    let mut help = netaio(&["--help"]);
    help.env("NETAIO_HMAC", "right-secret");
    let help = run_with(help, None);
    help.assert_code(0);
    assert!(help.stdout.contains("NETAIO_HMAC") && !help.stdout.contains("right-secret"));
}

#[test]
fn a_silent_peer_is_a_timeout_exit_5_after_the_soft_timeout() {
    // A UDP listener never answers.
    let mut listener = Proc::spawn(netaio(&["--json", "listen", "--udp", "127.0.0.1:0"]));
    let port = listener.port();
    let addr = format!("udp://127.0.0.1:{port}");
    let out = run(&[
        "--json",
        "request",
        &addr,
        "echo",
        "x",
        "--soft-timeout",
        "100ms",
        "--timeout",
        "600ms",
    ]);
    out.assert_code(5);
    let soft = &out.events("soft_timeout")[0];
    assert!(soft["elapsed_ms"].as_f64().unwrap() >= 100.0);
    assert_eq!(out.events("failure")[0]["kind"], "timeout");
    // The request reached it (after the return-routability challenge).
    let got = listener.event("received");
    assert_eq!(
        (got["type"].as_str(), got["uri"].as_str()),
        (Some("REQUEST_URI"), Some("echo"))
    );
}

#[test]
fn nobody_listening_is_a_connection_failure_exit_6() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = run(&["--json", "request", &format!("127.0.0.1:{port}"), "echo"]);
    out.assert_code(6);
    assert_eq!(out.events("failure")[0]["kind"], "connection_failed");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["request"][..],
        &["call", "127.0.0.1:1", "--type", "shout", "u"],
        &["request", "127.0.0.1:1", "u", "--timeout", "0"],
        &["request", "http://x:1", "u"],
    ] {
        let out = run(args);
        out.assert_code(2);
        assert!(out.stderr.contains("Usage:"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn requests_over_udp() {
    let (_server, port) = serve("udp://127.0.0.1:0", &[]);
    let out = run(&[
        "--json",
        "request",
        &format!("udp://127.0.0.1:{port}"),
        "echo",
        "over udp",
    ]);
    out.assert_code(0);
    assert_eq!(out.events("reply")[0]["content"], "over udp");
}

#[test]
fn send_is_fire_and_forget_over_tcp_and_udp() {
    let (mut server, port) = serve("127.0.0.1:0", &[]);
    let out = run(&[
        "--json",
        "send",
        &format!("127.0.0.1:{port}"),
        "--type",
        "PUBLISH_URI",
        "news",
        "hi",
    ]);
    out.assert_code(0);
    assert_eq!(out.events("sent").len(), 1);
    let got = server.event("received");
    assert_eq!(
        (got["type"].as_str(), got["content"].as_str()),
        (Some("PUBLISH_URI"), Some("hi"))
    );

    let mut listener = Proc::spawn(netaio(&["--json", "listen", "--udp", "127.0.0.1:0"]));
    let port = listener.port();
    run(&[
        "send",
        &format!("udp://127.0.0.1:{port}"),
        "-t",
        "120",
        "k",
        "v",
    ])
    .assert_code(0);
    let got = listener.event("received");
    assert_eq!(
        (got["type_value"].as_u64(), got["uri"].as_str()),
        (Some(120), Some("k"))
    );
}

#[test]
fn usage_errors_never_echo_a_secret() {
    for args in [
        &[
            "--hmac",
            "hunter2",
            "--hmac-file",
            "/x",
            "request",
            "h:1",
            "u",
        ][..],
        &[
            "--hmac", "hunter2", "--hmac", "hunter3", "request", "h:1", "u",
        ],
        &["--hmac", "hunter2", "request"],
        &["--cipher", "hunter2", "request", "h:1", "u", "--count", "0"],
    ] {
        let out = run(args);
        out.assert_code(2);
        assert!(
            !out.stderr.contains("hunter") && !out.stdout.contains("hunter"),
            "{args:?}: {}",
            out.stderr
        );
    }
}
