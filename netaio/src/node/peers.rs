//! Peer management, written once for every transport: the messages (`ADVERTISE_PEER`,
//! `PEER_DISCOVERED`, `DISCONNECT`, each with uri = app id and content = the packed local peer),
//! the three handlers that record and forget peers, and the advert and expiry timers.
//!
//! The handlers reach the node only through its [`Context`] (`set_peer` records the peer on the
//! link, `forget_peer` drops what the node keeps for a peer that left), so they are the same on a
//! TCP server, a TCP client and a UDP node. [`PeerTimers`] is I/O-free: the transport asks it
//! when to wake up and what to do then.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{AdvertiseError, PeerManagementError};
use crate::peer::{Observed, Peer, PeerConfig, PeerTable, PeerTableError};
use crate::plugin::{NodePlugins, PeerError, PeerPlugin, SendOptions};
use crate::router::{BoxedHandler, Context, Routes};
use crate::{Message, MessageType};

/// Set up peer management on a node being built: its local peer, its table's limits, and the
/// handlers for `ADVERTISE_PEER`, `PEER_DISCOVERED` and `DISCONNECT` at `(type, app id)` with the
/// config's inner plugins. `strict`: a route already taken is an error; otherwise the
/// application's route is kept and logged (a client, which has no bind step to fail).
pub(crate) fn install(
    routes: &Routes,
    peers: &PeerTable,
    plugins: &mut NodePlugins,
    config: PeerConfig,
    strict: bool,
) -> Result<Arc<PeerManager>, PeerManagementError> {
    let local = ensure_local(&mut plugins.local).clone();
    peers.set_capacity(config.get_max_peers());
    peers.set_max_per_ip(config.get_max_peers_per_ip());
    peers.set_timeout(config.get_peer_timeout());
    let app = config.get_app_id().clone();
    let inner = config.get_plugins().clone();
    let manager = Arc::new(PeerManager::new(
        config,
        &local,
        plugins.peer_plugin.clone(),
    )?);
    for (t, h) in handlers(&manager, peers) {
        if let Err(e) = routes.insert((t, app.clone()).into(), h, false, inner.clone()) {
            if strict {
                return Err(e.into());
            }
            tracing::warn!(error = %e, "peer management: the application's route is kept");
        }
    }
    Ok(manager)
}

/// The three handlers, each holding the manager and the table.
fn handlers(m: &Arc<PeerManager>, table: &PeerTable) -> [(MessageType, BoxedHandler); 3] {
    let advertise = {
        let (m, table) = (m.clone(), table.clone());
        BoxedHandler::new(move |msg: Message, ctx: Context| {
            let (m, table) = (m.clone(), table.clone());
            async move {
                if !m.record(&table, &msg, &ctx) {
                    return None;
                }
                m.may_answer(ctx.peer_addr(), Instant::now())
                    .then(|| m.discovered.clone())
            }
        })
    };
    let discovered = {
        let (m, table) = (m.clone(), table.clone());
        BoxedHandler::new(move |msg: Message, ctx: Context| {
            let (m, table) = (m.clone(), table.clone());
            async move {
                m.record(&table, &msg, &ctx);
            }
        })
    };
    let disconnect = {
        let (m, table) = (m.clone(), table.clone());
        BoxedHandler::new(move |msg: Message, ctx: Context| {
            let (m, table) = (m.clone(), table.clone());
            async move {
                if let Some(gone) = m.left(&table, &msg, ctx.peer_addr()) {
                    ctx.set_peer(None);
                    if let Some(node) = ctx.ops() {
                        node.forget_peer(&gone);
                    }
                }
            }
        })
    };
    [
        (MessageType::ADVERTISE_PEER, advertise),
        (MessageType::PEER_DISCOVERED, discovered),
        (MessageType::DISCONNECT, disconnect),
    ]
}

/// A random peer id for a node that was given none: 32 hex digits (128 random bits).
pub(crate) fn generated_id() -> Bytes {
    Bytes::from(format!("{:032x}", rand::random::<u128>()))
}

