//! `--python-compat` against the Python library's server (`examples/python/compat_server.py`,
//! netaio 0.0.9 from the venv at `$NETAIO_PYTHON`, which `.ci/run` sets up, else `.venv` at the
//! repository root): requests with the legacy HMAC and cipher, a wrong secret, pub/sub; and the
//! Python client (`compat_client.py`) against `netaio serve --python-compat`.

use std::path::{Path, PathBuf};

use crate::common::{Proc, run};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("NETAIO_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with netaio 0.0.9: set NETAIO_PYTHON or create .venv (bash .ci/run does; so \
         does `cargo test -p netaio-examples --test run python_interop`)"
    );
    venv
}

/// The Python server with these plugin flags; its port.
fn python_server(flags: &[&str]) -> (Proc, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/compat_server.py");
    let mut cmd = std::process::Command::new(python());
    cmd.arg(script)
        .args(["--port", "0", "--seconds", "60"])
        .args(flags);
    let mut p = Proc::spawn(cmd);
    let first = p.line();
    let port = first
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not `listening P`: {first:?}"));
    (p, port)
}

#[test]
fn requests_to_the_python_server_with_its_plugins() {
    for flags in [
        &[][..],
        &["--hmac", "s3cret"],
        &["--hmac", "s3cret", "--cipher", "k3y"],
    ] {
        let (_server, port) = python_server(flags);
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec!["--json", "--python-compat"];
        args.extend_from_slice(flags);
        args.extend(["request", &addr, "echo", "from the cli", "--timeout", "5"]);
        let out = run(&args);
        out.assert_code(0);
        let reply = &out.events("reply")[0];
        assert_eq!(
            (reply["type"].as_str(), reply["content"].as_str()),
            (Some("RESPOND_URI"), Some("from the cli")),
            "{flags:?}"
        );
    }
}

#[test]
fn a_wrong_secret_is_refused_by_the_python_server() {
    let (_server, port) = python_server(&["--hmac", "s3cret"]);
    let out = run(&[
        "--json",
        "--python-compat",
        "--hmac",
        "wrong",
        "request",
        &format!("127.0.0.1:{port}"),
        "echo",
        "x",
        "--timeout",
        "5",
    ]);
    out.assert_code(4);
    assert_eq!(out.events("failure")[0]["kind"], "auth_refused");
}

#[test]
fn subscribe_to_the_python_server_and_publish_through_it() {
    let (_server, port) = python_server(&["--hmac", "s3cret"]);
    let addr = format!("127.0.0.1:{port}");
    let mut sub = Proc::spawn(crate::common::netaio(&[
        "--json",
        "--python-compat",
        "--hmac",
        "s3cret",
        "subscribe",
        &addr,
        "topic",
        "--count",
        "1",
    ]));
    sub.event("subscribed");
    let out = run(&[
        "--json",
        "--python-compat",
        "--hmac",
        "s3cret",
        "call",
        &addr,
        "-t",
        "PUBLISH_URI",
        "topic",
        "hello python",
    ]);
    out.assert_code(0);
    assert_eq!(out.events("reply")[0]["content"], "published");
    let note = sub.event("notification");
    assert_eq!(
        (note["uri"].as_str(), note["content"].as_str()),
        (Some("topic"), Some("hello python"))
    );
    assert_eq!(sub.wait(), Some(0));
}

/// The Python client (`examples/python/compat_client.py`) run to its end against `port`.
fn python_client(port: u16, flags: &[&str]) -> crate::common::Finished {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/compat_client.py");
    let mut cmd = std::process::Command::new(python());
    cmd.arg(script)
        .args(["--port", &port.to_string(), "--n", "20", "--timeout", "5"])
        .args(flags);
    crate::common::run_with(cmd, None)
}

#[test]
fn the_python_client_against_netaio_serve_python_compat() {
    for flags in [
        &["--hmac", "s3cret"][..],
        &["--hmac", "s3cret", "--cipher", "k3y"],
    ] {
        let mut args = vec!["--python-compat"];
        args.extend_from_slice(flags);
        let (mut server, port) = crate::common::serve("127.0.0.1:0", &args);
        // Echo of 20 requests of 0 to 1,000 bytes, then subscribe, publish, unsubscribe.
        let out = python_client(port, flags);
        out.assert_code(0);
        assert_eq!(out.stdout.lines().last(), Some("ok 20"), "{out:?}");
        let first = server.event("received");
        assert_eq!(
            (first["type"].as_str(), first["uri"].as_str()),
            (Some("REQUEST_URI"), Some("echo/0"))
        );
    }
    // A Python client with the wrong secret is refused.
    let (_server, port) =
        crate::common::serve("127.0.0.1:0", &["--python-compat", "--hmac", "s3cret"]);
    let out = python_client(port, &["--hmac", "wrong", "--expect-rejection"]);
    out.assert_code(0);
    assert_eq!(out.stdout.lines().last(), Some("rejected"), "{out:?}");
}
