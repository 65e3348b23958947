//! [`UdpNodeBuilder`]: a UDP node's own options (the settings every node has are in
//! [`NodeBuilder`]), and `bind`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "multicast")]
use super::multicast::{Multicast, MulticastConfig};
use super::node::*;
use super::socket::{BufferSizes, bind_socket};
use super::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};
use super::{UdpHandle, UdpNode};
use crate::Message;
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::node::NodeBuilder;
use crate::node::builder::Subscribers;
use crate::node::leases::Leases;
use crate::node::peers::{self as peer_management};
use crate::node::requests::{Dedup, Limits, Requests};
use crate::node::routability::{CookieKey, VerifiedAddrs, VerifiedLimits};
use crate::node::subscriptions::{self, SubscriptionLimits, Subscriptions};
use crate::peer::PeerTable;

/// Configures and binds a [`UdpNode`]. Every limit has a default: the settings every node has
/// are [`NodeBuilder`]'s, the UDP node's own are below.
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
pub type UdpNodeBuilder = NodeBuilder<UdpNodeOptions>;

/// The options only a UDP node has, in its [`UdpNodeBuilder`] (set with the builder's setters).
#[derive(Debug)]
pub struct UdpNodeOptions {
    addr: SocketAddr,
    max_handlers: usize,
    subscriptions: SubscriptionLimits,
    /// How long a subscription lasts unless renewed (`None`: until evicted or removed; set by
    /// the Python profile, whose subscribers cannot renew).
    pub(crate) subscription_ttl: Option<Duration>,
    verification_ttl: Duration,
    max_verified_addresses: usize,
    reuse_address: bool,
    /// The socket buffer sizes asked for (`None`: the kernel's defaults).
    buffers: BufferSizes,
    /// The reply to a message no route takes (set by a profile: Python's has uri `ERROR`).
    pub(crate) not_found: Message,
    #[cfg(feature = "multicast")]
    multicast: Option<MulticastConfig>,
    relay: Option<super::UdpRelay>,
}

impl Default for UdpNodeOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8888)),
            max_handlers: 1024,
            subscriptions: SubscriptionLimits {
                per_subscriber: 1024,
                total: 4096,
                per_subscriber_bytes: subscriptions::DEFAULT_KEY_BYTES_PER_SUBSCRIBER,
                total_bytes: subscriptions::DEFAULT_TOTAL_KEY_BYTES,
            },
            subscription_ttl: Some(UdpNodeBuilder::DEFAULT_SUBSCRIPTION_TTL),
            verification_ttl: UdpNodeBuilder::DEFAULT_VERIFICATION_TTL,
            max_verified_addresses: 4096,
            reuse_address: false,
            buffers: BufferSizes::default(),
            not_found: Message::not_found(),
            #[cfg(feature = "multicast")]
            multicast: None,
            relay: None,
        }
    }
}

impl Subscribers for UdpNodeOptions {
    fn subscription_limits(&mut self) -> &mut SubscriptionLimits {
        &mut self.subscriptions
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
        self.kind.addr = addr.into();
        self
    }

    /// Handlers running at once, replies still being sealed or sent included (default 1024);
    /// datagrams arriving beyond that are dropped and counted ([`UdpStats::overloaded`]).
    #[must_use]
    pub fn max_handlers(mut self, n: usize) -> Self {
        self.kind.max_handlers = n.max(1);
        self
    }

