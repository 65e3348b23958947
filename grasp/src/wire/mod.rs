//! The wire: GRASP messages as CBOR (RFC 8990 sections 2.8 to 2.10 and the CDDL of section 5).
//!
//! Pure functions from bytes to values and back; no sockets, no time.

mod codec;
mod error;
mod message;
mod objective;
mod value;

pub use codec::DEFAULT_MAX_SIZE;
pub(crate) use codec::objective_value;
pub use error::{DecodeError, EncodeError};
pub use message::{
    FloodItem, Message, MessageType, O_ACCEPT, O_DECLINE, O_DIVERT, O_FQDN_LOCATOR, O_IPV4_LOCATOR,
    O_IPV6_LOCATOR, O_URI_LOCATOR, Outcome, ResponseOption,
};
pub(crate) use objective::is_link_local_v6;
pub use objective::{DEFAULT_LOOP_COUNT, Flags, IPPROTO_TCP, IPPROTO_UDP, Locator, Objective};
pub use value::{MAX_DEPTH, Value};
