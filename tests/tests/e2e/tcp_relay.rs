//! Relays on loopback (issue 14): a peer reserves its id at a relay, another calls it by id
//! through the relay and gets its reply; an unknown or departed id is "no route"; the inner
//! frame stays sealed end to end (X25519 + Ed25519 inner plugins); the relay's limits refuse a
//! sender above its rate while another is served, and a recipient that never reads does not
//! make the relay grow past its per-recipient bound; the inner frame is forwarded byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use netaio::peer::Peer;
use netaio::plugin::{Plugins, SendOptions};
use netaio::relay::{Rate, Relay, RelayConfig, RelayRefusal, ReserveError};
use netaio::router::Route;
use netaio::{CallOptions, Connection, Message, MessageType, RequestError, Router, TcpClient};
use netaio_asymmetric::{AsymmetricPeerPlugin, Ed25519Auth, Identity, X25519Cipher};
use netaio_tests::{TestServer, WAIT, start, start_with, within};

/// A relay with `config` on 127.0.0.1.
async fn relay(config: RelayConfig) -> (TestServer, Relay) {
    let relay = Relay::new(config);
    let server = start(Router::new().merge(relay.router())).await;
    (server, relay)
}

/// The service behind the relay: answers `hello` with `hello, <content>`, counting calls.
fn service(count: Arc<AtomicUsize>) -> Router {
    Router::new().on((MessageType::REQUEST_URI, "hello"), move |m: Message| {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            let mut text = b"hello, ".to_vec();
            text.extend_from_slice(m.content());
            Message::respond("hello", text)
        }
    })
}

fn hello(who: &str) -> Message {
    Message::new(MessageType::REQUEST_URI, "hello", who.to_owned())
}

/// A client connection to `addr` with `router`, reserving `id` when given.
async fn peer_at(
    addr: std::net::SocketAddr,
    router: Router,
    id: Option<&str>,
) -> (TcpClient, Connection) {
    let client = TcpClient::builder().router(router).build();
    let conn = client.connect(addr).await.unwrap();
    if let Some(id) = id {
        let limits = conn.reserve(id.to_owned()).await.unwrap();
        assert_eq!(limits.reservation_secs, 3600);
    }
    (client, conn)
}

