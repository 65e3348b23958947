//! Live interoperability with the real Python library, `netaio==0.0.9` (and `packify==0.4.0`)
//! from PyPI: the Rust `compat_server` and `compat_client` against the Python programs in
//! `examples/python/` (`compat_server.py`, `compat_client.py`), in both directions, for every
//! plugin setup; a wrong secret refused both ways; pub/sub across languages (also against the
//! subscribe handlers of the Python README, which confirm with empty content); TCP peer adverts from
//! a Python client to a Rust server; UDP request/response both ways between `compat_udp_node` and
//! `compat_udp_node.py`.
//!
//! The interpreter is `$NETAIO_PYTHON` (set by `.ci/run`), else `.venv/bin/python` at the
//! repository root; when neither exists, the first test creates `.venv` and installs the pinned
//! packages with pip (network access to PyPI needed once). A Python without those exact versions
//! is an error, never a skip.
//!
//! Everything runs on 127.0.0.1 with ports picked by the OS; every child process is killed when
//! its guard drops, and every wait is bounded.

// Test code: a panic is how the helpers report a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const COMPAT_SERVER: &str = env!("CARGO_BIN_EXE_compat_server");
const COMPAT_CLIENT: &str = env!("CARGO_BIN_EXE_compat_client");
const COMPAT_UDP_NODE: &str = env!("CARGO_BIN_EXE_compat_udp_node");

/// How long one program may run (generous for a loaded 2-core machine; they take well under a
/// second).
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// How long the servers live at most (each test kills its server when done).
const SERVER_SECONDS: &str = "60";

/// The pinned versions the recorded vectors come from.
const PIP_PACKAGES: [&str; 2] = ["netaio==0.0.9", "packify==0.4.0"];
const CHECK_VERSIONS: &str = "import netaio, packify, sys; \
    v = (netaio.version(), packify.version()); \
    sys.exit(0 if v == ('0.0.9', '0.4.0') else 'need netaio 0.0.9 and packify 0.4.0, found %s %s' % v)";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the examples crate is in the workspace")
        .to_path_buf()
}

pub(crate) fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// Run a setup command to completion (bounded), panicking with its output on failure.
fn setup(cmd: &mut Command, what: &str, limit: Duration) {
    let out = Proc::spawn(cmd.stdin(Stdio::null())).finish(limit);
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

fn versions_ok(python: &Path) -> Result<(), String> {
    let out = Command::new(python)
        .args(["-c", CHECK_VERSIONS])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The Python interpreter with netaio 0.0.9 (found or installed once per test run).
pub(crate) fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(p) = std::env::var_os("NETAIO_PYTHON") {
            let p = PathBuf::from(p);
            if let Err(e) = versions_ok(&p) {
                panic!("NETAIO_PYTHON={} is not usable: {e}", p.display());
            }
            return p;
        }
        let venv = repo_root().join(".venv");
        let p = venv.join("bin").join("python");
        if p.exists() && versions_ok(&p).is_ok() {
            return p;
        }
        eprintln!(
            "python_interop: creating {} with {}",
            venv.display(),
            PIP_PACKAGES.join(" ")
        );
        if !p.exists() {
            setup(
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
                "python3 -m venv .venv",
                Duration::from_secs(120),
            );
        }
        setup(
            Command::new(&p)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(PIP_PACKAGES),
            "pip install netaio==0.0.9 packify==0.4.0",
            Duration::from_secs(300),
        );
        if let Err(e) = versions_ok(&p) {
            panic!("{} still lacks the pinned packages: {e}", p.display());
        }
        p
    })
}

