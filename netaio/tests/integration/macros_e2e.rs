//! The attribute macros end to end: a `#[service]` and `#[on]` / `#[once]` functions mounted on a
//! `TcpServer` (127.0.0.1, ephemeral port), every route called through a `TcpClient`, and a
//! service mounted on the client handling what the server pushes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use netaio::plugin::{CipherError, CipherPlugin, PluginContext, Plugins, SendOptions};
use netaio::router::{Content, Context, ErrorReply, PeerAddr, Postcard, State, Uri};
use netaio::{
    Message, MessageType, RequestError, Router, TcpClient, TcpServer, handlers, on, once, service,
};
use tokio::sync::mpsc;

use crate::common::Token;

const LIMIT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A key-value store: CREATE, UPDATE, DELETE, REQUEST, like the example.
#[derive(Default)]
struct Kv {
    items: Mutex<HashMap<Bytes, Bytes>>,
    published: AtomicU32,
}

#[service]
impl Kv {
    #[on(CREATE_URI)]
    async fn create(&self, Uri(key): Uri, Content(value): Content) -> Result<Message, String> {
        let mut items = lock(&self.items);
        if items.contains_key(&key) {
            return Err(format!("{} already exists", String::from_utf8_lossy(&key)));
        }
        items.insert(key.clone(), value);
        Ok(Message::ok(key, "created"))
    }

    #[on(UPDATE_URI)]
    async fn update(&self, msg: Message) -> Result<Message, ErrorReply> {
        let mut items = lock(&self.items);
        let slot = items
            .get_mut(msg.uri())
            .ok_or(ErrorReply::not_found("key not found"))?;
        *slot = msg.content().clone();
        Ok(Message::ok(msg.uri().clone(), "updated"))
    }

    #[on(DELETE_URI)]
    async fn delete(&self, Uri(key): Uri) -> Result<Message, Message> {
        match lock(&self.items).remove(&key) {
            Some(_) => Ok(Message::ok(key, "deleted")),
            None => Err(Message::not_found().with_uri(key)),
        }
    }

    #[on(REQUEST_URI)]
    async fn get(&self, Uri(key): Uri) -> Option<Message> {
        let items = lock(&self.items);
        let reply = match items.get(&key) {
            Some(value) => Message::respond(key, value.clone()),
            None => ErrorReply::not_found("key not found")
                .with_uri(key)
                .into_message(),
        };
        Some(reply)
    }

    /// A uri route wins over the type route `get` for its uri; `self: Arc<Self>` works too.
    #[on(REQUEST_URI, uri = "len")]
    async fn len(self: Arc<Self>) -> Message {
        let n = lock(&self.items).len();
        Message::respond("len", n.to_string())
    }

    /// Counts publications; no reply.
    #[on(PUBLISH_URI)]
    async fn publish(&self, _msg: Message) {
        self.published.fetch_add(1, Ordering::SeqCst);
    }

    #[on(REQUEST_URI, uri = "published")]
    async fn published(&self) -> Message {
        let n = self.published.load(Ordering::SeqCst);
        Message::respond("published", n.to_string())
    }

    /// One-shot: the first `hello` is answered here, later ones fall to `get`.
    #[once(REQUEST_URI, uri = "hello")]
    async fn hello(PeerAddr(addr): PeerAddr) -> Message {
        Message::respond("hello", format!("hello {}", addr.ip()))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Numbers(Vec<u32>);

#[on(REQUEST_URI, uri = "sum")]
async fn sum(Postcard(Numbers(numbers)): Postcard<Numbers>) -> Result<Message, String> {
    let total = numbers
        .iter()
        .try_fold(0u32, |a, b| a.checked_add(*b))
        .ok_or("overflow")?;
    Ok(Message::respond("sum", total.to_string()))
}

/// Mounting a service adds it as shared state.
#[on(REQUEST_URI, uri = b"kv-size")]
async fn kv_size(State(kv): State<Arc<Kv>>) -> Message {
    let n = lock(&kv.items).len();
    Message::respond("kv-size", n.to_string())
}

/// Pushes a NOTIFY_URI to the peer before replying.
#[on(REQUEST_URI, uri = "push")]
async fn push(ctx: Context, Content(content): Content) -> Result<Message, String> {
    ctx.send(&Message::new(MessageType::NOTIFY_URI, "news", content))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Message::respond("push", "sent"))
}

/// One-shot free function.
#[once(REQUEST_URI, uri = "ticket")]
async fn ticket() -> Message {
    Message::respond("ticket", "only one")
}

/// XORs the content with one byte (a test plugin, not security).
struct Xor(u8);

impl Xor {
    fn apply(&self, mut msg: Message) -> Message {
        let content: Vec<u8> = msg.content().iter().map(|b| b ^ self.0).collect();
        msg.body.content = content.into();
        msg
    }
}

impl CipherPlugin for Xor {
    fn encrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
        Ok(self.apply(msg))
    }
    fn decrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
        Ok(self.apply(msg))
    }
}

