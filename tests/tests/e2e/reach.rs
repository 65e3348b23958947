//! Reaching a peer by its id (issue 14) on loopback: `Reach::call_peer` and `send_to_peer` try
//! a peer's strategies in order (a direct TCP address, UDP, a relay by its id), fail over when
//! one cannot carry the message off the host, fail at once listing what was tried, and report a
//! relay's "no route" as the call's end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::plugin::SendOptions;
use netaio::reach::{AttemptError, PeerCallError, Reach, StaticLookup, Strategy};
use netaio::relay::{Relay, RelayConfig, RelayRefusal};
use netaio::{CallOptions, Message, MessageType, RequestError, Router, TcpClient, UdpNode};
use netaio_tests::{TestServer, WAIT, start, start_udp, within};

fn service(count: Arc<AtomicUsize>, name: &'static str) -> Router {
    Router::new().on((MessageType::REQUEST_URI, "hello"), move |_m: Message| {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            Message::respond("hello", name)
        }
    })
}

fn hello() -> Message {
    Message::new(MessageType::REQUEST_URI, "hello", "")
}

/// An address where nothing listens (a port just freed).
async fn dead_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

struct Net {
    relay_server: TestServer,
    relay: Relay,
    _c: TcpClient,
    c_conn: netaio::Connection,
    count: Arc<AtomicUsize>,
}

/// A relay with C reserved at it as `node-c`.
async fn net() -> Net {
    let relay = Relay::new(RelayConfig::default());
    let relay_server = start(Router::new().merge(relay.router())).await;
    let count = Arc::new(AtomicUsize::new(0));
    let c = TcpClient::builder()
        .router(service(count.clone(), "via relay"))
        .build();
    let c_conn = c.connect(relay_server.addr).await.unwrap();
    c_conn.reserve("node-c").await.unwrap();
    Net {
        relay_server,
        relay,
        _c: c,
        c_conn,
        count,
    }
}

#[tokio::test]
async fn a_dead_address_fails_over_to_the_relay() {
    let n = net().await;
    let dead = dead_addr().await;
    let lookup = StaticLookup::new();
    lookup.insert("relay-r", vec![Strategy::Tcp(n.relay_server.addr)]);
    lookup.insert(
        "node-c",
        vec![Strategy::Tcp(dead), Strategy::Relay("relay-r".into())],
    );
    let reach = Reach::builder()
        .tcp(TcpClient::new())
        .lookup(lookup)
        .build();
    let reply = within(
        WAIT,
        "the reply",
        reach.call_peer("node-c", hello(), &CallOptions::new()),
    )
    .await
    .unwrap();
    assert_eq!(reply.content().as_ref(), b"via relay");
    assert_eq!(n.count.load(Ordering::SeqCst), 1);
    // One-way too: it lands in C's inbox through the relay.
    let note = Message::new(MessageType::NOTIFY_URI, "note", "hi");
    let used = within(
        WAIT,
        "the send",
        reach.send_to_peer("node-c", &note, &SendOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(used, Strategy::Relay("relay-r".into()));
    let got = n.c_conn.receive_timeout(WAIT).await.unwrap();
    assert_eq!(got.content().as_ref(), b"hi");
    n.relay_server.stop().await;
}

#[tokio::test]
async fn a_direct_connection_is_preferred_when_it_is_first() {
    let n = net().await;
    let direct_count = Arc::new(AtomicUsize::new(0));
    let c_server = start(service(direct_count.clone(), "direct")).await;
    let lookup = StaticLookup::new();
    lookup.insert("relay-r", vec![Strategy::Tcp(n.relay_server.addr)]);
    lookup.insert(
        "node-c",
        vec![
            Strategy::Tcp(c_server.addr),
            Strategy::Relay("relay-r".into()),
        ],
    );
    let reach = Reach::builder()
        .tcp(TcpClient::new())
        .lookup(lookup)
        .build();
    let reply = reach
        .call_peer("node-c", hello(), &CallOptions::new())
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"direct");
    assert_eq!(n.relay.stats().relayed, 0);
    assert_eq!(direct_count.load(Ordering::SeqCst), 1);
    c_server.stop().await;
    n.relay_server.stop().await;
}

#[tokio::test]
async fn a_udp_strategy_carries_the_call() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = start_udp(UdpNode::builder().router(service(count.clone(), "udp"))).await;
    let me = start_udp(UdpNode::builder()).await;
    let lookup = StaticLookup::new();
    lookup.insert("node-c", vec![Strategy::Udp(c.addr)]);
    let reach = Reach::builder()
        .udp(me.handle.clone())
        .lookup(lookup)
        .build();
    let reply = within(
        WAIT,
        "the reply",
        reach.call_peer("node-c", hello(), &CallOptions::new()),
    )
    .await
    .unwrap();
    assert_eq!(reply.content().as_ref(), b"udp");
    c.stop().await;
    me.stop().await;
}

