//! [`TcpClientBuilder`]: a client's configuration, with a default for every limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::*;
use super::driver::DriverConfig;
use super::{Reconnect, TcpClient};
use crate::codec::FrameCodec;
use crate::message::{AuthFieldsCodec, MAX_FRAME, PostcardCodec};
use crate::node::peers as peer_management;
use crate::node::requests::{Matching, RequestSettings};
use crate::peer::{PeerConfig, PeerTable};
use crate::plugin::NodePlugins;
use crate::router::Router;

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
    send_queue_bytes: usize,
    write_backlog: usize,
    max_in_flight: usize,
    inbox: usize,
    inbox_bytes: usize,
    reconnect: Option<Reconnect>,
    plugins: NodePlugins,
    /// How replies are matched to requests (the Python profile, `compat`, sets Python's rule for
    /// error replies without a reply reference).
    pub(crate) matching: Matching,
    peer_config: Option<PeerConfig>,
    requests: RequestSettings,
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
            send_queue_bytes: 256 * 1024,
            write_backlog: 64 * 1024,
            max_in_flight: 4096,
            inbox: 1024,
            inbox_bytes: 1 << 20,
            reconnect: None,
            plugins: NodePlugins::default(),
            matching: Matching::Native,
            peer_config: None,
            requests: RequestSettings::default(),
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

    /// Bytes queued per connection before `send` (and a request) waits and `try_send` is
    /// [`SendError::QueueFull`](crate::SendError::QueueFull) (default 256 KiB; a larger frame is
    /// queued when the queue is otherwise empty).
    #[must_use]
    pub fn send_queue_bytes(mut self, bytes: usize) -> Self {
        self.send_queue_bytes = bytes;
        self
    }

    /// A connection's write backlog above which it stops reading and taking queued messages
    /// until the server reads (default 64 KiB, at least 1 KiB); it reaches at most this plus two
    /// frames.
    #[must_use]
    pub fn write_backlog(mut self, bytes: usize) -> Self {
        self.write_backlog = bytes.max(1024);
        self
    }

    /// Requests waiting for replies per connection (default 4096).
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Messages kept for [`Connection::receive_once`](crate::Connection::receive_once) (default 1024); when full, new ones are dropped
    /// and logged.
    #[must_use]
    pub fn inbox(mut self, n: usize) -> Self {
        self.inbox = n.max(1);
        self
    }

    /// Bytes of uri and content kept for
    /// [`Connection::receive_once`](crate::Connection::receive_once), per connection (default
    /// 1 MiB; a larger message is kept when the inbox is otherwise empty); beyond, new messages
    /// are dropped and logged.
    #[must_use]
    pub fn inbox_bytes(mut self, bytes: usize) -> Self {
        self.inbox_bytes = bytes;
        self
    }

    /// Reconnect after the connection drops (default: off).
    #[must_use]
    pub fn reconnect(mut self, policy: Option<Reconnect>) -> Self {
        self.reconnect = policy;
        self
    }

    plugin_setters!();

    request_setters!();

    /// Manage peers (default: off): [`TcpClient::connect`] (and every reconnect) sends
    /// `ADVERTISE_PEER` and records the server from its `PEER_DISCOVERED` answer in
    /// [`TcpClient::peers`] and on the connection (plugins then see it);
    /// [`Connection::close`](crate::Connection::close) sends `DISCONNECT` first. Without a
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
        if let Err(e) = self.router.check_state() {
            // `build` cannot fail: the error is logged, and the handler answers ERROR
            // `missing state` when it is called.
            tracing::error!(error = %e, "client router");
        }
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
                    // A client opened the connection itself: no handshake, no refusal limit.
                    handshake_timeout: None,
                    max_auth_failures: None,
                    write_high_water: self.write_backlog,
                },
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
                send_queue: self.send_queue,
                send_queue_bytes: self.send_queue_bytes,
                max_in_flight: self.max_in_flight,
                inbox: self.inbox,
                inbox_bytes: self.inbox_bytes,
                reconnect: self.reconnect,
                plugins,
                matching: self.matching,
                requests: self.requests,
                conns: Mutex::new(HashMap::new()),
                refusals: Mutex::default(),
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
    pub fn mount(mut self, service: impl crate::router::IntoService) -> Self {
        self.router = self.router.mount(service);
        self
    }
}
