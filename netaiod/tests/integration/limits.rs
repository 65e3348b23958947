//! netaiod's connection limits on 127.0.0.1: the gossip module API's 64 connections, the
//! notification queue of a module that never reads, the native API's 256 routes and 64 watchers.

use std::time::Duration;

use bytes::Bytes;
use netaio::Router;
use netaiod::codec::ApiMessage;
use netaiod::daemon::{MAX_API_CONNECTIONS, NOTIFICATION_QUEUE};
use netaiod::native::MAX_ROUTES;
use netaiod::native_client::NativeClientError;
use netaiod::{ApiClient, Daemon, DaemonConfig, NativeClient};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn daemon(native: bool) -> Daemon {
    let mut text = String::from("[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\n");
    if native {
        text.push_str("[native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\n");
    }
    Daemon::start(DaemonConfig::parse(&text).unwrap().0)
        .await
        .unwrap()
}

async fn subscribed(addr: std::net::SocketAddr, data_type: u16) -> ApiClient {
    let mut c = ApiClient::connect(addr).await.unwrap();
    c.notify(data_type).await.unwrap();
    c
}

async fn notification(c: &mut ApiClient) -> Option<Bytes> {
    match timeout(LIMIT, c.recv()).await.unwrap() {
        Ok(Some(ApiMessage::Notification { data, .. })) => Some(data),
        Ok(None) | Err(_) => None,
        Ok(Some(other)) => panic!("not a notification: {other:?}"),
    }
}

/// Announces `what` from `announcer` until `newcomer` (connected and subscribed to type 1 anew
/// each round) receives it: a connection refused for want of a slot reads the end of stream at
/// once. Fails after `rounds` refusals.
async fn admitted(
    addr: std::net::SocketAddr,
    announcer: &mut ApiClient,
    rounds: usize,
) -> ApiClient {
    for _ in 0..rounds {
        let mut newcomer = subscribed(addr, 1).await;
        // The daemon handles one connection's messages in order, and the newcomer's NOTIFY was
        // sent first: admitted, it is notified of the probe.
        announcer.announce(0, 1, "probe").await.unwrap();
        if let Some(data) = notification(&mut newcomer).await {
            assert_eq!(data, "probe");
            return newcomer;
        }
        tokio::task::yield_now().await;
    }
    panic!("no connection admitted in {rounds} tries");
}

#[tokio::test]
async fn the_65th_api_connection_is_closed_and_the_first_64_are_served() {
    let d = daemon(false).await;
    let addr = d.api_addrs()[0];
    let mut modules = Vec::new();
    for _ in 0..MAX_API_CONNECTIONS {
        modules.push(subscribed(addr, 1).await);
    }
    // Every one of the 64 is in: an announce of the first reaches the 63 others.
    modules[0].announce(0, 1, "first").await.unwrap();
    for m in &mut modules[1..] {
        assert_eq!(notification(m).await.unwrap(), "first");
    }
    let mut extra = ApiClient::connect(addr).await.unwrap();
    let _ = extra.notify(1).await;
    let end = timeout(LIMIT, extra.recv()).await.unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "65th served: {end:?}");
    // The 64 are still served.
    modules[63].announce(0, 1, "second").await.unwrap();
    for m in &mut modules[..63] {
        assert_eq!(notification(m).await.unwrap(), "second");
    }
    // One leaves: its slot is free again.
    drop(modules.pop());
    let mut announcer = modules.pop().unwrap();
    let _newcomer = admitted(addr, &mut announcer, 100).await;
    d.shutdown().await;
}

