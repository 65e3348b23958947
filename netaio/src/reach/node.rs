//! [`Reach`]: a peer's strategies gathered and tried in order, for a call or a send.

use std::sync::Arc;

use bytes::Bytes;

use super::lookup::{PeerLookup, Strategy};
use crate::Message;
use crate::error::{ConnectError, RequestError, SendError};
use crate::node::requests::{CallOptions, PendingCall};
use crate::peer::{Peer, PeerTable};
use crate::plugin::SendOptions;
use crate::tcp::{Connection, TcpClient};
use crate::udp::UdpHandle;

/// The peer a call or a send goes to: its id, and its record when the caller has it (for the
/// keys of peer-specific plugins; otherwise the peer tables are asked, else `Peer::new(id)`).
///
/// ```
/// use netaio::reach::PeerRef;
///
/// let by_id = PeerRef::from("node-c");
/// assert_eq!(by_id.id().as_ref(), b"node-c");
/// let by_record = PeerRef::from(netaio::peer::Peer::new("node-c"));
/// assert_eq!(by_record.id(), by_id.id());
/// ```
#[derive(Debug, Clone)]
pub struct PeerRef {
    id: Bytes,
    record: Option<Arc<Peer>>,
}

impl PeerRef {
    /// The peer's id.
    pub fn id(&self) -> &Bytes {
        &self.id
    }
}

impl From<&str> for PeerRef {
    fn from(id: &str) -> Self {
        Bytes::copy_from_slice(id.as_bytes()).into()
    }
}

impl From<Bytes> for PeerRef {
    fn from(id: Bytes) -> Self {
        Self { id, record: None }
    }
}

impl From<Peer> for PeerRef {
    fn from(p: Peer) -> Self {
        Arc::new(p).into()
    }
}

impl From<&Peer> for PeerRef {
    fn from(p: &Peer) -> Self {
        p.clone().into()
    }
}

impl From<Arc<Peer>> for PeerRef {
    fn from(p: Arc<Peer>) -> Self {
        Self {
            id: p.id.clone(),
            record: Some(p),
        }
    }
}

/// Why one strategy could not carry the message off this host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// The [`Reach`] has no node for this transport (no `TcpClient`, no `UdpHandle`).
    #[error("no {0} node to send with")]
    NoTransport(&'static str),
    /// The TCP connection could not be made.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The request could not leave (not connected, send queue full, too many in flight, …).
    #[error(transparent)]
    Request(RequestError),
    /// The relay itself is not reachable: none of its TCP strategies connected, and it has no
    /// UDP strategy (or this `Reach` no `UdpHandle`).
    #[error("relay {} unreachable", String::from_utf8_lossy(.0))]
    RelayUnreachable(Bytes),
}

/// One strategy tried, and why it failed.
#[derive(Debug)]
pub struct Attempt {
    /// The strategy.
    pub strategy: Strategy,
    /// Why it could not carry the message.
    pub error: AttemptError,
}

/// Why [`Reach::call_peer`] or [`Reach::send_to_peer`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerCallError {
    /// No strategy is known for the peer (the peer table and every lookup know nothing).
    #[error("no way known to reach peer {}", String::from_utf8_lossy(.0))]
    Unknown(Bytes),
    /// Every strategy failed on this host; nothing was sent. `tried` lists them in order.
    #[error("peer {} unreachable: {}", String::from_utf8_lossy(.peer), list(.tried))]
    Unreachable {
        /// The peer.
        peer: Bytes,
        /// Each strategy and why it failed.
        tried: Vec<Attempt>,
    },
    /// The request left through `via` and the call failed there (a timeout, an error reply —
    /// a relay's [`RelayRefusal`](crate::relay::RelayRefusal) among them — or the connection
    /// closing). The strategies before `via` in `tried` failed locally.
    #[error("call through {via} failed: {error}")]
    Call {
        /// The strategy that carried the request.
        via: Strategy,
        /// How the call failed.
        error: RequestError,
        /// The strategies tried before, and why they failed.
        tried: Vec<Attempt>,
    },
}

fn list(tried: &[Attempt]) -> String {
    let parts: Vec<String> = tried
        .iter()
        .map(|a| format!("{} ({})", a.strategy, a.error))
        .collect();
    parts.join(", ")
}

