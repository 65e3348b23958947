//! Proof-of-work admission of new peers (`admission_difficulty`) on 127.0.0.1: a daemon that
//! asks for work refuses a handshake without a stamp and takes one with it; daemons configured
//! alike become neighbours, one that does not stamp does not get in.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use netaio::plugin::{HashcashAuth, Plugins, SendOptions};
use netaio::{Message, MessageType, RequestError, TcpClient};
use netaio_asymmetric::Identity;
use netaio_gossip::net::HELLO_URI;
use netaiod::{Daemon, DaemonConfig};

const LIMIT: Duration = Duration::from_secs(20);
const BITS: u32 = 12;

async fn daemon(bits: u32, bootstrapper: Option<std::net::SocketAddr>) -> Daemon {
    let mut text = format!(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\nadmission_difficulty = {bits}\n"
    );
    if let Some(b) = bootstrapper {
        text.push_str(&format!("bootstrapper = {b}\n"));
    }
    Daemon::start(DaemonConfig::parse(&text).unwrap().0)
        .await
        .unwrap()
}

/// A gossip hello (version 1, the claimed IPv4 listening address, keys) as a peer would send.
fn hello(port: u16) -> Message {
    let keys = Identity::generate().public_keys();
    let mut out = BytesMut::new();
    out.put_slice(&[1, 4, 127, 0, 0, 1]);
    out.put_u16(port);
    out.put_u8(1);
    out.put_slice(&keys.x25519);
    out.put_slice(&keys.ed25519);
    Message::new(MessageType::REQUEST_URI, HELLO_URI, out.freeze())
}

#[tokio::test]
async fn a_daemon_asking_for_work_refuses_a_hello_without_it_and_takes_one_with_it() {
    let d = daemon(BITS, None).await;
    let p2p = d.node().addr();
    let conn = TcpClient::builder().build().connect(p2p).await.unwrap();
    let opts = |plugins| SendOptions::new().inner(plugins).timeout(LIMIT);

    // No stamp: refused before the hello is looked at.
    let refused = conn.call_with(hello(40_001), &opts(Plugins::new())).await;
    assert!(matches!(refused, Err(RequestError::Auth(_))), "{refused:?}");
    // A stamp of fewer bits than asked: refused as well (unless it met the difficulty by luck,
    // 1 in 2^8; a new stamp each try, so eight tries leave one chance in 2^64).
    let weak_refused = {
        let mut n = 0;
        for _ in 0..8 {
            let weak = Plugins::new().auth(HashcashAuth::new(BITS - 8).require_incoming(false));
            let conn = TcpClient::builder().build().connect(p2p).await.unwrap();
            if conn.call_with(hello(40_002), &opts(weak)).await.is_err() {
                n += 1;
            }
        }
        n
    };
    assert!(weak_refused > 0, "every weak stamp was taken");
    // Enough work: the daemon answers with its own hello.
    let stamp = Plugins::new().auth(HashcashAuth::new(BITS).require_incoming(false));
    let conn = TcpClient::builder().build().connect(p2p).await.unwrap();
    let reply = conn.call_with(hello(40_003), &opts(stamp)).await.unwrap();
    assert_eq!(&reply.uri()[..], HELLO_URI.as_bytes());
    d.shutdown().await;
}

#[tokio::test]
async fn daemons_asking_alike_connect_and_one_without_work_stays_out() {
    let a = daemon(BITS, None).await;
    let p2p = a.node().addr();
    let outsider = daemon(0, Some(p2p)).await;
    let member = daemon(BITS, Some(p2p)).await;
    let mut neighbours = a.node().watch_neighbors();
    let member_addr = member.node().addr();
    tokio::time::timeout(LIMIT, neighbours.wait_for(|n| n.contains(&member_addr)))
        .await
        .expect("the daemon that did the work is not a neighbour")
        .unwrap();
    // The outsider's join went out before the member's; it never got in.
    assert!(!a.node().neighbors().contains(&outsider.node().addr()));
    assert!(outsider.node().neighbors().is_empty());
    for d in [a, outsider, member] {
        d.shutdown().await;
    }
}

/// A daemon with a native API asking `bits` of work of new peers.
async fn native_daemon(bits: u32) -> Daemon {
    let text = format!(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\nadmission_difficulty = {bits}\n\
         [native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\ncall_timeout = 5\n"
    );
    Daemon::start(DaemonConfig::parse(&text).unwrap().0)
        .await
        .unwrap()
}

#[tokio::test]
async fn peer_calls_need_the_work_too() {
    use netaio::Router;
    use netaio::router::Content;
    use netaiod::NativeClient;

    let a = native_daemon(BITS).await;
    let router = Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |Content(body): Content| async move { Message::respond("echo", body) },
    );
    let served = NativeClient::connect(a.native().unwrap().local_addr(), router)
        .await
        .unwrap();
    served.serve("echo").await.unwrap();
    let target = format!(
        "{}@{}",
        a.native().unwrap().peer_id(),
        a.native().unwrap().peer_addr()
    );
    // A raw PEER_HELLO without a stamp: refused before its keys are looked at.
    let conn = TcpClient::builder()
        .build()
        .connect(a.native().unwrap().peer_addr())
        .await
        .unwrap();
    let keys = Identity::generate().public_keys();
    let hello = Message::new(
        MessageType::REQUEST_URI,
        netaiod::native::PEER_HELLO_URI,
        [keys.x25519, keys.ed25519].concat(),
    );
    let refused = conn
        .call_with(hello, &SendOptions::new().timeout(LIMIT))
        .await;
    assert!(matches!(refused, Err(RequestError::Auth(_))), "{refused:?}");

    // A daemon that does the same work calls through; one that does none cannot.
    for (bits, works) in [(BITS, true), (0, false)] {
        let b = native_daemon(bits).await;
        let caller = NativeClient::connect(b.native().unwrap().local_addr(), Router::new())
            .await
            .unwrap();
        let reply = tokio::time::timeout(LIMIT, caller.call(&target, "echo", "ping"))
            .await
            .unwrap();
        assert_eq!(reply.is_ok(), works, "{bits} bits: {reply:?}");
        if works {
            assert_eq!(reply.unwrap(), "ping");
        }
        b.shutdown().await;
    }
    a.shutdown().await;
}
