//! What goes on the wire: the chat's peer data, its plugins, and the message envelope.
//!
//! - **Discovery.** Each chat is a `UdpNode` doing peer management under the app id [`APP_ID`]:
//!   it multicasts `ADVERTISE_PEER` carrying its peer, whose id is the hex of its Ed25519 public
//!   key and whose data holds its two public keys and its nick ([`ChatPeerPlugin`]).
//! - **Messages.** A chat message is `PUBLISH_URI "chat"` whose content is an [`Envelope`]
//!   (kind, random id, sender's nick, text). It goes to each recipient on its own, through the
//!   route's inner plugins ([`chat_plugins`]): `X25519Cipher` encrypts it to that recipient's key,
//!   then `Ed25519Auth` signs the ciphertext with the sender's key. The recipient answers `OK`
//!   (sealed the same way), so the sender knows it arrived and retries otherwise; the envelope id
//!   makes a retried message show once.
//! - **Room secret.** With one, every datagram (adverts included) also carries an HMAC and is
//!   encrypted with keys stretched from the secret ([`room_plugins`]), so people without it
//!   neither discover nor read the room.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use netaio::Message;
use netaio::message::AuthFields;
use netaio::peer::{Peer, PeerData};
use netaio::plugin::{
    AeadCipher, AuthError, AuthPlugin, HmacAuth, PeerError, PeerPlugin, PluginContext, Plugins,
};
use netaio_asymmetric::{AsymmetricPeerPlugin, Ed25519Auth, Identity, PublicKeys, X25519Cipher};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The peer-management app id (the uri of adverts): only chats of this protocol version see each
/// other.
pub const APP_ID: &str = "netaio-chat/1";
/// The uri of chat messages.
pub const CHAT_URI: &str = "chat";
/// The peer-data entry holding the nick.
pub const NICK_ENTRY: &str = "nick";
/// The longest nick, in bytes (nicks are ASCII).
pub const MAX_NICK: usize = 24;
/// The longest message text, in bytes of UTF-8.
pub const MAX_TEXT: usize = 4000;
/// The envelope format version (the first content byte).
pub const ENVELOPE_VERSION: u8 = 1;
/// PBKDF2 rounds applied to a room secret.
pub const ROOM_KDF_ROUNDS: u32 = 100_000;
/// PBKDF2 salt for a room secret (fixed: every member must derive the same keys).
pub const ROOM_KDF_SALT: &[u8] = b"netaio-chat/room-secret/v1";
/// The auth field in which [`SignedBy`] hands the verified sender key to the handler. It never
/// travels: a received message carrying it is refused.
pub const VERIFIED_SENDER_FIELD: &str = "chat.verified-sender";

/// Why a nick is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NickError {
    /// Empty.
    #[error("a nick cannot be empty")]
    Empty,
    /// Longer than [`MAX_NICK`].
    #[error("a nick has at most {MAX_NICK} characters")]
    TooLong,
    /// A character other than letters, digits, `-`, `_` and `.`.
    #[error("a nick has only letters, digits, `-`, `_` and `.` (got {0:?})")]
    BadChar(char),
}

/// Check a nick: 1 to [`MAX_NICK`] ASCII letters, digits, `-`, `_` or `.`, not starting with `-`.
/// ASCII only, so that no two nicks look alike on screen (no homoglyphs, no control characters).
///
/// ```
/// use netaio_chat::protocol::valid_nick;
/// assert!(valid_nick("alice_2").is_ok());
/// assert!(valid_nick("al ice").is_err());
/// assert!(valid_nick("аlice").is_err()); // Cyrillic а
/// ```
pub fn valid_nick(nick: &str) -> Result<(), NickError> {
    if nick.is_empty() {
        return Err(NickError::Empty);
    }
    if nick.len() > MAX_NICK {
        return Err(NickError::TooLong);
    }
    if let Some(c) = nick
        .chars()
        .enumerate()
        .find(|&(i, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || (c == '-' && i > 0)))
        .map(|(_, c)| c)
    {
        return Err(NickError::BadChar(c));
    }
    Ok(())
}

/// The peer id of a chat: the lowercase hex of its Ed25519 public key (64 characters).
pub fn peer_id(ed25519: &[u8; 32]) -> Bytes {
    Bytes::from(hex(ed25519))
}

