//! Peer management and multicast on a [`UdpNode`](super::UdpNode): the three peer-management
//! handlers, the advertiser (adverts with jitter, expiry), the goodbye on stop, and the
//! `multicast` / `broadcast` / `peers` operations of [`UdpHandle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::UdpHandle;
use crate::error::SendError;
use crate::peer::wire::{self, Heard, PeerManager};
use crate::peer::{Peer, PeerConfig, PeerEvent, PeerTable};
use crate::plugin::{NodePlugins, SendOptions};
use crate::router::{BoxedHandler, Context, NodeOps, Routes};
use crate::{Message, MessageType};

/// How long the goodbye (`DISCONNECT`) may take when the node stops.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// Set up peer management on a node being bound (a route already taken is an error).
pub(super) fn install(
    routes: &Routes,
    peers: &PeerTable,
    plugins: &mut NodePlugins,
    config: PeerConfig,
) -> Result<PeerManager, String> {
    let handlers = [
        (MessageType::ADVERTISE_PEER, BoxedHandler::new(on_advertise)),
        (
            MessageType::PEER_DISCOVERED,
            BoxedHandler::new(on_discovered),
        ),
        (MessageType::DISCONNECT, BoxedHandler::new(on_disconnect)),
    ];
    wire::install(routes, peers, plugins, config, handlers, true)
}

/// `ADVERTISE_PEER`: record the sender, answer with a unicast `PEER_DISCOVERED`.
async fn on_advertise(msg: Message, ctx: Context) -> Option<Message> {
    let h = ctx.udp()?;
    let m = h.shared.manager.as_ref()?;
    match m.heard(&h.shared.peers, &msg, ctx.peer_addr()) {
        Heard::Recorded(..) => Some(m.discovered.clone()),
        Heard::Own | Heard::Invalid(_) | Heard::Refused => None,
    }
}

/// `PEER_DISCOVERED`: record the sender.
async fn on_discovered(msg: Message, ctx: Context) {
    if let Some(h) = ctx.udp()
        && let Some(m) = h.shared.manager.as_ref()
    {
        m.heard(&h.shared.peers, &msg, ctx.peer_addr());
    }
}

/// `DISCONNECT`: forget the sender and its subscriptions.
async fn on_disconnect(msg: Message, ctx: Context) {
    if let Some(h) = ctx.udp()
        && let Some(m) = h.shared.manager.as_ref()
        && let Some(gone) = m.left(&h.shared.peers, &msg, ctx.peer_addr())
    {
        h.forget_subscriptions(&gone);
    }
}

/// Start the node's background tasks: the group receiver and the advertiser.
pub(super) fn start(h: &UdpHandle, ops: &Arc<dyn NodeOps>) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(sock) = h.shared.multicast.as_ref().and_then(|m| m.recv.clone()) {
        let node = h.clone();
        let cancel = h.shared.cancel.clone();
        tasks.push(tokio::spawn(super::multicast::receive(sock, cancel, {
            let ops = ops.clone();
            move |datagram, src| node.on_datagram(datagram, src, true, &ops)
        })));
    }
    if h.shared.manager.is_some() {
        tasks.push(tokio::spawn(advertise_loop(h.clone())));
    }
    tasks
}

