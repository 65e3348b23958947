//! `relay`'s processes: the driver starts `relay server` and `relay service` (CPU 0), `relay
//! relay` (CPU 1) and `relay caller` (CPU 0), reads the caller's JSON line and adds the setup to
//! it; or, `--in-process`, runs every node in its own process as the scenario first did.

use std::process::Stdio;
use std::sync::Arc;

use super::nodes::{Ends, Roles, proxy, relay, run_rounds, server, service};
use super::{CallerArgs, NodeArgs, ProxyArgs, RelayArgs, RelayRow, ServiceArgs};
use crate::procs::{
    Priority, ServerProcess, announce, fifo_works, load_average, nice_works, pinning_works,
    role_command,
};
use crate::{Result, Transport};

/// A current-thread runtime, as each role has one CPU (or, in process, 2 workers as before).
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

/// Serve until stdin closes (the driver holds its other end, so a role never outlives its
/// driver, however that ends).
async fn until_stdin_closes() -> Result<()> {
    tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await?;
    Ok(())
}

/// `relay server`: bind, print `listening ADDR`, serve until stdin closes.
pub fn server_role(args: NodeArgs) -> Result<()> {
    runtime(1)?.block_on(async {
        announce(server(args.transport, args.udp_buffer).await?)?;
        until_stdin_closes().await
    })
}

/// `relay relay`: as `relay server`, the relay.
pub fn relay_role(args: NodeArgs) -> Result<()> {
    runtime(1)?.block_on(async {
        announce(relay(args.transport, args.udp_buffer).await?)?;
        until_stdin_closes().await
    })
}

/// `relay proxy`: as `relay relay`, a plain TCP proxy to `--to`.
pub fn proxy_role(args: ProxyArgs) -> Result<()> {
    runtime(1)?.block_on(async {
        announce(proxy(args.to).await?)?;
        until_stdin_closes().await
    })
}

/// `relay service`: reserve at the relay, print `listening ADDR`, answer until stdin closes.
pub fn service_role(args: ServiceArgs) -> Result<()> {
    runtime(1)?.block_on(async {
        let (addr, _keep) = service(args.transport, args.relay, args.udp_buffer).await?;
        announce(addr)?;
        until_stdin_closes().await
    })
}

/// `relay caller`: both paths in rounds; prints one JSON line of [`RelayRow`]s (without the
/// fields only the driver knows).
pub fn caller_role(args: CallerArgs) -> Result<()> {
    let others = match *args.pids.as_slice() {
        [] => None,
        [a, b, c] => Some([a, b, c]),
        _ => return Err("--pids takes the server's, the relay's and the service's".into()),
    };
    let roles = Roles {
        me: "caller",
        others,
    };
    let sizes = args.calls.sizes(args.transport);
    let rows = runtime(1)?.block_on(async {
        let ends = Arc::new(
            Ends::connect(
                args.transport,
                args.direct,
                args.relay,
                args.udp_buffer,
                args.proxied,
            )
            .await?,
        );
        let rows = run_rounds(&ends, &args.calls, &sizes, &roles).await;
        ends.close();
        rows
    })?;
    println!("{}", serde_json::to_string(&rows)?);
    Ok(())
}

/// The driver: the scenario in processes of their own (or in this one, `--in-process`).
pub fn run(args: &RelayArgs) -> Result<Vec<RelayRow>> {
    args.calls.paths()?;
    if args.proxy && args.transport != Transport::Tcp {
        return Err("--proxy is a TCP proxy: it takes --transport tcp".into());
    }
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
        "relay: {} over {}{}, {} calls per measurement, {} in flight, {} rounds, {}{}; load \
         average {start}",
        args.calls
            .sizes(args.transport)
            .iter()
            .map(|s| format!("{s} B"))
            .collect::<Vec<_>>()
            .join(" and "),
        args.transport.name(),
        if args.proxy {
            ", relayed by a plain proxy to the server"
        } else {
            ""
        },
        args.calls.count,
        args.calls.concurrency,
        args.calls.rounds.max(1),
        match (args.in_process, pin) {
            (true, _) => "every node in this process",
            (false, true) if args.server_cpu == 1 => {
                "relay and server on CPU 1; caller and service on CPU 0"
            }
            (false, true) => "relay on CPU 1; caller, server and service on CPU 0",
            (false, false) => "a process per role, not pinned",
        },
        match priority {
            Priority::Normal => String::new(),
            p => format!(", {}", p.name()),
        },
    );
    let mut rows = if args.in_process {
        in_process(args)?
    } else {
        processes(args, pin, priority)?
    };
    let end = load_average();
    for r in &mut rows {
        r.transport = args.transport.name().into();
        r.setup = if args.in_process {
            "in-process"
        } else {
            "processes"
        }
        .into();
        r.pinned = pin;
        r.server_cpu = args.server_cpu;
        r.relayed_by = if args.proxy { "proxy" } else { "netaio" }.into();
        r.priority = priority.name().into();
        r.count = args.calls.count;
        r.concurrency = args.calls.concurrency;
        r.load_average = [start.clone(), end.clone()];
    }
    Ok(rows)
}