/// A key's fingerprint: the first 8 bytes of SHA-256 of the Ed25519 public key, in hex (16
/// characters). `/peers` shows it; `nick#XXXXXXXX` (its first 8) tells apart people using one nick.
///
/// ```
/// let fp = netaio_chat::protocol::fingerprint(&[1; 32]);
/// assert_eq!(fp.len(), 16);
/// ```
pub fn fingerprint(ed25519: &[u8; 32]) -> String {
    hex(Sha256::digest(ed25519).get(..8).unwrap_or_default())
}

/// Lowercase hex (`hex::encode`, under the name the chat's modules call).
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The chat's [`PeerPlugin`]: `AsymmetricPeerPlugin`'s encoding (the two public keys), plus a
/// nick, and stricter validation: the peer id must be the hex of its own Ed25519 key (so an advert
/// cannot put someone's id on another key) and the nick must be valid.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatPeerPlugin;

impl ChatPeerPlugin {
    /// This chat's own peer: id from the key, data = public keys + nick.
    pub fn local_peer(identity: &Identity, nick: &str) -> Result<Peer, PeerError> {
        let keys = identity.public_keys();
        let mut extra = PeerData::new();
        extra.insert(NICK_ENTRY.into(), Bytes::copy_from_slice(nick.as_bytes()));
        identity.peer_with(peer_id(&keys.ed25519), extra)
    }

    /// A peer's public keys (not curve-checked; [`validate`](PeerPlugin::validate) does that).
    pub fn keys(peer: &Peer) -> Result<PublicKeys, PeerError> {
        AsymmetricPeerPlugin.public_keys(peer)
    }

    /// A peer's advertised nick (validated).
    pub fn nick(peer: &Peer) -> Result<String, PeerError> {
        let data = AsymmetricPeerPlugin.decode_data(&peer.data)?;
        let raw = data
            .get(NICK_ENTRY)
            .ok_or_else(|| PeerError::Invalid("no nick".into()))?;
        let nick =
            std::str::from_utf8(raw).map_err(|_| PeerError::Invalid("nick is not UTF-8".into()))?;
        valid_nick(nick).map_err(|e| PeerError::Invalid(e.to_string()))?;
        Ok(nick.to_owned())
    }
}

impl PeerPlugin for ChatPeerPlugin {
    fn encode_data(&self, data: &PeerData) -> Result<Bytes, PeerError> {
        AsymmetricPeerPlugin.encode_data(data)
    }

    fn decode_data(&self, data: &Bytes) -> Result<PeerData, PeerError> {
        AsymmetricPeerPlugin.decode_data(data)
    }

    fn pack(&self, peer: &Peer) -> Result<Bytes, PeerError> {
        AsymmetricPeerPlugin.pack(peer)
    }

    fn unpack(&self, bytes: &Bytes) -> Result<Peer, PeerError> {
        AsymmetricPeerPlugin.unpack(bytes)
    }

    fn validate(&self, peer: &Peer) -> Result<(), PeerError> {
        AsymmetricPeerPlugin.validate(peer)?;
        let keys = Self::keys(peer)?;
        if peer.id != peer_id(&keys.ed25519) {
            return Err(PeerError::Invalid(
                "peer id is not the hex of its Ed25519 key".into(),
            ));
        }
        Self::nick(peer).map(|_| ())
    }
}

/// `Ed25519Auth` that also tells the handler *which* key verified the signature.
///
/// On a UDP node the plugin context's peer is the one last heard at the datagram's source, and
/// a handler that looked it up again could see another peer if the table changed in between (an
/// advert from the same address). So the key that verified is written into the message, in the
/// auth field [`VERIFIED_SENDER_FIELD`], right after the check, and the handler reads it with
/// [`verified_sender`]. A received message that already carries that field is refused.
pub struct SignedBy {
    inner: Ed25519Auth,
}

impl fmt::Debug for SignedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedBy")
            .field("key", &hex(self.inner.verifying_key().as_bytes()))
            .finish()
    }
}

impl SignedBy {
    /// Sign with `identity`'s key. The field names are prefixed (`e.ts`, `e.nonce`, `e.sig`,
    /// `e.kid`) so they do not collide with the room secret's `HmacAuth` (`ts`, `nonce`, `hmac`).
    pub fn new(identity: &Identity) -> Self {
        Self {
            inner: Ed25519Auth::new(identity)
                .ts_field("e.ts")
                .nonce_field("e.nonce")
                .sig_field("e.sig")
                .key_id_field("e.kid"),
        }
    }
}

impl AuthPlugin for SignedBy {
    fn make(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        if msg.auth.contains(VERIFIED_SENDER_FIELD) {
            return Err(AuthError::Other(format!(
                "{VERIFIED_SENDER_FIELD} is reserved"
            )));
        }
        self.inner.make(msg, ctx)
    }

