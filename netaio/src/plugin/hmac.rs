//! [`HmacAuth`]: HMAC-SHA256 over the whole message, with freshness and replay protection.

use std::borrow::Cow;
use std::fmt;

use ::hmac::digest::Update;
use ::hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{AuthError, AuthPlugin, Freshness, PluginContext};
use crate::message::AuthFields;
use crate::{Message, MessageType};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key` (up to 64 bytes, the SHA-256 block size).
///
/// HMAC pads a key shorter than the block with zeros, so building the zero-padded block here is
/// exactly `Hmac::new_from_slice(key)` without its (impossible) error case.
pub(super) fn hmac_with_key(key: &[u8]) -> HmacSha256 {
    let mut block = [0u8; 64];
    for (b, k) in block.iter_mut().zip(key) {
        *b = *k;
    }
    HmacSha256::new(&block.into())
}

/// Derive a 32-byte key from a secret: `HMAC-SHA256(key = label, message = secret)`, which is
/// HKDF-Extract (RFC 5869) with the label as salt. Each plugin uses its own label, so one secret
/// gives unrelated keys to `HmacAuth` and `AeadCipher`.
pub(super) fn derive_key(label: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut mac = hmac_with_key(label);
    Mac::update(&mut mac, secret);
    mac.finalize().into_bytes().into()
}

/// Feed `bytes` with a 64-bit big-endian length prefix, so that concatenated items cannot be
/// re-split differently.
pub(super) fn put_lp(u: &mut impl Update, bytes: &[u8]) {
    u.update(&(bytes.len() as u64).to_be_bytes());
    u.update(bytes);
}

/// Insert a field without allocating for a `'static` name.
#[allow(
    clippy::ptr_arg,
    reason = "the Cow tells a 'static name from an owned one"
)]
pub(super) fn put_field(fields: &mut AuthFields, name: &Cow<'static, str>, value: Vec<u8>) {
    match name {
        Cow::Borrowed(s) => fields.insert_static(s, value),
        Cow::Owned(s) => fields.insert(s, value),
    };
}

