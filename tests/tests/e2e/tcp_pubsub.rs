//! Subscribe / notify and broadcast: the server pushes messages to the clients subscribed to a key
//! or to every client; a client that leaves is dropped from every subscription.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use bytes::Bytes;

use netaio::router::Context;
use netaio::tcp::ConnectionId;
use netaio::{Connection, Message, MessageType, ReceiveError, Router, TcpClient};
use netaio_tests::{WAIT, connected, disconnected, echo_router, start};

const TOPIC: &str = "news";

/// SUBSCRIBE_URI subscribes the sender to the uri and answers CONFIRM_SUBSCRIBE carrying its
/// connection id; UNSUBSCRIBE_URI undoes it; PUBLISH_URI notifies the uri's subscribers and answers OK
/// with how many were notified; REQUEST_URI "shout" broadcasts to everyone.
fn pubsub_router() -> Router {
    async fn subscribe(msg: Message, ctx: Context) -> Result<Message, String> {
        ctx.subscribe(msg.uri().clone())
            .map_err(|e| e.to_string())?;
        let id = ctx.connection_id().unwrap();
        Ok(Message::new(
            MessageType::CONFIRM_SUBSCRIBE,
            msg.uri().clone(),
            id.0.to_string(),
        ))
    }
    async fn unsubscribe(msg: Message, ctx: Context) -> Message {
        let was = ctx.unsubscribe(msg.uri());
        Message::new(
            MessageType::CONFIRM_UNSUBSCRIBE,
            msg.uri().clone(),
            was.to_string(),
        )
    }
    async fn publish(msg: Message, ctx: Context) -> Result<Message, String> {
        let note = Message::new(
            MessageType::NOTIFY_URI,
            msg.uri().clone(),
            msg.content().clone(),
        );
        let n = ctx
            .notify(msg.uri(), &note)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Message::ok(msg.uri().clone(), n.to_string()))
    }
    async fn shout(msg: Message, ctx: Context) -> Result<Message, String> {
        let all = Message::new(MessageType::custom(50), "shout", msg.content().clone());
        let n = ctx.broadcast(&all).await.map_err(|e| e.to_string())?;
        Ok(Message::respond("shout", n.to_string()))
    }
    Router::new()
        .on(MessageType::SUBSCRIBE_URI, subscribe)
        .on(MessageType::UNSUBSCRIBE_URI, unsubscribe)
        .on(MessageType::PUBLISH_URI, publish)
        .on((MessageType::REQUEST_URI, "shout"), shout)
}

async fn subscribe(conn: &Connection, key: &str) -> ConnectionId {
    let r = conn
        .call(Message::new(MessageType::SUBSCRIBE_URI, key.to_owned(), ""))
        .await
        .unwrap();
    assert_eq!(r.message_type, MessageType::CONFIRM_SUBSCRIBE);
    ConnectionId(std::str::from_utf8(r.content()).unwrap().parse().unwrap())
}

async fn publish(conn: &Connection, key: &str, content: &str) -> usize {
    let r = conn
        .call(Message::new(
            MessageType::PUBLISH_URI,
            key.to_owned(),
            content.to_owned(),
        ))
        .await
        .unwrap();
    assert_eq!(r.message_type, MessageType::OK);
    std::str::from_utf8(r.content()).unwrap().parse().unwrap()
}

async fn expect_notify(conn: &Connection, content: &str) {
    let m = conn.receive_timeout(WAIT).await.unwrap();
    assert_eq!(m.message_type, MessageType::NOTIFY_URI);
    assert_eq!(m.uri().as_ref(), TOPIC.as_bytes());
    assert_eq!(m.content().as_ref(), content.as_bytes());
}

async fn expect_nothing(conn: &Connection) {
    // Bounded negative check: nothing else is in the inbox.
    let r = conn.receive_timeout(Duration::from_millis(100)).await;
    assert!(matches!(r, Err(ReceiveError::Timeout(_))), "{r:?}");
}

#[tokio::test]
async fn subscribers_are_notified_and_a_departed_one_is_forgotten() {
    let server = start(pubsub_router()).await;
    let mut events = server.events();
    let (ca, cb) = (TcpClient::new(), TcpClient::new());
    let a = ca.connect(server.addr).await.unwrap();
    let b = cb.connect(server.addr).await.unwrap();
    let id_a = subscribe(&a, TOPIC).await;
    let id_b = subscribe(&b, TOPIC).await;
    assert_ne!(id_a, id_b);
    let mut both = vec![id_a, id_b];
    both.sort();
    assert_eq!(server.handle.subscribers(TOPIC.as_bytes()), both);
    let info = server.handle.connections();
    assert!(
        info.iter()
            .all(|c| c.subscriptions == vec![bytes::Bytes::from(TOPIC)])
    );

    // A publishes; both subscribers (A included) get the notification.
    assert_eq!(publish(&a, TOPIC, "first").await, 2);
    expect_notify(&a, "first").await;
    expect_notify(&b, "first").await;

    // B leaves; once the server has seen it go, B is no longer a subscriber.
    b.close().await;
    assert!(b.is_closed());
    let reason = disconnected(&mut events, id_b).await;
    assert_eq!(reason, netaio::tcp::CloseReason::PeerClosed);
    assert_eq!(server.handle.subscribers(TOPIC.as_bytes()), vec![id_a]);

    // Only A is notified now.
    assert_eq!(publish(&a, TOPIC, "second").await, 1);
    expect_notify(&a, "second").await;
    expect_nothing(&a).await;

    // A unsubscribes: nobody is notified.
    let r = a
        .call(Message::new(MessageType::UNSUBSCRIBE_URI, TOPIC, ""))
        .await
        .unwrap();
    assert_eq!(r.message_type, MessageType::CONFIRM_UNSUBSCRIBE);
    assert_eq!(r.content().as_ref(), b"true");
    assert!(server.handle.subscribers(TOPIC.as_bytes()).is_empty());
    assert_eq!(publish(&a, TOPIC, "third").await, 0);
    expect_nothing(&a).await;

    a.close().await;
    server.stop().await;
}

