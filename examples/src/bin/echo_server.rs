//! The echo server: the Python README's `TCPServer` example in Rust (see
//! `netaio_examples::service`).
//!
//! ```text
//! echo_server [--port P] [--bind ADDR] [--seconds N]
//! ```
//!
//! Prints `listening P` (the bound port) on stdout once it accepts connections, then serves until
//! Ctrl-C (or SIGTERM, or `--seconds N`) and shuts down gracefully: it stops accepting, lets
//! in-flight handlers finish, closes the connections and exits 0. Logs go to stderr (`RUST_LOG`).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use netaio::TcpServer;
use netaio_examples::args::{Flags, usage_exit};
use netaio_examples::{init_tracing, service};

const USAGE: &str = "[--port P] [--bind ADDR] [--seconds N]
  --port P      port to listen on (default 8888; 0 picks a free port)
  --bind ADDR   address to listen on (default 0.0.0.0; IPv6 like ::1 works)
  --seconds N   stop after N seconds (default: run until Ctrl-C)";

struct Options {
    addr: SocketAddr,
    seconds: Option<u64>,
}

fn options() -> Result<Options, netaio_examples::args::UsageError> {
    let flags = Flags::from_env(&["port", "bind", "seconds"])?;
    let port = flags.value_or("port", 8888u16)?;
    let ip = flags.ip_or("bind", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
    Ok(Options {
        addr: SocketAddr::new(ip, port),
        seconds: flags.value("seconds")?,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => return usage_exit("echo_server", USAGE, &e),
    };
    init_tracing("info");

    // Listen for signals before announcing the port, so that a Ctrl-C right after `listening P`
    // already means a graceful shutdown rather than the default abrupt exit.
    let signals = stop_signals();
    let server = match TcpServer::builder()
        .address(opts.addr)
        .router(service::router())
        .bind()
        .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("echo_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The line scripts and tests wait for: the real port, also when bound to port 0.
    let mut out = std::io::stdout().lock();
    let announced =
        writeln!(out, "listening {}", server.local_addr().port()).and_then(|()| out.flush());
    drop(out);
    if let Err(e) = announced {
        eprintln!("echo_server: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }

    server
        .serve_with_shutdown(async move {
            let deadline = async {
                match opts.seconds {
                    Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                why = signals => tracing::info!("{why}: shutting down"),
                () = deadline => tracing::info!("--seconds elapsed: shutting down"),
            }
        })
        .await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM, naming which. The handlers are installed by this call,
/// not when the future is first polled.
#[cfg(unix)]
fn stop_signals() -> impl Future<Output = &'static str> {
    use tokio::signal::unix::{Signal, SignalKind, signal};

    fn install(kind: SignalKind, name: &str) -> Option<Signal> {
        signal(kind)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for {name}"))
            .ok()
    }
    async fn next(s: &mut Option<Signal>) {
        match s {
            // `None` means the signal stream ended: treat it as a stop request too.
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let mut int = install(SignalKind::interrupt(), "Ctrl-C");
    let mut term = install(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = next(&mut int) => "Ctrl-C",
            () = next(&mut term) => "SIGTERM",
        }
    }
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn stop_signals() -> impl Future<Output = &'static str> {
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        "Ctrl-C"
    }
}
