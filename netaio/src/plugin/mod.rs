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
//! The pipeline is plain functions over [`Message`]s: no sockets, no tasks, so it can be unit-tested
//! and fuzzed. A failed check stops processing; the transports never run a handler for a message
//! that failed a check.
//!
//! Bundled plugins (symmetric keys):
//!
//! - [`HmacAuth`]: HMAC-SHA256 over the type, the uri, every other auth field and the content,
//!   with a timestamp window and a replay cache ([`Freshness`]).
//! - [`AeadCipher`]: XChaCha20-Poly1305 with a random nonce; the type and uri are bound as
//!   associated data, and the uri can be encrypted too.
//! - [`HashcashAuth`]: proof-of-work stamps against spam.
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
mod freshness;
mod hashcash;
mod hmac;
mod pipeline;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

pub use aead::AeadCipher;
pub use freshness::{Clock, Freshness};
pub use hashcash::HashcashAuth;
pub use hmac::HmacAuth;
pub use pipeline::{OpenError, SealError, Stage, open_inner, open_outer, seal};

use crate::peer::{Peer, PeerData};
use crate::{Message, MessageType};

/// What a plugin knows about the message's other end and about this node.
#[derive(Clone, Copy, Default)]
pub struct PluginContext<'a> {
    /// The remote peer, when known (from peer management).
    pub peer: Option<&'a Peer>,
    /// The remote address, when known.
    pub addr: Option<SocketAddr>,
    /// This node's own peer, when set.
    pub local: Option<&'a Peer>,
    /// The node's peer plugin, to decode peer data.
    pub peer_plugin: Option<&'a dyn PeerPlugin>,
    /// This node's instance id: random, drawn when the node is bound or built (so two nodes in
    /// one process differ even when they share plugin instances). An auth plugin binds it into
    /// what it sends, and refuses a message carrying its own id: that message was sent by this
    /// node and reflected back ([`AuthError::Reflected`]). `None` outside a node.
    pub node: Option<u64>,
}

impl fmt::Debug for PluginContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginContext")
            .field("peer", &self.peer.map(|p| &p.id))
            .field("addr", &self.addr)
            .field("local", &self.local.map(|p| &p.id))
            .finish()
    }
}

impl<'a> PluginContext<'a> {
    /// The remote peer's decoded data, when both the peer and a peer plugin are known.
    pub fn peer_data(&self) -> Option<PeerData> {
        let (peer, plugin) = (self.peer?, self.peer_plugin?);
        plugin.decode_data(&peer.data).ok()
    }

    /// This node's decoded peer data.
    pub fn local_data(&self) -> Option<PeerData> {
        let (peer, plugin) = (self.local?, self.peer_plugin?);
        plugin.decode_data(&peer.data).ok()
    }
}

