//! [`Strategy`], the [`PeerLookup`] trait and the [`StaticLookup`] table.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::RwLock;

use bytes::Bytes;

use std::future::Future;
use std::pin::Pin;

/// What [`PeerLookup::lookup`] returns: a future of the strategies, borrowing the lookup.
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Vec<Strategy>> + Send + 'a>>;

/// One way of reaching a peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// TCP: the client's open connection to this address, else a new one (dialled).
    Tcp(SocketAddr),
    /// UDP datagrams to this address (needs a [`UdpHandle`](crate::UdpHandle) in the
    /// [`Reach`](super::Reach)).
    Udp(SocketAddr),
    /// Through the relay with this peer id, itself reached by its own strategies: TCP ones (a
    /// [`Relay`](crate::relay::Relay)), or UDP ones (a [`UdpRelay`](crate::udp::UdpRelay), with a
    /// `UdpHandle` in the [`Reach`](super::Reach)); never through another relay.
    Relay(Bytes),
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Tcp(a) => write!(f, "tcp {a}"),
            Strategy::Udp(a) => write!(f, "udp {a}"),
            Strategy::Relay(id) => write!(f, "relay {}", String::from_utf8_lossy(id)),
        }
    }
}

/// Where the strategies of a peer come from, besides the node's peer table: a static table, a
/// directory service, a DHT. Asked in the order the lookups were added; each returns its
/// strategies in the order to try them (none when it knows nothing of the peer).
pub trait PeerLookup: Send + Sync + 'static {
    /// The strategies for `peer`.
    fn lookup<'a>(&'a self, peer: &'a [u8]) -> LookupFuture<'a>;
}

/// A [`PeerLookup`] that is a table the application fills: peer id → strategies.
///
/// ```
/// use netaio::reach::{StaticLookup, Strategy};
///
/// let table = StaticLookup::new();
/// table.insert("relay-r", vec![Strategy::Tcp("10.0.0.1:9100".parse().unwrap())]);
/// table.insert("node-c", vec![Strategy::Relay("relay-r".into())]);
/// assert_eq!(table.get(b"node-c"), vec![Strategy::Relay("relay-r".into())]);
/// assert!(table.get(b"nobody").is_empty());
/// ```
#[derive(Debug, Default)]
pub struct StaticLookup {
    table: RwLock<HashMap<Bytes, Vec<Strategy>>>,
}

impl StaticLookup {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the strategies of `peer` (replacing what it had).
    pub fn insert(&self, peer: impl Into<Bytes>, strategies: Vec<Strategy>) {
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer.into(), strategies);
    }

    /// Forget `peer`; its strategies, if it had any.
    pub fn remove(&self, peer: &[u8]) -> Option<Vec<Strategy>> {
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(peer)
    }

    /// The strategies of `peer` (none when unknown).
    pub fn get(&self, peer: &[u8]) -> Vec<Strategy> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
            .cloned()
            .unwrap_or_default()
    }
}

impl PeerLookup for StaticLookup {
    fn lookup<'a>(&'a self, peer: &'a [u8]) -> LookupFuture<'a> {
        Box::pin(std::future::ready(self.get(peer)))
    }
}
