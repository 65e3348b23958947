//! The relay's I/O-free core: its configuration ([`RelayConfig`]), its wire form (message
//! types, addresses, limits, refusals), and its bookkeeping ([`RelayState`]: reservations,
//! circuits, per-recipient queues, rate limits) taking events and `now`, and what every relay
//! and relay client shares ([`RelayCore`], `client.rs`). A TCP server runs it
//! (`tcp/relay_server.rs`) and so does a UDP node (`udp/relay.rs`); clients reserve and send
//! envelopes over their connections (`tcp/relay_client.rs`) or datagrams (`udp/relay_client.rs`).

mod bucket;
mod check;
mod client;
mod config;
mod core;
mod envelope;
mod state;
mod wire;

pub use check::ReservationCheck;
pub use client::ReserveError;
pub(crate) use client::{delivered_inner, reservation, reserve_message, sender_record};
pub use config::{Rate, RelayConfig};
pub(crate) use core::{RelayCore, envelope_of};
pub(crate) use envelope::{
    COMBINE_FROM, ForwardCrc, deliver_head, deliver_head_known, encode_envelope,
    encode_envelope_into,
};
pub(crate) use state::RelayState;
pub use state::RelayStats;
pub use wire::{
    DELIVER, FORWARD, REFUSAL_URI, RESERVE, RelayAddress, RelayLimits, RelayRefusal, is_relay_type,
};
