//! Extractors: the argument types a handler may take ([`FromRequest`]).

use std::net::SocketAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{Context, Request};
use crate::{Message, MessageType};

/// A handler argument that can be taken from a request.
///
/// A failed extraction does not run the handler; its [`Rejection`] is sent as the reply instead.
/// Implement it for your own argument types:
///
/// ```
/// use netaio::router::{FromRequest, Rejection, Request};
///
/// /// The uri as UTF-8 text.
/// struct UriText(String);
///
/// impl FromRequest for UriText {
///     fn from_request(req: &Request) -> Result<Self, Rejection> {
///         std::str::from_utf8(req.message.uri())
///             .map(|s| UriText(s.to_owned()))
///             .map_err(|_| Rejection::new("uri is not UTF-8"))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler argument (it does not implement `FromRequest`)",
    label = "not an extractor",
    note = "a handler may take `Message`, `Context`, `PeerAddr`, `Uri`, `Content`, `Postcard<T>` (content deserialized with postcard), `State<T>` (shared state) or `MessageType`, by value",
    note = "for anything else, implement `netaio::router::FromRequest` for it"
)]
pub trait FromRequest: Sized {
    /// Take the value from the request.
    fn from_request(req: &Request) -> Result<Self, Rejection>;
}

/// Why an extractor refused a request; sent back as an error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(Message);

impl Rejection {
    /// A rejection answered with [`Message::error`] of this text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Message::error(text))
    }

    /// A rejection answered with this message.
    pub fn with_message(reply: Message) -> Self {
        Self(reply)
    }

    /// The reply to send.
    pub fn into_message(self) -> Message {
        self.0
    }
}

impl FromRequest for Message {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        Ok(req.message.clone())
    }
}

impl FromRequest for Context {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        Ok(req.ctx.clone())
    }
}

impl FromRequest for MessageType {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        Ok(req.message.message_type)
    }
}

/// The address of the peer that sent the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl FromRequest for PeerAddr {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        Ok(PeerAddr(req.ctx.peer_addr()))
    }
}

/// The message's uri (a cheap slice of the frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri(pub Bytes);

impl FromRequest for Uri {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        Ok(Uri(req.message.uri().clone()))
    }
}

/// The message's content as raw bytes (a cheap slice of the frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(pub Bytes);

impl FromRequest for Content {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        Ok(Content(req.message.content().clone()))
    }
}

/// The content deserialized with postcard. Content that does not deserialize is answered with an
/// ERROR reply (`invalid content: …`) and the handler does not run.
///
/// ```
/// use netaio::router::Postcard;
/// use netaio::Message;
///
/// #[derive(serde::Deserialize)]
/// struct Put { key: String, value: u32 }
///
/// async fn put(Postcard(put): Postcard<Put>) -> Message {
///     Message::ok(put.key, put.value.to_string())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postcard<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Postcard<T> {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        postcard::from_bytes(req.message.content())
            .map(Postcard)
            .map_err(|e| {
                tracing::debug!(error = %e, "content did not deserialize");
                Rejection(Message::new(
                    MessageType::ERROR,
                    req.message.uri().clone(),
                    format!("invalid content: {e}"),
                ))
            })
    }
}

/// Shared application state registered with [`Router::with_state`](super::Router::with_state),
/// looked up by type and cloned (wrap large state in an `Arc`).
///
/// A handler asking for state that was never registered is a programming error: it is logged and
/// answered with ERROR `missing state`.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use netaio::router::{Router, State};
/// use netaio::{Message, MessageType};
///
/// async fn hit(State(count): State<Arc<AtomicU64>>) -> Message {
///     let n = count.fetch_add(1, Ordering::Relaxed) + 1;
///     Message::ok("hits", n.to_string())
/// }
/// let router = Router::new()
///     .on((MessageType::REQUEST_URI, "hits"), hit)
///     .with_state(Arc::new(AtomicU64::new(0)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequest for State<T> {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        match req.ctx.state::<T>() {
            Some(v) => Ok(State(v)),
            None => {
                tracing::error!(
                    state = std::any::type_name::<T>(),
                    "handler asks for state that was never registered with Router::with_state"
                );
                Err(Rejection::new("missing state"))
            }
        }
    }
}
