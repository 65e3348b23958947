//! [`SimHost`]: the simulated application of one node — a content store and a stand-in for the
//! proof-of-work check.

use bytes::{BufMut, Bytes, BytesMut};
use rustc_hash::FxHashMap;

use super::network::NodeId;
use crate::proto::{Gossip, Host, MessageId, TopicId, Verdict};

/// Messages one simulated store keeps; beyond it, new ones are not stored.
const MAX_STORED: usize = 1 << 20;

/// Byte 0 of a simulated payload: the stand-in for a valid proof of work.
const VALID: u8 = 1;
/// Byte 0 of a spammer's payload: no valid proof.
const INVALID: u8 = 0;

/// A simulated payload: a flag byte standing in for the proof of work (valid or not), then
/// `body`. The real check (a bulletin's tapehash proof) plugs into [`Host::validate`] the same way.
pub fn payload(valid: bool, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + body.len());
    b.put_u8(if valid { VALID } else { INVALID });
    b.put_slice(body);
    b.freeze()
}

/// One simulated node's application: it accepts payloads whose flag says "valid proof", rejects
/// the others, and stores everything it accepts (every topic: relays answer anti-entropy too).
/// It outlives the node's protocol state when the node is killed.
#[derive(Debug, Default)]
pub struct SimHost {
    pub(crate) topics: Vec<TopicId>,
    messages: FxHashMap<MessageId, (TopicId, Bytes)>,
    by_topic: FxHashMap<TopicId, Vec<MessageId>>,
}

impl SimHost {
    /// Stores a message (the application storing its own publish, or an accepted one).
    pub fn put(&mut self, id: MessageId, topic: TopicId, payload: Bytes) {
        if self.messages.len() >= MAX_STORED || self.messages.contains_key(&id) {
            return;
        }
        self.messages.insert(id, (topic, payload));
        self.by_topic.entry(topic).or_default().push(id);
    }

    /// Whether the store holds `id`.
    pub fn has(&self, id: &MessageId) -> bool {
        self.messages.contains_key(id)
    }

    /// Messages stored.
    pub fn stored(&self) -> usize {
        self.messages.len()
    }
}

impl Host<NodeId> for SimHost {
    fn validate(&mut self, _from: &NodeId, message: &Gossip) -> Verdict {
        if message.payload.first() == Some(&VALID) {
            Verdict::Accept
        } else {
            Verdict::Reject
        }
    }

    fn store(&mut self, message: &Gossip, _subscribed: bool) {
        self.put(message.id, message.topic, message.payload.clone());
    }

    fn held_ids(&mut self, topic: &TopicId, limit: usize) -> Vec<MessageId> {
        self.by_topic
            .get(topic)
            .map(|ids| ids.iter().rev().take(limit).copied().collect())
            .unwrap_or_default()
    }

    fn holds(&mut self, id: &MessageId) -> bool {
        self.messages.contains_key(id)
    }

    fn payload(&mut self, id: &MessageId) -> Option<(TopicId, Bytes)> {
        self.messages.get(id).cloned()
    }
}
