//! [`NodeBuilder`]: the configuration every node kind shares (router, plugins, request settings,
//! peer management), with its setters written once. Each transport's builder is a
//! `NodeBuilder` of its own options ([`TcpServerBuilder`](crate::tcp::TcpServerBuilder),
//! [`TcpClientBuilder`](crate::tcp::TcpClientBuilder), [`UdpNodeBuilder`](crate::udp::UdpNodeBuilder))
//! and adds the setters only it has, and `bind` or `build`.

use std::sync::Arc;
use std::time::Duration;

use super::requests::{Matching, RequestSettings};
use super::subscriptions::SubscriptionLimits;
use crate::message::{AuthFieldsCodec, PostcardCodec};
use crate::node::requests::{AdaptiveTimeouts, DedupConfig, LateReplyConfig};
use crate::peer::{Peer, PeerConfig};
use crate::plugin::{AuthPlugin, CipherPlugin, NodePlugins, PeerPlugin};
use crate::router::{IntoService, Router};

/// Configures a node: the settings every kind of node has, and the kind's own options `K`
/// ([`TcpServerOptions`](crate::tcp::TcpServerOptions),
/// [`TcpClientOptions`](crate::tcp::TcpClientOptions),
/// [`UdpNodeOptions`](crate::udp::UdpNodeOptions)). Every setting has a default.
///
/// Use it through its aliases, [`TcpServerBuilder`](crate::tcp::TcpServerBuilder) (from
/// [`TcpServer::builder`](crate::TcpServer::builder)),
/// [`TcpClientBuilder`](crate::tcp::TcpClientBuilder) (from
/// [`TcpClient::builder`](crate::TcpClient::builder)) and
/// [`UdpNodeBuilder`](crate::udp::UdpNodeBuilder) (from
/// [`UdpNode::builder`](crate::UdpNode::builder)): the setters below are on all three, each
/// alias adds its kind's own.
#[derive(Debug)]
pub struct NodeBuilder<K> {
    pub(crate) router: Router,
    pub(crate) auth_codec: Arc<dyn AuthFieldsCodec>,
    pub(crate) plugins: NodePlugins,
    pub(crate) requests: RequestSettings,
    pub(crate) request_timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) peer_config: Option<PeerConfig>,
    /// How replies without a reply reference are matched to requests (the Python profile,
    /// `compat`, sets Python's rule for error replies).
    pub(crate) matching: Matching,
    /// The options of this kind of node.
    pub(crate) kind: K,
}

impl<K: Default> Default for NodeBuilder<K> {
    fn default() -> Self {
        Self {
            router: Router::new(),
            auth_codec: Arc::new(PostcardCodec),
            plugins: NodePlugins::default(),
            requests: RequestSettings::default(),
            request_timeout: Duration::from_secs(10),
            max_in_flight: 4096,
            peer_config: None,
            matching: Matching::Native,
            kind: K::default(),
        }
    }
}

impl<K> NodeBuilder<K> {
    /// The handlers (default: an empty router). On a client, they handle what servers send that
    /// is not a reply to a request.
    #[must_use]
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Mount a [`Service`](crate::router::Service) on the node's router (see
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
    pub fn mount(mut self, service: impl IntoService) -> Self {
        self.router = self.router.mount(service);
        self
    }

    /// The auth-block encoding (default [`PostcardCodec`]).
    #[must_use]
    pub fn auth_codec(mut self, codec: Arc<dyn AuthFieldsCodec>) -> Self {
        self.auth_codec = codec;
        self
    }

    /// The instance auth plugin (default none): every message is checked on receive and made
    /// on send.
    #[must_use]
    pub fn auth(self, plugin: impl AuthPlugin) -> Self {
        self.auth_arc(Arc::new(plugin))
    }

    /// The instance auth plugin, shared (default none).
    #[must_use]
    pub fn auth_arc(mut self, plugin: Arc<dyn AuthPlugin>) -> Self {
        self.plugins.outer.auth = Some(plugin);
        self
    }

