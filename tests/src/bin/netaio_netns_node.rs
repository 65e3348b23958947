//! `netaio-netns-node`: one UdpNode with multicast discovery, driven over stdin/stdout by the
//! network-namespace tests (`tests/tests/netns.rs`), which run one per namespace with
//! `ip netns exec`.
//!
//! ```text
//! netaio-netns-node --bind ADDR --id ID [--secret S] [--interval-ms N] [--timeout-ms N]
//!                   [--app APP] [--group IP] [--port P] [--interface NAME] [--python-layout 1]
//! ```
//!
//! `--python-layout 1` uses `MulticastConfig::python()`: the all-hosts group on the node's own
//! port, received on the node's own socket.
//!
//! It answers `REQUEST_URI echo` with `ID:content`. Output lines (stdout):
//! `ready ID ADDR`, `discovered ID ADDR`, `updated ID ADDR`, `expired ID`, `disconnected ID`,
//! `reply CONTENT`, `error TEXT`, `peers ID,ID,…`, `stopped`.
//! Commands (stdin): `request PEER-ID TEXT` (echo request to a known peer), `peers`, `stop`
//! (graceful: multicasts DISCONNECT). End of input is `stop`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use netaio::peer::{Peer, PeerConfig, PeerEvent};
use netaio::plugin::HmacAuth;
use netaio::udp::{MulticastConfig, MulticastInterface, UdpHandle, UdpNode};
use netaio::{Message, MessageType, Router};
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str = "usage: netaio-netns-node --bind ADDR --id ID [--secret S] [--interval-ms N] \
                     [--timeout-ms N] [--app APP] [--group IP] [--port P] [--interface NAME] [--python-layout 1]";

fn flags() -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag}"))?;
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

fn parse<T: std::str::FromStr>(
    flags: &BTreeMap<String, String>,
    name: &str,
) -> Result<Option<T>, String> {
    flags
        .get(name)
        .map(|v| v.parse().map_err(|_| format!("bad --{name} {v}")))
        .transpose()
}

fn describe(e: &PeerEvent) -> String {
    let p = e.peer();
    let id = String::from_utf8_lossy(&p.id);
    let addr = p.addrs.first().map(|a| a.to_string()).unwrap_or_default();
    match e {
        PeerEvent::Discovered(_) => format!("discovered {id} {addr}"),
        PeerEvent::Updated(_) => format!("updated {id} {addr}"),
        PeerEvent::Expired(_) => format!("expired {id}"),
        PeerEvent::Disconnected(_) => format!("disconnected {id}"),
        _ => format!("event {id}"),
    }
}

async fn command(h: &UdpHandle, line: &str) -> Option<String> {
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some("request"), Some(peer), text) => {
            let Some(addr) = h.peers().get(peer).and_then(|p| p.addrs.first().copied()) else {
                return Some(format!("error unknown peer {peer}"));
            };
            Some(
                match h.request(addr, "echo", text.unwrap_or("").to_owned()).await {
                    Ok(r) => format!("reply {}", String::from_utf8_lossy(r.content())),
                    Err(e) => format!("error {e}"),
                },
            )
        }
        (Some("peers"), None, None) => {
            let ids: Vec<_> = h
                .peers()
                .peers()
                .iter()
                .map(|p| String::from_utf8_lossy(&p.id).into_owned())
                .collect();
            Some(format!("peers {}", ids.join(",")))
        }
        _ => Some(format!("error unknown command {line:?}")),
    }
}

async fn run() -> Result<(), String> {
    let flags = flags()?;
    let bind: SocketAddr = parse(&flags, "bind")?.ok_or("--bind is required")?;
    let id: String = parse(&flags, "id")?.ok_or("--id is required")?;
    let interval = Duration::from_millis(parse(&flags, "interval-ms")?.unwrap_or(500));
    let timeout = Duration::from_millis(parse(&flags, "timeout-ms")?.unwrap_or(3000));
    let app: String = parse(&flags, "app")?.unwrap_or_else(|| "netns".into());
    let mut multicast = match parse::<u8>(&flags, "python-layout")? {
        Some(1) => MulticastConfig::python(),
        _ => MulticastConfig::default(),
    };
    if let Some(group) = parse::<IpAddr>(&flags, "group")? {
        multicast = multicast.group(group);
    }
    if let Some(port) = parse::<u16>(&flags, "port")? {
        multicast = multicast.port(port);
    }
    if let Some(name) = parse::<String>(&flags, "interface")? {
        multicast = multicast.interface(MulticastInterface::Name(name));
    }

    let me = id.clone();
    let router = Router::new().on((MessageType::REQUEST_URI, "echo"), move |m: Message| {
        let me = me.clone();
        async move {
            let text = format!("{me}:{}", String::from_utf8_lossy(m.content()));
            Message::respond("echo", text)
        }
    });
    let mut builder = UdpNode::builder()
        .address(bind)
        .router(router)
        .local_peer(Peer::new(id.clone()))
        .request_timeout(Duration::from_secs(1))
        .multicast(multicast)
        .peer_management(
            PeerConfig::default()
                .app_id(app)
                .advertise_interval(interval)
                .peer_timeout(timeout),
        );
    if let Some(secret) = parse::<String>(&flags, "secret")? {
        builder = builder.auth(HmacAuth::new(secret.as_bytes()));
    }
    let node = builder.bind().await.map_err(|e| e.to_string())?;
    let h = node.handle();
    let mut events = h.peer_events();
    let serving = tokio::spawn(node.serve());
    println!("ready {id} {}", h.local_addr());
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            println!("{}", describe(&e));
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line == "stop" {
            break;
        }
        if let Some(out) = command(&h, line).await {
            println!("{out}");
        }
    }
    h.shutdown();
    serving.await.map_err(|e| e.to_string())?;
    println!("stopped");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netaio-netns-node: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