/// Refuse to overwrite fields a plugin is about to add (two plugins stacked with the same names),
/// and refuse a plugin configured with one name for two of its fields: the second write would
/// replace the first and every check on the other side would fail with no hint why.
pub(super) fn ensure_absent(
    fields: &AuthFields,
    names: &[&Cow<'static, str>],
) -> Result<(), AuthError> {
    for (i, a) in names.iter().enumerate() {
        if names.iter().skip(i + 1).any(|b| a == b) {
            return Err(AuthError::Other(format!(
                "two fields of this plugin are both named {a:?}: give them distinct names"
            )));
        }
    }
    match names.iter().find(|n| fields.contains(n)) {
        Some(n) => Err(AuthError::Other(format!("field {n:?} already present"))),
        None => Ok(()),
    }
}

/// A field that must be exactly `N` bytes long.
pub(super) fn fixed_field<const N: usize>(
    fields: &AuthFields,
    name: &str,
) -> Result<[u8; N], AuthError> {
    let value = fields
        .get(name)
        .ok_or_else(|| AuthError::MissingField(name.to_owned()))?;
    <[u8; N]>::try_from(value.as_ref()).map_err(|_| AuthError::MalformedField(name.to_owned()))
}

/// HMAC-SHA256 authentication of whole messages, with a timestamp window and a replay cache.
///
/// `make` adds three auth fields: a 24-byte nonce (`nonce`: the sending node's instance id,
/// [`PluginContext::node`], as 8 big-endian bytes, then 16 random bytes), the sender's clock as
/// 8-byte big-endian seconds since the Unix epoch (`ts`), and a 32-byte MAC (`hmac`). The MAC is
/// HMAC-SHA256 over an unambiguous, length-prefixed encoding of:
///
/// 1. the domain tag `netaio/hmac-auth/v1 message`,
/// 2. the message type byte,
/// 3. the uri,
/// 4. every auth field except the MAC itself, by name in canonical (sorted) order, with its value
///    — the nonce and timestamp, a cipher's nonce, the request id and reply reference, an inner
///    plugin's fields —,
/// 5. the content.
///
/// So changing the type byte, the uri, the content or any auth field is detected (unlike the
/// Python plugin, whose MAC covers only the timestamp and the body).
///
/// `check` verifies the MAC in constant time; refuses a message whose nonce starts with this
/// node's own id ([`AuthError::Reflected`]: this node sent it, and someone sent it back); then
/// checks the timestamp (±60 s by default) and the nonce (refused if seen within the window; see
/// [`Freshness`]), then removes the three fields. Only authenticated messages reach the replay
/// cache, so forged traffic cannot fill it. The nonce's first 8 bytes are the sending node's
/// instance id, under the MAC: it is the sender [`Freshness::accept_from`] counts nonces for, so
/// when the cache is full the peer holding the most nonces makes room, and one peer sending faster
/// than the cache holds never makes the node refuse the others (a peer with the key could pose as
/// many senders; the key is the trust boundary).
///
/// The replay cache is per receiving node, so within the window a message can still be replayed
/// once to *another* node that shares the secret (the MAC binds no recipient); bind recipients at
/// the application level, or use `netaio-asymmetric`'s per-peer keys, where that matters.
///
/// # Keys
///
/// [`HmacAuth::new`] derives the MAC key from a shared secret as
/// `HMAC-SHA256(key = "netaio/hmac-auth/v1", message = secret)` (HKDF-Extract with a fixed
/// label). This is fast: a low-entropy **password** can be brute-forced offline from one captured
/// frame. Run a password through a slow KDF (Argon2, scrypt, PBKDF2) first and pass the result to
/// [`HmacAuth::from_key`], or use a random secret of at least 16 bytes.
///
/// # Stacking
///
/// Two `HmacAuth` in the same message (an instance plugin and an inner plugin) need different
/// field names: `make` refuses to overwrite a field that is already present. Give the inner one a
/// prefix with [`field_prefix`](Self::field_prefix).
///
/// ```
/// use netaio::plugin::{open_outer, seal, HmacAuth, PluginContext, Plugins};
/// use netaio::{Message, MessageType};
///
/// let node = Plugins::new().auth(HmacAuth::new(b"shared secret"));
/// let ctx = PluginContext::default();
/// let msg = Message::new(MessageType::REQUEST_URI, "echo", "hello");
/// let sealed = seal(msg.clone(), &Plugins::new(), &node, &ctx).unwrap();
/// assert!(sealed.auth.get("hmac").is_some());
/// assert_eq!(open_outer(sealed.clone(), &node, &ctx).unwrap(), msg);
/// // The same frame again is a replay.
/// assert!(open_outer(sealed, &node, &ctx).is_err());
/// ```
///
/// An inner plugin for one handler, with its own secret and field names:
///
/// ```
/// use netaio::plugin::{HmacAuth, Plugins};
/// use netaio::router::Route;
/// use netaio::{Message, MessageType, Router};
///
/// let inner = Plugins::new().auth(HmacAuth::new(b"admin secret").field_prefix("admin."));
/// let router = Router::new().route(
///     Route::on((MessageType::REQUEST_URI, "admin"), |m: Message| async move {
///         Message::respond("admin", "ok")
///     })
///     .with_inner(inner),
/// );
/// ```
pub struct HmacAuth {
    key: HmacSha256,
    nonce_field: Cow<'static, str>,
    ts_field: Cow<'static, str>,
    mac_field: Cow<'static, str>,
    freshness: Freshness,
}

impl fmt::Debug for HmacAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacAuth")
            .field("nonce_field", &self.nonce_field)
            .field("ts_field", &self.ts_field)
            .field("mac_field", &self.mac_field)
            .field("freshness", &self.freshness)
            .finish_non_exhaustive()
    }
}

