//! Peer management over TCP: the client advertises itself on every (re)connect and says goodbye
//! (`DISCONNECT`) on close; the server answers with `PEER_DISCOVERED` and records the client, on
//! its connection (so plugins see it) and in its peer table. Both sides can then broadcast to
//! their known peers. A peer leaves the table with its `DISCONNECT` or its connection.

use std::sync::Arc;
use std::time::Duration;

use super::{Connection, ServerHandle, TcpClient};
use crate::error::{RequestError, SendError};
use crate::peer::wire::{self, Heard, PeerManager};
use crate::peer::{Peer, PeerConfig, PeerEvent, PeerTable};
use crate::plugin::{NodePlugins, SendOptions};
use crate::router::{BoxedHandler, Context, Routes};
use crate::{Message, MessageType};

/// How long the goodbye (`DISCONNECT`) may wait for room in the send queue.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

fn handlers() -> [(MessageType, BoxedHandler); 3] {
    [
        (MessageType::ADVERTISE_PEER, BoxedHandler::new(on_advertise)),
        (
            MessageType::PEER_DISCOVERED,
            BoxedHandler::new(on_discovered),
        ),
        (MessageType::DISCONNECT, BoxedHandler::new(on_disconnect)),
    ]
}

/// Peer management on a server being bound (a route already taken is an error).
pub(super) fn install_server(
    routes: &Routes,
    peers: &PeerTable,
    plugins: &mut NodePlugins,
    config: PeerConfig,
) -> Result<PeerManager, String> {
    wire::install(routes, peers, plugins, config, handlers(), true)
}

/// Peer management on a client being built (a route already taken is kept).
pub(super) fn install_client(
    routes: &Routes,
    peers: &PeerTable,
    plugins: &mut NodePlugins,
    config: PeerConfig,
) -> Result<PeerManager, String> {
    wire::install(routes, peers, plugins, config, handlers(), false)
}

/// The node's peer management and table, on either side of a connection.
fn state(ctx: &Context) -> Option<(&PeerManager, &PeerTable)> {
    if let Some(s) = ctx.server() {
        return s.shared.manager.as_ref().map(|m| (m, &s.shared.peers));
    }
    let c = &ctx.client()?.inner.client;
    c.manager.as_ref().map(|m| (m, &c.peers))
}

/// Record the sender on its connection too, so plugins see it.
fn record(msg: &Message, ctx: &Context) -> bool {
    let Some((m, table)) = state(ctx) else {
        return false;
    };
    match m.heard(table, msg, ctx.peer_addr()) {
        Heard::Recorded(peer, how) => {
            tracing::debug!(peer = ?peer.id, ?how, "peer recorded");
            ctx.set_peer(Some(Peer::clone(&peer)));
            true
        }
        Heard::Own | Heard::Invalid(_) | Heard::Refused => false,
    }
}

/// `ADVERTISE_PEER`: record the sender, answer `PEER_DISCOVERED`.
async fn on_advertise(msg: Message, ctx: Context) -> Option<Message> {
    let answer = state(&ctx)?.0.discovered.clone();
    record(&msg, &ctx).then_some(answer)
}

/// `PEER_DISCOVERED` that answers no request of ours: record the sender.
async fn on_discovered(msg: Message, ctx: Context) {
    record(&msg, &ctx);
}

/// `DISCONNECT`: forget the sender (its connection stays open until it closes it).
async fn on_disconnect(msg: Message, ctx: Context) {
    if let Some((m, table)) = state(&ctx)
        && m.left(table, &msg, ctx.peer_addr()).is_some()
    {
        ctx.set_peer(None);
    }
}

fn peer_options(m: &PeerManager) -> SendOptions {
    SendOptions::new().inner(m.config.get_plugins().clone())
}

/// The connection to the server dropped: the server leaves the client's table until the next
/// advert answers.
pub(super) fn connection_lost(conn: &Connection) {
    if conn.inner.client.manager.is_some() {
        conn.inner.client.peers.remove_addr(conn.inner.peer);
        conn.set_peer(None);
    }
}

