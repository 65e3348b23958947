//! Peer management over TCP on 127.0.0.1: the client advertises on connect and sends DISCONNECT on
//! close, the server answers PEER_DISCOVERED and records the client (table, connection, handler
//! context, plugin context), both sides broadcast to known peers, a dropped connection or a
//! reconnect updates the tables, and with an auth plugin an unauthenticated advert is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use bytes::Bytes;
use netaio::peer::{Peer, PeerConfig, PeerEvent};
use netaio::plugin::{
    AuthError, AuthPlugin, HmacAuth, PeerPlugin, PluginContext, Plugins, PostcardPeerPlugin,
    SendOptions,
};
use netaio::router::{Context, Route};
use netaio::tcp::Reconnect;
use netaio::{Message, MessageType, RequestError, Router, TcpClient, TcpServer};
use netaio_tests::{RawConn, TestServer, WAIT, start_with, within};
use tokio::sync::broadcast;

fn named(id: &str) -> Peer {
    Peer::new(id.to_owned())
}

fn whoami_router() -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, "whoami"),
        |ctx: Context| async move {
            let who = ctx.peer().map(|p| p.id.clone()).unwrap_or_default();
            Message::respond("whoami", who)
        },
    )
}

async fn server(id: &str, router: Router) -> TestServer {
    start_with(
        TcpServer::builder()
            .router(router)
            .local_peer(named(id))
            .peer_management(PeerConfig::default()),
    )
    .await
}

fn client(id: &str) -> TcpClient {
    TcpClient::builder()
        .local_peer(named(id))
        .request_timeout(WAIT)
        .peer_management(PeerConfig::default())
        .build()
}

