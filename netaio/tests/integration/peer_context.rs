//! The peer recorded for a connection reaches the plugins of that connection, on both sides.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use netaio::peer::Peer;
use netaio::plugin::{AuthError, AuthPlugin, PluginContext};
use netaio::router::Context;
use netaio::{Message, MessageType, Router, TcpClient, TcpServer};

/// Records the peer id the plugin context carries on every check.
#[derive(Clone, Default)]
struct SeesPeer(Arc<Mutex<Vec<Option<Vec<u8>>>>>);

impl AuthPlugin for SeesPeer {
    fn make(&self, _: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        Ok(())
    }
    fn check(&self, _: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        self.0.lock().unwrap().push(ctx.peer.map(|p| p.id.to_vec()));
        Ok(())
    }
}

#[tokio::test]
async fn recorded_peer_reaches_plugins() {
    let server_seen = SeesPeer::default();
    let router = Router::new()
        .on(
            (MessageType::ADVERTISE_PEER, "app"),
            |msg: Message, ctx: Context| async move {
                ctx.set_peer(Some(Peer::new(msg.content().clone())));
                Message::new(MessageType::PEER_DISCOVERED, "app", "server-1")
            },
        )
        .on(
            (MessageType::REQUEST_URI, "who"),
            |ctx: Context| async move {
                let id = ctx.peer().map(|p| p.id.clone()).unwrap_or_default();
                Message::respond("who", id)
            },
        );
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router)
        .auth(server_seen.clone())
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let task = tokio::spawn(server.serve());

    let client_seen = SeesPeer::default();
    let client = TcpClient::builder().auth(client_seen.clone()).build();
    let conn = client.connect(addr).await.unwrap();

    // Before any advert, neither side knows the other.
    let r = conn.request("who", "").await.unwrap();
    assert_eq!(r.content().as_ref(), b"");
    let advert = Message::new(MessageType::ADVERTISE_PEER, "app", "client-1");
    let found = conn.call(advert).await.unwrap();
    conn.set_peer(Some(Peer::new(found.content().clone())));
    let r = conn.request("who", "").await.unwrap();
    assert_eq!(r.content().as_ref(), b"client-1");

    let server_ids = server_seen.0.lock().unwrap().clone();
    assert_eq!(
        server_ids,
        vec![None, None, Some(b"client-1".to_vec())],
        "server plugin sees the peer only after it was recorded"
    );
    let client_ids = client_seen.0.lock().unwrap().clone();
    assert_eq!(
        client_ids,
        vec![None, None, Some(b"server-1".to_vec())],
        "client plugin sees the server's peer once recorded"
    );
    let conns = handle.connections();
    assert_eq!(
        handle.peer(conns[0].id).map(|p| p.id.clone()).as_deref(),
        Some(&b"client-1"[..])
    );
    handle.shutdown();
    task.await.unwrap();
}
