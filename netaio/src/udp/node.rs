//! [`UdpNode`]: bind, receive datagrams, dispatch them, send, request with ids and timeouts.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use super::multicast::{Multicast, MulticastConfig};
use super::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};
use crate::codec::FrameCodec;
use crate::error::{BindError, RequestError, SendError, SubscribeError};
use crate::message::{AuthFieldsCodec, PostcardCodec};
use crate::peer::wire::PeerManager;
use crate::peer::{Peer, PeerConfig, PeerTable};
use crate::plugin::{NodePlugins, Plugins, SendOptions, open_inner, open_outer};
use crate::router::{Context, Link, Matched, OnceClaim, Request, Router, Routes};
use crate::{Message, MessageType};

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
struct Counters {
    received: AtomicU64,
    invalid: AtomicU64,
    auth_failed: AtomicU64,
    decrypt_failed: AtomicU64,
    overloaded: AtomicU64,
    replies: AtomicU64,
    panicked: AtomicU64,
}

/// Configures and binds a [`UdpNode`].
///
/// ```no_run
/// use netaio::{Message, MessageType, Router};
/// use netaio::udp::UdpNode;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let router = Router::new().on((MessageType::REQUEST_URI, "echo"), |m: Message| async move {
///     Message::ok(m.uri().clone(), m.content().clone())
/// });
/// let node = UdpNode::builder().address(([127, 0, 0, 1], 9999)).router(router).bind().await?;
/// node.serve().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UdpNodeBuilder {
    addr: SocketAddr,
    router: Router,
    auth_codec: Arc<dyn AuthFieldsCodec>,
    plugins: NodePlugins,
    request_timeout: Duration,
    max_handlers: usize,
    max_in_flight: usize,
    max_subscriptions: usize,
    reuse_address: bool,
    python_errors: bool,
    multicast: Option<MulticastConfig>,
    peer_config: Option<PeerConfig>,
}

impl Default for UdpNodeBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8888)),
            router: Router::new(),
            auth_codec: Arc::new(PostcardCodec),
            plugins: NodePlugins::default(),
            request_timeout: Duration::from_secs(10),
            max_handlers: 1024,
            max_in_flight: 4096,
            max_subscriptions: 4096,
            reuse_address: false,
            python_errors: false,
            multicast: None,
            peer_config: None,
        }
    }
}

impl UdpNodeBuilder {
    /// The address to bind (default `0.0.0.0:8888`, as in Python; IPv6 addresses work).
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

    /// Register every route of a service (see [`Router::mount`]).
    #[must_use]
    #[track_caller]
    pub fn mount<S: crate::router::Service>(mut self, service: S) -> Self {
        self.router = self.router.mount(service);
        self
    }

    /// The auth-block encoding (default [`PostcardCodec`]).
    #[must_use]
    pub fn auth_codec(mut self, codec: Arc<dyn AuthFieldsCodec>) -> Self {
        self.auth_codec = codec;
        self
    }

    plugin_setters!();

    /// Python-compatible mode, for Python netaio 0.0.9 `UDPNode`s: the auth block as Python's
    /// packify ([`PackifyCodec`](crate::compat::PackifyCodec)), peers packed as Python's
    /// `DefaultPeerPlugin` ([`PackifyPeerPlugin`](crate::compat::PackifyPeerPlugin)), Python's
    /// multicast setup ([`MulticastConfig::python`]: the all-hosts group `224.0.0.1` on the node's
    /// own port, joined at bind as Python's node does), and Python's UDP default reply for an
    /// unrouted message: NOT_FOUND `not found` with uri `ERROR` (Python's
    /// `make_error_msg("not found")`; the TCP server's has an empty uri). Call
    /// [`multicast`](Self::multicast) after this for another group. Choose the plugins
    /// separately (see [`compat`](crate::compat)); add
    /// [`peer_management`](Self::peer_management) for Python's adverts (its defaults are
    /// Python's: app id `netaio`, every 20 s, 60 s timeout).
    ///
    /// What stays the node's own: nothing that fails to decode or fails a check is answered (the
    /// Python node answers those, which makes it a reflector), error-type messages are never
    /// answered (two Python nodes answer each other's NOT_FOUND forever), a node does not drop
    /// datagrams by source IP (Python's `ignore_own_ip`), and a datagram with bytes after its
    /// frame is refused (Python ignores them; Python never sends them).
    ///
    /// ```
    /// use netaio::compat::LegacyHmacAuth;
    /// use netaio::udp::UdpNode;
    ///
    /// let builder = UdpNode::builder()
    ///     .address(([0, 0, 0, 0], 8888))
    ///     .python_compat()
    ///     .auth(LegacyHmacAuth::new("secret"));
    /// ```
    #[must_use]
    pub fn python_compat(mut self) -> Self {
        self.auth_codec = Arc::new(crate::compat::PackifyCodec);
        self.plugins.peer_plugin = Arc::new(crate::compat::PackifyPeerPlugin);
        self.multicast = Some(MulticastConfig::python());
        self.python_errors = true;
        self
    }

