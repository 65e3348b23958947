//! [`TcpClient`] and [`Connection`]: connect to servers, send, receive, and correlate requests with
//! their replies by request id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::driver::{self, CloseReason, Dispatch, DriverConfig};
use crate::codec::{Frame, FrameCodec, FrameError};
use crate::error::{ConnectError, ReceiveError, RequestError, SendError};
use crate::message::{AuthFieldsCodec, MAX_FRAME, PostcardCodec};
use crate::node::outbound;
use crate::node::peers::{self as peer_management, PeerManager};
use crate::node::requests::{self, Correlated, Limits, Matching, Requests};
use crate::peer::{Peer, PeerConfig, PeerSlot, PeerTable};
use crate::plugin::{NodePlugins, SendOptions, open_inner, open_outer};
use crate::router::{Context, Matched, OnceClaim, PeerLink, Request, Router, Routes};
use crate::{Message, MessageType};

/// Reconnect policy: exponential backoff from `initial_delay`, doubling up to `max_delay`.
///
/// ```
/// use std::time::Duration;
/// use netaio::tcp::Reconnect;
///
/// let policy = Reconnect::default().initial_delay(Duration::from_millis(50)).max_attempts(Some(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    initial_delay: Duration,
    max_delay: Duration,
    max_attempts: Option<u32>,
}

impl Default for Reconnect {
    /// 100 ms, doubling up to 10 s, without limit on attempts.
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// The first delay (default 100 ms).
    #[must_use]
    pub fn initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }

    /// The largest delay (default 10 s).
    #[must_use]
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Give up after this many failed attempts in a row (`None`: never, the default).
    #[must_use]
    pub fn max_attempts(mut self, n: Option<u32>) -> Self {
        self.max_attempts = n;
        self
    }

    /// The delay before attempt `n` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Configures a [`TcpClient`]. Every limit has a default.
#[derive(Debug)]
pub struct TcpClientBuilder {
    router: Router,
    auth_codec: Arc<dyn AuthFieldsCodec>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_frame_size: usize,
    read_timeout: Duration,
    idle_timeout: Option<Duration>,
    write_timeout: Duration,
    send_queue: usize,
    max_in_flight: usize,
    inbox: usize,
    reconnect: Option<Reconnect>,
    plugins: NodePlugins,
    python_errors: bool,
    peer_config: Option<PeerConfig>,
}

impl Default for TcpClientBuilder {
    fn default() -> Self {
        Self {
            router: Router::new(),
            auth_codec: Arc::new(PostcardCodec),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_frame_size: MAX_FRAME,
            read_timeout: Duration::from_secs(10),
            idle_timeout: None,
            write_timeout: Duration::from_secs(30),
            send_queue: 1024,
            max_in_flight: 4096,
            inbox: 1024,
            reconnect: None,
            plugins: NodePlugins::default(),
            python_errors: false,
            peer_config: None,
        }
    }
}

impl TcpClientBuilder {
    /// Handlers for messages the servers send that are not replies to a request (default: none).
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

    /// Python-compatible mode (default off), for Python netaio 0.0.9 servers: the auth block as
    /// Python's packify ([`PackifyCodec`](crate::compat::PackifyCodec)), peers packed as
    /// Python's `DefaultPeerPlugin` ([`PackifyPeerPlugin`](crate::compat::PackifyPeerPlugin)),
    /// and Python's error replies understood: an error-type reply without a reply reference that
    /// matches no request by uri (Python answers with uri `ERROR`, or an empty uri for its
    /// default NOT_FOUND) answers the oldest waiting request, even when it failed the instance
    /// auth check (Python sends AUTH_ERROR without a MAC). A wrong secret or an unknown route
    /// then fails a request at once with [`RequestError::Auth`](crate::RequestError::Auth) or
    /// [`RequestError::NotFound`](crate::RequestError::NotFound) instead of a timeout.
    /// Choose the plugins separately (see [`compat`](crate::compat)).
    ///
    /// ```
    /// use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher};
    /// use netaio::TcpClient;
    ///
    /// let client = TcpClient::builder()
    ///     .python_compat()
    ///     .auth(LegacyHmacAuth::new("secret"))
    ///     .cipher(LegacySha256StreamCipher::new("key"))
    ///     .build();
    /// ```
    #[must_use]
    pub fn python_compat(mut self) -> Self {
        self.auth_codec = Arc::new(crate::compat::PackifyCodec);
        self.plugins.peer_plugin = Arc::new(crate::compat::PackifyPeerPlugin);
        self.python_errors = true;
        self
    }

