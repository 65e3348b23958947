//! UdpNode multicast discovery and peer management on one host: three nodes on 127.0.0.1 find each
//! other through loopback multicast, broadcast reaches every known peer (sealed once), DISCONNECT
//! removes a peer, a silent peer expires, unauthenticated adverts and disconnects are ignored, and
//! plugins and handlers see the sender's peer. On `::1` (where Linux cannot loop IPv6 multicast
//! back on `lo`; the namespace tests cover IPv6 multicast) peer management runs by unicast adverts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use netaio::message::AuthFields;
use netaio::peer::{Peer, PeerConfig, PeerEvent};
use netaio::plugin::{
    AuthError, AuthPlugin, HmacAuth, PeerPlugin, PluginContext, Plugins, PostcardPeerPlugin,
    SendOptions,
};
use netaio::router::{Context, Route};
use netaio::udp::{MulticastConfig, MulticastInterface, UdpHandle, UdpNode, UdpNodeBuilder};
use netaio::{Message, MessageType, Router};
use netaio_tests::{WAIT, init_tracing, within};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

const INTERVAL: Duration = Duration::from_millis(300);

struct Node {
    handle: UdpHandle,
    addr: SocketAddr,
    join: JoinHandle<()>,
}

impl Node {
    fn id(&self) -> Bytes {
        self.handle.local_peer().unwrap().id.clone()
    }

    async fn stop(self) {
        self.handle.shutdown();
        within(WAIT, "the node to stop", self.join).await.unwrap();
    }
}

/// A free port for a test's multicast group (each test its own, so that tests running at the same
/// time do not hear each other).
fn group_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn multicast(port: u16) -> MulticastConfig {
    MulticastConfig::default()
        .port(port)
        .interface(MulticastInterface::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST)))
}

fn peers(app: &str) -> PeerConfig {
    PeerConfig::default()
        .app_id(app.to_owned())
        .advertise_interval(INTERVAL)
        .peer_timeout(Duration::from_secs(30))
}

async fn start(builder: UdpNodeBuilder) -> Node {
    init_tracing();
    let node = builder.address(([127, 0, 0, 1], 0)).bind().await.unwrap();
    let addr = node.local_addr();
    let handle = node.handle();
    Node {
        handle,
        addr,
        join: tokio::spawn(node.serve()),
    }
}

fn named(id: &str) -> Peer {
    Peer::new(id.to_owned())
}

