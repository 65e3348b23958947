//! Connection deadlines under traffic: activity keeps moving the idle deadline later (the driver
//! re-arms its timer lazily when it fires early), silence then closes the connection, and a
//! partial frame after a stretch of activity still gets the read timeout from when it started.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use netaio::tcp::CloseReason;
use netaio::{MessageType, TcpServer};
use netaio_tests::{RawConn, connected, disconnected, echo_router, header, start_with};
use tokio::time::Instant;

const IDLE: Duration = Duration::from_millis(400);
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

#[tokio::test]
async fn activity_postpones_the_idle_timeout_and_silence_then_closes() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .idle_timeout(Some(IDLE)),
    )
    .await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    let start = Instant::now();
    // A request every 100 ms for 3 idle periods: the connection must outlive its first deadlines.
    for _ in 0..12 {
        tokio::time::sleep(IDLE / 4).await;
        raw.assert_open().await;
    }
    assert!(
        start.elapsed() >= IDLE * 2,
        "traffic spanned several idle periods"
    );
    let silent = Instant::now();
    let took = raw.expect_eof(CLOSE_WITHIN).await;
    let since_last = silent.elapsed();
    assert!(
        took >= IDLE - Duration::from_millis(50),
        "closed {took:?} after the last request, before the idle timeout"
    );
    assert!(since_last < IDLE * 3, "closed late: {since_last:?}");
    assert_eq!(
        disconnected(&mut events, id).await,
        CloseReason::IdleTimeout
    );
    server.stop().await;
}

#[tokio::test]
async fn partial_frame_after_activity_gets_the_read_timeout() {
    let read_timeout = Duration::from_millis(300);
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .read_timeout(read_timeout)
            .idle_timeout(Some(Duration::from_secs(30))),
    )
    .await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    for _ in 0..5 {
        raw.assert_open().await;
    }
    // Half a header, then nothing: closed after the read timeout, long before the idle timeout.
    raw.write(&header(MessageType::REQUEST_URI, 0, 10, 0)[..4])
        .await;
    let took = raw.expect_eof(CLOSE_WITHIN).await;
    assert!(took >= read_timeout - Duration::from_millis(50), "{took:?}");
    assert_eq!(
        disconnected(&mut events, id).await,
        CloseReason::ReadTimeout
    );
    server.stop().await;
}

#[tokio::test]
async fn timeouts_of_duration_max_mean_never_and_do_not_overflow() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .read_timeout(Duration::MAX)
            .idle_timeout(Some(Duration::MAX))
            .write_timeout(Duration::MAX),
    )
    .await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    // A partial frame starts the read deadline: with Duration::MAX it used to overflow `Instant`
    // and kill the connection task.
    let mut frame = bytes::BytesMut::new();
    netaio::Message::new(MessageType::REQUEST_URI, "echo", "late")
        .encode(&netaio::message::PostcardCodec, &mut frame)
        .unwrap();
    raw.write(&frame[..4]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.handle.connections().iter().any(|c| c.id == id));
    raw.write(&frame[4..]).await;
    let reply = raw.read_message().await;
    assert_eq!(reply.content().as_ref(), b"late");
    // Other clients are served as usual.
    let other = netaio::TcpClient::new().connect(server.addr).await.unwrap();
    assert_eq!(
        other.request("echo", "x").await.unwrap().content().as_ref(),
        b"x"
    );
    server.stop().await;
}