    /// How long `connect` waits (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = crate::node::sane(t);
        self
    }

    /// How long a request waits for its reply (default 10 s, as in Python).
    #[must_use]
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = crate::node::sane(t);
        self
    }

    /// The largest frame accepted or sent (default: the largest the header can describe).
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes.min(MAX_FRAME);
        self
    }

    /// How long a started frame may take to arrive in full (default 10 s).
    #[must_use]
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = crate::node::sane(t);
        self
    }

    /// Close a connection with no traffic for this long (default `None`: keep it).
    #[must_use]
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.idle_timeout = t.map(crate::node::sane);
        self
    }

    /// How long the server may leave our data unread (default 30 s).
    #[must_use]
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = crate::node::sane(t);
        self
    }

    /// Messages queued per connection before `send` waits (default 1024).
    #[must_use]
    pub fn send_queue(mut self, n: usize) -> Self {
        self.send_queue = n.max(1);
        self
    }

    /// Requests waiting for replies per connection (default 4096).
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Messages kept for [`Connection::receive_once`] (default 1024); when full, new ones are dropped
    /// and logged.
    #[must_use]
    pub fn inbox(mut self, n: usize) -> Self {
        self.inbox = n.max(1);
        self
    }

    /// Reconnect after the connection drops (default: off).
    #[must_use]
    pub fn reconnect(mut self, policy: Option<Reconnect>) -> Self {
        self.reconnect = policy;
        self
    }

    plugin_setters!();

    /// Manage peers (default: off): [`TcpClient::connect`] (and every reconnect) sends
    /// `ADVERTISE_PEER` and records the server from its `PEER_DISCOVERED` answer in
    /// [`TcpClient::peers`] and on the connection (plugins then see it);
    /// [`Connection::close`] sends `DISCONNECT` first. Without a
    /// [`local_peer`](Self::local_peer), the client gets a random id.
    #[must_use]
    pub fn peer_management(mut self, config: PeerConfig) -> Self {
        self.peer_config = Some(config);
        self
    }

    /// The client.
    ///
    /// With [`peer_management`](Self::peer_management), a route of the router at a
    /// peer-management key (`(ADVERTISE_PEER, app id)`, …) is kept and peer management's own
    /// handler for it is not installed (logged as a warning).
    pub fn build(self) -> TcpClient {
        let routes = self.router.into_shared();
        let mut plugins = self.plugins.for_new_node();
        let peers = PeerTable::new();
        let manager = self.peer_config.and_then(|config| {
            peer_management::install(&routes, &peers, &mut plugins, config, false)
                .map_err(|e| tracing::warn!(error = %e, "peer management not installed"))
                .ok()
        });
        TcpClient {
            shared: Arc::new(ClientShared {
                routes,
                codec: FrameCodec::with_auth_codec(self.auth_codec)
                    .max_frame_size(self.max_frame_size),
                driver: DriverConfig {
                    read_timeout: self.read_timeout,
                    idle_timeout: self.idle_timeout,
                    write_timeout: self.write_timeout,
                    write_high_water: 1 << 20,
                },
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
                send_queue: self.send_queue,
                max_in_flight: self.max_in_flight,
                inbox: self.inbox,
                reconnect: self.reconnect,
                plugins,
                python_errors: self.python_errors,
                conns: Mutex::new(HashMap::new()),
                peers,
                manager,
            }),
        }
    }

    /// Mount a [`Service`](crate::router::Service) on the client's router (see
    /// [`Router::mount`]): its routes handle what servers send that is not a reply to a request.
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

