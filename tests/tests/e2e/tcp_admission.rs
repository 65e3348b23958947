//! Connection slots against peers that never authenticate (issue 12, defect 1): a server whose
//! slots are all held by raw sockets sending unauthenticated frames still serves a client with
//! the right key; a connection that presents no valid frame within the handshake timeout, or
//! keeps failing auth, is closed; only valid traffic postpones the idle timeout; the per-source
//! limit; and which connection a full server evicts.
//!
//! Paused time: the server, the attackers and the clients run on one runtime over loopback, and
//! the clock jumps only when every task waits. The waits below are on replies, events and
//! end-of-stream, never on sleeps; the timers are the server's deadlines and the attackers'
//! periodic sends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::time::Duration;

use netaio::plugin::{HmacAuth, SendOptions};
use netaio::tcp::{CloseReason, ConnectionEvent, ConnectionId};
use netaio::{Connection, Message, MessageType, TcpClient, TcpServer};
use netaio_tests::{
    ECHO, RawConn, TestServer, WAIT, connected, disconnected, echo_router, raw_frame, start_with,
};
use tokio::sync::broadcast;
use tokio::time::Instant;

const SECRET: &[u8] = b"the server's secret, 32 bytes...";

/// A frame without the MAC the server's `HmacAuth` requires: refused with AUTH_ERROR.
fn unauthenticated() -> Message {
    Message::new(MessageType::REQUEST_URI, ECHO, "let me in")
}

/// A client holding the key.
fn keyed_client() -> TcpClient {
    TcpClient::builder()
        .auth(HmacAuth::new(SECRET))
        .request_timeout(Duration::from_secs(5))
        .build()
}

/// A raw socket that sends one unauthenticated frame and reads its refusal: it now holds a slot.
async fn attacker(
    server: &TestServer,
    events: &mut broadcast::Receiver<ConnectionEvent>,
) -> RawConn {
    let mut raw = RawConn::connect(server.addr).await;
    connected(events, Some(raw.local_addr())).await;
    let reply = raw.round_trip(&unauthenticated()).await;
    assert_eq!(reply.message_type, MessageType::AUTH_ERROR);
    raw
}

/// Keep `raw` sending an unauthenticated frame every `period` until the server closes it.
fn keep_knocking(mut raw: RawConn, period: Duration) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
    let frame = netaio_tests::frame_of(&unauthenticated());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            if raw.stream.write_all(&frame).await.is_err() {
                return;
            }
        }
    })
}

/// Issue 12's measurement, scaled down: every slot of a server is held by a raw socket that sends
/// an unauthenticated frame every few seconds (which, before the fix, reset the idle timer and was
/// answered, so the slots were held for good and new connections were closed at once). A client
/// with the key must still get its replies, at once and for as long as the attack goes on.
#[tokio::test(start_paused = true)]
async fn slots_held_by_unauthenticated_peers_do_not_lock_out_a_keyed_client() {
    const SLOTS: usize = 8;
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .auth(HmacAuth::new(SECRET))
            .max_connections(SLOTS),
    )
    .await;
    let mut events = server.events();
    let mut knocking = Vec::new();
    for _ in 0..SLOTS {
        let raw = attacker(&server, &mut events).await;
        knocking.push(keep_knocking(raw, Duration::from_secs(3)));
    }
    assert_eq!(server.handle.connection_count(), SLOTS);

    let client = keyed_client();
    let conn = client.connect(server.addr).await.unwrap();
    // Over several handshake and idle periods of the attackers.
    for i in 0..30 {
        let content = format!("request {i}");
        let reply = conn.request(ECHO, content.clone()).await.unwrap();
        assert_eq!(reply.content().as_ref(), content.as_bytes());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(server.handle.connection_count() <= SLOTS);
    conn.close().await;
    for k in knocking {
        k.abort();
    }
    server.stop().await;
}

/// A raw connection to `server` from the loopback address `ip` (127.0.0.0/8 is all loopback on
/// Linux): another source for the per-source limit.
async fn raw_from(ip: [u8; 4], server: SocketAddr) -> RawConn {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((ip, 0))).unwrap();
    RawConn::from_stream(sock.connect(server).await.unwrap())
}

/// A keyed client's connection that has authenticated (one request answered), and its id.
async fn authenticated(
    server: &TestServer,
    events: &mut broadcast::Receiver<ConnectionEvent>,
) -> (Connection, ConnectionId) {
    let conn = keyed_client().connect(server.addr).await.unwrap();
    let id = connected(events, None).await;
    let reply = conn.request(ECHO, "hello").await.unwrap();
    assert_eq!(reply.content().as_ref(), b"hello");
    (conn, id)
}

