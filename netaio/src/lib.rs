#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod node_macros;

pub mod codec;
#[cfg(feature = "python-compat")]
#[cfg_attr(docsrs, doc(cfg(feature = "python-compat")))]
pub mod compat;
pub mod error;
pub mod message;
pub(crate) mod node;
pub mod peer;
pub mod plugin;
pub mod reach;
pub mod router;
pub mod tcp;
pub mod udp;

/// The `bytes` crate, whose `Bytes` holds every uri and content (`Message::content`,
/// `Message::uri`): `use netaio::bytes::Bytes;` needs no dependency of one's own, and its version
/// is always the one netaio uses.
pub use bytes;
pub use error::{
    BindError, ConnectError, PostcardCallError, ReceiveError, RequestError, SendError,
    SubscribeError,
};
pub use message::{Message, MessageType};
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use netaio_macros::{on, once, service};
pub use node::NodeBuilder;
pub use node::requests::{
    AdaptiveTimeouts, CallOptions, CallTarget, DedupConfig, HedgeBudget, LateReply,
    LateReplyConfig, PendingCall, RequestStats, RttEstimate, call_any,
};
pub use router::{Context, Router};
pub use tcp::{Connection, ServerHandle, TcpClient, TcpServer};
pub use udp::{UdpHandle, UdpNode};

/// The examples of `dox.md`, the API reference at the repository root, run as doctests so that they
/// stay correct against the API (`netaio/tests/integration/dox_coverage.rs` checks that it names every item).
#[cfg(doctest)]
#[doc = include_str!("../../dox.md")]
struct DoxExamples;

/// Relays (issue 14): a [`TcpServer`] that forwards envelopes between peers that reserved their
/// ids with it, so that a peer behind NAT or on another subnet can be reached by its id. The
/// bookkeeping is the I/O-free core `node::relay`; the server side is [`Relay`](relay::Relay), the
/// client side `Connection::reserve`, `Connection::start_call_via_relay` and
/// `Connection::send_via_relay`. See dox.md, "Relays".
pub mod relay {
    pub use crate::node::relay::ReserveError;
    pub use crate::node::relay::{
        DELIVER, FORWARD, REFUSAL_URI, RESERVE, Rate, RelayAddress, RelayConfig, RelayLimits,
        RelayRefusal, RelayStats, ReservationCheck, is_relay_type,
    };
    pub use crate::tcp::Relay;
}
