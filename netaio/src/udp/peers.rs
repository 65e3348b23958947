//! Peer management and multicast on a [`UdpNode`](super::UdpNode) (the handlers and messages are
//! [`node::peers`](crate::node::peers), the schedule [`PeerTimers`]): the background tasks (the
//! group receiver, the advert and expiry timer), the goodbye on stop, and the `multicast` /
//! `broadcast` / `peers` operations of [`UdpHandle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::UdpHandle;
use super::node_ops::SourceOps;
use crate::Message;
use crate::error::{AdvertiseError, SendError};
use crate::node::peer_timers::PeerTimers;
use crate::peer::{Peer, PeerEvent, PeerTable};
use crate::plugin::SendOptions;
use crate::router::NodeOps;

/// How long the goodbye (`DISCONNECT`) may take when the node stops.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// Start the node's background tasks: the group receiver and the peer-management timer.
#[cfg_attr(
    not(feature = "multicast"),
    expect(unused_variables, reason = "only the group receiver uses `ops`")
)]
pub(super) fn start(h: &UdpHandle, ops: &SourceOps) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    #[cfg(feature = "multicast")]
    if let Some(sock) = h.shared.multicast.as_ref().and_then(|m| m.recv.clone()) {
        let node = h.clone();
        let cancel = h.shared.cancel.clone();
        tasks.push(tokio::spawn(super::multicast::receive(sock, cancel, {
            let ops = ops.clone();
            move |datagram, src| node.on_datagram(datagram, src, true, &ops)
        })));
    }
    if h.shared.manager.is_some() {
        tasks.push(tokio::spawn(timer_loop(h.clone())));
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

/// Run the node's [`PeerTimers`] until the node stops: advertise (to the group, when joined) and
/// expire silent peers when they are due.
async fn timer_loop(h: UdpHandle) {
    let Some(m) = h.shared.manager.as_ref() else {
        return;
    };
    let cancel = h.shared.cancel.clone();
    let table = &h.shared.peers;
    let mut timers = PeerTimers::new(h.shared.multicast.is_some(), Instant::now());
    loop {
        let due = timers.handle_timeout(Instant::now(), table, &m.config);
        #[cfg(feature = "multicast")]
        if due.advertise
            && let Err(e) = h.advertise().await
        {
            tracing::debug!(error = %e, "advert not sent");
        }
        // Adverts are scheduled only for a node with a group, and there is none without the feature.
        #[cfg(not(feature = "multicast"))]
        debug_assert!(!due.advertise, "an advert is due but there is no group");
        for gone in &due.expired {
            h.forget_peer(gone);
        }
        let Some(wake) = timers.poll_timeout(table) else {
            // Nothing scheduled until a peer is recorded: look again at the advert interval.
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(m.config.get_advertise_interval()) => continue,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
    }
}

impl UdpHandle {
    fn peer_options(&self) -> SendOptions {
        self.shared
            .manager
            .as_ref()
            .map(|m| m.send_options())
            .unwrap_or_default()
    }

    /// `DISCONNECT` to every known peer, and to the group if there is one. Both: a peer learned
    /// by unicast (`advertise_to`, or a Python node whose group port is its own, another one)
    /// does not hear this node's group. A peer that hears both ignores the second.
    async fn say_goodbye(&self) -> Result<usize, SendError> {
        let Some(m) = self.shared.manager.as_ref() else {
            return Ok(0);
        };
        let opts = self.peer_options();
        let addrs = self.shared.peers.addrs();
        #[cfg(feature = "multicast")]
        if self.shared.multicast.is_some() {
            let to_group = self.multicast_with(&m.disconnect, &opts).await;
            let direct = self.send_many(&addrs, &m.disconnect, &opts).await?;
            return Ok(direct + to_group?);
        }
        self.send_many(&addrs, &m.disconnect, &opts).await
    }

    /// The peers this node knows (filled by peer management; empty without it, unless handlers
    /// record peers with [`Context::set_peer`](crate::router::Context::set_peer)).
    pub fn peers(&self) -> &PeerTable {
        &self.shared.peers
    }

    /// Peer events from now on (shorthand for `peers().events()`).
    pub fn peer_events(&self) -> tokio::sync::broadcast::Receiver<PeerEvent> {
        self.shared.peers.events()
    }

    /// The peers known now, then every later event (shorthand for `peers().watch()`): unlike
    /// [`peer_events`](Self::peer_events) taken after `serve`, it misses no peer discovered
    /// before.
    pub fn watch_peers(&self) -> crate::peer::PeerWatch {
        self.shared.peers.watch()
    }

    /// This node's own peer (set with [`local_peer`](super::UdpNodeBuilder::local_peer), or
    /// generated by peer management).
    pub fn local_peer(&self) -> Option<&Peer> {
        self.shared.plugins.local.as_ref()
    }

    /// The multicast group and port, when joined.
    #[cfg(feature = "multicast")]
    #[cfg_attr(docsrs, doc(cfg(feature = "multicast")))]
    pub fn multicast_group(&self) -> Option<SocketAddr> {
        self.shared.multicast.as_ref().map(|m| m.group())
    }

    /// Send a message to the multicast group, on every joined interface. It is sealed once with
    /// the instance plugins (a peer-specific plugin cannot seal it: there is no one recipient).
    /// Returns on how many interfaces it was sent; [`SendError::Unsupported`] without a group.
    #[cfg(feature = "multicast")]
    #[cfg_attr(docsrs, doc(cfg(feature = "multicast")))]
    pub async fn multicast(&self, msg: &Message) -> Result<usize, SendError> {
        self.multicast_with(msg, &SendOptions::default()).await
    }

    /// [`multicast`](Self::multicast) with inner plugins and switches.
    #[cfg(feature = "multicast")]
    #[cfg_attr(docsrs, doc(cfg(feature = "multicast")))]
    pub async fn multicast_with(
        &self,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let Some(mc) = self.shared.multicast.as_ref() else {
            return Err(SendError::Unsupported("no multicast group joined"));
        };
        let bytes = self.prepare_async(msg.clone(), opts, mc.group()).await?;
        Ok(mc.send(&self.shared.socket, &bytes).await?)
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
    #[cfg(feature = "multicast")]
    #[cfg_attr(docsrs, doc(cfg(feature = "multicast")))]
    pub async fn advertise(&self) -> Result<usize, SendError> {
        let Some(m) = self.shared.manager.as_ref() else {
            return Err(SendError::Unsupported("peer management is off"));
        };
        self.multicast_with(&m.advert, &self.peer_options()).await
    }

    /// Send an `ADVERTISE_PEER` by unicast to `addr` (a node known by address, for example
    /// across networks multicast does not reach) and wait for its `PEER_DISCOVERED` (within the
    /// request timeout), which records it in [`peers`](Self::peers). The advert is a request: a
    /// node that has not verified this one's address yet challenges it first (see
    /// [return routability](super::UdpNode#return-routability)), and it goes again with the cookie.
    pub async fn advertise_to(&self, addr: SocketAddr) -> Result<Arc<Peer>, AdvertiseError> {
        let Some(m) = self.shared.manager.as_ref() else {
            return Err(AdvertiseError::Disabled);
        };
        let reply = self
            .call_with(addr, m.advert.clone(), &self.peer_options())
            .await?;
        m.answered(&self.shared.peers, &reply, addr)
    }
}
