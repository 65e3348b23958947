//! Extractors: the argument types a handler may take ([`FromRequest`]).

use std::net::SocketAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::state::NeededState;
use super::{Context, ErrorReply, Request};
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

    /// Take the value from the request when it is the handler's **last** argument: nothing reads
    /// the request afterwards, so the value may be moved out of it instead of cloned (a
    /// [`Message`] argument takes the request's message this way). The default calls
    /// [`from_request`](Self::from_request).
    fn from_request_owned(req: Request) -> Result<Self, Rejection> {
        Self::from_request(&req)
    }

    /// The state this argument needs added with [`Router::with_state`](super::Router::with_state)
    /// ([`State<T>`] says `T`). A node checks it when it is bound, so that a handler asking for
    /// state that was never added fails `bind`, not its first request. Default: none.
    fn needed_state() -> Option<NeededState> {
        None
    }
}

/// Why an extractor refused a request; sent back as an error reply.
///
/// Built from text (an ERROR reply), from an [`ErrorReply`] (its type chosen by the extractor) or
/// from any message.
///
/// ```
/// use netaio::router::{ErrorReply, Rejection};
/// use netaio::MessageType;
///
/// assert_eq!(Rejection::new("bad uri").into_message().message_type, MessageType::ERROR);
/// let r = Rejection::from(ErrorReply::auth("token missing"));
/// assert_eq!(r.into_message().message_type, MessageType::AUTH_ERROR);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(Message);

impl Rejection {
    /// A rejection answered with ERROR of this text ([`ErrorReply::error`]).
    pub fn new(text: impl Into<String>) -> Self {
        ErrorReply::error(text).into()
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

impl From<ErrorReply> for Rejection {
    fn from(reply: ErrorReply) -> Self {
        Self(reply.into_message())
    }
}

impl FromRequest for Message {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        Ok(req.message.clone())
    }

    fn from_request_owned(req: Request) -> Result<Self, Rejection> {
        Ok(req.message)
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
                ErrorReply::error(format!("invalid content: {e}"))
                    .with_uri(req.message.uri().clone())
                    .into()
            })
    }
}

/// A handler returning `Postcard<T>` answers RESPOND_URI (empty uri: the reply is matched by
/// its request id) with `T` serialized with postcard, what
/// [`Connection::call_postcard`](crate::Connection::call_postcard) expects; a value that does
/// not serialize is answered ERROR.
impl<T: serde::Serialize> super::IntoReply for Postcard<T> {
    fn into_reply(self) -> Option<Message> {
        Some(match postcard::to_allocvec(&self.0) {
            Ok(content) => Message::new(MessageType::RESPOND_URI, Bytes::new(), content),
            Err(e) => {
                tracing::warn!(error = %e, "reply does not serialize");
                Message::error(format!("reply does not serialize: {e}"))
            }
        })
    }
}

/// Shared application state registered with [`Router::with_state`](super::Router::with_state),
/// looked up by type and cloned (wrap large state in an `Arc`).
///
/// A handler asking for state that was never registered is a programming error, found when the
/// node is bound: `bind` fails with [`BindError::MissingState`](crate::BindError::MissingState)
/// naming the route, where it was registered and the type; a client's `connect` fails with
/// [`ConnectError::MissingState`](crate::ConnectError::MissingState); a handler added to a running
/// node is refused with [`RouteError::MissingState`](super::RouteError::MissingState).
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
    fn needed_state() -> Option<NeededState> {
        Some(NeededState::of::<T>())
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::BoxedHandler;
    use crate::router::test_support::{REQ, addr, call};

    #[tokio::test]
    async fn postcard_extractor() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Put {
            key: String,
            value: u32,
        }
        let handler = BoxedHandler::new(|Postcard(put): Postcard<Put>| async move {
            Message::ok(put.key, put.value.to_string())
        });
        let content = postcard::to_allocvec(&Put {
            key: "k".into(),
            value: 7,
        })
        .unwrap();
        let reply = call(
            &handler,
            Message::new(REQ, "put", content),
            Context::detached(addr(1)),
        )
        .await
        .unwrap();
        assert_eq!(reply, Message::ok("k", "7"));

        // Truncated content: rejected with ERROR, uri of the request, handler not run.
        let reply = call(
            &handler,
            Message::new(REQ, "put", &b"\x05ab"[..]),
            Context::detached(addr(1)),
        )
        .await
        .unwrap();
        assert_eq!(reply.message_type, MessageType::ERROR);
        assert_eq!(reply.uri().as_ref(), b"put");
        assert!(
            reply.content().starts_with(b"invalid content: "),
            "{reply:?}"
        );
    }

    #[tokio::test]
    async fn the_last_argument_is_extracted_from_the_request_by_value() {
        /// Says how it was extracted.
        struct How(&'static str);
        impl FromRequest for How {
            fn from_request(_: &Request) -> Result<Self, Rejection> {
                Ok(How("ref"))
            }
            fn from_request_owned(_: Request) -> Result<Self, Rejection> {
                Ok(How("owned"))
            }
        }
        let peer = addr(1);
        let one = BoxedHandler::new(|a: How| async move { Message::ok("", a.0) });
        let three = BoxedHandler::new(|a: How, b: How, c: How| async move {
            Message::ok("", format!("{},{},{}", a.0, b.0, c.0))
        });
        let msg = || Message::new(REQ, "x", "");
        let reply = call(&one, msg(), Context::detached(peer)).await.unwrap();
        assert_eq!(reply.content().as_ref(), b"owned");
        let reply = call(&three, msg(), Context::detached(peer)).await.unwrap();
        assert_eq!(reply.content().as_ref(), b"ref,ref,owned");
        // A final Message argument is the request's message itself (its auth fields included).
        let echo = BoxedHandler::new(|t: MessageType, m: Message| async move {
            Message::ok(t.to_string(), m.auth.get("k").cloned().unwrap_or_default())
        });
        let mut m = msg();
        m.auth.insert("k", "v");
        let reply = call(&echo, m, Context::detached(peer)).await.unwrap();
        assert_eq!(reply.content().as_ref(), b"v");
    }

    #[tokio::test]
    async fn other_extractors() {
        let handler = BoxedHandler::new(
            |t: MessageType,
             PeerAddr(peer): PeerAddr,
             Uri(uri): Uri,
             Content(content): Content,
             ctx: Context| async move {
                assert_eq!(ctx.peer_addr(), peer);
                Message::ok(uri, format!("{t:?} {peer} {}", content.len()))
            },
        );
        let reply = call(
            &handler,
            Message::new(REQ, "u", "abc"),
            Context::detached(addr(9)),
        )
        .await
        .unwrap();
        assert_eq!(reply, Message::ok("u", "REQUEST_URI 127.0.0.1:9 3"));
    }
}
