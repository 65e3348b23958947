//! The driver of `rpc-compare` and its two roles: each run a fresh server process (CPU 0) and a
//! client process (CPU 1), alternating the sides' order between runs; medians; the ratio of each
//! side's median rate to raw's.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{CompareArgs, RpcClientArgs, RpcServerArgs, RpcWorkload, Side, netaio_side, raw_side};
use crate::frames::Sealer;
use crate::procs::{Priority, ServerProcess, load_average, pinning_works, role_command};
use crate::stats::{Sample, median};
use crate::{Mode, Result};

const TARPC_HERE: &str = "the tarpc side is the `tarpc-echo` binary (package netaio-bench-tarpc)";

/// The `tarpc-echo` binary, next to this one (`cargo build --release -p netaio-bench-tarpc`).
fn tarpc_echo() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("tarpc-echo");
    if !path.exists() {
        return Err(format!(
            "{} not found: build it first with `cargo build --release -p netaio-bench-tarpc` (a cargo command of its own, so that tarpc's features stay out of netaio's build)",
            path.display()
        )
        .into());
    }
    Ok(path)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // One thread each, as the main harness: the server and the client each own a core.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `rpc-compare server`.
pub fn server(args: RpcServerArgs) -> Result<()> {
    if args.side != Side::Netaio && args.mode != Mode::None {
        return Err(format!("the {} side has no plugins: use --mode none", args.side).into());
    }
    runtime()?.block_on(async move {
        match args.side {
            Side::Raw => crate::server::baseline_server(args.address).await,
            Side::Tarpc => Err(TARPC_HERE.into()),
            Side::Netaio => {
                let replay = crate::server::DEFAULT_REPLAY_CAPACITY;
                crate::server::netaio_server(args.address, args.mode, replay, None).await
            }
        }
    })
}

