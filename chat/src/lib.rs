//! `chat`: an end-to-end encrypted chat for people on the same LAN, built on netaio.
//!
//! ```text
//! cargo run -p netaio-chat --bin chat -- --nick alice
//! ```
//!
//! - Identity: an Ed25519 key in a file, created on first run ([`identity`]).
//! - Peers find each other by UDP multicast adverts (IPv4, or IPv6 with `--bind ::`), with
//!   netaio's peer management ([`protocol`]).
//! - Every message is encrypted to each recipient (X25519 + XChaCha20-Poly1305) and signed
//!   (Ed25519); one that fails either check is dropped and counted, never shown.
//! - Keys are trusted on first use per nick and remembered ([`known`]); a different key for a
//!   known nick is flagged and its messages withheld until `/trust`.
//! - An optional room secret authenticates and encrypts all traffic, adverts included, so only
//!   people who know it discover and read each other.
//! - At a terminal, a line editor ([`terminal`]: history, editing keys, Tab completion) keeps
//!   the prompt and the half-typed line intact while lines print above it, and one's own lines
//!   are shown with a delivery mark; through pipes, plain lines in and out ([`ui`], [`commands`],
//!   [`input`]).
//!
//! The program is `src/bin/chat.rs`; [`app::run`] is the chat itself, made of [`people`] (who is
//! here), [`receive`] (the chat route), [`session`] (the commands), [`outbox`] (delivery) and
//! [`refusals`] (why nobody is here).
#![forbid(unsafe_code)]

pub mod app;
pub mod commands;
pub mod identity;
pub mod input;
pub mod kdf;
pub mod known;
pub mod logs;
pub mod options;
pub mod outbox;
pub mod people;
pub mod protocol;
pub mod receive;
pub mod refusals;
pub mod session;
pub mod terminal;
pub mod ui;
