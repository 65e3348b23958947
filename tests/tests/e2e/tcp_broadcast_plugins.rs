//! Broadcast and notify prepare a message once when no plugin is peer-specific, and once per
//! recipient otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use netaio::plugin::{CipherError, CipherPlugin, PluginContext};
use netaio::tcp::ConnectionId;
use netaio::{Connection, Message, MessageType, TcpClient, TcpServer};
use netaio_tests::{WAIT, connected, echo_router, start_with};

/// A "cipher" that only counts how often it encrypts; optionally peer-specific.
struct Counting {
    encrypts: Arc<AtomicUsize>,
    peer_specific: bool,
}

impl CipherPlugin for Counting {
    fn encrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
        self.encrypts.fetch_add(1, Ordering::SeqCst);
        Ok(msg)
    }
    fn decrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
        Ok(msg)
    }
    fn is_peer_specific(&self) -> bool {
        self.peer_specific
    }
}

async fn run(peer_specific: bool) -> (usize, usize) {
    let encrypts = Arc::new(AtomicUsize::new(0));
    let server = start_with(TcpServer::builder().router(echo_router()).cipher(Counting {
        encrypts: encrypts.clone(),
        peer_specific,
    }))
    .await;
    let mut events = server.events();
    let mut conns: Vec<(Connection, ConnectionId)> = Vec::new();
    for _ in 0..3 {
        let c = TcpClient::new().connect(server.addr).await.unwrap();
        let id = connected(&mut events, None).await;
        conns.push((c, id));
    }
    for (_, id) in &conns {
        server.handle.subscribe(*id, "topic").unwrap();
    }

    let before = encrypts.load(Ordering::SeqCst);
    let msg = Message::new(MessageType::NOTIFY_URI, "all", "hello");
    assert_eq!(server.handle.broadcast(&msg).await.unwrap(), 3);
    for (c, _) in &conns {
        assert_eq!(c.receive_timeout(WAIT).await.unwrap(), msg);
    }
    let broadcast_encrypts = encrypts.load(Ordering::SeqCst) - before;

    let before = encrypts.load(Ordering::SeqCst);
    let msg = Message::new(MessageType::NOTIFY_URI, "topic", "news");
    assert_eq!(server.handle.notify("topic", &msg).await.unwrap(), 3);
    for (c, _) in &conns {
        assert_eq!(c.receive_timeout(WAIT).await.unwrap(), msg);
    }
    let notify_encrypts = encrypts.load(Ordering::SeqCst) - before;
    server.stop().await;
    (broadcast_encrypts, notify_encrypts)
}

#[tokio::test]
async fn broadcast_and_notify_seal_once_without_peer_specific_plugins() {
    assert_eq!(run(false).await, (1, 1));
}

#[tokio::test]
async fn broadcast_and_notify_seal_per_recipient_with_a_peer_specific_plugin() {
    assert_eq!(run(true).await, (3, 3));
}
