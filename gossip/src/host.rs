//! [`BulletinHost`]: the protocol core's [`Host`] over bulletins — the [`BulletinPolicy`] decides
//! what is valid, the [`ContentStore`] keeps it and answers anti-entropy. Where the data model
//! and the protocol core meet: a message's id is the bulletin's id (the hash of its header), its
//! topic the bulletin's topic, its payload the encoded bulletin.

use std::fmt;

use bytes::Bytes;

use crate::bulletin::Bulletin;
use crate::ids::{BulletinId, TopicId};
use crate::policy::{BulletinPolicy, Refused, VerifiedBulletin};
use crate::proto::{self, Gossip, Host, MessageId, Verdict};
use crate::store::{ContentStore, Inserted, StoreConfig, StoreError};

impl From<BulletinId> for MessageId {
    fn from(id: BulletinId) -> Self {
        MessageId(id.0)
    }
}

impl From<MessageId> for BulletinId {
    fn from(id: MessageId) -> Self {
        BulletinId(id.0)
    }
}

impl From<TopicId> for proto::TopicId {
    fn from(topic: TopicId) -> Self {
        proto::TopicId(topic.0)
    }
}

impl From<proto::TopicId> for TopicId {
    fn from(topic: proto::TopicId) -> Self {
        TopicId(topic.0)
    }
}

/// The application side of a gossip node that spreads bulletins: validation by a
/// [`BulletinPolicy`], storage in a [`ContentStore`].
///
/// - [`validate`](Host::validate): a payload that is not a bulletin, whose header does not hash
///   to the message id or names another topic, that lacks the proof of work or whose content id
///   is not its content's hash is [`Verdict::Reject`]ed (the sender should have checked it before
///   forwarding, and is banned); one that expired, comes from too far in the future or is larger
///   than this node accepts is [`Verdict::Ignore`]d (clocks and limits differ between honest
///   nodes).
/// - [`store`](Host::store): every accepted bulletin goes into the store, whatever its topic (so
///   this node answers other nodes' anti-entropy); one of a subscribed topic is also kept for the
///   driver to deliver ([`take_delivered`](Self::take_delivered)).
/// - The node stores its own publishes itself ([`insert_own`](Self::insert_own)): the protocol
///   core does not call the host for them.
///
/// Time is the host's clock, [`set_now`](Self::set_now) (Unix seconds), set by the driver before
/// each input: the [`Host`] methods take no time.
///
/// ```
/// use std::time::Instant;
/// use netaio_gossip::proto::{Gossip, Host, Verdict};
/// use netaio_gossip::{BulletinHost, BulletinPolicy, StoreConfig, TopicId};
///
/// let now = 1_700_000_000;
/// let mut host = BulletinHost::new(BulletinPolicy::default(), StoreConfig::default());
/// host.set_now(now);
/// let minted = BulletinPolicy::default().mint(TopicId::from_descriptor(b"weather"), "rain", now, 0)?;
/// let gossip = BulletinHost::gossip(&minted);
/// assert_eq!(Host::<u64>::validate(&mut host, &7, &gossip), Verdict::Accept);
/// Host::<u64>::store(&mut host, &gossip, true);
/// assert!(host.store().contains(&minted.id()));
/// assert_eq!(host.take_delivered().map(|v| v.id()), Some(minted.id()));
///
/// // The same header with other content: the content id does not match.
/// let forged = Gossip { payload: [&gossip.payload[..72], b"sun"].concat().into(), ..gossip };
/// assert_eq!(Host::<u64>::validate(&mut host, &7, &forged), Verdict::Reject);
/// # Ok::<(), netaio_gossip::MintError>(())
/// ```
#[derive(Debug)]
pub struct BulletinHost {
    policy: BulletinPolicy,
    store: ContentStore,
    now: u64,
    /// The bulletin `validate` accepted last: `store` follows it for the same id, and then needs
    /// neither to decode nor to verify (a tapehash) again.
    validated: Option<VerifiedBulletin>,
    /// The last accepted bulletin of a subscribed topic, until the driver takes it.
    delivered: Option<VerifiedBulletin>,
}

impl BulletinHost {
    /// A host that accepts what `policy` accepts and keeps it in a store bounded by `store`.
    pub fn new(policy: BulletinPolicy, store: StoreConfig) -> Self {
        Self {
            policy,
            store: ContentStore::new(store),
            now: 0,
            validated: None,
            delivered: None,
        }
    }