/// Wait until `rx` yields an event for which `pred` holds.
async fn event(
    rx: &mut broadcast::Receiver<PeerEvent>,
    limit: Duration,
    what: &str,
    pred: impl Fn(&PeerEvent) -> bool,
) -> PeerEvent {
    within(limit, what, async {
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

/// Wait until `node` knows exactly the peers `ids`.
async fn knows(node: &Node, ids: &[&Bytes], limit: Duration) {
    let mut rx = node.handle.peer_events();
    let want: Vec<&[u8]> = ids.iter().map(|b| b.as_ref()).collect();
    let has = || {
        let mut got: Vec<Bytes> = node
            .handle
            .peers()
            .peers()
            .iter()
            .map(|p| p.id.clone())
            .collect();
        got.sort();
        let mut want: Vec<&[u8]> = want.clone();
        want.sort();
        got.iter().map(|b| b.as_ref()).collect::<Vec<_>>() == want
    };
    within(limit, "the expected peer table", async {
        while !has() {
            let _ = rx.recv().await;
        }
    })
    .await;
}

#[tokio::test]
async fn three_nodes_on_loopback_discover_each_other_within_two_intervals() {
    let port = group_port();
    let app = "t-three";
    let mk = |id| {
        UdpNode::builder()
            .local_peer(named(id))
            .multicast(multicast(port))
            .peer_management(peers(app))
    };
    let a = start(mk("a")).await;
    let mut a_events = a.handle.peer_events();
    let b = start(mk("b")).await;
    let c = start(mk("c")).await;
    let (ia, ib, ic) = (a.id(), b.id(), c.id());
    assert_eq!(a.handle.multicast_group().unwrap().port(), port);

    let limit = INTERVAL * 2;
    knows(&a, &[&ib, &ic], limit).await;
    knows(&b, &[&ia, &ic], limit).await;
    knows(&c, &[&ia, &ib], limit).await;

    // The table holds each peer at its unicast address (not the group's).
    let pb = a.handle.peers().get("b").unwrap();
    assert_eq!(pb.addrs, vec![b.addr]);
    assert_eq!(a.handle.peers().by_addr(c.addr).unwrap().id, ic);
    // A node never records itself, though it hears its own adverts (loopback is on).
    assert!(!a.handle.peers().contains(&ia));
    // A saw each of them discovered, once.
    let mut discovered = Vec::new();
    while let Ok(e) = a_events.try_recv() {
        if let PeerEvent::Discovered(p) = e {
            discovered.push(p.id.clone());
        }
    }
    discovered.sort();
    assert_eq!(discovered, vec![ib.clone(), ic.clone()]);
    // Adverts keep going out: after two more intervals, nobody has been dropped or re-discovered.
    tokio::time::sleep(INTERVAL * 2).await;
    assert_eq!(a.handle.peers().len(), 2);
    while let Ok(e) = a_events.try_recv() {
        assert!(!matches!(e, PeerEvent::Discovered(_)), "{e:?}");
    }
    for n in [a, b, c] {
        n.stop().await;
    }
}

/// Counts `make` calls for messages with uri `news` and tags them; `check` removes the tag.
#[derive(Default)]
struct CountingAuth {
    news_made: AtomicUsize,
}

impl AuthPlugin for CountingAuth {
    fn make(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        if msg.uri().as_ref() == b"news" {
            self.news_made.fetch_add(1, Ordering::SeqCst);
        }
        msg.auth.insert("tag", Bytes::from_static(b"1"));
        Ok(())
    }
    fn check(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        msg.auth
            .remove("tag")
            .map(|_| ())
            .ok_or_else(|| AuthError::MissingField("tag".into()))
    }
}

#[tokio::test]
async fn broadcast_reaches_every_known_peer_and_is_sealed_once() {
    let port = group_port();
    let app = "t-broadcast";
    let (tx, mut rx) = mpsc::channel::<(Bytes, Bytes)>(8);
    let counting = Arc::new(CountingAuth::default());
    let router = |tx: mpsc::Sender<(Bytes, Bytes)>| {
        Router::new().on(
            (MessageType::PUBLISH_URI, "news"),
            move |m: Message, ctx: Context| {
                let tx = tx.clone();
                async move {
                    let me = ctx.udp().unwrap().local_peer().unwrap().id.clone();
                    tx.send((me, m.content().clone())).await.unwrap();
                }
            },
        )
    };
    let mk = |id, tx| {
        UdpNode::builder()
            .local_peer(named(id))
            .router(router(tx))
            .auth_arc(counting.clone())
            .multicast(multicast(port))
            .peer_management(peers(app))
    };
    let a = start(mk("a", tx.clone())).await;
    let b = start(mk("b", tx.clone())).await;
    let c = start(mk("c", tx.clone())).await;
    knows(&a, &[&b.id(), &c.id()], INTERVAL * 2).await;

    let sent = a
        .handle
        .broadcast(&Message::new(MessageType::PUBLISH_URI, "news", "hello"))
        .await
        .unwrap();
    assert_eq!(sent, 2);
    let mut got = vec![
        within(WAIT, "first delivery", rx.recv()).await.unwrap(),
        within(WAIT, "second delivery", rx.recv()).await.unwrap(),
    ];
    got.sort();
    assert_eq!(
        got,
        vec![
            (Bytes::from("b"), Bytes::from("hello")),
            (Bytes::from("c"), Bytes::from("hello"))
        ]
    );
    assert_eq!(
        counting.news_made.load(Ordering::SeqCst),
        1,
        "sealed once for two peers"
    );
    // Nothing was sent to A itself.
    assert!(
        tokio::time::timeout(INTERVAL, rx.recv()).await.is_err(),
        "a third delivery"
    );
    for n in [a, b, c] {
        n.stop().await;
    }
}

#[tokio::test]
async fn a_stopping_node_sends_disconnect_and_leaves_the_tables_before_any_timeout() {
    let port = group_port();
    let app = "t-disconnect";
    let mk = |id| {
        UdpNode::builder()
            .local_peer(named(id))
            .multicast(multicast(port))
            .peer_management(peers(app))
    };
    let a = start(mk("a")).await;
    let b = start(mk("b")).await;
    let c = start(mk("c")).await;
    let (ib, ic) = (b.id(), c.id());
    knows(&a, &[&ib, &ic], INTERVAL * 2).await;
    knows(&b, &[&a.id(), &ic], INTERVAL * 2).await;
    let mut a_events = a.handle.peer_events();
    let mut b_events = b.handle.peer_events();
    a.handle.subscribe(c.addr, "news").unwrap();
    let c_addr = c.addr;

    c.stop().await;
    // The timeout is 30 s: only the DISCONNECT can remove it this fast.
    for (events, who) in [(&mut a_events, "a"), (&mut b_events, "b")] {
        let e = event(events, WAIT, &format!("{who} to see c leave"), |e| {
            e.peer().id == ic
        })
        .await;
        assert!(matches!(e, PeerEvent::Disconnected(_)), "{who}: {e:?}");
    }
    assert!(!a.handle.peers().contains(&ic));
    assert!(a.handle.peers().contains(&ib));
    // Without auth, anyone could have sent that DISCONNECT from C's address: C's subscriptions
    // stay until they expire (an authenticated goodbye drops them, see the auth test).
    assert_eq!(a.handle.subscribers("news"), vec![c_addr]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_silent_peer_expires_after_the_timeout() {
    let port = group_port();
    let app = "t-expiry";
    let timeout = Duration::from_millis(900);
    let a = start(
        UdpNode::builder()
            .local_peer(named("a"))
            .multicast(multicast(port))
            .peer_management(peers(app).peer_timeout(timeout)),
    )
    .await;
    let mut events = a.handle.peer_events();
    // A node that advertises once by hand and then says nothing more (as if killed).
    let ghost = start(UdpNode::builder().multicast(multicast(port))).await;
    let advert = Message::new(
        MessageType::ADVERTISE_PEER,
        app,
        PostcardPeerPlugin.pack(&named("ghost")).unwrap(),
    );
    ghost.handle.multicast(&advert).await.unwrap();
    let found = event(
        &mut events,
        WAIT,
        "ghost discovered",
        |e| matches!(e, PeerEvent::Discovered(p) if p.id == "ghost"),
    )
    .await;
    let seen = found.peer().last_seen.unwrap();
    let gone = event(&mut events, timeout + WAIT, "ghost expired", |e| {
        e.peer().id == "ghost"
    })
    .await;
    assert!(matches!(gone, PeerEvent::Expired(_)), "{gone:?}");
    let after = seen.elapsed();
    assert!(
        after > timeout,
        "expired after {after:?}, before the timeout"
    );
    assert!(
        after < timeout + INTERVAL * 2,
        "expired late: {after:?} for a {timeout:?} timeout"
    );
    assert!(a.handle.peers().is_empty());
    a.stop().await;
    ghost.stop().await;
}

#[tokio::test]
async fn with_an_auth_plugin_unauthenticated_adverts_and_disconnects_are_ignored() {
    let port = group_port();
    let app = "t-auth";
    let secret = |id| {
        UdpNode::builder()
            .local_peer(named(id))
            .auth(HmacAuth::new(b"shared secret"))
            .multicast(multicast(port))
            .peer_management(peers(app))
    };
    let a = start(secret("a")).await;
    let b = start(secret("b")).await;
    // No auth plugin at all, and another secret: neither may be recorded by A or B.
    let open = start(
        UdpNode::builder()
            .local_peer(named("open"))
            .multicast(multicast(port))
            .peer_management(peers(app)),
    )
    .await;
    let wrong = start(
        UdpNode::builder()
            .local_peer(named("wrong"))
            .auth(HmacAuth::new(b"another secret"))
            .multicast(multicast(port))
            .peer_management(peers(app)),
    )
    .await;
    knows(&a, &[&b.id()], INTERVAL * 2).await;
    knows(&b, &[&a.id()], INTERVAL * 2).await;
    // Three more rounds of adverts from everyone: still only each other.
    tokio::time::sleep(INTERVAL * 3).await;
    for n in [&a, &b] {
        let ids: Vec<_> = n
            .handle
            .peers()
            .peers()
            .iter()
            .map(|p| p.id.clone())
            .collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert!(!n.handle.peers().contains("open") && !n.handle.peers().contains("wrong"));
        assert!(
            n.handle.stats().auth_failed > 0,
            "their adverts were refused"
        );
    }

    // A DISCONNECT naming B, from B's own address, but without B's MAC: ignored.
    a.handle.subscribe(b.addr, "news").unwrap();
    let bye_b = Message::new(
        MessageType::DISCONNECT,
        app,
        PostcardPeerPlugin.pack(&named("b")).unwrap(),
    );
    let refused_before = a.handle.stats().auth_failed;
    b.handle
        .multicast_with(&bye_b, &SendOptions::new().use_auth(false))
        .await
        .unwrap();
    within(WAIT, "A to refuse the forged DISCONNECT", async {
        while a.handle.stats().auth_failed == refused_before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        a.handle.peers().contains("b"),
        "an unauthenticated DISCONNECT evicted B"
    );
    assert_eq!(a.handle.subscribers("news"), vec![b.addr]);
    // The same, authenticated: B is gone, and its subscriptions with it.
    let mut events = a.handle.peer_events();
    b.handle.multicast(&bye_b).await.unwrap();
    let e = event(&mut events, WAIT, "B disconnected", |e| e.peer().id == "b").await;
    assert!(matches!(e, PeerEvent::Disconnected(_)), "{e:?}");
    assert!(a.handle.subscribers("news").is_empty());
    for n in [a, b, open, wrong] {
        n.stop().await;
    }
}

/// An inner auth plugin that needs both ends' peers, as `X25519Cipher` does: `make` names the
/// recipient (from the peer table, by address) and `check` requires the sender to be the known
/// peer at the source address and the message to be meant for this node.
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
        let fields: &mut AuthFields = &mut msg.auth;
        let (to, from) = (fields.remove("to"), fields.remove("from"));
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
async fn plugins_and_handlers_see_the_senders_peer_from_the_table() {
    let port = group_port();
    let app = "t-peerctx";
    let router = Router::new()
        .on(
            (MessageType::REQUEST_URI, "whoami"),
            |ctx: Context| async move {
                let who = ctx.peer().map(|p| p.id.clone()).unwrap_or_default();
                Message::respond("whoami", who)
            },
        )
        .route(
            Route::on(
                (MessageType::REQUEST_URI, "bound"),
                |m: Message| async move { Message::respond("bound", m.content().clone()) },
            )
            .with_inner(Plugins::new().auth(PeerBound)),
        );
    let a = start(
        UdpNode::builder()
            .local_peer(named("a"))
            .router(router)
            .multicast(multicast(port))
            .peer_management(peers(app)),
    )
    .await;
    let b = start(
        UdpNode::builder()
            .local_peer(named("b"))
            .multicast(multicast(port))
            .peer_management(peers(app)),
    )
    .await;
    let stranger = start(UdpNode::builder().local_peer(named("stranger"))).await;
    knows(&a, &[&b.id()], INTERVAL * 2).await;
    knows(&b, &[&a.id()], INTERVAL * 2).await;

    let r = b.handle.request(a.addr, "whoami", "").await.unwrap();
    assert_eq!(r.content().as_ref(), b"b");
    let r = stranger.handle.request(a.addr, "whoami", "").await.unwrap();
    assert_eq!(r.content().as_ref(), b"", "an unknown sender has no peer");

    // Both directions need the other's peer: B's request is sealed for A, A's reply for B.
    let opts = SendOptions::new().inner(Plugins::new().auth(PeerBound));
    let r = b
        .handle
        .call_with(
            a.addr,
            Message::new(MessageType::REQUEST_URI, "bound", "secret"),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(r.content().as_ref(), b"secret");
    // A sender A does not know cannot even seal for it.
    let e = stranger
        .handle
        .call_with(
            a.addr,
            Message::new(MessageType::REQUEST_URI, "bound", "x"),
            &opts.clone().timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, netaio::RequestError::Send(_)),
        "sealing without a peer fails: {e:?}"
    );
    for n in [a, b, stranger] {
        n.stop().await;
    }
}

#[tokio::test]
async fn on_ipv6_loopback_peers_are_managed_by_unicast_adverts() {
    init_tracing();
    let v6 = |id| {
        UdpNode::builder()
            .address("[::1]:0".parse::<SocketAddr>().unwrap())
            .local_peer(named(id))
            .peer_management(peers("t-v6"))
    };
    let start6 = |b: UdpNodeBuilder| async move {
        let node = b.bind().await.unwrap();
        let addr = node.local_addr();
        let handle = node.handle();
        Node {
            handle,
            addr,
            join: tokio::spawn(node.serve()),
        }
    };
    let a = start6(v6("a")).await;
    let b = start6(v6("b")).await;
    let c = start6(v6("c")).await;
    // No group joined: `advertise` has nowhere to go, `advertise_to` reaches one node.
    assert!(a.handle.advertise().await.is_err());
    a.handle.advertise_to(b.addr).await.unwrap();
    a.handle.advertise_to(c.addr).await.unwrap();
    knows(&a, &[&b.id(), &c.id()], WAIT).await;
    knows(&b, &[&a.id()], WAIT).await;
    assert_eq!(a.handle.peers().get("b").unwrap().addrs, vec![b.addr]);

    // Without a group, the goodbye goes by unicast to every known peer.
    let mut b_events = b.handle.peer_events();
    let mut c_events = c.handle.peer_events();
    a.stop().await;
    for (events, who) in [(&mut b_events, "b"), (&mut c_events, "c")] {
        let e = event(events, WAIT, &format!("{who} to see a leave"), |e| {
            e.peer().id == "a"
        })
        .await;
        assert!(matches!(e, PeerEvent::Disconnected(_)), "{e:?}");
    }
    b.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn bind_refuses_a_group_of_the_wrong_family_or_not_multicast() {
    let v6_group = MulticastConfig::default().group("ff02::1".parse().unwrap());
    let err = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .multicast(v6_group)
        .bind()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            netaio::BindError::Multicast(netaio::error::MulticastError::FamilyMismatch { .. })
        ),
        "{err}"
    );
    let unicast = MulticastConfig::default().group("10.0.0.1".parse().unwrap());
    let err = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .multicast(unicast)
        .bind()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            netaio::BindError::Multicast(netaio::error::MulticastError::NotMulticast(_))
        ),
        "{err}"
    );
    // Peer management taking a route the application already uses.
    let taken = Router::new().on((MessageType::ADVERTISE_PEER, "netaio"), || async {});
    let err = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(taken)
        .peer_management(PeerConfig::default())
        .bind()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already registered"), "{err}");
    // A configuration error, typed as one (not an OS error of the bind).
    assert!(
        matches!(
            err,
            netaio::BindError::PeerManagement(netaio::error::PeerManagementError::Route(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn ttl_and_loopback_are_set_on_the_sending_socket() {
    let port = group_port();
    let n = start(UdpNode::builder().multicast(multicast(port).ttl(4).loopback(false))).await;
    let sock = socket2::SockRef::from(&**n.handle.socket());
    assert_eq!(sock.multicast_ttl_v4().unwrap(), 4);
    assert!(!sock.multicast_loop_v4().unwrap());
    let d = start(UdpNode::builder().multicast(multicast(port))).await;
    let sock = socket2::SockRef::from(&**d.handle.socket());
    assert_eq!(
        sock.multicast_ttl_v4().unwrap(),
        1,
        "default TTL: the local link"
    );
    assert!(sock.multicast_loop_v4().unwrap(), "default: loopback on");
    n.stop().await;
    d.stop().await;
}

/// A full peer table makes room for a newcomer by evicting the least recently heard peer (it
/// used to refuse every new peer for as long as the old ones kept advertising).
#[tokio::test]
async fn a_full_peer_table_evicts_the_least_recently_heard_for_a_new_peer() {
    let port = group_port();
    let app = "t-full";
    let a = start(
        UdpNode::builder()
            .local_peer(named("a"))
            .multicast(multicast(port))
            .peer_management(peers(app).max_peers(1)),
    )
    .await;
    let mk = |id| {
        UdpNode::builder()
            .local_peer(named(id))
            .multicast(multicast(port))
            .peer_management(peers(app))
    };
    let b = start(mk("b")).await;
    knows(&a, &[&b.id()], INTERVAL * 2).await;
    let mut events = a.handle.peer_events();
    let c = start(mk("c")).await;
    // C's first advert: C is in, B (heard less recently) is out.
    event(
        &mut events,
        WAIT,
        "C discovered",
        |e| matches!(e, PeerEvent::Discovered(p) if p.id == "c"),
    )
    .await;
    assert!(a.handle.peers().evicted() >= 1);
    assert_eq!(a.handle.peers().len(), 1);
    assert_eq!(a.handle.peers().refused(), 0);
    for n in [a, b, c] {
        n.stop().await;
    }
}

/// A datagram sent to the multicast group that no route takes is dropped by every member, not
/// answered NOT_FOUND: otherwise one datagram to the group, its source possibly spoofed, would
/// make every node answer it. The same request sent to a node directly still gets NOT_FOUND.
#[tokio::test]
async fn group_datagrams_without_a_route_are_not_answered() {
    let port = group_port();
    let quiet = start(UdpNode::builder().multicast(multicast(port))).await;
    // The sender records everything that reaches it unsolicited.
    let (tx, mut seen) = mpsc::unbounded_channel::<(MessageType, SocketAddr)>();
    let sender = start(UdpNode::builder().multicast(multicast(port)).router(
        Router::new().fallback(move |msg: Message, ctx: Context| {
            let tx = tx.clone();
            async move {
                tx.send((msg.message_type, ctx.peer_addr())).unwrap();
            }
        }),
    ))
    .await;

    let before = quiet.handle.stats().received;
    sender
        .handle
        .multicast(&Message::new(MessageType::REQUEST_URI, "nobody", ""))
        .await
        .unwrap();
    within(WAIT, "the group datagram to reach the other node", async {
        while quiet.handle.stats().received == before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Whatever the sender gets within a while: at most its own group datagram (loopback), never
    // an answer.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some((t, from))) = tokio::time::timeout_at(deadline, seen.recv()).await {
        assert_eq!(
            t,
            MessageType::REQUEST_URI,
            "the sender got a {t} from {from} for a group datagram"
        );
    }

    // Sent to the node itself, the same request is answered.
    let direct = sender
        .handle
        .request(quiet.addr, "nobody", "")
        .await
        .unwrap_err();
    assert!(
        matches!(direct, netaio::RequestError::NotFound(_)),
        "{direct:?}"
    );

    quiet.stop().await;
    sender.stop().await;
}

/// With `HmacAuth`, a node's own group datagrams come back to it through the loopback of the
/// group: they carry its own node id and are dropped quietly, not counted as auth failures (a
/// unicast datagram reflected back to it is, see netaio's reflection test), while another member
/// takes them.
#[tokio::test]
async fn own_group_datagrams_are_not_auth_failures() {
    let port = group_port();
    let (tx, mut got) = mpsc::unbounded_channel::<SocketAddr>();
    let router = move || {
        let tx = tx.clone();
        Router::new().on((MessageType::NOTIFY_URI, "news"), move |ctx: Context| {
            let tx = tx.clone();
            async move {
                tx.send(ctx.peer_addr()).unwrap();
            }
        })
    };
    let a = start(
        UdpNode::builder()
            .multicast(multicast(port))
            .auth(HmacAuth::new(b"group secret"))
            .router(router()),
    )
    .await;
    let b = start(
        UdpNode::builder()
            .multicast(multicast(port))
            .auth(HmacAuth::new(b"group secret"))
            .router(router()),
    )
    .await;
    let a_received = a.handle.stats().received;
    a.handle
        .multicast(&Message::new(MessageType::NOTIFY_URI, "news", "hello"))
        .await
        .unwrap();
    // B takes it; A gets its own copy back and drops it without a word.
    let from = within(WAIT, "B to take the group datagram", got.recv())
        .await
        .unwrap();
    assert_eq!(from, a.addr);
    within(WAIT, "A to receive its own copy", async {
        while a.handle.stats().received == a_received {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        got.try_recv().is_err(),
        "A ran a handler for its own datagram"
    );
    assert_eq!(a.handle.stats().auth_failed, 0);
    assert_eq!(b.handle.stats().auth_failed, 0);
    a.stop().await;
    b.stop().await;
}