async fn event(
    rx: &mut broadcast::Receiver<PeerEvent>,
    what: &str,
    pred: impl Fn(&PeerEvent) -> bool,
) -> PeerEvent {
    within(WAIT, what, async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("events closed: {what}"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn connect_advertises_and_both_sides_record_each_other() {
    let s = server("srv", whoami_router()).await;
    let mut s_events = s.handle.peer_events();
    let c = client("cli");
    let mut c_events = c.peer_events();
    let conn = c.connect(s.addr).await.unwrap();

    // connect() returned after the exchange: the client knows the server already.
    assert_eq!(conn.peer().unwrap().id, "srv");
    assert_eq!(c.peers().get("srv").unwrap().addrs, vec![s.addr]);
    assert!(matches!(c_events.try_recv(), Ok(PeerEvent::Discovered(p)) if p.id == "srv"));
    // The server recorded the client at the connection's address, and on the connection.
    let e = event(&mut s_events, "server discovers the client", |_| true).await;
    assert!(
        matches!(&e, PeerEvent::Discovered(p) if p.id == "cli"),
        "{e:?}"
    );
    let local = s.handle.connections()[0].peer;
    assert_eq!(s.handle.peers().by_addr(local).unwrap().id, "cli");
    let r = conn.request("whoami", "").await.unwrap();
    assert_eq!(r.content().as_ref(), b"cli", "Context::peer on the server");
    assert_eq!(c.local_peer().unwrap().id, "cli");
    assert_eq!(s.handle.local_peer().unwrap().id, "srv");

    conn.close().await;
    let e = event(&mut s_events, "server forgets the client", |_| true).await;
    assert!(
        matches!(&e, PeerEvent::Disconnected(p) if p.id == "cli"),
        "{e:?}"
    );
    assert!(s.handle.peers().is_empty());
    let e = event(&mut c_events, "client forgets the server", |_| true).await;
    assert!(
        matches!(&e, PeerEvent::Disconnected(p) if p.id == "srv"),
        "{e:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_client_sends_advertise_on_connect_and_disconnect_on_close() {
    // Play the server by hand to see exactly what the client sends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let c = client("cli");
    let accept = tokio::spawn(async move { listener.accept().await.unwrap().0 });
    let connecting = tokio::spawn({
        let c = c.clone();
        async move { c.connect(addr).await.unwrap() }
    });
    let mut raw = RawConn::from_stream(within(WAIT, "accept", accept).await.unwrap());
    let advert = raw.read_message().await;
    assert_eq!(advert.message_type, MessageType::ADVERTISE_PEER);
    assert_eq!(advert.uri().as_ref(), b"netaio");
    assert_eq!(
        PostcardPeerPlugin.unpack(advert.content()).unwrap().id,
        "cli"
    );
    let mut answer = Message::new(
        MessageType::PEER_DISCOVERED,
        "netaio",
        PostcardPeerPlugin.pack(&named("hand-made")).unwrap(),
    );
    answer.set_reply_ref(advert.request_id().unwrap());
    raw.send(&answer).await;
    let conn = within(WAIT, "connect", connecting).await.unwrap();
    assert_eq!(conn.peer().unwrap().id, "hand-made");

    conn.close().await;
    let bye = raw.read_message().await;
    assert_eq!(bye.message_type, MessageType::DISCONNECT);
    assert_eq!(bye.uri().as_ref(), b"netaio");
    assert_eq!(PostcardPeerPlugin.unpack(bye.content()).unwrap().id, "cli");
    assert!(c.peers().is_empty());
}

#[tokio::test]
async fn a_disconnect_forgets_the_peer_while_the_connection_stays_open() {
    let s = server("srv", whoami_router()).await;
    let mut raw = RawConn::connect(s.addr).await;
    let me = PostcardPeerPlugin.pack(&named("raw")).unwrap();
    let reply = raw
        .round_trip(&Message::new(
            MessageType::ADVERTISE_PEER,
            "netaio",
            me.clone(),
        ))
        .await;
    assert_eq!(reply.message_type, MessageType::PEER_DISCOVERED);
    assert_eq!(
        PostcardPeerPlugin.unpack(reply.content()).unwrap().id,
        "srv"
    );
    let who = raw
        .round_trip(&Message::new(MessageType::REQUEST_URI, "whoami", ""))
        .await;
    assert_eq!(who.content().as_ref(), b"raw");
    let mut events = s.handle.peer_events();
    // Another app id is not ours: ignored (NOT_FOUND), the peer stays.
    let other = raw
        .round_trip(&Message::new(
            MessageType::DISCONNECT,
            "other-app",
            me.clone(),
        ))
        .await;
    assert_eq!(other.message_type, MessageType::NOT_FOUND);
    assert!(s.handle.peers().contains("raw"));
    raw.send(&Message::new(MessageType::DISCONNECT, "netaio", me))
        .await;
    let e = event(&mut events, "the DISCONNECT", |_| true).await;
    assert!(
        matches!(&e, PeerEvent::Disconnected(p) if p.id == "raw"),
        "{e:?}"
    );
    let who = raw
        .round_trip(&Message::new(MessageType::REQUEST_URI, "whoami", ""))
        .await;
    assert_eq!(
        who.content().as_ref(),
        b"",
        "the connection's peer is cleared"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_connection_that_drops_without_disconnect_leaves_the_table() {
    let s = server("srv", Router::new()).await;
    let mut events = s.handle.peer_events();
    let mut raw = RawConn::connect(s.addr).await;
    let me = PostcardPeerPlugin.pack(&named("raw")).unwrap();
    raw.round_trip(&Message::new(MessageType::ADVERTISE_PEER, "netaio", me))
        .await;
    event(&mut events, "discovered", |e| {
        matches!(e, PeerEvent::Discovered(_))
    })
    .await;
    drop(raw);
    let e = event(&mut events, "gone with its connection", |_| true).await;
    assert!(
        matches!(&e, PeerEvent::Disconnected(p) if p.id == "raw"),
        "{e:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn both_sides_broadcast_to_known_peers_only() {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let news = move |name: &'static str| {
        let tx = tx.clone();
        Router::new().on((MessageType::PUBLISH_URI, "news"), move |m: Message| {
            let tx = tx.clone();
            async move {
                tx.send(Bytes::from(format!(
                    "{name}:{}",
                    String::from_utf8_lossy(m.content())
                )))
                .await
                .unwrap();
            }
        })
    };
    // Server side: two peer-managed clients and one plain client.
    let s = server("srv", Router::new()).await;
    let c1 = client("c1");
    let c2 = client("c2");
    let plain = TcpClient::new();
    let k1 = c1.connect(s.addr).await.unwrap();
    let k2 = c2.connect(s.addr).await.unwrap();
    let kp = plain.connect(s.addr).await.unwrap();
    within(WAIT, "two peers at the server", async {
        while s.handle.peers().len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let msg = Message::new(MessageType::PUBLISH_URI, "news", "to peers");
    assert_eq!(s.handle.broadcast_to_peers(&msg).await.unwrap(), 2);
    for k in [&k1, &k2] {
        let m = k.receive_timeout(WAIT).await.unwrap();
        assert_eq!(m.content().as_ref(), b"to peers");
    }
    assert!(
        kp.receive_timeout(Duration::from_millis(200))
            .await
            .is_err(),
        "a client that never advertised got it"
    );

    // Client side: one client, two servers with peer management, one without.
    let s1 = server("s1", news("s1")).await;
    let s2 = server("s2", news("s2")).await;
    let s3 = start_with(TcpServer::builder().router(news("s3"))).await;
    let c = client("c");
    c.connect(s1.addr).await.unwrap();
    c.connect(s2.addr).await.unwrap();
    let k3 = c.connect(s3.addr).await.unwrap();
    assert!(k3.peer().is_none(), "s3 answered the advert NOT_FOUND");
    assert_eq!(
        c.broadcast_to_peers(&Message::new(MessageType::PUBLISH_URI, "news", "hi"))
            .await,
        2
    );
    let mut got = vec![
        within(WAIT, "delivery", rx.recv()).await.unwrap(),
        within(WAIT, "delivery", rx.recv()).await.unwrap(),
    ];
    got.sort();
    assert_eq!(got, vec![Bytes::from("s1:hi"), Bytes::from("s2:hi")]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err()
    );
    for t in [s, s1, s2, s3] {
        t.stop().await;
    }
}

#[tokio::test]
async fn with_an_auth_plugin_an_unauthenticated_advert_is_refused() {
    let s = start_with(
        TcpServer::builder()
            .local_peer(named("srv"))
            .auth(HmacAuth::new(b"secret"))
            .peer_management(PeerConfig::default()),
    )
    .await;
    let open = client("open");
    let conn = open.connect(s.addr).await.unwrap();
    assert!(conn.peer().is_none());
    let e = conn.advertise().await.unwrap_err();
    assert!(
        matches!(
            e,
            netaio::error::AdvertiseError::Request(RequestError::Auth(_))
        ),
        "{e:?}"
    );
    // A forged DISCONNECT cannot evict a real peer either.
    let good = TcpClient::builder()
        .local_peer(named("good"))
        .auth(HmacAuth::new(b"secret"))
        .peer_management(PeerConfig::default())
        .build();
    let g = good.connect(s.addr).await.unwrap();
    assert_eq!(g.peer().unwrap().id, "srv");
    let bye = Message::new(
        MessageType::DISCONNECT,
        "netaio",
        PostcardPeerPlugin.pack(&named("good")).unwrap(),
    );
    // As a call, so that the server's AUTH_ERROR (sent without a MAC) answers it.
    let e = g
        .call_with(bye, &SendOptions::new().use_auth(false))
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");
    let peers: Vec<_> = s
        .handle
        .peers()
        .peers()
        .iter()
        .map(|p| p.id.clone())
        .collect();
    assert_eq!(peers, vec![Bytes::from("good")]);
    s.stop().await;
}

/// An inner auth plugin that needs both ends' peers (as `X25519Cipher` does).
struct PeerBound;

impl AuthPlugin for PeerBound {
    fn make(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        let to = ctx.peer.ok_or(AuthError::UnknownKey)?;
        let from = ctx.local.ok_or(AuthError::UnknownKey)?;
        msg.auth.insert("to", to.id.clone());
        msg.auth.insert("from", from.id.clone());
        Ok(())
    }
    fn check(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        let sender = ctx.peer.ok_or(AuthError::UnknownKey)?;
        let me = ctx.local.ok_or(AuthError::UnknownKey)?;
        let (to, from) = (msg.auth.remove("to"), msg.auth.remove("from"));
        if to.as_ref() == Some(&me.id) && from.as_ref() == Some(&sender.id) {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }
    fn is_peer_specific(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn plugins_see_the_peers_exchanged_on_connect() {
    let router = Router::new().route(
        Route::on(
            (MessageType::REQUEST_URI, "bound"),
            |m: Message| async move { Message::respond("bound", m.content().clone()) },
        )
        .with_inner(Plugins::new().auth(PeerBound)),
    );
    let s = server("srv", router).await;
    let c = client("cli");
    let conn = c.connect(s.addr).await.unwrap();
    let opts = SendOptions::new().inner(Plugins::new().auth(PeerBound));
    let r = conn
        .call_with(Message::new(MessageType::REQUEST_URI, "bound", "x"), &opts)
        .await
        .unwrap();
    assert_eq!(r.content().as_ref(), b"x");
    // Without peer management nobody knows anybody: the client cannot even seal.
    let plain = TcpClient::builder().local_peer(named("plain")).build();
    let pc = plain.connect(s.addr).await.unwrap();
    let e = pc
        .call_with(Message::new(MessageType::REQUEST_URI, "bound", "x"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Send(_)), "{e:?}");
    s.stop().await;
}

#[tokio::test]
async fn after_a_reconnect_the_client_advertises_again() {
    let s = server("srv", Router::new()).await;
    let mut events = s.handle.peer_events();
    let mut conns = s.events();
    let c = TcpClient::builder()
        .local_peer(named("cli"))
        .peer_management(PeerConfig::default())
        .reconnect(Some(
            Reconnect::default().initial_delay(Duration::from_millis(20)),
        ))
        .build();
    let mut c_events = c.peer_events();
    let conn = c.connect(s.addr).await.unwrap();
    let id = netaio_tests::connected(&mut conns, None).await;
    event(&mut events, "first discovery", |e| {
        matches!(e, PeerEvent::Discovered(_))
    })
    .await;
    assert!(s.handle.disconnect(id));
    event(&mut events, "gone with the connection", |e| {
        matches!(e, PeerEvent::Disconnected(_))
    })
    .await;
    event(&mut c_events, "client forgets the server", |e| {
        matches!(e, PeerEvent::Disconnected(_))
    })
    .await;
    let e = event(&mut events, "discovered again", |_| true).await;
    assert!(
        matches!(&e, PeerEvent::Discovered(p) if p.id == "cli"),
        "{e:?}"
    );
    let e = event(&mut c_events, "client records the server again", |_| true).await;
    assert!(
        matches!(&e, PeerEvent::Discovered(p) if p.id == "srv"),
        "{e:?}"
    );
    assert_eq!(conn.peer().unwrap().id, "srv");
    conn.close().await;
    s.stop().await;
}