    /// The instance cipher plugin (default none): every message is decrypted on receive and
    /// encrypted on send.
    #[must_use]
    pub fn cipher(self, plugin: impl CipherPlugin) -> Self {
        self.cipher_arc(Arc::new(plugin))
    }

    /// The instance cipher plugin, shared (default none).
    #[must_use]
    pub fn cipher_arc(mut self, plugin: Arc<dyn CipherPlugin>) -> Self {
        self.plugins.outer.cipher = Some(plugin);
        self
    }

    /// The peer plugin (default [`PostcardPeerPlugin`](crate::plugin::PostcardPeerPlugin)).
    #[must_use]
    pub fn peer_plugin(mut self, plugin: impl PeerPlugin) -> Self {
        self.plugins.peer_plugin = Arc::new(plugin);
        self
    }

    /// This node's own peer (id and data), given to plugins (default none; with peer
    /// management, a random id).
    #[must_use]
    pub fn local_peer(mut self, peer: Peer) -> Self {
        self.plugins.local = Some(peer);
        self
    }

    /// How long a request waits for its reply (default 10 s, as in Python): `call` and
    /// `request` on a client connection or a UDP node, [`ServerHandle::call`](crate::ServerHandle::call)
    /// to a server's client.
    #[must_use]
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = super::sane(t);
        self
    }

    /// Requests waiting for replies (default 4096): per connection on TCP (a server holds 4×
    /// that in all), in total and per peer address on a UDP node.
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// The soft timeout of calls that set none (default `None`): see
    /// [`CallOptions::soft_timeout`](crate::CallOptions::soft_timeout). Only calls made with
    /// options (`start_call`, [`call_any`](crate::call_any)) act on it; `call` and `request`
    /// wait for the reply or the hard timeout as before.
    #[must_use]
    pub fn soft_timeout(mut self, t: Option<Duration>) -> Self {
        self.requests.soft_timeout = t.map(super::sane);
        self
    }

    /// Adaptive timeouts (default `None`: off): calls that set no timeout get soft and hard
    /// timeouts from the round trips measured per (peer, route); see [`AdaptiveTimeouts`].
    #[must_use]
    pub fn adaptive_timeouts(mut self, config: Option<AdaptiveTimeouts>) -> Self {
        self.requests.adaptive = config;
        self
    }

    /// How the node remembers requests that timed out, for their late replies (default
    /// [`LateReplyConfig::default`]).
    #[must_use]
    pub fn late_replies(mut self, config: LateReplyConfig) -> Self {
        self.requests.late = config;
        self
    }

    /// Bounds of the cache that runs a re-sent request at most once (default
    /// [`DedupConfig::default`]).
    #[must_use]
    pub fn dedup(mut self, config: DedupConfig) -> Self {
        self.requests.dedup = config;
        self
    }

    /// Manage peers (default: off; without a [`local_peer`](Self::local_peer), the node gets a
    /// random id). What each kind does with it:
    ///
    /// - a TCP server answers a client's `ADVERTISE_PEER` with `PEER_DISCOVERED` and records the
    ///   client in [`ServerHandle::peers`](crate::ServerHandle::peers) and on its connection
    ///   (plugins then see it); its `DISCONNECT`, or the end of its connection, removes it. A
    ///   route of the router at a peer-management key makes `bind` fail;
    /// - a TCP client sends `ADVERTISE_PEER` on [`connect`](crate::TcpClient::connect) (and
    ///   every reconnect) and records the server from its `PEER_DISCOVERED` answer in
    ///   [`TcpClient::peers`](crate::TcpClient::peers) and on the connection;
    ///   [`Connection::close`](crate::Connection::close) sends `DISCONNECT` first. A route of
    ///   the router at a peer-management key (`(ADVERTISE_PEER, app id)`, …) is kept and peer
    ///   management's own handler for it is not installed (logged as a warning);
    /// - a UDP node multicasts `ADVERTISE_PEER` every interval (when a multicast group is
    ///   joined), records the peers heard in [`UdpHandle::peers`](crate::UdpHandle::peers),
    ///   answers adverts from verified addresses with a unicast `PEER_DISCOVERED` (at most
    ///   [`PeerConfig::answers_per_ip`] per second per IP), expires silent peers, and multicasts
    ///   `DISCONNECT` when the node stops. A route at a peer-management key makes `bind` fail.
    ///   Without a multicast group (`UdpNodeBuilder::multicast`, feature `multicast`) it finds
    ///   nobody by itself: peers come only from
    ///   [`UdpHandle::advertise_to`](crate::UdpHandle::advertise_to) and the adverts others send
    ///   it (`bind` says so in an `INFO` log line).
    ///
    /// An advert to a UDP group is answered only when its source is verified (with an auth
    /// plugin that [authenticates senders](crate::plugin::AuthPlugin::authenticates_sender), for
    /// example [`HmacAuth`](crate::plugin::HmacAuth)): its source address may be forged, and
    /// every member would answer it. Without auth, the advertiser learns of this node from this
    /// node's next advert instead, within one interval. Use an auth plugin for any real
    /// deployment: without one, anyone can put peers (and addresses) in the table.
    #[must_use]
    pub fn peer_management(mut self, config: PeerConfig) -> Self {
        self.peer_config = Some(config);
        self
    }
}