/// A running program: stdout lines arrive on `lines`, stderr is collected; killed on drop.
pub(crate) struct Proc {
    child: Child,
    name: String,
    lines: mpsc::Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// A finished program.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Proc {
    pub(crate) fn spawn(cmd: &mut Command) -> Proc {
        let name = format!("{cmd:?}");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, all) = (child.stdout.take().unwrap(), stdout.clone());
        // Both readers end at EOF, that is when the program exits (or is killed).
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                all.lock().unwrap().push_str(&format!("{line}\n"));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut err, all) = (child.stderr.take().unwrap(), stderr.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc {
            child,
            name,
            lines,
            stdout,
            stderr,
        }
    }

    /// The next stdout line, within `limit`.
    pub(crate) fn line(&mut self, limit: Duration) -> String {
        match self.lines.recv_timeout(limit) {
            Ok(l) => l,
            Err(e) => panic!(
                "{}: no line within {limit:?} ({e}); stderr:\n{}",
                self.name,
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// Wait for `listening P` and return P.
    pub(crate) fn port(&mut self) -> u16 {
        let first = self.line(LIMIT);
        first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p != 0)
            .unwrap_or_else(|| panic!("{}: first line is not `listening P`: {first:?}", self.name))
    }

    /// Wait (bounded) for the program to exit; kill it if it does not.
    fn finish(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}; stderr:\n{}",
                self.name,
                self.stderr.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(10));
        };
        // The readers finish at EOF, right after the exit.
        let drained = Instant::now() + Duration::from_secs(5);
        while self.lines.recv_timeout(Duration::from_millis(50)).is_ok() && Instant::now() < drained
        {
        }
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Finished {
    fn assert_ok(&self, what: &str, last_line: &str) {
        assert!(
            self.status.success() && self.stdout.lines().last() == Some(last_line),
            "{what}: expected exit 0 and `{last_line}`, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// The plugin setups of the Python library both sides are tested with.
const PLAIN: &[&str] = &[];
const HMAC: &[&str] = &["--hmac", "hmac secret"];
const CIPHER: &[&str] = &["--cipher", "cipher key"];
const HMAC_CIPHER: &[&str] = &["--hmac", "hmac secret", "--cipher", "cipher key"];
const CIPHER_CLEAR_URI: &[&str] = &["--cipher", "cipher key", "--no-encrypt-uri"];

fn rust_server(plugins: &[&str]) -> (Proc, String) {
    let mut p = Proc::spawn(
        Command::new(COMPAT_SERVER)
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--seconds",
                SERVER_SECONDS,
            ])
            .args(plugins),
    );
    let port = p.port().to_string();
    (p, port)
}

fn python_server(plugins: &[&str]) -> (Proc, String) {
    let mut p = Proc::spawn(
        Command::new(python())
            .arg(python_dir().join("compat_server.py"))
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--seconds",
                SERVER_SECONDS,
            ])
            .args(plugins),
    );
    let port = p.port().to_string();
    (p, port)
}

fn python_client(port: &str, args: &[&str]) -> Proc {
    Proc::spawn(
        Command::new(python())
            .arg(python_dir().join("compat_client.py"))
            .args(["--port", port, "--timeout", "5"])
            .args(args),
    )
}

fn rust_client(port: &str, args: &[&str]) -> Proc {
    let mut cmd = Command::new(COMPAT_CLIENT);
    cmd.args(["--port", port]).args(args);
    if !args.contains(&"--timeout") {
        cmd.args(["--timeout", "5"]);
    }
    Proc::spawn(&mut cmd)
}

/// A Python client (echo of 0 to 1,000 bytes, then pub/sub) against the Rust server.
fn python_client_against_rust_server(plugins: &[&str]) {
    let (_server, port) = rust_server(plugins);
    let mut args = vec!["--n", "12"];
    args.extend_from_slice(plugins);
    python_client(&port, &args)
        .finish(LIMIT)
        .assert_ok("python client -> rust server", "ok 12");
}

/// The Rust client (echo of 0 to 1,000 bytes, then pub/sub) against a Python server.
fn rust_client_against_python_server(plugins: &[&str]) {
    let (_server, port) = python_server(plugins);
    let mut args = vec!["--n", "12"];
    args.extend_from_slice(plugins);
    rust_client(&port, &args)
        .finish(LIMIT)
        .assert_ok("rust client -> python server", "ok 12");
}

#[test]
fn python_client_rust_server_plain() {
    python_client_against_rust_server(PLAIN);
}

#[test]
fn python_client_rust_server_hmac() {
    python_client_against_rust_server(HMAC);
}

#[test]
fn python_client_rust_server_cipher() {
    python_client_against_rust_server(CIPHER);
}

#[test]
fn python_client_rust_server_hmac_and_cipher() {
    python_client_against_rust_server(HMAC_CIPHER);
}

