//! [`GossipNodeBuilder`]: a gossip node's settings, with defaults, and `bind`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use netaio::TcpServer;
use netaio::message::MAX_URI_AND_CONTENT;
use netaio::plugin::HmacAuth;
use netaio::router::RouteError;
use netaio_asymmetric::{AsymmetricPeerPlugin, Identity};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use super::driver::{Driver, Parts};
use super::hello::Handshake;
use super::inbound::{self, InboundQueue};
use super::link::LinkConfig;
use super::node::{GossipNode, NodeParts};
use super::subscription::Subscribers;
use crate::host::BulletinHost;
use crate::policy::BulletinPolicy;
use crate::proto::wire::GOSSIP_OVERHEAD;
use crate::proto::{Config, Protocol};
use crate::store::StoreConfig;
use crate::subscriptions::Subscriptions;

/// Bytes `X25519Cipher` adds to a message (its tag).
const CIPHER_TAG: usize = 16;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The listening socket could not be bound.
    #[error(transparent)]
    Bind(#[from] netaio::BindError),
    /// Listening on 0.0.0.0 or :: without an address to advertise: peers would be told an
    /// address nobody can dial. Set [`GossipNodeBuilder::advertise`].
    #[error("listening on {0} needs an address to advertise (GossipNodeBuilder::advertise)")]
    NoAdvertisedAddress(SocketAddr),
    /// The advertised address has no IP (0.0.0.0 or ::).
    #[error("cannot advertise the unspecified address {0}")]
    UnspecifiedAdvertised(SocketAddr),
    /// The server's routes could not be installed (a bug: they are fixed).
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// The highest [`GossipNodeBuilder::admission_difficulty`]: 2^28 hashes, some 20 s on one core.
pub const MAX_ADMISSION_DIFFICULTY: u32 = 28;

/// A [`GossipNode`]'s settings. Each setter takes the plain name and consumes the builder.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`listen`](Self::listen) | `127.0.0.1:0` | the TCP address to accept neighbours on |
/// | [`advertise`](Self::advertise) | the bound address | the address peers are told to dial (required when listening on 0.0.0.0 or ::) |
/// | [`bootstrap`](Self::bootstrap) | none | peers to join through at start (one is enough; more may be given) |
/// | [`config`](Self::config) | [`Config::default`] with `neighbor_timeout` 2 s | the protocol's parameters (views, broadcast, anti-entropy, queues) |
/// | [`policy`](Self::policy) | [`BulletinPolicy::default`] | proof of work, ttl, clock skew, content size |
/// | [`store`](Self::store) | [`StoreConfig::default`] | the bulletin store's bounds |
/// | [`secret`](Self::secret) | none | a closed swarm: `HmacAuth` with this secret on every message |
/// | [`identity`](Self::identity) | none | per-peer encryption and signatures: `X25519Cipher` + `Ed25519Auth` on protocol messages, keys exchanged in the handshake |
/// | [`admission_difficulty`](Self::admission_difficulty) | 0 (off) | proof of work a dialer's handshake must carry (`HashcashAuth`, SHA-256 leading zero bits) before this node looks at it; this node's own handshakes carry as much |
/// | [`trusted_keys`](Self::trusted_keys) | any | with an identity: only peers with one of these Ed25519 keys |
/// | [`check_source_ip`](Self::check_source_ip) | true | a peer must connect from the IP it claims to listen on |
/// | [`delivery_code`](Self::delivery_code) | random 8 bytes | the code of the private delivery topic |
/// | [`connect_timeout`](Self::connect_timeout), [`handshake_timeout`](Self::handshake_timeout) | 5 s, 5 s | dialing a peer; its answer to the handshake (a connection that sends no valid first frame within it is closed) |
/// | [`keepalive`](Self::keepalive) | 15 s, answered within 10 s | an idle link is pinged; no answer: the connection counts as lost |
/// | [`linger`](Self::linger) | 10 s | a link to a peer that is not a neighbour is closed once idle this long |
/// | [`max_links`](Self::max_links), [`max_connections`](Self::max_connections) | 64, 256 | connections this node opens; accepts |
/// | [`link_queue`](Self::link_queue) | 16 messages | handed to a link's connection ahead of the protocol's per-peer queue |
/// | [`inbound_queue`](Self::inbound_queue) | 1,024 messages, 4 MiB | received protocol messages waiting for the driver; when full, the connections stop being read |
/// | [`subscription_queue`](Self::subscription_queue) | 256 | deliveries waiting in each [`Subscription`](super::Subscription) |
/// | [`event_queue`](Self::event_queue) | 256 | events a receiver may lag behind before losing the oldest |
/// | [`max_minting`](Self::max_minting) | the CPUs | proofs of work computed at once (on blocking threads) |
///
/// ```no_run
/// use std::time::Duration;
/// use netaio_gossip::{GossipNode, TopicId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let node = GossipNode::builder()
///     .listen("0.0.0.0:7946".parse()?)
///     .advertise("192.0.2.10:7946".parse()?)
///     .bootstrap("192.0.2.20:7946".parse()?)
///     .secret(b"a swarm secret of 16+ bytes")
///     .keepalive(Duration::from_secs(30))
///     .bind()
///     .await?;
/// let mut news = node.subscribe(TopicId::from_descriptor(b"news")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GossipNodeBuilder {
    listen: SocketAddr,
    advertise: Option<SocketAddr>,
    bootstrap: Vec<SocketAddr>,
    config: Config,
    policy: BulletinPolicy,
    store: StoreConfig,
    secret: Option<Arc<[u8]>>,
    identity: Option<Identity>,
    trusted_keys: BTreeSet<[u8; 32]>,
    admission_difficulty: u32,
    check_source_ip: bool,
    delivery_code: Option<Vec<u8>>,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    keepalive: Duration,
    keepalive_timeout: Duration,
    linger: Duration,
    max_links: usize,
    max_connections: usize,
    link_queue: usize,
    inbound_queue: usize,
    inbound_bytes: usize,
    subscription_queue: usize,
    event_queue: usize,
    max_minting: usize,
}

