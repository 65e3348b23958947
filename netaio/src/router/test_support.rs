//! Helpers shared by the router's unit tests.

use std::net::SocketAddr;

use bytes::Bytes;

use super::live::Routes;
use super::{BoxedHandler, Context, Request};
use crate::{Message, MessageType};

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A handler that answers OK with its own name, so a test can see which one ran.
pub(super) fn tagged(
    name: &'static str,
) -> impl Fn() -> std::future::Ready<Message> + Clone + Send + Sync + 'static {
    move || std::future::ready(Message::ok("", name))
}

/// Select like a node does and run the handler; the reply's content, or `None` when nothing
/// matched.
pub(super) async fn dispatch(
    routes: &Routes,
    t: MessageType,
    uri: &str,
    peer: SocketAddr,
) -> Option<String> {
    let uri = Bytes::copy_from_slice(uri.as_bytes());
    let routed = routes.route(Message::new(t, uri, ""), peer, |m, _| Ok::<_, ()>(m));
    let handler = routed.handler?;
    let req = Request {
        message: routed.opened.ok()?,
        ctx: Context::detached(peer),
    };
    let reply = handler.call(req).await.expect("the test handlers reply");
    Some(String::from_utf8(reply.content().to_vec()).unwrap())
}

pub(super) async fn call(
    handler: &BoxedHandler,
    message: Message,
    ctx: Context,
) -> Option<Message> {
    handler.call(Request { message, ctx }).await
}

pub(super) const REQ: MessageType = MessageType::REQUEST_URI;
