//! `hedge`'s processes: the driver starts two `hedge server`s (CPU 0) and one `hedge client`
//! (CPU 1), reads the client's JSON line and adds the setup to it; or, `--in-process`, runs all
//! three in its own process as the scenario first did.

use std::net::SocketAddr;
use std::process::Stdio;

use super::scenario::{Targets, run_rounds, serve};
use super::{ClientArgs, HedgeArgs, HedgeResult, ServerArgs, StallArgs};
use crate::procs::{
    Priority, ServerProcess, announce, fifo_works, load_average, nice_works, pinning_works,
    role_command,
};
use crate::{Error, Result};

/// One thread per role (`workers` 1): each role has a CPU of its own when pinned.
fn runtime(workers: usize) -> Result<tokio::runtime::Runtime> {
    let mut b = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    Ok(b.enable_all().build()?)
}

/// `hedge server`: bind, print `listening ADDR`, serve until stdin closes (the driver holds its
/// other end, so a server never outlives its driver, however that ends).
pub fn server(args: ServerArgs) -> Result<()> {
    runtime(1)?.block_on(async {
        let addr = serve(args.address, &args.name, &args.stall, args.udp).await?;
        announce(addr)?;
        tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await?;
        Ok(())
    })
}

fn transport(udp: bool) -> &'static str {
    if udp { "udp" } else { "tcp" }
}

/// `hedge client`: the phases against the two servers; prints one JSON [`HedgeResult`] line
/// (without the fields only the driver knows: `concurrent`, `setup`, `pinned`, `load_average`).
pub fn client(args: ClientArgs) -> Result<()> {
    let mut result = runtime(args.workers)?.block_on(async {
        let targets = Targets::connect(args.stalling, args.fast, args.udp).await?;
        let rounds = run_rounds(&targets, &args.calls).await;
        targets.close().await;
        Ok::<_, Error>(rounds?.finish())
    })?;
    result.soft_us = args.calls.soft_us;
    result.transport = transport(args.udp).into();
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// The driver: the scenario in processes of their own (or in this one, `--in-process`).
pub fn run(args: &HedgeArgs) -> Result<HedgeResult> {
    let start = load_average();
    let pin = !args.in_process && !args.no_pin && pinning_works();
    let priority = if args.in_process {
        Priority::Normal
    } else if !args.no_fifo && fifo_works() {
        Priority::Fifo
    } else if !args.no_nice && nice_works() {
        Priority::Nice
    } else {
        Priority::Normal
    };
    eprintln!(
        "hedge: {} calls per phase in {} rounds, {}{}; load average {start}",
        args.calls.count,
        args.calls.rounds.max(1),
        match (args.in_process, pin) {
            (true, _) => "servers and client in this process",
            (false, true) => "servers on CPU 0, client on CPU 1",
            (false, false) => "servers and client in processes, not pinned",
        },
        match priority {
            Priority::Normal => String::new(),
            p => format!(", {}", p.name()),
        },
    );
    let mut result = if args.in_process {
        in_process(args)?
    } else {
        processes(args, pin, priority)?
    };
    result.soft_us = args.calls.soft_us;
    result.budget = args.calls.budget;
    result.concurrent = args.stall.concurrent;
    result.transport = transport(args.udp).into();
    result.setup = if args.in_process {
        "in-process"
    } else {
        "processes"
    }
    .into();
    result.pinned = pin;
    result.priority = priority.name().into();
    result.load_average = [start, load_average()];
    Ok(result)
}

/// The fast server: the stalling one's settings, never stalling.
fn fast(stall: &StallArgs) -> StallArgs {
    StallArgs {
        stall_percent: 0.0,
        ..stall.clone()
    }
}

fn in_process(args: &HedgeArgs) -> Result<HedgeResult> {
    runtime(2)?.block_on(async {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let stalling = serve(any, "stalling", &args.stall, args.udp).await?;
        let fast = serve(any, "fast", &fast(&args.stall), args.udp).await?;
        let targets = Targets::connect(stalling, fast, args.udp).await?;
        let rounds = run_rounds(&targets, &args.calls).await;
        targets.close().await;
        Ok(rounds?.finish())
    })
}

fn processes(args: &HedgeArgs, pin: bool, priority: Priority) -> Result<HedgeResult> {
    let exe = std::env::current_exe()?;
    let start_server = |name: &str, stall: &StallArgs| {
        let mut argv: Vec<String> = vec![
            "server".into(),
            "--name".into(),
            name.into(),
            "--stall-ms".into(),
            stall.stall_ms.to_string(),
            "--stall-percent".into(),
            stall.stall_percent.to_string(),
            "--concurrent".into(),
            stall.concurrent.to_string(),
        ];
        if args.udp {
            argv.push("--udp".into());
        }
        let mut cmd = role_command(&exe, pin.then_some(0), priority, &argv);
        // Its end of the pipe is how the server knows this driver is gone.
        cmd.stdin(Stdio::piped());
        ServerProcess::start(cmd, &format!("the {name} server"))
    };
    let stalling = start_server("stalling", &args.stall)?;
    let fast = start_server("fast", &fast(&args.stall))?;
    let c = &args.calls;
    let mut argv: Vec<String> = vec![
        "client".into(),
        "--stalling".into(),
        stalling.addr().into(),
        "--fast".into(),
        fast.addr().into(),
        "--count".into(),
        c.count.to_string(),
        "--rounds".into(),
        c.rounds.to_string(),
        "--soft-us".into(),
        c.soft_us.to_string(),
        "--workers".into(),
        args.client_workers.to_string(),
    ];
    if args.udp {
        argv.push("--udp".into());
    }
    if let Some(b) = c.budget {
        argv.extend(["--budget".into(), b.to_string()]);
    }
    let out = role_command(&exe, pin.then_some(1), priority, &argv)
        .stdout(Stdio::piped())
        .output()?;
    drop((stalling, fast));
    if !out.status.success() {
        return Err(format!("the client failed ({})", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().ok_or("the client printed nothing")?;
    Ok(serde_json::from_str(last)?)
}
