//! The gossip module API on 127.0.0.1: every malformed input closes only its own connection.

use std::time::Duration;

use bytes::Bytes;
use netaiod::codec::ApiMessage;
use netaiod::{ApiClient, Daemon, DaemonConfig};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

async fn daemon() -> Daemon {
    let (config, _) = DaemonConfig::parse(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\nvalidation_timeout = 2\n",
    )
    .unwrap();
    Daemon::start(config).await.unwrap()
}

/// Waits for the daemon to close `client` (end of stream, or a reset).
async fn closed(client: &mut ApiClient, case: &str) {
    let end = timeout(LIMIT, client.recv()).await;
    assert!(
        matches!(end, Ok(Ok(None)) | Ok(Err(_))),
        "{case}: not closed: {end:?}"
    );
}

#[tokio::test]
async fn each_malformed_input_closes_only_its_own_connection() {
    let d = daemon().await;
    let addr = d.api_addrs()[0];
    let mut subscriber = ApiClient::connect(addr).await.unwrap();
    subscriber.notify(1).await.unwrap();
    let cases: [(&str, &[u8]); 6] = [
        ("size below the header", &[0, 3, 1, 0xf4]),
        ("NOTIFY of size 9", &[0, 9, 1, 0xf5, 0, 0, 0, 1, 0]),
        ("VALIDATION of size 7", &[0, 7, 1, 0xf7, 0, 0, 0]),
        ("ANNOUNCE of size 6", &[0, 6, 1, 0xf4, 0, 0]),
        ("unknown type 504", &[0, 8, 1, 0xf8, 0, 0, 0, 0]),
        (
            "NOTIFICATION sent to the daemon",
            &[0, 8, 1, 0xf6, 0, 1, 0, 1],
        ),
    ];
    for (case, bytes) in cases {
        let mut bad = ApiClient::connect(addr).await.unwrap();
        bad.notify(1).await.unwrap();
        bad.send_raw(bytes).await.unwrap();
        closed(&mut bad, case).await;
    }
    // A validation for an id never notified.
    let mut bad = ApiClient::connect(addr).await.unwrap();
    bad.validate(77, true).await.unwrap();
    closed(&mut bad, "validation for an unknown id").await;

    // The first connection is still served, its subscription intact: another module's
    // announce of type 1 reaches it.
    let mut announcer = ApiClient::connect(addr).await.unwrap();
    announcer
        .announce(0, 1, Bytes::from_static(b"still here"))
        .await
        .unwrap();
    let got = timeout(LIMIT, subscriber.recv()).await.unwrap().unwrap();
    assert!(
        matches!(got, Some(ApiMessage::Notification { data_type: 1, ref data, .. }) if data == "still here"),
        "{got:?}"
    );
    d.shutdown().await;
}
