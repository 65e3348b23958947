//! [`UdpNodeBuilder`]: a UDP node's configuration, with a default for every limit, and `bind`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "multicast")]
use super::multicast::{Multicast, MulticastConfig};
use super::node::*;
use super::socket::bind_socket;
use super::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};
use super::{UdpHandle, UdpNode};
use crate::Message;
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::message::{AuthFieldsCodec, PostcardCodec};
use crate::node::leases::Leases;
use crate::node::peers::{self as peer_management};
use crate::node::requests::{Dedup, Limits, Matching, RequestSettings, Requests};
use crate::node::routability::{CookieKey, VerifiedAddrs, VerifiedLimits};
use crate::node::subscriptions::{self, SubscriptionLimits, Subscriptions};
use crate::peer::{PeerConfig, PeerTable};
use crate::plugin::NodePlugins;
use crate::router::Router;

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
    /// How long a subscription lasts unless renewed (`None`: until evicted or removed; set by
    /// the Python profile, whose subscribers cannot renew).
    pub(crate) subscription_ttl: Option<Duration>,
    verification_ttl: Duration,
    max_verified_addresses: usize,
    reuse_address: bool,
    /// How replies without a reply reference are matched to requests (set by a profile: the
    /// Python one, `compat`, matches Python's error replies).
    pub(crate) matching: Matching,
    /// The reply to a message no route takes (set by a profile: Python's has uri `ERROR`).
    pub(crate) not_found: Message,
    #[cfg(feature = "multicast")]
    multicast: Option<MulticastConfig>,
    peer_config: Option<PeerConfig>,
    requests: RequestSettings,
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
            subscription_ttl: Some(UdpNodeBuilder::DEFAULT_SUBSCRIPTION_TTL),
            verification_ttl: UdpNodeBuilder::DEFAULT_VERIFICATION_TTL,
            max_verified_addresses: 4096,
            reuse_address: false,
            matching: Matching::Native,
            not_found: Message::not_found(),
            #[cfg(feature = "multicast")]
            multicast: None,
            peer_config: None,
            requests: RequestSettings::default(),
        }
    }
}

impl UdpNodeBuilder {
    /// The default [`subscription_ttl`](Self::subscription_ttl): 5 minutes.
    pub const DEFAULT_SUBSCRIPTION_TTL: Duration = Duration::from_secs(300);
    /// The default [`verification_ttl`](Self::verification_ttl): 5 minutes.
    pub const DEFAULT_VERIFICATION_TTL: Duration = Duration::from_secs(300);

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
    pub fn mount(mut self, service: impl crate::router::IntoService) -> Self {
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

    request_setters!();

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
    /// [`SubscribeError::Limit`](crate::SubscribeError::Limit).
    #[must_use]
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Subscriptions in the whole node, all source addresses together (default 4096). At the
    /// limit, a new subscription evicts the least recently renewed one (counted in
    /// [`UdpStats::subscriptions_evicted`]), so that whoever fills the table cannot lock the
    /// others out; only a limit of 0 refuses, with
    /// [`SubscribeError::NodeLimit`](crate::SubscribeError::NodeLimit).
    #[must_use]
    pub fn max_total_subscriptions(mut self, n: usize) -> Self {
        self.max_total_subscriptions = n;
        self
    }

    /// How long a subscription lasts unless renewed (default
    /// [`DEFAULT_SUBSCRIPTION_TTL`](Self::DEFAULT_SUBSCRIPTION_TTL), 5 minutes; `None`: until it
    /// is evicted or removed). A subscriber renews by subscribing again; one that stops (it left,
    /// its address is someone else's now) stops getting notifications at the end of the TTL.
    #[must_use]
    pub fn subscription_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.subscription_ttl = ttl.map(crate::node::sane);
        self
    }

    /// How long an address stays verified after it echoed a cookie (default
    /// [`DEFAULT_VERIFICATION_TTL`](Self::DEFAULT_VERIFICATION_TTL), 5 minutes). Its requests are
    /// challenged again after that. See [return routability](UdpNode#return-routability).
    #[must_use]
    pub fn verification_ttl(mut self, ttl: Duration) -> Self {
        self.verification_ttl = crate::node::sane(ttl);
        self
    }

