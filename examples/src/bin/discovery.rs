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
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use netaio::Router;
use netaio::peer::{Peer, PeerConfig};
use netaio::plugin::HmacAuth;
use netaio::udp::{MulticastConfig, MulticastInterface, UdpNode};
use netaio_examples::args::{Flags, UsageError, usage_exit};
use netaio_examples::signals::{after, stop_signals};
use netaio_examples::{init_tracing, show};

const USAGE: &str = "[--bind ADDR] [--port P] [--group IP] [--group-port P] [--interface NAME]
          [--interval-ms N] [--timeout-ms N] [--app ID] [--secret S] [--id ID] [--seconds N]
  --bind ADDR       address to bind (default 0.0.0.0: every multicast-capable interface;
                    an address such as 127.0.0.1 uses the interface holding it)
  --port P          this node's unicast port (default 0: any free port)
  --group IP        multicast group (default 239.255.110.97, or ff02::6e61:696f for IPv6)
  --group-port P    multicast port (default 8889)
  --interface NAME  join and send on this interface only
  --interval-ms N   time between adverts (default 20000, as in Python)
  --timeout-ms N    forget a peer silent for this long (default 60000)
  --app ID          app id: only nodes with the same app id see each other (default netaio)
  --secret S        authenticate every message with HMAC-SHA256 and this secret
  --id ID           this node's peer id (default: random)
  --seconds N       stop after N seconds (default: run until Ctrl-C)";

struct Options {
    bind: SocketAddr,
    multicast: MulticastConfig,
    peers: PeerConfig,
    secret: Option<String>,
    id: Option<String>,
    seconds: Option<u64>,
}

fn options() -> Result<Options, UsageError> {
    let flags = Flags::from_env(&[
        "bind",
        "port",
        "group",
        "group-port",
        "interface",
        "interval-ms",
        "timeout-ms",
        "app",
        "secret",
        "id",
        "seconds",
    ])?;
    let ip = flags.ip_or("bind", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
    let mut multicast = MulticastConfig::default();
    if flags.raw("group").is_some() {
        multicast = multicast.with_group(flags.ip_or("group", ip)?);
    }
    if let Some(port) = flags.value("group-port")? {
        multicast = multicast.with_port(port);
    }
    if let Some(name) = flags.value::<String>("interface")? {
        multicast = multicast.with_interface(MulticastInterface::Name(name));
    }
    let peers = PeerConfig::default()
        .with_app_id(flags.value_or("app", "netaio".to_owned())?)
        .with_advertise_interval(Duration::from_millis(
            flags.value_or("interval-ms", 20_000u64)?,
        ))
        .with_peer_timeout(Duration::from_millis(
            flags.value_or("timeout-ms", 60_000u64)?,
        ));
    Ok(Options {
        bind: SocketAddr::new(ip, flags.value_or("port", 0u16)?),
        multicast,
        peers,
        secret: flags.value("secret")?,
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
        Err(e) => return usage_exit("discovery", USAGE, &e),
    };
    init_tracing("info");
    let signals = stop_signals();
    let mut builder = UdpNode::builder()
        .address(opts.bind)
        .router(Router::new())
        .multicast(opts.multicast)
        .peer_management(opts.peers);
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
