//! Peer management, written once for every transport: the messages (`ADVERTISE_PEER`,
//! `PEER_DISCOVERED`, `DISCONNECT`, each with uri = app id and content = the packed local peer),
//! the three handlers that record and forget peers, and the advert and expiry timers.
//!
//! The handlers reach the node only through its [`Context`] (`set_peer` records the peer on the
//! link, `forget_peer` drops what the node keeps for a peer that left), so they are the same on a
//! TCP server, a TCP client and a UDP node. [`PeerTimers`] is I/O-free: the transport asks it
//! when to wake up and what to do then.

use std::net::SocketAddr;
use std::sync::Arc;

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
            async move { m.record(&table, &msg, &ctx).then(|| m.discovered.clone()) }
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
        })
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
                tracing::debug!(peer = ?peer.id, ?how, "peer recorded");
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
