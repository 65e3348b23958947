//! Wire compatibility with Python netaio 0.0.9: run a Rust node in a network of Python nodes, and
//! migrate one service at a time.
//!
//! The frame layout is the same in both modes; what differs is how the auth block and peer data
//! are encoded, and which plugins both ends run:
//!
//! - [`PackifyCodec`]: the auth block as Python's `packify` dict (the [`packify`] module has the
//!   general encoder and decoder);
//! - [`PackifyPeerPlugin`]: peer data and peer adverts as Python's `DefaultPeerPlugin`;
//! - [`LegacyHmacAuth`] and [`LegacySha256StreamCipher`]: Python's `HMACAuthPlugin` and
//!   `Sha256StreamCipherPlugin`, byte for byte. **They are insecure** (no replay protection, the
//!   message type is not authenticated, an unauthenticated XOR cipher) and exist only to talk to
//!   Python nodes; a network that no longer has Python nodes should move to
//!   [`HmacAuth`](crate::plugin::HmacAuth) and [`AeadCipher`](crate::plugin::AeadCipher).
//!
//! A transport speaks Python's encoding with the codec and the peer plugin set on its builder; the
//! plugins are chosen like Python's `auth_plugin=` and `cipher_plugin=`:
//!
//! ```no_run
//! use std::sync::Arc;
//! use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher, PackifyCodec, PackifyPeerPlugin};
//! use netaio::{Message, MessageType, Router, TcpServer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Python: TCPServer(port=8888, auth_plugin=HMACAuthPlugin({"secret": "s"}),
//! //                   cipher_plugin=Sha256StreamCipherPlugin({"key": "k"}))
//! let router = Router::new().on(MessageType::REQUEST_URI, |m: Message| async move {
//!     Message::respond(m.uri().clone(), m.content().clone())
//! });
//! let server = TcpServer::builder()
//!     .address(([0, 0, 0, 0], 8888))
//!     .router(router)
//!     .auth_codec(Arc::new(PackifyCodec))
//!     .peer_plugin(PackifyPeerPlugin)
//!     .auth(LegacyHmacAuth::new("s"))
//!     .cipher(LegacySha256StreamCipher::new("k"))
//!     .bind()
//!     .await?;
//! server.serve().await;
//! # Ok(()) }
//! ```
//!
//! The Rust side stays stricter than Python where Python crashes or misbehaves (see the Python
//! reference, sections 11 and 12): frames are bounded and time out, a failed check never runs a
//! handler, an unknown message type does not close the connection, and an auth block that is not
//! a dict of byte strings is refused.

mod codec;
mod legacy_cipher;
mod legacy_hmac;
pub mod packify;
mod peer;

pub use codec::PackifyCodec;
pub use legacy_cipher::LegacySha256StreamCipher;
pub use legacy_hmac::LegacyHmacAuth;
pub use peer::PackifyPeerPlugin;
