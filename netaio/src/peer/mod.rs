//! Peers: [`Peer`] (another node as plugins and peer management see it), the bounded
//! [`PeerTable`] with its stream of [`PeerEvent`]s, and [`PeerConfig`] for automatic peer management.
//!
//! Peer management is opt-in on every transport (`peer_management(PeerConfig)` on
//! [`UdpNodeBuilder`](crate::udp::UdpNodeBuilder), [`TcpServerBuilder`](crate::tcp::TcpServerBuilder)
//! and [`TcpClientBuilder`](crate::tcp::TcpClientBuilder)). Its messages are the Python library's:
//! `ADVERTISE_PEER`, `PEER_DISCOVERED` and `DISCONNECT`, each with uri = the app id and content =
//! the local peer packed by the node's [`PeerPlugin`](crate::plugin::PeerPlugin). They pass
//! through the node's instance plugins like any message (so with an auth plugin set, an
//! unauthenticated advert or disconnect never reaches the peer table), then through the
//! [`PeerConfig::plugins`] as inner plugins.
//!
//! ```
//! use std::time::Duration;
//! use netaio::peer::{Peer, PeerConfig, PeerEvent, PeerTable};
//!
//! let table = PeerTable::new();
//! let mut events = table.events();
//! let addr = "127.0.0.1:9000".parse().unwrap();
//! table.observe(Peer::new("node-1"), addr).unwrap();
//! assert!(matches!(events.try_recv(), Ok(PeerEvent::Discovered(p)) if p.id == "node-1"));
//! assert_eq!(table.by_addr(addr).unwrap().id, "node-1");
//!
//! let config = PeerConfig::default()
//!     .app_id("chat")
//!     .advertise_interval(Duration::from_secs(5))
//!     .peer_timeout(Duration::from_secs(15));
//! assert_eq!(config.get_app_id().as_ref(), b"chat");
//! ```

mod config;
mod recency;
mod table;
mod watch;

pub use config::PeerConfig;
pub use table::{Observed, PeerEvent, PeerTable, PeerTableError};
pub use watch::PeerWatch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

/// Named values a peer publishes about itself (for example its public keys), decoded by a
/// [`PeerPlugin`](crate::plugin::PeerPlugin).
pub type PeerData = BTreeMap<String, Bytes>;

/// A node: its id, the addresses it was seen at, its encoded peer data and when it was last heard.
///
/// ```
/// use netaio::peer::Peer;
///
/// let peer = Peer::new("node-1").with_data(bytes::Bytes::from_static(b"\x00"));
/// assert_eq!(peer.id.as_ref(), b"node-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's id (unique per node; never an address).
    pub id: Bytes,
    /// Addresses the peer was seen at, most recent first.
    pub addrs: Vec<SocketAddr>,
    /// The peer's data as encoded by its peer plugin.
    pub data: Bytes,
    /// When the peer was last heard from, if ever.
    pub last_seen: Option<Instant>,
}

impl Peer {
    /// A peer with this id, no address and no data.
    pub fn new(id: impl Into<Bytes>) -> Self {
        Self {
            id: id.into(),
            addrs: Vec::new(),
            data: Bytes::new(),
            last_seen: None,
        }
    }

    /// The same peer with this encoded data.
    #[must_use]
    pub fn with_data(mut self, data: Bytes) -> Self {
        self.data = data;
        self
    }

    /// The same peer with this address added (first).
    #[must_use]
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addrs.retain(|a| *a != addr);
        self.addrs.insert(0, addr);
        self
    }

    /// The id for people to read: as text when it is printable UTF-8 (the usual names), else
    /// in hex (key-derived ids). `Bytes`' own `Debug` prints `b"..."` with escapes.
    ///
    /// ```
    /// use netaio::peer::Peer;
    /// assert_eq!(Peer::new("node-1").display_id().to_string(), "node-1");
    /// assert_eq!(Peer::new(vec![0xab, 0x01]).display_id().to_string(), "ab01");
    /// ```
    pub fn display_id(&self) -> DisplayId<'_> {
        DisplayId(&self.id)
    }
}

/// A peer id shown as text when it is printable UTF-8, else in hex: [`Peer::display_id`], and
/// `Display` of [`Peer`] (the id, then the most recent address if any).
#[derive(Debug, Clone, Copy)]
pub struct DisplayId<'a>(pub &'a [u8]);

impl std::fmt::Display for DisplayId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(text) if !text.is_empty() && !text.chars().any(char::is_control) => {
                f.write_str(text)
            }
            _ => f.write_str(&hex::encode(self.0)),
        }
    }
}

impl std::fmt::Display for Peer {
    /// `node-1` or `node-1 at 10.0.0.1:9000` (the most recent address).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.display_id())?;
        if let Some(addr) = self.addrs.first() {
            write!(f, " at {addr}")?;
        }
        Ok(())
    }
}

/// The peer behind one connection, shared between the connection's task and the node's handles.
#[derive(Clone, Default)]
pub(crate) struct PeerSlot(std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<Peer>>>>);

impl PeerSlot {
    pub(crate) fn get(&self) -> Option<std::sync::Arc<Peer>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, peer: Option<Peer>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = peer.map(std::sync::Arc::new);
    }
}

impl std::fmt::Debug for PeerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PeerSlot")
            .field(&self.get().map(|p| p.id.clone()))
            .finish()
    }
}
