//! Bad input on raw sockets: every malformed, truncated, oversized or excess input gets the documented
//! answer (an ERROR reply, NOT_FOUND, or a close), the server never panics, and another client is
//! served normally afterwards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use netaio::message::{AuthFields, AuthFieldsCodec, PostcardCodec};
use netaio::tcp::CloseReason;
use netaio::{Message, MessageType, TcpServer};
use netaio_tests::{
    ECHO, RawConn, TestServer, assert_serves, connected, disconnected, echo_router, header,
    raw_frame, start_with,
};

const READ_TIMEOUT: Duration = Duration::from_millis(300);
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

async fn server(read_timeout: Duration) -> TestServer {
    start_with(
        TcpServer::builder()
            .router(echo_router())
            .read_timeout(read_timeout),
    )
    .await
}

/// A correct echo body: uri "echo", the given content.
fn echo_body(content: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 4];
    b.extend_from_slice(b"echo");
    b.extend_from_slice(content);
    b
}

fn assert_invalid_message(reply: &Message) {
    assert_eq!(reply.message_type, MessageType::ERROR, "{reply:?}");
    assert_eq!(reply.uri().as_ref(), b"ERROR");
    assert_eq!(reply.content().as_ref(), b"invalid message");
}

#[tokio::test]
async fn truncated_header_then_silence_is_closed_after_the_read_timeout() {
    let server = server(READ_TIMEOUT).await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    raw.write(&header(MessageType::REQUEST_URI, 0, 10, 0)[..5])
        .await;
    let took = raw.expect_eof(CLOSE_WITHIN).await;
    assert!(took >= READ_TIMEOUT - Duration::from_millis(50), "{took:?}");
    assert_eq!(
        disconnected(&mut events, id).await,
        CloseReason::ReadTimeout
    );
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn truncated_header_then_eof_is_closed_at_once() {
    // A long read timeout: the close must come from the EOF, not from the timer.
    let server = server(Duration::from_secs(30)).await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    raw.write(&header(MessageType::REQUEST_URI, 0, 10, 0)[..5])
        .await;
    raw.shutdown_write().await;
    raw.expect_eof(CLOSE_WITHIN).await;
    assert_eq!(disconnected(&mut events, id).await, CloseReason::Truncated);
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn frame_shorter_than_its_header_says_is_closed_after_the_read_timeout() {
    let server = server(READ_TIMEOUT).await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    raw.write(&header(MessageType::REQUEST_URI, 0, 65_535, 0))
        .await;
    raw.write(&echo_body(&[b'x'; 100])).await;
    let took = raw.expect_eof(CLOSE_WITHIN).await;
    assert!(took >= READ_TIMEOUT - Duration::from_millis(50), "{took:?}");
    assert_eq!(
        disconnected(&mut events, id).await,
        CloseReason::ReadTimeout
    );
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_frame_gets_frame_too_large_then_close() {
    let server = start_with(
        TcpServer::builder()
            .router(echo_router())
            .max_frame_size(1024)
            .read_timeout(Duration::from_secs(30)),
    )
    .await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    // Only the header: the server must refuse from the announced length alone.
    raw.write(&header(MessageType::REQUEST_URI, 0, 60_000, 0))
        .await;
    let reply = raw.read_message().await;
    assert_eq!(reply.message_type, MessageType::ERROR);
    assert_eq!(reply.uri().as_ref(), b"ERROR");
    assert_eq!(reply.content().as_ref(), b"frame too large");
    raw.expect_eof(CLOSE_WITHIN).await;
    assert!(matches!(
        disconnected(&mut events, id).await,
        CloseReason::BadFrame(_)
    ));
    // A frame within the limit is still served, on another connection.
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_checksum_gets_invalid_message_and_the_connection_serves_on() {
    let server = server(READ_TIMEOUT).await;
    let mut raw = RawConn::connect(server.addr).await;
    let body = echo_body(b"hello");
    let mut frame = raw_frame(MessageType::REQUEST_URI, b"", &body);
    frame[8] ^= 0x01;
    raw.write(&frame).await;
    let reply = raw.read_message().await;
    assert_invalid_message(&reply);
    assert_eq!(reply.reply_ref(), None);

    // With a request id in the (intact) auth block, the error reply refers to it.
    let mut msg = Message::new(MessageType::REQUEST_URI, ECHO, "hello");
    msg.set_request_id(7);
    let mut frame = msg.to_bytes(&PostcardCodec).unwrap().to_vec();
    let last = frame.len() - 1;
    frame[last] ^= 0xff; // corrupt the content: the checksum no longer matches
    raw.write(&frame).await;
    let reply = raw.read_message().await;
    assert_invalid_message(&reply);
    assert_eq!(reply.reply_ref(), Some(7));

    raw.assert_open().await;
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_and_reserved_types_get_not_found_and_the_connection_stays_open() {
    let server = server(READ_TIMEOUT).await;
    let mut raw = RawConn::connect(server.addr).await;
    for t in [99u8, 15] {
        let frame = raw_frame(MessageType::from_u8(t), b"", &echo_body(b"?"));
        raw.write(&frame).await;
        let reply = raw.read_message().await;
        assert_eq!(reply.message_type, MessageType::NOT_FOUND, "type {t}");
        assert_eq!(reply.content().as_ref(), b"not found");
        raw.assert_open().await;
    }
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn empty_auth_block_is_served_normally() {
    let server = server(READ_TIMEOUT).await;
    let mut raw = RawConn::connect(server.addr).await;
    let frame = raw_frame(MessageType::REQUEST_URI, b"", &echo_body(b"no auth"));
    assert_eq!(&frame[1..3], &[0, 0], "auth_length is 0");
    raw.write(&frame).await;
    let reply = raw.read_message().await;
    assert_eq!(reply.message_type, MessageType::RESPOND_URI);
    assert_eq!(reply.content().as_ref(), b"no auth");
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn garbage_auth_block_gets_invalid_message_and_the_connection_stays_open() {
    let server = server(READ_TIMEOUT).await;
    let mut raw = RawConn::connect(server.addr).await;
    let frame = raw_frame(
        MessageType::REQUEST_URI,
        &[0xff, 0xff, 0xff],
        &echo_body(b"x"),
    );
    raw.write(&frame).await;
    let reply = raw.read_message().await;
    assert_invalid_message(&reply);
    assert_eq!(reply.reply_ref(), None);
    raw.assert_open().await;
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn auth_block_with_trailing_junk_gets_invalid_message() {
    let server = server(READ_TIMEOUT).await;
    let mut raw = RawConn::connect(server.addr).await;
    let fields: AuthFields = [("rid", &b"\x05"[..])].into_iter().collect();
    let mut block = bytes::BytesMut::new();
    PostcardCodec.encode(&fields, &mut block).unwrap();
    assert!(PostcardCodec.decode(&block.clone().freeze()).is_ok());
    block.extend_from_slice(&[0xaa, 0xbb]);
    let frame = raw_frame(MessageType::REQUEST_URI, &block, &echo_body(b"x"));
    raw.write(&frame).await;
    let reply = raw.read_message().await;
    assert_invalid_message(&reply);
    // The block did not decode, so its request id cannot be trusted or echoed.
    assert_eq!(reply.reply_ref(), None);
    raw.assert_open().await;
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn too_many_auth_fields_get_invalid_message_and_the_connection_serves_on() {
    let server = server(READ_TIMEOUT).await;
    let mut raw = RawConn::connect(server.addr).await;
    // Thousands of well-formed fields, one of them a request id.
    let names: Vec<String> = (0..4000).map(|i| format!("f{i:04}")).collect();
    let mut fields: AuthFields = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    fields.insert("rid", &b"\x05"[..]);
    assert!(fields.len() > netaio::message::DEFAULT_MAX_AUTH_FIELDS);
    let mut block = bytes::BytesMut::new();
    PostcardCodec.encode(&fields, &mut block).unwrap();
    assert!(
        PostcardCodec::with_max_fields(fields.len())
            .decode(&block.clone().freeze())
            .is_ok()
    );
    let frame = raw_frame(MessageType::REQUEST_URI, &block, &echo_body(b"x"));
    raw.write(&frame).await;
    let reply = raw.read_message().await;
    assert_invalid_message(&reply);
    assert_eq!(reply.reply_ref(), None);
    // A block that claims a million fields and holds none.
    let frame = raw_frame(
        MessageType::REQUEST_URI,
        &[0xc0, 0x84, 0x3d],
        &echo_body(b"x"),
    );
    raw.write(&frame).await;
    assert_invalid_message(&raw.read_message().await);
    raw.assert_open().await;
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_invalid_message_and_the_connection_stays_open() {
    let server = server(READ_TIMEOUT).await;
    let mut raw = RawConn::connect(server.addr).await;
    let bodies: [&[u8]; 4] = [
        b"",                  // no uri length at all
        b"\x00",              // half a uri length
        b"\x00\x09echo",      // uri length 9, 4 bytes left
        b"\xff\xffsomething", // uri length 65535
    ];
    for body in bodies {
        raw.write(&raw_frame(MessageType::REQUEST_URI, b"", body))
            .await;
        let reply = raw.read_message().await;
        assert_invalid_message(&reply);
        raw.assert_open().await;
    }
    assert_serves(server.addr).await;
    server.stop().await;
}

#[tokio::test]
async fn junk_after_a_valid_frame_starts_a_frame_that_times_out() {
    let server = server(READ_TIMEOUT).await;
    let mut events = server.events();
    let mut raw = RawConn::connect(server.addr).await;
    let id = connected(&mut events, Some(raw.local_addr())).await;
    let mut bytes = raw_frame(MessageType::REQUEST_URI, b"", &echo_body(b"valid"));
    bytes.extend_from_slice(&[1, 2, 3]);
    raw.write(&bytes).await;
    let reply = raw.read_message().await;
    assert_eq!(reply.message_type, MessageType::RESPOND_URI);
    assert_eq!(reply.content().as_ref(), b"valid");
    // The 3 bytes are the start of a header that never completes.
    let took = raw.expect_eof(CLOSE_WITHIN).await;
    assert!(took >= READ_TIMEOUT / 2, "{took:?}");
    assert_eq!(
        disconnected(&mut events, id).await,
        CloseReason::ReadTimeout
    );
    assert_serves(server.addr).await;
    server.stop().await;
}