/// The next Disconnected event (of any connection): its id and reason.
async fn next_disconnect(
    events: &mut broadcast::Receiver<ConnectionEvent>,
) -> (ConnectionId, CloseReason) {
    netaio_tests::within(WAIT, "a Disconnected event", async {
        loop {
            if let ConnectionEvent::Disconnected { id, reason, .. } = events.recv().await.unwrap() {
                return (id, reason);
            }
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_connection_without_a_valid_frame_is_closed_at_the_handshake_timeout() {
    const HANDSHAKE: Duration = Duration::from_secs(3);
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .auth(HmacAuth::new(SECRET))
            .handshake_timeout(Some(HANDSHAKE))
            .idle_timeout(Some(Duration::from_secs(600)))
            // Refused frames alone must not be what closes it here.
            .max_auth_failures(None),
    )
    .await;
    let mut events = server.events();
    // An attacker sending an unauthenticated frame every half second: refused each time, and
    // before the fix each one reset the idle timer.
    let raw = RawConn::connect(server.addr).await;
    let attacker = connected(&mut events, Some(raw.local_addr())).await;
    let opened = Instant::now();
    let knocking = keep_knocking(raw, Duration::from_millis(500));
    // A keyed client connected at the same time authenticates with its first request and stays.
    let (conn, keyed) = authenticated(&server, &mut events).await;

    assert_eq!(
        disconnected(&mut events, attacker).await,
        CloseReason::HandshakeTimeout
    );
    let took = opened.elapsed();
    assert!(
        took >= HANDSHAKE && took < HANDSHAKE + Duration::from_millis(500),
        "closed {took:?} after connecting"
    );
    tokio::time::sleep(HANDSHAKE * 2).await;
    assert!(server.handle.connections().iter().any(|c| c.id == keyed));
    assert_eq!(
        conn.request(ECHO, "still")
            .await
            .unwrap()
            .content()
            .as_ref(),
        b"still"
    );
    knocking.abort();
    conn.close().await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn without_an_auth_plugin_any_decodable_frame_completes_the_handshake() {
    const HANDSHAKE: Duration = Duration::from_secs(3);
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .handshake_timeout(Some(HANDSHAKE)),
    )
    .await;
    let mut events = server.events();
    // A frame no route matches (NOT_FOUND) is still a valid frame.
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    let reply = raw
        .round_trip(&Message::new(MessageType::REQUEST_URI, "nowhere", ""))
        .await;
    assert_eq!(reply.message_type, MessageType::NOT_FOUND);
    // One that never sends anything is closed.
    let silent = RawConn::connect(server.addr).await;
    let silent_id = connected(&mut events, Some(silent.local_addr())).await;
    assert_eq!(
        disconnected(&mut events, silent_id).await,
        CloseReason::HandshakeTimeout
    );
    tokio::time::sleep(HANDSHAKE).await;
    raw.assert_open().await;
    assert!(server.handle.connections().iter().any(|c| c.id == id));
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn refused_frames_in_a_row_close_the_connection_after_the_last_refusal_is_answered() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .auth(HmacAuth::new(SECRET))
            .max_auth_failures(Some(3)),
    )
    .await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    for _ in 0..3 {
        let reply = raw.round_trip(&unauthenticated()).await;
        assert_eq!(reply.message_type, MessageType::AUTH_ERROR);
    }
    raw.expect_eof(WAIT).await;
    assert_eq!(
        disconnected(&mut events, id).await,
        CloseReason::AuthFailures
    );
    server.stop().await;
}

/// Without an auth plugin, frames that do not decode are the refused ones; a valid frame starts
/// the count again.
#[tokio::test(start_paused = true)]
async fn a_valid_frame_resets_the_count_of_refused_frames() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .max_auth_failures(Some(3)),
    )
    .await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    // A body whose checksum does not match: ERROR `invalid message`, a refused frame.
    let mut bad = raw_frame(MessageType::REQUEST_URI, b"", b"\x00\x04echoping");
    if let Some(crc) = bad.get_mut(5) {
        *crc ^= 0xff;
    }
    let invalid = |m: Message| assert_eq!(m.message_type, MessageType::ERROR, "{m:?}");
    for _ in 0..2 {
        raw.write(&bad).await;
        invalid(raw.read_message().await);
    }
    raw.assert_open().await;
    for _ in 0..2 {
        raw.write(&bad).await;
        invalid(raw.read_message().await);
    }
    raw.assert_open().await;
    for _ in 0..3 {
        raw.write(&bad).await;
        invalid(raw.read_message().await);
    }
    raw.expect_eof(WAIT).await;
    assert_eq!(
        disconnected(&mut events, id).await,
        CloseReason::AuthFailures
    );
    server.stop().await;
}

