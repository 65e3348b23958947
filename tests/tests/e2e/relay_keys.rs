//! Reservations bound to the peer's keys (issue 14): on a relay whose auth is netaio-asymmetric's
//! Ed25519Auth (exposing the verified signer) and whose ids are self-certifying, a peer reserves
//! the id of its own keys, and a reservation of another peer's id is refused with a typed
//! refusal, whether the forger signs it itself or claims the other's key as its signer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use netaio::plugin::SIGNER_FIELD;
use netaio::relay::{RESERVE, Relay, RelayConfig, RelayRefusal, ReserveError};
use netaio::{Message, MessageType, TcpClient, TcpServer};
use netaio_asymmetric::auth::{key_id, signed_bytes};
use netaio_asymmetric::ed25519_dalek::Signer;
use netaio_asymmetric::{Ed25519Auth, Identity, SelfCertifiedReservations, peer_id};
use netaio_tests::{RawConn, WAIT, start_with, within};

/// A RESERVE of `id` (with `keys`' X25519 proof) signed by `signer` as its Ed25519Auth would,
/// claiming `keys`' Ed25519 key in the signer field when `claim`.
fn signed_by(signer: &Identity, id: &[u8], keys: &Identity, claim: bool) -> Message {
    let mut msg = Message::new(RESERVE, id.to_vec(), SelfCertifiedReservations::proof(keys));
    msg.set_request_id(7);
    if claim {
        msg.auth
            .insert(SIGNER_FIELD, keys.verifying_key().to_bytes().to_vec());
    }
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
    msg
}

#[tokio::test]
async fn a_reservation_is_refused_unless_the_id_is_the_signers() {
    let (r, c, m) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let relay = Relay::new(RelayConfig::default()).reservation_check(SelfCertifiedReservations);
    let auth = Ed25519Auth::new(&r)
        .trust_peer_keys(false)
        .allow(c.verifying_key())
        .allow(m.verifying_key())
        .expose_signer(true);
    let server = start_with(TcpServer::builder().relay(relay.clone()).auth(auth)).await;
    let client = |id: &Identity| {
        TcpClient::builder()
            .auth(
                Ed25519Auth::new(id)
                    .trust_peer_keys(false)
                    .allow(r.verifying_key()),
            )
            .build()
    };
    let c_id = peer_id(&c.public_keys()).to_vec();
    let (cc, mc) = (client(&c), client(&m));
    let c_conn = cc.connect(server.addr).await.unwrap();
    let m_conn = mc.connect(server.addr).await.unwrap();

    // Mallory, first, reserves C's id with C's X25519 key: it signs with its own key.
    let r1 = within(
        WAIT,
        "the refusal",
        m_conn.reserve_with(c_id.clone(), SelfCertifiedReservations::proof(&c)),
    )
    .await;
    assert!(
        matches!(r1, Err(ReserveError::Refused(RelayRefusal::NotYours))),
        "{r1:?}"
    );
    // Without the proof, or with its own: refused too.
    let r2 = m_conn.reserve(c_id.clone()).await;
    assert!(
        matches!(r2, Err(ReserveError::Refused(RelayRefusal::NotYours))),
        "{r2:?}"
    );
    // Claiming C's key as the signer in a message Mallory signs (by hand: its Ed25519Auth
    // would not send the field): the server removes the field before the check, the signature
    // (which covered it) fails, and the relay never sees the message. The same message without
    // the claim verifies, and is refused by the relay.
    let mut raw = RawConn::connect(server.addr).await;
    let forged = signed_by(&m, &c_id, &c, true);
    let answer = raw.round_trip(&forged).await;
    assert_eq!(answer.message_type, MessageType::AUTH_ERROR, "{answer:?}");
    let plain = signed_by(&m, &c_id, &c, false);
    let answer = raw.round_trip(&plain).await;
    assert_eq!(
        RelayRefusal::from_message(&answer),
        Some(RelayRefusal::NotYours),
        "{answer:?}"
    );
    assert_eq!(relay.stats().reservations, 0);

    // C reserves its own id.
    within(
        WAIT,
        "C's reservation",
        c_conn.reserve_with(c_id.clone(), SelfCertifiedReservations::proof(&c)),
    )
    .await
    .unwrap();
    // Mallory reserves its own.
    let m_id = peer_id(&m.public_keys()).to_vec();
    m_conn
        .reserve_with(m_id, SelfCertifiedReservations::proof(&m))
        .await
        .unwrap();
    let stats = relay.stats();
    assert_eq!((stats.reservations, stats.refused), (2, 3), "{stats:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_relay_whose_auth_exposes_no_signer_refuses_every_checked_reservation() {
    // The check fails closed: no verified signer, no reservation.
    let c = Identity::generate();
    let relay = Relay::new(RelayConfig::default()).reservation_check(SelfCertifiedReservations);
    let server = start_with(TcpServer::builder().relay(relay.clone())).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let c_id = peer_id(&c.public_keys()).to_vec();
    let mut claimed = Message::new(RESERVE, c_id, SelfCertifiedReservations::proof(&c));
    claimed
        .auth
        .insert(SIGNER_FIELD, c.verifying_key().to_bytes().to_vec());
    let e = within(WAIT, "the refusal", conn.call(claimed))
        .await
        .unwrap_err();
    assert_eq!(RelayRefusal::from_error(&e), Some(RelayRefusal::NotYours));
    server.stop().await;
}