impl HmacAuth {
    /// The label of the key derivation in [`HmacAuth::new`].
    pub const KDF_LABEL: &'static str = "netaio/hmac-auth/v1";
    /// The domain tag at the start of every MAC input.
    pub const DOMAIN: &'static str = "netaio/hmac-auth/v1 message";
    /// Default nonce field name.
    pub const NONCE_FIELD: &'static str = "nonce";
    /// Default timestamp field name.
    pub const TS_FIELD: &'static str = "ts";
    /// Default MAC field name.
    pub const MAC_FIELD: &'static str = "hmac";
    /// Length of the nonce `make` generates and `check` requires: the sender's 8-byte node id,
    /// then 16 random bytes.
    pub const NONCE_LEN: usize = 24;

    /// A plugin keyed from a shared secret (see the type docs for the derivation), with the
    /// default field names and a default [`Freshness`] (±60 s, 65,536 nonces).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self::from_key(derive_key(Self::KDF_LABEL.as_bytes(), secret.as_ref()))
    }

    /// A plugin with this 32-byte MAC key, used as it is (for keys from a real KDF).
    ///
    /// ```
    /// use netaio::plugin::HmacAuth;
    /// let auth = HmacAuth::from_key([7u8; 32]);
    /// ```
    pub fn from_key(key: [u8; 32]) -> Self {
        Self {
            key: hmac_with_key(&key),
            nonce_field: Cow::Borrowed(Self::NONCE_FIELD),
            ts_field: Cow::Borrowed(Self::TS_FIELD),
            mac_field: Cow::Borrowed(Self::MAC_FIELD),
            freshness: Freshness::default(),
        }
    }

    /// The nonce field's name (default [`NONCE_FIELD`](Self::NONCE_FIELD), `nonce`). The three
    /// field names must differ.
    ///
    /// ```
    /// use netaio::plugin::HmacAuth;
    /// let auth = HmacAuth::new(b"secret").nonce_field("n").ts_field("t").mac_field("m");
    /// assert_eq!(auth.names(), ["n", "t", "m"]);
    /// ```
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

    /// The MAC field's name (default [`MAC_FIELD`](Self::MAC_FIELD), `hmac`).
    #[must_use]
    pub fn mac_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.mac_field = name.into();
        self
    }

    /// The default field names behind a prefix: `"inner."` gives `inner.nonce`, `inner.ts` and
    /// `inner.hmac` (default: no prefix). Use it for a second `HmacAuth` in the same message.
    #[must_use]
    pub fn field_prefix(self, prefix: &str) -> Self {
        self.nonce_field(format!("{prefix}{}", Self::NONCE_FIELD))
            .ts_field(format!("{prefix}{}", Self::TS_FIELD))
            .mac_field(format!("{prefix}{}", Self::MAC_FIELD))
    }

    /// This timestamp window, replay cache and clock (default [`Freshness::default`]: ±60 s,
    /// 65,536 nonces, the system clock).
    ///
    /// ```
    /// use std::time::Duration;
    /// use netaio::plugin::{Freshness, HmacAuth};
    /// let auth = HmacAuth::new(b"secret")
    ///     .freshness(Freshness::new(Duration::from_secs(30)).capacity(10_000));
    /// ```
    #[must_use]
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = freshness;
        self
    }

    /// The nonce, timestamp and MAC field names.
    pub fn names(&self) -> [&str; 3] {
        [&self.nonce_field, &self.ts_field, &self.mac_field]
    }

    /// The plugin's [`Freshness`] (its clock, window and replay cache), set with
    /// [`freshness`](Self::freshness).
    pub fn get_freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// The keyed MAC state after feeding the whole message except the MAC field.
    fn transcript(&self, msg: &Message) -> HmacSha256 {
        let mut m = self.key.clone();
        put_lp(&mut m, Self::DOMAIN.as_bytes());
        Update::update(&mut m, &[msg.message_type.value()]);
        put_lp(&mut m, msg.uri());
        let mac_field: &str = &self.mac_field;
        let count = msg.auth.iter().filter(|(n, _)| *n != mac_field).count();
        Update::update(&mut m, &(count as u64).to_be_bytes());
        for (name, value) in msg.auth.iter().filter(|(n, _)| *n != mac_field) {
            put_lp(&mut m, name.as_bytes());
            put_lp(&mut m, value);
        }
        put_lp(&mut m, msg.content());
        m
    }
}

