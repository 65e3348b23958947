//! [`TcpServerBuilder`]: a server's own options (the settings every node has are in
//! [`NodeBuilder`], those of its connections in `connection_options.rs`), the memory their
//! defaults bound, and `bind`.

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
use super::connection_options::{ConnectionOptions, TcpKind};
use super::send_queue::ByteBudget;
use super::server::*;
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::node::NodeBuilder;
use crate::node::builder::Subscribers;
use crate::node::peers as peer_management;
use crate::node::requests::{Dedup, Limits, Requests};
use crate::node::subscriptions::{self, SubscriptionLimits, Subscriptions};
use crate::peer::PeerTable;
use crate::plugin::AuthErrorHook;

/// Configures and binds a [`TcpServer`]. Every limit has a default: the settings every node
/// has are [`NodeBuilder`]'s, those of its connections (frame size, deadlines, queues) are
/// shared with [`TcpClientBuilder`](super::TcpClientBuilder), and the server's own are below.
///
/// # Admission
///
/// A connection must present a valid frame (one that passes the instance plugins: with an auth
/// plugin, an authenticated one; with none, any frame that decodes) within
/// [`handshake_timeout`](TcpServerBuilder::handshake_timeout), and is closed after
/// [`max_auth_failures`](TcpServerBuilder::max_auth_failures) refused frames in a row. Only valid traffic
/// postpones the [`idle_timeout`](TcpServerBuilder::idle_timeout). A source (an IPv4 address, an IPv6 /64)
/// holds at most [`max_connections_per_ip`](TcpServerBuilder::max_connections_per_ip) connections. A full
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
/// room), the write backlog at most [`write_backlog`](TcpServerBuilder::write_backlog) plus two frames (a
/// queued message and a reply that cross the mark), the send queue at most
/// [`send_queue_bytes`](TcpServerBuilder::send_queue_bytes) (one larger frame when it is otherwise empty),
/// the subscription keys at most [`max_subscription_bytes`](TcpServerBuilder::max_subscription_bytes), and
/// about 10 KiB for the task and its state. Across connections, the send queues together hold at
/// most [`max_queued_bytes`](TcpServerBuilder::max_queued_bytes) and the subscriptions at most
/// [`max_total_subscriptions`](TcpServerBuilder::max_total_subscriptions) entries (an estimated 300 bytes
/// each) with [`max_total_subscription_bytes`](TcpServerBuilder::max_total_subscription_bytes) of keys.
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
pub type TcpServerBuilder = NodeBuilder<TcpServerOptions>;

/// The options only a TCP server has, in its [`TcpServerBuilder`] (set with the builder's
/// setters).
#[derive(Debug)]
pub struct TcpServerOptions {
    addr: SocketAddr,
    /// Whether to listen on `addr` (not when only a Unix socket is wanted).
    tcp: bool,
    unix: Option<std::path::PathBuf>,
    max_connections: usize,
    max_connections_per_ip: usize,
    handshake_timeout: Option<Duration>,
    max_auth_failures: Option<u32>,
    max_queued_bytes: usize,
    concurrent_requests: usize,
    shutdown_timeout: Duration,
    subscriptions: SubscriptionLimits,
    connection: ConnectionOptions,
    relay: Option<super::Relay>,
}

impl Default for TcpServerOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8888)),
            tcp: true,
            unix: None,
            max_connections: 10_000,
            max_connections_per_ip: 100,
            handshake_timeout: Some(Duration::from_secs(10)),
            max_auth_failures: Some(3),
            max_queued_bytes: 64 << 20,
            concurrent_requests: 1,
            shutdown_timeout: Duration::from_secs(10),
            subscriptions: SubscriptionLimits {
                per_subscriber: 1024,
                total: 1 << 18,
                per_subscriber_bytes: subscriptions::DEFAULT_KEY_BYTES_PER_SUBSCRIBER,
                total_bytes: subscriptions::DEFAULT_TOTAL_KEY_BYTES,
            },
            connection: ConnectionOptions::with_idle_timeout(Some(Duration::from_secs(300))),
            relay: None,
        }
    }
}

impl TcpKind for TcpServerOptions {
    fn connection(&mut self) -> &mut ConnectionOptions {
        &mut self.connection
    }
}

impl Subscribers for TcpServerOptions {
    fn subscription_limits(&mut self) -> &mut SubscriptionLimits {
        &mut self.subscriptions
    }
}

impl TcpServerBuilder {
    /// The address to listen on (default `0.0.0.0:8888`, like Python; IPv6 addresses work).
    #[must_use]
    pub fn address(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.kind.addr = addr.into();
        self
    }

