//! What a caller sees when the address is not a netaio server: a request to an HTTP server fails
//! with `RequestError::NotNetaio` ("the peer does not speak netaio"), not with "connection closed
//! before the reply"; a timeout from a socket that never sent anything is explained once in the
//! log; a request to a stopped UDP node says that the node stopped; a resolve error names the
//! host. Over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use netaio::udp::UdpNode;
use netaio::{Message, MessageType, RequestError, SendError, TcpClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A one-connection HTTP server: reads what comes, answers 400, closes.
async fn http_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    });
    (addr, task)
}

#[tokio::test(start_paused = true)]
async fn a_request_to_an_http_server_says_it_does_not_speak_netaio() {
    let (addr, server) = http_server().await;
    let conn = TcpClient::new().connect(addr).await.unwrap();
    let e = conn.request("ping", "").await.unwrap_err();
    assert!(matches!(e, RequestError::NotNetaio(_)), "{e:?}");
    assert!(e.to_string().contains("does not speak netaio"), "{e}");
    server.await.unwrap();
    conn.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_on_a_stopped_udp_node_says_so() {
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .bind()
        .await
        .unwrap();
    let handle = node.handle();
    let serving = tokio::spawn(node.serve());
    handle.shutdown();
    serving.await.unwrap();
    let e = handle
        .call(
            "127.0.0.1:9".parse().unwrap(),
            Message::new(MessageType::REQUEST_URI, "ping", ""),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Send(SendError::Stopped)), "{e:?}");
    assert!(!e.to_string().contains("connection"), "{e}");
}

#[tokio::test]
async fn a_resolve_error_names_the_host() {
    // No port: refused before any lookup, so the test needs no resolver.
    let e = TcpClient::new().connect("nohost-netaio").await.unwrap_err();
    assert!(e.to_string().contains("nohost-netaio"), "{e}");
}

/// The log lines at WARN, captured on this thread (a current-thread runtime).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeout_from_a_server_that_never_sent_anything_is_explained_once() {
    let log = Captured::default();
    let writer = log.clone();
    let _guard = tracing_subscriber::util::SubscriberInitExt::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    // Accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(s);
    });
    let conn = TcpClient::new().connect(addr).await.unwrap();
    let timeout = std::time::Duration::from_secs(1);
    for _ in 0..2 {
        let e = conn
            .call_timeout(Message::new(MessageType::REQUEST_URI, "ping", ""), timeout)
            .await
            .unwrap_err();
        assert!(matches!(e, RequestError::Timeout(_)), "{e:?}");
    }
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let hints = text.matches("is it a netaio server").count();
    assert_eq!(hints, 1, "{text}");
    assert!(text.contains(&addr.to_string()), "{text}");
}
