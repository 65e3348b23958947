//! Behaviour of [`Protocol`] on small hand-built swarms: messages move at once (through the wire
//! encoding), time moves only when a test says so.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;

mod held;

const T: TopicId = TopicId([7; 32]);

fn id(n: u8) -> MessageId {
    MessageId([n; 32])
}

/// A host that stores what it accepts and rejects or ignores chosen ids.
#[derive(Default)]
struct TestHost {
    reject: BTreeSet<MessageId>,
    ignore_once: BTreeSet<MessageId>,
    stored: BTreeMap<MessageId, (TopicId, Bytes)>,
}

impl Host<u64> for TestHost {
    fn validate(&mut self, _from: &u64, m: &Gossip) -> Verdict {
        if self.reject.contains(&m.id) {
            Verdict::Reject
        } else if self.ignore_once.remove(&m.id) {
            Verdict::Ignore
        } else {
            Verdict::Accept
        }
    }
    fn store(&mut self, m: &Gossip, _subscribed: bool) {
        self.stored.insert(m.id, (m.topic, m.payload.clone()));
    }
    fn held_ids(&mut self, topic: &TopicId, limit: usize) -> Vec<MessageId> {
        let ids = self.stored.iter().filter(|(_, (t, _))| t == topic);
        ids.map(|(id, _)| *id).take(limit).collect()
    }
    fn holds(&mut self, id: &MessageId) -> bool {
        self.stored.contains_key(id)
    }
    fn payload(&mut self, id: &MessageId) -> Option<(TopicId, Bytes)> {
        self.stored.get(id).cloned()
    }
}

struct Net {
    nodes: BTreeMap<u64, (Protocol<u64, SmallRng>, TestHost)>,
    now: Instant,
    events: Vec<(u64, Event<u64>)>,
    /// Nodes whose outgoing queues are not drained (a stalled connection).
    stalled: BTreeSet<u64>,
    /// Every message sent: (from, to, kind).
    sent: Vec<(u64, u64, &'static str)>,
}

impl Net {
    fn new(ids: &[u64], config: Config) -> Self {
        let nodes = ids
            .iter()
            .map(|&i| {
                let p = Protocol::new(i, config.clone(), SmallRng::seed_from_u64(i));
                (i, (p, TestHost::default()))
            })
            .collect();
        Self {
            nodes,
            now: Instant::now(),
            events: Vec::new(),
            stalled: BTreeSet::new(),
            sent: Vec::new(),
        }
    }

    fn p(&mut self, n: u64) -> &mut Protocol<u64, SmallRng> {
        &mut self.nodes.get_mut(&n).unwrap().0
    }

    fn host(&mut self, n: u64) -> &mut TestHost {
        &mut self.nodes.get_mut(&n).unwrap().1
    }

    /// Carries every queued message to its node, at once, until nothing moves.
    fn pump(&mut self) {
        let mut wire: VecDeque<(u64, u64, Bytes)> = VecDeque::new();
        loop {
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for n in ids {
                if self.stalled.contains(&n) {
                    continue;
                }
                let (p, _) = self.nodes.get_mut(&n).unwrap();
                while let Some(out) = p.poll_output() {
                    match out {
                        Output::Transmit(to) => {
                            while let Some(m) = p.poll_transmit(&to) {
                                self.sent.push((n, to, m.kind()));
                                wire.push_back((n, to, wire::to_bytes(&m)));
                            }
                        }
                        Output::Event(e) => self.events.push((n, e)),
                        Output::Disconnect(_) => {}
                    }
                }
            }
            let Some((from, to, frame)) = wire.pop_front() else {
                break;
            };
            let message = wire::decode(frame, &Limits::default()).unwrap();
            let now = self.now;
            if let Some((p, h)) = self.nodes.get_mut(&to) {
                p.handle(now, InEvent::Message { from, message }, h);
            }
        }
    }

