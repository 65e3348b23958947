//! Python-compatible mode on UDP, without Python: a `python_compat()` `UdpNode` answers datagrams
//! recorded from Python netaio 0.0.9, with Python's UDP default reply byte for byte, and never
//! answers what it refuses. The live tests against the Python library are in
//! `examples/tests/python_interop.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use bytes::Bytes;
use netaio::compat::{LegacyHmacAuth, PackifyCodec};
use netaio::plugin::{AuthPlugin, PluginContext};
use netaio::udp::{UdpHandle, UdpNode, UdpNodeBuilder};
use netaio::{Message, MessageType, Router};
use netaio_tests::{WAIT, within};
use tokio::net::UdpSocket;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// REQUEST_URI "echo" "hello", no plugins (recorded from Python).
const PLAIN_REQUEST: &str = "000003000b9b359cb34d400000046563686f68656c6c6f";
/// The same with HMACAuthPlugin({"secret": "secret"}), nonce 00..0f, ts 1700000000.
const HMAC_REQUEST: &str = "000060000b9b359cb34d40030f2d1e4c400204064302747341046553f1004c400206224304686d61634120321eb3c18caf4206f4d5271677f4e89c6d389eb35f3b33c19381897287c430da4c4002071243056e6f6e63654110000102030405060708090a0b0c0d0e0f00046563686f68656c6c6f";
/// NOT_FOUND "not found", uri ERROR: the Python UDPNode's default handler.
const UDP_NOT_FOUND: &str = "18000300104faca4f34d400000054552524f526e6f7420666f756e64";

async fn start(builder: UdpNodeBuilder) -> (UdpHandle, std::net::SocketAddr) {
    let node = builder.address(([127, 0, 0, 1], 0)).bind().await.unwrap();
    let (handle, addr) = (node.handle(), node.local_addr());
    tokio::spawn(node.serve());
    (handle, addr)
}

async fn socket() -> UdpSocket {
    UdpSocket::bind(("127.0.0.1", 0)).await.unwrap()
}

async fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    let (n, _) = within(WAIT, "a reply datagram", sock.recv_from(&mut buf))
        .await
        .unwrap();
    buf.truncate(n);
    buf
}

fn ok_router() -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |m: Message| async move { Message::ok(m.uri().clone(), m.content().clone()) },
    )
}

#[tokio::test]
async fn an_unrouted_request_gets_pythons_udp_not_found_byte_for_byte() {
    let (node, addr) = start(UdpNode::builder().python_compat()).await;
    let sock = socket().await;
    // Python's request as Python encodes it, with enough content that Python's 28-byte
    // NOT_FOUND is no larger: an unauthenticated Python node's address is never verified (it
    // cannot echo a cookie), so it is sent no more than it sent.
    let request = Message::new(MessageType::REQUEST_URI, "echo", "hello, python")
        .to_bytes(&PackifyCodec)
        .unwrap();
    assert!(request.len() >= unhex(UDP_NOT_FOUND).len());
    sock.send_to(&request, addr).await.unwrap();
    assert_eq!(recv(&sock).await, unhex(UDP_NOT_FOUND));
    // Python's own 23-byte request: the NOT_FOUND is shortened to its type (Python still reads
    // a NOT_FOUND), no larger than the request.
    sock.send_to(&unhex(PLAIN_REQUEST), addr).await.unwrap();
    let short = recv(&sock).await;
    assert!(short.len() <= unhex(PLAIN_REQUEST).len(), "{short:?}");
    let short = Message::decode(Bytes::from(short), &PackifyCodec).unwrap();
    assert_eq!(short, Message::new(MessageType::NOT_FOUND, "", ""));
    assert_eq!(node.stats().replies_limited, 1);
    node.shutdown();
}

#[tokio::test]
async fn pythons_mac_is_checked_and_the_reply_carries_one() {
    let (node, addr) = start(
        UdpNode::builder()
            .router(ok_router())
            .python_compat()
            .auth(LegacyHmacAuth::new("secret")),
    )
    .await;
    let sock = socket().await;
    // A frame without the MAC is refused silently (no reflection), then Python's MACed frame is
    // answered: the first datagram back is the answer to the second.
    sock.send_to(&unhex(PLAIN_REQUEST), addr).await.unwrap();
    sock.send_to(&unhex(HMAC_REQUEST), addr).await.unwrap();
    let reply = recv(&sock).await;
    let mut msg = Message::decode(Bytes::from(reply), &PackifyCodec).unwrap();
    LegacyHmacAuth::new("secret")
        .check(&mut msg, &PluginContext::default())
        .unwrap();
    assert_eq!(msg, Message::ok("echo", "hello"));
    let stats = node.stats();
    assert_eq!((stats.received, stats.auth_failed), (2, 1));
    node.shutdown();
}

#[tokio::test]
async fn a_bad_checksum_is_not_answered_unlike_python() {
    let (node, addr) = start(UdpNode::builder().router(ok_router()).python_compat()).await;
    let sock = socket().await;
    let mut bad = unhex(PLAIN_REQUEST);
    bad[5] ^= 0xff;
    sock.send_to(&bad, addr).await.unwrap();
    sock.send_to(&unhex(PLAIN_REQUEST), addr).await.unwrap();
    let reply = Message::decode(Bytes::from(recv(&sock).await), &PackifyCodec).unwrap();
    assert_eq!(reply, Message::ok("echo", "hello"));
    assert_eq!(node.stats().invalid, 1);
    node.shutdown();
}

/// Two Rust nodes in Python-compatible mode (packify auth blocks) without auth: the caller's
/// smallest request is padded so that the challenge fits, and the cookie round trip completes.
#[tokio::test]
async fn python_compat_rust_nodes_complete_the_cookie_round_trip() {
    let (server, addr) = start(UdpNode::builder().router(ok_router()).python_compat()).await;
    let (client, _) = start(UdpNode::builder().python_compat()).await;
    let r = client.request(addr, "echo", "").await.unwrap();
    assert_eq!(
        (r.message_type, r.uri().as_ref(), r.content().len()),
        (MessageType::OK, &b"echo"[..], 0)
    );
    let r = client.request(addr, "echo", "again").await.unwrap();
    assert_eq!(r.content().as_ref(), b"again");
    let stats = server.stats();
    assert_eq!((stats.challenges, stats.replies_limited), (1, 0));
    server.shutdown();
    client.shutdown();
}

#[tokio::test]
async fn python_compat_joins_pythons_group_on_the_nodes_own_port() {
    let (node, addr) = start(UdpNode::builder().python_compat()).await;
    assert_eq!(
        node.multicast_group(),
        Some(std::net::SocketAddr::from(([224, 0, 0, 1], addr.port())))
    );
    // Without the switch, no group.
    let (plain, _) = start(UdpNode::builder()).await;
    assert_eq!(plain.multicast_group(), None);
    node.shutdown();
    plain.shutdown();
}
