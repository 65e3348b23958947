//! [`Subscriptions`]: the topics a node follows. By default the "node beacon channel" and the
//! node's private delivery topic `SHA-256(delivery_code ‖ address)`, whose delivery code it can
//! rotate ([`DeliveryCodeChanged`], an event for the application to tell its contacts).

use std::collections::BTreeSet;

use crate::ids::TopicId;

/// Length of the delivery codes this crate generates (Python's `token_bytes(8)`).
pub const DELIVERY_CODE_LEN: usize = 8;

/// The topic set is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("already subscribed to the maximum of {max} topics")]
pub struct TooManyTopics {
    /// The bound.
    pub max: usize,
}

/// The delivery code changed: the application tells its contacts (who publish to the node's
/// delivery topic) the new code (Python's `notify_changed_delivery_code` action). The node
/// follows the new topic and no longer the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCodeChanged {
    /// The code before.
    pub old_code: Vec<u8>,
    /// The code now.
    pub new_code: Vec<u8>,
    /// The delivery topic before (no longer followed).
    pub old_topic: TopicId,
    /// The delivery topic now (followed).
    pub new_topic: TopicId,
}

/// The topics a node follows, at most [`max_topics`](Self::max_topics) (default 1,024).
///
/// ```
/// use netaio_gossip::{Subscriptions, TopicId};
///
/// let address = [7u8; 32]; // the node's public key, say
/// let mut subs = Subscriptions::with_delivery_code(address, *b"code0001");
/// assert!(subs.is_subscribed(&TopicId::beacon()));
/// assert!(subs.is_subscribed(&TopicId::delivery(b"code0001", &address)));
///
/// let weather = TopicId::from_descriptor(b"weather");
/// assert!(subs.subscribe(weather)?);
///
/// let changed = subs.rotate_delivery_code_to(*b"code0002");
/// assert_eq!(changed.new_topic, TopicId::delivery(b"code0002", &address));
/// assert!(!subs.is_subscribed(&changed.old_topic));
/// assert_eq!(subs.len(), 3);
/// # Ok::<(), netaio_gossip::TooManyTopics>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriptions {
    address: Vec<u8>,
    delivery_code: Vec<u8>,
    topics: BTreeSet<TopicId>,
    max_topics: usize,
}

impl Subscriptions {
    /// Default bound on the topics followed.
    pub const DEFAULT_MAX_TOPICS: usize = 1_024;

    /// The subscriptions of the node at `address` (its public key, in the Python library), with
    /// a random 8-byte delivery code: the beacon topic and its delivery topic.
    pub fn new(address: impl Into<Vec<u8>>) -> Self {
        Self::with_delivery_code(address, random_code())
    }

    /// The same with this delivery code (any length, as Python accepts).
    pub fn with_delivery_code(address: impl Into<Vec<u8>>, code: impl Into<Vec<u8>>) -> Self {
        let address = address.into();
        let delivery_code = code.into();
        let topics = BTreeSet::from([
            TopicId::beacon(),
            TopicId::delivery(&delivery_code, &address),
        ]);
        Self {
            address,
            delivery_code,
            topics,
            max_topics: Self::DEFAULT_MAX_TOPICS,
        }
    }

    /// Follow at most `n` topics (at least 2, the defaults; default 1,024). Topics already
    /// followed stay.
    #[must_use]
    pub fn max_topics(mut self, n: usize) -> Self {
        self.max_topics = n.max(2);
        self
    }

    /// The bound on topics.
    pub fn get_max_topics(&self) -> usize {
        self.max_topics
    }

    /// The node's address.
    pub fn address(&self) -> &[u8] {
        &self.address
    }

    /// The current delivery code.
    pub fn delivery_code(&self) -> &[u8] {
        &self.delivery_code
    }

    /// The current delivery topic.
    pub fn delivery_topic(&self) -> TopicId {
        TopicId::delivery(&self.delivery_code, &self.address)
    }

    /// Follow `topic`: `Ok(true)` if it is new, `Ok(false)` if already followed.
    pub fn subscribe(&mut self, topic: TopicId) -> Result<bool, TooManyTopics> {
        if self.topics.contains(&topic) {
            return Ok(false);
        }
        if self.topics.len() >= self.max_topics {
            return Err(TooManyTopics {
                max: self.max_topics,
            });
        }
        Ok(self.topics.insert(topic))
    }

