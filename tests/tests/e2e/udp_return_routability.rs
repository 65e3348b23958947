//! Return routability on a UdpNode, over 127.0.0.1 (issue 12, defects 2 and 8): the node never
//! sends an address that has not proved it receives (by an authenticated datagram or a cookie
//! round trip) more bytes than it received from it. Raw sockets play the throwaway or forged
//! sources; real nodes play the callers that prove their address.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use netaio::message::{PostcardCodec, fields};
use netaio::plugin::HmacAuth;
use netaio::router::Context;
use netaio::udp::{UdpNode, UdpNodeBuilder};
use netaio::{Message, MessageType, RequestError, Router, SubscribeError};
use netaio_tests::{RawUdp as Raw, WAIT, start_udp as start, within};
use tokio::sync::mpsc;

/// The `udp_node` example's pub/sub (the service of issue 12's measurement): SUBSCRIBE_URI
/// subscribes the sender, PUBLISH_URI notifies every subscriber with the content and answers
/// OK; and `big`, a small request with a large answer.
fn pubsub() -> Router {
    Router::new()
        .on(
            MessageType::SUBSCRIBE_URI,
            |m: Message, ctx: Context| async move {
                ctx.subscribe(m.uri().clone())?;
                Ok::<_, SubscribeError>(Message::new(
                    MessageType::CONFIRM_SUBSCRIBE,
                    m.uri().clone(),
                    "",
                ))
            },
        )
        .on(
            MessageType::PUBLISH_URI,
            |m: Message, ctx: Context| async move {
                let notify = Message::new(
                    MessageType::NOTIFY_URI,
                    m.uri().clone(),
                    m.content().clone(),
                );
                let n = ctx.notify(m.uri(), &notify).await.unwrap_or(0);
                Message::ok(m.uri().clone(), format!("notified {n}"))
            },
        )
        .on((MessageType::REQUEST_URI, "big"), || async {
            Message::respond("big", vec![b'x'; 4000])
        })
        .on(
            (MessageType::REQUEST_URI, "echo"),
            |m: Message| async move { Message::respond("echo", m.content().clone()) },
        )
}

fn frame(msg: &Message) -> Bytes {
    msg.to_bytes(&PostcardCodec).unwrap()
}

/// The attack of issue 12 (defect 2): throwaway sockets subscribe, one PUBLISH of 60,000 bytes
/// follows. It used to become 60 KB of NOTIFY to each of them; now none of them is sent more than
/// it sent, and their subscriptions did not count.
#[tokio::test]
async fn one_publish_cannot_make_the_node_send_throwaway_sockets_more_than_they_sent() {
    let node = start(UdpNode::builder().router(pubsub())).await;
    let mut throwaway = Vec::new();
    for i in 0..200u64 {
        let mut raw = Raw::new().await;
        let mut subscribe = Message::new(MessageType::SUBSCRIBE_URI, "news", "");
        // Half of them look like native callers (a request id: they are challenged, and never
        // answer), half like Python ones (handled; the subscription refused).
        if i % 2 == 0 {
            subscribe.set_request_id(i + 1);
        }
        raw.send(&frame(&subscribe), node.addr).await;
        throwaway.push(raw);
    }
    // The PUBLISH, from another throwaway socket: its OK comes after every notification is out.
    let mut publisher = Raw::new().await;
    let publish = Message::new(MessageType::PUBLISH_URI, "news", vec![b'p'; 60_000]);
    publisher.send(&frame(&publish), node.addr).await;
    let ok = Message::decode(Bytes::from(publisher.recv().await), &PostcardCodec).unwrap();
    assert_eq!(ok, Message::ok("news", "notified 0"));

    for (i, raw) in throwaway.iter().enumerate() {
        let got: usize = raw.drain().iter().map(Vec::len).sum();
        assert!(
            got <= raw.sent,
            "throwaway socket {i} sent {} bytes and was sent {got}",
            raw.sent
        );
    }
    assert!(node.handle.subscribers("news").is_empty());
    let stats = node.handle.stats();
    assert_eq!(stats.challenges, 100);
    assert_eq!(stats.subscriptions_unverified, 100);
    node.stop().await;
}

