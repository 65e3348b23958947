//! [`AeadAuth`]: one pass of authenticated encryption over the whole message, with freshness and
//! replay protection (what `HmacAuth` + `AeadCipher` give, in one plugin).

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::aead_algorithm::{AeadKeys, GcmNonces, SENDER_LEN, TAG_LEN};
use super::hmac::{derive_key, ensure_absent, put_field};
use super::{AeadAlgorithm, AuthError, AuthPlugin, Freshness, PluginContext};
use crate::message::{AuthFields, Body, EncodeError, MAX_URI_AND_CONTENT};
use crate::{Message, MessageType};

/// Authenticated encryption of whole messages in one pass (AES-256-GCM or XChaCha20-Poly1305),
/// with a timestamp window and a replay cache: the guarantees of [`HmacAuth`](super::HmacAuth)
/// stacked on [`AeadCipher`](super::AeadCipher), at the cost of one AEAD pass instead of an AEAD
/// pass and an HMAC pass.
///
/// It is an [`AuthPlugin`]: set it with `.auth(..)` and leave the cipher slot empty. Its refusals
/// are auth failures (an AUTH_ERROR reply on TCP unless the auth-error hook says otherwise,
/// nothing on UDP), and a send with [`SendOptions::use_auth(false)`](super::SendOptions) goes out
/// neither authenticated nor encrypted.
///
/// # What `make` does
///
/// It adds two auth fields, then encrypts:
///
/// - `nonce`: the sending node's instance id ([`PluginContext::node`]; outside a node, an id drawn
///   when the plugin was built) as 8 big-endian bytes, then the algorithm's part: for AES-256-GCM
///   its 12-byte nonce (a random start XORed with a counter, so nonces never repeat under the key
///   however many messages are sent; 20 bytes in all), for XChaCha20-Poly1305 16 random bytes
///   (the whole 24-byte field is its nonce). The length tells the receiver the algorithm.
/// - `ts`: the sender's clock, 8-byte big-endian seconds since the Unix epoch.
/// - The content becomes `ciphertext ‖ 16-byte tag`. With [`encrypt_uri(true)`](Self::encrypt_uri)
///   the plaintext is `uri_len u16 BE ‖ uri ‖ content` and the wire uri is empty.
///
/// The associated data is a length-prefixed encoding of: the domain tag
/// `netaio/aead-auth/v1 message`, the algorithm, the mode (uri encrypted or not), the message type
/// byte, the uri as it is on the wire, and every auth field by name in canonical (sorted) order with
/// its value: the nonce and the timestamp, the request id and reply reference, an inner plugin's
/// fields. So the type byte, the uri, the content and every auth field are authenticated, and
/// the content is also secret.
///
/// # What `check` does
///
/// It verifies the tag and decrypts (one pass; a wrong key or any change gives
/// [`AuthError::Invalid`]); refuses a message whose nonce starts with this node's own id
/// ([`AuthError::Reflected`]: it was sent by this node and sent back); then checks the timestamp
/// window and records the nonce ([`Freshness::accept_from`], with the sender id as the sender:
/// [`AuthError::Stale`], [`AuthError::Replay`], [`AuthError::CacheFull`]); then restores the uri
/// and content and removes the two fields. A refused message is left as it was received. Only
/// authenticated messages reach the replay cache, so forged traffic cannot fill it.
///
/// # Guarantees and who holds the key
///
/// Against anyone without the key: a message is accepted at most once per receiving node, only
/// within the window (±60 s by default) of its timestamp, only exactly as it was sent (type, uri,
/// content, every auth field), and never by the node that sent it; the content (and with
/// `encrypt_uri`, the uri) stays secret. What is not hidden: the message type, the other auth
/// fields (request id, timestamps), sizes and timing.
///
/// Every holder of the key is one identity: any of them can send as any other, and can read
/// everything. The sender id in the nonce is authenticated, but only as "a holder of the key
/// says so": it serves reflection detection and the replay cache's accounting (the heaviest
/// sender makes room when the cache is full; see [`Freshness`]), not identity. As with
/// `HmacAuth`, the replay cache is per receiving node, so within the window a message can be
/// replayed once to *another* node that holds the key: bind recipients at the application level
/// or use `netaio-asymmetric`'s per-peer keys where that matters.
///
/// Neither AES-GCM nor XChaCha20-Poly1305 commits to its key: a holder of two keys can craft one
/// ciphertext that opens under both. That matters only to a receiver that holds several keys and
/// trusts whichever one opens a message; an `AeadAuth` holds exactly one key, and every holder of
/// it is trusted alike.
///
/// # Keys
///
/// [`AeadAuth::new`] derives a 32-byte key as `HMAC-SHA256(key = "netaio/aead-auth/v1",
/// message = secret)` (HKDF-Extract with a label of its own, so one secret can also key other
/// plugins); each algorithm gets its own key from it by HKDF-Expand. That derivation is fast: run a
/// password through a slow KDF (Argon2, scrypt, PBKDF2) first and use [`AeadAuth::from_key`], or
/// use a random secret of at least 16 bytes.
///
/// # Algorithms
///
/// The sender picks the algorithm ([`algorithm`](Self::algorithm); default
/// [`AeadAlgorithm::preferred`]: AES-256-GCM when the CPU has AES and carry-less multiply
/// instructions, else XChaCha20-Poly1305). Every receiver opens both, so two machines that prefer
/// different algorithms still talk.
///
/// # Stacking
///
/// One `AeadAuth` per layer. Its fields are named like `HmacAuth`'s (`nonce`, `ts`), so the two
/// cannot share a message unless one takes a [`field_prefix`](Self::field_prefix); `make` refuses
/// to overwrite a field. An inner (per-route) `AeadAuth` needs other field names than the
/// instance one, and must leave the uri in clear (the default): routing, which runs between the
/// instance and the inner plugins, needs it. On a node's instance plugin, prefer
/// `encrypt_uri(true)`.
///
/// Encryption adds 16 bytes (the tag) to the body, plus 2 bytes with `encrypt_uri`; a message
/// whose sealed body would exceed [`MAX_URI_AND_CONTENT`] fails with [`AuthError::TooLarge`].
///
/// ```
/// use netaio::plugin::{open_outer, seal, AeadAuth, PluginContext, Plugins};
/// use netaio::{Message, MessageType};
///
/// let node = Plugins::new().auth(AeadAuth::new(b"shared secret").encrypt_uri(true));
/// let ctx = PluginContext::default();
/// let msg = Message::new(MessageType::REQUEST_URI, "echo", "hello");
/// let sealed = seal(msg.clone(), &Plugins::new(), &node, &ctx).unwrap();
/// assert!(sealed.uri().is_empty());
/// assert!(!sealed.content().windows(5).any(|w| w == b"hello"));
/// assert_eq!(open_outer(sealed.clone(), &node, &ctx).unwrap(), msg);
/// // The same frame again is a replay.
/// assert!(open_outer(sealed, &node, &ctx).is_err());
/// ```
pub struct AeadAuth {
    keys: AeadKeys,
    algorithm: AeadAlgorithm,
    gcm_nonces: GcmNonces,
    /// The sender id outside a node (no [`PluginContext::node`]).
    instance: u64,
    encrypt_uri: bool,
    nonce_field: Cow<'static, str>,
    ts_field: Cow<'static, str>,
    freshness: Freshness,
}

