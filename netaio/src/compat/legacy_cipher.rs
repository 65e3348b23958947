//! [`LegacySha256StreamCipher`]: Python netaio's `Sha256StreamCipherPlugin`, byte for byte.
//! Insecure; for compatibility only.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};

use super::legacy_hmac::{derive_key, sha256};
use crate::Message;
use crate::message::{Body, EncodeError, MAX_URI_AND_CONTENT};
use crate::plugin::{CipherError, CipherPlugin, PluginContext};

/// **INSECURE — for compatibility with Python netaio 0.0.9 only.** The Python library's
/// `Sha256StreamCipherPlugin`, reproduced byte for byte. Use
/// [`AeadCipher`](crate::plugin::AeadCipher) for anything else.
///
/// Why it is insecure (see the Python reference, section 12): it is an **unauthenticated** XOR
/// stream cipher. Flipping a ciphertext bit flips the same plaintext bit, and a message encrypted
/// with another key decrypts to garbage without any error (the garbage is then routed and
/// handled, as in Python). The message type, the lengths and the IV travel in clear, and both
/// directions use the same key. Always pair it with
/// [`LegacyHmacAuth`](super::LegacyHmacAuth) (which at least MACs the ciphertext body), and prefer
/// migrating off it.
///
/// The construction:
///
/// - `K = SHA256(key)`; a fresh random 16-byte IV per message, in the auth field `iv`;
/// - keystream: `ek = SHA256(SHA256(K) ‖ SHA256(iv) ‖ SHA256("enc"))`, then blocks
///   `SHA256(ek ‖ u32 BE counter)` for counter 0, 1, 2, …; ciphertext = plaintext ⊕ keystream;
/// - with [`encrypt_uri`](Self::encrypt_uri) (the default, as in Python) the plaintext is
///   `uri_len u16 BE ‖ uri ‖ content`, and the ciphertext is split at a random point `r` in
///   `1..len` between the uri (`C[..r]`) and the content (`C[r..]`), so the message is 2 bytes
///   longer; without it the uri stays in clear and only the content is encrypted;
/// - decryption joins uri and content again, reads the length and slices as tolerantly as
///   Python (a wrong key yields garbage, never an error); only a missing `iv` field fails.
///
/// Unlike Python, `encrypt` refuses a message that already has an `iv` field (two stream ciphers
/// stacked with the same field name would make the inner one undecryptable), and a message whose
/// encrypted uri and content would exceed [`MAX_URI_AND_CONTENT`] is refused with
/// [`CipherError::TooLarge`] instead of being dropped silently.
///
/// ```
/// use netaio::compat::LegacySha256StreamCipher;
/// use netaio::plugin::{CipherPlugin, PluginContext};
/// use netaio::{Message, MessageType};
///
/// let cipher = LegacySha256StreamCipher::new("key");
/// let ctx = PluginContext::default();
/// let msg = Message::new(MessageType::REQUEST_URI, "echo", "hello");
/// let sealed = cipher.encrypt(msg.clone(), &ctx).unwrap();
/// assert_eq!(sealed.auth.get("iv").unwrap().len(), 16);
/// assert_eq!(sealed.uri().len() + sealed.content().len(), 2 + 4 + 5);
/// assert_eq!(cipher.decrypt(sealed, &ctx).unwrap(), msg);
///
/// // Python's frame `cipher_encrypted_uri`: a fixed IV and split.
/// let iv: [u8; 16] = core::array::from_fn(|i| 0x10 + i as u8);
/// let fixed = cipher.encrypt_with(msg, iv, 3).unwrap();
/// assert_eq!(fixed.uri().as_ref(), b"\x3b\xc0\xbe");
/// ```
pub struct LegacySha256StreamCipher {
    key: [u8; 32],
    iv_field: Cow<'static, str>,
    encrypt_uri: bool,
}

impl fmt::Debug for LegacySha256StreamCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacySha256StreamCipher")
            .field("iv_field", &self.iv_field)
            .field("encrypt_uri", &self.encrypt_uri)
            .finish_non_exhaustive()
    }
}

