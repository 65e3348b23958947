//! [`TcpServerBuilder`]: a server's configuration, with a default for every limit, and the
//! memory those defaults bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::ServerHandle;
use super::admission::Admission;
use super::driver::DriverConfig;
use super::send_queue::ByteBudget;
use super::server::*;
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::message::{AuthFieldsCodec, MAX_FRAME, PostcardCodec};
use crate::node::peers as peer_management;
use crate::node::requests::{Dedup, Limits, Matching, RequestSettings, Requests};
use crate::node::subscriptions::{self, SubscriptionLimits, Subscriptions};
use crate::peer::{PeerConfig, PeerTable};
use crate::plugin::{AuthErrorHook, NodePlugins};
use crate::router::Router;

/// Configures and binds a [`TcpServer`]. Every limit has a default.
///
/// # Admission
///
/// A connection must present a valid frame (one that passes the instance plugins: with an auth
/// plugin, an authenticated one; with none, any frame that decodes) within
/// [`handshake_timeout`](Self::handshake_timeout), and is closed after
/// [`max_auth_failures`](Self::max_auth_failures) refused frames in a row. Only valid traffic
/// postpones the [`idle_timeout`](Self::idle_timeout). A source (an IPv4 address, an IPv6 /64)
/// holds at most [`max_connections_per_ip`](Self::max_connections_per_ip) connections. A full
/// server does not refuse a new connection: it evicts the oldest connection that has not
/// authenticated yet, or, when all have, the one idle the longest
/// ([`CloseReason::Evicted`](crate::tcp::CloseReason::Evicted)); a source at its limit evicts its
/// own oldest unauthenticated connection, and is refused when all of its connections are
/// authenticated.
///
/// # Memory
///
/// Everything a peer can make the server hold is bounded in count and in bytes. Per connection:
/// the read buffer holds at most one frame being received (`max_frame_size` plus 16 KiB of read
/// room), the write backlog at most [`write_backlog`](Self::write_backlog) plus two frames (a
/// queued message and a reply that cross the mark), the send queue at most
/// [`send_queue_bytes`](Self::send_queue_bytes) (one larger frame when it is otherwise empty),
/// the subscription keys at most [`max_subscription_bytes`](Self::max_subscription_bytes), and
/// about 10 KiB for the task and its state. Across connections, the send queues together hold at
/// most [`max_queued_bytes`](Self::max_queued_bytes) and the subscriptions at most
/// [`max_total_subscriptions`](Self::max_total_subscriptions) entries (an estimated 300 bytes
/// each) with [`max_total_subscription_bytes`](Self::max_total_subscription_bytes) of keys.
///
/// At the defaults (frames of up to 130,968 bytes, 128 KiB), a connection holds at most
/// 128 + 16 + (64 + 2 × 128) + 10 = 474 KiB besides its queue and keys, so a server with all
/// 10,000 connections receiving a largest frame and holding a full backlog at once holds at most
/// about 4.5 GiB, plus 64 MiB of send queues, 16 MiB of subscription keys and about 75 MiB of
/// subscription entries: **about 4.7 GiB in the worst case**. Buffers grow by doubling, so
/// their allocations can reach up to twice what they hold. An idle connection costs about
/// 10 KiB. To bound a server lower, lower `max_connections` or `max_frame_size` (the largest
/// share: three frames per connection).
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
    max_connections_per_ip: usize,
    max_frame_size: usize,
    read_timeout: Duration,
    idle_timeout: Option<Duration>,
    write_timeout: Duration,
    handshake_timeout: Option<Duration>,
    max_auth_failures: Option<u32>,
    write_backlog: usize,
    send_queue: usize,
    send_queue_bytes: usize,
    max_queued_bytes: usize,
    max_subscriptions: usize,
    max_total_subscriptions: usize,
    max_subscription_bytes: usize,
    max_total_subscription_bytes: usize,
    request_timeout: Duration,
    max_in_flight: usize,
    shutdown_timeout: Duration,
    plugins: NodePlugins,
    peer_config: Option<PeerConfig>,
    requests: RequestSettings,
}

