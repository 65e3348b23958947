//! One-line rendering of messages for the example programs' output.

use netaio::{Message, RequestError};

/// `TYPE "uri" "content"`, with non-printable bytes escaped.
///
/// ```
/// use netaio::Message;
///
/// let m = Message::respond("echo", &b"hi\n"[..]);
/// assert_eq!(netaio_examples::show::message(&m), r#"RESPOND_URI "echo" "hi\n""#);
/// ```
pub fn message(m: &Message) -> String {
    format!(
        "{} \"{}\" \"{}\"",
        m.message_type,
        m.uri().escape_ascii(),
        m.content().escape_ascii()
    )
}

/// A request error, with the error reply when there is one:
/// `NotFound: NOT_FOUND "" "not found"`.
pub fn request_error(e: &RequestError) -> String {
    match e.reply() {
        Some(reply) => format!("{}: {}", variant(e), message(reply)),
        None => e.to_string(),
    }
}

fn variant(e: &RequestError) -> &'static str {
    match e {
        RequestError::Auth(_) => "RequestError::Auth",
        RequestError::NotFound(_) => "RequestError::NotFound",
        RequestError::NotPermitted(_) => "RequestError::NotPermitted",
        RequestError::Error(_) => "RequestError::Error",
        _ => "RequestError",
    }
}
