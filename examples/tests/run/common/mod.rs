//! What the examples' tests share: run an example binary to completion, bounded in time.

// Test code (clippy.toml allows these only inside `#[test]` functions): a panic reports a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Generous: a debug build on a busy 2-core machine.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Run `program` to completion within `LIMIT`; return (success, stdout, stderr).
pub fn run(program: &str) -> (bool, String, String) {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn");
    }
    let mut child = cmd.spawn().expect("spawn the example");
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
                panic!("{program} did not finish within {LIMIT:?}");
            }
        }
    }
    // Both pipes are closed: the process has exited.
    let status = child.wait().expect("wait for the example");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}
