//! The netaio-native local API: applications written with netaio connect to the daemon with a
//! `TcpClient` (on its Unix socket, `[native] socket`, or on loopback TCP), say hello, register the routes they serve, and call the routes
//! other daemons' applications serve, by the daemon's peer id.
//!
//! ```text
//!   app B ── CALL (peer A, uri, body) ──▶ daemon B ── PEER_CALL (uri, body) ──▶ daemon A ── request (uri) ──▶ app A
//!         ◀── reply ─────────────────────          ◀── reply ───────────────────         ◀── reply ────────────
//! ```
//!
//! Every request is a netaio `REQUEST_URI` message answered with `RESPOND_URI` (or an error
//! reply):
//!
//! | uri | content | answer |
//! |---|---|---|
//! | [`HELLO_URI`] | `version: u16 \| features: u32` | `version: u16 \| features: u32 \| peer id (UTF-8)`; another version: `NOT_PERMITTED` naming the one spoken |
//! | [`SERVE_URI`] | the uri the application serves | `OK`; requests for it then reach the application as `REQUEST_URI` messages with that uri on this connection |
//! | [`CALL_URI`] | `peer_len: u8 \| peer \| uri_len: u16 \| uri \| body`; peer: `ID` (known) or `ID@host:port` (remembered) | the remote application's reply content; `NOT_FOUND` if nobody serves the uri there, `ERROR` if the peer cannot be reached |
//! | [`PEER_HELLO_URI`] | (daemon to daemon) `x25519 key \| ed25519 key` (32 + 32), the caller's | the same of the called daemon; the connection's peer is then the caller (its id derived from these keys) |
//! | [`PEER_CALL_URI`] | (daemon to daemon, after PEER_HELLO; encrypted and signed with the host keys) `uri_len: u16 \| uri \| body` | the served application's reply content, encrypted and signed the same way |
//! | [`GOSSIP_URI`] | one gossip module API message (500 ANNOUNCE, 501 NOTIFY, 503 VALIDATION) in its byte layout | `OK`; malformed: `ERROR`; what closes a gossip module API connection (a validation for an unknown id, …) closes this one |
//! | [`SUBSCRIBE_URI`] | `data_type: u16 \| validate: u8` | `OK`; with `validate` 0 the application is notified without being asked to validate (message id 0) |
//! | (pushed) [`NOTIFICATION_URI`] | a 502 GOSSIP NOTIFICATION in its byte layout, as `NOTIFY_URI` | the application answers with a VALIDATION on [`GOSSIP_URI`] (unless it subscribed without validation) |
//! | [`PEERS_URI`] | — | the gossip neighbours' addresses, one a line |
//! | [`WATCH_URI`] | — | `next_id: u64`; from then on each neighbour event is sent to this connection as a `NOTIFY_URI` message on [`PEER_EVENT_URI`]: `id: u64 \| kind: u8 (1 up, 2 down) \| address` |
//!
//! Event ids are consecutive: a gap means events were lost (the connection's queue was full, or
//! the daemon fell behind the node's event queue).
//!
//! Everything but HELLO needs a HELLO first on the connection. With `allowed_uids`, HELLO is
//! refused (`NOT_PERMITTED`) to a process whose uid is not listed: on the Unix socket the uid is
//! the kernel's record of the connecting process (`SO_PEERCRED`); on loopback TCP it is read from
//! the kernel's socket tables ([`crate::peercred`]). The socket file's mode (`socket_mode`)
//! decides first who may connect at all.
//!
//! A daemon's peer id is derived from its host key: netaio-asymmetric's self-certifying
//! [`peer_id`](netaio_asymmetric::peer_id) of its public keys, in hex (32 characters), so it
//! stays the same across restarts and addresses, and nobody else can answer to it. A call to a
//! peer id goes through `netaio::reach`: first to the address given with it (`ID@host:port`,
//! remembered for later calls by the bare id), else the address the other daemons' gossip filed
//! in the [`Directory`](crate::directory::Directory), then through the relay (`[native] relay`, where
//! every daemon configured with it reserves its id); the daemons greet each other with their public keys on [`PEER_HELLO_URI`] (the
//! caller checks that the keys it gets are those of the id it wants), and PEER_CALL requests
//! and their replies carry the per-peer plugins the gossip traffic between daemons carries
//! ([`netaio_gossip::net::peer_plugins`]: X25519 encryption, Ed25519 signatures). A PEER_CALL
//! that is not sealed by the greeted peer's keys is refused before it reaches an application.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use netaio::plugin::Plugins;
use netaio::reach::Reach;
use netaio::router::{Content, Context};
use netaio::tcp::ConnectionId;
use netaio::{MessageType, ServerHandle, TcpClient, TcpServer};
use netaio_asymmetric::{AsymmetricPeerPlugin, Identity, PublicKeys};
use netaio_gossip::GossipNode;
use tokio::sync::mpsc;

