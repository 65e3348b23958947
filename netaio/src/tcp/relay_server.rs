//! [`Relay`]: the relay service on a [`TcpServer`](super::TcpServer). Its routes take
//! reservations and envelopes; the bookkeeping is the node core's `RelayState`, behind a lock
//! held for no await; a recipient's envelopes go to its connection in order, at once while its
//! send queue has room, else by a task that waits for room (one per recipient at most).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard, OnceLock, Weak};

use bytes::Bytes;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{ConnectionEvent, ConnectionId, ServerHandle};
use crate::Message;
use crate::error::SendError;
use crate::node::relay::{
    COMBINE_FROM, DELIVER, FORWARD, ForwardCrc, RESERVE, RelayAddress, RelayConfig, RelayCore,
    RelayRefusal, RelayState, RelayStats, ReservationCheck, deliver_head_known, envelope_of,
};
use crate::router::{Context, Router};

/// The relay service, opt-in on a [`TcpServer`](super::TcpServer): give it to the server's
/// builder ([`TcpServerBuilder::relay`](super::TcpServerBuilder::relay)), or merge its
/// [`router`](Self::router) into the server's router. Peers reserve their id on their connection
/// ([`Connection::reserve`](super::Connection::reserve)), and envelopes for a reserved id are
/// forwarded to that connection, the inner frame untouched: it is sealed by the sender for the
/// recipient, and the relay needs none of its keys. Reservations and envelopes pass the server's
/// instance plugins like any message (with an auth plugin, an unauthenticated one is refused
/// before the relay sees it, and counted by the server). Every limit is in [`RelayConfig`].
///
/// ```no_run
/// use netaio::relay::{Relay, RelayConfig};
/// use netaio::{Router, TcpServer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let relay = Relay::new(RelayConfig::default());
/// let server = TcpServer::builder()
///     .address(([0, 0, 0, 0], 9100))
///     .relay(relay.clone())
///     .bind()
///     .await?;
/// println!("{:?}", relay.stats());
/// server.serve().await;
///
/// // The same by hand, for another relay (one relay per server): its routes merged into the
/// // router.
/// let other = Relay::new(RelayConfig::default());
/// let other = TcpServer::builder()
///     .address(([0, 0, 0, 0], 9101))
///     .router(Router::new().merge(other.router()))
///     .bind()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    /// The state and the reservation check (the first live connection that asks, without one).
    core: RelayCore<ConnectionId>,
    /// Set once the first relay message arrived: the task that follows the server's
    /// disconnections and expiries is running.
    watching: OnceLock<()>,
    /// The watcher missed connection events: the next relay message drops what belongs to
    /// connections the server no longer has.
    sweep_due: AtomicBool,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl From<RelayConfig> for Relay {
    fn from(config: RelayConfig) -> Self {
        Self::new(config)
    }
}

