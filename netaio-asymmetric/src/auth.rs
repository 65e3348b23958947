//! [`Ed25519Auth`]: Ed25519 signatures over the whole message, with freshness and replay checks.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use netaio::message::AuthFields;
use netaio::plugin::{AuthError, AuthPlugin, Freshness, PluginContext, SIGNER_FIELD};
use netaio::{Message, MessageType};

use crate::Identity;
use crate::peer::{ED25519_FIELD, remote_key};

/// Default name of the timestamp field (8 bytes, big-endian seconds since the Unix epoch).
pub const DEFAULT_TS_FIELD: &str = "ts";
/// Default name of the nonce field (16 random bytes).
pub const DEFAULT_NONCE_FIELD: &str = "nonce";
/// Default name of the signature field (64 bytes).
pub const DEFAULT_SIG_FIELD: &str = "sig";
/// Default name of the key-id field (the first 8 bytes of the signer's Ed25519 public key).
pub const DEFAULT_KEY_ID_FIELD: &str = "kid";

/// The domain tag that starts every signed message.
pub const DOMAIN: &[u8] = b"netaio-asymmetric/ed25519/v1";

/// Length of the nonce [`Ed25519Auth`] makes and accepts.
pub const NONCE_LEN: usize = 16;
/// Length of a key id.
pub const KEY_ID_LEN: usize = 8;

/// The key id of an Ed25519 public key: its first 8 bytes.
///
/// ```
/// let id = netaio_asymmetric::Identity::from_seed([1; 32]);
/// let kid = netaio_asymmetric::auth::key_id(&id.verifying_key());
/// assert_eq!(kid, [0x8a, 0x88, 0xe3, 0xdd, 0x74, 0x09, 0xf1, 0x95]);
/// ```
pub fn key_id(key: &VerifyingKey) -> [u8; KEY_ID_LEN] {
    let mut id = [0u8; KEY_ID_LEN];
    for (dst, src) in id.iter_mut().zip(key.as_bytes()) {
        *dst = *src;
    }
    id
}

fn put(buf: &mut Vec<u8>, part: &[u8]) {
    // Parts are bounded by the frame size (< 2^17 bytes), far below u32::MAX.
    buf.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    buf.extend_from_slice(part);
}

/// The bytes an [`Ed25519Auth`] signature covers, with `u32` big-endian length prefixes:
///
/// ```text
/// len ‖ "netaio-asymmetric/ed25519/v1"
/// type (1 byte)
/// len ‖ uri
/// count (u32) ‖ for every other auth field, in canonical (sorted) order: len ‖ name ‖ len ‖ value
/// len ‖ content
/// ts (u64 BE)
/// len ‖ nonce
/// ```
///
/// "Other" fields are all fields except the three named `ts`, `nonce` and `sig` (whatever they
/// are configured to), so a cipher's nonce, a request id and the key id are all covered.
///
/// ```
/// use netaio::MessageType;
/// use netaio::message::AuthFields;
/// use netaio_asymmetric::auth::signed_bytes;
///
/// let mut fields = AuthFields::new();
/// fields.insert("sig", vec![0u8; 64]); // excluded
/// let bytes = signed_bytes(MessageType::OK, b"u", &fields, ["ts", "nonce", "sig"], b"c", 1, b"n");
/// assert_eq!(bytes.len(), 4 + 28 + 1 + 4 + 1 + 4 + 4 + 1 + 8 + 4 + 1);
/// ```
pub fn signed_bytes(
    message_type: MessageType,
    uri: &[u8],
    fields: &AuthFields,
    exclude: [&str; 3],
    content: &[u8],
    ts: u64,
    nonce: &[u8],
) -> Vec<u8> {
    let others = || fields.iter().filter(|(name, _)| !exclude.contains(name));
    let fields_len: usize = others().map(|(n, v)| 8 + n.len() + v.len()).sum();
    let mut buf = Vec::with_capacity(
        4 + DOMAIN.len()
            + 1
            + 4
            + uri.len()
            + 4
            + fields_len
            + 4
            + content.len()
            + 8
            + 4
            + nonce.len(),
    );
    put(&mut buf, DOMAIN);
    buf.push(message_type.value());
    put(&mut buf, uri);
    let count = others().count();
    buf.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_be_bytes());
    for (name, value) in others() {
        put(&mut buf, name.as_bytes());
        put(&mut buf, value);
    }
    put(&mut buf, content);
    buf.extend_from_slice(&ts.to_be_bytes());
    put(&mut buf, nonce);
    buf
}

