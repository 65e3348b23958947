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

/// One line per peer event: `discovered ID ADDR`, `updated ID ADDR`, `expired ID`,
/// `disconnected ID` (the id escaped like message bytes).
///
/// ```
/// use std::sync::Arc;
/// use netaio::peer::{Peer, PeerEvent};
///
/// let p = Arc::new(Peer::new("n1").with_addr("127.0.0.1:9".parse().unwrap()));
/// assert_eq!(netaio_examples::show::peer_event(&PeerEvent::Discovered(p.clone())), "discovered n1 127.0.0.1:9");
/// assert_eq!(netaio_examples::show::peer_event(&PeerEvent::Expired(p)), "expired n1");
/// ```
pub fn peer_event(e: &netaio::peer::PeerEvent) -> String {
    use netaio::peer::PeerEvent;
    let p = e.peer();
    let id = p.id.escape_ascii();
    let addr = p.addrs.first().map(|a| a.to_string()).unwrap_or_default();
    match e {
        PeerEvent::Discovered(_) => format!("discovered {id} {addr}"),
        PeerEvent::Updated(_) => format!("updated {id} {addr}"),
        PeerEvent::Expired(_) => format!("expired {id}"),
        PeerEvent::Disconnected(_) => format!("disconnected {id}"),
        _ => format!("peer event for {id}"),
    }
}
