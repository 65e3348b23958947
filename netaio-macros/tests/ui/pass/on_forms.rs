//! Every form of `#[on(...)]`: message type as a bare name, a path, a custom constant (local or by
//! path) or an expression; uri as a string, a byte string or an expression; no uri.

use netaio::router::{IntoRoute, Route, RouteKey};
use netaio::{Message, MessageType, Router, handlers, on};

mod types {
    use netaio::MessageType;
    pub const PING: MessageType = MessageType::custom(40);
}

const PONG: MessageType = MessageType::custom(41);
const ITEMS: &str = "items";

#[on(REQUEST_URI, uri = "echo")]
async fn echo(msg: Message) -> Message {
    Message::respond(msg.uri().clone(), msg.content().clone())
}

#[on(MessageType::CREATE_URI, uri = b"bytes")]
async fn bytes_uri() -> Message {
    Message::ok("bytes", "")
}

#[netaio::on(crate::types::PING)]
async fn ping() -> Message {
    Message::new(types::PING, "", "pong")
}

#[on(PONG, uri = String::from("dynamic"))]
async fn dynamic() {}

#[on(MessageType::custom(42), uri = ITEMS,)]
async fn items() {}

#[on(PUBLISH_URI)]
async fn publish(_msg: Message) {}

/// Handlers in another module are named by path in `handlers!`.
mod api {
    use netaio::{Message, on};

    #[on(REQUEST_URI, uri = "status")]
    pub async fn status() -> Message {
        Message::respond("status", "up")
    }
}

fn key(route: impl IntoRoute) -> RouteKey {
    route.into_route().key().clone()
}

fn main() {
    assert_eq!(key(echo {}), (MessageType::REQUEST_URI, "echo").into());
    assert_eq!(key(bytes_uri {}), (MessageType::CREATE_URI, "bytes").into());
    assert_eq!(key(ping {}), types::PING.into());
    assert_eq!(key(dynamic {}), (PONG, "dynamic").into());
    assert_eq!(key(items {}), (MessageType::custom(42), "items").into());
    assert_eq!(key(publish {}), MessageType::PUBLISH_URI.into());

    let routes: [Route; 6] = handlers![echo, bytes_uri, ping, dynamic, items, publish];
    assert!(routes.iter().all(|r| !r.is_once()));
    let router = Router::new().routes(routes);
    assert_eq!(router.len(), 6);

    let router = Router::new().routes(handlers![crate::api::status,]);
    assert_eq!(router.len(), 1);
    // The same function twice is a duplicate.
    let err = Router::new()
        .try_routes(handlers![api::status, crate::api::status])
        .unwrap_err();
    assert!(err.to_string().contains("on_forms.rs"), "{err}");

    // `route` takes one, `handlers![]` may be empty.
    let router = Router::new().route(echo {}).routes(handlers![]);
    assert_eq!(router.len(), 1);

    // The function is untouched and callable.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let reply = rt.block_on(echo(Message::new(MessageType::REQUEST_URI, "echo", "hi")));
    assert_eq!(reply.content().as_ref(), b"hi");
}
