//! [`GossipNode`]: the application's handle on a running node.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::builder::GossipNodeBuilder;
use super::driver::{Command, unix_now};
use super::event::{
    GossipEvent, NodeStats, NodeStopped, PublishError, PublishOutcome, SubscribeError,
};
use super::subscription::Subscription;
use crate::bulletin::Bulletin;
use crate::ids::{BulletinId, TopicId};
use crate::policy::BulletinPolicy;
use crate::proto::Verdict;
use crate::subscriptions::{DeliveryCodeChanged, Subscriptions};

/// A gossip node on netaio: it keeps a few neighbours over TCP (HyParView), spreads bulletins to
/// every node subscribed to their topic (Plumtree, with anti-entropy for nodes that were away),
/// and refuses bulletins without a valid proof of work.
///
/// Cheap to clone. [`shutdown`](Self::shutdown) leaves the swarm (neighbours are told);
/// dropping every clone stops the node as a process that exits does: its connections close, and
/// the neighbours notice and replace it.
///
/// ```no_run
/// use netaio_gossip::{GossipNode, TopicId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let node = GossipNode::builder()
///     .listen("127.0.0.1:7001".parse()?)
///     .bootstrap("127.0.0.1:7000".parse()?)
///     .bind()
///     .await?;
/// let news = TopicId::from_descriptor(b"news");
/// let mut subscription = node.subscribe(news).await?;
/// let outcome = node.publish(news, "hello, swarm").await?;
/// println!("{:?}: {:?}", outcome.id, outcome.sent); // Sent { neighbors: 3, .. }, NoNeighbors, …
/// while let Some(delivery) = subscription.recv().await {
///     println!("from {}: {:?}", delivery.from, delivery.bulletin.bulletin().content());
/// }
/// node.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GossipNode {
    inner: Arc<Inner>,
}

