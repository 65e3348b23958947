//! The rules of RFC 8990 that [`Core`] enforces, each tested with injected time: discovery
//! answers and their locators, relaying (loop counts, once per session, the rate limit,
//! `O_DIVERT` from the cache), the flood cache, DULL mode, request decisions, `M_INVALID`, and
//! the 2,048-byte limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default
)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use super::*;
use crate::wire::{
    DecodeError, FloodItem, Locator, Message, MessageType, Objective, ResponseOption, Value,
};

const IF1: u32 = 2;
const IF2: u32 = 3;

fn ll(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n)
}

fn iface(index: u32, n: u16) -> CoreInterface {
    CoreInterface {
        index,
        link_local: Some(ll(n)),
        ipv4: None,
    }
}

/// A counter as the "random" source: session ids are 1000, 1001, …
fn counter(start: u32) -> Box<dyn FnMut() -> u32 + Send> {
    let mut n = start;
    Box::new(move || {
        n += 1;
        n
    })
}

fn node(interfaces: Vec<CoreInterface>, address: Option<&str>) -> Core {
    let mut c = CoreConfig::default();
    c.interfaces = interfaces;
    c.address = address.map(|a| a.parse().unwrap());
    Core::new(c, counter(1000))
}

fn peer(n: u16, port: u16, ifindex: u32) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(ll(n), port, 0, ifindex))
}

fn discovery(sid: u32, initiator: &str, obj: Objective) -> Vec<u8> {
    Message::Discovery {
        session_id: sid,
        initiator: initiator.parse().unwrap(),
        objective: obj,
    }
    .encode()
    .unwrap()
}

fn decode(bytes: &[u8]) -> Message {
    Message::decode(bytes, 1 << 20).unwrap()
}

/// A node listening for EX3 on port 4000.
fn ex3_listener(address: Option<&str>) -> (Core, AsaId) {
    let mut n = node(vec![iface(IF1, 1)], address);
    let asa = n.register_asa("Briggs").unwrap();
    let ex3 = Objective::new("EX3").neg(true).loop_count(8);
    n.register_obj(asa, &ex3, RegisterOptions::default(), 4000)
        .unwrap();
    n.listen_negotiate(asa, &ex3).unwrap();
    (n, asa)
}

fn responses(out: &[Output]) -> Vec<(SocketAddr, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Respond { to, bytes } => Some((*to, decode(bytes))),
            _ => None,
        })
        .collect()
}

fn multicasts(out: &[Output]) -> Vec<(u32, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Multicast { ifindex, bytes, .. } => Some((*ifindex, decode(bytes))),
            _ => None,
        })
        .collect()
}

#[test]
fn startup_multicasts_one_noop_per_interface() {
    let n = node(vec![iface(IF1, 1), iface(IF2, 2)], None);
    let out = multicasts(&n.startup());
    assert_eq!(out, vec![(IF1, Message::Noop), (IF2, Message::Noop)]);
}

#[test]
fn a_discovery_is_answered_over_tcp_at_its_source_port_with_the_zone() {
    let t0 = Instant::now();
    let (mut n, _) = ex3_listener(Some("fd00::1"));
    let src = peer(9, 45678, 0);
    let out = n.on_multicast(
        t0,
        Family::V6,
        IF1,
        src,
        &discovery(77, "fd00::9", Objective::new("EX3").neg(true)),
    );
    let r = responses(&out);
    assert_eq!(r.len(), 1);
    // To the discovery's link-local source and source port, on the receiving interface.
    assert_eq!(r[0].0, peer(9, 45678, IF1));
    let Message::Response {
        session_id,
        initiator,
        ttl,
        options,
        objective,
    } = &r[0].1
    else {
        panic!()
    };
    assert_eq!((*session_id, *initiator), (77, "fd00::9".parse().unwrap()));
    assert_eq!(*ttl, 600_000);
    // The node's unique-local address and the objective's own port.
    assert_eq!(
        options,
        &vec![ResponseOption::Locator(Locator::tcp(
            "[fd00::1]:4000".parse().unwrap()
        ))]
    );
    assert_eq!(objective, &None);
}

