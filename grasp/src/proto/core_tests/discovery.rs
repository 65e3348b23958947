//! Discovery: answers over TCP at the source port, locators and zones, rapid mode, local
//! discovery's deadline.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default
)]

use super::*;

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
