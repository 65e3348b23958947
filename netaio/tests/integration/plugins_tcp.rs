//! The bundled symmetric plugins end to end on 127.0.0.1: HmacAuth + AeadCipher on a TcpServer and
//! a TcpClient, a wrong secret, an inner plugin on one route, HashcashAuth, and the exact plugin
//! order on both sides is proven in tests/tests/e2e/pipeline_order.rs.

// Helpers outside the #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::plugin::{AeadCipher, HashcashAuth, HmacAuth, Plugins, SendOptions};
use netaio::router::Route;
use netaio::tcp::TcpClientBuilder;
use netaio::{Message, MessageType, RequestError, Router, ServerHandle, TcpClient, TcpServer};
use tokio::task::JoinHandle;

/// A bound on every call: a failure shows up as an error, never as a hang.
const CALL: Duration = Duration::from_secs(10);

type Counter = Arc<AtomicUsize>;

/// An echo handler that counts its calls.
fn echo(
    counter: &Counter,
) -> impl Fn(Message) -> std::future::Ready<Message> + Clone + Send + Sync + 'static {
    let counter = counter.clone();
    move |m: Message| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Message::respond(m.uri().clone(), m.content().clone()))
    }
}

async fn start(
    server: netaio::tcp::TcpServerBuilder,
) -> (std::net::SocketAddr, ServerHandle, JoinHandle<()>) {
    let server = server.address(([127, 0, 0, 1], 0)).bind().await.unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let task = tokio::spawn(async move {
        let _ = server.serve().await;
    });
    (addr, handle, task)
}

fn sym_client(secret: &[u8]) -> TcpClientBuilder {
    TcpClient::builder()
        .auth(HmacAuth::new(secret))
        .cipher(AeadCipher::new(secret).encrypt_uri(true))
        .request_timeout(CALL)
}

#[tokio::test]
async fn hmac_and_aead_request_response() {
    let calls = Counter::default();
    let router = Router::new().on((MessageType::REQUEST_URI, "echo"), echo(&calls));
    let (addr, handle, task) = start(
        TcpServer::builder()
            .router(router)
            .auth(HmacAuth::new(b"shared"))
            .cipher(AeadCipher::new(b"shared").encrypt_uri(true)),
    )
    .await;
    let client = sym_client(b"shared").build();
    let conn = client.connect(addr).await.unwrap();
    for i in 0..5 {
        let text = format!("hello {i}");
        let reply = conn.request("echo", text.clone()).await.unwrap();
        assert_eq!(reply.message_type, MessageType::RESPOND_URI);
        assert_eq!(
            reply.uri().as_ref(),
            b"echo",
            "routing saw the decrypted uri"
        );
        assert_eq!(reply.content().as_ref(), text.as_bytes());
        assert!(reply.auth.get("hmac").is_none() && reply.auth.get("iv").is_none());
    }
    // Unknown routes still get NOT_FOUND through the plugins.
    let e = conn.request("nope", "x").await.unwrap_err();
    assert!(matches!(e, RequestError::NotFound(_)), "{e:?}");
    // A 60 kB message fits after the tag and uri prefix.
    let big = vec![7u8; 60_000];
    let reply = conn.request("echo", big.clone()).await.unwrap();
    assert_eq!(reply.content().as_ref(), &big[..]);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    handle.shutdown();
    task.await.unwrap();
}

#[tokio::test]
async fn wrong_secret_gets_a_typed_auth_error() {
    let calls = Counter::default();
    let router = Router::new().on((MessageType::REQUEST_URI, "echo"), echo(&calls));
    let (addr, handle, task) = start(
        TcpServer::builder()
            .router(router)
            .auth(HmacAuth::new(b"shared"))
            .cipher(AeadCipher::new(b"shared").encrypt_uri(true)),
    )
    .await;
    let wrong = sym_client(b"not the secret").build();
    let conn = wrong.connect(addr).await.unwrap();
    let e = conn
        .call_timeout(Message::new(MessageType::REQUEST_URI, "echo", "x"), CALL)
        .await
        .unwrap_err();
    match &e {
        RequestError::Auth(m) => {
            assert_eq!(m.message_type, MessageType::AUTH_ERROR);
            assert_eq!(m.content().as_ref(), b"HMAC auth failed");
        }
        other => panic!("expected RequestError::Auth, got {other:?}"),
    }
    // A client without plugins is refused the same way.
    let plain = TcpClient::builder().request_timeout(CALL).build();
    let conn = plain.connect(addr).await.unwrap();
    let e = conn.request("echo", "x").await.unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    // The right secret on a new connection still works, and only it reached the handler.
    let right = sym_client(b"shared").build();
    let conn = right.connect(addr).await.unwrap();
    conn.request("echo", "ok").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    handle.shutdown();
    task.await.unwrap();
}

