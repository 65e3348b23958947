//! A handler that panics ends its own connection only: the requests waiting on that connection fail
//! at once, the event names the panic, and the server and its other connections carry on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::{Duration, Instant};

use netaio::tcp::CloseReason;
use netaio::{MessageType, RequestError, TcpClient};
use netaio_tests::{ECHO, connected, disconnected, echo_router, start};

#[tokio::test]
async fn a_panicking_handler_closes_only_its_own_connection() {
    let router = echo_router().on((MessageType::REQUEST_URI, "panic"), || async {
        if std::hint::black_box(true) {
            panic!("handler bug (expected by this test)");
        }
    });
    let server = start(router).await;
    let mut events = server.events();
    let (c1, c2) = (TcpClient::new(), TcpClient::new());
    let victim = c1.connect(server.addr).await.unwrap();
    let victim_id = connected(&mut events, None).await;
    let bystander = c2.connect(server.addr).await.unwrap();
    connected(&mut events, None).await;

    let t0 = Instant::now();
    let r = victim.request("panic", "").await;
    assert!(matches!(r, Err(RequestError::Closed)), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(
        disconnected(&mut events, victim_id).await,
        CloseReason::Io("handler panicked".into())
    );
    assert_eq!(server.handle.connection_count(), 1);

    let r = bystander.request(ECHO, "unharmed").await.unwrap();
    assert_eq!(r.content().as_ref(), b"unharmed");
    // A new connection is served too.
    netaio_tests::assert_serves(server.addr).await;
    bystander.close().await;
    server.handle.shutdown();
    netaio_tests::within(netaio_tests::WAIT, "serve() to return", server.join)
        .await
        .unwrap();
}
