//! [`Daemon`]: the gossip module API served on netaio-gossip.
//!
//! ```text
//!   API connections ── messages (bounded) ──▶ ┌────────┐ ── publish / follow / release ──▶ GossipNode
//!   (a task each)   ◀── notifications ───────│  loop  │ ◀── held deliveries (bounded) ──  (netaio TCP to peers)
//!                       (bounded per conn)    │ + Core │ ◀── discarded (events) ───────
//!                                             └────────┘
//! ```
//!
//! One task owns the [`Core`] and carries out its actions; each API connection has a task that
//! reads its messages and writes its notifications. Peers' data of a followed type arrives held
//! (the gossip protocol's `hold_subscribed`): it is released for forwarding once the core says
//! so; types no local module registered are not relayed (`relay_unsubscribed` off).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use netaio_gossip::proto::{Config as ProtoConfig, Verdict};
use netaio_gossip::{BulletinId, Delivery, GossipEvent, GossipNode, StoreConfig, TopicId};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::codec::{ApiMessage, read_message};
use crate::config::{DaemonConfig, HostPort};
use crate::core::{Action, ConnId, Core, CoreConfig, forwards};
use crate::directory::Directory;
use crate::identity::{HostKeyError, load_or_create};
use crate::native::{NOTIFICATION_URI, Native, NativeConfig, NativeError};
use crate::search::peers_to_search;
use netaio::tcp::ConnectionId;
use netaio::{MessageType, ServerHandle};

/// API connections served at once; more are closed on accept.
pub const MAX_API_CONNECTIONS: usize = 64;
/// Notifications waiting to be written to one API connection (each at most 64 KiB, so at most
/// 4 MiB); a module that lets it fill is disconnected.
pub const NOTIFICATION_QUEUE: usize = 64;
/// Announces being published (minted and sent) at once; more are dropped with a warning.
pub const MAX_PUBLISHING: usize = 64;
/// Peers whose discarded items are counted.
const MAX_COUNTED_PEERS: usize = 1024;