    /// Also listen on a Unix socket at `path`, besides the TCP address, when [`bind`](Self::bind)
    /// is called: one server, one set of connections, handlers and subscriptions for both. See
    /// [`bind_unix`](Self::bind_unix) for what a Unix connection is.
    #[cfg(unix)]
    #[must_use]
    pub fn unix_socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.kind.unix = Some(path.into());
        self
    }

    /// Connections served at once (default 10,000). A new connection on a full server evicts
    /// the oldest connection that has not authenticated yet, else the one idle the longest (see
    /// [Admission](TcpServerBuilder#admission)).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.kind.max_connections = n;
        self
    }

    /// Connections from one source at once (default 100, 1% of the default `max_connections`):
    /// an IPv4 address, or an IPv6 /64 prefix (one host usually holds a whole /64). A new
    /// connection from a source at its limit evicts that source's oldest unauthenticated
    /// connection, or is closed at once when all of them have authenticated. Raise it for
    /// clients behind one NAT or proxy.
    #[must_use]
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.kind.max_connections_per_ip = n;
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
        self.kind.handshake_timeout = t.map(crate::node::sane);
        self
    }

    /// Refused frames in a row that close a connection (default 3; `None`: no limit; at least 1).
    /// A refused frame is one that does not decode or fails the instance plugins (a route's
    /// inner plugins refusing a frame that passed them does not count); a valid frame starts
    /// the count again. The last refusal is still answered, then the connection closes
    /// ([`CloseReason::AuthFailures`](crate::tcp::CloseReason::AuthFailures)).
    #[must_use]
    pub fn max_auth_failures(mut self, n: Option<u32>) -> Self {
        self.kind.max_auth_failures = n.map(|n| n.max(1));
        self
    }

    /// Bytes queued in all connections' send queues together (default 64 MiB, at least one
    /// frame). Beyond, queuing for any connection waits (`send`), fails with
    /// [`SendError::NodeQueueFull`](crate::SendError::NodeQueueFull) (`try_send`) or skips it
    /// (a fan-out).
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.kind.max_queued_bytes = bytes;
        self
    }

    /// How many handlers of one connection may run at once (default 1: a connection's requests
    /// are handled in order, one at a time, as Python netaio does). Above 1, a request that
    /// carries a request id (every native caller's) runs in a task of its own and its reply,
    /// which carries the id as its reference, goes out as soon as it is ready, so a slow request
    /// no longer holds up the ones behind it on its connection (a hedging caller then stops
    /// hedging the requests that queued behind a stalled one). Requests without an id (Python
    /// peers, which match replies by uri) are still handled in order; with `n` handlers running,
    /// the next one runs in line. Handlers still running when their connection closes are
    /// cancelled.
    #[must_use]
    pub fn concurrent_requests(mut self, n: usize) -> Self {
        self.kind.concurrent_requests = n.max(1);
        self
    }

    /// How long a graceful shutdown waits for in-flight handlers before aborting them (default 10 s).
    #[must_use]
    pub fn shutdown_timeout(mut self, t: Duration) -> Self {
        self.kind.shutdown_timeout = crate::node::sane(t);
        self
    }

    /// Decide the reply to a message that failed an auth check (default:
    /// [`default_auth_error_reply`](crate::plugin::default_auth_error_reply)).
    #[must_use]
    pub fn auth_error_hook(mut self, hook: AuthErrorHook) -> Self {
        self.plugins.auth_error = hook;
        self
    }

    /// Serve a relay (opt-in): peers reserve their id on their connection to this server and
    /// are reached through it by id. Takes a [`RelayConfig`](crate::relay::RelayConfig), or a
    /// [`Relay`](crate::relay::Relay) (keep a clone of it for its stats, or to give it a
    /// reservation check). Its routes join the router's when the server is bound, whatever the
    /// order of this call and [`router`](Self::router); a router that has its own routes for the
    /// relay's message types makes `bind` fail ([`BindError::Route`]). A second call replaces
    /// the first.
    ///
    /// ```no_run
    /// use netaio::TcpServer;
    /// use netaio::relay::RelayConfig;
    ///
    /// # async fn run() -> Result<(), netaio::BindError> {
    /// let server = TcpServer::builder()
    ///     .address(([0, 0, 0, 0], 9100))
    ///     .relay(RelayConfig::default().max_reservations(1024))
    ///     .bind()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn relay(mut self, relay: impl Into<super::Relay>) -> Self {
        self.kind.relay = Some(relay.into());
        self
    }

    /// Bind the listening socket (and the Unix socket of [`unix_socket`](Self::unix_socket)).
    pub async fn bind(mut self) -> Result<TcpServer, BindError> {
        if let Some(relay) = self.kind.relay.take() {
            self.router = self.router.try_merge(relay.router())?;
        }
        // A programming error: found before anything is bound.
        self.router.check_state()?;
        let kind = self.kind;
        let conn = kind.connection;
        #[cfg(unix)]
        let unix = match &kind.unix {
            Some(path) => Some(super::unix::bind(path).await?),
            None => None,
        };
        let listener = if kind.tcp {
            Some(
                TcpListener::bind(kind.addr)
                    .await
                    .map_err(|source| BindError::Io {
                        addr: kind.addr,
                        source,
                    })?,
            )
        } else {
            None
        };
        let local_addr = match &listener {
            Some(l) => l.local_addr().map_err(|source| BindError::Io {
                addr: kind.addr,
                source,
            })?,
            // Only a Unix socket: an address in the Unix peers' prefix (see `unix_peer.rs`).
            None => super::unix_peer::peer_addr(None, 0),
        };
        let (events, _) = broadcast::channel(256);
        let codec =
            FrameCodec::with_auth_codec(self.auth_codec).max_frame_size(conn.max_frame_size);
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
            driver: conn.driver(kind.handshake_timeout, kind.max_auth_failures, false),
            registry: Mutex::new(Registry {
                conns: HashMap::new(),
                subs: Subscriptions::new(kind.subscriptions),
                admission: Admission::new(kind.max_connections, kind.max_connections_per_ip),
            }),
            requests: Requests::new(
                Limits {
                    total: self.max_in_flight.saturating_mul(4),
                    per_peer: self.max_in_flight,
                },
                self.matching,
                self.request_timeout,
                &self.requests,
            ),
            dedup: Dedup::new(self.requests.dedup),
            events,
            cancel: CancellationToken::new(),
            next_id: AtomicU64::new(1),
            local_addr,
            unix_path: kind.unix,
            send_queue: conn.send_queue,
            send_queue_bytes: conn.send_queue_bytes,
            // Any frame the server may send must fit the budget of all queues.
            queued: Arc::new(ByteBudget::new(
                kind.max_queued_bytes.max(conn.max_frame_size),
            )),
            epoch: tokio::time::Instant::now(),
            counters: Counters::default(),
            shutdown_timeout: kind.shutdown_timeout,
            concurrent_requests: kind.concurrent_requests,
            refusals: Mutex::default(),
            plugins,
            peers,
        });
        tracing::info!(addr = %local_addr, unix = ?shared.unix_path, "listening");
        Ok(TcpServer {
            listener: Listeners {
                tcp: listener,
                #[cfg(unix)]
                unix,
            },
            handle: ServerHandle { shared },
        })
    }

    /// Bind a Unix socket at `path`, and no TCP address: a server for the processes of this
    /// machine, with all a TCP server has (handlers, subscriptions, deadlines, plugins).
    ///
    /// A socket file already at `path` that nobody listens on (left by a server that did not end
    /// cleanly) is replaced; one a server still listens on is
    /// [`BindError::Unix`](crate::BindError::Unix) with `AddrInUse`, and any other file is left
    /// alone (`AlreadyExists`). The file is removed when the server ends (unless another server
    /// has taken the path since). Its mode is the process's umask's: set it after binding (with
    /// `std::fs::set_permissions`, before serving) to say who may connect.
    ///
    /// Each connection's peer process is known by its credentials
    /// ([`ServerHandle::peer_credentials`]); where the API names a peer by address, a Unix peer
    /// has one in `100::/64` that carries its uid ([`unix_peer_uid`](crate::tcp::unix_peer_uid)),
    /// so the per-source limit ([`max_connections_per_ip`](Self::max_connections_per_ip)) counts
    /// the connections of one uid. [`local_addr`](TcpServer::local_addr) is `[100::ffff:ffff]:0`.
    ///
    /// ```
    /// use netaio::{Message, MessageType, Router, TcpClient, TcpServer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("netaio-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("echo.sock");
    /// let router = Router::new().on((MessageType::REQUEST_URI, "echo"), |m: Message| async move {
    ///     Message::respond(m.uri().clone(), m.content().clone())
    /// });
    /// let server = TcpServer::builder().router(router).bind_unix(&path).await?;
    /// let handle = server.handle();
    /// tokio::spawn(server.serve());
    ///
    /// let conn = TcpClient::new().connect_unix(&path).await?;
    /// assert_eq!(conn.request("echo", "hi").await?.content().as_ref(), b"hi");
    /// conn.close().await;
    /// handle.shutdown();
    /// # Ok(()) }
    /// ```
    #[cfg(unix)]
    pub async fn bind_unix(
        mut self,
        path: impl Into<std::path::PathBuf>,
    ) -> Result<TcpServer, BindError> {
        self.kind.tcp = false;
        self.kind.unix = Some(path.into());
        self.bind().await
    }
}
