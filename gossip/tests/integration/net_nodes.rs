//! `GossipNode` between a few nodes on 127.0.0.1 (real TCP): publish and deliver, anti-entropy
//! for a node that joins late, a neighbour that stops, the swarm secret, proof-of-work
//! admission, public keys, and bad
//! input on the node's server.

use netaio::message::MessageType;
use netaio::{Message, TcpClient};
use netaio_asymmetric::Identity;
use netaio_gossip::net::{GOSSIP, GossipEvent, HELLO_URI, NodeStopped, PING_URI, PublishError};
use netaio_gossip::proto::Published;
use netaio_gossip::{GossipNode, TopicId};
use std::time::Duration;

use crate::net_common::{WAIT, delivery, event, neighbors_until, node, within};

fn news() -> TopicId {
    TopicId::from_descriptor(b"news")
}

/// Two nodes joined; the second joined through the first.
async fn pair(builder: impl Fn() -> netaio_gossip::GossipNodeBuilder) -> (GossipNode, GossipNode) {
    let a = node(builder()).await;
    let b = node(builder().bootstrap(a.addr())).await;
    let b_addr = b.addr();
    neighbors_until(&a, "a to take b", WAIT, |n| n.contains(&b_addr)).await;
    let a_addr = a.addr();
    neighbors_until(&b, "b to take a", WAIT, |n| n.contains(&a_addr)).await;
    (a, b)
}

