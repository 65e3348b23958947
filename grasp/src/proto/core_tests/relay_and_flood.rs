//! Relaying (loop counts, once per session, rate limit, `O_DIVERT`), the flood cache, DULL mode.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default
)]

use super::*;

fn relay() -> Core {
    node(vec![iface(IF1, 1), iface(IF2, 2)], Some("fd00::1"))
}

#[test]
fn a_relay_relays_discovery_with_the_loop_count_decremented_once_per_session() {
    let t0 = Instant::now();
    let mut r = relay();
    let d = discovery(55, "fd00::9", Objective::new("EX3").loop_count(3));
    let out = multicasts(&r.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &d));
    assert_eq!(out.len(), 1);
    let (
        ifindex,
        Message::Discovery {
            session_id,
            initiator,
            objective,
        },
    ) = &out[0]
    else {
        panic!()
    };
    // On the other interface, same session id and initiator, loop count 3 - 1.
    assert_eq!(
        (*ifindex, *session_id, *initiator, objective.loop_count),
        (IF2, 55, "fd00::9".parse().unwrap(), 2)
    );
    // The same session again (another path, a duplicate): not relayed twice.
    assert!(
        r.on_multicast(t0, Family::V6, IF1, peer(8, 1, 0), &d)
            .is_empty()
    );
    assert!(
        r.on_multicast(t0, Family::V6, IF2, peer(8, 1, 0), &d)
            .is_empty()
    );
}

#[test]
fn a_discovery_whose_loop_count_reaches_zero_is_not_relayed() {
    let t0 = Instant::now();
    let mut r = relay();
    for lc in [0, 1] {
        let d = discovery(
            60 + u32::from(lc),
            "fd00::9",
            Objective::new("EX3").loop_count(lc),
        );
        assert!(
            r.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &d)
                .is_empty()
        );
    }
    // A single-interface node never relays.
    let mut single = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let d = discovery(70, "fd00::9", Objective::new("EX3"));
    assert!(
        single
            .on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &d)
            .is_empty()
    );
}

#[test]
fn relaying_is_rate_limited() {
    let t0 = Instant::now();
    let mut c = CoreConfig::default();
    c.interfaces = vec![iface(IF1, 1), iface(IF2, 2)];
    c.relay_rate = (2, 3);
    let mut r = Core::new(c, counter(0));
    let relayed = (0..10)
        .filter(|i| {
            let d = discovery(100 + i, "fd00::9", Objective::new("EX3"));
            !r.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &d)
                .is_empty()
        })
        .count();
    assert_eq!(relayed, 3, "the burst");
    // Half a second later: one more token (2 per second).
    let t1 = t0 + Duration::from_millis(500);
    let later = (10..20)
        .filter(|i| {
            let d = discovery(100 + i, "fd00::9", Objective::new("EX3"));
            !r.on_multicast(t1, Family::V6, IF1, peer(9, 1, 0), &d)
                .is_empty()
        })
        .count();
    assert_eq!(later, 1);
    // Floods share the limit.
    let flood = |sid: u32| {
        Message::Flood {
            session_id: sid,
            initiator: "fd00::9".parse().unwrap(),
            ttl: 0,
            items: vec![FloodItem {
                objective: Objective::new("EX1").synch(true),
                locator: None,
            }],
        }
        .encode()
        .unwrap()
    };
    let f = (0..5)
        .filter(|i| {
            !r.on_multicast(t1, Family::V6, IF1, peer(9, 1, 0), &flood(500 + i))
                .is_empty()
        })
        .count();
    assert_eq!(f, 0);
}

#[test]
fn relayed_responses_go_upstream_as_divert_and_later_discoveries_are_answered_from_the_cache() {
    let t0 = Instant::now();
    let mut r = relay();
    let initiator = "fd00::9";
    let d = discovery(55, initiator, Objective::new("EX3"));
    r.on_multicast(t0, Family::V6, IF1, peer(9, 4444, 0), &d);
    // The responder on the far link answers the relay (its TCP port on IF2).
    let resp = Message::Response {
        session_id: 55,
        initiator: initiator.parse().unwrap(),
        ttl: 30_000,
        options: vec![
            ResponseOption::Locator(Locator::tcp("[fd00:2::7]:4000".parse().unwrap())),
            // A link-local locator cannot travel in a divert option.
            ResponseOption::Locator(Locator::tcp(SocketAddr::new(ll(7).into(), 4000))),
        ],
        objective: None,
    };
    let out = responses(&r.on_response(t0, IF2, ll(7).into(), &resp.encode().unwrap()));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, peer(9, 4444, IF1));
    let Message::Response {
        session_id,
        options,
        ..
    } = &out[0].1
    else {
        panic!()
    };
    assert_eq!(*session_id, 55);
    assert_eq!(
        options,
        &vec![ResponseOption::Divert(vec![Locator::tcp(
            "[fd00:2::7]:4000".parse().unwrap()
        )])]
    );
    // A new discovery from IF1: answered from the cache, with the remaining ttl, not relayed.
    let t1 = t0 + Duration::from_secs(10);
    let d2 = discovery(56, initiator, Objective::new("EX3"));
    let out = r.on_multicast(t1, Family::V6, IF1, peer(9, 4445, 0), &d2);
    assert!(multicasts(&out).is_empty());
    let Message::Response { ttl, options, .. } = &responses(&out)[0].1 else {
        panic!()
    };
    assert_eq!(*ttl, 20_000);
    assert!(matches!(&options[0], ResponseOption::Divert(l) if l.len() == 1));
    // From IF2, where it was learnt: not answered from the cache (the responder answers).
    let d3 = discovery(57, initiator, Objective::new("EX3"));
    let out = r.on_multicast(t1, Family::V6, IF2, peer(7, 1, 0), &d3);
    assert!(responses(&out).is_empty());
    // After the ttl: forgotten, relayed again.
    let t2 = t0 + Duration::from_secs(31);
    let d4 = discovery(58, initiator, Objective::new("EX3"));
    let out = r.on_multicast(t2, Family::V6, IF1, peer(9, 1, 0), &d4);
    assert_eq!(multicasts(&out).len(), 1);
}

