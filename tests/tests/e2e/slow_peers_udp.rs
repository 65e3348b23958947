//! Requests that survive slow and lost peers, over UDP on loopback with paused time: a reply
//! after the soft timeout answers the call as one in time; hedged calls to two nodes, one of
//! which delays every other reply by 300 ms; a lost reply is recovered by a retry while the
//! handler runs exactly once per request id; a reply after the hard timeout reaches the
//! late-replies stream; a captured old reply cannot answer a new request (reply binding under
//! `HmacAuth`); a request that cannot leave the host fails at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::message::PostcardCodec;
use netaio::plugin::{HmacAuth, PluginContext, Plugins, open_outer, seal};
use netaio::udp::{UdpHandle, UdpNode, UdpNodeBuilder};
use netaio::{CallOptions, Message, MessageType, RequestError, Router, SendError};
use netaio_tests::{WAIT, within};
use tokio::net::UdpSocket;
use tokio::time::Instant;

const URI: &str = "q";
const SECRET: &[u8] = b"a shared secret of the test nodes";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn req() -> Message {
    Message::new(MessageType::REQUEST_URI, URI, "")
}

async fn node(builder: UdpNodeBuilder) -> (UdpHandle, SocketAddr) {
    netaio_tests::init_tracing();
    let node = builder.address(([127, 0, 0, 1], 0)).bind().await.unwrap();
    let (handle, addr) = (node.handle(), node.local_addr());
    tokio::spawn(node.serve());
    (handle, addr)
}

async fn serving(router: Router) -> (UdpHandle, SocketAddr) {
    node(UdpNode::builder().router(router)).await
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

/// Answers `<name><n>` at once.
fn fast(name: &'static str) -> Router {
    let n = Arc::new(AtomicUsize::new(0));
    Router::new().on((MessageType::REQUEST_URI, URI), move |_m: Message| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        async move { Message::respond(URI, format!("{name}{i}")) }
    })
}

#[tokio::test(start_paused = true)]
async fn a_reply_after_the_soft_timeout_answers_the_call_as_one_in_time() {
    let (server, addr) = serving(every_other_slow("s")).await;
    let (client, _) = serving(Router::new()).await;
    let opts = CallOptions::new().soft_timeout(ms(100)).timeout(ms(1000));
    let first = client.start_call(addr, req(), &opts).await.unwrap();
    assert_eq!(first.content().as_ref(), b"s0");
    let t0 = Instant::now();
    let mut call = client.start_call(addr, req(), &opts);
    let soft = call.soft_timeout();
    tokio::select! {
        r = &mut call => panic!("the slow reply came early: {r:?}"),
        () = soft => assert_eq!(t0.elapsed(), ms(100)),
    }
    assert_eq!(call.await.unwrap().content().as_ref(), b"s1");
    let took = t0.elapsed();
    assert!(ms(300) <= took && took < ms(310), "{took:?}");
    let stats = client.request_stats();
    assert_eq!((stats.soft_timeouts, stats.timeouts), (1, 0));
    server.shutdown();
    client.shutdown();
}

#[tokio::test(start_paused = true)]
async fn hedged_calls_answer_within_the_soft_timeout_and_one_fast_round_trip() {
    let (a, a_addr) = serving(every_other_slow("a")).await;
    let (b, b_addr) = serving(fast("b")).await;
    let (client, _) = serving(Router::new()).await;
    let soft = ms(50);
    let opts = CallOptions::new().soft_timeout(soft).hedge(1);
    let mut hedged = 0;
    for i in 0..10 {
        let t0 = Instant::now();
        let reply = client
            .call_any(&[a_addr, b_addr], req(), &opts)
            .await
            .unwrap();
        let took = t0.elapsed();
        assert!(took <= soft + ms(5), "call {i}: {took:?}");
        hedged += usize::from(reply.content().starts_with(b"b"));
    }
    // `a` is slow on every other request: those were answered by `b` after the soft timeout.
    assert_eq!(hedged, 5);
    // Mixed targets through `&dyn CallTarget`.
    let targets: [&dyn netaio::CallTarget; 2] =
        [&(client.clone(), a_addr), &(client.clone(), b_addr)];
    netaio::call_any(&targets, req(), &opts).await.unwrap();
    for n in [a, b, client] {
        n.shutdown();
    }
}