/// A caller that proves its address (a cookie round trip, or an authenticated datagram) is a
/// subscriber like any other: it gets the notification in full.
#[tokio::test]
async fn a_subscriber_that_proved_its_address_gets_notifications() {
    for secret in [None, Some(&b"shared"[..])] {
        let with = |b: UdpNodeBuilder| match secret {
            Some(s) => b.auth(HmacAuth::new(s)),
            None => b,
        };
        let node = start(with(UdpNode::builder().router(pubsub()))).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sub = start(with(UdpNode::builder().router(Router::new().on(
            (MessageType::NOTIFY_URI, "news"),
            move |m: Message| {
                let tx = tx.clone();
                async move { tx.send(m.content().len()).unwrap() }
            },
        ))))
        .await;
        let r = sub
            .handle
            .call(
                node.addr,
                Message::new(MessageType::SUBSCRIBE_URI, "news", ""),
            )
            .await
            .unwrap();
        assert_eq!(r.message_type, MessageType::CONFIRM_SUBSCRIBE);
        assert_eq!(node.handle.subscribers("news"), vec![sub.addr]);
        let publisher = start(with(UdpNode::builder())).await;
        let ok = publisher
            .handle
            .call(
                node.addr,
                Message::new(MessageType::PUBLISH_URI, "news", vec![b'p'; 60_000]),
            )
            .await
            .unwrap();
        assert_eq!(ok.content().as_ref(), b"notified 1");
        assert_eq!(
            within(WAIT, "the notification", rx.recv()).await,
            Some(60_000)
        );
        // With HmacAuth every datagram is verified by itself: nobody is challenged.
        let challenges = node.handle.stats().challenges;
        assert_eq!(
            challenges,
            if secret.is_some() { 0 } else { 2 },
            "{secret:?}"
        );
        for n in [sub, publisher, node] {
            n.stop().await;
        }
    }
}

/// Defect 8: a node without auth answered an unauthenticated datagram with more than it had
/// (NOT_FOUND is 1.82× the minimal frame). Every reply to an unverified address is now at most
/// the size of the datagram it answers: an error reply shortened to its type, anything else
/// dropped.
#[tokio::test]
async fn an_unauthenticated_datagram_gets_no_reply_larger_than_itself() {
    let node = start(UdpNode::builder().router(pubsub())).await;
    let mut raw = Raw::new().await;
    // The minimal frame (11 bytes) to no route: NOT_FOUND, shortened to its 11-byte form.
    let minimal = frame(&Message::new(MessageType::REQUEST_URI, "", ""));
    assert_eq!(minimal.len(), 11);
    raw.send(&minimal, node.addr).await;
    let reply = raw.recv().await;
    assert!(reply.len() <= minimal.len(), "{} > 11", reply.len());
    let reply = Message::decode(Bytes::from(reply), &PostcardCodec).unwrap();
    assert_eq!(reply.message_type, MessageType::NOT_FOUND);

    // With a request id (as a native caller sends): the challenge does not fit in 19 bytes, so
    // it is shortened too; the caller still learns that its request was not handled.
    let mut small = Message::new(MessageType::REQUEST_URI, "x", "");
    small.set_request_id(1);
    let small = frame(&small);
    raw.send(&small, node.addr).await;
    let reply = raw.recv().await;
    assert!(
        reply.len() <= small.len(),
        "{} > {}",
        reply.len(),
        small.len()
    );
    let reply = Message::decode(Bytes::from(reply), &PostcardCodec).unwrap();
    assert_eq!(
        (reply.message_type, reply.reply_ref()),
        (MessageType::NOT_PERMITTED, Some(1))
    );

    // A small request for a large answer: the answer is dropped. The echo sent after it is the
    // first thing to come back.
    let big = frame(&Message::new(MessageType::REQUEST_URI, "big", ""));
    raw.send(&big, node.addr).await;
    let echo = frame(&Message::new(MessageType::REQUEST_URI, "echo", "probe"));
    raw.send(&echo, node.addr).await;
    let reply = Message::decode(Bytes::from(raw.recv().await), &PostcardCodec).unwrap();
    assert_eq!(reply, Message::respond("echo", "probe"));
    assert_eq!(node.handle.stats().replies_limited, 3);
    node.stop().await;
}