/// Signs outgoing messages with Ed25519 and checks incoming ones with `verify_strict`.
///
/// **Make** adds `ts` (8 bytes, big-endian seconds), `nonce` (16 random bytes), `kid` (the
/// signer's [key id](key_id); switch off with [`send_key_id`](Self::send_key_id)) and `sig` (the
/// 64-byte signature over [`signed_bytes`]: a domain tag, the type byte, the uri, every other
/// auth field, the content, the timestamp and the nonce). It refuses to overwrite any of these
/// fields if present ([`AuthError::Other`]), for example when two plugins with the same field
/// names are stacked. Names are configurable.
///
/// **Check**, in this order: the fields are present and well-formed (else
/// [`AuthError::MissingField`] / [`AuthError::MalformedField`]); the timestamp is within the
/// window ([`AuthError::Stale`]); the sender's key is found ([`AuthError::UnknownKey`]); the
/// signature verifies ([`AuthError::Invalid`]); the nonce was not seen within the window
/// ([`AuthError::Replay`]; recorded only now, after the signature verified). Then it removes its
/// fields.
///
/// **Which key.** When the context's peer (`ctx.peer`) has an Ed25519 key in its peer data
/// ([`ED25519_FIELD`]), that key is used, provided it is trusted: peer-data keys are trusted by
/// default ([`trust_peer_keys`](Self::trust_peer_keys)), and keys on the allow-list
/// ([`allow`](Self::allow)) always are. Without a (trusted) peer key, the key id in the message
/// selects the allowed keys to try; an unknown key id, or no allow-list, is
/// [`AuthError::UnknownKey`].
///
/// **Freshness** is the core [`Freshness`] (default ±60 s window, 65,536 nonces counted per signing
/// key, the heaviest key making room when full): the same rules as the core HMAC plugin. Replace it with [`freshness`](Self::freshness).
///
/// **Not peer-specific** ([`is_peer_specific`](AuthPlugin::is_peer_specific) is false): the
/// signature does not depend on the recipient, so a broadcast is signed once. The flip side: a
/// message signed for one recipient verifies at any other node that trusts the signer, within the
/// window (each node has its own replay cache). If that matters, put the recipient in the content,
/// or encrypt first with the peer-specific [`X25519Cipher`](crate::X25519Cipher) (the signature
/// then covers a ciphertext only the intended recipient can open).
///
/// ```
/// use netaio::Message;
/// use netaio::plugin::{AuthPlugin, PluginContext};
/// use netaio_asymmetric::{Ed25519Auth, Identity};
///
/// let alice = Identity::generate();
/// let signer = Ed25519Auth::new(&alice);
/// // Bob knows Alice's key from configuration, not from peer data.
/// let verifier = Ed25519Auth::new(&Identity::generate()).allow(alice.verifying_key());
///
/// let ctx = PluginContext::default();
/// let mut msg = Message::ok("echo", "hello");
/// signer.make(&mut msg, &ctx).unwrap();
/// assert!(msg.auth.contains("sig"));
/// let mut received = msg.clone();
/// verifier.check(&mut received, &ctx).unwrap();
/// assert_eq!(received, Message::ok("echo", "hello"));
/// // The same frame again is a replay.
/// assert!(verifier.check(&mut msg, &ctx).is_err());
/// ```
pub struct Ed25519Auth {
    signing: SigningKey,
    key_id: [u8; KEY_ID_LEN],
    ts_field: Cow<'static, str>,
    nonce_field: Cow<'static, str>,
    sig_field: Cow<'static, str>,
    key_id_field: Cow<'static, str>,
    send_key_id: bool,
    trust_peer_keys: bool,
    expose_signer: bool,
    allowed: BTreeMap<[u8; 32], VerifyingKey>,
    freshness: Freshness,
}

