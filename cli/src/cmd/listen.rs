//! `listen --udp ADDR [--group G]`: a UDP node that prints every message it receives (from
//! whom, type, uri, content) and never answers; datagrams it refuses (undecodable, failed
//! authentication or decryption, requests from unverified addresses, overload) are reported from
//! the node's counters, with the reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use netaio::udp::{MulticastConfig, MulticastInterface, UdpStats};
use netaio::{Context, Message, Router, UdpHandle, UdpNode};
use serde_json::json;
use tokio::sync::mpsc;

use super::after;
use crate::common::CommonArgs;
use crate::exit::Failure;
use crate::output::Output;

/// `--group`, `--group-port`, `--interface`.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// The group to join.
    pub ip: Option<IpAddr>,
    /// Its port (default: the node's).
    pub port: Option<u16>,
    /// The interface to join it on.
    pub interface: Option<String>,
}

/// The refusal counters of [`UdpStats`], with the reason each stands for.
fn refusals(s: &UdpStats) -> [(&'static str, &'static str, u64); 6] {
    [
        (
            "invalid",
            "not a valid frame (length, checksum, auth block)",
            s.invalid,
        ),
        (
            "auth_failed",
            "failed the auth check (wrong or missing secret, replay, stale)",
            s.auth_failed,
        ),
        (
            "decrypt_failed",
            "failed decryption (wrong cipher key)",
            s.decrypt_failed,
        ),
        (
            "overloaded",
            "dropped: too many handlers running",
            s.overloaded,
        ),
        (
            "challenged",
            "a request from an unverified address: answered with a return-routability challenge, not handled",
            s.challenges,
        ),
        (
            "subscription_refused",
            "a subscription from an unverified address",
            s.subscriptions_unverified,
        ),
    ]
}

/// Print each new refusal counted by the node, every 100 ms, until aborted.
pub async fn report_refusals(out: Output, handle: UdpHandle) {
    let mut seen = refusals(&handle.stats()).map(|(_, _, n)| n);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let now = refusals(&handle.stats());
        for ((reason, why, n), before) in now.iter().zip(seen.iter_mut()) {
            if *n > *before {
                let more = *n - *before;
                out.event(
                    "refused",
                    json!({"reason": reason, "count": more, "why": why}),
                    || format!("refused {more} datagram(s): {why}"),
                );
                *before = *n;
            }
        }
    }
}

/// Listen until Ctrl-C, `--seconds` or `--count` messages.
pub async fn run(
    common: &CommonArgs,
    out: &Output,
    addr: SocketAddr,
    group: Group,
    count: Option<u64>,
    seconds: Option<Duration>,
) -> Result<(), Failure> {
    let plugins = common.plugins()?;
    let (seen_tx, mut seen_rx) = mpsc::channel::<()>(1024);
    let o = *out;
    let router = Router::new().fallback(move |msg: Message, ctx: Context| {
        let seen = seen_tx.clone();
        async move {
            o.message("received", Some(ctx.peer_addr()), &msg, json!({}));
            // Only counts for --count: a full channel means the count is reached anyway.
            let _ = seen.try_send(());
        }
    });
    let mut builder = plugins.udp(UdpNode::builder()).address(addr).router(router);
    if let Some(ip) = group.ip {
        let mut m = MulticastConfig::default().group(ip);
        if let Some(p) = group.port {
            m = m.port(p);
        }
        if let Some(name) = group.interface {
            m = m.interface(MulticastInterface::Name(name));
        }
        builder = builder.multicast(m);
    }
    let node = builder
        .bind()
        .await
        .map_err(|e| Failure::other(format!("cannot listen on {addr}: {e}")))?;
    let handle = node.handle();
    super::serve::listening(out, "udp", node.local_addr());
    if let Some(g) = handle.multicast_group() {
        out.event("group", json!({"group": g.to_string()}), || {
            format!("group {g}")
        });
    }
    let refusals = tokio::spawn(report_refusals(*out, handle.clone()));
    let counted = async move {
        let mut n = 0u64;
        while count.is_none_or(|c| n < c) {
            if seen_rx.recv().await.is_none() {
                break;
            }
            n += 1;
        }
    };
    node.serve_with_shutdown(async move {
        tokio::select! {
            why = netaio_support::signals::stop_signals() => tracing::info!("{why}: stopping"),
            () = after(seconds) => {}
            () = counted => {}
        }
    })
    .await;
    refusals.abort();
    Ok(())
}
