//! `subscribe udp://ADDR URI...`: subscribe from a UDP node of our own, print each PUBLISH or
//! NOTIFY that arrives, renew the subscriptions (UDP subscriptions are leases that lapse after
//! the remote's `subscription_ttl`, 5 minutes by default), and unsubscribe on the way out.

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use netaio::{Context, Message, MessageType, Router, UdpHandle, UdpNode};
use serde_json::json;
use tokio::sync::mpsc;

use super::after;
use super::subscribe::Args;
use crate::common::CommonArgs;
use crate::exit::{Code, Failure};
use crate::output::Output;

/// Notifications waiting to be printed; beyond this they are dropped (and logged): printing is
/// the only consumer, and a remote that floods faster than stdout takes them is not queued for.
const QUEUE: usize = 1024;

/// How long to wait for each CONFIRM_UNSUBSCRIBE on the way out: the remote may be gone, and
/// the lease lapses by itself anyway.
const UNSUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

/// Subscribe to every uri (each confirmed), print what arrives, renew, unsubscribe at the end.
pub async fn run(common: &CommonArgs, out: &Output, args: Args) -> Result<(), Failure> {
    let remote = args.addr.resolve().await?;
    let any: SocketAddr = if remote.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    // Only PUBLISH and NOTIFY are notifications; anything else sent to this node is not
    // answered (the fallback returns nothing) and not printed.
    let router = Router::new().fallback(move |msg: Message, ctx: Context| {
        let tx = tx.clone();
        async move {
            if matches!(
                msg.message_type,
                MessageType::PUBLISH_URI | MessageType::NOTIFY_URI
            ) && tx.try_send(msg).is_err()
            {
                tracing::warn!(peer = %ctx.peer_addr(), "notification dropped: output too slow");
            }
        }
    });
    let node = common
        .plugins()?
        .udp(UdpNode::builder())
        .address(any)
        .router(router)
        .request_timeout(args.timeout)
        .bind()
        .await
        .map_err(|e| Failure::other(format!("cannot bind a UDP socket: {e}")))?;
    let handle = node.handle();
    let task = tokio::spawn(node.serve());
    let mut confirmed = 0;
    let result = subscribed(out, &handle, remote, &args, &mut rx, &mut confirmed).await;
    // Only the confirmed ones: a remote that refused or never answered has nothing to cancel,
    // and waiting for it would only delay the exit.
    for uri in args.uris.iter().take(confirmed) {
        unsubscribe(&handle, remote, uri, args.timeout.min(UNSUBSCRIBE_WAIT)).await;
    }
    handle.shutdown();
    let _ = task.await;
    result
}

/// Subscribe (counting the uris confirmed, in order), then print until the end, renewing
/// every `args.renew`.
async fn subscribed(
    out: &Output,
    handle: &UdpHandle,
    remote: SocketAddr,
    args: &Args,
    rx: &mut mpsc::Receiver<Message>,
    confirmed: &mut usize,
) -> Result<(), Failure> {
    for uri in &args.uris {
        subscribe(out, handle, remote, uri).await?;
        *confirmed += 1;
        out.event("subscribed", json!({"uri": uri}), || {
            format!("subscribed {uri}")
        });
    }
    let receiving = async {
        let mut n = 0u64;
        while args.count.is_none_or(|c| n < c) {
            let Some(msg) = rx.recv().await else { break };
            out.message("notification", None, &msg, json!({}));
            n += 1;
        }
    };
    let renewing = async {
        let mut tick = tokio::time::interval(args.renew);
        // The first tick is now: the subscriptions were just made.
        tick.tick().await;
        loop {
            tick.tick().await;
            for uri in &args.uris {
                // A lost renewal is tried again at the next tick; the lease outlives a few.
                match subscribe(out, handle, remote, uri).await {
                    Ok(()) => tracing::debug!(%uri, "subscription renewed"),
                    Err(f) => {
                        tracing::warn!(%uri, "renewing the subscription: {}", f.message);
                        out.note(&format!("renewing {uri}: {}", f.message));
                    }
                }
            }
        }
    };
    tokio::select! {
        () = receiving => {}
        () = renewing => {}
        why = netaio_support::signals::stop_signals() => tracing::info!("{why}: stopping"),
        () = after(args.seconds) => {}
    }
    Ok(())
}

/// Send SUBSCRIBE_URI as a request (the node answers a challenge for us if it asks for one)
/// and expect CONFIRM_SUBSCRIBE.
async fn subscribe(
    out: &Output,
    handle: &UdpHandle,
    remote: SocketAddr,
    uri: &str,
) -> Result<(), Failure> {
    let sub = Message::new(MessageType::SUBSCRIBE_URI, uri.to_owned(), "");
    match handle.call(remote, sub).await {
        Ok(reply) if reply.message_type == MessageType::CONFIRM_SUBSCRIBE => Ok(()),
        Ok(reply) => {
            out.message("reply", None, &reply, json!({}));
            Err(Failure::new(
                Code::ErrorReply,
                format!("subscribing to {uri:?}: expected CONFIRM_SUBSCRIBE"),
            ))
        }
        Err(e) => {
            if let Some(reply) = e.reply() {
                out.message("error_reply", None, reply, json!({}));
            }
            Err(Failure::request(&e))
        }
    }
}

/// Send UNSUBSCRIBE_URI and wait a little for the confirmation; a failure is only logged.
async fn unsubscribe(handle: &UdpHandle, remote: SocketAddr, uri: &str, wait: Duration) {
    let msg = Message::new(MessageType::UNSUBSCRIBE_URI, uri.to_owned(), "");
    match tokio::time::timeout(wait, handle.call(remote, msg)).await {
        Ok(Ok(reply)) if reply.message_type == MessageType::CONFIRM_UNSUBSCRIBE => {
            tracing::debug!(%uri, "unsubscribed");
        }
        Ok(Ok(reply)) => {
            tracing::debug!(%uri, reply = ?reply.message_type, "unsubscribing: unexpected reply")
        }
        Ok(Err(e)) => tracing::debug!(%uri, error = %e, "unsubscribing failed"),
        Err(_) => tracing::debug!(%uri, "unsubscribing: no confirmation"),
    }
}