    /// Moves time forward by `d`, firing every deadline on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .nodes
                .values()
                .filter_map(|(p, _)| p.poll_timeout())
                .min()
                .filter(|&t| t <= end);
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            let now = self.now;
            for (p, h) in self.nodes.values_mut() {
                if p.poll_timeout().is_some_and(|d| d <= now) {
                    p.handle(now, InEvent::Timeout, h);
                }
            }
            self.pump();
        }
        self.now = end;
    }

    /// Hands `message` to `to` as if `from` had sent it.
    fn inject(&mut self, to: u64, from: u64, message: Message<u64>) {
        let now = self.now;
        let (p, h) = self.nodes.get_mut(&to).unwrap();
        p.handle(now, InEvent::Message { from, message }, h);
        self.pump();
    }

    fn join(&mut self, n: u64, to: u64) {
        let now = self.now;
        self.p(n).join(now, to);
        self.pump();
    }

    fn subscribe(&mut self, n: u64) {
        let now = self.now;
        self.p(n).subscribe(now, T).unwrap();
        self.pump();
    }

    fn publish(&mut self, n: u64, m: MessageId) -> Result<Published, PublishError> {
        let now = self.now;
        let r = self.p(n).publish(now, T, m, Bytes::from_static(b"payload"));
        self.pump();
        r
    }

    fn received(&self, n: u64, m: MessageId) -> Vec<bool> {
        self.events
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Received {
                    message, fetched, ..
                } if *at == n && message.id == m => Some(*fetched),
                _ => None,
            })
            .collect()
    }
}

fn eager_config() -> Config {
    Config::default().eager_new_neighbors(true)
}

#[test]
fn publish_reports_no_neighbours_no_known_subscriber_and_sent() {
    let mut net = Net::new(&[1, 2], Config::default());
    assert_eq!(net.publish(1, id(1)), Ok(Published::NoNeighbors));
    net.join(1, 2);
    assert_eq!(net.p(1).neighbors(), &[2]);
    assert_eq!(net.p(2).neighbors(), &[1]);
    assert_eq!(
        net.publish(1, id(2)),
        Ok(Published::NoKnownSubscriber {
            neighbors: 1,
            pushed: 0
        })
    );
    net.subscribe(2);
    assert_eq!(
        net.publish(1, id(3)),
        Ok(Published::Sent {
            neighbors: 1,
            pushed: 0,
            subscribers: 1
        })
    );
    assert_eq!(net.publish(1, id(3)), Err(PublishError::Duplicate(id(3))));
    let max = Limits::default().max_payload;
    let now = net.now;
    let big = Bytes::from(vec![0; max + 1]);
    assert_eq!(
        net.p(1).publish(now, T, id(4), big),
        Err(PublishError::TooLarge { len: max + 1, max })
    );
}

#[test]
fn a_lazy_neighbour_grafts_an_announced_message_and_the_link_joins_the_tree() {
    let mut net = Net::new(&[1, 2], Config::default());
    net.subscribe(2);
    net.join(1, 2);
    assert!(net.p(1).eager().is_empty() && net.p(2).eager().is_empty());
    net.publish(1, id(1)).unwrap();
    assert!(
        net.received(2, id(1)).is_empty(),
        "announcements wait for the batch delay"
    );
    net.advance(Duration::from_millis(10));
    assert_eq!(net.received(2, id(1)), [false]);
    assert_eq!(net.p(1).eager(), &[2]);
    assert_eq!(net.p(2).eager(), &[1]);
    assert_eq!(net.p(2).stats().joins_sent, 1);
    // Now on the tree: the next message is pushed at once.
    net.publish(1, id(2)).unwrap();
    assert_eq!(net.received(2, id(2)), [false]);
}

#[test]
fn a_duplicate_over_two_tree_links_prunes_one() {
    // A triangle, every link eager: 1's message reaches 2 and 3 directly and again via each other.
    let mut net = Net::new(&[1, 2, 3], eager_config());
    for n in [1, 2, 3] {
        net.subscribe(n);
    }
    net.join(2, 1);
    net.join(3, 1);
    net.join(3, 2);
    assert_eq!(net.p(3).neighbors().len(), 2);
    net.publish(1, id(1)).unwrap();
    assert_eq!(net.received(2, id(1)).len(), 1);
    assert_eq!(net.received(3, id(1)).len(), 1);
    let prunes: u64 = [2, 3].iter().map(|&n| net.p(n).stats().prunes_sent).sum();
    assert!(prunes >= 1);
    assert!(
        !net.p(2).eager().contains(&3) || !net.p(3).eager().contains(&2),
        "the 2–3 link left the tree"
    );
    assert!(net.p(2).eager().contains(&1) && net.p(3).eager().contains(&1));
}

fn gossip(n: u8, hops: u8) -> Message<u64> {
    Message::Gossip(Gossip {
        id: id(n),
        topic: T,
        hops,
        repaired: false,
        payload: Bytes::from_static(b"payload"),
    })
}