    /// Stop following `topic`; whether it was followed. (The beacon and delivery topics can be
    /// left too, as in Python.)
    pub fn unsubscribe(&mut self, topic: &TopicId) -> bool {
        self.topics.remove(topic)
    }

    /// Whether `topic` is followed.
    pub fn is_subscribed(&self, topic: &TopicId) -> bool {
        self.topics.contains(topic)
    }

    /// The topics followed, in id order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicId> {
        self.topics.iter()
    }

    /// Number of topics followed.
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    /// Whether no topic is followed.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Replace the delivery code by a new random one (Python's `update_delivery_code`).
    pub fn rotate_delivery_code(&mut self) -> DeliveryCodeChanged {
        self.rotate_delivery_code_to(random_code())
    }

    /// Replace the delivery code by `code`: leave the old delivery topic, follow the new one
    /// (even at the topic bound, since one leaves as one comes). The event is for the
    /// application to tell its contacts.
    pub fn rotate_delivery_code_to(&mut self, code: impl Into<Vec<u8>>) -> DeliveryCodeChanged {
        let old_topic = self.delivery_topic();
        let old_code = std::mem::replace(&mut self.delivery_code, code.into());
        let new_topic = self.delivery_topic();
        self.topics.remove(&old_topic);
        self.topics.insert(new_topic);
        DeliveryCodeChanged {
            old_code,
            new_code: self.delivery_code.clone(),
            old_topic,
            new_topic,
        }
    }
}

fn random_code() -> [u8; DELIVERY_CODE_LEN] {
    rand::random()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The Python library's `Node(bytes(range(32)), delivery_code=bytes.fromhex('0102030405060708'))`
    /// follows exactly these two topics (commit 09077e3).
    #[test]
    fn default_topics_match_python() {
        let address: Vec<u8> = (0u8..32).collect();
        let subs = Subscriptions::with_delivery_code(address, [1, 2, 3, 4, 5, 6, 7, 8]);
        let topics: Vec<String> = subs.topics().map(|t| t.to_string()).collect();
        assert_eq!(
            topics,
            [
                "6b3b5d67c9d9ef71b94b1e81b88a4761ef4ca4cff5bb0030a485825229d1f135",
                "e1f2dec91e2405540f00893946b634d85e0227c40dd70dc38fcf8ec6ff9e9b94",
            ]
        );
    }

    #[test]
    fn random_codes_differ_and_rotation_moves_the_delivery_topic() {
        let mut subs = Subscriptions::new([9u8; 32]);
        assert_eq!(subs.delivery_code().len(), DELIVERY_CODE_LEN);
        let before = subs.delivery_topic();
        assert!(subs.is_subscribed(&before));
        let changed = subs.rotate_delivery_code();
        assert_ne!(changed.old_code, changed.new_code, "a fresh random code");
        assert_eq!(changed.old_topic, before);
        assert_eq!(changed.new_topic, subs.delivery_topic());
        assert!(subs.is_subscribed(&changed.new_topic));
        assert!(!subs.is_subscribed(&before));
        assert!(subs.is_subscribed(&TopicId::beacon()));
        assert_eq!(subs.len(), 2);
        assert_ne!(
            Subscriptions::new([9u8; 32]).delivery_code(),
            Subscriptions::new([9u8; 32]).delivery_code()
        );
    }

    #[test]
    fn bounded_in_topics() {
        let mut subs = Subscriptions::with_delivery_code([1u8; 32], b"c".to_vec()).max_topics(3);
        assert!(subs.subscribe(TopicId::from_descriptor(b"a")).unwrap());
        assert!(
            !subs.subscribe(TopicId::from_descriptor(b"a")).unwrap(),
            "already followed"
        );
        assert_eq!(
            subs.subscribe(TopicId::from_descriptor(b"b")),
            Err(TooManyTopics { max: 3 })
        );
        // Rotation at the bound swaps one topic for another.
        subs.rotate_delivery_code_to(b"d".to_vec());
        assert_eq!(subs.len(), 3);
        assert!(subs.unsubscribe(&TopicId::beacon()));
        assert!(!subs.unsubscribe(&TopicId::beacon()));
        assert!(subs.subscribe(TopicId::from_descriptor(b"b")).unwrap());
        assert_eq!(
            Subscriptions::new([0u8; 1]).max_topics(0).get_max_topics(),
            2
        );
    }
}
