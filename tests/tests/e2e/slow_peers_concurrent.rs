//! A server's concurrent handlers (`concurrent_requests`), over TCP on loopback with paused
//! time: a slow request no longer holds up the ones behind it on its connection, so hedged calls
//! are hedged only when the request itself is slow. With the default (requests handled in
//! order, as Python netaio does), a stalled request holds up every later one on its connection,
//! and a hedging caller hedges those too (the cause of the bench's 23 % hedges instead of 5 %).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::{CallOptions, Message, MessageType, Router, TcpClient, TcpServer, call_any};
use netaio_tests::{start, start_with};
use tokio::time::Instant;

const URI: &str = "q";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn req(content: &'static str) -> Message {
    Message::new(MessageType::REQUEST_URI, URI, content)
}

/// Answers `<name><n>` for its n-th request, every other one (the second, fourth, …) after
/// 300 ms; a request whose content is `slow` after 1 s, one whose content is `quick` at once.
fn every_other_slow(name: &'static str) -> Router {
    let n = Arc::new(AtomicUsize::new(0));
    Router::new().on((MessageType::REQUEST_URI, URI), move |m: Message| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        async move {
            if m.content().as_ref() == b"slow" {
                tokio::time::sleep(ms(1000)).await;
            } else if i % 2 == 1 && m.content().as_ref() != b"quick" {
                tokio::time::sleep(ms(300)).await;
            }
            Message::respond(URI, format!("{name}{i}"))
        }
    })
}

/// How long a quick request waits on a connection whose previous request takes 1 s.
async fn behind_a_slow_request(concurrent: usize) -> Duration {
    let server = start_with(
        TcpServer::builder()
            .router(every_other_slow("a"))
            .concurrent_requests(concurrent),
    )
    .await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let slow = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call(req("slow")).await }
    });
    tokio::time::sleep(ms(10)).await;
    let t0 = Instant::now();
    let quick = conn.call(req("quick")).await.unwrap();
    let waited = t0.elapsed();
    assert_eq!(quick.content().as_ref(), b"a1");
    assert_eq!(slow.await.unwrap().unwrap().content().as_ref(), b"a0");
    server.stop().await;
    waited
}

#[tokio::test(start_paused = true)]
async fn a_slow_request_holds_up_its_connection_only_without_concurrent_handlers() {
    let in_order = behind_a_slow_request(1).await;
    assert!(in_order >= ms(900), "{in_order:?}");
    let concurrent = behind_a_slow_request(4).await;
    assert!(concurrent < ms(50), "{concurrent:?}");
}

/// The content of each of 10 hedged calls' replies over `a` (every other request slow) then
/// `b` (quick): `b`'s replies are empty.
async fn hedged_answers(concurrent: usize) -> Vec<String> {
    let a = start_with(
        TcpServer::builder()
            .router(every_other_slow("a"))
            .concurrent_requests(concurrent),
    )
    .await;
    let b = start(
        Router::new().on((MessageType::REQUEST_URI, URI), |_m: Message| async move {
            Message::respond(URI, "")
        }),
    )
    .await;
    let client = TcpClient::new();
    let conns = [
        client.connect(a.addr).await.unwrap(),
        client.connect(b.addr).await.unwrap(),
    ];
    let opts = CallOptions::new().soft_timeout(ms(50)).hedge(1);
    let mut answered_by = Vec::new();
    for _ in 0..10 {
        let reply = call_any(&conns, req(""), &opts).await.unwrap();
        answered_by.push(String::from_utf8(reply.content().to_vec()).unwrap());
    }
    a.stop().await;
    b.stop().await;
    answered_by
}

#[tokio::test(start_paused = true)]
async fn with_concurrent_handlers_only_the_slow_requests_are_hedged() {
    let hedged = |v: &[String]| v.iter().filter(|s| s.is_empty()).count();
    // In order: after a slow request, the next ones wait behind it and are hedged too.
    let in_order = hedged_answers(1).await;
    assert!(hedged(&in_order) >= 7, "{in_order:?}");
    // Concurrent: exactly the slow ones (every other) are hedged; `a` answers the rest.
    let concurrent = hedged_answers(8).await;
    assert_eq!(
        concurrent,
        ["a0", "", "a2", "", "a4", "", "a6", "", "a8", ""],
        "{concurrent:?}"
    );
}

/// Real clock (a sub-millisecond soft timeout is kept by a thread by the real clock; a paused
/// clock rounds it to tokio's tick): hedged calls with a 300 µs soft timeout to a server that
/// stalls every other request 1 s, over loopback. Each stalled call is answered by the second
/// server long before the stall ends (bound generous for a loaded machine: 300 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_millisecond_soft_timeout_hedges_by_the_real_clock() {
    let a = start_with(
        TcpServer::builder()
            .router(Router::new().on((MessageType::REQUEST_URI, URI), {
                let n = Arc::new(AtomicUsize::new(0));
                move |_m: Message| {
                    let i = n.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if i % 2 == 1 {
                            tokio::time::sleep(ms(1000)).await;
                        }
                        Message::respond(URI, format!("a{i}"))
                    }
                }
            }))
            .concurrent_requests(8),
    )
    .await;
    let b = start(
        Router::new().on((MessageType::REQUEST_URI, URI), |_m: Message| async move {
            Message::respond(URI, "")
        }),
    )
    .await;
    let client = TcpClient::new();
    let conns = [
        client.connect(a.addr).await.unwrap(),
        client.connect(b.addr).await.unwrap(),
    ];
    // Warm: both connections have carried a request (the first is `a`'s request 0).
    conns[0].call(req("")).await.unwrap();
    conns[1].call(req("")).await.unwrap();
    let opts = CallOptions::new()
        .soft_timeout(Duration::from_micros(300))
        .hedge(1);
    for i in 1..7 {
        let t0 = Instant::now();
        let reply = call_any(&conns, req(""), &opts).await.unwrap();
        let took = t0.elapsed();
        assert!(took < ms(50), "call {i} took {took:?}");
        if i % 2 == 1 {
            assert_eq!(
                reply.content().as_ref(),
                b"",
                "call {i}: the stall ends after 100 ms"
            );
        }
    }
    a.stop().await;
    b.stop().await;
}
