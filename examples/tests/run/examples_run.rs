//! The example programs, run as a user runs them: `echo_server` on a free loopback port with
//! `echo_client` against it, the server's shutdown paths, usage errors, and `demo`.
//!
//! Every child process is killed when its guard drops (a failed assertion leaves nothing running),
//! and every wait is bounded.

// The helpers below are test code too (clippy.toml allows these only inside `#[test]` functions):
// a panic is how they report a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const ECHO_SERVER: &str = env!("CARGO_BIN_EXE_echo_server");
const ECHO_CLIENT: &str = env!("CARGO_BIN_EXE_echo_client");
const DEMO: &str = env!("CARGO_BIN_EXE_demo");

/// How long any one program may take (generous: debug builds on a busy 2-core machine).
const LIMIT: Duration = Duration::from_secs(60);

fn command(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    // Quiet by default; a developer's RUST_LOG still applies.
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn");
    }
    cmd
}

/// A running `echo_server`: its stdout lines arrive on `lines`; killed on drop.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl Server {
    /// Start `echo_server` with `args` and wait for its `listening P` line.
    fn start(args: &[&str]) -> Server {
        let mut child = command(ECHO_SERVER, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn echo_server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        // Ends (dropping `tx`) at EOF, that is when the server exits.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            lines,
            port: 0,
        };
        let first = server
            .lines
            .recv_timeout(LIMIT)
            .expect("echo_server printed no line (did it fail to bind?)");
        let port = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("first line is not `listening P`: {first:?}"));
        assert_ne!(port, 0, "the real port, not the requested 0");
        server.port = port;
        server
    }

    fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("try_wait");
        assert!(status.is_none(), "echo_server exited early: {status:?}");
    }

    /// Wait (bounded) for the server to exit on its own; its stdout closing is the event.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match self.lines.recv_timeout(limit) {
            Ok(line) => panic!("unexpected stdout line from echo_server: {line:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("echo_server did not exit within {limit:?}")
            }
        }
        self.child.wait().expect("wait for echo_server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a program to completion within `limit` (killed and failed otherwise) and collect its output.
fn run(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let (tx, rx) = mpsc::channel();
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let tx_err = tx.clone();
    thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        let _ = tx.send((true, b));
    });
    thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        let _ = tx_err.send((false, b));
    });
    let deadline = Instant::now() + limit;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((true, b)) => stdout = b,
            Ok((false, b)) => stderr = b,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} did not finish within {limit:?}");
            }
        }
    }
    // Both pipes are closed: the process has exited.
    let status = child.wait().expect("wait");
    Output {
        status,
        stdout,
        stderr,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_lines(output: &Output, expected: &[&str]) {
    let stdout = text(&output.stdout);
    for line in expected {
        assert!(
            stdout.lines().any(|l| l == *line),
            "missing line {line:?} in stdout:\n{stdout}\nstderr:\n{}",
            text(&output.stderr)
        );
    }
}

fn client_against(server: &Server, host: &str) -> Output {
    let port = server.port.to_string();
    run(
        command(ECHO_CLIENT, &["--port", &port, "--host", host]),
        LIMIT,
    )
}

const CLIENT_LINES: &[&str] = &[
    r#"> REQUEST_URI "echo" "hello from Rust""#,
    r#"< RESPOND_URI "echo" "hello from Rust""#,
    r#"< CONFIRM_SUBSCRIBE "news" """#,
    r#"< OK "news" "notified 1""#,
    r#"< NOTIFY_URI "news" "netaio 0.1 released" (notification)"#,
    r#"< CONFIRM_UNSUBSCRIBE "news" """#,
    "all replies as expected",
];

#[test]
fn echo_client_exchanges_with_echo_server() {
    let mut server = Server::start(&["--port", "0", "--bind", "127.0.0.1", "--seconds", "10"]);
    let out = client_against(&server, "127.0.0.1");
    assert!(
        out.status.success(),
        "echo_client failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_lines(&out, CLIENT_LINES);
    server.assert_running();
}

#[test]
fn echo_server_and_client_over_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine: nothing to check");
        return;
    }
    let mut server = Server::start(&["--port", "0", "--bind", "::1", "--seconds", "10"]);
    let out = client_against(&server, "::1");
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert_lines(&out, &[&format!("connected to [::1]:{}", server.port)]);
    assert_lines(&out, CLIENT_LINES);
    server.assert_running();
}

#[test]
fn echo_server_stops_after_seconds_with_status_0() {
    let mut server = Server::start(&["--port", "0", "--bind", "127.0.0.1", "--seconds", "1"]);
    let status = server.wait_exit(LIMIT);
    assert!(status.success(), "{status:?}");
}

/// A raw client that has made one request, so its connection is established and served.
fn connected_raw_client(port: u16) -> std::net::TcpStream {
    use netaio::message::{Header, PostcardCodec};
    use netaio::{Message, MessageType};
    use std::io::Write;

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(LIMIT)).expect("read timeout");
    let frame = Message::new(MessageType::REQUEST_URI, "echo", "raw")
        .to_bytes(&PostcardCodec)
        .expect("encode");
    stream.write_all(&frame).expect("write request");
    let mut header = [0u8; Header::LEN];
    stream.read_exact(&mut header).expect("reply header");
    let header = Header::from_bytes(&header).expect("valid header");
    assert_eq!(header.message_type, MessageType::RESPOND_URI);
    let mut rest = vec![0u8; header.frame_len() - Header::LEN];
    stream.read_exact(&mut rest).expect("reply body");
    stream
}