    /// Verified addresses remembered at most (default 4096); beyond, the one whose verification
    /// ends first is forgotten (its next request is challenged again).
    #[must_use]
    pub fn max_verified_addresses(mut self, n: usize) -> Self {
        self.max_verified_addresses = n;
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
    #[cfg(feature = "multicast")]
    #[cfg_attr(docsrs, doc(cfg(feature = "multicast")))]
    #[must_use]
    pub fn multicast(mut self, config: MulticastConfig) -> Self {
        self.multicast = Some(config);
        self
    }

    /// Manage peers automatically (default: off): multicast `ADVERTISE_PEER` every interval (when
    /// a multicast group is joined), record the peers heard in [`UdpHandle::peers`], answer
    /// adverts from verified addresses with a unicast `PEER_DISCOVERED` (at most
    /// [`PeerConfig::answers_per_ip`] per second per IP), expire silent peers, and multicast
    /// `DISCONNECT` when the node stops. Without a [`local_peer`](Self::local_peer), the node gets
    /// a random id.
    ///
    /// An advert to the group is answered only when its source is verified (with an auth plugin
    /// that [authenticates senders](crate::plugin::AuthPlugin::authenticates_sender), for
    /// example [`HmacAuth`](crate::plugin::HmacAuth)): its source address may be forged, and
    /// every member would answer it. Without auth, the advertiser learns of this node from this
    /// node's next advert instead, within one interval. Use an auth plugin for any real
    /// deployment: without one, anyone can put peers (and addresses) in the table.
    #[must_use]
    pub fn peer_management(mut self, config: PeerConfig) -> Self {
        self.peer_config = Some(config);
        self
    }

    /// Bind the socket (and join the multicast group, when configured).
    pub async fn bind(self) -> Result<UdpNode, BindError> {
        // A programming error: found before anything is bound.
        self.router.check_state()?;
        let addr = self.addr;
        let err = |source| BindError::Io { addr, source };
        let socket = bind_socket(addr, self.reuse_address).map_err(err)?;
        let local_addr = socket.local_addr().map_err(err)?;
        let routes = self.router.into_shared();
        let mut plugins = self.plugins.for_new_node();
        let peers = PeerTable::new();
        let manager = match self.peer_config {
            Some(config) => {
                let m = peer_management::install(&routes, &peers, &mut plugins, config, true)?;
                // An advert's source may be forged: answers to one IP are rate-limited.
                m.limit_answers();
                Some(m)
            }
            None => None,
        };
        #[cfg(feature = "multicast")]
        let multicast = match &self.multicast {
            Some(config) => Some(Multicast::setup(config, &socket, local_addr)?),
            None => None,
        };
        #[cfg(not(feature = "multicast"))]
        let multicast = None;
        let max_datagram = if local_addr.is_ipv4() {
            MAX_DATAGRAM_V4
        } else {
            MAX_DATAGRAM_V6
        };
        let codec = FrameCodec::with_auth_codec(self.auth_codec).max_frame_size(max_datagram);
        let outer_authenticates = plugins
            .outer
            .auth
            .as_ref()
            .is_some_and(|a| a.authenticates_sender());
        tracing::info!(addr = %local_addr, "udp node bound");
        Ok(UdpNode {
            handle: UdpHandle {
                shared: Arc::new(UdpShared {
                    socket: Arc::new(socket),
                    local_addr,
                    routes,
                    codec,
                    plugins,
                    handlers: Arc::new(Semaphore::new(self.max_handlers)),
                    requests: Requests::new(
                        Limits {
                            total: self.max_in_flight,
                            per_peer: self.max_in_flight,
                        },
                        self.matching,
                        self.request_timeout,
                        &self.requests,
                    ),
                    dedup: Dedup::new(self.requests.dedup),
                    subs: Mutex::new(Leases::new(
                        Subscriptions::new(SubscriptionLimits {
                            per_subscriber: self.max_subscriptions,
                            total: self.max_total_subscriptions,
                            // The TCP server's defaults; a UDP node has no setters for them yet.
                            per_subscriber_bytes: subscriptions::DEFAULT_KEY_BYTES_PER_SUBSCRIBER,
                            total_bytes: subscriptions::DEFAULT_TOTAL_KEY_BYTES,
                        }),
                        self.subscription_ttl,
                    )),
                    cookies: CookieKey::random(Instant::now()),
                    verified: Mutex::new(VerifiedAddrs::new(VerifiedLimits {
                        capacity: self.max_verified_addresses,
                        ttl: self.verification_ttl,
                    })),
                    outer_authenticates,
                    not_found: self.not_found,
                    counters: Counters::default(),
                    refusals: Mutex::default(),
                    cancel: CancellationToken::new(),
                    peers,
                    manager,
                    multicast,
                }),
            },
        })
    }
}
