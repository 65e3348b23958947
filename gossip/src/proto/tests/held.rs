//! Holding messages for the application's verdict (`hold_subscribed`, `relay_unsubscribed`).

use super::*;

/// The triangle of `triangle()`, with node 2 configured by `config`.
fn triangle_with(config: Config) -> Net {
    let mut net = Net::new(&[1, 2, 3], eager_config());
    let p2 = Protocol::new(2, config, SmallRng::seed_from_u64(2));
    net.nodes.insert(2, (p2, TestHost::default()));
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

fn held(net: &Net, n: u64, m: MessageId) -> usize {
    let is_held = |e: &Event<u64>| matches!(e, Event::Held { message, .. } if message.id == m);
    net.events
        .iter()
        .filter(|(at, e)| *at == n && is_held(e))
        .count()
}

fn gossip_sent(net: &Net, from: u64, to: u64) -> usize {
    let is_gossip = |s: &&(u64, u64, &str)| (s.0, s.1, s.2) == (from, to, "Gossip");
    net.sent.iter().filter(is_gossip).count()
}

fn announced(net: &Net, from: u64, to: u64) -> usize {
    let is_ihave = |s: &&(u64, u64, &str)| (s.0, s.1, s.2) == (from, to, "IHave");
    net.sent.iter().filter(is_ihave).count()
}

#[test]
fn a_held_message_is_forwarded_only_once_released_valid() {
    let mut net = triangle_with(eager_config().hold_subscribed(true));
    net.sent.clear();
    net.inject(2, 1, gossip(1, 0));
    net.advance(Duration::from_secs(1));
    assert_eq!(held(&net, 2, id(1)), 1);
    assert!(net.received(2, id(1)).is_empty(), "held, not received");
    assert_eq!(gossip_sent(&net, 2, 3), 0, "not forwarded while held");
    assert_eq!(announced(&net, 2, 3), 0, "not announced while held");
    assert!(net.received(3, id(1)).is_empty());
    assert!(
        !net.host(2).stored.contains_key(&id(1)),
        "not stored while held"
    );
    assert_eq!(net.p(2).held(), (1, 7));
    // A second copy is a duplicate, not held twice.
    net.inject(2, 1, gossip(1, 0));
    assert_eq!(held(&net, 2, id(1)), 1);

    let now = net.now;
    let (p, h) = net.nodes.get_mut(&2).unwrap();
    assert!(p.release(now, &id(1), Verdict::Accept, h));
    assert!(!p.release(now, &id(1), Verdict::Accept, h), "released once");
    net.pump();
    assert_eq!(gossip_sent(&net, 2, 3), 1, "forwarded once released");
    assert_eq!(net.received(3, id(1)), [false]);
    assert!(net.host(2).stored.contains_key(&id(1)));
    assert_eq!(net.p(2).held(), (0, 0));
}

#[test]
fn a_held_message_released_invalid_is_dropped_and_counted_against_its_sender() {
    let mut net = triangle_with(eager_config().hold_subscribed(true));
    net.sent.clear();
    net.inject(2, 1, gossip(1, 0));
    let now = net.now;
    let (p, h) = net.nodes.get_mut(&2).unwrap();
    assert!(p.release(now, &id(1), Verdict::Reject, h));
    net.pump();
    net.advance(Duration::from_secs(1));
    assert_eq!(gossip_sent(&net, 2, 3), 0);
    assert!(net.received(3, id(1)).is_empty());
    assert!(!net.host(2).stored.contains_key(&id(1)));
    assert_eq!(net.p(2).stats().discarded, 1);
    let discarded =
        |e: &Event<u64>| matches!(e, Event::Discarded { peer: 1, id: m } if *m == id(1));
    assert!(net.events.iter().any(|(n, e)| *n == 2 && discarded(e)));
    // Counted, not banned: the application's rules are not the proof of work.
    let now = net.now;
    assert!(!net.p(2).is_banned(&1, now));
    assert!(net.p(2).neighbors().contains(&1));
}

#[test]
fn the_hold_is_bounded_and_drops_the_oldest() {
    let mut net = triangle_with(eager_config().hold_subscribed(true).max_held(2));
    for n in 1..=3 {
        net.inject(2, 1, gossip(n, 0));
    }
    assert_eq!(net.p(2).held().0, 2);
    assert_eq!(net.p(2).stats().held_dropped, 1);
    let now = net.now;
    let (p, h) = net.nodes.get_mut(&2).unwrap();
    assert!(
        !p.release(now, &id(1), Verdict::Accept, h),
        "the oldest was dropped"
    );
    assert!(p.release(now, &id(3), Verdict::Accept, h));
}

#[test]
fn without_relay_unsubscribed_other_topics_are_ignored() {
    let mut net = triangle_with(eager_config().relay_unsubscribed(false));
    let other = Message::Gossip(Gossip {
        id: id(9),
        topic: TopicId([8; 32]),
        hops: 0,
        repaired: false,
        payload: Bytes::from_static(b"payload"),
    });
    net.sent.clear();
    net.inject(2, 1, other);
    net.advance(Duration::from_secs(1));
    assert_eq!(gossip_sent(&net, 2, 3), 0, "not relayed");
    assert_eq!(net.p(2).stats().ignored, 1);
    // Its own topic still goes through at once (no hold configured).
    net.inject(2, 1, gossip(1, 0));
    assert_eq!(net.received(3, id(1)), [false]);
}