impl fmt::Debug for AeadAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadAuth")
            .field("algorithm", &self.algorithm)
            .field("encrypt_uri", &self.encrypt_uri)
            .field("nonce_field", &self.nonce_field)
            .field("ts_field", &self.ts_field)
            .field("freshness", &self.freshness)
            .finish_non_exhaustive()
    }
}

/// Associated data this long or shorter is built on the stack.
const STACK_AD: usize = 384;

impl AeadAuth {
    /// The label of the key derivation in [`AeadAuth::new`] (and of the per-algorithm keys).
    pub const KDF_LABEL: &'static str = "netaio/aead-auth/v1";
    /// The domain tag at the start of the associated data.
    pub const DOMAIN: &'static str = "netaio/aead-auth/v1 message";
    /// Default nonce field name.
    pub const NONCE_FIELD: &'static str = "nonce";
    /// Default timestamp field name.
    pub const TS_FIELD: &'static str = "ts";
    /// Bytes added to the body: the tag.
    pub const TAG_LEN: usize = TAG_LEN;

    /// A plugin keyed from a shared secret (see the type docs for the derivation), sending with
    /// [`AeadAlgorithm::preferred`], the uri in clear, the default field names and a default
    /// [`Freshness`] (±60 s, 65,536 nonces).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self::from_key(derive_key(Self::KDF_LABEL.as_bytes(), secret.as_ref()))
    }

    /// A plugin with this 32-byte key, used as it is (for keys from a real KDF); each algorithm's
    /// key is derived from it with HKDF-Expand.
    ///
    /// ```
    /// use netaio::plugin::AeadAuth;
    /// let auth = AeadAuth::from_key([7u8; 32]);
    /// ```
    pub fn from_key(key: [u8; 32]) -> Self {
        let mut instance = [0u8; 8];
        rand::fill(&mut instance[..]);
        Self {
            keys: AeadKeys::new(&key, Self::KDF_LABEL),
            algorithm: AeadAlgorithm::preferred(),
            gcm_nonces: GcmNonces::new(),
            instance: u64::from_be_bytes(instance),
            encrypt_uri: false,
            nonce_field: Cow::Borrowed(Self::NONCE_FIELD),
            ts_field: Cow::Borrowed(Self::TS_FIELD),
            freshness: Freshness::default(),
        }
    }

    /// Send with this algorithm (default [`AeadAlgorithm::preferred`]). Receiving always opens
    /// both.
    ///
    /// ```
    /// use netaio::plugin::{AeadAlgorithm, AeadAuth};
    /// let auth = AeadAuth::new(b"secret").algorithm(AeadAlgorithm::XChaCha20Poly1305);
    /// assert_eq!(auth.get_algorithm(), AeadAlgorithm::XChaCha20Poly1305);
    /// ```
    #[must_use]
    pub fn algorithm(mut self, algorithm: AeadAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Also encrypt the uri (default `false`). Sender and receiver must agree. Only for a node's
    /// instance plugin: routing needs the uri of a message that an inner plugin opens.
    #[must_use]
    pub fn encrypt_uri(mut self, yes: bool) -> Self {
        self.encrypt_uri = yes;
        self
    }

    /// The nonce field's name (default [`NONCE_FIELD`](Self::NONCE_FIELD), `nonce`).
    #[must_use]
    pub fn nonce_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.nonce_field = name.into();
        self
    }

    /// The timestamp field's name (default [`TS_FIELD`](Self::TS_FIELD), `ts`).
    #[must_use]
    pub fn ts_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.ts_field = name.into();
        self
    }

    /// The default field names behind a prefix: `"inner."` gives `inner.nonce` and `inner.ts`.
    /// Use it for a second plugin with the same names in the same message.
    ///
    /// ```
    /// use netaio::plugin::AeadAuth;
    /// assert_eq!(AeadAuth::new(b"k").field_prefix("in.").names(), ["in.nonce", "in.ts"]);
    /// ```
    #[must_use]
    pub fn field_prefix(self, prefix: &str) -> Self {
        self.nonce_field(format!("{prefix}{}", Self::NONCE_FIELD))
            .ts_field(format!("{prefix}{}", Self::TS_FIELD))
    }

    /// This timestamp window, replay cache and clock (default [`Freshness::default`]).
    #[must_use]
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = freshness;
        self
    }

    /// The algorithm this plugin sends with.
    pub fn get_algorithm(&self) -> AeadAlgorithm {
        self.algorithm
    }

    /// True when the uri is encrypted.
    pub fn encrypts_uri(&self) -> bool {
        self.encrypt_uri
    }

    /// The nonce and timestamp field names.
    pub fn names(&self) -> [&str; 2] {
        [&self.nonce_field, &self.ts_field]
    }

    /// The plugin's [`Freshness`] (its clock, window and replay cache).
    pub fn get_freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// Call `f` with the associated data of a message of this type, wire uri and auth fields,
    /// sent with `alg`. Built on the stack when short (the usual case), so that a small message
    /// costs no allocation for it, in one pass over the fields; only a longer one is measured and
    /// built again on the heap.
    fn with_associated_data<R>(
        &self,
        alg: AeadAlgorithm,
        message_type: MessageType,
        wire_uri: &[u8],
        fields: &AuthFields,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let fill = |out: &mut Writer<'_>| {
            out.lp(Self::DOMAIN.as_bytes());
            out.put(&[alg.id(), u8::from(self.encrypt_uri), message_type.value()]);
            out.lp(wire_uri);
            out.put(&(fields.len() as u64).to_be_bytes());
            for (name, value) in fields.iter_bytes() {
                out.lp(name);
                out.lp(value);
            }
        };
        let mut stack = [0u8; STACK_AD];
        let mut out = Writer::new(&mut stack[..]);
        fill(&mut out);
        if let Some(ad) = out.written() {
            return f(ad);
        }
        let mut heap = vec![0u8; out.needed()];
        let mut out = Writer::new(&mut heap[..]);
        fill(&mut out);
        f(out.written().unwrap_or_default())
    }

    /// The sender id this node puts in front of its nonces.
    fn sender_id(&self, ctx: &PluginContext<'_>) -> u64 {
        ctx.node.unwrap_or(self.instance)
    }
}

