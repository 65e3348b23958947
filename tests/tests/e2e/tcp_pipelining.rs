//! Pipelining: many frames on one connection are answered in order, and many concurrent requests on
//! one `Connection`, all to the same uri, each get their own reply (the Python library matched replies
//! by uri alone, so concurrent requests to one uri could take each other's replies).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use netaio::codec::FrameCodec;
use netaio::message::PostcardCodec;
use netaio::router::Context;
use netaio::{Message, MessageType, Router, TcpClient};
use netaio_tests::{ECHO, WAIT, echo_router, start, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::codec::Decoder;

const FRAMES: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_pipelined_frames_on_one_connection_are_answered_in_order() {
    let server = start(echo_router()).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();

    // The writer sends every frame without waiting for any reply, cut into chunks that do not line up
    // with frame boundaries, so the server also reassembles frames split across reads.
    let writer = tokio::spawn(async move {
        let mut all = BytesMut::new();
        for i in 0..FRAMES {
            let msg = Message::new(MessageType::REQUEST_URI, ECHO, format!("seq-{i:04}"));
            msg.encode(&PostcardCodec, &mut all).unwrap();
        }
        for chunk in all.chunks(777) {
            wr.write_all(chunk).await.unwrap();
        }
        wr
    });

    let reader = tokio::spawn(async move {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        let mut seen = 0usize;
        while seen < FRAMES {
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                let msg = frame.decode(&PostcardCodec).unwrap();
                assert_eq!(msg.message_type, MessageType::RESPOND_URI);
                assert_eq!(
                    msg.content().as_ref(),
                    format!("seq-{seen:04}").as_bytes(),
                    "reply {seen} out of order"
                );
                seen += 1;
            }
            if seen < FRAMES {
                let n = rd.read_buf(&mut buf).await.unwrap();
                assert!(n > 0, "server closed after {seen} replies");
            }
        }
        assert!(buf.is_empty(), "more replies than requests");
        seen
    });

    let wr = within(WAIT * 2, "the writer", writer).await.unwrap();
    let seen = within(WAIT * 2, "1,000 replies", reader).await.unwrap();
    assert_eq!(seen, FRAMES);
    drop(wr);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_requests_to_one_uri_each_get_their_own_reply() {
    let server = start(echo_router()).await;
    let client = TcpClient::new();
    let conn = client.connect(server.addr).await.unwrap();

    let mut tasks = JoinSet::new();
    for i in 0..100 {
        let conn = conn.clone();
        tasks.spawn(async move {
            let content = format!("caller {i}");
            let reply = conn.request(ECHO, content.clone()).await.unwrap();
            assert_eq!(reply.content().as_ref(), content.as_bytes());
            i
        });
    }
    let mut done = Vec::new();
    within(WAIT * 2, "100 replies", async {
        while let Some(r) = tasks.join_next().await {
            done.push(r.unwrap());
        }
    })
    .await;
    done.sort_unstable();
    assert_eq!(done, (0..100).collect::<Vec<_>>());
    conn.close().await;
    server.stop().await;
}

/// The server holds every request and then answers them all in reverse order, out of band. Each
/// caller must still get the reply to its own request: replies are matched by request id, not by
/// uri or by order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_in_reverse_order_reach_their_own_callers() {
    const N: usize = 100;
    type Held = Arc<Mutex<Vec<(u64, Context, bytes::Bytes)>>>;
    let held: Held = Arc::new(Mutex::new(Vec::new()));

    async fn hold(
        msg: Message,
        ctx: Context,
        netaio::router::State(held): netaio::router::State<Held>,
    ) {
        let ready = {
            let mut h = held.lock().unwrap();
            h.push((msg.request_id().unwrap(), ctx, msg.content().clone()));
            if h.len() == N {
                std::mem::take(&mut *h)
            } else {
                Vec::new()
            }
        };
        for (rid, ctx, content) in ready.into_iter().rev() {
            let mut reply = Message::respond("same", content);
            reply.set_reply_ref(rid);
            ctx.send(&reply).await.unwrap();
        }
    }
    let router = Router::new()
        .on((MessageType::REQUEST_URI, "same"), hold)
        .with_state(held.clone());
    let server = start(router).await;
    let client = TcpClient::builder().request_timeout(WAIT).build();
    let conn = client.connect(server.addr).await.unwrap();

    let mut tasks = JoinSet::new();
    for i in 0..N {
        let conn = conn.clone();
        tasks.spawn(async move {
            let content = format!("mine-{i}");
            let reply = conn.request("same", content.clone()).await.unwrap();
            assert_eq!(reply.content().as_ref(), content.as_bytes(), "caller {i}");
        });
    }
    within(WAIT * 2, "100 reversed replies", async {
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    })
    .await;
    assert!(held.lock().unwrap().is_empty());
    conn.close().await;
    server.stop().await;
}