    fn check(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        if msg.auth.contains(VERIFIED_SENDER_FIELD) {
            return Err(AuthError::MalformedField(VERIFIED_SENDER_FIELD.into()));
        }
        // The key `Ed25519Auth` verifies with: the one in the context peer's data.
        let peer = ctx.peer.ok_or(AuthError::UnknownKey)?;
        let keys = ChatPeerPlugin::keys(peer).map_err(|_| AuthError::UnknownKey)?;
        self.inner.check(msg, ctx)?;
        msg.auth
            .insert(VERIFIED_SENDER_FIELD, Bytes::copy_from_slice(&keys.ed25519));
        Ok(())
    }

    fn error_reply(&self, err: &AuthError) -> Message {
        self.inner.error_reply(err)
    }

    fn is_peer_specific(&self) -> bool {
        false
    }
}

/// The Ed25519 key that verified a message checked by [`SignedBy`].
pub fn verified_sender(auth: &AuthFields) -> Option<[u8; 32]> {
    auth.get(VERIFIED_SENDER_FIELD)
        .and_then(|b| <[u8; 32]>::try_from(b.as_ref()).ok())
}

/// The inner plugins of the chat route (and of every chat send): encrypt to the recipient with
/// `X25519Cipher`, sign with [`SignedBy`].
pub fn chat_plugins(identity: &Identity) -> Plugins {
    Plugins::new()
        .cipher(X25519Cipher::new(identity))
        .auth(SignedBy::new(identity))
}

/// The instance plugins for a room secret: `HmacAuth` and `AeadCipher` (uri encrypted too), keyed
/// from the secret stretched by PBKDF2-HMAC-SHA256 ([`ROOM_KDF_ROUNDS`] rounds,
/// [`ROOM_KDF_SALT`]). Costs a fraction of a second: call it once.
pub fn room_plugins(secret: &[u8]) -> (HmacAuth, AeadCipher) {
    let key = zeroize::Zeroizing::new(crate::kdf::pbkdf2_sha256(
        secret,
        ROOM_KDF_SALT,
        ROOM_KDF_ROUNDS,
    ));
    (
        HmacAuth::new(key.as_slice()),
        AeadCipher::new(key.as_slice()).encrypt_uri(true),
    )
}

/// What a chat message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// To everyone in the room.
    Room,
    /// To one person.
    Direct,
    /// No text: the sender's nick changed (or is told to a newcomer).
    Nick,
}

/// One chat message, the plaintext of the encrypted content: `ENVELOPE_VERSION` then postcard of
/// `(kind, id, nick, text)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Room, direct or nick change.
    pub kind: Kind,
    /// Random; the same for every recipient and every retry of one message.
    pub id: [u8; 16],
    /// The sender's nick when it sent this.
    pub nick: String,
    /// The text (empty for [`Kind::Nick`]).
    pub text: String,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Empty content, or a version this chat does not speak.
    #[error("unknown envelope version")]
    Version,
    /// Not postcard of the envelope, or bytes after it.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// The nick is not valid.
    #[error("bad nick: {0}")]
    Nick(#[from] NickError),
    /// Text over [`MAX_TEXT`] bytes.
    #[error("text longer than {MAX_TEXT} bytes")]
    TooLong,
    /// Text where there should be none, or none where there should be some.
    #[error("text does not fit the kind")]
    Text,
}

impl Envelope {
    /// A new message with a random id.
    pub fn new(kind: Kind, nick: impl Into<String>, text: impl Into<String>) -> Self {
        let mut id = [0u8; 16];
        rand::fill(&mut id[..]);
        Self {
            kind,
            id,
            nick: nick.into(),
            text: text.into(),
        }
    }

    /// The encoded content.
    pub fn encode(&self) -> Bytes {
        let out = vec![ENVELOPE_VERSION];
        // Serializing to a Vec only fails for types postcard cannot represent; these are plain.
        match postcard::to_extend(self, out) {
            Ok(v) => Bytes::from(v),
            Err(_) => Bytes::from_static(&[ENVELOPE_VERSION]),
        }
    }

