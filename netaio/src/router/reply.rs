//! What a handler returns: [`IntoReply`], and for the error half of a `Result`,
//! [`IntoErrorReply`] with [`ErrorReply`] (an error reply whose type the handler chooses).

use std::fmt::{self, Display};

use bytes::Bytes;

use crate::message::HexPreview;
use crate::{Message, MessageType};

/// What a handler returns, turned into an optional reply.
///
/// Implemented for [`Message`] (the reply), `()` (no reply), `Option<T>` and `Result<T, E>` where the
/// error becomes an error reply ([`IntoErrorReply`]: an [`ErrorReply`] has the type it was built
/// with, a `Message` is sent as it is, and any other `Display` error is an ERROR reply).
///
/// ```
/// use netaio::router::{ErrorReply, IntoReply};
/// use netaio::{Message, MessageType};
///
/// assert!(().into_reply().is_none());
/// // Any `Display` error is ERROR, whatever its text says.
/// let r: Result<Message, String> = Err("item not found".into());
/// assert_eq!(r.into_reply().unwrap().message_type, MessageType::ERROR);
/// // The type is chosen by the error's type.
/// let r: Result<Message, ErrorReply> = Err(ErrorReply::not_found("item not found"));
/// assert_eq!(r.into_reply().unwrap().message_type, MessageType::NOT_FOUND);
/// ```
#[diagnostic::on_unimplemented(
    message = "a handler cannot return `{Self}` (it does not implement `IntoReply`)",
    label = "not a reply",
    note = "return a `Message`, `Option<Message>`, `()` (no reply), or `Result<T, E>` with `T` one of these and `E` an `ErrorReply`, a `Message` or any `Display` error (sent as an ERROR reply)"
)]
pub trait IntoReply {
    /// The reply to send, if any.
    fn into_reply(self) -> Option<Message>;
}

impl IntoReply for Message {
    fn into_reply(self) -> Option<Message> {
        Some(self)
    }
}

impl IntoReply for () {
    fn into_reply(self) -> Option<Message> {
        None
    }
}

impl IntoReply for std::convert::Infallible {
    fn into_reply(self) -> Option<Message> {
        match self {}
    }
}

impl<T: IntoReply> IntoReply for Option<T> {
    fn into_reply(self) -> Option<Message> {
        self.and_then(IntoReply::into_reply)
    }
}

impl<T: IntoReply, E: IntoErrorReply> IntoReply for Result<T, E> {
    fn into_reply(self) -> Option<Message> {
        match self {
            Ok(v) => v.into_reply(),
            Err(e) => Some(e.into_error_reply()),
        }
    }
}

/// The error half of a handler's `Result`: how it becomes the error reply.
///
/// The reply's type comes from the error's type, never from its text:
///
/// - an [`ErrorReply`] is sent with the type it was built with (`ErrorReply::not_found(..)` is a
///   NOT_FOUND reply);
/// - a [`Message`] is sent as it is, so a handler can return `Err(Message::not_permitted())`;
/// - anything else that is `Display` is [`Message::error`]: ERROR, uri `ERROR`, the text as content.
///
/// Python's rule, which picks the type from the text, is
/// [`compat::python_error`](crate::compat::python_error).
///
/// ```
/// use netaio::router::{ErrorReply, IntoErrorReply};
/// use netaio::{Message, MessageType};
///
/// assert_eq!("author missing".into_error_reply().message_type, MessageType::ERROR);
/// assert_eq!(ErrorReply::auth("bad token").into_error_reply().message_type, MessageType::AUTH_ERROR);
/// assert_eq!(Message::not_permitted().into_error_reply(), Message::not_permitted());
/// ```
pub trait IntoErrorReply {
    /// The error reply.
    fn into_error_reply(self) -> Message;
}

impl<E: Display> IntoErrorReply for E {
    fn into_error_reply(self) -> Message {
        Message::error(self.to_string())
    }
}

impl IntoErrorReply for Message {
    fn into_error_reply(self) -> Message {
        self
    }
}

impl IntoErrorReply for ErrorReply {
    fn into_error_reply(self) -> Message {
        self.0
    }
}

/// An error reply of a chosen type: what a handler returns as the error of its `Result` to answer
/// NOT_FOUND, NOT_PERMITTED, AUTH_ERROR or ERROR, with the text as content and uri `ERROR` (as
/// Python's `make_error_msg`; [`with_uri`](Self::with_uri) sets another).
///
/// It is deliberately not `Display` (nor `std::error::Error`): a `Display` error is an ERROR reply
/// ([`IntoErrorReply`]), and this type says which error type to send instead.
///
/// ```
/// use netaio::router::{ErrorReply, Uri};
/// use netaio::{Message, MessageType};
///
/// async fn get(Uri(key): Uri) -> Result<Message, ErrorReply> {
///     if key.as_ref() == b"secret" {
///         return Err(ErrorReply::not_permitted("secret is not readable"));
///     }
///     Err(ErrorReply::not_found("no such key").with_uri(key))
/// }
///
/// let e = ErrorReply::not_found("no such key");
/// assert_eq!(e.message_type(), MessageType::NOT_FOUND);
/// let reply = e.into_message();
/// assert_eq!(reply.uri().as_ref(), b"ERROR");
/// assert_eq!(reply.content().as_ref(), b"no such key");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorReply(Message);

impl ErrorReply {
    fn of_type(message_type: MessageType, text: impl Into<String>) -> Self {
        Self(Message::new(message_type, "ERROR", text.into()))
    }

