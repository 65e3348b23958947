//! `subscribe udp://…`: against a UdpNode the test starts on 127.0.0.1, which keeps its
//! subscribers as `netaio serve` does (SUBSCRIBE_URI subscribes the sender, UNSUBSCRIBE_URI
//! removes it) and notifies them: the subscription is made, renewed, printed from and
//! cancelled at the end; with `--hmac` on both sides too.

use std::net::SocketAddr;
use std::sync::mpsc;

use netaio::plugin::HmacAuth;
use netaio::{Context, Message, MessageType, Router, UdpHandle, UdpNode};
use tokio::runtime::Runtime;

use crate::common::{LIMIT, Proc, netaio};

/// What the node's handlers saw: the type and uri of each (un)subscription.
type Seen = mpsc::Receiver<(MessageType, String)>;

/// A node on 127.0.0.1 serving subscriptions on `rt`; its handle, address and what it sees.
fn node(rt: &Runtime, hmac: Option<&str>) -> (UdpHandle, SocketAddr, Seen) {
    let (tx, seen) = mpsc::channel();
    let (sub_tx, unsub_tx) = (tx.clone(), tx);
    let router = Router::new()
        .on(
            MessageType::SUBSCRIBE_URI,
            move |msg: Message, ctx: Context| {
                let tx = sub_tx.clone();
                async move {
                    ctx.subscribe(msg.uri().clone()).unwrap();
                    let uri = String::from_utf8_lossy(msg.uri()).into_owned();
                    let _ = tx.send((MessageType::SUBSCRIBE_URI, uri));
                    Message::new(MessageType::CONFIRM_SUBSCRIBE, msg.uri().clone(), "")
                }
            },
        )
        .on(
            MessageType::UNSUBSCRIBE_URI,
            move |msg: Message, ctx: Context| {
                let tx = unsub_tx.clone();
                async move {
                    ctx.unsubscribe(msg.uri());
                    let uri = String::from_utf8_lossy(msg.uri()).into_owned();
                    let _ = tx.send((MessageType::UNSUBSCRIBE_URI, uri));
                    Message::new(MessageType::CONFIRM_UNSUBSCRIBE, msg.uri().clone(), "")
                }
            },
        );
    let node = rt.block_on(async {
        let mut b = UdpNode::builder()
            .address(([127, 0, 0, 1], 0))
            .router(router);
        if let Some(secret) = hmac {
            b = b.auth(HmacAuth::new(secret.as_bytes()));
        }
        b.bind().await.unwrap()
    });
    let (handle, addr) = (node.handle(), node.local_addr());
    rt.spawn(node.serve());
    (handle, addr, seen)
}

/// The next thing the node saw (within the limit).
fn next(seen: &Seen) -> (MessageType, String) {
    seen.recv_timeout(LIMIT)
        .expect("the node to see a (un)subscription")
}

fn subscribe_publish_renew_unsubscribe(hmac: Option<&str>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (handle, addr, seen) = node(&rt, hmac);
    let target = format!("udp://{addr}");
    let mut args = vec!["--json"];
    if let Some(secret) = hmac {
        args.extend(["--hmac", secret]);
    }
    args.extend([
        "subscribe",
        &target,
        "news",
        "weather",
        "--count",
        "2",
        "--renew",
        "200ms",
    ]);
    let mut sub = Proc::spawn(netaio(&args));
    assert_eq!(sub.event("subscribed")["uri"], "news");
    assert_eq!(sub.event("subscribed")["uri"], "weather");
    let first: Vec<_> = (0..2).map(|_| next(&seen)).collect();
    assert_eq!(
        first,
        [
            (MessageType::SUBSCRIBE_URI, "news".to_owned()),
            (MessageType::SUBSCRIBE_URI, "weather".to_owned())
        ]
    );
    let subscriber = handle.subscribers("news");
    assert_eq!(subscriber.len(), 1);
    assert_eq!(handle.subscribers("weather"), subscriber);
    // The renewal: both uris subscribed again by the next tick, from the same address.
    let renewed: Vec<_> = (0..2).map(|_| next(&seen)).collect();
    assert_eq!(renewed, first);
    assert_eq!(handle.subscribers("news"), subscriber);
    for (t, uri, text) in [
        (MessageType::NOTIFY_URI, "news", "first"),
        (MessageType::PUBLISH_URI, "weather", "rain"),
    ] {
        let sent = rt
            .block_on(handle.notify(uri, &Message::new(t, uri, text)))
            .unwrap();
        assert_eq!(sent, 1);
        let note = sub.event("notification");
        assert_eq!(
            (
                note["type"].as_str(),
                note["uri"].as_str(),
                note["content"].as_str()
            ),
            (t.name(), Some(uri), Some(text))
        );
    }
    assert_eq!(sub.wait(), Some(0));
    // On the way out: UNSUBSCRIBE for each uri (renewals may still be in the queue before).
    let mut unsubscribed = Vec::new();
    while unsubscribed.len() < 2 {
        let (t, uri) = next(&seen);
        if t == MessageType::UNSUBSCRIBE_URI {
            unsubscribed.push(uri);
        }
    }
    unsubscribed.sort();
    assert_eq!(unsubscribed, ["news", "weather"]);
    assert!(handle.subscribers("news").is_empty());
    assert!(handle.subscribers("weather").is_empty());
    handle.shutdown();
}

#[test]
fn a_udp_subscription_is_renewed_printed_and_cancelled() {
    subscribe_publish_renew_unsubscribe(None);
}

#[test]
fn a_udp_subscription_with_hmac() {
    subscribe_publish_renew_unsubscribe(Some("s"));
}

#[test]
fn a_udp_subscription_with_the_wrong_secret_fails() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (handle, addr, _seen) = node(&rt, Some("s"));
    let out = crate::common::run(&[
        "--json",
        "--hmac",
        "not-s",
        "subscribe",
        &format!("udp://{addr}"),
        "news",
        "--timeout",
        "1",
    ]);
    // The node drops what fails its auth check: no answer, so the confirmation times out.
    out.assert_code(5);
    assert!(handle.subscribers("news").is_empty());
    handle.shutdown();
}

#[test]
fn a_udp_subscription_to_netaio_serve_over_ipv6() {
    let (_server, port) = crate::common::serve("udp://[::1]:0", &[]);
    let addr = format!("udp://[::1]:{port}");
    let mut sub = Proc::spawn(netaio(&[
        "--json",
        "subscribe",
        &addr,
        "news",
        "--count",
        "1",
    ]));
    assert_eq!(sub.event("subscribed")["uri"], "news");
    let out = crate::common::run(&["--json", "call", &addr, "-t", "PUBLISH_URI", "news", "hi"]);
    out.assert_code(0);
    let note = sub.event("notification");
    assert_eq!(
        (
            note["type"].as_str(),
            note["uri"].as_str(),
            note["content"].as_str()
        ),
        (Some("NOTIFY_URI"), Some("news"), Some("hi"))
    );
    assert_eq!(sub.wait(), Some(0));
}