impl Relay {
    /// A relay with these limits.
    pub fn new(config: RelayConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                core: RelayCore::new(config),
                watching: OnceLock::new(),
                sweep_due: AtomicBool::new(false),
            }),
        }
    }

    /// Check every reservation with `check` (replacing any earlier one): a reservation it
    /// refuses is answered [`RelayRefusal::NotYours`]. With self-certifying peer ids, the
    /// server's auth exposing the verified signer (netaio-asymmetric's
    /// `Ed25519Auth::expose_signer`) and netaio-asymmetric's `SelfCertifiedReservations`, a peer
    /// can reserve only the id of its own keys; and as that check
    /// [`proves_ownership`](ReservationCheck::proves_ownership), a peer that reconnects takes
    /// its id from its old connection at once (one half-open, or still open), where without it
    /// the id is `Taken` until the old connection ends.
    ///
    /// ```
    /// use netaio::relay::{Relay, RelayConfig};
    ///
    /// let relay = Relay::new(RelayConfig::default())
    ///     .reservation_check(|id: &[u8], _: &netaio::Message| id.starts_with(b"guest-"));
    /// ```
    #[must_use]
    pub fn reservation_check(self, check: impl ReservationCheck) -> Self {
        self.shared.core.set_check(Arc::new(check));
        self
    }

    /// Its routes: [`RESERVE`] and [`FORWARD`] (by type, any uri).
    pub fn router(&self) -> Router {
        let reserve = self.shared.clone();
        let forward = self.shared.clone();
        Router::new()
            .on(RESERVE, move |msg: Message, ctx: Context| {
                let shared = reserve.clone();
                async move { shared.reserve(&msg, &ctx) }
            })
            .on(FORWARD, move |msg: Message, ctx: Context| {
                let shared = forward.clone();
                async move { shared.forward(msg, &ctx) }
            })
    }

    /// Its counters and what it holds now (what expired is swept first: no event may have
    /// come since to sweep it).
    pub fn stats(&self) -> RelayStats {
        let mut state = self.shared.state();
        state.expire(Instant::now());
        state.stats()
    }

    /// Its limits.
    pub fn config(&self) -> RelayConfig {
        self.shared.state().config().clone()
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, RelayState<ConnectionId>> {
        self.core.state()
    }

    /// Follow the server's disconnections (a reservation ends with its connection) and the
    /// expiries, from the first relay message on.
    fn watch(self: &Arc<Self>, server: &ServerHandle) {
        self.watching.get_or_init(|| {
            let events = server.events();
            tokio::spawn(watch(Arc::downgrade(self), events));
        });
        if self.sweep_due.swap(false, Ordering::AcqRel) {
            let live: std::collections::HashSet<ConnectionId> =
                server.registry().conns.keys().copied().collect();
            self.state().retain_connections(|c| live.contains(c));
        }
    }

    /// Whether the server still has `conn` (when not, its end is dropped from the relay now,
    /// without waiting for the watcher to see its event).
    fn alive(&self, server: &ServerHandle, conn: ConnectionId) -> bool {
        let alive = server.registry().conns.contains_key(&conn);
        if !alive {
            self.state().connection_closed(conn);
        }
        alive
    }

    fn reserve(self: &Arc<Self>, msg: &Message, ctx: &Context) -> Option<Message> {
        let (server, conn) = (ctx.server()?, ctx.connection_id()?);
        self.watch(server);
        // Held by a connection that has just ended (its event not yet seen, or missed): the
        // id is free.
        let gone = |holder| !self.alive(server, holder);
        Some(
            self.core
                .reserve(conn, ctx.peer_addr().ip(), msg, None, gone),
        )
    }

    fn forward(self: &Arc<Self>, msg: Message, ctx: &Context) -> Option<Message> {
        let (server, conn) = (ctx.server()?, ctx.connection_id()?);
        self.watch(server);
        let (answerable, to) = envelope_of(&msg);
        let Some(to) = to else {
            return answerable.then(|| RelayRefusal::Malformed.to_message());
        };
        let frame = msg.content().clone();
        // The FORWARD's checksum as verified on receipt, for a large inner frame: its DELIVER's
        // checksum follows from it (no second hash of the frame).
        let known = ctx
            .received_checksum(&msg.body)
            .filter(|_| frame.len() >= COMBINE_FROM)
            .map(|c| ForwardCrc::new(c, msg.uri()));
        let result = self.state().forward_known(
            conn,
            ctx.peer_addr().ip(),
            &to,
            frame,
            known,
            Instant::now(),
        );
        match result {
            Ok(f) => {
                // This envelope is the first of an empty queue: a connection already gone (its
                // end not yet seen by the watcher) means no route for it.
                let gone = if f.start {
                    self.drain(server.clone(), f.to)
                } else {
                    // Queued behind others: a recipient that has just ended takes them all.
                    !self.alive(server, f.to)
                };
                if gone {
                    let r = self.state().refuse(RelayRefusal::NoRoute);
                    return answerable.then(|| r.to_message());
                }
                None
            }
            Err(r) => {
                tracing::debug!(refusal = %r, %conn, "envelope refused");
                answerable.then(|| r.to_message())
            }
        }
    }

    /// Hand `conn`'s queued envelopes to its connection while its send queue has room; when it
    /// is full, a task waits for room and goes on. True when the connection was gone at the
    /// first envelope.
    fn drain(self: &Arc<Self>, server: ServerHandle, conn: ConnectionId) -> bool {
        let mut first = true;
        loop {
            let Some(next) = self.state().pop_known(conn) else {
                return false;
            };
            let d = delivery(&server, next);
            match d.try_send(&server, conn) {
                Ok(()) => first = false,
                Err(SendError::QueueFull | SendError::NodeQueueFull) => {
                    let shared = self.clone();
                    tokio::spawn(async move { shared.drain_waiting(server, conn, d).await });
                    return false;
                }
                Err(e) => {
                    self.gone(conn, &e);
                    return first;
                }
            }
        }
    }

    async fn drain_waiting(
        self: Arc<Self>,
        server: ServerHandle,
        conn: ConnectionId,
        first: Delivery,
    ) {
        let mut d = first;
        loop {
            if let Err(e) = d.send(&server, conn).await {
                return self.gone(conn, &e);
            }
            let Some(next) = self.state().pop_known(conn) else {
                return;
            };
            d = delivery(&server, next);
        }
    }

    fn gone(&self, conn: ConnectionId, e: &SendError) {
        tracing::debug!(error = %e, %conn, "relay recipient gone; its reservations end");
        self.state().connection_closed(conn);
    }
}

