//! The TCP transport's server and client over a Unix socket: requests and replies, subscriptions
//! and notifications, a client reconnecting to a server restarted on the same path, the peer's
//! credentials (its uid) as the server sees them, the socket file's life (a stale one replaced,
//! a live one refused, removed at the end), and one server on a TCP address and a Unix socket.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use netaio::router::Context;
use netaio::tcp::{ConnectionEvent, ConnectionState, Reconnect, unix_peer_uid};
use netaio::{
    BindError, Message, MessageType, Router, ServerHandle, SubscribeError, TcpClient, TcpServer,
};
use netaio_tests::{ECHO, WAIT, echo_router, within};
use tokio::task::JoinHandle;

/// A directory of its own for each test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netaio-unix-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serve `router` on the Unix socket at `path`.
async fn serve_unix(path: &Path, router: Router) -> (ServerHandle, JoinHandle<()>) {
    let server = TcpServer::builder()
        .router(router)
        .bind_unix(path)
        .await
        .unwrap();
    let handle = server.handle();
    (handle, tokio::spawn(server.serve()))
}

async fn stop(handle: &ServerHandle, join: JoinHandle<()>) {
    handle.shutdown();
    within(WAIT, "serve() to return", join).await.unwrap();
}

/// The echo routes, and `whoami`, which answers the uid the handler's context tells.
fn router() -> Router {
    echo_router()
        .on(
            (MessageType::REQUEST_URI, "whoami"),
            |ctx: Context| async move {
                let uid = ctx.peer_credentials().map(|c| c.uid);
                Message::respond("whoami", format!("{uid:?}"))
            },
        )
        .on(
            MessageType::SUBSCRIBE_URI,
            |msg: Message, ctx: Context| async move {
                ctx.subscribe(msg.uri().clone())?;
                Ok::<_, SubscribeError>(Message::new(
                    MessageType::CONFIRM_SUBSCRIBE,
                    msg.uri().clone(),
                    "",
                ))
            },
        )
}

#[tokio::test]
async fn requests_and_the_peer_uid_over_a_unix_socket() {
    let dir = TempDir::new();
    let path = dir.path("s.sock");
    let (handle, join) = serve_unix(&path, router()).await;
    assert_eq!(handle.unix_path(), Some(path.as_path()));
    // This process created the socket: its owner is the uid the server must see.
    let ours = std::fs::symlink_metadata(&path).unwrap().uid();
    let mut events = handle.events();

    let conn = TcpClient::new().connect_unix(&path).await.unwrap();
    let (id, peer) = match within(WAIT, "Connected", events.recv()).await.unwrap() {
        ConnectionEvent::Connected { id, peer } => (id, peer),
        other => panic!("{other:?}"),
    };
    assert_eq!(unix_peer_uid(peer), Some(ours));
    let cred = handle.peer_credentials(id).unwrap();
    assert_eq!(cred.uid, ours);
    assert_eq!(cred.pid, Some(i32::try_from(std::process::id()).unwrap()));
    // The client sees the server's uid the same way.
    assert_eq!(unix_peer_uid(conn.peer_addr()), Some(ours));

    for text in ["one", "two"] {
        let reply = conn.request(ECHO, text).await.unwrap();
        assert_eq!(reply.content().as_ref(), text.as_bytes());
    }
    let whoami = conn.request("whoami", "").await.unwrap();
    assert_eq!(
        whoami.content().as_ref(),
        format!("Some({ours})").as_bytes()
    );
    // A second connect to the same path is the open connection.
    let client = TcpClient::new();
    let a = client.connect_unix(&path).await.unwrap();
    let b = client.connect_unix(&path).await.unwrap();
    assert_eq!(client.connections().len(), 1);
    assert_eq!(
        b.request(ECHO, "same").await.unwrap().content().as_ref(),
        b"same"
    );
    client.close_all().await;
    assert!(a.is_closed());
    conn.close().await;

    stop(&handle, join).await;
    assert!(!path.exists(), "the socket file outlived its server");
}

