//! The `service` example (a `#[service]` key-value store) run as a user runs it: it prints every
//! exchange, including the error replies as typed errors, and exits 0. The wait is bounded, and the
//! child is killed if it does not finish.

// The helpers below are test code too (clippy.toml allows these only inside `#[test]` functions):
// a panic is how they report a failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const SERVICE: &str = env!("CARGO_BIN_EXE_service");

/// Generous: a debug build on a busy 2-core machine.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn service_example_prints_the_exchange_and_exits_0() {
    let mut cmd = Command::new(SERVICE);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn");
    }
    let mut child = cmd.spawn().expect("spawn service");
    let (tx, rx) = mpsc::channel();
    for (is_stdout, mut pipe) in [
        (
            true,
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn Read + Send>,
        ),
        (false, Box::new(child.stderr.take().expect("piped stderr"))),
    ] {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send((is_stdout, bytes));
        });
    }
    let deadline = Instant::now() + LIMIT;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((true, bytes)) => stdout = bytes,
            Ok((false, bytes)) => stderr = bytes,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("service did not finish within {LIMIT:?}");
            }
        }
    }
    let status = child.wait().expect("wait for service");
    let out = Output {
        status,
        stdout,
        stderr,
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "service failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let expected = [
        r#"> create "color" "blue""#,
        r#"< OK "color" "created""#,
        r#"< OK "size" "created""#,
        r#"< error RequestError::Error: ERROR "ERROR" "key exists""#,
        r#"< RESPOND_URI "color" "blue""#,
        r#"< OK "color" "updated""#,
        r#"< RESPOND_URI "color" "green""#,
        r#"< RESPOND_URI "keys" "color,size""#,
        r#"< OK "size" "deleted""#,
        r#"< error RequestError::NotFound: NOT_FOUND "ERROR" "key not found""#,
        r#"< RESPOND_URI "keys" "color""#,
        "server shut down",
        "service example finished",
    ];
    // In order: each expected line appears after the previous one.
    let mut lines = stdout.lines();
    for line in expected {
        assert!(
            lines.any(|l| l == line),
            "missing (or out of order) line {line:?} in stdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}
