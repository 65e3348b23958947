//! The echo UDP node: the Python README's `UDPNode` example in Rust. The same echo service as
//! `echo_server` (echo, subscribe, unsubscribe, publish/notify; see `netaio_examples::service`)
//! on a UDP socket, with peer management: a node given `--peer ADDR` advertises itself there,
//! sends it an echo request and prints the reply.
//!
//! ```text
//! udp_node [--port P] [--bind ADDR] [--peer ADDR] [--message TEXT] [--id ID] [--seconds N]
//! ```
//!
//! Output (stdout): `listening P`, then `reply TYPE "uri" "content"` for the request to `--peer`,
//! and one line per peer event (`discovered ID ADDR`, `disconnected ID`, …). It runs until Ctrl-C
//! (or SIGTERM, or `--seconds N`), then says goodbye (`DISCONNECT`) to its peers and exits 0.
//!
//! Two nodes on one host:
//!
//! ```text
//! cargo run -p netaio-examples --bin udp_node -- --port 9000
//! cargo run -p netaio-examples --bin udp_node -- --port 9001 --peer 127.0.0.1:9000
//! ```

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use netaio::peer::{Peer, PeerConfig};
use netaio::udp::UdpNode;
use netaio_examples::args::{Flags, UsageError, usage_exit};
use netaio_examples::signals::{after, stop_signals};
use netaio_examples::{init_tracing, service, show};

const USAGE: &str =
    "[--port P] [--bind ADDR] [--peer ADDR] [--message TEXT] [--id ID] [--seconds N]
  --port P        port to bind (default 8888; 0 picks a free port)
  --bind ADDR     address to bind (default 0.0.0.0; IPv6 like ::1 works)
  --peer ADDR     advertise to this node and send it an echo request (host:port)
  --message TEXT  the echo request's content (default hello)
  --id ID         this node's peer id (default: random)
  --seconds N     stop after N seconds (default: run until Ctrl-C)";

struct Options {
    addr: SocketAddr,
    peer: Option<SocketAddr>,
    message: String,
    id: Option<String>,
    seconds: Option<u64>,
}

fn options() -> Result<Options, UsageError> {
    let flags = Flags::from_env(&["port", "bind", "peer", "message", "id", "seconds"])?;
    let port = flags.value_or("port", 8888u16)?;
    let ip = flags.ip_or("bind", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
    Ok(Options {
        addr: SocketAddr::new(ip, port),
        peer: flags.value("peer")?,
        message: flags.value_or("message", "hello".to_owned())?,
        id: flags.value("id")?,
        seconds: flags.value("seconds")?,
    })
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => return usage_exit("udp_node", USAGE, &e),
    };
    init_tracing("info");
    let signals = stop_signals();
    let mut builder = UdpNode::builder()
        .address(opts.addr)
        .router(service::router())
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

    if let Some(peer) = opts.peer {
        if let Err(e) = handle.advertise_to(peer).await {
            eprintln!("udp_node: cannot advertise to {peer}: {e}");
        }
        match handle.request(peer, "echo", opts.message).await {
            Ok(reply) => say(&format!("reply {}", show::message(&reply))),
            Err(e) => say(&format!("error {}", show::request_error(&e))),
        }
    }
    match serving.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_node: {e}");
            ExitCode::FAILURE
        }
    }
}
