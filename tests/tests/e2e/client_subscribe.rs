//! `Connection::subscribe(uri)` returns the stream of the server's notifications of that uri:
//! SUBSCRIBE_URI confirmed (an empty CONFIRM_SUBSCRIBE, as Python's README handler answers), the
//! server's NOTIFY_URI messages delivered in order to the stream and not to the inbox, other uris
//! still to the inbox; `unsubscribe` tells the server; the stream ends with the connection.
//! Over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use netaio::router::Context;
use netaio::{Message, MessageType, Router, SubscribeError, TcpClient, TcpServer};

fn router() -> Router {
    Router::new()
        .on(
            MessageType::SUBSCRIBE_URI,
            |msg: Message, ctx: Context| async move {
                ctx.subscribe(msg.uri().clone())?;
                Ok::<_, SubscribeError>(Message::new(
                    MessageType::CONFIRM_SUBSCRIBE,
                    msg.uri().clone(),
                    "",
                ))
            },
        )
        .on(
            MessageType::UNSUBSCRIBE_URI,
            |msg: Message, ctx: Context| async move {
                ctx.unsubscribe(msg.uri().clone());
                Message::new(MessageType::CONFIRM_UNSUBSCRIBE, msg.uri().clone(), "")
            },
        )
}

#[tokio::test(start_paused = true)]
async fn notifications_arrive_on_the_subscription_stream() {
    let server = TcpServer::bind(([127, 0, 0, 1], 0), router())
        .await
        .unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    let serving = tokio::spawn(server.serve());
    let conn = TcpClient::new().connect(addr).await.unwrap();

    let mut news = conn.subscribe("news").await.unwrap();
    assert_eq!(news.uri().as_ref(), b"news");
    for text in ["one", "two"] {
        let n = handle
            .notify(
                b"news",
                &Message::new(MessageType::NOTIFY_URI, "news", text),
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    // Another uri, not subscribed here: the inbox, as before.
    handle
        .broadcast(&Message::new(MessageType::NOTIFY_URI, "other", "x"))
        .await
        .unwrap();
    assert_eq!(news.recv().await.unwrap().content().as_ref(), b"one");
    assert_eq!(news.recv().await.unwrap().content().as_ref(), b"two");
    let other = conn.receive_timeout(Duration::from_secs(5)).await.unwrap();
    assert_eq!(other.uri().as_ref(), b"other");

    // Unsubscribed: the server no longer counts it.
    news.unsubscribe().await.unwrap();
    let n = handle
        .notify(
            b"news",
            &Message::new(MessageType::NOTIFY_URI, "news", "three"),
        )
        .await
        .unwrap();
    assert_eq!(n, 0);

    // The stream ends with the connection.
    let mut again = conn.subscribe("news").await.unwrap();
    conn.close().await;
    assert!(again.recv().await.is_none());
    handle.shutdown();
    serving.await.unwrap();
}
