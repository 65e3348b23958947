//! Every extractor as an argument (several at once, in any order, with patterns), a custom
//! `FromRequest` type, and every kind of return value.

use std::sync::Arc;

use netaio::router::{
    Content, Context, FromRequest, PeerAddr, Postcard, Rejection, Request, State, Uri,
};
use netaio::{Message, MessageType, Router, handlers, on};

struct UriText(String);

impl FromRequest for UriText {
    fn from_request(req: &Request) -> Result<Self, Rejection> {
        std::str::from_utf8(req.message.uri())
            .map(|s| UriText(s.to_owned()))
            .map_err(|_| Rejection::new("uri is not UTF-8"))
    }
}

#[derive(serde::Deserialize)]
struct Put {
    key: String,
    value: u32,
}

#[on(REQUEST_URI, uri = "all")]
async fn all(
    msg: Message,
    ctx: Context,
    PeerAddr(addr): PeerAddr,
    Uri(uri): Uri,
    Content(content): Content,
    t: MessageType,
    State(prefix): State<Arc<String>>,
    UriText(text): UriText,
    Postcard(put): Postcard<Put>,
) -> Message {
    assert_eq!(ctx.peer_addr(), addr);
    assert_eq!(msg.uri(), &uri);
    assert_eq!(msg.content(), &content);
    assert_eq!(t, MessageType::REQUEST_URI);
    Message::respond(uri, format!("{prefix}{text}:{}={}", put.key, put.value))
}

#[on(REQUEST_URI, uri = "message")]
async fn returns_message() -> Message {
    Message::ok("", "")
}

#[on(REQUEST_URI, uri = "option")]
async fn returns_option(msg: Message) -> Option<Message> {
    (!msg.content().is_empty()).then(|| Message::ok("", ""))
}

#[on(REQUEST_URI, uri = "result")]
async fn returns_result(msg: Message) -> Result<Message, String> {
    if msg.content().is_empty() {
        return Err("empty content".into());
    }
    Ok(Message::ok("", ""))
}

#[on(REQUEST_URI, uri = "result-message")]
async fn returns_result_message() -> Result<Option<Message>, Message> {
    Err(Message::not_permitted())
}

#[on(PUBLISH_URI)]
async fn returns_unit(_msg: Message) {}

#[on(REQUEST_URI, uri = "result-unit")]
async fn returns_result_unit() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {
    let router = Router::new()
        .routes(handlers![
            all,
            returns_message,
            returns_option,
            returns_result,
            returns_result_message,
            returns_unit,
            returns_result_unit,
        ])
        .with_state(Arc::new(String::from(">")));
    assert_eq!(router.len(), 7);
}