/// Why an auth check failed (or why fields could not be made).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A field the plugin needs is absent.
    #[error("missing auth field {0:?}")]
    MissingField(String),
    /// A field is present but malformed (wrong length, not a number, …).
    #[error("malformed auth field {0:?}")]
    MalformedField(String),
    /// The MAC or signature does not verify.
    #[error("invalid MAC or signature")]
    Invalid,
    /// The timestamp is outside the accepted window.
    #[error("timestamp {ts} outside the window around {now}")]
    Stale {
        /// The message's timestamp (seconds since the Unix epoch).
        ts: u64,
        /// This node's clock.
        now: u64,
    },
    /// The nonce was already seen within the window.
    #[error("replayed nonce")]
    Replay,
    /// The message was sent by this very node and came back (reflected by someone on the path).
    #[error("message sent by this node, reflected back")]
    Reflected,
    /// The replay cache is full of live nonces; the message is refused rather than risk a replay.
    #[error("replay cache full")]
    CacheFull,
    /// The sender's key is unknown (peer not known, or not allowed).
    #[error("unknown peer key")]
    UnknownKey,
    /// Proof of work below the required difficulty.
    #[error("insufficient proof of work: {got} < {need} bits")]
    InsufficientWork {
        /// Leading zero bits found.
        got: u32,
        /// Bits required.
        need: u32,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Why encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CipherError {
    /// A field the plugin needs (IV, nonce) is absent.
    #[error("missing cipher field {0:?}")]
    MissingField(String),
    /// A field is present but malformed.
    #[error("malformed cipher field {0:?}")]
    MalformedField(String),
    /// The ciphertext does not authenticate (wrong key or tampering).
    #[error("decryption failed")]
    Decrypt,
    /// The peer's key is unknown, so nothing can be encrypted to or decrypted from it.
    #[error("unknown peer key")]
    UnknownKey,
    /// The encrypted message would exceed the size limits.
    #[error("encrypted message too large: {0}")]
    TooLarge(#[from] crate::message::EncodeError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Why peer data or a packed peer could not be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The bytes do not decode.
    #[error("malformed peer data: {0}")]
    Malformed(String),
    /// The peer is not acceptable (no id, missing key, …).
    #[error("invalid peer: {0}")]
    Invalid(String),
}

/// Authenticates messages: adds fields on send ([`make`](Self::make)), verifies them on receive
/// ([`check`](Self::check)).
///
/// `check` is the inverse of `make`: after verifying, it removes the fields `make` added, so that a
/// plugin further in (an inner plugin) sees the message exactly as it was when it sealed it. `make`
/// should refuse to overwrite a field that is already present (two plugins with the same field
/// names stacked by mistake), returning [`AuthError::Other`].
///
/// A check must never panic on malformed fields; return an [`AuthError`]. Plugins are shared
/// between connections (`&self`), so keep mutable state (a replay cache) behind a lock.
///
/// ```
/// use netaio::plugin::{AuthError, AuthPlugin, PluginContext};
/// use netaio::Message;
///
/// /// Accepts messages that carry a fixed token (an example, not security).
/// struct Token(&'static [u8]);
///
/// impl AuthPlugin for Token {
///     fn make(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
///         msg.auth.insert("token", self.0);
///         Ok(())
///     }
///     fn check(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
///         match msg.auth.remove("token") {
///             Some(t) if t.as_ref() == self.0 => Ok(()),
///             Some(_) => Err(AuthError::Invalid),
///             None => Err(AuthError::MissingField("token".into())),
///         }
///     }
/// }
/// ```
pub trait AuthPlugin: Send + Sync + 'static {
    /// Add this plugin's fields to an outgoing message.
    fn make(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError>;

    /// Verify an incoming message, then remove this plugin's fields from it.
    fn check(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError>;

    /// The reply to a message that failed [`check`](Self::check) (sent without plugins). Default:
    /// AUTH_ERROR `auth failed` with uri `ERROR`.
    fn error_reply(&self, _err: &AuthError) -> Message {
        Message::new(MessageType::AUTH_ERROR, "ERROR", "auth failed")
    }

    /// True when [`make`](Self::make) depends on the recipient, so a broadcast must be prepared
    /// once per recipient.
    fn is_peer_specific(&self) -> bool {
        false
    }

    /// True when [`make`](Self::make) is CPU-heavy (proof of work): the transports then run it on
    /// the blocking thread pool instead of the async executor.
    fn is_blocking(&self) -> bool {
        false
    }
}

/// Encrypts and decrypts messages.
///
/// `encrypt` may change the content, the uri and the auth fields (to add a nonce or IV); `decrypt`
/// reverses it exactly, removing the fields `encrypt` added. Decryption of a tampered message must
/// fail with [`CipherError::Decrypt`], and must never panic on malformed input.
pub trait CipherPlugin: Send + Sync + 'static {
    /// Encrypt an outgoing message.
    fn encrypt(&self, msg: Message, ctx: &PluginContext<'_>) -> Result<Message, CipherError>;

    /// Decrypt an incoming message.
    fn decrypt(&self, msg: Message, ctx: &PluginContext<'_>) -> Result<Message, CipherError>;

    /// True when encryption depends on the recipient (per-peer keys).
    fn is_peer_specific(&self) -> bool {
        false
    }
}

/// Encodes this node's peer data and packs peers for advertisements.
pub trait PeerPlugin: Send + Sync + 'static {
    /// Encode peer data.
    fn encode_data(&self, data: &PeerData) -> Result<Bytes, PeerError>;
    /// Decode peer data.
    fn decode_data(&self, data: &Bytes) -> Result<PeerData, PeerError>;
    /// Pack a peer (id and data; not its addresses) for an advert or a DISCONNECT.
    fn pack(&self, peer: &Peer) -> Result<Bytes, PeerError>;
    /// Unpack a peer from an advert.
    fn unpack(&self, bytes: &Bytes) -> Result<Peer, PeerError>;
    /// Decide whether a peer is acceptable (default: it has a non-empty id and its data decodes).
    fn validate(&self, peer: &Peer) -> Result<(), PeerError> {
        if peer.id.is_empty() {
            return Err(PeerError::Invalid("empty id".into()));
        }
        self.decode_data(&peer.data).map(|_| ())
    }
}

/// The native peer plugin: peer data as postcard of a name → bytes map; a packed peer is postcard
/// of `(id, data)`.
///
/// ```
/// use netaio::peer::{Peer, PeerData};
/// use netaio::plugin::{PeerPlugin, PostcardPeerPlugin};
///
/// let mut data = PeerData::new();
/// data.insert("name".into(), bytes::Bytes::from_static(b"alice"));
/// let encoded = PostcardPeerPlugin.encode_data(&data).unwrap();
/// let peer = Peer::new("a1").with_data(encoded);
/// let packed = PostcardPeerPlugin.pack(&peer).unwrap();
/// let back = PostcardPeerPlugin.unpack(&packed).unwrap();
/// assert_eq!(back.id, peer.id);
/// assert_eq!(PostcardPeerPlugin.decode_data(&back.data).unwrap(), data);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PostcardPeerPlugin;

impl PeerPlugin for PostcardPeerPlugin {
    fn encode_data(&self, data: &PeerData) -> Result<Bytes, PeerError> {
        let pairs: Vec<(&str, &[u8])> =
            data.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect();
        postcard::to_allocvec(&pairs)
            .map(Bytes::from)
            .map_err(|e| PeerError::Malformed(e.to_string()))
    }

    fn decode_data(&self, data: &Bytes) -> Result<PeerData, PeerError> {
        if data.is_empty() {
            return Ok(PeerData::new());
        }
        let pairs: Vec<(&str, &[u8])> =
            postcard::from_bytes(data).map_err(|e| PeerError::Malformed(e.to_string()))?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), data.slice_ref(v)))
            .collect())
    }

    fn pack(&self, peer: &Peer) -> Result<Bytes, PeerError> {
        postcard::to_allocvec(&(peer.id.as_ref(), peer.data.as_ref()))
            .map(Bytes::from)
            .map_err(|e| PeerError::Malformed(e.to_string()))
    }

    fn unpack(&self, bytes: &Bytes) -> Result<Peer, PeerError> {
        let (id, data): (&[u8], &[u8]) =
            postcard::from_bytes(bytes).map_err(|e| PeerError::Malformed(e.to_string()))?;
        Ok(Peer::new(bytes.slice_ref(id)).with_data(bytes.slice_ref(data)))
    }
}