/// The options of a kind of node that keeps subscriptions (a TCP server, a UDP node): where its
/// [`SubscriptionLimits`] are, for the setters below.
pub(crate) trait Subscribers {
    /// The limits the node's subscriptions are made with.
    fn subscription_limits(&mut self) -> &mut SubscriptionLimits;
}

// The bound is sealed on purpose: the kinds are the crate's; a user picks one through its
// alias and never names the trait.
#[expect(
    private_bounds,
    reason = "a sealed bound: only the crate's kinds implement it"
)]
impl<K: Subscribers> NodeBuilder<K> {
    /// Subscriptions per subscriber, a TCP server's connection or a UDP node's source address
    /// (default 1024); beyond, `subscribe` fails with
    /// [`SubscribeError::Limit`](crate::SubscribeError::Limit).
    #[must_use]
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.kind.subscription_limits().per_subscriber = n;
        self
    }

    /// Subscriptions of all subscribers together (default 262,144 on a TCP server, 4096 on a
    /// UDP node). Beyond, a TCP server's `subscribe` fails with
    /// [`SubscribeError::NodeLimit`](crate::SubscribeError::NodeLimit). A UDP node instead
    /// evicts the least recently renewed subscription (counted in
    /// [`UdpStats::subscriptions_evicted`](crate::udp::UdpStats::subscriptions_evicted)), so
    /// that whoever fills the table cannot lock the others out; only a limit of 0 refuses.
    #[must_use]
    pub fn max_total_subscriptions(mut self, n: usize) -> Self {
        self.kind.subscription_limits().total = n;
        self
    }

    /// Key bytes per subscriber: the sum of the lengths of its subscription keys (default
    /// 64 KiB); beyond (a single longer key included), `subscribe` fails with
    /// [`SubscribeError::KeyBytes`](crate::SubscribeError::KeyBytes).
    #[must_use]
    pub fn max_subscription_bytes(mut self, bytes: usize) -> Self {
        self.kind.subscription_limits().per_subscriber_bytes = bytes;
        self
    }

    /// Key bytes of all subscriptions together, each subscription counting its key (default
    /// 16 MiB); beyond, `subscribe` fails with
    /// [`SubscribeError::NodeKeyBytes`](crate::SubscribeError::NodeKeyBytes).
    #[must_use]
    pub fn max_total_subscription_bytes(mut self, bytes: usize) -> Self {
        self.kind.subscription_limits().total_bytes = bytes;
        self
    }
}