use crate::core::ConnId;
use crate::daemon::ApiEvent;

mod access;
mod events;
mod local;
mod peer;

use access::bind_local;
pub use access::uid_allowed;
use events::{forget_closed, push_events};
pub use local::call_content;
pub use peer::peer_id_text;
use peer::{Known, SharedLookup, hold_reservation, peer_call, peer_hello, relayed_hello};

/// The native API's version.
pub const NATIVE_VERSION: u16 = 1;
/// Features: serving routes.
pub const FEATURE_SERVE: u32 = 1;
/// Features: calling peers.
pub const FEATURE_CALL: u32 = 2;
/// The handshake.
pub const HELLO_URI: &str = "netaiod/hello";
/// Registers a served uri.
pub const SERVE_URI: &str = "netaiod/serve";
/// Calls a uri served behind another daemon.
pub const CALL_URI: &str = "netaiod/call";
/// Daemon to daemon: a call for a uri served here (sealed with the host keys).
pub const PEER_CALL_URI: &str = "netaiod/peer-call";
/// Daemon to daemon: the public keys, before calls.
pub const PEER_HELLO_URI: &str = "netaiod/peer-hello";
/// Peer ids whose address a daemon remembers (from `ID@host:port`); more are used for their
/// call but not remembered.
pub const MAX_KNOWN_PEERS: usize = 1024;
/// A peer id's length in bytes (its text is twice as long, in hex).
pub const PEER_ID_LEN: usize = netaio_asymmetric::PEER_ID_LEN;
/// Lists the gossip neighbours.
pub const PEERS_URI: &str = "netaiod/peers";
/// Subscribes the connection to neighbour events.
pub const WATCH_URI: &str = "netaiod/watch";
/// A neighbour event pushed to a watching connection.
pub const PEER_EVENT_URI: &str = "netaiod/peer-event";
/// Event kind: a neighbour came up.
pub const PEER_UP: u8 = 1;
/// Event kind: a neighbour went down.
pub const PEER_DOWN: u8 = 2;
/// Connections watching events at once.
pub const MAX_WATCHERS: usize = 64;
/// Carries one gossip module API message (ANNOUNCE, NOTIFY, VALIDATION) in its byte layout.
pub const GOSSIP_URI: &str = "netaiod/gossip";
/// Subscribes to a data type: `data_type: u16 | validate: u8`.
pub const SUBSCRIBE_URI: &str = "netaiod/subscribe";
/// A GOSSIP NOTIFICATION (its byte layout) pushed to a subscribed connection.
pub const NOTIFICATION_URI: &str = "netaiod/notification";
/// Routes registered at once (over all applications).
pub const MAX_ROUTES: usize = 256;

/// The native API's settings (`[native]` in the INI file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeConfig {
    /// Where local applications connect over TCP (loopback), if they do.
    pub address: Option<SocketAddr>,
    /// The Unix socket local applications connect to, if any (a stale socket file there is
    /// replaced; the file is removed at [`Native::shutdown`]).
    pub socket: Option<std::path::PathBuf>,
    /// The socket file's mode (`0o600`: the daemon's user only).
    pub socket_mode: u32,
    /// Where other daemons connect for calls.
    pub peer_address: SocketAddr,
    /// A relay at which this daemon reserves its peer id, and through which it calls a peer it
    /// cannot reach directly.
    pub relay: Option<SocketAddr>,
    /// Time a call may take end to end.
    pub call_timeout: Duration,
    /// The uids whose applications may say hello (none: any): on the Unix socket by the
    /// connecting process's credentials, on loopback TCP through the kernel's socket tables.
    pub allowed_uids: Vec<u32>,
    /// Proof of work another daemon's PEER_HELLO must carry (`[gossip] admission_difficulty`:
    /// leading zero bits of a `HashcashAuth` stamp; 0: none); this daemon's greetings carry as
    /// much.
    pub admission_difficulty: u32,
}

