//! Python UDP peer management, live: a Rust `UdpNode` in `python_compat()` mode and a Python
//! netaio 0.0.9 `UDPNode` running `manage_peers_automatically()` (`examples/python/
//! compat_udp_peers.py`), on 127.0.0.1.
//!
//! - Rust to Python: the Rust node advertises to the Python node (`advertise_to`); the Python
//!   node adds the Rust peer (id and packify peer data) and answers PEER_DISCOVERED, from which
//!   the Rust node adds the Python peer; the Rust node's DISCONNECT on shutdown removes it from
//!   the Python node's list.
//! - Python to Rust: the Python node's own advert (the message its advert loop sends to the
//!   group, here by unicast, since two nodes cannot share the group port on one host) makes the
//!   Rust node add the Python peer and answer PEER_DISCOVERED, from which the Python node adds
//!   the Rust peer.

// Test code: a panic is how the helpers report a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use netaio::Router;
use netaio::compat::PackifyPeerPlugin;
use netaio::peer::{Peer, PeerConfig, PeerData, PeerEvent};
use netaio::plugin::PeerPlugin;
use netaio::udp::{UdpHandle, UdpNode};
use tokio::sync::broadcast;

use crate::python_interop::{LIMIT, Proc, python, python_dir};

/// A Rust node in Python-compatible mode with peer management, its peer `rs-node-1` carrying
/// `{'lang': b'rust'}`.
async fn rust_node() -> (
    UdpHandle,
    broadcast::Receiver<PeerEvent>,
    tokio::task::JoinHandle<()>,
) {
    let mut data = PeerData::new();
    data.insert("lang".into(), Bytes::from_static(b"rust"));
    let node = UdpNode::builder()
        .address((Ipv4Addr::LOCALHOST, 0))
        .router(Router::new())
        .python_compat()
        .local_peer(Peer::new("rs-node-1").with_data(PackifyPeerPlugin.encode_data(&data).unwrap()))
        .peer_management(PeerConfig::default())
        .bind()
        .await
        .expect("bind the rust node");
    let handle = node.handle();
    let events = handle.peer_events();
    let serving = tokio::spawn(node.serve());
    (handle, events, serving)
}

fn python_node(args: &[&str]) -> (Proc, u16) {
    let mut p = Proc::spawn(
        Command::new(python())
            .arg(python_dir().join("compat_udp_peers.py"))
            .args([
                "--port",
                "0",
                "--id",
                "py-node-1",
                "--data-key",
                "lang",
                "--data-value",
                "python",
            ])
            .args(["--seconds", "30"])
            .args(args),
    );
    let port = p.port();
    (p, port)
}

/// The next line of the Python node, skipping none.
fn expect_line(p: &mut Proc, want: &str) {
    let got = p.line(LIMIT);
    assert_eq!(got, want);
}

/// Wait for the Rust node's event that the Python peer was discovered, and check its data.
async fn discovered_python(events: &mut broadcast::Receiver<PeerEvent>, handle: &UdpHandle) {
    let peer = tokio::time::timeout(LIMIT, async {
        loop {
            match events.recv().await {
                Ok(PeerEvent::Discovered(p)) => return p,
                Ok(_) => {}
                Err(e) => panic!("peer events: {e}"),
            }
        }
    })
    .await
    .expect("the python peer discovered");
    assert_eq!(peer.id.as_ref(), b"py-node-1");
    let data = PackifyPeerPlugin.decode_data(&peer.data).unwrap();
    assert_eq!(data.get("lang").map(|v| v.as_ref()), Some(&b"python"[..]));
    assert!(handle.peers().get(&peer.id).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_advertises_to_a_python_node_and_says_goodbye() {
    let (handle, mut events, serving) = rust_node().await;
    let (mut py, port) = python_node(&[]);
    handle
        .advertise_to(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .expect("advertise");
    discovered_python(&mut events, &handle).await;
    let mut py = tokio::task::spawn_blocking(move || {
        expect_line(&mut py, "peer rs-node-1 lang=rust");
        py
    })
    .await
    .unwrap();
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the rust node stops")
        .unwrap();
    tokio::task::spawn_blocking(move || expect_line(&mut py, "peer-gone rs-node-1"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_node_advertises_to_rust() {
    let (handle, mut events, serving) = rust_node().await;
    let rust_port = handle.local_addr().port().to_string();
    let (mut py, _port) = python_node(&["--advertise-to", &rust_port]);
    discovered_python(&mut events, &handle).await;
    tokio::task::spawn_blocking(move || expect_line(&mut py, "peer rs-node-1 lang=rust"))
        .await
        .unwrap();
    handle.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
}
