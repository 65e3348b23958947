//! A link: the connection this node opens to one peer to send it protocol messages (messages
//! from the peer come on the connection the peer opens to this node's server). One task per
//! link dials, runs the handshake, then writes what the driver hands it, with keepalive pings
//! while idle; it reports a failure (dial, handshake, write, the peer closing, a ping
//! unanswered) to the driver, which tells the protocol the connection was lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use netaio::plugin::{HmacAuth, Plugins, SendOptions};
use netaio::tcp::CloseReason;
use netaio::{ConnectError, Message, MessageType, RequestError, SendError, TcpClient};
use netaio_asymmetric::AsymmetricPeerPlugin;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::hello::{Handshake, HelloError};
use super::{HELLO_URI, PING_URI};

/// Why a link ended without the driver closing it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("dial failed: {0}")]
    Connect(#[from] ConnectError),
    #[error("handshake failed: {0}")]
    Handshake(RequestError),
    #[error("handshake refused: {0}")]
    Hello(#[from] HelloError),
    #[error("send failed: {0}")]
    Send(#[from] SendError),
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    #[error("keepalive ping unanswered: {0}")]
    Ping(RequestError),
}

/// What a link tells the driver.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// The link's queue, full before, has room again.
    Drained { peer: SocketAddr, generation: u64 },
    /// The link failed.
    Lost {
        peer: SocketAddr,
        generation: u64,
        error: LinkError,
    },
}

/// What every link of a node shares.
#[derive(Debug)]
pub(crate) struct LinkConfig {
    pub(crate) handshake: Arc<Handshake>,
    /// The proof of work stamped on the hello (`admission_difficulty`; empty when off).
    pub(crate) admission: Plugins,
    /// The swarm secret (`HmacAuth` on every message), if any.
    pub(crate) secret: Option<Arc<[u8]>>,
    /// The per-peer plugins of protocol messages (X25519 + Ed25519), if the node has an identity.
    pub(crate) inner: Plugins,
    pub(crate) keyed: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) keepalive: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) queue: usize,
}

impl LinkConfig {
    /// A client of its own for each link: `TcpClient` keeps one connection per address, and a
    /// link being closed must not be handed to the next link to the same peer.
    fn client(&self) -> TcpClient {
        let mut b = TcpClient::builder()
            .connect_timeout(self.connect_timeout)
            .request_timeout(self.handshake_timeout)
            // The peer sends nothing on this connection but answers: a small inbox suffices.
            .inbox(16)
            .inbox_bytes(64 * 1024);
        if let Some(secret) = &self.secret {
            b = b.auth(HmacAuth::new(secret));
        }
        if self.keyed {
            b = b.peer_plugin(AsymmetricPeerPlugin);
        }
        b.build()
    }
}

/// The driver's end of a link.
#[derive(Debug)]
pub(crate) struct LinkHandle {
    pub(crate) tx: mpsc::Sender<Message>,
    /// Set by the driver when the queue was full; the link reports `Drained` once it has room.
    pub(crate) blocked: Arc<AtomicBool>,
    pub(crate) generation: u64,
    /// When the driver last handed it a message.
    pub(crate) last_used: Instant,
}

/// Starts a link to `peer`; its task is spawned on `tasks`.
pub(crate) fn spawn(
    config: &Arc<LinkConfig>,
    peer: SocketAddr,
    generation: u64,
    events: mpsc::Sender<LinkEvent>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> LinkHandle {
    let (tx, rx) = mpsc::channel(config.queue);
    let blocked = Arc::new(AtomicBool::new(false));
    let link = Link {
        config: config.clone(),
        peer,
        generation,
        rx,
        blocked: blocked.clone(),
        events: events.clone(),
    };
    tasks.spawn(async move {
        if let Err(error) = link.run().await {
            tracing::debug!(%peer, %error, "link lost");
            let lost = LinkEvent::Lost {
                peer,
                generation,
                error,
            };
            let _ = events.send(lost).await;
        }
    });
    LinkHandle {
        tx,
        blocked,
        generation,
        last_used: Instant::now(),
    }
}

struct Link {
    config: Arc<LinkConfig>,
    peer: SocketAddr,
    generation: u64,
    rx: mpsc::Receiver<Message>,
    blocked: Arc<AtomicBool>,
    events: mpsc::Sender<LinkEvent>,
}

impl Link {
    /// Until the driver drops its end (then flushes and closes: `Ok`) or the link fails.
    async fn run(mut self) -> Result<(), LinkError> {
        let cfg = self.config.clone();
        let client = cfg.client();
        let conn = client.connect(self.peer).await?;
        let hello = Message::new(MessageType::REQUEST_URI, HELLO_URI, cfg.handshake.hello());
        let stamped = SendOptions::new()
            .inner(cfg.admission.clone())
            .timeout(cfg.handshake_timeout);
        let reply = conn
            .call_with(hello, &stamped)
            .await
            .map_err(LinkError::Handshake)?;
        let peer = cfg
            .handshake
            .check_reply(reply.content().clone(), self.peer)?;
        conn.set_peer(Some(peer));
        tracing::debug!(peer = %self.peer, "link up");

        let opts = SendOptions::new().inner(cfg.inner.clone());
        let mut state = conn.state_changes();
        let idle = tokio::time::sleep(cfg.keepalive);
        tokio::pin!(idle);
        let half = cfg.queue / 2;
        loop {
            tokio::select! {
                biased;
                next = self.rx.recv() => {
                    let Some(message) = next else {
                        // The driver closed the link: what was queued is sent first.
                        conn.close().await;
                        return Ok(());
                    };
                    conn.send_with(&message, &opts).await?;
                    idle.as_mut().reset(Instant::now() + cfg.keepalive);
                    if self.rx.len() <= half && self.blocked.swap(false, Ordering::AcqRel) {
                        let drained = LinkEvent::Drained {
                            peer: self.peer,
                            generation: self.generation,
                        };
                        if self.events.send(drained).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                changed = state.changed() => {
                    let now = state.borrow_and_update().clone();
                    if changed.is_err() || !now.is_connected() {
                        let reason = match now {
                            netaio::tcp::ConnectionState::Closed { reason }
                            | netaio::tcp::ConnectionState::Reconnecting { reason } => reason,
                            _ => CloseReason::Local,
                        };
                        return Err(LinkError::Closed(reason));
                    }
                }
                () = &mut idle => {
                    let ping = Message::new(MessageType::REQUEST_URI, PING_URI, "");
                    conn.call_timeout(ping, cfg.keepalive_timeout)
                        .await
                        .map_err(LinkError::Ping)?;
                    idle.as_mut().reset(Instant::now() + cfg.keepalive);
                }
            }
        }
    }
}