/// 300 pipelined requests whose 60 KB replies (18 MB in all) are far more than the server's write
/// buffer limit and the socket buffers: the server pauses reading while its replies back up and
/// resumes as they drain, and every reply arrives whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_beyond_the_write_buffer_limit_all_arrive_in_order() {
    const REQUESTS: usize = 300;
    const PAD: usize = 60_000;
    let router = Router::new().on(
        (MessageType::REQUEST_URI, "big"),
        |msg: Message| async move {
            let mut content = msg.content().to_vec();
            content.resize(content.len() + PAD, b'x');
            Message::respond("big", content)
        },
    );
    let server = start(router).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut all = BytesMut::new();
    for i in 0..REQUESTS {
        Message::new(MessageType::REQUEST_URI, "big", format!("{i:03}"))
            .encode(&PostcardCodec, &mut all)
            .unwrap();
    }
    within(
        WAIT,
        "writing every request before reading",
        wr.write_all(&all),
    )
    .await
    .unwrap();
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut got = 0;
    within(WAIT * 2, "every big reply", async {
        while got < REQUESTS {
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                let msg = frame.decode(&PostcardCodec).unwrap();
                assert_eq!(msg.content().len(), 3 + PAD);
                assert_eq!(&msg.content()[..3], format!("{got:03}").as_bytes());
                got += 1;
            }
            if got < REQUESTS {
                assert!(
                    rd.read_buf(&mut buf).await.unwrap() > 0,
                    "closed after {got}"
                );
            }
        }
    })
    .await;
    drop(wr);
    server.stop().await;
}

#[tokio::test]
async fn the_reply_reference_is_the_request_id_as_sent() {
    let server = start(echo_router()).await;
    let mut raw = netaio_tests::RawConn::connect(server.addr).await;
    // Minimal, with leading zeros (tolerated), and the longest form: echoed byte for byte.
    for (wire, id) in [
        (&b"\x2a"[..], 42u64),
        (&b"\x00\x00\x2a"[..], 42),
        (&b"\xff\xff\xff\xff\xff\xff\xff\xff"[..], u64::MAX),
    ] {
        let mut msg = Message::new(MessageType::REQUEST_URI, ECHO, "x");
        msg.auth.insert(netaio::message::fields::REQUEST_ID, wire);
        let reply = raw.round_trip(&msg).await;
        assert_eq!(reply.message_type, MessageType::RESPOND_URI);
        assert_eq!(
            reply
                .auth
                .get(netaio::message::fields::REPLY_REF)
                .map(|b| &b[..]),
            Some(wire)
        );
        assert_eq!(reply.reply_ref(), Some(id));
    }
    // An id that is not 1 to 8 bytes is no request id: no reply reference.
    let mut msg = Message::new(MessageType::REQUEST_URI, ECHO, "x");
    msg.auth
        .insert(netaio::message::fields::REQUEST_ID, vec![1u8; 9]);
    let reply = raw.round_trip(&msg).await;
    assert_eq!(reply.reply_ref(), None);
    assert!(reply.auth.get(netaio::message::fields::REPLY_REF).is_none());
    server.stop().await;
}
