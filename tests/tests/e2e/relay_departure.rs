//! A relay's recipient whose connection has just died (issue 14): the next call to its id gets
//! "no route" from the relay at once, never a silent loss ended by the caller's timeout, and the
//! id is free for the peer's next connection. Real sockets on loopback, paused time (a swallowed
//! envelope shows as the call's timeout, reached at once).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use netaio::peer::Peer;
use netaio::plugin::SendOptions;
use netaio::relay::{RESERVE, Rate, Relay, RelayConfig, RelayRefusal};
use netaio::tcp::ConnectionEvent;
use netaio::{CallOptions, Connection, Message, MessageType, Router, TcpClient, TcpServer};
use netaio_tests::{RawConn, TestServer, WAIT, start_with, within};
use tokio::sync::broadcast;

fn relay_server(relay: &Relay) -> netaio::tcp::TcpServerBuilder {
    TcpServer::builder()
        .router(Router::new().merge(relay.router()))
        .max_connections_per_ip(1000)
}

/// A raw recipient that reserved `id` (and reads only the answer).
async fn raw_recipient(addr: std::net::SocketAddr, id: &str) -> RawConn {
    let mut c = RawConn::connect(addr).await;
    let mut reserve = Message::new(RESERVE, id.to_owned(), "");
    reserve.set_request_id(1);
    let ok = c.round_trip(&reserve).await;
    assert_eq!(ok.message_type, MessageType::OK, "{ok:?}");
    c
}

/// Drop `c` with a reset (SO_LINGER 0): the server's read fails at once.
fn reset(c: RawConn) {
    socket2::SockRef::from(&c.stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c);
}

/// Wait until the server has seen `n` more disconnections (its registry no longer holds them).
async fn disconnections(events: &mut broadcast::Receiver<ConnectionEvent>, n: usize) {
    let mut seen = 0;
    within(WAIT, "the disconnections", async {
        while seen < n {
            match events.recv().await {
                Ok(ConnectionEvent::Disconnected { .. }) => seen += 1,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
}

/// A call to `id` through `a`, with a timeout long enough to tell a refusal from a loss.
async fn no_route(a: &Connection, id: &str) {
    let opts = CallOptions::new().timeout(Duration::from_secs(30));
    let msg = Message::new(MessageType::REQUEST_URI, "hello", "x");
    let e = a
        .start_call_via_relay(&Peer::new(id.to_owned()), msg, &opts)
        .await
        .unwrap_err();
    assert_eq!(
        RelayRefusal::from_error(&e),
        Some(RelayRefusal::NoRoute),
        "{e:?}"
    );
}

async fn sender(server: &TestServer) -> (TcpClient, Connection) {
    let client = TcpClient::new();
    let conn = client.connect(server.addr).await.unwrap();
    (client, conn)
}

#[tokio::test(start_paused = true)]
async fn a_call_right_after_the_recipient_died_is_no_route() {
    let relay = Relay::new(RelayConfig::default());
    let server = start_with(relay_server(&relay)).await;
    let (_a, a) = sender(&server).await;
    // Three departures: a close, a reset, a half-close (the server reads EOF).
    for (i, how) in ["close", "reset", "shutdown"].into_iter().enumerate() {
        let id = format!("node-{i}");
        let mut events = server.events();
        let mut c = raw_recipient(server.addr, &id).await;
        match how {
            "close" => drop(c),
            "reset" => reset(c),
            _ => c.shutdown_write().await,
        }
        // Nothing waits for the relay: only for the server to have seen the end.
        disconnections(&mut events, 1).await;
        no_route(&a, &id).await;
        // The id is free for the peer's next connection.
        let _again = raw_recipient(server.addr, &id).await;
    }
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_recipient_dying_with_envelopes_queued_is_no_route_next() {
    // C never reads: its send queue fills, the relay queues behind it (a drainer waits).
    let relay = Relay::new(
        RelayConfig::default()
            .envelope_rate_per_sender(Rate::per_second(1 << 20))
            .envelope_rate_per_ip(Rate::per_second(1 << 20))
            .byte_rate_per_sender(Rate::per_second(1 << 40))
            .byte_rate_per_ip(Rate::per_second(1 << 40)),
    );
    let server = start_with(
        relay_server(&relay)
            .send_queue_bytes(64 * 1024)
            .write_timeout(Duration::from_secs(3600)),
    )
    .await;
    let (_a, a) = sender(&server).await;
    // A small receive buffer: the kernel holds little of what C does not read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut c = RawConn::from_stream(stream);
    let mut reserve = Message::new(RESERVE, "node-c", "");
    reserve.set_request_id(1);
    assert_eq!(c.round_trip(&reserve).await.message_type, MessageType::OK);
    let blob = Message::new(MessageType::NOTIFY_URI, "blob", vec![1u8; 30_000]);
    let mut sent = 0;
    while relay.stats().queued_envelopes == 0 {
        assert!(sent < 2000, "the relay's queue never held an envelope");
        a.send_via_relay(&Peer::new("node-c"), &blob, &SendOptions::default())
            .await
            .unwrap();
        sent += 1;
        // Lets the server write what it can (time auto-advances while all wait).
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut events = server.events();
    reset(c);
    disconnections(&mut events, 1).await;
    no_route(&a, "node-c").await;
    let stats = relay.stats();
    assert_eq!(
        (stats.reservations, stats.queued_envelopes),
        (0, 0),
        "{stats:?}"
    );
    let _again = raw_recipient(server.addr, "node-c").await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_departure_the_relay_missed_among_many_still_frees_the_id() {
    // More disconnections at once than the server's event channel holds (256): the relay's
    // watcher lags and misses some, the recipient's among them. Nothing is sent to the
    // recipient's id meanwhile (a failed delivery would also find it gone).
    let relay = Relay::new(RelayConfig::default().max_reservations_per_ip(1000));
    let server = relay_server(&relay)
        .address(([127, 0, 0, 1], 0))
        .max_connections_per_ip(1000)
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());
    let c = raw_recipient(addr, "node-c").await;
    let mut others = Vec::new();
    for _ in 0..300 {
        others.push(RawConn::connect(addr).await);
    }
    within(WAIT, "the connections", async {
        while handle.connection_count() < 301 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let mut events = handle.events();
    drop(c);
    drop(others);
    within(WAIT, "the connections to end", async {
        while handle.connection_count() > 0 {
            match events.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    // The peer comes back on a new connection: its id is its own again.
    let mut back = RawConn::connect(addr).await;
    let mut reserve = Message::new(RESERVE, "node-c", "");
    reserve.set_request_id(1);
    let answer = back.round_trip(&reserve).await;
    assert_eq!(answer.message_type, MessageType::OK, "{answer:?}");
    handle.shutdown();
    within(WAIT, "serve() to return", serving).await.unwrap();
}
