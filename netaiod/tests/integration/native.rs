//! The netaio-native local API on 127.0.0.1: an application behind daemon A serves a route, an
//! application behind daemon B calls it by A's peer id; each daemon restarted in turn, the call
//! path recovers once the applications reconnect.

use std::net::SocketAddr;
use std::time::Duration;

use netaio::router::Content;
use netaio::{Message, MessageType, RequestError, Router};
use netaiod::native_client::NativeClientError;
use netaiod::{Daemon, DaemonConfig, NativeClient};

const LIMIT: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon's configuration with fixed native ports and a host key of its own (kept across its
/// restart: its peer id too).
fn config(native: u16, peer: u16) -> DaemonConfig {
    let dir = std::env::temp_dir().join(format!("netaiod-native-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join(format!("hostkey-{peer}"));
    let _ = std::fs::remove_file(&key);
    let text = format!(
        "hostkey = {}\n[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\n\
         [native]\naddress = 127.0.0.1:{native}\npeer_address = 127.0.0.1:{peer}\ncall_timeout = 5\n",
        key.display()
    );
    DaemonConfig::parse(&text).unwrap().0
}

/// Starts a daemon; the ports of one just stopped may take a moment to be free again.
async fn start(config: &DaemonConfig) -> Daemon {
    for _ in 0..100 {
        match Daemon::start(config.clone()).await {
            Ok(d) => return d,
            Err(e) => {
                tracing::debug!(error = %e, "start refused, again");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    panic!("daemon did not start");
}

fn native_addr(d: &Daemon) -> SocketAddr {
    d.native().unwrap().local_addr()
}

fn echo() -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |Content(c): Content| async move { Message::respond("echo", [&b"echo: "[..], &c[..]].concat()) },
    )
}

async fn serving(d: &Daemon) -> NativeClient {
    let app = NativeClient::connect(native_addr(d), echo()).await.unwrap();
    app.serve("echo").await.unwrap();
    app
}

async fn call(app: &NativeClient, peer: &str) -> Result<bytes::Bytes, NativeClientError> {
    tokio::time::timeout(LIMIT, app.call(peer, "echo", "ping"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_served_route_is_called_by_peer_id_across_restarts() {
    let (a_cfg, b_cfg) = (
        config(free_port(), free_port()),
        config(free_port(), free_port()),
    );
    let a = start(&a_cfg).await;
    let b = start(&b_cfg).await;
    let app_a = serving(&a).await;
    let peer_a = a.native().unwrap().peer_id().to_owned();
    assert_eq!(app_a.peer_id(), peer_a, "HELLO tells the daemon's peer id");
    let app_b = NativeClient::connect(native_addr(&b), Router::new())
        .await
        .unwrap();
    // The first call names A's address; later ones the id alone.
    let peer_a_at = format!("{peer_a}@{}", a.native().unwrap().peer_addr());
    assert_eq!(call(&app_b, &peer_a_at).await.unwrap(), "echo: ping");
    assert_eq!(call(&app_b, &peer_a).await.unwrap(), "echo: ping");

    // A uri nobody serves there: NOT_FOUND, carried back.
    let missing = tokio::time::timeout(LIMIT, app_b.call(&peer_a, "nothing", ""))
        .await
        .unwrap();
    assert!(
        matches!(
            missing,
            Err(NativeClientError::Request(RequestError::NotFound(_)))
        ),
        "{missing:?}"
    );

    // Daemon A restarts: its application reconnects and serves again; B's call gets through
    // (B's connection to A broke and is opened again).
    drop(app_a);
    a.shutdown().await;
    let a = start(&a_cfg).await;
    let app_a = serving(&a).await;
    assert_eq!(a.native().unwrap().peer_id(), peer_a, "the same host key");
    assert_eq!(call(&app_b, &peer_a).await.unwrap(), "echo: ping");

    // Daemon B restarts: its application reconnects and calls again (B learns A's address
    // again from the call).
    drop(app_b);
    b.shutdown().await;
    let b = start(&b_cfg).await;
    let app_b = NativeClient::connect(native_addr(&b), Router::new())
        .await
        .unwrap();
    assert_eq!(call(&app_b, &peer_a_at).await.unwrap(), "echo: ping");

    drop((app_a, app_b));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_old_client_gets_a_clear_error_and_nothing_works_before_hello() {
    let cfg = config(free_port(), free_port());
    let d = start(&cfg).await;
    let old = NativeClient::connect_version(native_addr(&d), Router::new(), 0).await;
    match old {
        Err(NativeClientError::Request(RequestError::NotPermitted(m))) => {
            let text = String::from_utf8_lossy(m.content()).into_owned();
            assert!(
                text.contains("version 0 not supported") && text.contains("version 1"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    // SERVE without HELLO, on a raw netaio connection.
    let client = netaio::TcpClient::new();
    let conn = client.connect(native_addr(&d)).await.unwrap();
    let serve = Message::new(MessageType::REQUEST_URI, netaiod::native::SERVE_URI, "echo");
    assert!(matches!(
        conn.call(serve).await,
        Err(RequestError::NotPermitted(_))
    ));
    d.shutdown().await;
}

#[tokio::test]
async fn peers_are_listed_and_their_events_numbered() {
    let a = start(&config(free_port(), free_port())).await;
    let a_p2p = a.node().addr();
    let b_text = format!(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\nbootstrapper = {a_p2p}\n\
         [native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\n"
    );
    let b = start(&DaemonConfig::parse(&b_text).unwrap().0).await;
    let app = NativeClient::connect(native_addr(&a), Router::new())
        .await
        .unwrap();
    let (next, mut events) = app.watch().await.unwrap().unwrap();
    assert!(app.watch().await.unwrap().is_none(), "one receiver");
    let b_p2p = b.node().addr().to_string();
    // b joined through a: a's neighbour (now or already before the watch); PEERS lists it.
    let mut view = a.node().watch_neighbors();
    let b_addr = b.node().addr();
    tokio::time::timeout(LIMIT, view.wait_for(|n| n.contains(&b_addr)))
        .await
        .unwrap()
        .unwrap();
    assert!(app.peers().await.unwrap().contains(&b_p2p));
    b.shutdown().await;
    // The down event has an id at or after `next`, and ids only grow.
    let mut last = None;
    let down = tokio::time::timeout(LIMIT, async {
        loop {
            let e = events.recv().await.unwrap();
            assert!(e.id >= next);
            if let Some(l) = last {
                assert_eq!(e.id, l + 1, "consecutive");
            }
            last = Some(e.id);
            if !e.up && e.peer == b_p2p {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert!(!down.up);
    a.shutdown().await;
}

/// Gossip through the native API: an application behind B subscribes without validation, one
/// behind A with validation; a gossip module on A announces, and a native application on B
/// announces back.
#[tokio::test]
async fn native_applications_publish_and_subscribe() {
    let a = start(&config(free_port(), free_port())).await;
    let a_p2p = a.node().addr();
    let b_text = format!(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\nbootstrapper = {a_p2p}\n\
         [native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\n"
    );
    let b = start(&DaemonConfig::parse(&b_text).unwrap().0).await;
    let mut view = a.node().watch_neighbors();
    let b_addr = b.node().addr();
    tokio::time::timeout(LIMIT, view.wait_for(|n| n.contains(&b_addr)))
        .await
        .unwrap()
        .unwrap();
    let on_b = NativeClient::connect(native_addr(&b), Router::new())
        .await
        .unwrap();
    let mut b_notes = on_b.notifications().unwrap();
    on_b.subscribe(9, false).await.unwrap();
    let on_a = NativeClient::connect(native_addr(&a), Router::new())
        .await
        .unwrap();
    let mut a_notes = on_a.notifications().unwrap();
    on_a.subscribe(8, true).await.unwrap();
    // B must follow type 9 before the announce: its topics reach A with the next exchange, and
    // anti-entropy would fetch a missed one anyway; publish from a gossip module on A.
    let mut module = netaiod::ApiClient::connect(a.api_addrs()[0]).await.unwrap();
    module.announce(0, 9, "to b").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(40), b_notes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(got, netaiod::ApiMessage::Notification { message_id: 0, data_type: 9, ref data } if data == "to b"),
        "{got:?}"
    );
    // A native announce from B of type 8: the application on A is asked to validate it.
    on_b.announce(0, 8, "to a").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(40), a_notes.recv())
        .await
        .unwrap()
        .unwrap();
    let netaiod::ApiMessage::Notification {
        message_id,
        data_type: 8,
        data,
    } = got
    else {
        panic!("{got:?}");
    };
    assert_eq!(data, "to a");
    on_a.validate(message_id, true).await.unwrap();
    // A malformed gossip message: an error reply, the connection serves on.
    let m = Message::new(
        MessageType::REQUEST_URI,
        netaiod::native::GOSSIP_URI,
        &b"\x00\x03"[..],
    );
    let conn = netaio::TcpClient::new();
    let raw = conn.connect(native_addr(&a)).await.unwrap();
    let mut hello = Vec::from(1u16.to_be_bytes());
    hello.extend_from_slice(&0u32.to_be_bytes());
    raw.call(Message::new(
        MessageType::REQUEST_URI,
        netaiod::native::HELLO_URI,
        hello,
    ))
    .await
    .unwrap();
    assert!(matches!(raw.call(m).await, Err(RequestError::Error(_))));
    assert!(
        raw.call(Message::new(
            MessageType::REQUEST_URI,
            netaiod::native::PEERS_URI,
            ""
        ))
        .await
        .is_ok()
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn only_allowed_uids_may_say_hello() {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/proc/self").unwrap().uid();
    let text = |uids: String| {
        format!(
            "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\n\
             [native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\nallowed_uids = {uids}\n"
        )
    };
    let allowed = start(&DaemonConfig::parse(&text(ours.to_string())).unwrap().0).await;
    assert!(
        NativeClient::connect(native_addr(&allowed), Router::new())
            .await
            .is_ok()
    );
    let other = ours.wrapping_add(4242);
    let refused = start(&DaemonConfig::parse(&text(other.to_string())).unwrap().0).await;
    match NativeClient::connect(native_addr(&refused), Router::new()).await {
        Err(NativeClientError::Request(RequestError::NotPermitted(m))) => {
            let text = String::from_utf8_lossy(m.content()).into_owned();
            assert!(
                text.contains(&format!("uid {ours} is not allowed")),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    allowed.shutdown().await;
    refused.shutdown().await;
}