/// A native caller without auth is challenged on its first request, sends it again with the
/// cookie, and is not challenged again: the handler runs once per call. A tiny request is padded
/// by its caller so that the challenge fits.
#[tokio::test]
async fn a_native_caller_proves_its_address_once_and_each_request_is_handled_once() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let node = start(UdpNode::builder().router(Router::new().on(
        MessageType::REQUEST_URI,
        move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Message::respond("", vec![b'r'; 1000]) }
        },
    )))
    .await;
    let caller = start(UdpNode::builder()).await;
    for i in 1..=3 {
        // Empty uri and content: the smallest request there is, padded on the way out.
        let r = caller.handle.request(node.addr, "", "").await.unwrap();
        assert_eq!(r.content().len(), 1000);
        assert_eq!(runs.load(Ordering::SeqCst), i);
    }
    let stats = node.handle.stats();
    assert_eq!((stats.challenges, stats.replies_limited), (1, 0));
    // Another address (another caller) has to prove its own.
    let other = start(UdpNode::builder()).await;
    other.handle.request(node.addr, "", "").await.unwrap();
    assert_eq!(node.handle.stats().challenges, 2);
    // A forged cookie does not verify: a raw socket echoing another's cookie is challenged.
    let mut raw = Raw::new().await;
    let mut forged = Message::new(MessageType::REQUEST_URI, "", vec![0u8; 64]);
    forged.set_request_id(7);
    forged.auth.insert(fields::COOKIE, vec![0u8; 16]);
    raw.send(&frame(&forged), node.addr).await;
    let reply = Message::decode(Bytes::from(raw.recv().await), &PostcardCodec).unwrap();
    assert_eq!(reply.message_type, MessageType::NOT_PERMITTED);
    assert!(
        reply.auth.get(fields::COOKIE).is_some(),
        "a fresh challenge"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    for n in [caller, other, node] {
        n.stop().await;
    }
}

/// Defect 2's lock-out: fake subscribers filling the node-wide limit kept a legitimate one out
/// for good. Unverified ones do not count at all; verified ones (their own addresses, proved)
/// fill the table, and the legitimate subscriber still gets in, evicting the least recently
/// renewed, and gets its notification.
#[tokio::test]
async fn fake_subscribers_cannot_lock_out_a_legitimate_one() {
    let node = start(
        UdpNode::builder()
            .router(pubsub())
            .max_total_subscriptions(64),
    )
    .await;
    // 1,000 unverified subscriptions from throwaway sockets: none counts.
    for _ in 0..1000 {
        let mut raw = Raw::new().await;
        let subscribe = Message::new(MessageType::SUBSCRIBE_URI, "news", "");
        raw.send(&frame(&subscribe), node.addr).await;
    }
    // A verified attacker fills the node-wide limit with keys of its own.
    let attacker = start(UdpNode::builder()).await;
    for k in 0..64 {
        attacker
            .handle
            .call(
                node.addr,
                Message::new(MessageType::SUBSCRIBE_URI, format!("junk/{k}"), ""),
            )
            .await
            .unwrap();
    }
    assert!(node.handle.subscribers("news").is_empty());
    assert_eq!(node.handle.stats().subscriptions_unverified, 1000);
    // The legitimate subscriber gets in all the same.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let legit = start(UdpNode::builder().router(Router::new().on(
        (MessageType::NOTIFY_URI, "news"),
        move |m: Message| {
            let tx = tx.clone();
            async move { tx.send(m.content().clone()).unwrap() }
        },
    )))
    .await;
    let r = legit
        .handle
        .call(
            node.addr,
            Message::new(MessageType::SUBSCRIBE_URI, "news", ""),
        )
        .await
        .unwrap();
    assert_eq!(r.message_type, MessageType::CONFIRM_SUBSCRIBE);
    assert_eq!(node.handle.stats().subscriptions_evicted, 1);
    let n = node
        .handle
        .notify(
            "news",
            &Message::new(MessageType::NOTIFY_URI, "news", "hello"),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let got = within(WAIT, "the notification", rx.recv()).await.unwrap();
    assert_eq!(got.as_ref(), b"hello");
    for n in [attacker, legit, node] {
        n.stop().await;
    }
}

