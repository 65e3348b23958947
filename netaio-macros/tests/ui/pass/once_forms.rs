//! `#[once(...)]` takes the same arguments as `#[on(...)]` and declares one-shot routes.

use netaio::router::{IntoRoute, RouteKey};
use netaio::{Message, MessageType, Router, handlers, once};

#[once(OK, uri = "welcome")]
async fn welcome(_msg: Message) {}

#[netaio::once(MessageType::NOTIFY_URI)]
async fn first_notify() -> Option<Message> {
    None
}

#[once(REQUEST_URI, uri = b"boot")]
async fn boot() -> Message {
    Message::respond("boot", "ok")
}

fn main() {
    let r = welcome {}.into_route();
    assert!(r.is_once());
    assert_eq!(r.key(), &RouteKey::from((MessageType::OK, "welcome")));
    let r = first_notify {}.into_route();
    assert!(r.is_once());
    assert_eq!(r.key(), &RouteKey::from(MessageType::NOTIFY_URI));
    let router = Router::new().routes(handlers![welcome, first_notify, boot]);
    assert_eq!(router.len(), 3);
}