fn flood_bytes(
    sid: u32,
    initiator: &str,
    ttl: u32,
    lc: u8,
    value: &str,
    port: Option<u16>,
) -> Vec<u8> {
    Message::Flood {
        session_id: sid,
        initiator: initiator.parse().unwrap(),
        ttl,
        items: vec![FloodItem {
            objective: Objective::new("EX1")
                .synch(true)
                .loop_count(lc)
                .value(Value::from(value)),
            locator: port.map(|p| Locator::tcp(SocketAddr::new("fd00::9".parse().unwrap(), p))),
        }],
    }
    .encode()
    .unwrap()
}

#[test]
fn floods_are_cached_by_name_and_locator_with_their_ttl() {
    let t0 = Instant::now();
    let mut n = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let asa = n.register_asa("A").unwrap();
    let ex1 = Objective::new("EX1").synch(true);
    n.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &flood_bytes(1, "fd00::9", 10_000, 6, "one", None),
    );
    n.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &flood_bytes(2, "fd00::9", 10_000, 6, "two", None),
    );
    let got = n.get_flood(t0, asa, &ex1).unwrap();
    assert_eq!(got.len(), 1, "same key overwrites");
    assert_eq!(got[0].objective.value, Some(Value::from("two")));
    n.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &flood_bytes(3, "fd00::9", 0, 6, "three", Some(7)),
    );
    assert_eq!(
        n.get_flood(t0, asa, &ex1).unwrap().len(),
        2,
        "another locator adds"
    );
    let t1 = t0 + Duration::from_secs(10);
    let left = n.get_flood(t1, asa, &ex1).unwrap();
    assert_eq!(
        left.len(),
        1,
        "the ttl of 10 s ran out; ttl 0 is indefinite"
    );
    assert_eq!(left[0].objective.value, Some(Value::from("three")));
    assert_eq!(n.next_timeout(), Some(t1));
    n.expire_flood(asa, &left[0]).unwrap();
    assert!(n.get_flood(t1, asa, &ex1).unwrap().is_empty());
    assert!(matches!(
        n.get_flood(t1, asa, &Objective::new("EX1")),
        Err(GraspError::NotSynch)
    ));
}

#[test]
fn a_relay_relays_a_flood_once_with_the_loop_count_decremented() {
    let t0 = Instant::now();
    let mut r = relay();
    let f = flood_bytes(9, "fd00::9", 10_000, 3, "v", None);
    let out = multicasts(&r.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &f));
    assert_eq!(out.len(), 1);
    let (
        ifindex,
        Message::Flood {
            session_id,
            initiator,
            items,
            ..
        },
    ) = &out[0]
    else {
        panic!()
    };
    assert_eq!(
        (
            *ifindex,
            *session_id,
            *initiator,
            items[0].objective.loop_count
        ),
        (IF2, 9, "fd00::9".parse().unwrap(), 2)
    );
    // The same flood back through another path: neither relayed nor cached again.
    assert!(
        r.on_multicast(t0, Family::V6, IF2, peer(8, 1, 0), &f)
            .is_empty()
    );
    // Remembered for at least twice the default timeout.
    let t1 = t0 + Duration::from_secs(119);
    assert!(
        r.on_multicast(t1, Family::V6, IF1, peer(9, 1, 0), &f)
            .is_empty()
    );
    // Loop count 1: cached, not relayed.
    let last = flood_bytes(10, "fd00::9", 10_000, 1, "w", Some(1));
    assert!(
        r.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &last)
            .is_empty()
    );
    let asa = r.register_asa("A").unwrap();
    assert_eq!(
        r.get_flood(t0, asa, &Objective::new("EX1").synch(true))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_flood_from_a_link_local_initiator_must_have_loop_count_one() {
    let t0 = Instant::now();
    let mut n = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let asa = n.register_asa("A").unwrap();
    let ex1 = Objective::new("EX1").synch(true);
    n.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &flood_bytes(1, "fe80::9", 0, 6, "x", None),
    );
    assert!(n.get_flood(t0, asa, &ex1).unwrap().is_empty());
    n.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &flood_bytes(2, "fe80::9", 0, 1, "x", None),
    );
    assert_eq!(n.get_flood(t0, asa, &ex1).unwrap().len(), 1);
    // Our own flood coming back is ignored.
    n.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &flood_bytes(3, "fd00::1", 0, 6, "mine", Some(9)),
    );
    assert_eq!(n.get_flood(t0, asa, &ex1).unwrap().len(), 1);
}