impl AuthPlugin for HmacAuth {
    fn make(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        ensure_absent(
            &msg.auth,
            &[&self.nonce_field, &self.ts_field, &self.mac_field],
        )?;
        let mut nonce = [0u8; Self::NONCE_LEN];
        rand::fill(&mut nonce[..]);
        if let (Some(node), Some(head)) = (ctx.node, nonce.first_chunk_mut::<8>()) {
            *head = node.to_be_bytes();
        }
        put_field(&mut msg.auth, &self.nonce_field, nonce.to_vec());
        let ts = self.freshness.now();
        put_field(&mut msg.auth, &self.ts_field, ts.to_be_bytes().to_vec());
        let mac = self.transcript(msg).finalize().into_bytes();
        put_field(&mut msg.auth, &self.mac_field, mac.to_vec());
        Ok(())
    }

    fn check(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        let mac = msg
            .auth
            .get(&self.mac_field)
            .ok_or_else(|| AuthError::MissingField(self.mac_field.to_string()))?
            .clone();
        let nonce = fixed_field::<{ Self::NONCE_LEN }>(&msg.auth, &self.nonce_field)?;
        let ts = u64::from_be_bytes(fixed_field::<8>(&msg.auth, &self.ts_field)?);
        self.transcript(msg)
            .verify_slice(&mac)
            .map_err(|_| AuthError::Invalid)?;
        if ctx
            .node
            .is_some_and(|me| nonce.first_chunk::<8>() == Some(&me.to_be_bytes()))
        {
            return Err(AuthError::Reflected);
        }
        // The nonce starts with the sender's node id (see `make`), under the MAC: the replay
        // cache makes the heaviest sender pay for room, so one busy peer cannot crowd out others.
        let sender = nonce.first_chunk::<8>().map_or(&[][..], |h| &h[..]);
        self.freshness.accept_from(sender, ts, &nonce)?;
        msg.auth.remove(&self.nonce_field);
        msg.auth.remove(&self.ts_field);
        msg.auth.remove(&self.mac_field);
        Ok(())
    }

    /// AUTH_ERROR `HMAC auth failed` with uri `ERROR`, as the Python plugin.
    fn error_reply(&self, _err: &AuthError) -> Message {
        Message::new(MessageType::AUTH_ERROR, "ERROR", "HMAC auth failed")
    }

    /// True: the MAC proves the shared key, and [`Freshness`] refuses replays.
    fn authenticates_sender(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::message::PostcardCodec;
    use crate::plugin::{OpenError, Plugins, SealError, Stage, open_outer, seal};

    const T0: u64 = 1_700_000_000;

    struct Clocked {
        now: Arc<AtomicU64>,
    }

    impl Clocked {
        fn new() -> Self {
            Self {
                now: Arc::new(AtomicU64::new(T0)),
            }
        }
        fn auth(&self, secret: &[u8]) -> HmacAuth {
            let now = self.now.clone();
            HmacAuth::new(secret)
                .freshness(Freshness::default().clock(Arc::new(move || now.load(Ordering::SeqCst))))
        }
        fn set(&self, t: u64) {
            self.now.store(t, Ordering::SeqCst);
        }
    }

    fn ctx() -> PluginContext<'static> {
        PluginContext::default()
    }

    fn request() -> Message {
        let mut m = Message::new(MessageType::REQUEST_URI, "echo", "hello");
        m.set_request_id(42);
        m
    }

    fn made(auth: &HmacAuth, msg: &Message) -> Message {
        let mut m = msg.clone();
        auth.make(&mut m, &ctx()).unwrap();
        m
    }

