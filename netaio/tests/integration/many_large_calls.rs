//! Many large calls in flight on one connection: more bytes than the two sockets' kernel buffers
//! hold. The client's requests wait for the server to read them, and the server's replies wait
//! for the client to read them; a client that stopped reading while its own writes were blocked
//! would leave both waiting on each other until the calls time out (it did: 192 calls of 60 kB).

// Helpers outside the #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use netaio::{Message, MessageType, Router, TcpClient, TcpServer};

/// Calls in flight at once, and their payload (both ways): 36 MB each way, several times what
/// loopback sockets buffer (Linux autotunes them to a few MiB each).
const CALLS: usize = 600;
const SIZE: usize = 60_000;

/// A bound on each call: a stuck exchange fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_socket_buffers_all_get_their_replies() {
    let echo = Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |m: Message| async move { Message::respond("echo", m.content().clone()) },
    );
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(echo)
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.serve());
    // Every request queued at once: the queue holds them all, the write backlog (64 KiB by
    // default) is what the connection buffers beyond the socket.
    let client = TcpClient::builder()
        .send_queue(2 * CALLS)
        .send_queue_bytes(2 * CALLS * SIZE)
        .build();
    let conn = client.connect(addr).await.unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        let conn = conn.clone();
        calls.spawn(async move {
            let body = Bytes::from(vec![i as u8; SIZE]);
            let msg = Message::new(MessageType::REQUEST_URI, "echo", body.clone());
            let reply = conn.call_timeout(msg, LIMIT).await;
            (
                i,
                reply
                    .map(|r| r.content() == &body)
                    .map_err(|e| e.to_string()),
            )
        });
    }
    let mut answered = 0;
    while let Some(done) = calls.join_next().await {
        let (i, reply) = done.unwrap();
        assert_eq!(reply, Ok(true), "call {i}: no reply, or not its own");
        answered += 1;
    }
    assert_eq!(answered, CALLS);
}
