//! [`TcpServer`]: accept connections and serve them until shutdown; the registry of open
//! connections and what is removed when one ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::driver::{self, CloseReason, DriverConfig};
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::node::outbound::Recipient;
use crate::node::requests::{Dedup, Requests};
use crate::node::subscriptions::Subscriptions;
use crate::peer::{PeerSlot, PeerTable};
use crate::plugin::NodePlugins;
use crate::router::{Context, PeerLink, Router, Routes};

use super::server_dispatch::ServerDispatch;
use super::{ServerHandle, TcpServerBuilder};

/// Identifies one accepted connection for the life of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A connection came or went; see [`ServerHandle::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// A client connected.
    Connected {
        /// Its id.
        id: ConnectionId,
        /// Its address.
        peer: SocketAddr,
    },
    /// A connection ended; its subscriptions are gone.
    Disconnected {
        /// Its id.
        id: ConnectionId,
        /// Its address.
        peer: SocketAddr,
        /// Why it ended.
        reason: CloseReason,
    },
}

/// A snapshot of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Its id.
    pub id: ConnectionId,
    /// The client's address.
    pub peer: SocketAddr,
    /// The keys it is subscribed to.
    pub subscriptions: Vec<Bytes>,
}

/// A TCP server: frames from each connection are decoded, routed to handlers in order, and the
/// replies written back in that order (batched when requests are pipelined).
///
/// ```no_run
/// use netaio::{Message, MessageType, Router, TcpServer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let router = Router::new().on((MessageType::REQUEST_URI, "echo"), |msg: Message| async move {
///     Message::respond(msg.uri().clone(), msg.content().clone())
/// });
/// let server = TcpServer::bind(([127, 0, 0, 1], 8888), router).await?;
/// println!("listening {}", server.local_addr().port());
/// let stop = server.handle();
/// server.serve_with_shutdown(async move { /* e.g. tokio::signal::ctrl_c() */ stop.shutdown() }).await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpServer {
    pub(super) listener: TcpListener,
    pub(super) handle: ServerHandle,
}

impl TcpServer {
    /// A builder with the defaults.
    pub fn builder() -> TcpServerBuilder {
        TcpServerBuilder::default()
    }

    /// Bind with the default limits.
    pub async fn bind(addr: impl Into<SocketAddr>, router: Router) -> Result<Self, BindError> {
        Self::builder().address(addr).router(router).bind().await
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.shared.local_addr
    }

    /// A handle for sending, subscriptions, events and shutdown; cheap to clone.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Serve until [`ServerHandle::shutdown`] is called, then shut down gracefully.
    pub async fn serve(self) {
        self.serve_with_shutdown(std::future::pending()).await;
    }

