//! netaiod: a daemon that gives local applications gossip, speaking the gossip module API
//! (ANNOUNCE, NOTIFY, NOTIFICATION, VALIDATION over TCP) on netaio-gossip.
//!
//! - [`codec`]: the API's messages and byte layout.
//! - [`core`]: the daemon's decisions (subscriptions, validations, timeouts, what to forward),
//!   an I/O-free state machine.
//! - [`daemon`]: the core wired to the API's sockets and a `GossipNode`.
//! - [`config`]: the INI configuration; [`identity`]: the host key.
//! - [`client`]: a small API client (what a local module does).
#![forbid(unsafe_code)]

pub mod client;
pub mod codec;
pub mod config;
pub mod core;
pub mod daemon;
pub mod identity;

pub use client::ApiClient;
pub use codec::ApiMessage;
pub use config::DaemonConfig;
pub use daemon::Daemon;
