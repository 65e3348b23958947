//! The client side: reconnecting with backoff to a restarted server, receiving server-initiated
//! messages, and answering the server's requests with the client's own router.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::{Duration, Instant};

use netaio::router::{Context, Route};
use netaio::tcp::{CloseReason, ConnectionClosed, ConnectionId, ConnectionState, Reconnect};
use netaio::{
    ConnectError, Message, MessageType, ReceiveError, RequestError, Router, SendError, TcpClient,
    TcpServer,
};
use netaio_tests::{ECHO, WAIT, connected, echo_router, start, start_on, within};
use tokio::sync::mpsc;

/// The connection's state, followed through `state_changes`: connected, reconnecting (and why)
/// when the server goes away, connected again when a server is back on the port, closed (and
/// why) after `close`.
#[tokio::test]
async fn client_reconnects_with_backoff_to_a_server_restarted_on_the_same_port() {
    let first = start(echo_router()).await;
    let addr = first.addr;
    let client = TcpClient::builder()
        .request_timeout(WAIT)
        .reconnect(Some(
            Reconnect::default()
                .initial_delay(Duration::from_millis(50))
                .max_delay(Duration::from_millis(200)),
        ))
        .build();
    let conn = client.connect(addr).await.unwrap();
    assert_eq!(conn.state(), ConnectionState::Connected);
    let mut changes = conn.state_changes();
    assert_eq!(
        conn.request(ECHO, "one").await.unwrap().content().as_ref(),
        b"one"
    );

    first.stop().await;
    within(
        WAIT,
        "the client to notice the server left",
        changes.changed(),
    )
    .await
    .unwrap();
    let state = changes.borrow_and_update().clone();
    assert!(
        matches!(
            &state,
            ConnectionState::Reconnecting {
                reason: CloseReason::PeerClosed | CloseReason::Io(_)
            }
        ),
        "{state:?}"
    );
    assert!(!conn.is_connected());
    assert!(!conn.is_closed(), "a reconnecting connection is not closed");
    // While disconnected, requests fail at once instead of waiting for the timeout.
    let t0 = Instant::now();
    let r = conn.request(ECHO, "nobody there").await;
    assert!(
        matches!(r, Err(RequestError::Send(SendError::Closed))),
        "{r:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(1));

    // A new server on the same port: the client finds it on its own.
    let second = start_on(addr, TcpServer::builder().router(echo_router())).await;
    within(WAIT, "the client to reconnect", conn.wait_connected())
        .await
        .unwrap();
    assert!(conn.is_connected());
    assert_eq!(*changes.borrow_and_update(), ConnectionState::Connected);
    let r = conn.request(ECHO, "two").await.unwrap();
    assert_eq!(r.content().as_ref(), b"two");

    conn.close().await;
    assert!(conn.is_closed());
    assert_eq!(
        conn.state(),
        ConnectionState::Closed {
            reason: CloseReason::Local
        }
    );
    assert_eq!(
        conn.wait_connected().await,
        Err(ConnectionClosed {
            reason: CloseReason::Local
        })
    );
    second.stop().await;
}

/// A reconnecting connection that runs out of attempts ends for good: `wait_connected` fails with
/// why it last dropped.
#[tokio::test]
async fn reconnecting_gives_up_after_its_attempts() {
    let server = start(echo_router()).await;
    let client = TcpClient::builder()
        .reconnect(Some(
            Reconnect::default()
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(20))
                .max_attempts(Some(2)),
        ))
        .build();
    let conn = client.connect(server.addr).await.unwrap();
    conn.request(ECHO, "x").await.unwrap();
    server.stop().await;
    let e = within(WAIT, "the client to give up", conn.wait_connected())
        .await
        .unwrap_err();
    assert!(
        matches!(e.reason, CloseReason::PeerClosed | CloseReason::Io(_)),
        "{e:?}"
    );
    assert!(conn.is_closed());
}