    /// How long a subscription lasts unless renewed (default
    /// [`DEFAULT_SUBSCRIPTION_TTL`](Self::DEFAULT_SUBSCRIPTION_TTL), 5 minutes; `None`: until it
    /// is evicted or removed). A subscriber renews by subscribing again; one that stops (it left,
    /// its address is someone else's now) stops getting notifications at the end of the TTL.
    #[must_use]
    pub fn subscription_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.kind.subscription_ttl = ttl.map(crate::node::sane);
        self
    }

    /// How long an address stays verified after it echoed a cookie (default
    /// [`DEFAULT_VERIFICATION_TTL`](Self::DEFAULT_VERIFICATION_TTL), 5 minutes). Its requests are
    /// challenged again after that. See [return routability](UdpNode#return-routability).
    #[must_use]
    pub fn verification_ttl(mut self, ttl: Duration) -> Self {
        self.kind.verification_ttl = crate::node::sane(ttl);
        self
    }

    /// Verified addresses remembered at most (default 4096); beyond, the one whose verification
    /// ends first is forgotten (its next request is challenged again).
    #[must_use]
    pub fn max_verified_addresses(mut self, n: usize) -> Self {
        self.kind.max_verified_addresses = n;
        self
    }

    /// Set `SO_REUSEADDR` (and `SO_REUSEPORT` on Unix) so several nodes on one host can share a
    /// port (needed for multicast groups). Default off.
    #[must_use]
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.kind.reuse_address = on;
        self
    }

    /// The socket's receive buffer, bytes (`SO_RCVBUF`; default: the kernel's, 208 KiB on
    /// Linux). Datagrams that arrive while it is full are dropped by the kernel: at 16 calls in
    /// flight, payloads from 8 kB overflow the default and calls time out. Set before the bind
    /// (and on the multicast group's receiving socket, when the node has one). The kernel caps
    /// the request without an error (on Linux at `net.core.rmem_max`, which an administrator
    /// raises with `sysctl -w net.core.rmem_max=BYTES`): `bind` then logs the shortfall at
    /// `WARN` and binds anyway. [`UdpHandle::recv_buffer_size`] reads what was granted.
    #[must_use]
    pub fn recv_buffer_size(mut self, bytes: usize) -> Self {
        self.kind.buffers.recv = Some(bytes);
        self
    }

    /// The socket's send buffer, bytes (`SO_SNDBUF`; default: the kernel's). Capped by the
    /// kernel as [`recv_buffer_size`](Self::recv_buffer_size) is (on Linux at
    /// `net.core.wmem_max`), logged at `WARN` when it is; [`UdpHandle::send_buffer_size`] reads
    /// what was granted.
    #[must_use]
    pub fn send_buffer_size(mut self, bytes: usize) -> Self {
        self.kind.buffers.send = Some(bytes);
        self
    }

    /// Join a multicast group (default: off). Enables [`UdpHandle::multicast`], and with
    /// [`peer_management`](Self::peer_management), discovery by multicast adverts. See
    /// [`MulticastConfig`] for the defaults and why.
    #[cfg(feature = "multicast")]
    #[cfg_attr(docsrs, doc(cfg(feature = "multicast")))]
    #[must_use]
    pub fn multicast(mut self, config: MulticastConfig) -> Self {
        self.kind.multicast = Some(config);
        self
    }

    /// Serve a relay (opt-in): peers reserve their id from their (verified) address and are
    /// reached through this node by id. Takes a [`RelayConfig`](crate::relay::RelayConfig), or
    /// a [`UdpRelay`](super::UdpRelay) (keep a clone of it for its stats). Its routes are merged
    /// into the router when the node is bound: a router that already routes the relay's message
    /// types makes `bind` fail ([`BindError::Route`]). A second call replaces the first.
    ///
    /// ```no_run
    /// use netaio::relay::RelayConfig;
    /// use netaio::udp::UdpNode;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let node = UdpNode::builder()
    ///     .address(([0, 0, 0, 0], 9100))
    ///     .relay(RelayConfig::default().max_reservations(1024))
    ///     .bind()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn relay(mut self, relay: impl Into<super::UdpRelay>) -> Self {
        self.kind.relay = Some(relay.into());
        self
    }

    /// Bind the socket (and join the multicast group, when configured).
    pub async fn bind(mut self) -> Result<UdpNode, BindError> {
        let relay = self.kind.relay.take();
        if let Some(relay) = &relay {
            self.router = self.router.try_merge(relay.router())?;
        }
        // A programming error: found before anything is bound.
        self.router.check_state()?;
        let kind = self.kind;
        let addr = kind.addr;
        let err = |source| BindError::Io { addr, source };
        let socket = bind_socket(addr, kind.reuse_address, kind.buffers).map_err(err)?;
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
        let multicast = match &kind.multicast {
            Some(config) => Some(Multicast::setup(config, &socket, local_addr, kind.buffers)?),
            None => None,
        };
        #[cfg(not(feature = "multicast"))]
        let multicast = None;
        if manager.is_some() && multicast.is_none() {
            // The usual reason two nodes with peer management never meet: say it where the
            // default log level shows it.
            tracing::info!(
                addr = %local_addr,
                "peer management without a multicast group: this node finds peers only by \
                 advertise_to and the adverts sent to it (UdpNodeBuilder::multicast to discover)"
            );
        }
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
            handle: UdpHandle::new(Arc::new(UdpShared {
                socket: Arc::new(socket),
                local_addr,
                routes,
                codec,
                plugins,
                handlers: Arc::new(Semaphore::new(kind.max_handlers)),
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
                relay_dedup: Dedup::new(self.requests.dedup),
                relay_senders: std::hash::RandomState::new(),
                relays: Mutex::default(),
                relay: relay.map(|r| r.core),
                subs: Mutex::new(Leases::new(
                    Subscriptions::new(kind.subscriptions),
                    kind.subscription_ttl,
                )),
                cookies: CookieKey::random(Instant::now()),
                verified: Mutex::new(VerifiedAddrs::new(VerifiedLimits {
                    capacity: kind.max_verified_addresses,
                    ttl: kind.verification_ttl,
                })),
                outer_authenticates,
                not_found: kind.not_found,
                counters: Counters::default(),
                refusals: Mutex::default(),
                cancel: CancellationToken::new(),
                peers,
                manager,
                multicast,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use crate::SubscribeError;
    use crate::udp::UdpNode;

    /// The key-byte limits a UDP node had only at their defaults are set by the setters it now
    /// shares with the TCP server: per subscriber address, and for the whole node.
    #[tokio::test]
    async fn subscription_byte_limits_are_set_by_the_shared_setters() {
        let node = UdpNode::builder()
            .address(([127, 0, 0, 1], 0))
            .max_subscription_bytes(8)
            .max_total_subscription_bytes(12)
            .bind()
            .await
            .unwrap();
        let h = node.handle();
        let a = SocketAddr::from(([127, 0, 0, 1], 1000));
        let b = SocketAddr::from(([127, 0, 0, 1], 1001));
        assert_eq!(
            h.subscribe(a, "123456789"),
            Err(SubscribeError::KeyBytes(8))
        );
        h.subscribe(a, "12345678").unwrap();
        assert_eq!(
            h.subscribe(b, "12345"),
            Err(SubscribeError::NodeKeyBytes(12))
        );
        h.subscribe(b, "1234").unwrap();
    }
}
