//! The attribute macros work the same on a UdpNode: a `#[service]` mounted with
//! `UdpNodeBuilder::mount` and free `#[on]` / `#[once]` functions collected with `handlers!`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};

use netaio::router::{Content, PeerAddr};
use netaio::udp::UdpNode;
use netaio::{Message, MessageType, RequestError, Router, handlers, on, once, service};
use netaio_tests::{WAIT, within};

#[derive(Default)]
struct Counter {
    n: AtomicU32,
}

#[service]
impl Counter {
    #[on(UPDATE_URI, uri = "inc")]
    async fn inc(&self) -> Message {
        let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
        Message::ok("inc", n.to_string())
    }

    #[on(REQUEST_URI, uri = "get")]
    async fn get(&self) -> Message {
        Message::respond("get", self.n.load(Ordering::SeqCst).to_string())
    }
}

#[on(REQUEST_URI, uri = "whoami")]
async fn whoami(PeerAddr(addr): PeerAddr) -> Message {
    Message::respond("whoami", addr.to_string())
}

#[once(REQUEST_URI, uri = "first")]
async fn first(Content(c): Content) -> Message {
    Message::respond("first", c)
}

#[tokio::test]
async fn service_and_free_handlers_on_a_udp_node() {
    let server = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new().routes(handlers![whoami, first]))
        .mount(Counter::default())
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let sh = server.handle();
    let sj = tokio::spawn(server.serve());
    let client = UdpNode::bind(([127, 0, 0, 1], 0), Router::new())
        .await
        .unwrap();
    let me = client.local_addr();
    let ch = client.handle();
    let cj = tokio::spawn(client.serve());

    for expected in 1..=3 {
        let r = ch.update(addr, "inc", "").await.unwrap();
        assert_eq!(r.content().as_ref(), expected.to_string().as_bytes());
    }
    assert_eq!(
        ch.request(addr, "get", "")
            .await
            .unwrap()
            .content()
            .as_ref(),
        b"3"
    );
    let r = ch.request(addr, "whoami", "").await.unwrap();
    assert_eq!(r.content().as_ref(), me.to_string().as_bytes());
    assert_eq!(
        ch.request(addr, "first", "a")
            .await
            .unwrap()
            .content()
            .as_ref(),
        b"a"
    );
    // The one-shot route is gone: the default handler answers now.
    let e = within(WAIT, "the second call", ch.request(addr, "first", "b"))
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::NotFound(_)), "{e:?}");

    sh.shutdown();
    ch.shutdown();
    sj.await.unwrap();
    cj.await.unwrap();
}

#[tokio::test]
async fn message_types_by_name_route_on_udp() {
    // Type-only route from a macro: any uri of that type.
    #[on(DELETE_URI)]
    async fn delete_any(m: Message) -> Message {
        Message::ok(m.uri().clone(), "deleted")
    }
    let server = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new().routes(handlers![delete_any]))
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let sh = server.handle();
    let sj = tokio::spawn(server.serve());
    let client = UdpNode::bind(([127, 0, 0, 1], 0), Router::new())
        .await
        .unwrap();
    let ch = client.handle();
    let cj = tokio::spawn(client.serve());
    let r = ch.delete(addr, "anything").await.unwrap();
    assert_eq!(r.message_type, MessageType::OK);
    assert_eq!(r.uri().as_ref(), b"anything");
    sh.shutdown();
    ch.shutdown();
    sj.await.unwrap();
    cj.await.unwrap();
}