impl Default for GossipNodeBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            bootstrap: Vec::new(),
            // A neighbour request over TCP takes a dial and a handshake each way: the core's
            // 500 ms (a simulated round trip) is short for a loaded host.
            config: Config::default().neighbor_timeout(Duration::from_secs(2)),
            policy: BulletinPolicy::default(),
            store: StoreConfig::default(),
            secret: None,
            identity: None,
            trusted_keys: BTreeSet::new(),
            admission_difficulty: 0,
            check_source_ip: true,
            delivery_code: None,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
            keepalive_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(10),
            max_links: 64,
            max_connections: 256,
            link_queue: 16,
            inbound_queue: 1024,
            inbound_bytes: 4 << 20,
            subscription_queue: 256,
            event_queue: 256,
            max_minting: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

impl GossipNodeBuilder {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// The TCP address to accept neighbours on (default `127.0.0.1:0`: loopback, any port).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The address peers are told to dial: this node's identity in the swarm (default: the
    /// bound address; required when listening on 0.0.0.0 or ::). Port 0 means the bound port.
    #[must_use]
    pub fn advertise(mut self, addr: SocketAddr) -> Self {
        self.advertise = Some(addr);
        self
    }

    /// Join through this peer at start (its advertised address); may be given several times.
    /// [`GossipNode::join`] joins later.
    #[must_use]
    pub fn bootstrap(mut self, addr: SocketAddr) -> Self {
        self.bootstrap.push(addr);
        self
    }

    /// The protocol's parameters (default: [`Config::default`] with `neighbor_timeout` 2 s).
    /// Its largest payload is lowered to what fits a netaio frame.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// What bulletins are accepted and minted (default [`BulletinPolicy::default`]).
    #[must_use]
    pub fn policy(mut self, policy: BulletinPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The store's bounds (default [`StoreConfig::default`]).
    #[must_use]
    pub fn store(mut self, store: StoreConfig) -> Self {
        self.store = store;
        self
    }

    /// A closed swarm: every message between nodes carries an `HmacAuth` MAC with this secret
    /// (use at least 16 random bytes); a node without it cannot take part.
    #[must_use]
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(Arc::from(secret.as_ref()));
        self
    }

    /// Per-peer encryption and signatures: protocol messages are encrypted to the receiving
    /// peer (`X25519Cipher`) and signed (`Ed25519Auth`, clocks within 60 s of each other), with
    /// the public keys each side tells the other in the handshake. Every node of the swarm needs
    /// one. Without [`trusted_keys`](Self::trusted_keys) any key is accepted (the link is then
    /// private, but not its peer's identity).
    #[must_use]
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// With an [`identity`](Self::identity): accept only peers whose Ed25519 key is one of these
    /// (default: any key).
    #[must_use]
    pub fn trusted_keys(mut self, keys: impl IntoIterator<Item = [u8; 32]>) -> Self {
        self.trusted_keys = keys.into_iter().collect();
        self
    }

