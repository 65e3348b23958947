//! What the node's server accepts from the connections neighbours open to it: the handshake
//! ([`HELLO_URI`]), keepalive pings ([`PING_URI`]) and protocol messages ([`GOSSIP`]), which go
//! to the driver through a queue bounded in messages and bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use netaio::bytes::Bytes;
use netaio::plugin::Plugins;
use netaio::router::{Content, Context, ErrorReply, RouteError};
use netaio::{Message, MessageType, ServerHandle};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::hello::{Handshake, peer_addr};
use super::{GOSSIP, HELLO_URI, PING_URI};
use crate::proto::{self, Limits, wire};

/// A protocol message from a peer, for the driver. It holds its share of the inbound byte
/// budget until the driver has handled it.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub(crate) from: SocketAddr,
    pub(crate) message: proto::Message<SocketAddr>,
    pub(crate) _bytes: OwnedSemaphorePermit,
}

/// The inbound queue: a channel bounded in messages, and a semaphore of bytes.
#[derive(Debug, Clone)]
pub(crate) struct InboundQueue {
    pub(crate) tx: mpsc::Sender<Inbound>,
    pub(crate) bytes: Arc<Semaphore>,
    pub(crate) max_bytes: usize,
    /// Frames that were not protocol messages.
    pub(crate) malformed: Arc<AtomicU64>,
}

/// Adds the three routes to a server that is not serving yet.
pub(crate) fn install(
    server: &ServerHandle,
    handshake: Arc<Handshake>,
    queue: InboundQueue,
    limits: Limits,
    inner: Plugins,
    admission: Plugins,
) -> Result<(), RouteError> {
    // `admission`: the proof of work a hello must carry (none when off), checked by the route's
    // plugins before the handler runs.
    server.on_with(
        (MessageType::REQUEST_URI, HELLO_URI),
        move |ctx: Context, Content(content): Content| {
            let handshake = handshake.clone();
            async move { hello(&handshake, &ctx, content) }
        },
        admission,
    )?;
    server.on((MessageType::REQUEST_URI, PING_URI), || async {
        Message::respond(PING_URI, "")
    })?;
    server.on_with(
        GOSSIP,
        move |ctx: Context, Content(frame): Content| {
            let queue = queue.clone();
            async move { gossip(&queue, &limits, &ctx, frame).await }
        },
        inner,
    )
}

fn hello(handshake: &Handshake, ctx: &Context, content: Bytes) -> Result<Message, ErrorReply> {
    match handshake.accept(content, ctx.peer_addr()) {
        Ok((addr, peer)) => {
            tracing::debug!(peer = %addr, from = %ctx.peer_addr(), "hello accepted");
            ctx.set_peer(Some(peer));
            Ok(Message::respond(HELLO_URI, handshake.hello()))
        }
        Err(e) => {
            tracing::info!(from = %ctx.peer_addr(), error = %e, "hello refused");
            Err(ErrorReply::not_permitted(e.to_string()).with_uri(HELLO_URI))
        }
    }
}

async fn gossip(queue: &InboundQueue, limits: &Limits, ctx: &Context, frame: Bytes) {
    // The peer recorded by the handshake; none means no hello was accepted on this connection.
    let Some(from) = ctx.peer().and_then(|p| peer_addr(&p.id)) else {
        queue.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(from = %ctx.peer_addr(), "protocol message before the handshake: dropped");
        return;
    };
    let len = frame.len();
    let message = match wire::decode::<SocketAddr>(frame, limits) {
        Ok(m) => m,
        Err(e) => {
            queue.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %from, error = %e, "undecodable protocol message: dropped");
            return;
        }
    };
    // A frame is at most a netaio frame, far below `u32::MAX`; a budget smaller than one frame
    // still lets one through at a time.
    let n = u32::try_from(len.clamp(1, queue.max_bytes)).unwrap_or(u32::MAX);
    // Waiting here stops this connection's reads: a driver that falls behind slows its senders
    // down instead of buffering for them.
    let Ok(permit) = queue.bytes.clone().acquire_many_owned(n).await else {
        return;
    };
    let _ = queue
        .tx
        .send(Inbound {
            from,
            message,
            _bytes: permit,
        })
        .await;
}
