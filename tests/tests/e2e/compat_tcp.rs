//! Python-compatible mode over TCP, without Python: a `python_compat()` server answers frames
//! recorded from Python netaio 0.0.9 with the exact bytes Python would send, and a
//! `python_compat()` client understands a Python server's error replies (no reply reference, uri
//! `ERROR` or empty, AUTH_ERROR without a MAC). The live tests against the real Python library are
//! in `examples/tests/python_interop.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher, PackifyCodec};
use netaio::message::Header;
use netaio::plugin::{AuthPlugin, PluginContext};
use netaio::{Message, MessageType, RequestError, TcpClient, TcpServer};
use netaio_tests::{ECHO, RawConn, WAIT, echo_router, start_with, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// Frames recorded from Python netaio 0.0.9 (tests/fixtures of the netaio crate).
/// REQUEST_URI "echo" "hello", no plugins.
const PLAIN_REQUEST: &str = "000003000b9b359cb34d400000046563686f68656c6c6f";
/// The same with HMACAuthPlugin({"secret": "secret"}), nonce 00..0f, ts 1700000000.
const HMAC_REQUEST: &str = "000060000b9b359cb34d40030f2d1e4c400204064302747341046553f1004c400206224304686d61634120321eb3c18caf4206f4d5271677f4e89c6d389eb35f3b33c19381897287c430da4c4002071243056e6f6e63654110000102030405060708090a0b0c0d0e0f00046563686f68656c6c6f";
/// ERROR "invalid message", uri ERROR: Python's reply to a bad checksum.
const INVALID_MESSAGE: &str =
    "14000300162ab916634d400000054552524f52696e76616c6964206d657373616765";
/// NOT_FOUND "not found", uri b'': the Python TCPServer's default handler.
const TCP_NOT_FOUND: &str = "180003000b7fca84a84d400000006e6f7420666f756e64";
/// AUTH_ERROR "HMAC auth failed", uri ERROR, sent without plugins.
const HMAC_AUTH_ERROR: &str =
    "1700030017c7eb481f4d400000054552524f52484d41432061757468206661696c6564";

/// Read one raw frame (header, auth block, body) from a socket.
async fn read_raw(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut header = [0u8; Header::LEN];
    stream.read_exact(&mut header).await.ok()?;
    let h = Header::from_bytes(&header).ok()?;
    let mut rest = vec![0u8; usize::from(h.auth_length) + usize::from(h.body_length)];
    stream.read_exact(&mut rest).await.ok()?;
    let mut frame = header.to_vec();
    frame.extend(rest);
    Some(frame)
}

/// Read the next frame from a raw connection, as bytes.
async fn next_frame(raw: &mut RawConn) -> Vec<u8> {
    within(WAIT, "a frame", read_raw(&mut raw.stream))
        .await
        .expect("a whole frame")
}

#[tokio::test]
async fn a_compat_server_answers_python_frames_with_pythons_bytes() {
    let server = start_with(TcpServer::builder().router(echo_router()).python_compat()).await;
    let mut raw = RawConn::connect(server.addr).await;

    // Plain echo: the reply decodes with the packify codec, and has Python's empty block.
    raw.write(&unhex(PLAIN_REQUEST)).await;
    let reply = next_frame(&mut raw).await;
    let msg = Message::decode(Bytes::from(reply.clone()), &PackifyCodec).unwrap();
    assert_eq!(msg, Message::respond(ECHO, "hello"));
    assert_eq!(&reply[Header::LEN..Header::LEN + 3], b"\x4d\x40\x00");

    // Unknown route: Python's default NOT_FOUND, byte for byte.
    raw.write(
        &Message::new(MessageType::REQUEST_URI, "nowhere", "")
            .to_bytes(&PackifyCodec)
            .unwrap(),
    )
    .await;
    assert_eq!(next_frame(&mut raw).await, unhex(TCP_NOT_FOUND));

    // Bad checksum: Python's ERROR "invalid message", and the connection stays open.
    let mut bad = unhex(PLAIN_REQUEST);
    bad[5] ^= 0xff;
    raw.write(&bad).await;
    assert_eq!(next_frame(&mut raw).await, unhex(INVALID_MESSAGE));
    raw.write(&unhex(PLAIN_REQUEST)).await;
    let again = next_frame(&mut raw).await;
    assert_eq!(
        Message::decode(Bytes::from(again), &PackifyCodec).unwrap(),
        Message::respond(ECHO, "hello")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_compat_server_with_legacy_hmac_checks_pythons_mac_and_answers_with_one() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .python_compat()
            .auth(LegacyHmacAuth::new("secret")),
    )
    .await;
    let mut raw = RawConn::connect(server.addr).await;
    raw.write(&unhex(HMAC_REQUEST)).await;
    let reply = next_frame(&mut raw).await;
    let mut msg = Message::decode(Bytes::from(reply), &PackifyCodec).unwrap();
    LegacyHmacAuth::new("secret")
        .check(&mut msg, &PluginContext::default())
        .expect("the reply carries a valid legacy MAC");
    assert_eq!(msg, Message::respond(ECHO, "hello"));

    // Without the MAC: Python's AUTH_ERROR, unauthenticated, byte for byte.
    raw.write(&unhex(PLAIN_REQUEST)).await;
    assert_eq!(next_frame(&mut raw).await, unhex(HMAC_AUTH_ERROR));
    server.stop().await;
}

#[tokio::test]
async fn compat_client_and_server_with_both_legacy_plugins() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .python_compat()
            .auth(LegacyHmacAuth::new("s"))
            .cipher(LegacySha256StreamCipher::new("k")),
    )
    .await;
    let client = TcpClient::builder()
        .python_compat()
        .auth(LegacyHmacAuth::new("s"))
        .cipher(LegacySha256StreamCipher::new("k"))
        .build();
    let conn = client.connect(server.addr).await.unwrap();
    for size in [0usize, 1, 100, 60_000] {
        let content = vec![b'x'; size];
        let reply = conn.request(ECHO, content.clone()).await.unwrap();
        assert_eq!(reply.content().as_ref(), &content[..]);
    }
    // A wrong key on either plugin fails at once: the server answers AUTH_ERROR with a reference.
    let wrong = TcpClient::builder()
        .python_compat()
        .auth(LegacyHmacAuth::new("other"))
        .cipher(LegacySha256StreamCipher::new("k"))
        .build();
    let c = wrong.connect(server.addr).await.unwrap();
    let err = c.request(ECHO, "x").await.unwrap_err();
    assert!(matches!(err, RequestError::Auth(_)), "{err:?}");
    conn.close().await;
    c.close().await;
    server.stop().await;
}

