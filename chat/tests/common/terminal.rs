//! Running `chat` at a terminal from a test: a pseudo-terminal (`pty-process`) whose output is
//! rendered by a VT100 parser (`vt100`), so that a test types keys and reads the screen as a person
//! sees it. The process is killed when its guard drops.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, missing_docs)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{CHAT, LIMIT};

pub const ROWS: u16 = 40;
pub const COLS: u16 = 140;

/// Keys as a terminal sends them (xterm).
pub const LEFT: &str = "\x1b[D";
pub const RIGHT: &str = "\x1b[C";
pub const UP: &str = "\x1b[A";
pub const HOME: &str = "\x1b[H";
pub const END: &str = "\x1b[F";
pub const BACKSPACE: &str = "\x7f";
pub const TAB: &str = "\t";
pub const ENTER: &str = "\r";
pub const CTRL_C: &str = "\x03";

/// A chat at a terminal.
pub struct TermChat {
    pub nick: String,
    child: Child,
    keys: File,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl TermChat {
    /// Start `chat --nick NICK` at a terminal of [`ROWS`] x [`COLS`], with its files in
    /// `home/dir`, on 127.0.0.1 and the multicast port `group_port` (the timings of
    /// `Chat::start`), and wait for its prompt.
    pub fn start(home: &Path, dir: &str, nick: &str, group_port: u16) -> TermChat {
        Self::start_with(home, dir, nick, group_port, &[])
    }

    /// [`start`](Self::start) with more flags.
    pub fn start_with(
        home: &Path,
        dir: &str,
        nick: &str,
        group_port: u16,
        extra: &[&str],
    ) -> TermChat {
        let (pty, pts) = pty_process::blocking::open().expect("open a pty");
        pty.resize(pty_process::Size::new(ROWS, COLS))
            .expect("size the pty");
        let identity = home.join(dir).join("identity");
        let port = group_port.to_string();
        let child = pty_process::blocking::Command::new(CHAT)
            .args(["--nick", nick, "--identity"])
            .arg(&identity)
            .args(["--bind", "127.0.0.1", "--group-port", &port])
            .args(["--advert-interval-ms", "200", "--peer-timeout-ms", "15000"])
            .args(["--ack-timeout-ms", "500"])
            .args(extra)
            .env_remove("NETAIO_CHAT_ROOM_SECRET")
            .env_remove("NO_COLOR")
            .env("TERM", "xterm")
            .env("RUST_LOG", "warn")
            .spawn(pts)
            .expect("spawn chat on the pty");
        let fd: OwnedFd = pty.into();
        let mut output = File::from(fd.try_clone().expect("dup the pty"));
        let keys = File::from(fd);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZero::new(ROWS).unwrap(),
            std::num::NonZero::new(COLS).unwrap(),
            0,
        )));
        let s = screen.clone();
        // Ends when the chat exits (the pty then reads EIO).
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().process(&buf[..n]);
            }
        });
        let mut chat = TermChat {
            nick: nick.to_owned(),
            child,
            keys,
            screen,
        };
        let prompt = format!("{nick}> ");
        chat.wait_screen("its prompt", |s| {
            s.lines()
                .any(|l| l == prompt.trim_end() || l.starts_with(&prompt))
        });
        chat
    }

    /// Type `keys` (text and key sequences).
    pub fn keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("type");
        self.keys.flush().expect("flush");
    }

    /// The screen's text, one line per row (trailing blanks removed).
    pub fn screen(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// The screen's non-empty rows, with their `[HH:MM:SS] ` stamp removed where they have one.
    pub fn rows(&self) -> Vec<String> {
        self.screen()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let stamped = l.len() >= 11 && l.starts_with('[') && l.as_bytes()[9] == b']';
                if stamped {
                    l[11..].to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect()
    }

    /// The row the cursor is on (the prompt and the line being typed).
    pub fn cursor_row(&self) -> String {
        let parser = self.screen.lock().unwrap();
        let (row, _) = parser.screen().cursor_position();
        // By physical row: `contents()` joins a row that wrapped with the next one.
        parser
            .screen()
            .rows(0, COLS)
            .nth(row.into())
            .map(|r| r.trim_end().to_owned())
            .unwrap_or_default()
    }

    /// Wait (bounded) until `pred` holds for the screen's text.
    pub fn wait_screen(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the screen never showed {what}:\n{screen}",
                self.nick
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (bounded) until a row (stamp removed) satisfies `pred`.
    pub fn wait_row(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !self.rows().iter().any(|r| pred(r)) {
            assert!(
                Instant::now() < deadline,
                "{}: no row shows {what}:\n{}",
                self.nick,
                self.screen()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.nick);
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TermChat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