/// After the node stopped receiving: say goodbye, then wait for the background tasks.
pub(super) async fn stop(h: &UdpHandle, tasks: Vec<JoinHandle<()>>) {
    if h.shared.manager.is_some() {
        match tokio::time::timeout(GOODBYE_TIMEOUT, h.say_goodbye()).await {
            Ok(Ok(n)) => tracing::debug!(sent = n, "DISCONNECT sent"),
            Ok(Err(e)) => tracing::debug!(error = %e, "DISCONNECT not sent"),
            Err(_) => tracing::debug!("DISCONNECT timed out"),
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Advertise every interval (with jitter) and expire silent peers, until the node stops.
async fn advertise_loop(h: UdpHandle) {
    let Some(m) = h.shared.manager.as_ref() else {
        return;
    };
    let cancel = h.shared.cancel.clone();
    let mut next_advert = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_advert {
            if h.shared.multicast.is_some()
                && let Err(e) = h.advertise().await
            {
                tracing::debug!(error = %e, "advert not sent");
            }
            next_advert = now + m.config.next_interval();
        }
        for gone in h.shared.peers.expire() {
            h.forget_subscriptions(&gone);
        }
        // Expiry is strict (silent for longer than the timeout): wake just after the deadline.
        let expiry = h
            .shared
            .peers
            .next_expiry()
            .map(|t| Instant::from_std(t) + Duration::from_millis(1))
            .unwrap_or(next_advert);
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(next_advert.min(expiry)) => {}
        }
    }
}

impl UdpHandle {
    fn forget_subscriptions(&self, peer: &Peer) {
        for a in &peer.addrs {
            self.unsubscribe_all(*a);
        }
    }

    fn peer_options(&self) -> SendOptions {
        let inner = self
            .shared
            .manager
            .as_ref()
            .map(|m| m.config.get_plugins().clone())
            .unwrap_or_default();
        SendOptions::new().inner(inner)
    }

    /// `DISCONNECT` to the group, or, without one, to every known peer.
    async fn say_goodbye(&self) -> Result<usize, SendError> {
        let Some(m) = self.shared.manager.as_ref() else {
            return Ok(0);
        };
        let opts = self.peer_options();
        if self.shared.multicast.is_some() {
            self.multicast_with(&m.disconnect, &opts).await
        } else {
            let addrs = self.shared.peers.addrs();
            self.send_many(&addrs, &m.disconnect, &opts).await
        }
    }

    /// The peers this node knows (filled by peer management; empty without it, unless handlers
    /// record peers with [`Context::set_peer`]).
    pub fn peers(&self) -> &PeerTable {
        &self.shared.peers
    }

    /// Peer events from now on (shorthand for `peers().events()`).
    pub fn peer_events(&self) -> tokio::sync::broadcast::Receiver<PeerEvent> {
        self.shared.peers.events()
    }

    /// This node's own peer (set with [`local_peer`](super::UdpNodeBuilder::local_peer), or
    /// generated by peer management).
    pub fn local_peer(&self) -> Option<&Peer> {
        self.shared.plugins.local.as_ref()
    }

    /// The multicast group and port, when joined.
    pub fn multicast_group(&self) -> Option<SocketAddr> {
        self.shared.multicast.as_ref().map(|m| m.group())
    }

    /// Send a message to the multicast group, on every joined interface. It is sealed once with
    /// the instance plugins (a peer-specific plugin cannot seal it: there is no one recipient).
    /// Returns on how many interfaces it was sent; [`SendError::Unsupported`] without a group.
    pub async fn multicast(&self, msg: &Message) -> Result<usize, SendError> {
        self.multicast_with(msg, &SendOptions::default()).await
    }

    /// [`multicast`](Self::multicast) with inner plugins and switches.
    pub async fn multicast_with(
        &self,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let Some(mc) = self.shared.multicast.as_ref() else {
            return Err(SendError::Unsupported("no multicast group joined"));
        };
        let bytes = self.prepare_async(msg.clone(), opts, mc.group()).await?;
        mc.send(&self.shared.socket, &bytes)
            .await
            .map_err(SendError::from)
    }

    /// Send a message by unicast to every known peer, once per peer, at its most recent address.
    /// Sealed once unless a plugin is peer-specific (then once per peer, with that peer in the
    /// plugin context). Returns how many sends succeeded.
    pub async fn broadcast(&self, msg: &Message) -> Result<usize, SendError> {
        self.broadcast_with(msg, &SendOptions::default()).await
    }

    /// [`broadcast`](Self::broadcast) with inner plugins and switches.
    pub async fn broadcast_with(
        &self,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let addrs = self.shared.peers.addrs();
        self.send_many(&addrs, msg, opts).await
    }

    /// Multicast an `ADVERTISE_PEER` now (peer management does it every interval). Returns on
    /// how many interfaces it was sent.
    pub async fn advertise(&self) -> Result<usize, SendError> {
        let Some(m) = self.shared.manager.as_ref() else {
            return Err(SendError::Unsupported("peer management is off"));
        };
        self.multicast_with(&m.advert, &self.peer_options()).await
    }

    /// Send an `ADVERTISE_PEER` by unicast to `addr` (a node known by address, for example
    /// across networks multicast does not reach); its `PEER_DISCOVERED` answer records it.
    pub async fn advertise_to(&self, addr: SocketAddr) -> Result<(), SendError> {
        let Some(m) = self.shared.manager.as_ref() else {
            return Err(SendError::Unsupported("peer management is off"));
        };
        self.send_with(addr, &m.advert, &self.peer_options()).await
    }
}