/// Three nodes, each the others' neighbour (HyParView fills the small views), all links eager.
fn triangle() -> Net {
    let mut net = Net::new(&[1, 2, 3], eager_config());
    for n in [1, 2, 3] {
        net.subscribe(n);
    }
    net.join(1, 2);
    net.join(3, 2);
    for n in [1, 2, 3] {
        assert_eq!(net.p(n).eager().len(), 2, "node {n}");
    }
    net
}

#[test]
fn the_hop_budget_stops_forwarding() {
    let mut net = triangle();
    let budget = net.p(2).config().get_max_hops();
    // From 1, having travelled budget − 1 hops: 2 delivers it, and pushes it no further.
    net.sent.clear();
    net.inject(2, 1, gossip(1, budget - 1));
    net.advance(Duration::from_secs(1));
    assert_eq!(net.received(2, id(1)), [false]);
    assert!(net.received(3, id(1)).is_empty());
    let to_3: Vec<_> = net.sent.iter().filter(|s| (s.0, s.1) == (2, 3)).collect();
    assert!(to_3.is_empty(), "not even announced: {to_3:?}");
    // One hop fewer: it goes on to 3.
    net.inject(2, 1, gossip(2, budget - 2));
    assert_eq!(net.received(3, id(2)), [false]);
}

#[test]
fn a_rejected_message_is_not_delivered_nor_forwarded_and_its_sender_is_banned() {
    let mut net = triangle();
    net.host(2).reject.insert(id(1));
    net.inject(2, 1, gossip(1, 0));
    net.advance(Duration::from_secs(1));
    assert!(net.received(2, id(1)).is_empty());
    assert!(net.received(3, id(1)).is_empty());
    assert!(
        !net.sent
            .iter()
            .any(|&(f, t, k)| (f, t) == (2, 3) && k == "Gossip")
    );
    assert_eq!(net.p(2).stats().rejected, 1);
    assert!(
        net.events
            .iter()
            .any(|(n, e)| *n == 2
                && matches!(e, Event::PeerBanned { peer: 1, id: m } if *m == id(1)))
    );
    let now = net.now;
    assert!(net.p(2).is_banned(&1, now));
    assert!(!net.p(2).neighbors().contains(&1));
    // The ban holds: the banned peer's messages and joins are dropped.
    net.inject(2, 1, gossip(2, 0));
    assert!(net.received(2, id(2)).is_empty());
    net.join(1, 2);
    assert!(!net.p(2).neighbors().contains(&1));
    assert!(!net.p(2).passive().contains(&1));
}

#[test]
fn an_ignored_message_is_not_remembered_so_a_later_copy_is_accepted() {
    let mut net = Net::new(&[1, 2], eager_config());
    net.subscribe(2);
    net.join(1, 2);
    net.host(2).ignore_once.insert(id(1));
    net.publish(1, id(1)).unwrap();
    assert!(net.received(2, id(1)).is_empty());
    assert_eq!(net.p(2).stats().ignored, 1);
    // Not remembered as seen: the same message arriving again is new to 2.
    net.inject(2, 1, gossip(1, 0));
    assert_eq!(net.received(2, id(1)), [false]);
}

#[test]
fn a_stalled_neighbour_overflows_its_queue_once_and_leaves_the_tree() {
    let mut net = Net::new(&[1, 2], eager_config().queue_messages(4));
    net.subscribe(2);
    net.join(1, 2);
    assert_eq!(net.p(1).eager(), &[2]);
    net.stalled.insert(1);
    for n in 10..20 {
        net.publish(1, id(n)).unwrap();
    }
    assert!(net.p(1).queued(&2) <= 4);
    net.stalled.clear();
    net.pump();
    let slow: Vec<_> = net
        .events
        .iter()
        .filter(|(n, e)| *n == 1 && matches!(e, Event::SlowPeer { peer: 2, .. }))
        .collect();
    assert_eq!(slow.len(), 1, "one event per overflow episode");
    assert!(net.p(1).stats().queue_drops > 0);
    assert!(net.p(1).eager().is_empty(), "no more payloads pushed to it");
    assert_eq!(net.p(1).lazy(), &[2]);
}

