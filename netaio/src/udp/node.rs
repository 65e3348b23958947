//! [`UdpNode`]: the node's shared state, its counters, and the receive loop that runs until
//! shutdown.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::multicast::Multicast;
use super::{UdpHandle, UdpNodeBuilder};
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::node::peers::PeerManager;
use crate::node::requests::{Dedup, Requests};
use crate::node::subscriptions::Subscriptions;
use crate::peer::PeerTable;
use crate::plugin::NodePlugins;
use crate::router::{NodeOps, Router, Routes};

/// Counters of what a node dropped; see [`UdpHandle::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams that did not decode (length, checksum, auth block, trailing bytes, …).
    pub invalid: u64,
    /// Datagrams refused by an auth check (the node's or a route's inner one).
    pub auth_failed: u64,
    /// Datagrams that failed decryption (the node's cipher or a route's inner one).
    pub decrypt_failed: u64,
    /// Datagrams dropped because too many handlers were running.
    pub overloaded: u64,
    /// Replies that matched a waiting request.
    pub replies: u64,
    /// Handlers that panicked (the node keeps serving).
    pub panicked: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) received: AtomicU64,
    pub(super) invalid: AtomicU64,
    pub(super) auth_failed: AtomicU64,
    pub(super) decrypt_failed: AtomicU64,
    pub(super) overloaded: AtomicU64,
    pub(super) replies: AtomicU64,
    pub(super) panicked: AtomicU64,
}

pub(super) struct UdpShared {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) local_addr: SocketAddr,
    pub(super) routes: Arc<Routes>,
    pub(super) codec: FrameCodec,
    pub(super) plugins: NodePlugins,
    pub(super) handlers: Arc<Semaphore>,
    pub(super) requests: Requests<SocketAddr>,
    /// Requests of peers that asked to run at most once, with their replies.
    pub(super) dedup: Dedup<SocketAddr>,
    pub(super) subs: Mutex<Subscriptions<SocketAddr>>,
    /// The reply to a message no route takes (a profile's: Python's has uri `ERROR`).
    pub(super) not_found: crate::Message,
    pub(super) counters: Counters,
    pub(super) cancel: CancellationToken,
    /// Known peers (filled by peer management, or by [`Context::set_peer`]).
    pub(super) peers: PeerTable,
    /// Peer management, when enabled.
    pub(super) manager: Option<Arc<PeerManager>>,
    /// The joined multicast group, when configured.
    pub(super) multicast: Option<Multicast>,
}

/// A UDP node: receives datagrams and dispatches them to its router, sends and requests.
///
/// Handlers may be async (unlike on the Python node, where they never run); each runs in its own
/// task unless it completes at once, bounded by [`UdpNodeBuilder::max_handlers`].
#[derive(Debug)]
pub struct UdpNode {
    pub(super) handle: UdpHandle,
}

impl UdpNode {
    /// A builder with the defaults.
    pub fn builder() -> UdpNodeBuilder {
        UdpNodeBuilder::default()
    }

    /// Bind with the defaults.
    pub async fn bind(addr: impl Into<SocketAddr>, router: Router) -> Result<Self, BindError> {
        Self::builder().address(addr).router(router).bind().await
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.shared.local_addr
    }

    /// A handle to send, request and stop; cheap to clone.
    pub fn handle(&self) -> UdpHandle {
        self.handle.clone()
    }

    /// Receive and dispatch until [`UdpHandle::shutdown`] is called.
    pub async fn serve(self) {
        self.serve_with_shutdown(std::future::pending()).await;
    }

    /// Receive and dispatch until `signal` completes or [`UdpHandle::shutdown`] is called. Handlers
    /// still running then are left to finish on their own; waiting requests fail with
    /// [`RequestError::Closed`](crate::RequestError::Closed).
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) {
        let shared = self.handle.shared.clone();
        // The handlers' view of this node: made once, shared by every datagram's `Context`.
        let ops: Arc<dyn NodeOps> = Arc::new(self.handle.clone());
        let background = super::peers::start(&self.handle, &ops);
        let mut buf = vec![0u8; 65_536];
        tokio::pin!(signal);
        // Created once, polled for real only until it has registered the task's waker.
        let cancelled = shared.cancel.cancelled();
        tokio::pin!(cancelled);
        let mut cancel_armed = false;
        loop {
            let (len, src) = tokio::select! {
                () = std::future::poll_fn(|cx| {
                    crate::node::poll_cancelled(
                        &shared.cancel,
                        cancelled.as_mut(),
                        &mut cancel_armed,
                        cx,
                    )
                }) => break,
                () = &mut signal => break,
                r = shared.socket.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // ICMP errors from earlier sends surface here on some systems; keep going.
                        tracing::debug!(error = %e, "udp receive error");
                        continue;
                    }
                },
            };
            let datagram = Bytes::copy_from_slice(buf.get(..len).unwrap_or_default());
            self.handle.on_datagram(datagram, src, false, &ops);
        }
        shared.cancel.cancel();
        super::peers::stop(&self.handle, background).await;
        shared.requests.with(|t| t.fail_all(true));
        tracing::info!(addr = %shared.local_addr, "udp node stopped");
    }
}
