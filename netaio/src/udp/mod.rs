//! UDP transport: [`UdpNode`], one frame per datagram.
//!
//! The node uses the same [`Router`](crate::Router), handlers, macros and plugin pipeline as TCP. A
//! handler's reply goes back to the datagram's source. Nothing that fails to decode, fails its
//! checksum, or fails an auth check or decryption is ever answered (no reflection): it is counted
//! ([`UdpStats`]) and logged at debug level.

mod node;

pub use node::{UdpHandle, UdpNode, UdpNodeBuilder, UdpStats};

/// The largest UDP payload over IPv4 (65,535 − 20 − 8).
pub const MAX_DATAGRAM_V4: usize = 65_507;

/// The largest UDP payload over IPv6 without jumbograms (65,535 − 8).
pub const MAX_DATAGRAM_V6: usize = 65_527;
