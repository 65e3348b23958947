//! [`Host`]: what the protocol asks of the application (validation and the content store).

use bytes::Bytes;

use super::message::Gossip;
use super::{MessageId, TopicId};

/// The application's answer about a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: deliver (if subscribed), store and forward it.
    Accept,
    /// Not wanted but not the sender's fault (for example a bulletin that expired on the way):
    /// dropped quietly, not remembered as seen.
    Ignore,
    /// Invalid (no valid proof of work, an id that does not match the content): dropped, not
    /// forwarded, and the sender — which should have checked it before forwarding — is banned.
    Reject,
}

/// The application side of a [`Protocol`](super::Protocol): called synchronously while an input is
/// handled.
///
/// Every method has a default: accept everything, store nothing. `()` is such a host.
pub trait Host<P> {
    /// Checks a message received from `from` before anything else is done with it.
    ///
    /// Called once per message id that is new to this node (duplicates are dropped before), for
    /// messages pushed, grafted and fetched alike.
    fn validate(&mut self, from: &P, message: &Gossip) -> Verdict {
        let _ = (from, message);
        Verdict::Accept
    }

    /// Stores an accepted message. `subscribed` says whether this node subscribes to its topic;
    /// a store may keep other topics too, to answer other nodes' anti-entropy.
    fn store(&mut self, message: &Gossip, subscribed: bool) {
        let _ = (message, subscribed);
    }

    /// Ids held of `topic`, newest first, at most `limit` (anti-entropy sends them to a neighbour).
    fn held_ids(&mut self, topic: &TopicId, limit: usize) -> Vec<MessageId> {
        let _ = (topic, limit);
        Vec::new()
    }

    /// Whether the store holds `id`.
    fn holds(&mut self, id: &MessageId) -> bool {
        let _ = id;
        false
    }

    /// The topic and payload of a held message (to answer a graft or a fetch).
    fn payload(&mut self, id: &MessageId) -> Option<(TopicId, Bytes)> {
        let _ = id;
        None
    }
}

impl<P> Host<P> for () {}
