//! Requests that survive slow and lost peers, against the real Python library (`netaio==0.0.9`,
//! `examples/python/slow_peers.py`): a call to a Python server whose reply comes after the soft
//! timeout is answered as one in time; one whose reply comes after the hard timeout fails with
//! `Timeout` and the reply reaches the late-replies stream (Python replies carry no reference:
//! it is matched by uri); a request a Python client sends twice with the same request id and the
//! at-most-once mark runs its handler on a Rust server once, both copies getting its reply.
//!
//! Real time (the peer is another process); every wait is bounded, on 127.0.0.1 only.

// Test code: a panic is how the helpers report a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::{CallOptions, Message, MessageType, RequestError, Router, TcpClient, TcpServer};
use tokio::time::Instant;

use crate::python_interop::{LIMIT, Proc, python, python_dir};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn python_slow_server() -> (Proc, u16) {
    let mut p = Proc::spawn(
        Command::new(python())
            .arg(python_dir().join("slow_peers.py"))
            .args(["server", "--seconds", "60"]),
    );
    let port = p.port();
    (p, port)
}

/// A request the Python server answers after `delay_ms`.
fn delayed(uri: &str, delay_ms: u64) -> Message {
    Message::new(
        MessageType::REQUEST_URI,
        uri.to_owned(),
        delay_ms.to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_and_hard_timeouts_and_a_late_reply_against_a_python_server() {
    let (_server, port) = python_slow_server();
    let conn = TcpClient::builder()
        .python_compat()
        .build()
        .connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut late = conn.late_replies();

    // Answered after 300 ms: past the 100 ms soft timeout, within the 5 s hard one.
    let opts = CallOptions::new().soft_timeout(ms(100)).timeout(ms(5000));
    let t0 = Instant::now();
    let mut call = conn.start_call(delayed("slow/1", 300), &opts);
    let soft = call.soft_timeout();
    tokio::select! {
        r = &mut call => panic!("answered before its soft timeout: {r:?}"),
        () = soft => assert!(t0.elapsed() >= ms(100)),
    }
    assert!(call.is_impatient());
    let reply = tokio::time::timeout(LIMIT, call).await.unwrap().unwrap();
    assert_eq!(reply.content().as_ref(), b"300");
    assert!(t0.elapsed() >= ms(300));

    // Answered after 800 ms: past its 200 ms hard timeout, a late reply.
    let call = conn.start_call(delayed("slow/2", 800), &CallOptions::new().timeout(ms(200)));
    let id = call.request_id().unwrap();
    let e = tokio::time::timeout(LIMIT, call)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Timeout(d) if d == ms(200)),
        "{e:?}"
    );
    let l = tokio::time::timeout(LIMIT, late.recv())
        .await
        .expect("the late reply within the limit")
        .unwrap();
    assert_eq!((l.request_id, l.uri.as_ref()), (id, &b"slow/2"[..]));
    assert_eq!(l.reply.content().as_ref(), b"800");
    assert!(l.late_by >= ms(400), "{:?}", l.late_by);

    // The connection goes on: a quick call is answered.
    let r = conn.call(delayed("quick", 0)).await.unwrap();
    assert_eq!(r.content().as_ref(), b"0");
    let stats = conn.request_stats();
    assert_eq!(
        (stats.soft_timeouts, stats.timeouts, stats.late_replies),
        (1, 1, 1)
    );
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_s_retried_request_runs_once_on_a_rust_server() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let router = Router::new().on((MessageType::REQUEST_URI, "count"), move |_m: Message| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Message::respond("count", n.to_string()) }
    });
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .python_compat()
        .router(router)
        .bind()
        .await
        .unwrap();
    let port = server.local_addr().port().to_string();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());

    let mut client = Proc::spawn(
        Command::new(python())
            .arg(python_dir().join("slow_peers.py"))
            .args(["retry", "--port", &port]),
    );
    let line = tokio::task::spawn_blocking(move || client.line(LIMIT))
        .await
        .unwrap();
    assert_eq!(line, "replies 1 1", "the copy got the first run's reply");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
    assert_eq!(handle.request_stats().duplicates, 1);

    // Without the at-most-once mark the same id would run twice (Python's own retries): a
    // plain request runs the handler again.
    let conn = TcpClient::builder()
        .python_compat()
        .build()
        .connect(("127.0.0.1", port.parse::<u16>().unwrap()))
        .await
        .unwrap();
    let r = conn
        .call(Message::new(MessageType::REQUEST_URI, "count", ""))
        .await
        .unwrap();
    assert_eq!(r.content().as_ref(), b"2");
    conn.close().await;
    handle.shutdown();
    let _ = tokio::time::timeout(LIMIT, serving).await;
}