#[test]
fn python_client_rust_server_cipher_without_uri_encryption() {
    python_client_against_rust_server(CIPHER_CLEAR_URI);
}

#[test]
fn rust_client_python_server_plain() {
    rust_client_against_python_server(PLAIN);
}

#[test]
fn rust_client_python_server_hmac() {
    rust_client_against_python_server(HMAC);
}

#[test]
fn rust_client_python_server_cipher() {
    rust_client_against_python_server(CIPHER);
}

#[test]
fn rust_client_python_server_hmac_and_cipher() {
    rust_client_against_python_server(HMAC_CIPHER);
}

#[test]
fn rust_client_python_server_cipher_without_uri_encryption() {
    rust_client_against_python_server(CIPHER_CLEAR_URI);
}

/// A Python server whose subscribe and unsubscribe handlers are the Python README's: they confirm
/// with empty content, which the Rust client accepts as the Python library does (type and uri).
#[test]
fn rust_client_python_server_with_the_readme_subscribe_handlers() {
    for plugins in [PLAIN, HMAC_CIPHER] {
        let (_server, port) = python_server(&[plugins, &["--readme-handlers"]].concat());
        let mut args = vec!["--n", "2"];
        args.extend_from_slice(plugins);
        rust_client(&port, &args)
            .finish(LIMIT)
            .assert_ok("rust client -> python README server", "ok 2");
    }
}

#[test]
fn a_python_client_with_a_wrong_secret_is_refused_by_the_rust_server() {
    let (_server, port) = rust_server(HMAC_CIPHER);
    // The Rust server answers AUTH_ERROR "HMAC auth failed" without a MAC, as Python does; the
    // Python client reads it with its own checks switched off.
    python_client(
        &port,
        &[
            "--hmac",
            "wrong",
            "--cipher",
            "cipher key",
            "--expect-rejection",
        ],
    )
    .finish(LIMIT)
    .assert_ok("python client with a wrong secret", "rejected");
    // The right secret is not refused (the check above can fail), and the server still serves.
    let right = python_client(
        &port,
        &[
            "--hmac",
            "hmac secret",
            "--cipher",
            "cipher key",
            "--expect-rejection",
            "--timeout",
            "1",
        ],
    )
    .finish(LIMIT);
    assert!(
        !right.status.success() && right.stderr.contains("RESPOND_URI"),
        "the right secret must be answered: {}\n{}",
        right.stdout,
        right.stderr
    );
}