impl Default for TcpServerBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8888)),
            router: Router::new(),
            auth_codec: Arc::new(PostcardCodec),
            max_connections: 10_000,
            max_connections_per_ip: 100,
            max_frame_size: MAX_FRAME,
            read_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            write_timeout: Duration::from_secs(30),
            handshake_timeout: Some(Duration::from_secs(10)),
            max_auth_failures: Some(3),
            write_backlog: 64 * 1024,
            send_queue: 1024,
            send_queue_bytes: 256 * 1024,
            max_queued_bytes: 64 << 20,
            max_subscriptions: 1024,
            max_total_subscriptions: 1 << 18,
            max_subscription_bytes: subscriptions::DEFAULT_KEY_BYTES_PER_SUBSCRIBER,
            max_total_subscription_bytes: subscriptions::DEFAULT_TOTAL_KEY_BYTES,
            request_timeout: Duration::from_secs(10),
            max_in_flight: 4096,
            shutdown_timeout: Duration::from_secs(10),
            plugins: NodePlugins::default(),
            peer_config: None,
            requests: RequestSettings::default(),
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

    /// Connections served at once (default 10,000). A new connection on a full server evicts
    /// the oldest connection that has not authenticated yet, else the one idle the longest (see
    /// [Admission](Self#admission)).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Connections from one source at once (default 100, 1% of the default `max_connections`):
    /// an IPv4 address, or an IPv6 /64 prefix (one host usually holds a whole /64). A new
    /// connection from a source at its limit evicts that source's oldest unauthenticated
    /// connection, or is closed at once when all of them have authenticated. Raise it for
    /// clients behind one NAT or proxy.
    #[must_use]
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.max_connections_per_ip = n;
        self
    }

    /// How long a new connection has to present a valid frame (default 10 s; `None`: no limit).
    /// Valid means it passed the instance plugins (with an auth plugin, it is authenticated);
    /// with no instance plugin, any frame that decodes. A connection without one is closed
    /// ([`CloseReason::HandshakeTimeout`](crate::tcp::CloseReason::HandshakeTimeout)), so a
    /// peer without the key cannot hold a slot. A client that connects only to listen must send
    /// something first (a subscription, an advert) or be closed.
    #[must_use]
    pub fn handshake_timeout(mut self, t: Option<Duration>) -> Self {
        self.handshake_timeout = t.map(crate::node::sane);
        self
    }

    /// Refused frames in a row that close a connection (default 3; `None`: no limit; at least 1).
    /// A refused frame is one that does not decode or fails the instance plugins (a route's
    /// inner plugins refusing a frame that passed them does not count); a valid frame starts
    /// the count again. The last refusal is still answered, then the connection closes
    /// ([`CloseReason::AuthFailures`](crate::tcp::CloseReason::AuthFailures)).
    #[must_use]
    pub fn max_auth_failures(mut self, n: Option<u32>) -> Self {
        self.max_auth_failures = n.map(|n| n.max(1));
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

    /// Close connections with no valid traffic for this long (default 300 s; `None` keeps them).
    /// Valid traffic is a frame that passed the instance plugins, or a message of the server's
    /// own (`send`, `notify`, …) taken from the connection's queue; refused frames, garbage and
    /// the error replies to them do not postpone it.
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
    /// those calls report [`SendError::QueueFull`](crate::SendError::QueueFull) for that connection.
    #[must_use]
    pub fn send_queue(mut self, n: usize) -> Self {
        self.send_queue = n.max(1);
        self
    }

    /// Bytes queued per connection for `send`, `broadcast` and `notify` (default 256 KiB; a
    /// larger frame is queued when the queue is otherwise empty). Beyond, `send` waits,
    /// `try_send` is [`SendError::QueueFull`](crate::SendError::QueueFull), and a fan-out skips
    /// the connection (a slow reader loses messages rather than growing the server; one that
    /// does not read at all is closed by the write timeout).
    #[must_use]
    pub fn send_queue_bytes(mut self, bytes: usize) -> Self {
        self.send_queue_bytes = bytes;
        self
    }

    /// Bytes queued in all connections' send queues together (default 64 MiB, at least one
    /// frame). Beyond, queuing for any connection waits (`send`), fails with
    /// [`SendError::NodeQueueFull`](crate::SendError::NodeQueueFull) (`try_send`) or skips it
    /// (a fan-out).
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// A connection's write backlog (replies and queued messages not yet taken by the socket)
    /// above which it stops reading frames and taking queued messages until the peer reads
    /// (default 64 KiB, at least 1 KiB). The backlog reaches at most this plus two frames.
    #[must_use]
    pub fn write_backlog(mut self, bytes: usize) -> Self {
        self.write_backlog = bytes.max(1024);
        self
    }

    /// Subscriptions per connection (default 1024); beyond, `subscribe` fails with
    /// [`SubscribeError::Limit`](crate::SubscribeError::Limit).
    #[must_use]
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Subscriptions of all connections together (default 262,144); beyond, `subscribe` fails
    /// with [`SubscribeError::NodeLimit`](crate::SubscribeError::NodeLimit).
    #[must_use]
    pub fn max_total_subscriptions(mut self, n: usize) -> Self {
        self.max_total_subscriptions = n;
        self
    }

    /// Key bytes per connection: the sum of the lengths of its subscription keys (default
    /// 64 KiB); beyond (a single longer key included), `subscribe` fails with
    /// [`SubscribeError::KeyBytes`](crate::SubscribeError::KeyBytes).
    #[must_use]
    pub fn max_subscription_bytes(mut self, bytes: usize) -> Self {
        self.max_subscription_bytes = bytes;
        self
    }

    /// Key bytes of all subscriptions together, each subscription counting its key (default
    /// 16 MiB); beyond, `subscribe` fails with
    /// [`SubscribeError::NodeKeyBytes`](crate::SubscribeError::NodeKeyBytes).
    #[must_use]
    pub fn max_total_subscription_bytes(mut self, bytes: usize) -> Self {
        self.max_total_subscription_bytes = bytes;
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

    request_setters!();

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
        // A programming error: found before anything is bound.
        self.router.check_state()?;
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
                handshake_timeout: self.handshake_timeout,
                max_auth_failures: self.max_auth_failures,
                write_high_water: self.write_backlog,
            },
            registry: Mutex::new(Registry {
                conns: HashMap::new(),
                subs: Subscriptions::new(SubscriptionLimits {
                    per_subscriber: self.max_subscriptions,
                    total: self.max_total_subscriptions,
                    per_subscriber_bytes: self.max_subscription_bytes,
                    total_bytes: self.max_total_subscription_bytes,
                }),
                admission: Admission::new(self.max_connections, self.max_connections_per_ip),
            }),
            requests: Requests::new(
                Limits {
                    total: self.max_in_flight.saturating_mul(4),
                    per_peer: self.max_in_flight,
                },
                Matching::Native,
                self.request_timeout,
                &self.requests,
            ),
            dedup: Dedup::new(self.requests.dedup),
            events,
            cancel: CancellationToken::new(),
            next_id: AtomicU64::new(1),
            local_addr,
            send_queue: self.send_queue,
            send_queue_bytes: self.send_queue_bytes,
            // Any frame the server may send must fit the budget of all queues.
            queued: Arc::new(ByteBudget::new(
                self.max_queued_bytes.max(self.max_frame_size),
            )),
            epoch: tokio::time::Instant::now(),
            counters: Counters::default(),
            refusals: Mutex::default(),
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
    pub fn mount(mut self, service: impl crate::router::IntoService) -> Self {
        self.router = self.router.mount(service);
        self
    }
}