    #[test]
    fn key_derivation_is_hkdf_extract_with_the_label() {
        let mut reference = HmacSha256::new_from_slice(b"netaio/hmac-auth/v1").unwrap();
        Mac::update(&mut reference, b"secret");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(
            derive_key(HmacAuth::KDF_LABEL.as_bytes(), b"secret"),
            expected
        );
        // Labels separate keys.
        assert_ne!(derive_key(b"netaio/aead-cipher/v1", b"secret"), expected);
    }

    #[test]
    fn hmac_with_key_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut m = hmac_with_key(b"Jefe");
        Mac::update(&mut m, b"what do ya want for nothing?");
        let got: [u8; 32] = m.finalize().into_bytes().into();
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// A node refuses its own message sent back to it; another node (another id) and a context
    /// without a node id accept it. The node id is the nonce's first 8 bytes, under the MAC.
    #[test]
    fn a_message_reflected_to_its_sender_is_refused() {
        let c = Clocked::new();
        // One plugin instance shared by both nodes (as in one process): the node id tells them apart.
        let node = Plugins::new().auth(c.auth(b"secret"));
        let at = |id: u64| PluginContext {
            node: Some(id),
            ..PluginContext::default()
        };
        let sealed = seal(request(), &Plugins::new(), &node, &at(1)).unwrap();
        assert_eq!(
            &sealed.auth.get("nonce").unwrap()[..8],
            &1u64.to_be_bytes()[..]
        );
        let e = open_outer(sealed.clone(), &node, &at(1)).unwrap_err();
        assert!(
            matches!(
                e,
                OpenError::Auth {
                    source: AuthError::Reflected,
                    ..
                }
            ),
            "{e:?}"
        );
        // Refused before the replay cache: the other node still accepts it, once.
        assert_eq!(
            open_outer(sealed.clone(), &node, &at(2)).unwrap(),
            request()
        );
        assert!(open_outer(sealed, &node, &at(2)).is_err());
        // Outside a node (no id) nothing is compared.
        let plain = seal(request(), &Plugins::new(), &node, &ctx()).unwrap();
        assert_eq!(open_outer(plain, &node, &at(1)).unwrap(), request());
        // The id cannot be changed without breaking the MAC.
        let mut forged = seal(request(), &Plugins::new(), &node, &at(1)).unwrap();
        let mut nonce = forged.auth.get("nonce").unwrap().to_vec();
        nonce[..8].copy_from_slice(&3u64.to_be_bytes());
        forged.auth.insert("nonce", nonce);
        let e = open_outer(forged, &node, &at(1)).unwrap_err();
        assert!(
            matches!(
                e,
                OpenError::Auth {
                    source: AuthError::Invalid,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn round_trip_through_seal_and_open() {
        let c = Clocked::new();
        let node = Plugins::new().auth(c.auth(b"secret"));
        let msg = request();
        let sealed = seal(msg.clone(), &Plugins::new(), &node, &ctx()).unwrap();
        assert_eq!(sealed.auth.get("nonce").unwrap().len(), HmacAuth::NONCE_LEN);
        assert_eq!(
            sealed.auth.get("ts").unwrap().as_ref(),
            &T0.to_be_bytes()[..]
        );
        assert_eq!(sealed.auth.get("hmac").unwrap().len(), 32);
        // Survives the wire.
        let wire = sealed.to_bytes(&PostcardCodec).unwrap();
        let received = Message::decode(wire, &PostcardCodec).unwrap();
        let opened = open_outer(received, &node, &ctx()).unwrap();
        assert_eq!(opened, msg);
        assert_eq!(opened.request_id(), Some(42));
    }

    #[test]
    fn round_trip_direct_with_custom_names() {
        let c = Clocked::new();
        let a = c.auth(b"k").nonce_field("n").ts_field("t").mac_field("m");
        let mut m = made(&a, &request());
        assert!(m.auth.contains("n") && m.auth.contains("t") && m.auth.contains("m"));
        assert!(!m.auth.contains("hmac"));
        a.check(&mut m, &ctx()).unwrap();
        assert_eq!(m, request());
        // A plugin with the default names does not find its fields.
        let m = made(
            &c.auth(b"k").nonce_field("n").ts_field("t").mac_field("m"),
            &request(),
        );
        assert_eq!(
            c.auth(b"k").check(&mut m.clone(), &ctx()),
            Err(AuthError::MissingField("hmac".into()))
        );
    }

    /// The named field setters decide the fields of a sealed message; the defaults stay as they
    /// were, and a receiver with the same names opens it.
    #[test]
    fn named_fields_in_a_sealed_message() {
        let c = Clocked::new();
        let names = |m: &Message| m.auth.iter().map(|(n, _)| n.to_owned()).collect::<Vec<_>>();
        let default = Plugins::new().auth(c.auth(b"k"));
        let sealed = seal(request(), &Plugins::new(), &default, &ctx()).unwrap();
        assert!(
            ["hmac", "nonce", "ts"]
                .iter()
                .all(|n| names(&sealed).contains(&n.to_string()))
        );

        let named = || c.auth(b"k").nonce_field("n").ts_field("t").mac_field("sig");
        assert_eq!(named().names(), ["n", "t", "sig"]);
        let sender = Plugins::new().auth(named());
        let sealed = seal(request(), &Plugins::new(), &sender, &ctx()).unwrap();
        let got = names(&sealed);
        assert!(
            ["n", "t", "sig"]
                .iter()
                .all(|n| got.contains(&n.to_string())),
            "{got:?}"
        );
        assert!(
            ["hmac", "nonce", "ts"]
                .iter()
                .all(|n| !got.contains(&n.to_string())),
            "{got:?}"
        );
        let receiver = Plugins::new().auth(named());
        assert_eq!(open_outer(sealed, &receiver, &ctx()).unwrap(), request());

        // One name changed, the others left at their defaults.
        let sender = Plugins::new().auth(c.auth(b"k").mac_field("sig"));
        let sealed = seal(request(), &Plugins::new(), &sender, &ctx()).unwrap();
        let got = names(&sealed);
        assert!(
            ["nonce", "ts", "sig"]
                .iter()
                .all(|n| got.contains(&n.to_string())),
            "{got:?}"
        );
        assert!(!got.contains(&"hmac".to_owned()), "{got:?}");
    }

    #[test]
    fn wrong_secret_rejected() {
        let c = Clocked::new();
        let mut m = made(&c.auth(b"secret"), &request());
        assert_eq!(
            c.auth(b"Secret").check(&mut m, &ctx()),
            Err(AuthError::Invalid)
        );
        let mut m = made(&HmacAuth::from_key([1; 32]), &request());
        assert_eq!(
            HmacAuth::from_key([2; 32]).check(&mut m, &ctx()),
            Err(AuthError::Invalid)
        );
    }

    /// Each tampering of a sealed message is refused, and nothing is recorded in the replay cache.
    #[test]
    fn tampering_rejected() {
        let c = Clocked::new();
        let a = c.auth(b"secret");
        let mut base = request();
        base.auth.insert("iv", vec![9u8; 24]);
        let sealed = made(&a, &base);
        let mut cases: Vec<(&str, Message)> = Vec::new();
        let mut m = sealed.clone();
        m.message_type = MessageType::SUBSCRIBE_URI;
        cases.push(("type byte", m));
        cases.push(("uri", sealed.clone().with_uri("echO")));
        cases.push(("content", sealed.clone().with_content("hellO")));
        cases.push(("empty content", sealed.clone().with_content("")));
        let mut m = sealed.clone();
        let mut n = m.auth.get("nonce").unwrap().to_vec();
        n[0] ^= 1;
        m.auth.insert("nonce", n);
        cases.push(("nonce", m));
        let mut m = sealed.clone();
        m.auth.insert("ts", (T0 + 1).to_be_bytes().to_vec());
        cases.push(("timestamp", m));
        let mut m = sealed.clone();
        m.auth.insert("iv", vec![8u8; 24]);
        cases.push(("cipher iv", m));
        let mut m = sealed.clone();
        m.set_request_id(43);
        cases.push(("request id", m));
        let mut m = sealed.clone();
        m.set_reply_ref(1);
        cases.push(("added field", m));
        let mut m = sealed.clone();
        m.auth.remove("rid");
        cases.push(("removed field", m));
        let mut m = sealed.clone();
        let mut mac = m.auth.get("hmac").unwrap().to_vec();
        mac[31] ^= 0x80;
        m.auth.insert("hmac", mac);
        cases.push(("mac", m));
        // Moving bytes between uri and content keeps their concatenation.
        cases.push((
            "uri/content boundary",
            sealed.clone().with_uri("echoh").with_content("ello"),
        ));
        for (what, mut m) in cases {
            assert_eq!(a.check(&mut m, &ctx()), Err(AuthError::Invalid), "{what}");
        }
        assert!(a.get_freshness().is_empty());
        // The untouched message still passes.
        a.check(&mut sealed.clone(), &ctx()).unwrap();
    }

    #[test]
    fn replay_within_window_rejected() {
        let c = Clocked::new();
        let a = c.auth(b"secret");
        let sealed = made(&a, &request());
        a.check(&mut sealed.clone(), &ctx()).unwrap();
        assert_eq!(a.check(&mut sealed.clone(), &ctx()), Err(AuthError::Replay));
        c.set(T0 + 59);
        assert_eq!(a.check(&mut sealed.clone(), &ctx()), Err(AuthError::Replay));
        // Two makes of the same message use different nonces: both pass once.
        let (x, y) = (made(&a, &request()), made(&a, &request()));
        assert_ne!(x.auth.get("nonce"), y.auth.get("nonce"));
        a.check(&mut x.clone(), &ctx()).unwrap();
        a.check(&mut y.clone(), &ctx()).unwrap();
    }

    #[test]
    fn stale_timestamp_rejected() {
        let sender = Clocked::new();
        let receiver = Clocked::new();
        let s = sender.auth(b"secret");
        let r = receiver.auth(b"secret");
        let sealed = made(&s, &request());
        receiver.set(T0 + 61);
        assert_eq!(
            r.check(&mut sealed.clone(), &ctx()),
            Err(AuthError::Stale {
                ts: T0,
                now: T0 + 61
            })
        );
        receiver.set(T0 - 61);
        assert!(matches!(
            r.check(&mut sealed.clone(), &ctx()),
            Err(AuthError::Stale { .. })
        ));
        receiver.set(T0 + 60);
        r.check(&mut sealed.clone(), &ctx()).unwrap();
    }

    #[test]
    fn custom_window() {
        let c = Clocked::new();
        let now = c.now.clone();
        let a = HmacAuth::new(b"s").freshness(
            Freshness::new(std::time::Duration::from_secs(5))
                .clock(Arc::new(move || now.load(Ordering::SeqCst))),
        );
        let sealed = made(&a, &request());
        c.set(T0 + 6);
        assert!(matches!(
            a.check(&mut sealed.clone(), &ctx()),
            Err(AuthError::Stale { .. })
        ));
    }

    #[test]
    fn missing_and_malformed_fields_rejected() {
        let c = Clocked::new();
        let a = c.auth(b"secret");
        let sealed = made(&a, &request());
        for name in ["nonce", "ts", "hmac"] {
            let mut m = sealed.clone();
            m.auth.remove(name);
            assert_eq!(
                a.check(&mut m, &ctx()),
                Err(AuthError::MissingField(name.into())),
                "{name}"
            );
        }
        for (name, value) in [("nonce", vec![0u8; 15]), ("ts", vec![0u8; 4])] {
            let mut m = sealed.clone();
            m.auth.insert(name, value);
            assert_eq!(
                a.check(&mut m, &ctx()),
                Err(AuthError::MalformedField(name.into())),
                "{name}"
            );
        }
        let mut m = sealed.clone();
        m.auth.insert("hmac", vec![0u8; 31]);
        assert_eq!(a.check(&mut m, &ctx()), Err(AuthError::Invalid));
        // A plain message.
        assert!(a.check(&mut request(), &ctx()).is_err());
    }

    #[test]
    fn make_refuses_to_overwrite_its_fields() {
        let c = Clocked::new();
        let outer = Plugins::new().auth(c.auth(b"outer"));
        let inner = Plugins::new().auth(c.auth(b"inner"));
        let err = seal(request(), &inner, &outer, &ctx()).unwrap_err();
        assert!(
            matches!(&err, SealError::Auth { stage: Stage::Outer, source: AuthError::Other(t) } if t.contains("already present")),
            "{err:?}"
        );
        for name in ["nonce", "ts", "hmac"] {
            let mut m = request();
            m.auth.insert(name, "x");
            assert!(matches!(
                c.auth(b"s").make(&mut m, &ctx()),
                Err(AuthError::Other(_))
            ));
        }
    }

    #[test]
    fn stacked_with_prefixed_names() {
        let c = Clocked::new();
        let outer = Plugins::new().auth(c.auth(b"outer"));
        let inner = Plugins::new().auth(c.auth(b"inner").field_prefix("in."));
        let sealed = seal(request(), &inner, &outer, &ctx()).unwrap();
        assert!(sealed.auth.contains("in.hmac") && sealed.auth.contains("hmac"));
        let routed = open_outer(sealed.clone(), &outer, &ctx()).unwrap();
        assert!(routed.auth.contains("in.hmac") && !routed.auth.contains("hmac"));
        let opened = crate::plugin::open_inner(routed, &inner, &ctx()).unwrap();
        assert_eq!(opened, request());
        // The outer MAC covers the inner fields.
        let mut m = sealed.clone();
        m.auth.insert("in.ts", (T0 + 1).to_be_bytes().to_vec());
        assert!(matches!(
            open_outer(m, &outer, &ctx()),
            Err(OpenError::Auth {
                stage: Stage::Outer,
                source: AuthError::Invalid
            })
        ));
    }

    #[test]
    fn error_reply_is_the_python_one() {
        let r = HmacAuth::new(b"x").error_reply(&AuthError::Invalid);
        assert_eq!(r.message_type, MessageType::AUTH_ERROR);
        assert_eq!(r.uri().as_ref(), b"ERROR");
        assert_eq!(r.content().as_ref(), b"HMAC auth failed");
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let s = format!("{:?}", HmacAuth::from_key([0xab; 32]));
        assert!(s.contains("HmacAuth") && !s.contains("171") && !s.contains("ab, ab"));
    }

    fn arb_fields() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
        let name = prop_oneof![
            Just("nonce".to_owned()),
            Just("ts".to_owned()),
            Just("hmac".to_owned()),
            Just("rid".to_owned()),
            "[a-z]{0,6}",
        ];
        prop::collection::vec((name, prop::collection::vec(any::<u8>(), 0..40)), 0..6)
    }

    proptest! {
        #[test]
        fn check_never_panics(
            t in any::<u8>(),
            uri in prop::collection::vec(any::<u8>(), 0..32),
            content in prop::collection::vec(any::<u8>(), 0..64),
            fields in arb_fields(),
        ) {
            let a = HmacAuth::new(b"secret");
            let mut m = Message::new(MessageType::from_u8(t), uri, content);
            for (n, v) in fields {
                m.auth.insert(&n, v);
            }
            let before = m.clone();
            prop_assert!(a.check(&mut m, &ctx()).is_err());
            // A failed check leaves the message as it was.
            prop_assert_eq!(m, before);
        }

        /// Flipping any one bit of a sealed frame makes it fail to decode or to check.
        #[test]
        fn any_bit_flip_in_the_frame_is_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let c = Clocked::new();
            let a = c.auth(b"secret");
            let sealed = made(&a, &request());
            let wire = sealed.to_bytes(&PostcardCodec).unwrap();
            let mut bytes = wire.to_vec();
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            if let Ok(mut m) = Message::decode(Bytes::from(bytes), &PostcardCodec) {
                prop_assert!(a.check(&mut m, &ctx()).is_err(), "flip at {} accepted", i);
            }
        }
    }
}
