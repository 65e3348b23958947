//! [`Grasp`]: a running GRASP node (its builder is [`GraspBuilder`]), and the tasks that move
//! bytes between its sockets and the protocol core.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::asa::Asa;
use super::listener::ObjectiveListener;
use crate::net::interfaces;
use crate::net::sockets::{self, GRASP_LISTEN_PORT};
use crate::net::stream::MessageStream;
use crate::proto::{AsaLocator, Core, CoreConfig, CoreInterface, Family, GraspError, Output};
use crate::wire::DEFAULT_MAX_SIZE;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// No interface to run on (none named exists, or none has the addresses needed).
    #[error("no usable interface{}", if names.is_empty() { String::new() } else { format!(" among {names:?}") })]
    NoInterface {
        /// The interfaces asked for.
        names: Vec<String>,
    },
    /// Neither IPv6 nor IPv4.
    #[error("no address family enabled")]
    NoFamily,
    /// A socket could not be set up.
    #[error("{what}: {source}")]
    Socket {
        /// Which socket.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Builds a [`Grasp`] node; every setting has a default.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let node = netaio_grasp::Grasp::builder().interface("eth0").start().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GraspBuilder {
    names: Vec<String>,
    core: CoreConfig,
    address: Option<Ipv6Addr>,
    port: u16,
    listen_queue: usize,
    max_connections: usize,
    multicast_loop: bool,
}

impl Default for GraspBuilder {
    fn default() -> Self {
        GraspBuilder {
            names: Vec::new(),
            core: CoreConfig::default(),
            address: None,
            port: GRASP_LISTEN_PORT,
            listen_queue: 64,
            max_connections: 256,
            multicast_loop: false,
        }
    }
}

impl GraspBuilder {
    /// Run on this interface (may be repeated; default: every interface that is up, multicast
    /// and not loopback).
    #[must_use]
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        self.names.push(name.into());
        self
    }

    /// Run on IPv6, group `ff02::13` (default true).
    #[must_use]
    pub fn ipv6(mut self, on: bool) -> Self {
        self.core.ipv6 = on;
        self
    }

    /// Run on IPv4, group `224.0.0.119` (default false).
    #[must_use]
    pub fn ipv4(mut self, on: bool) -> Self {
        self.core.ipv4 = on;
        self
    }

    /// DULL mode (default false): link-local only, loop count 1, no relaying.
    #[must_use]
    pub fn dull(mut self, on: bool) -> Self {
        self.core.dull = on;
        self
    }

    /// Relay between interfaces or not (default: when there are several).
    #[must_use]
    pub fn relay(mut self, on: bool) -> Self {
        self.core.relay = Some(on);
        self
    }

    /// Relays per second on average and at once (default 20 and 40).
    #[must_use]
    pub fn relay_rate(mut self, per_second: u32, burst: u32) -> Self {
        self.core.relay_rate = (per_second, burst);
        self
    }

    /// The node's unique-local or global address (default: the first one found on its
    /// interfaces; none: link-local locators).
    #[must_use]
    pub fn address(mut self, a: Ipv6Addr) -> Self {
        self.address = Some(a);
        self
    }

    /// The UDP port of multicast (default 7017, `GRASP_LISTEN_PORT`).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The largest message accepted and sent, unicast and multicast (default and minimum
    /// 2,048 bytes, `GRASP_DEF_MAX_SIZE`; a larger one must be agreed with the peers).
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        let n = bytes.max(DEFAULT_MAX_SIZE);
        self.core.max_unicast = n;
        self.core.max_multicast = n;
        self
    }

    /// Negotiation requests kept per objective while its ASA is busy (default 64). Past that,
    /// new requests wait in the TCP backlog; none is refused.
    #[must_use]
    pub fn listen_queue(mut self, n: usize) -> Self {
        self.listen_queue = n.max(1);
        self
    }

    /// Inbound TCP connections handled at once (default 256); past that they are closed.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Deliver this node's multicasts to other GRASP nodes on the same host too (default
    /// false, as the prototype; each node still ignores its own).
    #[must_use]
    pub fn multicast_loop(mut self, on: bool) -> Self {
        self.multicast_loop = on;
        self
    }

    /// Open the sockets and start the node's tasks on the current tokio runtime.
    pub async fn start(self) -> Result<Grasp, StartError> {
        if !self.core.ipv6 && !self.core.ipv4 {
            return Err(StartError::NoFamily);
        }
        let all = interfaces::system_interfaces().map_err(|source| StartError::Socket {
            what: "listing interfaces".into(),
            source,
        })?;
        let (ifs, found) = interfaces::select(&all, &self.names, self.core.ipv6, self.core.ipv4);
        if ifs.is_empty() {
            return Err(StartError::NoInterface { names: self.names });
        }
        let address = self.address.or(found);
        self.start_on(ifs, address).await
    }

    /// Start on these interfaces with this address (what [`GraspBuilder::start`] found).
    pub async fn start_on(
        mut self,
        interfaces: Vec<CoreInterface>,
        address: Option<Ipv6Addr>,
    ) -> Result<Grasp, StartError> {
        self.core.interfaces = interfaces;
        self.core.address = address.filter(|_| self.core.ipv6);
        let sock_err = |what: String| move |source| StartError::Socket { what, source };
        let mut senders = HashMap::new();
        let mut receivers = Vec::new();
        let mut responders = Vec::new();
        let core = Core::new(self.core.clone(), Box::new(rand::random::<u32>));
        for family in core.families() {
            for iface in &self.core.interfaces {
                let has = match family {
                    Family::V6 => iface.link_local.is_some(),
                    Family::V4 => iface.ipv4.is_some(),
                };
                if !has {
                    continue;
                }
                let what = format!("{family:?} interface {}", iface.index);
                let rx = sockets::multicast_receiver(family, iface, self.port)
                    .map_err(sock_err(format!("multicast receiver on {what}")))?;
                let (tx, tcp) = sockets::discovery_pair(family, iface, self.multicast_loop)
                    .map_err(sock_err(format!("discovery sockets on {what}")))?;
                tracing::info!(
                    ?family,
                    ifindex = iface.index,
                    port = tcp.local_addr().map(|a| a.port()).unwrap_or(0),
                    "GRASP up on interface"
                );
                senders.insert((family, iface.index), Arc::new(tx));
                receivers.push((family, iface.index, rx));
                responders.push((iface.index, tcp));
            }
        }
        let timer = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            core: Mutex::new(core),
            port: self.port,
            listen_queue: self.listen_queue,
            max_message: self.core.max_unicast,
            senders,
            discoveries: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
            timer: timer.clone(),
            connections: Arc::new(Semaphore::new(self.max_connections)),
            tasks: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&inner);
        let mut tasks = Vec::new();
        for (family, ifindex, rx) in receivers {
            tasks.push(tokio::spawn(multicast_loop(
                weak.clone(),
                family,
                ifindex,
                rx,
            )));
        }
        for (ifindex, tcp) in responders {
            tasks.push(tokio::spawn(response_loop(weak.clone(), ifindex, tcp)));
        }
        tasks.push(tokio::spawn(timer_loop(weak.clone(), timer)));
        inner.lock_tasks().extend(tasks);
        let out = inner.core().startup();
        inner.execute(out);
        Ok(Grasp { inner })
    }
}

