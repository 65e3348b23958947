//! The network binding: the protocol core ([`proto`](crate::proto)) run on netaio TCP
//! connections, with bulletins as its messages ([`BulletinHost`](crate::BulletinHost)).
//!
//! A [`GossipNode`] is a netaio `TcpServer` that accepts the connections its peers open, one
//! `TcpClient` connection (a *link*) per peer it sends to, and a driver task that owns the
//! protocol state: it feeds it the messages that arrive, lost links and deadlines with `now`
//! (tokio's clock), and carries out what it asks — messages onto links, deliveries to
//! [`Subscription`]s, [`GossipEvent`]s.
//!
//! ```text
//!   application ── commands (bounded) ──▶ ┌────────┐ ── frames (bounded per link) ──▶ link task ──▶ TCP ──▶ peer's server
//!   Subscription ◀── deliveries (bounded) ─│ driver │
//!   events ◀── broadcast (bounded) ────────│ proto  │ ◀── messages (bounded, count and bytes) ── server ◀── TCP ◀── peer's link
//!                                          │ + host │ ◀── lost / drained ── link tasks
//!                                          └────────┘
//! ```
//!
//! On the wire, each connection starts with a handshake (a request on [`HELLO_URI`]: the
//! address the dialer listens on, which is its identity in the swarm, and its public keys when
//! the swarm uses them; the listener answers the same about itself). Protocol messages then go
//! one per netaio message of type [`GOSSIP`] with no uri, in their [`wire`](crate::proto::wire)
//! form; an idle link is pinged on [`PING_URI`]. A node sends on the links it opened and
//! receives on the connections its peers opened, so a pair of neighbours has one connection each
//! way, and a link failing (a dial refused, the peer gone, a ping unanswered) is what the
//! protocol hears as a lost connection.
//!
//! The node's plugins: [`secret`](GossipNodeBuilder::secret) puts `HmacAuth` on every message (a
//! closed swarm); [`identity`](GossipNodeBuilder::identity) adds netaio-asymmetric's
//! `X25519Cipher` and `Ed25519Auth` to protocol messages (each encrypted to its receiver and
//! signed), with the keys exchanged in the handshake.
//!
//! Every queue is bounded: commands (64), each link (16 messages ahead of the protocol's own
//! per-peer queue of 1,024 messages / 1 MiB), messages received (1,024 / 4 MiB), each
//! subscription (256 deliveries), events (256); and the connections (64 opened, 256 accepted).

mod builder;
mod driver;
mod event;
mod hello;
mod inbound;
mod link;
mod node;
mod subscription;

use netaio::MessageType;
use netaio::plugin::{HashcashAuth, Plugins};
use netaio_asymmetric::{Ed25519Auth, Identity, X25519Cipher};

pub use builder::{BindError, GossipNodeBuilder, MAX_ADMISSION_DIFFICULTY};
pub use event::{
    Delivery, GossipEvent, NodeStats, NodeStopped, PublishError, PublishOutcome, SubscribeError,
};
pub use hello::HelloError;
pub use node::GossipNode;
pub use subscription::Subscription;

/// The netaio message type of protocol messages (`G`, 71).
pub const GOSSIP: MessageType = MessageType::custom(71);
/// The uri of the handshake (`REQUEST_URI`, answered with `RESPOND_URI`).
pub const HELLO_URI: &str = "gossip/hello";
/// The uri of keepalive pings (`REQUEST_URI`, answered with `RESPOND_URI`).
pub const PING_URI: &str = "gossip/ping";

/// The plugins of proof-of-work admission at `bits` leading zero bits (SHA-256 `HashcashAuth`),
/// as `(admitting, stamping)`: the listener's route requires a stamp and does not stamp its
/// answer, the dialer stamps its handshake and requires none back. Both empty at 0 (off).
/// Other handshakes between the same nodes (netaiod's daemon greetings) use the same pair.
///
/// ```
/// let (admitting, stamping) = netaio_gossip::net::admission_plugins(0);
/// assert!(admitting.is_empty() && stamping.is_empty());
/// ```
pub fn admission_plugins(bits: u32) -> (Plugins, Plugins) {
    if bits == 0 {
        return (Plugins::new(), Plugins::new());
    }
    (
        Plugins::new().auth(HashcashAuth::new(bits).stamp_outgoing(false)),
        Plugins::new().auth(HashcashAuth::new(bits).require_incoming(false)),
    )
}

/// The per-peer plugins of a node with an identity: `X25519Cipher` (each message encrypted to
/// its receiver) and `Ed25519Auth` (signed by the sender), its fields named `sig_ts` and
/// `sig_nonce` because `HmacAuth`, the instance plugin of a closed swarm, uses `ts` and `nonce`
/// in the same message. Protocol messages carry them; other services between the same nodes
/// (netaiod's daemon-to-daemon calls) use the same set. Both sides must know each other's keys
/// (a `Peer` with them on the connection, as the handshake sets).
///
/// ```
/// let plugins = netaio_gossip::net::peer_plugins(&netaio_asymmetric::Identity::generate());
/// assert!(plugins.is_peer_specific());
/// ```
pub fn peer_plugins(identity: &Identity) -> Plugins {
    let signatures = Ed25519Auth::new(identity)
        .ts_field("sig_ts")
        .nonce_field("sig_nonce");
    Plugins::new()
        .cipher(X25519Cipher::new(identity))
        .auth(signatures)
}