/// Why the native API did not start.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// A server could not be bound.
    #[error(transparent)]
    Bind(#[from] netaio::BindError),
    /// A route could not be added.
    #[error(transparent)]
    Route(#[from] netaio::router::RouteError),
    /// The socket file's mode could not be set.
    #[error("cannot set the mode of {}: {source}", path.display())]
    SocketMode {
        /// The socket file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither a socket nor an address to serve local applications on.
    #[error("the native API needs a socket or an address")]
    NoListener,
}

#[derive(Debug)]
struct State {
    peer_id: OnceLock<String>,
    /// The local server, to call applications on their connections.
    local: OnceLock<ServerHandle>,
    routes: Mutex<HashMap<Bytes, ConnectionId>>,
    greeted: Mutex<HashSet<ConnectionId>>,
    watchers: Mutex<HashSet<ConnectionId>>,
    /// The id the next neighbour event gets.
    next_event: std::sync::atomic::AtomicU64,
    node: GossipNode,
    /// The daemon loop's inbox (gossip for native applications).
    gossip: mpsc::Sender<ApiEvent>,
    /// Native connections that said hello → their number in the daemon's core.
    conn_ids: Mutex<HashMap<ConnectionId, ConnId>>,
    peers: TcpClient,
    /// This daemon's public keys (what PEER_HELLO tells).
    keys: PublicKeys,
    /// PEER_CALL's plugins (the gossip traffic's): X25519 encryption, Ed25519 signatures.
    sealed: Plugins,
    /// Peer id → its peer-call address, learnt from CALLs (`ID@host:port`); and the relay.
    known: Arc<Known>,
    /// Reaches other daemons: by `known`, direct or through the relay.
    reach: Reach,
    /// The proof of work stamped on this daemon's greetings (empty when admission is off).
    stamp: Plugins,
    /// Greeted daemons' records (their keys), by id.
    records: Mutex<HashMap<[u8; PEER_ID_LEN], Arc<netaio::peer::Peer>>>,
    timeout: Duration,
    allowed_uids: Vec<u32>,
}

/// The running native API: the local server and the peer-call server.
#[derive(Debug)]
pub struct Native {
    local: ServerHandle,
    /// The local server's task: awaited at shutdown, so that the socket file is gone when
    /// `shutdown` returns.
    local_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    peer: ServerHandle,
    peer_id: String,
    /// The task holding the reservation at the relay, if one is configured.
    reservation: Option<tokio::task::JoinHandle<()>>,
    /// The client of calls to other daemons (and of the relay).
    peers: TcpClient,
}

impl Native {
    /// Binds both servers and serves.
    pub(crate) async fn start(
        config: &NativeConfig,
        identity: &Identity,
        node: GossipNode,
        gossip: mpsc::Sender<ApiEvent>,
        directory: Arc<crate::directory::Directory>,
    ) -> Result<Self, NativeError> {
        let peers = TcpClient::builder()
            .request_timeout(config.call_timeout)
            .connect_timeout(config.call_timeout)
            .peer_plugin(AsymmetricPeerPlugin)
            .build();
        // Relayed callers are recorded in this client's peer table, all at the relay's address.
        peers.peers().set_max_per_ip(MAX_KNOWN_PEERS);
        let keys = identity.public_keys();
        let peer_id = peer_id_text(&keys);
        let known = Arc::new(Known::new(config.relay, directory));
        let reach = Reach::builder()
            .tcp(peers.clone())
            .lookup(SharedLookup(known.clone()))
            // Its own table: the client's (relayed callers at the relay's address) gives no way.
            .peer_table(netaio::peer::PeerTable::new())
            .build();
        // Admission: greetings must carry the work (checked by the route's plugins before the
        // handler decodes anything); this daemon's own carry as much.
        let bits = config.admission_difficulty;
        let (admitting, stamping) = netaio_gossip::net::admission_plugins(bits);
        let state = Arc::new(State {
            peer_id: OnceLock::new(),
            local: OnceLock::new(),
            routes: Mutex::new(HashMap::new()),
            greeted: Mutex::new(HashSet::new()),
            watchers: Mutex::new(HashSet::new()),
            next_event: std::sync::atomic::AtomicU64::new(0),
            node,
            gossip,
            conn_ids: Mutex::new(HashMap::new()),
            peers,
            keys,
            sealed: netaio_gossip::net::peer_plugins(identity),
            known: known.clone(),
            reach,
            stamp: stamping,
            records: Mutex::new(HashMap::new()),
            timeout: config.call_timeout,
            allowed_uids: config.allowed_uids.clone(),
        });
        let s = state.clone();
        let peer_server = TcpServer::builder()
            .address(config.peer_address)
            .peer_plugin(AsymmetricPeerPlugin)
            .bind()
            .await?;
        peer_server.handle().on_with(
            (MessageType::REQUEST_URI, PEER_HELLO_URI),
            move |ctx: Context, Content(c): Content| {
                let s = s.clone();
                async move { peer_hello(&s, &ctx, c) }
            },
            admitting.clone(),
        )?;
        let s = state.clone();
        // Only requests sealed by the greeted daemon's keys reach the handler.
        peer_server.handle().on_with(
            (MessageType::REQUEST_URI, PEER_CALL_URI),
            move |Content(c): Content| {
                let s = s.clone();
                async move { peer_call(&s, c).await }
            },
            state.sealed.clone(),
        )?;
        // What comes through the relay arrives on the client's connection to it.
        let s = state.clone();
        state.peers.on_with(
            (MessageType::REQUEST_URI, PEER_HELLO_URI),
            move |ctx: Context, Content(c): Content| {
                let s = s.clone();
                async move { relayed_hello(&s, &ctx, c) }
            },
            admitting,
        )?;
        let s = state.clone();
        state.peers.on_with(
            (MessageType::REQUEST_URI, PEER_CALL_URI),
            move |Content(c): Content| {
                let s = s.clone();
                async move { peer_call(&s, c).await }
            },
            state.sealed.clone(),
        )?;
        let _ = state.peer_id.set(peer_id.clone());
        let local_server = bind_local(config, local::router(&state)).await?;
        let local = local_server.handle();
        let peer = peer_server.handle();
        let _ = state.local.set(local.clone());
        let local_task = tokio::spawn(local_server.serve());
        tokio::spawn(push_events(state.clone(), state.node.events()));
        tokio::spawn(forget_closed(state.clone(), local.events()));
        tokio::spawn(peer_server.serve());
        let reservation = config.relay.map(|relay| {
            let id = Bytes::copy_from_slice(&netaio_asymmetric::peer_id(&keys));
            tokio::spawn(hold_reservation(state.clone(), relay, id))
        });
        tracing::info!(local = %local.local_addr(), socket = ?config.socket, peer = %peer.local_addr(), peer_id = %peer_id, "native API started");
        Ok(Self {
            local,
            local_task: Mutex::new(Some(local_task)),
            peer,
            peer_id,
            reservation,
            peers: state.peers.clone(),
        })
    }

    /// Where local applications connect over TCP (with only a socket: `[100::ffff:ffff]:0`,
    /// see [`netaio::tcp::TcpServerBuilder::bind_unix`]).
    pub fn local_addr(&self) -> SocketAddr {
        self.local.local_addr()
    }

    /// The Unix socket local applications connect to, if configured.
    pub fn socket_path(&self) -> Option<&std::path::Path> {
        self.local.unix_path()
    }

    /// This daemon's peer id (from its host key: [`peer_id_text`]).
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// Where other daemons connect for calls (`peer_address`).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer.local_addr()
    }

    /// Stops both servers, gives up the reservation at the relay and closes the connections to
    /// other daemons (a daemon started again with the same host key then holds its id alone).
    pub async fn shutdown(&self) {
        self.local.shutdown();
        self.peer.shutdown();
        // Its end removes the socket file (the server's own shutdown timeout bounds the wait).
        let task = self.local_task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        if let Some(task) = &self.reservation {
            task.abort();
        }
        // The client's routes hold the state, which holds the client: removed, the cycle ends.
        self.peers
            .remove_handler((MessageType::REQUEST_URI, PEER_HELLO_URI));
        self.peers
            .remove_handler((MessageType::REQUEST_URI, PEER_CALL_URI));
        self.peers.close_all().await;
    }
}