/// Make sure a node doing peer management has a local peer with an id.
pub(crate) fn ensure_local(local: &mut Option<Peer>) -> &Peer {
    let peer = local.get_or_insert_with(|| Peer::new(generated_id()));
    if peer.id.is_empty() {
        peer.id = generated_id();
    }
    peer
}

/// One node's peer management: its settings, its own id, and its three messages, built once.
/// The transports keep it as `Option<Arc<PeerManager>>`.
pub(crate) struct PeerManager {
    pub(crate) config: PeerConfig,
    pub(crate) local_id: Bytes,
    pub(crate) advert: Message,
    pub(crate) discovered: Message,
    pub(crate) disconnect: Message,
    peer_plugin: Arc<dyn PeerPlugin>,
    /// The rate of `PEER_DISCOVERED` answers per source IP, when limited (a UDP node, where the
    /// source of an advert may be forged).
    answers: Mutex<Option<AnswerLimit>>,
}

impl std::fmt::Debug for PeerManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerManager")
            .field("config", &self.config)
            .field("local_id", &self.local_id)
            .finish_non_exhaustive()
    }
}

/// How a peer-management message was handled.
#[derive(Debug)]
pub(crate) enum Heard {
    /// From this node itself (its own multicast looped back): ignored.
    Own,
    /// Not a usable peer (does not unpack or validate): ignored.
    Invalid(PeerError),
    /// Not recorded by the table (it is full): ignored.
    Refused(PeerTableError),
    /// Recorded.
    Recorded(Arc<Peer>, Observed),
}

impl PeerManager {
    pub(crate) fn new(
        config: PeerConfig,
        local: &Peer,
        peer_plugin: Arc<dyn PeerPlugin>,
    ) -> Result<Self, PeerError> {
        let packed = peer_plugin.pack(local)?;
        let app_id = config.get_app_id().clone();
        let msg = |t| Message::new(t, app_id.clone(), packed.clone());
        Ok(Self {
            advert: msg(MessageType::ADVERTISE_PEER),
            discovered: msg(MessageType::PEER_DISCOVERED),
            disconnect: msg(MessageType::DISCONNECT),
            local_id: local.id.clone(),
            config,
            peer_plugin,
            answers: Mutex::new(None),
        })
    }

    /// Limit the answers to adverts to the config's
    /// [`answers_per_ip`](PeerConfig::answers_per_ip) per second per source IP (a UDP node: an
    /// advert's source may be forged, and each answer goes there).
    pub(crate) fn limit_answers(&self) {
        let limit = AnswerLimit::new(
            self.config.get_answers_per_ip(),
            ANSWER_WINDOW,
            self.config.get_max_peers().max(1),
        );
        *self.answers.lock().unwrap_or_else(|e| e.into_inner()) = Some(limit);
    }

    /// Whether an advert from `addr` may be answered at `now` (always, unless limited).
    fn may_answer(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(limit) = answers.as_mut() else {
            return true;
        };
        let ok = limit.allow(addr.ip(), now);
        if !ok {
            tracing::debug!(%addr, "advert not answered: too many answers to its IP just now");
        }
        ok
    }

    /// The sender's peer, unpacked and validated by the peer plugin.
    fn read(&self, msg: &Message) -> Result<Peer, PeerError> {
        let peer = self.peer_plugin.unpack(msg.content())?;
        self.peer_plugin.validate(&peer)?;
        Ok(peer)
    }

