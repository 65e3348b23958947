//! What goes into a [`Protocol`](super::Protocol) and what comes out: inputs, outputs, events,
//! publish outcomes, errors and counters.

use super::MessageId;
use super::message::{Gossip, Message};

/// An input from the network or the clock.
#[derive(Debug, Clone)]
pub enum InEvent<P> {
    /// A message arrived from `from` (decoded with [`wire::decode`](super::wire::decode)).
    Message {
        /// The peer it came from (the transport's authenticated identity of the connection).
        from: P,
        /// The message.
        message: Message<P>,
    },
    /// The connection to a peer failed or broke (a dial that failed, a reset, an end of stream
    /// while the peer was in use). Not for connections the driver closed itself.
    ConnectionLost(P),
    /// The deadline given by [`Protocol::poll_timeout`](super::Protocol::poll_timeout) was reached.
    Timeout,
}

/// Something for the driver to do, from [`Protocol::poll_output`](super::Protocol::poll_output).
#[derive(Debug, Clone)]
pub enum Output<P> {
    /// The peer's queue went from empty to not empty: call
    /// [`Protocol::poll_transmit`](super::Protocol::poll_transmit) for it (opening a connection if
    /// there is none) while its connection can take more. A driver that stopped because the
    /// connection was full resumes when it can write again; it is not told a second time.
    Transmit(P),
    /// The peer is no longer a neighbour: its connection may be closed once its queue is sent.
    Disconnect(P),
    /// For the application.
    Event(Event<P>),
}

/// What the application learns.
#[derive(Debug, Clone)]
pub enum Event<P> {
    /// A valid message of a subscribed topic, new to this node.
    Received {
        /// The neighbour it came from (not necessarily its publisher).
        from: P,
        /// The message; `hops` + 1 is the number of hops it travelled to get here.
        message: Gossip,
        /// Whether anti-entropy fetched it (rather than the broadcast bringing it).
        fetched: bool,
    },
    /// A valid message of a subscribed topic, new to this node, held for the application's
    /// verdict ([`Config::hold_subscribed`](super::Config::hold_subscribed)): it is neither
    /// stored nor forwarded until [`Protocol::release`](super::Protocol::release).
    Held {
        /// The neighbour it came from.
        from: P,
        /// The message.
        message: Gossip,
        /// Whether anti-entropy fetched it.
        fetched: bool,
    },
    /// A held message the application released as invalid: dropped unforwarded, and counted
    /// against the peer it came from ([`Stats::discarded`]).
    Discarded {
        /// The neighbour it came from.
        peer: P,
        /// Its id.
        id: MessageId,
    },
    /// A peer became a neighbour.
    NeighborUp(P),
    /// A neighbour left the active view.
    NeighborDown(P),
    /// A peer's send queue overflowed: messages to it were dropped (lowest priority first) and it
    /// no longer gets payloads pushed. Emitted once per overflow episode.
    SlowPeer {
        /// The peer.
        peer: P,
        /// Messages dropped by the push that overflowed.
        dropped: usize,
    },
    /// A peer sent a message the host rejected, and is banned for `ban_duration`.
    PeerBanned {
        /// The peer.
        peer: P,
        /// The rejected message.
        id: MessageId,
    },
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Sent to `neighbors` neighbours — `pushed` of them got it in full, the others an
    /// announcement — and `subscribers` of them subscribe to the topic.
    Sent {
        /// Neighbours it went to.
        neighbors: usize,
        /// Of which got the payload.
        pushed: usize,
        /// Neighbours subscribed to the topic.
        subscribers: usize,
    },
    /// Sent to `neighbors` neighbours, none of which subscribes to the topic: they relay it, but
    /// no subscriber is known (one may be further away, or none exist).
    NoKnownSubscriber {
        /// Neighbours it went to.
        neighbors: usize,
        /// Of which got the payload.
        pushed: usize,
    },
    /// No neighbour: nothing was sent. The message is remembered as seen; if the host stores
    /// it, neighbours subscribed to its topic fetch it by anti-entropy once there are some.
    NoNeighbors,
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// This node saw a message with this id already (publishing the same content twice needs two
    /// ids: a bulletin's differ by timestamp and nonce).
    #[error("message id {0:?} was seen already")]
    Duplicate(MessageId),
    /// The payload is larger than the configured limit.
    #[error("payload of {len} bytes, at most {max} accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a subscribe was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The node subscribes to the maximum number of topics already.
    #[error("already subscribed to {max} topics, the maximum")]
    TooMany {
        /// The limit.
        max: usize,
    },
}

/// Counters, for measurements (the simulator's RMR and LDH) and monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Payload messages received (`Gossip` and `Fetched`), duplicates included.
    pub payload_received: u64,
    /// Other messages received.
    pub control_received: u64,
    /// Payload messages that were duplicates.
    pub duplicates: u64,
    /// Messages delivered to the application.
    pub delivered: u64,
    /// Messages the host rejected.
    pub rejected: u64,
    /// Messages the host ignored (and, without `relay_unsubscribed`, of unsubscribed topics).
    pub ignored: u64,
    /// Messages held for the application's verdict.
    pub held: u64,
    /// Held messages dropped unreleased because the hold was full.
    pub held_dropped: u64,
    /// Held messages released as invalid.
    pub discarded: u64,
    /// Largest `hops` of a message received new (iroh-gossip's "last delivery hop": the
    /// publisher's neighbours count 0).
    pub max_hops: u8,
    /// Messages dropped because a send queue was full.
    pub queue_drops: u64,
    /// `Graft`s sent asking for a message.
    pub grafts_sent: u64,
    /// `Graft`s sent joining a link to the tree.
    pub joins_sent: u64,
    /// `Prune`s sent.
    pub prunes_sent: u64,
}