pub(super) struct ClientShared {
    routes: Arc<Routes>,
    codec: FrameCodec,
    driver: DriverConfig,
    connect_timeout: Duration,
    request_timeout: Duration,
    send_queue: usize,
    max_in_flight: usize,
    inbox: usize,
    reconnect: Option<Reconnect>,
    pub(super) plugins: NodePlugins,
    /// Python-compatible mode: unreferenced error replies answer the oldest waiting request.
    python_errors: bool,
    conns: Mutex<HashMap<SocketAddr, Connection>>,
    /// Servers that answered our advert (peer management).
    pub(super) peers: PeerTable,
    pub(super) manager: Option<Arc<PeerManager>>,
}

/// A TCP client: connections to one or several servers, each a [`Connection`] handle, sharing one
/// router for messages the servers send on their own.
///
/// ```no_run
/// use netaio::TcpClient;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = TcpClient::new();
/// let conn = client.connect("127.0.0.1:8888").await?;
/// let reply = conn.request("echo", "hello").await?;
/// assert_eq!(reply.content().as_ref(), b"hello");
/// conn.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TcpClient {
    pub(super) shared: Arc<ClientShared>,
}

impl std::fmt::Debug for TcpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpClient")
            .field("connections", &self.connections().len())
            .finish_non_exhaustive()
    }
}

impl Default for TcpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpClient {
    /// A client with the defaults and no handlers.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder.
    pub fn builder() -> TcpClientBuilder {
        TcpClientBuilder::default()
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Connection>> {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connect to a server (within the connect timeout) and start its receive loop. When a
    /// connection to that address is already open, it is returned instead.
    ///
    /// With peer management, it then advertises this client and waits (within the request
    /// timeout) for the server's `PEER_DISCOVERED`, so that [`Connection::peer`] is set when it
    /// returns; a server that does not answer is logged, not an error.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> Result<Connection, ConnectError> {
        let addr = resolve(addr).await?;
        if let Some(c) = self.conns().get(&addr).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let stream = connect_once(addr, self.shared.connect_timeout).await?;
        let conn = Connection::start(self.shared.clone(), stream, addr);
        self.conns().insert(addr, conn.clone());
        if self.shared.manager.is_some()
            && let Err(e) = conn.advertise().await
        {
            tracing::info!(server = %addr, error = %e, "server did not answer our advert");
        }
        Ok(conn)
    }

    /// The open connection to `addr`, if any.
    pub fn connection(&self, addr: SocketAddr) -> Option<Connection> {
        self.conns().get(&addr).filter(|c| !c.is_closed()).cloned()
    }

    /// Every connection not yet closed.
    pub fn connections(&self) -> Vec<Connection> {
        let mut conns = self.conns();
        conns.retain(|_, c| !c.is_closed());
        conns.values().cloned().collect()
    }

    /// Close every connection gracefully.
    pub async fn close_all(&self) {
        let all: Vec<_> = self.conns().drain().map(|(_, c)| c).collect();
        for c in all {
            c.close().await;
        }
    }

    runtime_routes!();
}

async fn resolve(addr: impl ToSocketAddrs) -> Result<SocketAddr, ConnectError> {
    let mut addrs = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| ConnectError::Resolve(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| ConnectError::Resolve("no address".into()))
}

async fn connect_once(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout { addr, timeout })?
        .map_err(|source| ConnectError::Io { addr, source })?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    Ok(stream)
}

pub(super) struct ConnShared {
    pub(super) peer: SocketAddr,
    pub(super) client: Arc<ClientShared>,
    tx: mpsc::Sender<Bytes>,
    /// Requests sent on this connection and waiting for replies.
    requests: Requests<()>,
    connected: AtomicBool,
    cancel: CancellationToken,
    inbox: tokio::sync::Mutex<mpsc::Receiver<Message>>,
    state: tokio::sync::watch::Sender<ConnectionState>,
    peer_info: PeerSlot,
}

