//! Requests that survive slow and lost peers, over TCP on loopback with paused time: a reply
//! after the soft timeout answers the call as one in time; hedged calls to two servers, one of
//! which delays every other reply by 300 ms, all answer within the soft timeout and one fast
//! round trip; a reply after the hard timeout reaches the late-replies stream; a non-idempotent
//! handler runs exactly once per request id across a connection drop and reconnect; a call with
//! retries survives a server restarted mid-call; a request that cannot leave the host fails at
//! once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netaio::tcp::{ConnectionId, ConnectionState, Reconnect};
use netaio::{
    CallOptions, Message, MessageType, RequestError, Router, SendError, TcpClient, TcpServer,
    call_any,
};
use netaio_tests::{WAIT, start, start_with, within};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const URI: &str = "q";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn req() -> Message {
    Message::new(MessageType::REQUEST_URI, URI, "")
}

/// Answers `<name><n>` for its n-th request, every other one (the second, fourth, …) after 300 ms.
fn every_other_slow(name: &'static str) -> Router {
    let n = Arc::new(AtomicUsize::new(0));
    Router::new().on((MessageType::REQUEST_URI, URI), move |_m: Message| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        async move {
            if i % 2 == 1 {
                tokio::time::sleep(ms(300)).await;
            }
            Message::respond(URI, format!("{name}{i}"))
        }
    })
}

/// Answers every request after `delay`.
fn slow(delay: Duration) -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, URI),
        move |m: Message| async move {
            tokio::time::sleep(delay).await;
            Message::respond(URI, m.content().clone())
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_reply_after_the_soft_timeout_answers_the_call_as_one_in_time() {
    let server = start(every_other_slow("s")).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let opts = CallOptions::new().soft_timeout(ms(100)).timeout(ms(1000));

    let mut call = conn.start_call(req(), &opts);
    let soft = call.soft_timeout();
    tokio::select! {
        r = &mut call => assert_eq!(r.unwrap().content().as_ref(), b"s0"),
        () = soft => panic!("the fast reply missed its soft timeout"),
    }

    let t0 = Instant::now();
    let mut call = conn.start_call(req(), &opts);
    let soft = call.soft_timeout();
    tokio::select! {
        r = &mut call => panic!("the slow reply came early: {r:?}"),
        () = soft => assert!(call.is_impatient()),
    }
    assert_eq!(t0.elapsed(), ms(100));
    let reply = call.await.unwrap();
    assert_eq!(reply.content().as_ref(), b"s1");
    let took = t0.elapsed();
    assert!(ms(300) <= took && took < ms(310), "{took:?}");
    let stats = conn.request_stats();
    assert_eq!(
        (stats.soft_timeouts, stats.timeouts, stats.late_replies),
        (1, 0, 0)
    );
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn hedged_calls_answer_within_the_soft_timeout_and_one_fast_round_trip() {
    let a = start(every_other_slow("a")).await;
    let b = start(slow(ms(0))).await;
    let client = TcpClient::new();
    let conns = [
        client.connect(a.addr).await.unwrap(),
        client.connect(b.addr).await.unwrap(),
    ];
    let soft = ms(50);
    let opts = CallOptions::new().soft_timeout(soft).hedge(1);
    let mut answered_by = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let reply = call_any(&conns, req(), &opts).await.unwrap();
        let took = t0.elapsed();
        assert!(took <= soft + ms(5), "{took:?}");
        answered_by.push(String::from_utf8(reply.content().to_vec()).unwrap());
    }
    // The first call is answered by `a` at once; the second is one of `a`'s slow ones and `b`
    // answers it after the soft timeout; `a` handles a connection's requests in order, so the
    // next ones wait behind it and `b` answers them too, until `a` catches up.
    assert_eq!(answered_by[0], "a0");
    assert_eq!(answered_by[1], "");
    assert!(
        answered_by.iter().filter(|s| s.is_empty()).count() >= 5,
        "{answered_by:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reply_after_the_hard_timeout_reaches_the_late_replies_stream() {
    let server = start(slow(ms(300))).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let mut late = conn.late_replies();
    let call = conn.start_call(
        req().with_content("late"),
        &CallOptions::new().timeout(ms(100)),
    );
    let id = call.request_id().unwrap();
    let e = call.await.unwrap_err();
    assert!(
        matches!(e, RequestError::Timeout(d) if d == ms(100)),
        "{e:?}"
    );
    let reply = within(WAIT, "the late reply", late.recv()).await.unwrap();
    assert_eq!(reply.request_id, id);
    assert_eq!(
        (reply.message_type, reply.uri.as_ref()),
        (MessageType::REQUEST_URI, URI.as_bytes())
    );
    assert_eq!(reply.reply.content().as_ref(), b"late");
    assert_eq!(reply.peer, server.addr);
    assert!(
        ms(200) <= reply.late_by && reply.late_by < ms(210),
        "{:?}",
        reply.late_by
    );
    let stats = conn.request_stats();
    assert_eq!((stats.timeouts, stats.late_replies), (1, 1));
    // A plain call's late reply is reported too.
    let e = conn
        .call_with(req(), &netaio::plugin::SendOptions::new().timeout(ms(50)))
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)));
    within(WAIT, "the second late reply", late.recv())
        .await
        .unwrap();
    assert_eq!(conn.request_stats().late_replies, 2);
    server.stop().await;
}