impl LegacySha256StreamCipher {
    /// Default IV field name (Python `iv_field`).
    pub const IV_FIELD: &'static str = "iv";
    /// Length of the IV `encrypt` generates (Python `IV_SIZE`).
    pub const IV_LEN: usize = 16;

    /// A cipher for this key (Python `Sha256StreamCipherPlugin({"key": key})`; a Python `str` key
    /// is its UTF-8 bytes), encrypting the uri too, with the IV in field `iv`.
    pub fn new(key: impl AsRef<[u8]>) -> Self {
        Self {
            key: sha256(&[key.as_ref()]),
            iv_field: Cow::Borrowed(Self::IV_FIELD),
            encrypt_uri: true,
        }
    }

    /// Encrypt the uri with the content (default true, as Python's `encrypt_uri`). Both ends must
    /// agree.
    #[must_use]
    pub fn encrypt_uri(mut self, on: bool) -> Self {
        self.encrypt_uri = on;
        self
    }

    /// With this IV field name (Python `iv_field`).
    #[must_use]
    pub fn iv_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.iv_field = name.into();
        self
    }

    /// True when the uri is encrypted too.
    pub fn encrypts_uri(&self) -> bool {
        self.encrypt_uri
    }

    /// XOR `data` with the keystream for `iv` (encryption and decryption are the same operation).
    fn apply(&self, iv: &[u8], data: &mut [u8]) {
        let ek = derive_key(&[&self.key, iv, b"enc"]);
        for (i, chunk) in data.chunks_mut(32).enumerate() {
            let block = sha256(&[&ek, &(i as u32).to_be_bytes()]);
            for (d, k) in chunk.iter_mut().zip(block) {
                *d ^= k;
            }
        }
    }

    /// The first `len` keystream bytes for an IV (Python `keystream(K, iv, len)`), for checking
    /// frames by hand.
    ///
    /// ```
    /// use netaio::compat::LegacySha256StreamCipher;
    /// let iv: Vec<u8> = (0x10u8..0x20).collect();
    /// let ks = LegacySha256StreamCipher::new("key").keystream(&iv, 4);
    /// assert_eq!(ks, [0x3b, 0xc4, 0xdb, 0x4e]);
    /// ```
    pub fn keystream(&self, iv: &[u8], len: usize) -> Vec<u8> {
        let mut ks = vec![0u8; len];
        self.apply(iv, &mut ks);
        ks
    }

    /// Encrypt with a given IV and uri split instead of random ones: what
    /// [`encrypt`](CipherPlugin::encrypt) does after drawing them. For reproducing recorded
    /// frames and for tests; never reuse an IV with the same key for real traffic.
    ///
    /// With uri encryption, the ciphertext of `len` bytes is split at `split`, clamped to
    /// `1..=len-1`; without it `split` is ignored.
    pub fn encrypt_with(
        &self,
        mut msg: Message,
        iv: [u8; 16],
        split: usize,
    ) -> Result<Message, CipherError> {
        if msg.auth.contains(&self.iv_field) {
            return Err(CipherError::Other(format!(
                "auth field {:?} already present (two stream ciphers with the same IV field?)",
                self.iv_field
            )));
        }
        let body = &msg.body;
        let body = if self.encrypt_uri {
            let mut data = BytesMut::with_capacity(body.encoded_len());
            data.put_u16(u16::try_from(body.uri.len()).unwrap_or(u16::MAX));
            data.extend_from_slice(&body.uri);
            data.extend_from_slice(&body.content);
            if data.len() > MAX_URI_AND_CONTENT {
                return Err(CipherError::TooLarge(EncodeError::BodyTooLarge {
                    len: data.len(),
                    max: MAX_URI_AND_CONTENT,
                }));
            }
            self.apply(&iv, &mut data);
            let data = data.freeze();
            let r = split.clamp(1, data.len().saturating_sub(1).max(1));
            Body::new(data.slice(..r), data.slice(r..))
        } else {
            let mut content = BytesMut::from(&body.content[..]);
            self.apply(&iv, &mut content);
            Body::new(body.uri.clone(), content.freeze())
        };
        msg.body = body;
        match &self.iv_field {
            Cow::Borrowed(s) => msg.auth.insert_static(s, iv.to_vec()),
            Cow::Owned(s) => msg.auth.insert(s, iv.to_vec()),
        };
        Ok(msg)
    }
}