/// An authenticated connection that then sends only frames failing auth (before the fix, any
/// byte reset the idle timer) closes an idle timeout after its last valid frame.
#[tokio::test(start_paused = true)]
async fn only_valid_traffic_postpones_the_idle_timeout() {
    const IDLE: Duration = Duration::from_secs(10);
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .auth(HmacAuth::new(SECRET))
            .idle_timeout(Some(IDLE))
            .max_auth_failures(None),
    )
    .await;
    let mut events = server.events();
    let (conn, id) = authenticated(&server, &mut events).await;
    // Valid requests every IDLE / 2 keep it open past several idle periods.
    for _ in 0..4 {
        tokio::time::sleep(IDLE / 2).await;
        conn.request(ECHO, "valid").await.unwrap();
    }
    let last_valid = Instant::now();
    // Then frames without the MAC, every IDLE / 4, on the same connection.
    let no_auth = SendOptions::new().use_auth(false);
    let knocking = tokio::spawn({
        let conn = conn.clone();
        async move {
            loop {
                tokio::time::sleep(IDLE / 4).await;
                if conn.send_with(&unauthenticated(), &no_auth).await.is_err() {
                    return;
                }
            }
        }
    });
    let reason = netaio_tests::within(
        IDLE * 3,
        "the idle close",
        netaio_tests::disconnected_eventually(&mut events, id),
    )
    .await;
    assert_eq!(reason, CloseReason::IdleTimeout);
    let took = last_valid.elapsed();
    assert!(
        took >= IDLE && took < IDLE + Duration::from_millis(500),
        "closed {took:?} after the last valid frame"
    );
    knocking.abort();
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_source_at_its_limit_evicts_its_own_unauthenticated_connection_or_is_refused() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .auth(HmacAuth::new(SECRET))
            .max_connections_per_ip(2),
    )
    .await;
    let mut events = server.events();
    // 127.0.0.1: one authenticated connection and one that is not.
    let (keyed, _) = authenticated(&server, &mut events).await;
    let mut unauth = attacker(&server, &mut events).await;
    let unauth_id = server
        .handle
        .connections()
        .iter()
        .find(|c| c.peer == unauth.local_addr())
        .map(|c| c.id)
        .unwrap();
    // A third from 127.0.0.1 takes the unauthenticated one's place.
    let (second, _) = authenticated(&server, &mut events).await;
    assert_eq!(
        next_disconnect(&mut events).await,
        (unauth_id, CloseReason::Evicted)
    );
    unauth.expect_eof(WAIT).await;
    // Now both of 127.0.0.1's connections are authenticated: a third is closed at once.
    let mut refused = RawConn::connect(server.addr).await;
    refused.expect_eof(WAIT).await;
    assert_eq!(server.handle.stats().refused, 1);
    // Another source is not affected by 127.0.0.1's limit.
    let mut other = raw_from([127, 0, 0, 2], server.addr).await;
    connected(&mut events, Some(other.local_addr())).await;
    assert_eq!(
        other.round_trip(&unauthenticated()).await.message_type,
        MessageType::AUTH_ERROR
    );
    for conn in [&keyed, &second] {
        assert_eq!(
            conn.request(ECHO, "ok").await.unwrap().content().as_ref(),
            b"ok"
        );
    }
    assert_eq!(server.handle.stats().evicted, 1);
    keyed.close().await;
    second.close().await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_server_evicts_the_unauthenticated_first_then_the_longest_idle() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .auth(HmacAuth::new(SECRET))
            .max_connections(3),
    )
    .await;
    let mut events = server.events();
    // A: authenticated, then idle. R: unauthenticated, newer. B: authenticated, active later.
    let (a, a_id) = authenticated(&server, &mut events).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut r = attacker(&server, &mut events).await;
    let (b, b_id) = authenticated(&server, &mut events).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    b.request(ECHO, "active").await.unwrap();
    assert_eq!(server.handle.connection_count(), 3);

    // C: the server is full; R goes, although A has been idle longer.
    let (c, _) = authenticated(&server, &mut events).await;
    let (gone, reason) = next_disconnect(&mut events).await;
    assert_eq!(reason, CloseReason::Evicted);
    assert_ne!(gone, a_id);
    r.expect_eof(WAIT).await;

    // D: all three authenticated; A, idle the longest, goes.
    let (d, _) = authenticated(&server, &mut events).await;
    assert_eq!(
        next_disconnect(&mut events).await,
        (a_id, CloseReason::Evicted)
    );
    assert!(a.request(ECHO, "evicted").await.is_err());
    for conn in [&b, &c, &d] {
        assert_eq!(
            conn.request(ECHO, "ok").await.unwrap().content().as_ref(),
            b"ok"
        );
    }
    assert!(server.handle.connections().iter().any(|x| x.id == b_id));
    assert_eq!(server.handle.stats().evicted, 2);
    for conn in [b, c, d] {
        conn.close().await;
    }
    server.stop().await;
}