#[tokio::test]
async fn a_peer_is_called_by_id_through_the_relay_with_and_without_a_reservation() {
    let (server, relay) = relay(RelayConfig::default()).await;
    let count = Arc::new(AtomicUsize::new(0));
    let (_c, _c_conn) = peer_at(server.addr, service(count.clone()), Some("node-c")).await;
    // A reserved too: C answers A by id.
    let (_a, a) = peer_at(server.addr, Router::new(), Some("node-a")).await;
    let reply = within(
        WAIT,
        "the reply",
        a.call_via_relay(&Peer::new("node-c"), hello("a")),
    )
    .await
    .unwrap();
    assert_eq!(reply.content().as_ref(), b"hello, a");
    // B without a reservation: C answers on a circuit. Several calls in flight at once.
    let (_b, b) = peer_at(server.addr, Router::new(), None).await;
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                b.call_via_relay(&Peer::new("node-c"), hello(&format!("b{i}")))
                    .await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for c in calls {
        replies.push(within(WAIT, "a reply", c).await.unwrap());
    }
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(r.unwrap().content(), &Bytes::from(format!("hello, b{i}")));
    }
    assert_eq!(count.load(Ordering::SeqCst), 6);
    let stats = relay.stats();
    assert_eq!(
        (stats.reservations, stats.circuits, stats.relayed),
        (2, 1, 12)
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_or_departed_peer_is_no_route_at_once() {
    let (server, relay) = relay(RelayConfig::default()).await;
    let count = Arc::new(AtomicUsize::new(0));
    let (c, c_conn) = peer_at(server.addr, service(count.clone()), Some("node-c")).await;
    let (_a, a) = peer_at(server.addr, Router::new(), None).await;
    let opts = CallOptions::new().timeout(Duration::from_secs(30));
    let e = within(
        WAIT,
        "the refusal",
        a.start_call_via_relay(&Peer::new("nobody"), hello("a"), &opts),
    )
    .await
    .unwrap_err();
    assert_eq!(
        RelayRefusal::from_error(&e),
        Some(RelayRefusal::NoRoute),
        "{e:?}"
    );
    assert!(matches!(e, RequestError::NotFound(_)));
    within(
        WAIT,
        "a reply",
        a.call_via_relay(&Peer::new("node-c"), hello("a")),
    )
    .await
    .unwrap();
    // C leaves: its reservation ends with its connection.
    c_conn.close().await;
    drop(c);
    within(WAIT, "the reservation to end", async {
        while relay.stats().reservations > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let e = within(
        WAIT,
        "the refusal",
        a.start_call_via_relay(&Peer::new("node-c"), hello("a"), &opts),
    )
    .await
    .unwrap_err();
    assert_eq!(RelayRefusal::from_error(&e), Some(RelayRefusal::NoRoute));
    // The id is free again for another connection.
    let (_c2, _c2_conn) = peer_at(server.addr, service(count.clone()), Some("node-c")).await;
    server.stop().await;
}

#[tokio::test]
async fn a_reserved_id_is_bound_to_its_connection() {
    let (server, _relay) = relay(RelayConfig::default()).await;
    let (_c, _c_conn) = peer_at(server.addr, Router::new(), Some("node-c")).await;
    let (_x, x) = peer_at(server.addr, Router::new(), None).await;
    assert!(matches!(
        x.reserve("node-c").await,
        Err(ReserveError::Refused(RelayRefusal::Taken))
    ));
    server.stop().await;
}

fn sealed(id: &Identity) -> Plugins {
    Plugins::new()
        .cipher(X25519Cipher::new(id))
        .auth(Ed25519Auth::new(id))
}

#[tokio::test]
async fn the_inner_frame_is_sealed_end_to_end() {
    let (server, relay) = relay(RelayConfig::default()).await;
    let (ida, idc) = (Identity::generate(), Identity::generate());
    let (pa, pc) = (ida.peer("node-a").unwrap(), idc.peer("node-c").unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let c_router = Router::new().route(
        Route::on((MessageType::REQUEST_URI, "secret"), move |m: Message| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut text = b"got ".to_vec();
                text.extend_from_slice(m.content());
                Message::respond("secret", text)
            }
        })
        .with_inner(sealed(&idc)),
    );
    let client = |local: Peer, router: Router| {
        TcpClient::builder()
            .router(router)
            .peer_plugin(AsymmetricPeerPlugin)
            .local_peer(local)
            .build()
    };
    let c = client(pc.clone(), c_router);
    // Each knows the other's record (keys) by id, as a directory would give it.
    c.peers().observe(pa.clone(), server.addr).unwrap();
    let c_conn = c.connect(server.addr).await.unwrap();
    c_conn.reserve("node-c").await.unwrap();
    let a = client(pa.clone(), Router::new());
    a.peers().observe(pc.clone(), server.addr).unwrap();
    let a_conn = a.connect(server.addr).await.unwrap();
    a_conn.reserve("node-a").await.unwrap();
    let opts = CallOptions::new().inner(sealed(&ida));
    let msg = Message::new(MessageType::REQUEST_URI, "secret", "the plan");
    let reply = within(
        WAIT,
        "the reply",
        a_conn.start_call_via_relay(&pc, msg, &opts),
    )
    .await
    .unwrap();
    assert_eq!(reply.content().as_ref(), b"got the plan");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // Sealed for someone else (A's key for C replaced by B's): C cannot open it.
    let idb = Identity::generate();
    let wrong = idb.peer("node-c").unwrap();
    let msg = Message::new(MessageType::REQUEST_URI, "secret", "x");
    let e = a_conn
        .start_call_via_relay(
            &wrong,
            msg,
            &opts.clone().timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    assert_eq!(count.load(Ordering::SeqCst), 1, "C never ran its handler");
    assert!(relay.stats().relayed >= 3);
    server.stop().await;
}

#[tokio::test]
async fn a_sender_above_its_rate_is_refused_while_another_is_served() {
    let config =
        RelayConfig::default().envelope_rate_per_sender(Rate::new(10, Duration::from_secs(3600)));
    let (server, relay) = relay(config).await;
    let count = Arc::new(AtomicUsize::new(0));
    let (_c, _cc) = peer_at(server.addr, service(count.clone()), Some("node-c")).await;
    let (_a, a) = peer_at(server.addr, Router::new(), Some("node-a")).await;
    let (_b, b) = peer_at(server.addr, Router::new(), Some("node-b")).await;
    let c = Peer::new("node-c");
    // A spends its 10 envelopes (a recipient's replies count against the recipient's rate).
    let note = Message::new(MessageType::NOTIFY_URI, "note", "x");
    for _ in 0..10 {
        a.send_via_relay(&c, &note, &SendOptions::default())
            .await
            .unwrap();
    }
    for i in 0..5 {
        let e = within(
            WAIT,
            "a refusal",
            a.call_via_relay(&c, hello(&i.to_string())),
        )
        .await
        .unwrap_err();
        assert_eq!(
            RelayRefusal::from_error(&e),
            Some(RelayRefusal::RateLimited),
            "{e:?}"
        );
    }
    // B is served meanwhile.
    let r = within(WAIT, "B's reply", b.call_via_relay(&c, hello("b")))
        .await
        .unwrap();
    assert_eq!(r.content().as_ref(), b"hello, b");
    assert_eq!(relay.stats().rate_limited, 5);
    assert_eq!(count.load(Ordering::SeqCst), 1, "only B's call reached C");
    server.stop().await;
}

#[tokio::test]
async fn a_recipient_that_never_reads_does_not_grow_the_relay() {
    const QUEUE_BYTES: usize = 256 * 1024;
    const SERVER_QUEUE_BYTES: usize = 512 * 1024;
    let relay = Relay::new(
        RelayConfig::default()
            .queue_bytes(QUEUE_BYTES)
            .byte_rate_per_sender(Rate::per_second(1 << 40))
            .byte_rate_per_ip(Rate::per_second(1 << 40))
            .envelope_rate_per_sender(Rate::per_second(1 << 20))
            .envelope_rate_per_ip(Rate::per_second(1 << 20)),
    );
    let server = start_with(
        netaio::TcpServer::builder()
            .router(Router::new().merge(relay.router()))
            .send_queue_bytes(SERVER_QUEUE_BYTES)
            .write_timeout(Duration::from_secs(600)),
    )
    .await;
    // C reserves with a raw socket and never reads again.
    let mut c = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let codec = netaio::codec::FrameCodec::new();
    let mut reserve = Message::new(netaio::relay::RESERVE, "node-c", "");
    reserve.set_request_id(1);
    tokio::io::AsyncWriteExt::write_all(&mut c, &codec.to_frame(&reserve).unwrap())
        .await
        .unwrap();
    within(WAIT, "the reservation", async {
        while relay.stats().reservations == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let (_a, a) = peer_at(server.addr, Router::new(), Some("node-a")).await;
    let rss_before = rss();
    let big = Message::new(MessageType::NOTIFY_URI, "blob", vec![7u8; 60_000]);
    // 2,000 envelopes of 60 kB: 120 MB offered to a recipient that reads nothing.
    for _ in 0..2000 {
        a.send_via_relay(&Peer::new("node-c"), &big, &SendOptions::default())
            .await
            .unwrap();
    }
    // Everything A sent has been read by the relay once a call through it is answered.
    let r = a
        .call(Message::new(netaio::relay::RESERVE, "node-a", ""))
        .await;
    assert!(r.is_ok(), "{r:?}");
    let stats = relay.stats();
    assert!(stats.queued_bytes <= QUEUE_BYTES, "{stats:?}");
    assert!(stats.queue_full > 1000, "most envelopes refused: {stats:?}");
    let held = server
        .handle
        .connections()
        .into_iter()
        .map(|i| server.handle.queued_bytes(i.id).unwrap_or(0))
        .max()
        .unwrap_or(0);
    assert!(held <= SERVER_QUEUE_BYTES + 70_000, "send queue {held}");
    let grown = rss().saturating_sub(rss_before);
    assert!(
        grown < 48 << 20,
        "RSS grew by {grown} bytes for 120 MB offered"
    );
    drop(c);
    server.stop().await;
}

/// The resident set of this process, in bytes (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// What a tampering relay does to each envelope it is given (it sits in front of a real relay,
/// so that the real one forwards what it made of the envelopes).
#[derive(Clone, Copy)]
enum Tamper {
    /// Flip one byte of the inner frame's content, recomputing its checksum (a clever relay:
    /// the frame still decodes).
    Flip,
    /// Forward every envelope twice.
    Replay,
}

/// A proxy in front of `relay` applying `tamper` to the envelopes from its one client.
async fn tampering(relay: std::net::SocketAddr, tamper: Tamper) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::codec::Decoder;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (down, _) = listener.accept().await.unwrap();
        let up = tokio::net::TcpStream::connect(relay).await.unwrap();
        let (mut down_r, mut down_w) = down.into_split();
        let (mut up_r, mut up_w) = up.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut up_r, &mut down_w).await });
        let codec = netaio::codec::FrameCodec::new();
        let auth = netaio::message::PostcardCodec;
        let mut buf = bytes::BytesMut::new();
        let mut decoder = codec.clone();
        loop {
            if down_r.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                let msg = frame.decode(&auth).unwrap();
                if msg.message_type != netaio::relay::FORWARD {
                    up_w.write_all(&codec.to_frame(&msg).unwrap())
                        .await
                        .unwrap();
                    continue;
                }
                match tamper {
                    Tamper::Flip => {
                        let mut inner_buf = bytes::BytesMut::from(msg.content().as_ref());
                        let inner = codec.clone().decode(&mut inner_buf).unwrap().unwrap();
                        let inner = inner.decode(&auth).unwrap();
                        let mut content = inner.content().to_vec();
                        let mid = content.len() / 2;
                        content[mid] ^= 0x01;
                        let inner = inner.with_content(content);
                        let env = msg.clone().with_content(codec.to_frame(&inner).unwrap());
                        up_w.write_all(&codec.to_frame(&env).unwrap())
                            .await
                            .unwrap();
                    }
                    Tamper::Replay => {
                        let f = codec.to_frame(&msg).unwrap();
                        up_w.write_all(&f).await.unwrap();
                        up_w.write_all(&f).await.unwrap();
                    }
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_relay_that_alters_or_replays_envelopes_gets_them_refused() {
    for tamper in [Tamper::Flip, Tamper::Replay] {
        let (server, relay) = relay(RelayConfig::default()).await;
        let (ida, idc) = (Identity::generate(), Identity::generate());
        let (pa, pc) = (ida.peer("node-a").unwrap(), idc.peer("node-c").unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let c_router = Router::new().route(
            Route::on((MessageType::REQUEST_URI, "secret"), move |_m: Message| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    Message::respond("secret", "ok")
                }
            })
            .with_inner(sealed(&idc)),
        );
        let client = |local: Peer, router: Router| {
            TcpClient::builder()
                .router(router)
                .peer_plugin(AsymmetricPeerPlugin)
                .local_peer(local)
                .build()
        };
        let c = client(pc.clone(), c_router);
        c.peers().observe(pa.clone(), server.addr).unwrap();
        let c_conn = c.connect(server.addr).await.unwrap();
        c_conn.reserve("node-c").await.unwrap();
        let a = client(pa.clone(), Router::new());
        a.peers().observe(pc.clone(), server.addr).unwrap();
        let a_conn = a
            .connect(tampering(server.addr, tamper).await)
            .await
            .unwrap();
        a_conn.reserve("node-a").await.unwrap();
        let opts = CallOptions::new()
            .inner(sealed(&ida))
            .timeout(Duration::from_millis(500));
        for _ in 0..3 {
            let msg = Message::new(MessageType::REQUEST_URI, "secret", "the plan");
            let r = a_conn.start_call_via_relay(&pc, msg, &opts).await;
            match tamper {
                Tamper::Flip => assert!(matches!(r, Err(RequestError::Timeout(_))), "{r:?}"),
                Tamper::Replay => assert!(r.is_ok(), "{r:?}"),
            }
        }
        // Altered: C never ran its handler. Replayed: each request ran once, its copy refused.
        let expected = match tamper {
            Tamper::Flip => 0,
            Tamper::Replay => 3,
        };
        assert_eq!(count.load(Ordering::SeqCst), expected);
        let relayed = relay.stats().relayed;
        match tamper {
            Tamper::Flip => assert_eq!(
                relayed,
                3,
                "the relay did forward them: {:?}",
                relay.stats()
            ),
            Tamper::Replay => assert_eq!(relayed, 9, "6 requests (3 copies) and 3 replies"),
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn envelopes_that_fail_the_relays_auth_are_never_forwarded() {
    use netaio::plugin::HmacAuth;
    let relay = Relay::new(RelayConfig::default());
    let server = start_with(
        netaio::TcpServer::builder()
            .router(Router::new().merge(relay.router()))
            .auth(HmacAuth::new(b"relay key")),
    )
    .await;
    let count = Arc::new(AtomicUsize::new(0));
    let c = TcpClient::builder()
        .router(service(count.clone()))
        .auth(HmacAuth::new(b"relay key"))
        .build();
    let c_conn = c.connect(server.addr).await.unwrap();
    c_conn.reserve("node-c").await.unwrap();
    // A keyed sender is served.
    let keyed = TcpClient::builder()
        .auth(HmacAuth::new(b"relay key"))
        .build();
    let k = keyed.connect(server.addr).await.unwrap();
    let r = within(
        WAIT,
        "the reply",
        k.call_via_relay(&Peer::new("node-c"), hello("k")),
    )
    .await
    .unwrap();
    assert_eq!(r.content().as_ref(), b"hello, k");
    // A sender without the key: each envelope refused by the server before the relay sees it,
    // counted against its connection, which is closed after the third refusal in a row.
    let (_x, x) = peer_at(server.addr, Router::new(), None).await;
    for _ in 0..3 {
        let e = within(
            WAIT,
            "the refusal",
            x.call_via_relay(&Peer::new("node-c"), hello("x")),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    }
    within(WAIT, "the connection to close", async {
        while x.is_connected() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "only the keyed call reached C"
    );
    let stats = relay.stats();
    assert_eq!((stats.relayed, stats.refused), (2, 0), "{stats:?}");
    server.stop().await;
}

/// One frame from a raw socket: the frame's bytes and its message (checksum checked).
async fn read_frame(s: &mut tokio::net::TcpStream) -> (Bytes, Message) {
    use netaio::message::{Header, PostcardCodec};
    use tokio::io::AsyncReadExt;
    let mut frame = vec![0u8; Header::LEN];
    within(WAIT, "a frame", s.read_exact(&mut frame))
        .await
        .unwrap();
    let len = Header::from_bytes(&frame).unwrap().frame_len();
    frame.resize(len, 0);
    s.read_exact(&mut frame[Header::LEN..]).await.unwrap();
    let frame = Bytes::from(frame);
    let msg = Message::decode(frame.clone(), &PostcardCodec).unwrap();
    (frame, msg)
}

#[tokio::test]
async fn the_inner_frame_arrives_byte_identical_in_a_well_formed_deliver() {
    use netaio::codec::FrameCodec;
    use netaio::relay::{DELIVER, RESERVE, RelayAddress};
    use tokio::io::AsyncWriteExt;
    // The recipient reads raw frames: what the relay writes, exactly.
    let (server, relay) = relay(RelayConfig::default()).await;
    let codec = FrameCodec::new();
    let mut raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut reserve = Message::new(RESERVE, "raw-c", Bytes::new());
    reserve.set_request_id(1);
    raw.write_all(&codec.to_frame(&reserve).unwrap())
        .await
        .unwrap();
    assert_eq!(read_frame(&mut raw).await.1.message_type, MessageType::OK);
    let (_a, a) = peer_at(server.addr, Router::new(), Some("node-a")).await;
    let from = RelayAddress::Peer(Bytes::from_static(b"node-a")).encode();
    for size in [0, 64, 60_000] {
        let mut msg = Message::new(MessageType::custom(99), "news", vec![0xa5; size]);
        msg.auth.insert("stamp", vec![size as u8; 8]);
        a.send_via_relay(&Peer::new("raw-c"), &msg, &SendOptions::default())
            .await
            .unwrap();
        // The sender sealed `msg` with no plugins: its inner frame is `msg`'s frame.
        let sealed = codec.to_frame(&msg).unwrap();
        let (frame, deliver) = read_frame(&mut raw).await;
        assert_eq!(deliver.message_type, DELIVER);
        assert_eq!(deliver.uri(), &from, "the sender's address");
        assert_eq!(deliver.content(), &sealed, "the inner frame, size {size}");
        let plain = codec
            .to_frame(&Message::new(DELIVER, from.clone(), sealed))
            .unwrap();
        assert_eq!(frame, plain, "the DELIVER's bytes, size {size}");
    }
    assert_eq!(relay.stats().relayed, 3);
    server.stop().await;
}

#[tokio::test]
async fn a_retried_relayed_request_runs_once_and_gets_the_cached_reply() {
    use netaio::codec::FrameCodec;
    use netaio::message::fields;
    use netaio::relay::{DELIVER, FORWARD, RelayAddress};
    use tokio::io::AsyncWriteExt;
    let (server, _relay) = relay(RelayConfig::default()).await;
    // C answers with the number of times its handler ran.
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let c_router = Router::new().on((MessageType::REQUEST_URI, "n"), move |_m: Message| {
        let seen = seen.clone();
        async move {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            Message::respond("n", n.to_string())
        }
    });
    let (_c, _cc) = peer_at(server.addr, c_router, Some("node-c")).await;
    // The sender, raw: the same request (id 5, marked at-most-once) sent twice, as a caller's
    // retry would, then another request id, and the first id from another sender.
    let codec = FrameCodec::new();
    let request = |rid: u64| {
        let mut inner = Message::new(MessageType::REQUEST_URI, "n", "");
        inner.set_request_id(rid);
        inner
            .auth
            .insert(fields::AT_MOST_ONCE, 60_000u32.to_be_bytes().to_vec());
        let to = RelayAddress::Peer(Bytes::from_static(b"node-c")).encode();
        codec
            .to_frame(&Message::new(FORWARD, to, codec.to_frame(&inner).unwrap()))
            .unwrap()
    };
    let answer = |m: Message| {
        assert_eq!(m.message_type, DELIVER, "{m:?}");
        let inner = Message::decode(m.content().clone(), codec.auth_codec()).unwrap();
        (
            inner.reply_ref().unwrap(),
            String::from_utf8(inner.content().to_vec()).unwrap(),
        )
    };
    let mut a = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    for rid in [5, 5, 6] {
        a.write_all(&request(rid)).await.unwrap();
    }
    assert_eq!(answer(read_frame(&mut a).await.1), (5, "1".into()));
    assert_eq!(
        answer(read_frame(&mut a).await.1),
        (5, "1".into()),
        "the cached reply"
    );
    assert_eq!(answer(read_frame(&mut a).await.1), (6, "2".into()));
    // Another sender's request 5 is its own.
    let mut b = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    b.write_all(&request(5)).await.unwrap();
    assert_eq!(answer(read_frame(&mut b).await.1), (5, "3".into()));
    assert_eq!(count.load(Ordering::SeqCst), 3);
    server.stop().await;
}