#[tokio::test]
async fn without_reconnect_the_connection_ends_with_the_server() {
    let server = start(echo_router()).await;
    let client = TcpClient::new();
    let conn = client.connect(server.addr).await.unwrap();
    assert_eq!(
        conn.request(ECHO, "x").await.unwrap().content().as_ref(),
        b"x"
    );
    server.stop().await;
    within(WAIT, "the connection to end", conn.close()).await;
    assert!(conn.is_closed());
    assert!(
        matches!(conn.state(), ConnectionState::Closed { .. }),
        "{:?}",
        conn.state()
    );
    assert!(conn.wait_connected().await.is_err());
    assert!(client.connections().is_empty());
    let r = conn.request(ECHO, "y").await;
    assert!(
        matches!(r, Err(RequestError::Closed | RequestError::Send(_))),
        "{r:?}"
    );
    assert!(matches!(
        conn.receive_timeout(WAIT).await,
        Err(ReceiveError::Closed)
    ));
}

#[tokio::test]
async fn connect_reuses_an_open_connection_and_reports_refusal() {
    let server = start(echo_router()).await;
    let client = TcpClient::new();
    let a = client.connect(server.addr).await.unwrap();
    let b = client.connect(server.addr).await.unwrap();
    assert_eq!(client.connections().len(), 1);
    assert_eq!(a.peer_addr(), server.addr);
    assert_eq!(
        b.request(ECHO, "same").await.unwrap().content().as_ref(),
        b"same"
    );
    assert_eq!(server.handle.connection_count(), 1);
    client.close_all().await;
    assert!(a.is_closed());

    let addr = server.addr;
    server.stop().await;
    let r = TcpClient::new().connect(addr).await;
    assert!(matches!(r, Err(ConnectError::Io { .. })), "{r:?}");
}

#[tokio::test]
async fn receive_once_gets_messages_the_server_sends_on_its_own() {
    let server = start(echo_router()).await;
    let mut events = server.events();
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;

    let first = Message::new(MessageType::custom(60), "push", "one");
    let second = Message::new(MessageType::NOTIFY_URI, "push", "two");
    server.handle.send(id, &first).await.unwrap();
    server.handle.send(id, &second).await.unwrap();
    assert_eq!(
        within(WAIT, "receive_once", conn.receive_once())
            .await
            .unwrap(),
        first
    );
    assert_eq!(conn.receive_timeout(WAIT).await.unwrap(), second);
    assert!(matches!(
        conn.receive_timeout(Duration::from_millis(50)).await,
        Err(ReceiveError::Timeout(_))
    ));

    // Replies to requests do not land in the inbox.
    assert_eq!(
        conn.request(ECHO, "r").await.unwrap().content().as_ref(),
        b"r"
    );
    assert!(matches!(
        conn.receive_timeout(Duration::from_millis(50)).await,
        Err(ReceiveError::Timeout(_))
    ));

    assert!(matches!(
        server.handle.send(ConnectionId(9_999), &first).await,
        Err(SendError::UnknownConnection)
    ));
    conn.close().await;
    server.stop().await;
}

