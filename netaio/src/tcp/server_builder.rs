//! [`TcpServerBuilder`]: a server's configuration, with a default for every limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::ServerHandle;
use super::driver::DriverConfig;
use super::server::*;
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::message::{AuthFieldsCodec, MAX_FRAME, PostcardCodec};
use crate::node::peers as peer_management;
use crate::node::requests::{Dedup, Limits, Matching, RequestSettings, Requests};
use crate::node::subscriptions::{SubscriptionLimits, Subscriptions};
use crate::peer::{PeerConfig, PeerTable};
use crate::plugin::{AuthErrorHook, NodePlugins};
use crate::router::Router;

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
    requests: RequestSettings,
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
    /// those calls report [`SendError::QueueFull`](crate::SendError::QueueFull) for that connection.
    #[must_use]
    pub fn send_queue(mut self, n: usize) -> Self {
        self.send_queue = n.max(1);
        self
    }

    /// Subscriptions per connection (default 1024); beyond, `subscribe` fails with
    /// [`SubscribeError::Limit`](crate::SubscribeError::Limit).
    #[must_use]
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Subscriptions of all connections together (default 1,048,576); beyond, `subscribe` fails
    /// with [`SubscribeError::NodeLimit`](crate::SubscribeError::NodeLimit).
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
                self.request_timeout,
                &self.requests,
            ),
            dedup: Dedup::new(self.requests.dedup),
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
    pub fn mount(mut self, service: impl crate::router::IntoService) -> Self {
        self.router = self.router.mount(service);
        self
    }
}
