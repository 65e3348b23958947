//! [`TcpClientBuilder`]: a client's own options (the settings every node has are in
//! [`NodeBuilder`], those of its connections in `connection_options.rs`), and `build`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::*;
use super::connection_options::{ConnectionOptions, TcpKind};
use super::{Reconnect, TcpClient};
use crate::codec::FrameCodec;
use crate::node::NodeBuilder;
use crate::node::peers as peer_management;
use crate::peer::PeerTable;

/// Configures a [`TcpClient`]. Every limit has a default: the settings every node has are
/// [`NodeBuilder`]'s, those of its connections (frame size, deadlines, queues) are shared with
/// [`TcpServerBuilder`](super::TcpServerBuilder), and the client's own are below.
pub type TcpClientBuilder = NodeBuilder<TcpClientOptions>;

/// The options only a TCP client has, in its [`TcpClientBuilder`] (set with the builder's
/// setters).
#[derive(Debug)]
pub struct TcpClientOptions {
    connect_timeout: Duration,
    inbox: usize,
    inbox_bytes: usize,
    reconnect: Option<Reconnect>,
    connection: ConnectionOptions,
}

impl Default for TcpClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            inbox: 1024,
            inbox_bytes: 1 << 20,
            reconnect: None,
            connection: ConnectionOptions::with_idle_timeout(None),
        }
    }
}

impl TcpKind for TcpClientOptions {
    fn connection(&mut self) -> &mut ConnectionOptions {
        &mut self.connection
    }
}

impl TcpClientBuilder {
    /// How long `connect` waits (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.kind.connect_timeout = crate::node::sane(t);
        self
    }

    /// Messages kept for [`Connection::receive_once`](crate::Connection::receive_once) (default 1024); when full, new ones are dropped
    /// and logged.
    #[must_use]
    pub fn inbox(mut self, n: usize) -> Self {
        self.kind.inbox = n.max(1);
        self
    }

    /// Bytes of uri and content kept for
    /// [`Connection::receive_once`](crate::Connection::receive_once), per connection (default
    /// 1 MiB; a larger message is kept when the inbox is otherwise empty); beyond, new messages
    /// are dropped and logged.
    #[must_use]
    pub fn inbox_bytes(mut self, bytes: usize) -> Self {
        self.kind.inbox_bytes = bytes;
        self
    }

    /// Reconnect after the connection drops (default: off).
    #[must_use]
    pub fn reconnect(mut self, policy: Option<Reconnect>) -> Self {
        self.kind.reconnect = policy;
        self
    }

    /// The client.
    ///
    /// A handler of the router that takes [`State<T>`](crate::router::State) for a `T` never
    /// added with [`Router::with_state`](crate::Router::with_state) makes every
    /// [`TcpClient::connect`] fail with [`ConnectError::MissingState`](crate::ConnectError::MissingState)
    /// (`build` cannot fail; `connect` is the client's first fallible call).
    ///
    /// With [`peer_management`](Self::peer_management), a route of the router at a
    /// peer-management key (`(ADVERTISE_PEER, app id)`, …) is kept and peer management's own
    /// handler for it is not installed (logged as a warning).
    pub fn build(self) -> TcpClient {
        // `build` cannot fail: the error is kept for `connect` to return, so that it shows
        // before the first message rather than as an ERROR reply to it.
        let missing_state = self.router.check_state().err();
        let kind = self.kind;
        let conn = kind.connection;
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
                missing_state,
                codec: FrameCodec::with_auth_codec(self.auth_codec)
                    .max_frame_size(conn.max_frame_size),
                // A client opened the connection itself: no handshake, no refusal limit.
                driver: conn.driver(None, None, true),
                connect_timeout: kind.connect_timeout,
                request_timeout: self.request_timeout,
                send_queue: conn.send_queue,
                send_queue_bytes: conn.send_queue_bytes,
                max_in_flight: self.max_in_flight,
                inbox: kind.inbox,
                inbox_bytes: kind.inbox_bytes,
                reconnect: kind.reconnect,
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
}
