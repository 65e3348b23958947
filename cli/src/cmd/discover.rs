//! `discover`: a UDP node with peer management joins the discovery group and lists the peers
//! it hears: on a terminal a table redrawn twice a second (id, addresses, peer data, last
//! heard); otherwise one line (or JSON object) per event, and the peers known at the end.

use std::sync::Arc;
use std::time::Duration;

use netaio::peer::{Peer, PeerConfig, PeerEvent};
use netaio::plugin::{PeerPlugin, PostcardPeerPlugin};
use netaio::{Router, UdpNode};
use serde_json::{Value, json};

use super::after;
use crate::cli::DiscoverArgs;
use crate::common::CommonArgs;
use crate::content::preview;
use crate::exit::Failure;
use crate::output::Output;

/// A peer id for people and JSON: text when printable, else hex.
fn id_text(peer: &Peer) -> String {
    preview(&peer.id, 64)
}

/// The peer data as `name=preview` pairs (decoded with the peer plugin; raw length otherwise).
fn data_summary(peer: &Peer, plugin: &dyn PeerPlugin) -> Vec<(String, String)> {
    if peer.data.is_empty() {
        return Vec::new();
    }
    match plugin.decode_data(&peer.data) {
        Ok(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), preview(v, 24)))
            .collect(),
        Err(_) => vec![("data".into(), format!("{} bytes", peer.data.len()))],
    }
}

fn last_heard(peer: &Peer) -> Option<f64> {
    peer.last_seen.map(|t| t.elapsed().as_secs_f64())
}

fn peer_json(peer: &Peer, plugin: &dyn PeerPlugin) -> Value {
    let data: serde_json::Map<String, Value> = data_summary(peer, plugin)
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    json!({
        "id": id_text(peer),
        "addrs": peer.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "data": data,
        "last_heard_s": last_heard(peer),
    })
}

fn peer_line(peer: &Peer, plugin: &dyn PeerPlugin) -> String {
    let addrs: Vec<String> = peer.addrs.iter().map(ToString::to_string).collect();
    let data: Vec<String> = data_summary(peer, plugin)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let heard = last_heard(peer).map_or_else(String::new, |s| format!("{s:.0}s ago"));
    format!(
        "{:<24} {:<40} {:<30} {heard}",
        id_text(peer),
        addrs.join(","),
        data.join(" ")
    )
}

/// Discover until Ctrl-C or `--seconds`.
pub async fn run(common: &CommonArgs, out: &Output, args: DiscoverArgs) -> Result<(), Failure> {
    let plugins = common.plugins()?;
    let peers = PeerConfig::default()
        .app_id(args.app.clone())
        .advertise_interval(args.interval)
        .peer_timeout(args.peer_timeout);
    let mut builder = plugins
        .udp(UdpNode::builder())
        .address(args.lan.bind_addr())
        .router(Router::new())
        .peer_management(peers);
    // `--python-compat` set Python's group; the flags, when given, override it.
    let lan = &args.lan;
    if !common.python_compat
        || lan.group.is_some()
        || lan.group_port.is_some()
        || lan.interface.is_some()
    {
        builder = builder.multicast(lan.multicast());
    }
    if let Some(id) = &args.id {
        builder = builder.local_peer(Peer::new(id.clone()));
    }
    let node = builder
        .bind()
        .await
        .map_err(|e| Failure::other(format!("discovery node: {e}")))?;
    let handle = node.handle();
    // The peer data of Python nodes is packify; ours postcard.
    let plugin: Arc<dyn PeerPlugin> = if common.python_compat {
        Arc::new(netaio::compat::PackifyPeerPlugin)
    } else {
        Arc::new(PostcardPeerPlugin)
    };
    let me = handle.local_peer().map(id_text).unwrap_or_default();
    out.event(
        "started",
        json!({
            "id": me,
            "addr": node.local_addr().to_string(),
            "group": handle.multicast_group().map(|g| g.to_string()),
        }),
        || {
            let group = handle
                .multicast_group()
                .map_or_else(String::new, |g| format!(" group {g}"));
            format!("id {me} listening {}{group}", node.local_addr())
        },
    );
    let mut events = handle.peer_events();
    let table = handle.peers().clone();
    let o = *out;
    let p = plugin.clone();
    let printer = tokio::spawn(async move {
        if o.is_live() {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let mut screen = format!(
                    "\x1b[2J\x1b[H{} peer(s)   (Ctrl-C to stop)\n{:<24} {:<40} {:<30} last heard",
                    table.len(),
                    "id",
                    "addresses",
                    "data"
                );
                for peer in table.peers() {
                    screen.push('\n');
                    screen.push_str(&peer_line(&peer, p.as_ref()));
                }
                o.line(&screen);
            }
        }
        loop {
            let e = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            };
            let kind = match &e {
                PeerEvent::Discovered(_) => "discovered",
                PeerEvent::Updated(_) => "updated",
                PeerEvent::Expired(_) => "expired",
                PeerEvent::Disconnected(_) => "disconnected",
                _ => "changed",
            };
            let peer = e.peer();
            o.event(kind, json!({"peer": peer_json(peer, p.as_ref())}), || {
                format!("{kind:<12} {}", peer_line(peer, p.as_ref()))
            });
        }
    });
    let seconds = args.seconds;
    let o = *out;
    let h = handle.clone();
    node.serve_with_shutdown(async move {
        tokio::select! {
            why = netaio_support::signals::stop_signals() => tracing::info!("{why}: leaving"),
            () = after(seconds) => {}
        }
        // The peers heard, listed before this node says goodbye.
        printer.abort();
        let peers = h.peers().peers();
        let known: Vec<Value> = peers
            .iter()
            .map(|p| peer_json(p, plugin.as_ref()))
            .collect();
        o.event("peers", json!({"peers": known}), || {
            let mut s = format!("{} peer(s) heard", peers.len());
            for peer in &peers {
                s.push('\n');
                s.push_str(&peer_line(peer, plugin.as_ref()));
            }
            s
        });
    })
    .await;
    Ok(())
}