#[test]
fn the_locator_is_link_local_without_an_address_or_for_a_local_objective() {
    let t0 = Instant::now();
    let (mut n, _) = ex3_listener(None);
    let out = n.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &discovery(1, "fd00::9", Objective::new("EX3")),
    );
    let Message::Response { options, .. } = &responses(&out)[0].1 else {
        panic!()
    };
    assert_eq!(
        options[0],
        ResponseOption::Locator(Locator::tcp(SocketAddr::new(ll(1).into(), 4000)))
    );

    let mut m = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let asa = m.register_asa("A").unwrap();
    let obj = Objective::new("L").synch(true);
    m.register_obj(
        asa,
        &obj,
        RegisterOptions::default().local(true).discoverable(true),
        5,
    )
    .unwrap();
    let out = m.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &discovery(1, "fd00::9", Objective::new("L")),
    );
    let Message::Response { options, .. } = &responses(&out)[0].1 else {
        panic!()
    };
    assert!(matches!(&options[0], ResponseOption::Locator(l) if l.is_link_local()));
}

#[test]
fn an_objective_is_not_discoverable_before_listening_unless_registered_so() {
    let t0 = Instant::now();
    let mut n = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let asa = n.register_asa("A").unwrap();
    let ex2 = Objective::new("EX2").synch(true);
    n.register_obj(asa, &ex2, RegisterOptions::default(), 5)
        .unwrap();
    let d = discovery(1, "fd00::9", Objective::new("EX2"));
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &d)
            .is_empty()
    );
    n.listen_synchronize(asa, &ex2.clone().value(Value::from(1)))
        .unwrap();
    assert_eq!(
        responses(&n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &d)).len(),
        1
    );
}

#[test]
fn rapid_mode_puts_the_synchronization_value_in_the_response() {
    let t0 = Instant::now();
    let mut n = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let asa = n.register_asa("A").unwrap();
    let ex2 = Objective::new("EX2").synch(true).loop_count(4);
    n.register_obj(asa, &ex2, RegisterOptions::default().rapid(true), 5)
        .unwrap();
    let v = Value::Array(vec![1.into(), "two".into(), 3.into()]);
    n.listen_synchronize(asa, &ex2.clone().value(v.clone()))
        .unwrap();
    let out = n.on_multicast(
        t0,
        Family::V6,
        IF1,
        peer(9, 1, 0),
        &discovery(1, "fd00::9", Objective::new("EX2").synch(true)),
    );
    let Message::Response { objective, .. } = &responses(&out)[0].1 else {
        panic!()
    };
    assert_eq!(objective.as_ref().unwrap().value, Some(v.clone()));

    // The initiator caches it: synchronize() can use it without another request.
    let mut i = node(vec![iface(IF1, 2)], Some("fd00::2"));
    let ia = i.register_asa("I").unwrap();
    let Discover::Started { deadline, out, .. } = i
        .discover(
            t0,
            ia,
            &Objective::new("EX2").synch(true),
            Duration::from_secs(1),
            false,
            None,
        )
        .unwrap()
    else {
        panic!()
    };
    let Message::Discovery {
        session_id: sid, ..
    } = multicasts(&out)[0].1
    else {
        panic!()
    };
    let resp = Message::Response {
        session_id: sid,
        initiator: "fd00::2".parse().unwrap(),
        ttl: 10_000,
        options: vec![ResponseOption::Locator(Locator::tcp(
            "[fd00::1]:5".parse().unwrap(),
        ))],
        objective: Some(ex2.clone().value(v.clone())),
    };
    i.on_response(t0, IF1, ll(1).into(), &resp.encode().unwrap());
    assert_eq!(i.rapid_value(t0, "EX2").unwrap().value, Some(v));
    let done = i.on_timeout(deadline);
    assert!(matches!(&done[..], [Output::DiscoveryDone { locators, .. }] if locators.len() == 1));
}

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