/// Where a client [`Connection`] is: [`Connection::state`] now, [`Connection::state_changes`] to
/// follow it, [`Connection::wait_connected`] to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connected to the server.
    Connected,
    /// The connection dropped and the client is reconnecting (it has a [`Reconnect`] policy);
    /// requests fail at once meanwhile.
    Reconnecting {
        /// Why the connection dropped.
        reason: CloseReason,
    },
    /// Ended for good: closed locally, dropped without a reconnect policy, or reconnecting gave up.
    Closed {
        /// Why it ended (for a reconnecting connection that gave up: why it last dropped).
        reason: CloseReason,
    },
}

impl ConnectionState {
    /// True when connected.
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnectionState::Connected)
    }

    /// True once the connection has ended for good.
    pub fn is_closed(&self) -> bool {
        matches!(self, ConnectionState::Closed { .. })
    }
}

/// [`Connection::wait_connected`] found the connection ended for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection closed: {reason}")]
pub struct ConnectionClosed {
    /// Why it ended.
    pub reason: CloseReason,
}

/// One client connection to one server; cheap to clone. Requests sent on it are matched to their
/// replies by request id, so any number may be in flight, even for the same uri.
#[derive(Clone)]
pub struct Connection {
    pub(super) inner: Arc<ConnShared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.inner.peer)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Connection {
    fn start(client: Arc<ClientShared>, stream: TcpStream, peer: SocketAddr) -> Connection {
        let (tx, rx) = mpsc::channel(client.send_queue);
        let (inbox_tx, inbox_rx) = mpsc::channel(client.inbox);
        let (state, _) = tokio::sync::watch::channel(ConnectionState::Connected);
        let conn = Connection {
            inner: Arc::new(ConnShared {
                peer,
                client: client.clone(),
                tx,
                requests: Requests::new(
                    Limits {
                        total: client.max_in_flight,
                        per_peer: client.max_in_flight,
                    },
                    if client.python_errors {
                        Matching::Python
                    } else {
                        Matching::Native
                    },
                ),
                connected: AtomicBool::new(true),
                cancel: CancellationToken::new(),
                inbox: tokio::sync::Mutex::new(inbox_rx),
                state,
                peer_info: PeerSlot::default(),
            }),
        };
        let span = tracing::info_span!("client", server = %peer);
        let task_conn = conn.clone();
        tokio::spawn(
            async move {
                // However the task ends — normally, or by a panic in a client handler — the
                // connection is marked down, its waiting requests fail and `close()` returns.
                let _ended = Ended {
                    conn: task_conn.clone(),
                };
                task_conn.run(stream, rx, inbox_tx).await;
            }
            .instrument(span),
        );
        conn
    }

    async fn run(
        self,
        mut stream: TcpStream,
        mut rx: mpsc::Receiver<Bytes>,
        inbox: mpsc::Sender<Message>,
    ) {
        let client = self.inner.client.clone();
        let link = PeerLink {
            addr: self.inner.peer,
            link: 0,
        };
        let mut dispatch = ClientDispatch {
            ctx: Context::new(link, Arc::new(self.clone()), client.routes.state().clone()),
            conn: self.clone(),
            routes: client.routes.clone(),
            codec: client.codec.clone(),
            inbox,
        };
        loop {
            let reason = driver::drive(
                stream,
                client.codec.clone(),
                &client.driver,
                &mut dispatch,
                &mut rx,
                &self.inner.cancel,
            )
            .await;
            self.inner.connected.store(false, Ordering::Release);
            self.fail_pending(false);
            super::peers::connection_lost(&self);
            tracing::info!(%reason, "connection closed");
            let policy = client
                .reconnect
                .as_ref()
                .filter(|_| reason != CloseReason::Local && !self.inner.cancel.is_cancelled());
            let Some(policy) = policy else {
                self.fail_pending(true);
                self.set_state(ConnectionState::Closed { reason });
                return;
            };
            self.set_state(ConnectionState::Reconnecting {
                reason: reason.clone(),
            });
            match self.reconnect(policy).await {
                Some(s) => {
                    stream = s;
                    self.inner.connected.store(true, Ordering::Release);
                    self.set_state(ConnectionState::Connected);
                    tracing::info!("reconnected");
                    super::peers::reconnected(&self);
                }
                None => {
                    self.fail_pending(true);
                    self.set_state(ConnectionState::Closed { reason });
                    return;
                }
            }
        }
    }

    fn set_state(&self, state: ConnectionState) {
        self.inner.state.send_replace(state);
    }

    async fn reconnect(&self, policy: &Reconnect) -> Option<TcpStream> {
        let mut attempt = 0u32;
        loop {
            if policy.max_attempts.is_some_and(|max| attempt >= max) {
                tracing::warn!(attempts = attempt, "giving up reconnecting");
                return None;
            }
            let delay = policy.delay(attempt);
            tokio::select! {
                () = self.inner.cancel.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            match connect_once(self.inner.peer, self.inner.client.connect_timeout).await {
                Ok(s) => return Some(s),
                Err(e) => tracing::debug!(error = %e, attempt, "reconnect failed"),
            }
            attempt = attempt.saturating_add(1);
        }
    }

    /// Fail every waiting request with [`RequestError::Closed`]; `for_good` refuses new ones.
    fn fail_pending(&self, for_good: bool) {
        self.inner.requests.with(|t| t.fail_all(for_good));
    }

    /// Record the server's peer (its id and data, for example public keys); plugins then receive it
    /// for this connection's messages.
    pub fn set_peer(&self, peer: Option<Peer>) {
        self.inner.peer_info.set(peer);
    }

    /// The server's peer, when recorded.
    pub fn peer(&self) -> Option<Arc<Peer>> {
        self.inner.peer_info.get()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// True while the connection is up (false while reconnecting and once closed).
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// True once the connection has ended for good.
    pub fn is_closed(&self) -> bool {
        self.inner.state.borrow().is_closed()
    }

    /// Where the connection is now.
    pub fn state(&self) -> ConnectionState {
        self.inner.state.borrow().clone()
    }

    /// Follow the connection's state: a `watch` receiver that sees every change (connected,
    /// reconnecting and why, closed and why).
    ///
    /// ```no_run
    /// # async fn f(conn: netaio::Connection) {
    /// let mut changes = conn.state_changes();
    /// while changes.changed().await.is_ok() {
    ///     println!("{:?}", *changes.borrow_and_update());
    /// }
    /// # }
    /// ```
    pub fn state_changes(&self) -> tokio::sync::watch::Receiver<ConnectionState> {
        self.inner.state.subscribe()
    }

    /// Wait until the connection is connected (at once if it is): after a drop, a reconnecting
    /// connection gets there when the server is back. Fails when the connection has ended for
    /// good (closed, dropped without a reconnect policy, or reconnecting gave up).
    ///
    /// ```no_run
    /// # async fn f(conn: netaio::Connection) -> Result<(), netaio::tcp::ConnectionClosed> {
    /// conn.wait_connected().await?;
    /// let reply = conn.request("echo", "hi").await;
    /// # Ok(()) }
    /// ```
    pub async fn wait_connected(&self) -> Result<(), ConnectionClosed> {
        let mut changes = self.inner.state.subscribe();
        let state = changes
            .wait_for(|s| s.is_connected() || s.is_closed())
            .await
            .map(|s| s.clone());
        match state {
            Ok(ConnectionState::Closed { reason }) => Err(ConnectionClosed { reason }),
            Ok(_) => Ok(()),
            // The sender lives in the connection, which `self` keeps alive.
            Err(_) => Err(ConnectionClosed {
                reason: CloseReason::Local,
            }),
        }
    }

    /// Seal (instance plugins as `opts` says, plus its inner plugins) and encode.
    async fn prepare(&self, msg: Message, opts: &SendOptions) -> Result<Bytes, SendError> {
        let client = &self.inner.client;
        let peer = self.inner.peer_info.get();
        outbound::seal(
            &client.plugins,
            &client.codec,
            msg,
            opts,
            peer.as_deref(),
            Some(self.inner.peer),
        )
        .await
    }

    /// Queue a message (sealed with the instance plugins), waiting while the send queue is full.
    pub async fn send(&self, msg: &Message) -> Result<(), SendError> {
        self.send_with(msg, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with inner plugins and the `use_auth` / `use_cipher` switches.
    pub async fn send_with(&self, msg: &Message, opts: &SendOptions) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Closed);
        }
        let bytes = self.prepare(msg.clone(), opts).await?;
        self.inner
            .tx
            .send(bytes)
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Queue a message without waiting ([`SendError::QueueFull`] when the queue is full). Plugins
    /// run inline, even a CPU-heavy one.
    pub fn try_send(&self, msg: &Message) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Closed);
        }
        let client = &self.inner.client;
        let bytes = outbound::seal_now(
            &client.plugins,
            &client.codec,
            msg.clone(),
            &SendOptions::default(),
            self.inner.peer_info.get().as_deref(),
            Some(self.inner.peer),
        )?;
        self.inner.tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Send a message with a fresh request id and wait for the reply (within the client's request
    /// timeout). Error replies become typed errors ([`RequestError::NotFound`], …).
    pub async fn call(&self, msg: Message) -> Result<Message, RequestError> {
        self.call_with(msg, &SendOptions::default()).await
    }

    /// [`call`](Self::call) with its own timeout.
    pub async fn call_timeout(
        &self,
        msg: Message,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        self.call_with(msg, &SendOptions::default().timeout(timeout))
            .await
    }

    /// [`call`](Self::call) with options: inner plugins (the reply is opened with them too), the
    /// instance plugin switches and a timeout.
    pub async fn call_with(
        &self,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Message, RequestError> {
        if !self.is_connected() {
            return Err(SendError::Closed.into());
        }
        let timeout = opts.timeout.unwrap_or(self.inner.client.request_timeout);
        self.inner
            .requests
            .exchange((), msg, opts.inner.clone(), timeout, |msg| async move {
                let bytes = self.prepare(msg, opts).await?;
                self.inner
                    .tx
                    .send(bytes)
                    .await
                    .map_err(|_| SendError::Closed)
            })
            .await
    }

    /// REQUEST_URI; expects RESPOND_URI.
    pub async fn request(
        &self,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::REQUEST_URI, uri, content))
            .await
    }

    /// CREATE_URI; expects OK.
    pub async fn create(
        &self,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::CREATE_URI, uri, content))
            .await
    }

    /// UPDATE_URI; expects OK.
    pub async fn update(
        &self,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::UPDATE_URI, uri, content))
            .await
    }

    /// DELETE_URI; expects OK.
    pub async fn delete(&self, uri: impl Into<Bytes>) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::DELETE_URI, uri, Bytes::new()))
            .await
    }

    /// The next message from the server that is neither a reply to a request nor taken by a
    /// handler, waiting as long as it takes.
    pub async fn receive_once(&self) -> Result<Message, ReceiveError> {
        self.inner
            .inbox
            .lock()
            .await
            .recv()
            .await
            .ok_or(ReceiveError::Closed)
    }

    /// [`receive_once`](Self::receive_once) with a timeout.
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Message, ReceiveError> {
        tokio::time::timeout(timeout, self.receive_once())
            .await
            .map_err(|_| ReceiveError::Timeout(timeout))?
    }

    /// Close gracefully: queued messages are written first. Waits until the connection has ended
    /// (at most the write timeout, so a client handler that never finishes cannot hang it).
    /// With peer management, a `DISCONNECT` is queued first.
    pub async fn close(&self) {
        super::peers::goodbye(self).await;
        self.inner.cancel.cancel();
        let mut done = self.inner.state.subscribe();
        // A client handler that never finishes must not hang `close` forever.
        let limit = self.inner.client.driver.write_timeout;
        if tokio::time::timeout(limit, done.wait_for(ConnectionState::is_closed))
            .await
            .is_err()
        {
            tracing::warn!("close: the connection did not end in time; giving up waiting");
        }
    }
}

