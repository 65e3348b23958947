//! Helpers of the network tests: nodes on 127.0.0.1, and waits that are all bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use netaio_gossip::net::{Delivery, GossipEvent, Subscription};
use netaio_gossip::{GossipNode, GossipNodeBuilder};
use tokio::sync::broadcast;

/// The longest a step may wait for something that should happen within a few round trips.
pub const WAIT: Duration = Duration::from_secs(10);

/// Log to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Awaits `fut`, panicking with `what` after `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// A node on 127.0.0.1, any port.
pub async fn node(builder: GossipNodeBuilder) -> GossipNode {
    init_tracing();
    builder
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .bind()
        .await
        .expect("bind")
}

/// Waits until `pred` holds for the node's neighbours.
pub async fn neighbors_until(
    node: &GossipNode,
    what: &str,
    limit: Duration,
    pred: impl FnMut(&Vec<SocketAddr>) -> bool,
) {
    let mut watch = node.watch_neighbors();
    within(limit, what, watch.wait_for(pred))
        .await
        .expect("node running");
}

/// The next event `pred` accepts.
pub async fn event(
    events: &mut broadcast::Receiver<GossipEvent>,
    what: &str,
    limit: Duration,
    mut pred: impl FnMut(&GossipEvent) -> bool,
) -> GossipEvent {
    within(limit, what, async {
        loop {
            match events.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("events closed: {what}"),
            }
        }
    })
    .await
}

/// The next delivery.
pub async fn delivery(sub: &mut Subscription, what: &str, limit: Duration) -> Delivery {
    within(limit, what, sub.recv())
        .await
        .unwrap_or_else(|| panic!("subscription ended: {what}"))
}