/// The client answers REQUEST_URI "ping" with RESPOND_URI "ping" (checking it runs on a client);
/// the server forwards every RESPOND_URI "ping" it gets to the test, with the connection it came from.
#[tokio::test]
async fn client_router_answers_requests_from_the_server() {
    let (tx, mut answers) = mpsc::unbounded_channel::<(Message, ConnectionId)>();
    let server_router = echo_router()
        .on(
            (MessageType::RESPOND_URI, "ping"),
            move |msg: Message, ctx: Context| {
                let tx = tx.clone();
                async move {
                    tx.send((msg, ctx.connection_id().unwrap())).unwrap();
                }
            },
        )
        .on(
            (MessageType::REQUEST_URI, "trigger"),
            |ctx: Context| async move {
                // Out of band, from inside a handler: ask the client something.
                ctx.send(&Message::new(
                    MessageType::REQUEST_URI,
                    "ping",
                    "from a handler",
                ))
                .await
                .unwrap();
                Message::ok("trigger", "")
            },
        );
    let server = start(server_router).await;
    let mut events = server.events();

    let client_router = Router::new().on(
        (MessageType::REQUEST_URI, "ping"),
        |msg: Message, ctx: Context| async move {
            assert!(ctx.client().is_some() && ctx.server().is_none());
            let mut text = b"pong: ".to_vec();
            text.extend_from_slice(msg.content());
            Message::respond("ping", text)
        },
    );
    let client = TcpClient::builder().router(client_router).build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;

    // From the server handle, as a request: the client's reply answers it (matched by the request
    // id the server gave it), it is not routed to the server's RESPOND_URI handler.
    let ping = Message::new(MessageType::REQUEST_URI, "ping", "hello");
    let answer = within(WAIT, "the client's answer", server.handle.call(id, ping))
        .await
        .unwrap();
    assert_eq!(answer.message_type, MessageType::RESPOND_URI);
    assert_eq!(answer.content().as_ref(), b"pong: hello");
    // A reply that refers to a request id the server is not waiting for (a hand-made one) is
    // dropped, as on a client and a UDP node: it never reaches a handler.
    let mut stray = Message::new(MessageType::REQUEST_URI, "ping", "stray");
    stray.set_request_id(42);
    server.handle.send(id, &stray).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), answers.recv())
            .await
            .is_err(),
        "a stale reply was routed"
    );

    // From a server handler's context.
    let ok = conn
        .call(Message::new(MessageType::REQUEST_URI, "trigger", ""))
        .await;
    assert_eq!(ok.unwrap().message_type, MessageType::OK);
    let (answer, from) = within(WAIT, "the client's answer", answers.recv())
        .await
        .unwrap();
    assert_eq!(from, id);
    assert_eq!(answer.content().as_ref(), b"pong: from a handler");

    // Handled messages do not reach the inbox.
    assert!(matches!(
        conn.receive_timeout(Duration::from_millis(50)).await,
        Err(ReceiveError::Timeout(_))
    ));
    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn client_fallback_takes_unsolicited_messages_no_route_matches() {
    let server = start(echo_router()).await;
    let mut events = server.events();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let router = Router::new()
        .on((MessageType::NOTIFY_URI, "routed"), || async {})
        .fallback(move |msg: Message| {
            let tx = tx.clone();
            async move {
                tx.send(msg).unwrap();
            }
        });
    let conn = TcpClient::builder()
        .router(router)
        .build()
        .connect(server.addr)
        .await
        .unwrap();
    let id = connected(&mut events, None).await;
    let routed = Message::new(MessageType::NOTIFY_URI, "routed", "a");
    let other = Message::new(MessageType::NOTIFY_URI, "elsewhere", "b");
    server.handle.send(id, &routed).await.unwrap();
    server.handle.send(id, &other).await.unwrap();
    let got = within(WAIT, "the fallback to run", rx.recv())
        .await
        .unwrap();
    assert_eq!(
        got, other,
        "the routed message went to its route, the other to the fallback"
    );
    // Nothing reached the inbox.
    assert!(matches!(
        conn.receive_timeout(Duration::from_millis(50)).await,
        Err(ReceiveError::Timeout(_))
    ));
    // Replies to requests still complete their requests, not the fallback.
    assert_eq!(
        conn.request(ECHO, "r").await.unwrap().content().as_ref(),
        b"r"
    );
    assert!(rx.try_recv().is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_client_handler_ends_only_that_connection_cleanly() {
    // "hold" takes the request, says so, and never answers it.
    let (held_tx, mut held) = mpsc::unbounded_channel::<()>();
    let server = start(
        echo_router().on((MessageType::REQUEST_URI, "hold"), move || {
            let held_tx = held_tx.clone();
            async move {
                held_tx.send(()).unwrap();
            }
        }),
    )
    .await;
    let mut events = server.events();
    let router = Router::new().on((MessageType::NOTIFY_URI, "boom"), |m: Message| async move {
        let _ = m.content()[0]; // empty content: panics
    });
    let client = TcpClient::builder().router(router).build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;
    // A request waiting while the handler panics fails at once, not at its timeout.
    let slow = {
        let conn = conn.clone();
        tokio::spawn(async move {
            conn.call_timeout(
                Message::new(MessageType::REQUEST_URI, "hold", ""),
                Duration::from_secs(30),
            )
            .await
        })
    };
    within(WAIT, "the server to hold the request", held.recv())
        .await
        .unwrap();
    server
        .handle
        .send(id, &Message::new(MessageType::NOTIFY_URI, "boom", ""))
        .await
        .unwrap();
    let r = within(WAIT, "the pending call to fail", slow)
        .await
        .unwrap();
    assert!(matches!(r, Err(RequestError::Closed)), "{r:?}");
    // The state says why it ended.
    let e = within(
        WAIT,
        "the connection to be marked closed",
        conn.wait_connected(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e.reason, CloseReason::Io(why) if why.contains("panicked")),
        "{e:?}"
    );
    assert!(conn.is_closed());
    assert!(!conn.is_connected());
    // connect() gives a fresh connection, not the dead one.
    let again = client.connect(server.addr).await.unwrap();
    assert!(again.is_connected());
    assert_eq!(
        again.request(ECHO, "ok").await.unwrap().content().as_ref(),
        b"ok"
    );
    within(WAIT, "close", conn.close()).await;
    server.stop().await;
}

/// An inner auth plugin for the one-shot test: a `token` field that must equal its own.
struct Token(&'static [u8]);

impl netaio::plugin::AuthPlugin for Token {
    fn make(
        &self,
        msg: &mut Message,
        _: &netaio::plugin::PluginContext<'_>,
    ) -> Result<(), netaio::plugin::AuthError> {
        msg.auth.insert("token", self.0);
        Ok(())
    }
    fn check(
        &self,
        msg: &mut Message,
        _: &netaio::plugin::PluginContext<'_>,
    ) -> Result<(), netaio::plugin::AuthError> {
        match msg.auth.remove("token") {
            Some(t) if t.as_ref() == self.0 => Ok(()),
            _ => Err(netaio::plugin::AuthError::Invalid),
        }
    }
}

/// On the client too, a message that fails a one-shot route's inner plugins is refused and leaves
/// the route for the message it waits for.
#[tokio::test]
async fn client_one_shot_route_is_taken_only_by_a_message_that_passes_its_checks() {
    let (tx, mut seen) = mpsc::unbounded_channel::<String>();
    let (once_tx, persistent_tx) = (tx.clone(), tx);
    let client_router = Router::new()
        .route(
            Route::once((MessageType::NOTIFY_URI, "push"), move |msg: Message| {
                let tx = once_tx.clone();
                async move {
                    let text = String::from_utf8_lossy(msg.content()).into_owned();
                    tx.send(format!("one-shot {text}")).unwrap();
                }
            })
            .with_inner(netaio::plugin::Plugins::new().auth(Token(b"right"))),
        )
        .on(MessageType::NOTIFY_URI, move |msg: Message| {
            let tx = persistent_tx.clone();
            async move {
                let text = String::from_utf8_lossy(msg.content()).into_owned();
                tx.send(format!("persistent {text}")).unwrap();
            }
        });
    let server = start(echo_router()).await;
    let mut events = server.events();
    let client = TcpClient::builder().router(client_router).build();
    let conn = client.connect(server.addr).await.unwrap();
    let id = connected(&mut events, None).await;

    let push = |token: &'static [u8], content: &str| {
        let mut msg = Message::new(MessageType::NOTIFY_URI, "push", content.to_owned());
        msg.auth.insert("token", token);
        msg
    };
    server.handle.send(id, &push(b"wrong", "a")).await.unwrap();
    server.handle.send(id, &push(b"wrong", "b")).await.unwrap();
    server.handle.send(id, &push(b"right", "c")).await.unwrap();
    server.handle.send(id, &push(b"right", "d")).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(within(WAIT, "a pushed message", seen.recv()).await.unwrap());
    }
    assert_eq!(got, ["one-shot c", "persistent d"]);
    // The refused ones ran no handler at all.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), seen.recv())
            .await
            .is_err()
    );

    conn.close().await;
    server.stop().await;
}