fn in_process(args: &RelayArgs) -> Result<Vec<RelayRow>> {
    let roles = Roles {
        me: "process",
        others: None,
    };
    let sizes = args.calls.sizes(args.transport);
    runtime(2)?.block_on(async {
        let buf = args.udp_buffer;
        let direct = server(args.transport, buf).await?;
        let (raddr, _keep) = if args.proxy {
            (proxy(direct).await?, None)
        } else {
            let raddr = relay(args.transport, buf).await?;
            (raddr, Some(service(args.transport, raddr, buf).await?))
        };
        let ends = Arc::new(Ends::connect(args.transport, direct, raddr, buf, args.proxy).await?);
        let rows = run_rounds(&ends, &args.calls, &sizes, &roles).await;
        ends.close();
        rows
    })
}

fn processes(args: &RelayArgs, pin: bool, priority: Priority) -> Result<Vec<RelayRow>> {
    let exe = std::env::current_exe()?;
    // Every role: the transport, and the UDP socket buffers when asked for.
    let transport = |argv: &mut Vec<String>, t: Transport| {
        argv.extend(["--transport".into(), t.name().into()]);
        if let Some(n) = args.udp_buffer {
            argv.extend(["--udp-buffer".into(), n.to_string()]);
        }
    };
    let spawn = |role: &str, argv: &[String], cpu: usize| {
        let mut cmd = role_command(&exe, pin.then_some(cpu), priority, argv);
        // Its end of the pipe is how the role knows this driver is gone.
        cmd.stdin(Stdio::piped());
        ServerProcess::start(cmd, &format!("the {role}"))
    };
    let start = |role: &str, cpu: usize, extra: &[String]| {
        let mut argv = vec![role.to_owned()];
        transport(&mut argv, args.transport);
        argv.extend_from_slice(extra);
        spawn(role, &argv, cpu)
    };
    let server = start("server", usize::from(args.server_cpu), &[])?;
    // With --proxy the proxy stands where the relay does and the server answers for the
    // service (so the relayed path's far end is the very process the direct path calls).
    let (relay, service) = if args.proxy {
        // Where the relay would run; it takes no transport.
        let argv = ["proxy".to_owned(), "--to".into(), server.addr().into()];
        (spawn("proxy", &argv, 1)?, None)
    } else {
        let relay = start("relay", 1, &[])?;
        let service = start("service", 0, &["--relay".into(), relay.addr().into()])?;
        (relay, Some(service))
    };
    let service_id = service.as_ref().map_or(server.id(), |s| s.id());
    let c = &args.calls;
    let mut argv: Vec<String> = vec![
        "caller".into(),
        "--direct".into(),
        server.addr().into(),
        "--relay".into(),
        relay.addr().into(),
        "--pids".into(),
        format!("{},{},{service_id}", server.id(), relay.id()),
        "--count".into(),
        c.count.to_string(),
        "--concurrency".into(),
        c.concurrency.to_string(),
        "--rounds".into(),
        c.rounds.to_string(),
        "--mode".into(),
        c.mode.clone(),
    ];
    transport(&mut argv, args.transport);
    if args.proxy {
        argv.push("--proxied".into());
    }
    if !c.sizes.is_empty() {
        argv.push("--sizes".into());
        argv.push(
            c.sizes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let out = role_command(&exe, pin.then_some(0), priority, &argv)
        .stdout(Stdio::piped())
        .output()?;
    drop((service, relay, server));
    if !out.status.success() {
        return Err(format!("the caller failed ({})", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().ok_or("the caller printed nothing")?;
    Ok(serde_json::from_str(last)?)
}