    /// Sets the clock (Unix seconds) for the checks and the store.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// The clock.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The policy.
    pub fn policy(&self) -> &BulletinPolicy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &ContentStore {
        &self.store
    }

    /// Removes what expired at the host's clock; how many were removed.
    pub fn expire(&mut self) -> usize {
        self.store.expire(self.now)
    }

    /// Stores a bulletin this node publishes (the protocol core does not call the host for its
    /// own publishes).
    pub fn insert_own(&mut self, bulletin: VerifiedBulletin) -> Result<Inserted, StoreError> {
        self.store.insert(bulletin, self.now)
    }

    /// The bulletin accepted last for a subscribed topic, once: the driver takes it when the
    /// protocol core reports the delivery ([`proto::Event::Received`]).
    pub fn take_delivered(&mut self) -> Option<VerifiedBulletin> {
        self.delivered.take()
    }

    /// The bulletin `validate` accepted last, once, if it is the one with this id: the driver
    /// takes it when the protocol core holds the message for the application's verdict
    /// ([`proto::Event::Held`]).
    pub fn take_validated(&mut self, id: &MessageId) -> Option<VerifiedBulletin> {
        match self.validated.take() {
            Some(v) if MessageId::from(v.id()) == *id => Some(v.detached()),
            other => {
                self.validated = other;
                None
            }
        }
    }

    /// The protocol message of a bulletin: its id, topic, and encoding as the payload, with no
    /// hop yet.
    pub fn gossip(bulletin: &VerifiedBulletin) -> Gossip {
        Gossip {
            id: bulletin.id().into(),
            topic: bulletin.bulletin().topic().into(),
            hops: 0,
            repaired: false,
            payload: bulletin.bulletin().encode(),
        }
    }

    /// The verdict on a received message, and the bulletin when it is accepted.
    fn check(&self, message: &Gossip) -> (Verdict, Option<VerifiedBulletin>) {
        let Ok(bulletin) = Bulletin::decode(message.payload.clone()) else {
            tracing::debug!(id = ?message.id, len = message.payload.len(), "not a bulletin");
            return (Verdict::Reject, None);
        };
        let header = bulletin.header();
        if MessageId::from(header.id()) != message.id
            || proto::TopicId::from(header.topic) != message.topic
        {
            tracing::debug!(id = ?message.id, "message id or topic is not the bulletin's");
            return (Verdict::Reject, None);
        }
        match self.policy.verify(bulletin, self.now) {
            Ok(verified) => (Verdict::Accept, Some(verified)),
            Err(Refused::InsufficientWork { .. } | Refused::ContentMismatch { .. }) => {
                (Verdict::Reject, None)
            }
            Err(
                Refused::Expired { .. } | Refused::FromTheFuture { .. } | Refused::TooLarge { .. },
            ) => (Verdict::Ignore, None),
        }
    }
}

impl<P: fmt::Debug> Host<P> for BulletinHost {
    fn validate(&mut self, _from: &P, message: &Gossip) -> Verdict {
        let (verdict, verified) = self.check(message);
        self.validated = verified;
        verdict
    }

    fn store(&mut self, message: &Gossip, subscribed: bool) {
        let verified = match self.validated.take() {
            Some(v) if MessageId::from(v.id()) == message.id => v,
            // Not what `validate` just accepted (a caller other than the protocol core):
            // check it again rather than store it unverified.
            _ => match self.check(message) {
                (Verdict::Accept, Some(v)) => v,
                _ => return,
            },
        };
        let verified = verified.detached();
        if let Err(e) = self.store.insert(verified.clone(), self.now) {
            tracing::debug!(id = ?message.id, error = %e, "accepted bulletin not stored");
        }
        if subscribed {
            self.delivered = Some(verified);
        }
    }

    fn held_ids(&mut self, topic: &proto::TopicId, limit: usize) -> Vec<MessageId> {
        self.store
            .newest_ids(&TopicId::from(*topic), limit)
            .into_iter()
            .map(MessageId::from)
            .collect()
    }

    fn holds(&mut self, id: &MessageId) -> bool {
        self.store.contains(&BulletinId::from(*id))
    }

