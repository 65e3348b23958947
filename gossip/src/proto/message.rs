//! The protocol messages exchanged between peers (their wire form is in [`wire`](super::wire)).

use std::fmt;

use bytes::Bytes;

use super::{MessageId, TopicId};

/// One protocol message between two peers.
///
/// Membership (HyParView): `Join` … `ShuffleReply`. Broadcast (Plumtree): `Gossip` … `Prune`.
/// Topics and anti-entropy: `Subscriptions` … `Fetched`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message<P> {
    /// A new node asks the receiver, its bootstrap peer, to take it as a neighbour and introduce
    /// it to the swarm.
    Join,
    /// Introduces `peer`, which joined, along a random walk of `ttl` more hops.
    ForwardJoin {
        /// The node that joined.
        peer: P,
        /// Hops left in the walk.
        ttl: u8,
    },
    /// Asks the receiver to become a neighbour; a high-priority request (the sender has no
    /// neighbour left) cannot be refused.
    Neighbor {
        /// Whether the receiver must accept.
        high_priority: bool,
    },
    /// Answers [`Neighbor`](Self::Neighbor) (or [`Join`](Self::Join)): the two are now neighbours.
    NeighborAccept,
    /// Answers [`Neighbor`](Self::Neighbor): no room; the sender stays in the passive view.
    NeighborRefuse,
    /// The link ends; with `alive`, the sender stays up (keep it as a passive peer).
    Disconnect {
        /// The sender is not shutting down.
        alive: bool,
    },
    /// Exchanges passive-view samples with the node at the end of a random walk.
    Shuffle {
        /// The node that started the shuffle (the reply goes to it).
        origin: P,
        /// Hops left in the walk.
        ttl: u8,
        /// A sample of the origin's views, the origin included.
        peers: Vec<P>,
    },
    /// Answers [`Shuffle`](Self::Shuffle) with a sample of the replier's passive view.
    ShuffleReply {
        /// The sample.
        peers: Vec<P>,
    },
    /// A message in full, pushed along the tree or answering a graft.
    Gossip(Gossip),
    /// Announces messages by id (to lazy neighbours).
    IHave(Vec<Announcement>),
    /// Asks for an announced message that has not come along the tree (with `id`), and/or adds
    /// the link to the receiver's tree (with `join`).
    Graft {
        /// The message wanted, if any.
        id: Option<MessageId>,
        /// Whether the link joins the tree (the sender's tree is broken, or it has none): the
        /// receiver pushes payloads over it from now on. Without it, only the message is sent.
        join: bool,
    },
    /// Removes the link from the receiver's tree (the sender got a duplicate over it).
    Prune,
    /// The sender's subscribed topics (the whole set, replacing any earlier one).
    Subscriptions(Vec<TopicId>),
    /// Asks for the ids the receiver holds of these topics (anti-entropy).
    SyncRequest(Vec<TopicId>),
    /// Answers [`SyncRequest`](Self::SyncRequest) for one topic: ids held, newest first.
    SyncIds {
        /// The topic.
        topic: TopicId,
        /// Ids held, at most the configured maximum.
        ids: Vec<MessageId>,
    },
    /// Asks for these messages in full (ids the sender lacked after a
    /// [`SyncIds`](Self::SyncIds)).
    Fetch(Vec<MessageId>),
    /// Answers [`Fetch`](Self::Fetch): one message in full, not to be forwarded.
    Fetched(Gossip),
}

impl<P> Message<P> {
    /// Whether the message carries a payload (what the relative message redundancy counts).
    pub fn is_payload(&self) -> bool {
        matches!(self, Self::Gossip(_) | Self::Fetched(_))
    }

    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Join => "Join",
            Self::ForwardJoin { .. } => "ForwardJoin",
            Self::Neighbor { .. } => "Neighbor",
            Self::NeighborAccept => "NeighborAccept",
            Self::NeighborRefuse => "NeighborRefuse",
            Self::Disconnect { .. } => "Disconnect",
            Self::Shuffle { .. } => "Shuffle",
            Self::ShuffleReply { .. } => "ShuffleReply",
            Self::Gossip(_) => "Gossip",
            Self::IHave(_) => "IHave",
            Self::Graft { .. } => "Graft",
            Self::Prune => "Prune",
            Self::Subscriptions(_) => "Subscriptions",
            Self::SyncRequest(_) => "SyncRequest",
            Self::SyncIds { .. } => "SyncIds",
            Self::Fetch(_) => "Fetch",
            Self::Fetched(_) => "Fetched",
        }
    }
}

/// A message in full: what a publisher sends and relays forward.
#[derive(Clone, PartialEq, Eq)]
pub struct Gossip {
    /// Its id.
    pub id: MessageId,
    /// Its topic.
    pub topic: TopicId,
    /// Hops it has travelled before this one: 0 when its publisher sends it. A node forwards it
    /// with `hops + 1`, and not at all once that reaches the hop budget.
    pub hops: u8,
    /// Whether this copy left the tree somewhere on its way (a node grafted it): a duplicate of
    /// it then says nothing about a cycle in the tree, and prunes nothing.
    pub repaired: bool,
    /// The content (for bulletins: header and content, checked by the [`Host`](super::Host)).
    pub payload: Bytes,
}

impl fmt::Debug for Gossip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gossip")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("hops", &self.hops)
            .field("repaired", &self.repaired)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .finish()
    }
}

/// One entry of an [`IHave`](Message::IHave): a message the sender has, and the hops it would
/// carry if the sender sent it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Announcement {
    /// The message.
    pub id: MessageId,
    /// Its hop count as the announcer would send it.
    pub hops: u8,
}
