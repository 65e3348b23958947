//! [`TcpServer`]: accept connections and serve them until shutdown; the registry of open
//! connections, which connections it admits or evicts (the rules are in `admission.rs`), and what
//! is removed when one ends.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::admission::{self, Admission, Admit};
use super::driver::{self, CloseReason, DriverConfig};
use super::send_queue::{self, ByteBudget, QueueSender};
use super::stream::Stream;
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::node::outbound::Recipient;
use crate::node::refusals::RefusalTable;
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
    pub(super) listener: Listeners,
    pub(super) handle: ServerHandle,
}

/// What a server listens on: a TCP address, a Unix socket, or both.
#[derive(Debug)]
pub(super) struct Listeners {
    pub(super) tcp: Option<TcpListener>,
    #[cfg(unix)]
    pub(super) unix: Option<super::unix::UnixSocket>,
}

/// A connection a listener accepted.
pub(super) enum Accepted {
    Tcp(TcpStream, SocketAddr),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Listeners {
    /// The next connection on any of the listeners (cancel-safe, as each listener's `accept`).
    async fn accept(&self) -> std::io::Result<Accepted> {
        let tcp = async {
            match &self.tcp {
                Some(l) => l.accept().await.map(|(s, a)| Accepted::Tcp(s, a)),
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        if let Some(u) = &self.unix {
            let unix = async { u.listener.accept().await.map(|(s, _)| Accepted::Unix(s)) };
            return tokio::select! {
                r = tcp => r,
                r = unix => r,
            };
        }
        tcp.await
    }
}

/// Where an accepted connection comes from, as the server records it.
pub(super) enum Origin {
    Tcp(SocketAddr),
    #[cfg(unix)]
    Unix(Option<super::PeerCredentials>),
}

impl Origin {
    /// The connection's peer address and the source it counts against (for a Unix peer, both
    /// from its uid: see `unix_peer.rs`), and its credentials.
    fn resolve(self, id: ConnectionId) -> (SocketAddr, IpAddr, Option<super::PeerCredentials>) {
        match self {
            Origin::Tcp(peer) => (peer, admission::source_of(peer.ip()), None),
            #[cfg(unix)]
            Origin::Unix(cred) => {
                let peer = super::unix_peer::peer_addr(cred.map(|c| c.uid), id.0);
                (peer, peer.ip(), cred)
            }
        }
    }
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
                    Ok(Accepted::Tcp(stream, peer)) => {
                        self.handle.accept(stream, Origin::Tcp(peer), &mut tasks);
                    }
                    #[cfg(unix)]
                    Ok(Accepted::Unix(stream)) => {
                        let cred = super::unix::credentials(&stream);
                        self.handle.accept(stream, Origin::Unix(cred), &mut tasks);
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        // A Unix socket's file goes with it.
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
    pub(super) admission: Admission,
}

impl Registry {
    /// Remove a connection, its subscriptions and its place in the admission rules; `None` if
    /// it was already removed (evicted, then ended).
    pub(super) fn remove(&mut self, id: ConnectionId) -> Option<ConnEntry> {
        let entry = self.conns.remove(&id)?;
        self.admission.remove(id, entry.source);
        self.subs.remove_subscriber(id);
        Some(entry)
    }

    /// The open connection without valid traffic for the longest time (the lowest id among
    /// equals). A scan, done only when a full server of authenticated connections must evict.
    fn longest_idle(conns: &HashMap<ConnectionId, ConnEntry>) -> Option<ConnectionId> {
        conns
            .iter()
            .min_by_key(|(id, c)| (c.status.last_active.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id)
    }
}

/// What a connection's task and the registry share about it, without the registry's lock.
#[derive(Debug)]
pub(super) struct ConnStatus {
    /// Milliseconds from the server's start to the connection's last valid traffic (stored by
    /// its driver, at most once a second).
    pub(super) last_active: AtomicU64,
    /// Set when the server evicted it: its end is reported as [`CloseReason::Evicted`].
    pub(super) evicted: AtomicBool,
}

pub(super) struct ConnEntry {
    pub(super) peer: SocketAddr,
    /// The source it counts against for `max_connections_per_ip`.
    pub(super) source: IpAddr,
    pub(super) tx: QueueSender,
    /// The peer process's credentials (a Unix socket's).
    pub(super) credentials: Option<super::PeerCredentials>,
    pub(super) status: Arc<ConnStatus>,
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
    /// The Unix socket listened on, if any.
    pub(super) unix_path: Option<std::path::PathBuf>,
    pub(super) send_queue: usize,
    pub(super) send_queue_bytes: usize,
    /// The byte budget of all the connections' send queues together.
    pub(super) queued: Arc<ByteBudget>,
    /// What `last_active` counts from.
    pub(super) epoch: Instant,
    pub(super) counters: Counters,
    /// Refusals per client address, bounded; the refusal log's rate limit.
    pub(super) refusals: Mutex<RefusalTable>,
    pub(super) shutdown_timeout: Duration,
    /// Handlers of one connection that may run at once (see `concurrent.rs`).
    pub(super) concurrent_requests: usize,
    pub(super) plugins: NodePlugins,
    /// Clients that advertised themselves (peer management).
    pub(super) peers: PeerTable,
}

/// What [`ServerHandle::stats`] counts.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) evicted: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) skipped: AtomicU64,
}

impl ServerShared {
    /// `now` as the milliseconds `ConnStatus::last_active` holds.
    pub(super) fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

impl ConnEntry {
    pub(super) fn recipient(&self) -> Recipient<QueueSender> {
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
    pub(super) status: Arc<ConnStatus>,
    /// Set when the driver returns; still `None` if the task panicked or was aborted.
    pub(super) reason: Option<CloseReason>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        // A client that leaves without DISCONNECT leaves the peer table with its connection.
        self.handle.shared.peers.remove_addr(self.peer);
        // Already gone if it was evicted.
        self.handle.registry().remove(self.id);
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
        let reason = if self.status.evicted.load(Ordering::Acquire) {
            CloseReason::Evicted
        } else {
            reason
        };
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
    pub(super) fn accept<S: Stream>(&self, stream: S, from: Origin, tasks: &mut JoinSet<()>) {
        let shared = &self.shared;
        let id = ConnectionId(shared.next_id.fetch_add(1, Ordering::Relaxed));
        let (peer, source, credentials) = from.resolve(id);
        let (tx, rx) = send_queue::channel(
            shared.send_queue,
            shared.send_queue_bytes,
            Some(shared.queued.clone()),
        );
        let cancel = shared.cancel.child_token();
        let peer_slot = PeerSlot::default();
        let status = Arc::new(ConnStatus {
            last_active: AtomicU64::new(shared.millis(Instant::now())),
            evicted: AtomicBool::new(false),
        });
        let evicted = {
            let mut reg = self.registry();
            let reg = &mut *reg;
            let conns = &reg.conns;
            let evicted = match reg
                .admission
                .admit(source, || Registry::longest_idle(conns))
            {
                Admit::Accept => None,
                Admit::Evict(old) => {
                    let authenticated = reg.admission.is_authenticated(old);
                    reg.remove(old).map(|e| (old, e, authenticated))
                }
                Admit::Refuse => {
                    shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, "connection limit of its source reached: refusing");
                    return;
                }
            };
            reg.admission.insert(id, source);
            reg.conns.insert(
                id,
                ConnEntry {
                    peer,
                    source,
                    tx,
                    credentials,
                    status: status.clone(),
                    cancel: cancel.clone(),
                    peer_info: peer_slot.clone(),
                    abort: None,
                },
            );
            evicted
        };
        if let Some((old, entry, authenticated)) = evicted {
            self.evicted(old, entry, authenticated, peer);
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
                    status: status.clone(),
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
                    source,
                    status,
                    authenticated: false,
                    next_active_store: Instant::now(),
                    concurrent: super::concurrent::Concurrent::new(
                        handle.shared.concurrent_requests,
                    ),
                    later: std::sync::Mutex::new(None),
                    spare_auth: crate::message::AuthFields::new(),
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

    /// Close a connection the registry let go for `for_peer`'s: one that never authenticated at
    /// once (its task is aborted: nothing it sent was accepted, nothing is owed to it), an
    /// authenticated one gracefully, as [`ServerHandle::disconnect`] does.
    fn evicted(
        &self,
        id: ConnectionId,
        entry: ConnEntry,
        authenticated: bool,
        for_peer: SocketAddr,
    ) {
        self.shared.counters.evicted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            evicted = %id,
            peer = %entry.peer,
            authenticated,
            new_peer = %for_peer,
            "server full: evicting a connection for a new one"
        );
        entry.status.evicted.store(true, Ordering::Release);
        entry.cancel.cancel();
        match entry.abort {
            Some(abort) if !authenticated => abort.abort(),
            Some(abort) => self.abort_after_grace(abort),
            None => {}
        }
    }
}
