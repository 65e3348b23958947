//! UdpNode on 127.0.0.1 and ::1 (each case runs on both): request/response, async handlers,
//! request ids, typed errors,
//! subscriptions, bad datagrams (never answered, counted, the node keeps serving), size refusal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use netaio::message::{MAX_URI_AND_CONTENT, PostcardCodec};
use netaio::plugin::{AeadCipher, HmacAuth};
use netaio::router::{Context, Route};
use netaio::udp::{UdpHandle, UdpNode, UdpNodeBuilder};
use netaio::{Message, MessageType, RequestError, Router, SendError};
use netaio_tests::{WAIT, within};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

fn router() -> Router {
    Router::new()
        .on(
            (MessageType::REQUEST_URI, "echo"),
            |m: Message| async move { Message::respond(m.uri().clone(), m.content().clone()) },
        )
        .on(
            (MessageType::REQUEST_URI, "slow"),
            |m: Message| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Message::respond(m.uri().clone(), m.content().clone())
            },
        )
        .on((MessageType::REQUEST_URI, "silent"), || async {})
        .on((MessageType::REQUEST_URI, "fail"), || async {
            Err::<Message, _>("boom")
        })
        .on(
            (MessageType::SUBSCRIBE_URI, "news"),
            |m: Message, ctx: Context| async move {
                ctx.subscribe(m.uri().clone()).unwrap();
                Message::new(MessageType::CONFIRM_SUBSCRIBE, m.uri().clone(), "")
            },
        )
}

struct Node {
    handle: UdpHandle,
    addr: SocketAddr,
    join: JoinHandle<()>,
}

impl Node {
    async fn stop(self) {
        self.handle.shutdown();
        within(WAIT, "the node to stop", self.join).await.unwrap();
    }
}

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Runs an async test body once on 127.0.0.1 and once on ::1.
macro_rules! both_families {
    ($body:ident: $v4:ident, $v6:ident) => {
        #[tokio::test]
        async fn $v4() {
            $body(V4).await;
        }
        #[tokio::test]
        async fn $v6() {
            $body(V6).await;
        }
    };
}

async fn start(builder: UdpNodeBuilder, ip: impl Into<IpAddr>) -> Node {
    let node = builder.address((ip.into(), 0)).bind().await.unwrap();
    let addr = node.local_addr();
    let handle = node.handle();
    Node {
        handle,
        addr,
        join: tokio::spawn(node.serve()),
    }
}

async fn start_plain(ip: IpAddr) -> Node {
    start(UdpNode::builder().router(router()), ip).await
}

async fn request_response(ip: IpAddr) {
    let server = start_plain(ip).await;
    let client = start(UdpNode::builder(), ip).await;
    let r = client
        .handle
        .request(server.addr, "echo", "hi")
        .await
        .unwrap();
    assert_eq!(r.message_type, MessageType::RESPOND_URI);
    assert_eq!(r.content().as_ref(), b"hi");
    let ok = client
        .handle
        .create(server.addr, "nope", "x")
        .await
        .unwrap_err();
    assert!(matches!(ok, RequestError::NotFound(_)), "{ok:?}");
    let e = client
        .handle
        .request(server.addr, "fail", "")
        .await
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Error(ref m) if m.content().as_ref() == b"boom"),
        "{e:?}"
    );
    client.stop().await;
    server.stop().await;
}

both_families!(request_response: request_response_on_ipv4, request_response_on_ipv6);

async fn async_handlers_and_concurrent_requests(ip: IpAddr) {
    let server = start_plain(ip).await;
    let client = start(UdpNode::builder(), ip).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let h = client.handle.clone();
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let uri = if i % 2 == 0 { "slow" } else { "echo" };
            (i, h.request(addr, uri, format!("n{i}")).await)
        }));
    }
    for t in tasks {
        let (i, r) = within(WAIT, "a reply", t).await.unwrap();
        assert_eq!(r.unwrap().content().as_ref(), format!("n{i}").as_bytes());
    }
    client.stop().await;
    server.stop().await;
}

both_families!(async_handlers_and_concurrent_requests: async_handlers_and_concurrent_requests_v4, async_handlers_and_concurrent_requests_v6);

#[tokio::test]
async fn a_request_without_reply_times_out() {
    let server = start_plain(V4).await;
    let client = start(
        UdpNode::builder().request_timeout(Duration::from_millis(150)),
        [127, 0, 0, 1],
    )
    .await;
    let e = client
        .handle
        .request(server.addr, "silent", "")
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    client.stop().await;
    server.stop().await;
}

