//! [`TcpServer`]: accept connections and dispatch their frames to a [`Router`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::driver::{self, CloseReason, Dispatch, DriverConfig};
use crate::codec::{Frame, FrameCodec, FrameError};
use crate::error::{BindError, RequestError, SendError, SubscribeError};
use crate::message::{AuthFieldsCodec, DecodeError, MAX_FRAME, PostcardCodec};
use crate::node::outbound::{self, Recipient};
use crate::node::peers as peer_management;
use crate::node::requests::{self, Correlated, Limits, Matching, Requests};
use crate::node::subscriptions::{SubscriptionLimits, Subscriptions};
use crate::peer::{Peer, PeerConfig, PeerSlot, PeerTable};
use crate::plugin::{
    AuthErrorHook, AuthFailure, AuthPlugin, NodePlugins, OpenError, Plugins, SendOptions,
    open_inner, open_outer,
};
use crate::router::{Context, Matched, OnceClaim, PeerLink, Request, Router, Routes};
use crate::{Message, MessageType};

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

/// Configures and binds a [`TcpServer`]. Every limit has a default.
///
/// ```no_run
/// use std::time::Duration;
/// use netaio::{Router, TcpServer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let server = TcpServer::builder()
///     .address(([127, 0, 0, 1], 9000))
///     .router(Router::new())
///     .max_connections(1000)
///     .read_timeout(Duration::from_secs(5))
///     .bind()
///     .await?;
/// server.serve().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpServerBuilder {
    addr: SocketAddr,
    router: Router,
    auth_codec: Arc<dyn AuthFieldsCodec>,
    max_connections: usize,
    max_frame_size: usize,
    read_timeout: Duration,
    idle_timeout: Option<Duration>,
    write_timeout: Duration,
    send_queue: usize,
    max_subscriptions: usize,
    max_total_subscriptions: usize,
    request_timeout: Duration,
    max_in_flight: usize,
    shutdown_timeout: Duration,
    plugins: NodePlugins,
    peer_config: Option<PeerConfig>,
}

impl Default for TcpServerBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8888)),
            router: Router::new(),
            auth_codec: Arc::new(PostcardCodec),
            max_connections: 10_000,
            max_frame_size: MAX_FRAME,
            read_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            write_timeout: Duration::from_secs(30),
            send_queue: 1024,
            max_subscriptions: 1024,
            max_total_subscriptions: 1 << 20,
            request_timeout: Duration::from_secs(10),
            max_in_flight: 4096,
            shutdown_timeout: Duration::from_secs(10),
            plugins: NodePlugins::default(),
            peer_config: None,
        }
    }
}

impl TcpServerBuilder {
    /// The address to listen on (default `0.0.0.0:8888`, like Python; IPv6 addresses work).
    #[must_use]
    pub fn address(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.addr = addr.into();
        self
    }

    /// The handlers (default: an empty router).
    #[must_use]
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// The auth-block encoding (default [`PostcardCodec`]).
    #[must_use]
    pub fn auth_codec(mut self, codec: Arc<dyn AuthFieldsCodec>) -> Self {
        self.auth_codec = codec;
        self
    }

    /// Python-compatible mode (default off): the auth block as Python's packify
    /// ([`PackifyCodec`](crate::compat::PackifyCodec)) and peers packed as Python's
    /// `DefaultPeerPlugin` ([`PackifyPeerPlugin`](crate::compat::PackifyPeerPlugin)), so that
    /// Python netaio 0.0.9 clients can talk to this server. The error replies already follow
    /// Python's conventions (see [`compat`](crate::compat)). Choose the plugins separately, for
    /// example [`LegacyHmacAuth`](crate::compat::LegacyHmacAuth) to match Python's
    /// `HMACAuthPlugin`.
    ///
    /// It also switches the idle timeout off, as Python has none: a Python client never
    /// reconnects, so one that subscribes and then waits quietly for notifications would be cut
    /// off for good. Call [`idle_timeout`](Self::idle_timeout) after this to set one anyway; the
    /// other limits (read timeout of a started frame, connection limit) stay on.
    ///
    /// ```
    /// use netaio::compat::LegacyHmacAuth;
    /// use netaio::TcpServer;
    ///
    /// let builder = TcpServer::builder()
    ///     .address(([127, 0, 0, 1], 8888))
    ///     .python_compat()
    ///     .auth(LegacyHmacAuth::new("secret"));
    /// ```
    #[must_use]
    pub fn python_compat(mut self) -> Self {
        self.auth_codec = Arc::new(crate::compat::PackifyCodec);
        self.plugins.peer_plugin = Arc::new(crate::compat::PackifyPeerPlugin);
        self.idle_timeout = None;
        self
    }

