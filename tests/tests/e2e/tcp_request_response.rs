//! Request/response over TCP: each request type gets its reply, error replies come back as typed
//! errors, and a request nobody answers times out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::{Duration, Instant};

use netaio::router::ErrorReply;
use netaio::{Message, MessageType, RequestError, Router, TcpClient};
use netaio_tests::{ECHO, echo_router, start};

#[tokio::test]
async fn request_create_update_delete_get_their_replies() {
    let server = start(echo_router()).await;
    let client = TcpClient::new();
    let conn = client.connect(server.addr).await.unwrap();

    let r = conn.request(ECHO, "read me").await.unwrap();
    assert_eq!(r.message_type, MessageType::RESPOND_URI);
    assert_eq!(r.uri().as_ref(), ECHO.as_bytes());
    assert_eq!(r.content().as_ref(), b"read me");

    let r = conn.create(ECHO, "new").await.unwrap();
    assert_eq!(r.message_type, MessageType::OK);
    assert_eq!(r.content().as_ref(), b"new");

    let r = conn.update(ECHO, "changed").await.unwrap();
    assert_eq!(r.message_type, MessageType::OK);
    assert_eq!(r.content().as_ref(), b"changed");

    let r = conn.delete(ECHO).await.unwrap();
    assert_eq!(r.message_type, MessageType::OK);
    assert!(r.content().is_empty());

    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn handler_state_and_peer_address_are_available() {
    use netaio::router::{PeerAddr, State};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    async fn hit(State(n): State<Arc<AtomicU64>>, PeerAddr(peer): PeerAddr) -> Message {
        let count = n.fetch_add(1, Ordering::Relaxed) + 1;
        Message::respond("hit", format!("{count} {peer}"))
    }
    let router = Router::new()
        .on((MessageType::REQUEST_URI, "hit"), hit)
        .with_state(Arc::new(AtomicU64::new(0)));
    let server = start(router).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let me = {
        // The server sees the client's local address as the peer address.
        let r = conn.request("hit", "").await.unwrap();
        String::from_utf8(r.content().to_vec()).unwrap()
    };
    let (count, peer) = me.split_once(' ').unwrap();
    assert_eq!(count, "1");
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    let r = conn.request("hit", "").await.unwrap();
    assert!(r.content().starts_with(b"2 "));
    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn error_replies_become_typed_errors() {
    let router = Router::new()
        .on((MessageType::REQUEST_URI, "boom"), || async {
            Err::<Message, _>("boom")
        })
        .on((MessageType::REQUEST_URI, "auth"), || async {
            Err::<Message, _>(ErrorReply::auth("auth failed: bad token"))
        })
        // The text would make Python answer AUTH_ERROR; a `Display` error is ERROR.
        .on((MessageType::REQUEST_URI, "author"), || async {
            Err::<Message, _>("author missing")
        })
        .on((MessageType::REQUEST_URI, "forbidden"), || async {
            Message::not_permitted()
        })
        .on((MessageType::REQUEST_URI, "missing"), || async {
            Err::<Message, _>(ErrorReply::not_found("item not found"))
        })
        .on((MessageType::REQUEST_URI, "typed"), || async {
            Err::<Message, _>(Message::not_permitted().with_content("no way"))
        });
    let server = start(router).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();

    match conn.request("boom", "").await {
        Err(RequestError::Error(m)) => {
            assert_eq!(m.message_type, MessageType::ERROR);
            assert_eq!(m.content().as_ref(), b"boom");
            assert_eq!(m.uri().as_ref(), b"ERROR");
        }
        other => panic!("expected Error, got {other:?}"),
    }
    match conn.request("auth", "").await {
        Err(RequestError::Auth(m)) => {
            assert_eq!(m.message_type, MessageType::AUTH_ERROR);
            assert_eq!(m.content().as_ref(), b"auth failed: bad token");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    match conn.request("author", "").await {
        Err(RequestError::Error(m)) => {
            assert_eq!(m.message_type, MessageType::ERROR);
            assert_eq!(m.content().as_ref(), b"author missing");
        }
        other => panic!("expected Error, got {other:?}"),
    }
    match conn.request("forbidden", "").await {
        Err(RequestError::NotPermitted(m)) => {
            assert_eq!(m.content().as_ref(), b"not permitted");
        }
        other => panic!("expected NotPermitted, got {other:?}"),
    }
    match conn.request("missing", "").await {
        Err(RequestError::NotFound(m)) => {
            assert_eq!(m.content().as_ref(), b"item not found");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match conn.request("typed", "").await {
        Err(e @ RequestError::NotPermitted(_)) => {
            assert_eq!(e.reply().unwrap().content().as_ref(), b"no way");
            assert_eq!(e.to_string(), "not permitted: no way");
        }
        other => panic!("expected NotPermitted, got {other:?}"),
    }
    // The connection survives error replies.
    assert!(conn.is_connected());
    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn unanswered_request_times_out_and_connection_stays_usable() {
    let router = echo_router().on((MessageType::REQUEST_URI, "silent"), || async {});
    let server = start(router).await;
    let client = TcpClient::builder()
        .request_timeout(Duration::from_millis(200))
        .build();
    let conn = client.connect(server.addr).await.unwrap();

    let t0 = Instant::now();
    let e = conn.request("silent", "").await.unwrap_err();
    let waited = t0.elapsed();
    assert!(
        matches!(e, RequestError::Timeout(d) if d == Duration::from_millis(200)),
        "{e:?}"
    );
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");

    // call_timeout overrides the client's timeout.
    let t0 = Instant::now();
    let e = conn
        .call_timeout(
            Message::new(MessageType::REQUEST_URI, "silent", ""),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Timeout(d) if d == Duration::from_millis(50)),
        "{e:?}"
    );
    assert!(t0.elapsed() < Duration::from_millis(1000));

    // Timed-out requests leave nothing behind: the next request gets its own reply.
    let r = conn.request(ECHO, "after").await.unwrap();
    assert_eq!(r.content().as_ref(), b"after");
    conn.close().await;
    server.stop().await;
}
