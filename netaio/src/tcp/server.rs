//! [`TcpServer`]: accept connections and dispatch their frames to a [`Router`].

use std::collections::{HashMap, HashSet};
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
use crate::error::{BindError, SendError, SubscribeError};
use crate::message::{AuthFieldsCodec, DecodeError, MAX_FRAME, PostcardCodec};
use crate::router::{BoxedHandler, Handler};
use crate::router::{Context, Link, Request, RouteError, RouteKey, Router, Routes};
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
    shutdown_timeout: Duration,
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
            shutdown_timeout: Duration::from_secs(10),
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

    /// The handlers.
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
        self.read_timeout = t;
        self
    }

    /// Close connections with no traffic for this long (default 300 s; `None` keeps them).
    #[must_use]
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.idle_timeout = t;
        self
    }

    /// How long a client may leave our data unread before it is disconnected (default 30 s).
    #[must_use]
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = t;
        self
    }

    /// Messages queued per connection for `send`, `broadcast` and `notify` (default 1024); when full,
    /// those calls report [`SendError::QueueFull`] for that connection.
    #[must_use]
    pub fn send_queue(mut self, n: usize) -> Self {
        self.send_queue = n.max(1);
        self
    }

    /// Subscriptions per connection (default 1024).
    #[must_use]
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// How long a graceful shutdown waits for in-flight handlers before aborting them (default 10 s).
    #[must_use]
    pub fn shutdown_timeout(mut self, t: Duration) -> Self {
        self.shutdown_timeout = t;
        self
    }

    /// Bind the listening socket.
    pub async fn bind(self) -> Result<TcpServer, BindError> {
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| BindError {
                addr: self.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| BindError {
            addr: self.addr,
            source,
        })?;
        let (events, _) = broadcast::channel(256);
        let codec =
            FrameCodec::with_auth_codec(self.auth_codec).max_frame_size(self.max_frame_size);
        let shared = Arc::new(ServerShared {
            routes: self.router.into_shared(),
            codec,
            driver: DriverConfig {
                read_timeout: self.read_timeout,
                idle_timeout: self.idle_timeout,
                write_timeout: self.write_timeout,
                write_high_water: 1 << 20,
            },
            registry: Mutex::new(Registry::default()),
            events,
            cancel: CancellationToken::new(),
            next_id: AtomicU64::new(1),
            local_addr,
            max_connections: self.max_connections,
            send_queue: self.send_queue,
            max_subscriptions: self.max_subscriptions,
            shutdown_timeout: self.shutdown_timeout,
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

#[derive(Default)]
struct Registry {
    conns: HashMap<ConnectionId, ConnEntry>,
    subs: HashMap<Bytes, HashSet<ConnectionId>>,
}

struct ConnEntry {
    peer: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    cancel: CancellationToken,
    subs: HashSet<Bytes>,
}

struct ServerShared {
    routes: Arc<Routes>,
    codec: FrameCodec,
    driver: DriverConfig,
    registry: Mutex<Registry>,
    events: broadcast::Sender<ConnectionEvent>,
    cancel: CancellationToken,
    next_id: AtomicU64,
    local_addr: SocketAddr,
    max_connections: usize,
    send_queue: usize,
    max_subscriptions: usize,
    shutdown_timeout: Duration,
}

/// A cheap, cloneable handle to a running [`TcpServer`]: send to one client, broadcast to all,
/// subscribe/notify by key, watch connections, change routes, shut down. Handlers reach it through
/// [`Context::server`].
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<ServerShared>,
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
                    subs: HashSet::new(),
                },
            );
        }
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let _ = shared.events.send(ConnectionEvent::Connected { id, peer });
        let span = tracing::info_span!("connection", %peer, id = id.0);
        let handle = self.clone();
        tasks.spawn(
            async move {
                tracing::debug!("connected");
                let mut guard = ConnGuard {
                    handle: handle.clone(),
                    id,
                    peer,
                    reason: CloseReason::Io("handler panicked".into()),
                };
                let mut dispatch = ServerDispatch {
                    ctx: Context::new(
                        peer,
                        Link::Server {
                            handle: handle.clone(),
                            conn: id,
                        },
                        handle.shared.routes.state().clone(),
                    ),
                    routes: handle.shared.routes.clone(),
                    codec: handle.shared.codec.clone(),
                    peer,
                };
                let mut rx = rx;
                guard.reason = driver::drive(
                    stream,
                    handle.shared.codec.clone(),
                    &handle.shared.driver,
                    &mut dispatch,
                    &mut rx,
                    &cancel,
                )
                .await;
            }
            .instrument(span),
        );
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    fn encode(&self, msg: &Message) -> Result<Bytes, SendError> {
        Ok(self.shared.codec.to_frame(msg)?)
    }

    /// Queue a message for one connection. Does not wait: a full queue is [`SendError::QueueFull`].
    pub fn send(&self, conn: ConnectionId, msg: &Message) -> Result<(), SendError> {
        let bytes = self.encode(msg)?;
        let tx = self
            .registry()
            .conns
            .get(&conn)
            .map(|c| c.tx.clone())
            .ok_or(SendError::UnknownConnection)?;
        tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Send a message to every connected client, encoded once. Returns how many queued it (clients
    /// whose queue is full are skipped and logged).
    pub fn broadcast(&self, msg: &Message) -> Result<usize, SendError> {
        let bytes = self.encode(msg)?;
        let targets: Vec<_> = self
            .registry()
            .conns
            .values()
            .map(|c| c.tx.clone())
            .collect();
        Ok(deliver(&bytes, targets))
    }

    /// Subscribe a connection to a key (any bytes; usually a uri).
    pub fn subscribe(
        &self,
        key: impl Into<Bytes>,
        conn: ConnectionId,
    ) -> Result<(), SubscribeError> {
        let key = key.into();
        let mut reg = self.registry();
        let entry = reg
            .conns
            .get_mut(&conn)
            .ok_or(SubscribeError::UnknownConnection)?;
        if !entry.subs.contains(&key) {
            if entry.subs.len() >= self.shared.max_subscriptions {
                return Err(SubscribeError::Limit(self.shared.max_subscriptions));
            }
            entry.subs.insert(key.clone());
        }
        reg.subs.entry(key).or_default().insert(conn);
        Ok(())
    }

    /// Remove a subscription; false if there was none (unlike Python, not an error).
    pub fn unsubscribe(&self, key: &[u8], conn: ConnectionId) -> bool {
        let mut reg = self.registry();
        let removed = reg.conns.get_mut(&conn).is_some_and(|e| e.subs.remove(key));
        if let Some(set) = reg.subs.get_mut(key) {
            set.remove(&conn);
            if set.is_empty() {
                reg.subs.remove(key);
            }
        }
        removed
    }

    /// The connections subscribed to a key.
    pub fn subscribers(&self, key: &[u8]) -> Vec<ConnectionId> {
        let mut v: Vec<_> = self
            .registry()
            .subs
            .get(key)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Send a message to every subscriber of `key`, encoded once. Returns how many queued it.
    pub fn notify(&self, key: &[u8], msg: &Message) -> Result<usize, SendError> {
        let targets: Vec<_> = {
            let reg = self.registry();
            let Some(set) = reg.subs.get(key) else {
                return Ok(0);
            };
            set.iter()
                .filter_map(|id| reg.conns.get(id))
                .map(|c| c.tx.clone())
                .collect()
        };
        if targets.is_empty() {
            return Ok(0);
        }
        let bytes = self.encode(msg)?;
        Ok(deliver(&bytes, targets))
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
                subscriptions: c.subs.iter().cloned().collect(),
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.registry().conns.len()
    }

    /// Close one connection gracefully (its in-flight handler finishes first). False if unknown.
    pub fn disconnect(&self, conn: ConnectionId) -> bool {
        match self.registry().conns.get(&conn) {
            Some(c) => {
                c.cancel.cancel();
                true
            }
            None => false,
        }
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

    /// Add a persistent handler while serving.
    #[track_caller]
    pub fn on<H: Handler<A>, A: 'static>(
        &self,
        key: impl Into<RouteKey>,
        handler: H,
    ) -> Result<(), RouteError> {
        self.shared
            .routes
            .insert(key.into(), BoxedHandler::new(handler), false)
    }

    /// Add a one-shot handler while serving.
    #[track_caller]
    pub fn once<H: Handler<A>, A: 'static>(
        &self,
        key: impl Into<RouteKey>,
        handler: H,
    ) -> Result<(), RouteError> {
        self.shared
            .routes
            .insert(key.into(), BoxedHandler::new(handler), true)
    }

    /// Remove the persistent handler at a key; false if there was none.
    pub fn remove_handler(&self, key: impl Into<RouteKey>) -> bool {
        self.shared.routes.remove(&key.into(), false)
    }

    /// Remove the one-shot handler at a key; false if there was none.
    pub fn remove_once(&self, key: impl Into<RouteKey>) -> bool {
        self.shared.routes.remove(&key.into(), true)
    }
}

fn deliver(bytes: &Bytes, targets: Vec<mpsc::Sender<Bytes>>) -> usize {
    let mut n = 0;
    for tx in targets {
        match tx.try_send(bytes.clone()) {
            Ok(()) => n += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("send queue full: message dropped for one connection");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
    n
}

/// Removes a connection and its subscriptions when its task ends, even by a panic.
struct ConnGuard {
    handle: ServerHandle,
    id: ConnectionId,
    peer: SocketAddr,
    reason: CloseReason,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        {
            let mut reg = self.handle.registry();
            if let Some(entry) = reg.conns.remove(&self.id) {
                for key in entry.subs {
                    if let Some(set) = reg.subs.get_mut(&key) {
                        set.remove(&self.id);
                        if set.is_empty() {
                            reg.subs.remove(&key);
                        }
                    }
                }
            }
        }
        tracing::debug!(reason = %self.reason, "disconnected");
        let _ = self
            .handle
            .shared
            .events
            .send(ConnectionEvent::Disconnected {
                id: self.id,
                peer: self.peer,
                reason: std::mem::replace(&mut self.reason, CloseReason::Local),
            });
    }
}

struct ServerDispatch {
    ctx: Context,
    routes: Arc<Routes>,
    codec: FrameCodec,
    peer: SocketAddr,
}

impl ServerDispatch {
    fn write(&mut self, reply: &Message, out: &mut BytesMut) {
        if let Err(e) = self.codec.encode_message(reply, out) {
            tracing::warn!(error = %e, "reply cannot be encoded; answering ERROR instead");
            let mut err = Message::new(MessageType::ERROR, reply.uri().clone(), "reply too large");
            if let Some(r) = reply.reply_ref() {
                err.set_reply_ref(r);
            }
            let _ = self.codec.encode_message(&err, out);
        }
    }

    fn invalid(&mut self, err: &DecodeError, auth: &Bytes, out: &mut BytesMut) {
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
        self.write(&reply, out);
    }
}

impl Dispatch for ServerDispatch {
    async fn on_frame(&mut self, frame: Frame, out: &mut BytesMut) {
        let auth = frame.auth.clone();
        let msg = match frame.decode(self.codec.auth_codec()) {
            Ok(m) => m,
            Err(e) => return self.invalid(&e, &auth, out),
        };
        let span = tracing::debug_span!("message", r#type = %msg.message_type, uri = ?crate::message::HexPreview(msg.uri()));
        let rid = msg.request_id();
        let handler = self
            .routes
            .select(msg.message_type, msg.uri(), self.peer)
            .or_else(|| self.routes.fallback().cloned());
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
                reply.set_reply_ref(id);
            }
            self.write(&reply, out);
        }
    }

    fn on_fatal(&mut self, err: &FrameError, out: &mut BytesMut) {
        let text = match err {
            FrameError::Decode(DecodeError::FrameTooLarge { .. }) => "frame too large",
            _ => "invalid message",
        };
        self.write(&Message::new(MessageType::ERROR, "ERROR", text), out);
    }
}
