//! A peer whose reservation is held by its old connection (half-open) or its old address (NAT
//! rebinding, a restart on another port) takes its id back at once when the relay's reservation
//! check proves the id is its own (netaio-asymmetric's `SelfCertifiedReservations` with the
//! relay's `Ed25519Auth::expose_signer`): the reservation moves. Another key is still refused
//! (`NotYours`), and a captured `RESERVE` replayed from another address is refused by the
//! relay's replay cache, so it cannot move the id. Without a check, first come first served
//! stays (`Taken`: `relay_udp::a_second_peer_cannot_take_a_live_id`,
//! `tcp_relay::a_reserved_id_is_bound_to_its_connection`). Loopback sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use bytes::Bytes;
use netaio::message::PostcardCodec;
use netaio::peer::Peer;
use netaio::relay::{DELIVER, RESERVE, Relay, RelayConfig, RelayRefusal, ReserveError};
use netaio::udp::{UdpNode, UdpRelay};
use netaio::{Message, MessageType, Router, TcpClient, TcpServer};
use netaio_asymmetric::auth::{key_id, signed_bytes};
use netaio_asymmetric::ed25519_dalek::Signer;
use netaio_asymmetric::{Ed25519Auth, Identity, SelfCertifiedReservations, peer_id};
use netaio_tests::{RawUdp, WAIT, start_udp, start_with, within};

/// The auth of every node here: signs with `me`, accepts the signatures of `all` only.
fn auth(me: &Identity, all: &[&Identity]) -> Ed25519Auth {
    all.iter()
        .fold(Ed25519Auth::new(me).trust_peer_keys(false), |a, id| {
            a.allow(id.verifying_key())
        })
}

/// A router answering `who` with `name`.
fn answers(name: &'static str) -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, "who"),
        move |_m: Message| async move { Message::respond("who", name) },
    )
}

fn who() -> Message {
    Message::new(MessageType::REQUEST_URI, "who", "")
}

fn not_yours(r: Result<netaio::relay::RelayLimits, ReserveError>) -> bool {
    matches!(r, Err(ReserveError::Refused(RelayRefusal::NotYours)))
}

#[tokio::test]
async fn a_reconnected_peer_takes_its_id_back_from_its_old_connection() {
    let (r, c, m) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let all = [&r, &c, &m];
    let relay = Relay::new(RelayConfig::default()).reservation_check(SelfCertifiedReservations);
    let server = start_with(
        TcpServer::builder()
            .relay(relay.clone())
            .auth(auth(&r, &all).expose_signer(true)),
    )
    .await;
    let client = |id: &Identity, router: Router| {
        TcpClient::builder()
            .auth(auth(id, &all))
            .router(router)
            .build()
    };
    let c_id = peer_id(&c.public_keys()).to_vec();
    let proof = SelfCertifiedReservations::proof(&c);
    // C's first connection reserves; it stays open (the relay cannot tell a half-open one).
    let c1 = client(&c, answers("first"));
    let old = c1.connect(server.addr).await.unwrap();
    old.reserve_with(c_id.clone(), proof.clone()).await.unwrap();
    // C again, on a new connection: the id moves there at once.
    let c2 = client(&c, answers("second"));
    let new = c2.connect(server.addr).await.unwrap();
    within(
        WAIT,
        "the move",
        new.reserve_with(c_id.clone(), proof.clone()),
    )
    .await
    .unwrap();
    assert_eq!(relay.stats().reservations, 1);
    // M, with C's public keys, is still refused.
    let mc = client(&m, Router::new());
    let m_conn = mc.connect(server.addr).await.unwrap();
    assert!(not_yours(
        m_conn.reserve_with(c_id.clone(), proof.clone()).await
    ));
    // A call by C's id reaches the new connection.
    let reply = within(
        WAIT,
        "the call",
        m_conn.call_via_relay(&Peer::new(c_id.clone()), who()),
    )
    .await
    .unwrap();
    assert_eq!(reply.content().as_ref(), b"second");
    // The old connection takes it back the same way.
    old.reserve_with(c_id.clone(), proof).await.unwrap();
    let reply = m_conn
        .call_via_relay(&Peer::new(c_id), who())
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"first");
    server.stop().await;
}

