//! The plugin traits ([`AuthPlugin`], [`CipherPlugin`], [`PeerPlugin`]), what a plugin is
//! told ([`PluginContext`]) and how it fails.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::peer::{Peer, PeerData};
use crate::{Message, MessageType};

/// The auth field that carries, on a received message, the public key an auth plugin verified
/// it with (the signer), for the layers above that bind something to a key: a relay's
/// reservations ([`Relay::reservation_check`](crate::relay::Relay::reservation_check)).
///
/// No message carries it on the wire: a node removes it from every message it receives before
/// any plugin checks it (so a sender that puts it in fails its own signature), and only an auth
/// plugin's `check` sets it (netaio-asymmetric's `Ed25519Auth` with `expose_signer`). A value in
/// it is therefore always a verified signer's key.
///
/// ```
/// assert_eq!(netaio::plugin::SIGNER_FIELD, "netaio-signer");
/// ```
pub const SIGNER_FIELD: &str = "netaio-signer";

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
    /// The message would exceed the size limits once sealed (an auth plugin that also encrypts,
    /// like [`AeadAuth`](super::AeadAuth), adds its tag to the body).
    #[error("sealed message too large: {0}")]
    TooLarge(#[from] crate::message::EncodeError),
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
/// between connections (`&self`), so keep mutable state (a replay cache) behind a lock. A plugin
/// wrapping another forwards the provided methods too ([`is_peer_specific`](Self::is_peer_specific),
/// [`is_blocking`](Self::is_blocking), [`authenticates_sender`](Self::authenticates_sender)):
/// their defaults are false.
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

    /// True when a passed [`check`](Self::check) proves that the message comes from a holder of a
    /// key this node trusts, and a replayed message is refused. A UDP node then takes the
    /// datagram's source address as verified: it answers it in full, and counts its
    /// subscriptions (see [`UdpNode`](crate::udp::UdpNode) on return routability). Otherwise a
    /// forged source address would get the node's full replies, which is how a UDP service is
    /// used for amplification.
    ///
    /// Default false (a plugin must opt in). [`HmacAuth`](crate::plugin::HmacAuth): true;
    /// [`HashcashAuth`](crate::plugin::HashcashAuth): false (work proves no key, and anyone can
    /// do it for a forged address). A plugin that wraps another (to count or log its refusals)
    /// must forward this, as it forwards `check`: left at the default, a UDP node with peer
    /// management never answers an advert to the group, and a newcomer learns of the others
    /// only at their next advert.
    fn authenticates_sender(&self) -> bool {
        false
    }

    /// The plugin's name in diagnostics (the log line of a refused message, a node's
    /// [refusals](crate::udp::UdpHandle::refusals)). Default: the type's name without its path
    /// (`HmacAuth`).
    fn name(&self) -> &'static str {
        short_type_name(std::any::type_name::<Self>())
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

    /// The plugin's name in diagnostics. Default: the type's name without its path
    /// (`AeadCipher`).
    fn name(&self) -> &'static str {
        short_type_name(std::any::type_name::<Self>())
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

/// `netaio::plugin::hmac::HmacAuth` → `HmacAuth`; `a::Wrap<b::C>` → `Wrap<b::C>` (the path of
/// the type itself only, so a generic's arguments stay readable).
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let head = full.find('<').unwrap_or(full.len());
    let start = full
        .get(..head)
        .and_then(|h| h.rfind("::"))
        .map_or(0, |i| i + 2);
    full.get(start..).unwrap_or(full)
}
