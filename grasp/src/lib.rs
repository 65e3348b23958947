//! netaio-grasp: GRASP, the GeneRic Autonomic Signaling Protocol (RFC 8990), with the API of
//! RFC 8991 in async Rust, talking to existing GRASP nodes on the wire (the Python prototype,
//! graspy, in particular).
//!
//! Autonomic service agents (ASAs) discover each other by objective, negotiate a value step by
//! step, synchronize a value, and flood values to every node within a loop count.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use netaio_grasp::{Grasp, Negotiated, Objective, Outcome, RegisterOptions, Step, Value};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Grasp::builder().interface("eth0").start().await?;
//!
//! // A listener: serves EX2 and negotiates EX3.
//! let briggs = node.register_asa("Briggs")?;
//! let ex2 = Objective::new("EX2").synch(true);
//! let ex3 = Objective::new("EX3").neg(true).loop_count(8);
//! briggs.register_obj(&ex2, RegisterOptions::default()).await?;
//! briggs.register_obj(&ex3, RegisterOptions::default()).await?;
//! briggs.listen_synchronize(&ex2.clone().value(vec![1.into(), "two".into(), 3.into()]))?;
//! let listener = briggs.clone();
//! let ex3_for_listener = ex3.clone();
//! tokio::spawn(async move {
//!     while let Ok((mut session, request)) = listener.listen_negotiate(&ex3_for_listener).await {
//!         // Offer 100 whatever was asked; accept what comes back.
//!         let offer = request.value(vec![Value::from("NZD"), Value::from(100)]);
//!         if let Ok(Step::Offer(_)) = session.negotiate_step(&offer, None).await {
//!             let _ = session.end_negotiate(Outcome::Accept).await;
//!         }
//!     }
//! });
//!
//! // An initiator (usually on another node): discover, then negotiate and synchronize.
//! let gray = node.register_asa("Gray")?;
//! let peers = gray.discover(&ex3, Duration::from_secs(1)).await?;
//! let ask = ex3.clone().value(vec![Value::from("NZD"), Value::from(150)]);
//! match gray.request_negotiate(&ask, peers.first(), None).await? {
//!     Negotiated::Accepted(value) => println!("agreed: {value:?}"),
//!     Negotiated::Offer(mut session, offer) => {
//!         println!("offered {:?}", offer.value);
//!         session.end_negotiate(Outcome::Accept).await?;
//!     }
//! }
//! let ex2_now = gray.synchronize(&ex2, None, Some(Duration::from_secs(3))).await?;
//! # Ok(()) }
//! ```
//!
//! # Layers
//!
//! - [`wire`]: the messages and options as CBOR (`minicbor`), values of any CBOR item, bounded
//!   decoding with typed errors ([`DecodeError`]).
//! - [`proto`]: the protocol core, I/O-free: the node's state ([`proto::Core`]: discovery and
//!   its cache, relaying, the flood cache, session ids, the registry) and one negotiation's
//!   rules ([`proto::Negotiation`]), taking events and `now`, returning what to send.
//! - [`net`]: sockets, interfaces, one message per TCP write.
//! - The API ([`Grasp`], [`Asa`], [`NegotiationSession`]): RFC 8991's calls as async methods
//!   returning `Result<_, GraspError>` (its error codes, with their RFC names).
//!
//! # On the wire, as existing nodes expect it
//!
//! - Discovery is multicast to `ff02::13` (or `224.0.0.119`), port 7017, from an ephemeral UDP
//!   port P of each interface; responders answer over TCP to port P at the discovery's
//!   link-local source, on the interface it came in on.
//! - Nothing listens on TCP 7017: each negotiable or synchronizable objective has its own TCP
//!   port, which peers learn from the locator of a discovery response.
//! - The locator is the node's unique-local or global address (link-local for objectives
//!   registered as local, in DULL mode, or when the node has no other address).
//! - One message per TCP write, with `TCP_NODELAY`: the prototype reads one message per read.
//! - The listener's first `M_NEGOTIATE` echoes the request's loop count; each receiver
//!   decrements.
//! - `M_NOOP` once per interface at start-up; rapid-mode synchronization in `M_RESPONSE`;
//!   relays answer from their cache with `O_DIVERT`, and forward the answers to what they relay.
//!
//! # What it does not do
//!
//! GRASP relies on a security substrate (the ACP of RFC 8994); this node runs in the clear on
//! the interfaces it is given, like the prototype without its QUADS encryption (which it does
//! not implement). Rapid-mode negotiation (a discovery carrying a value answered by
//! `M_NEGOTIATE`) is not implemented: such a discovery is answered as a plain one, as RFC 8990
//! allows. FQDN and URI locators are carried, not resolved.
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