/// A running GRASP node: cheap to clone; the node stops when the last clone, ASA and session
/// is dropped (or at [`Grasp::shutdown`]).
///
/// ```no_run
/// use netaio_grasp::{Grasp, Objective, RegisterOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let node = Grasp::builder().start().await?;
/// let asa = node.register_asa("Example")?;
/// let ex2 = Objective::new("EX2").synch(true);
/// asa.register_obj(&ex2, RegisterOptions::default()).await?;
/// asa.listen_synchronize(&ex2.clone().value(vec![1.into(), "two".into(), 3.into()]))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Grasp {
    pub(crate) inner: Arc<Inner>,
}

impl Grasp {
    /// A builder with the defaults.
    pub fn builder() -> GraspBuilder {
        GraspBuilder::default()
    }

    /// RFC 8991 `register_asa`: an ASA named `name` (unique on this node).
    pub fn register_asa(&self, name: &str) -> Result<Asa, GraspError> {
        let id = self.inner.core().register_asa(name)?;
        Ok(Asa::new(self.inner.clone(), id, name))
    }

    /// The interfaces it runs on.
    pub fn interfaces(&self) -> Vec<CoreInterface> {
        self.inner.core().config().interfaces.clone()
    }

    /// Its unique-local or global address, if it has one.
    pub fn address(&self) -> Option<Ipv6Addr> {
        self.inner.core().config().address
    }

    /// The initiator field of its IPv6 (or, on an IPv4-only node, IPv4) messages.
    pub fn initiator(&self) -> IpAddr {
        let core = self.inner.core();
        let family = core.families().first().copied().unwrap_or(Family::V6);
        core.initiator(family)
    }

    /// Stop its tasks (sockets close as they end). ASAs and sessions still held fail from now
    /// on.
    pub fn shutdown(&self) {
        self.inner.abort_tasks();
    }
}