#[test]
fn flooding_checks_the_asa_and_limits_a_link_local_node_to_loop_count_one() {
    let t0 = Instant::now();
    let mut n = node(vec![iface(IF1, 1), iface(IF2, 2)], None);
    let asa = n.register_asa("A").unwrap();
    let ex1 = Objective::new("EX1").synch(true).value(Value::from("v"));
    assert!(matches!(
        n.flood(t0, asa, 1000, vec![(ex1.clone(), None)]),
        Err(GraspError::NotYourObj)
    ));
    n.register_obj(asa, &ex1, RegisterOptions::default(), 0)
        .unwrap();
    let out = multicasts(&n.flood(t0, asa, 10_000, vec![(ex1.clone(), None)]).unwrap());
    assert_eq!(out.len(), 2, "one per interface");
    let Message::Flood {
        initiator,
        ttl,
        items,
        ..
    } = &out[0].1
    else {
        panic!()
    };
    assert_eq!(*initiator, IpAddr::V6(ll(1)));
    assert_eq!((*ttl, items[0].objective.loop_count), (10_000, 1));
    // With a unique-local address: the objective's own loop count.
    let mut g = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let a = g.register_asa("A").unwrap();
    g.register_obj(a, &ex1, RegisterOptions::default(), 0)
        .unwrap();
    let out = multicasts(
        &g.flood(t0, a, 0, vec![(ex1.clone().loop_count(6), None)])
            .unwrap(),
    );
    let Message::Flood { items, .. } = &out[0].1 else {
        panic!()
    };
    assert_eq!(items[0].objective.loop_count, 6);
}

fn dull_node() -> Core {
    let mut c = CoreConfig::default();
    c.interfaces = vec![iface(IF1, 1), iface(IF2, 2)];
    c.address = Some("fd00::1".parse().unwrap());
    c.dull = true;
    Core::new(c, counter(0))
}

#[test]
fn dull_mode_is_link_local_with_loop_count_one_and_never_relays() {
    let t0 = Instant::now();
    let mut n = dull_node();
    let asa = n.register_asa("A").unwrap();
    let obj = Objective::new("ACP").synch(true);
    n.register_obj(asa, &obj, RegisterOptions::default().discoverable(true), 9)
        .unwrap();
    // A non-link-local source, or a loop count other than 1: silently discarded.
    let d1 = discovery(1, "fd00::9", Objective::new("ACP").loop_count(1));
    let ula_src = SocketAddr::new("fd00::9".parse().unwrap(), 1);
    assert!(n.on_multicast(t0, Family::V6, IF1, ula_src, &d1).is_empty());
    let d6 = discovery(2, "fd00::9", Objective::new("ACP").loop_count(6));
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &d6)
            .is_empty()
    );
    // Loop count 1 from a link-local source: answered with a link-local locator.
    let out = responses(&n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &d1));
    let Message::Response { options, .. } = &out[0].1 else {
        panic!()
    };
    assert_eq!(
        options,
        &vec![ResponseOption::Locator(Locator::tcp(SocketAddr::new(
            ll(1).into(),
            9
        )))]
    );
    // Two interfaces, yet no relaying, of discoveries or floods.
    let other = discovery(3, "fd00::9", Objective::new("OTHER").loop_count(1));
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &other)
            .is_empty()
    );
    let f = flood_bytes(4, "fd00::9", 0, 1, "v", None);
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &f)
            .is_empty()
    );
    // Its own discoveries and floods carry loop count 1.
    let Discover::Started { out, .. } = n
        .discover(
            t0,
            asa,
            &Objective::new("X").loop_count(6),
            Duration::from_secs(1),
            false,
            None,
        )
        .unwrap()
    else {
        panic!()
    };
    let Message::Discovery { objective, .. } = &multicasts(&out)[0].1 else {
        panic!()
    };
    assert_eq!(objective.loop_count, 1);
    let out = multicasts(
        &n.flood(t0, asa, 0, vec![(obj.loop_count(6), None)])
            .unwrap(),
    );
    let Message::Flood { items, .. } = &out[0].1 else {
        panic!()
    };
    assert_eq!(items[0].objective.loop_count, 1);
}
