//! Reaching a peer by its id (issue 14): [`Reach`] resolves a peer id to an ordered list of
//! [`Strategy`]s (an open TCP connection or an address to dial, a UDP address, a relay by its
//! own peer id), from the node's peer table and from [`PeerLookup`]s the application plugs in
//! ([`StaticLookup`] is a table), and tries them in order, failing over when one cannot carry
//! the message off this host. When none can, the call fails at once with
//! [`PeerCallError::Unreachable`], which lists what was tried. Once a strategy has carried the
//! request, only the reply, an error reply (a relay's refusal among them) or the timeout ends
//! the call.
//!
//! EGTP (the Mnet transport) calls each way "a comm strategy" and resolves ids through a
//! pluggable lookup service; this is the same shape on netaio's transports.

mod lookup;
mod node;

pub use lookup::{LookupFuture, PeerLookup, StaticLookup, Strategy};
pub use node::{Attempt, AttemptError, PeerCallError, PeerRef, Reach, ReachBuilder};