impl CipherPlugin for LegacySha256StreamCipher {
    fn encrypt(&self, msg: Message, _ctx: &PluginContext<'_>) -> Result<Message, CipherError> {
        let mut iv = [0u8; Self::IV_LEN];
        rand::fill(&mut iv[..]);
        // Python draws `random.randint(1, len - 1)`; the ciphertext is at least 2 bytes.
        let len = msg.body.encoded_len();
        let split = rand::random_range(1..len.max(2));
        self.encrypt_with(msg, iv, split)
    }

    fn decrypt(&self, mut msg: Message, _ctx: &PluginContext<'_>) -> Result<Message, CipherError> {
        let iv = msg
            .auth
            .remove(&self.iv_field)
            .ok_or_else(|| CipherError::MissingField(self.iv_field.to_string()))?;
        msg.body = if self.encrypt_uri {
            let mut data = BytesMut::with_capacity(msg.body.uri.len() + msg.body.content.len());
            data.extend_from_slice(&msg.body.uri);
            data.extend_from_slice(&msg.body.content);
            self.apply(&iv, &mut data);
            let data = data.freeze();
            // Python: uri_len = int.from_bytes(pt[:2]); uri = pt[2:uri_len+2]; content = the rest
            // (every slice clamped to the data, so any input decrypts to something).
            let head = data.get(..2.min(data.len())).unwrap_or_default();
            let uri_len = head
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            let start = 2.min(data.len());
            let end = (2 + uri_len).min(data.len());
            Body::new(data.slice(start..end), data.slice(end..))
        } else {
            let mut content = BytesMut::from(&msg.body.content[..]);
            self.apply(&iv, &mut content);
            Body::new(msg.body.uri.clone(), content.freeze())
        };
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::MessageType;

    fn ctx() -> PluginContext<'static> {
        PluginContext::default()
    }

    fn msg() -> Message {
        Message::new(MessageType::REQUEST_URI, "echo", "hello")
    }

    #[test]
    fn with_and_without_uri_encryption() {
        let on = LegacySha256StreamCipher::new("key");
        let off = LegacySha256StreamCipher::new("key").encrypt_uri(false);
        assert!(on.encrypts_uri() && !off.encrypts_uri());
        let a = on.encrypt(msg(), &ctx()).unwrap();
        assert_ne!(a.uri().as_ref(), b"echo");
        assert_eq!(a.uri().len() + a.content().len(), 11);
        assert!(!a.uri().is_empty() && !a.content().is_empty());
        assert_eq!(on.decrypt(a, &ctx()).unwrap(), msg());
        let b = off.encrypt(msg(), &ctx()).unwrap();
        assert_eq!(b.uri().as_ref(), b"echo");
        assert_ne!(b.content().as_ref(), b"hello");
        assert_eq!(off.decrypt(b, &ctx()).unwrap(), msg());
        // A fresh IV each time.
        let c = on.encrypt(msg(), &ctx()).unwrap();
        let d = on.encrypt(msg(), &ctx()).unwrap();
        assert_ne!(c.auth.get("iv"), d.auth.get("iv"));
    }