/// What `GossipNodeBuilder::bind` hands the node.
pub(crate) struct NodeParts {
    pub(crate) addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) neighbors: watch::Receiver<Vec<SocketAddr>>,
    pub(crate) events: broadcast::Sender<GossipEvent>,
    pub(crate) policy: BulletinPolicy,
    pub(crate) max_minting: usize,
    pub(crate) driver: JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    addr: SocketAddr,
    local_addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    neighbors: watch::Receiver<Vec<SocketAddr>>,
    events: broadcast::Sender<GossipEvent>,
    policy: BulletinPolicy,
    minting: Semaphore,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl GossipNode {
    /// A builder with the defaults.
    pub fn builder() -> GossipNodeBuilder {
        GossipNodeBuilder::default()
    }

    pub(crate) fn new(parts: NodeParts) -> Self {
        Self {
            inner: Arc::new(Inner {
                addr: parts.addr,
                local_addr: parts.local_addr,
                commands: parts.commands,
                neighbors: parts.neighbors,
                events: parts.events,
                policy: parts.policy,
                minting: Semaphore::new(parts.max_minting),
                driver: Mutex::new(Some(parts.driver)),
            }),
        }
    }

    /// The node's address in the swarm (the advertised one): its identity for its peers.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The address the node listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The current neighbours (the active view).
    pub fn neighbors(&self) -> Vec<SocketAddr> {
        self.inner.neighbors.borrow().clone()
    }

    /// The neighbours, to follow their changes (`changed().await`).
    pub fn watch_neighbors(&self) -> watch::Receiver<Vec<SocketAddr>> {
        self.inner.neighbors.clone()
    }

    /// Events from now on: neighbours up and down, slow peers, bans, delivery-code changes. A
    /// receiver that falls more than `event_queue` behind loses the oldest (`Lagged`).
    pub fn events(&self) -> broadcast::Receiver<GossipEvent> {
        self.inner.events.subscribe()
    }

    /// The policy bulletins are minted and checked with.
    pub fn policy(&self) -> &BulletinPolicy {
        &self.inner.policy
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeStopped> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(command(tx))
            .await
            .map_err(|_| NodeStopped)?;
        rx.await.map_err(|_| NodeStopped)
    }

    /// Joins the swarm through `peer` (its advertised address); the bootstrap peers of the
    /// builder are joined at start. Returns once the request is sent: follow
    /// [`watch_neighbors`](Self::watch_neighbors) or [`events`](Self::events) for the result.
    pub async fn join(&self, peer: SocketAddr) -> Result<(), NodeStopped> {
        self.inner
            .commands
            .send(Command::Join(peer))
            .await
            .map_err(|_| NodeStopped)
    }

    /// Follows `topic`: its bulletins are stored, and delivered to the returned subscription as
    /// they arrive (and fetched from the neighbours when they were missed). Subscribing twice
    /// gives two subscriptions.
    pub async fn subscribe(&self, topic: TopicId) -> Result<Subscription, SubscribeError> {
        self.ask(|tx| Command::Subscribe(topic, tx)).await?
    }

    /// Stops following `topic` (its bulletins are still relayed); its subscriptions end. Whether
    /// it was followed.
    pub async fn unsubscribe(&self, topic: TopicId) -> Result<bool, NodeStopped> {
        self.ask(|tx| Command::Unsubscribe(topic, tx)).await
    }

    /// Mints a bulletin of `content` for `topic` (the proof of work runs on a blocking thread,
    /// at most `max_minting` at once), stores it and spreads it. The outcome says whether it was
    /// sent to neighbours (and how many of them subscribe to the topic), or not for want of
    /// neighbours. Publishing the same content twice gives two bulletins.
    pub async fn publish(
        &self,
        topic: TopicId,
        content: impl Into<Bytes>,
    ) -> Result<PublishOutcome, PublishError> {
        let content = content.into();
        let policy = self.inner.policy;
        let minted = {
            let _permit = self
                .inner
                .minting
                .acquire()
                .await
                .map_err(|_| NodeStopped)?;
            // A start anywhere in the non-negative nonces, not below 65,536 as Python's: two
            // bulletins of the same content in the same second then collide once in about
            // 2^31 / (tries per bulletin) publishes rather than once in a few hundred.
            let start = i32::try_from(rand::random::<u32>() >> 1).unwrap_or(0);
            tokio::task::spawn_blocking(move || policy.mint(topic, content, unix_now(), start))
                .await
                .map_err(|_| NodeStopped)??
        };
        self.ask(|tx| Command::Publish(minted, tx)).await?
    }

    /// Spreads a bulletin minted elsewhere (by the Python library, say), after checking it with
    /// this node's policy.
    pub async fn publish_bulletin(
        &self,
        bulletin: Bulletin,
    ) -> Result<PublishOutcome, PublishError> {
        let verified = self.inner.policy.verify(bulletin, unix_now())?;
        self.ask(|tx| Command::Publish(verified, tx)).await?
    }

    /// The stored bulletin with this id.
    pub async fn bulletin(&self, id: BulletinId) -> Result<Option<Bulletin>, NodeStopped> {
        self.ask(|tx| Command::Bulletin(id, tx)).await
    }

    /// The ids of the stored bulletins of `topic`.
    pub async fn held(&self, topic: TopicId) -> Result<Vec<BulletinId>, NodeStopped> {
        self.ask(|tx| Command::Held(topic, tx)).await
    }

    /// The topics followed, with the delivery code and topic.
    pub async fn subscriptions(&self) -> Result<Subscriptions, NodeStopped> {
        self.ask(Command::Subscriptions).await
    }

    /// Replaces the delivery code by a new random one: the node follows the new delivery topic
    /// and no longer the old one (whose subscriptions end). The change is also sent as a
    /// [`GossipEvent::DeliveryCodeChanged`], for the application to tell its contacts.
    pub async fn rotate_delivery_code(&self) -> Result<DeliveryCodeChanged, NodeStopped> {
        self.ask(Command::RotateDeliveryCode).await
    }

    /// The verdict on a bulletin the node holds ([`Delivery::held`](super::Delivery::held),
    /// with the protocol's `hold_subscribed`): [`Verdict::Accept`] stores and forwards it;
    /// [`Verdict::Ignore`] drops it quietly (delivered here, no further: a hop budget of the
    /// application's); [`Verdict::Reject`] drops it and counts it against the neighbour it came
    /// from ([`GossipEvent::Discarded`]). Whether it was held (false once released, or dropped
    /// from a full hold).
    pub async fn release(&self, id: BulletinId, verdict: Verdict) -> Result<bool, NodeStopped> {
        self.ask(|tx| Command::Release(id, verdict, tx)).await
    }

    /// Counters and sizes.
    pub async fn stats(&self) -> Result<NodeStats, NodeStopped> {
        self.ask(Command::Stats).await
    }

    /// Leaves the swarm (the neighbours are told), closes the connections and stops the node,
    /// within twice the handshake timeout. Other clones then get [`NodeStopped`].
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
        let driver = self.inner.driver.lock().ok().and_then(|mut d| d.take());
        if let Some(driver) = driver {
            let _ = driver.await;
        }
    }
}