#[tokio::test]
async fn a_module_that_never_reads_is_disconnected_and_the_others_are_served() {
    let d = daemon(false).await;
    let addr = d.api_addrs()[0];
    // The module that never reads, with a small receive window so that the daemon's queue for
    // it fills after a few MiB rather than after the kernel's tens of MiB.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut sleeper = socket.connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut sleeper, &[0, 8, 1, 0xf5, 0, 0, 0, 1])
        .await
        .unwrap();
    let mut reader = subscribed(addr, 1).await;
    let mut announcer = ApiClient::connect(addr).await.unwrap();
    // The other slots taken: the sleeper's slot must come back for a newcomer to get in.
    let mut idle = Vec::new();
    for _ in 3..MAX_API_CONNECTIONS {
        idle.push(ApiClient::connect(addr).await.unwrap());
    }
    // Both subscriptions in place before the flood.
    announcer.announce(0, 1, "ready").await.unwrap();
    assert_eq!(notification(&mut reader).await.unwrap(), "ready");

    // Far more than the queue and the kernel's buffers on both sides hold (4 MiB of send
    // buffer at most here, see tcp_wmem; the queue's 64 × 60 kB).
    let flood = NOTIFICATION_QUEUE * 3;
    let data = Bytes::from(vec![7u8; 60_000]);
    // The reader reports what it got; the flood goes in batches it has taken in full, so that
    // only the sleeper falls behind (a reader that let 64 pile up would be cut off too).
    let (progress, mut got) = tokio::sync::watch::channel(0usize);
    let reading = tokio::spawn(async move {
        let mut n = 0;
        while n < flood {
            match notification(&mut reader).await {
                Some(d) if d.len() == 60_000 => n += 1,
                other => panic!("reader lost at {n}: {other:?}"),
            }
            progress.send_replace(n);
        }
        reader
    });
    const BATCH: usize = 8;
    for sent in (BATCH..=flood).step_by(BATCH) {
        for _ in 0..BATCH {
            announcer.announce(0, 1, data.clone()).await.unwrap();
        }
        timeout(LIMIT, got.wait_for(|n| *n >= sent))
            .await
            .expect("the reader fell behind")
            .expect("the reader stopped");
    }
    // The module that reads got every one.
    let _reader = timeout(LIMIT, reading).await.unwrap().unwrap();

    // The sleeper, never having read, no longer holds a slot: a newcomer gets in (in a few
    // tries: its connection task ends just after the daemon's loop dropped it).
    let _newcomer = admitted(addr, &mut announcer, 100).await;

    // And it was cut off: what it can still read ends (end of stream or a reset) well short of
    // the flood.
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        match timeout(LIMIT, sleeper.read(&mut buf)).await.unwrap() {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        assert!(total < flood * 60_000, "the sleeper got the whole flood");
    }
    d.shutdown().await;
}

#[tokio::test]
async fn the_257th_native_route_is_refused_and_the_first_256_are_kept() {
    let d = daemon(true).await;
    let app = NativeClient::connect(d.native().unwrap().local_addr(), Router::new())
        .await
        .unwrap();
    for i in 0..MAX_ROUTES {
        app.serve(&format!("route/{i}")).await.unwrap();
    }
    let refused = app.serve("route/one-too-many").await;
    assert!(
        matches!(&refused, Err(e @ NativeClientError::Request(_)) if e.to_string().contains("too many routes")),
        "{refused:?}"
    );
    // A route already served may be registered again (an application that reconnected).
    app.serve("route/0").await.unwrap();
    // A second application is refused too: the limit is the daemon's, not the connection's.
    let other = NativeClient::connect(d.native().unwrap().local_addr(), Router::new())
        .await
        .unwrap();
    assert!(other.serve("route/other").await.is_err());
    // Once the first application leaves, its routes are forgotten and the room is back.
    app.close().await;
    let mut served = false;
    for _ in 0..100 {
        if other.serve("route/other").await.is_ok() {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "routes of a closed application still count");
    d.shutdown().await;
}

#[tokio::test]
async fn the_65th_watcher_is_refused_and_a_watcher_gone_frees_its_place() {
    use netaiod::native::MAX_WATCHERS;

    let d = daemon(true).await;
    let addr = d.native().unwrap().local_addr();
    let mut watchers = Vec::new();
    for _ in 0..MAX_WATCHERS {
        let app = NativeClient::connect(addr, Router::new()).await.unwrap();
        assert!(app.watch().await.unwrap().is_some());
        watchers.push(app);
    }
    let extra = NativeClient::connect(addr, Router::new()).await.unwrap();
    let refused = extra.watch().await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("too many")),
        "{refused:?}"
    );
    // A watcher already in may ask again.
    assert!(watchers[0].watch().await.is_ok());
    // One leaves: its place is free again (once the daemon saw the connection end).
    watchers.pop().unwrap().close().await;
    let mut admitted = false;
    for _ in 0..100 {
        if extra.watch().await.is_ok() {
            admitted = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(admitted, "a closed watcher still counts");
    d.shutdown().await;
}
