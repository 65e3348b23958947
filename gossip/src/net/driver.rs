//! The driver: one task that owns the protocol core and the bulletin host, feeds them what
//! arrives (protocol messages, lost links, deadlines, the application's commands) with `now`, and
//! carries out what they ask (messages onto links, events and deliveries to the application).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use netaio::bytes::Bytes;
use netaio::{Message, ServerHandle};
use rand::rngs::SmallRng;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::GOSSIP;
use super::event::{
    Delivery, GossipEvent, NodeStats, PublishError, PublishOutcome, SubscribeError,
};
use super::inbound::Inbound;
use super::link::{self, LinkConfig, LinkEvent, LinkHandle};
use super::subscription::{Subscribers, Subscription};
use crate::bulletin::Bulletin;
use crate::host::BulletinHost;
use crate::ids::{BulletinId, TopicId};
use crate::policy::VerifiedBulletin;
use crate::proto::{self, Event, InEvent, MessageId, Output, Protocol, Verdict, wire};
use crate::subscriptions::{DeliveryCodeChanged, Subscriptions};

/// What the application asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Join(SocketAddr),
    Subscribe(
        TopicId,
        oneshot::Sender<Result<Subscription, SubscribeError>>,
    ),
    Unsubscribe(TopicId, oneshot::Sender<bool>),
    Publish(
        VerifiedBulletin,
        oneshot::Sender<Result<PublishOutcome, PublishError>>,
    ),
    Bulletin(BulletinId, oneshot::Sender<Option<Bulletin>>),
    Held(TopicId, oneshot::Sender<Vec<BulletinId>>),
    Stats(oneshot::Sender<NodeStats>),
    Subscriptions(oneshot::Sender<Subscriptions>),
    RotateDeliveryCode(oneshot::Sender<DeliveryCodeChanged>),
    Release(BulletinId, Verdict, oneshot::Sender<bool>),
    Shutdown(oneshot::Sender<()>),
}

/// The channels and settings a driver is made of (see `GossipNodeBuilder::bind`).
pub(crate) struct Parts {
    pub(crate) proto: Protocol<SocketAddr, SmallRng>,
    pub(crate) host: BulletinHost,
    pub(crate) subscriptions: Subscriptions,
    pub(crate) subscribers: Subscribers,
    pub(crate) link_config: Arc<LinkConfig>,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: broadcast::Sender<GossipEvent>,
    pub(crate) neighbors: watch::Sender<Vec<SocketAddr>>,
    pub(crate) malformed: Arc<AtomicU64>,
    pub(crate) server: ServerHandle,
    pub(crate) serving: JoinHandle<()>,
    pub(crate) bootstrap: Vec<SocketAddr>,
    pub(crate) linger: Duration,
    pub(crate) max_links: usize,
}

pub(crate) struct Driver {
    proto: Protocol<SocketAddr, SmallRng>,
    host: BulletinHost,
    subscriptions: Subscriptions,
    subscribers: Subscribers,
    link_config: Arc<LinkConfig>,
    links: HashMap<SocketAddr, LinkHandle>,
    tasks: JoinSet<()>,
    generation: u64,
    link_tx: mpsc::Sender<LinkEvent>,
    link_rx: mpsc::Receiver<LinkEvent>,
    inbound: mpsc::Receiver<Inbound>,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<GossipEvent>,
    neighbors: watch::Sender<Vec<SocketAddr>>,
    malformed: Arc<AtomicU64>,
    server: ServerHandle,
    serving: JoinHandle<()>,
    bootstrap: Vec<SocketAddr>,
    linger: Duration,
    max_links: usize,
    /// Peers a link was refused to in this flush (too many links).
    unreachable: Vec<SocketAddr>,
}

/// The protocol's clock: tokio's, so that tests can pause it.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// The bulletins' clock: Unix seconds.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A protocol message as a netaio message (type [`GOSSIP`], no uri).
fn frame(message: &proto::Message<SocketAddr>) -> Message {
    Message::new(GOSSIP, Bytes::new(), wire::to_bytes(message))
}

