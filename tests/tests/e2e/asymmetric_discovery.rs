//! `netaio-asymmetric`'s `X25519Cipher` and `Ed25519Auth` between nodes that learned each other's
//! public keys only through peer management: UDP nodes that discovered each other by multicast on
//! 127.0.0.1, and a TCP client and server that exchanged adverts on connect. A node that was not
//! discovered cannot seal for, nor be opened by, the others.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use netaio::peer::{PeerConfig, PeerEvent};
use netaio::plugin::{Plugins, SendOptions};
use netaio::router::Route;
use netaio::udp::{MulticastConfig, MulticastInterface, UdpHandle, UdpNode};
use netaio::{Message, MessageType, RequestError, Router, TcpClient, TcpServer};
use netaio_asymmetric::{AsymmetricPeerPlugin, Ed25519Auth, Identity, X25519Cipher};
use netaio_tests::{WAIT, init_tracing, within};
use tokio::task::JoinHandle;

fn sealed(id: &Identity) -> Plugins {
    Plugins::new()
        .cipher(X25519Cipher::new(id))
        .auth(Ed25519Auth::new(id))
}

fn secret_router(id: &Identity) -> Router {
    Router::new().route(
        Route::on(
            (MessageType::REQUEST_URI, "secret"),
            |m: Message| async move {
                let mut text = b"got ".to_vec();
                text.extend_from_slice(m.content());
                Message::respond("secret", text)
            },
        )
        .with_inner(sealed(id)),
    )
}

async fn udp_node(
    id: &Identity,
    name: &str,
    port: u16,
    peers: bool,
) -> (UdpHandle, JoinHandle<()>) {
    init_tracing();
    let mut b = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(secret_router(id))
        .peer_plugin(AsymmetricPeerPlugin)
        .local_peer(id.peer(name.to_owned()).unwrap());
    if peers {
        b = b
            .multicast(
                MulticastConfig::default()
                    .port(port)
                    .interface(MulticastInterface::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST))),
            )
            .peer_management(
                PeerConfig::default()
                    .app_id("asym")
                    .advertise_interval(Duration::from_millis(300)),
            );
    }
    let node = b.bind().await.unwrap();
    let h = node.handle();
    (h, tokio::spawn(node.serve()))
}

#[tokio::test]
async fn x25519_and_ed25519_work_between_udp_nodes_that_discovered_each_other() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ida, idb, idc) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let (a, ja) = udp_node(&ida, "a", port, true).await;
    let mut a_events = a.peer_events();
    let (b, jb) = udp_node(&idb, "b", port, true).await;
    let (stranger, jc) = udp_node(&idc, "stranger", port, false).await;
    within(WAIT, "a discovers b", async {
        loop {
            if let Ok(PeerEvent::Discovered(p)) = a_events.recv().await
                && p.id == "b"
            {
                return;
            }
        }
    })
    .await;
    within(WAIT, "b discovers a", async {
        while !b.peers().contains("a") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // What A holds for B is what B advertised: its public keys.
    assert_eq!(
        a.peers().get("b").unwrap().data,
        idb.peer("b").unwrap().data
    );

    let opts = SendOptions::new().inner(sealed(&idb));
    let r = b
        .call_with(
            a.local_addr(),
            Message::new(MessageType::REQUEST_URI, "secret", "hello"),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(r.content().as_ref(), b"got hello");

    // The stranger was never discovered: it has no key for A (nothing to seal with), and with
    // A's peer given by hand, A still cannot open what it sends (A does not know its keys).
    let opts_c = SendOptions::new()
        .inner(sealed(&idc))
        .timeout(Duration::from_millis(500));
    let e = stranger
        .call_with(
            a.local_addr(),
            Message::new(MessageType::REQUEST_URI, "secret", "x"),
            &opts_c,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Send(_)), "{e:?}");
    let refused = a.stats().auth_failed + a.stats().decrypt_failed;
    stranger
        .peers()
        .observe(ida.peer("a").unwrap(), a.local_addr())
        .unwrap();
    let e = stranger
        .call_with(
            a.local_addr(),
            Message::new(MessageType::REQUEST_URI, "secret", "x"),
            &opts_c,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, RequestError::Timeout(_)),
        "no answer at all: {e:?}"
    );
    assert!(a.stats().auth_failed + a.stats().decrypt_failed > refused);

    for (h, j) in [(a, ja), (b, jb), (stranger, jc)] {
        h.shutdown();
        within(WAIT, "node stops", j).await.unwrap();
    }
}