/// `rpc-compare client`: prints one JSON [`Sample`] line.
pub fn client(a: RpcClientArgs) -> Result<()> {
    if a.side != Side::Netaio && a.mode != Mode::None {
        return Err(format!("the {} side has no plugins: use --mode none", a.side).into());
    }
    let secs = Duration::from_secs_f64(a.seconds);
    let sample = runtime()?.block_on(async {
        let run = async {
            match (a.side, a.workload) {
                (Side::Raw, RpcWorkload::W1) => {
                    let sealer = Sealer::with_codec(Mode::None, a.size, Default::default());
                    crate::client::round_trips(a.address, &sealer, a.count, a.warmup).await
                }
                (Side::Raw, RpcWorkload::W2) => {
                    let sealer = Sealer::with_codec(Mode::None, a.size, Default::default());
                    raw_side::windowed(a.address, &sealer, a.count, a.window).await
                }
                (Side::Raw, RpcWorkload::W3) => {
                    let sealer = std::sync::Arc::new(Sealer::with_codec(
                        Mode::None,
                        a.size,
                        Default::default(),
                    ));
                    crate::client::many(a.address, &sealer, a.conns, secs, 250_000.0).await
                }
                (Side::Tarpc, _) => Err(TARPC_HERE.into()),
                (Side::Netaio, RpcWorkload::W1) => {
                    netaio_side::round_trips(a.address, a.mode, a.size, a.count, a.warmup).await
                }
                (Side::Netaio, RpcWorkload::W2) => {
                    netaio_side::windowed(a.address, a.mode, a.size, a.count, a.warmup, a.window)
                        .await
                }
                (Side::Netaio, RpcWorkload::W3) => {
                    netaio_side::many(a.address, a.mode, a.size, a.conns, secs).await
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(300), run).await {
            Ok(r) => r,
            Err(_) => Err("the workload did not finish within 300 s".into()),
        }
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&sample)?)?;
    out.flush()?;
    Ok(())
}

/// A role of this binary (or `tarpc-echo`), pinned to `cpu` when `pin`.
fn role(side: Side, pin: bool, cpu: usize, args: &[String]) -> Result<Command> {
    let exe = if side == Side::Tarpc {
        tarpc_echo()?
    } else {
        std::env::current_exe()?
    };
    Ok(role_command(
        &exe,
        pin.then_some(cpu),
        Priority::Normal,
        args,
    ))
}

fn one_run(cfg: &CompareArgs, pin: bool, w: RpcWorkload, side: Side, mode: Mode) -> Result<Sample> {
    let server_args: Vec<String> = if side == Side::Tarpc {
        vec!["server".into()]
    } else {
        ["server", "--side", side.name(), "--mode", mode.name()]
            .map(String::from)
            .to_vec()
    };
    let server =
        ServerProcess::start(role(side, pin, 0, &server_args)?, &format!("{side} server"))?;
    let addr = server.addr().to_owned();
    let mut args: Vec<String> = ["client", "--address", &addr, "--workload", w.name()]
        .map(String::from)
        .to_vec();
    if side != Side::Tarpc {
        args.extend(["--side", side.name(), "--mode", mode.name()].map(String::from));
    }
    let more = match w {
        RpcWorkload::W1 => vec!["--count".into(), cfg.w1_count.to_string()],
        RpcWorkload::W2 => vec!["--count".into(), cfg.w2_count.to_string()],
        RpcWorkload::W3 => vec!["--seconds".into(), cfg.w3_seconds.to_string()],
    };
    args.extend(more);
    let out = role(side, pin, 1, &args)?.stdout(Stdio::piped()).output()?;
    drop(server);
    if !out.status.success() {
        return Err(format!("{w} {side} {mode}: the client failed ({})", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().ok_or("the client printed nothing")?;
    Ok(serde_json::from_str(last)?)
}

/// The driver: every workload, every side (netaio once per mode), `runs` times alternating;
/// prints the table of medians.
pub fn run(cfg: CompareArgs) -> Result<()> {
    let pin = !cfg.no_pin && pinning_works();
    let mut order: Vec<(Side, Mode)> = Vec::new();
    for &side in &cfg.sides {
        if side == Side::Netaio {
            order.extend(cfg.modes.iter().map(|&m| (side, m)));
        } else {
            order.push((side, Mode::None));
        }
    }
    eprintln!(
        "rpc-compare: {} runs, {}; load average {}",
        cfg.runs,
        if pin {
            "server on CPU 0, client on CPU 1"
        } else {
            "not pinned"
        },
        load_average()
    );
    let mut rows: Vec<(RpcWorkload, Side, Mode, Vec<Sample>)> = Vec::new();
    for &w in &cfg.workloads {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); order.len()];
        for run in 0..cfg.runs {
            let mut idx: Vec<usize> = (0..order.len()).collect();
            if run % 2 == 1 {
                idx.reverse();
            }
            for i in idx {
                let Some(&(side, mode)) = order.get(i) else {
                    continue;
                };
                let s = one_run(&cfg, pin, w, side, mode)?;
                eprintln!("  {w} run {run} {side:<6} {mode:<9} {:>12.0}/s", s.rate);
                if let Some(v) = samples.get_mut(i) {
                    v.push(s);
                }
            }
        }
        for (&(side, mode), s) in order.iter().zip(samples) {
            rows.push((w, side, mode, s));
        }
    }
    println!(
        "\nlibrary server + library client — medians of {} runs; ratio = median rate ÷ raw's\n",
        cfg.runs
    );
    println!("| workload | side | mode | rate (/s) | p50 µs | ratio |");
    println!("|---|---|---|---:|---:|---:|");
    for (w, side, mode, samples) in &rows {
        let rate = median(&samples.iter().map(|s| s.rate).collect::<Vec<_>>()).unwrap_or(0.0);
        let p50 = median(&samples.iter().filter_map(|s| s.p50_us).collect::<Vec<_>>());
        let raw = rows
            .iter()
            .find(|r| r.0 == *w && r.1 == Side::Raw)
            .and_then(|r| median(&r.3.iter().map(|s| s.rate).collect::<Vec<_>>()));
        let ratio = raw
            .filter(|_| *side != Side::Raw)
            .map_or("-".to_owned(), |r| format!("{:.3}", rate / r));
        let p50 = p50.map_or("-".to_owned(), |p| format!("{p:.1}"));
        println!("| {w} | {side} | {mode} | {rate:.0} | {p50} | {ratio} |");
    }
    println!("\nload average at the end: {}", load_average());
    Ok(())
}
