//! The peer directory on 127.0.0.1: three daemons, A bootstrapping from B and B from C; nobody
//! tells A where C is called, yet an application behind A calls C by its bare peer id once C's
//! signed record reached A over gossip.

use std::time::Duration;

use netaio::router::Content;
use netaio::{Message, MessageType, Router};
use netaiod::directory::unix_now;
use netaiod::{Daemon, DaemonConfig, NativeClient};

const LIMIT: Duration = Duration::from_secs(30);

async fn daemon(bootstrapper: Option<std::net::SocketAddr>) -> Daemon {
    let mut text = String::from(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\nsearch_cooldown = 1\n",
    );
    if let Some(b) = bootstrapper {
        text.push_str(&format!("bootstrapper = {b}\n"));
    }
    text.push_str(
        "[native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\ncall_timeout = 5\n",
    );
    Daemon::start(DaemonConfig::parse(&text).unwrap().0)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_daemon_known_only_through_a_neighbour_is_called_by_its_bare_id() {
    let c = daemon(None).await;
    let b = daemon(Some(c.node().addr())).await;
    let a = daemon(Some(b.node().addr())).await;

    let router = Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |Content(body): Content| async move {
            Message::respond("echo", [&b"echo: "[..], &body[..]].concat())
        },
    );
    let served = NativeClient::connect(c.native().unwrap().local_addr(), router)
        .await
        .unwrap();
    served.serve("echo").await.unwrap();
    let caller = NativeClient::connect(a.native().unwrap().local_addr(), Router::new())
        .await
        .unwrap();
    let c_id = c.native().unwrap().peer_id().to_owned();
    let mut c_raw = [0u8; netaiod::native::PEER_ID_LEN];
    hex::decode_to_slice(&c_id, &mut c_raw).unwrap();

    // A learns C's address from the gossip of records (C's, relayed by B, or fetched from B's
    // store by anti-entropy).
    let mut changes = a.directory().changes();
    tokio::time::timeout(LIMIT, async {
        while a.directory().address(&c_raw, unix_now()).is_none() {
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("A never learnt C's address");
    assert_eq!(
        a.directory().address(&c_raw, unix_now()),
        Some(c.native().unwrap().peer_addr())
    );

    let reply = tokio::time::timeout(LIMIT, caller.call(&c_id, "echo", "ping"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "echo: ping");
    for d in [a, b, c] {
        d.shutdown().await;
    }
}