/// A relay between a client and `server` that drops the first reply it carries back.
async fn lossy_relay(server: SocketAddr) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let mut client = None;
        let mut dropped = false;
        let (mut a, mut b) = (vec![0u8; 65_536], vec![0u8; 65_536]);
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let (n, from) = r.unwrap();
                    client = Some(from);
                    back.send_to(&a[..n], server).await.unwrap();
                }
                r = back.recv_from(&mut b) => {
                    let (n, _) = r.unwrap();
                    if !std::mem::replace(&mut dropped, true) {
                        continue;
                    }
                    if let Some(c) = client {
                        front.send_to(&b[..n], c).await.unwrap();
                    }
                }
            }
        }
    });
    addr
}

#[tokio::test(start_paused = true)]
async fn a_lost_reply_is_recovered_by_a_retry_and_the_counter_runs_once() {
    let count = Arc::new(AtomicUsize::new(0));
    let router = {
        let count = count.clone();
        Router::new().on((MessageType::CREATE_URI, URI), move |_m: Message| {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Message::ok(URI, format!("{n}")) }
        })
    };
    let builder = UdpNode::builder()
        .router(router)
        .auth(HmacAuth::new(SECRET));
    let (server, addr) = node(builder).await;
    let relay = lossy_relay(addr).await;
    let (client, _) = node(UdpNode::builder().auth(HmacAuth::new(SECRET))).await;
    let opts = CallOptions::new()
        .soft_timeout(ms(100))
        .timeout(ms(1000))
        .retry(2);
    let t0 = Instant::now();
    let reply = client
        .start_call(relay, Message::new(MessageType::CREATE_URI, URI, ""), &opts)
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"1");
    assert_eq!(
        t0.elapsed(),
        ms(100),
        "answered by the retry's cached reply"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1, "the handler ran once");
    assert_eq!(client.request_stats().retries, 1);
    assert_eq!(server.request_stats().duplicates, 1);
    // The retry was sealed afresh: the server's replay cache took it (no auth failure).
    assert_eq!(server.stats().auth_failed, 0);
    // A new call is a new request.
    let reply = client
        .start_call(relay, Message::new(MessageType::CREATE_URI, URI, ""), &opts)
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"2");
    server.shutdown();
    client.shutdown();
}

#[tokio::test(start_paused = true)]
async fn a_reply_after_the_hard_timeout_reaches_the_late_replies_stream() {
    let router = Router::new().on((MessageType::REQUEST_URI, URI), |m: Message| async move {
        tokio::time::sleep(ms(300)).await;
        Message::respond(URI, m.content().clone())
    });
    let (server, addr) = serving(router).await;
    let (client, _) = serving(Router::new()).await;
    let mut late = client.late_replies();
    let call = client.start_call(
        addr,
        req().with_content("late"),
        &CallOptions::new().timeout(ms(100)),
    );
    let id = call.request_id().unwrap();
    assert!(matches!(call.await, Err(RequestError::Timeout(_))));
    let reply = within(WAIT, "the late reply", late.recv()).await.unwrap();
    assert_eq!((reply.request_id, reply.peer), (id, addr));
    assert_eq!(reply.reply.content().as_ref(), b"late");
    assert!(ms(200) <= reply.late_by && reply.late_by < ms(210));
    assert_eq!(client.request_stats().late_replies, 1);
    server.shutdown();
    client.shutdown();
}