/// A proxy to `server` whose first connection is cut as soon as the server answers (the reply
/// is lost); later connections are forwarded both ways.
async fn lossy_proxy(server: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let upstream = TcpStream::connect(server).await.unwrap();
            let cut = std::mem::replace(&mut first, false);
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut ur, mut uw) = upstream.into_split();
                let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut uw).await });
                if cut {
                    let mut byte = [0u8; 1];
                    let _ = ur.read(&mut byte).await;
                } else {
                    let _ = tokio::io::copy(&mut ur, &mut cw).await;
                }
                // Dropping both halves of both sockets closes them.
                up.abort();
            });
        }
    });
    addr
}

#[tokio::test(start_paused = true)]
async fn a_retried_counter_runs_once_per_request_id_across_a_drop_and_reconnect() {
    let count = Arc::new(AtomicUsize::new(0));
    let ran: Arc<Mutex<Vec<u64>>> = Arc::default();
    let router = {
        let (count, ran) = (count.clone(), ran.clone());
        Router::new().on((MessageType::CREATE_URI, URI), move |m: Message| {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            ran.lock().unwrap().push(m.request_id().unwrap());
            async move { Message::ok(URI, format!("{n}")) }
        })
    };
    let server = start(router).await;
    let proxy = lossy_proxy(server.addr).await;
    let client = TcpClient::builder()
        .reconnect(Some(Reconnect::default().initial_delay(ms(50))))
        .build();
    let mut events = server.events();
    let conn = client.connect(proxy).await.unwrap();
    let opts = CallOptions::new().timeout(ms(5000)).retry(2);
    let call = conn.start_call(Message::new(MessageType::CREATE_URI, URI, ""), &opts);
    let id = call.request_id().unwrap();
    let reply = within(WAIT, "the retried call", call).await.unwrap();
    assert_eq!(reply.content().as_ref(), b"1", "the first run's reply");
    assert_eq!(count.load(Ordering::SeqCst), 1, "the handler ran once");
    assert_eq!(*ran.lock().unwrap(), vec![id]);
    // The connection did drop and come back in between: the server saw two connections.
    let mut connections = 0;
    while let Ok(e) = events.try_recv() {
        connections += usize::from(matches!(e, netaio::tcp::ConnectionEvent::Connected { .. }));
    }
    assert_eq!(connections, 2);
    assert!(conn.is_connected());
    assert_eq!(conn.request_stats().retries, 1);
    assert_eq!(server.handle.request_stats().duplicates, 1);
    // A new request id is a new request.
    let reply = conn.start_call(Message::new(MessageType::CREATE_URI, URI, ""), &opts);
    assert_eq!(reply.await.unwrap().content().as_ref(), b"2");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn without_retries_a_lost_reply_fails_the_call_with_closed() {
    let count = Arc::new(AtomicUsize::new(0));
    let router = {
        let count = count.clone();
        Router::new().on((MessageType::CREATE_URI, URI), move |_m: Message| {
            count.fetch_add(1, Ordering::SeqCst);
            async move { Message::ok(URI, "") }
        })
    };
    let server = start(router).await;
    let proxy = lossy_proxy(server.addr).await;
    let client = TcpClient::builder()
        .reconnect(Some(Reconnect::default().initial_delay(ms(50))))
        .build();
    let conn = client.connect(proxy).await.unwrap();
    let call = conn.start_call(
        Message::new(MessageType::CREATE_URI, URI, ""),
        &CallOptions::new(),
    );
    let e = within(WAIT, "the call", call).await.unwrap_err();
    assert!(matches!(e, RequestError::Closed), "{e:?}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_leave_fails_at_once() {
    // Reconnecting: not connected.
    let server = start(slow(ms(0))).await;
    let addr = server.addr;
    let client = TcpClient::builder()
        .reconnect(Some(
            Reconnect::default().initial_delay(Duration::from_secs(60)),
        ))
        .build();
    let conn = client.connect(addr).await.unwrap();
    let mut states = conn.state_changes();
    server.stop().await;
    within(
        WAIT,
        "reconnecting",
        states.wait_for(|s| matches!(s, ConnectionState::Reconnecting { .. })),
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    let e = conn.call(req()).await.unwrap_err();
    assert!(matches!(e, RequestError::Send(SendError::Closed)), "{e:?}");
    let e = conn
        .start_call(req(), &CallOptions::new().retry(3))
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Send(SendError::Closed)), "{e:?}");
    assert_eq!(t0.elapsed(), Duration::ZERO, "at once");

    // Send queue full: a server that never reads, a queue of 2 filled by hand.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move { listener.accept().await.unwrap() });
    let client = TcpClient::builder().send_queue(2).build();
    let conn = client.connect(silent).await.unwrap();
    let _held = accept.await.unwrap();
    let note = Message::new(MessageType::NOTIFY_URI, "n", "");
    while conn.try_send(&note).is_ok() {}
    let t0 = Instant::now();
    let e = conn.call(req()).await.unwrap_err();
    assert!(
        matches!(e, RequestError::Send(SendError::QueueFull)),
        "{e:?}"
    );
    let e = conn
        .start_call(req(), &CallOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Send(SendError::QueueFull)),
        "{e:?}"
    );
    assert_eq!(t0.elapsed(), Duration::ZERO, "at once");

    // A server's call to a connection that is gone.
    let server = start_with(TcpServer::builder().router(slow(ms(0)))).await;
    let e = server
        .handle
        .call(ConnectionId(999), req())
        .await
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Send(SendError::UnknownConnection)),
        "{e:?}"
    );
    let e = server
        .handle
        .start_call(ConnectionId(999), req(), &CallOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Send(SendError::UnknownConnection)),
        "{e:?}"
    );
    assert_eq!(t0.elapsed(), Duration::ZERO, "at once");
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_call_with_retries_survives_a_server_restarted_mid_call() {
    // The first server takes the request and never answers it; it is stopped mid-call.
    let (reached, mut reached_rx) = tokio::sync::mpsc::unbounded_channel();
    let hang = Router::new().on((MessageType::REQUEST_URI, URI), move |_m: Message| {
        let _ = reached.send(());
        std::future::pending::<Message>()
    });
    let first = start_with(TcpServer::builder().router(hang).shutdown_timeout(ms(100))).await;
    let addr = first.addr;
    let client = TcpClient::builder()
        .reconnect(Some(Reconnect::default().initial_delay(ms(50))))
        .build();
    let conn = client.connect(addr).await.unwrap();
    let call = conn.start_call(
        req().with_content("again"),
        &CallOptions::new().timeout(ms(5000)).retry(1),
    );
    let call = tokio::spawn(call);
    within(WAIT, "the request at the first server", reached_rx.recv())
        .await
        .unwrap();
    first.stop().await;
    let second = netaio_tests::start_on(addr, TcpServer::builder().router(slow(ms(0)))).await;
    let reply = within(WAIT, "the call", call).await.unwrap().unwrap();
    assert_eq!(
        reply.content().as_ref(),
        b"again",
        "answered by the new server"
    );
    assert_eq!(conn.request_stats().retries, 1);
    second.stop().await;
}