    /// An `ADVERTISE_PEER` or `PEER_DISCOVERED` from `addr`: record the sender.
    pub(crate) fn heard(&self, table: &PeerTable, msg: &Message, addr: SocketAddr) -> Heard {
        let peer = match self.read(msg) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%addr, error = %e, r#type = %msg.message_type, "unusable peer message ignored");
                return Heard::Invalid(e);
            }
        };
        if peer.id == self.local_id {
            return Heard::Own;
        }
        match table.observe(peer, addr) {
            Ok(how) => match table.by_addr(addr) {
                Some(p) => Heard::Recorded(p, how),
                // Removed between the two calls (a racing DISCONNECT); nothing to record.
                None => Heard::Invalid(PeerError::Invalid("left while being recorded".into())),
            },
            Err(e) => {
                tracing::debug!(%addr, error = %e, "peer not recorded");
                Heard::Refused(e)
            }
        }
    }

    /// An `ADVERTISE_PEER` or `PEER_DISCOVERED` through a handler: record the sender in the
    /// table and on the link (so plugins see it for the link's later messages). True when
    /// recorded.
    fn record(&self, table: &PeerTable, msg: &Message, ctx: &Context) -> bool {
        match self.heard(table, msg, ctx.peer_addr()) {
            Heard::Recorded(peer, how) => {
                tracing::debug!(peer = %peer.display_id(), ?how, "peer recorded");
                ctx.set_peer(Some(Peer::clone(&peer)));
                true
            }
            Heard::Own | Heard::Invalid(_) | Heard::Refused(_) => false,
        }
    }

    /// The options peer-management messages are sent with: the config's inner plugins.
    pub(crate) fn send_options(&self) -> SendOptions {
        SendOptions::new().inner(self.config.get_plugins().clone())
    }

    /// The server's answer to this client's advert, recorded: the peer, or why not.
    pub(crate) fn answered(
        &self,
        table: &PeerTable,
        reply: &Message,
        addr: SocketAddr,
    ) -> Result<Arc<Peer>, AdvertiseError> {
        if reply.message_type != MessageType::PEER_DISCOVERED {
            return Err(AdvertiseError::UnexpectedReply(reply.clone()));
        }
        match self.heard(table, reply, addr) {
            Heard::Recorded(peer, _) => Ok(peer),
            Heard::Invalid(e) => Err(AdvertiseError::InvalidPeer(e)),
            Heard::Own => Err(AdvertiseError::OwnId),
            Heard::Refused(e) => Err(AdvertiseError::Table(e)),
        }
    }

    /// A `DISCONNECT` from `addr`: remove the sender, if it is known at that address (a node
    /// cannot evict another by naming its id from elsewhere).
    pub(crate) fn left(
        &self,
        table: &PeerTable,
        msg: &Message,
        addr: SocketAddr,
    ) -> Option<Arc<Peer>> {
        let peer = match self.peer_plugin.unpack(msg.content()) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "unusable DISCONNECT ignored");
                return None;
            }
        };
        if peer.id == self.local_id {
            return None;
        }
        let known = table.get(&peer.id)?;
        if !known.addrs.contains(&addr) {
            tracing::debug!(%addr, "DISCONNECT for a peer not known at its source address ignored");
            return None;
        }
        table.remove(&peer.id)
    }
}

/// The window of [`AnswerLimit`]: answers are counted per second.
const ANSWER_WINDOW: Duration = Duration::from_secs(1);

/// At most `per_window` answers per source IP in a window, tracking at most `capacity` IPs at
/// once: beyond, the IP whose window started first is forgotten (a flood of adverts from forged
/// addresses must not stop the answers to everyone else; it can only reset the count of an IP
/// by sending `capacity` adverts from others, each answered within its own size). I/O-free: time
/// comes in as `now`.
#[derive(Debug)]
pub(crate) struct AnswerLimit {
    per_window: u32,
    window: Duration,
    capacity: usize,
    /// Each IP's window start and answers in it.
    by_ip: HashMap<IpAddr, (Instant, u32)>,
    /// Window starts in order, to forget ended windows without a scan.
    starts: VecDeque<(Instant, IpAddr)>,
}

impl AnswerLimit {
    pub(crate) fn new(per_window: u32, window: Duration, capacity: usize) -> Self {
        Self {
            per_window,
            window,
            capacity,
            by_ip: HashMap::new(),
            starts: VecDeque::new(),
        }
    }