#[tokio::test]
async fn when_nothing_can_leave_the_call_fails_at_once_listing_what_was_tried() {
    let (dead1, dead2) = (dead_addr().await, dead_addr().await);
    let lookup = StaticLookup::new();
    lookup.insert("relay-r", vec![Strategy::Tcp(dead2)]);
    lookup.insert(
        "node-c",
        vec![
            Strategy::Tcp(dead1),
            Strategy::Udp(dead1),
            Strategy::Relay("relay-r".into()),
        ],
    );
    let reach = Reach::builder()
        .tcp(TcpClient::new())
        .lookup(lookup)
        .build();
    let opts = CallOptions::new().timeout(Duration::from_secs(60));
    let started = std::time::Instant::now();
    let e = within(
        WAIT,
        "the failure",
        reach.call_peer("node-c", hello(), &opts),
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fast: {:?}",
        started.elapsed()
    );
    let PeerCallError::Unreachable { tried, .. } = &e else {
        panic!("{e}")
    };
    let strategies: Vec<&Strategy> = tried.iter().map(|a| &a.strategy).collect();
    assert_eq!(
        strategies,
        vec![
            &Strategy::Tcp(dead1),
            &Strategy::Udp(dead1),
            &Strategy::Relay("relay-r".into())
        ]
    );
    assert!(matches!(tried[0].error, AttemptError::Connect(_)));
    assert!(matches!(tried[1].error, AttemptError::NoTransport("UDP")));
    assert!(matches!(tried[2].error, AttemptError::RelayUnreachable(_)));
    let e = reach.call_peer("nobody", hello(), &opts).await.unwrap_err();
    assert!(matches!(e, PeerCallError::Unknown(_)));
}

#[tokio::test]
async fn a_relays_no_route_ends_the_call_without_failing_over() {
    let n = net().await;
    let count = Arc::new(AtomicUsize::new(0));
    let later = start(service(count.clone(), "direct")).await;
    let lookup = StaticLookup::new();
    lookup.insert("relay-r", vec![Strategy::Tcp(n.relay_server.addr)]);
    // The relay is first: its answer ends the call, the direct address after it is not tried.
    lookup.insert(
        "node-x",
        vec![Strategy::Relay("relay-r".into()), Strategy::Tcp(later.addr)],
    );
    let reach = Reach::builder()
        .tcp(TcpClient::new())
        .lookup(lookup)
        .build();
    let e = within(
        WAIT,
        "the answer",
        reach.call_peer("node-x", hello(), &CallOptions::new()),
    )
    .await
    .unwrap_err();
    let PeerCallError::Call { via, error, tried } = &e else {
        panic!("{e}")
    };
    assert_eq!(via, &Strategy::Relay("relay-r".into()));
    assert!(tried.is_empty());
    assert!(matches!(error, RequestError::NotFound(_)));
    assert_eq!(RelayRefusal::from_error(error), Some(RelayRefusal::NoRoute));
    assert_eq!(count.load(Ordering::SeqCst), 0);
    later.stop().await;
    n.relay_server.stop().await;
}
