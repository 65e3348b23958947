//! netaiod: a daemon that gives local applications gossip, speaking the gossip module API
//! (ANNOUNCE, NOTIFY, NOTIFICATION, VALIDATION over TCP) on netaio-gossip.
//!
//! - [`codec`]: the API's messages and byte layout.
//! - [`core`]: the daemon's decisions (subscriptions, validations, timeouts, what to forward),
//!   an I/O-free state machine.
//! - [`daemon`]: the core wired to the API's sockets and a `GossipNode`.
//! - [`directory`]: peer id → peer-call address, learnt from the other daemons over gossip.
//! - [`config`]: the INI configuration; [`identity`]: the host key.
//! - [`client`]: a small API client (what a local module does).
//!
//! A module of the gossip module API, against a daemon started with `netaiod -c FILE`:
//!
//! ```no_run
//! use netaiod::{ApiClient, ApiMessage};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut module = ApiClient::connect("127.0.0.1:7051".parse()?).await?;
//! module.notify(1).await?; // GOSSIP NOTIFY: data type 1, from peers and other modules
//! module.announce(0, 1, "hello").await?; // GOSSIP ANNOUNCE: ttl 0 (unlimited), type 1
//! while let Some(ApiMessage::Notification { message_id, data_type, data }) = module.recv().await? {
//!     println!("type {data_type}: {data:?}");
//!     // GOSSIP VALIDATION: the daemon forwards peer data only once every module said valid.
//!     module.validate(message_id, !data.is_empty()).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! A daemon in a program (what the `netaiod` binary does):
//!
//! ```no_run
//! use netaiod::{Daemon, DaemonConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (config, warnings) = DaemonConfig::parse(
//!     "[gossip]\napi_address = 127.0.0.1:7051\np2p_address = 127.0.0.1:7001\nbootstrapper = 127.0.0.1:7000\n",
//! )?;
//! let daemon = Daemon::start(config).await?;
//! println!("api on {:?}, peers reach {}", daemon.api_addrs(), daemon.node().addr());
//! daemon.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod codec;
pub mod config;
pub mod core;
pub mod daemon;
pub mod directory;
pub mod identity;
pub mod native;
pub mod native_client;
pub mod peercred;
pub mod search;

pub use client::ApiClient;
pub use codec::ApiMessage;
pub use config::DaemonConfig;
pub use daemon::Daemon;
pub use native_client::NativeClient;
