//! netaio-grasp: GRASP, the GeneRic Autonomic Signaling Protocol (RFC 8990), with the API of
//! RFC 8991 in async Rust, talking to existing GRASP nodes on the wire.
//!
//! Work in progress (issue 17). Done so far: [`wire`], the CBOR codec of every message and
//! option.
#![forbid(unsafe_code)]

pub mod wire;

pub use wire::{
    DecodeError, EncodeError, Flags, FloodItem, Locator, Message, MessageType, Objective, Outcome,
    ResponseOption, Value,
};
