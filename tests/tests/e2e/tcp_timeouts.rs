//! Connection deadlines under traffic: activity keeps moving the idle deadline later (the driver
//! re-arms its timer lazily when it fires early), silence then closes the connection, a partial
//! frame after a stretch of activity still gets the read timeout from when it started, and a
//! client that does not read its replies is closed after the write timeout while one that keeps
//! up is not.
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

/// The write timeout of the tests below.
const WRITE: Duration = Duration::from_millis(300);

/// A connection to `addr` with a 4 KiB receive buffer (so the kernel holds little of what the
/// server sends), split: a task writes `n` requests for 60,000-byte echoes (it blocks when the
/// server stops reading; it is aborted at the end), the read half is returned.
async fn flood(
    addr: std::net::SocketAddr,
    n: usize,
) -> (tokio::net::tcp::OwnedReadHalf, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.set_nonblocking(true).unwrap();
    let stream = tokio::net::TcpStream::from_std(std::net::TcpStream::from(sock)).unwrap();
    let (rd, mut wr) = stream.into_split();
    let frame = netaio::Message::new(MessageType::REQUEST_URI, "echo", vec![7u8; 60_000])
        .to_bytes(&netaio::message::PostcardCodec)
        .unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..n {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    (rd, writer)
}

/// A client that sends requests and never reads the replies is closed with `WriteTimeout`.
#[tokio::test]
async fn a_client_that_reads_nothing_is_closed_after_the_write_timeout() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .write_timeout(WRITE),
    )
    .await;
    let mut events = server.events();
    let (_rd, writer) = flood(server.addr, 300).await;
    let id = connected(&mut events, None).await;
    assert_eq!(
        disconnected(&mut events, id).await,
        CloseReason::WriteTimeout
    );
    writer.abort();
    server.stop().await;
}

/// A client that keeps up is never closed by the write timeout, however much it is sent: 300
/// echoes of 60,000 bytes (18 MB, through a 4 KiB receive buffer), all received.
#[tokio::test]
async fn a_client_that_keeps_up_is_not_closed_by_the_write_timeout() {
    use tokio::io::AsyncReadExt;
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .write_timeout(WRITE),
    )
    .await;
    let mut events = server.events();
    let (mut rd, writer) = flood(server.addr, 300).await;
    let id = connected(&mut events, None).await;
    let mut replies = 0;
    let mut header = [0u8; 9];
    let mut body = vec![0u8; 70_000];
    tokio::time::timeout(Duration::from_secs(20), async {
        while replies < 300 {
            rd.read_exact(&mut header).await.unwrap();
            let auth = usize::from(u16::from_be_bytes([header[1], header[2]]));
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            rd.read_exact(&mut body[..auth + len]).await.unwrap();
            assert_eq!(header[0], MessageType::RESPOND_URI.value());
            replies += 1;
        }
    })
    .await
    .unwrap();
    assert_eq!(replies, 300);
    // The writer, done, dropped its half: the connection ends because the client closed its side
    // (after every reply was delivered), not by the write timeout.
    assert_eq!(disconnected(&mut events, id).await, CloseReason::PeerClosed);
    drop(rd);
    writer.abort();
    server.stop().await;
}