    /// How long a request waits for its reply (default 10 s, as in Python).
    #[must_use]
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = crate::tcp::driver::sane(t);
        self
    }

    /// Handlers running at once, replies still being sealed or sent included (default 1024);
    /// datagrams arriving beyond that are dropped and counted ([`UdpStats::overloaded`]).
    #[must_use]
    pub fn max_handlers(mut self, n: usize) -> Self {
        self.max_handlers = n.max(1);
        self
    }

    /// Requests waiting for replies (default 4096).
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Subscriptions in total (default 4096).
    #[must_use]
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Set `SO_REUSEADDR` (and `SO_REUSEPORT` on Unix) so several nodes on one host can share a
    /// port (needed for multicast groups). Default off.
    #[must_use]
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = on;
        self
    }

    /// Join a multicast group (default: off). Enables [`UdpHandle::multicast`], and with
    /// [`peer_management`](Self::peer_management), discovery by multicast adverts. See
    /// [`MulticastConfig`] for the defaults and why.
    #[must_use]
    pub fn multicast(mut self, config: MulticastConfig) -> Self {
        self.multicast = Some(config);
        self
    }

    /// Manage peers automatically (default: off): multicast `ADVERTISE_PEER` every interval (when
    /// a multicast group is joined), answer adverts with a unicast `PEER_DISCOVERED`, record peers
    /// in [`UdpHandle::peers`], expire silent ones, and multicast `DISCONNECT` when the node
    /// stops. Without a [`local_peer`](Self::local_peer), the node gets a random id.
    #[must_use]
    pub fn peer_management(mut self, config: PeerConfig) -> Self {
        self.peer_config = Some(config);
        self
    }

    /// Bind the socket (and join the multicast group, when configured).
    pub async fn bind(self) -> Result<UdpNode, BindError> {
        let addr = self.addr;
        let err = |source| BindError { addr, source };
        let socket = bind_socket(addr, self.reuse_address).map_err(err)?;
        let local_addr = socket.local_addr().map_err(err)?;
        let routes = self.router.into_shared();
        let mut plugins = self.plugins.for_new_node();
        let peers = PeerTable::new();
        let manager = match self.peer_config {
            Some(config) => Some(
                super::peers::install(&routes, &peers, &mut plugins, config)
                    .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?,
            ),
            None => None,
        };
        let multicast = match &self.multicast {
            Some(config) => Some(Multicast::setup(config, &socket, local_addr).map_err(err)?),
            None => None,
        };
        let max_datagram = if local_addr.is_ipv4() {
            MAX_DATAGRAM_V4
        } else {
            MAX_DATAGRAM_V6
        };
        let codec = FrameCodec::with_auth_codec(self.auth_codec).max_frame_size(max_datagram);
        tracing::info!(addr = %local_addr, "udp node bound");
        Ok(UdpNode {
            handle: UdpHandle {
                shared: Arc::new(UdpShared {
                    socket: Arc::new(socket),
                    local_addr,
                    routes,
                    codec,
                    plugins,
                    request_timeout: self.request_timeout,
                    handlers: Arc::new(Semaphore::new(self.max_handlers)),
                    max_in_flight: self.max_in_flight,
                    max_subscriptions: self.max_subscriptions,
                    pending: Mutex::new(HashMap::new()),
                    next_id: AtomicU64::new(1),
                    subs: Mutex::new(Subscriptions::default()),
                    python_errors: self.python_errors,
                    counters: Counters::default(),
                    cancel: CancellationToken::new(),
                    peers,
                    manager,
                    multicast,
                }),
            },
        })
    }
}

