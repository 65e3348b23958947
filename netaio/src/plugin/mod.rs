//! Plugins: [`AuthPlugin`], [`CipherPlugin`], [`PeerPlugin`], and the fixed pipeline that applies
//! them ([`seal`], [`open_outer`], [`open_inner`]).
//!
//! Instance ("outer") plugins belong to a node; inner plugins belong to one handler or one call.
//! The order never changes:
//!
//! - send: inner cipher encrypt → inner auth make → instance cipher encrypt → instance auth make
//! - receive: instance auth check → instance cipher decrypt → route → inner auth check → inner
//!   cipher decrypt → handler
//!
//! The pipeline is plain functions over [`Message`](crate::Message)s: no sockets, no tasks, so it can be unit-tested
//! and fuzzed. A failed check stops processing; the transports never run a handler for a message
//! that failed a check.
//!
//! Bundled plugins (symmetric keys):
//!
//! - [`AeadAuth`]: authenticated encryption of the whole message in one pass (AES-256-GCM or
//!   XChaCha20-Poly1305, [`AeadAlgorithm`]), with the timestamp window and replay cache of
//!   [`HmacAuth`]: the fast way to have both, and the recommended one.
//! - [`HmacAuth`]: HMAC-SHA256 over the type, the uri, every other auth field and the content,
//!   with a timestamp window and a replay cache ([`Freshness`]).
//! - [`AeadCipher`]: XChaCha20-Poly1305 with a random nonce; the type and uri are bound as
//!   associated data, and the uri can be encrypted too.
//! - [`HashcashAuth`]: proof-of-work stamps against spam (SHA-256, or with the `tapehash`
//!   feature [`Tapehash`]).
//!
//! ```
//! use netaio::plugin::{AeadCipher, HmacAuth, Plugins};
//! use netaio::router::Route;
//! use netaio::{Message, MessageType, Router, TcpServer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let router = Router::new()
//!     .on((MessageType::REQUEST_URI, "echo"), |m: Message| async move {
//!         Message::respond(m.uri().clone(), m.content().clone())
//!     })
//!     // A second layer for one route: its own secret and field names.
//!     .route(
//!         Route::on((MessageType::REQUEST_URI, "admin"), |_: Message| async {
//!             Message::respond("admin", "ok")
//!         })
//!         .with_inner(
//!             Plugins::new()
//!                 .auth(HmacAuth::new(b"admin secret").field_prefix("admin."))
//!                 .cipher(AeadCipher::new(b"admin secret").nonce_field("admin.iv")),
//!         ),
//!     );
//! let server = TcpServer::builder()
//!     .address(([127, 0, 0, 1], 0))
//!     .router(router)
//!     .auth(HmacAuth::new(b"node secret"))
//!     .cipher(AeadCipher::new(b"node secret").encrypt_uri(true))
//!     .bind()
//!     .await?;
//! # drop(server);
//! # Ok(())
//! # }
//! ```

mod aead;
mod aead_algorithm;
mod aead_auth;
mod freshness;
mod hashcash;
mod hmac;
mod pipeline;
mod plugins;
mod postcard_peer;
mod refusal;
mod replay_cache;
mod traits;

pub use aead::AeadCipher;
pub use aead_algorithm::AeadAlgorithm;
pub use aead_auth::AeadAuth;
pub use freshness::{Clock, Freshness};
pub use hashcash::HashcashAuth;
pub use hmac::HmacAuth;
/// The tapehash functions, a second stamp function for [`HashcashAuth`] (the `tapehash` feature;
/// the `netaio-tapehash` crate).
#[cfg(feature = "tapehash")]
pub use netaio_tapehash::Tapehash;
pub use pipeline::{OpenError, SealError, Stage, open_inner, open_outer, seal};
pub(crate) use plugins::NodePlugins;
pub use plugins::{AuthErrorHook, AuthFailure, Plugins, SendOptions, default_auth_error_reply};
pub use postcard_peer::PostcardPeerPlugin;
pub use refusal::RefusalReason;
pub use traits::{
    AuthError, AuthPlugin, CipherError, CipherPlugin, PeerError, PeerPlugin, PluginContext,
    SIGNER_FIELD,
};
