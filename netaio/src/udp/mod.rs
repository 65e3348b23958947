//! UDP transport: [`UdpNode`], one frame per datagram.
//!
//! The node uses the same [`Router`](crate::Router), handlers, macros and plugin pipeline as TCP. A
//! handler's reply goes back to the datagram's source. Nothing that fails to decode, fails its
//! checksum, or fails an auth check or decryption is ever answered (no reflection): it is counted
//! ([`UdpStats`]) and logged at debug level. And no address that has not proved it receives is
//! sent more bytes than it sent (see [return routability](UdpNode#return-routability)).
//!
//! A node can join a multicast group (`MulticastConfig`, with the `multicast` feature, on by
//! default) and manage its peers ([`PeerConfig`](crate::peer::PeerConfig)): it multicasts
//! `ADVERTISE_PEER` every interval, answers adverts from verified addresses with a unicast
//! `PEER_DISCOVERED` (an unauthenticated advert to the group is not answered: its advertiser
//! hears this node's next advert instead), records peers in a bounded
//! [`PeerTable`](crate::peer::PeerTable), expires silent ones and multicasts `DISCONNECT` when it
//! stops. Give the node an auth plugin ([`HmacAuth`](crate::plugin::HmacAuth), or signatures with
//! an allow-list) for any real deployment: without one, anyone on the network can put peers in
//! the table, or take them out. A node recognises its own adverts by its peer id, never by its IP
//! address, so any number of nodes can share a host. Without the `multicast` feature, peer
//! management works by unicast: [`UdpHandle::advertise_to`] a known address (a request, answered
//! with `PEER_DISCOVERED`), expiry, and `DISCONNECT` to every known peer on stop.
//!
//! ```no_run
//! use netaio::peer::{PeerConfig, PeerEvent};
//! use netaio::plugin::HmacAuth;
//! use netaio::udp::{MulticastConfig, UdpNode};
//! use netaio::Router;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = UdpNode::builder()
//!     .address(([0, 0, 0, 0], 0))
//!     .router(Router::new())
//!     .auth(HmacAuth::new(b"shared secret")) // unauthenticated adverts are ignored
//!     .multicast(MulticastConfig::default())
//!     .peer_management(PeerConfig::default())
//!     .bind()
//!     .await?;
//! let handle = node.handle();
//! let mut events = handle.peer_events();
//! tokio::spawn(node.serve());
//! while let Ok(event) = events.recv().await {
//!     if let PeerEvent::Discovered(peer) = event {
//!         println!("found {peer}");
//!     }
//! }
//! # Ok(()) }
//! ```

mod builder;
mod calls;
mod handle;
#[cfg(feature = "multicast")]
mod interfaces;
#[cfg(feature = "multicast")]
mod multicast;
mod node;
mod node_ops;
mod peers;
mod receive;
mod relay;
mod relay_client;
mod socket;

/// What a node refused from one source (see [`UdpHandle::refusals`]).
pub use crate::node::refusals::SourceRefusals;
pub use builder::{UdpNodeBuilder, UdpNodeOptions};
pub use handle::UdpHandle;
#[cfg(feature = "multicast")]
#[cfg_attr(docsrs, doc(cfg(feature = "multicast")))]
pub use interfaces::{Interface, interfaces};
#[cfg(feature = "multicast")]
#[cfg_attr(docsrs, doc(cfg(feature = "multicast")))]
pub use multicast::{MulticastConfig, MulticastInterface};
pub use node::{UdpNode, UdpStats};
pub use relay::UdpRelay;

/// Without the `multicast` feature a node never has a group: the node's `multicast` field is an
/// `Option` of this uninhabited type, always `None`, so the receive loop, peer management and
/// the goodbye take their unicast paths with no group code compiled in.
#[cfg(not(feature = "multicast"))]
mod multicast {
    #[derive(Debug)]
    pub(crate) enum Multicast {}
}

/// The largest UDP payload over IPv4 (65,535 − 20 − 8).
pub const MAX_DATAGRAM_V4: usize = 65_507;

/// The largest UDP payload over IPv6 without jumbograms (65,535 − 8).
pub const MAX_DATAGRAM_V6: usize = 65_527;