impl fmt::Debug for Ed25519Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Auth")
            .field("key_id", &self.key_id)
            .field(
                "fields",
                &[
                    &self.ts_field,
                    &self.nonce_field,
                    &self.sig_field,
                    &self.key_id_field,
                ],
            )
            .field("send_key_id", &self.send_key_id)
            .field("trust_peer_keys", &self.trust_peer_keys)
            .field("expose_signer", &self.expose_signer)
            .field("allowed", &self.allowed.len())
            .field("freshness", &self.freshness)
            .finish_non_exhaustive()
    }
}

impl Ed25519Auth {
    /// Sign with this identity's Ed25519 key; the defaults: fields `ts`, `nonce`, `sig`, `kid`,
    /// key id sent, peer-data keys trusted, empty allow-list, default [`Freshness`].
    pub fn new(identity: &Identity) -> Self {
        Self::from_signing_key(identity.signing_key().clone())
    }

    /// Sign with this Ed25519 key.
    pub fn from_signing_key(signing: SigningKey) -> Self {
        Self {
            key_id: key_id(&signing.verifying_key()),
            signing,
            ts_field: Cow::Borrowed(DEFAULT_TS_FIELD),
            nonce_field: Cow::Borrowed(DEFAULT_NONCE_FIELD),
            sig_field: Cow::Borrowed(DEFAULT_SIG_FIELD),
            key_id_field: Cow::Borrowed(DEFAULT_KEY_ID_FIELD),
            send_key_id: true,
            trust_peer_keys: true,
            expose_signer: false,
            allowed: BTreeMap::new(),
            freshness: Freshness::default(),
        }
    }

    /// Accept signatures by this key, whether or not the sender is a known peer.
    #[must_use]
    pub fn allow(mut self, key: VerifyingKey) -> Self {
        self.allowed.insert(key.to_bytes(), key);
        self
    }

    /// Trust the Ed25519 key in the sender's peer data (default true). With false, only keys on
    /// the allow-list verify: use this when peer data comes from unauthenticated adverts.
    ///
    /// ```
    /// use netaio::Message;
    /// use netaio::plugin::{AuthError, AuthPlugin, PluginContext};
    /// use netaio_asymmetric::{Ed25519Auth, Identity};
    ///
    /// let stranger = Identity::generate();
    /// let stranger_peer = stranger.peer("stranger").unwrap();
    /// let ctx = PluginContext { peer: Some(&stranger_peer), ..Default::default() };
    /// let mut msg = Message::ok("u", "c");
    /// Ed25519Auth::new(&stranger).make(&mut msg, &ctx).unwrap();
    ///
    /// let strict = Ed25519Auth::new(&Identity::generate()).trust_peer_keys(false);
    /// assert_eq!(strict.check(&mut msg, &ctx), Err(AuthError::UnknownKey));
    /// ```
    #[must_use]
    pub fn trust_peer_keys(mut self, on: bool) -> Self {
        self.trust_peer_keys = on;
        self
    }

    /// Put the key id in outgoing messages (default true; 8 bytes plus the field name). A
    /// receiver that does not know this node as a peer needs it to pick the key from its
    /// allow-list.
    #[must_use]
    pub fn send_key_id(mut self, on: bool) -> Self {
        self.send_key_id = on;
        self
    }