    /// ERROR with this text (the same reply as any `Display` error, or [`Message::error`]).
    pub fn error(text: impl Into<String>) -> Self {
        Self::of_type(MessageType::ERROR, text)
    }

    /// NOT_FOUND with this text.
    pub fn not_found(text: impl Into<String>) -> Self {
        Self::of_type(MessageType::NOT_FOUND, text)
    }

    /// NOT_PERMITTED with this text.
    pub fn not_permitted(text: impl Into<String>) -> Self {
        Self::of_type(MessageType::NOT_PERMITTED, text)
    }

    /// AUTH_ERROR with this text.
    pub fn auth(text: impl Into<String>) -> Self {
        Self::of_type(MessageType::AUTH_ERROR, text)
    }

    /// The same reply with another uri (the request's, say) instead of `ERROR`.
    #[must_use]
    pub fn with_uri(self, uri: impl Into<Bytes>) -> Self {
        Self(self.0.with_uri(uri))
    }

    /// The reply's message type.
    pub fn message_type(&self) -> MessageType {
        self.0.message_type
    }

    /// The reply to send.
    pub fn into_message(self) -> Message {
        self.0
    }
}

impl From<ErrorReply> for Message {
    fn from(e: ErrorReply) -> Message {
        e.0
    }
}

impl fmt::Debug for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorReply")
            .field("type", &self.0.message_type)
            .field("uri", &HexPreview(self.0.uri()))
            .field("text", &HexPreview(self.0.content()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::test_support::{REQ, addr, call};
    use crate::router::{BoxedHandler, Context};

    #[tokio::test]
    async fn into_reply_variants() {
        let msg = Message::ok("u", "c");
        assert_eq!(().into_reply(), None);
        assert_eq!(msg.clone().into_reply(), Some(msg.clone()));
        assert_eq!(Some(msg.clone()).into_reply(), Some(msg.clone()));
        assert_eq!(None::<Message>.into_reply(), None);
        assert_eq!(Some(()).into_reply(), None);
        assert_eq!(Ok::<_, String>(msg.clone()).into_reply(), Some(msg.clone()));
        assert_eq!(Ok::<(), String>(()).into_reply(), None);
        // A `Display` error is ERROR whatever its text (Python's text rule would say AUTH_ERROR).
        assert_eq!(
            Err::<Message, String>("auth failed".into()).into_reply(),
            Some(Message::new(MessageType::ERROR, "ERROR", "auth failed"))
        );
        assert_eq!(
            Err::<(), String>("boom".into()).into_reply(),
            Some(Message::new(MessageType::ERROR, "ERROR", "boom"))
        );
        assert_eq!(
            Err::<(), Message>(Message::not_permitted()).into_reply(),
            Some(Message::not_permitted())
        );
        assert_eq!(Ok::<Option<Message>, Message>(None).into_reply(), None);

        // Through a handler: the return value becomes the reply.
        let handler = BoxedHandler::new(|msg: Message| async move {
            if msg.uri().as_ref() == b"ok" {
                Ok(Some(Message::ok("ok", "")))
            } else if msg.uri().as_ref() == b"none" {
                Ok(None)
            } else {
                Err(format!("{:?} not found", msg.uri()))
            }
        });
        let ctx = Context::detached(addr(1));
        let run = |uri: &'static str| call(&handler, Message::new(REQ, uri, ""), ctx.clone());
        assert_eq!(run("ok").await, Some(Message::ok("ok", "")));
        assert_eq!(run("none").await, None);
        assert_eq!(run("zz").await.unwrap().message_type, MessageType::ERROR);
    }

    #[test]
    fn error_reply_has_the_type_it_was_built_with() {
        let cases = [
            (ErrorReply::error("a"), MessageType::ERROR),
            (ErrorReply::not_found("a"), MessageType::NOT_FOUND),
            (ErrorReply::not_permitted("a"), MessageType::NOT_PERMITTED),
            (ErrorReply::auth("a"), MessageType::AUTH_ERROR),
            // The text does not change the type.
            (ErrorReply::error("auth not found"), MessageType::ERROR),
        ];
        for (e, t) in cases {
            assert_eq!(e.message_type(), t);
            let m = e.clone().into_error_reply();
            assert_eq!(m.message_type, t);
            assert_eq!(m.uri().as_ref(), b"ERROR");
            assert_eq!(Message::from(e), m);
        }
        let m = ErrorReply::not_found("gone").with_uri("k").into_message();
        assert_eq!(m, Message::new(MessageType::NOT_FOUND, "k", "gone"));
    }

    #[tokio::test]
    async fn handler_errors_are_typed_by_the_error_type_not_its_text() {
        // "author missing" contains "auth": Python's rule would answer AUTH_ERROR.
        let by_text = BoxedHandler::new(|| async { Err::<Message, _>("author missing") });
        let typed = BoxedHandler::new(|| async {
            Err::<Message, _>(ErrorReply::not_found("item missing"))
        });
        let ctx = || Context::detached(addr(1));
        let reply = call(&by_text, Message::new(REQ, "x", ""), ctx())
            .await
            .unwrap();
        assert_eq!(
            reply,
            Message::new(MessageType::ERROR, "ERROR", "author missing")
        );
        let reply = call(&typed, Message::new(REQ, "x", ""), ctx())
            .await
            .unwrap();
        assert_eq!(
            reply,
            Message::new(MessageType::NOT_FOUND, "ERROR", "item missing")
        );
    }
}