/// The subscription table as the application sees it: at the node-wide limit the least recently
/// renewed subscription is evicted (renewing is subscribing again), and only a limit of 0
/// refuses, with an error that says the limit is node-wide.
#[tokio::test]
async fn at_the_node_wide_limit_the_least_recently_renewed_subscription_is_evicted() {
    let node = start(UdpNode::builder().max_total_subscriptions(2)).await;
    let a: SocketAddr = "127.0.0.1:1001".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:1002".parse().unwrap();
    node.handle.subscribe(a, "k1").unwrap();
    node.handle.subscribe(b, "k2").unwrap();
    node.handle.subscribe(a, "k1").unwrap(); // renewed: B's is now the oldest
    node.handle.subscribe(a, "k3").unwrap();
    assert!(node.handle.subscribers("k2").is_empty(), "B's was evicted");
    assert_eq!(node.handle.subscribers("k1"), vec![a]);
    for i in 0..100 {
        node.handle.subscribe(b, format!("new-{i}")).unwrap();
    }
    assert_eq!(
        node.handle.subscription_keys(),
        2,
        "evicted keys leave nothing behind"
    );
    assert_eq!(node.handle.subscribers("new-99"), vec![b]);
    assert_eq!(node.handle.stats().subscriptions_evicted, 101);
    node.stop().await;

    let none = start(UdpNode::builder().max_total_subscriptions(0)).await;
    let e = none.handle.subscribe(a, "k").unwrap_err();
    assert_eq!(e, SubscribeError::NodeLimit(0));
    let text = e.to_string();
    assert!(text.contains("node-wide") && text.contains("UDP"), "{text}");
    none.stop().await;
}

/// A cookie is bound to the address it was sent to: echoed from another address it verifies
/// nothing (that address is challenged afresh), echoed from its own it does.
#[tokio::test]
async fn a_cookie_verifies_only_the_address_it_was_sent_to() {
    let node = start(UdpNode::builder().router(pubsub())).await;
    let mut a = Raw::new().await;
    let mut b = Raw::new().await;
    let mut req = Message::new(MessageType::REQUEST_URI, "echo", vec![0u8; 64]);
    req.set_request_id(1);
    a.send(&frame(&req), node.addr).await;
    let challenge = Message::decode(Bytes::from(a.recv().await), &PostcardCodec).unwrap();
    assert_eq!(challenge.message_type, MessageType::NOT_PERMITTED);
    let cookie = challenge.auth.get(fields::COOKIE).unwrap().clone();
    // B echoes A's cookie: challenged, with a cookie of its own.
    req.auth.insert(fields::COOKIE, cookie.clone());
    b.send(&frame(&req), node.addr).await;
    let again = Message::decode(Bytes::from(b.recv().await), &PostcardCodec).unwrap();
    assert_eq!(again.message_type, MessageType::NOT_PERMITTED);
    assert_ne!(again.auth.get(fields::COOKIE), Some(&cookie));
    // A echoes it: handled.
    a.send(&frame(&req), node.addr).await;
    let reply = Message::decode(Bytes::from(a.recv().await), &PostcardCodec).unwrap();
    assert_eq!(reply.message_type, MessageType::RESPOND_URI);
    assert_eq!(node.handle.stats().challenges, 2);
    node.stop().await;
}

/// A caller sends a challenged request again once; challenged again, the call fails with
/// NOT_PERMITTED instead of looping. The "node" here is a raw socket that challenges everything.
#[tokio::test]
async fn a_caller_challenged_twice_fails_with_not_permitted() {
    let caller = start(UdpNode::builder()).await;
    let challenger = Raw::new().await;
    let to = challenger.sock.local_addr().unwrap();
    let call = {
        let h = caller.handle.clone();
        tokio::spawn(async move { h.request(to, "x", "").await })
    };
    let mut cookies = Vec::new();
    for round in 0..2u8 {
        let mut buf = vec![0u8; 65_536];
        let (n, from) = within(WAIT, "the request", challenger.sock.recv_from(&mut buf))
            .await
            .unwrap();
        let req = Message::decode(Bytes::copy_from_slice(&buf[..n]), &PostcardCodec).unwrap();
        cookies.push(req.auth.get(fields::COOKIE).cloned());
        let mut challenge = Message::new(MessageType::NOT_PERMITTED, "", "");
        challenge.set_reply_ref(req.request_id().unwrap());
        challenge.auth.insert(fields::COOKIE, vec![round; 16]);
        // The request was padded so that this challenge is no larger.
        let challenge = frame(&challenge);
        assert!(challenge.len() <= n, "{} > {n}", challenge.len());
        challenger.sock.send_to(&challenge, from).await.unwrap();
    }
    let e = within(WAIT, "the call", call).await.unwrap().unwrap_err();
    assert!(matches!(e, RequestError::NotPermitted(_)), "{e:?}");
    assert_eq!(
        cookies,
        [None, Some(Bytes::from(vec![0u8; 16]))],
        "echoed once"
    );
    caller.stop().await;
}
