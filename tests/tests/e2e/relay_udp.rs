//! The relay on a UdpNode (issue 14, "opt-in on any node"): reservations bound to a verified
//! address and lasting until they expire, calls by peer id through the relay and their replies,
//! the refusals (no route, taken, rate), and what an unverified or forged source gets (nothing
//! beyond its own size, no DELIVER). Real UDP sockets on 127.0.0.1, paused time (loopback
//! delivers a datagram before `send_to` returns, so a loss shows as the call's timeout, reached
//! at once).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use netaio::message::PostcardCodec;
use netaio::peer::Peer;
use netaio::relay::{
    DELIVER, FORWARD, RESERVE, Rate, RelayAddress, RelayConfig, RelayRefusal, ReserveError,
};
use netaio::udp::{UdpNode, UdpRelay};
use netaio::{CallOptions, Message, MessageType, RequestError, Router, UdpHandle};
use netaio_tests::{RawUdp as Raw, TestUdpNode, WAIT, start_udp, within};

async fn relay(config: RelayConfig) -> (TestUdpNode, UdpRelay) {
    let relay = UdpRelay::new(config);
    (
        start_udp(UdpNode::builder().relay(relay.clone())).await,
        relay,
    )
}

/// A node answering `echo` (and counting the requests its handler ran).
async fn echo_node(calls: &Arc<AtomicUsize>) -> TestUdpNode {
    let calls = calls.clone();
    let router = Router::new().on((MessageType::REQUEST_URI, "echo"), move |m: Message| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Message::respond("echo", m.content().clone()) }
    });
    start_udp(UdpNode::builder().router(router)).await
}

async fn plain_node() -> TestUdpNode {
    start_udp(UdpNode::builder()).await
}

fn echo(content: &str) -> Message {
    Message::new(MessageType::REQUEST_URI, "echo", content.to_owned())
}

async fn call(
    a: &UdpHandle,
    relay: SocketAddr,
    id: &str,
    content: &str,
) -> Result<Message, RequestError> {
    let opts = CallOptions::new().timeout(Duration::from_secs(30));
    a.start_call_via_relay(relay, &Peer::new(id.to_owned()), echo(content), &opts)
        .await
}

fn refusal(r: Result<Message, RequestError>) -> Option<RelayRefusal> {
    RelayRefusal::from_error(&r.unwrap_err())
}

