//! The connection driver polls its cancellation future and its outbound queue for real only when
//! they may have fired (a registered waker stands in for the poll otherwise). These tests put a
//! connection in that state — idle after traffic in both directions — and check that each event
//! still reaches it at once: a message queued by the server, a request from the client, a
//! server-side close of that one connection, and a server shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use netaio::tcp::CloseReason;
use netaio::{Message, MessageType, TcpClient};
use netaio_tests::{ECHO, WAIT, connected, disconnected, echo_router, start, within};

/// Round trips and server pushes in turn, with idle pauses between them, many times over.
#[tokio::test]
async fn queued_messages_and_requests_reach_an_idle_connection() {
    let server = start(echo_router()).await;
    let mut events = server.events();
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;

    for i in 0..20 {
        let r = within(WAIT, "a round trip", conn.request(ECHO, format!("r{i}")))
            .await
            .unwrap();
        assert_eq!(r.content().as_ref(), format!("r{i}").as_bytes());
        // Both drivers idle, wakers registered.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let push = Message::new(MessageType::NOTIFY_URI, "push", format!("p{i}"));
        server.handle.send(id, &push).await.unwrap();
        let got = within(WAIT, "the pushed message", conn.receive_once())
            .await
            .unwrap();
        assert_eq!(got, push);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    conn.close().await;
    server.stop().await;
}

/// Closing one idle connection from the server, and then shutting the server down with another
/// idle connection open, both end the connection gracefully (`CloseReason::Local`: not by the
/// idle timeout, nor by the abort after the shutdown timeout).
#[tokio::test]
async fn close_and_shutdown_reach_an_idle_connection() {
    let server = start(echo_router()).await;
    let mut events = server.events();
    let first = TcpClient::new().connect(server.addr).await.unwrap();
    let first_id = connected(&mut events, None).await;
    let second = TcpClient::new().connect(server.addr).await.unwrap();
    let second_id = connected(&mut events, None).await;
    for conn in [&first, &second] {
        conn.request(ECHO, "warm").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;

    assert!(server.handle.disconnect(first_id));
    assert_eq!(
        disconnected(&mut events, first_id).await,
        CloseReason::Local
    );
    // The other connection is untouched.
    assert_eq!(
        second
            .request(ECHO, "still")
            .await
            .unwrap()
            .content()
            .as_ref(),
        b"still"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;

    server.handle.shutdown();
    assert_eq!(
        disconnected(&mut events, second_id).await,
        CloseReason::Local
    );
    server.stop().await;
}
