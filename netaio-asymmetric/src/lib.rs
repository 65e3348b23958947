//! Public-key plugins for [`netaio`]: the Rust counterpart of Python netaio's optional
//! `asymmetric` module, without its weaknesses.
//!
//! - [`Identity`]: one 32-byte seed giving an Ed25519 signing key and an X25519 static secret
//!   (derived as Python netaio derives it, so the same seed gives the same public keys).
//! - [`AsymmetricPeerPlugin`]: peer data carrying the public keys ([`X25519_FIELD`],
//!   [`ED25519_FIELD`]); [`validate`](netaio::plugin::PeerPlugin::validate) refuses peers without
//!   well-formed keys.
//! - [`X25519Cipher`]: per-peer, per-direction keys by static X25519 key agreement and
//!   HKDF-SHA256, then XChaCha20-Poly1305 with a random nonce; peer-specific.
//! - [`Ed25519Auth`]: Ed25519 signatures (`verify_strict`) over the message type, the uri, the
//!   other auth fields, the content, a timestamp and a nonce, with the core
//!   [`Freshness`](netaio::plugin::Freshness) window and replay cache. It takes the role of
//!   Python's single-signature tapescript lock (not wire compatible).
//!
//! Both plugins need to know the other end's public keys: from its [`Peer`](netaio::peer::Peer)
//! in the [`PluginContext`](netaio::plugin::PluginContext) (peer data), or, for signatures, from
//! an allow-list.
//!
//! Encrypt, then sign, as the fixed pipeline does with a cipher and an auth plugin in one layer:
//!
//! ```
//! use netaio::Message;
//! use netaio::plugin::{PluginContext, Plugins, open_inner, open_outer, seal};
//! use netaio_asymmetric::{AsymmetricPeerPlugin, Ed25519Auth, Identity, X25519Cipher};
//!
//! let (alice, bob) = (Identity::generate(), Identity::generate());
//! // Each side learns the other's peer (id + public keys), e.g. from configuration or adverts.
//! let (alice_peer, bob_peer) = (alice.peer("alice")?, bob.peer("bob")?);
//! let ctx = |peer| PluginContext {
//!     peer: Some(peer),
//!     peer_plugin: Some(&AsymmetricPeerPlugin),
//!     ..Default::default()
//! };
//! let at_alice = Plugins::new()
//!     .cipher(X25519Cipher::new(&alice))
//!     .auth(Ed25519Auth::new(&alice));
//! let at_bob = Plugins::new()
//!     .cipher(X25519Cipher::new(&bob))
//!     .auth(Ed25519Auth::new(&bob));
//!
//! let msg = Message::ok("echo", "hello");
//! let sealed = seal(msg.clone(), &Plugins::new(), &at_alice, &ctx(&bob_peer))?;
//! let routed = open_outer(sealed.clone(), &at_bob, &ctx(&alice_peer))?;
//! assert_eq!(open_inner(routed, &Plugins::new(), &ctx(&alice_peer))?, msg);
//! // The same frame again is a replay.
//! assert!(open_outer(sealed, &at_bob, &ctx(&alice_peer)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod cipher;
mod identity;
mod peer;
mod reservations;

pub use auth::Ed25519Auth;
pub use cipher::X25519Cipher;
pub use identity::{Identity, PublicKeys};
pub use peer::{
    AsymmetricPeerPlugin, ED25519_FIELD, PEER_ID_DOMAIN, PEER_ID_LEN, SelfCertifyingPeerPlugin,
    X25519_FIELD, peer_id,
};
pub use reservations::SelfCertifiedReservations;

/// The `ed25519-dalek` crate this crate uses (for [`VerifyingKey`](ed25519_dalek::VerifyingKey)).
pub use ed25519_dalek;
/// The `x25519-dalek` crate this crate uses.
pub use x25519_dalek;