#[test]
fn own_publishes_go_before_forwards() {
    // 2 relays 1's message to 3 (a forward), then publishes its own: its own is sent first.
    let mut net = triangle();
    net.stalled.insert(2);
    net.inject(2, 1, gossip(1, 0));
    let now = net.now;
    net.p(2)
        .publish(now, T, id(2), Bytes::from_static(b"b"))
        .unwrap();
    let order: Vec<MessageId> = std::iter::from_fn(|| net.p(2).poll_transmit(&3))
        .filter_map(|m| match m {
            Message::Gossip(g) => Some(g.id),
            _ => None,
        })
        .collect();
    assert_eq!(order, [id(2), id(1)]);
}

#[test]
fn anti_entropy_fetches_what_a_new_neighbour_holds() {
    let mut net = Net::new(&[1, 2], Config::default());
    for n in 1..=3 {
        let p = Bytes::from(vec![n; 3]);
        net.host(1).stored.insert(id(n), (T, p));
    }
    net.host(1)
        .stored
        .insert(id(9), (TopicId([9; 32]), Bytes::new()));
    net.subscribe(2);
    net.join(2, 1);
    for n in 1..=3 {
        assert_eq!(net.received(2, id(n)), [true], "message {n}");
    }
    assert!(net.received(2, id(9)).is_empty(), "not a topic of 2");
    assert!(net.host(2).stored.contains_key(&id(1)));
    // Fetched messages are not relayed on (the neighbours had them).
    assert_eq!(net.p(2).stats().payload_received, 3);
}

#[test]
fn messages_from_non_neighbours_are_dropped() {
    let mut net = Net::new(&[1, 2], Config::default());
    net.subscribe(2);
    net.inject(2, 1, gossip(1, 0));
    assert!(net.received(2, id(1)).is_empty());
    assert_eq!(net.p(2).stats().payload_received, 1);
}

#[test]
fn a_lost_neighbour_is_replaced_from_the_passive_view() {
    let mut net = Net::new(&[1, 2, 3], Config::default());
    net.join(3, 2);
    // 1 joins 2 and learns of 3 from 2's sample.
    net.join(1, 2);
    assert!(net.p(1).passive().contains(&3) || net.p(1).neighbors().contains(&3));
    let now = net.now;
    let (p, h) = net.nodes.get_mut(&1).unwrap();
    p.handle(now, InEvent::ConnectionLost(2), h);
    net.pump();
    assert!(net.p(1).neighbors().contains(&3));
    assert!(!net.p(1).neighbors().contains(&2));
    assert!(
        net.events
            .iter()
            .any(|(n, e)| *n == 1 && matches!(e, Event::NeighborDown(2)))
    );
}

#[test]
fn an_unanswered_neighbour_request_drops_the_peer_and_a_lone_node_rejoins() {
    // 9 is not in the network: the join goes unanswered.
    let mut net = Net::new(&[1], Config::default());
    net.join(1, 9);
    let joins = |net: &Net| net.sent.iter().filter(|s| **s == (1, 9, "Join")).count();
    assert_eq!(joins(&net), 1);
    net.advance(Duration::from_millis(1100));
    assert!(net.p(1).neighbors().is_empty());
    // Alone, it tries its bootstrap peer again after each timeout, backing off.
    assert_eq!(joins(&net), 3);
    net.advance(Duration::from_millis(900));
    assert_eq!(joins(&net), 3, "the backoff has doubled to 1 s");
}

#[test]
fn leaving_tells_the_neighbours() {
    let mut net = Net::new(&[1, 2], Config::default());
    net.join(1, 2);
    let now = net.now;
    net.p(1).leave(now);
    net.pump();
    assert!(net.p(1).neighbors().is_empty());
    assert!(net.p(2).neighbors().is_empty());
    assert!(
        !net.p(2).passive().contains(&1),
        "a node that left is not kept as passive"
    );
}

#[test]
fn subscriptions_are_bounded() {
    let mut net = Net::new(&[1], Config::default().max_topics(2));
    let now = net.now;
    assert_eq!(net.p(1).subscribe(now, TopicId([1; 32])), Ok(true));
    assert_eq!(net.p(1).subscribe(now, TopicId([1; 32])), Ok(false));
    assert_eq!(net.p(1).subscribe(now, TopicId([2; 32])), Ok(true));
    assert_eq!(
        net.p(1).subscribe(now, TopicId([3; 32])),
        Err(SubscribeError::TooMany { max: 2 })
    );
    assert!(net.p(1).unsubscribe(now, &TopicId([1; 32])));
    assert_eq!(net.p(1).topics(), &[TopicId([2; 32])]);
}