async fn subscribers_get_notified(ip: IpAddr) {
    let server = start_plain(ip).await;
    let a = start(UdpNode::builder(), ip).await;
    let b = start(UdpNode::builder(), ip).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for n in [&a, &b] {
        let tx = tx.clone();
        let who = n.addr;
        n.handle
            .on((MessageType::NOTIFY_URI, "news"), move |m: Message| {
                let tx = tx.clone();
                async move {
                    tx.send((who, m.content().clone())).unwrap();
                }
            })
            .unwrap();
        let r = n
            .handle
            .call(
                server.addr,
                Message::new(MessageType::SUBSCRIBE_URI, "news", ""),
            )
            .await
            .unwrap();
        assert_eq!(r.message_type, MessageType::CONFIRM_SUBSCRIBE);
    }
    let mut subs = server.handle.subscribers("news");
    subs.sort();
    let mut expected = vec![a.addr, b.addr];
    expected.sort();
    assert_eq!(subs, expected);
    let sent = server
        .handle
        .notify(
            "news",
            &Message::new(MessageType::NOTIFY_URI, "news", "extra"),
        )
        .await
        .unwrap();
    assert_eq!(sent, 2);
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(within(WAIT, "a notification", rx.recv()).await.unwrap());
    }
    got.sort();
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), expected);
    assert!(got.iter().all(|g| g.1.as_ref() == b"extra"));
    assert!(server.handle.unsubscribe(a.addr, "news"));
    assert_eq!(server.handle.subscribers("news"), vec![b.addr]);
    for n in [a, b, server] {
        n.stop().await;
    }
}

both_families!(subscribers_get_notified: subscribers_get_notified_v4, subscribers_get_notified_v6);

fn frame(msg: &Message) -> BytesMut {
    let mut b = BytesMut::new();
    msg.encode(&PostcardCodec, &mut b).unwrap();
    b
}

/// Sends `datagram` from a raw socket and asserts that nothing comes back within 200 ms.
async fn assert_no_reply(target: SocketAddr, datagram: &[u8]) {
    let raw = UdpSocket::bind((target.ip(), 0)).await.unwrap();
    raw.send_to(datagram, target).await.unwrap();
    let mut buf = [0u8; 2048];
    let r = tokio::time::timeout(Duration::from_millis(200), raw.recv_from(&mut buf)).await;
    assert!(r.is_err(), "a bad datagram was answered: {:?}", r);
}

async fn assert_still_serves(node: &Node, client: &UdpHandle) {
    let r = client.request(node.addr, "echo", "still").await.unwrap();
    assert_eq!(r.content().as_ref(), b"still");
}

async fn bad_datagrams(ip: IpAddr) {
    let server = start_plain(ip).await;
    let client = start(UdpNode::builder(), ip).await;
    let good = frame(&Message::new(MessageType::REQUEST_URI, "echo", "x"));

    let mut bad_crc = good.clone();
    bad_crc[8] ^= 0xff;
    let mut junk = good.clone();
    junk.put_slice(b"junk");
    let mut bad_auth = BytesMut::new();
    bad_auth.put_u8(0);
    bad_auth.put_u16(3);
    bad_auth.put_u16(2);
    bad_auth.put_u32(crc32fast::hash(&[0, 0]));
    bad_auth.put_slice(&[0xff, 0xff, 0xff, 0, 0]);
    let mut short_body = BytesMut::new();
    short_body.put_u8(0);
    short_body.put_u16(0);
    short_body.put_u16(1);
    short_body.put_u32(crc32fast::hash(&[7]));
    short_body.put_u8(7);
    let cases: [(&str, &[u8]); 6] = [
        ("truncated header", &good[..5]),
        ("truncated body", &good[..good.len() - 2]),
        ("checksum", &bad_crc),
        ("trailing junk", &junk),
        ("garbage auth block", &bad_auth),
        ("body shorter than its uri length", &short_body),
    ];
    for (i, (what, datagram)) in cases.iter().enumerate() {
        assert_no_reply(server.addr, datagram).await;
        let stats = server.handle.stats();
        assert_eq!(
            stats.invalid,
            i as u64 + 1,
            "{what} was not counted as invalid"
        );
        assert_still_serves(&server, &client.handle).await;
    }
    client.stop().await;
    server.stop().await;
}

both_families!(bad_datagrams: bad_datagrams_get_no_reply_are_counted_and_the_node_keeps_serving_v4, bad_datagrams_get_no_reply_are_counted_and_the_node_keeps_serving_v6);