#[tokio::test]
async fn notifications_reach_a_subscriber_over_a_unix_socket() {
    let dir = TempDir::new();
    let path = dir.path("s.sock");
    let (handle, join) = serve_unix(&path, router()).await;
    let conn = TcpClient::new().connect_unix(&path).await.unwrap();
    let mut news = conn.subscribe("news").await.unwrap();
    for text in ["one", "two"] {
        let n = handle
            .notify(
                b"news",
                &Message::new(MessageType::NOTIFY_URI, "news", text),
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    assert_eq!(news.recv().await.unwrap().content().as_ref(), b"one");
    assert_eq!(news.recv().await.unwrap().content().as_ref(), b"two");
    conn.close().await;
    assert!(news.recv().await.is_none());
    stop(&handle, join).await;
}

#[tokio::test]
async fn a_client_reconnects_to_a_server_restarted_on_the_same_path() {
    let dir = TempDir::new();
    let path = dir.path("s.sock");
    let (first, join) = serve_unix(&path, router()).await;
    let client = TcpClient::builder()
        .request_timeout(WAIT)
        .reconnect(Some(
            Reconnect::default()
                .initial_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(100)),
        ))
        .build();
    let conn = client.connect_unix(&path).await.unwrap();
    assert_eq!(
        conn.request(ECHO, "before")
            .await
            .unwrap()
            .content()
            .as_ref(),
        b"before"
    );
    let mut changes = conn.state_changes();

    stop(&first, join).await;
    within(WAIT, "the client to notice", changes.changed())
        .await
        .unwrap();
    assert!(
        matches!(
            *changes.borrow_and_update(),
            ConnectionState::Reconnecting { .. }
        ),
        "{:?}",
        conn.state()
    );
    let (second, join) = serve_unix(&path, router()).await;
    within(WAIT, "the client to reconnect", conn.wait_connected())
        .await
        .unwrap();
    assert_eq!(
        conn.request(ECHO, "after")
            .await
            .unwrap()
            .content()
            .as_ref(),
        b"after"
    );
    assert_eq!(second.connection_count(), 1);
    conn.close().await;
    stop(&second, join).await;
}

#[tokio::test]
async fn a_stale_socket_is_replaced_a_live_one_refused_another_file_left_alone() {
    let dir = TempDir::new();
    // A socket file nobody listens on (its listener is gone, the file stays).
    let stale = dir.path("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let (handle, join) = serve_unix(&stale, router()).await;
    let conn = TcpClient::new().connect_unix(&stale).await.unwrap();
    assert_eq!(
        conn.request(ECHO, "x").await.unwrap().content().as_ref(),
        b"x"
    );

    // A server listens there: a second one is refused, and the first keeps its socket.
    let again = TcpServer::builder()
        .router(router())
        .bind_unix(&stale)
        .await;
    match again {
        Err(BindError::Unix { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        conn.request(ECHO, "y").await.unwrap().content().as_ref(),
        b"y"
    );
    let other = TcpClient::new().connect_unix(&stale).await.unwrap();
    assert_eq!(
        other.request(ECHO, "z").await.unwrap().content().as_ref(),
        b"z"
    );
    conn.close().await;
    other.close().await;
    stop(&handle, join).await;

    // Not a socket: left alone.
    let file = dir.path("file");
    std::fs::write(&file, "data").unwrap();
    match TcpServer::builder().router(router()).bind_unix(&file).await {
        Err(BindError::Unix { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
}

#[tokio::test]
async fn one_server_on_a_tcp_address_and_a_unix_socket() {
    let dir = TempDir::new();
    let path = dir.path("s.sock");
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .unix_socket(&path)
        .router(router())
        .bind()
        .await
        .unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    assert!(addr.ip().is_loopback());
    let join = tokio::spawn(server.serve());
    let client = TcpClient::new();
    let tcp = client.connect(addr).await.unwrap();
    let unix = client.connect_unix(&path).await.unwrap();
    assert_eq!(client.connections().len(), 2);
    let whoami = |c: netaio::Connection| async move {
        c.request("whoami", "").await.unwrap().content().clone()
    };
    assert_eq!(whoami(tcp.clone()).await.as_ref(), b"None");
    let ours = std::fs::symlink_metadata(&path).unwrap().uid();
    assert_eq!(
        whoami(unix.clone()).await.as_ref(),
        format!("Some({ours})").as_bytes()
    );
    // Both answered: one server holds both connections.
    assert_eq!(handle.connection_count(), 2);
    client.close_all().await;
    stop(&handle, join).await;
    assert!(!path.exists());
}
