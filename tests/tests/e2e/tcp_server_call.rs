//! A server requests one of its clients (`ServerHandle::call`, `Context::call` in a server
//! handler) and gets the client's reply, a typed error reply, a timeout, or `Closed` when the
//! connection ends first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use netaio::plugin::SendOptions;
use netaio::router::Context;
use netaio::{Message, MessageType, RequestError, Router, TcpClient};
use netaio_tests::{WAIT, connected, echo_router, start, within};
use tokio::sync::mpsc;

/// The client's router: `status` answers, `slow` never does, `missing` is not routed.
fn client_router(held: mpsc::UnboundedSender<()>) -> Router {
    Router::new()
        .on(
            (MessageType::REQUEST_URI, "status"),
            |msg: Message| async move {
                let mut text = b"client ok: ".to_vec();
                text.extend_from_slice(msg.content());
                Message::respond("status", text)
            },
        )
        .on((MessageType::REQUEST_URI, "slow"), move || {
            let held = held.clone();
            async move {
                let _ = held.send(());
                std::future::pending::<()>().await;
            }
        })
        .fallback(|| async { Message::not_found() })
}

#[tokio::test]
async fn a_server_calls_a_client_and_gets_its_reply_or_a_typed_error() {
    let server = start(echo_router()).await;
    let mut events = server.events();
    let (held_tx, _held) = mpsc::unbounded_channel();
    let client = TcpClient::builder().router(client_router(held_tx)).build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;

    // Several in flight at once, each answered with its own content.
    let calls = (0..5).map(|i| {
        let h = server.handle.clone();
        async move {
            h.call(
                id,
                Message::new(MessageType::REQUEST_URI, "status", i.to_string()),
            )
            .await
        }
    });
    let replies = within(WAIT, "five replies", futures_join_all(calls)).await;
    for (i, r) in replies.into_iter().enumerate() {
        let r = r.unwrap();
        assert_eq!(r.message_type, MessageType::RESPOND_URI);
        assert_eq!(r.content().as_ref(), format!("client ok: {i}").as_bytes());
    }

    let e = server
        .handle
        .call(id, Message::new(MessageType::REQUEST_URI, "missing", ""))
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::NotFound(_)), "{e:?}");

    let e = server
        .handle
        .call(
            netaio::tcp::ConnectionId(9_999),
            Message::new(MessageType::REQUEST_URI, "status", ""),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Send(netaio::SendError::UnknownConnection)),
        "{e:?}"
    );
    conn.close().await;
    server.stop().await;
}

/// Await every future of `it`, in order (no extra dependency for one helper).
async fn futures_join_all<F: std::future::Future>(it: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = it.map(|f| Box::pin(f)).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await);
    }
    out
}

#[tokio::test]
async fn a_call_to_a_client_times_out_or_fails_when_the_connection_ends() {
    let server = start(echo_router()).await;
    let mut events = server.events();
    let slow = || Message::new(MessageType::REQUEST_URI, "slow", "");

    // A call waiting when the connection ends fails with Closed, not at its timeout.
    let (held_tx, mut held) = mpsc::unbounded_channel();
    let client = TcpClient::builder().router(client_router(held_tx)).build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;
    let waiting = {
        let h = server.handle.clone();
        tokio::spawn(async move {
            h.call_with(
                id,
                slow(),
                &SendOptions::new().timeout(Duration::from_secs(60)),
            )
            .await
        })
    };
    within(WAIT, "the client handler to hold the request", held.recv())
        .await
        .unwrap();
    assert!(server.handle.disconnect(id));
    let e = within(WAIT, "the waiting call to fail", waiting)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, RequestError::Closed), "{e:?}");
    drop(conn);

    // A client that never answers: the call's own timeout.
    let (held_tx, _held) = mpsc::unbounded_channel();
    let client = TcpClient::builder().router(client_router(held_tx)).build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;
    let e = server
        .handle
        .call_with(
            id,
            slow(),
            &SendOptions::new().timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    drop(conn);
    server.stop().await;
}

/// A server handler asks the client that sent the message something. A TCP connection handles
/// one message at a time, so the handler does not wait for the answer itself (the answer would
/// queue behind it): it hands the call to a task and answers at once.
#[tokio::test]
async fn a_server_handler_asks_its_client_through_the_context() {
    let (tx, mut answers) = mpsc::unbounded_channel::<Result<Message, RequestError>>();
    let router = echo_router().on((MessageType::REQUEST_URI, "who"), move |ctx: Context| {
        let tx = tx.clone();
        async move {
            tokio::spawn(async move {
                let r = ctx
                    .call(Message::new(MessageType::REQUEST_URI, "status", "asked"))
                    .await;
                let _ = tx.send(r);
            });
            Message::respond("who", "asking")
        }
    });
    let server = start(router).await;
    let (held_tx, _held) = mpsc::unbounded_channel();
    let client = TcpClient::builder().router(client_router(held_tx)).build();
    let conn = client.connect(server.addr).await.unwrap();
    let r = within(WAIT, "the first reply", conn.request("who", ""))
        .await
        .unwrap();
    assert_eq!(r.content().as_ref(), b"asking");
    let answer = within(WAIT, "the client's answer", answers.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.content().as_ref(), b"client ok: asked");
    conn.close().await;
    server.stop().await;
}

/// A handler that sends its own client more than the connection's queue holds gets QueueFull
/// for the rest, at once: it never waits for room the connection's task could only make after the
/// handler returns.
#[tokio::test]
async fn a_handler_flooding_its_own_connection_gets_queue_full_not_a_hang() {
    let router = echo_router().on(
        (MessageType::REQUEST_URI, "flood"),
        |ctx: Context| async move {
            let mut full = 0;
            for i in 0..20 {
                let note = Message::new(MessageType::NOTIFY_URI, "flood", i.to_string());
                if let Err(netaio::SendError::QueueFull) = ctx.send(&note).await {
                    full += 1;
                }
            }
            Message::respond("flood", full.to_string())
        },
    );
    let server =
        netaio_tests::start_with(netaio::TcpServer::builder().router(router).send_queue(4)).await;
    let (held_tx, _held) = mpsc::unbounded_channel();
    let client = TcpClient::builder().router(client_router(held_tx)).build();
    let conn = client.connect(server.addr).await.unwrap();
    let r = within(
        WAIT,
        "the flooding handler to answer",
        conn.request("flood", ""),
    )
    .await
    .unwrap();
    assert_eq!(r.content().as_ref(), b"16", "4 queued, 16 refused");
    conn.close().await;
    server.stop().await;
}