#[tokio::test]
async fn notify_from_the_server_handle_reaches_subscribers_of_that_key_only() {
    let server = start(pubsub_router()).await;
    let (ca, cb) = (TcpClient::new(), TcpClient::new());
    let a = ca.connect(server.addr).await.unwrap();
    let b = cb.connect(server.addr).await.unwrap();
    subscribe(&a, TOPIC).await;
    subscribe(&b, "other").await;
    let n = server
        .handle
        .notify(
            TOPIC.as_bytes(),
            &Message::new(MessageType::NOTIFY_URI, TOPIC, "only a"),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    expect_notify(&a, "only a").await;
    expect_nothing(&b).await;
    a.close().await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn broadcast_reaches_every_connected_client() {
    let server = start(pubsub_router()).await;
    let mut events = server.events();
    let clients: Vec<_> = (0..3).map(|_| TcpClient::new()).collect();
    let mut conns = Vec::new();
    for c in &clients {
        conns.push(c.connect(server.addr).await.unwrap());
    }
    for _ in 0..3 {
        connected(&mut events, None).await;
    }
    assert_eq!(server.handle.connection_count(), 3);

    // From the handle.
    let msg = Message::new(MessageType::custom(50), "all", "hello everyone");
    assert_eq!(server.handle.broadcast(&msg).await.unwrap(), 3);
    for c in &conns {
        let m = c.receive_timeout(WAIT).await.unwrap();
        assert_eq!(m, msg);
    }

    // From a handler, through its context.
    let r = conns[0].request("shout", "from a handler").await.unwrap();
    assert_eq!(r.content().as_ref(), b"3");
    for c in &conns {
        let m = c.receive_timeout(WAIT).await.unwrap();
        assert_eq!(m.message_type, MessageType::custom(50));
        assert_eq!(m.content().as_ref(), b"from a handler");
    }
    for c in &conns {
        c.close().await;
    }
    server.stop().await;
}

/// A handler that sends to its own connection (here a notify of a subscribed publisher) before it
/// returns its reply: the queued message goes out first, in the order the handler produced them
/// (the Python interop server relies on it: NOTIFY_URI, then OK).
#[tokio::test]
async fn messages_a_handler_queues_for_its_own_connection_precede_its_reply() {
    let server = start(pubsub_router()).await;
    let mut raw = netaio_tests::RawConn::connect(server.addr).await;
    let confirm = raw
        .round_trip(&Message::new(MessageType::SUBSCRIBE_URI, TOPIC, ""))
        .await;
    assert_eq!(confirm.message_type, MessageType::CONFIRM_SUBSCRIBE);
    for round in 0..20 {
        let content = format!("round {round}");
        raw.send(&Message::new(
            MessageType::PUBLISH_URI,
            TOPIC,
            content.clone(),
        ))
        .await;
        let first = raw.read_message().await;
        let second = raw.read_message().await;
        assert_eq!(
            (first.message_type, second.message_type),
            (MessageType::NOTIFY_URI, MessageType::OK),
            "round {round}: {first:?} then {second:?}"
        );
        assert_eq!(first.content().as_ref(), content.as_bytes());
        assert_eq!(second.content().as_ref(), b"1");
    }
    server.stop().await;
}

/// A subscription key sliced out of a larger buffer (as keys taken from a received frame are) is
/// stored in its own allocation, so it does not keep the buffer alive; a second subscriber to
/// the same key shares the stored copy.
#[tokio::test]
async fn stored_subscription_keys_do_not_keep_the_received_buffer_alive() {
    let server = start(echo_router()).await;
    let mut events = server.events();
    let a = TcpClient::new().connect(server.addr).await.unwrap();
    let a_id = connected(&mut events, None).await;
    let b = TcpClient::new().connect(server.addr).await.unwrap();
    let b_id = connected(&mut events, None).await;

    let chunk = Bytes::from(vec![b'k'; 16 * 1024]);
    let inside = |k: &Bytes| chunk.as_ptr_range().contains(&k.as_ptr());
    server.handle.subscribe(a_id, chunk.slice(0..5)).unwrap();
    server
        .handle
        .subscribe(b_id, chunk.slice(100..105))
        .unwrap();
    let keys: Vec<Bytes> = server
        .handle
        .connections()
        .into_iter()
        .flat_map(|c| c.subscriptions)
        .collect();
    assert_eq!(keys.len(), 2);
    for k in &keys {
        assert_eq!(&k[..], b"kkkkk");
        assert!(!inside(k), "a stored key points into the received buffer");
    }
    assert_eq!(
        keys[0].as_ptr(),
        keys[1].as_ptr(),
        "one stored copy per key"
    );
    assert_eq!(server.handle.subscribers(b"kkkkk"), vec![a_id, b_id]);

    a.close().await;
    b.close().await;
    server.stop().await;
}