    /// Whether one more answer to `ip` fits at `now` (counted if it does).
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        while let Some(&(start, old)) = self.starts.front() {
            if now.saturating_duration_since(start) < self.window {
                break;
            }
            self.starts.pop_front();
            if self.by_ip.get(&old).is_some_and(|(s, _)| *s == start) {
                self.by_ip.remove(&old);
            }
        }
        if let Some((_, n)) = self.by_ip.get_mut(&ip) {
            if *n >= self.per_window {
                return false;
            }
            *n += 1;
            return true;
        }
        if self.per_window == 0 {
            return false;
        }
        while self.by_ip.len() >= self.capacity.max(1) {
            let Some((start, old)) = self.starts.pop_front() else {
                break;
            };
            if self.by_ip.get(&old).is_some_and(|(s, _)| *s == start) {
                self.by_ip.remove(&old);
            }
        }
        self.by_ip.insert(ip, (now, 1));
        self.starts.push_back((now, ip));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::PostcardPeerPlugin;

    fn manager(id: &'static str) -> PeerManager {
        PeerManager::new(
            PeerConfig::default().app_id("app"),
            &Peer::new(id),
            Arc::new(PostcardPeerPlugin),
        )
        .unwrap()
    }

    #[test]
    fn messages_carry_app_id_and_packed_peer() {
        let m = manager("me");
        assert_eq!(m.advert.message_type, MessageType::ADVERTISE_PEER);
        assert_eq!(m.disconnect.message_type, MessageType::DISCONNECT);
        assert_eq!(m.discovered.uri().as_ref(), b"app");
        let back = PostcardPeerPlugin.unpack(m.advert.content()).unwrap();
        assert_eq!(back.id, "me");
    }

    #[test]
    fn own_adverts_are_ignored_by_id_not_by_address() {
        let me = manager("me");
        let other = manager("other");
        let table = PeerTable::new();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(me.heard(&table, &me.advert, addr), Heard::Own));
        // Another node on the same host and even the same address is recorded.
        assert!(matches!(
            me.heard(&table, &other.advert, addr),
            Heard::Recorded(_, Observed::Discovered)
        ));
        let junk = Message::new(MessageType::ADVERTISE_PEER, "app", "\u{ff}\u{ff}");
        assert!(matches!(me.heard(&table, &junk, addr), Heard::Invalid(_)));
    }

    #[test]
    fn answers_are_limited_per_ip_and_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut l = AnswerLimit::new(2, Duration::from_secs(1), 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.3".parse().unwrap(),
        );
        assert!(l.allow(a, t0) && l.allow(a, t0 + ms(10)));
        assert!(!l.allow(a, t0 + ms(20)), "a third answer within the window");
        assert!(l.allow(b, t0 + ms(500)));
        assert!(l.allow(b, t0 + ms(510)) && !l.allow(b, t0 + ms(520)));
        // Two IPs tracked, both windows live: a third IP still gets its answer, and the IP
        // tracked longest (A) is forgotten to make room.
        assert!(l.allow(c, t0 + ms(600)));
        assert_eq!(l.by_ip.len(), 2);
        assert!(!l.by_ip.contains_key(&a) && !l.allow(b, t0 + ms(601)));
        // A window ends: the IP starts a new one.
        assert!(l.allow(b, t0 + ms(1500)) && l.allow(b, t0 + ms(1501)));
        assert!(!l.allow(b, t0 + ms(1502)));
        assert!(l.by_ip.len() <= 2 && l.starts.len() <= 2);
        // A limit of 0 answers nobody.
        assert!(!AnswerLimit::new(0, Duration::from_secs(1), 8).allow(a, t0));
    }

    #[test]
    fn disconnect_only_from_a_known_address() {
        let me = manager("me");
        let other = manager("other");
        let table = PeerTable::new();
        let at: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let elsewhere: SocketAddr = "10.0.0.2:1".parse().unwrap();
        me.heard(&table, &other.advert, at);
        assert!(me.left(&table, &other.disconnect, elsewhere).is_none());
        assert!(table.contains("other"));
        assert!(me.left(&table, &other.disconnect, at).is_some());
        assert!(!table.contains("other"));
    }
}
