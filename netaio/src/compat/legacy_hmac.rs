//! [`LegacyHmacAuth`]: Python netaio's `HMACAuthPlugin`, byte for byte. Insecure; for
//! compatibility only.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::message::{AuthFields, Body};
use crate::plugin::{AuthError, AuthPlugin, Freshness, PluginContext};
use crate::{Message, MessageType};

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Python `netaio.crypto.derive_key(*parts)`: `SHA256(SHA256(p1) ‖ SHA256(p2) ‖ …)`.
pub(crate) fn derive_key(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(sha256(&[p]));
    }
    h.finalize().into()
}

/// The 136-byte block of Python's `netaio.crypto.hmac`.
const BLOCK: usize = 136;

/// Python `netaio.crypto.hmac(key, iv, message)` with the message given in parts: the per-nonce
/// key `k = derive_key(key, nonce, b"mac")` zero-padded to 136 bytes, then
/// `SHA256((k ⊕ 0x5c…) ‖ SHA256((k ⊕ 0x36…) ‖ message))`.
pub(crate) fn legacy_mac(key: &[u8], nonce: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let k = derive_key(&[key, nonce, b"mac"]);
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for ((i, o), b) in ipad.iter_mut().zip(opad.iter_mut()).zip(k) {
        *i ^= b;
        *o ^= b;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for part in message {
        inner.update(part);
    }
    let inner: [u8; 32] = inner.finalize().into();
    sha256(&[&opad, &inner])
}

/// Python's `check_hmac` comparison: lengths, then the sum of the byte differences, in time that
/// does not depend on where they differ.
fn same_mac(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A big-endian unsigned value that fits in `N` bytes once leading zeros are dropped.
fn be_value<const N: usize>(bytes: &[u8]) -> Option<u64> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = bytes.get(start..)?;
    (digits.len() <= N).then(|| {
        digits
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// **INSECURE — for compatibility with Python netaio 0.0.9 only.** The Python library's
/// `HMACAuthPlugin`, reproduced byte for byte so that a Rust node can join a network of Python
/// nodes. Use [`HmacAuth`](crate::plugin::HmacAuth) for anything else.
///
/// Why it is insecure (see the Python reference, section 12):
///
/// - the MAC covers only the timestamp and the body: the **message type** and every other auth
///   field (a cipher's IV, the request id) can be changed without detection;
/// - Python checks neither the timestamp nor the nonce, so **any captured message can be
///   replayed** forever ([`freshness`](Self::freshness) adds the checks on the Rust side);
/// - the key is one SHA-256 of the secret, so a weak secret falls to an offline guess from one
///   captured frame; the MAC is a home-made variant of HMAC with a 136-byte pad.
///
/// The construction (fields `nonce`, `ts`, `hmac`; names configurable):
///
/// - `K = SHA256(secret)`;
/// - `make`: the nonce is the existing `nonce` field if it is exactly 16 bytes, else 16 random
///   bytes; the timestamp is the existing `ts` field (a big-endian number) if present, else the
///   clock; it is written back as 4 bytes big-endian (a value above 2³²−1 is refused). Reusing
///   them is Python's behaviour (the fields are "shared" between plugins), and it is how tests
///   reproduce Python's frames: put a fixed `nonce` and `ts` in the message before `make`.
///   `mac = MAC(K, nonce, ts ‖ body)`, where body is `uri_len u16 BE ‖ uri ‖ content` and
///   `MAC(K, n, m) = SHA256((k ⊕ opad) ‖ SHA256((k ⊕ ipad) ‖ m))` with the per-nonce key
///   `k = SHA256(SHA256(K) ‖ SHA256(n) ‖ SHA256("mac"))` zero-padded to 136 bytes. An existing
///   `hmac` field is replaced, as in Python.
/// - `check`: the three fields must be present (the nonce and timestamp at any length, used as
///   they are, like Python); the MAC is compared in constant time; then the three fields are
///   removed. By default nothing else is checked, like Python.
///
/// Stacking with [`LegacySha256StreamCipher`](super::LegacySha256StreamCipher) works as in
/// Python: the cipher encrypts first, then this plugin MACs the ciphertext body (the `iv` field is
/// not covered); on receive this plugin checks and removes its own fields and leaves `iv` to the
/// cipher.
///
/// ```
/// use bytes::Bytes;
/// use netaio::compat::{LegacyHmacAuth, PackifyCodec};
/// use netaio::plugin::{AuthPlugin, PluginContext};
/// use netaio::{Message, MessageType};
///
/// let auth = LegacyHmacAuth::new("secret");
/// let ctx = PluginContext::default();
/// // Python's frame `hmac_request`: fixed nonce and timestamp, uri "echo", content "hello".
/// let mut msg = Message::new(MessageType::REQUEST_URI, "echo", "hello");
/// msg.auth.insert("nonce", (0u8..16).collect::<Vec<u8>>());
/// msg.auth.insert("ts", 1_700_000_000u32.to_be_bytes().to_vec());
/// auth.make(&mut msg, &ctx).unwrap();
/// let mac = msg.auth.get("hmac").unwrap().clone();
/// assert_eq!(&mac[..4], b"\x32\x1e\xb3\xc1");
/// let frame = msg.to_bytes(&PackifyCodec).unwrap();
/// assert_eq!(frame.len(), 9 + 96 + 11);
///
/// let mut received = Message::decode(frame, &PackifyCodec).unwrap();
/// auth.check(&mut received, &ctx).unwrap();
/// assert!(received.auth.is_empty());
/// assert!(LegacyHmacAuth::new("wrong").check(&mut msg.clone(), &ctx).is_err());
/// ```
pub struct LegacyHmacAuth {
    key: [u8; 32],
    nonce_field: Cow<'static, str>,
    ts_field: Cow<'static, str>,
    hmac_field: Cow<'static, str>,
    freshness: Option<Freshness>,
}

impl fmt::Debug for LegacyHmacAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyHmacAuth")
            .field("nonce_field", &self.nonce_field)
            .field("ts_field", &self.ts_field)
            .field("hmac_field", &self.hmac_field)
            .field("freshness", &self.freshness)
            .finish_non_exhaustive()
    }
}

impl LegacyHmacAuth {
    /// Default nonce field name (Python `nonce_field`).
    pub const NONCE_FIELD: &'static str = "nonce";
    /// Default timestamp field name (Python `ts_field`).
    pub const TS_FIELD: &'static str = "ts";
    /// Default MAC field name (Python `hmac_field`).
    pub const HMAC_FIELD: &'static str = "hmac";
    /// Length of the nonce `make` generates (Python `IV_SIZE`).
    pub const NONCE_LEN: usize = 16;

    /// A plugin for this secret (Python `HMACAuthPlugin({"secret": secret})`; a Python `str`
    /// secret is its UTF-8 bytes), with the default field names and no freshness checks.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            key: sha256(&[secret.as_ref()]),
            nonce_field: Cow::Borrowed(Self::NONCE_FIELD),
            ts_field: Cow::Borrowed(Self::TS_FIELD),
            hmac_field: Cow::Borrowed(Self::HMAC_FIELD),
            freshness: None,
        }
    }

    /// The nonce field's name (Python `nonce_field`; default [`NONCE_FIELD`](Self::NONCE_FIELD),
    /// `nonce`).
    ///
    /// ```
    /// use netaio::compat::LegacyHmacAuth;
    /// let auth = LegacyHmacAuth::new("secret").nonce_field("n").ts_field("t").hmac_field("mac");
    /// assert_eq!(auth.names(), ["n", "t", "mac"]);
    /// ```
    #[must_use]
    pub fn nonce_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.nonce_field = name.into();
        self
    }

    /// The timestamp field's name (Python `ts_field`; default [`TS_FIELD`](Self::TS_FIELD), `ts`).
    #[must_use]
    pub fn ts_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.ts_field = name.into();
        self
    }

    /// The MAC field's name (Python `hmac_field`; default [`HMAC_FIELD`](Self::HMAC_FIELD),
    /// `hmac`).
    #[must_use]
    pub fn hmac_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.hmac_field = name.into();
        self
    }

    /// Also refuse stale timestamps and replayed nonces on receive (after the MAC verifies), and
    /// take the timestamps of outgoing messages from its clock. Python does neither; Python
    /// senders stamp every message with the current time and a fresh nonce, so this works
    /// against them, except for a message Python prepares once and sends again (for example
    /// a `TCPClient`'s peer adverts built with inner plugins). A timestamp longer than 8 bytes
    /// is then refused as malformed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netaio::compat::LegacyHmacAuth;
    /// use netaio::plugin::Freshness;
    /// let auth = LegacyHmacAuth::new("secret").freshness(Freshness::new(Duration::from_secs(60)));
    /// ```
    #[must_use]
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = Some(freshness);
        self
    }

    /// The nonce, timestamp and MAC field names.
    pub fn names(&self) -> [&str; 3] {
        [&self.nonce_field, &self.ts_field, &self.hmac_field]
    }

    /// The MAC of a body for a nonce and a timestamp as they are on the wire (Python
    /// `hmac(K, nonce, ts + body.encode())`), for checking frames by hand.
    ///
    /// ```
    /// use netaio::compat::LegacyHmacAuth;
    /// use netaio::message::Body;
    /// let nonce: Vec<u8> = (0u8..16).collect();
    /// let mac = LegacyHmacAuth::new("secret").mac(&nonce, b"\x65\x53\xf1\x00", &Body::new("echo", "hello"));
    /// assert_eq!(&mac[..4], b"\x32\x1e\xb3\xc1");
    /// ```
    pub fn mac(&self, nonce: &[u8], ts: &[u8], body: &Body) -> [u8; 32] {
        let uri_len = u16::try_from(body.uri.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes();
        legacy_mac(&self.key, nonce, &[ts, &uri_len, &body.uri, &body.content])
    }

    fn now(&self) -> u64 {
        self.freshness
            .as_ref()
            .map_or_else(now_secs, Freshness::now)
    }
}

