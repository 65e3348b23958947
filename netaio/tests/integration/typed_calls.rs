//! Typed requests: `call_postcard` serializes the request with postcard and deserializes the
//! reply, the client half of a handler taking `Postcard<Req>` and returning `Postcard<Resp>`;
//! over TCP and UDP on 127.0.0.1. A reply of another shape is a `Decode` error, an error reply
//! a `Request` error.
#![allow(clippy::unwrap_used)]

use netaio::router::Postcard;
use netaio::udp::UdpNode;
use netaio::{MessageType, PostcardCallError, RequestError, Router, TcpClient, TcpServer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Add {
    a: u32,
    b: u32,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Sum {
    total: u64,
    text: String,
}

fn router() -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, "add"),
        |Postcard(add): Postcard<Add>| async move {
            let total = u64::from(add.a) + u64::from(add.b);
            Postcard(Sum {
                total,
                text: total.to_string(),
            })
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_typed_call_over_tcp() {
    let server = TcpServer::bind(([127, 0, 0, 1], 0), router())
        .await
        .unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    let serving = tokio::spawn(server.serve());
    let conn = TcpClient::new().connect(addr).await.unwrap();

    let sum: Sum = conn
        .call_postcard("add", &Add { a: 2, b: 40 })
        .await
        .unwrap();
    assert_eq!(
        sum,
        Sum {
            total: 42,
            text: "42".into()
        }
    );
    // The request does not deserialize on the server: its ERROR reply.
    let e = conn
        .call_postcard::<_, Sum>("add", &[1u8])
        .await
        .unwrap_err();
    assert!(
        matches!(e, PostcardCallError::Request(RequestError::Error(_))),
        "{e:?}"
    );
    // The reply is not the expected type.
    let e = conn
        .call_postcard::<_, [u64; 8]>("add", &Add { a: 1, b: 1 })
        .await
        .unwrap_err();
    assert!(matches!(e, PostcardCallError::Decode { .. }), "{e:?}");
    conn.close().await;
    handle.shutdown();
    serving.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_typed_call_over_udp() {
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router())
        .bind()
        .await
        .unwrap();
    let (addr, server) = (node.local_addr(), node.handle());
    let _serving = tokio::spawn(node.serve());
    let client = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .bind()
        .await
        .unwrap();
    let client_handle = client.handle();
    let _client = tokio::spawn(client.serve());
    let sum: Sum = client_handle
        .call_postcard(addr, "add", &Add { a: 1, b: 2 })
        .await
        .unwrap();
    assert_eq!(sum.total, 3);
    server.shutdown();
    client_handle.shutdown();
}
