//! Routing on a live server: one-shot handlers, handlers added and removed while serving, the
//! default (NOT_FOUND) handler, a custom fallback, and message types nobody assigned.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use netaio::router::RouteError;
use netaio::{Message, MessageType, RequestError, Router, TcpClient};
use netaio_tests::{ECHO, RawConn, echo_router, start};

fn reply_with(text: &'static str) -> impl Fn() -> std::future::Ready<Message> + Clone {
    move || std::future::ready(Message::respond("x", text))
}

#[tokio::test]
async fn one_shot_handler_runs_once_then_the_persistent_one_answers() {
    let router = Router::new()
        .once((MessageType::REQUEST_URI, "x"), reply_with("first"))
        .on((MessageType::REQUEST_URI, "x"), reply_with("always"))
        .once((MessageType::REQUEST_URI, "alone"), || async {
            Message::respond("alone", "only once")
        });
    let server = start(router).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();

    assert_eq!(
        conn.request("x", "").await.unwrap().content().as_ref(),
        b"first"
    );
    assert_eq!(
        conn.request("x", "").await.unwrap().content().as_ref(),
        b"always"
    );
    assert_eq!(
        conn.request("x", "").await.unwrap().content().as_ref(),
        b"always"
    );

    // A one-shot handler with no persistent handler behind it: then the default handler.
    assert_eq!(
        conn.request("alone", "").await.unwrap().content().as_ref(),
        b"only once"
    );
    assert!(matches!(
        conn.request("alone", "").await,
        Err(RequestError::NotFound(_))
    ));
    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn handlers_are_added_and_removed_while_serving() {
    let server = start(echo_router()).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let h = &server.handle;

    assert!(matches!(
        conn.request("x", "").await,
        Err(RequestError::NotFound(_))
    ));
    h.on((MessageType::REQUEST_URI, "x"), reply_with("persistent"))
        .unwrap();
    assert_eq!(
        conn.request("x", "").await.unwrap().content().as_ref(),
        b"persistent"
    );

    // A second persistent handler at the same key is refused, naming the first one's place.
    let dup = h.on((MessageType::REQUEST_URI, "x"), reply_with("dup"));
    match dup {
        Err(RouteError::Duplicate { kind, first, .. }) => {
            assert_eq!(kind, "persistent");
            assert!(first.file().ends_with("tcp_routing.rs"), "{first}");
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }

    // A one-shot handler added at run time goes first, once.
    h.once((MessageType::REQUEST_URI, "x"), reply_with("once"))
        .unwrap();
    assert_eq!(
        conn.request("x", "").await.unwrap().content().as_ref(),
        b"once"
    );
    assert_eq!(
        conn.request("x", "").await.unwrap().content().as_ref(),
        b"persistent"
    );

    // A type-level handler catches every uri of that type not matched more precisely.
    h.on(MessageType::custom(40), |msg: Message| async move {
        Message::new(MessageType::custom(41), msg.uri().clone(), "by type")
    })
    .unwrap();
    let r = conn
        .call(Message::new(MessageType::custom(40), "anything", ""))
        .await
        .unwrap();
    assert_eq!(r.message_type, MessageType::custom(41));
    assert_eq!(r.content().as_ref(), b"by type");

    // Removed: back to the default handler.
    assert!(h.remove_handler((MessageType::REQUEST_URI, "x")));
    assert!(!h.remove_handler((MessageType::REQUEST_URI, "x")));
    assert!(matches!(
        conn.request("x", "").await,
        Err(RequestError::NotFound(_))
    ));
    // The routes present from the start are untouched.
    assert_eq!(
        conn.request(ECHO, "e").await.unwrap().content().as_ref(),
        b"e"
    );
    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn default_handler_answers_not_found_and_unassigned_types_keep_the_connection() {
    let server = start(echo_router()).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();

    match conn.request("nowhere", "").await {
        Err(RequestError::NotFound(m)) => {
            assert_eq!(m.message_type, MessageType::NOT_FOUND);
            assert_eq!(m.content().as_ref(), b"not found");
            assert!(m.uri().is_empty());
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    // 99 (custom, unassigned here) and 15 (reserved, unassigned by the protocol) go to the default
    // handler like any other unmatched message, and the connection carries on.
    for t in [99u8, 15] {
        let e = conn
            .call(Message::new(MessageType::from_u8(t), "echo", "?"))
            .await
            .unwrap_err();
        assert!(matches!(e, RequestError::NotFound(_)), "type {t}: {e:?}");
        assert_eq!(
            conn.request(ECHO, "ok").await.unwrap().content().as_ref(),
            b"ok"
        );
    }
    assert!(conn.is_connected());
    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn custom_fallback_gets_every_unmatched_message() {
    let router = echo_router().fallback(|msg: Message| async move {
        Message::respond(
            msg.uri().clone(),
            format!("fallback saw type {}", msg.message_type.value()),
        )
    });
    let server = start(router).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();

    let r = conn.request("nowhere", "").await.unwrap();
    assert_eq!(r.content().as_ref(), b"fallback saw type 0");
    for t in [99u8, 15] {
        let r = conn
            .call(Message::new(MessageType::from_u8(t), "x", ""))
            .await
            .unwrap();
        assert_eq!(
            r.content().as_ref(),
            format!("fallback saw type {t}").as_bytes()
        );
    }
    // Matched routes still win over the fallback.
    assert_eq!(
        conn.request(ECHO, "e").await.unwrap().content().as_ref(),
        b"e"
    );
    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn unhandled_error_messages_are_not_answered() {
    // No error ping-pong: an ERROR nobody handles gets no NOT_FOUND back.
    let server = start(echo_router()).await;
    let mut raw = RawConn::connect(server.addr).await;
    raw.send(&Message::error("some error")).await;
    raw.send(&Message::not_found()).await;
    // The next reply is the echo's: nothing was sent for the two error messages.
    raw.assert_open().await;
    server.stop().await;
}