/// An auth plugin and a cipher plugin, either optional: a node's instance plugins, or the inner
/// plugins of one handler or one call.
///
/// ```
/// use netaio::plugin::Plugins;
/// let none = Plugins::new();
/// assert!(none.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Plugins {
    /// The auth plugin.
    pub auth: Option<Arc<dyn AuthPlugin>>,
    /// The cipher plugin.
    pub cipher: Option<Arc<dyn CipherPlugin>>,
}

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugins")
            .field("auth", &self.auth.is_some())
            .field("cipher", &self.cipher.is_some())
            .finish()
    }
}

impl Plugins {
    /// No plugins.
    pub const fn new() -> Self {
        Self {
            auth: None,
            cipher: None,
        }
    }

    /// With this auth plugin.
    #[must_use]
    pub fn auth(mut self, plugin: impl AuthPlugin) -> Self {
        self.auth = Some(Arc::new(plugin));
        self
    }

    /// With this (shared) auth plugin.
    #[must_use]
    pub fn auth_arc(mut self, plugin: Arc<dyn AuthPlugin>) -> Self {
        self.auth = Some(plugin);
        self
    }

    /// With this cipher plugin.
    #[must_use]
    pub fn cipher(mut self, plugin: impl CipherPlugin) -> Self {
        self.cipher = Some(Arc::new(plugin));
        self
    }

