//! `GossipNode` with the protocol's `hold_subscribed` on 127.0.0.1: a bulletin arrives held, is
//! stored only once released valid, and released invalid is discarded against its sender.

use netaio_gossip::net::GossipEvent;
use netaio_gossip::proto::{Config, Published, Verdict};
use netaio_gossip::{GossipNode, TopicId};

use crate::net_common::{WAIT, delivery, neighbors_until, node, within};

#[tokio::test]
async fn held_bulletins_wait_for_release() {
    let topic = TopicId::from_descriptor(b"held");
    let a = node(GossipNode::builder()).await;
    let hold = Config::default()
        .neighbor_timeout(std::time::Duration::from_secs(2))
        .hold_subscribed(true);
    let b = node(GossipNode::builder().config(hold).bootstrap(a.addr())).await;
    let b_addr = b.addr();
    neighbors_until(&a, "a to take b", WAIT, |n| n.contains(&b_addr)).await;
    let mut sub = b.subscribe(topic).await.unwrap();
    let mut events = b.events();
    // Publish until a knows b subscribes; every earlier publish reaches b too.
    let first = within(WAIT, "a to learn b's topics", async {
        loop {
            let o = a.publish(topic, "first").await.unwrap();
            if matches!(o.sent, Published::Sent { .. }) {
                return o;
            }
        }
    })
    .await;
    let got = within(WAIT, "the held delivery", async {
        loop {
            let d = delivery(&mut sub, "a delivery", WAIT).await;
            assert!(d.held, "every delivery is held");
            if d.bulletin.id() == first.id {
                return d;
            }
            assert!(b.release(d.bulletin.id(), Verdict::Accept).await.unwrap());
        }
    })
    .await;
    assert_eq!(got.from, a.addr());
    assert_eq!(got.hops, 0, "straight from its publisher");
    assert!(
        !b.held(topic).await.unwrap().contains(&first.id),
        "not stored while held"
    );
    assert!(b.release(first.id, Verdict::Accept).await.unwrap());
    assert!(
        !b.release(first.id, Verdict::Accept).await.unwrap(),
        "released once"
    );
    assert!(
        b.held(topic).await.unwrap().contains(&first.id),
        "stored once valid"
    );

    let second = a.publish(topic, "second").await.unwrap();
    let got = delivery(&mut sub, "the second delivery", WAIT).await;
    assert_eq!(got.bulletin.id(), second.id);
    assert!(b.release(second.id, Verdict::Reject).await.unwrap());
    let discarded = within(WAIT, "the discarded event", async {
        loop {
            if let Ok(GossipEvent::Discarded { peer, bulletin }) = events.recv().await {
                return (peer, bulletin);
            }
        }
    })
    .await;
    assert_eq!(discarded, (a.addr(), second.id));
    assert!(!b.held(topic).await.unwrap().contains(&second.id));
    assert_eq!(b.stats().await.unwrap().protocol.discarded, 1);

    // Ignored: delivered here, neither stored nor counted against anyone.
    let third = a.publish(topic, "third").await.unwrap();
    let got = delivery(&mut sub, "the third delivery", WAIT).await;
    assert_eq!(got.bulletin.id(), third.id);
    assert!(b.release(third.id, Verdict::Ignore).await.unwrap());
    assert!(!b.held(topic).await.unwrap().contains(&third.id));
    let stats = b.stats().await.unwrap().protocol;
    assert_eq!((stats.discarded, stats.ignored), (1, 1));
    a.shutdown().await;
    b.shutdown().await;
}
