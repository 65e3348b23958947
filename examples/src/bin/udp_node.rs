//! The echo UDP node: the Python README's `UDPNode` example in Rust. The same echo service as
//! `echo_server` (echo, subscribe, unsubscribe, publish/notify; see `netaio_examples::service`)
//! on a UDP socket, with peer management: a node given `--peer ADDR` advertises itself there,
//! sends it an echo request and prints the reply.
//!
//! ```text
//! udp_node [--port P] [--bind ADDR] [--peer ADDR] [--message TEXT] [--timeout S] [--id ID] [--seconds N]
//! ```
//!
//! Output (stdout): `listening P`, then `reply TYPE "uri" "content"` for the request to `--peer`
//! (or `error ...` when it fails or no reply comes within `--timeout`), and one line per peer
//! event (`discovered ID ADDR`, `disconnected ID`, …). It runs until Ctrl-C (or SIGTERM, or
//! `--seconds N`), then says goodbye (`DISCONNECT`) to its peers and exits 0, or 1 if the advert
//! or the request to `--peer` failed (it keeps serving others meanwhile).
//!
//! Two nodes on one host:
//!
//! ```text
//! cargo run -p netaio-examples --bin udp_node -- --port 9000
//! cargo run -p netaio-examples --bin udp_node -- --port 9001 --peer 127.0.0.1:9000
//! ```

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use netaio::peer::{Peer, PeerConfig};
use netaio::udp::UdpNode;
use netaio_examples::{init_tracing, service, show};
use netaio_support::parse_ip;
use netaio_support::signals::{after, stop_signals};

/// The echo UDP node: the Python README's UDPNode example (echo, subscribe, unsubscribe,
/// publish/notify) with peer management. Prints `listening P`, then peer events.
#[derive(Debug, Parser)]
#[command(name = "udp_node")]
struct Cli {
    /// Port to bind (0 picks a free port)
    #[arg(long, value_name = "P", default_value_t = 8888)]
    port: u16,
    /// Address to bind (IPv6 like ::1 works)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0", value_parser = parse_ip)]
    bind: IpAddr,
    /// Advertise to this node and send it an echo request (host:port)
    #[arg(long, value_name = "ADDR")]
    peer: Option<SocketAddr>,
    /// The echo request's content
    #[arg(long, value_name = "TEXT", default_value = "hello")]
    message: String,
    /// Seconds to wait for the echo reply
    #[arg(long, value_name = "S", default_value = "10", value_parser = seconds)]
    timeout: Duration,
    /// This node's peer id (default: random)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Stop after N seconds (default: run until Ctrl-C)
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
}

/// A number of seconds above 0 and under a day (`Duration::from_secs_f64` panics on huge ones).
fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 && t < 86_400.0 => Ok(Duration::from_secs_f64(t)),
        Ok(_) => Err("not a number of seconds above 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts: Cli = netaio_support::parse_args();
    init_tracing("info");
    let signals = stop_signals();
    let mut builder = UdpNode::builder()
        .address(SocketAddr::new(opts.bind, opts.port))
        .router(service::router())
        .request_timeout(opts.timeout)
        .peer_management(PeerConfig::default());
    if let Some(id) = opts.id {
        builder = builder.local_peer(Peer::new(id));
    }
    let node = match builder.bind().await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("udp_node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = node.handle();
    let mut events = handle.peer_events();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            say(&show::peer_event(&e));
        }
    });
    say(&format!("listening {}", node.local_addr().port()));
    let serving = tokio::spawn(node.serve_with_shutdown(async move {
        tokio::select! {
            why = signals => tracing::info!("{why}: stopping"),
            () = after(opts.seconds) => tracing::info!("--seconds elapsed: stopping"),
        }
    }));

    // A failed advert or request is reported and makes the exit status 1, but the node keeps
    // serving until it is stopped, as a node that others may be talking to.
    let mut failed = false;
    if let Some(peer) = opts.peer {
        if let Err(e) = handle.advertise_to(peer).await {
            eprintln!("udp_node: cannot advertise to {peer}: {e}");
            failed = true;
        }
        match handle.request(peer, "echo", opts.message).await {
            Ok(reply) => say(&format!("reply {}", show::message(&reply))),
            Err(e) => {
                say(&format!("error {}", show::request_error(&e)));
                failed = true;
            }
        }
    }
    match serving.await {
        Ok(()) if failed => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_node: {e}");
            ExitCode::FAILURE
        }
    }
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
        let cli = Cli::try_parse_from(["udp_node"]).unwrap();
        assert_eq!(
            SocketAddr::new(cli.bind, cli.port),
            "0.0.0.0:8888".parse().unwrap()
        );
        assert_eq!(
            (cli.peer, cli.message.as_str(), cli.id, cli.seconds),
            (None, "hello", None, None)
        );
        assert_eq!(cli.timeout, Duration::from_secs(10));
        assert!(Cli::try_parse_from(["udp_node", "--timeout", "0"]).is_err());
        let cli = Cli::try_parse_from([
            "udp_node",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--peer",
            "127.0.0.1:9000",
            "--message",
            "hi there",
            "--id",
            "beta",
            "--seconds",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.peer, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(
            (cli.message.as_str(), cli.id.as_deref()),
            ("hi there", Some("beta"))
        );
        assert!(Cli::try_parse_from(["udp_node", "--port", "not-a-port"]).is_err());
        assert!(Cli::try_parse_from(["udp_node", "--bogus", "1"]).is_err());
    }
}
