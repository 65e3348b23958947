//! A refused message is diagnosable at the default log level: the warning names the source, the
//! plugin that refused and why, and the node counts refusals per source (`UdpHandle::refusals`,
//! `ServerHandle::refusals`). Over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use netaio::plugin::{HmacAuth, RefusalReason, Stage};
use netaio::udp::UdpNode;
use netaio::{Message, MessageType, RequestError, Router, TcpClient, TcpServer};

use crate::common::Captured;

fn ping_router() -> Router {
    Router::new().on((MessageType::REQUEST_URI, "ping"), || async {
        Message::respond("ping", "pong")
    })
}

#[tokio::test(start_paused = true)]
async fn a_udp_node_names_and_counts_the_source_of_datagrams_with_the_wrong_secret() {
    let (log, _guard) = Captured::install();
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(ping_router())
        .auth(HmacAuth::new(b"room secret"))
        .bind()
        .await
        .unwrap();
    let (addr, server) = (node.local_addr(), node.handle());
    let serving = tokio::spawn(node.serve());
    let wrong = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .auth(HmacAuth::new(b"another secret"))
        .bind()
        .await
        .unwrap();
    let right = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .auth(HmacAuth::new(b"room secret"))
        .bind()
        .await
        .unwrap();
    let (wrong_addr, wrong) = (wrong.local_addr(), wrong.handle());
    let right_handle = right.handle();
    let _right = tokio::spawn(right.serve());
    for _ in 0..3 {
        wrong.send(addr, &Message::ok("ping", "")).await.unwrap();
    }
    // Answered after the refused datagrams were handled (one socket, handled in order).
    let reply = right_handle
        .call(addr, Message::new(MessageType::REQUEST_URI, "ping", ""))
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"pong");

    let refusals = server.refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let r = &refusals[0];
    assert_eq!(r.addr, wrong_addr);
    assert_eq!(r.count, 3);
    assert_eq!(r.reason, RefusalReason::BadMac);
    assert_eq!(r.plugin, "HmacAuth");
    assert_eq!(r.stage, Stage::Outer);
    assert_eq!(server.stats().auth_failed, 3);

    // One warning for the three, naming the source, the plugin and why, with a hint.
    let warnings = log.warnings();
    let named: Vec<_> = warnings
        .iter()
        .filter(|l| l.contains(&format!("datagrams refused from {wrong_addr} by HmacAuth")))
        .collect();
    assert_eq!(named.len(), 1, "{warnings:#?}");
    assert!(named[0].contains("bad MAC or signature"), "{}", named[0]);
    assert!(named[0].contains("secret"), "{}", named[0]);
    server.shutdown();
    serving.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tcp_server_names_a_client_without_auth_and_counts_it() {
    let (log, _guard) = Captured::install();
    let server = TcpServer::builder()
        .router(ping_router())
        .address(([127, 0, 0, 1], 0))
        .auth(HmacAuth::new(b"shared"))
        .bind()
        .await
        .unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    let serving = tokio::spawn(server.serve());
    let conn = TcpClient::new().connect(addr).await.unwrap();
    let e = conn.request("ping", "").await.unwrap_err();
    assert!(matches!(e, RequestError::Auth(_)), "{e:?}");

    let refusals = handle.refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let r = &refusals[0];
    assert_eq!(r.reason, RefusalReason::MissingField);
    assert_eq!(r.plugin, "HmacAuth");
    let warnings = log.warnings();
    let line = format!("messages refused from {} by HmacAuth", r.addr);
    assert!(
        warnings
            .iter()
            .any(|l| l.contains(&line) && l.contains("on both sides")),
        "{warnings:#?}"
    );
    conn.close().await;
    handle.shutdown();
    serving.await.unwrap();
}

/// Peer management on a UDP node without a multicast group finds nobody by itself: `bind` says
/// so at the default level, with what to do (it was silent: two such nodes just never met).
#[tokio::test(start_paused = true)]
async fn peer_management_without_a_group_says_how_peers_are_found() {
    let (log, _guard) = Captured::install();
    let _alone = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .peer_management(netaio::peer::PeerConfig::default())
        .bind()
        .await
        .unwrap();
    let info = log.lines("INFO");
    assert!(
        info.iter()
            .any(|l| l.contains("peer management without a multicast group")
                && l.contains("advertise_to")
                && l.contains("UdpNodeBuilder::multicast")),
        "{info:?}"
    );
    // Not said when there is no peer management.
    let (log, _guard2) = Captured::install();
    let _plain = UdpNode::bind(([127, 0, 0, 1], 0), Router::new())
        .await
        .unwrap();
    assert!(
        !log.lines("INFO")
            .iter()
            .any(|l| l.contains("multicast group")),
        "{:?}",
        log.lines("INFO")
    );
}
