#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

#[macro_use]
mod node_macros;

pub mod codec;
pub mod compat;
pub mod error;
pub mod message;
pub(crate) mod node;
pub mod peer;
pub mod plugin;
pub mod router;
pub mod tcp;
pub mod udp;

pub use error::{BindError, ConnectError, ReceiveError, RequestError, SendError, SubscribeError};
pub use message::{Message, MessageType};
pub use netaio_macros::{on, once, service};
pub use router::{Context, Router};
pub use tcp::{Connection, ServerHandle, TcpClient, TcpServer};
pub use udp::{UdpHandle, UdpNode};

/// The examples of `dox.md`, the API reference at the repository root, run as doctests so that they
/// stay correct against the API (`netaio/tests/integration/dox_coverage.rs` checks that it names every item).
#[cfg(doctest)]
#[doc = include_str!("../../dox.md")]
struct DoxExamples;
