//! Running the built `netaio` binary: a long-running one (a server, a listener) whose stdout
//! lines arrive as they are printed, and a short one run to its end with its exit code. Every
//! wait is bounded by [`LIMIT`]; a child still running when its guard drops is killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const NETAIO: &str = env!("CARGO_BIN_EXE_netaio");

/// How long any one wait may take (generous for a loaded 2-core machine: each takes well
/// under a second).
pub const LIMIT: Duration = Duration::from_secs(30);

/// The command with a quiet log and no colour, nothing inherited that would change the output.
pub fn netaio(args: &[&str]) -> Command {
    let mut cmd = Command::new(NETAIO);
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .env_remove("NETAIO_HMAC")
        .env_remove("NETAIO_HMAC_FILE")
        .env_remove("NETAIO_CIPHER")
        .env_remove("NETAIO_CIPHER_FILE")
        .env_remove("NETAIO_IDENTITY");
    cmd
}

/// A program run to its end.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Each stdout line as JSON (panics on a line that is not).
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\nstderr:\n{}", self.stderr))
            })
            .collect()
    }

    /// The JSON objects whose `event` is `event`.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.json()
            .into_iter()
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// Assert the exit code, showing the output otherwise.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Run `cmd` to its end (within [`LIMIT`]), with `stdin` as its standard input.
pub fn run_with(mut cmd: Command, stdin: Option<&[u8]>) -> Finished {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netaio");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(LIMIT).is_err() {
        panic!("{cmd:?} did not exit within {LIMIT:?}");
    }
    let out = waiter.join().unwrap().unwrap();
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `netaio ARGS` to its end.
pub fn run(args: &[&str]) -> Finished {
    run_with(netaio(args), None)
}

/// A running program: its stdout lines as they come; killed on drop.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// The lines read so far.
    pub seen: Vec<String>,
}

impl Proc {
    /// Start `cmd`.
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netaio");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
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
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The next stdout line, within [`LIMIT`].
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(LIMIT) {
            Ok(l) => {
                self.seen.push(l.clone());
                l
            }
            Err(e) => panic!(
                "no line within {LIMIT:?} ({e}); seen:\n{}\nstderr:\n{}",
                self.seen.join("\n"),
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// The next JSON object with this `event`, skipping others (within [`LIMIT`] in all).
    pub fn event(&mut self, event: &str) -> Value {
        self.event_where(event, |_| true)
    }

    /// The next JSON object with this `event` for which `pred` holds.
    pub fn event_where(&mut self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            let l = self.line();
            let v: Value =
                serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            if v["event"] == event && pred(&v) {
                return v;
            }
        }
        panic!(
            "no {event:?} event within {LIMIT:?}; seen:\n{}",
            self.seen.join("\n")
        );
    }

    /// The port of the first `listening` event (`--json`).
    pub fn port(&mut self) -> u16 {
        let v = self.event("listening");
        let port = v["port"].as_u64().unwrap();
        assert_ne!(port, 0);
        u16::try_from(port).unwrap()
    }

    /// Wait (bounded) for the exit; its code.
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "did not exit within {LIMIT:?}");
            // Polling the child's state, not waiting for an effect: bounded by the deadline.
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `netaio --json serve --listen ADDR ARGS…`, started; its port.
pub fn serve(listen: &str, more: &[&str]) -> (Proc, u16) {
    let mut args = vec!["--json", "serve", "--listen", listen];
    args.extend_from_slice(more);
    let mut p = Proc::spawn(netaio(&args));
    let port = p.port();
    (p, port)
}