#[tokio::test]
async fn x25519_and_ed25519_work_between_a_tcp_client_and_server_after_the_advert_exchange() {
    init_tracing();
    let (ids, idc) = (Identity::generate(), Identity::generate());
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(secret_router(&ids))
        .peer_plugin(AsymmetricPeerPlugin)
        .local_peer(ids.peer("server").unwrap())
        .peer_management(PeerConfig::default())
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());
    let client = TcpClient::builder()
        .peer_plugin(AsymmetricPeerPlugin)
        .local_peer(idc.peer("client").unwrap())
        .peer_management(PeerConfig::default())
        .request_timeout(WAIT)
        .build();
    let conn = client.connect(addr).await.unwrap();
    assert_eq!(conn.peer().unwrap().id, "server");
    let r = conn
        .call_with(
            Message::new(MessageType::REQUEST_URI, "secret", "over tcp"),
            &SendOptions::new().inner(sealed(&idc)),
        )
        .await
        .unwrap();
    assert_eq!(r.content().as_ref(), b"got over tcp");
    conn.close().await;
    handle.shutdown();
    within(WAIT, "server stops", serving).await.unwrap();
}

/// With `SelfCertifyingPeerPlugin`, a node that advertises a known peer's id with its own keys
/// (it passes `Ed25519Auth`: it signs with its own key) cannot replace that peer's keys: the
/// advert fails validation, and the victim's entry keeps its keys. The impostor still hears the
/// others (the multicast path works both ways).
#[tokio::test]
async fn self_certifying_ids_stop_an_advert_that_claims_another_peers_id() {
    use netaio_asymmetric::SelfCertifyingPeerPlugin;
    init_tracing();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = |id: &Identity, local: netaio::peer::Peer, self_certifying: bool| {
        let mut b = UdpNode::builder()
            .address(([127, 0, 0, 1], 0))
            .router(secret_router(id))
            .local_peer(local)
            .multicast(
                MulticastConfig::default()
                    .port(port)
                    .interface(MulticastInterface::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST))),
            )
            .peer_management(
                PeerConfig::default()
                    .app_id("asym-sc")
                    .advertise_interval(Duration::from_millis(200)),
            );
        b = if self_certifying {
            b.peer_plugin(SelfCertifyingPeerPlugin)
        } else {
            b.peer_plugin(AsymmetricPeerPlugin)
        };
        async move {
            let node = b.bind().await.unwrap();
            let h = node.handle();
            (h, tokio::spawn(node.serve()))
        }
    };
    let (alice, bob, mallory) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let alice_peer = alice.self_certified_peer().unwrap();
    let (a, ja) = node(&alice, alice_peer.clone(), true).await;
    let (b, jb) = node(&bob, bob.self_certified_peer().unwrap(), true).await;
    within(WAIT, "bob to learn alice", async {
        while !b.peers().contains(&alice_peer.id) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    // Mallory claims Alice's id with her own keys (her node does not check itself).
    let (m, jm) = node(
        &mallory,
        mallory.peer(alice_peer.id.clone()).unwrap(),
        false,
    )
    .await;
    let bob_id = bob.self_certified_peer().unwrap().id;
    within(WAIT, "mallory to hear bob", async {
        while !m.peers().contains(&bob_id) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Several of Mallory's adverts later, Bob still holds Alice's keys.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(b.peers().get(&alice_peer.id).unwrap().data, alice_peer.data);

    for (h, j) in [(a, ja), (b, jb), (m, jm)] {
        h.shutdown();
        within(WAIT, "a node to stop", j).await.unwrap();
    }
}
