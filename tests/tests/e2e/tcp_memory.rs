//! Memory bounded in bytes, not only in counts (issue 12, defect 3): a subscriber that never
//! reads holds at most its send-queue budget while the others still receive every notification
//! (before the fix, 1,024 frames of any size, about 62 MB per such subscriber); subscription keys
//! past their byte budgets are refused with typed errors (before, 64 MiB of keys per
//! connection); a client's queue towards a server that never reads is bounded in bytes too.
//!
//! Paused time: notifications, replies and reads go over loopback in lockstep, and the clock
//! moves only when every task waits (to the write timeout, at the end).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use netaio::router::Context;
use netaio::tcp::CloseReason;
use netaio::{
    Message, MessageType, RequestError, Router, SendError, SubscribeError, TcpClient, TcpServer,
};
use netaio_tests::{RawConn, WAIT, connected, start_with, within};
use tokio::net::TcpStream;

const TOPIC: &str = "news";

async fn subscribe(msg: Message, ctx: Context) -> Result<Message, SubscribeError> {
    ctx.subscribe(msg.uri().clone())?;
    Ok(Message::new(
        MessageType::CONFIRM_SUBSCRIBE,
        msg.uri().clone(),
        "",
    ))
}

fn subscribe_router() -> Router {
    Router::new().on(MessageType::SUBSCRIBE_URI, subscribe)
}