#[cfg(unix)]
#[test]
fn echo_server_shuts_down_gracefully_on_ctrl_c() {
    let mut server = Server::start(&["--port", "0", "--bind", "127.0.0.1", "--seconds", "60"]);
    let mut open = connected_raw_client(server.port);
    let pid = server.child.id().to_string();
    let kill = run(command("kill", &["-INT", &pid]), LIMIT);
    assert!(kill.status.success(), "kill -INT: {}", text(&kill.stderr));
    // Killed by the signal would be "no exit code"; a graceful shutdown returns 0.
    let status = server.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(0), "{status:?}");
    // The open connection was closed cleanly (EOF), not left hanging or reset.
    let mut buf = [0u8; 1];
    assert_eq!(open.read(&mut buf).expect("read after shutdown"), 0);
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let out = run(command(ECHO_SERVER, &["--port", "not-a-port"]), LIMIT);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid value 'not-a-port' for '--port <P>'"),
        "{err}"
    );
    assert!(err.contains("Usage: echo_server"), "{err}");

    let out = run(command(ECHO_CLIENT, &["--bogus", "1"]), LIMIT);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument '--bogus'"));

    let out = run(command(ECHO_SERVER, &["--help"]), LIMIT);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("Usage: echo_server"), "{help}");
    assert!(help.contains("--seconds <N>"), "{help}");
}

#[test]
fn echo_client_fails_with_the_reason_when_no_server() {
    // A port held by a socket that is bound but not listening: nothing else can take it while the
    // client runs, and connecting to it is refused.
    let reserved = tokio::net::TcpSocket::new_v4().expect("socket");
    reserved
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let port = reserved
        .local_addr()
        .expect("local addr")
        .port()
        .to_string();
    let out = run(command(ECHO_CLIENT, &["--port", &port]), LIMIT);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{err}"
    );
    drop(reserved);
}

#[test]
fn demo_prints_the_exchange_and_exits_0() {
    let out = run(command(DEMO, &[]), LIMIT);
    assert!(
        out.status.success(),
        "demo failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_lines(
        &out,
        &[
            r#"> REQUEST_URI "echo" "hello""#,
            r#"< RESPOND_URI "echo" "hello""#,
            r#"< error RequestError::NotFound: NOT_FOUND "" "not found""#,
            r#"< CONFIRM_SUBSCRIBE "news" """#,
            r#"< OK "news" "notified 1""#,
            r#"< NOTIFY_URI "news" "netaio 0.1 released" (notification, via the client router)"#,
            r#"< CONFIRM_UNSUBSCRIBE "news" """#,
            "client closed",
            "server shut down",
            "demo finished",
        ],
    );
}

/// Every example program, each with a flag it does not take.
const EVERY_PROGRAM: [&str; 12] = [
    env!("CARGO_BIN_EXE_asymmetric"),
    env!("CARGO_BIN_EXE_compat_client"),
    env!("CARGO_BIN_EXE_compat_server"),
    env!("CARGO_BIN_EXE_compat_udp_node"),
    DEMO,
    env!("CARGO_BIN_EXE_discovery"),
    ECHO_CLIENT,
    ECHO_SERVER,
    env!("CARGO_BIN_EXE_hashcash"),
    env!("CARGO_BIN_EXE_hmac_cipher"),
    env!("CARGO_BIN_EXE_service"),
    env!("CARGO_BIN_EXE_udp_node"),
];

#[test]
fn every_example_answers_help_and_refuses_an_unknown_flag() {
    for program in EVERY_PROGRAM {
        let name = program.rsplit('/').next().unwrap();
        let out = run(command(program, &["--help"]), LIMIT);
        assert_eq!(out.status.code(), Some(0), "{name} --help");
        let help = text(&out.stdout);
        assert!(help.contains(&format!("Usage: {name}")), "{name}: {help}");
        // The programs that take no arguments used to run their whole exchange here and exit 0.
        let out = run(command(program, &["--no-such-flag"]), LIMIT);
        assert_eq!(out.status.code(), Some(2), "{name} --no-such-flag");
        let err = text(&out.stderr);
        assert!(
            err.contains("unexpected argument '--no-such-flag'") && err.contains("Usage:"),
            "{name}: {err}"
        );
        assert!(out.stdout.is_empty(), "{name}: {}", text(&out.stdout));
    }
}

#[test]
fn example_log_lines_start_with_the_time() {
    let mut cmd = command(
        ECHO_SERVER,
        &["--port", "0", "--bind", "127.0.0.1", "--seconds", "1"],
    );
    cmd.env("RUST_LOG", "info");
    let out = run(cmd, LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("no `listening` log line in:\n{err}"));
    // `2026-01-31T12:34:56.123456Z  INFO netaio::...`: an RFC 3339 UTC time, then the level.
    let (time, rest) = line.split_once(' ').unwrap();
    assert!(
        time.len() >= 20
            && time.as_bytes()[4] == b'-'
            && time.as_bytes()[10] == b'T'
            && time.ends_with('Z')
            && time[..4].bytes().all(|b| b.is_ascii_digit()),
        "{line}"
    );
    assert!(rest.trim_start().starts_with("INFO"), "{line}");
}
