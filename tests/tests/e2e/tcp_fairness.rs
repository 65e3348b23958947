//! Fairness between connections: a peer that pipelines thousands of frames does not keep the
//! others waiting until its whole backlog is handled. The connection driver yields to other tasks
//! once it has used up the task's cooperative budget, so on a single-threaded runtime another
//! connection's request is served while the greedy connection's frames are still being handled.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use netaio::router::State;
use netaio::{Message, MessageType, Router};
use netaio_tests::{RawConn, WAIT, frame_of, start, within};
use tokio::net::{TcpSocket, TcpStream};

/// Frames in the greedy connection's backlog.
const N: usize = 5_000;

/// Shared by the handlers: how many of A's frames were handled, B's socket (written by A's first
/// handler call), and what B's handler saw.
#[derive(Clone, Default)]
struct Shared {
    handled: Arc<AtomicUsize>,
    b_writer: Arc<Mutex<Option<std::net::TcpStream>>>,
    seen_by_b: Arc<Mutex<Option<usize>>>,
}

fn probe() -> Message {
    Message::new(MessageType::REQUEST_URI, "probe", "b")
}

/// A's frames: counted, no reply. The first one makes client B send its request, so that B's
/// request is on the wire exactly when A's backlog starts being handled.
async fn greedy(_msg: Message, State(s): State<Shared>) {
    if s.handled.fetch_add(1, Ordering::SeqCst) == 0 {
        let w = s.b_writer.lock().unwrap().take().expect("B's socket");
        // A small frame on a fresh, empty socket: written whole at once (the socket is
        // non-blocking; a partial write would fail the test below, not hang it).
        std::io::Write::write_all(&mut &w, &frame_of(&probe())).unwrap();
    }
}

/// B's request: record how many of A's frames had been handled, then reply.
async fn probed(msg: Message, State(s): State<Shared>) -> Message {
    *s.seen_by_b.lock().unwrap() = Some(s.handled.load(Ordering::SeqCst));
    Message::respond(msg.uri().clone(), msg.content().clone())
}

#[tokio::test(flavor = "current_thread")]
async fn a_pipelining_connection_does_not_hold_up_another_on_one_thread() {
    let shared = Shared::default();
    let router = Router::new()
        .on((MessageType::REQUEST_URI, "greedy"), greedy)
        .on((MessageType::REQUEST_URI, "probe"), probed)
        .with_state(shared.clone());
    let server = start(router).await;

    // Client B: a raw connection, served once to be sure its connection task is running; then
    // its writing half goes to A's first handler call.
    let mut b = RawConn::connect(server.addr).await;
    let reply = b.round_trip(&probe()).await;
    assert_eq!(reply.uri().as_ref(), b"probe");
    *shared.seen_by_b.lock().unwrap() = None;
    let b_std = b.stream.into_std().unwrap();
    *shared.b_writer.lock().unwrap() = Some(b_std.try_clone().unwrap());
    let mut b = RawConn::from_stream(TcpStream::from_std(b_std).unwrap());

    // Client A: N complete frames in ONE write, with a send buffer large enough to take them, so
    // the whole backlog is in the kernel before the server's task for A runs at all (this task
    // does not yield between the write and B's read below).
    let mut all = BytesMut::new();
    for i in 0..N {
        all.extend_from_slice(&frame_of(&Message::new(
            MessageType::REQUEST_URI,
            "greedy",
            format!("{i}"),
        )));
    }
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_send_buffer_size(4 << 20).unwrap();
    let a = within(WAIT, "A's connect", sock.connect(server.addr))
        .await
        .unwrap();
    let written = a.try_write(&all).unwrap();
    assert_eq!(written, all.len(), "the backlog did not fit in one write");

    // B's reply comes once B's handler has run.
    let reply = b.read_message().await;
    assert_eq!(reply.uri().as_ref(), b"probe");
    let seen = shared.seen_by_b.lock().unwrap().expect("B's handler ran");
    assert!(
        seen < N / 10,
        "B was served only after {seen} of A's {N} frames had been handled"
    );

    // A's backlog is then handled in full, in bounded time.
    within(WAIT, "A's backlog", async {
        while shared.handled.load(Ordering::SeqCst) < N {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(shared.handled.load(Ordering::SeqCst), N);
    drop(a);
    server.stop().await;
}