/// A connection to `addr` whose receive buffer is 4 KiB, so the kernel holds little of what the
/// server sends to a reader that stops.
fn small_window(addr: std::net::SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.set_nonblocking(true).unwrap();
    TcpStream::from_std(std::net::TcpStream::from(sock)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_never_reads_is_skipped_within_its_budget_and_the_others_still_receive() {
    const QUEUE: usize = 64 * 1024;
    const NODE: usize = 256 * 1024;
    const CONTENT: usize = 60_000;
    const NOTES: usize = 200;
    const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
    let server = start_with(
        TcpServer::builder()
            .router(subscribe_router())
            .send_queue_bytes(QUEUE)
            .max_queued_bytes(NODE)
            .write_backlog(16 * 1024)
            .write_timeout(WRITE_TIMEOUT),
    )
    .await;
    let mut events = server.events();

    // The slow subscriber: subscribes, reads the confirmation, then never reads again.
    let mut slow = RawConn::from_stream(small_window(server.addr));
    let slow_id = connected(&mut events, Some(slow.local_addr())).await;
    let confirm = slow
        .round_trip(&Message::new(MessageType::SUBSCRIBE_URI, TOPIC, ""))
        .await;
    assert_eq!(confirm.message_type, MessageType::CONFIRM_SUBSCRIBE);

    // Two subscribers that keep up.
    let mut fast = Vec::new();
    for _ in 0..2 {
        let client = TcpClient::builder().inbox_bytes(1 << 20).build();
        let conn = client.connect(server.addr).await.unwrap();
        conn.call(Message::new(MessageType::SUBSCRIBE_URI, TOPIC, ""))
            .await
            .unwrap();
        fast.push(conn);
    }
    assert_eq!(server.handle.subscribers(TOPIC).len(), 3);

    let mut most_queued = 0;
    let mut most_slow = 0;
    for i in 0..NOTES {
        let mut content = vec![0u8; CONTENT];
        content[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let note = Message::new(MessageType::NOTIFY_URI, TOPIC, content);
        let queued = server.handle.notify(TOPIC, &note).await.unwrap();
        assert!(queued >= 2, "notification {i} reached {queued} subscribers");
        for conn in &fast {
            let got = conn.receive_timeout(WAIT).await.unwrap();
            assert_eq!(
                got.content()[..8],
                (i as u64).to_be_bytes(),
                "lost or reordered"
            );
        }
        let stats = server.handle.stats();
        most_queued = most_queued.max(stats.queued_bytes);
        most_slow = most_slow.max(server.handle.queued_bytes(slow_id).unwrap());
        assert!(
            stats.queued_bytes <= NODE,
            "{} queued in all",
            stats.queued_bytes
        );
    }
    // The slow subscriber's queue filled to its budget and no further.
    assert!(
        most_slow <= QUEUE && most_slow > QUEUE - CONTENT,
        "{most_slow} bytes queued for the slow subscriber"
    );
    assert!(most_queued <= NODE);
    let stats = server.handle.stats();
    // 12 MB sent: all but what its queue, its backlog and the kernel hold was skipped.
    assert!(stats.skipped >= (NOTES / 2) as u64, "{stats:?}");
    assert!(server.handle.connections().iter().any(|c| c.id == slow_id));

    // A reader that never reads is then closed by the write timeout, and its bytes come back.
    let reason = within(
        WRITE_TIMEOUT * 2,
        "the slow subscriber's close",
        netaio_tests::disconnected_eventually(&mut events, slow_id),
    )
    .await;
    assert_eq!(reason, CloseReason::WriteTimeout);
    assert_eq!(server.handle.stats().queued_bytes, 0);
    for conn in &fast {
        conn.close().await;
    }
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn subscription_keys_beyond_their_byte_budgets_are_refused_with_typed_errors() {
    let server = start_with(
        TcpServer::builder()
            .router(subscribe_router())
            .max_subscriptions(3)
            .max_subscription_bytes(1024)
            .max_total_subscription_bytes(1500),
    )
    .await;
    let mut events = server.events();
    let client = TcpClient::new();
    let a = client.connect(server.addr).await.unwrap();
    let a_id = connected(&mut events, None).await;

    // Through a handler: a 60 KB key (before the fix, stored as long as the connection lived).
    let huge = vec![b'k'; 60_000];
    match a
        .call(Message::new(MessageType::SUBSCRIBE_URI, huge.clone(), ""))
        .await
    {
        Err(RequestError::Error(reply)) => assert_eq!(
            reply.content().as_ref(),
            SubscribeError::KeyBytes(1024).to_string().as_bytes()
        ),
        other => panic!("expected the handler's error reply, got {other:?}"),
    }
    assert!(server.handle.subscribers(&huge).is_empty());
    // Directly: the same typed errors.
    assert_eq!(
        server.handle.subscribe(a_id, &huge),
        Err(SubscribeError::KeyBytes(1024))
    );
    server.handle.subscribe(a_id, [b'a'; 500]).unwrap();
    server.handle.subscribe(a_id, [b'b'; 500]).unwrap();
    assert_eq!(
        server.handle.subscribe(a_id, [b'c'; 100]),
        Err(SubscribeError::KeyBytes(1024))
    );
    server.handle.subscribe(a_id, [b'c'; 24]).unwrap();
    // Too many keys, however small.
    assert_eq!(
        server.handle.subscribe(a_id, "d"),
        Err(SubscribeError::Limit(3))
    );

    // A second connection: within its own budget, but the node's is nearly spent.
    let other = TcpClient::new();
    let b = other.connect(server.addr).await.unwrap();
    let b_id = connected(&mut events, None).await;
    server.handle.subscribe(b_id, [b'e'; 476]).unwrap();
    assert_eq!(server.handle.stats().subscription_key_bytes, 1500);
    assert_eq!(
        server.handle.subscribe(b_id, "f"),
        Err(SubscribeError::NodeKeyBytes(1500))
    );
    // The first connection leaves: its bytes come back.
    a.close().await;
    within(WAIT, "the first connection's keys to go", async {
        while server.handle.stats().subscription_key_bytes != 476 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    server.handle.subscribe(b_id, "f").unwrap();
    b.close().await;
    server.stop().await;
}

/// A client whose server never reads: its queue is bounded in bytes (before the fix, 1,024
/// frames of any size): `try_send` reports a full queue at the latest once the kernel's buffers,
/// the backlog and the queue's byte budget are full.
#[tokio::test]
async fn a_client_queue_towards_a_server_that_never_reads_is_bounded_in_bytes() {
    const QUEUE: usize = 64 * 1024;
    const BACKLOG: usize = 16 * 1024;
    const CONTENT: usize = 60_000;
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.set_recv_buffer_size(4096).unwrap();
    listener
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    listener.listen(8).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener.into()).unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // Hold the connection open without reading.
        std::future::pending::<()>().await;
        drop(stream);
    });

    let client = TcpClient::builder()
        .send_queue_bytes(QUEUE)
        .write_backlog(BACKLOG)
        .build();
    let conn = client.connect(addr).await.unwrap();
    let msg = Message::new(MessageType::PUBLISH_URI, "bulk", vec![1u8; CONTENT]);
    let mut sent = 0usize;
    within(WAIT, "the queue to fill", async {
        loop {
            match conn.try_send(&msg) {
                Ok(()) => sent += 1,
                Err(SendError::QueueFull) => break,
                Err(e) => panic!("{e}"),
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    // What the kernel can hold at most on this machine: the client's send buffer and the
    // server's receive buffer, at their maximum sizes.
    let max_of = |path: &str| -> usize {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().last()?.parse().ok())
            .unwrap_or(64 << 20)
    };
    let kernel = max_of("/proc/sys/net/ipv4/tcp_wmem") + 4096 * 2;
    let frame = CONTENT + 64;
    let bound = kernel + QUEUE + BACKLOG + 2 * frame;
    assert!(
        sent * frame <= bound,
        "{sent} frames of {frame} bytes taken by a server that never reads (bound {bound})"
    );
    assert!(
        sent < 1024,
        "the old bound: 1,024 frames in the queue alone"
    );
    holder.abort();
    conn.close().await;
}