#[test]
fn the_rust_client_with_a_wrong_secret_is_refused_by_the_python_server() {
    let (_server, port) = python_server(HMAC);
    let started = Instant::now();
    let out = rust_client(&port, &["--hmac", "wrong", "--n", "3", "--timeout", "8"]).finish(LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("RequestError::Auth") && out.stderr.contains("HMAC auth failed"),
        "the reason names Python's AUTH_ERROR: {}",
        out.stderr
    );
    // A typed error from Python's reply, not the 8 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn pubsub_from_a_rust_publisher_to_a_python_subscriber() {
    let (_server, port) = rust_server(HMAC_CIPHER);
    let mut subscriber = python_client(
        &port,
        &["--listen"]
            .iter()
            .chain(HMAC_CIPHER)
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_eq!(subscriber.line(LIMIT), "subscribed");
    // compat_client publishes "hello from rust" to the topic (with --n 0: pub/sub only).
    let mut args = vec!["--n", "0"];
    args.extend_from_slice(HMAC_CIPHER);
    rust_client(&port, &args)
        .finish(LIMIT)
        .assert_ok("rust publisher", "ok 0");
    subscriber
        .finish(LIMIT)
        .assert_ok("python subscriber", "notified hello from rust");
}

#[test]
fn a_python_client_advertises_its_peer_to_the_rust_server() {
    let (mut server, port) = rust_server(HMAC);
    let mut args = vec!["--advertise", "py-client-1"];
    args.extend_from_slice(HMAC);
    let out = python_client(&port, &args).finish(LIMIT);
    out.assert_ok("python peer advert", "ok peers");
    // The Python client learned the Rust server's peer (id and packify peer data) ...
    assert!(
        out.stdout
            .contains("peer netaio-rs-compat-server lang=rust\n"),
        "{}",
        out.stdout
    );
    // ... and the Rust server learned the Python client's, then its DISCONNECT on close.
    assert_eq!(server.line(LIMIT), "peer py-client-1");
    assert_eq!(server.line(LIMIT), "peer-gone py-client-1");
}

#[test]
fn the_rust_programs_talk_to_each_other_and_refuse_bad_usage() {
    let (_server, port) = rust_server(HMAC_CIPHER);
    let mut args = vec!["--n", "5"];
    args.extend_from_slice(HMAC_CIPHER);
    rust_client(&port, &args)
        .finish(LIMIT)
        .assert_ok("rust client -> rust server", "ok 5");
    for (program, args) in [
        (COMPAT_CLIENT, vec!["--port", &port]),
        (
            COMPAT_CLIENT,
            vec!["--port", &port, "--n", "1", "--timeout", "0"],
        ),
        (COMPAT_SERVER, vec!["--hmac", "x"]),
        (COMPAT_SERVER, vec!["--port", "0", "--no-such-flag"]),
    ] {
        let out = Proc::spawn(Command::new(program).args(&args)).finish(LIMIT);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{program} {args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("Usage:"), "{}", out.stderr);
    }
}

/// A UDP node of either language answering requests, and the other sending `n` to it.
fn udp_exchange(server_lang: &str, plugins: &[&str]) {
    let serve = ["--port", "0", "--seconds", SERVER_SECONDS];
    let mut server = if server_lang == "python" {
        Proc::spawn(
            Command::new(python())
                .arg(python_dir().join("compat_udp_node.py"))
                .args(serve)
                .args(plugins),
        )
    } else {
        Proc::spawn(Command::new(COMPAT_UDP_NODE).args(serve).args(plugins))
    };
    let peer = server.port().to_string();
    let send = [
        "--port",
        "0",
        "--peer-port",
        &peer,
        "--send",
        "12",
        "--timeout",
        "5",
    ];
    let sender = if server_lang == "python" {
        Proc::spawn(Command::new(COMPAT_UDP_NODE).args(send).args(plugins))
    } else {
        Proc::spawn(
            Command::new(python())
                .arg(python_dir().join("compat_udp_node.py"))
                .args(send)
                .args(plugins),
        )
    };
    sender
        .finish(LIMIT)
        .assert_ok(&format!("udp requests to a {server_lang} node"), "ok 12");
}

#[test]
fn udp_rust_node_to_python_node_plain() {
    udp_exchange("python", PLAIN);
}

#[test]
fn udp_rust_node_to_python_node_hmac_and_cipher() {
    udp_exchange("python", HMAC_CIPHER);
}

#[test]
fn udp_rust_node_to_python_node_cipher_without_uri_encryption() {
    udp_exchange("python", CIPHER_CLEAR_URI);
}

#[test]
fn udp_python_node_to_rust_node_plain() {
    udp_exchange("rust", PLAIN);
}

#[test]
fn udp_python_node_to_rust_node_hmac_and_cipher() {
    udp_exchange("rust", HMAC_CIPHER);
}

#[test]
fn udp_python_node_to_rust_node_cipher_without_uri_encryption() {
    udp_exchange("rust", CIPHER_CLEAR_URI);
}

#[test]
fn udp_nodes_with_different_secrets_do_not_answer_each_other() {
    // Rust sends with the wrong secret: the Python node answers AUTH_ERROR without a MAC, which
    // the Rust node refuses (it never accepts an unauthenticated datagram); the request times out.
    let mut server = Proc::spawn(
        Command::new(python())
            .arg(python_dir().join("compat_udp_node.py"))
            .args(["--port", "0", "--seconds", SERVER_SECONDS])
            .args(HMAC),
    );
    let peer = server.port().to_string();
    let out = Proc::spawn(Command::new(COMPAT_UDP_NODE).args([
        "--port",
        "0",
        "--peer-port",
        &peer,
        "--send",
        "1",
        "--timeout",
        "1",
        "--hmac",
        "wrong",
    ]))
    .finish(LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("no reply within"), "{}", out.stderr);
}
