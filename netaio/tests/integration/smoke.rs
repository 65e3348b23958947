//! Smoke test: one echo round trip through TcpServer and TcpClient.
use netaio::{Message, MessageType, Router, TcpClient, TcpServer};

#[tokio::test]
async fn echo_round_trip() {
    let router = Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |m: Message| async move { Message::respond(m.uri().clone(), m.content().clone()) },
    );
    let server = TcpServer::bind(([127, 0, 0, 1], 0), router).await.unwrap();
    let addr = server.local_addr();
    let h = server.handle();
    let task = tokio::spawn(server.serve());
    let client = TcpClient::new();
    let conn = client.connect(addr).await.unwrap();
    let r = conn.request("echo", "hello").await.unwrap();
    assert_eq!(r.message_type, MessageType::RESPOND_URI);
    assert_eq!(r.content().as_ref(), b"hello");
    let e = conn.request("nope", "x").await.unwrap_err();
    assert!(matches!(e, netaio::RequestError::NotFound(_)), "{e:?}");
    h.shutdown();
    task.await.unwrap();
}