/// The test plays the server with a raw socket and the node's secret: it answers request 1,
/// keeps that reply, and when request 2 comes, first sends the old reply as it was, then with
/// its reply reference rewritten to request 2's id, then a genuine reply. Only the last answers.
#[tokio::test(start_paused = true)]
async fn a_captured_old_reply_cannot_answer_a_new_request() {
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = raw.local_addr().unwrap();
    let (client, _) = node(UdpNode::builder().auth(HmacAuth::new(SECRET))).await;
    let plugins = Plugins::new().auth(HmacAuth::new(SECRET));
    let ctx = PluginContext::default();
    let mut buf = vec![0u8; 65_536];
    let mut receive = async |raw: &UdpSocket| -> (Message, SocketAddr) {
        let (n, from) = raw.recv_from(&mut buf).await.unwrap();
        let msg =
            Message::decode(bytes::Bytes::copy_from_slice(&buf[..n]), &PostcardCodec).unwrap();
        (open_outer(msg, &plugins, &ctx).unwrap(), from)
    };
    let answer = |to: &Message, content: &str| -> bytes::Bytes {
        let mut r = Message::respond(URI, content.to_owned());
        r.set_reply_ref(to.request_id().unwrap());
        let sealed = seal(r, &Plugins::new(), &plugins, &ctx).unwrap();
        sealed.to_bytes(&PostcardCodec).unwrap()
    };

    let first = tokio::spawn({
        let client = client.clone();
        async move { client.request(addr, URI, "1").await }
    });
    let (request1, from) = receive(&raw).await;
    let captured = answer(&request1, "old");
    raw.send_to(&captured, from).await.unwrap();
    assert_eq!(first.await.unwrap().unwrap().content().as_ref(), b"old");

    let second = tokio::spawn({
        let client = client.clone();
        async move { client.request(addr, URI, "2").await }
    });
    let (request2, from) = receive(&raw).await;
    assert_ne!(request1.request_id(), request2.request_id());
    // The old reply, replayed as it was: its reference names request 1, long gone.
    raw.send_to(&captured, from).await.unwrap();
    // The old reply pointed at request 2: its MAC no longer matches.
    let mut forged = Message::decode(captured.clone(), &PostcardCodec).unwrap();
    forged.set_reply_ref(request2.request_id().unwrap());
    raw.send_to(&forged.to_bytes(&PostcardCodec).unwrap(), from)
        .await
        .unwrap();
    tokio::time::sleep(ms(10)).await;
    assert!(!second.is_finished(), "neither answered the new request");
    assert_eq!(client.stats().auth_failed, 2, "{:?}", client.stats());
    raw.send_to(&answer(&request2, "genuine"), from)
        .await
        .unwrap();
    let reply = within(WAIT, "the genuine reply", second).await;
    assert_eq!(reply.unwrap().unwrap().content().as_ref(), b"genuine");
    client.shutdown();
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_leave_fails_at_once() {
    let (client, _) = serving(Router::new()).await;
    let t0 = Instant::now();
    // The socket refuses the destination (UDP port 0 is EINVAL on Linux).
    let nowhere: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let e = client.request(nowhere, URI, "").await.unwrap_err();
    assert!(matches!(e, RequestError::Send(SendError::Io(_))), "{e:?}");
    let e = client
        .start_call(nowhere, req(), &CallOptions::new().retry(2))
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Send(SendError::Io(_))), "{e:?}");
    // Larger than a frame can be.
    let big = Message::new(MessageType::REQUEST_URI, URI, vec![0u8; 70_000]);
    let e = client
        .start_call("127.0.0.1:9".parse().unwrap(), big, &CallOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Send(SendError::Encode(_))),
        "{e:?}"
    );
    assert_eq!(t0.elapsed(), Duration::ZERO, "at once");
    assert!(client.request_stats() == netaio::RequestStats::default());
    // A stopped node.
    client.shutdown();
    tokio::time::sleep(ms(10)).await;
    let e = client
        .start_call("127.0.0.1:9".parse().unwrap(), req(), &CallOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Send(SendError::Stopped)), "{e:?}");
    assert_eq!(e.to_string(), "the node has stopped");
}
