//! A node with `HmacAuth` refuses its own message sent back to it: a datagram captured on its way
//! out and returned to its sender is counted as an auth failure and runs no handler, while the
//! same datagram delivered to another node that shares the secret is served.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::plugin::HmacAuth;
use netaio::udp::{UdpHandle, UdpNode};
use netaio::{Message, MessageType, Router};

const LIMIT: Duration = Duration::from_secs(5);

/// A node whose `ping` handler counts its calls.
async fn node(calls: Arc<AtomicUsize>) -> (UdpHandle, tokio::task::JoinHandle<()>) {
    let router = Router::new().on((MessageType::REQUEST_URI, "ping"), move || {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Message::respond("ping", "pong")
        }
    });
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router)
        .auth(HmacAuth::new(b"group secret"))
        .bind()
        .await
        .unwrap();
    let handle = node.handle();
    (handle, tokio::spawn(node.serve()))
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(LIMIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn a_datagram_reflected_to_its_sender_is_refused() {
    let a_calls = Arc::new(AtomicUsize::new(0));
    let b_calls = Arc::new(AtomicUsize::new(0));
    let (a, a_task) = node(a_calls.clone()).await;
    let (b, b_task) = node(b_calls.clone()).await;
    // Someone on the path: a plain socket that captures what A sends.
    let mirror = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.send(
        mirror.local_addr().unwrap(),
        &Message::new(MessageType::REQUEST_URI, "ping", ""),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 65_536];
    let (len, from) = tokio::time::timeout(LIMIT, mirror.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, a.local_addr());
    let captured = buf[..len].to_vec();

    // Sent back to A: refused, counted, no handler.
    let refused = a.stats().auth_failed;
    mirror.send_to(&captured, a.local_addr()).await.unwrap();
    until("A to refuse the reflected datagram", || {
        a.stats().auth_failed > refused
    })
    .await;
    assert_eq!(a_calls.load(Ordering::SeqCst), 0);

    // Delivered to B instead (same secret, another node): served.
    mirror.send_to(&captured, b.local_addr()).await.unwrap();
    until("B to serve the datagram", || {
        b_calls.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(b.stats().auth_failed, 0);

    a.shutdown();
    b.shutdown();
    a_task.await.unwrap();
    b_task.await.unwrap();
}
