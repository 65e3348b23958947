//! What a [`GossipNode`](super::GossipNode) tells the application: events, deliveries, publish
//! outcomes, errors and counters.

use std::net::SocketAddr;

use crate::ids::BulletinId;
use crate::policy::{MintError, Refused, VerifiedBulletin};
use crate::proto::{self, Published};
use crate::subscriptions::DeliveryCodeChanged;

/// Something that happened to the node, from [`GossipNode::events`](super::GossipNode::events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GossipEvent {
    /// A peer became a neighbour (its address: where it listens).
    NeighborUp(SocketAddr),
    /// A neighbour left the active view (it left, failed, was replaced or banned).
    NeighborDown(SocketAddr),
    /// A peer's send queue overflowed: messages to it were dropped (the lowest priority first)
    /// and it no longer gets bulletins pushed in full. Once per overflow episode.
    SlowPeer {
        /// The peer.
        peer: SocketAddr,
        /// Messages dropped by the push that overflowed.
        dropped: usize,
    },
    /// A peer sent a bulletin without a valid proof of work (or whose content does not match
    /// its id): it is dropped from the views and refused for the protocol's `ban_duration`.
    PeerBanned {
        /// The peer.
        peer: SocketAddr,
        /// The refused bulletin's id (as the message claimed it).
        bulletin: BulletinId,
    },
    /// The connection this node opened to `peer` failed, or could not be opened: the dial was
    /// refused or timed out, the handshake was refused (another swarm secret, an untrusted key,
    /// …), the peer closed it or stopped answering pings. The protocol treats the peer as gone
    /// (a neighbour is replaced).
    LinkLost {
        /// The peer.
        peer: SocketAddr,
        /// What happened, for a log.
        reason: String,
    },
    /// A held bulletin ([`Delivery::held`]) was released as invalid: dropped unforwarded, and
    /// counted against the neighbour it came from (`NodeStats::protocol.discarded`).
    Discarded {
        /// The neighbour it came from.
        peer: SocketAddr,
        /// The bulletin.
        bulletin: BulletinId,
    },
    /// The node's delivery code changed ([`GossipNode::rotate_delivery_code`](super::GossipNode::rotate_delivery_code)):
    /// tell the contacts who publish to the delivery topic.
    DeliveryCodeChanged(DeliveryCodeChanged),
}

/// A verified bulletin of a subscribed topic, new to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The bulletin.
    pub bulletin: VerifiedBulletin,
    /// The neighbour it came from (not necessarily its publisher).
    pub from: SocketAddr,
    /// Whether anti-entropy fetched it (the node missed it while it spread).
    pub fetched: bool,
    /// Whether the node holds it for the application's verdict (the protocol's
    /// `hold_subscribed`): it is neither stored nor forwarded until
    /// [`GossipNode::release`](super::GossipNode::release).
    pub held: bool,
    /// Hops it travelled before the neighbour it came from (0: that neighbour published it).
    pub hops: u8,
}

/// What [`GossipNode::publish`](super::GossipNode::publish) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The bulletin's id.
    pub id: BulletinId,
    /// Sent to N neighbours (and how many of them subscribe to the topic), sent with no known
    /// subscriber, or not sent for want of neighbours (it is stored, and neighbours subscribed to
    /// the topic fetch it by anti-entropy once there are some).
    pub sent: Published,
}

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The bulletin could not be minted (content too large, clock out of range, no nonce found).
    #[error(transparent)]
    Mint(#[from] MintError),
    /// A bulletin given to `publish_bulletin` fails this node's policy.
    #[error("bulletin refused: {0}")]
    Refused(#[from] Refused),
    /// The protocol refused it (the same bulletin was seen already, or it is too large for a
    /// message).
    #[error(transparent)]
    Protocol(#[from] proto::PublishError),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] NodeStopped),
}

/// Why a subscribe failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The node follows the maximum number of topics already (the smaller of the protocol's
    /// `max_topics` and the subscriptions' bound).
    #[error("already subscribed to the maximum of {max} topics")]
    TooMany {
        /// The bound.
        max: usize,
    },
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] NodeStopped),
}

/// The node has stopped (shut down, or every handle was dropped): nothing can be asked of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the gossip node has stopped")]
pub struct NodeStopped;

/// Counters and sizes, from [`GossipNode::stats`](super::GossipNode::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// The protocol core's counters (payloads received, duplicates, deliveries, rejections, …).
    pub protocol: proto::Stats,
    /// Neighbours (the active view).
    pub neighbors: Vec<SocketAddr>,
    /// Known peers that are not neighbours (the passive view).
    pub passive: Vec<SocketAddr>,
    /// Bulletins stored, and their bytes.
    pub stored: usize,
    /// Bytes of the stored bulletins (headers and contents).
    pub stored_bytes: usize,
    /// Connections this node opened (to neighbours, and to peers it answered).
    pub links: usize,
    /// Frames from peers that were not protocol messages (dropped).
    pub malformed: u64,
    /// Deliveries dropped because a subscriber's queue was full.
    pub subscriber_drops: u64,
}