/// Writes into a fixed buffer; past its end it only counts, so that the caller can retry with
/// a buffer of the [`needed`](Self::needed) size.
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, at: 0 }
    }

    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }

    /// `bytes` with a 64-bit big-endian length prefix, so that items cannot be re-split.
    fn lp(&mut self, bytes: &[u8]) {
        self.put(&(bytes.len() as u64).to_be_bytes());
        self.put(bytes);
    }

    /// What was written, if it all fit.
    fn written(&self) -> Option<&[u8]> {
        self.buf.get(..self.at)
    }

    /// The bytes everything written so far needs.
    fn needed(&self) -> usize {
        self.at
    }
}

impl AuthPlugin for AeadAuth {
    fn make(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        ensure_absent(&msg.auth, &[&self.nonce_field, &self.ts_field])?;
        let alg = self.algorithm;
        let (uri, content) = (msg.uri(), msg.content());
        let plain_len = if self.encrypt_uri {
            2 + uri.len() + content.len()
        } else {
            content.len()
        };
        let wire_uri = if self.encrypt_uri {
            Bytes::new()
        } else {
            uri.clone()
        };
        let body_len = wire_uri.len() + plain_len + TAG_LEN;
        if body_len > MAX_URI_AND_CONTENT {
            return Err(AuthError::TooLarge(EncodeError::BodyTooLarge {
                len: body_len,
                max: MAX_URI_AND_CONTENT,
            }));
        }

        let mut nonce = [0u8; SENDER_LEN + 16];
        let nonce_len = SENDER_LEN + alg.nonce_tail_len();
        if let Some((head, tail)) = nonce.split_first_chunk_mut::<SENDER_LEN>() {
            *head = self.sender_id(ctx).to_be_bytes();
            match alg {
                AeadAlgorithm::Aes256Gcm => {
                    if let Some(dst) = tail.get_mut(..12) {
                        dst.copy_from_slice(&self.gcm_nonces.next());
                    }
                }
                AeadAlgorithm::XChaCha20Poly1305 => rand::fill(tail),
            }
        }
        let nonce = nonce.get(..nonce_len).unwrap_or_default();

        let mut buf = BytesMut::with_capacity(plain_len + TAG_LEN);
        if self.encrypt_uri {
            // Bounded by the size check above.
            buf.put_u16(u16::try_from(uri.len()).unwrap_or(u16::MAX));
            buf.extend_from_slice(uri);
        }
        buf.extend_from_slice(content);

        put_field(&mut msg.auth, &self.nonce_field, nonce.to_vec());
        let ts = self.freshness.now();
        put_field(&mut msg.auth, &self.ts_field, ts.to_be_bytes().to_vec());
        let tag = self.with_associated_data(alg, msg.message_type, &wire_uri, &msg.auth, |ad| {
            self.keys.seal(alg, nonce, ad, &mut buf)
        });
        let Ok(tag) = tag else {
            msg.auth.remove(&self.nonce_field);
            msg.auth.remove(&self.ts_field);
            return Err(AuthError::Other("encryption failed".into()));
        };
        buf.extend_from_slice(&tag);
        msg.body = Body {
            uri: wire_uri,
            content: buf.freeze(),
        };
        Ok(())
    }

