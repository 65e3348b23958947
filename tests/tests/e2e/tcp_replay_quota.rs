//! Issue 12, defect 7: the replay cache was shared by all peers, so one peer with the key that
//! sent faster than the cache holds made the server refuse every other peer's requests
//! (`CacheFull`). Now, when the cache is full, the sender holding the most nonces makes room: the
//! busy peer is held back, and the others are served.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::time::Duration;

use netaio::plugin::{Freshness, HmacAuth};
use netaio::{RequestError, SendError, TcpClient, TcpServer};
use netaio_tests::{ECHO, WAIT, echo_router, start_with, within};

/// Every clock in this test: one second that never ends, so every nonce is from the same
/// second and nothing expires or can be forgotten to make room.
const NOW: u64 = 1_700_000_000;

fn auth(capacity: usize) -> HmacAuth {
    HmacAuth::new(b"shared key").freshness(
        Freshness::new(Duration::from_secs(60))
            .capacity(capacity)
            .clock(Arc::new(|| NOW)),
    )
}

fn client() -> TcpClient {
    TcpClient::builder().auth(auth(1_000)).build()
}

#[tokio::test]
async fn a_peer_sending_faster_than_the_replay_cache_holds_does_not_lock_out_the_others() {
    // Room for 100 nonces in the server's cache.
    let server = start_with(TcpServer::builder().router(echo_router()).auth(auth(100))).await;

    // The busy peer sends 150 requests within the second: more than the whole cache.
    let busy = client().connect(server.addr).await.unwrap();
    let mut served = 0;
    let mut refused = 0;
    for i in 0..150 {
        match within(WAIT, "busy request", busy.request(ECHO, format!("{i}"))).await {
            Ok(_) => served += 1,
            Err(RequestError::Auth(_)) => refused += 1,
            // Refused frames in a row end the connection (`max_auth_failures`, default 3).
            Err(RequestError::Send(SendError::Closed)) if refused > 0 => break,
            Err(e) => panic!("busy request {i}: {e}"),
        }
    }
    assert_eq!(served, 100, "alone, the busy peer may fill the cache");
    assert!(refused >= 1, "and is refused beyond it");

    // Three other peers, each at a normal rate, are all served.
    for name in 0..3 {
        let calm = client().connect(server.addr).await.unwrap();
        for i in 0..10 {
            let reply = within(
                WAIT,
                "calm request",
                calm.request(ECHO, format!("{name}/{i}")),
            )
            .await
            .unwrap_or_else(|e| panic!("calm peer {name}, request {i}: {e}"));
            assert_eq!(reply.content().as_ref(), format!("{name}/{i}").as_bytes());
        }
    }
    server.stop().await;
}
