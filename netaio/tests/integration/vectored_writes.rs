//! Large and small frames queued on one client connection, to a reader that takes a little at a
//! time: the driver writes the large frames from their own buffers (vectored writes, from 8 KiB)
//! and batches the small ones into its write buffer, and the socket takes each write only in
//! part. Every frame must arrive whole and in the order it was queued, and a graceful close must
//! flush what is still queued; over TCP and over a Unix socket.

// Helpers outside the #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use netaio::message::PostcardCodec;
use netaio::{Connection, Message, MessageType, SendError, TcpClient};
use tokio::io::{AsyncRead, AsyncReadExt};

/// A bound on the whole exchange: a lost or stuck frame fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(60);

/// Frames queued, in a cycle of sizes below, at and above the vectored-write threshold (8 KiB),
/// and up to near the largest body the 16-bit length allows.
const COUNT: usize = 240;
const SIZES: [usize; 8] = [
    64,
    8 * 1024,
    100,
    8 * 1024 + 1,
    5,
    60_000,
    8 * 1024 - 1,
    20_000,
];

/// How much the reader takes per read: far less than a large frame, so the sender's socket
/// buffer fills and its writes are taken in part.
const READ_PIECE: usize = 1000;

/// Frame `i`'s content: its number, then a pattern that depends on it (a frame cut, shifted or
/// swapped with another shows up as wrong bytes).
fn content(i: usize) -> Bytes {
    let size = SIZES[i % SIZES.len()];
    let mut b = Vec::with_capacity(size);
    b.extend_from_slice(&(i as u32).to_be_bytes());
    b.extend((4..size).map(|j| (i * 31 + j * 7) as u8));
    Bytes::from(b)
}

/// Queue every frame, in order: half with `send` (a frame of its own in the queue), half with
/// `try_send` (encoded into the queue's batch), waiting when the queue is full; then close.
async fn send_all(conn: Connection) {
    for i in 0..COUNT {
        let msg = Message::new(MessageType::PUBLISH_URI, "seq", content(i));
        if i % 2 == 0 {
            conn.send(&msg).await.unwrap();
            continue;
        }
        match conn.try_send(&msg) {
            Ok(()) => {}
            // Nothing was queued: the frame keeps its place by waiting.
            Err(SendError::QueueFull) => conn.send(&msg).await.unwrap(),
            Err(e) => panic!("frame {i}: {e}"),
        }
    }
    // Graceful: what is still queued is written before the connection ends.
    conn.close().await;
}

/// Read every frame a little at a time, check each, then expect the end of the stream.
async fn read_all(mut stream: impl AsyncRead + Unpin) {
    let mut buf = BytesMut::new();
    let mut piece = [0u8; READ_PIECE];
    let mut next = 0;
    let mut reads = 0;
    while next < COUNT {
        reads += 1;
        assert!(reads < 1_000_000, "too many reads");
        let n = stream.read(&mut piece).await.unwrap();
        assert!(n > 0, "closed after {next} frames of {COUNT}");
        buf.extend_from_slice(&piece[..n]);
        // Slow: let the writer run into a full socket buffer.
        tokio::task::yield_now().await;
        while buf.len() >= 9 {
            let auth_len = usize::from(u16::from_be_bytes([buf[1], buf[2]]));
            let body_len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
            let len = 9 + auth_len + body_len;
            if buf.len() < len {
                break;
            }
            let frame = buf.split_to(len).freeze();
            let msg = Message::decode(frame, &PostcardCodec)
                .unwrap_or_else(|e| panic!("frame {next}: {e}"));
            assert_eq!(msg.message_type, MessageType::PUBLISH_URI, "frame {next}");
            assert_eq!(msg.uri().as_ref(), b"seq", "frame {next}");
            assert!(
                *msg.content() == content(next),
                "frame {next}: wrong content"
            );
            next += 1;
        }
    }
    assert!(buf.is_empty(), "bytes after the last frame");
    assert_eq!(stream.read(&mut piece).await.unwrap(), 0, "not closed");
}

#[tokio::test]
async fn large_and_small_frames_arrive_whole_and_in_order_over_tcp() {
    // A small receive buffer on the reader's side (inherited from the listening socket).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpClient::new();
    let (conn, accepted) = tokio::join!(client.connect(addr), listener.accept());
    let (conn, (stream, _)) = (conn.unwrap(), accepted.unwrap());
    exchange(conn, stream).await;
}

#[cfg(unix)]
#[tokio::test]
async fn large_and_small_frames_arrive_whole_and_in_order_over_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("netaio-vectored-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let client = TcpClient::new();
    let (conn, accepted) = tokio::join!(client.connect_unix(&path), listener.accept());
    let (conn, (stream, _)) = (conn.unwrap(), accepted.unwrap());
    let _ = std::fs::remove_file(&path);
    exchange(conn, stream).await;
}

/// The client sends every frame while the raw side reads them all, within [`LIMIT`].
async fn exchange<S>(conn: netaio::Connection, stream: S)
where
    S: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let reader = tokio::spawn(read_all(stream));
    tokio::time::timeout(LIMIT, async {
        send_all(conn).await;
        reader.await.unwrap();
    })
    .await
    .unwrap();
}