    /// Connections served at once (default 10,000); further connections are accepted and closed at once.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// The largest frame accepted or sent, header included (default and maximum: the largest frame the
    /// header can describe). A larger frame ends the connection.
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes.min(MAX_FRAME);
        self
    }

    /// How long a started frame may take to arrive in full (default 10 s): a client that sends half
    /// a header and stops is disconnected after this.
    #[must_use]
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = crate::node::sane(t);
        self
    }

    /// Close connections with no traffic for this long (default 300 s; `None` keeps them).
    #[must_use]
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.idle_timeout = t.map(crate::node::sane);
        self
    }

    /// How long a client may leave our data unread before it is disconnected (default 30 s).
    #[must_use]
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = crate::node::sane(t);
        self
    }

    /// Messages queued per connection for `send`, `broadcast` and `notify` (default 1024); when full,
    /// those calls report [`SendError::QueueFull`] for that connection.
    #[must_use]
    pub fn send_queue(mut self, n: usize) -> Self {
        self.send_queue = n.max(1);
        self
    }

    /// Subscriptions per connection (default 1024); beyond, `subscribe` fails with
    /// [`SubscribeError::Limit`].
    #[must_use]
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Subscriptions of all connections together (default 1,048,576); beyond, `subscribe` fails
    /// with [`SubscribeError::NodeLimit`].
    #[must_use]
    pub fn max_total_subscriptions(mut self, n: usize) -> Self {
        self.max_total_subscriptions = n;
        self
    }

    /// How long [`ServerHandle::call`] waits for a client's reply (default 10 s).
    #[must_use]
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = crate::node::sane(t);
        self
    }

    /// Requests to clients waiting for replies, per connection (default 4096; 4× that in all).
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// How long a graceful shutdown waits for in-flight handlers before aborting them (default 10 s).
    #[must_use]
    pub fn shutdown_timeout(mut self, t: Duration) -> Self {
        self.shutdown_timeout = crate::node::sane(t);
        self
    }

    plugin_setters!();

    /// Decide the reply to a message that failed an auth check (default:
    /// [`default_auth_error_reply`](crate::plugin::default_auth_error_reply)).
    #[must_use]
    pub fn auth_error_hook(mut self, hook: AuthErrorHook) -> Self {
        self.plugins.auth_error = hook;
        self
    }

    /// Manage peers (default: off): a client's `ADVERTISE_PEER` is answered with
    /// `PEER_DISCOVERED`, and the client is recorded in [`ServerHandle::peers`] and on its
    /// connection (plugins then see it); its `DISCONNECT`, or the end of its connection, removes
    /// it. Without a [`local_peer`](Self::local_peer), the server gets a random id.
    #[must_use]
    pub fn peer_management(mut self, config: PeerConfig) -> Self {
        self.peer_config = Some(config);
        self
    }

    /// Bind the listening socket.
    pub async fn bind(self) -> Result<TcpServer, BindError> {
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| BindError::Io {
                addr: self.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| BindError::Io {
            addr: self.addr,
            source,
        })?;
        let (events, _) = broadcast::channel(256);
        let codec =
            FrameCodec::with_auth_codec(self.auth_codec).max_frame_size(self.max_frame_size);
        let routes = self.router.into_shared();
        let mut plugins = self.plugins.for_new_node();
        let peers = PeerTable::new();
        // The handlers hold the peer management; the server has nothing else to do with it.
        if let Some(config) = self.peer_config {
            peer_management::install(&routes, &peers, &mut plugins, config, true)?;
        }
        let shared = Arc::new(ServerShared {
            routes,
            codec,
            driver: DriverConfig {
                read_timeout: self.read_timeout,
                idle_timeout: self.idle_timeout,
                write_timeout: self.write_timeout,
                write_high_water: 1 << 20,
            },
            registry: Mutex::new(Registry {
                conns: HashMap::new(),
                subs: Subscriptions::new(SubscriptionLimits {
                    per_subscriber: self.max_subscriptions,
                    total: self.max_total_subscriptions,
                }),
            }),
            requests: Requests::new(
                Limits {
                    total: self.max_in_flight.saturating_mul(4),
                    per_peer: self.max_in_flight,
                },
                Matching::Native,
            ),
            request_timeout: self.request_timeout,
            events,
            cancel: CancellationToken::new(),
            next_id: AtomicU64::new(1),
            local_addr,
            max_connections: self.max_connections,
            send_queue: self.send_queue,
            shutdown_timeout: self.shutdown_timeout,
            plugins,
            peers,
        });
        tracing::info!(addr = %local_addr, "listening");
        Ok(TcpServer {
            listener,
            handle: ServerHandle { shared },
        })
    }

    /// Mount a [`Service`](crate::router::Service) on the server's router (see
    /// [`Router::mount`]): every route of the service, with the service as shared state.
    ///
    /// ```no_run
    /// use netaio::{service, Message, TcpServer};
    ///
    /// struct Echo;
    ///
    /// #[service]
    /// impl Echo {
    ///     #[on(REQUEST_URI, uri = "echo")]
    ///     async fn echo(&self, msg: Message) -> Message {
    ///         Message::respond(msg.uri().clone(), msg.content().clone())
    ///     }
    /// }
    ///
    /// # async fn run() -> Result<(), netaio::BindError> {
    /// let server = TcpServer::builder()
    ///     .address(([127, 0, 0, 1], 9000))
    ///     .mount(Echo)
    ///     .bind()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Call it after [`router`](Self::router), which replaces the whole router.
    ///
    /// # Panics
    ///
    /// If one of its routes is already registered.
    #[track_caller]
    #[must_use]
    pub fn mount<S: crate::router::Service>(mut self, service: S) -> Self {
        self.router = self.router.mount(service);
        self
    }
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
    listener: TcpListener,
    handle: ServerHandle,
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