#[allow(
    clippy::ptr_arg,
    reason = "the Cow tells a 'static name from an owned one"
)]
fn put(fields: &mut AuthFields, name: &Cow<'static, str>, value: impl Into<Bytes>) {
    match name {
        Cow::Borrowed(s) => fields.insert_static(s, value),
        Cow::Owned(s) => fields.insert(s, value),
    };
}

impl AuthPlugin for LegacyHmacAuth {
    fn make(&self, msg: &mut Message, _ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        let nonce = match msg.auth.get(&self.nonce_field) {
            Some(n) if n.len() == Self::NONCE_LEN => n.clone(),
            _ => {
                let mut n = [0u8; Self::NONCE_LEN];
                rand::fill(&mut n[..]);
                Bytes::copy_from_slice(&n)
            }
        };
        let ts = match msg.auth.get(&self.ts_field) {
            Some(t) => be_value::<4>(t),
            None => Some(self.now()),
        };
        let ts = ts
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| AuthError::MalformedField(self.ts_field.to_string()))?
            .to_be_bytes();
        let mac = self.mac(&nonce, &ts, &msg.body);
        put(&mut msg.auth, &self.nonce_field, nonce);
        put(&mut msg.auth, &self.ts_field, ts.to_vec());
        put(&mut msg.auth, &self.hmac_field, mac.to_vec());
        Ok(())
    }

    fn check(&self, msg: &mut Message, _ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        let field = |name: &Cow<'static, str>| {
            msg.auth
                .get(name)
                .cloned()
                .ok_or_else(|| AuthError::MissingField(name.to_string()))
        };
        let ts = field(&self.ts_field)?;
        let nonce = field(&self.nonce_field)?;
        let mac = field(&self.hmac_field)?;
        if !same_mac(&mac, &self.mac(&nonce, &ts, &msg.body)) {
            return Err(AuthError::Invalid);
        }
        if let Some(fresh) = &self.freshness {
            let ts = be_value::<8>(&ts)
                .ok_or_else(|| AuthError::MalformedField(self.ts_field.to_string()))?;
            fresh.accept(ts, &nonce)?;
        }
        msg.auth.remove(&self.nonce_field);
        msg.auth.remove(&self.ts_field);
        msg.auth.remove(&self.hmac_field);
        Ok(())
    }

    /// AUTH_ERROR `HMAC auth failed` with uri `ERROR`, as the Python plugin's `error()`.
    fn error_reply(&self, _err: &AuthError) -> Message {
        Message::new(MessageType::AUTH_ERROR, "ERROR", "HMAC auth failed")
    }

    /// True only with [`freshness`](Self::freshness) on: without it, one captured frame could be
    /// replayed from any forged source address and count as that address's proof.
    fn authenticates_sender(&self) -> bool {
        self.freshness.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::compat::{LegacySha256StreamCipher, PackifyCodec};
    use crate::plugin::{OpenError, Plugins, Stage, open_outer, seal};

    const VECTORS: &str = include_str!("../../tests/fixtures/python-netaio-0.0.9-vectors.json");

    #[test]
    fn intermediate_values_match_python() {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let h = &v["primitives"]["hmac"];
        let auth = LegacyHmacAuth::new(h["secret"].as_str().unwrap());
        assert_eq!(hex::encode(auth.key), h["secret_sha256_hex"]);
        let nonce = hex::decode(h["nonce_hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            hex::encode(derive_key(&[&auth.key, &nonce, b"mac"])),
            h["mac_key_hex"]
        );
        let mut message = hex::decode(h["ts_bytes_hex"].as_str().unwrap()).unwrap();
        message.extend(hex::decode(h["body_hex"].as_str().unwrap()).unwrap());
        assert_eq!(
            hex::encode(legacy_mac(&auth.key, &nonce, &[&message])),
            h["mac_hex"]
        );

        let s = &v["primitives"]["stream_cipher"];
        let key = sha256(&[s["key"].as_str().unwrap().as_bytes()]);
        assert_eq!(hex::encode(key), s["key_sha256_hex"]);
        let iv = hex::decode(s["iv_hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            hex::encode(derive_key(&[&key, &iv, b"enc"])),
            s["enc_key_hex"]
        );
    }

    fn msg() -> Message {
        Message::new(MessageType::REQUEST_URI, "echo", "hello")
    }

    fn ctx() -> PluginContext<'static> {
        PluginContext::default()
    }

    #[test]
    fn make_generates_fields_and_check_removes_them() {
        let auth = LegacyHmacAuth::new("secret");
        let mut m = msg();
        m.set_request_id(7);
        auth.make(&mut m, &ctx()).unwrap();
        assert_eq!(m.auth.get("nonce").unwrap().len(), 16);
        assert_eq!(m.auth.get("ts").unwrap().len(), 4);
        assert_eq!(m.auth.get("hmac").unwrap().len(), 32);
        let now = now_secs();
        let ts = be_value::<4>(m.auth.get("ts").unwrap()).unwrap();
        assert!(ts.abs_diff(now) <= 5, "ts {ts} is the clock {now}");
        let frame = m.to_bytes(&PackifyCodec).unwrap();
        let mut back = Message::decode(frame, &PackifyCodec).unwrap();
        auth.check(&mut back, &ctx()).unwrap();
        // Only its own fields are removed: the request id stays.
        assert_eq!(back.request_id(), Some(7));
        assert_eq!(back.auth.len(), 1);
        // Two makes give two nonces.
        let mut other = msg();
        auth.make(&mut other, &ctx()).unwrap();
        assert_ne!(other.auth.get("nonce"), m.auth.get("nonce"));
    }

    /// The named field setters decide the fields of a sealed message (Python's `nonce_field`,
    /// `ts_field`, `hmac_field`); the defaults stay as they were.
    #[test]
    fn named_fields_in_a_sealed_message() {
        let names = |m: &Message| m.auth.iter().map(|(n, _)| n.to_owned()).collect::<Vec<_>>();
        let default = Plugins::new().auth(LegacyHmacAuth::new("k"));
        let sealed = seal(msg(), &Plugins::new(), &default, &ctx()).unwrap();
        assert_eq!(names(&sealed), ["hmac", "nonce", "ts"]);

        let named = || {
            LegacyHmacAuth::new("k")
                .nonce_field("n")
                .ts_field("t")
                .hmac_field("mac")
        };
        assert_eq!(named().names(), ["n", "t", "mac"]);
        let sender = Plugins::new().auth(named());
        let sealed = seal(msg(), &Plugins::new(), &sender, &ctx()).unwrap();
        assert_eq!(names(&sealed), ["mac", "n", "t"]);
        let receiver = Plugins::new().auth(named());
        assert_eq!(open_outer(sealed, &receiver, &ctx()).unwrap(), msg());

        // One name changed, the others left at their defaults.
        let sender = Plugins::new().auth(LegacyHmacAuth::new("k").hmac_field("mac"));
        let sealed = seal(msg(), &Plugins::new(), &sender, &ctx()).unwrap();
        assert_eq!(names(&sealed), ["mac", "nonce", "ts"]);
    }

    #[test]
    fn make_reuses_a_16_byte_nonce_and_any_timestamp_like_python() {
        let auth = LegacyHmacAuth::new("secret");
        let mut m = msg();
        m.auth.insert("nonce", vec![9u8; 16]);
        m.auth.insert("ts", vec![0, 0, 0, 0, 0x01, 0x02]);
        auth.make(&mut m, &ctx()).unwrap();
        assert_eq!(m.auth.get("nonce").unwrap().as_ref(), &[9u8; 16]);
        assert_eq!(m.auth.get("ts").unwrap().as_ref(), &[0, 0, 1, 2]);
        let first_mac = m.auth.get("hmac").unwrap().clone();
        // Making again (re-preparing) keeps nonce and ts and gives the same MAC.
        auth.make(&mut m, &ctx()).unwrap();
        assert_eq!(m.auth.get("hmac").unwrap(), &first_mac);

        // A nonce of another length is replaced; a ts above 2^32-1 is refused (Python raises).
        let mut m = msg();
        m.auth.insert("nonce", vec![9u8; 15]);
        auth.make(&mut m, &ctx()).unwrap();
        assert_ne!(m.auth.get("nonce").unwrap().as_ref(), &[9u8; 15][..]);
        let mut m = msg();
        m.auth.insert("ts", vec![1, 0, 0, 0, 0]);
        assert_eq!(
            auth.make(&mut m, &ctx()),
            Err(AuthError::MalformedField("ts".into()))
        );
    }

    #[test]
    fn check_refuses_missing_wrong_and_tampered_fields() {
        let auth = LegacyHmacAuth::new("secret");
        let mut good = msg();
        auth.make(&mut good, &ctx()).unwrap();
        for name in ["nonce", "ts", "hmac"] {
            let mut m = good.clone();
            m.auth.remove(name);
            assert_eq!(
                auth.check(&mut m, &ctx()),
                Err(AuthError::MissingField(name.into()))
            );
        }
        for name in ["nonce", "ts", "hmac"] {
            let mut m = good.clone();
            let mut v = m.auth.get(name).unwrap().to_vec();
            v[0] ^= 1;
            m.auth.insert(name, v);
            assert_eq!(
                auth.check(&mut m, &ctx()),
                Err(AuthError::Invalid),
                "{name}"
            );
        }
        let mut m = good.clone();
        m.body.uri = "ECHO".into();
        assert_eq!(auth.check(&mut m, &ctx()), Err(AuthError::Invalid));
        // A MAC of another length fails the length comparison.
        let mut m = good.clone();
        m.auth.insert("hmac", vec![0u8; 31]);
        assert_eq!(auth.check(&mut m, &ctx()), Err(AuthError::Invalid));
        // As in Python, the message type is not covered.
        let mut m = good.clone();
        m.message_type = MessageType::SUBSCRIBE_URI;
        assert_eq!(auth.check(&mut m, &ctx()), Ok(()));
        // And replays pass without freshness.
        assert_eq!(auth.check(&mut good.clone(), &ctx()), Ok(()));
        assert_eq!(auth.check(&mut good, &ctx()), Ok(()));
    }

    #[test]
    fn freshness_is_an_opt_in() {
        let clock: crate::plugin::Clock = Arc::new(|| 1_700_000_000);
        let fresh = || {
            LegacyHmacAuth::new("secret")
                .freshness(Freshness::new(Duration::from_secs(60)).clock(clock.clone()))
        };
        let auth = fresh();
        let mut m = msg();
        auth.make(&mut m, &ctx()).unwrap();
        assert_eq!(m.auth.get("ts").unwrap().as_ref(), b"\x65\x53\xf1\x00");
        assert_eq!(auth.check(&mut m.clone(), &ctx()), Ok(()));
        assert_eq!(auth.check(&mut m, &ctx()), Err(AuthError::Replay));
        // Python's recorded frame carries ts 1700000000 too; one from long ago is stale.
        let mut old = msg();
        old.auth
            .insert("ts", 1_600_000_000u32.to_be_bytes().to_vec());
        LegacyHmacAuth::new("secret")
            .make(&mut old, &ctx())
            .unwrap();
        assert!(matches!(
            fresh().check(&mut old, &ctx()),
            Err(AuthError::Stale { .. })
        ));
    }

    #[test]
    fn stacked_with_the_legacy_cipher_in_pythons_order() {
        let node = Plugins::new()
            .auth(LegacyHmacAuth::new("s"))
            .cipher(LegacySha256StreamCipher::new("k"));
        let sealed = seal(msg(), &Plugins::new(), &node, &ctx()).unwrap();
        let names: Vec<&str> = sealed.auth.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["hmac", "iv", "nonce", "ts"]);
        // The MAC covers the ciphertext body, as in Python (encrypt-then-MAC).
        let mac = LegacyHmacAuth::new("s").mac(
            sealed.auth.get("nonce").unwrap(),
            sealed.auth.get("ts").unwrap(),
            &sealed.body,
        );
        assert_eq!(sealed.auth.get("hmac").unwrap().as_ref(), &mac);
        let frame = sealed.to_bytes(&PackifyCodec).unwrap();
        let received = Message::decode(frame, &PackifyCodec).unwrap();
        assert_eq!(open_outer(received.clone(), &node, &ctx()).unwrap(), msg());
        // The IV is not covered: changing it passes the MAC and decrypts to garbage.
        let mut tampered = received;
        tampered.auth.insert("iv", vec![0u8; 16]);
        let opened = open_outer(tampered, &node, &ctx()).unwrap();
        assert_ne!(opened, msg());
        // A wrong secret fails the check before decryption.
        let wrong = Plugins::new()
            .auth(LegacyHmacAuth::new("x"))
            .cipher(LegacySha256StreamCipher::new("k"));
        let sealed = seal(msg(), &Plugins::new(), &node, &ctx()).unwrap();
        assert!(matches!(
            open_outer(sealed, &wrong, &ctx()),
            Err(OpenError::Auth {
                stage: Stage::Outer,
                source: AuthError::Invalid
            })
        ));
    }

    #[test]
    fn error_reply_is_pythons() {
        let reply = LegacyHmacAuth::new("s").error_reply(&AuthError::Invalid);
        assert_eq!(reply.message_type, MessageType::AUTH_ERROR);
        assert_eq!(reply.uri().as_ref(), b"ERROR");
        assert_eq!(reply.content().as_ref(), b"HMAC auth failed");
    }

    proptest! {
        #[test]
        fn check_never_panics(
            fields in prop::collection::btree_map(
                prop::sample::select(vec!["nonce", "ts", "hmac", "iv", "x"]),
                prop::collection::vec(any::<u8>(), 0..70),
                0..5,
            ),
            content in prop::collection::vec(any::<u8>(), 0..100),
        ) {
            let auth = LegacyHmacAuth::new("secret")
                .freshness(Freshness::new(Duration::from_secs(60)));
            let mut m = Message::new(MessageType::REQUEST_URI, "u", content);
            for (k, v) in &fields {
                m.auth.insert(k, v.clone());
            }
            let _ = auth.check(&mut m.clone(), &ctx());
            let _ = auth.make(&mut m, &ctx());
        }
    }
}