/// What the node's tasks and handles share.
pub(crate) struct Inner {
    core: Mutex<Core>,
    #[allow(dead_code)]
    pub(crate) port: u16,
    pub(crate) listen_queue: usize,
    pub(crate) max_message: usize,
    senders: HashMap<(Family, u32), Arc<UdpSocket>>,
    discoveries: Mutex<HashMap<u64, oneshot::Sender<Vec<AsaLocator>>>>,
    pub(crate) listeners: Mutex<HashMap<String, Arc<ObjectiveListener>>>,
    timer: Arc<Notify>,
    pub(crate) connections: Arc<Semaphore>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

/// A lock, whatever a panicking holder left (the data stays consistent between calls).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The time as the core sees it (tokio's clock, so that paused-time tests drive it too).
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Inner {
    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    fn lock_tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        lock(&self.tasks)
    }

    fn abort_tasks(&self) {
        for t in self.lock_tasks().drain(..) {
            t.abort();
        }
        for (_, l) in lock(&self.listeners).drain() {
            l.stop();
        }
    }

    /// Wake the timer task: a deadline may have been added.
    pub(crate) fn rearm(&self) {
        self.timer.notify_one();
    }

    /// Register the waiter of a discovery before its multicasts go out.
    pub(crate) fn await_discovery(&self, id: u64) -> oneshot::Receiver<Vec<AsaLocator>> {
        let (tx, rx) = oneshot::channel();
        lock(&self.discoveries).insert(id, tx);
        rx
    }

    /// Do what the core asked (never called with the core locked).
    pub(crate) fn execute(&self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Multicast {
                    family,
                    ifindex,
                    bytes,
                } => {
                    let Some(sock) = self.senders.get(&(family, ifindex)) else {
                        continue;
                    };
                    let to = sockets::group(family, self.port, ifindex);
                    match sock.try_send_to(&bytes, to) {
                        Ok(_) => {}
                        // Tokio knows a socket is writable only once it asked: until then, or
                        // when the buffer is full, send from a task.
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            let sock = sock.clone();
                            tokio::spawn(async move {
                                if let Err(e) = sock.send_to(&bytes, to).await {
                                    tracing::warn!(ifindex, error = %e, "multicast not sent");
                                }
                            });
                        }
                        Err(e) => tracing::warn!(ifindex, error = %e, "multicast not sent"),
                    }
                }
                Output::Respond { to, bytes } => {
                    let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                        tracing::warn!(%to, "discovery response dropped: too many connections");
                        continue;
                    };
                    let max = self.max_message;
                    tokio::spawn(async move {
                        let _permit = permit;
                        match sockets::connect(to, Duration::from_secs(2)).await {
                            Ok(s) => {
                                let mut s = MessageStream::new(s, max);
                                if let Err(e) = s.write(&bytes).await {
                                    tracing::debug!(%to, error = %e, "discovery response not sent");
                                }
                                s.close().await;
                            }
                            Err(e) => {
                                tracing::debug!(%to, error = %e, "discovery response not sent")
                            }
                        }
                    });
                }
                Output::DiscoveryDone { id, locators } => {
                    if let Some(tx) = lock(&self.discoveries).remove(&id) {
                        let _ = tx.send(locators);
                    }
                }
            }
        }
    }
}

async fn multicast_loop(weak: Weak<Inner>, family: Family, ifindex: u32, sock: UdpSocket) {
    // Room for any datagram: the core refuses what is over its limit, with a log line.
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(ifindex, error = %e, "multicast receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let bytes = buf.get(..n).unwrap_or_default();
        let out = inner
            .core()
            .on_multicast(now(), family, ifindex, src, bytes);
        if !out.is_empty() {
            inner.execute(out);
            inner.rearm();
        }
    }
}

async fn response_loop(weak: Weak<Inner>, ifindex: u32, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(ifindex, error = %e, "discovery response accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let Ok(permit) = inner.connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many connections");
            continue;
        };
        let max = inner.max_message;
        let weak = weak.clone();
        drop(inner);
        tokio::spawn(async move {
            let _permit = permit;
            let mut s = MessageStream::new(stream, max);
            // The prototype reads one message per connection; so does this node.
            let msg = match s.read(Instant::now() + Duration::from_secs(10)).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "discovery response not read");
                    return;
                }
            };
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let out = inner
                .core()
                .on_response_message(now(), ifindex, peer.ip(), msg);
            inner.execute(out);
        });
    }
}

async fn timer_loop(weak: Weak<Inner>, timer: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            inner.core().next_timeout()
        };
        let notified = timer.notified();
        match next {
            Some(t) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(Instant::from_std(t)) => {}
                    _ = notified => continue,
                }
            }
            None => {
                notified.await;
                continue;
            }
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let out = inner.core().on_timeout(now());
        inner.execute(out);
    }
}

/// The address to bind an objective's listener to: every address of the node's families.
pub(crate) fn listener_addr(ipv4_only: bool) -> SocketAddr {
    if ipv4_only {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    }
}
