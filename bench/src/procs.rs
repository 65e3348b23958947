//! The bench binaries' roles as processes of their own: a command for this binary (or a sibling)
//! pinned to one CPU with `taskset`, a server process that announces `listening ADDR` and is
//! killed on drop, priority above the machine's other processes, a process's CPU time, and the
//! load average printed beside every figure. One copy for `bench`, `rpc-compare`, `hedge` and
//! `relay`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Result;

/// Whether roles can be pinned apart: at least two CPUs, and `taskset` runs.
pub fn pinning_works() -> bool {
    std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
        && Command::new("taskset")
            .args(["-c", "1", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Whether this process may start others at `nice -20` (as root it may): ahead of every other
/// process of the machine, such as other people's builds on a shared one.
pub fn nice_works() -> bool {
    Command::new("nice")
        .args(["-n", "-20", "nice"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "-20")
}

/// Whether this process may start others in the real-time class (`chrt -f 1`; as root it may).
pub fn fifo_works() -> bool {
    Command::new("chrt")
        .args(["-f", "1", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How a role is scheduled beside the machine's other processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// As any other process.
    Normal,
    /// `nice -20`: a larger share of the CPU, but a wakeup can still wait for the running
    /// process (another's build) for up to a scheduler tick (4 ms at this kernel's 250 Hz).
    Nice,
    /// `chrt -f 1`, the real-time FIFO class: a woken role runs at once, ahead of every normal
    /// process. For short runs of roles that mostly wait (the kernel still keeps 5 % of each
    /// second for normal processes).
    Fifo,
}

impl Priority {
    /// The name printed beside the figures.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Nice => "nice -20",
            Priority::Fifo => "fifo",
        }
    }
}

/// `exe args…`, under `taskset -c CPU` when `cpu` is given, at `priority`; stdin closed, stderr
/// inherited.
pub fn role_command(
    exe: &Path,
    cpu: Option<usize>,
    priority: Priority,
    args: &[String],
) -> Command {
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if let Some(cpu) = cpu {
        argv.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
    }
    match priority {
        Priority::Normal => {}
        Priority::Nice => argv.extend(["nice", "-n", "-20"].map(Into::into)),
        Priority::Fifo => argv.extend(["chrt", "-f", "1"].map(Into::into)),
    }
    argv.push(exe.into());
    argv.extend(args.iter().map(Into::into));
    let mut argv = argv.into_iter();
    let mut cmd = Command::new(argv.next().unwrap_or_default());
    cmd.args(argv).stdin(Stdio::null()).stderr(Stdio::inherit());
    cmd
}

/// Print `listening ADDR` on stdout and flush it: what [`ServerProcess::start`] waits for.
pub fn announce(addr: SocketAddr) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {addr}")?;
    out.flush()?;
    Ok(())
}

/// A server role's process, started and bound; killed (and reaped) on drop, so that an error
/// in the driver leaves no server behind.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: String,
}

impl ServerProcess {
    /// Spawn `cmd` with stdout piped and wait for its first line, `listening ADDR`.
    pub fn start(mut cmd: Command, what: &str) -> Result<ServerProcess> {
        let mut child = cmd.stdout(Stdio::piped()).spawn()?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what}: no stdout").into());
        };
        // Owned from here: any error below kills it.
        let mut server = ServerProcess {
            child,
            addr: String::new(),
        };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        match line.trim().strip_prefix("listening ") {
            Some(addr) => server.addr = addr.to_owned(),
            None => return Err(format!("{what} did not start: {line:?}").into()),
        }
        Ok(server)
    }

    /// The address it announced.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Its process id (`taskset`, `nice` and `chrt` exec the role: the role's own).
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first three fields of /proc/loadavg (1, 5 and 15 minutes), space-separated; empty where
/// there is none.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CPU time process `pid` has used so far, ns: the sum over its threads of the first field of
/// `/proc/PID/task/TID/schedstat` (user and system, ns, unlike the clock ticks of
/// `/proc/PID/stat`). Threads that have ended are not counted (a role's runtime keeps its own).
/// `None` where there is no such file.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_of_this_process_grows_with_work() {
        let pid = std::process::id();
        let before = cpu_ns(pid);
        if before.is_none() {
            return; // no /proc here
        }
        // Spin until the CPU time has moved (bounded: about 10 s of work at most).
        let mut x = 0u64;
        for i in 0..10_000_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
            if i % 1_000_000 == 0 && cpu_ns(pid) > before.map(|b| b + 1_000_000) {
                break;
            }
        }
        std::hint::black_box(x);
        assert!(cpu_ns(pid) > before.map(|b| b + 1_000_000), "{before:?}");
        assert_eq!(cpu_ns(u32::MAX), None);
    }
}