    /// Leave the verified signer's Ed25519 public key (32 bytes) in the checked message's
    /// [`SIGNER_FIELD`] (default false), for the handlers and
    /// services that bind something to the sender's key: a relay checking that a reserved peer
    /// id is the signer's
    /// ([`SelfCertifiedReservations`](crate::SelfCertifiedReservations)). The node removes that
    /// field from every message it receives before checking it, so only this check sets it.
    ///
    /// ```
    /// use netaio::plugin::{AuthPlugin, PluginContext, SIGNER_FIELD};
    /// use netaio::{Message, MessageType};
    /// use netaio_asymmetric::{Ed25519Auth, Identity};
    ///
    /// let me = Identity::generate();
    /// let auth = Ed25519Auth::new(&me).expose_signer(true);
    /// let ctx = PluginContext::default();
    /// let mut msg = Message::new(MessageType::OK, "u", "c");
    /// auth.make(&mut msg, &ctx).unwrap();
    /// let auth = auth.allow(me.verifying_key());
    /// auth.check(&mut msg, &ctx).unwrap();
    /// assert_eq!(msg.auth.get(SIGNER_FIELD).unwrap().as_ref(), me.verifying_key().as_bytes());
    /// ```
    #[must_use]
    pub fn expose_signer(mut self, on: bool) -> Self {
        self.expose_signer = on;
        self
    }

    /// Use this freshness policy (window, replay cache capacity, clock) instead of the default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netaio::plugin::Freshness;
    /// use netaio_asymmetric::{Ed25519Auth, Identity};
    ///
    /// let auth = Ed25519Auth::new(&Identity::generate())
    ///     .freshness(Freshness::new(Duration::from_secs(30)).capacity(10_000));
    /// assert_eq!(auth.get_freshness().window(), Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = freshness;
        self
    }

    /// The freshness policy in use, set with [`freshness`](Self::freshness).
    pub fn get_freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// Name of the timestamp field (default [`DEFAULT_TS_FIELD`]).
    #[must_use]
    pub fn ts_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.ts_field = name.into();
        self
    }

    /// Name of the nonce field (default [`DEFAULT_NONCE_FIELD`]).
    #[must_use]
    pub fn nonce_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.nonce_field = name.into();
        self
    }

    /// Name of the signature field (default [`DEFAULT_SIG_FIELD`]).
    #[must_use]
    pub fn sig_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.sig_field = name.into();
        self
    }

    /// Name of the key-id field (default [`DEFAULT_KEY_ID_FIELD`]).
    #[must_use]
    pub fn key_id_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.key_id_field = name.into();
        self
    }

    /// This signer's public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    fn excluded(&self) -> [&str; 3] {
        [&self.ts_field, &self.nonce_field, &self.sig_field]
    }

    fn signed(&self, msg: &Message, ts: u64, nonce: &[u8]) -> Vec<u8> {
        signed_bytes(
            msg.message_type,
            msg.uri(),
            &msg.auth,
            self.excluded(),
            msg.content(),
            ts,
            nonce,
        )
    }

    fn field<'m>(msg: &'m Message, name: &str) -> Result<&'m Bytes, AuthError> {
        msg.auth
            .get(name)
            .ok_or_else(|| AuthError::MissingField(name.to_owned()))
    }

    fn fixed<const N: usize>(msg: &Message, name: &str) -> Result<[u8; N], AuthError> {
        <[u8; N]>::try_from(Self::field(msg, name)?.as_ref())
            .map_err(|_| AuthError::MalformedField(name.to_owned()))
    }

    /// The keys to verify with, per the trust rules.
    fn candidates(
        &self,
        msg: &Message,
        ctx: &PluginContext<'_>,
    ) -> Result<Vec<VerifyingKey>, AuthError> {
        if let Some(bytes) = remote_key(ctx, ED25519_FIELD) {
            if let Some(key) = self.allowed.get(&bytes) {
                return Ok(vec![*key]);
            }
            if self.trust_peer_keys {
                return VerifyingKey::from_bytes(&bytes)
                    .map(|k| vec![k])
                    .map_err(|_| AuthError::UnknownKey);
            }
            // An untrusted peer key: the signer must be on the allow-list, found by key id.
        }
        if self.allowed.is_empty() {
            return Err(AuthError::UnknownKey);
        }
        let kid: [u8; KEY_ID_LEN] = Self::fixed(msg, &self.key_id_field)?;
        let mut lo = [0u8; 32];
        let mut hi = [0xffu8; 32];
        for ((l, h), k) in lo.iter_mut().zip(hi.iter_mut()).zip(kid) {
            *l = k;
            *h = k;
        }
        let keys: Vec<VerifyingKey> = self.allowed.range(lo..=hi).map(|(_, k)| *k).collect();
        if keys.is_empty() {
            return Err(AuthError::UnknownKey);
        }
        Ok(keys)
    }
}

