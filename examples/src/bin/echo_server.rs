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
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;
use netaio::TcpServer;
use netaio_examples::{init_tracing, service};
use netaio_support::parse_ip;
use netaio_support::signals::{after, stop_signals};

/// The echo server: the Python README's TCPServer example (echo, subscribe, unsubscribe,
/// publish/notify). Prints `listening P` once it accepts connections.
#[derive(Debug, Parser)]
#[command(name = "echo_server")]
struct Cli {
    /// Port to listen on (0 picks a free port)
    #[arg(long, value_name = "P", default_value_t = 8888)]
    port: u16,
    /// Address to listen on (IPv6 like ::1 works)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0", value_parser = parse_ip)]
    bind: IpAddr,
    /// Stop after N seconds (default: run until Ctrl-C)
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = netaio_support::parse_args();
    init_tracing("info");

    // Listen for signals before announcing the port, so that a Ctrl-C right after `listening P`
    // already means a graceful shutdown rather than the default abrupt exit.
    let signals = stop_signals();
    let server = match TcpServer::builder()
        .address(SocketAddr::new(cli.bind, cli.port))
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
            tokio::select! {
                why = signals => tracing::info!("{why}: shutting down"),
                () = after(cli.seconds) => tracing::info!("--seconds elapsed: shutting down"),
            }
        })
        .await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::try_parse_from(["echo_server"]).unwrap();
        assert_eq!(
            (cli.port, cli.bind, cli.seconds),
            (8888, [0, 0, 0, 0].into(), None)
        );
        let cli = Cli::try_parse_from([
            "echo_server",
            "--port=0",
            "--bind",
            "[::1]",
            "--seconds",
            "3",
        ])
        .unwrap();
        assert_eq!(
            SocketAddr::new(cli.bind, cli.port),
            "[::1]:0".parse().unwrap()
        );
        assert_eq!(cli.seconds, Some(3));
        assert!(Cli::try_parse_from(["echo_server", "--bind", "localhost"]).is_err());
        assert!(Cli::try_parse_from(["echo_server", "8888"]).is_err());
    }
}
