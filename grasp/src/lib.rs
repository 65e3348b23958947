//! netaio-grasp: GRASP, the GeneRic Autonomic Signaling Protocol (RFC 8990), with the API of
//! RFC 8991 in async Rust, talking to existing GRASP nodes on the wire.
//!
//! Work in progress (issue 17). Done so far: [`wire`], the CBOR codec of every message and
//! option; [`proto`], the I/O-free protocol core.
#![forbid(unsafe_code)]

mod api;
pub mod net;
pub mod proto;
pub mod wire;

pub use api::{
    Asa, DiscoverOptions, Grasp, GraspBuilder, Negotiated, NegotiationSession, StartError, Step,
};

pub use proto::{AsaId, AsaLocator, GraspError, RegisterOptions, TaggedObjective};
pub use wire::{
    DecodeError, EncodeError, Flags, FloodItem, Locator, Message, MessageType, Objective, Outcome,
    ResponseOption, Value,
};
