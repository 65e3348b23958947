//! A `UdpRelay` on a node without sender authentication binds a reservation to an address only
//! as long as the proof that the peer receives there (its cookie round trip, `verification_ttl`,
//! 5 minutes by default): the reservation's answer announces that lifetime, a renewal from an
//! old proof is challenged first (and the client's call answers it), and no `DELIVER` goes to an
//! address whose proof is gone, whoever holds it now (a reused NAT mapping). Real UDP sockets on
//! 127.0.0.1, paused time.
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

use netaio::peer::Peer;
use netaio::relay::{DELIVER, RelayConfig, RelayRefusal};
use netaio::udp::{UdpNode, UdpNodeBuilder, UdpRelay};
use netaio::{CallOptions, Message, MessageType, RequestError, Router, UdpHandle};
use netaio_tests::{RawUdp, TestUdpNode, start_udp};

async fn relay_on(builder: UdpNodeBuilder) -> (TestUdpNode, UdpRelay) {
    let relay = UdpRelay::new(RelayConfig::default());
    (start_udp(builder.relay(relay.clone())).await, relay)
}

async fn echo_node(calls: &Arc<AtomicUsize>) -> TestUdpNode {
    let calls = calls.clone();
    let router = Router::new().on((MessageType::REQUEST_URI, "echo"), move |m: Message| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Message::respond("echo", m.content().clone()) }
    });
    start_udp(UdpNode::builder().router(router)).await
}

fn echo(content: &str) -> Message {
    Message::new(MessageType::REQUEST_URI, "echo", content.to_owned())
}

async fn call(a: &UdpHandle, relay: SocketAddr, id: &str) -> Result<Message, RequestError> {
    let opts = CallOptions::new().timeout(Duration::from_secs(30));
    a.start_call_via_relay(relay, &Peer::new(id.to_owned()), echo("x"), &opts)
        .await
}

fn refusal(r: Result<Message, RequestError>) -> Option<RelayRefusal> {
    RelayRefusal::from_error(&r.unwrap_err())
}

async fn secs(n: u64) {
    tokio::time::advance(Duration::from_secs(n)).await;
}

