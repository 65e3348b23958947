//! The RFC 8991 API in async Rust: a node ([`Grasp`]), its ASAs ([`Asa`]) and negotiation
//! sessions as values ([`NegotiationSession`]).

mod asa;
mod listener;
mod node;
mod session;

pub use asa::{Asa, DiscoverOptions};
pub use node::{Grasp, GraspBuilder, StartError};
pub use session::{Negotiated, NegotiationSession, Step};
