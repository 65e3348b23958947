//! X25519Cipher + Ed25519Auth end to end on 127.0.0.1, between a TcpServer and a TcpClient whose
//! peer data (public keys) was exchanged: requests and replies, a server push, what a handler
//! sees, and the typed errors for an unknown peer, an impostor, a client without plugins and a
//! message that skips the cipher.

// Helpers outside the #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::SendError;
use netaio::peer::Peer;
use netaio::plugin::{CipherError, SealError, SendOptions, Stage};
use netaio::router::Context;
use netaio::tcp::{ConnectionEvent, ConnectionId, TcpClientBuilder};
use netaio::{
    Connection, Message, MessageType, RequestError, Router, ServerHandle, TcpClient, TcpServer,
};
use netaio_asymmetric::{AsymmetricPeerPlugin, Ed25519Auth, Identity, X25519Cipher};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// A bound on every wait: a failure shows up as an error, never as a hang.
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    handle: ServerHandle,
    events: broadcast::Receiver<ConnectionEvent>,
    calls: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// A server with identity `id`: echo on (REQUEST_URI, "echo"), and (REQUEST_URI, "whoami")
/// answering with the id of the peer recorded for the connection.
async fn server(id: &Identity) -> Server {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let router = Router::new()
        .on((MessageType::REQUEST_URI, "echo"), move |m: Message| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Message::respond(m.uri().clone(), m.content().clone()))
        })
        .on(
            (MessageType::REQUEST_URI, "whoami"),
            |ctx: Context| async move {
                let id = ctx.peer().map(|p| p.id.clone()).unwrap_or_default();
                Message::respond("whoami", id)
            },
        );
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router)
        .cipher(X25519Cipher::new(id))
        .auth(Ed25519Auth::new(id))
        .peer_plugin(AsymmetricPeerPlugin)
        .local_peer(id.peer("server").unwrap())
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let events = handle.events();
    let task = tokio::spawn(async move {
        let _ = server.serve().await;
    });
    Server {
        addr,
        handle,
        events,
        calls,
        task,
    }
}

fn client(id: &Identity, name: &str) -> TcpClientBuilder {
    TcpClient::builder()
        .cipher(X25519Cipher::new(id))
        .auth(Ed25519Auth::new(id))
        .peer_plugin(AsymmetricPeerPlugin)
        .local_peer(id.peer(name.to_owned()).unwrap())
        .request_timeout(WAIT)
}

/// The id of the next connection the server accepts.
async fn accepted(events: &mut broadcast::Receiver<ConnectionEvent>) -> ConnectionId {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await.unwrap() {
                ConnectionEvent::Connected { id, .. } => return id,
                _ => continue,
            }
        }
    })
    .await
    .unwrap()
}

/// Connect and exchange peers: the client records the server's peer, the server records the
/// client's peer (as peer management will, after an advert).
async fn connect_as(
    s: &mut Server,
    builder: TcpClientBuilder,
    server_peer: Peer,
    client_peer: Option<Peer>,
) -> (TcpClient, Connection, ConnectionId) {
    let client = builder.build();
    let conn = tokio::time::timeout(WAIT, client.connect(s.addr))
        .await
        .unwrap()
        .unwrap();
    let id = accepted(&mut s.events).await;
    conn.set_peer(Some(server_peer));
    if let Some(p) = client_peer {
        assert!(s.handle.set_peer(id, Some(p)));
    }
    (client, conn, id)
}

