//! Daemon-to-daemon calls through a netaio relay on 127.0.0.1: two daemons that reserve their
//! peer ids at the relay call each other by id when no direct address works.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::relay::{Relay, RelayConfig};
use netaio::router::Content;
use netaio::{Message, MessageType, Router, TcpServer};
use netaiod::{Daemon, DaemonConfig, NativeClient};

const LIMIT: Duration = Duration::from_secs(10);

/// A daemon reserving its id at `relay`, with its host key at `key` (a restart keeps its id).
async fn daemon(relay: std::net::SocketAddr, key: &std::path::Path) -> Daemon {
    let text = format!(
        "hostkey = {}\n[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\n\
         [native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\ncall_timeout = 2\n\
         relay = {relay}\n",
        key.display()
    );
    Daemon::start(DaemonConfig::parse(&text).unwrap().0)
        .await
        .unwrap()
}

/// An application behind `d` serving `echo`, counting its requests.
async fn echo_app(d: &Daemon) -> (NativeClient, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let router = Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        move |Content(body): Content| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Message::respond("echo", [&b"echo: "[..], &body[..]].concat()) }
        },
    );
    let app = NativeClient::connect(d.native().unwrap().local_addr(), router)
        .await
        .unwrap();
    app.serve("echo").await.unwrap();
    (app, count)
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn daemons_call_each_other_by_id_through_the_relay() {
    let relay = Relay::new(RelayConfig::default());
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new().merge(relay.router()))
        .bind()
        .await
        .unwrap();
    let relay_addr = server.local_addr();
    tokio::spawn(server.serve());
    let dir = std::env::temp_dir().join(format!("netaiod-relayed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key_a, key_b) = (dir.join("a"), dir.join("b"));
    let _ = std::fs::remove_file(&key_a);
    let _ = std::fs::remove_file(&key_b);
    let a = daemon(relay_addr, &key_a).await;
    let b = daemon(relay_addr, &key_b).await;
    tokio::time::timeout(LIMIT, async {
        while relay.stats().reservations < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both daemons reserve their ids");
    let (app_a, served_a) = echo_app(&a).await;
    let (app_b, served_b) = echo_app(&b).await;
    let (id_a, id_b) = (app_a.peer_id().to_owned(), app_b.peer_id().to_owned());

    // B is given a dead address for A: the direct strategy fails, the relay carries the call.
    let dead = format!("{id_a}@127.0.0.1:{}", dead_port());
    let reply = tokio::time::timeout(LIMIT, app_b.call(&dead, "echo", "via relay"))
        .await
        .unwrap()
        .map_err(|e| match e {
            netaiod::native_client::NativeClientError::Request(netaio::RequestError::Error(m)) => {
                String::from_utf8_lossy(m.content()).into_owned()
            }
            e => e.to_string(),
        })
        .unwrap();
    assert_eq!(reply, "echo: via relay");
    assert_eq!(served_a.load(Ordering::SeqCst), 1);
    let relayed = relay.stats().relayed;
    assert!(
        relayed >= 2,
        "the greeting and the call went through the relay: {relayed}"
    );

    // A knows no address of B at all: by the id alone, through the relay.
    let reply = tokio::time::timeout(LIMIT, app_a.call(&id_b, "echo", "back"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "echo: back");
    assert_eq!(served_b.load(Ordering::SeqCst), 1);
    assert!(relay.stats().relayed > relayed);

    // An id nobody reserved: the relay has no route, the call fails and nothing is served.
    let nobody = "00".repeat(16);
    let e = tokio::time::timeout(LIMIT, app_a.call(&nobody, "echo", "x"))
        .await
        .unwrap();
    assert!(e.is_err(), "{e:?}");
    assert_eq!(
        served_a.load(Ordering::SeqCst) + served_b.load(Ordering::SeqCst),
        2
    );

    // A restarts (same host key, so the same id) and reserves again; it no longer knows B's
    // keys, so B's next relayed call may be dropped (a timeout), after which B greets again:
    // the path recovers within a few calls.
    drop(app_a);
    a.shutdown().await;
    let a = daemon(relay_addr, &key_a).await;
    let (app_a, served_a) = echo_app(&a).await;
    assert_eq!(app_a.peer_id(), id_a);
    let recovered = tokio::time::timeout(Duration::from_secs(20), async {
        for attempt in 0.. {
            match app_b.call(&id_a, "echo", "again").await {
                Ok(reply) => return (attempt, reply),
                Err(e) => tracing::debug!(attempt, error = %e, "not yet"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!()
    })
    .await
    .expect("the relayed path recovers after A's restart");
    assert_eq!(recovered.1, "echo: again");
    assert!(
        recovered.0 <= 3,
        "recovered after {} failed calls",
        recovered.0
    );
    assert_eq!(served_a.load(Ordering::SeqCst), 1);
    drop((app_a, app_b));
    a.shutdown().await;
    b.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Through the relay too, a PEER_CALL reaches an application only sealed by the keys of a
/// greeted daemon: greeted (the relay delivers, A answers with its keys), then a call in clear
/// and one sealed by another key than the greeted one are dropped.
#[tokio::test]
async fn relayed_calls_in_clear_or_foreign_signed_are_refused() {
    use bytes::{BufMut, Bytes, BytesMut};
    use netaio::peer::Peer;
    use netaio_asymmetric::Identity;
    use netaiod::native::{PEER_CALL_URI, PEER_HELLO_URI, peer_id_text};

    let relay = Relay::new(RelayConfig::default());
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new().merge(relay.router()))
        .bind()
        .await
        .unwrap();
    let relay_addr = server.local_addr();
    tokio::spawn(server.serve());
    let dir = std::env::temp_dir().join(format!("netaiod-relayed-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("a");
    let _ = std::fs::remove_file(&key);
    let a = daemon(relay_addr, &key).await;
    let (app_a, served) = echo_app(&a).await;
    let id_a = Bytes::from(hex::decode(app_a.peer_id()).unwrap());
    tokio::time::timeout(LIMIT, async {
        while relay.stats().reservations < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();

    let mallory = Identity::generate();
    let client = netaio::TcpClient::new();
    let conn = client.connect(relay_addr).await.unwrap();
    let keys = mallory.public_keys();
    conn.reserve(Bytes::copy_from_slice(&netaio_asymmetric::peer_id(&keys)))
        .await
        .unwrap();
    let mut hello = BytesMut::new();
    hello.put_slice(&keys.x25519);
    hello.put_slice(&keys.ed25519);
    let hello = Message::new(MessageType::REQUEST_URI, PEER_HELLO_URI, hello.freeze());
    let bare = Peer::new(id_a.clone());
    let reply = tokio::time::timeout(LIMIT, conn.call_via_relay(&bare, hello))
        .await
        .unwrap()
        .unwrap();
    let c = reply.content();
    let a_keys = netaio_asymmetric::PublicKeys {
        x25519: c[..32].try_into().unwrap(),
        ed25519: c[32..64].try_into().unwrap(),
    };
    assert_eq!(
        peer_id_text(&a_keys),
        app_a.peer_id(),
        "greeted through the relay"
    );
    let record = netaio_asymmetric::AsymmetricPeerPlugin
        .peer(id_a.clone(), &a_keys, Default::default())
        .unwrap();
    // A's relayed replies are opened with its record from this client's peer table.
    client.peers().observe(record.clone(), relay_addr).unwrap();

    let call = |body: &'static str| {
        let mut c = BytesMut::new();
        c.put_u16(4);
        c.put_slice(b"echo");
        c.put_slice(body.as_bytes());
        Message::new(MessageType::REQUEST_URI, PEER_CALL_URI, c.freeze())
    };
    let opts = |inner| {
        netaio::CallOptions::new()
            .inner(inner)
            .timeout(Duration::from_secs(1))
    };
    // In clear.
    let clear = conn.start_call_via_relay(&record, call("clear"), &opts(Default::default()));
    assert!(clear.await.is_err());
    // Sealed by eve, not the greeted mallory.
    let eve = netaio_gossip::net::peer_plugins(&Identity::generate());
    assert!(
        conn.start_call_via_relay(&record, call("eve"), &opts(eve))
            .await
            .is_err()
    );
    assert_eq!(
        served.load(Ordering::SeqCst),
        0,
        "none reached the application"
    );
    // Sealed by mallory: served (so the refusals above are the sealing's).
    let sealed = netaio_gossip::net::peer_plugins(&mallory);
    let reply = conn
        .start_call_via_relay(&record, call("sealed"), &opts(sealed))
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"echo: sealed");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    drop(app_a);
    a.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
