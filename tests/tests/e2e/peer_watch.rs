//! A peer discovered before the application looks gets through: `watch_peers()` taken after the
//! node has served an advert starts with that peer (`peer_events()` taken then misses its
//! `Discovered` forever), then gives the later events. Over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use netaio::peer::{Peer, PeerConfig, PeerEvent};
use netaio::udp::{UdpHandle, UdpNode};

async fn node(id: &str) -> (UdpHandle, tokio::task::JoinHandle<()>) {
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .local_peer(Peer::new(id.to_owned()))
        .peer_management(
            PeerConfig::default()
                .app_id("watch")
                .advertise_interval(Duration::from_secs(3600)),
        )
        .bind()
        .await
        .unwrap();
    let handle = node.handle();
    (handle, tokio::spawn(node.serve()))
}

#[tokio::test(start_paused = true)]
async fn watching_late_starts_with_the_peers_already_known() {
    let (a, _a) = node("a").await;
    let (b, _b) = node("b").await;
    // b advertises to a and waits for a's answer: a has recorded b by then.
    b.advertise_to(a.local_addr()).await.unwrap();
    let mut late_events = a.peer_events();
    let mut watch = a.watch_peers();
    match watch.try_recv().unwrap() {
        PeerEvent::Discovered(p) => assert_eq!(p.id.as_ref(), b"b"),
        other => panic!("expected b discovered first, got {other:?}"),
    }
    assert!(late_events.try_recv().is_err(), "events taken late miss b");

    // Then the later events: c arrives.
    let (c, _c) = node("c").await;
    c.advertise_to(a.local_addr()).await.unwrap();
    match watch.recv().await.unwrap() {
        PeerEvent::Discovered(p) => assert_eq!(p.id.as_ref(), b"c"),
        other => panic!("expected c discovered, got {other:?}"),
    }
    for h in [&a, &b, &c] {
        h.shutdown();
    }
}