    fn check(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        // Each field is looked up once: read by index here, removed by index on success.
        let missing = |name: &str| AuthError::MissingField(name.to_owned());
        let malformed = |name: &str| AuthError::MalformedField(name.to_owned());
        let nonce_at = msg
            .auth
            .index_of(&self.nonce_field)
            .ok_or_else(|| missing(&self.nonce_field))?;
        let nonce = msg
            .auth
            .value_at(nonce_at)
            .ok_or_else(|| missing(&self.nonce_field))?;
        let alg = AeadAlgorithm::from_nonce_len(nonce.len())
            .ok_or_else(|| malformed(&self.nonce_field))?;
        let ts_at = msg
            .auth
            .index_of(&self.ts_field)
            .ok_or_else(|| missing(&self.ts_field))?;
        let ts = msg
            .auth
            .value_at(ts_at)
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| malformed(&self.ts_field))?;
        let content = msg.content();
        let Some((sealed, tag)) = content
            .len()
            .checked_sub(TAG_LEN)
            .map(|at| content.split_at(at))
        else {
            return Err(AuthError::Invalid);
        };
        let tag = <[u8; TAG_LEN]>::try_from(tag).map_err(|_| AuthError::Invalid)?;
        let mut buf = BytesMut::from(sealed);
        self.with_associated_data(alg, msg.message_type, msg.uri(), &msg.auth, |ad| {
            self.keys.open(alg, nonce, ad, &mut buf, &tag)
        })
        .map_err(|_| AuthError::Invalid)?;

        let sender = nonce
            .first_chunk::<SENDER_LEN>()
            .copied()
            .unwrap_or_default();
        if ctx.node.is_some_and(|me| sender == me.to_be_bytes()) {
            return Err(AuthError::Reflected);
        }
        // The nonce starts with the sender's node id, authenticated: the replay cache makes the
        // heaviest sender pay for room, so one busy peer cannot crowd out the others.
        self.freshness.accept_from(&sender, ts, nonce)?;

        let plain = buf.freeze();
        let body = if self.encrypt_uri {
            // Authenticated, so only a broken sender gets here with a bad layout.
            Body::decode(plain).map_err(|e| AuthError::Other(format!("bad plaintext: {e}")))?
        } else {
            Body {
                uri: msg.body.uri.clone(),
                content: plain,
            }
        };
        msg.body = body;
        // Two distinct fields (a nonce is 20 or 24 bytes, a timestamp 8), so two indices.
        msg.auth.remove_two_at(nonce_at, ts_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