impl Driver {
    pub(crate) fn new(parts: Parts) -> Self {
        // Link events are bounded by the links (at most one `Drained` and one `Lost` each in
        // flight), and a link waits when the queue is full.
        let (link_tx, link_rx) = mpsc::channel(2 * parts.max_links + 16);
        Self {
            proto: parts.proto,
            host: parts.host,
            subscriptions: parts.subscriptions,
            subscribers: parts.subscribers,
            link_config: parts.link_config,
            links: HashMap::new(),
            tasks: JoinSet::new(),
            generation: 0,
            link_tx,
            link_rx,
            inbound: parts.inbound,
            commands: parts.commands,
            events: parts.events,
            neighbors: parts.neighbors,
            malformed: parts.malformed,
            server: parts.server,
            serving: parts.serving,
            bootstrap: parts.bootstrap,
            linger: parts.linger,
            max_links: parts.max_links,
            unreachable: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        let now = now();
        let topics: Vec<TopicId> = self.subscriptions.topics().copied().collect();
        for topic in topics {
            if let Err(e) = self.proto.subscribe(now, topic.into()) {
                tracing::warn!(?topic, error = %e, "default topic not followed");
            }
        }
        for peer in std::mem::take(&mut self.bootstrap) {
            self.proto.join(now, peer);
        }
        self.flush();

        let mut sweep = tokio::time::interval(
            self.linger
                .clamp(Duration::from_millis(100), Duration::from_secs(5)),
        );
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<std::time::Instant> = None;
        loop {
            let deadline = self.proto.poll_timeout();
            if deadline != armed
                && let Some(at) = deadline
            {
                timer.as_mut().reset(Instant::from_std(at));
            }
            armed = deadline;
            // Commands first, then links, then deadlines, then peers' messages: a flood of
            // messages cannot hold up the deadlines or the application.
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(c) => self.command(c),
                    None => {
                        // Every handle was dropped: stop as a process that exits does, without
                        // telling the neighbours (their connections to this node close). The
                        // links close their connections on their own (a netaio connection
                        // outlives its handles until closed).
                        self.links.clear();
                        self.tasks.detach_all();
                        self.server.shutdown();
                        return;
                    }
                },
                Some(event) = self.link_rx.recv() => self.link_event(event),
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.handle(InEvent::Timeout);
                }
                _ = sweep.tick() => self.sweep(),
                Some(inbound) = self.inbound.recv() => {
                    let Inbound { from, message, _bytes } = inbound;
                    tracing::trace!(peer = %from, kind = message.kind(), "received");
                    self.handle(InEvent::Message { from, message });
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
    }

    /// Feeds the protocol one input with the current time, then carries out its outputs.
    fn handle(&mut self, event: InEvent<SocketAddr>) {
        self.host.set_now(unix_now());
        self.proto.handle(now(), event, &mut self.host);
        self.flush();
    }

    fn flush(&mut self) {
        loop {
            while let Some(output) = self.proto.poll_output() {
                match output {
                    Output::Transmit(peer) => self.transmit(peer),
                    // The link is closed by the sweep once idle for `linger`: the peer may
                    // become a neighbour again, or need an answer, in the meantime.
                    Output::Disconnect(_) => {}
                    Output::Event(event) => self.event(event),
                }
            }
            // Peers no link could be opened to: for the protocol, a failed dial.
            let Some(peer) = self.unreachable.pop() else {
                break;
            };
            self.proto
                .handle(now(), InEvent::ConnectionLost(peer), &mut self.host);
        }
        let neighbors = self.proto.neighbors();
        self.neighbors.send_if_modified(|v| {
            let changed = v.as_slice() != neighbors;
            if changed {
                *v = neighbors.to_vec();
            }
            changed
        });
    }

    fn transmit(&mut self, peer: SocketAddr) {
        if !self.links.contains_key(&peer) {
            if self.links.len() >= self.max_links && !self.evict_link() {
                tracing::warn!(%peer, max = self.max_links, "too many links: not connecting");
                self.unreachable.push(peer);
                return;
            }
            self.generation += 1;
            let handle = link::spawn(
                &self.link_config,
                peer,
                self.generation,
                self.link_tx.clone(),
                &mut self.tasks,
            );
            self.links.insert(peer, handle);
        }
        self.pump(peer);
    }

    /// Moves the peer's queued messages onto its link while the link has room.
    fn pump(&mut self, peer: SocketAddr) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        loop {
            let permit = match link.tx.try_reserve() {
                Ok(permit) => permit,
                Err(TrySendError::Full(())) => {
                    // Flag first, then look again: the link either sees the flag when it next
                    // takes a message, or had made room already.
                    link.blocked.store(true, Ordering::Release);
                    match link.tx.try_reserve() {
                        Ok(permit) => permit,
                        Err(_) => return,
                    }
                }
                // The task ended: its `Lost` event is on the way.
                Err(TrySendError::Closed(())) => return,
            };
            let Some(message) = self.proto.poll_transmit(&peer) else {
                return;
            };
            tracing::trace!(%peer, kind = message.kind(), "send");
            permit.send(frame(&message));
            link.last_used = Instant::now();
        }
    }