/// A RESERVE of `id` signed by `signer` as its Ed25519Auth would (request id 7), as a frame.
fn signed_reserve(signer: &Identity) -> Bytes {
    let id = peer_id(&signer.public_keys()).to_vec();
    let mut msg = Message::new(RESERVE, id, SelfCertifiedReservations::proof(signer));
    msg.set_request_id(7);
    msg.auth
        .insert("kid", key_id(&signer.verifying_key()).to_vec());
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let nonce: [u8; 16] = rand::random();
    let bytes = signed_bytes(
        RESERVE,
        msg.uri(),
        &msg.auth,
        ["ts", "nonce", "sig"],
        msg.content(),
        ts,
        &nonce,
    );
    let sig = signer.signing_key().sign(&bytes);
    msg.auth.insert("ts", ts.to_be_bytes().to_vec());
    msg.auth.insert("nonce", nonce.to_vec());
    msg.auth.insert("sig", sig.to_bytes().to_vec());
    msg.to_bytes(&PostcardCodec).unwrap()
}

/// Let the nodes take what loopback delivered (paused time: no wall-clock wait).
async fn settle() {
    tokio::time::advance(Duration::from_millis(10)).await;
    tokio::task::yield_now().await;
}

#[tokio::test(start_paused = true)]
async fn a_peer_whose_address_changed_moves_its_id_and_a_replay_cannot() {
    let (r, c, m) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let all = [&r, &c, &m];
    let relay = UdpRelay::new(RelayConfig::default()).reservation_check(SelfCertifiedReservations);
    let rn = start_udp(
        UdpNode::builder()
            .relay(relay.clone())
            .auth(auth(&r, &all).expose_signer(true)),
    )
    .await;
    let node = |id: &Identity, router: Router| {
        start_udp(UdpNode::builder().auth(auth(id, &all)).router(router))
    };
    let c_id = peer_id(&c.public_keys()).to_vec();
    let proof = SelfCertifiedReservations::proof(&c);
    // C reserves from one port, then (restarted, rebound) from another: the id moves.
    let c1 = node(&c, answers("first")).await;
    c1.handle
        .reserve_with(rn.addr, c_id.clone(), proof.clone())
        .await
        .unwrap();
    let c2 = node(&c, answers("second")).await;
    c2.handle
        .reserve_with(rn.addr, c_id.clone(), proof.clone())
        .await
        .unwrap();
    assert_eq!(relay.stats().reservations, 1);
    let mn = node(&m, Router::new()).await;
    assert!(not_yours(
        mn.handle
            .reserve_with(rn.addr, c_id.clone(), proof.clone())
            .await
    ));
    let reply = within(
        WAIT,
        "the call",
        mn.handle
            .call_via_relay(rn.addr, &Peer::new(c_id.clone()), who()),
    )
    .await
    .unwrap();
    assert_eq!(reply.content().as_ref(), b"second");

    // A RESERVE C signed, sent from one address (the id moves there), then captured and
    // replayed from another: the relay's Ed25519Auth has seen its nonce, and drops it.
    let reserve = signed_reserve(&c);
    let (mut at, mut replayer) = (RawUdp::new().await, RawUdp::new().await);
    at.send(&reserve, rn.addr).await;
    let ok = Message::decode(Bytes::from(at.recv().await), &PostcardCodec).unwrap();
    assert_eq!(ok.message_type, MessageType::OK, "{ok:?}");
    let failed = rn.handle.stats().auth_failed;
    replayer.send(&reserve, rn.addr).await;
    within(WAIT, "the replay refused", async {
        while rn.handle.stats().auth_failed == failed {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    settle().await;
    assert_eq!(rn.handle.stats().auth_failed, failed + 1);
    assert!(replayer.drain().is_empty(), "a replay is not answered");
    // The id is still at the first address: a send by C's id is delivered there only.
    mn.handle
        .send_via_relay(rn.addr, &Peer::new(c_id), &who(), &Default::default())
        .await
        .unwrap();
    let d = at.recv().await;
    assert_eq!(d[0], DELIVER.value());
    settle().await;
    assert!(replayer.drain().is_empty());
    for n in [c1, c2, mn, rn] {
        n.stop().await;
    }
}