/// A server that answers every frame with `reply` (raw bytes), as a Python server answers without
/// reply references. Returns its address.
async fn canned_server(reply: Vec<u8>) -> std::net::SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        while read_raw(&mut stream).await.is_some() {
            if stream.write_all(&reply).await.is_err() {
                break;
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_compat_client_takes_pythons_unauthenticated_auth_error_as_the_answer() {
    let addr = canned_server(unhex(HMAC_AUTH_ERROR)).await;
    let client = TcpClient::builder()
        .python_compat()
        .auth(LegacyHmacAuth::new("secret"))
        .build();
    let conn = client.connect(addr).await.unwrap();
    let started = tokio::time::Instant::now();
    let err = conn
        .call_timeout(
            Message::new(MessageType::REQUEST_URI, ECHO, "x"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    match err {
        RequestError::Auth(m) => assert_eq!(m.content().as_ref(), b"HMAC auth failed"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered, not timed out"
    );
    conn.close().await;
}

#[tokio::test]
async fn without_python_compat_the_same_reply_is_dropped_and_the_request_times_out() {
    let addr = canned_server(unhex(HMAC_AUTH_ERROR)).await;
    let client = TcpClient::builder()
        .auth_codec(Arc::new(PackifyCodec))
        .auth(LegacyHmacAuth::new("secret"))
        .build();
    let conn = client.connect(addr).await.unwrap();
    let err = conn
        .call_timeout(
            Message::new(MessageType::REQUEST_URI, ECHO, "x"),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Timeout(_)), "{err:?}");
    conn.close().await;
}

#[tokio::test]
async fn a_compat_client_takes_pythons_default_not_found_as_the_answer() {
    let addr = canned_server(unhex(TCP_NOT_FOUND)).await;
    let client = TcpClient::builder().python_compat().build();
    let conn = client.connect(addr).await.unwrap();
    let err = conn
        .call_timeout(
            Message::new(MessageType::REQUEST_URI, "missing", ""),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::NotFound(_)), "{err:?}");
    conn.close().await;
}

#[tokio::test]
async fn a_compat_client_sends_packify_frames() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpClient::builder().python_compat().build();
    let conn = client.connect(addr).await.unwrap();
    let (mut stream, _) = within(WAIT, "accept", listener.accept()).await.unwrap();
    conn.send(&Message::new(MessageType::REQUEST_URI, ECHO, "hello"))
        .await
        .unwrap();
    let frame = within(WAIT, "a frame", read_raw(&mut stream))
        .await
        .unwrap();
    // Python's plain frame exactly: a message sent without a request id has the empty dict.
    assert_eq!(frame, unhex(PLAIN_REQUEST));
    conn.close().await;
}
