//! The echo service run by `echo_server` and `demo`: a port of the Python README's `TCPServer`
//! example.
//!
//! | request | reply |
//! |---|---|
//! | REQUEST_URI (any uri) | RESPOND_URI with the same uri and content |
//! | SUBSCRIBE_URI `key` | subscribes the connection to `key`; CONFIRM_SUBSCRIBE with the request's body |
//! | UNSUBSCRIBE_URI `key` | removes that subscription; CONFIRM_UNSUBSCRIBE with the request's body |
//! | PUBLISH_URI `key` | NOTIFY_URI `key` with the content to every subscriber of `key`; OK `notified N` |
//! | anything else | the default NOT_FOUND `not found` |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use netaio::{MessageType, TcpClient, TcpServer};
//!
//! let server = TcpServer::bind(([127, 0, 0, 1], 0), netaio_examples::service::router()).await?;
//! let (addr, handle) = (server.local_addr(), server.handle());
//! let serving = tokio::spawn(server.serve());
//!
//! let conn = TcpClient::new().connect(addr).await?;
//! let reply = conn.request("echo", "hi").await?;
//! assert_eq!((reply.message_type, reply.content().as_ref()), (MessageType::RESPOND_URI, &b"hi"[..]));
//!
//! conn.close().await;
//! handle.shutdown();
//! serving.await?;
//! # Ok(()) }
//! ```

use bytes::Bytes;
use netaio::router::Context;
use netaio::{Message, MessageType, Router, SendError, SubscribeError};

/// The router with the four handlers below.
pub fn router() -> Router {
    Router::new()
        .on(MessageType::REQUEST_URI, echo)
        .on(MessageType::SUBSCRIBE_URI, subscribe)
        .on(MessageType::UNSUBSCRIBE_URI, unsubscribe)
        .on(MessageType::PUBLISH_URI, publish)
}

/// REQUEST_URI: answer RESPOND_URI with the same uri and content.
pub async fn echo(msg: Message) -> Message {
    Message::respond(msg.uri().clone(), msg.content().clone())
}

/// SUBSCRIBE_URI: subscribe the sender to the uri (Python: `server.subscribe(msg.body.uri, writer)`).
/// An error (too many subscriptions) becomes an ERROR reply.
pub async fn subscribe(msg: Message, ctx: Context) -> Result<Message, SubscribeError> {
    ctx.subscribe(msg.uri().clone())?;
    Ok(Message::new(
        MessageType::CONFIRM_SUBSCRIBE,
        msg.uri().clone(),
        msg.content().clone(),
    ))
}

/// UNSUBSCRIBE_URI: remove the sender's subscription to the uri. Unlike Python (which raises
/// `KeyError`), unsubscribing from a key one is not subscribed to is confirmed too.
pub async fn unsubscribe(msg: Message, ctx: Context) -> Message {
    ctx.unsubscribe(msg.uri());
    Message::new(
        MessageType::CONFIRM_UNSUBSCRIBE,
        msg.uri().clone(),
        msg.content().clone(),
    )
}

/// PUBLISH_URI: send NOTIFY_URI with the uri and content to every subscriber of the uri, then
/// answer OK `notified N`.
pub async fn publish(msg: Message, ctx: Context) -> Result<Message, SendError> {
    let note = Message::new(
        MessageType::NOTIFY_URI,
        msg.uri().clone(),
        msg.content().clone(),
    );
    let n = ctx.notify(msg.uri(), &note).await?;
    Ok(Message::ok(
        msg.uri().clone(),
        Bytes::from(format!("notified {n}")),
    ))
}