    fn payload(&mut self, id: &MessageId) -> Option<(proto::TopicId, Bytes)> {
        let bulletin = self.store.get(&BulletinId::from(*id))?;
        Some((bulletin.topic().into(), bulletin.encode()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::time::{Duration, Instant};

    use netaio_tapehash::{Difficulty, Tapehash};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::bulletin::BulletinHeader;
    use crate::proto::{Config, Event, InEvent, Message, Output, Protocol};
    use crate::work::ProofOfWork;

    const NOW: u64 = 1_700_000_000;

    /// Cheap work (code size 1) that still fails most nonces (4 bits: 1 in 16 meets it).
    fn policy() -> BulletinPolicy {
        BulletinPolicy::default().proof_of_work(ProofOfWork::new(
            Tapehash::v1(1).unwrap(),
            Difficulty::LeadingZeroBits(4),
        ))
    }

    fn host() -> BulletinHost {
        let mut h = BulletinHost::new(policy(), StoreConfig::default());
        h.set_now(NOW);
        h
    }

    fn topic(name: &str) -> TopicId {
        TopicId::from_descriptor(name.as_bytes())
    }

    fn minted(content: &str, ts: u64) -> VerifiedBulletin {
        policy()
            .mint(topic("weather"), content.to_owned(), ts, 0)
            .unwrap()
    }

    fn validate(h: &mut BulletinHost, g: &Gossip) -> Verdict {
        Host::<u64>::validate(h, &1, g)
    }

    /// The gossip of `header` and `content`, its id the header's (what a forger sends).
    fn gossip_of(header: BulletinHeader, content: &'static str) -> Gossip {
        Gossip {
            id: header.id().into(),
            topic: header.topic.into(),
            hops: 0,
            repaired: false,
            payload: Bulletin::new(header, content).encode(),
        }
    }

    #[test]
    fn accepts_stores_and_delivers_only_subscribed() {
        let mut h = host();
        let v = minted("rain", NOW);
        let g = BulletinHost::gossip(&v);
        assert_eq!(g.id, MessageId::from(v.id()));
        assert_eq!(g.topic, proto::TopicId::from(topic("weather")));
        assert_eq!(validate(&mut h, &g), Verdict::Accept);
        assert!(h.store().is_empty(), "validation stores nothing");
        Host::<u64>::store(&mut h, &g, false);
        assert!(h.store().contains(&v.id()), "stored though not subscribed");
        assert!(
            h.take_delivered().is_none(),
            "not subscribed: nothing to deliver"
        );

        let w = minted("sun", NOW);
        let g = BulletinHost::gossip(&w);
        assert_eq!(validate(&mut h, &g), Verdict::Accept);
        Host::<u64>::store(&mut h, &g, true);
        let delivered = h.take_delivered().unwrap();
        assert_eq!(delivered, w);
        assert!(h.take_delivered().is_none(), "taken once");
        // The stored copy is the bulletin, byte for byte.
        assert_eq!(h.store().get(&w.id()), Some(w.bulletin()));
    }

    #[test]
    fn store_without_validate_checks_again() {
        let mut h = host();
        let v = minted("rain", NOW);
        let mut forged_header = *v.bulletin().header();
        forged_header.content_id = crate::ids::ContentId::of(b"other");
        let forged = gossip_of(forged_header, "rain");
        // Validate accepts `v`, then `store` is called with something else: checked, refused.
        assert_eq!(validate(&mut h, &BulletinHost::gossip(&v)), Verdict::Accept);
        Host::<u64>::store(&mut h, &forged, true);
        assert!(h.store().is_empty() && h.take_delivered().is_none());
        // A valid one stored without a validate first is checked and stored.
        Host::<u64>::store(&mut h, &BulletinHost::gossip(&v), true);
        assert!(h.store().contains(&v.id()));
    }

    #[test]
    fn rejects_bad_work_bad_content_and_wrong_ids() {
        let mut h = host();
        let v = minted("rain", NOW);
        // A nonce that does not meet the difficulty.
        let mut header = *v.bulletin().header();
        header.nonce = (0..1000)
            .find(|&n| {
                !policy()
                    .get_proof_of_work()
                    .is_met_by(&BulletinHeader { nonce: n, ..header })
            })
            .unwrap();
        assert_eq!(
            validate(&mut h, &gossip_of(header, "rain")),
            Verdict::Reject
        );
        // Valid work, other content.
        let swapped = gossip_of(*v.bulletin().header(), "hail");
        assert_eq!(validate(&mut h, &swapped), Verdict::Reject);
        // Not a bulletin at all.
        let short = Gossip {
            payload: Bytes::from_static(b"too short"),
            ..BulletinHost::gossip(&v)
        };
        assert_eq!(validate(&mut h, &short), Verdict::Reject);
        // The message id or topic is not the bulletin's.
        let mut wrong_id = BulletinHost::gossip(&v);
        wrong_id.id = MessageId([9; 32]);
        assert_eq!(validate(&mut h, &wrong_id), Verdict::Reject);
        let mut wrong_topic = BulletinHost::gossip(&v);
        wrong_topic.topic = proto::TopicId([9; 32]);
        assert_eq!(validate(&mut h, &wrong_topic), Verdict::Reject);
        assert_eq!(validate(&mut h, &BulletinHost::gossip(&v)), Verdict::Accept);
    }

    #[test]
    fn ignores_expired_future_and_too_large() {
        let mut h = host();
        let old = minted("rain", NOW - 3_600);
        assert_eq!(
            validate(&mut h, &BulletinHost::gossip(&old)),
            Verdict::Ignore
        );
        let future = minted("rain", NOW + 301);
        assert_eq!(
            validate(&mut h, &BulletinHost::gossip(&future)),
            Verdict::Ignore
        );
        let big = policy()
            .mint(topic("weather"), vec![b'x'; 100], NOW, 0)
            .unwrap();
        let mut small = BulletinHost::new(policy().max_content_len(99), StoreConfig::default());
        small.set_now(NOW);
        assert_eq!(
            validate(&mut small, &BulletinHost::gossip(&big)),
            Verdict::Ignore
        );
    }

    #[test]
    fn anti_entropy_answers_from_the_store() {
        let mut h = host();
        let t = proto::TopicId::from(topic("weather"));
        let older = minted("a", NOW - 20);
        let newer = minted("b", NOW - 10);
        h.insert_own(older.clone()).unwrap();
        h.insert_own(newer.clone()).unwrap();
        let ids = Host::<u64>::held_ids(&mut h, &t, 10);
        assert_eq!(ids, [newer.id().into(), older.id().into()], "newest first");
        assert_eq!(Host::<u64>::held_ids(&mut h, &t, 1).len(), 1);
        assert!(Host::<u64>::holds(&mut h, &older.id().into()));
        assert!(!Host::<u64>::holds(&mut h, &MessageId([0; 32])));
        let (topic_of, payload) = Host::<u64>::payload(&mut h, &newer.id().into()).unwrap();
        assert_eq!(topic_of, t);
        assert_eq!(payload, newer.bulletin().encode());
        // Expiry follows the host's clock.
        h.set_now(NOW + 3_585);
        assert_eq!(h.expire(), 1);
        assert!(!Host::<u64>::holds(&mut h, &older.id().into()));
    }

    /// The two halves together: a protocol node with this host delivers a valid bulletin from a
    /// neighbour, and bans a neighbour that sends one without the proof of work.
    #[test]
    fn protocol_delivers_valid_and_bans_forgers() {
        let now = Instant::now();
        let mut h = host();
        let mut node = Protocol::new(1u64, Config::default(), SmallRng::seed_from_u64(1));
        let t = proto::TopicId::from(topic("weather"));
        node.subscribe(now, t).unwrap();
        for peer in [2u64, 3] {
            let join = InEvent::Message {
                from: peer,
                message: Message::Join,
            };
            node.handle(now, join, &mut h);
        }
        assert_eq!(node.neighbors().len(), 2);
        let drain = |node: &mut Protocol<u64, SmallRng>| {
            let mut events = Vec::new();
            while let Some(o) = node.poll_output() {
                if let Output::Event(e) = o {
                    events.push(e);
                }
            }
            events
        };
        drain(&mut node);

        let v = minted("rain", NOW);
        let valid = InEvent::Message {
            from: 2,
            message: Message::Gossip(BulletinHost::gossip(&v)),
        };
        node.handle(now, valid, &mut h);
        let events = drain(&mut node);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Received { from: 2, message, .. } if message.id == v.id().into())),
            "{events:?}"
        );
        assert_eq!(h.take_delivered().map(|d| d.id()), Some(v.id()));

        let forged = gossip_of(*minted("hail", NOW).bulletin().header(), "spam");
        let spam = InEvent::Message {
            from: 3,
            message: Message::Gossip(forged.clone()),
        };
        node.handle(now + Duration::from_millis(1), spam, &mut h);
        let events = drain(&mut node);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::PeerBanned { peer: 3, id } if *id == forged.id)),
            "{events:?}"
        );
        assert!(!node.neighbors().contains(&3));
        assert!(!h.store().contains(&BulletinId::from(forged.id)));
        assert!(h.take_delivered().is_none());
    }
}
