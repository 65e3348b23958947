//! The protocol core, I/O-free: a GRASP node's state ([`Core`]) and one negotiation's rules
//! ([`Negotiation`]) take events and the time `now` and return what to send, when to be called
//! again and what happened. `net` and `api` run them on tokio sockets.

mod config;
mod core;
mod core_multicast;
mod discovery_cache;
mod error;
mod flood_cache;
mod negotiation;
mod registry;
mod relay;
mod session_ids;

#[cfg(test)]
mod core_tests;

pub use self::core::{Core, Discover, Output, RequestDecision};
pub use config::{
    CoreConfig, CoreInterface, DEFAULT_TIMEOUT, DISCOVERY_TIMEOUT_UNIT, Family, is_link_local,
};
pub use discovery_cache::{AsaLocator, DiscoveryCache};
pub use error::GraspError;
pub use flood_cache::{FloodCache, TaggedObjective};
pub use negotiation::{Negotiation, Received, Role};
pub use registry::{AsaId, DEFAULT_RESPONSE_TTL_MS, RegisterOptions, Registered, Registry};
pub use relay::{FLOOD_MEMORY, RateLimit, RelayCache};
pub use session_ids::{Origin, SessionIds};