#[tokio::test(start_paused = true)]
async fn a_calls_c_by_id_through_a_udp_relay_and_gets_the_reply() {
    let (r, relay) = relay(RelayConfig::default()).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    let a = plain_node().await;
    let limits = c.handle.reserve(r.addr, "node-c").await.unwrap();
    // Not the hour of `reservation_duration`: the proof of C's address lasts 5 minutes.
    assert_eq!(limits.reservation_secs, 300);
    // A without a reservation: C answers on a circuit.
    let reply = call(&a.handle, r.addr, "node-c", "one").await.unwrap();
    assert_eq!(reply.content().as_ref(), b"one");
    // A with its own reservation: C answers to A's id.
    a.handle.reserve(r.addr, "node-a").await.unwrap();
    let reply = within(
        WAIT,
        "the call",
        a.handle
            .call_via_relay(r.addr, &Peer::new("node-c"), echo("two")),
    )
    .await
    .unwrap();
    assert_eq!(reply.content().as_ref(), b"two");
    // A send, no reply expected: C's handler runs.
    a.handle
        .send_via_relay(
            r.addr,
            &Peer::new("node-c"),
            &echo("three"),
            &Default::default(),
        )
        .await
        .unwrap();
    within(WAIT, "the send", async {
        while ran.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    let stats = relay.stats();
    assert_eq!(stats.reservations, 2);
    assert_eq!(stats.circuits, 1);
    // Two calls and their replies, the send, its reply, and the NOT_FOUND A answers that reply
    // with (no route takes a RESPOND_URI at A: as on direct UDP).
    assert_eq!(stats.relayed, 7, "{stats:?}");
    assert_eq!(stats.queued_envelopes, 0);
    // A large frame goes through as well (the inner frame's checksum from the envelope's).
    let big = "x".repeat(40_000);
    let reply = call(&a.handle, r.addr, "node-c", &big).await.unwrap();
    assert_eq!(reply.content().len(), 40_000);
    for n in [a, c, r] {
        n.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_unknown_id_is_no_route_at_once() {
    let (r, relay) = relay(RelayConfig::default()).await;
    let a = plain_node().await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        refusal(call(&a.handle, r.addr, "nobody", "x").await),
        Some(RelayRefusal::NoRoute)
    );
    // Not the call's 30-second timeout: the relay's answer.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(relay.stats().no_route, 1);
    a.stop().await;
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reservation_not_renewed_expires_and_the_id_is_no_route() {
    let (r, service) =
        relay(RelayConfig::default().reservation_duration(Duration::from_secs(20))).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    let a = plain_node().await;
    assert_eq!(
        c.handle
            .reserve(r.addr, "node-c")
            .await
            .unwrap()
            .reservation_secs,
        20
    );
    call(&a.handle, r.addr, "node-c", "x").await.unwrap();
    // Renewed at 15 s: still there at 30 s.
    tokio::time::advance(Duration::from_secs(15)).await;
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    tokio::time::advance(Duration::from_secs(15)).await;
    call(&a.handle, r.addr, "node-c", "x").await.unwrap();
    assert_eq!(service.stats().reservations, 1);
    // Not renewed for 20 s: gone, from the counters too (nothing came to sweep it).
    tokio::time::advance(Duration::from_secs(21)).await;
    assert_eq!(service.stats().reservations, 0);
    assert_eq!(
        refusal(call(&a.handle, r.addr, "node-c", "x").await),
        Some(RelayRefusal::NoRoute)
    );
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    for n in [a, c, r] {
        n.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_second_peer_cannot_take_a_live_id() {
    let (r, _relay) =
        relay(RelayConfig::default().reservation_duration(Duration::from_secs(60))).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    let d = plain_node().await;
    let a = plain_node().await;
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    match d.handle.reserve(r.addr, "node-c").await {
        Err(ReserveError::Refused(RelayRefusal::Taken)) => {}
        other => panic!("{other:?}"),
    }
    // The holder renews it; calls still go to it.
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    call(&a.handle, r.addr, "node-c", "x").await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // Once it expired, the id is the next one's.
    tokio::time::advance(Duration::from_secs(61)).await;
    d.handle.reserve(r.addr, "node-c").await.unwrap();
    for n in [a, c, d, r] {
        n.stop().await;
    }
}

fn frame(msg: &Message) -> Bytes {
    msg.to_bytes(&PostcardCodec).unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_unverified_source_gets_no_deliver_and_nothing_beyond_its_size() {
    let (r, relay) = relay(RelayConfig::default()).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    let mut raw = Raw::new().await;
    // A reservation without a request id (unchallengeable): ignored.
    raw.send(&frame(&Message::new(RESERVE, "node-x", "")), r.addr)
        .await;
    // With one: challenged, not reserved.
    let mut reserve = Message::new(RESERVE, "node-y", "");
    reserve.set_request_id(7);
    raw.send(&frame(&reserve), r.addr).await;
    // Envelopes for C, with and without a request id: neither is relayed.
    let inner = frame(&echo("forged"));
    let to = RelayAddress::Peer(Bytes::from_static(b"node-c")).encode();
    let mut env = Message::new(FORWARD, to.clone(), inner.clone());
    raw.send(&frame(&env), r.addr).await;
    env.set_request_id(8);
    raw.send(&frame(&env), r.addr).await;
    // A forged DELIVER straight to C (not from its relay): dropped, not answered.
    let from = RelayAddress::Peer(Bytes::from_static(b"victim")).encode();
    let deliver = Message::new(
        DELIVER,
        from,
        frame(&{
            let mut m = echo("forged");
            m.set_request_id(9);
            m
        }),
    );
    raw.send(&frame(&deliver), c.addr).await;
    // Whatever was due has arrived (loopback), and more time changes nothing.
    tokio::time::advance(Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    let got = raw.drain();
    let received: usize = got.iter().map(Vec::len).sum();
    assert!(
        received <= raw.sent,
        "sent {} bytes, was sent {received}",
        raw.sent
    );
    assert_eq!(got.len(), 2, "the two challenges only");
    for d in &got {
        let m = Message::decode(Bytes::from(d.clone()), &PostcardCodec).unwrap();
        assert_eq!(m.message_type, MessageType::NOT_PERMITTED, "{m:?}");
        assert_ne!(m.message_type, DELIVER);
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "C's handler never ran");
    let stats = relay.stats();
    assert_eq!((stats.reservations, stats.relayed), (1, 0), "{stats:?}");
    c.stop().await;
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_sender_over_its_rate_is_refused_while_another_is_served() {
    // Both senders share 127.0.0.1: the per-IP rates are out of the way.
    let config = RelayConfig::default()
        .envelope_rate_per_sender(Rate::per_second(3))
        .envelope_rate_per_ip(Rate::per_second(1 << 20));
    let (r, relay) = relay(config).await;
    // Two recipients: a recipient's replies count against its own rate as a sender.
    let ran = Arc::new(AtomicUsize::new(0));
    let (c, d) = (echo_node(&ran).await, echo_node(&ran).await);
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    d.handle.reserve(r.addr, "node-d").await.unwrap();
    let (a, b) = (plain_node().await, plain_node().await);
    a.handle.reserve(r.addr, "node-a").await.unwrap();
    b.handle.reserve(r.addr, "node-b").await.unwrap();
    for i in 0..3 {
        call(&a.handle, r.addr, "node-d", &i.to_string())
            .await
            .unwrap();
    }
    assert_eq!(
        refusal(call(&a.handle, r.addr, "node-d", "over").await),
        Some(RelayRefusal::RateLimited)
    );
    let reply = call(&b.handle, r.addr, "node-c", "b").await.unwrap();
    assert_eq!(reply.content().as_ref(), b"b");
    assert_eq!(relay.stats().rate_limited, 1);
    for n in [a, b, c, d, r] {
        n.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn reach_calls_a_peer_behind_a_udp_relay_by_id() {
    use netaio::reach::{PeerCallError, Reach, StaticLookup, Strategy};
    let (r, _relay) = relay(RelayConfig::default()).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    let a = plain_node().await;
    let lookup = StaticLookup::new();
    lookup.insert("relay-r", vec![Strategy::Udp(r.addr)]);
    lookup.insert("node-c", vec![Strategy::Relay("relay-r".into())]);
    lookup.insert("node-x", vec![Strategy::Relay("relay-r".into())]);
    let reach = Reach::builder()
        .udp(a.handle.clone())
        .lookup(lookup)
        .build();
    let opts = CallOptions::new().timeout(Duration::from_secs(30));
    let reply = reach
        .call_peer("node-c", echo("by id"), &opts)
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"by id");
    match reach.call_peer("node-x", echo("?"), &opts).await {
        Err(PeerCallError::Call { via, error, .. }) => {
            assert_eq!(via, Strategy::Relay("relay-r".into()));
            assert_eq!(
                RelayRefusal::from_error(&error),
                Some(RelayRefusal::NoRoute)
            );
        }
        other => panic!("{other:?}"),
    }
    // One-way, by the same strategy.
    let via = reach
        .send_to_peer("node-c", &echo("sent"), &Default::default())
        .await
        .unwrap();
    assert_eq!(via, Strategy::Relay("relay-r".into()));
    within(WAIT, "the send", async {
        while ran.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    for n in [a, c, r] {
        n.stop().await;
    }
}

/// With peer management on the relay's node, a peer's goodbye frees its reservation at once
/// (there is no connection whose end would).
#[tokio::test(start_paused = true)]
async fn a_peers_goodbye_frees_its_reservation() {
    use netaio::peer::PeerConfig;
    let relay = UdpRelay::new(RelayConfig::default());
    let r = start_udp(
        UdpNode::builder()
            .relay(relay.clone())
            .peer_management(PeerConfig::default().app_id("relay-test")),
    )
    .await;
    let ran = Arc::new(AtomicUsize::new(0));
    let calls = ran.clone();
    let router = Router::new().on((MessageType::REQUEST_URI, "echo"), move |m: Message| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Message::respond("echo", m.content().clone()) }
    });
    let c = start_udp(
        UdpNode::builder()
            .router(router)
            .peer_management(PeerConfig::default().app_id("relay-test")),
    )
    .await;
    c.handle.advertise_to(r.addr).await.unwrap();
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    let a = plain_node().await;
    call(&a.handle, r.addr, "node-c", "x").await.unwrap();
    // C leaves: its goodbye (a DISCONNECT to every known peer) ends the reservation.
    c.stop().await;
    within(WAIT, "the goodbye", async {
        while relay.stats().reservations > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert_eq!(
        refusal(call(&a.handle, r.addr, "node-c", "x").await),
        Some(RelayRefusal::NoRoute)
    );
    a.stop().await;
    r.stop().await;
}

/// The same over IPv6 loopback: reservation, call by id, reply.
#[tokio::test(start_paused = true)]
async fn a_call_through_a_udp_relay_over_ipv6() {
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0));
    let bind = |b: netaio::udp::UdpNodeBuilder| async move {
        let node = b.address(v6).bind().await.unwrap();
        let (h, addr) = (node.handle(), node.local_addr());
        tokio::spawn(node.serve());
        (h, addr)
    };
    let relay = UdpRelay::new(RelayConfig::default());
    let (r, r_addr) = bind(UdpNode::builder().relay(relay.clone())).await;
    let router = Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |m: Message| async move { Message::respond("echo", m.content().clone()) },
    );
    let (c, _) = bind(UdpNode::builder().router(router)).await;
    let (a, _) = bind(UdpNode::builder()).await;
    c.reserve(r_addr, "node-c").await.unwrap();
    let reply = call(&a, r_addr, "node-c", "six").await.unwrap();
    assert_eq!(reply.content().as_ref(), b"six");
    assert_eq!(
        refusal(call(&a, r_addr, "nobody", "x").await),
        Some(RelayRefusal::NoRoute)
    );
    assert_eq!(relay.stats().reservations, 1);
    for h in [a, c, r] {
        h.shutdown();
    }
}

/// With an instance auth plugin on every node, each hop is sealed (the envelope for the relay,
/// the `DELIVER` by the relay) besides the inner frame: the call still goes through, and a
/// sender without the key is refused by the relay before its envelope is looked at.
#[tokio::test(start_paused = true)]
async fn every_hop_is_sealed_with_the_instance_auth() {
    use netaio::plugin::HmacAuth;
    let key: &[u8] = b"relay test secret";
    let relay = UdpRelay::new(RelayConfig::default());
    let r = start_udp(
        UdpNode::builder()
            .relay(relay.clone())
            .auth(HmacAuth::new(key)),
    )
    .await;
    let router = Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |m: Message| async move { Message::respond("echo", m.content().clone()) },
    );
    let c = start_udp(UdpNode::builder().router(router).auth(HmacAuth::new(key))).await;
    let a = start_udp(UdpNode::builder().auth(HmacAuth::new(key))).await;
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    let reply = call(&a.handle, r.addr, "node-c", "sealed").await.unwrap();
    assert_eq!(reply.content().as_ref(), b"sealed");
    // Another key: refused by the relay's auth, never relayed (the call times out).
    let m = start_udp(UdpNode::builder().auth(HmacAuth::new(b"other"))).await;
    let e = call(&m.handle, r.addr, "node-c", "x").await.unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    assert!(r.handle.stats().auth_failed >= 1);
    assert_eq!(relay.stats().relayed, 2);
    for n in [a, c, m, r] {
        n.stop().await;
    }
}
