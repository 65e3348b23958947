//! A one-shot route with inner plugins is taken only by a message that passes its checks: a
//! message its inner auth refuses is answered AUTH_ERROR (TCP) or dropped (UDP), and the route is
//! still there for the message it was waiting for. (Taking it first would let anyone who can
//! reach the node burn a one-shot route with one unauthenticated message.)

use std::time::Duration;

use netaio::plugin::{Plugins, SendOptions};
use netaio::router::Route;
use netaio::udp::UdpNode;
use netaio::{Message, MessageType, RequestError, Router, TcpClient, TcpServer};

use crate::common::Token;

/// A one-shot route guarded by `Token(b"right")`, and a persistent route of the type behind it.
fn router() -> Router {
    Router::new()
        .route(
            Route::once((MessageType::REQUEST_URI, "ticket"), || async {
                Message::respond("ticket", "one-shot")
            })
            .with_inner(Plugins::new().auth(Token(b"right"))),
        )
        .on(MessageType::REQUEST_URI, || async {
            Message::respond("ticket", "persistent")
        })
}

fn opts(token: &'static [u8]) -> SendOptions {
    SendOptions::new()
        .inner(Plugins::new().auth(Token(token)))
        .timeout(Duration::from_millis(300))
}

fn msg() -> Message {
    Message::new(MessageType::REQUEST_URI, "ticket", "")
}

#[tokio::test]
async fn tcp_refused_messages_do_not_take_a_one_shot_route() {
    let server = TcpServer::bind(([127, 0, 0, 1], 0), router())
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    let conn = TcpClient::new().connect(addr).await.unwrap();

    for _ in 0..3 {
        let e = conn.call_with(msg(), &opts(b"wrong")).await.unwrap_err();
        assert!(
            matches!(&e, RequestError::Auth(r) if r.message_type == MessageType::AUTH_ERROR),
            "{e:?}"
        );
    }
    let r = conn.call_with(msg(), &opts(b"right")).await.unwrap();
    assert_eq!(r.content().as_ref(), b"one-shot");
    // Taken: the next request goes to the persistent route (which has no inner plugins).
    let r = conn.call(msg()).await.unwrap();
    assert_eq!(r.content().as_ref(), b"persistent");

    conn.close().await;
    handle.shutdown();
    task.await.unwrap();
}

#[tokio::test]
async fn udp_refused_datagrams_do_not_take_a_one_shot_route() {
    let server = UdpNode::bind(([127, 0, 0, 1], 0), router()).await.unwrap();
    let addr = server.local_addr();
    let server_handle = server.handle();
    let server_task = tokio::spawn(server.serve());
    let client = UdpNode::bind(([127, 0, 0, 1], 0), Router::new())
        .await
        .unwrap();
    let handle = client.handle();
    let client_task = tokio::spawn(client.serve());

    // Refused datagrams are never answered on UDP: the request times out.
    for _ in 0..2 {
        let e = handle
            .call_with(addr, msg(), &opts(b"wrong"))
            .await
            .unwrap_err();
        assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    }
    let r = handle
        .call_with(addr, msg(), &opts(b"right"))
        .await
        .unwrap();
    assert_eq!(r.content().as_ref(), b"one-shot");
    // Taken: the next request goes to the persistent route (which has no inner plugins).
    let r = handle.call(addr, msg()).await.unwrap();
    assert_eq!(r.content().as_ref(), b"persistent");

    handle.shutdown();
    server_handle.shutdown();
    client_task.await.unwrap();
    server_task.await.unwrap();
}
