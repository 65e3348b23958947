//! `UdpNodeBuilder::recv_buffer_size` / `send_buffer_size`: the sizes reach the node's socket
//! (read back through the node's getters and, independently, with `getsockopt` on the raw
//! socket), a request above the kernel's cap binds anyway at the cap with a warning naming the
//! sysctl, and the point of it: a burst of 8 kB datagrams that arrives while nobody reads is
//! lost with a small receive buffer and kept whole with a large one. Linux only (the caps are
//! read from `/proc/sys/net/core`, and Linux reports twice the size set). Over 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::Read;
use std::net::UdpSocket;

use netaio::udp::UdpNode;
use socket2::{SockRef, Socket};

use crate::common::Captured;

fn sysctl(name: &str) -> usize {
    std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The receive and send buffers of the node's socket read with `getsockopt` on the socket itself,
/// not through the node's getters.
fn raw_sizes(node: &UdpNode) -> (usize, usize) {
    let handle = node.handle();
    let sock = SockRef::from(&**handle.socket());
    (
        sock.recv_buffer_size().unwrap(),
        sock.send_buffer_size().unwrap(),
    )
}

/// Without the options the kernel's defaults stay; with sizes below the caps, the kernel grants
/// them (Linux reports the double), and nothing is logged.
#[tokio::test(flavor = "current_thread")]
async fn udp_buffer_sizes_below_the_cap_are_granted() {
    let (rmem_max, wmem_max) = (sysctl("rmem_max"), sysctl("wmem_max"));
    let (rmem_default, wmem_default) = (sysctl("rmem_default"), sysctl("wmem_default"));

    let plain = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .bind()
        .await
        .unwrap();
    assert_eq!(plain.recv_buffer_size().unwrap(), rmem_default);
    assert_eq!(plain.send_buffer_size().unwrap(), wmem_default);

    // Below the caps, and not the defaults' halves (which would read as the defaults).
    let recv = rmem_max / 2 + 4096;
    let send = wmem_max / 2 + 8192;
    let (log, _guard) = Captured::install();
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .recv_buffer_size(recv)
        .send_buffer_size(send)
        .bind()
        .await
        .unwrap();
    let (got_recv, got_send) = (
        node.recv_buffer_size().unwrap(),
        node.send_buffer_size().unwrap(),
    );
    assert!(got_recv >= recv, "asked {recv}, granted {got_recv}");
    assert!(got_send >= send, "asked {send}, granted {got_send}");
    assert_eq!((got_recv, got_send), (2 * recv, 2 * send));
    assert_eq!(raw_sizes(&node), (got_recv, got_send));
    let h = node.handle();
    assert_eq!(
        (h.recv_buffer_size().unwrap(), h.send_buffer_size().unwrap()),
        (got_recv, got_send)
    );
    assert_eq!(log.warnings(), Vec::<String>::new());
}

/// Above the caps the bind still succeeds, at the caps, and the warnings name the sysctls to
/// raise. `usize::MAX` (more than the option's C int holds) too.
#[tokio::test(flavor = "current_thread")]
async fn udp_buffer_request_above_the_cap_is_granted_as_the_cap() {
    let (rmem_max, wmem_max) = (sysctl("rmem_max"), sysctl("wmem_max"));
    let (log, _guard) = Captured::install();
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .recv_buffer_size(rmem_max * 2 + 1)
        .send_buffer_size(usize::MAX)
        .bind()
        .await
        .unwrap();
    assert_eq!(
        (
            node.recv_buffer_size().unwrap(),
            node.send_buffer_size().unwrap()
        ),
        (2 * rmem_max, 2 * wmem_max)
    );
    assert_eq!(raw_sizes(&node), (2 * rmem_max, 2 * wmem_max));
    let warnings = log.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    for (line, option, sysctl, cap) in [
        (&warnings[0], "SO_RCVBUF", "net.core.rmem_max", rmem_max),
        (&warnings[1], "SO_SNDBUF", "net.core.wmem_max", wmem_max),
    ] {
        assert!(line.contains(option) && line.contains(sysctl), "{line}");
        assert!(line.contains(&format!("granted={cap}")), "{line}");
    }
}

/// Datagrams sent to the node.
const BURST: usize = 16;
/// Each datagram's payload: the size from which 16 calls in flight overflowed the default
/// buffer in the relay benchmark.
const DATAGRAM: usize = 8_000;

/// Bind a node with `recv_buffer` (not serving: nothing reads its socket), send it [`BURST`]
/// datagrams of [`DATAGRAM`] bytes, then count what its socket holds. The sends complete before
/// the count starts (over loopback a send queues the datagram at the receiver or drops it before
/// it returns), so what is missing was dropped by the kernel for want of buffer, not raced.
async fn kept_of_burst(recv_buffer: usize) -> usize {
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .recv_buffer_size(recv_buffer)
        .bind()
        .await
        .unwrap();
    let sender = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let payload = vec![0x5a_u8; DATAGRAM];
    for _ in 0..BURST {
        assert_eq!(
            sender.send_to(&payload, node.local_addr()).unwrap(),
            DATAGRAM
        );
    }
    let handle = node.handle();
    let sock = SockRef::from(&**handle.socket());
    let mut reader: &Socket = &sock;
    let mut buf = vec![0u8; 65_536];
    let mut kept = 0;
    // Bounded: at most the burst is there to read; the socket is non-blocking, so an empty queue
    // ends the loop with `WouldBlock`.
    for _ in 0..=BURST {
        match reader.read(&mut buf) {
            Ok(n) => {
                assert_eq!(n, DATAGRAM);
                kept += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("reading the node's socket: {e}"),
        }
    }
    kept
}

/// The benchmark's loss, without timing: a burst of 8 kB datagrams overflows a 16 KiB receive
/// buffer and fits whole in a 1 MiB one (or the cap, if lower: at the smallest default cap,
/// 208 KiB, Linux grants twice that, room for more than the burst).
#[tokio::test(flavor = "current_thread")]
async fn udp_burst_of_large_datagrams_needs_the_receive_buffer() {
    let small = kept_of_burst(16 * 1024).await;
    let large = kept_of_burst((1 << 20).min(sysctl("rmem_max"))).await;
    assert!(
        small < BURST / 2,
        "a 16 KiB buffer kept {small} of {BURST} datagrams of {DATAGRAM} B"
    );
    assert_eq!(large, BURST, "a large buffer lost datagrams");
}