/// Inner plugins on a free function: the handler sees the decrypted content.
#[on(REQUEST_URI, uri = "secret", auth = Token(b"open sesame"), cipher = Xor(0x5a))]
async fn secret(Content(content): Content) -> Message {
    Message::respond("secret", [&b"got "[..], &content].concat())
}

/// A service whose inner auth plugin comes from the service value.
struct Vault {
    token: Token,
}

#[service]
impl Vault {
    #[on(REQUEST_URI, uri = "vault", auth = self.token.clone())]
    async fn open(&self) -> Message {
        Message::respond("vault", "opened")
    }
}

/// A service on the client side: receives what the server pushes.
struct Inbox {
    tx: mpsc::Sender<Message>,
}

#[service]
impl Inbox {
    #[on(NOTIFY_URI, uri = "news")]
    async fn news(&self, msg: Message) {
        let _ = self.tx.send(msg).await;
    }
}

fn text(msg: &Message) -> &str {
    std::str::from_utf8(msg.content()).unwrap_or("<not UTF-8>")
}

#[tokio::test]
async fn service_and_functions_served_over_tcp() {
    let kv = Arc::new(Kv::default());
    let router = Router::new()
        .routes(handlers![sum, kv_size, push, ticket, secret])
        .mount(Arc::clone(&kv))
        .mount(Vault {
            token: Token(b"vault key"),
        });
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router)
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let task = tokio::spawn(server.serve());

    let (tx, mut rx) = mpsc::channel(4);
    let client = TcpClient::builder()
        .request_timeout(LIMIT)
        .mount(Inbox { tx })
        .build();
    let conn = client.connect(addr).await.unwrap();

    // CREATE, then CREATE again is an error reply.
    let r = conn.create("a", "1").await.unwrap();
    assert_eq!(
        (r.message_type, r.uri().as_ref(), text(&r)),
        (MessageType::OK, &b"a"[..], "created")
    );
    let e = conn.create("a", "2").await.unwrap_err();
    let RequestError::Error(reply) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(text(reply), "a already exists");

    // REQUEST (the type route) finds it.
    let r = conn.request("a", "").await.unwrap();
    assert_eq!((r.message_type, text(&r)), (MessageType::RESPOND_URI, "1"));

    // UPDATE an existing key, and a missing one (an `ErrorReply::not_found` error).
    let r = conn.update("a", "3").await.unwrap();
    assert_eq!(text(&r), "updated");
    assert_eq!(text(&conn.request("a", "").await.unwrap()), "3");
    let e = conn.update("b", "1").await.unwrap_err();
    assert!(matches!(e, RequestError::NotFound(_)), "{e:?}");

    // The uri route `len` wins over the type route, and the state is the mounted value.
    assert_eq!(text(&conn.request("len", "").await.unwrap()), "1");
    assert_eq!(lock(&kv.items).len(), 1);
    assert_eq!(text(&conn.request("kv-size", "").await.unwrap()), "1");

    // DELETE, then DELETE again answers the `Err(Message)` as it is.
    let r = conn.delete("a").await.unwrap();
    assert_eq!(text(&r), "deleted");
    let e = conn.delete("a").await.unwrap_err();
    let RequestError::NotFound(reply) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(reply.uri().as_ref(), b"a");
    assert_eq!(text(&conn.request("len", "").await.unwrap()), "0");

    // One-shot: answered once by `hello`, then by `get` (no such key).
    let r = conn.request("hello", "").await.unwrap();
    assert_eq!(text(&r), "hello 127.0.0.1");
    let e = conn.request("hello", "").await.unwrap_err();
    assert!(matches!(e, RequestError::NotFound(_)), "{e:?}");

    // Same for a one-shot free function.
    assert_eq!(text(&conn.request("ticket", "").await.unwrap()), "only one");
    let e = conn.request("ticket", "").await.unwrap_err();
    assert!(matches!(e, RequestError::NotFound(_)), "{e:?}");

    // PUBLISH has no reply; a server handles one connection's messages in order, so the request
    // that follows reads the count after the publication.
    conn.send(&Message::new(MessageType::PUBLISH_URI, "topic", "x"))
        .await
        .unwrap();
    assert_eq!(text(&conn.request("published", "").await.unwrap()), "1");

    // Postcard content, and a content that does not decode (the handler does not run).
    let body = postcard::to_allocvec(&Numbers(vec![1, 2, 39])).unwrap();
    let r = conn.request("sum", body).await.unwrap();
    assert_eq!(text(&r), "42");
    let body = postcard::to_allocvec(&Numbers(vec![u32::MAX, 1])).unwrap();
    let e = conn.request("sum", body).await.unwrap_err();
    assert!(
        matches!(&e, RequestError::Error(m) if text(m) == "overflow"),
        "{e:?}"
    );
    let e = conn.request("sum", vec![0xff]).await.unwrap_err();
    assert!(
        matches!(&e, RequestError::Error(m) if text(m).starts_with("invalid content")),
        "{e:?}"
    );

    // Inner plugins: without them the route answers AUTH_ERROR and the handler does not run;
    // with them the handler sees the decrypted content and the reply is sealed with them.
    let e = conn.request("secret", "x").await.unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    let wrong = SendOptions::new().inner(Plugins::new().auth(Token(b"guess")).cipher(Xor(0x5a)));
    let e = conn
        .call_with(
            Message::new(MessageType::REQUEST_URI, "secret", "x"),
            &wrong,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    let right =
        SendOptions::new().inner(Plugins::new().auth(Token(b"open sesame")).cipher(Xor(0x5a)));
    let r = conn
        .call_with(
            Message::new(MessageType::REQUEST_URI, "secret", "x"),
            &right,
        )
        .await
        .unwrap();
    assert_eq!(text(&r), "got x");
    let e = conn.request("vault", "").await.unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    let vault = SendOptions::new().inner(Plugins::new().auth(Token(b"vault key")));
    let r = conn
        .call_with(Message::new(MessageType::REQUEST_URI, "vault", ""), &vault)
        .await
        .unwrap();
    assert_eq!(text(&r), "opened");

    // The client's mounted service receives what the server pushes.
    let r = conn.request("push", "breaking").await.unwrap();
    assert_eq!(text(&r), "sent");
    let pushed = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (pushed.message_type, pushed.uri().as_ref(), text(&pushed)),
        (MessageType::NOTIFY_URI, &b"news"[..], "breaking")
    );

    conn.close().await;
    handle.shutdown();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn builder_mount_serves_the_service() {
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .mount(Kv::default())
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    let conn = TcpClient::new().connect(addr).await.unwrap();
    conn.create("k", "v").await.unwrap();
    let r = conn.request("k", "").await.unwrap();
    assert_eq!(text(&r), "v");
    conn.close().await;
    handle.shutdown();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn handlers_stay_callable_directly() {
    let kv = Kv::default();
    let r = kv
        .create(
            Uri(Bytes::from_static(b"x")),
            Content(Bytes::from_static(b"1")),
        )
        .await
        .unwrap();
    assert_eq!(text(&r), "created");
    let r = Kv::hello(PeerAddr(([127, 0, 0, 1], 9).into())).await;
    assert_eq!(text(&r), "hello 127.0.0.1");
    let r = sum(Postcard(Numbers(vec![2, 3]))).await.unwrap();
    assert_eq!(text(&r), "5");
}