#[test]
fn local_discovery_waits_for_responses_until_its_deadline() {
    let t0 = Instant::now();
    let mut n = node(vec![iface(IF1, 1), iface(IF2, 2)], Some("fd00::1"));
    let asa = n.register_asa("Gray").unwrap();
    let ex3 = Objective::new("EX3").neg(true).loop_count(8);
    // A timeout shorter than 100 ms per loop count is stretched to it.
    let Discover::Started { id, deadline, out } = n
        .discover(t0, asa, &ex3, Duration::from_millis(300), false, None)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(deadline, t0 + Duration::from_millis(800));
    let sent = multicasts(&out);
    assert_eq!(sent.len(), 2, "on every interface");
    let Message::Discovery {
        session_id,
        initiator,
        ..
    } = sent[0].1.clone()
    else {
        panic!()
    };
    assert_eq!(initiator, "fd00::1".parse::<IpAddr>().unwrap());
    assert_eq!(n.next_timeout(), Some(deadline));
    let answer = |sid: u32, port: u16| {
        Message::Response {
            session_id: sid,
            initiator,
            ttl: 60_000,
            options: vec![ResponseOption::Locator(Locator::tcp(SocketAddr::new(
                "fd00::2".parse().unwrap(),
                port,
            )))],
            objective: None,
        }
        .encode()
        .unwrap()
    };
    n.on_response(t0, IF1, ll(2).into(), &answer(session_id, 4000));
    // A response to another session is dropped.
    n.on_response(t0, IF1, ll(3).into(), &answer(session_id + 1, 5000));
    assert!(n.on_timeout(deadline - Duration::from_millis(1)).is_empty());
    let done = n.on_timeout(deadline);
    let [Output::DiscoveryDone { id: got, locators }] = &done[..] else {
        panic!("{done:?}")
    };
    assert_eq!(*got, id);
    assert_eq!(locators.len(), 1);
    assert_eq!(
        locators[0].socket_addr(),
        Some("[fd00::2]:4000".parse().unwrap())
    );
    // Cached now: answered at once, until flushed.
    assert!(matches!(
        n.discover(deadline, asa, &ex3, Duration::from_secs(1), false, None).unwrap(),
        Discover::Cached(l) if l.len() == 1
    ));
    assert!(matches!(
        n.discover(deadline, asa, &ex3, Duration::from_secs(1), true, None)
            .unwrap(),
        Discover::Started { .. }
    ));
    // Timeout zero: the cache only, even when empty.
    let other = Objective::new("NONE");
    assert_eq!(
        n.discover(t0, asa, &other, Duration::ZERO, false, None)
            .unwrap(),
        Discover::Cached(Vec::new())
    );
}

#[test]
fn a_link_local_locator_keeps_its_interface_as_zone() {
    let t0 = Instant::now();
    let mut n = node(vec![iface(IF1, 1)], None);
    let asa = n.register_asa("A").unwrap();
    let Discover::Started { deadline, out, .. } = n
        .discover(
            t0,
            asa,
            &Objective::new("EX3"),
            Duration::from_millis(100),
            false,
            None,
        )
        .unwrap()
    else {
        panic!()
    };
    let Message::Discovery {
        session_id,
        initiator,
        ..
    } = multicasts(&out)[0].1.clone()
    else {
        panic!()
    };
    // Without an address the initiator is the link-local one.
    assert_eq!(initiator, IpAddr::V6(ll(1)));
    let resp = Message::Response {
        session_id,
        initiator,
        ttl: 0,
        options: vec![ResponseOption::Locator(Locator::tcp(SocketAddr::new(
            ll(5).into(),
            4000,
        )))],
        objective: None,
    };
    n.on_response(t0, IF1, ll(5).into(), &resp.encode().unwrap());
    let done = n.on_timeout(deadline);
    let [Output::DiscoveryDone { locators, .. }] = &done[..] else {
        panic!()
    };
    assert_eq!(
        locators[0].socket_addr(),
        Some(SocketAddr::V6(SocketAddrV6::new(ll(5), 4000, 0, IF1)))
    );
    // A ttl of zero lasts ten times the default timeout.
    assert_eq!(locators[0].expires_at, t0 + Duration::from_secs(600));
}

#[test]
fn requests_are_routed_closed_or_discarded() {
    let (mut n, _) = ex3_listener(Some("fd00::1"));
    let p: IpAddr = "fd00::9".parse().unwrap();
    let req = |sid, name: &str| Message::ReqNeg {
        session_id: sid,
        objective: Objective::new(name).neg(true),
    };
    assert!(matches!(
        n.on_request(p, req(5, "EX3")),
        RequestDecision::Negotiate { session_id: 5, .. }
    ));
    // The same session id while that session is active: discarded (the peer times out).
    assert_eq!(n.on_request(p, req(5, "EX3")), RequestDecision::Discard);
    n.end_session(5, Origin::Remote(p));
    // Nobody listening for it: closed at once.
    assert_eq!(n.on_request(p, req(6, "EX9")), RequestDecision::Close);
    // Not negotiable in the request: closed.
    let syn = Message::ReqNeg {
        session_id: 7,
        objective: Objective::new("EX3"),
    };
    assert_eq!(n.on_request(p, syn), RequestDecision::Close);
    // Not a request at all, M_INVALID included: closed, never answered.
    let inv = Message::Invalid {
        session_id: 8,
        content: None,
    };
    assert_eq!(n.on_request(p, inv), RequestDecision::Close);
}

