use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::*;
use crate::node::relay::Rate;

const IP_A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const IP_B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const IP_C: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));

fn id(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn peer(s: &'static str) -> RelayAddress {
    RelayAddress::Peer(id(s))
}

/// An inner frame of `n` bytes whose first byte (its type) is REQUEST_URI.
fn frame(n: usize) -> Bytes {
    Bytes::from(vec![0u8; n])
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_reserved_peer_is_reached_and_an_unknown_one_is_no_route() {
    let t0 = Instant::now();
    let mut r = RelayState::new(RelayConfig::default());
    let limits = r
        .reserve(2u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    assert_eq!(limits.reservation_secs, 3600);
    // A sender without a reservation: delivered on a circuit, which the recipient answers.
    let f = r.forward(1, IP_A, &peer("c"), frame(10), t0).unwrap();
    assert_eq!(f, Forwarded { to: 2, start: true });
    let (from, inner) = r.pop(2).unwrap();
    assert_eq!(inner.len(), 10);
    let RelayAddress::Circuit(n) = from else {
        panic!("{from:?}")
    };
    let back = r
        .forward(2, IP_C, &RelayAddress::Circuit(n), frame(5), t0)
        .unwrap();
    assert_eq!(back.to, 1);
    assert_eq!(r.pop(1).unwrap().0, peer("c"));
    assert_eq!(
        r.forward(1, IP_A, &peer("nobody"), frame(10), t0),
        Err(RelayRefusal::NoRoute)
    );
    // Only the reserved end answers through a circuit.
    assert_eq!(
        r.forward(3, IP_B, &RelayAddress::Circuit(n), frame(5), t0),
        Err(RelayRefusal::NoRoute)
    );
    assert_eq!(r.stats().no_route, 2);
}

#[test]
fn reservations_are_bound_to_their_connection_and_expire() {
    let t0 = Instant::now();
    let config = RelayConfig::default().reservation_duration(secs(10));
    let mut r = RelayState::new(config);
    r.reserve(1u32, IP_A, id("a"), Claim::default(), t0)
        .unwrap();
    assert_eq!(
        r.reserve(2, IP_B, id("a"), Claim::default(), t0),
        Err(RelayRefusal::Taken),
        "another connection cannot take a reserved id"
    );
    // Renewed by its holder: it lasts 10 s from the renewal.
    r.reserve(1, IP_A, id("a"), Claim::default(), t0 + secs(8))
        .unwrap();
    assert!(
        r.forward(3, IP_B, &peer("a"), frame(1), t0 + secs(17))
            .is_ok()
    );
    assert_eq!(
        r.forward(3, IP_B, &peer("a"), frame(1), t0 + secs(18)),
        Err(RelayRefusal::NoRoute)
    );
    // A closed connection's reservation goes at once.
    r.reserve(2, IP_B, id("b"), Claim::default(), t0).unwrap();
    r.connection_closed(2);
    assert_eq!(
        r.forward(3, IP_C, &peer("b"), frame(1), t0),
        Err(RelayRefusal::NoRoute)
    );
    assert!(
        r.reserve(4, IP_C, id("b"), Claim::default(), t0).is_ok(),
        "free again"
    );
}

#[test]
fn reservations_are_bounded_in_total_and_per_ip() {
    let t0 = Instant::now();
    let config = RelayConfig::default()
        .max_reservations(3)
        .max_reservations_per_ip(2);
    let mut r = RelayState::new(config);
    r.reserve(1u32, IP_A, id("a1"), Claim::default(), t0)
        .unwrap();
    r.reserve(2, IP_A, id("a2"), Claim::default(), t0).unwrap();
    assert_eq!(
        r.reserve(3, IP_A, id("a3"), Claim::default(), t0),
        Err(RelayRefusal::ReservationLimit)
    );
    r.reserve(4, IP_B, id("b1"), Claim::default(), t0).unwrap();
    assert_eq!(
        r.reserve(5, IP_C, id("c1"), Claim::default(), t0),
        Err(RelayRefusal::ReservationLimit)
    );
    r.connection_closed(1);
    assert!(r.reserve(5, IP_C, id("c1"), Claim::default(), t0).is_ok());
    assert_eq!(r.stats().reservations, 3);
}

#[test]
fn a_fast_sender_is_refused_while_another_is_served() {
    let t0 = Instant::now();
    let config = RelayConfig::default().envelope_rate_per_sender(Rate::per_second(5));
    let mut r = RelayState::new(config);
    r.reserve(9u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    r.reserve(1, IP_A, id("a"), Claim::default(), t0).unwrap();
    r.reserve(2, IP_B, id("b"), Claim::default(), t0).unwrap();
    for _ in 0..5 {
        r.forward(1, IP_A, &peer("c"), frame(10), t0).unwrap();
        r.pop(9);
    }
    assert_eq!(
        r.forward(1, IP_A, &peer("c"), frame(10), t0),
        Err(RelayRefusal::RateLimited)
    );
    assert!(r.forward(2, IP_B, &peer("c"), frame(10), t0).is_ok());
    // The rate comes back with time: one envelope per 200 ms.
    assert!(
        r.forward(
            1,
            IP_A,
            &peer("c"),
            frame(10),
            t0 + Duration::from_millis(200)
        )
        .is_ok()
    );
    assert_eq!(r.stats().rate_limited, 1);
}

#[test]
fn one_ip_is_limited_across_its_connections() {
    let t0 = Instant::now();
    let config = RelayConfig::default()
        .byte_rate_per_ip(Rate::per_second(1000))
        .queue_bytes(1 << 20)
        .queue_envelopes(1000);
    let mut r = RelayState::new(config);
    r.reserve(9u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    for conn in 1..=4 {
        r.reserve(
            conn,
            IP_A,
            Bytes::from(format!("a{conn}")),
            Claim::default(),
            t0,
        )
        .unwrap();
    }
    let mut sent = 0;
    for conn in (1..=4).cycle().take(40) {
        if r.forward(conn, IP_A, &peer("c"), frame(100), t0).is_ok() {
            sent += 1;
        }
    }
    assert_eq!(sent, 10, "1,000 bytes per second for the whole IP");
    r.reserve(5, IP_B, id("b"), Claim::default(), t0).unwrap();
    assert!(r.forward(5, IP_B, &peer("c"), frame(100), t0).is_ok());
}

#[test]
fn a_recipient_that_does_not_read_holds_at_most_its_queue() {
    let t0 = Instant::now();
    let config = RelayConfig::default()
        .queue_envelopes(4)
        .queue_bytes(250)
        .envelope_rate_per_sender(Rate::per_second(1_000_000))
        .envelope_rate_per_ip(Rate::per_second(1_000_000));
    let mut r = RelayState::new(config);
    r.reserve(9u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    r.reserve(1, IP_A, id("a"), Claim::default(), t0).unwrap();
    let first = r.forward(1, IP_A, &peer("c"), frame(100), t0).unwrap();
    assert!(first.start);
    assert!(
        !r.forward(1, IP_A, &peer("c"), frame(100), t0)
            .unwrap()
            .start
    );
    // 200 bytes queued: 100 more would pass the byte bound.
    assert_eq!(
        r.forward(1, IP_A, &peer("c"), frame(100), t0),
        Err(RelayRefusal::QueueFull)
    );
    r.forward(1, IP_A, &peer("c"), frame(10), t0).unwrap();
    r.forward(1, IP_A, &peer("c"), frame(10), t0).unwrap();
    assert_eq!(
        r.forward(1, IP_A, &peer("c"), frame(1), t0),
        Err(RelayRefusal::QueueFull),
        "4 envelopes at most"
    );
    let s = r.stats();
    assert_eq!(
        (s.queued_envelopes, s.queued_bytes, s.queue_full),
        (4, 220, 2)
    );
    // Drained: the drainer stops at the empty queue, and the next envelope starts one.
    while r.pop(9).is_some() {}
    assert!(r.forward(1, IP_A, &peer("c"), frame(1), t0).unwrap().start);
}

#[test]
fn envelopes_are_bounded_in_size_and_never_nested() {
    let t0 = Instant::now();
    let mut r = RelayState::new(RelayConfig::default().max_envelope_size(100));
    r.reserve(9u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    assert_eq!(
        r.forward(1, IP_A, &peer("c"), frame(101), t0),
        Err(RelayRefusal::TooLarge)
    );
    let mut nested = vec![0u8; 20];
    nested[0] = super::super::FORWARD.value();
    assert_eq!(
        r.forward(1, IP_A, &peer("c"), Bytes::from(nested), t0),
        Err(RelayRefusal::Nested)
    );
    assert_eq!(
        r.forward(1, IP_A, &peer("c"), Bytes::new(), t0),
        Err(RelayRefusal::Malformed)
    );
}

#[test]
fn circuits_are_bounded_in_number_time_and_bytes() {
    let t0 = Instant::now();
    let config = RelayConfig::default()
        .max_circuits(3)
        .max_circuits_per_peer(2)
        .circuit_bytes(250)
        .circuit_duration(secs(120));
    let mut r = RelayState::new(config);
    r.reserve(10u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    r.reserve(11, IP_C, id("d"), Claim::default(), t0).unwrap();
    r.forward(1, IP_A, &peer("c"), frame(100), t0).unwrap();
    r.forward(2, IP_A, &peer("c"), frame(100), t0).unwrap();
    assert_eq!(
        r.forward(3, IP_A, &peer("c"), frame(100), t0),
        Err(RelayRefusal::CircuitLimit),
        "2 circuits per peer"
    );
    r.forward(3, IP_A, &peer("d"), frame(100), t0).unwrap();
    assert_eq!(
        r.forward(4, IP_B, &peer("d"), frame(1), t0),
        Err(RelayRefusal::CircuitLimit),
        "3 circuits in all"
    );
    // 250 bytes per circuit: 100 + 100 pass, the third 100 ends the circuit.
    r.forward(1, IP_A, &peer("c"), frame(100), t0).unwrap();
    assert_eq!(
        r.forward(1, IP_A, &peer("c"), frame(100), t0),
        Err(RelayRefusal::CircuitLimit)
    );
    assert_eq!(r.stats().circuits, 2);
    // After 2 minutes every circuit is gone; new ones can be made.
    r.expire(t0 + secs(120));
    assert_eq!(r.stats().circuits, 0);
    assert!(
        r.forward(4, IP_B, &peer("d"), frame(1), t0 + secs(120))
            .is_ok()
    );
}

#[test]
fn creations_are_rate_limited_per_connection_and_per_ip() {
    let t0 = Instant::now();
    let config = RelayConfig::default()
        .reservation_rate_per_sender(Rate::new(2, secs(120)))
        .reservation_rate_per_ip(Rate::new(3, secs(60)))
        .max_reservations_per_ip(100);
    let mut r = RelayState::new(config);
    r.reserve(1u32, IP_A, id("a"), Claim::default(), t0)
        .unwrap();
    r.reserve(1, IP_A, id("a"), Claim::default(), t0).unwrap();
    assert_eq!(
        r.reserve(1, IP_A, id("a"), Claim::default(), t0),
        Err(RelayRefusal::RateLimited)
    );
    r.reserve(2, IP_A, id("b"), Claim::default(), t0).unwrap();
    assert_eq!(
        r.reserve(3, IP_A, id("c"), Claim::default(), t0),
        Err(RelayRefusal::RateLimited),
        "3 per minute for the IP"
    );
    assert!(
        r.reserve(3, IP_A, id("c"), Claim::default(), t0 + secs(20))
            .is_ok()
    );
}

#[test]
fn tracked_ips_and_senders_are_bounded() {
    let t0 = Instant::now();
    let mut r = RelayState::new(RelayConfig::default().max_tracked_ips(8));
    r.reserve(0u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    for i in 0..100u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
        let _ = r.forward(i + 1, ip, &peer("c"), frame(1), t0);
        // No end of connection seen: the senders' table is bounded too.
        assert!(r.ips.len() <= 8 && r.senders.len() <= 8);
    }
}

#[test]
fn ipv6_hosts_are_counted_by_their_64() {
    let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    assert_eq!(ip_key(a), ip_key(b));
    assert_ne!(ip_key(a), ip_key("2001:db8:1:3::1".parse().unwrap()));
}

#[test]
fn a_sender_is_named_by_the_id_it_reserved_last_and_by_a_circuit_without_one() {
    let t0 = Instant::now();
    let mut r = RelayState::new(RelayConfig::default());
    r.reserve(9u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    r.reserve(1, IP_A, id("a1"), Claim::default(), t0).unwrap();
    r.reserve(1, IP_A, id("a2"), Claim::default(), t0).unwrap();
    r.forward(1, IP_A, &peer("c"), frame(1), t0).unwrap();
    assert_eq!(r.pop(9).unwrap().0, peer("a2"));
    r.reserve(1, IP_A, id("a1"), Claim::default(), t0).unwrap();
    r.forward(1, IP_A, &peer("c"), frame(1), t0).unwrap();
    assert_eq!(
        r.pop(9).unwrap().0,
        peer("a1"),
        "renewed: the last reserved"
    );
    r.expire(t0 + Duration::from_secs(3600));
    r.reserve(
        9,
        IP_C,
        id("c"),
        Claim::default(),
        t0 + Duration::from_secs(3600),
    )
    .unwrap();
    r.forward(
        1,
        IP_A,
        &peer("c"),
        frame(1),
        t0 + Duration::from_secs(3600),
    )
    .unwrap();
    assert!(matches!(r.pop(9).unwrap().0, RelayAddress::Circuit(_)));
}

#[test]
fn connections_whose_end_was_missed_are_dropped_by_a_sweep() {
    let t0 = Instant::now();
    let mut r = RelayState::new(RelayConfig::default());
    r.reserve(2u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    r.reserve(3, IP_B, id("b"), Claim::default(), t0).unwrap();
    // 1 talks to c on a circuit; c's queue holds an envelope.
    r.forward(1, IP_A, &peer("c"), frame(10), t0).unwrap();
    assert_eq!(r.holder(b"c"), Some(2));
    assert_eq!(
        r.reserve(4, IP_A, id("c"), Claim::default(), t0),
        Err(RelayRefusal::Taken)
    );
    // Only 3 is still connected.
    r.retain_connections(|c| *c == 3);
    let s = r.stats();
    assert_eq!(
        (s.reservations, s.circuits, s.queued_envelopes),
        (1, 0, 0),
        "{s:?}"
    );
    assert_eq!(r.holder(b"c"), None);
    assert_eq!(r.holder(b"b"), Some(3));
    r.reserve(4, IP_A, id("c"), Claim::default(), t0).unwrap();
}

fn until(t: Instant) -> Claim {
    Claim {
        until: Some(t),
        proven: false,
    }
}

const PROVEN: Claim = Claim {
    until: None,
    proven: true,
};

#[test]
fn a_reservation_lasts_no_longer_than_its_claim_and_says_so() {
    let t0 = Instant::now();
    let mut r = RelayState::new(RelayConfig::default());
    // The proof of its address lasts 300 s: so does the reservation, and its answer says so.
    let limits = r.reserve(1u32, IP_A, id("a"), until(t0 + secs(300)), t0);
    assert_eq!(limits.unwrap().reservation_secs, 300);
    assert!(
        r.forward(2, IP_B, &peer("a"), frame(1), t0 + secs(299))
            .is_ok()
    );
    r.pop(1).unwrap();
    assert_eq!(
        r.forward(2, IP_B, &peer("a"), frame(1), t0 + secs(300)),
        Err(RelayRefusal::NoRoute)
    );
    // Renewed from a proof that lasts longer: to the proof's end again.
    let t1 = t0 + secs(200);
    let limits = r.reserve(1, IP_A, id("a"), until(t1 + secs(300)), t1);
    assert_eq!(limits.unwrap().reservation_secs, 300);
    assert!(
        r.forward(2, IP_B, &peer("a"), frame(1), t1 + secs(299))
            .is_ok()
    );
    // A proof longer than the configured duration: the duration.
    let limits = r.reserve(3, IP_C, id("c"), until(t0 + secs(7200)), t0);
    assert_eq!(limits.unwrap().reservation_secs, 3600);
    assert!(
        r.forward(2, IP_B, &peer("c"), frame(1), t0 + secs(3599))
            .is_ok()
    );
    assert_eq!(
        r.forward(2, IP_B, &peer("c"), frame(1), t0 + secs(3600)),
        Err(RelayRefusal::NoRoute)
    );
}

#[test]
fn a_proven_reservation_moves_the_id_and_an_unproven_one_is_taken() {
    let t0 = Instant::now();
    let mut r = RelayState::new(RelayConfig::default());
    r.reserve(1u32, IP_A, id("c"), Claim::default(), t0)
        .unwrap();
    // 3 talks to c on a circuit, before c moves.
    r.forward(3, IP_C, &peer("c"), frame(4), t0).unwrap();
    let RelayAddress::Circuit(n) = r.pop(1).unwrap().0 else {
        panic!("a circuit")
    };
    assert_eq!(
        r.reserve(2, IP_B, id("c"), Claim::default(), t0),
        Err(RelayRefusal::Taken),
        "without proof, first come first served"
    );
    assert_eq!(r.holder(b"c"), Some(1));
    // With proof: the id moves to 2, and lasts from now.
    let t1 = t0 + secs(100);
    let limits = r.reserve(2, IP_B, id("c"), PROVEN, t1).unwrap();
    assert_eq!(limits.reservation_secs, 3600);
    assert_eq!(r.holder(b"c"), Some(2));
    assert_eq!(r.stats().reservations, 1);
    assert_eq!(
        r.per_ip.get(&IP_A),
        None,
        "the old address's count is freed"
    );
    assert_eq!(r.per_ip.get(&IP_B), Some(&1));
    // The circuit follows the id: 3's envelopes go to 2, which answers through it; the old
    // holder no longer can.
    assert_eq!(r.forward(3, IP_C, &peer("c"), frame(4), t1).unwrap().to, 2);
    r.pop(2).unwrap();
    let back = r.forward(2, IP_B, &RelayAddress::Circuit(n), frame(4), t1);
    assert_eq!(back.unwrap().to, 3);
    assert_eq!(
        r.forward(1, IP_A, &RelayAddress::Circuit(n), frame(4), t1),
        Err(RelayRefusal::NoRoute)
    );
    // 1 lost its own id: what it sends now goes on a circuit, not as "c".
    r.reserve(4, IP_C, id("d"), Claim::default(), t1).unwrap();
    r.forward(1, IP_A, &peer("d"), frame(4), t1).unwrap();
    assert!(matches!(r.pop(4).unwrap().0, RelayAddress::Circuit(_)));
    // The move restarted the lifetime: 1's old expiry (t0 + 1 h) does not end it.
    assert!(
        r.forward(3, IP_C, &peer("c"), frame(4), t0 + secs(3650))
            .is_ok()
    );
}

#[test]
fn a_move_keeps_within_the_bounds() {
    let t0 = Instant::now();
    let config = RelayConfig::default()
        .max_reservations(3)
        .max_reservations_per_ip(2);
    let mut r = RelayState::new(config);
    r.reserve(1u32, IP_A, id("a1"), Claim::default(), t0)
        .unwrap();
    r.reserve(2, IP_B, id("b1"), Claim::default(), t0).unwrap();
    r.reserve(3, IP_B, id("b2"), Claim::default(), t0).unwrap();
    // IP_B is full: a1 cannot move there, and stays where it was.
    assert_eq!(
        r.reserve(4, IP_B, id("a1"), PROVEN, t0),
        Err(RelayRefusal::ReservationLimit)
    );
    assert_eq!(r.holder(b"a1"), Some(1));
    // Within one full IP, and with the relay full, a move takes the place it frees.
    r.reserve(5, IP_B, id("b1"), PROVEN, t0).unwrap();
    assert_eq!(r.holder(b"b1"), Some(5));
    r.reserve(6, IP_C, id("a1"), PROVEN, t0).unwrap();
    let s = r.stats();
    assert_eq!(s.reservations, 3, "{s:?}");
    assert_eq!(
        (
            r.per_ip.get(&IP_A),
            r.per_ip.get(&IP_B),
            r.per_ip.get(&IP_C)
        ),
        (None, Some(&2), Some(&1))
    );
}

#[test]
fn an_envelope_refused_after_the_rate_check_takes_nothing_from_the_rate() {
    let t0 = Instant::now();
    let config = RelayConfig::default()
        .envelope_rate_per_sender(Rate::per_second(2))
        .byte_rate_per_ip(Rate::per_second(100));
    let mut r = RelayState::new(config);
    r.reserve(9u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    r.reserve(1, IP_A, id("a"), Claim::default(), t0).unwrap();
    // Refused for want of a route, many times: the sender's envelopes and its IP's bytes stay.
    for _ in 0..10 {
        assert_eq!(
            r.forward(1, IP_A, &peer("nobody"), frame(40), t0),
            Err(RelayRefusal::NoRoute)
        );
    }
    for _ in 0..2 {
        r.forward(1, IP_A, &peer("c"), frame(40), t0).unwrap();
        r.pop(9);
    }
    assert_eq!(
        r.forward(1, IP_A, &peer("c"), frame(10), t0),
        Err(RelayRefusal::RateLimited)
    );
}

#[test]
fn idle_queues_are_kept_no_more_than_reservations_and_circuits() {
    let t0 = Instant::now();
    let mut r = RelayState::new(RelayConfig::default());
    r.reserve(9u32, IP_C, id("c"), Claim::default(), t0)
        .unwrap();
    // Delivered and drained: the recipient's queue stays, idle and empty.
    let f = r.forward(1, IP_A, &peer("c"), frame(10), t0).unwrap();
    assert!(f.start);
    assert!(r.pop(9).is_some());
    assert!(r.pop(9).is_none());
    assert_eq!(r.queues.len(), 1);
    // The next envelope starts a drainer again.
    assert!(r.forward(1, IP_A, &peer("c"), frame(10), t0).unwrap().start);
    assert!(r.pop(9).is_some());
    assert!(r.pop(9).is_none());
    // The reservation ends but its connection's end is missed: the next drained queue goes.
    r.expire(t0 + secs(7200));
    assert_eq!(r.queues.len(), 1);
    r.queues.entry(9).or_default().draining = true;
    assert!(r.pop(9).is_none());
    assert!(r.queues.is_empty());
    assert_eq!(r.stats().queued_envelopes, 0);
}
