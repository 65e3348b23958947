//! `AeadAuth` end to end on 127.0.0.1: a `TcpServer` and `TcpClient`s with one plugin each (both
//! algorithms against one server), a wrong secret, and a captured frame replayed over a raw socket.

// Helpers outside the #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use netaio::message::PostcardCodec;
use netaio::plugin::{AeadAlgorithm, AeadAuth, PluginContext, Plugins, open_outer, seal};
use netaio::{Message, MessageType, RequestError, Router, TcpClient, TcpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A bound on every call and read: a failure shows up as an error, never as a hang.
const LIMIT: Duration = Duration::from_secs(10);

async fn server(
    secret: &'static [u8],
    calls: Arc<AtomicUsize>,
) -> (
    std::net::SocketAddr,
    netaio::ServerHandle,
    tokio::task::JoinHandle<()>,
) {
    let router = Router::new().on((MessageType::REQUEST_URI, "echo"), move |m: Message| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Message::respond(m.uri().clone(), m.content().clone()))
    });
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router)
        .auth(AeadAuth::new(secret).encrypt_uri(true))
        .bind()
        .await
        .unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    let task = tokio::spawn(async move {
        let _ = server.serve().await;
    });
    (addr, handle, task)
}

/// Read one frame (9-byte header, auth block, body) and decode it.
async fn read_frame(stream: &mut TcpStream) -> Message {
    let mut header = [0u8; 9];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut header))
        .await
        .unwrap()
        .unwrap();
    let auth_len = usize::from(u16::from_be_bytes([header[1], header[2]]));
    let body_len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut frame = header.to_vec();
    frame.resize(9 + auth_len + body_len, 0);
    tokio::time::timeout(LIMIT, stream.read_exact(&mut frame[9..]))
        .await
        .unwrap()
        .unwrap();
    Message::decode(Bytes::from(frame), &PostcardCodec).unwrap()
}

#[tokio::test]
async fn aead_auth_request_response_with_both_algorithms() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (addr, handle, task) = server(b"shared", calls.clone()).await;
    for alg in AeadAlgorithm::ALL {
        let client = TcpClient::builder()
            .auth(AeadAuth::new(b"shared").algorithm(alg).encrypt_uri(true))
            .request_timeout(LIMIT)
            .build();
        let conn = client.connect(addr).await.unwrap();
        for i in 0..3 {
            let text = format!("hello {i} with {alg}");
            let reply = conn.request("echo", text.clone()).await.unwrap();
            assert_eq!(reply.message_type, MessageType::RESPOND_URI);
            assert_eq!(reply.uri().as_ref(), b"echo", "routing saw the uri");
            assert_eq!(reply.content().as_ref(), text.as_bytes());
            assert!(reply.auth.get("nonce").is_none() && reply.auth.get("ts").is_none());
        }
        let big = vec![7u8; 60_000];
        let reply = conn.request("echo", big.clone()).await.unwrap();
        assert_eq!(reply.content().as_ref(), &big[..]);
        // Unknown routes still get NOT_FOUND through the plugin.
        let e = conn.request("nope", "x").await.unwrap_err();
        assert!(matches!(e, RequestError::NotFound(_)), "{e:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2 * 4);
    handle.shutdown();
    task.await.unwrap();
}

#[tokio::test]
async fn aead_auth_wrong_secret_or_none_gets_auth_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (addr, handle, task) = server(b"shared", calls.clone()).await;
    let wrong = TcpClient::builder()
        .auth(AeadAuth::new(b"not the secret").encrypt_uri(true))
        .request_timeout(LIMIT)
        .build();
    let conn = wrong.connect(addr).await.unwrap();
    let e = conn.request("echo", "x").await.unwrap_err();
    assert!(
        matches!(&e, RequestError::Auth(m) if m.message_type == MessageType::AUTH_ERROR),
        "{e:?}"
    );
    let plain = TcpClient::builder().request_timeout(LIMIT).build();
    let conn = plain.connect(addr).await.unwrap();
    let e = conn.request("echo", "x").await.unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no handler ran");
    handle.shutdown();
    task.await.unwrap();
}

/// A frame captured on the wire and sent again is refused: the first copy is answered (with a
/// sealed reply the sender opens), the second gets AUTH_ERROR, and the handler ran once.
#[tokio::test]
async fn aead_auth_replayed_frame_is_refused_over_tcp() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (addr, handle, task) = server(b"shared", calls.clone()).await;
    let me = Plugins::new().auth(AeadAuth::new(b"shared").encrypt_uri(true));
    let ctx = PluginContext::default();
    let mut request = Message::new(MessageType::REQUEST_URI, "echo", "once");
    request.set_request_id(1);
    let sealed = seal(request, &Plugins::new(), &me, &ctx).unwrap();
    let frame = sealed.to_bytes(&PostcardCodec).unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&frame).await.unwrap();
    let reply = read_frame(&mut stream).await;
    let reply = open_outer(reply, &me, &ctx).unwrap();
    assert_eq!(reply.message_type, MessageType::RESPOND_URI);
    assert_eq!(reply.content().as_ref(), b"once");
    stream.write_all(&frame).await.unwrap();
    let refused = read_frame(&mut stream).await;
    assert_eq!(refused.message_type, MessageType::AUTH_ERROR);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    handle.shutdown();
    task.await.unwrap();
}