    /// Closes the least recently used link to a peer that is not a neighbour and has nothing
    /// queued; whether there was one.
    fn evict_link(&mut self) -> bool {
        let neighbors = self.proto.neighbors();
        let victim = self
            .links
            .iter()
            .filter(|(p, l)| {
                !neighbors.contains(p)
                    && self.proto.queued(p) == 0
                    && l.tx.capacity() == l.tx.max_capacity()
            })
            .min_by_key(|(_, l)| l.last_used)
            .map(|(p, _)| *p);
        victim.is_some_and(|p| self.links.remove(&p).is_some())
    }

    fn link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Drained { peer, generation } => {
                if self.is_current(&peer, generation) {
                    self.pump(peer);
                }
            }
            LinkEvent::Lost {
                peer,
                generation,
                error,
            } => {
                if self.is_current(&peer, generation) {
                    tracing::debug!(%peer, %error, "connection lost");
                    self.emit(GossipEvent::LinkLost {
                        peer,
                        reason: error.to_string(),
                    });
                    self.links.remove(&peer);
                    self.handle(InEvent::ConnectionLost(peer));
                }
            }
        }
    }

    fn is_current(&self, peer: &SocketAddr, generation: u64) -> bool {
        self.links
            .get(peer)
            .is_some_and(|l| l.generation == generation)
    }

    /// Closes links to peers that are not neighbours, have nothing queued and were idle for
    /// `linger`; drops expired bulletins.
    fn sweep(&mut self) {
        self.host.set_now(unix_now());
        self.host.expire();
        let now = Instant::now();
        let (proto, linger) = (&self.proto, self.linger);
        let neighbors = proto.neighbors();
        self.links.retain(|p, l| {
            neighbors.contains(p)
                || proto.queued(p) > 0
                || l.tx.capacity() < l.tx.max_capacity()
                || now.duration_since(l.last_used) < linger
        });
    }

    fn emit(&self, event: GossipEvent) {
        // No receiver is fine; a receiver too far behind loses the oldest (its `Lagged`).
        let _ = self.events.send(event);
    }

    fn event(&mut self, event: Event<SocketAddr>) {
        match event {
            Event::Received {
                from,
                message,
                fetched,
            } => match self.host.take_delivered() {
                Some(bulletin) if MessageId::from(bulletin.id()) == message.id => {
                    self.subscribers.deliver(Delivery {
                        bulletin,
                        from,
                        fetched,
                        held: false,
                        hops: message.hops,
                    });
                }
                _ => tracing::warn!(id = ?message.id, "delivered message not kept by the host"),
            },
            Event::Held {
                from,
                message,
                fetched,
            } => match self.host.take_validated(&message.id) {
                Some(bulletin) => self.subscribers.deliver(Delivery {
                    bulletin,
                    from,
                    fetched,
                    held: true,
                    hops: message.hops,
                }),
                None => tracing::warn!(id = ?message.id, "held message not kept by the host"),
            },
            Event::Discarded { peer, id } => self.emit(GossipEvent::Discarded {
                peer,
                bulletin: id.into(),
            }),
            Event::NeighborUp(p) => self.emit(GossipEvent::NeighborUp(p)),
            Event::NeighborDown(p) => self.emit(GossipEvent::NeighborDown(p)),
            Event::SlowPeer { peer, dropped } => self.emit(GossipEvent::SlowPeer { peer, dropped }),
            Event::PeerBanned { peer, id } => self.emit(GossipEvent::PeerBanned {
                peer,
                bulletin: id.into(),
            }),
        }
    }

    fn command(&mut self, command: Command) {
        let now = now();
        self.host.set_now(unix_now());
        match command {
            Command::Join(peer) => self.proto.join(now, peer),
            Command::Subscribe(topic, reply) => {
                let _ = reply.send(self.subscribe(now, topic));
            }
            Command::Unsubscribe(topic, reply) => {
                let was = self.subscriptions.unsubscribe(&topic);
                let was = self.proto.unsubscribe(now, &topic.into()) || was;
                self.subscribers.remove(&topic);
                let _ = reply.send(was);
            }
            Command::Publish(bulletin, reply) => {
                let _ = reply.send(self.publish(now, bulletin));
            }
            Command::Bulletin(id, reply) => {
                let _ = reply.send(self.host.store().get(&id).cloned());
            }
            Command::Held(topic, reply) => {
                let _ = reply.send(self.host.store().ids(&topic));
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            Command::Subscriptions(reply) => {
                let _ = reply.send(self.subscriptions.clone());
            }
            Command::RotateDeliveryCode(reply) => {
                let changed = self.subscriptions.rotate_delivery_code();
                self.proto.unsubscribe(now, &changed.old_topic.into());
                if let Err(e) = self.proto.subscribe(now, changed.new_topic.into()) {
                    tracing::warn!(error = %e, "new delivery topic not followed");
                }
                self.subscribers.remove(&changed.old_topic);
                self.emit(GossipEvent::DeliveryCodeChanged(changed.clone()));
                let _ = reply.send(changed);
            }
            Command::Release(id, verdict, reply) => {
                let _ = reply.send(self.proto.release(
                    now,
                    &MessageId::from(id),
                    verdict,
                    &mut self.host,
                ));
            }
            Command::Shutdown(_) => {}
        }
        self.flush();
    }

    fn subscribe(
        &mut self,
        now: std::time::Instant,
        topic: TopicId,
    ) -> Result<Subscription, SubscribeError> {
        let max = self
            .subscriptions
            .get_max_topics()
            .min(self.proto.config().get_max_topics());
        let added = self
            .subscriptions
            .subscribe(topic)
            .map_err(|_| SubscribeError::TooMany { max })?;
        if let Err(proto::SubscribeError::TooMany { .. }) = self.proto.subscribe(now, topic.into())
        {
            if added {
                self.subscriptions.unsubscribe(&topic);
            }
            return Err(SubscribeError::TooMany { max });
        }
        Ok(self.subscribers.add(topic))
    }

    fn publish(
        &mut self,
        now: std::time::Instant,
        bulletin: VerifiedBulletin,
    ) -> Result<PublishOutcome, PublishError> {
        let gossip = BulletinHost::gossip(&bulletin);
        let id = bulletin.id();
        // Stored first, so that a node with no neighbour yet offers it by anti-entropy later.
        if let Err(e) = self.host.insert_own(bulletin) {
            tracing::debug!(?id, error = %e, "own bulletin not stored");
        }
        let sent = self
            .proto
            .publish(now, gossip.topic, gossip.id, gossip.payload)?;
        Ok(PublishOutcome { id, sent })
    }

    fn stats(&self) -> NodeStats {
        let mut stats = NodeStats::default();
        stats.protocol = self.proto.stats().clone();
        stats.neighbors = self.proto.neighbors().to_vec();
        stats.passive = self.proto.passive().to_vec();
        stats.stored = self.host.store().len();
        stats.stored_bytes = self.host.store().bytes();
        stats.links = self.links.len();
        stats.malformed = self.malformed.load(Ordering::Relaxed);
        stats.subscriber_drops = self.subscribers.drops();
        stats
    }

    /// Leaves the swarm: neighbours are told, links flushed and closed, the server stopped, all
    /// within the handshake timeout (twice).
    async fn shutdown(&mut self) {
        self.proto.leave(now());
        self.flush();
        // Dropping a link's sender makes it send what it holds, then close.
        self.links.clear();
        let deadline = Instant::now() + self.link_config.handshake_timeout;
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, self.tasks.join_next()).await {}
        self.tasks.abort_all();
        self.server.shutdown();
        let deadline = Instant::now() + self.link_config.handshake_timeout;
        let _ = tokio::time::timeout_at(deadline, &mut self.serving).await;
    }
}
