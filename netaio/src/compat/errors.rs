//! Python's error replies: `make_error_msg` picks the reply's type from the error text.

use crate::{Message, MessageType};

/// The error type Python's `make_error_msg` picks for a text: a case-sensitive substring match, in
/// order, "not found" gives NOT_FOUND, else "auth" gives AUTH_ERROR, else "not permitted" gives
/// NOT_PERMITTED, else ERROR.
///
/// Only for talking to Python nodes that expect it: the native library types an error reply by
/// the error's type ([`ErrorReply`](crate::router::ErrorReply)), since a text such as
/// `author missing` would otherwise become AUTH_ERROR.
///
/// ```
/// use netaio::compat::python_error_type;
/// use netaio::MessageType;
///
/// assert_eq!(python_error_type("user not found"), MessageType::NOT_FOUND);
/// assert_eq!(python_error_type("author missing"), MessageType::AUTH_ERROR);
/// assert_eq!(python_error_type("Not Found"), MessageType::ERROR);
/// ```
pub fn python_error_type(text: &str) -> MessageType {
    if text.contains("not found") {
        MessageType::NOT_FOUND
    } else if text.contains("auth") {
        MessageType::AUTH_ERROR
    } else if text.contains("not permitted") {
        MessageType::NOT_PERMITTED
    } else {
        MessageType::ERROR
    }
}

/// Python's `make_error_msg(text)`: uri `ERROR`, the text as content, the type from
/// [`python_error_type`].
///
/// ```
/// use netaio::compat::python_error;
/// use netaio::MessageType;
///
/// let m = python_error("not found");
/// assert_eq!(m.message_type, MessageType::NOT_FOUND);
/// assert_eq!(m.uri().as_ref(), b"ERROR");
/// ```
pub fn python_error(text: impl Into<String>) -> Message {
    let text = text.into();
    Message::new(python_error_type(&text), "ERROR", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_from_text() {
        let cases = [
            ("user not found", MessageType::NOT_FOUND),
            ("auth failed", MessageType::AUTH_ERROR),
            ("invalid auth", MessageType::AUTH_ERROR),
            ("action not permitted", MessageType::NOT_PERMITTED),
            ("boom", MessageType::ERROR),
            ("", MessageType::ERROR),
            // "not found" wins over "auth", and "auth" over "not permitted".
            ("auth not found", MessageType::NOT_FOUND),
            ("auth not permitted", MessageType::AUTH_ERROR),
            ("not permitted: not found", MessageType::NOT_FOUND),
            // Case-sensitive, as in Python.
            ("Not Found", MessageType::ERROR),
            ("AUTH", MessageType::ERROR),
        ];
        for (text, t) in cases {
            assert_eq!(python_error_type(text), t, "{text:?}");
            let m = python_error(text);
            assert_eq!(m.message_type, t, "{text:?}");
            assert_eq!(m.uri().as_ref(), b"ERROR");
            assert_eq!(m.content().as_ref(), text.as_bytes());
        }
    }
}
