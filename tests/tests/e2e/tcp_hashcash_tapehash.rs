//! `HashcashAuth` with tapehash as its stamp function, across a real TCP connection: a route that
//! demands tapehash stamps answers a client that makes them, and refuses one that sends SHA-256
//! stamps or tapehash stamps of other parameters, before its handler runs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use netaio::plugin::{HashcashAuth, Plugins, SendOptions, Tapehash};
use netaio::router::Route;
use netaio::{Message, MessageType, RequestError, Router, TcpClient};
use netaio_tests::{WAIT, start, within};

/// Low: each try is a tapehash (about 40 µs; 256 tries on average).
const BITS: u32 = 8;

fn gossip_stamp() -> Tapehash {
    Tapehash::v1(64).unwrap()
}

/// Makes a client's stamping plugin.
type MakeAuth = fn() -> HashcashAuth;

fn stamping(auth: HashcashAuth) -> SendOptions {
    SendOptions::new().inner(Plugins::new().auth(auth.require_incoming(false)))
}

#[tokio::test]
async fn tapehash_stamps_accepted_others_refused() {
    let handled = Arc::new(AtomicUsize::new(0));
    let seen = handled.clone();
    let router = Router::new().route(
        Route::on((MessageType::REQUEST_URI, "post"), move |m: Message| {
            seen.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Message::ok("post", m.content().clone()))
        })
        .with_inner(
            Plugins::new().auth(
                HashcashAuth::new(BITS)
                    .tapehash(gossip_stamp())
                    .stamp_outgoing(false),
            ),
        ),
    );
    let server = start(router).await;
    let conn = TcpClient::new().connect(server.addr).await.unwrap();
    let post = |text: &str| Message::new(MessageType::REQUEST_URI, "post", text.to_owned());

    let good = stamping(HashcashAuth::new(BITS).tapehash(gossip_stamp()));
    let reply = within(
        WAIT,
        "a tapehash-stamped post",
        conn.call_with(post("hello"), &good),
    )
    .await
    .unwrap();
    assert_eq!(reply.message_type, MessageType::OK);
    assert_eq!(reply.content().as_ref(), b"hello");

    let others: [(&str, MakeAuth); 2] = [
        ("SHA-256", || HashcashAuth::new(BITS)),
        ("tapehash1, code size 65", || {
            HashcashAuth::new(BITS).tapehash(Tapehash::v1(65).unwrap())
        }),
    ];
    let mut accepted = 1;
    for (what, auth) in others {
        // A stamp of another function meets BITS bits by chance with probability 2^-BITS (the
        // start counter is random): such a post is accepted, and counted; another text follows
        // until one is refused (almost always the first).
        let mut refused = false;
        for i in 0..8 {
            let msg = post(&format!("spam {i}"));
            match within(WAIT, what, conn.call_with(msg, &stamping(auth()))).await {
                Err(RequestError::Auth(_)) => {
                    refused = true;
                    break;
                }
                Ok(_) => accepted += 1,
                Err(e) => panic!("{what}: {e}"),
            }
        }
        assert!(refused, "{what} stamps refused");
    }
    assert_eq!(
        handled.load(Ordering::SeqCst),
        accepted,
        "refused posts never reach the handler"
    );
    conn.close().await;
    server.stop().await;
}