/// A route's inner plugins count what they refuse like the instance plugins do: a failed inner
/// auth check in `auth_failed`, a failed inner decryption in `decrypt_failed`.
#[tokio::test]
async fn inner_plugin_refusals_are_counted_by_kind() {
    use netaio::plugin::{Plugins, SendOptions};
    let inner = |mac: &[u8], key: &[u8]| {
        Plugins::new()
            .auth(HmacAuth::new(mac))
            .cipher(AeadCipher::new(key))
    };
    let server = start(
        UdpNode::builder().router(
            Router::new().route(
                Route::on(
                    (MessageType::REQUEST_URI, "inner"),
                    |m: Message| async move { Message::respond("inner", m.content().clone()) },
                )
                .with_inner(inner(b"mac", b"key")),
            ),
        ),
        [127, 0, 0, 1],
    )
    .await;
    let client = start(
        UdpNode::builder().request_timeout(Duration::from_millis(200)),
        [127, 0, 0, 1],
    )
    .await;
    let call = |plugins| {
        let (h, addr) = (client.handle.clone(), server.addr);
        async move {
            h.call_with(
                addr,
                Message::new(MessageType::REQUEST_URI, "inner", "x"),
                &SendOptions::new().inner(plugins),
            )
            .await
        }
    };
    let e = call(inner(b"wrong", b"key")).await.unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    assert_eq!(
        (
            server.handle.stats().auth_failed,
            server.handle.stats().decrypt_failed
        ),
        (1, 0)
    );
    let e = call(inner(b"mac", b"wrong")).await.unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    assert_eq!(
        (
            server.handle.stats().auth_failed,
            server.handle.stats().decrypt_failed
        ),
        (1, 1)
    );
    let r = call(inner(b"mac", b"key")).await.unwrap();
    assert_eq!(r.content().as_ref(), b"x");
    client.stop().await;
    server.stop().await;
}

async fn unauthenticated_or_undecryptable(ip: IpAddr) {
    let server = start(
        UdpNode::builder()
            .router(router())
            .auth(HmacAuth::new(b"right"))
            .cipher(AeadCipher::new(b"right")),
        ip,
    )
    .await;
    let client = start(
        UdpNode::builder()
            .auth(HmacAuth::new(b"right"))
            .cipher(AeadCipher::new(b"right")),
        ip,
    )
    .await;
    // No plugins at all: fails the auth check.
    assert_no_reply(
        server.addr,
        &frame(&Message::new(MessageType::REQUEST_URI, "echo", "x")),
    )
    .await;
    assert_eq!(server.handle.stats().auth_failed, 1);
    // Wrong secret: a node with other keys gets no answer, only its own timeout.
    let intruder = start(
        UdpNode::builder()
            .auth(HmacAuth::new(b"wrong"))
            .cipher(AeadCipher::new(b"wrong"))
            .request_timeout(Duration::from_millis(200)),
        ip,
    )
    .await;
    let e = intruder
        .handle
        .request(server.addr, "echo", "x")
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    assert_eq!(server.handle.stats().auth_failed, 2);
    // Right MAC, wrong cipher key: decryption fails, no answer.
    let half = start(
        UdpNode::builder()
            .auth(HmacAuth::new(b"right"))
            .cipher(AeadCipher::new(b"other"))
            .request_timeout(Duration::from_millis(200)),
        ip,
    )
    .await;
    let e = half
        .handle
        .request(server.addr, "echo", "x")
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    assert_eq!(server.handle.stats().decrypt_failed, 1);
    // And the node still serves the right key.
    assert_still_serves(&server, &client.handle).await;
    for n in [intruder, half, client, server] {
        n.stop().await;
    }
}

both_families!(unauthenticated_or_undecryptable: unauthenticated_or_undecryptable_datagrams_get_no_reply_v4, unauthenticated_or_undecryptable_datagrams_get_no_reply_v6);

#[tokio::test]
async fn frames_too_large_for_a_datagram_are_refused_at_send_time() {
    let server = start_plain(V4).await;
    let plain = start(UdpNode::builder(), [127, 0, 0, 1]).await;
    // The largest body fits in one IPv4 datagram without plugins…
    let big = vec![b'x'; MAX_URI_AND_CONTENT - 4];
    let r = plain
        .handle
        .request(server.addr, "echo", big.clone())
        .await
        .unwrap();
    assert_eq!(r.content().len(), big.len());
    // …and so does a body 8 bytes shorter with a default HMAC block (82 bytes: the frame is
    // exactly 65,507 bytes)…
    let fits = vec![b'x'; MAX_URI_AND_CONTENT - 4 - 8];
    let hmac = start(UdpNode::builder().auth(HmacAuth::new(b"k")), [127, 0, 0, 1]).await;
    hmac.handle
        .send(
            server.addr,
            &Message::new(MessageType::REQUEST_URI, "echo", fits.clone()),
        )
        .await
        .unwrap();
    // …but not one byte more: refused with a typed error, nothing silently dropped.
    let mut over = fits;
    over.push(b'x');
    let e = hmac
        .handle
        .send(
            server.addr,
            &Message::new(MessageType::REQUEST_URI, "echo", over),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SendError::Encode(netaio::message::EncodeError::FrameTooLarge {
                len: 65_508,
                max: 65_507
            })
        ),
        "{e:?}"
    );
    for n in [hmac, plain, server] {
        n.stop().await;
    }
}

