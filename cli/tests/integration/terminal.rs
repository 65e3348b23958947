//! The live views at a terminal: `netaio` under a pseudo-terminal (`pty-process`), its output
//! rendered by a VT100 parser (`vt100`) so that a test reads the screen as a person sees it
//! (the chat's tests do the same); and, with stdout not a terminal, no escape codes and no
//! carriage returns at all.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{LIMIT, NETAIO, Proc, netaio, run, serve};

const ROWS: u16 = 40;
const COLS: u16 = 160;

/// `netaio` at a terminal: its screen and every byte it wrote; killed on drop.
struct Term {
    child: Child,
    screen: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
}

impl Term {
    fn start(args: &[&str]) -> Term {
        let (pty, pts) = pty_process::blocking::open().expect("open a pty");
        pty.resize(pty_process::Size::new(ROWS, COLS))
            .expect("size the pty");
        let child = pty_process::blocking::Command::new(NETAIO)
            .args(args)
            .env("TERM", "xterm")
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove("NETAIO_HMAC")
            .env_remove("NETAIO_HMAC_FILE")
            .env_remove("NETAIO_CIPHER")
            .env_remove("NETAIO_CIPHER_FILE")
            .env_remove("NETAIO_IDENTITY")
            .spawn(pts)
            .expect("spawn netaio on the pty");
        let fd: OwnedFd = pty.into();
        let mut output = File::from(fd);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZero::new(ROWS).unwrap(),
            std::num::NonZero::new(COLS).unwrap(),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (screen.clone(), raw.clone());
        // Ends when the program exits (the pty then reads EIO).
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().process(&buf[..n]);
                r.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Term { child, screen, raw }
    }

    /// The screen's text, one line per row.
    fn screen(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Everything written so far.
    fn raw(&self) -> String {
        String::from_utf8_lossy(&self.raw.lock().unwrap()).into_owned()
    }

    /// Wait (bounded) until `pred` holds for the screen's text.
    fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{screen}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (bounded) for the exit; its code.
    fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "did not exit within {LIMIT:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port for a discovery group of the test's own.
fn free_udp_port() -> String {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

/// `discover` on 127.0.0.1 with a group of the test's own.
fn discover_args<'a>(group_port: &'a str, app: &'a str, id: &'a str) -> Vec<&'a str> {
    vec![
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
    ]
}

/// The rows of the live table's header on a screen.
fn headers(screen: &str) -> usize {
    screen
        .lines()
        .filter(|l| l.contains("peer(s)   (Ctrl-C to stop)"))
        .count()
}

#[test]
fn discover_at_a_terminal_redraws_its_table_in_place() {
    let group_port = free_udp_port();
    let app = format!("cli-term-{}", std::process::id());
    let mut alpha_args = vec!["--json"];
    alpha_args.extend(discover_args(&group_port, &app, "alpha"));
    let mut alpha = Proc::spawn(netaio(&alpha_args));
    alpha.event("started");
    let mut beta_args = discover_args(&group_port, &app, "beta");
    beta_args.extend(["--seconds", "4"]);
    let mut beta = Term::start(&beta_args);
    let screen = beta.wait_screen("alpha in the table", |s| {
        s.lines()
            .any(|l| l.starts_with("1 peer(s)   (Ctrl-C to stop)"))
            && s.lines()
                .any(|l| l.starts_with("alpha ") && l.contains("127.0.0.1:"))
    });
    // Redrawn in place: the screen cleared each time, one header on it however many redraws.
    assert_eq!(headers(&screen), 1, "{screen}");
    let header = screen.lines().nth(1).unwrap();
    for column in ["id", "addresses", "data", "last heard"] {
        assert!(header.contains(column), "{header}");
    }
    let raw = beta.raw();
    assert!(raw.matches("\x1b[2J\x1b[H").count() >= 2, "{raw:?}");
    // At the end, the peers heard below the table.
    assert_eq!(beta.wait(), Some(0));
    let screen = beta.wait_screen("the final list", |s| s.contains("1 peer(s) heard"));
    assert_eq!(headers(&screen), 1, "{screen}");
    alpha.event_where("disconnected", |v| v["peer"]["id"] == "beta");
}

#[test]
fn bench_at_a_terminal_shows_progress_then_the_summary() {
    let (_server, port) = serve("127.0.0.1:0", &[]);
    let addr = format!("127.0.0.1:{port}");
    let mut bench = Term::start(&["bench", &addr, "--seconds", "1.5"]);
    assert_eq!(bench.wait(), Some(0));
    let screen = bench.wait_screen("the summary", |s| {
        s.lines()
            .any(|l| l.starts_with("requests ") && l.contains(" ok, 0 failed"))
    });
    let rows: Vec<&str> = screen
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    // The progress line, rewritten in place on one row (a carriage return each time), then the
    // summary below it.
    let progress = rows
        .iter()
        .position(|l| l.contains(" requests, ") && l.contains(" msgs/s, ") && l.ends_with(" s"))
        .unwrap_or_else(|| panic!("no progress line:\n{screen}"));
    let summary = rows
        .iter()
        .position(|l| l.starts_with("requests "))
        .unwrap();
    assert!(progress < summary, "{screen}");
    assert_eq!(
        rows.iter()
            .filter(|l| l.contains(" msgs/s, ") && l.ends_with(" s"))
            .count(),
        1,
        "{screen}"
    );
    let raw = bench.raw();
    assert!(raw.matches(" requests, ").count() >= 2, "{raw:?}");
}

#[test]
fn without_a_terminal_no_escape_codes_or_carriage_returns() {
    let (_server, port) = serve("127.0.0.1:0", &[]);
    let out = run(&["bench", &format!("127.0.0.1:{port}"), "--seconds", "1"]);
    out.assert_code(0);
    assert!(out.stdout.starts_with("requests "), "{}", out.stdout);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
    }
    let group_port = free_udp_port();
    let app = format!("cli-plain-{}", std::process::id());
    let mut alpha_args = vec!["--json"];
    alpha_args.extend(discover_args(&group_port, &app, "alpha"));
    let mut alpha = Proc::spawn(netaio(&alpha_args));
    alpha.event("started");
    let mut beta = discover_args(&group_port, &app, "beta");
    beta.extend(["--seconds", "2"]);
    let out = run(&beta);
    out.assert_code(0);
    assert!(out.stdout.contains("1 peer(s) heard"), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("discovered ") && l.contains("alpha")),
        "{}",
        out.stdout
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
    }
}