#[test]
fn off_the_tree_a_node_grafts_the_announcer_with_the_fewest_hops() {
    let mut net = Net::new(&[1, 2, 3], Config::default());
    net.join(1, 2);
    net.join(3, 2);
    assert!(net.p(2).eager().is_empty());
    net.sent.clear();
    let announce = |hops| Message::IHave(vec![Announcement { id: id(1), hops }]);
    net.inject(2, 1, announce(5));
    net.inject(2, 3, announce(1));
    assert!(
        net.sent.is_empty(),
        "a short window to hear other announcers first"
    );
    net.advance(Duration::from_millis(6));
    let grafts: Vec<u64> = net
        .sent
        .iter()
        .filter(|s| s.0 == 2 && s.2 == "Graft")
        .map(|s| s.1)
        .collect();
    assert_eq!(grafts, [3]);
    assert_eq!(
        net.p(2).eager(),
        &[3],
        "with no tree link, the graft joins the tree"
    );
}

#[test]
fn on_the_tree_a_graft_only_fetches_and_the_link_joins_if_the_tree_never_brings_a_copy() {
    let mut net = Net::new(&[1, 2, 3], Config::default());
    for n in [1, 2, 3] {
        net.subscribe(n);
    }
    net.join(1, 2);
    net.join(3, 2);
    // 1's first message builds the tree 1–2, 1–3.
    net.publish(1, id(1)).unwrap();
    net.advance(Duration::from_millis(50));
    assert_eq!(net.p(2).eager(), &[1]);
    assert_eq!(net.p(3).eager(), &[1]);
    let joins = net.p(2).stats().joins_sent;
    // 3 gets a message that the tree will not bring to 2 (1 never has it), and announces it.
    net.inject(3, 1, gossip(9, 0));
    net.advance(Duration::from_millis(200));
    assert!(
        net.received(2, id(9)).is_empty(),
        "2 waits for the tree first"
    );
    net.advance(Duration::from_millis(200));
    assert_eq!(net.received(2, id(9)), [false], "then grafts it from 3");
    assert_eq!(
        net.p(2).stats().joins_sent,
        joins,
        "without joining: 2 has a tree link"
    );
    assert_eq!(net.p(2).eager(), &[1]);
    // No copy along the tree within `tree_check`: the tree does not reach 2 from 3's side.
    net.advance(Duration::from_secs(2));
    assert_eq!(net.p(2).stats().joins_sent, joins + 1);
    assert!(net.p(2).eager().contains(&3) && net.p(3).eager().contains(&2));
}

#[test]
fn a_flood_of_walks_asks_a_bounded_number_of_newcomers() {
    let mut net = Net::new(&[1, 2], Config::default());
    net.join(1, 2);
    net.sent.clear();
    for n in 100..120 {
        net.inject(1, 2, Message::ForwardJoin { peer: n, ttl: 0 });
    }
    let asked = net.sent.iter().filter(|s| s.2 == "Neighbor").count();
    assert_eq!(asked, 2 * net.p(1).config().get_active_view());
}

#[test]
fn a_fetched_message_is_announced_to_the_other_neighbours() {
    let mut net = Net::new(&[1, 2, 3], Config::default());
    for n in [1, 2, 3] {
        net.subscribe(n);
    }
    net.join(1, 2);
    net.join(3, 2);
    assert_eq!(net.p(2).neighbors().len(), 2);
    // 1 tells 2 it holds a message 2 lacks; 2 fetches it.
    net.sent.clear();
    net.inject(
        2,
        1,
        Message::SyncIds {
            topic: T,
            ids: vec![id(5)],
        },
    );
    assert_eq!(net.sent, [(2, 1, "Fetch")]);
    let Message::Gossip(g) = gossip(5, 3) else {
        unreachable!()
    };
    net.inject(2, 1, Message::Fetched(g));
    assert_eq!(net.received(2, id(5)), [true]);
    // Announced to 3 (not back to 1), which grafts it from 2.
    net.advance(Duration::from_millis(50));
    assert!(net.sent.contains(&(2, 3, "IHave")));
    assert!(!net.sent.contains(&(2, 1, "IHave")));
    assert_eq!(net.received(3, id(5)), [false]);
    // An unasked Fetched is dropped.
    let Message::Gossip(g) = gossip(6, 0) else {
        unreachable!()
    };
    net.inject(2, 1, Message::Fetched(g));
    assert!(net.received(2, id(6)).is_empty());
}