async fn stop(s: Server) {
    s.handle.shutdown();
    tokio::time::timeout(WAIT, s.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_replies_and_pushes_between_peers_that_exchanged_keys() {
    let (sid, cid) = (Identity::generate(), Identity::generate());
    let mut s = server(&sid).await;
    let (_client, conn, conn_id) = connect_as(
        &mut s,
        client(&cid, "client"),
        sid.peer("server").unwrap(),
        Some(cid.peer("client").unwrap()),
    )
    .await;

    // Request / reply, both ways sealed and opened.
    let r = conn.request("echo", "hello").await.unwrap();
    assert_eq!(r.message_type, MessageType::RESPOND_URI);
    assert_eq!(r.content().as_ref(), b"hello");
    let left: Vec<&str> = r.auth.iter().map(|(n, _)| n).collect();
    assert_eq!(left, ["rref"], "the plugins removed their fields");

    // Near the size limit (the cipher adds 16 bytes of tag).
    let big = vec![0xa5u8; 60_000];
    let r = conn.request("echo", big.clone()).await.unwrap();
    assert_eq!(r.content().as_ref(), &big[..]);

    // The handler sees the peer recorded for its connection.
    let r = conn.request("whoami", "").await.unwrap();
    assert_eq!(r.content().as_ref(), b"client");

    // Many requests: fresh nonces each time, no false replay.
    for i in 0..20u32 {
        let body = i.to_be_bytes();
        let r = conn.request("echo", body.to_vec()).await.unwrap();
        assert_eq!(r.content().as_ref(), body);
    }
    assert_eq!(s.calls.load(Ordering::SeqCst), 22);

    // A server push, sealed for this connection's peer, opened by the client.
    let push = Message::new(MessageType::PUBLISH_URI, "news", "sealed for you");
    s.handle.send(conn_id, &push).await.unwrap();
    let got = conn.receive_timeout(WAIT).await.unwrap();
    assert_eq!(got, push);

    stop(s).await;
}

#[tokio::test]
async fn a_connection_whose_peer_is_unknown_gets_a_typed_auth_error() {
    let (sid, cid) = (Identity::generate(), Identity::generate());
    let mut s = server(&sid).await;
    // The server never records the client's peer for this connection.
    let (_client, conn, _) = connect_as(
        &mut s,
        client(&cid, "client"),
        sid.peer("server").unwrap(),
        None,
    )
    .await;
    match conn.request("echo", "hello").await {
        Err(RequestError::Auth(m)) => {
            assert_eq!(m.message_type, MessageType::AUTH_ERROR);
            assert_eq!(m.content().as_ref(), b"Ed25519 auth failed");
        }
        other => panic!("expected RequestError::Auth, got {other:?}"),
    }
    assert_eq!(s.calls.load(Ordering::SeqCst), 0, "no handler ran");
    stop(s).await;
}

#[tokio::test]
async fn an_impostor_is_refused() {
    let (sid, cid, mallory) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let mut s = server(&sid).await;
    // The server believes the connection is the genuine client; Mallory signs and encrypts with
    // her own keys.
    let (_client, conn, _) = connect_as(
        &mut s,
        client(&mallory, "client"),
        sid.peer("server").unwrap(),
        Some(cid.peer("client").unwrap()),
    )
    .await;
    let e = conn.request("echo", "let me in").await.unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    assert_eq!(s.calls.load(Ordering::SeqCst), 0);
    stop(s).await;
}

#[tokio::test]
async fn a_client_that_does_not_know_the_servers_key_cannot_send() {
    let (sid, cid) = (Identity::generate(), Identity::generate());
    let mut s = server(&sid).await;
    // The client records a peer without keys for the server: nothing can be encrypted to it.
    let (_client, conn, _) = connect_as(
        &mut s,
        client(&cid, "client"),
        Peer::new("server"),
        Some(cid.peer("client").unwrap()),
    )
    .await;
    let e = conn.request("echo", "x").await.unwrap_err();
    assert!(
        matches!(
            &e,
            RequestError::Send(SendError::Seal(SealError::Cipher {
                stage: Stage::Outer,
                source: CipherError::UnknownKey,
            }))
        ),
        "sealing fails with the cipher's typed error: {e:?}"
    );
    assert_eq!(s.calls.load(Ordering::SeqCst), 0);
    stop(s).await;
}

#[tokio::test]
async fn plain_or_unencrypted_messages_are_refused() {
    let (sid, cid) = (Identity::generate(), Identity::generate());
    let mut s = server(&sid).await;

    // A client without plugins: missing signature.
    let (_plain, conn, _) = connect_as(
        &mut s,
        TcpClient::builder().request_timeout(WAIT),
        sid.peer("server").unwrap(),
        Some(cid.peer("client").unwrap()),
    )
    .await;
    let e = conn.request("echo", "x").await.unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");

    // A genuine client that skips its cipher for one call: signed, but not encrypted, so the
    // server's decryption refuses it.
    let (_client, conn, _) = connect_as(
        &mut s,
        client(&cid, "client"),
        sid.peer("server").unwrap(),
        Some(cid.peer("client").unwrap()),
    )
    .await;
    let e = conn
        .call_with(
            Message::new(MessageType::REQUEST_URI, "echo", "x"),
            &SendOptions::new().use_cipher(false),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RequestError::Error(m) if m.content().as_ref() == b"decryption failed"),
        "{e:?}"
    );
    assert_eq!(s.calls.load(Ordering::SeqCst), 0);
    // The same client, normally: fine.
    assert_eq!(
        conn.request("echo", "ok").await.unwrap().content().as_ref(),
        b"ok"
    );
    stop(s).await;
}