/// Marks a connection as ended when its task ends, panics included.
struct Ended {
    conn: Connection,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.conn.inner.connected.store(false, Ordering::Release);
        self.conn.fail_pending(true);
        // Normally already closed with its reason; a panic in a client handler ends it here.
        self.conn.inner.state.send_if_modified(|s| {
            if s.is_closed() {
                return false;
            }
            *s = ConnectionState::Closed {
                reason: CloseReason::Io(
                    "the connection task ended (a client handler panicked)".into(),
                ),
            };
            true
        });
    }
}

struct ClientDispatch {
    ctx: Context,
    conn: Connection,
    routes: Arc<Routes>,
    codec: FrameCodec,
    inbox: mpsc::Sender<Message>,
}

impl Dispatch for ClientDispatch {
    async fn on_frame(&mut self, frame: Frame, out: &mut BytesMut) {
        let auth = frame.auth.clone();
        let msg = match frame.decode(self.codec.auth_codec()) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "invalid frame from server dropped");
                // If the reply reference can still be read, fail that request now rather than at
                // its timeout.
                if let Some(id) = self
                    .codec
                    .auth_codec()
                    .decode(&auth)
                    .ok()
                    .and_then(|f| crate::message::reply_ref_in(&f))
                {
                    let mut invalid =
                        Message::new(MessageType::ERROR, "ERROR", format!("invalid reply: {e}"));
                    invalid.set_reply_ref(id);
                    if let Some(p) = self
                        .conn
                        .inner
                        .requests
                        .correlate_unauthenticated((), &invalid)
                    {
                        p.answer(RequestError::from_reply(invalid));
                    }
                }
                return;
            }
        };
        let peer = self.ctx.peer_addr();
        let plugins = &self.conn.inner.client.plugins;
        // Kept only when a check can fail, for answering a request with an unauthenticated error.
        let received =
            (!plugins.outer.is_empty() && msg.message_type.is_error()).then(|| msg.clone());
        let peer_info = self.conn.inner.peer_info.get();
        let pctx = plugins.ctx(peer_info.as_deref(), Some(peer));
        let requests = &self.conn.inner.requests;
        let msg = match open_outer(msg, &plugins.outer, &pctx) {
            Ok(m) => m,
            Err(e) => {
                // An error reply sent without plugins answers its request: by reference, or in
                // Python-compatible mode (no references) the oldest waiting request.
                if let Some(received) = received
                    && let Some(p) = requests.correlate_unauthenticated((), &received)
                {
                    tracing::debug!(error = %e, "unauthenticated error reply completed its request");
                    p.answer(RequestError::from_reply(received));
                    return;
                }
                tracing::warn!(error = %e, "message from server refused");
                return;
            }
        };
        match requests.correlate((), &msg) {
            Correlated::NotAReply => {}
            Correlated::Answers(p) => {
                return requests::complete(p, msg, plugins, peer_info.as_deref(), peer);
            }
            Correlated::Stale => return,
        }
        // A route, else the router's fallback when the application set one, else the inbox.
        let Matched {
            handler,
            inner,
            once,
        } = self.routes.select(msg.message_type, msg.uri(), peer);
        let opened = open_inner(msg, &inner, &pctx);
        OnceClaim::settle(once, opened.is_ok());
        let msg = match opened {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "message from server refused by the handler's plugins");
                return;
            }
        };
        if let Some(handler) = handler {
            let rid = msg.request_id();
            let req = Request {
                message: msg,
                ctx: self.ctx.clone(),
            };
            if let Some(mut reply) = handler.call(req).await {
                if let Some(id) = rid {
                    reply.set_reply_ref(id);
                }
                let opts = SendOptions::new().inner(inner);
                let sealed = plugins
                    .seal(reply, &opts, peer_info.as_deref(), Some(peer))
                    .await;
                match sealed
                    .map_err(SendError::from)
                    .and_then(|m| self.codec.encode_message(&m, out).map_err(SendError::from))
                {
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "handler reply cannot be sent; dropped"),
                }
            }
            return;
        }
        match self.inbox.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(m)) => {
                tracing::warn!(r#type = %m.message_type, "inbox full: message dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn on_fatal(&mut self, _err: &FrameError, _out: &mut BytesMut) {}
}