/// The connection is back: advertise again (in a task; the driver must run to carry it).
pub(super) fn reconnected(conn: &Connection) {
    if conn.inner.client.manager.is_some() {
        let conn = conn.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.advertise().await {
                tracing::info!(error = %e, "server did not answer our advert after reconnecting");
            }
        });
    }
}

/// Queue a `DISCONNECT` before a connection is closed.
pub(super) async fn goodbye(conn: &Connection) {
    let Some(m) = conn.inner.client.manager.as_ref() else {
        return;
    };
    if !conn.is_connected() {
        return;
    }
    match tokio::time::timeout(
        GOODBYE_TIMEOUT,
        conn.send_with(&m.disconnect, &peer_options(m)),
    )
    .await
    {
        Ok(Ok(())) => tracing::debug!("DISCONNECT queued"),
        Ok(Err(e)) => tracing::debug!(error = %e, "DISCONNECT not sent"),
        Err(_) => tracing::debug!("DISCONNECT not queued in time"),
    }
}

impl Connection {
    /// Send `ADVERTISE_PEER` and wait for the server's `PEER_DISCOVERED` (within the request
    /// timeout); the server's peer is then recorded on this connection and in
    /// [`TcpClient::peers`]. [`TcpClient::connect`] does this when peer management is on.
    pub async fn advertise(&self) -> Result<Arc<Peer>, RequestError> {
        let client = &self.inner.client;
        let Some(m) = client.manager.as_ref() else {
            return Err(RequestError::Send(SendError::Unsupported(
                "peer management is off",
            )));
        };
        let reply = self.call_with(m.advert.clone(), &peer_options(m)).await?;
        if reply.message_type != MessageType::PEER_DISCOVERED {
            return Err(RequestError::Error(reply));
        }
        match m.heard(&client.peers, &reply, self.inner.peer) {
            Heard::Recorded(peer, _) => {
                self.set_peer(Some(Peer::clone(&peer)));
                Ok(peer)
            }
            Heard::Invalid(e) => Err(RequestError::Error(Message::error(format!(
                "unusable peer: {e}"
            )))),
            Heard::Own => Err(RequestError::Error(Message::error(
                "the server has this client's own peer id",
            ))),
            Heard::Refused => Err(RequestError::Error(Message::error("peer table full"))),
        }
    }
}

impl TcpClient {
    /// The servers that answered this client's adverts (peer management).
    pub fn peers(&self) -> &PeerTable {
        &self.shared.peers
    }

    /// Peer events from now on (shorthand for `peers().events()`).
    pub fn peer_events(&self) -> tokio::sync::broadcast::Receiver<PeerEvent> {
        self.shared.peers.events()
    }

    /// This client's own peer (set with
    /// [`local_peer`](super::TcpClientBuilder::local_peer), or generated by peer management).
    pub fn local_peer(&self) -> Option<&Peer> {
        self.shared.plugins.local.as_ref()
    }

    /// Send a message to every connected server whose peer is known; each connection seals it
    /// for its server. Returns how many queued it (failures are logged).
    pub async fn broadcast_to_peers(&self, msg: &Message) -> usize {
        let mut n = 0;
        for c in self
            .connections()
            .into_iter()
            .filter(|c| c.peer().is_some())
        {
            match c.send(msg).await {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::debug!(server = %c.peer_addr(), error = %e, "send to peer failed")
                }
            }
        }
        n
    }
}

impl ServerHandle {
    /// The clients that advertised themselves (peer management).
    pub fn peers(&self) -> &PeerTable {
        &self.shared.peers
    }

    /// Peer events from now on (shorthand for `peers().events()`).
    pub fn peer_events(&self) -> tokio::sync::broadcast::Receiver<PeerEvent> {
        self.shared.peers.events()
    }

    /// This server's own peer (set with
    /// [`local_peer`](super::TcpServerBuilder::local_peer), or generated by peer management).
    pub fn local_peer(&self) -> Option<&Peer> {
        self.shared.plugins.local.as_ref()
    }
}
