//! Discovery without auth, abused (issue 12, defect 6), over loopback: a flood of fake peer ids
//! does not lock a real peer out of the table, a forged group advert gets no unicast answer,
//! and answers to one source IP are rate-limited. Raw sockets play the attacker and the victim.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use netaio::message::PostcardCodec;
use netaio::peer::{Peer, PeerConfig, PeerEvent, PeerTable};
use netaio::plugin::{PeerPlugin, PostcardPeerPlugin};
use netaio::udp::{MulticastConfig, MulticastInterface, UdpNode};
use netaio::{Message, MessageType};
use netaio_tests::{WAIT, start_udp as start, within};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;

const APP: &str = "t-abuse";

fn advert(id: &str) -> Bytes {
    let packed = PostcardPeerPlugin.pack(&Peer::new(id.to_owned())).unwrap();
    Message::new(MessageType::ADVERTISE_PEER, APP, packed)
        .to_bytes(&PostcardCodec)
        .unwrap()
}

async fn discovered(rx: &mut broadcast::Receiver<PeerEvent>, id: &str) {
    within(WAIT, "the peer to be discovered", async {
        loop {
            match rx.recv().await {
                Ok(PeerEvent::Discovered(p)) if p.id == id.as_bytes() => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
}

/// The attack of issue 12: 1,024 fake ids locked a real peer out beyond the peer timeout. Here
/// 1,100 fake adverts, each from its own address (127.1.x.y, so that no IP's share limits them),
/// fill the table; the real peer, advertising afterwards, is recorded at once.
#[tokio::test]
async fn a_flood_of_fake_ids_does_not_lock_a_real_peer_out() {
    let node = start(
        UdpNode::builder()
            .local_peer(Peer::new("victim"))
            .peer_management(PeerConfig::default().app_id(APP)),
    )
    .await;
    let fakes = 1100u32;
    for i in 0..fakes {
        let ip = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 1);
        let sock = UdpSocket::bind((ip, 0)).await.unwrap();
        sock.send_to(&advert(&format!("fake-{i}")), node.addr)
            .await
            .unwrap();
    }
    within(WAIT, "the fake adverts to be received", async {
        while node.handle.stats().received < u64::from(fakes) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let table = node.handle.peers();
    assert_eq!(table.len(), PeerTable::DEFAULT_CAPACITY);
    assert_eq!(table.evicted(), u64::from(fakes) - 1024);

    let real = start(
        UdpNode::builder()
            .local_peer(Peer::new("real"))
            .peer_management(PeerConfig::default().app_id(APP)),
    )
    .await;
    let answered = real.handle.advertise_to(node.addr).await.unwrap();
    assert_eq!(answered.id, "victim");
    assert_eq!(table.by_addr(real.addr).unwrap().id, "real");
    assert_eq!(table.refused(), 0);
    for n in [real, node] {
        n.stop().await;
    }
}

/// Defect 6's reflection: an advert sent to the group with a victim's source address was
/// answered by unicast to the victim, 2 to 2.7 times its size. A group advert from an unverified
/// source is now recorded but not answered at all. The victim is a raw socket that sends the
/// advert itself (what a forged source address looks like to the node), then a direct request:
/// the first datagram it gets back is that request's answer.
#[tokio::test]
async fn a_forged_group_advert_gets_no_unicast_answer() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let group = MulticastConfig::default()
        .port(port)
        .interface(MulticastInterface::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let node = start(
        UdpNode::builder()
            .local_peer(Peer::new("a-node-with-a-rather-long-peer-id"))
            .multicast(group)
            .peer_management(PeerConfig::default().app_id(APP)),
    )
    .await;
    let mut events = node.handle.peer_events();
    let victim = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket2::SockRef::from(&victim)
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .unwrap();
    let forged = advert("v");
    let to_group = node.handle.multicast_group().unwrap();
    victim.send_to(&forged, to_group).await.unwrap();
    discovered(&mut events, "v").await;
    // The node handled the advert inline: any answer is on its way before this request.
    let probe = Message::new(MessageType::REQUEST_URI, "nothing-here", vec![0u8; 32])
        .to_bytes(&PostcardCodec)
        .unwrap();
    victim.send_to(&probe, node.addr).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = within(WAIT, "the probe's answer", victim.recv_from(&mut buf))
        .await
        .unwrap();
    let first = Message::decode(Bytes::copy_from_slice(&buf[..n]), &PostcardCodec).unwrap();
    assert_eq!(
        first.message_type,
        MessageType::NOT_FOUND,
        "the forged advert was answered: {first:?}"
    );
    assert!(node.handle.stats().replies_limited >= 1);
    node.stop().await;
}

/// Adverts sent straight to a node (not to the group) are answered within their own size, and
/// at most `answers_per_ip` times per second per source IP: a flood of them from one address
/// (or forged for one victim) gets that many answers.
#[tokio::test]
async fn answers_to_one_ip_are_rate_limited() {
    let node = start(
        UdpNode::builder()
            .local_peer(Peer::new("n"))
            .peer_management(PeerConfig::default().app_id(APP).answers_per_ip(3)),
    )
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..10 {
        // A longer id than the node's: its answer fits.
        sock.send_to(&advert(&format!("advertiser-{i}")), node.addr)
            .await
            .unwrap();
    }
    let probe = Message::new(MessageType::REQUEST_URI, "nothing-here", vec![0u8; 32])
        .to_bytes(&PostcardCodec)
        .unwrap();
    sock.send_to(&probe, node.addr).await.unwrap();
    let mut answers = 0;
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, _) = within(WAIT, "a datagram", sock.recv_from(&mut buf))
            .await
            .unwrap();
        let m = Message::decode(Bytes::copy_from_slice(&buf[..n]), &PostcardCodec).unwrap();
        match m.message_type {
            MessageType::PEER_DISCOVERED => answers += 1,
            MessageType::NOT_FOUND => break,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(answers, 3);
    node.stop().await;
}