    #[test]
    fn the_split_is_clamped_and_covers_every_point() {
        let c = LegacySha256StreamCipher::new("key");
        let iv = [1u8; 16];
        for split in [0, 1, 5, 10, 11, 1000] {
            let m = c.encrypt_with(msg(), iv, split).unwrap();
            assert_eq!(m.uri().len(), split.clamp(1, 10), "split {split}");
            assert_eq!(c.decrypt(m, &ctx()).unwrap(), msg());
        }
        // Random splits land anywhere in 1..len.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400 {
            seen.insert(c.encrypt(msg(), &ctx()).unwrap().uri().len());
        }
        assert_eq!(seen, (1..=10).collect());
        // An empty message: 2 bytes of ciphertext, split 1.
        let empty = Message::ok("", "");
        let e = c.encrypt(empty.clone(), &ctx()).unwrap();
        assert_eq!((e.uri().len(), e.content().len()), (1, 1));
        assert_eq!(c.decrypt(e, &ctx()).unwrap(), empty);
    }

    #[test]
    fn a_wrong_key_decrypts_to_garbage_without_error_as_in_python() {
        let sealed = LegacySha256StreamCipher::new("key")
            .encrypt(msg(), &ctx())
            .unwrap();
        let opened = LegacySha256StreamCipher::new("other")
            .decrypt(sealed, &ctx())
            .unwrap();
        assert_ne!(opened, msg());
    }

    #[test]
    fn decrypt_needs_the_iv_and_tolerates_short_input() {
        let c = LegacySha256StreamCipher::new("key");
        assert_eq!(
            c.decrypt(msg(), &ctx()),
            Err(CipherError::MissingField("iv".into()))
        );
        for body in [&b""[..], b"\x01", b"\xff\xff\xff"] {
            let mut m = Message::new(MessageType::OK, bytes::Bytes::new(), body.to_vec());
            m.auth.insert("iv", vec![0u8; 3]);
            let out = c.decrypt(m, &ctx()).unwrap();
            assert!(out.uri().len() + out.content().len() <= body.len());
        }
    }

    #[test]
    fn refuses_a_second_iv_and_oversized_messages() {
        let c = LegacySha256StreamCipher::new("key");
        let mut m = msg();
        m.auth.insert("iv", vec![0u8; 16]);
        assert!(matches!(c.encrypt(m, &ctx()), Err(CipherError::Other(_))));
        // uri + content at the limit: 2 more bytes with the uri encrypted do not fit.
        let big = Message::ok("", vec![0u8; MAX_URI_AND_CONTENT]);
        assert!(matches!(
            c.encrypt(big.clone(), &ctx()),
            Err(CipherError::TooLarge(_))
        ));
        let fits = Message::ok("", vec![0u8; MAX_URI_AND_CONTENT - 2]);
        assert!(c.encrypt(fits, &ctx()).is_ok());
        let clear_uri = LegacySha256StreamCipher::new("key").encrypt_uri(false);
        assert!(clear_uri.encrypt(big, &ctx()).is_ok());
    }

    #[test]
    fn custom_field_name() {
        let c = LegacySha256StreamCipher::new("key").iv_field("nonce2");
        let m = c.encrypt(msg(), &ctx()).unwrap();
        assert!(m.auth.contains("nonce2") && !m.auth.contains("iv"));
        assert_eq!(c.decrypt(m, &ctx()).unwrap(), msg());
    }

    proptest! {
        #[test]
        fn round_trips_and_never_panics(
            uri in prop::collection::vec(any::<u8>(), 0..40),
            content in prop::collection::vec(any::<u8>(), 0..300),
            iv in prop::collection::vec(any::<u8>(), 0..20),
            encrypt_uri in any::<bool>(),
        ) {
            let c = LegacySha256StreamCipher::new("key").encrypt_uri(encrypt_uri);
            let m = Message::new(MessageType::REQUEST_URI, uri.clone(), content.clone());
            let sealed = c.encrypt(m.clone(), &ctx()).unwrap();
            prop_assert_eq!(c.decrypt(sealed, &ctx()).unwrap(), m);
            // Arbitrary bodies with an arbitrary IV decrypt to something.
            let mut raw = Message::new(MessageType::REQUEST_URI, uri, content);
            raw.auth.insert("iv", iv);
            let _ = c.decrypt(raw, &ctx());
        }
    }
}