#[test]
fn a_synchronization_request_gets_the_value() {
    let mut n = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let asa = n.register_asa("A").unwrap();
    let ex2 = Objective::new("EX2").synch(true).loop_count(4);
    n.register_obj(asa, &ex2, RegisterOptions::default(), 5)
        .unwrap();
    let p: IpAddr = "fd00::9".parse().unwrap();
    let req = Message::ReqSyn {
        session_id: 3,
        objective: Objective::new("EX2").synch(true),
    };
    assert_eq!(
        n.on_request(p, req.clone()),
        RequestDecision::Close,
        "not listening yet"
    );
    let v = Value::Array(vec![1.into(), "two".into(), 3.into()]);
    n.listen_synchronize(asa, &ex2.clone().value(v.clone()))
        .unwrap();
    let RequestDecision::Reply(bytes) = n.on_request(p, req) else {
        panic!()
    };
    assert_eq!(
        decode(&bytes),
        Message::Synch {
            session_id: 3,
            objective: ex2.value(v)
        }
    );
}

#[test]
fn m_invalid_answers_bad_unicast_but_never_m_invalid() {
    let n = node(vec![iface(IF1, 1)], None);
    let unknown = DecodeError::UnknownType {
        mtype: 42,
        session_id: Some(7),
    };
    let bytes = n.invalid_answer(&unknown).unwrap();
    assert!(matches!(
        decode(&bytes),
        Message::Invalid { session_id: 7, .. }
    ));
    assert!(bytes.len() < 64);
    let bad_req = DecodeError::Invalid {
        mtype: MessageType::ReqNeg,
        session_id: Some(8),
        what: "x",
    };
    assert!(n.invalid_answer(&bad_req).is_some());
    let bad_invalid = DecodeError::Invalid {
        mtype: MessageType::Invalid,
        session_id: Some(9),
        what: "x",
    };
    assert_eq!(n.invalid_answer(&bad_invalid), None);
    assert_eq!(
        n.invalid_answer(&DecodeError::UnknownType {
            mtype: 42,
            session_id: None
        }),
        None
    );
    assert_eq!(n.invalid_answer(&DecodeError::Truncated), None);
}

#[test]
fn multicasts_of_unknown_or_unicast_types_are_dropped_silently() {
    let t0 = Instant::now();
    let (mut n, _) = ex3_listener(Some("fd00::1"));
    let unknown = Value::Array(vec![42.into(), 1.into()]).to_cbor().unwrap();
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &unknown)
            .is_empty()
    );
    let invalid = Message::Invalid {
        session_id: 1,
        content: None,
    }
    .encode()
    .unwrap();
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &invalid)
            .is_empty()
    );
    let req = Message::ReqNeg {
        session_id: 1,
        objective: Objective::new("EX3").neg(true),
    };
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &req.encode().unwrap())
            .is_empty()
    );
}

#[test]
fn the_2048_byte_limit_applies_to_what_is_received_and_sent() {
    let t0 = Instant::now();
    let (mut n, asa) = ex3_listener(Some("fd00::1"));
    let pad = |len: usize| Objective::new("EX3").value(Value::Bytes(vec![0; len]));
    // A discovery of 2,048 bytes is answered; one byte more is dropped.
    let mut len = 2000;
    let exact = loop {
        let d = discovery(1, "fd00::9", pad(len));
        match d.len() {
            2048 => break d,
            l if l > 2048 => len -= 1,
            _ => len += 1,
        }
    };
    assert_eq!(
        responses(&n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &exact)).len(),
        1
    );
    let over = discovery(2, "fd00::9", pad(len + 1));
    assert_eq!(over.len(), 2049);
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &over)
            .is_empty()
    );
    // Nothing longer is sent.
    let ex1 = Objective::new("EX1").synch(true);
    n.register_obj(asa, &ex1, RegisterOptions::default(), 0)
        .unwrap();
    let big = ex1.value(Value::Bytes(vec![0; 2100]));
    assert!(matches!(
        n.flood(t0, asa, 0, vec![(big.clone(), None)]),
        Err(GraspError::Unspec(_))
    ));
    assert!(matches!(
        n.discover(t0, asa, &big, Duration::from_secs(1), false, None),
        Err(GraspError::Unspec(_))
    ));
}