    /// With this (shared) cipher plugin.
    #[must_use]
    pub fn cipher_arc(mut self, plugin: Arc<dyn CipherPlugin>) -> Self {
        self.cipher = Some(plugin);
        self
    }

    /// True when neither plugin is set.
    pub fn is_empty(&self) -> bool {
        self.auth.is_none() && self.cipher.is_none()
    }

    /// True when a plugin is peer-specific.
    pub fn is_peer_specific(&self) -> bool {
        self.auth.as_ref().is_some_and(|a| a.is_peer_specific())
            || self.cipher.as_ref().is_some_and(|c| c.is_peer_specific())
    }

    /// True when the auth plugin's `make` is CPU-heavy.
    pub fn is_blocking(&self) -> bool {
        self.auth.as_ref().is_some_and(|a| a.is_blocking())
    }

    /// These plugins with the auth and/or cipher switched off (`use_auth` / `use_cipher`).
    #[must_use]
    pub fn select(&self, use_auth: bool, use_cipher: bool) -> Self {
        Self {
            auth: self.auth.clone().filter(|_| use_auth),
            cipher: self.cipher.clone().filter(|_| use_cipher),
        }
    }
}

/// A message that failed an auth check, as given to the auth-error hook.
#[derive(Clone, Copy)]
pub struct AuthFailure<'a> {
    /// The message as received.
    pub message: &'a Message,
    /// Why the check failed.
    pub error: &'a AuthError,
    /// Instance or inner plugin.
    pub stage: Stage,
    /// The plugin that refused it.
    pub plugin: &'a dyn AuthPlugin,
    /// The sender's address.
    pub addr: SocketAddr,
}

impl fmt::Debug for AuthFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFailure")
            .field("type", &self.message.message_type)
            .field("error", self.error)
            .field("stage", &self.stage)
            .field("addr", &self.addr)
            .finish()
    }
}

/// Decides the reply to a message that failed an auth check (sent without plugins); `None` sends
/// nothing. Set with the transports' `auth_error_hook`.
pub type AuthErrorHook = Arc<dyn Fn(&AuthFailure<'_>) -> Option<Message> + Send + Sync>;

/// The default auth-error hook: the plugin's [`AuthPlugin::error_reply`], except for a message that
/// is itself an error (no error ping-pong).
pub fn default_auth_error_reply(failure: &AuthFailure<'_>) -> Option<Message> {
    if failure.message.message_type.is_error() {
        None
    } else {
        Some(failure.plugin.error_reply(failure.error))
    }
}

/// Per-call options for sending: inner plugins and the `use_auth` / `use_cipher` switches for the
/// node's instance plugins, and for requests a timeout.
///
/// ```
/// use std::time::Duration;
/// use netaio::plugin::SendOptions;
///
/// let opts = SendOptions::new().use_cipher(false).timeout(Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Inner plugins for this call (a request's reply is opened with them too).
    pub inner: Plugins,
    /// Apply the instance auth plugin (default true).
    pub use_auth: bool,
    /// Apply the instance cipher plugin (default true).
    pub use_cipher: bool,
    /// Request timeout; `None` uses the node's default.
    pub timeout: Option<std::time::Duration>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            inner: Plugins::new(),
            use_auth: true,
            use_cipher: true,
            timeout: None,
        }
    }
}

