//! The driver: runs every workload against the baseline and netaio, alternating, in separate
//! processes pinned to different cores; prints a table of medians and writes JSON.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::args::DriverArgs;
use crate::procs::{load_average, nice_works, pinning_works};
use crate::report::{MemoryRecord, Report, RunRecord, render, summarize};
use crate::stats::Sample;
use crate::{Impl, Mode, Result, Transport, Workload};

/// The most W2 messages sent to the Python server (it handles a few tens of thousands a second).
const PYTHON_W2_MAX: usize = 100_000;

/// Everything a run is configured with.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `--quick` given.
    pub quick: bool,
    /// Runs per (workload, server, mode).
    pub runs: usize,
    /// `--python`: the Python library as a third server.
    pub python: bool,
    /// Workloads to run.
    pub workloads: Vec<String>,
    /// Netaio modes to run.
    pub modes: Vec<String>,
    /// W1 timed round trips.
    pub w1_count: usize,
    /// W1 / W5 untimed warm-up round trips.
    pub warmup: usize,
    /// W2 pipelined messages.
    pub w2_count: usize,
    /// W3 duration.
    pub w3_seconds: f64,
    /// W3 connections.
    pub w3_conns: usize,
    /// W4 timed round trips.
    pub w4_count: usize,
    /// W5 timed round trips.
    pub w5_count: usize,
    /// Idle connections of the memory measurement (0: skipped).
    pub idle_conns: usize,
    /// W3 pre-sealed pool size, in requests per second.
    pub rate_estimate: f64,
    /// Server on CPU 0 and client on CPU 1.
    pub pinned: bool,
    /// Server and client run at nice -20 (root), ahead of other processes.
    pub niced: bool,
}

/// Run the driver.
pub fn run(args: DriverArgs) -> Result<()> {
    let quick = args.quick;
    let workloads = args.workloads;
    let modes = args.modes;
    let pinned = !args.no_pin && pinning_works();
    let niced = !args.no_nice && nice_works();
    let cfg = Config {
        quick,
        runs: args.runs.unwrap_or(if quick { 3 } else { 5 }),
        python: args.python,
        workloads: workloads.iter().map(|w| w.name().to_owned()).collect(),
        modes: modes.iter().map(|m| m.name().to_owned()).collect(),
        w1_count: args.w1_count.unwrap_or(if quick { 20_000 } else { 50_000 }),
        warmup: if quick { 1_000 } else { 3_000 },
        w2_count: args
            .w2_count
            .unwrap_or(if quick { 400_000 } else { 2_000_000 }),
        w3_seconds: args.w3_seconds,
        w3_conns: args.w3_conns,
        w4_count: args.w4_count.unwrap_or(if quick { 20_000 } else { 50_000 }),
        w5_count: args.w5_count.unwrap_or(if quick { 1_000 } else { 3_000 }),
        idle_conns: if args.no_memory { 0 } else { args.idle_conns },
        rate_estimate: args.rate_estimate,
        pinned,
        niced,
    };
    let json_path = args.json;
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let load_start = load_average();
    let machine = machine();
    eprintln!(
        "netaio bench: {} runs, workloads {:?}, modes {:?}, {}",
        cfg.runs,
        cfg.workloads,
        cfg.modes,
        if pinned {
            "server on CPU 0, client on CPU 1"
        } else {
            "not pinned (taskset unavailable, fewer than 2 CPUs, or --no-pin)"
        }
    );
    if !niced {
        eprintln!("  (normal priority: other processes can disturb the measurements)");
    }

    let mut runs = Vec::new();
    for &w in &workloads {
        let mut order: Vec<(Impl, Mode)> = vec![(Impl::Baseline, Mode::None)];
        if cfg.python {
            order.push((Impl::Python, Mode::None));
        }
        order.extend(modes.iter().map(|&m| (Impl::Netaio, m)));
        for run in 0..cfg.runs {
            // Alternate the order between runs so that a slow drift does not favour one side.
            let this: Vec<_> = if run % 2 == 0 {
                order.clone()
            } else {
                order.iter().rev().copied().collect()
            };
            for (imp, mode) in this {
                let (sample, rss) = one_run(&exe, &cfg, w, imp, mode)?;
                eprintln!(
                    "  {w} run {run} {imp:<8} {mode:<9} {:>12.0}/s {:>9.1} MB/s{}",
                    sample.rate,
                    sample.mb_per_s,
                    sample
                        .p50_us
                        .map(|p| format!(" p50 {p:.1} µs"))
                        .unwrap_or_default()
                );
                runs.push(RunRecord {
                    workload: w.name().to_owned(),
                    server: imp.name().to_owned(),
                    mode: mode.name().to_owned(),
                    run,
                    sample,
                    server_peak_rss_kib: rss,
                });
            }
        }
    }
    let summary = summarize(&runs);

    let (memory, memory_skipped) = if cfg.idle_conns == 0 {
        (Vec::new(), Some("disabled with --no-memory".to_owned()))
    } else {
        match memory_runs(&exe, &cfg) {
            Ok(m) => (m, None),
            Err(Skip(why)) => {
                eprintln!("memory measurement SKIPPED: {why}");
                (Vec::new(), Some(why))
            }
        }
    };

    let report = Report {
        machine,
        config: cfg,
        runs,
        summary,
        memory,
        memory_skipped,
        elapsed_secs: started.elapsed().as_secs_f64(),
        loadavg: [load_start, load_average()],
    };
    print!("{}", render(&report));
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    println!("JSON written to {}", json_path.display());
    Ok(())
}