    /// Serve until `signal` completes or [`ServerHandle::shutdown`] is called, then shut down
    /// gracefully: stop accepting, let in-flight handlers finish and flush their replies within the
    /// shutdown timeout, abort what is left, close.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) {
        let shared = self.handle.shared.clone();
        let mut tasks = JoinSet::new();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                () = shared.cancel.cancelled() => break,
                () = &mut signal => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                r = self.listener.accept() => match r {
                    Ok((stream, peer)) => self.handle.accept(stream, peer, &mut tasks),
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(self.listener);
        shared.cancel.cancel();
        let n = tasks.len();
        tracing::info!(connections = n, "shutting down");
        let drained = tokio::time::timeout(shared.shutdown_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "shutdown timeout: aborting connections still busy"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}

pub(super) struct Registry {
    pub(super) conns: HashMap<ConnectionId, ConnEntry>,
    pub(super) subs: Subscriptions<ConnectionId>,
}

pub(super) struct ConnEntry {
    pub(super) peer: SocketAddr,
    pub(super) tx: mpsc::Sender<Bytes>,
    pub(super) cancel: CancellationToken,
    /// The peer behind this connection, once known (peer management).
    pub(super) peer_info: PeerSlot,
    /// Aborts the connection's task (disconnect after the grace period).
    pub(super) abort: Option<tokio::task::AbortHandle>,
}

pub(super) struct ServerShared {
    pub(super) routes: Arc<Routes>,
    pub(super) codec: FrameCodec,
    pub(super) driver: DriverConfig,
    pub(super) registry: Mutex<Registry>,
    /// Requests this server sent to its clients ([`ServerHandle::call`]).
    pub(super) requests: Requests<ConnectionId>,
    /// Requests of clients that asked to run at most once, by client address (a client that
    /// reconnects comes back from another port), with their replies.
    pub(super) dedup: Dedup<std::net::IpAddr>,
    pub(super) events: broadcast::Sender<ConnectionEvent>,
    pub(super) cancel: CancellationToken,
    pub(super) next_id: AtomicU64,
    pub(super) local_addr: SocketAddr,
    pub(super) max_connections: usize,
    pub(super) send_queue: usize,
    pub(super) shutdown_timeout: Duration,
    pub(super) plugins: NodePlugins,
    /// Clients that advertised themselves (peer management).
    pub(super) peers: PeerTable,
}

impl ConnEntry {
    pub(super) fn recipient(&self) -> Recipient<mpsc::Sender<Bytes>> {
        Recipient {
            to: self.tx.clone(),
            addr: self.peer,
            peer: self.peer_info.get(),
        }
    }
}

/// Removes a connection and its subscriptions when its task ends, even by a panic or an abort.
pub(super) struct ConnGuard {
    pub(super) handle: ServerHandle,
    pub(super) id: ConnectionId,
    pub(super) peer: SocketAddr,
    /// Set when the driver returns; still `None` if the task panicked or was aborted.
    pub(super) reason: Option<CloseReason>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        // A client that leaves without DISCONNECT leaves the peer table with its connection.
        self.handle.shared.peers.remove_addr(self.peer);
        {
            let mut reg = self.handle.registry();
            reg.conns.remove(&self.id);
            reg.subs.remove_subscriber(self.id);
        }
        // Requests to this client can no longer be answered.
        self.handle.shared.requests.with(|t| t.fail_peer(self.id));
        let reason = self.reason.take().unwrap_or_else(|| {
            if std::thread::panicking() {
                CloseReason::Io("handler panicked".into())
            } else {
                // Dropped without finishing: aborted at the end of the shutdown timeout.
                CloseReason::Local
            }
        });
        tracing::debug!(%reason, "disconnected");
        let _ = self
            .handle
            .shared
            .events
            .send(ConnectionEvent::Disconnected {
                id: self.id,
                peer: self.peer,
                reason,
            });
    }
}

impl ServerHandle {
    pub(super) fn accept(&self, stream: TcpStream, peer: SocketAddr, tasks: &mut JoinSet<()>) {
        let shared = &self.shared;
        let id = ConnectionId(shared.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(shared.send_queue);
        let cancel = shared.cancel.child_token();
        let peer_slot = PeerSlot::default();
        {
            let mut reg = self.registry();
            if reg.conns.len() >= shared.max_connections {
                tracing::warn!(%peer, limit = shared.max_connections, "connection limit reached: refusing");
                return;
            }
            reg.conns.insert(
                id,
                ConnEntry {
                    peer,
                    tx,
                    cancel: cancel.clone(),
                    peer_info: peer_slot.clone(),
                    abort: None,
                },
            );
        }
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let _ = shared.events.send(ConnectionEvent::Connected { id, peer });
        let span = tracing::info_span!("connection", %peer, id = id.0);
        let handle = self.clone();
        let abort = tasks.spawn(
            async move {
                tracing::debug!("connected");
                let mut guard = ConnGuard {
                    handle: handle.clone(),
                    id,
                    peer,
                    reason: None,
                };
                let link = PeerLink {
                    addr: peer,
                    link: id.0,
                };
                let mut dispatch = ServerDispatch {
                    ctx: Context::new(
                        link,
                        Arc::new(handle.clone()),
                        handle.shared.routes.state().clone(),
                    ),
                    id,
                    server: handle.clone(),
                    routes: handle.shared.routes.clone(),
                    codec: handle.shared.codec.clone(),
                    plugins: handle.shared.plugins.clone(),
                    peer,
                    peer_info: peer_slot,
                };
                let mut rx = rx;
                guard.reason = Some(
                    driver::drive(
                        stream,
                        handle.shared.codec.clone(),
                        &handle.shared.driver,
                        &mut dispatch,
                        &mut rx,
                        &cancel,
                    )
                    .await,
                );
            }
            .instrument(span),
        );
        if let Some(c) = self.registry().conns.get_mut(&id) {
            c.abort = Some(abort);
        }
    }
}
