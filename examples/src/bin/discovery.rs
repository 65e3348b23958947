//! LAN discovery: a UDP node that finds the other nodes of its app on the local network by
//! multicast and prints peer events as they come and go.
//!
//! ```text
//! discovery [--bind ADDR] [--port P] [--group IP] [--group-port P] [--interface NAME]
//!           [--interval-ms N] [--timeout-ms N] [--app ID] [--secret S] [--id ID] [--seconds N]
//! ```
//!
//! Output (stdout): `id ID`, `listening ADDR`, `group ADDR`, then one line per event:
//! `discovered ID ADDR`, `updated ID ADDR`, `expired ID`, `disconnected ID`. On Ctrl-C (or
//! SIGTERM, or `--seconds N`) it multicasts `DISCONNECT` and exits 0.
//!
//! Start it in several terminals (or on several hosts of one LAN): each prints the others. With
//! `--secret`, adverts are authenticated (HMAC-SHA256) and nodes without the secret are ignored.
//!
//! ```text
//! cargo run -p netaio-examples --bin discovery -- --secret s3cret
//! cargo run -p netaio-examples --bin discovery -- --secret s3cret --interval-ms 2000
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use netaio::Router;
use netaio::peer::{Peer, PeerConfig};
use netaio::plugin::HmacAuth;
use netaio::udp::UdpNode;
use netaio_examples::{init_tracing, show};
use netaio_support::MulticastArgs;
use netaio_support::signals::{after, stop_signals};

/// LAN discovery: a UDP node finding the other nodes of its app by multicast, printing peer
/// events as they come and go.
#[derive(Debug, Parser)]
#[command(name = "discovery")]
struct Cli {
    #[command(flatten)]
    lan: MulticastArgs,
    /// Time between adverts, ms (as in Python)
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    interval_ms: u64,
    /// Forget a peer silent for this long, ms
    #[arg(long, value_name = "N", default_value_t = 60_000)]
    timeout_ms: u64,
    /// App id: only nodes with the same app id see each other
    #[arg(long, value_name = "ID", default_value = "netaio")]
    app: String,
    /// Authenticate every message with HMAC-SHA256 and this secret
    #[arg(long, value_name = "S")]
    secret: Option<String>,
    /// This node's peer id (default: random)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Stop after N seconds (default: run until Ctrl-C)
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
}

impl Cli {
    fn peers(&self) -> PeerConfig {
        PeerConfig::default()
            .app_id(self.app.clone())
            .advertise_interval(Duration::from_millis(self.interval_ms))
            .peer_timeout(Duration::from_millis(self.timeout_ms))
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
        .address(opts.lan.bind_addr())
        .router(Router::new())
        .multicast(opts.lan.multicast())
        .peer_management(opts.peers());
    if let Some(id) = opts.id {
        builder = builder.local_peer(Peer::new(id));
    }
    if let Some(secret) = &opts.secret {
        builder = builder.auth(HmacAuth::new(secret.as_bytes()));
    }
    let node = match builder.bind().await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("discovery: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = node.handle();
    let mut events = handle.peer_events();
    if let Some(me) = handle.local_peer() {
        say(&format!("id {}", me.id.escape_ascii()));
    }
    say(&format!("listening {}", node.local_addr()));
    if let Some(group) = handle.multicast_group() {
        say(&format!("group {group}"));
    }
    let printer = tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            say(&show::peer_event(&e));
        }
    });
    node.serve_with_shutdown(async move {
        tokio::select! {
            why = signals => tracing::info!("{why}: leaving"),
            () = after(opts.seconds) => tracing::info!("--seconds elapsed: leaving"),
        }
    })
    .await;
    printer.abort();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use netaio::udp::MulticastConfig;

    use super::*;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::try_parse_from(["discovery"]).unwrap();
        assert_eq!(cli.lan.bind_addr(), "0.0.0.0:0".parse().unwrap());
        assert_eq!(cli.lan.multicast(), MulticastConfig::default());
        let peers = cli.peers();
        assert_eq!(peers.get_app_id().as_ref(), b"netaio");
        assert_eq!(peers.get_advertise_interval(), Duration::from_secs(20));
        assert_eq!(peers.get_peer_timeout(), Duration::from_secs(60));
        assert_eq!((cli.secret, cli.id, cli.seconds), (None, None, None));
        let cli = Cli::try_parse_from([
            "discovery",
            "--bind",
            "127.0.0.1",
            "--group-port",
            "7400",
            "--interval-ms",
            "200",
            "--app=test",
            "--secret",
            "s3cret",
            "--seconds",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.lan.multicast().get_port(), Some(7400));
        assert_eq!(cli.interval_ms, 200);
        assert_eq!(cli.app, "test");
        assert_eq!(cli.secret.as_deref(), Some("s3cret"));
        assert_eq!(cli.seconds, Some(2));
        assert!(Cli::try_parse_from(["discovery", "--interval-ms", "soon"]).is_err());
        assert!(Cli::try_parse_from(["discovery", "--group", "not-an-ip"]).is_err());
    }
}