#[tokio::test]
async fn datagrams_beyond_the_handler_limit_are_dropped_and_counted() {
    let running = Arc::new(AtomicUsize::new(0));
    let r2 = running.clone();
    let router = Router::new().on((MessageType::REQUEST_URI, "hold"), move || {
        let running = r2.clone();
        async move {
            running.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            Message::respond("hold", "")
        }
    });
    let server = start(
        UdpNode::builder().router(router).max_handlers(1),
        [127, 0, 0, 1],
    )
    .await;
    let client = start(UdpNode::builder(), [127, 0, 0, 1]).await;
    let first = {
        let h = client.handle.clone();
        let a = server.addr;
        tokio::spawn(async move { h.request(a, "hold", "1").await })
    };
    // Wait until the first handler runs, then send a second request: it is dropped.
    within(WAIT, "the first handler to start", async {
        while running.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    client
        .handle
        .send(
            server.addr,
            &Message::new(MessageType::REQUEST_URI, "hold", "2"),
        )
        .await
        .unwrap();
    within(WAIT, "the second datagram to be counted", async {
        while server.handle.stats().overloaded == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(first.await.unwrap().is_ok());
    assert_eq!(running.load(Ordering::SeqCst), 1);
    client.stop().await;
    server.stop().await;
}

async fn panicking_handler(ip: IpAddr) {
    let router = router()
        .on(
            (MessageType::REQUEST_URI, "boom"),
            |m: Message| async move {
                // Panics on the first poll: inside the node's receive loop.
                let first = m.content()[0];
                Message::respond("boom", vec![first])
            },
        )
        .on((MessageType::REQUEST_URI, "later"), || async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("after an await");
            #[allow(unreachable_code)]
            Message::respond("later", "")
        });
    let server = start(UdpNode::builder().router(router), ip).await;
    let client = start(
        UdpNode::builder().request_timeout(Duration::from_millis(200)),
        ip,
    )
    .await;
    for uri in ["boom", "later", "boom"] {
        let e = client
            .handle
            .request(server.addr, uri, "")
            .await
            .unwrap_err();
        assert!(matches!(e, RequestError::Timeout(_)), "{uri}: {e:?}");
        assert_still_serves(&server, &client.handle).await;
    }
    assert_eq!(
        server.handle.stats().panicked,
        2,
        "inline panics are counted"
    );
    client.stop().await;
    server.stop().await;
}

both_families!(panicking_handler: a_panicking_handler_does_not_stop_the_node_v4, a_panicking_handler_does_not_stop_the_node_v6);

/// One address cannot take the whole node's subscriptions: a per-subscriber limit applies
/// before the total one (the same rule as a TCP server's per-connection limit).
#[tokio::test]
async fn one_address_is_limited_before_the_node_is_full() {
    let node = start(
        UdpNode::builder()
            .max_subscriptions(2)
            .max_total_subscriptions(100),
        [127, 0, 0, 1],
    )
    .await;
    let a: SocketAddr = "127.0.0.1:1001".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:1002".parse().unwrap();
    node.handle.subscribe(a, "k1").unwrap();
    node.handle.subscribe(a, "k2").unwrap();
    assert_eq!(
        node.handle.subscribe(a, "k3").unwrap_err(),
        netaio::SubscribeError::Limit(2)
    );
    node.handle.subscribe(b, "k3").unwrap();
    assert_eq!(node.handle.subscribers("k3"), vec![b]);
    node.stop().await;
}

#[tokio::test]
async fn frames_too_large_for_an_ipv6_datagram_are_refused_at_send_time() {
    let server = start_plain(V6).await;
    let big = vec![b'x'; MAX_URI_AND_CONTENT - 4];
    // Each character of an HMAC field prefix adds 3 bytes (three field names): with 4 the frame
    // is 65,527 bytes and fits the IPv6 limit of 65,527 exactly; with 5 it is 65,530 and is
    // refused.
    let fits = start(
        UdpNode::builder().auth(HmacAuth::new(b"k").field_prefix("xxxx")),
        V6,
    )
    .await;
    fits.handle
        .send(
            server.addr,
            &Message::new(MessageType::REQUEST_URI, "echo", big.clone()),
        )
        .await
        .unwrap();
    let over = start(
        UdpNode::builder().auth(HmacAuth::new(b"k").field_prefix("xxxxx")),
        V6,
    )
    .await;
    let e = over
        .handle
        .send(
            server.addr,
            &Message::new(MessageType::REQUEST_URI, "echo", big),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SendError::Encode(netaio::message::EncodeError::FrameTooLarge {
                len: 65_530,
                max: 65_527
            })
        ),
        "{e:?}"
    );
    for n in [over, fits, server] {
        n.stop().await;
    }
}