impl AuthPlugin for Ed25519Auth {
    fn make(&self, msg: &mut Message, _ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        let own = [
            &self.ts_field,
            &self.nonce_field,
            &self.sig_field,
            &self.key_id_field,
        ];
        if let Some(name) = own.into_iter().find(|n| msg.auth.contains(n)) {
            return Err(AuthError::Other(format!(
                "auth field {name:?} already present"
            )));
        }
        // A verified signer left by a check is about a message received, not this one (and the
        // receiver removes it before checking, which would fail the signature over it).
        msg.auth.remove(SIGNER_FIELD);
        let ts = self.freshness.now();
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        if self.send_key_id {
            msg.auth
                .insert(&self.key_id_field, Bytes::copy_from_slice(&self.key_id));
        }
        let sig = self.signing.sign(&self.signed(msg, ts, &nonce));
        msg.auth
            .insert(&self.ts_field, Bytes::copy_from_slice(&ts.to_be_bytes()));
        msg.auth
            .insert(&self.nonce_field, Bytes::copy_from_slice(&nonce));
        msg.auth
            .insert(&self.sig_field, Bytes::copy_from_slice(&sig.to_bytes()));
        Ok(())
    }

    fn check(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        // A signer an outer check left (never from the wire: the node removes it first) is not
        // part of what the sender signed.
        let earlier = msg.auth.remove(SIGNER_FIELD);
        let signer = self.verify(msg, ctx)?;
        if self.expose_signer {
            msg.auth
                .insert(SIGNER_FIELD, Bytes::copy_from_slice(signer.as_bytes()));
        } else if let Some(e) = earlier {
            msg.auth.insert(SIGNER_FIELD, e);
        }
        Ok(())
    }

    /// AUTH_ERROR `Ed25519 auth failed`, uri `ERROR`.
    fn error_reply(&self, _err: &AuthError) -> Message {
        Message::new(MessageType::AUTH_ERROR, "ERROR", "Ed25519 auth failed")
    }

    fn is_peer_specific(&self) -> bool {
        false
    }

    /// True when only allow-listed keys are accepted ([`trust_peer_keys`](Self::trust_peer_keys)
    /// off): a key from a peer's data was learned from an advert, and an unauthenticated advert
    /// can put any key at any (forged) address, so a signature by it proves nothing about where
    /// the message came from.
    fn authenticates_sender(&self) -> bool {
        !self.trust_peer_keys
    }
}

impl Ed25519Auth {
    /// The check proper: the signer's key when the message verifies (its fields removed).
    fn verify(
        &self,
        msg: &mut Message,
        ctx: &PluginContext<'_>,
    ) -> Result<VerifyingKey, AuthError> {
        let sig = Signature::from_bytes(&Self::fixed::<64>(msg, &self.sig_field)?);
        let ts = u64::from_be_bytes(Self::fixed::<8>(msg, &self.ts_field)?);
        let nonce: [u8; NONCE_LEN] = Self::fixed(msg, &self.nonce_field)?;
        self.freshness.check_time(ts)?;
        let keys = self.candidates(msg, ctx)?;
        let signed = self.signed(msg, ts, &nonce);
        let Some(signer) = keys.iter().find(|k| k.verify_strict(&signed, &sig).is_ok()) else {
            return Err(AuthError::Invalid);
        };
        // Nonces counted per signing key: one busy signer cannot crowd out the others.
        self.freshness.accept_from(signer.as_bytes(), ts, &nonce)?;
        for name in [
            &self.ts_field,
            &self.nonce_field,
            &self.sig_field,
            &self.key_id_field,
        ] {
            msg.auth.remove(name);
        }
        Ok(*signer)
    }
}