    /// Decode and validate content from the network.
    pub fn decode(content: &[u8]) -> Result<Self, EnvelopeError> {
        let Some((&ENVELOPE_VERSION, rest)) = content.split_first() else {
            return Err(EnvelopeError::Version);
        };
        let (env, left): (Envelope, _) =
            postcard::take_from_bytes(rest).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if !left.is_empty() {
            return Err(EnvelopeError::Malformed("trailing bytes".into()));
        }
        valid_nick(&env.nick)?;
        if env.text.len() > MAX_TEXT {
            return Err(EnvelopeError::TooLong);
        }
        let wants_text = env.kind != Kind::Nick;
        if env.text.trim().is_empty() == wants_text {
            return Err(EnvelopeError::Text);
        }
        Ok(env)
    }

    /// The chat message carrying this envelope.
    pub fn to_message(&self) -> Message {
        Message::new(netaio::MessageType::PUBLISH_URI, CHAT_URI, self.encode())
    }
}

/// Replace what could change the terminal or mislead the reader in text from the network: control
/// characters (escape sequences, carriage returns, newlines) and the Unicode bidirectional
/// overrides, each shown as `\u{..}`.
///
/// ```
/// use netaio_chat::protocol::sanitize;
/// assert_eq!(sanitize("hi"), "hi");
/// assert_eq!(sanitize("a\x1b[2Jb"), "a\\u{1b}[2Jb");
/// assert_eq!(sanitize("x\u{202e}y"), "x\\u{202e}y");
/// ```
pub fn sanitize(text: &str) -> Cow<'_, str> {
    fn bad(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netaio::plugin::{open_inner, seal};

    #[test]
    fn nicks() {
        for ok in ["a", "alice", "Bob-2", "x.y_z", &"n".repeat(MAX_NICK)] {
            assert_eq!(valid_nick(ok), Ok(()), "{ok}");
        }
        assert_eq!(valid_nick(""), Err(NickError::Empty));
        assert_eq!(
            valid_nick(&"n".repeat(MAX_NICK + 1)),
            Err(NickError::TooLong)
        );
        assert_eq!(valid_nick("-a"), Err(NickError::BadChar('-')));
        assert_eq!(valid_nick("a b"), Err(NickError::BadChar(' ')));
        assert_eq!(valid_nick("a#1"), Err(NickError::BadChar('#')));
        assert_eq!(valid_nick("a\x1b"), Err(NickError::BadChar('\x1b')));
    }

    #[test]
    fn envelope_round_trip_and_refusals() {
        let e = Envelope::new(Kind::Room, "alice", "hello");
        assert_eq!(Envelope::decode(&e.encode()), Ok(e.clone()));
        let n = Envelope::new(Kind::Nick, "alicia", "");
        assert_eq!(Envelope::decode(&n.encode()), Ok(n));

        assert_eq!(Envelope::decode(b""), Err(EnvelopeError::Version));
        let mut v2 = e.encode().to_vec();
        v2[0] = 2;
        assert_eq!(Envelope::decode(&v2), Err(EnvelopeError::Version));
        let mut trailing = e.encode().to_vec();
        trailing.push(0);
        assert!(matches!(
            Envelope::decode(&trailing),
            Err(EnvelopeError::Malformed(_))
        ));
        let truncated = &e.encode()[..5];
        assert!(matches!(
            Envelope::decode(truncated),
            Err(EnvelopeError::Malformed(_))
        ));
        let bad_nick = Envelope::new(Kind::Room, "al ice", "x");
        assert!(matches!(
            Envelope::decode(&bad_nick.encode()),
            Err(EnvelopeError::Nick(_))
        ));
        let long = Envelope::new(Kind::Room, "a", "x".repeat(MAX_TEXT + 1));
        assert_eq!(
            Envelope::decode(&long.encode()),
            Err(EnvelopeError::TooLong)
        );
        let empty = Envelope::new(Kind::Direct, "a", "  ");
        assert_eq!(Envelope::decode(&empty.encode()), Err(EnvelopeError::Text));
        let nick_with_text = Envelope::new(Kind::Nick, "a", "x");
        assert_eq!(
            Envelope::decode(&nick_with_text.encode()),
            Err(EnvelopeError::Text)
        );
    }

    #[test]
    fn decode_never_panics_on_garbage() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if i == 0 { 1 } else { (seed >> 33) as u8 }
                })
                .collect();
            let _ = Envelope::decode(&bytes);
        }
    }

    #[test]
    fn peer_validation_binds_the_id_to_the_key_and_needs_a_nick() {
        let id = Identity::generate();
        let peer = ChatPeerPlugin::local_peer(&id, "alice").unwrap();
        assert_eq!(ChatPeerPlugin.validate(&peer), Ok(()));
        assert_eq!(ChatPeerPlugin::nick(&peer).unwrap(), "alice");
        // Another key under this id.
        let other = Identity::generate();
        let mut stolen = ChatPeerPlugin::local_peer(&other, "alice").unwrap();
        stolen.id = peer.id.clone();
        assert!(ChatPeerPlugin.validate(&stolen).is_err());
        // No nick, a bad nick.
        let plain = id.peer(peer.id.clone()).unwrap();
        assert!(ChatPeerPlugin.validate(&plain).is_err());
        let mut extra = PeerData::new();
        extra.insert(NICK_ENTRY.into(), Bytes::from_static(b"a\x1bb"));
        let bad = id.peer_with(peer.id.clone(), extra).unwrap();
        assert!(ChatPeerPlugin.validate(&bad).is_err());
    }

    fn ctx(peer: &Peer) -> PluginContext<'_> {
        PluginContext {
            peer: Some(peer),
            peer_plugin: Some(&ChatPeerPlugin),
            ..PluginContext::default()
        }
    }

    #[test]
    fn signed_by_reports_the_verifying_key_and_refuses_other_keys() {
        let (alice, bob, mallory) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let alice_peer = ChatPeerPlugin::local_peer(&alice, "alice").unwrap();
        let bob_peer = ChatPeerPlugin::local_peer(&bob, "bob").unwrap();
        let msg = Envelope::new(Kind::Room, "alice", "hi").to_message();

        let sealed = seal(
            msg.clone(),
            &chat_plugins(&alice),
            &Plugins::new(),
            &ctx(&bob_peer),
        )
        .unwrap();
        assert_ne!(sealed.content(), msg.content(), "encrypted");
        let opened = open_inner(sealed.clone(), &chat_plugins(&bob), &ctx(&alice_peer)).unwrap();
        assert_eq!(
            verified_sender(&opened.auth),
            Some(alice.public_keys().ed25519)
        );
        assert_eq!(opened.content(), msg.content());

        // Mallory signs and encrypts with her own key a message bob attributes to alice (it
        // arrives from an address bob knows as alice's): the signature check refuses it.
        let forged = seal(
            msg.clone(),
            &chat_plugins(&mallory),
            &Plugins::new(),
            &ctx(&bob_peer),
        )
        .unwrap();
        let e = open_inner(forged, &chat_plugins(&bob), &ctx(&alice_peer)).unwrap_err();
        assert!(
            matches!(
                e,
                netaio::plugin::OpenError::Auth {
                    source: AuthError::Invalid,
                    ..
                }
            ),
            "{e}"
        );

        // A sender cannot plant the verified-sender field itself.
        let mut planted = msg.clone();
        planted
            .auth
            .insert(VERIFIED_SENDER_FIELD, Bytes::copy_from_slice(&[0; 32]));
        assert!(
            seal(
                planted,
                &chat_plugins(&alice),
                &Plugins::new(),
                &ctx(&bob_peer)
            )
            .is_err()
        );
        let mut planted = sealed;
        planted
            .auth
            .insert(VERIFIED_SENDER_FIELD, Bytes::copy_from_slice(&[0; 32]));
        assert!(open_inner(planted, &chat_plugins(&bob), &ctx(&alice_peer)).is_err());
    }

    #[test]
    fn room_plugins_depend_on_the_secret() {
        let (a1, c1) = room_plugins(b"one");
        let (a2, _) = room_plugins(b"two");
        let outer = |a, c| Plugins::new().auth(a).cipher(c);
        let none = PluginContext::default();
        let msg = Envelope::new(Kind::Room, "a", "x").to_message();
        let sealed = seal(msg.clone(), &Plugins::new(), &outer(a1, c1), &none).unwrap();
        assert!(sealed.uri().is_empty(), "the uri is encrypted too");
        let (a1b, c1b) = room_plugins(b"one");
        let ok = netaio::plugin::open_outer(sealed.clone(), &outer(a1b, c1b), &none).unwrap();
        assert_eq!(ok, msg);
        let (_, c2) = room_plugins(b"two");
        assert!(netaio::plugin::open_outer(sealed, &outer(a2, c2), &none).is_err());
    }

    #[test]
    fn fingerprints_and_ids() {
        let id = Identity::from_seed([1; 32]);
        let k = id.public_keys().ed25519;
        assert_eq!(peer_id(&k).len(), 64);
        assert_eq!(fingerprint(&k), hex(&Sha256::digest(k)[..8]));
        assert_ne!(fingerprint(&k), fingerprint(&[2; 32]));
    }
}
