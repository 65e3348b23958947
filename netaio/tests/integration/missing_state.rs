//! A handler that takes `State<T>` for a `T` never added with `Router::with_state` fails the
//! node's `bind` with `BindError::MissingState`, naming the route, where it was registered and
//! the type (it used to be found at the first request, answered ERROR `missing state`); one
//! added to a running node is refused with `RouteError::MissingState`. A client's `build` cannot
//! fail: its `connect` does, with `ConnectError::MissingState` (it used to log the error and
//! answer the server's message ERROR).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use netaio::router::State;
use netaio::udp::UdpNode;
use netaio::{BindError, ConnectError, Message, MessageType, Router, TcpClient, TcpServer};

#[derive(Clone)]
struct Counter(Arc<std::sync::atomic::AtomicU64>);

async fn hits(State(c): State<Counter>) -> Message {
    let n = c.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Message::ok("hits", n.to_string())
}

fn router() -> Router {
    Router::new().on((MessageType::REQUEST_URI, "hits"), hits)
}

fn assert_names_the_route(e: BindError) {
    let BindError::MissingState(e) = e else {
        panic!("expected MissingState, got {e:?}");
    };
    assert!(e.state.ends_with("Counter"), "{e}");
    assert!(e.route.contains("hits"), "{e}");
    assert!(e.at.contains("missing_state.rs"), "{e}");
    assert!(e.to_string().contains("Router::with_state"), "{e}");
}

#[tokio::test]
async fn a_tcp_server_with_a_handler_missing_its_state_does_not_bind() {
    let e = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router())
        .bind()
        .await
        .unwrap_err();
    assert_names_the_route(e);
    // With the state, it binds.
    let counter = Counter(Arc::default());
    TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router().with_state(counter))
        .bind()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_udp_node_with_a_handler_missing_its_state_does_not_bind() {
    let e = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router())
        .bind()
        .await
        .unwrap_err();
    assert_names_the_route(e);
}

#[cfg(feature = "macros")]
#[tokio::test]
async fn a_macro_handler_missing_its_state_does_not_bind() {
    #[netaio::on(REQUEST_URI, uri = "hits")]
    async fn hits_macro(State(c): State<Counter>, _msg: Message) -> Message {
        Message::ok(
            "hits",
            c.0.load(std::sync::atomic::Ordering::Relaxed).to_string(),
        )
    }
    let e = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new().routes(netaio::handlers![hits_macro]))
        .bind()
        .await
        .unwrap_err();
    let BindError::MissingState(e) = e else {
        panic!("expected MissingState, got {e:?}");
    };
    assert!(e.state.ends_with("Counter"), "{e}");
}

#[tokio::test]
async fn a_handler_missing_its_state_is_refused_on_a_running_node() {
    let server = TcpServer::bind(([127, 0, 0, 1], 0), Router::new())
        .await
        .unwrap();
    let e = server
        .handle()
        .on((MessageType::REQUEST_URI, "hits"), hits)
        .unwrap_err();
    let netaio::router::RouteError::MissingState(e) = e else {
        panic!("expected MissingState, got {e:?}");
    };
    assert!(e.state.ends_with("Counter"), "{e}");
    assert!(e.at.contains("missing_state.rs"), "{e}");
}

#[tokio::test]
async fn a_client_with_a_handler_missing_its_state_does_not_connect() {
    let server = TcpServer::bind(([127, 0, 0, 1], 0), Router::new())
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let mut events = handle.events();
    let serving = tokio::spawn(server.serve());

    let client = TcpClient::builder().router(router()).build();
    let e = client.connect(addr).await.unwrap_err();
    let ConnectError::MissingState(e) = e else {
        panic!("expected MissingState, got {e:?}");
    };
    assert!(e.state.ends_with("Counter"), "{e}");
    assert!(e.route.contains("hits"), "{e}");
    assert!(e.at.contains("missing_state.rs"), "{e}");
    assert!(client.connections().is_empty());
    // The same on a Unix socket: refused before the path is even tried.
    #[cfg(unix)]
    {
        let e = client
            .connect_unix("/nonexistent/netaio-missing-state.sock")
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::MissingState(_)), "{e:?}");
    }

    // With the state, the same router connects and its handler answers the server's request.
    let counter = Counter(Arc::default());
    let client = TcpClient::builder()
        .router(router().with_state(counter))
        .build();
    let conn = client.connect(addr).await.unwrap();
    // The refused client never connected: the first connection is this one.
    let netaio::tcp::ConnectionEvent::Connected { id, .. } = events.recv().await.unwrap() else {
        panic!("expected Connected");
    };
    let reply = handle
        .call(id, Message::new(MessageType::REQUEST_URI, "hits", ""))
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"0");
    conn.close().await;
    handle.shutdown();
    serving.await.unwrap();
}
