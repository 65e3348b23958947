//! The relay's I/O-free core: its configuration ([`RelayConfig`]), its wire form (message
//! types, addresses, limits, refusals), and its bookkeeping ([`RelayState`]: reservations,
//! circuits, per-recipient queues, rate limits) taking events and `now`. The TCP server runs it
//! (`tcp/relay_server.rs`); clients reserve and send envelopes over their connections
//! (`tcp/relay_client.rs`).

mod bucket;
mod check;
mod config;
mod envelope;
mod state;
mod wire;

pub use check::ReservationCheck;
pub use config::{Rate, RelayConfig};
pub(crate) use envelope::{COMBINE_FROM, deliver_head, encode_envelope, encode_envelope_into};
pub(crate) use state::RelayState;
pub use state::RelayStats;
pub use wire::{
    DELIVER, FORWARD, REFUSAL_URI, RESERVE, RelayAddress, RelayLimits, RelayRefusal, is_relay_type,
};
