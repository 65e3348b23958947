//! The UDP interop node: a Rust `UdpNode` in Python-compatible mode, for checking it against a
//! Python netaio 0.0.9 `UDPNode` from a shell.
//!
//! ```text
//! compat_udp_node --port P [--peer-port Q --send N] [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] [--seconds S] [--timeout T]
//! ```
//!
//! Binds 127.0.0.1:P and prints `listening P` once bound (the real port when P is 0). It answers
//! REQUEST_URI with OK (same uri and content) by unicast, until S seconds have passed (default:
//! until Ctrl-C). With `--send N` it instead sends N REQUEST_URI messages of 0 to 1,000 bytes to
//! 127.0.0.1:Q, checks that each is answered with OK and the same uri and content (waiting up to T
//! seconds, default 10 as Python's `request`), prints `ok N` and exits 0, or prints the reason on
//! stderr and exits 1 (2 for a usage error). Options not given take the Python library's defaults
//! (no plugins; the cipher encrypts the uri unless `--no-encrypt-uri`). `--verbose` is accepted
//! and ignored; logs go to stderr (`RUST_LOG`).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use netaio::plugin::SendOptions;
use netaio::udp::{UdpHandle, UdpNode};
use netaio::{Message, MessageType, Router};
use netaio_examples::compat::{PluginFlags, content_for};
use netaio_examples::init_tracing;
use netaio_examples::show::{message as line, request_error};

/// The UDP interop node: a UdpNode in Python-compatible mode on 127.0.0.1, answering REQUEST_URI
/// with OK, or with --send sending N requests to another node and checking the replies. Prints
/// `listening P` once bound, and `ok N` after --send.
#[derive(Debug, Parser)]
#[command(name = "compat_udp_node")]
struct Cli {
    /// Port to bind on 127.0.0.1 (0 picks a free one; `listening P` tells which)
    #[arg(long, value_name = "P")]
    port: u16,
    /// With --send: the port of the node to send to, on 127.0.0.1
    #[arg(long, value_name = "Q", requires = "send")]
    peer_port: Option<u16>,
    /// Send N requests to the peer, check the replies, print `ok N` and exit
    #[arg(long, value_name = "N", requires = "peer_port")]
    send: Option<usize>,
    #[command(flatten)]
    plugins: PluginFlags,
    /// Answer requests for S seconds, then exit (default: until Ctrl-C)
    #[arg(long, value_name = "S", value_parser = seconds)]
    seconds: Option<Duration>,
    /// Seconds to wait for each reply (as Python's request)
    #[arg(long, value_name = "T", default_value = "10", value_parser = seconds)]
    timeout: Duration,
}

/// A number of seconds above 0 and under a year (`Duration::from_secs_f64` panics on huge ones).
fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 && t < 86_400.0 * 365.0 => Ok(Duration::from_secs_f64(t)),
        Ok(_) => Err("not a number of seconds above 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Send `n` requests to `peer` and check every reply.
async fn send_checks(
    node: &UdpHandle,
    peer: SocketAddr,
    n: usize,
    timeout: Duration,
) -> Result<(), String> {
    let opts = SendOptions::new().timeout(timeout);
    for i in 0..n {
        let content = content_for(i);
        let uri = format!("echo/{i}");
        let msg = Message::new(MessageType::REQUEST_URI, uri.clone(), content.clone());
        let reply = node
            .call_with(peer, msg, &opts)
            .await
            .map_err(|e| format!("request {i}: {}", request_error(&e)))?;
        if reply.message_type != MessageType::OK
            || reply.uri().as_ref() != uri.as_bytes()
            || reply.content().as_ref() != &content[..]
        {
            return Err(format!(
                "request {i}: expected OK {uri:?} with {} bytes, got {}",
                content.len(),
                line(&reply)
            ));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts: Cli = netaio_support::parse_args();
    init_tracing("warn");
    let router = Router::new().on(MessageType::REQUEST_URI, |m: Message| async move {
        Message::ok(m.uri().clone(), m.content().clone())
    });
    let builder = UdpNode::builder()
        .address((Ipv4Addr::LOCALHOST, opts.port))
        .router(router);
    let builder = opts.plugins.udp(builder);
    let node = match builder.bind().await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("compat_udp_node: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(plugins = %opts.plugins.describe(), "python-compatible udp node");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening {}", node.local_addr().port()).and_then(|()| out.flush());
    }
    let handle = node.handle();
    let seconds = opts.seconds;
    let serving = tokio::spawn(node.serve_with_shutdown(async move {
        match seconds {
            Some(s) => tokio::time::sleep(s).await,
            None => {
                if let Err(e) = tokio::signal::ctrl_c().await {
                    tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
            }
        }
    }));
    // `requires` makes clap refuse one of --peer-port and --send without the other.
    let code = match opts.peer_port.zip(opts.send) {
        None => ExitCode::SUCCESS,
        Some((q, n)) => {
            let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, q));
            let result = send_checks(&handle, peer, n, opts.timeout).await;
            handle.shutdown();
            match result {
                Ok(()) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ok {n}").and_then(|()| out.flush());
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    eprintln!("compat_udp_node: {reason}");
                    ExitCode::FAILURE
                }
            }
        }
    };
    let _ = serving.await;
    code
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
        let cli = Cli::try_parse_from(["compat_udp_node", "--port", "0"]).unwrap();
        assert_eq!(
            (cli.port, cli.peer_port, cli.send, cli.seconds),
            (0, None, None, None)
        );
        assert_eq!(cli.timeout, Duration::from_secs(10));
        let cli = Cli::try_parse_from([
            "compat_udp_node",
            "--port",
            "0",
            "--peer-port",
            "9",
            "--send",
            "4",
            "--seconds=1.5",
            "--timeout",
            "2",
            "--hmac",
            "s",
        ])
        .unwrap();
        assert_eq!(cli.peer_port.zip(cli.send), Some((9, 4)));
        assert_eq!(cli.seconds, Some(Duration::from_millis(1500)));
        assert_eq!(cli.timeout, Duration::from_secs(2));
        for bad in [
            &["compat_udp_node"][..],
            &["compat_udp_node", "--port", "0", "--send", "4"],
            &["compat_udp_node", "--port", "0", "--peer-port", "9"],
            &["compat_udp_node", "--port", "0", "--seconds", "-1"],
            &["compat_udp_node", "--port", "0", "--timeout", "inf"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