struct Registry {
    conns: HashMap<ConnectionId, ConnEntry>,
    subs: Subscriptions<ConnectionId>,
}

struct ConnEntry {
    peer: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    cancel: CancellationToken,
    /// The peer behind this connection, once known (peer management).
    peer_info: PeerSlot,
    /// Aborts the connection's task (disconnect after the grace period).
    abort: Option<tokio::task::AbortHandle>,
}

pub(super) struct ServerShared {
    routes: Arc<Routes>,
    codec: FrameCodec,
    driver: DriverConfig,
    registry: Mutex<Registry>,
    /// Requests this server sent to its clients ([`ServerHandle::call`]).
    requests: Requests<ConnectionId>,
    request_timeout: Duration,
    events: broadcast::Sender<ConnectionEvent>,
    cancel: CancellationToken,
    next_id: AtomicU64,
    local_addr: SocketAddr,
    max_connections: usize,
    send_queue: usize,
    shutdown_timeout: Duration,
    pub(super) plugins: NodePlugins,
    /// Clients that advertised themselves (peer management).
    pub(super) peers: PeerTable,
}

/// A cheap, cloneable handle to a running [`TcpServer`]: send to one client, broadcast to all,
/// subscribe/notify by key, watch connections, change routes, shut down. Handlers reach it through
/// [`Context::server`].
#[derive(Clone)]
pub struct ServerHandle {
    pub(super) shared: Arc<ServerShared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn accept(&self, stream: TcpStream, peer: SocketAddr, tasks: &mut JoinSet<()>) {
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

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The recipient behind a connection, copied out of the registry so that no lock is held
    /// while sealing.
    fn recipient(&self, conn: ConnectionId) -> Result<Recipient<mpsc::Sender<Bytes>>, SendError> {
        self.registry()
            .conns
            .get(&conn)
            .map(ConnEntry::recipient)
            .ok_or(SendError::UnknownConnection)
    }

    /// Queue a message for one connection, sealed with the instance plugins, waiting while its
    /// send queue is full (a client that does not read is disconnected by the write timeout).
    pub async fn send(&self, conn: ConnectionId, msg: &Message) -> Result<(), SendError> {
        self.send_with(conn, msg, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with inner plugins and the `use_auth` / `use_cipher` switches.
    pub async fn send_with(
        &self,
        conn: ConnectionId,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        let r = self.recipient(conn)?;
        let shared = &self.shared;
        let bytes = outbound::seal(
            &shared.plugins,
            &shared.codec,
            msg.clone(),
            opts,
            r.peer.as_deref(),
            Some(r.addr),
        )
        .await?;
        r.to.send(bytes).await.map_err(|_| SendError::Closed)
    }

    /// Queue a message for one connection without waiting: a full queue is
    /// [`SendError::QueueFull`]. Plugins run inline.
    pub fn try_send(&self, conn: ConnectionId, msg: &Message) -> Result<(), SendError> {
        let r = self.recipient(conn)?;
        let shared = &self.shared;
        let bytes = outbound::seal_now(
            &shared.plugins,
            &shared.codec,
            msg.clone(),
            &SendOptions::default(),
            r.peer.as_deref(),
            Some(r.addr),
        )?;
        r.to.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Send a request to one client and wait for its reply (within the server's request
    /// timeout): the client's router answers it like any request. Error replies become typed
    /// errors ([`RequestError::NotFound`], …); the end of the connection fails it with
    /// [`RequestError::Closed`].
    ///
    /// ```no_run
    /// # async fn f(server: netaio::ServerHandle, conn: netaio::tcp::ConnectionId) -> Result<(), netaio::RequestError> {
    /// use netaio::{Message, MessageType};
    /// let reply = server.call(conn, Message::new(MessageType::REQUEST_URI, "status", "")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call(&self, conn: ConnectionId, msg: Message) -> Result<Message, RequestError> {
        self.call_with(conn, msg, &SendOptions::default()).await
    }

    /// [`call`](Self::call) with inner plugins (the reply is opened with them too), switches and
    /// a timeout.
    pub async fn call_with(
        &self,
        conn: ConnectionId,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Message, RequestError> {
        let timeout = opts.timeout.unwrap_or(self.shared.request_timeout);
        self.recipient(conn)?;
        self.shared
            .requests
            .exchange(conn, msg, opts.inner.clone(), timeout, |msg| async move {
                self.send_with(conn, &msg, opts).await
            })
            .await
    }

    /// Send a message to every connected client. It is sealed once and the same bytes go to all,
    /// unless a plugin is peer-specific (then once per client). Returns how many queued it
    /// (clients whose queue is full are skipped and logged).
    pub async fn broadcast(&self, msg: &Message) -> Result<usize, SendError> {
        self.broadcast_with(msg, &SendOptions::default()).await
    }

    /// [`broadcast`](Self::broadcast) with inner plugins and switches.
    pub async fn broadcast_with(
        &self,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let targets = self.recipients(|_| true);
        self.fan_out(msg, opts, targets).await
    }

    /// Send a message to every client whose peer is known (it advertised itself, see
    /// [`TcpServerBuilder::peer_management`]); sealed once unless a plugin is peer-specific.
    /// Returns how many queued it.
    pub async fn broadcast_to_peers(&self, msg: &Message) -> Result<usize, SendError> {
        self.broadcast_to_peers_with(msg, &SendOptions::default())
            .await
    }

    /// [`broadcast_to_peers`](Self::broadcast_to_peers) with inner plugins and switches.
    pub async fn broadcast_to_peers_with(
        &self,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let targets = self.recipients(|c| c.peer_info.get().is_some());
        self.fan_out(msg, opts, targets).await
    }

    fn recipients(&self, keep: impl Fn(&ConnEntry) -> bool) -> Vec<Recipient<mpsc::Sender<Bytes>>> {
        self.registry()
            .conns
            .values()
            .filter(|c| keep(c))
            .map(ConnEntry::recipient)
            .collect()
    }

    /// Seal once (or per recipient) and queue without waiting: one slow client must not hold up
    /// the others.
    async fn fan_out(
        &self,
        msg: &Message,
        opts: &SendOptions,
        targets: Vec<Recipient<mpsc::Sender<Bytes>>>,
    ) -> Result<usize, SendError> {
        let shared = &self.shared;
        let frames =
            outbound::seal_each(&shared.plugins, &shared.codec, msg, opts, targets).await?;
        let mut n = 0;
        for (tx, bytes) in frames {
            match tx.try_send(bytes) {
                Ok(()) => n += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("send queue full: message dropped for one connection");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        Ok(n)
    }

    /// Subscribe a connection to a key (any bytes; usually a uri).
    pub fn subscribe(
        &self,
        conn: ConnectionId,
        key: impl AsRef<[u8]>,
    ) -> Result<(), SubscribeError> {
        let mut reg = self.registry();
        if !reg.conns.contains_key(&conn) {
            return Err(SubscribeError::UnknownConnection);
        }
        reg.subs.subscribe(key.as_ref(), conn)
    }

    /// Remove a subscription; false if there was none (unlike Python, not an error).
    pub fn unsubscribe(&self, conn: ConnectionId, key: impl AsRef<[u8]>) -> bool {
        self.registry().subs.unsubscribe(key.as_ref(), conn)
    }

    /// The connections subscribed to a key.
    pub fn subscribers(&self, key: impl AsRef<[u8]>) -> Vec<ConnectionId> {
        self.registry().subs.subscribers(key.as_ref())
    }

    /// Send a message to every subscriber of `key` (sealed once unless a plugin is peer-specific).
    /// Returns how many queued it.
    pub async fn notify(&self, key: impl AsRef<[u8]>, msg: &Message) -> Result<usize, SendError> {
        self.notify_with(key, msg, &SendOptions::default()).await
    }

    /// [`notify`](Self::notify) with inner plugins and switches.
    pub async fn notify_with(
        &self,
        key: impl AsRef<[u8]>,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let targets: Vec<_> = {
            let reg = self.registry();
            reg.subs
                .subscribers(key.as_ref())
                .iter()
                .filter_map(|id| reg.conns.get(id))
                .map(ConnEntry::recipient)
                .collect()
        };
        self.fan_out(msg, opts, targets).await
    }

    /// Record the peer behind a connection (its id and data, for example public keys); plugins
    /// then receive it for that connection's messages. False if the connection is unknown.
    pub fn set_peer(&self, conn: ConnectionId, peer: Option<Peer>) -> bool {
        match self.registry().conns.get(&conn) {
            Some(c) => {
                c.peer_info.set(peer);
                true
            }
            None => false,
        }
    }

    /// The peer recorded for a connection.
    pub fn peer(&self, conn: ConnectionId) -> Option<Arc<Peer>> {
        self.registry()
            .conns
            .get(&conn)
            .and_then(|c| c.peer_info.get())
    }

    /// The connections now open.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let reg = self.registry();
        let mut v: Vec<_> = reg
            .conns
            .iter()
            .map(|(id, c)| ConnectionInfo {
                id: *id,
                peer: c.peer,
                subscriptions: {
                    let mut keys = reg.subs.keys_of(*id);
                    keys.sort();
                    keys
                },
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.registry().conns.len()
    }

    /// Close one connection gracefully: its in-flight handler may finish and its replies are
    /// flushed, within the shutdown timeout; after that the connection is aborted. False if unknown.
    pub fn disconnect(&self, conn: ConnectionId) -> bool {
        let abort = match self.registry().conns.get(&conn) {
            Some(c) => {
                c.cancel.cancel();
                c.abort.clone()
            }
            None => return false,
        };
        if let Some(abort) = abort {
            let grace = self.shared.shutdown_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                if !abort.is_finished() {
                    tracing::warn!(
                        "disconnect: handler still busy after the grace period; aborting"
                    );
                    abort.abort();
                }
            });
        }
        true
    }

    /// Connection events from now on. A receiver that falls more than 256 events behind loses the
    /// oldest ones (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.shared.events.subscribe()
    }

    /// Start a graceful shutdown; `serve` returns when it is done.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// True once shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    runtime_routes!();
}

impl ConnEntry {
    fn recipient(&self) -> Recipient<mpsc::Sender<Bytes>> {
        Recipient {
            to: self.tx.clone(),
            addr: self.peer,
            peer: self.peer_info.get(),
        }
    }
}

/// Removes a connection and its subscriptions when its task ends, even by a panic or an abort.
struct ConnGuard {
    handle: ServerHandle,
    id: ConnectionId,
    peer: SocketAddr,
    /// Set when the driver returns; still `None` if the task panicked or was aborted.
    reason: Option<CloseReason>,
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

struct ServerDispatch {
    ctx: Context,
    id: ConnectionId,
    server: ServerHandle,
    routes: Arc<Routes>,
    codec: FrameCodec,
    plugins: NodePlugins,
    peer: SocketAddr,
    peer_info: PeerSlot,
}

impl ServerDispatch {
    /// Open a routed message with its route's inner plugins; on refusal, the message as routed
    /// (for the error reply) and why. Out of line: the common route has no inner plugins.
    #[inline(never)]
    fn open_routed(
        &self,
        msg: Message,
        inner: &Plugins,
        peer_info: Option<Arc<Peer>>,
    ) -> Result<Message, Box<(Message, OpenError)>> {
        let peer_info = peer_info.or_else(|| self.peer_info.get());
        let ctx = self.plugins.ctx(peer_info.as_deref(), Some(self.peer));
        let routed = msg.clone();
        // Boxed: the refusal is the rare path, the message the common one.
        open_inner(msg, inner, &ctx).map_err(|e| Box::new((routed, e)))
    }

    /// Encode a finished (already sealed) message; a reply that cannot be encoded is answered with
    /// ERROR `reply too large` sealed with the instance plugins.
    fn write(&self, reply: &Message, out: &mut BytesMut) {
        if let Err(e) = self.codec.encode_message(reply, out) {
            tracing::warn!(error = %e, "reply cannot be encoded; answering ERROR instead");
            let mut err = Message::new(MessageType::ERROR, reply.uri().clone(), "reply too large");
            if let Some(r) = reply.reply_ref() {
                err.set_reply_ref(r);
            }
            self.write_sealed(err, &Plugins::new(), true, out);
        }
    }

    /// Seal with `inner` and (when `outer`) the instance plugins, then encode.
    fn write_sealed(&self, msg: Message, inner: &Plugins, outer: bool, out: &mut BytesMut) {
        let opts = SendOptions::new()
            .inner(inner.clone())
            .use_auth(outer)
            .use_cipher(outer);
        let peer = self.peer_info.get();
        match self
            .plugins
            .seal_now(msg, &opts, peer.as_deref(), Some(self.peer))
        {
            Ok(m) => {
                if let Err(e) = self.codec.encode_message(&m, out) {
                    tracing::warn!(error = %e, "sealed reply cannot be encoded; dropped");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reply cannot be sealed; dropped"),
        }
    }

    async fn reply(&self, msg: Message, inner: &Plugins, out: &mut BytesMut) {
        if inner.is_empty() && self.plugins.outer.is_empty() {
            return self.write(&msg, out);
        }
        let (uri, rref) = (msg.uri().clone(), msg.reply_ref());
        let opts = SendOptions::new().inner(inner.clone());
        let peer = self.peer_info.get();
        let sealed = self
            .plugins
            .seal(msg, &opts, peer.as_deref(), Some(self.peer))
            .await;
        match sealed {
            Ok(m) => self.write(&m, out),
            Err(e) => {
                tracing::warn!(error = %e, "reply cannot be sealed; answering ERROR instead");
                let mut err = Message::new(MessageType::ERROR, uri, "internal error");
                if let Some(r) = rref {
                    err.set_reply_ref(r);
                }
                self.write_sealed(err, &Plugins::new(), true, out);
            }
        }
    }

    fn invalid(&self, err: &DecodeError, auth: &Bytes, out: &mut BytesMut) {
        tracing::warn!(error = %err, "invalid frame: answering ERROR");
        let mut reply = Message::error("invalid message");
        // The auth block is outside the checksum: if it still decodes, echo the request id so the
        // waiting request fails at once instead of timing out.
        if let Some(id) = self
            .codec
            .auth_codec()
            .decode(auth)
            .ok()
            .and_then(|f| crate::message::request_id_in(&f))
        {
            reply.set_reply_ref(id);
        }
        // Unsealed, like the auth-error reply: a malformed frame must not make the server run its
        // plugins (a proof-of-work stamp on every garbage frame would be a CPU amplifier).
        self.write(&reply, out);
    }

    /// A check failed: log, and answer as the hook (auth) or the defaults (cipher) say, without
    /// plugins, never to an error-type message.
    fn refused(
        &self,
        msg: &Message,
        err: &OpenError,
        plugin: Option<&dyn AuthPlugin>,
        out: &mut BytesMut,
    ) {
        tracing::warn!(error = %err, r#type = %msg.message_type, "message refused");
        let reply = match (err, plugin) {
            (OpenError::Auth { source, stage }, Some(plugin)) => {
                (self.plugins.auth_error)(&AuthFailure {
                    message: msg,
                    error: source,
                    stage: *stage,
                    plugin,
                    addr: self.peer,
                })
            }
            _ if msg.message_type.is_error() => None,
            _ => Some(Message::new(
                MessageType::ERROR,
                "ERROR",
                "decryption failed",
            )),
        };
        if let Some(mut reply) = reply {
            if let Some(id) = msg.request_id() {
                reply.set_reply_ref(id);
            }
            self.write(&reply, out);
        }
    }
}

impl Dispatch for ServerDispatch {
    async fn on_frame(&mut self, frame: Frame, out: &mut BytesMut) {
        let Frame { header, auth, body } = frame;
        let msg = match Message::from_parts(header, &auth, body, self.codec.auth_codec()) {
            Ok(m) => m,
            Err(e) => return self.invalid(&e, &auth, out),
        };
        drop(auth);
        let span = tracing::debug_span!("message", r#type = %msg.message_type, uri = ?crate::message::HexPreview(msg.uri()));
        // The peer record is read (a lock and a reference count) only when a plugin will see it.
        let outer_on = !self.plugins.outer.is_empty();
        let peer_info = if outer_on { self.peer_info.get() } else { None };
        let msg = if outer_on {
            let ctx = self.plugins.ctx(peer_info.as_deref(), Some(self.peer));
            let received = msg.clone();
            match open_outer(msg, &self.plugins.outer, &ctx) {
                Ok(m) => m,
                Err(e) => {
                    // A client answers a request of ours that failed its checks with an error
                    // sent without plugins: it fails that request (as the error it is).
                    if let Some(p) = self
                        .server
                        .shared
                        .requests
                        .correlate_unauthenticated(self.id, &received)
                    {
                        tracing::debug!(error = %e, "unauthenticated error reply answered its request");
                        p.answer(crate::RequestError::from_reply(received));
                        return;
                    }
                    let plugin = self.plugins.outer.auth.clone();
                    return self.refused(&received, &e, plugin.as_deref(), out);
                }
            }
        } else {
            msg
        };
        // A reply to a request this server sent the client ([`ServerHandle::call`]).
        match self.server.shared.requests.correlate(self.id, &msg) {
            Correlated::NotAReply => {}
            Correlated::Answers(p) => {
                let peer = self.peer_info.get();
                return requests::complete(p, msg, &self.plugins, peer.as_deref(), self.peer);
            }
            Correlated::Stale => return,
        }
        // The request id as sent: the reply carries the same bytes as its reply reference (no
        // re-encoding, no allocation).
        let rid = msg
            .auth
            .get(crate::message::fields::REQUEST_ID)
            .filter(|v| (1..=8).contains(&v.len()))
            .cloned();
        let Matched {
            handler,
            inner,
            once,
        } = self.routes.select(msg.message_type, msg.uri(), self.peer);
        let opened = if inner.is_empty() {
            Ok(msg)
        } else {
            self.open_routed(msg, &inner, peer_info)
        };
        OnceClaim::settle(once, opened.is_ok());
        let msg = match opened {
            Ok(m) => m,
            Err(refused) => {
                let (routed, e) = *refused;
                return self.refused(&routed, &e, inner.auth.as_deref(), out);
            }
        };
        let is_error = msg.message_type.is_error();
        let reply = match handler {
            Some(h) => {
                let req = Request {
                    message: msg,
                    ctx: self.ctx.clone(),
                };
                h.call(req).instrument(span).await
            }
            None if is_error => {
                // Never answer an error with an error: no ping-pong.
                tracing::debug!(parent: &span, "unhandled error-type message dropped");
                None
            }
            None => Some(Message::not_found()),
        };
        if let Some(mut reply) = reply {
            if let Some(id) = rid {
                reply
                    .auth
                    .insert_static(crate::message::fields::REPLY_REF, id);
            }
            self.reply(reply, &inner, out).await;
        }
    }

    fn on_fatal(&mut self, err: &FrameError, out: &mut BytesMut) {
        let text = match err {
            FrameError::Decode(DecodeError::FrameTooLarge { .. }) => "frame too large",
            _ => "invalid message",
        };
        // Unsealed, as for any frame that never passed the checks.
        self.write(&Message::new(MessageType::ERROR, "ERROR", text), out);
    }
}