/// True when this process may raise priority (`nice -n -20` then reports -20).
/// A command for the bench binary itself in a role, on `cpu` when pinned, with at least `nofile`
/// file descriptors when given.
fn role(
    exe: &std::path::Path,
    cfg: &Config,
    cpu: usize,
    nofile: Option<u64>,
    args: &[String],
) -> Command {
    let mut argv: Vec<String> = Vec::new();
    if cfg.niced {
        argv.extend(["nice", "-n", "-20"].map(String::from));
    }
    if let Some(n) = nofile {
        argv.extend(
            [
                "sh",
                "-c",
                "ulimit -n \"$1\" || exit 97; shift; exec \"$@\"",
                "sh",
            ]
            .map(String::from),
        );
        argv.push(n.to_string());
    }
    argv.push(exe.display().to_string());
    argv.extend(args.iter().cloned());
    let mut cmd = if cfg.pinned {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu.to_string()).args(&argv);
        c
    } else {
        let mut it = argv.into_iter();
        let mut c = Command::new(it.next().unwrap_or_default());
        c.args(it);
        c
    };
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    cmd
}

/// A running server; killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(
        exe: &std::path::Path,
        cfg: &Config,
        imp: Impl,
        mode: Mode,
        transport: Transport,
        replay_capacity: usize,
        nofile: Option<u64>,
    ) -> Result<Server> {
        let args = [
            "server",
            "--impl",
            imp.name(),
            "--mode",
            mode.name(),
            "--transport",
            transport.name(),
            "--replay-capacity",
            &replay_capacity.to_string(),
        ]
        .map(String::from);
        let mut child = role(exe, cfg, 0, nofile, &args)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening ").map(|a| {
            // The Python servers print only the port.
            match a.parse::<u16>() {
                Ok(port) => format!("127.0.0.1:{port}"),
                Err(_) => a.to_owned(),
            }
        }) else {
            let _ = child.kill();
            let status = child.wait()?;
            if status.code() == Some(97) {
                return Err(Skip::new("could not raise the open-file limit").into());
            }
            return Err(format!("server did not start ({status}): {line:?}").into());
        };
        Ok(Server { addr, child })
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.child.id(), field)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn one_run(
    exe: &std::path::Path,
    cfg: &Config,
    w: Workload,
    imp: Impl,
    mode: Mode,
) -> Result<(Sample, Option<u64>)> {
    let replay_capacity = cfg
        .w2_count
        .max(cfg.w1_count + cfg.warmup)
        .max(cfg.w4_count + cfg.warmup)
        .max((cfg.rate_estimate * cfg.w3_seconds) as usize)
        + 100_000;
    let server = Server::start(exe, cfg, imp, mode, w.transport(), replay_capacity, None)?;
    let mut args: Vec<String> = [
        "client",
        "--address",
        &server.addr,
        "--mode",
        mode.name(),
        "--workload",
    ]
    .map(String::from)
    .to_vec();
    let more: Vec<String> = match w {
        Workload::W1 => vec![
            "w1".into(),
            "--size".into(),
            "64".into(),
            "--count".into(),
            cfg.w1_count.to_string(),
            "--warmup".into(),
            cfg.warmup.to_string(),
        ],
        Workload::W2 => vec![
            "w2".into(),
            "--size".into(),
            "64".into(),
            "--count".into(),
            if imp == Impl::Python {
                cfg.w2_count.min(PYTHON_W2_MAX)
            } else {
                cfg.w2_count
            }
            .to_string(),
        ],
        Workload::W3 => vec![
            "w3".into(),
            "--size".into(),
            "64".into(),
            "--conns".into(),
            cfg.w3_conns.to_string(),
            "--seconds".into(),
            cfg.w3_seconds.to_string(),
            "--rate-estimate".into(),
            // The plugin modes run at well under half the rate: a smaller pool to pre-seal.
            (if mode == Mode::None {
                cfg.rate_estimate
            } else {
                cfg.rate_estimate / 2.0
            })
            .to_string(),
        ],
        Workload::W4 => vec![
            "w4".into(),
            "--size".into(),
            "64".into(),
            "--count".into(),
            cfg.w4_count.to_string(),
            "--warmup".into(),
            cfg.warmup.to_string(),
        ],
        Workload::W5 => vec![
            "w5".into(),
            "--size".into(),
            "60000".into(),
            "--count".into(),
            cfg.w5_count.to_string(),
            "--warmup".into(),
            (cfg.warmup / 10).to_string(),
        ],
    };
    args.extend(more);
    if imp == Impl::Python {
        args.extend(["--codec".to_owned(), "python".to_owned()]);
    }
    let out = role(exe, cfg, 1, None, &args)
        .stdout(Stdio::piped())
        .output()?;
    let rss = server.status_kib("VmHWM");
    drop(server);
    if !out.status.success() {
        return Err(format!("{w} {imp} {mode}: client failed ({})", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("client printed nothing")?;
    let sample: Sample = serde_json::from_str(line)?;
    if sample.lost > 0 {
        eprintln!(
            "  note: {} UDP requests got no reply within 1 s",
            sample.lost
        );
    }
    if sample.inline_sealed > 0 {
        eprintln!(
            "  note: {} requests sealed inline by the client (raise --rate-estimate)",
            sample.inline_sealed
        );
    }
    Ok((sample, rss))
}

/// Why the memory measurement could not run.
#[derive(Debug)]
struct Skip(String);

impl Skip {
    fn new(why: impl Into<String>) -> Self {
        Skip(why.into())
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skip {}

impl From<crate::Error> for Skip {
    fn from(e: crate::Error) -> Self {
        Skip(e.to_string())
    }
}

impl From<std::io::Error> for Skip {
    fn from(e: std::io::Error) -> Self {
        Skip(e.to_string())
    }
}

/// The soft and hard open-file limits of this process.
fn nofile_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|s| {
            if s == "unlimited" {
                Some(u64::MAX)
            } else {
                s.parse().ok()
            }
        });
    Some((nums.next()??, nums.next()??))
}

fn memory_runs(
    exe: &std::path::Path,
    cfg: &Config,
) -> std::result::Result<Vec<MemoryRecord>, Skip> {
    let need = cfg.idle_conns as u64 + 256;
    let (_, hard) = nofile_limits().ok_or_else(|| Skip::new("cannot read /proc/self/limits"))?;
    if hard < need {
        return Err(Skip::new(format!(
            "{} idle connections need {need} file descriptors per process, but the hard limit is {hard} (raise it as root: ulimit -Hn {need})",
            cfg.idle_conns
        )));
    }
    let mut out = Vec::new();
    for (imp, mode) in [
        (Impl::Baseline, Mode::None),
        (Impl::Netaio, Mode::None),
        (Impl::Netaio, Mode::HmacAead),
        (Impl::Netaio, Mode::Sealed),
    ] {
        let server = Server::start(exe, cfg, imp, mode, Transport::Tcp, 65_536, Some(need))?;
        // Let the runtime settle (threads started, allocator warmed) before the idle reading.
        std::thread::sleep(Duration::from_millis(300));
        let idle_rss = server
            .status_kib("VmRSS")
            .ok_or_else(|| Skip::new("cannot read the server's VmRSS"))?;
        let args = [
            "client",
            "--address",
            &server.addr,
            "--mode",
            mode.name(),
            "--workload",
            "idle",
            "--conns",
            &cfg.idle_conns.to_string(),
            "--timeout",
            "120",
        ]
        .map(String::from);
        let mut client = role(exe, cfg, 1, Some(need), &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = client
            .stdout
            .take()
            .ok_or_else(|| Skip::new("no client stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let ready = line.trim().strip_prefix("ready ").map(str::to_owned);
        // The server has answered one request on every connection; give it a moment to go idle.
        std::thread::sleep(Duration::from_millis(300));
        let loaded_rss = server.status_kib("VmRSS");
        if let Some(mut stdin) = client.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let status = client.wait()?;
        let (Some(n), Some(loaded_rss)) = (ready, loaded_rss) else {
            return Err(Skip::new(format!(
                "the idle client did not get ready ({status}); output: {line:?}"
            )));
        };
        let conns: usize = n.parse().map_err(|_| Skip::new("bad ready line"))?;
        let per_conn = (loaded_rss.saturating_sub(idle_rss)) as f64 / conns.max(1) as f64;
        eprintln!(
            "  memory {imp:<8} {mode:<9} idle {idle_rss} KiB, {conns} idle conns {loaded_rss} KiB, {per_conn:.1} KiB/conn"
        );
        out.push(MemoryRecord {
            server: imp.name().to_owned(),
            mode: mode.name().to_owned(),
            idle_rss_kib: idle_rss,
            loaded_rss_kib: loaded_rss,
            conns,
            per_conn_kib: per_conn,
        });
    }
    Ok(out)
}

fn machine() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if let Some(model) = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
    {
        m.insert("cpu".into(), model.1.trim().to_owned());
    }
    m.insert(
        "cpus".into(),
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string(),
    );
    if let Ok(k) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        m.insert("kernel".into(), k.trim().to_owned());
    }
    m
}