/// A `DELIVER` ready to queue for its recipient.
#[derive(Clone)]
enum Delivery {
    /// Its head (header, auth block, uri), then the inner frame as the relay received it: the
    /// bytes of the plain encoding, without decoding, copying or checking the inner frame again.
    /// When the server has no instance plugin: nothing seals the hop.
    Parts(Bytes, Bytes),
    /// The message, sealed with the server's instance plugins (the hop's authentication) and
    /// encoded when queued.
    Message(Message),
}

fn delivery(
    server: &ServerHandle,
    (from, frame, known): (RelayAddress, Bytes, Option<ForwardCrc>),
) -> Delivery {
    let shared = &server.shared;
    if shared.plugins.outer.is_empty()
        && let Ok(head) = deliver_head_known(&shared.codec, &from, &frame, known)
    {
        return Delivery::Parts(head, frame);
    }
    // With plugins; or beyond a limit, which the plain encoding reports.
    Delivery::Message(Message::new(DELIVER, from.encode(), frame))
}

impl Delivery {
    fn try_send(&self, server: &ServerHandle, conn: ConnectionId) -> Result<(), SendError> {
        match self {
            Delivery::Parts(head, tail) => server
                .recipient(conn)?
                .to
                .try_send_parts(head.clone(), tail.clone()),
            Delivery::Message(m) => server.try_send(conn, m),
        }
    }

    async fn send(&self, server: &ServerHandle, conn: ConnectionId) -> Result<(), SendError> {
        match self {
            Delivery::Parts(head, tail) => {
                let r = server.recipient(conn)?;
                r.to.send_parts(head.clone(), tail.clone()).await
            }
            Delivery::Message(m) => server.send(conn, m).await,
        }
    }
}

/// Disconnections end reservations and circuits at once; expiries are swept when due. Ends with
/// the server (its event channel closes) or the relay.
async fn watch(shared: Weak<Shared>, mut events: broadcast::Receiver<ConnectionEvent>) {
    const IDLE: std::time::Duration = std::time::Duration::from_secs(3600);
    loop {
        let due = match shared.upgrade() {
            Some(s) => s.state().next_expiry(),
            None => return,
        };
        let sleep = tokio::time::sleep_until(due.unwrap_or_else(|| Instant::now() + IDLE));
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ConnectionEvent::Disconnected { id, .. }) => {
                    let Some(s) = shared.upgrade() else { return };
                    s.state().connection_closed(id);
                }
                Ok(_) => {}
                // Missed disconnections are found when a delivery to them fails.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "relay: connection events missed");
                    let Some(s) = shared.upgrade() else { return };
                    s.sweep_due.store(true, Ordering::Release);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = sleep => {
                let Some(s) = shared.upgrade() else { return };
                s.state().expire(Instant::now());
            }
        }
    }
}