    /// Whether a peer must connect from the IP of the address it claims to listen on (default
    /// true: a node cannot claim another host's identity, to get it banned for instance). Turn
    /// it off for hosts with several addresses whose outgoing connections leave from another.
    #[must_use]
    pub fn check_source_ip(mut self, on: bool) -> Self {
        self.check_source_ip = on;
        self
    }

    /// The delivery code of the node's private delivery topic (default: 8 random bytes).
    #[must_use]
    pub fn delivery_code(mut self, code: impl Into<Vec<u8>>) -> Self {
        self.delivery_code = Some(code.into());
        self
    }

    /// Time to open a connection to a peer (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Time for a peer's answer to the handshake; also the time a connection to this node has
    /// to send its first valid frame (default 5 s).
    #[must_use]
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// A link idle this long is pinged (default 15 s); unanswered within `timeout` (default
    /// 10 s), the connection counts as lost. Connections to this node with no valid traffic for
    /// four times `interval` are closed.
    #[must_use]
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval.max(Duration::from_millis(10));
        self
    }

    /// How long a keepalive ping may go unanswered (default 10 s).
    #[must_use]
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// A link to a peer that is not a neighbour is closed once idle this long (default 10 s).
    #[must_use]
    pub fn linger(mut self, t: Duration) -> Self {
        self.linger = t;
        self
    }

    /// Connections this node opens at most (default 64, at least the active view); beyond, the
    /// least recently used link to a non-neighbour is closed, or the new one refused.
    #[must_use]
    pub fn max_links(mut self, n: usize) -> Self {
        self.max_links = n;
        self
    }

    /// Connections this node accepts at most (default 256; the server's per-IP limit is the
    /// same).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Messages handed to a link's connection ahead of the protocol's own per-peer queue
    /// (default 16, at least 2).
    #[must_use]
    pub fn link_queue(mut self, n: usize) -> Self {
        self.link_queue = n.max(2);
        self
    }

    /// Received protocol messages waiting for the driver, in number and bytes (default 1,024
    /// and 4 MiB); when full, the connections they come from stop being read.
    #[must_use]
    pub fn inbound_queue(mut self, messages: usize, bytes: usize) -> Self {
        self.inbound_queue = messages.max(1);
        self.inbound_bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Deliveries waiting in each subscription (default 256); beyond, they are dropped.
    #[must_use]
    pub fn subscription_queue(mut self, n: usize) -> Self {
        self.subscription_queue = n.max(1);
        self
    }

    /// Events a receiver of [`GossipNode::events`] may lag behind (default 256).
    #[must_use]
    pub fn event_queue(mut self, n: usize) -> Self {
        self.event_queue = n.max(1);
        self
    }

    /// Proof-of-work admission of new connections (default 0: off). A dialer's handshake must
    /// carry a [`HashcashAuth`](netaio::plugin::HashcashAuth) stamp of at least `bits` leading
    /// zero bits (SHA-256, bound to the handshake's content, fresh within ±60 s, each stamp good
    /// once): one without it is refused (`AUTH_ERROR`) before its content is read, its keys
    /// checked or a neighbour slot given. This node stamps its own handshakes with as many bits,
    /// so a swarm configured alike connects; a node with 0 cannot join one that asks for work.
    /// Capped at [`MAX_ADMISSION_DIFFICULTY`] bits; a stamp takes 2^`bits` hashes on average
    /// (16 bits: some 5 ms on one core, on the blocking pool).
    #[must_use]
    pub fn admission_difficulty(mut self, bits: u32) -> Self {
        self.admission_difficulty = bits.min(MAX_ADMISSION_DIFFICULTY);
        self
    }

    /// Proofs of work computed at once by `publish` (default: the number of CPUs, at least 1).
    #[must_use]
    pub fn max_minting(mut self, n: usize) -> Self {
        self.max_minting = n.max(1);
        self
    }

    /// Binds the listening socket and starts the node: its server, and the driver, which joins
    /// through the bootstrap peers. Needs a tokio runtime with the `net` and `time` drivers.
    pub async fn bind(self) -> Result<GossipNode, BindError> {
        if self.advertise.is_none() && self.listen.ip().is_unspecified() {
            return Err(BindError::NoAdvertisedAddress(self.listen));
        }
        if let Some(a) = self.advertise
            && a.ip().is_unspecified()
        {
            return Err(BindError::UnspecifiedAdvertised(a));
        }
        let keyed = self.identity.is_some();
        let mut server = TcpServer::builder()
            .address(self.listen)
            .max_connections(self.max_connections)
            .max_connections_per_ip(self.max_connections)
            .handshake_timeout(Some(self.handshake_timeout))
            .idle_timeout(Some(self.keepalive.saturating_mul(4)));
        if let Some(secret) = &self.secret {
            server = server.auth(HmacAuth::new(secret));
        }
        if keyed {
            server = server.peer_plugin(AsymmetricPeerPlugin);
        }
        let server = server.bind().await?;
        let local_addr = server.local_addr();
        let me = match self.advertise {
            Some(a) if a.port() == 0 => SocketAddr::new(a.ip(), local_addr.port()),
            Some(a) => a,
            None => local_addr,
        };

        let keys = self.identity.as_ref().map(Identity::public_keys);
        let handshake = Arc::new(Handshake::new(
            me,
            keys,
            self.trusted_keys.clone(),
            self.check_source_ip,
        ));
        // Protocol messages must fit one netaio frame, sealed.
        let mut limits = self.config.get_limits();
        limits.max_payload = limits
            .max_payload
            .min(MAX_URI_AND_CONTENT - GOSSIP_OVERHEAD - CIPHER_TAG);
        let config = self.config.clone().limits(limits);
        let malformed = Arc::new(AtomicU64::new(0));
        let (inbound_tx, inbound_rx) = mpsc::channel(self.inbound_queue);
        let queue = InboundQueue {
            tx: inbound_tx,
            bytes: Arc::new(Semaphore::new(self.inbound_bytes)),
            max_bytes: self.inbound_bytes,
            malformed: malformed.clone(),
        };
        let handle = server.handle();
        let inner = super::peer_plugins;
        let receiving = self.identity.as_ref().map(inner).unwrap_or_default();
        let bits = self.admission_difficulty;
        let (admitting, stamping) = super::admission_plugins(bits);
        inbound::install(
            &handle,
            handshake.clone(),
            queue,
            limits,
            receiving,
            admitting,
        )?;
        let serving = tokio::spawn(server.serve());

        let link_config = Arc::new(LinkConfig {
            handshake,
            admission: stamping,
            secret: self.secret.clone(),
            inner: self.identity.as_ref().map(inner).unwrap_or_default(),
            keyed,
            connect_timeout: self.connect_timeout,
            handshake_timeout: self.handshake_timeout,
            keepalive: self.keepalive,
            keepalive_timeout: self.keepalive_timeout,
            queue: self.link_queue,
        });
        // The delivery topic is the hash of the code and the node's address: its Ed25519 key
        // when it has one (as in the Python library), else its advertised address.
        let address = match &keys {
            Some(k) => k.ed25519.to_vec(),
            None => super::hello::peer_id(me).to_vec(),
        };
        let subscriptions = match self.delivery_code.clone() {
            Some(code) => Subscriptions::with_delivery_code(address, code),
            None => Subscriptions::new(address),
        };
        let (commands_tx, commands_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(self.event_queue);
        let (neighbors_tx, neighbors_rx) = watch::channel(Vec::new());
        let rng = SmallRng::from_rng(&mut rand::rng());
        let parts = Parts {
            proto: Protocol::new(me, config.clone(), rng),
            host: BulletinHost::new(self.policy, self.store),
            subscriptions,
            subscribers: Subscribers::new(self.subscription_queue),
            link_config,
            inbound: inbound_rx,
            commands: commands_rx,
            events: events.clone(),
            neighbors: neighbors_tx,
            malformed,
            server: handle.clone(),
            serving,
            bootstrap: self.bootstrap.clone(),
            linger: self.linger,
            max_links: self.max_links.max(config.get_active_view()),
        };
        let driver = tokio::spawn(Driver::new(parts).run());
        Ok(GossipNode::new(NodeParts {
            addr: me,
            local_addr,
            commands: commands_tx,
            neighbors: neighbors_rx,
            events,
            policy: self.policy,
            max_minting: self.max_minting,
            driver,
        }))
    }
}
