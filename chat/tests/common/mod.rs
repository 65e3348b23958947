//! Running `chat` processes from tests: stdin to type into, stdout lines collected by a thread,
//! every wait bounded, the process killed when its guard drops (a failed assertion leaves nothing
//! running).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code,
    missing_docs
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// The longest any one step may take (debug builds, several processes on a 2-core machine).
pub const LIMIT: Duration = Duration::from_secs(30);

/// A free UDP port on 127.0.0.1, for a test's own multicast group port (tests running at the same
/// time must not hear each other).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The numbers of `/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that failed an auth check (room secret HMAC or Ed25519 signature).
    pub auth: u64,
    /// Datagrams that failed decryption.
    pub decrypt: u64,
    /// Messages shown already (a retry or a replay with a fresh nonce).
    pub duplicates: u64,
    /// Messages from a changed key, not shown.
    pub withheld: u64,
}

/// A running chat.
pub struct Chat {
    pub nick: String,
    pub dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every stdout line so far.
    pub log: Vec<String>,
}

/// A line without its `[HH:MM:SS] ` prefix.
pub fn body(line: &str) -> &str {
    assert!(
        line.len() >= 11 && line.as_bytes()[0] == b'[' && line.as_bytes()[9] == b']',
        "line without a timestamp: {line:?}"
    );
    &line[11..]
}

impl Chat {
    /// Start `chat --nick NICK` with its files in `home/dir` on 127.0.0.1, with `extra` flags,
    /// and wait for its `listening on` line.
    pub fn start(home: &Path, dir: &str, nick: &str, group_port: u16, extra: &[&str]) -> Chat {
        let port = group_port.to_string();
        let mut flags = vec!["--bind", "127.0.0.1", "--group-port", &port];
        flags.extend_from_slice(extra);
        Self::spawn(&[], home, dir, nick, &flags)
    }

    /// Start `PREFIX... chat --nick NICK --identity home/dir/identity` with short timings (an
    /// advert every 200 ms, unless `flags` has `--advert-interval-ms`) and `flags` (the address to bind among them), and wait for its `listening on` line. `prefix`
    /// runs it through another program (`ip netns exec NS`).
    pub fn spawn(prefix: &[&str], home: &Path, dir: &str, nick: &str, flags: &[&str]) -> Chat {
        let dir = home.join(dir);
        let identity = dir.join("identity");
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(CHAT);
                c
            }
            None => Command::new(CHAT),
        };
        cmd.args(["--nick", nick, "--identity"]).arg(&identity);
        // Short timings, unless `flags` set them.
        if !flags.contains(&"--advert-interval-ms") {
            cmd.args(["--advert-interval-ms", "200", "--peer-timeout-ms", "15000"]);
        }
        cmd.args(["--ack-timeout-ms", "500"])
            .args(flags)
            .env_remove("NETAIO_CHAT_ROOM_SECRET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn().expect("spawn chat");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut chat = Chat {
            nick: nick.to_owned(),
            dir,
            child,
            stdin,
            lines,
            log: Vec::new(),
        };
        chat.wait_for("its listening line", |l| l.starts_with("* listening on "));
        chat
    }

    /// The identity file.
    pub fn identity(&self) -> PathBuf {
        self.dir.join("identity")
    }

    /// The address it listens on, from its `listening on ADDR,` line.
    pub fn addr(&self) -> std::net::SocketAddr {
        let line = self
            .log
            .iter()
            .find_map(|l| body(l).strip_prefix("* listening on "))
            .expect("listening line");
        line.split(',').next().unwrap().parse().unwrap()
    }

    /// Type a line.
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to chat");
        stdin.flush().expect("flush chat stdin");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Close its stdin (end of input).
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// Take the lines printed so far.
    pub fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
    }

    /// The position after the last line read, to wait for lines printed after it.
    pub fn mark(&mut self) -> usize {
        self.drain();
        self.log.len()
    }

    /// The first line from position `from` on (read already or arriving within [`LIMIT`]) whose
    /// body satisfies `pred`.
    pub fn wait_from(&mut self, from: usize, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        let mut next = from;
        loop {
            while next < self.log.len() {
                if pred(body(&self.log[next])) {
                    return self.log[next].clone();
                }
                next += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.log.push(l),
                Err(_) => panic!(
                    "{}: no line for {what} within {LIMIT:?}; its output:\n{}",
                    self.nick,
                    self.log.join("\n")
                ),
            }
        }
    }

    /// [`wait_from`](Self::wait_from) the start.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_from(0, what, pred)
    }

    /// How many lines so far have a body satisfying `pred`.
    pub fn count(&mut self, pred: impl Fn(&str) -> bool) -> usize {
        self.drain();
        self.log.iter().filter(|l| pred(body(l))).count()
    }

    /// Run `/stats` and return its numbers.
    pub fn stats(&mut self) -> Stats {
        let from = self.mark();
        self.type_line("/stats");
        let line = self.wait_from(from, "its /stats line", |l| l.starts_with("* dropped: "));
        let num = |key: &str| -> u64 {
            let rest = line
                .split(key)
                .nth(1)
                .unwrap_or_else(|| panic!("{key} in {line}"));
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        Stats {
            auth: num("failed authentication"),
            decrypt: num("failed decryption"),
            duplicates: num("duplicates"),
            withheld: num("withheld"),
        }
    }

    /// Run `/stats` until `pred` holds on its numbers (bounded), returning them.
    pub fn stats_until(&mut self, what: &str, pred: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + LIMIT;
        loop {
            let s = self.stats();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{}: /stats never showed {what}; last {s:?}",
                self.nick
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Run `/peers` and return the lines listing people.
    pub fn peers(&mut self) -> Vec<String> {
        let from = self.mark();
        self.type_line("/peers");
        let head = self.wait_from(from, "its /peers header", |l| {
            l == "* nobody else is here yet" || (l.starts_with("* ") && l.ends_with(" here:"))
        });
        let n: usize = match body(&head) {
            "* nobody else is here yet" => 0,
            h => h[2..].split(' ').next().unwrap().parse().unwrap(),
        };
        let start = self.log.iter().rposition(|l| *l == head).unwrap() + 1;
        for i in 0..n {
            self.wait_from(start + i, "a /peers row", |l| l.starts_with("  "));
        }
        self.log[start..start + n]
            .iter()
            .map(|l| body(l).trim().to_owned())
            .collect()
    }

    /// Type `/quit` and wait for the process to exit.
    pub fn quit(&mut self) -> ExitStatus {
        self.type_line("/quit");
        self.wait_exit()
    }

    /// Wait (bounded) for the process to exit, then read what is left of its output.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread ends at EOF; collect everything it read.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.log.push(l);
                }
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.nick);
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// No line so far contains an escape character (the output is a pipe: no colours).
    pub fn assert_plain(&mut self) {
        self.drain();
        assert!(
            self.log.iter().all(|l| !l.contains('\x1b')),
            "{}: escape codes in piped output",
            self.nick
        );
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
pub mod terminal;