fn bind_socket(addr: SocketAddr, reuse: bool) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse {
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

#[derive(Default)]
struct Subscriptions {
    by_key: HashMap<Bytes, HashSet<SocketAddr>>,
    total: usize,
}

struct PendingRequest {
    addr: SocketAddr,
    uri: Bytes,
    inner: Plugins,
    tx: oneshot::Sender<Result<Message, RequestError>>,
}

pub(super) struct UdpShared {
    pub(super) socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    routes: Arc<Routes>,
    codec: FrameCodec,
    pub(super) plugins: NodePlugins,
    request_timeout: Duration,
    handlers: Arc<Semaphore>,
    max_in_flight: usize,
    max_subscriptions: usize,
    pending: Mutex<HashMap<u64, PendingRequest>>,
    next_id: AtomicU64,
    subs: Mutex<Subscriptions>,
    /// Python-compatible mode: the default NOT_FOUND has uri `ERROR`, as Python's UDP node.
    python_errors: bool,
    counters: Counters,
    pub(super) cancel: CancellationToken,
    /// Known peers (filled by peer management, or by [`Context::set_peer`]).
    pub(super) peers: PeerTable,
    /// Peer management, when enabled.
    pub(super) manager: Option<PeerManager>,
    /// The joined multicast group, when configured.
    pub(super) multicast: Option<Multicast>,
}

/// A UDP node: receives datagrams and dispatches them to its router, sends and requests.
///
/// Handlers may be async (unlike on the Python node, where they never run); each runs in its own
/// task unless it completes at once, bounded by [`UdpNodeBuilder::max_handlers`].
#[derive(Debug)]
pub struct UdpNode {
    handle: UdpHandle,
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
    /// [`RequestError::Closed`].
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) {
        let shared = self.handle.shared.clone();
        let background = super::peers::start(&self.handle);
        let mut buf = vec![0u8; 65_536];
        tokio::pin!(signal);
        // Created once, polled for real only until it has registered the task's waker.
        let cancelled = shared.cancel.cancelled();
        tokio::pin!(cancelled);
        let mut cancel_armed = false;
        loop {
            let (len, src) = tokio::select! {
                () = std::future::poll_fn(|cx| {
                    crate::tcp::driver::poll_cancelled(
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
            self.handle.on_datagram(datagram, src, false);
        }
        shared.cancel.cancel();
        super::peers::stop(&self.handle, background).await;
        let drained: Vec<_> = shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in drained {
            let _ = p.tx.send(Err(RequestError::Closed));
        }
        tracing::info!(addr = %shared.local_addr, "udp node stopped");
    }
}

/// A cheap, cloneable handle to a [`UdpNode`]. Handlers reach it through [`Context::udp`].
#[derive(Clone)]
pub struct UdpHandle {
    pub(super) shared: Arc<UdpShared>,
}

impl std::fmt::Debug for UdpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpHandle")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl UdpHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// What the node has received and dropped so far.
    pub fn stats(&self) -> UdpStats {
        let c = &self.shared.counters;
        UdpStats {
            received: c.received.load(Ordering::Relaxed),
            invalid: c.invalid.load(Ordering::Relaxed),
            auth_failed: c.auth_failed.load(Ordering::Relaxed),
            decrypt_failed: c.decrypt_failed.load(Ordering::Relaxed),
            overloaded: c.overloaded.load(Ordering::Relaxed),
            replies: c.replies.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
        }
    }

    /// Stop the node: `serve` returns and waiting requests fail.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// The underlying socket (for socket options such as multicast membership).
    pub fn socket(&self) -> &Arc<UdpSocket> {
        &self.shared.socket
    }

    /// The known peer at `addr`, when plugins will run (they are the only readers).
    fn peer_for(&self, addr: SocketAddr, plugins_run: bool) -> Option<Arc<Peer>> {
        if plugins_run {
            self.shared.peers.by_addr(addr)
        } else {
            None
        }
    }

    fn seals(&self, opts: &SendOptions) -> bool {
        !opts.inner.is_empty() || !self.shared.plugins.outer.is_empty()
    }

    fn prepare(
        &self,
        msg: Message,
        opts: &SendOptions,
        peer: Option<&Peer>,
        addr: SocketAddr,
    ) -> Result<Bytes, SendError> {
        let known = match peer {
            Some(_) => None,
            None => self.peer_for(addr, self.seals(opts)),
        };
        let peer = peer.or(known.as_deref());
        let sealed = self.shared.plugins.seal_now(msg, opts, peer, Some(addr))?;
        Ok(self.shared.codec.to_frame(&sealed)?)
    }

    pub(super) async fn prepare_async(
        &self,
        msg: Message,
        opts: &SendOptions,
        addr: SocketAddr,
    ) -> Result<Bytes, SendError> {
        let peer = self.peer_for(addr, self.seals(opts));
        let sealed = self
            .shared
            .plugins
            .seal(msg, opts, peer.as_deref(), Some(addr))
            .await?;
        Ok(self.shared.codec.to_frame(&sealed)?)
    }

    pub(super) async fn send_bytes(&self, bytes: &[u8], addr: SocketAddr) -> Result<(), SendError> {
        self.shared
            .socket
            .send_to(bytes, addr)
            .await
            .map(|_| ())
            .map_err(|e| SendError::Io(e.to_string()))
    }

    /// Send a message (sealed with the instance plugins) to `addr`. A frame larger than a datagram
    /// can carry is refused with [`SendError::Encode`].
    pub async fn send(&self, msg: &Message, addr: SocketAddr) -> Result<(), SendError> {
        self.send_with(msg, addr, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with inner plugins and the `use_auth` / `use_cipher` switches.
    pub async fn send_with(
        &self,
        msg: &Message,
        addr: SocketAddr,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        let bytes = self.prepare_async(msg.clone(), opts, addr).await?;
        self.send_bytes(&bytes, addr).await
    }

    /// Send to many addresses: sealed once unless a plugin is peer-specific. Returns how many sends
    /// succeeded; failures are logged.
    pub async fn send_many(
        &self,
        msg: &Message,
        addrs: &[SocketAddr],
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let mut n = 0;
        if !opts.is_peer_specific(&self.shared.plugins.outer) {
            let Some(first) = addrs.first() else {
                return Ok(0);
            };
            let bytes = self.prepare_async(msg.clone(), opts, *first).await?;
            for a in addrs {
                match self.send_bytes(&bytes, *a).await {
                    Ok(()) => n += 1,
                    Err(e) => tracing::debug!(addr = %a, error = %e, "udp send failed"),
                }
            }
            return Ok(n);
        }
        for a in addrs {
            let sent = match self.prepare(msg.clone(), opts, None, *a) {
                Ok(bytes) => self.send_bytes(&bytes, *a).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => n += 1,
                Err(e) => tracing::debug!(addr = %a, error = %e, "udp send failed"),
            }
        }
        Ok(n)
    }

    /// Subscribe an address to a key.
    pub fn subscribe(&self, key: impl Into<Bytes>, addr: SocketAddr) -> Result<(), SubscribeError> {
        let key: Bytes = key.into();
        let mut subs = self.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
        if subs.by_key.get(&key).is_some_and(|set| set.contains(&addr)) {
            return Ok(());
        }
        // Refuse before touching the map: a refused key must leave nothing behind.
        let limit = self.shared.max_subscriptions;
        if subs.total >= limit {
            return Err(SubscribeError::Limit(limit));
        }
        // A copy: a key sliced from a datagram would keep the whole datagram alive.
        let key = Bytes::copy_from_slice(&key);
        subs.by_key.entry(key).or_default().insert(addr);
        subs.total += 1;
        Ok(())
    }

    /// Remove a subscription; false if there was none.
    pub fn unsubscribe(&self, key: impl AsRef<[u8]>, addr: SocketAddr) -> bool {
        let mut subs = self.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
        let key = key.as_ref();
        let Some(set) = subs.by_key.get_mut(key) else {
            return false;
        };
        let removed = set.remove(&addr);
        if set.is_empty() {
            subs.by_key.remove(key);
        }
        if removed {
            subs.total -= 1;
        }
        removed
    }

    /// Remove every subscription of an address (for example when a peer leaves).
    pub fn unsubscribe_all(&self, addr: SocketAddr) -> usize {
        let mut subs = self.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        subs.by_key.retain(|_, set| {
            if set.remove(&addr) {
                n += 1;
            }
            !set.is_empty()
        });
        subs.total -= n;
        n
    }

    /// How many keys have subscribers.
    pub fn subscription_keys(&self) -> usize {
        self.shared
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .len()
    }

    /// The addresses subscribed to a key.
    pub fn subscribers(&self, key: impl AsRef<[u8]>) -> Vec<SocketAddr> {
        let subs = self.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = subs
            .by_key
            .get(key.as_ref())
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Send a message to every subscriber of `key` (sealed once unless a plugin is peer-specific).
    pub async fn notify(&self, key: impl AsRef<[u8]>, msg: &Message) -> Result<usize, SendError> {
        let addrs = self.subscribers(key);
        self.send_many(msg, &addrs, &SendOptions::default()).await
    }

    /// Send a message with a fresh request id to `addr` and wait for the reply (within the node's
    /// request timeout). Error replies become typed errors. Only a reply from `addr` is accepted.
    pub async fn call(&self, msg: Message, addr: SocketAddr) -> Result<Message, RequestError> {
        self.call_with(msg, addr, &SendOptions::default()).await
    }

    /// [`call`](Self::call) with inner plugins (the reply is opened with them too), switches and a
    /// timeout.
    pub async fn call_with(
        &self,
        mut msg: Message,
        addr: SocketAddr,
        opts: &SendOptions,
    ) -> Result<Message, RequestError> {
        let timeout = opts.timeout.unwrap_or(self.shared.request_timeout);
        if self.shared.cancel.is_cancelled() {
            return Err(RequestError::Closed);
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        msg.set_request_id(id);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if p.len() >= self.shared.max_in_flight {
                return Err(RequestError::TooManyInFlight(self.shared.max_in_flight));
            }
            p.insert(
                id,
                PendingRequest {
                    addr,
                    uri: msg.uri().clone(),
                    inner: opts.inner.clone(),
                    tx,
                },
            );
        }
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        let exchange = async {
            let bytes = self.prepare_async(msg, opts, addr).await?;
            self.send_bytes(&bytes, addr).await?;
            rx.await.unwrap_or(Err(RequestError::Closed))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(RequestError::Timeout(timeout)),
        }
    }

    /// REQUEST_URI to `addr`; expects RESPOND_URI (or OK).
    pub async fn request(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::REQUEST_URI, uri, content), addr)
            .await
    }

    /// CREATE_URI to `addr`.
    pub async fn create(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::CREATE_URI, uri, content), addr)
            .await
    }

    /// UPDATE_URI to `addr`.
    pub async fn update(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::UPDATE_URI, uri, content), addr)
            .await
    }

    /// DELETE_URI to `addr`.
    pub async fn delete(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(
            Message::new(MessageType::DELETE_URI, uri, Bytes::new()),
            addr,
        )
        .await
    }

    runtime_routes!();

    fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Handle one datagram: decode, instance plugins, reply matching, routing, handler. Never
    /// answers a datagram that failed a check.
    /// Handle one datagram. `via_group`: it arrived on the multicast group's own socket (sent to
    /// the group, not to this node), so it gets no default reply: a datagram no route takes is
    /// dropped instead of answered NOT_FOUND, or one datagram to the group (its source address
    /// possibly spoofed) would make every node in the group answer it.
    pub(super) fn on_datagram(&self, datagram: Bytes, src: SocketAddr, via_group: bool) {
        let shared = &self.shared;
        let c = &shared.counters;
        self.count(&c.received);
        let msg = match Message::decode(datagram, shared.codec.auth_codec()) {
            Ok(m) => m,
            Err(e) => {
                self.count(&c.invalid);
                tracing::debug!(%src, error = %e, "invalid datagram dropped");
                return;
            }
        };
        // The sender's peer, for plugins that need its keys (looked up only when a plugin runs).
        let mut peer = None;
        let msg = if shared.plugins.outer.is_empty() {
            msg
        } else {
            peer = shared.peers.by_addr(src);
            match open_outer(
                msg,
                &shared.plugins.outer,
                &shared.plugins.ctx(peer.as_deref(), Some(src)),
            ) {
                Ok(m) => m,
                Err(crate::plugin::OpenError::Auth {
                    source: crate::plugin::AuthError::Reflected,
                    ..
                }) if via_group => {
                    // This node's own group datagram, looped back to it: expected, not counted.
                    return;
                }
                Err(e) => {
                    let counter = match e {
                        crate::plugin::OpenError::Auth { .. } => &c.auth_failed,
                        _ => &c.decrypt_failed,
                    };
                    self.count(counter);
                    tracing::debug!(%src, error = %e, "datagram refused");
                    return;
                }
            }
        };
        if let Some(id) = msg.reply_ref() {
            self.complete(id, src, msg);
            return;
        }
        if let Some(id) = self.match_by_uri(&msg, src) {
            self.complete(id, src, msg);
            return;
        }
        let Matched {
            handler,
            inner,
            once,
        } = shared.routes.select(msg.message_type, msg.uri(), src);
        let opened = if inner.is_empty() {
            Ok(msg)
        } else {
            if peer.is_none() {
                peer = shared.peers.by_addr(src);
            }
            open_inner(msg, &inner, &shared.plugins.ctx(peer.as_deref(), Some(src)))
        };
        OnceClaim::settle(once, opened.is_ok());
        let msg = match opened {
            Ok(m) => m,
            Err(e) => {
                let counter = match e {
                    crate::plugin::OpenError::Auth { .. } => &c.auth_failed,
                    _ => &c.decrypt_failed,
                };
                self.count(counter);
                tracing::debug!(%src, error = %e, "datagram refused by the handler's plugins");
                return;
            }
        };
        let rid = msg.request_id();
        // One permit per running handler and per reply still being sealed or sent, so that neither
        // can pile up without bound under a flood.
        let Ok(permit) = shared.handlers.clone().try_acquire_owned() else {
            self.count(&c.overloaded);
            tracing::debug!(%src, "too many handlers running: datagram dropped");
            return;
        };
        let Some(handler) = handler else {
            if msg.message_type.is_error() {
                return;
            }
            if via_group {
                tracing::debug!(%src, r#type = %msg.message_type, "no route for a group datagram: dropped, not answered");
                return;
            }
            let reply = if shared.python_errors {
                crate::compat::python_error("not found")
            } else {
                Message::not_found()
            };
            self.reply_now(reply, rid, inner, src, permit);
            return;
        };
        let req = Request {
            message: msg,
            ctx: Context::new(src, Link::Udp(self.clone()), shared.routes.state().clone()),
        };
        let mut fut = handler.call(req);
        // Run the handler inline when it finishes at once (the common case), else in a task. A
        // panicking handler is contained: it must not stop the receive loop (and with it the node).
        let mut cx = std::task::Context::from_waker(Waker::noop());
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Pin::as_mut(&mut fut).poll(&mut cx)
        }));
        match polled {
            Ok(Poll::Ready(reply)) => {
                if let Some(reply) = reply {
                    self.reply_now(reply, rid, inner, src, permit);
                }
            }
            Ok(Poll::Pending) => {
                let this = self.clone();
                // A panic later only ends this task (tokio contains it); the permit is released.
                tokio::spawn(async move {
                    if let Some(reply) = fut.await {
                        this.reply(reply, rid, &inner, src).await;
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                self.count(&c.panicked);
                tracing::error!(%src, "handler panicked; the node goes on serving");
            }
        }
    }

    fn finish_reply(
        &self,
        mut reply: Message,
        rid: Option<u64>,
        inner: &Plugins,
        src: SocketAddr,
    ) -> Option<Bytes> {
        if let Some(id) = rid {
            reply.set_reply_ref(id);
        }
        if inner.is_empty() && self.shared.plugins.outer.is_empty() {
            // Nothing to seal: encode the reply as it is.
            return match self.shared.codec.to_frame(&reply) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(%src, error = %e, "reply cannot be sent");
                    None
                }
            };
        }
        match self.prepare(reply, &SendOptions::new().inner(inner.clone()), None, src) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(%src, error = %e, "reply cannot be sent");
                None
            }
        }
    }

    /// Send a handler's reply, holding `permit` until it is out. Sealing with a CPU-heavy plugin
    /// (proof of work) goes to the blocking pool, never the receive loop; a full socket buffer
    /// defers the send to a task that still holds the permit.
    fn reply_now(
        &self,
        reply: Message,
        rid: Option<u64>,
        inner: Plugins,
        src: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        if inner.is_blocking() || self.shared.plugins.outer.is_blocking() {
            let this = self.clone();
            tokio::spawn(async move {
                this.reply(reply, rid, &inner, src).await;
                drop(permit);
            });
            return;
        }
        let Some(bytes) = self.finish_reply(reply, rid, &inner, src) else {
            return;
        };
        match self.shared.socket.try_send_to(&bytes, src) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let this = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.send_bytes(&bytes, src).await {
                        tracing::debug!(%src, error = %e, "reply send failed");
                    }
                    drop(permit);
                });
            }
            Err(e) => tracing::debug!(%src, error = %e, "reply send failed"),
        }
    }

    async fn reply(&self, mut reply: Message, rid: Option<u64>, inner: &Plugins, src: SocketAddr) {
        if let Some(id) = rid {
            reply.set_reply_ref(id);
        }
        let opts = SendOptions::new().inner(inner.clone());
        let sent = match self.prepare_async(reply, &opts, src).await {
            Ok(bytes) => self.send_bytes(&bytes, src).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::debug!(%src, error = %e, "reply not sent");
        }
    }

    fn match_by_uri(&self, reply: &Message, src: SocketAddr) -> Option<u64> {
        let t = reply.message_type;
        if !(t.is_error() || matches!(t, MessageType::RESPOND_URI | MessageType::OK)) {
            // Not a reply: no need to lock the table of waiting requests.
            return None;
        }
        let p = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.iter()
            .filter(|(_, r)| {
                r.addr == src
                    && r.uri == *reply.uri()
                    && (reply.message_type.is_error()
                        || matches!(
                            reply.message_type,
                            MessageType::RESPOND_URI | MessageType::OK
                        ))
            })
            .map(|(id, _)| *id)
            .min()
    }

    fn complete(&self, id: u64, src: SocketAddr, reply: Message) {
        let p = {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match pending.get(&id) {
                Some(p) if p.addr == src => pending.remove(&id),
                Some(_) => {
                    tracing::debug!(%src, id, "reply from another address than the request's dropped");
                    None
                }
                None => None,
            }
        };
        let Some(p) = p else {
            tracing::debug!(%src, id, "reply for no waiting request dropped");
            return;
        };
        self.count(&self.shared.counters.replies);
        let result = if p.inner.is_empty() {
            RequestError::from_reply(reply)
        } else {
            let peer = self.shared.peers.by_addr(src);
            open_inner(
                reply,
                &p.inner,
                &self.shared.plugins.ctx(peer.as_deref(), Some(src)),
            )
            .map_err(RequestError::from)
            .and_then(RequestError::from_reply)
        };
        let _ = p.tx.send(result);
    }
}

struct PendingGuard<'a> {
    shared: &'a UdpShared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}