#[tokio::test(start_paused = true)]
async fn a_reservation_lasts_as_long_as_the_proof_of_its_address() {
    let (r, _relay) = relay_on(UdpNode::builder()).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    let a = start_udp(UdpNode::builder()).await;
    // The relay's reservation_duration is an hour; the proof of C's address, 5 minutes.
    let limits = c.handle.reserve(r.addr, "node-c").await.unwrap();
    assert_eq!(limits.reservation_secs, 300);
    call(&a.handle, r.addr, "node-c").await.unwrap();
    // Not renewed: gone with the proof (not an hour later).
    secs(301).await;
    assert_eq!(
        refusal(call(&a.handle, r.addr, "node-c").await),
        Some(RelayRefusal::NoRoute)
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // A shorter verification TTL shortens it alike.
    let (r2, _) = relay_on(UdpNode::builder().verification_ttl(Duration::from_secs(60))).await;
    let limits = c.handle.reserve(r2.addr, "node-c").await.unwrap();
    assert_eq!(limits.reservation_secs, 60);
    for n in [a, c, r, r2] {
        n.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_renewal_from_an_old_proof_is_challenged_and_granted_a_fresh_lifetime() {
    let (r, relay) = relay_on(UdpNode::builder()).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    let a = start_udp(UdpNode::builder()).await;
    let challenges = || r.handle.stats().challenges;
    // The first reservation: challenged by the node (an unverified address), granted 300 s.
    assert_eq!(
        c.handle
            .reserve(r.addr, "node-c")
            .await
            .unwrap()
            .reservation_secs,
        300
    );
    assert_eq!(challenges(), 1);
    // At 100 s, the proof has 200 s left (more than half): renewed to the proof's end, at once.
    secs(100).await;
    let limits = c.handle.reserve(r.addr, "node-c").await.unwrap();
    assert_eq!(limits.reservation_secs, 200);
    assert_eq!(challenges(), 1);
    // At 200 s, 100 s left: the relay asks for a fresh proof first, which the reservation's
    // call gives by itself; granted 300 s from now.
    secs(100).await;
    let limits = c.handle.reserve(r.addr, "node-c").await.unwrap();
    assert_eq!(limits.reservation_secs, 300);
    assert_eq!(challenges(), 2);
    // Still there past the first proof's end (300 s), gone past the second's (500 s).
    secs(250).await;
    call(&a.handle, r.addr, "node-c").await.unwrap();
    secs(51).await;
    assert_eq!(
        refusal(call(&a.handle, r.addr, "node-c").await),
        Some(RelayRefusal::NoRoute)
    );
    // Reserving again once the proof expired: the node challenges it, as any request.
    let limits = c.handle.reserve(r.addr, "node-c").await.unwrap();
    assert_eq!(limits.reservation_secs, 300);
    call(&a.handle, r.addr, "node-c").await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    assert_eq!(relay.stats().reservations, 1);
    for n in [a, c, r] {
        n.stop().await;
    }
}

/// C's address is taken over by another socket once C is gone (a NAT mapping given to someone
/// else): it gets C's envelopes only while C's proof lasts, never for the hour of
/// `reservation_duration`.
#[tokio::test(start_paused = true)]
async fn whoever_takes_over_the_address_gets_nothing_once_its_proof_expired() {
    let (r, relay) = relay_on(UdpNode::builder()).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    let a = start_udp(UdpNode::builder()).await;
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    let c_addr = c.addr;
    c.stop().await;
    let taker = RawUdp {
        sock: tokio::net::UdpSocket::bind(c_addr).await.unwrap(),
        sent: 0,
    };
    let to_c = |a: &UdpHandle| {
        let a = a.clone();
        async move {
            a.send_via_relay(
                r.addr,
                &Peer::new("node-c"),
                &echo("x"),
                &Default::default(),
            )
            .await
        }
    };
    // Within the proof (the limit SECURITY.md states): the taker gets the DELIVER.
    call(&a.handle, r.addr, "node-c").await.unwrap_err();
    let got = taker.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0], DELIVER.value());
    // Past it: no route, nothing delivered.
    secs(301).await;
    assert_eq!(
        refusal(call(&a.handle, r.addr, "node-c").await),
        Some(RelayRefusal::NoRoute)
    );
    to_c(&a.handle).await.unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    assert!(taker.drain().is_empty());
    assert_eq!(relay.stats().relayed, 1);
    a.stop().await;
    r.stop().await;
}

/// Belt and braces: a reservation whose proof the node forgot (its table of verified addresses
/// full, the entry expiring first goes) gets no `DELIVER` either; it ends at the first envelope.
#[tokio::test(start_paused = true)]
async fn no_deliver_goes_to_an_address_whose_proof_was_forgotten() {
    let (r, relay) = relay_on(UdpNode::builder().max_verified_addresses(1)).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    let a = start_udp(UdpNode::builder()).await;
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    // A's call proves A's address, which takes the only place: C's proof is forgotten, its
    // reservation not yet.
    let e = call(&a.handle, r.addr, "node-c").await.unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "nothing was delivered to C");
    let stats = relay.stats();
    assert_eq!((stats.reservations, stats.relayed), (0, 1), "{stats:?}");
    // C proves its address again when it renews.
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    assert_eq!(relay.stats().reservations, 1);
    for n in [a, c, r] {
        n.stop().await;
    }
}

/// A `RESERVE` without a request id from an address whose proof is old cannot be challenged:
/// it is ignored, and the reservation is not renewed.
#[tokio::test(start_paused = true)]
async fn a_renewal_without_request_id_from_an_old_proof_is_ignored() {
    let (r, _relay) = relay_on(UdpNode::builder()).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let c = echo_node(&ran).await;
    let a = start_udp(UdpNode::builder()).await;
    c.handle.reserve(r.addr, "node-c").await.unwrap();
    secs(200).await;
    c.handle
        .send(r.addr, &Message::new(netaio::relay::RESERVE, "node-c", ""))
        .await
        .unwrap();
    secs(101).await;
    assert_eq!(
        refusal(call(&a.handle, r.addr, "node-c").await),
        Some(RelayRefusal::NoRoute)
    );
    for n in [a, c, r] {
        n.stop().await;
    }
}