/// The gossip topic of an API data type.
pub fn topic_of(data_type: u16) -> TopicId {
    let mut descriptor = *b"netaiod/type/\0\0";
    let [hi, lo] = data_type.to_be_bytes();
    descriptor[13] = hi;
    descriptor[14] = lo;
    TopicId::from_descriptor(&descriptor)
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The host key.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// An address did not resolve.
    #[error("cannot resolve {addr}: {reason}")]
    Resolve {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The API address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    ListenApi {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The gossip node did not start.
    #[error(transparent)]
    Gossip(#[from] netaio_gossip::net::BindError),
    /// The native API did not start.
    #[error(transparent)]
    Native(#[from] NativeError),
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    api_addrs: Vec<SocketAddr>,
    native: Option<Native>,
    directory: Arc<Directory>,
    directory_task: Option<JoinHandle<()>>,
    node: GossipNode,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn resolve(addr: &HostPort) -> Result<Vec<SocketAddr>, StartError> {
    let err = |reason: String| StartError::Resolve {
        addr: addr.to_string(),
        reason,
    };
    let mut all: Vec<SocketAddr> = tokio::net::lookup_host(addr.to_lookup())
        .await
        .map_err(|e| err(e.to_string()))?
        .collect();
    all.sort();
    all.dedup();
    if all.is_empty() {
        return Err(err("no address".into()));
    }
    Ok(all)
}

/// One address of a name for the swarm: IPv4 first (a node's address is its identity, so one
/// name must give every node the same pick).
fn pick(addrs: &[SocketAddr]) -> Option<SocketAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

impl Daemon {
    /// Starts the daemon: the gossip node on `p2p_address`, the API on every address
    /// `api_address` resolves to.
    pub async fn start(config: DaemonConfig) -> Result<Self, StartError> {
        let identity = match &config.hostkey {
            Some(path) => load_or_create(path)?,
            None => {
                tracing::warn!("no hostkey configured: a new identity for this run");
                netaio_asymmetric::Identity::generate()
            }
        };
        let p2p =
            pick(&resolve(&config.p2p_address).await?).ok_or_else(|| StartError::Resolve {
                addr: config.p2p_address.to_string(),
                reason: "no address".into(),
            })?;
        let proto = ProtoConfig::default()
            .active_view(config.degree)
            .passive_view(config.degree.max(15) * 2)
            .shuffle_interval(config.search_cooldown)
            .hold_subscribed(true)
            .relay_unsubscribed(false);
        let mut builder = GossipNode::builder()
            .listen(p2p)
            .identity(identity.clone())
            .config(proto)
            .store(StoreConfig::default().max_bulletins(config.cache_size))
            .max_connections(config.max_connections)
            .admission_difficulty(config.admission_difficulty);
        let mut known = Vec::new();
        for peer in config.bootstrapper.iter().chain(&config.known_peers) {
            match resolve(peer).await.map(|a| pick(&a)) {
                Ok(Some(addr)) if addr != p2p => {
                    known.push(addr);
                    builder = builder.bootstrap(addr);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%peer, error = %e, "known peer skipped"),
            }
        }
        let mut listeners = Vec::new();
        for addr in resolve(&config.api_address).await? {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::ListenApi { addr, source })?;
            listeners.push(listener);
        }
        let api_addrs = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let node = builder.bind().await?;
        // The loop's inbox: both APIs' connections.
        let api = mpsc::channel::<ApiEvent>(1024);
        let directory = Arc::new(Directory::new());
        let native = match &config.native {
            None => None,
            Some(section) => {
                let one = |hp: &HostPort, addrs: Vec<SocketAddr>| {
                    pick(&addrs).ok_or_else(|| StartError::Resolve {
                        addr: hp.to_string(),
                        reason: "no address".into(),
                    })
                };
                let address = match &section.address {
                    Some(a) => Some(one(a, resolve(a).await?)?),
                    None => None,
                };
                let peer_address =
                    one(&section.peer_address, resolve(&section.peer_address).await?)?;
                let relay = match &section.relay {
                    Some(r) => Some(one(r, resolve(r).await?)?),
                    None => None,
                };
                Some(
                    Native::start(
                        &NativeConfig {
                            address,
                            socket: section.socket.clone(),
                            socket_mode: section.socket_mode,
                            peer_address,
                            call_timeout: section.call_timeout,
                            allowed_uids: section.allowed_uids.clone(),
                            relay,
                            admission_difficulty: config.admission_difficulty,
                        },
                        &identity,
                        node.clone(),
                        api.0.clone(),
                        directory.clone(),
                    )
                    .await?,
                )
            }
        };
        // With a native API, the daemon files other daemons' peer-call addresses and tells its
        // own (on the unspecified address: the IP peers reach the gossip node at).
        let directory_task = native.as_ref().map(|n| {
            let mut addr = n.peer_addr();
            if addr.ip().is_unspecified() {
                addr.set_ip(node.addr().ip());
            }
            tokio::spawn(crate::directory::run(
                node.clone(),
                identity.clone(),
                addr,
                directory.clone(),
            ))
        });
        tracing::info!(p2p = %node.addr(), api = ?api_addrs, "netaiod started");
        let core = Core::new(
            CoreConfig::default().validation_timeout(config.validation_timeout),
            SmallRng::from_rng(&mut rand::rng()),
        );
        let (stop, stopped) = watch::channel(false);
        let search = Search {
            known,
            min: config.min_connections,
            cooldown: config.search_cooldown,
        };
        let task = tokio::spawn(run(api, node.clone(), core, search, listeners, stopped));
        Ok(Self {
            api_addrs,
            native,
            directory,
            directory_task,
            node,
            stop,
            task,
        })
    }

    /// The addresses the API listens on.
    pub fn api_addrs(&self) -> &[SocketAddr] {
        &self.api_addrs
    }

    /// The gossip node.
    pub fn node(&self) -> &GossipNode {
        &self.node
    }

    /// The native API, when configured (`[native]`).
    pub fn native(&self) -> Option<&Native> {
        self.native.as_ref()
    }

    /// Peer ids → peer-call addresses learnt from other daemons (filled with a native API).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Stops serving, leaves the swarm and waits for the tasks.
    pub async fn shutdown(self) {
        if let Some(t) = &self.directory_task {
            t.abort();
        }
        if let Some(native) = &self.native {
            native.shutdown().await;
        }
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.node.shutdown().await;
    }
}

/// Where a connection's notifications go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// A gossip module API connection's queue (its task writes it to the socket), and its
    /// kill switch: dropped, the task closes the socket at once, even while a write is stuck on
    /// a module that does not read (dropping the queue alone would wait for that write).
    Api {
        /// The queue.
        queue: mpsc::Sender<Bytes>,
        /// The kill switch (only ever dropped).
        _kill: oneshot::Sender<()>,
    },
    /// A native API connection: netaio messages on the native server.
    Native(ServerHandle, ConnectionId),
}

/// What the connections tell the daemon's loop.
#[derive(Debug)]
pub(crate) enum ApiEvent {
    Opened(ConnId, Sink),
    Message(ConnId, ApiMessage),
    /// A native subscription without validation.
    Unvalidated(ConnId, u16),
    Closed(ConnId),
}

/// A new connection number, unique in the process across both APIs.
pub(crate) fn next_conn_id() -> ConnId {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The `min_connections` search's settings.
struct Search {
    known: Vec<SocketAddr>,
    min: usize,
    cooldown: std::time::Duration,
}

async fn run(
    (api_tx, mut api_rx): (mpsc::Sender<ApiEvent>, mpsc::Receiver<ApiEvent>),
    node: GossipNode,
    mut core: Core<BulletinId, SmallRng>,
    search: Search,
    listeners: Vec<TcpListener>,
    mut stopped: watch::Receiver<bool>,
) {
    let (held_tx, mut held_rx) = mpsc::channel::<(u16, Delivery)>(256);
    let mut events = node.events();
    let slots = Arc::new(Semaphore::new(MAX_API_CONNECTIONS));
    let publishing = Arc::new(Semaphore::new(MAX_PUBLISHING));
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        accept_tasks.push(tokio::spawn(accept(
            listener,
            api_tx.clone(),
            slots.clone(),
        )));
    }
    let mut conns: HashMap<ConnId, Sink> = HashMap::new();
    let mut discarded: HashMap<SocketAddr, u64> = HashMap::new();
    let mut search_timer = tokio::time::interval_at(
        tokio::time::Instant::now() + search.cooldown,
        search.cooldown,
    );
    search_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    loop {
        let deadline = core.next_deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            event = api_rx.recv() => match event {
                Some(ApiEvent::Opened(id, tx)) => {
                    conns.insert(id, tx);
                    core.connected(id);
                }
                Some(ApiEvent::Message(id, m)) => core.message(now(), id, m),
                Some(ApiEvent::Unvalidated(id, t)) => core.subscribe_unvalidated(id, t),
                Some(ApiEvent::Closed(id)) => {
                    conns.remove(&id);
                    core.closed(id);
                }
                None => break,
            },
            Some((data_type, delivery)) = held_rx.recv() => {
                if delivery.held {
                    // The content: the announcer's ttl, then the data.
                    let content = delivery.bulletin.bulletin().content().clone();
                    let id = delivery.bulletin.id();
                    match content.first() {
                        Some(&ttl) => {
                            let forward = forwards(ttl, delivery.hops);
                            core.from_peer(now(), id, data_type, content.slice(1..), forward);
                        }
                        None => {
                            tracing::warn!(peer = %delivery.from, "item without a ttl: discarded");
                            let _ = node.release(id, Verdict::Reject).await;
                        }
                    }
                }
            }
            event = events.recv() => match event {
                Ok(GossipEvent::NeighborUp(peer)) => tracing::info!(%peer, "neighbour up"),
                Ok(GossipEvent::NeighborDown(peer)) => tracing::info!(%peer, "neighbour down"),
                Ok(GossipEvent::Discarded { peer, bulletin }) => {
                    let known = discarded.len() < MAX_COUNTED_PEERS || discarded.contains_key(&peer);
                    let count = if known {
                        let n = discarded.entry(peer).or_default();
                        *n += 1;
                        *n
                    } else {
                        0
                    };
                    tracing::warn!(%peer, ?bulletin, count, "invalid data from peer discarded");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                _ => {}
            },
            () = sleep_until(deadline) => core.tick(now()),
            _ = search_timer.tick() => {
                let neighbors = node.neighbors();
                if neighbors.len() < search.min {
                    let mut known = search.known.clone();
                    if let Ok(stats) = node.stats().await {
                        known.extend(stats.passive);
                    }
                    let picks = peers_to_search(node.addr(), &neighbors, &known, search.min, &mut rng);
                    tracing::info!(neighbours = neighbors.len(), min = search.min, asking = picks.len(), "below min_connections: searching");
                    for peer in picks {
                        let _ = node.join(peer).await;
                    }
                }
            }
            _ = stopped.changed() => break,
        }
        while let Some(action) = core.poll_action() {
            match action {
                Action::Notify { conn, message } => {
                    let Ok(bytes) = message.to_bytes() else {
                        continue;
                    };
                    let full = match conns.get(&conn) {
                        Some(Sink::Api { queue, .. }) => queue.try_send(bytes).is_err(),
                        Some(Sink::Native(server, c)) => {
                            let m = netaio::Message::new(
                                MessageType::NOTIFY_URI,
                                NOTIFICATION_URI,
                                bytes,
                            );
                            server.try_send(*c, &m).is_err()
                        }
                        None => false,
                    };
                    if full {
                        tracing::warn!(
                            conn,
                            "API connection not reading its notifications: closed"
                        );
                        conns.remove(&conn);
                        core.closed(conn);
                    }
                }
                Action::Release {
                    item,
                    valid,
                    forward,
                } => {
                    let verdict = match (valid, forward) {
                        (false, _) => Verdict::Reject,
                        (true, true) => Verdict::Accept,
                        // Valid, its hop budget spent: delivered here, no further.
                        (true, false) => Verdict::Ignore,
                    };
                    if node.release(item, verdict).await.is_err() {
                        break;
                    }
                }
                Action::Publish {
                    data_type,
                    ttl,
                    data,
                } => {
                    let Ok(permit) = publishing.clone().try_acquire_owned() else {
                        tracing::warn!(data_type, "too many announces in progress: dropped");
                        continue;
                    };
                    let node = node.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let mut content = Vec::with_capacity(1 + data.len());
                        content.push(ttl);
                        content.extend_from_slice(&data);
                        match node.publish(topic_of(data_type), content).await {
                            Ok(outcome) => {
                                tracing::debug!(data_type, ttl, sent = ?outcome.sent, "announced")
                            }
                            Err(e) => tracing::warn!(data_type, error = %e, "announce not spread"),
                        }
                    });
                }
                Action::Follow(data_type) => match node.subscribe(topic_of(data_type)).await {
                    Ok(mut subscription) => {
                        tracing::info!(data_type, "data type followed");
                        let tx = held_tx.clone();
                        tokio::spawn(async move {
                            while let Some(d) = subscription.recv().await {
                                if tx.send((data_type, d)).await.is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(e) => tracing::warn!(data_type, error = %e, "data type not followed"),
                },
                Action::Unfollow(data_type) => {
                    tracing::info!(data_type, "data type no longer followed");
                    let _ = node.unsubscribe(topic_of(data_type)).await;
                }
                Action::Close { conn, .. } => {
                    // Dropping its kill switch ends the connection's task, which closes the socket.
                    if let Some(Sink::Native(server, c)) = conns.remove(&conn) {
                        server.disconnect(c);
                    }
                }
            }
        }
    }
    for t in accept_tasks {
        t.abort();
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn accept(listener: TcpListener, events: mpsc::Sender<ApiEvent>, slots: Arc<Semaphore>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%from, "too many API connections: refused");
            continue;
        };
        let id = next_conn_id();
        let events = events.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve(id, stream, events).await;
        });
    }
}

/// One API connection: its messages to the loop, its notifications to the socket.
async fn serve(id: ConnId, stream: TcpStream, events: mpsc::Sender<ApiEvent>) {
    let _ = stream.set_nodelay(true);
    let (tx, mut rx) = mpsc::channel::<Bytes>(NOTIFICATION_QUEUE);
    let (kill, killed) = oneshot::channel::<()>();
    if events
        .send(ApiEvent::Opened(
            id,
            Sink::Api {
                queue: tx,
                _kill: kill,
            },
        ))
        .await
        .is_err()
    {
        return;
    }
    let (mut reader, mut writer) = stream.into_split();
    let read = async {
        loop {
            match read_message(&mut reader).await {
                Ok(Some(m)) => {
                    if events.send(ApiEvent::Message(id, m)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(conn = id, error = %e, "malformed API input: connection closed");
                    break;
                }
            }
        }
    };
    let write = async {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    let dropped = tokio::select! {
        () = read => false,
        () = write => false,
        _ = killed => true,
    };
    if dropped {
        // Disconnected by the daemon (a full queue, a broken rule): reset rather than leave the
        // kernel holding what the module did not read.
        let _ = writer.as_ref().set_zero_linger();
    } else {
        let _ = writer.shutdown().await;
    }
    let _ = events.send(ApiEvent::Closed(id)).await;
}
