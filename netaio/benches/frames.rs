//! Frame encode / decode at 64 B and 60 kB, and router dispatch (select among a few dozen routes;
//! a full handler call).
//!
//! `cargo bench -p netaio --bench frames` (add `-- --quick` for a short run). The load
//! generator (`bench/`, see BENCHMARKS.md) measures the same code end to end over sockets.

// A benchmark that cannot encode or dispatch is broken: panicking is the right answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use netaio::codec::FrameCodec;
use netaio::message::PostcardCodec;
use netaio::router::{BoxedHandler, Context, Request, Router};
use netaio::{Message, MessageType};
use tokio_util::codec::Decoder;

const SIZES: [(usize, &str); 2] = [(64, "64B"), (60_000, "60kB")];

/// A request as a client sends it: uri `echo`, the content, a request id.
fn request(size: usize) -> Message {
    let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut m = Message::new(MessageType::REQUEST_URI, "echo", content);
    m.set_request_id(12_345);
    m
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for (size, label) in SIZES {
        let msg = request(size);
        let frame = msg.to_bytes(&PostcardCodec).unwrap();
        g.throughput(Throughput::Bytes(frame.len() as u64));
        // Encode into a reused buffer, as the transports do (no allocation).
        let mut buf = BytesMut::with_capacity(frame.len());
        g.bench_with_input(BenchmarkId::new("encode", label), &msg, |b, msg| {
            b.iter(|| {
                buf.clear();
                black_box(msg).encode(&PostcardCodec, &mut buf).unwrap();
            })
        });
        // Decode a whole frame (header, checksum, body, auth block); zero-copy slices.
        g.bench_with_input(BenchmarkId::new("decode", label), &frame, |b, frame| {
            b.iter(|| Message::decode(black_box(frame.clone()), &PostcardCodec).unwrap())
        });
        // Split the frame off a read buffer with the stream codec, then decode it.
        let mut codec = FrameCodec::new();
        g.bench_with_input(
            BenchmarkId::new("codec_decode", label),
            &frame,
            |b, frame| {
                b.iter_batched(
                    || BytesMut::from(&frame[..]),
                    |mut rbuf| {
                        let f = codec.decode(&mut rbuf).unwrap().unwrap();
                        f.decode(&PostcardCodec).unwrap()
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    g.finish();
}

/// 32 (type, uri) routes over two types, 8 type-only routes and a fallback.
fn router() -> Router {
    async fn echo(msg: Message) -> Message {
        Message::respond(msg.uri().clone(), msg.content().clone())
    }
    let mut r = Router::new();
    for i in 0..16 {
        r = r
            .on(
                (MessageType::REQUEST_URI, format!("service/method-{i}")),
                echo,
            )
            .on((MessageType::PUBLISH_URI, format!("topic/{i}")), echo);
    }
    for t in [30, 31, 32, 33, 34, 35, 36, 37] {
        r = r.on(MessageType::custom(t + 100), echo);
    }
    r.on((MessageType::REQUEST_URI, "echo"), echo)
        .fallback(|| async { Message::not_found() })
}

/// Run a handler whose future completes at once (the benchmark's handlers never wait).
fn run_now(handler: &BoxedHandler, req: Request) -> Option<Message> {
    let mut fut = pin!(handler.call(req));
    match fut
        .as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
    {
        Poll::Ready(r) => r,
        Poll::Pending => panic!("benchmark handlers complete at once"),
    }
}

fn dispatch(c: &mut Criterion) {
    let router = router();
    assert_eq!(router.len(), 41);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let ctx = Context::detached(peer);
    let mut g = c.benchmark_group("router");
    let hit = Bytes::from_static(b"service/method-7");
    let miss = Bytes::from_static(b"service/unknown");
    g.bench_function("select_uri", |b| {
        b.iter(|| {
            router
                .handler_for(MessageType::REQUEST_URI, black_box(&hit), peer)
                .unwrap()
        })
    });
    g.bench_function("select_type", |b| {
        b.iter(|| {
            router
                .handler_for(MessageType::custom(133), black_box(&hit), peer)
                .unwrap()
        })
    });
    g.bench_function("select_fallback", |b| {
        b.iter(|| {
            router
                .handler_for(MessageType::REQUEST_URI, black_box(&miss), peer)
                .unwrap()
        })
    });
    // Select and run the echo handler on a 64-byte request: extraction, the boxed future, the
    // reply. What a server adds per message on top of decoding and encoding.
    let msg = request(64);
    g.bench_function("call_echo_64B", |b| {
        b.iter_batched(
            || msg.clone(),
            |m| {
                let h = router.handler_for(m.message_type, m.uri(), peer).unwrap();
                run_now(
                    h,
                    Request {
                        message: m,
                        ctx: ctx.clone(),
                    },
                )
                .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = frames, dispatch
}
criterion_main!(benches);
