//! The dissemination protocol as an I/O-free state machine.
//!
//! [`Protocol`] is one node's state. It takes inputs with the current time `now` — a message
//! received from a peer, a connection lost, a deadline reached, and the application's commands
//! (join with one bootstrap peer, subscribe, publish, leave) — and produces outputs the caller
//! carries out: messages to send (pulled from bounded per-peer queues), connections to close, the
//! next deadline, and events for the application. It has no sockets, tasks or clocks, so the same
//! code runs on netaio connections and in the deterministic [`sim`](crate::sim)ulator.
//!
//! Three protocols share one overlay:
//!
//! - **Membership** ([HyParView]): a small *active view* of neighbours with open connections
//!   (default 5) and a larger *passive view* of known peers (default 30). Joining takes one
//!   bootstrap peer; random walks (`ForwardJoin`) spread the newcomer; periodic shuffles refresh
//!   the passive view; a neighbour that fails is replaced from the passive view.
//! - **Broadcast** ([Plumtree]): a message is pushed in full along a spanning tree (*eager*
//!   neighbours) and announced by id (`IHave`) to the others (*lazy* neighbours). A duplicate prunes
//!   the link it came over; an announced message that does not arrive in time is fetched with a
//!   `Graft`, which also adds that link to the tree where the tree is broken. New links start
//!   lazy: the first message builds the tree instead of flooding. Every node relays every message
//!   (the tree spans the whole overlay, as the Python `gossip` library's store-and-forward did),
//!   and delivers to the application only the topics it subscribes to. A bounded seen-cache and a
//!   hop budget bound the work a message can cause.
//! - **Anti-entropy**: neighbours tell each other their subscriptions; on a new link and
//!   periodically, a node asks a neighbour for the ids it holds of the node's topics and fetches
//!   the ones it lacks, so a node that was away catches up.
//!
//! The application plugs in through [`Host`]: validation of a received message (proof of work,
//! expiry: a message that fails it is neither delivered nor forwarded, and its sender is banned),
//! storage of accepted messages, and the store's answers to anti-entropy ("ids held for topic T",
//! "payload of id X"). Message ids and topics are opaque 32-byte values the application chooses
//! (for bulletins: hashes of the header and of the topic descriptor).
//!
//! Every queue, cache and table is bounded in count (and payloads in bytes); every bound has a
//! default in [`Config`]. Randomness comes from an injected RNG, so a seeded RNG makes a run
//! reproducible.
//!
//! [HyParView]: https://asc.di.fct.unl.pt/~jleitao/pdf/dsn07-leitao.pdf
//! [Plumtree]: https://asc.di.fct.unl.pt/~jleitao/pdf/srds07-leitao.pdf

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BufMut;

mod broadcast;
mod cache;
mod config;
mod event;
mod held;
mod host;
mod membership;
mod message;
mod queue;
mod state;
mod sync;
#[cfg(test)]
mod tests;
mod timers;
pub mod wire;

pub use config::Config;
pub use event::{Event, InEvent, Output, PublishError, Published, Stats, SubscribeError};
pub use host::{Host, Verdict};
pub use message::{Announcement, Gossip, Message};
pub use queue::Priority;
pub use state::Protocol;
pub use wire::{DecodeError, Limits, Reader};

/// The id of a message: 32 opaque bytes chosen by the publisher (a bulletin's id is a hash of its
/// header, so publishing the same content twice gives two ids).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageId(pub [u8; 32]);

/// The id of a topic: 32 opaque bytes (for bulletins, `sha256(descriptor)`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId(pub [u8; 32]);

macro_rules! id_impls {
    ($name:ident) => {
        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            // The first 4 bytes are enough to tell ids apart in logs.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for b in self.0.iter().take(4) {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "…)")
            }
        }
    };
}
id_impls!(MessageId);
id_impls!(TopicId);

/// The identity of a peer: what the protocol stores in its views, sends in `ForwardJoin` and
/// `Shuffle` messages, and hands to the transport to reach the peer (so it must be enough to
/// connect to it: an address, or a key and an address in one `Copy` struct).
///
/// Implemented for `u64` and `u32` (the simulator's ids), `[u8; 32]` (public keys) and
/// [`SocketAddr`].
pub trait PeerId: Copy + Eq + Ord + Hash + fmt::Debug {
    /// Bytes [`encode`](Self::encode) writes.
    fn encoded_len(&self) -> usize;
    /// Appends the wire form.
    fn encode(&self, out: &mut impl BufMut);
    /// Reads the wire form; a typed error, never a panic, on bad input.
    fn decode(input: &mut Reader) -> Result<Self, DecodeError>;
}

impl PeerId for u64 {
    fn encoded_len(&self) -> usize {
        8
    }
    fn encode(&self, out: &mut impl BufMut) {
        out.put_u64(*self);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        input.u64()
    }
}

impl PeerId for u32 {
    fn encoded_len(&self) -> usize {
        4
    }
    fn encode(&self, out: &mut impl BufMut) {
        out.put_u32(*self);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        input.u32()
    }
}

impl PeerId for [u8; 32] {
    fn encoded_len(&self) -> usize {
        32
    }
    fn encode(&self, out: &mut impl BufMut) {
        out.put_slice(self);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        input.array32()
    }
}

/// Wire form: `4 | ipv4 (4) | port (2)` or `6 | ipv6 (16) | port (2)`, big-endian.
impl PeerId for SocketAddr {
    fn encoded_len(&self) -> usize {
        match self {
            SocketAddr::V4(_) => 1 + 4 + 2,
            SocketAddr::V6(_) => 1 + 16 + 2,
        }
    }
    fn encode(&self, out: &mut impl BufMut) {
        match self.ip() {
            IpAddr::V4(ip) => {
                out.put_u8(4);
                out.put_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.put_u8(6);
                out.put_slice(&ip.octets());
            }
        }
        out.put_u16(self.port());
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        let ip = match input.u8()? {
            4 => {
                let mut b = [0u8; 4];
                input.fill(&mut b)?;
                IpAddr::V4(Ipv4Addr::from(b))
            }
            6 => {
                let mut b = [0u8; 16];
                input.fill(&mut b)?;
                IpAddr::V6(Ipv6Addr::from(b))
            }
            other => return Err(DecodeError::InvalidPeer(other)),
        };
        Ok(SocketAddr::new(ip, input.u16()?))
    }
}