#[tokio::test]
async fn inner_plugin_on_one_route_only() {
    let open_calls = Counter::default();
    let admin_calls = Counter::default();
    let inner = || {
        Plugins::new()
            .auth(HmacAuth::new(b"admin secret").field_prefix("admin."))
            .cipher(AeadCipher::new(b"admin secret").nonce_field("admin.iv"))
    };
    let router = Router::new()
        .on((MessageType::REQUEST_URI, "open"), echo(&open_calls))
        .route(
            Route::on((MessageType::REQUEST_URI, "admin"), echo(&admin_calls)).with_inner(inner()),
        );
    let (addr, handle, task) = start(
        TcpServer::builder()
            .router(router)
            .auth(HmacAuth::new(b"shared"))
            .cipher(AeadCipher::new(b"shared").encrypt_uri(true)),
    )
    .await;
    let client = sym_client(b"shared").build();
    let conn = client.connect(addr).await.unwrap();
    let admin = || Message::new(MessageType::REQUEST_URI, "admin", "do it");

    // Without the inner plugins: AUTH_ERROR, and the handler does not run.
    let e = conn.call(admin()).await.unwrap_err();
    assert!(
        matches!(&e, RequestError::Auth(m) if m.content().as_ref() == b"HMAC auth failed"),
        "{e:?}"
    );
    assert_eq!(admin_calls.load(Ordering::SeqCst), 0);

    // With the wrong inner secret: the same.
    let wrong = Plugins::new()
        .auth(HmacAuth::new(b"guess").field_prefix("admin."))
        .cipher(AeadCipher::new(b"guess").nonce_field("admin.iv"));
    let e = conn
        .call_with(admin(), &SendOptions::new().inner(wrong))
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    assert_eq!(admin_calls.load(Ordering::SeqCst), 0);

    // With them: it works, and the reply is opened with them.
    let reply = conn
        .call_with(admin(), &SendOptions::new().inner(inner()))
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"do it");
    assert!(reply.auth.get("admin.hmac").is_none());
    assert_eq!(admin_calls.load(Ordering::SeqCst), 1);

    // The other route needs only the instance plugins.
    let reply = conn.request("open", "hi").await.unwrap();
    assert_eq!(reply.content().as_ref(), b"hi");
    assert_eq!(open_calls.load(Ordering::SeqCst), 1);
    assert_eq!(admin_calls.load(Ordering::SeqCst), 1);
    handle.shutdown();
    task.await.unwrap();
}

#[tokio::test]
async fn hashcash_node_wide_and_per_route() {
    let calls = Counter::default();
    let costly = || Plugins::new().auth(HashcashAuth::new(12).field_prefix("route."));
    let router = Router::new()
        .on((MessageType::REQUEST_URI, "post"), echo(&calls))
        .route(Route::on((MessageType::REQUEST_URI, "costly"), echo(&calls)).with_inner(costly()));
    let (addr, handle, task) = start(
        TcpServer::builder()
            .router(router)
            .auth(HashcashAuth::new(8)),
    )
    .await;
    let client = TcpClient::builder()
        .auth(HashcashAuth::new(8))
        .request_timeout(CALL)
        .build();
    let conn = client.connect(addr).await.unwrap();
    assert_eq!(
        conn.request("post", "a").await.unwrap().content().as_ref(),
        b"a"
    );
    let e = conn.request("costly", "b").await.unwrap_err();
    assert!(
        matches!(&e, RequestError::Auth(m) if m.content().as_ref() == b"proof of work required"),
        "{e:?}"
    );
    let msg = Message::new(MessageType::REQUEST_URI, "costly", "c");
    let reply = conn
        .call_with(msg, &SendOptions::new().inner(costly()))
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"c");
    // Too little work for the node: a client with 4 bits is refused (2^-4 chance a 4-bit stamp
    // has 8 bits, so try until refused, at most 64 times).
    let cheap = TcpClient::builder()
        .auth(HashcashAuth::new(4))
        .request_timeout(CALL)
        .build();
    let conn = cheap.connect(addr).await.unwrap();
    let mut refused = false;
    for _ in 0..64 {
        if let Err(e) = conn.request("post", "d").await {
            assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
            refused = true;
            break;
        }
    }
    assert!(refused);
    handle.shutdown();
    task.await.unwrap();
}

#[tokio::test]
async fn hashcash_demanded_from_clients_only() {
    let calls = Counter::default();
    let router = Router::new().on((MessageType::REQUEST_URI, "post"), echo(&calls));
    let (addr, handle, task) = start(
        TcpServer::builder()
            .router(router)
            .auth(HashcashAuth::new(14).stamp_outgoing(false)),
    )
    .await;
    let client = TcpClient::builder()
        .auth(HashcashAuth::new(14).require_incoming(false))
        .request_timeout(CALL)
        .build();
    let conn = client.connect(addr).await.unwrap();
    for i in 0..3 {
        let text = format!("post {i}");
        let reply = conn.request("post", text.clone()).await.unwrap();
        assert_eq!(reply.content().as_ref(), text.as_bytes());
    }
    // A client that does no work is refused before the handler.
    let lazy = TcpClient::builder().request_timeout(CALL).build();
    let conn = lazy.connect(addr).await.unwrap();
    let e = conn.request("post", "free").await.unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    handle.shutdown();
    task.await.unwrap();
}
