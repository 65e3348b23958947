//! Shutdown and disconnection: a graceful shutdown answers what is in flight and then stops, a
//! handler that never ends is aborted after the shutdown timeout, and a connection that closes fails
//! every request still waiting on it at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::{Duration, Instant};

use netaio::tcp::{CloseReason, ConnectionEvent};
use netaio::{ConnectError, Message, MessageType, RequestError, Router, TcpClient, TcpServer};
use netaio_tests::{WAIT, connected, disconnected, echo_router, start, start_with, within};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// A handler that reports on `started` when it begins, so a test knows a request is in flight.
fn signalling_router(
    started: mpsc::UnboundedSender<()>,
    work: impl Fn() -> tokio::time::Sleep + Clone + Send + Sync + 'static,
) -> Router {
    echo_router().on((MessageType::REQUEST_URI, "slow"), move |msg: Message| {
        let started = started.clone();
        let work = work.clone();
        async move {
            started.send(()).unwrap();
            work().await;
            Message::respond("slow", msg.content().clone())
        }
    })
}

async fn wait_started(rx: &mut mpsc::UnboundedReceiver<()>, n: usize) {
    within(WAIT, "handlers to start", async {
        for _ in 0..n {
            rx.recv().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_in_flight_requests_then_stops_accepting() {
    let (tx, mut started) = mpsc::unbounded_channel();
    let router = signalling_router(tx, || tokio::time::sleep(Duration::from_millis(300)));
    let server = start(router).await;
    let addr = server.addr;

    let mut calls = JoinSet::new();
    for i in 0..5 {
        // One client each: the five handlers run at the same time.
        calls.spawn(async move {
            let client = TcpClient::new();
            let conn = client.connect(addr).await.unwrap();
            let r = conn.request("slow", format!("req {i}")).await;
            (i, r, conn)
        });
    }
    wait_started(&mut started, 5).await;
    let t0 = Instant::now();
    server.handle.shutdown();
    assert!(server.handle.is_shutting_down());

    let mut answered = 0;
    within(WAIT, "the in-flight replies", async {
        while let Some(r) = calls.join_next().await {
            let (i, reply, conn) = r.unwrap();
            let reply = reply.unwrap_or_else(|e| panic!("request {i} failed: {e}"));
            assert_eq!(reply.content().as_ref(), format!("req {i}").as_bytes());
            answered += 1;
            // After answering, the server closes the connection.
            within(WAIT, "the client to see the close", conn.close()).await;
        }
    })
    .await;
    assert_eq!(answered, 5);

    within(WAIT, "serve() to return", server.join)
        .await
        .unwrap();
    assert!(t0.elapsed() < WAIT);
    let refused = TcpClient::new().connect(addr).await;
    assert!(
        matches!(refused, Err(ConnectError::Io { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn shutdown_aborts_a_handler_that_never_ends_after_the_shutdown_timeout() {
    let (tx, mut started) = mpsc::unbounded_channel();
    let router = signalling_router(tx, || tokio::time::sleep(Duration::from_secs(3600)));
    let server = start_with(
        TcpServer::builder()
            .router(router)
            .shutdown_timeout(Duration::from_millis(200)),
    )
    .await;
    let mut events = server.events();
    let client = TcpClient::builder()
        .request_timeout(Duration::from_secs(30))
        .build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;
    let call = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.request("slow", "").await })
    };
    wait_started(&mut started, 1).await;
    let t0 = Instant::now();
    server.handle.shutdown();
    let r = within(WAIT, "the pending request to fail", call)
        .await
        .unwrap();
    assert!(matches!(r, Err(RequestError::Closed)), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    within(WAIT, "serve() to return", server.join)
        .await
        .unwrap();
    // Aborted by the shutdown, not panicked.
    assert_eq!(disconnected(&mut events, id).await, CloseReason::Local);
}

#[tokio::test]
async fn disconnect_aborts_a_handler_that_never_ends_after_the_grace_period() {
    let (tx, mut started) = mpsc::unbounded_channel();
    let router = signalling_router(tx, || tokio::time::sleep(Duration::from_secs(3600)));
    let server = start_with(
        TcpServer::builder()
            .router(router)
            .shutdown_timeout(Duration::from_millis(200)),
    )
    .await;
    let mut events = server.events();
    let client = TcpClient::builder()
        .request_timeout(Duration::from_secs(30))
        .build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;
    let call = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.request("slow", "").await })
    };
    wait_started(&mut started, 1).await;
    let t0 = Instant::now();
    assert!(server.handle.disconnect(id));
    let r = within(WAIT, "the pending request to fail", call)
        .await
        .unwrap();
    assert!(matches!(r, Err(RequestError::Closed)), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(disconnected(&mut events, id).await, CloseReason::Local);
    // The server itself keeps serving.
    let other = TcpClient::new().connect(server.addr).await.unwrap();
    assert_eq!(
        other.request("echo", "x").await.unwrap().content().as_ref(),
        b"x"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_closed_connection_fails_every_pending_request_at_once() {
    // The handler takes the request and never answers it.
    let (tx, mut started) = mpsc::unbounded_channel::<()>();
    let router = echo_router().on((MessageType::REQUEST_URI, "void"), move || {
        let tx = tx.clone();
        async move {
            tx.send(()).unwrap();
        }
    });
    let server = start(router).await;
    let mut events = server.events();
    let client = TcpClient::builder()
        .request_timeout(Duration::from_secs(30))
        .build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;

    let mut calls = JoinSet::new();
    for i in 0..10 {
        let conn = conn.clone();
        calls.spawn(async move { (i, conn.request("void", "").await) });
    }
    wait_started(&mut started, 10).await;
    let t0 = Instant::now();
    assert!(server.handle.disconnect(id));
    within(
        Duration::from_secs(2),
        "every pending request to fail",
        async {
            while let Some(r) = calls.join_next().await {
                let (i, r) = r.unwrap();
                assert!(matches!(r, Err(RequestError::Closed)), "request {i}: {r:?}");
            }
        },
    )
    .await;
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(disconnected(&mut events, id).await, CloseReason::Local);
    assert!(!server.handle.disconnect(id), "already gone");

    // The connection is over for good: new requests fail at once too.
    within(WAIT, "the connection to end", conn.close()).await;
    assert!(conn.is_closed());
    let r = conn.request("echo", "").await;
    assert!(
        matches!(r, Err(RequestError::Closed | RequestError::Send(_))),
        "{r:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn serve_with_shutdown_stops_when_the_signal_completes() {
    let server = TcpServer::bind(([127, 0, 0, 1], 0), echo_router())
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut events = server.handle().events();
    let (stop, signal) = tokio::sync::oneshot::channel::<()>();
    let join = tokio::spawn(server.serve_with_shutdown(async {
        let _ = signal.await;
    }));
    let conn = TcpClient::new().connect(addr).await.unwrap();
    assert_eq!(
        conn.request("echo", "a").await.unwrap().content().as_ref(),
        b"a"
    );
    stop.send(()).unwrap();
    within(WAIT, "serve_with_shutdown to return", join)
        .await
        .unwrap();
    // The open connection was closed by the shutdown.
    let closed = within(WAIT, "the Disconnected event", async {
        loop {
            if let ConnectionEvent::Disconnected { reason, .. } = events.recv().await.unwrap() {
                return reason;
            }
        }
    })
    .await;
    assert_eq!(closed, CloseReason::Local);
    within(WAIT, "the client to see the close", conn.close()).await;
    assert!(TcpClient::new().connect(addr).await.is_err());
}