#[tokio::test]
async fn a_publish_reaches_a_subscribed_neighbour() {
    let (a, b) = pair(GossipNode::builder).await;
    let mut sub = b.subscribe(news()).await.unwrap();
    assert_eq!(sub.topic(), news());
    // b tells a its topics: wait until a counts it as a subscriber, so the outcome is certain.
    let outcome = within(WAIT, "a to learn b's topics", async {
        loop {
            let o = a.publish(news(), "hello, swarm").await.unwrap();
            if matches!(o.sent, Published::Sent { .. }) {
                return o;
            }
        }
    })
    .await;
    assert!(
        matches!(
            outcome.sent,
            Published::Sent {
                neighbors: 1,
                subscribers: 1,
                ..
            }
        ),
        "{:?}",
        outcome.sent
    );
    // Every publish before it reached b too; skip to the last.
    let got = within(WAIT, "the delivery", async {
        loop {
            let d = delivery(&mut sub, "a delivery", WAIT).await;
            if d.bulletin.id() == outcome.id {
                return d;
            }
        }
    })
    .await;
    assert_eq!(got.bulletin.bulletin().content().as_ref(), b"hello, swarm");
    assert_eq!(got.from, a.addr());
    assert!(!got.fetched);
    // Stored on both sides.
    assert!(a.bulletin(outcome.id).await.unwrap().is_some());
    assert!(b.held(news()).await.unwrap().contains(&outcome.id));
    // The same content again is another bulletin.
    let again = a.publish(news(), "hello, swarm").await.unwrap();
    assert_ne!(again.id, outcome.id);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_node_alone_stores_and_a_late_joiner_fetches() {
    let a = node(GossipNode::builder()).await;
    let outcome = a.publish(news(), "before anyone").await.unwrap();
    assert_eq!(outcome.sent, Published::NoNeighbors);
    let mut unrelated = a.events();
    // b subscribes before it joins: anti-entropy on the new link fetches what a holds.
    let b = node(GossipNode::builder()).await;
    let mut sub = b.subscribe(news()).await.unwrap();
    b.join(a.addr()).await.unwrap();
    let got = delivery(&mut sub, "the fetched bulletin", WAIT).await;
    assert_eq!(got.bulletin.id(), outcome.id);
    assert!(got.fetched, "anti-entropy brought it");
    assert_eq!(got.from, a.addr());
    let up = event(&mut unrelated, "a's NeighborUp", WAIT, |e| {
        matches!(e, GossipEvent::NeighborUp(_))
    })
    .await;
    assert_eq!(up, GossipEvent::NeighborUp(b.addr()));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_stopped_neighbour_is_noticed_and_shutdown_is_final() {
    let (a, b) = pair(GossipNode::builder).await;
    let c = node(GossipNode::builder().bootstrap(a.addr())).await;
    let c_addr = c.addr();
    neighbors_until(&a, "a to take c", WAIT, |n| n.contains(&c_addr)).await;
    let mut events = a.events();
    // c stops as a process that dies: no goodbye, its connections close.
    drop(c);
    let lost = event(
        &mut events,
        "a's NeighborDown for c",
        WAIT,
        |e| matches!(e, GossipEvent::NeighborDown(p) if *p == c_addr),
    )
    .await;
    assert_eq!(lost, GossipEvent::NeighborDown(c_addr));
    // b leaves: a is told.
    let b_addr = b.addr();
    b.shutdown().await;
    event(
        &mut events,
        "a's NeighborDown for b",
        WAIT,
        |e| matches!(e, GossipEvent::NeighborDown(p) if *p == b_addr),
    )
    .await;
    assert!(matches!(
        b.publish(news(), "after").await,
        Err(PublishError::Stopped(NodeStopped))
    ));
    assert_eq!(b.stats().await, Err(NodeStopped));
    a.shutdown().await;
}

#[tokio::test]
async fn a_closed_swarm_refuses_another_secret() {
    let secret = b"swarm secret: 4c1f9e2a7d3b8e60";
    let (a, b) = pair(|| GossipNode::builder().secret(secret)).await;
    let mut sub = b.subscribe(news()).await.unwrap();
    let outsider = node(GossipNode::builder().secret(b"another secret: 0123456789ab")).await;
    let mut failures = outsider.events();
    outsider.join(a.addr()).await.unwrap();
    let failed = event(&mut failures, "the outsider's failed link", WAIT, |e| {
        matches!(e, GossipEvent::LinkLost { .. })
    })
    .await;
    let GossipEvent::LinkLost { peer, reason } = failed else {
        unreachable!()
    };
    assert_eq!(peer, a.addr());
    assert!(reason.contains("handshake"), "{reason}");
    // The handshake failed before any protocol message went: a never heard of it.
    assert_eq!(a.neighbors(), vec![b.addr()]);
    assert!(outsider.neighbors().is_empty());
    // The swarm itself works.
    let mut outcome = a.publish(news(), "members only").await.unwrap();
    while !matches!(outcome.sent, Published::Sent { .. }) {
        outcome = a.publish(news(), "members only").await.unwrap();
    }
    let got = within(WAIT, "the member's delivery", async {
        loop {
            let d = delivery(&mut sub, "a delivery", WAIT).await;
            if d.bulletin.id() == outcome.id {
                return d;
            }
        }
    })
    .await;
    assert_eq!(got.bulletin.bulletin().content().as_ref(), b"members only");
    for n in [a, b, outsider] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn admission_needs_the_work_asked_for() {
    // Nodes asking 12 bits of work of new peers stamp their own hellos as much: they connect.
    let (a, b) = pair(|| GossipNode::builder().admission_difficulty(12)).await;
    // A node that does no work is refused at the handshake (a weaker stamp too: netaiod's
    // `a_daemon_asking_for_work_refuses_a_hello_without_it_and_takes_one_with_it`).
    for bits in [0] {
        let outsider = node(GossipNode::builder().admission_difficulty(bits)).await;
        let mut failures = outsider.events();
        outsider.join(a.addr()).await.unwrap();
        let failed = event(&mut failures, "the outsider's failed link", WAIT, |e| {
            matches!(e, GossipEvent::LinkLost { .. })
        })
        .await;
        let GossipEvent::LinkLost { peer, reason } = failed else {
            unreachable!()
        };
        assert_eq!(peer, a.addr());
        assert!(reason.contains("handshake"), "{bits} bits: {reason}");
        assert_eq!(a.neighbors(), vec![b.addr()], "{bits} bits");
        assert!(outsider.neighbors().is_empty());
        outsider.shutdown().await;
    }
    for n in [a, b] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn identities_encrypt_and_sign_and_trusted_keys_close_the_swarm() {
    let (ida, idb, idc) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let trusted = [ida.public_keys().ed25519, idb.public_keys().ed25519];
    let a = node(
        GossipNode::builder()
            .identity(ida.clone())
            .trusted_keys(trusted),
    )
    .await;
    let b = node(
        GossipNode::builder()
            .identity(idb)
            .trusted_keys(trusted)
            .bootstrap(a.addr()),
    )
    .await;
    let b_addr = b.addr();
    neighbors_until(&a, "a to take b", WAIT, |n| n.contains(&b_addr)).await;
    // The delivery topic is made from the node's Ed25519 key.
    let subs = a.subscriptions().await.unwrap();
    assert_eq!(subs.address(), ida.public_keys().ed25519);
    assert!(subs.is_subscribed(&TopicId::beacon()));

    let mut sub = b.subscribe(news()).await.unwrap();
    let mut outcome = a.publish(news(), "sealed").await.unwrap();
    while !matches!(outcome.sent, Published::Sent { .. }) {
        outcome = a.publish(news(), "sealed").await.unwrap();
    }
    let got = within(WAIT, "the sealed delivery", async {
        loop {
            let d = delivery(&mut sub, "a delivery", WAIT).await;
            if d.bulletin.id() == outcome.id {
                return d;
            }
        }
    })
    .await;
    assert_eq!(got.bulletin.bulletin().content().as_ref(), b"sealed");

    // An identity that is not trusted, and a node with none, are refused in the handshake.
    for outsider in [
        node(GossipNode::builder().identity(idc.clone())).await,
        node(GossipNode::builder()).await,
    ] {
        let mut events = outsider.events();
        outsider.join(a.addr()).await.unwrap();
        let failed = event(&mut events, "the outsider's failed link", WAIT, |e| {
            matches!(e, GossipEvent::LinkLost { .. })
        })
        .await;
        let GossipEvent::LinkLost { reason, .. } = failed else {
            unreachable!()
        };
        assert!(reason.contains("handshake"), "{reason}");
        outsider.shutdown().await;
    }
    assert_eq!(a.neighbors(), vec![b.addr()]);

    // A connection that passes the handshake with a trusted key it does not hold: its protocol
    // messages, neither encrypted nor signed by that key, are refused before the protocol.
    let conn = TcpClient::builder()
        .request_timeout(WAIT)
        .build()
        .connect(a.local_addr())
        .await
        .unwrap();
    let mut hello = vec![1u8, 4, 127, 0, 0, 1];
    hello.extend_from_slice(&1u16.to_be_bytes());
    hello.push(1);
    hello.extend_from_slice(&ida.public_keys().x25519);
    hello.extend_from_slice(&trusted[1]);
    conn.call(Message::new(MessageType::REQUEST_URI, HELLO_URI, hello))
        .await
        .unwrap();
    let join = netaio_gossip::proto::wire::to_bytes(
        &netaio_gossip::proto::Message::<std::net::SocketAddr>::Join,
    );
    let refused = conn.call(Message::new(GOSSIP, "", join)).await.unwrap_err();
    assert!(
        matches!(refused, netaio::RequestError::Auth(_)),
        "{refused:?}"
    );
    // Had the Join passed, a would have taken 127.0.0.1:1 as a neighbour before answering.
    assert_eq!(a.neighbors(), vec![b.addr()]);
    conn.close().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_dropped_and_the_node_keeps_serving() {
    let a = node(GossipNode::builder()).await;
    let conn = TcpClient::builder()
        .request_timeout(WAIT)
        .build()
        .connect(a.local_addr())
        .await
        .unwrap();
    // A protocol message before any handshake: dropped. The server handles a connection's
    // messages in order, so once the ping is answered the message before it was handled.
    conn.send(&Message::new(GOSSIP, "", vec![1u8]))
        .await
        .unwrap();
    conn.request(PING_URI, "").await.unwrap();
    assert_eq!(a.stats().await.unwrap().malformed, 1);
    // A hello claiming another host's address, then one that does not decode: refused.
    let spoofed = {
        let mut b = vec![1u8, 4, 10, 9, 9, 9];
        b.extend_from_slice(&7000u16.to_be_bytes());
        b.push(0);
        b
    };
    for hello in [spoofed, vec![1u8, 9]] {
        let refused = conn
            .call(Message::new(MessageType::REQUEST_URI, HELLO_URI, hello))
            .await
            .unwrap_err();
        let reply = refused.reply().expect("an error reply");
        assert_eq!(reply.message_type, MessageType::NOT_PERMITTED, "{reply:?}");
    }
    // A valid hello, then bytes that are not a protocol message.
    let mut hello = vec![1u8, 4, 127, 0, 0, 1];
    hello.extend_from_slice(&1u16.to_be_bytes());
    hello.push(0);
    let answer = conn
        .call(Message::new(MessageType::REQUEST_URI, HELLO_URI, hello))
        .await
        .unwrap();
    assert_eq!(answer.message_type, MessageType::RESPOND_URI);
    for garbage in [&[][..], &[99u8][..], &[9u8, 1, 2][..]] {
        conn.send(&Message::new(GOSSIP, "", garbage.to_vec()))
            .await
            .unwrap();
    }
    conn.request(PING_URI, "").await.unwrap();
    let stats = a.stats().await.unwrap();
    assert_eq!(stats.malformed, 4);
    assert_eq!(
        stats.protocol.control_received + stats.protocol.payload_received,
        0
    );
    // Still a working node: another node joins it.
    let b = node(GossipNode::builder().bootstrap(a.addr())).await;
    let b_addr = b.addr();
    neighbors_until(&a, "a to take b", WAIT, |n| n.contains(&b_addr)).await;
    conn.close().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn binding_needs_an_address_peers_can_dial() {
    let unspecified = GossipNode::builder()
        .listen("0.0.0.0:0".parse().unwrap())
        .bind()
        .await;
    assert!(matches!(
        unspecified,
        Err(netaio_gossip::net::BindError::NoAdvertisedAddress(_))
    ));
    let advertised = GossipNode::builder()
        .listen("0.0.0.0:0".parse().unwrap())
        .advertise("127.0.0.1:0".parse().unwrap())
        .bind()
        .await
        .unwrap();
    assert_eq!(advertised.addr().ip().to_string(), "127.0.0.1");
    assert_eq!(advertised.addr().port(), advertised.local_addr().port());
    advertised.shutdown().await;
}

/// A peer that answers the handshake, then never answers a ping: the idle link's keepalive
/// gives up after its timeout and the link counts as lost. Paused time: the waits take no time.
#[tokio::test(start_paused = true)]
async fn an_unanswered_keepalive_loses_the_link() {
    use netaio::{Router, TcpServer};
    let server = TcpServer::bind(([127, 0, 0, 1], 0), Router::new())
        .await
        .unwrap();
    let fake = server.local_addr();
    let mut hello = vec![1u8, 4, 127, 0, 0, 1];
    hello.extend_from_slice(&fake.port().to_be_bytes());
    hello.push(0);
    let handle = server.handle();
    handle
        .on((MessageType::REQUEST_URI, HELLO_URI), move || {
            let hello = hello.clone();
            async move { Message::respond(HELLO_URI, hello) }
        })
        .unwrap();
    handle
        .on((MessageType::REQUEST_URI, PING_URI), || {
            std::future::pending::<Message>()
        })
        .unwrap();
    let serving = tokio::spawn(server.serve());

    let a = node(
        GossipNode::builder()
            .keepalive(Duration::from_secs(1))
            .keepalive_timeout(Duration::from_secs(2))
            .linger(Duration::from_secs(600)),
    )
    .await;
    let mut events = a.events();
    let started = tokio::time::Instant::now();
    a.join(fake).await.unwrap();
    let lost = event(&mut events, "the link's loss", WAIT, |e| {
        matches!(e, GossipEvent::LinkLost { .. })
    })
    .await;
    let GossipEvent::LinkLost { peer, reason } = lost else {
        unreachable!()
    };
    assert_eq!(peer, fake);
    assert!(reason.contains("keepalive"), "{reason}");
    // One idle interval, then the ping's timeout.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "{took:?}"
    );
    a.shutdown().await;
    // Its connection's handler never returns: the server aborts it after its 10 s grace.
    handle.shutdown();
    let _ = within(3 * WAIT, "the fake peer to stop", serving).await;
}

/// A neighbour that stops reading: its connection backs up, then the protocol's queue for it
/// overflows and the node reports it slow — while it goes on serving its other neighbour.
#[tokio::test]
async fn a_neighbour_that_stops_reading_is_reported_slow() {
    use netaio::{Router, TcpServer};
    use netaio_gossip::proto::{Config, Message as Proto, wire};
    use netaio_gossip::{BulletinPolicy, Difficulty, ProofOfWork};

    // No work to mint (this test is about bytes), every new neighbour on the broadcast tree,
    // a small queue per peer.
    let policy = BulletinPolicy::default().proof_of_work(ProofOfWork::new(
        ProofOfWork::DEFAULT_FUNCTION,
        Difficulty::LeadingZeroBits(0),
    ));
    let config = Config::default()
        .eager_new_neighbors(true)
        .queue_bytes(256 * 1024);
    // Its shutdown waits for the stuck link at most one handshake timeout.
    let a = node(
        GossipNode::builder()
            .policy(policy)
            .config(config.clone())
            .handshake_timeout(Duration::from_secs(1)),
    )
    .await;
    let b = node(
        GossipNode::builder()
            .policy(policy)
            .config(config)
            .bootstrap(a.addr()),
    )
    .await;
    let b_addr = b.addr();
    neighbors_until(&a, "a to take b", WAIT, |n| n.contains(&b_addr)).await;
    let mut b_sub = b.subscribe(news()).await.unwrap();

    // The stuck peer: answers the handshake, then its handler for protocol messages never
    // returns, so its server stops reading that connection.
    let server = TcpServer::bind(([127, 0, 0, 1], 0), Router::new())
        .await
        .unwrap();
    let stuck = server.local_addr();
    let mut hello = vec![1u8, 4, 127, 0, 0, 1];
    hello.extend_from_slice(&stuck.port().to_be_bytes());
    hello.push(0);
    let handle = server.handle();
    let answer = hello.clone();
    handle
        .on((MessageType::REQUEST_URI, HELLO_URI), move || {
            let answer = answer.clone();
            async move { Message::respond(HELLO_URI, answer) }
        })
        .unwrap();
    handle.on(GOSSIP, std::future::pending::<()>).unwrap();
    let serving = tokio::spawn(server.serve());
    // It joins a.
    let conn = TcpClient::builder()
        .request_timeout(WAIT)
        .build()
        .connect(a.local_addr())
        .await
        .unwrap();
    conn.call(Message::new(MessageType::REQUEST_URI, HELLO_URI, hello))
        .await
        .unwrap();
    let mut events = a.events();
    conn.send(&Message::new(
        GOSSIP,
        "",
        wire::to_bytes(&Proto::<std::net::SocketAddr>::Join),
    ))
    .await
    .unwrap();
    neighbors_until(&a, "a to take the stuck peer", WAIT, |n| n.contains(&stuck)).await;

    let content = vec![b'x'; 32 * 1024];
    let slow = within(3 * WAIT, "a SlowPeer event", async {
        loop {
            a.publish(news(), content.clone()).await.unwrap();
            while let Ok(e) = events.try_recv() {
                if let GossipEvent::SlowPeer { peer, dropped } = e {
                    return (peer, dropped);
                }
            }
        }
    })
    .await;
    assert_eq!(slow.0, stuck);
    assert!(slow.1 >= 1);
    // b still gets what a publishes.
    let last = a.publish(news(), "still serving").await.unwrap();
    within(WAIT, "b's delivery of the last bulletin", async {
        loop {
            if delivery(&mut b_sub, "a delivery", WAIT).await.bulletin.id() == last.id {
                return;
            }
        }
    })
    .await;
    conn.close().await;
    a.shutdown().await;
    b.shutdown().await;
    // Its handler never returns: no graceful stop to wait for.
    serving.abort();
}
