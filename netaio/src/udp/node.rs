//! [`UdpNode`]: bind, receive datagrams, dispatch them, send, request with ids and timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::multicast::{Multicast, MulticastConfig};
use super::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};
use crate::codec::FrameCodec;
use crate::error::{BindError, RequestError, SendError, SubscribeError};
use crate::message::{AuthFieldsCodec, PostcardCodec};
use crate::node::outbound::{self, Recipient};
use crate::node::peers::{self as peer_management, PeerManager};
use crate::node::requests::{self, Correlated, Limits, Matching, Requests};
use crate::node::subscriptions::{SubscriptionLimits, Subscriptions};
use crate::peer::{Peer, PeerConfig, PeerTable};
use crate::plugin::{NodePlugins, Plugins, SendOptions, open_inner, open_outer};
use crate::router::{Context, Matched, NodeOps, OnceClaim, PeerLink, Request, Router, Routes};
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
    max_total_subscriptions: usize,
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
            max_subscriptions: 1024,
            max_total_subscriptions: 4096,
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

    /// The handlers (default: an empty router).
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

    /// Python-compatible mode (default off), for Python 0.0.9 nodes: the auth block as Python's
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
        self.request_timeout = crate::node::sane(t);
        self
    }

    /// Handlers running at once, replies still being sealed or sent included (default 1024);
    /// datagrams arriving beyond that are dropped and counted ([`UdpStats::overloaded`]).
    #[must_use]
    pub fn max_handlers(mut self, n: usize) -> Self {
        self.max_handlers = n.max(1);
        self
    }

    /// Requests waiting for replies (default 4096), in total and per peer address.
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Subscriptions per subscriber address (default 1024); beyond, `subscribe` fails with
    /// [`SubscribeError::Limit`].
    #[must_use]
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Subscriptions in total (default 4096); beyond, `subscribe` fails with
    /// [`SubscribeError::NodeLimit`].
    #[must_use]
    pub fn max_total_subscriptions(mut self, n: usize) -> Self {
        self.max_total_subscriptions = n;
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
        let err = |source| BindError::Io { addr, source };
        let socket = bind_socket(addr, self.reuse_address).map_err(err)?;
        let local_addr = socket.local_addr().map_err(err)?;
        let routes = self.router.into_shared();
        let mut plugins = self.plugins.for_new_node();
        let peers = PeerTable::new();
        let manager = match self.peer_config {
            Some(config) => Some(peer_management::install(
                &routes,
                &peers,
                &mut plugins,
                config,
                true,
            )?),
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
                    requests: Requests::new(
                        Limits {
                            total: self.max_in_flight,
                            per_peer: self.max_in_flight,
                        },
                        if self.python_errors {
                            Matching::Python
                        } else {
                            Matching::Native
                        },
                    ),
                    subs: Mutex::new(Subscriptions::new(SubscriptionLimits {
                        per_subscriber: self.max_subscriptions,
                        total: self.max_total_subscriptions,
                    })),
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

pub(super) struct UdpShared {
    pub(super) socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    routes: Arc<Routes>,
    codec: FrameCodec,
    pub(super) plugins: NodePlugins,
    request_timeout: Duration,
    handlers: Arc<Semaphore>,
    requests: Requests<SocketAddr>,
    subs: Mutex<Subscriptions<SocketAddr>>,
    /// Python-compatible mode: the default NOT_FOUND has uri `ERROR`, as Python's UDP node.
    python_errors: bool,
    counters: Counters,
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
            self.handle.on_datagram(datagram, src, false, &ops);
        }
        shared.cancel.cancel();
        super::peers::stop(&self.handle, background).await;
        shared.requests.with(|t| t.fail_all(true));
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

    pub(super) async fn prepare_async(
        &self,
        msg: Message,
        opts: &SendOptions,
        addr: SocketAddr,
    ) -> Result<Bytes, SendError> {
        let peer = self.peer_for(addr, self.seals(opts));
        let shared = &self.shared;
        outbound::seal(
            &shared.plugins,
            &shared.codec,
            msg,
            opts,
            peer.as_deref(),
            Some(addr),
        )
        .await
    }

    pub(super) async fn send_bytes(&self, bytes: &[u8], addr: SocketAddr) -> Result<(), SendError> {
        self.shared.socket.send_to(bytes, addr).await?;
        Ok(())
    }

    /// Send a message (sealed with the instance plugins) to `addr`. A frame larger than a datagram
    /// can carry is refused with [`SendError::Encode`].
    pub async fn send(&self, addr: SocketAddr, msg: &Message) -> Result<(), SendError> {
        self.send_with(addr, msg, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with inner plugins and the `use_auth` / `use_cipher` switches.
    pub async fn send_with(
        &self,
        addr: SocketAddr,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        let bytes = self.prepare_async(msg.clone(), opts, addr).await?;
        self.send_bytes(&bytes, addr).await
    }

    /// Send to many addresses: sealed once unless a plugin is peer-specific. Returns how many sends
    /// succeeded; failures are logged.
    pub async fn send_many(
        &self,
        addrs: &[SocketAddr],
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let plugins_run = self.seals(opts);
        let recipients = addrs
            .iter()
            .map(|a| Recipient {
                to: *a,
                addr: *a,
                peer: self.peer_for(*a, plugins_run),
            })
            .collect();
        let shared = &self.shared;
        let frames =
            outbound::seal_each(&shared.plugins, &shared.codec, msg, opts, recipients).await?;
        let mut n = 0;
        for (addr, bytes) in frames {
            match self.send_bytes(&bytes, addr).await {
                Ok(()) => n += 1,
                Err(e) => tracing::debug!(%addr, error = %e, "udp send failed"),
            }
        }
        Ok(n)
    }

    fn subs(&self) -> std::sync::MutexGuard<'_, Subscriptions<SocketAddr>> {
        self.shared.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribe an address to a key.
    pub fn subscribe(&self, addr: SocketAddr, key: impl AsRef<[u8]>) -> Result<(), SubscribeError> {
        self.subs().subscribe(key.as_ref(), addr)
    }

    /// Remove a subscription; false if there was none.
    pub fn unsubscribe(&self, addr: SocketAddr, key: impl AsRef<[u8]>) -> bool {
        self.subs().unsubscribe(key.as_ref(), addr)
    }

    /// Remove every subscription of an address (for example when a peer leaves).
    pub fn unsubscribe_all(&self, addr: SocketAddr) -> usize {
        self.subs().remove_subscriber(addr)
    }

    /// How many keys have subscribers.
    pub fn subscription_keys(&self) -> usize {
        self.subs().key_count()
    }

    /// The addresses subscribed to a key.
    pub fn subscribers(&self, key: impl AsRef<[u8]>) -> Vec<SocketAddr> {
        self.subs().subscribers(key.as_ref())
    }

    /// Send a message to every subscriber of `key` (sealed once unless a plugin is peer-specific).
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
        let addrs = self.subscribers(key);
        self.send_many(&addrs, msg, opts).await
    }

    /// Send a message with a fresh request id to `addr` and wait for the reply (within the node's
    /// request timeout). Error replies become typed errors. Only a reply from `addr` is accepted.
    pub async fn call(&self, addr: SocketAddr, msg: Message) -> Result<Message, RequestError> {
        self.call_with(addr, msg, &SendOptions::default()).await
    }

    /// [`call`](Self::call) with inner plugins (the reply is opened with them too), switches and a
    /// timeout.
    pub async fn call_with(
        &self,
        addr: SocketAddr,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Message, RequestError> {
        if self.shared.cancel.is_cancelled() {
            return Err(RequestError::Closed);
        }
        let timeout = opts.timeout.unwrap_or(self.shared.request_timeout);
        self.shared
            .requests
            .exchange(addr, msg, opts.inner.clone(), timeout, |msg| async move {
                let bytes = self.prepare_async(msg, opts, addr).await?;
                self.send_bytes(&bytes, addr).await
            })
            .await
    }

    /// REQUEST_URI to `addr`; expects RESPOND_URI (or OK).
    pub async fn request(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(addr, Message::new(MessageType::REQUEST_URI, uri, content))
            .await
    }

    /// CREATE_URI to `addr`.
    pub async fn create(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(addr, Message::new(MessageType::CREATE_URI, uri, content))
            .await
    }

    /// UPDATE_URI to `addr`.
    pub async fn update(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(addr, Message::new(MessageType::UPDATE_URI, uri, content))
            .await
    }

    /// DELETE_URI to `addr`.
    pub async fn delete(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(
            addr,
            Message::new(MessageType::DELETE_URI, uri, Bytes::new()),
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
    pub(super) fn on_datagram(
        &self,
        datagram: Bytes,
        src: SocketAddr,
        via_group: bool,
        ops: &Arc<dyn NodeOps>,
    ) {
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
        match shared.requests.correlate(src, &msg) {
            Correlated::NotAReply => {}
            Correlated::Answers(p) => {
                self.count(&c.replies);
                if peer.is_none() && !p.inner().is_empty() {
                    peer = shared.peers.by_addr(src);
                }
                return requests::complete(p, msg, &shared.plugins, peer.as_deref(), src);
            }
            Correlated::Stale => return,
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
            ctx: Context::new(
                PeerLink { addr: src, link: 0 },
                ops.clone(),
                shared.routes.state().clone(),
            ),
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
        let opts = SendOptions::new().inner(inner.clone());
        let peer = self.peer_for(src, true);
        let shared = &self.shared;
        match outbound::seal_now(
            &shared.plugins,
            &shared.codec,
            reply,
            &opts,
            peer.as_deref(),
            Some(src),
        ) {
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
}