/// Reaches peers by id over a node's transports: a [`TcpClient`] (direct connections and
/// connections to relays), a [`UdpHandle`], a [`PeerTable`], and [`PeerLookup`]s.
///
/// A peer's strategies, in order: the client's open connections to that peer (peer management
/// recorded its id), then each lookup's strategies, then the peer table's addresses (UDP with a
/// `UdpHandle`, else TCP), without repeats.
///
/// ```no_run
/// use netaio::reach::{Reach, StaticLookup, Strategy};
/// use netaio::{CallOptions, Message, MessageType, TcpClient};
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let lookup = StaticLookup::new();
/// lookup.insert("relay-r", vec![Strategy::Tcp("10.0.1.1:9100".parse()?)]);
/// lookup.insert("node-c", vec![Strategy::Relay("relay-r".into())]);
/// let reach = Reach::builder().tcp(TcpClient::new()).lookup(lookup).build();
/// let msg = Message::new(MessageType::REQUEST_URI, "hello", "");
/// let reply = reach.call_peer("node-c", msg, &CallOptions::new()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Reach {
    inner: Arc<Inner>,
}

struct Inner {
    tcp: Option<TcpClient>,
    udp: Option<UdpHandle>,
    table: Option<PeerTable>,
    lookups: Vec<Arc<dyn PeerLookup>>,
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reach")
            .field("tcp", &self.inner.tcp.is_some())
            .field("udp", &self.inner.udp.is_some())
            .field("lookups", &self.inner.lookups.len())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Reach`].
#[derive(Default)]
pub struct ReachBuilder {
    tcp: Option<TcpClient>,
    udp: Option<UdpHandle>,
    table: Option<PeerTable>,
    lookups: Vec<Arc<dyn PeerLookup>>,
}

impl ReachBuilder {
    /// The TCP client for direct connections and connections to relays (its peer table is used
    /// for peer records too).
    #[must_use]
    pub fn tcp(mut self, client: TcpClient) -> Self {
        self.tcp = Some(client);
        self
    }

    /// The UDP node for UDP strategies.
    #[must_use]
    pub fn udp(mut self, node: UdpHandle) -> Self {
        self.udp = Some(node);
        self
    }

    /// A peer table (discovery, adverts) whose addresses are strategies too, after the
    /// lookups'. Default: the TCP client's.
    #[must_use]
    pub fn peer_table(mut self, table: PeerTable) -> Self {
        self.table = Some(table);
        self
    }

    /// Add a lookup, asked after those added before.
    #[must_use]
    pub fn lookup(mut self, lookup: impl PeerLookup) -> Self {
        self.lookups.push(Arc::new(lookup));
        self
    }

    /// The [`Reach`].
    pub fn build(self) -> Reach {
        let table = self
            .table
            .or_else(|| self.tcp.as_ref().map(|c| c.peers().clone()));
        Reach {
            inner: Arc::new(Inner {
                tcp: self.tcp,
                udp: self.udp,
                table,
                lookups: self.lookups,
            }),
        }
    }
}

impl std::fmt::Debug for ReachBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReachBuilder")
            .field("tcp", &self.tcp.is_some())
            .field("udp", &self.udp.is_some())
            .field("lookups", &self.lookups.len())
            .finish_non_exhaustive()
    }
}

/// How a strategy was started: a call on its way, or why it could not start.
type Started = Result<PendingCall, AttemptError>;

impl Reach {
    /// A builder with no transport and no lookup.
    pub fn builder() -> ReachBuilder {
        ReachBuilder::default()
    }

    /// The strategies of `peer`, in the order they are tried.
    pub async fn strategies(&self, peer: &[u8]) -> Vec<Strategy> {
        let mut out: Vec<Strategy> = Vec::new();
        let push = |s: Strategy, out: &mut Vec<Strategy>| {
            if !out.contains(&s) {
                out.push(s);
            }
        };
        if let Some(client) = &self.inner.tcp {
            for c in client.connections() {
                if c.is_connected() && c.peer().is_some_and(|p| p.id.as_ref() == peer) {
                    push(Strategy::Tcp(c.peer_addr()), &mut out);
                }
            }
        }
        for l in &self.inner.lookups {
            for s in l.lookup(peer).await {
                push(s, &mut out);
            }
        }
        if let Some(p) = self.inner.table.as_ref().and_then(|t| t.get(peer)) {
            for a in &p.addrs {
                let s = if self.inner.udp.is_some() {
                    Strategy::Udp(*a)
                } else {
                    Strategy::Tcp(*a)
                };
                push(s, &mut out);
            }
        }
        out
    }

    /// The peer's record: the caller's, else a peer table's, else one with just its id.
    fn record(&self, peer: &PeerRef) -> Arc<Peer> {
        if let Some(r) = &peer.record {
            return r.clone();
        }
        self.inner
            .table
            .as_ref()
            .and_then(|t| t.get(&peer.id))
            .or_else(|| {
                self.inner
                    .tcp
                    .as_ref()
                    .and_then(|c| c.peers().get(&peer.id))
            })
            .unwrap_or_else(|| Arc::new(Peer::new(peer.id.clone())))
    }

    /// Call `peer`: its strategies in order, the next one when one cannot carry the request off
    /// this host (no transport, a connection refused, not connected, a full send queue). See
    /// [`PeerCallError`] for how it fails.
    pub async fn call_peer(
        &self,
        peer: impl Into<PeerRef>,
        msg: Message,
        opts: &CallOptions,
    ) -> Result<Message, PeerCallError> {
        let peer = peer.into();
        let strategies = self.strategies(&peer.id).await;
        if strategies.is_empty() {
            return Err(PeerCallError::Unknown(peer.id));
        }
        let record = self.record(&peer);
        let mut tried = Vec::new();
        for strategy in strategies {
            let call = match self.start(&strategy, &record, msg.clone(), opts).await {
                Ok(call) => call,
                Err(error) => {
                    tracing::debug!(%strategy, %error, "strategy failed; trying the next");
                    tried.push(Attempt { strategy, error });
                    continue;
                }
            };
            match call.await {
                Ok(reply) => return Ok(reply),
                // It never left this host: the next strategy may do better.
                Err(e @ (RequestError::Send(_) | RequestError::TooManyInFlight(_))) => {
                    tracing::debug!(%strategy, error = %e, "strategy failed; trying the next");
                    tried.push(Attempt {
                        strategy,
                        error: AttemptError::Request(e),
                    });
                }
                Err(error) => {
                    return Err(PeerCallError::Call {
                        via: strategy,
                        error,
                        tried,
                    });
                }
            }
        }
        Err(PeerCallError::Unreachable {
            peer: peer.id,
            tried,
        })
    }

    /// Send `msg` to `peer` (no reply expected) by the first strategy that takes it; returns
    /// that strategy.
    pub async fn send_to_peer(
        &self,
        peer: impl Into<PeerRef>,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<Strategy, PeerCallError> {
        let peer = peer.into();
        let strategies = self.strategies(&peer.id).await;
        if strategies.is_empty() {
            return Err(PeerCallError::Unknown(peer.id));
        }
        let record = self.record(&peer);
        let mut tried = Vec::new();
        for strategy in strategies {
            let sent = match &strategy {
                Strategy::Tcp(addr) => match self.connection(*addr, &record).await {
                    Ok(c) => c.try_send_with(msg, opts).map_err(request_error),
                    Err(e) => Err(e),
                },
                Strategy::Udp(addr) => match &self.inner.udp {
                    Some(u) => u.send_with(*addr, msg, opts).await.map_err(request_error),
                    None => Err(AttemptError::NoTransport("UDP")),
                },
                Strategy::Relay(relay) => match self.relay(relay).await {
                    Ok(RelayHop::Tcp(c)) => c
                        .send_via_relay(&record, msg, opts)
                        .await
                        .map_err(request_error),
                    Ok(RelayHop::Udp(u, at)) => u
                        .send_via_relay(at, &record, msg, opts)
                        .await
                        .map_err(request_error),
                    Err(e) => Err(e),
                },
            };
            match sent {
                Ok(()) => return Ok(strategy),
                Err(error) => tried.push(Attempt { strategy, error }),
            }
        }
        Err(PeerCallError::Unreachable {
            peer: peer.id,
            tried,
        })
    }

    /// Start a call by one strategy.
    async fn start(
        &self,
        s: &Strategy,
        record: &Arc<Peer>,
        msg: Message,
        opts: &CallOptions,
    ) -> Started {
        match s {
            Strategy::Tcp(addr) => {
                let conn = self.connection(*addr, record).await?;
                Ok(conn.start_call(msg, opts))
            }
            Strategy::Udp(addr) => match &self.inner.udp {
                Some(u) => Ok(u.start_call(*addr, msg, opts)),
                None => Err(AttemptError::NoTransport("UDP")),
            },
            Strategy::Relay(relay) => Ok(match self.relay(relay).await? {
                RelayHop::Tcp(conn) => conn.start_call_via_relay(record, msg, opts),
                RelayHop::Udp(u, at) => u.start_call_via_relay(at, record, msg, opts),
            }),
        }
    }

    /// The client's connection to `addr`, made when there is none. A new connection to a peer
    /// whose record is known gets it (for its peer-specific plugins) unless peer management set
    /// one.
    async fn connection(
        &self,
        addr: std::net::SocketAddr,
        record: &Arc<Peer>,
    ) -> Result<Connection, AttemptError> {
        let client = self
            .inner
            .tcp
            .as_ref()
            .ok_or(AttemptError::NoTransport("TCP"))?;
        let conn = match client.connection(addr).filter(|c| !c.is_closed()) {
            Some(c) => c,
            None => client.connect(addr).await?,
        };
        if conn.peer().is_none() && !record.data.is_empty() {
            conn.set_peer(Some((**record).clone()));
        }
        Ok(conn)
    }

    /// The way to the relay `relay`, by its own strategies in order: a TCP one that connects,
    /// or a UDP one when this `Reach` has a `UdpHandle` (a datagram cannot tell whether the
    /// relay is there: the first is taken). Never another relay.
    async fn relay(&self, relay: &Bytes) -> Result<RelayHop, AttemptError> {
        for s in self.strategies(relay).await {
            if let (Strategy::Udp(addr), Some(u)) = (&s, &self.inner.udp) {
                return Ok(RelayHop::Udp(u.clone(), *addr));
            }
            if let Strategy::Tcp(addr) = s {
                let client = self
                    .inner
                    .tcp
                    .as_ref()
                    .ok_or(AttemptError::NoTransport("TCP"))?;
                let conn = match client.connection(addr).filter(|c| c.is_connected()) {
                    Some(c) => Ok(c),
                    None => client.connect(addr).await,
                };
                match conn {
                    Ok(c) => return Ok(RelayHop::Tcp(c)),
                    Err(e) => tracing::debug!(error = %e, "relay strategy failed"),
                }
            }
        }
        Err(AttemptError::RelayUnreachable(relay.clone()))
    }
}

/// How a relay is reached: a TCP connection to it, or a UDP node and the relay's address.
enum RelayHop {
    Tcp(Connection),
    Udp(UdpHandle, std::net::SocketAddr),
}

fn request_error(e: SendError) -> AttemptError {
    AttemptError::Request(RequestError::Send(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::StaticLookup;

    fn addr(s: &str) -> std::net::SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn strategies_come_from_the_lookups_in_order_then_the_table_without_repeats() {
        let first = StaticLookup::new();
        first.insert(
            "c",
            vec![
                Strategy::Tcp(addr("10.0.0.3:1")),
                Strategy::Relay("r".into()),
            ],
        );
        let second = StaticLookup::new();
        second.insert(
            "c",
            vec![
                Strategy::Relay("r".into()),
                Strategy::Tcp(addr("10.0.0.3:2")),
            ],
        );
        let table = PeerTable::new();
        table.observe(Peer::new("c"), addr("10.0.0.3:3")).unwrap();
        table.observe(Peer::new("c"), addr("10.0.0.3:1")).unwrap();
        let reach = Reach::builder()
            .lookup(first)
            .lookup(second)
            .peer_table(table)
            .build();
        assert_eq!(
            reach.strategies(b"c").await,
            vec![
                Strategy::Tcp(addr("10.0.0.3:1")),
                Strategy::Relay("r".into()),
                Strategy::Tcp(addr("10.0.0.3:2")),
                Strategy::Tcp(addr("10.0.0.3:3")),
            ]
        );
        assert!(reach.strategies(b"nobody").await.is_empty());
    }

    #[tokio::test]
    async fn no_strategy_is_unknown_and_no_transport_is_unreachable_listing_each() {
        let lookup = StaticLookup::new();
        lookup.insert(
            "c",
            vec![
                Strategy::Tcp(addr("10.0.0.3:1")),
                Strategy::Udp(addr("10.0.0.3:2")),
            ],
        );
        let reach = Reach::builder().lookup(lookup).build();
        let msg = Message::new(crate::MessageType::REQUEST_URI, "x", "");
        let e = reach
            .call_peer("nobody", msg.clone(), &CallOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(e, PeerCallError::Unknown(ref id) if id.as_ref() == b"nobody"),
            "{e}"
        );
        let e = reach
            .call_peer("c", msg, &CallOptions::new())
            .await
            .unwrap_err();
        let PeerCallError::Unreachable { tried, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(tried.len(), 2);
        assert!(matches!(tried[0].error, AttemptError::NoTransport("TCP")));
        assert!(matches!(tried[1].error, AttemptError::NoTransport("UDP")));
        assert_eq!(
            e.to_string(),
            "peer c unreachable: tcp 10.0.0.3:1 (no TCP node to send with), udp 10.0.0.3:2 (no UDP node to send with)"
        );
    }
}