impl SendOptions {
    /// The defaults: instance plugins on, no inner plugins, the node's timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// With these inner plugins.
    #[must_use]
    pub fn inner(mut self, inner: Plugins) -> Self {
        self.inner = inner;
        self
    }

    /// True when a plugin applied under these options is peer-specific.
    pub(crate) fn is_peer_specific(&self, outer: &Plugins) -> bool {
        self.inner.is_peer_specific()
            || outer
                .select(self.use_auth, self.use_cipher)
                .is_peer_specific()
    }

    /// Switch the instance auth plugin on or off.
    #[must_use]
    pub fn use_auth(mut self, on: bool) -> Self {
        self.use_auth = on;
        self
    }

    /// Switch the instance cipher plugin on or off.
    #[must_use]
    pub fn use_cipher(mut self, on: bool) -> Self {
        self.use_cipher = on;
        self
    }

    /// With this request timeout.
    #[must_use]
    pub fn timeout(mut self, t: std::time::Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// A node's plugin setup, shared by its connections.
#[derive(Clone)]
pub(crate) struct NodePlugins {
    pub(crate) outer: Plugins,
    pub(crate) local: Option<Peer>,
    pub(crate) peer_plugin: Arc<dyn PeerPlugin>,
    pub(crate) auth_error: AuthErrorHook,
    /// [`PluginContext::node`]; drawn again by [`for_new_node`](Self::for_new_node).
    pub(crate) node: u64,
}

impl fmt::Debug for NodePlugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodePlugins")
            .field("outer", &self.outer)
            .field("local", &self.local.as_ref().map(|p| &p.id))
            .finish_non_exhaustive()
    }
}

impl Default for NodePlugins {
    fn default() -> Self {
        Self {
            outer: Plugins::new(),
            local: None,
            peer_plugin: Arc::new(PostcardPeerPlugin),
            auth_error: Arc::new(default_auth_error_reply),
            node: rand::random(),
        }
    }
}

impl NodePlugins {
    /// The setup for a node being bound or built: its own instance id, whatever template (a
    /// cloned builder) it came from.
    pub(crate) fn for_new_node(mut self) -> Self {
        self.node = rand::random();
        self
    }

    pub(crate) fn ctx<'a>(
        &'a self,
        peer: Option<&'a Peer>,
        addr: Option<SocketAddr>,
    ) -> PluginContext<'a> {
        PluginContext {
            peer,
            addr,
            local: self.local.as_ref(),
            peer_plugin: Some(&*self.peer_plugin),
            node: Some(self.node),
        }
    }

    /// Seal inline (for synchronous callers).
    pub(crate) fn seal_now(
        &self,
        msg: Message,
        opts: &SendOptions,
        peer: Option<&Peer>,
        addr: Option<SocketAddr>,
    ) -> Result<Message, SealError> {
        let outer = self.outer.select(opts.use_auth, opts.use_cipher);
        seal(msg, &opts.inner, &outer, &self.ctx(peer, addr))
    }

    /// Seal, on the blocking pool when a plugin says its `make` is CPU-heavy.
    pub(crate) async fn seal(
        &self,
        msg: Message,
        opts: &SendOptions,
        peer: Option<&Peer>,
        addr: Option<SocketAddr>,
    ) -> Result<Message, SealError> {
        let outer = self.outer.select(opts.use_auth, opts.use_cipher);
        if !(outer.is_blocking() || opts.inner.is_blocking()) {
            return seal(msg, &opts.inner, &outer, &self.ctx(peer, addr));
        }
        let this = self.clone();
        let inner = opts.inner.clone();
        let peer = peer.cloned();
        let joined = tokio::task::spawn_blocking(move || {
            seal(msg, &inner, &outer, &this.ctx(peer.as_ref(), addr))
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(SealError::Auth {
                stage: Stage::Outer,
                source: AuthError::Other(format!("sealing task failed: {e}")),
            })
        })
    }
}
