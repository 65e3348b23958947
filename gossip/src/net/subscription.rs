//! [`Subscription`]: the stream of verified bulletins of one topic, and the driver's side of it
//! (each subscriber a bounded queue).

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::event::Delivery;
use crate::ids::TopicId;

/// The bulletins of one topic as they arrive, verified and new to this node, from
/// [`GossipNode::subscribe`](super::GossipNode::subscribe). Bulletins this node publishes itself
/// are not delivered here.
///
/// Its queue is bounded (`GossipNodeBuilder::subscription_queue`): a subscriber that does not
/// keep up loses the deliveries that do not fit (counted in `NodeStats::subscriber_drops`); the
/// bulletins stay in the node's store. Dropping it does not unsubscribe the node (it goes on
/// storing and relaying the topic): call `GossipNode::unsubscribe`.
#[derive(Debug)]
pub struct Subscription {
    topic: TopicId,
    rx: mpsc::Receiver<Delivery>,
}

impl Subscription {
    /// The topic.
    pub fn topic(&self) -> TopicId {
        self.topic
    }

    /// The next delivery; `None` once the node has stopped (or unsubscribed from the topic) and
    /// the queue is empty.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// The next delivery if one is waiting.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }
}

/// The subscribers of each topic.
#[derive(Debug)]
pub(crate) struct Subscribers {
    topics: HashMap<TopicId, Vec<mpsc::Sender<Delivery>>>,
    capacity: usize,
    drops: u64,
}

impl Subscribers {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            topics: HashMap::new(),
            capacity: capacity.max(1),
            drops: 0,
        }
    }

    pub(crate) fn add(&mut self, topic: TopicId) -> Subscription {
        let (tx, rx) = mpsc::channel(self.capacity);
        let list = self.topics.entry(topic).or_default();
        list.retain(|s| !s.is_closed());
        list.push(tx);
        Subscription { topic, rx }
    }

    /// Ends the subscriptions of `topic` (their `recv` returns `None` once drained).
    pub(crate) fn remove(&mut self, topic: &TopicId) {
        self.topics.remove(topic);
    }

    pub(crate) fn deliver(&mut self, delivery: Delivery) {
        let topic = delivery.bulletin.bulletin().topic();
        let Some(list) = self.topics.get_mut(&topic) else {
            return;
        };
        list.retain(|s| !s.is_closed());
        if list.is_empty() {
            self.topics.remove(&topic);
            return;
        }
        // The last subscriber takes the delivery itself, the others a clone (a few `Bytes`
        // reference counts).
        let Some((last, rest)) = list.split_last() else {
            return;
        };
        let mut dropped = 0;
        for tx in rest {
            if tx.try_send(delivery.clone()).is_err() {
                dropped += 1;
            }
        }
        if last.try_send(delivery).is_err() {
            dropped += 1;
        }
        if dropped > 0 {
            self.drops += dropped;
            tracing::warn!(?topic, dropped, "subscriber queue full: delivery dropped");
        }
    }

    pub(crate) fn drops(&self) -> u64 {
        self.drops
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::policy::BulletinPolicy;
    use crate::work::ProofOfWork;

    fn delivery(topic: TopicId, content: &str) -> Delivery {
        let policy = BulletinPolicy::default().proof_of_work(ProofOfWork::new(
            netaio_tapehash::Tapehash::v1(1).unwrap(),
            netaio_tapehash::Difficulty::LeadingZeroBits(0),
        ));
        Delivery {
            bulletin: policy
                .mint(topic, content.to_owned(), 1_700_000_000, 0)
                .unwrap(),
            from: "127.0.0.1:1".parse().unwrap(),
            fetched: false,
            held: false,
            hops: 0,
        }
    }

    #[test]
    fn each_subscriber_gets_its_topic_within_its_bound() {
        let (a, b) = (
            TopicId::from_descriptor(b"a"),
            TopicId::from_descriptor(b"b"),
        );
        let mut subs = Subscribers::new(2);
        let mut first = subs.add(a);
        let mut second = subs.add(a);
        let mut other = subs.add(b);
        assert_eq!(first.topic(), a);
        subs.deliver(delivery(a, "1"));
        subs.deliver(delivery(a, "2"));
        subs.deliver(delivery(a, "3"));
        assert_eq!(subs.drops(), 2, "one drop per full subscriber");
        for s in [&mut first, &mut second] {
            assert_eq!(s.try_recv().unwrap().bulletin.bulletin().content(), "1");
            assert_eq!(s.try_recv().unwrap().bulletin.bulletin().content(), "2");
            assert!(s.try_recv().is_none());
        }
        assert!(other.try_recv().is_none());
        // A dropped subscription is forgotten; removing a topic ends its subscriptions.
        drop(first);
        subs.deliver(delivery(a, "4"));
        assert_eq!(subs.drops(), 2);
        assert_eq!(
            second.try_recv().unwrap().bulletin.bulletin().content(),
            "4"
        );
        subs.remove(&a);
        assert!(second.try_recv().is_none());
        subs.deliver(delivery(b, "5"));
        assert_eq!(other.try_recv().unwrap().bulletin.bulletin().content(), "5");
    }
}
