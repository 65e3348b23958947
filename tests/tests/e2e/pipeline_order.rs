//! The fixed plugin order, shown with recording plugins on real nodes, instance and inner, send and
//! receive, on both sides: TCP server and client, and two UDP nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use netaio::plugin::SendOptions;
use netaio::router::Route;
use netaio::udp::UdpNode;
use netaio::{Message, MessageType, Router, TcpClient, TcpServer};
use netaio_tests::recording::{EXPECTED, Log, plugins, push};
use netaio_tests::{WAIT, start_with, within};

fn router(log: &Log) -> Router {
    let handler_log = log.clone();
    Router::new().route(
        Route::on((MessageType::REQUEST_URI, "rec"), move |m: Message| {
            push(
                &handler_log,
                format!("handler sees {:?}", String::from_utf8_lossy(m.content())),
            );
            std::future::ready(Message::respond("rec", "pong"))
        })
        .with_inner(plugins("server inner", "inner", log)),
    )
}

fn request() -> Message {
    Message::new(MessageType::REQUEST_URI, "rec", "ping")
}

#[tokio::test]
async fn tcp_server_and_client() {
    let log = Log::default();
    let outer = plugins("server instance", "outer", &log);
    let server = start_with(
        TcpServer::builder()
            .router(router(&log))
            .auth_arc(outer.auth.unwrap())
            .cipher_arc(outer.cipher.unwrap()),
    )
    .await;
    let outer = plugins("client instance", "outer", &log);
    let client = TcpClient::builder()
        .auth_arc(outer.auth.unwrap())
        .cipher_arc(outer.cipher.unwrap())
        .build();
    let conn = client.connect(server.addr).await.unwrap();
    let opts = SendOptions::new().inner(plugins("client inner", "inner", &log));
    let reply = conn.call_with(request(), &opts).await.unwrap();
    assert_eq!(reply.content().as_ref(), b"pong");
    assert_eq!(*log.lock().unwrap(), EXPECTED);
    server.stop().await;
}

#[tokio::test]
async fn udp_nodes() {
    let log = Log::default();
    let outer = plugins("server instance", "outer", &log);
    let server = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router(&log))
        .auth_arc(outer.auth.unwrap())
        .cipher_arc(outer.cipher.unwrap())
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let sh = server.handle();
    let sj = tokio::spawn(server.serve());
    let outer = plugins("client instance", "outer", &log);
    let client = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .auth_arc(outer.auth.unwrap())
        .cipher_arc(outer.cipher.unwrap())
        .bind()
        .await
        .unwrap();
    let ch = client.handle();
    let cj = tokio::spawn(client.serve());
    let opts = SendOptions::new().inner(plugins("client inner", "inner", &log));
    let reply = within(WAIT, "the reply", ch.call_with(addr, request(), &opts))
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"pong");
    assert_eq!(*log.lock().unwrap(), EXPECTED);
    sh.shutdown();
    ch.shutdown();
    sj.await.unwrap();
    cj.await.unwrap();
}
