//! [`AeadCipher`]: XChaCha20-Poly1305 encryption of the content (and optionally the uri).

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};

use super::hmac::{derive_key, put_field};
use super::{CipherError, CipherPlugin, PluginContext};
use crate::message::{Body, EncodeError, MAX_URI_AND_CONTENT};
use crate::{Message, MessageType};

/// Authenticated encryption with XChaCha20-Poly1305 and a random 24-byte nonce per message.
///
/// `encrypt` replaces the content with `ciphertext ‖ 16-byte tag` and puts the nonce in an auth
/// field (`iv` by default; the name differs from [`HmacAuth`](super::HmacAuth)'s `nonce` so both
/// can be stacked). The associated data binds, length-prefixed: the domain tag
/// `netaio/aead-cipher/v1`, the mode (uri encrypted or not), the message type byte, the nonce
/// field's name, and the uri as it is on the wire. So a changed type byte, uri, content or nonce
/// fails with [`CipherError::Decrypt`], and so does a wrong key. A random 192-bit nonce never
/// repeats in practice, so one key can encrypt any number of messages in both directions.
///
/// With [`encrypt_uri(true)`](Self::encrypt_uri) the plaintext is `uri_len u16 BE ‖ uri ‖ content`
/// and the wire uri is empty. Use it on a node's **instance** cipher: the instance cipher runs
/// before routing, so routing sees the decrypted uri (as with Python's outer cipher). An inner
/// (per-handler) cipher must leave the uri in clear, since routing needs it to find the handler;
/// that is why the default is `false`. Sender and receiver must agree on the mode.
///
/// The cipher alone does not stop replays: an encrypted frame sent twice decrypts twice. Stack it
/// with [`HmacAuth`](super::HmacAuth) (encrypt-then-MAC: the MAC covers the ciphertext and the
/// nonce field) for freshness and replay protection, or with an auth plugin of your own.
///
/// Encryption adds 16 bytes (the tag) to the body, plus 2 bytes with `encrypt_uri`; a message
/// whose encrypted body would exceed [`MAX_URI_AND_CONTENT`] fails with [`CipherError::TooLarge`].
///
/// # Keys
///
/// [`AeadCipher::new`] derives the key as `HMAC-SHA256(key = "netaio/aead-cipher/v1",
/// message = secret)` (HKDF-Extract with a label distinct from `HmacAuth`'s, so one secret can
/// serve both). As for `HmacAuth`, run a password through a slow KDF first and use
/// [`AeadCipher::from_key`].
///
/// ```
/// use netaio::plugin::{open_outer, seal, AeadCipher, HmacAuth, PluginContext, Plugins};
/// use netaio::{Message, MessageType};
///
/// let node = Plugins::new()
///     .auth(HmacAuth::new(b"secret"))
///     .cipher(AeadCipher::new(b"secret").encrypt_uri(true));
/// let ctx = PluginContext::default();
/// let msg = Message::new(MessageType::REQUEST_URI, "echo", "hello");
/// let sealed = seal(msg.clone(), &Plugins::new(), &node, &ctx).unwrap();
/// assert!(sealed.uri().is_empty());
/// assert_eq!(sealed.content().len(), 2 + 4 + 5 + 16);
/// assert_eq!(open_outer(sealed, &node, &ctx).unwrap(), msg);
/// ```
pub struct AeadCipher {
    cipher: XChaCha20Poly1305,
    nonce_field: Cow<'static, str>,
    encrypt_uri: bool,
}

impl fmt::Debug for AeadCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadCipher")
            .field("nonce_field", &self.nonce_field)
            .field("encrypt_uri", &self.encrypt_uri)
            .finish_non_exhaustive()
    }
}

impl AeadCipher {
    /// The label of the key derivation in [`AeadCipher::new`].
    pub const KDF_LABEL: &'static str = "netaio/aead-cipher/v1";
    /// The domain tag at the start of the associated data.
    pub const DOMAIN: &'static str = "netaio/aead-cipher/v1";
    /// Default nonce field name.
    pub const NONCE_FIELD: &'static str = "iv";
    /// Nonce length (XChaCha20).
    pub const NONCE_LEN: usize = 24;
    /// Tag length (Poly1305), added to every encrypted body.
    pub const TAG_LEN: usize = 16;

    /// A cipher keyed from a shared secret (see the type docs for the derivation); uri in clear,
    /// nonce field `iv`.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self::from_key(derive_key(Self::KDF_LABEL.as_bytes(), secret.as_ref()))
    }

    /// A cipher with this 32-byte key, used as it is.
    ///
    /// ```
    /// use netaio::plugin::AeadCipher;
    /// let cipher = AeadCipher::from_key([7u8; 32]);
    /// ```
    pub fn from_key(key: [u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
            nonce_field: Cow::Borrowed(Self::NONCE_FIELD),
            encrypt_uri: false,
        }
    }

    /// Encrypt the uri together with the content (default `false`; see the type docs).
    #[must_use]
    pub fn encrypt_uri(mut self, on: bool) -> Self {
        self.encrypt_uri = on;
        self
    }

    /// With this nonce field name (default `iv`).
    ///
    /// ```
    /// use netaio::plugin::AeadCipher;
    /// let inner = AeadCipher::new(b"handler secret").nonce_field("inner.iv");
    /// ```
    #[must_use]
    pub fn nonce_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.nonce_field = name.into();
        self
    }

    /// The nonce field name.
    pub fn field_name(&self) -> &str {
        &self.nonce_field
    }

    /// True when the uri is encrypted.
    pub fn encrypts_uri(&self) -> bool {
        self.encrypt_uri
    }

    fn associated_data(&self, message_type: MessageType, wire_uri: &[u8]) -> Vec<u8> {
        fn lp(out: &mut Vec<u8>, bytes: &[u8]) {
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        let mut aad = Vec::with_capacity(64 + self.nonce_field.len() + wire_uri.len());
        lp(&mut aad, Self::DOMAIN.as_bytes());
        aad.push(u8::from(self.encrypt_uri));
        aad.push(message_type.value());
        lp(&mut aad, self.nonce_field.as_bytes());
        lp(&mut aad, wire_uri);
        aad
    }
}

impl CipherPlugin for AeadCipher {
    fn encrypt(&self, mut msg: Message, _ctx: &PluginContext<'_>) -> Result<Message, CipherError> {
        if msg.auth.contains(&self.nonce_field) {
            return Err(CipherError::Other(format!(
                "field {:?} already present",
                self.nonce_field
            )));
        }
        let Body { uri, content } = std::mem::take(&mut msg.body);
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
        let body_len = wire_uri.len() + plain_len + Self::TAG_LEN;
        if body_len > MAX_URI_AND_CONTENT {
            return Err(CipherError::TooLarge(EncodeError::BodyTooLarge {
                len: body_len,
                max: MAX_URI_AND_CONTENT,
            }));
        }
        let mut buf = BytesMut::with_capacity(plain_len + Self::TAG_LEN);
        if self.encrypt_uri {
            // Bounded by the size check above.
            buf.put_u16(u16::try_from(uri.len()).unwrap_or(u16::MAX));
            buf.extend_from_slice(&uri);
        }
        buf.extend_from_slice(&content);
        let mut nonce = [0u8; Self::NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let aad = self.associated_data(msg.message_type, &wire_uri);
        self.cipher
            .encrypt_in_place(&XNonce::from(nonce), &aad, &mut buf)
            .map_err(|_| CipherError::Other("encryption failed".into()))?;
        put_field(&mut msg.auth, &self.nonce_field, nonce.to_vec());
        msg.body = Body {
            uri: wire_uri,
            content: buf.freeze(),
        };
        Ok(msg)
    }

    fn decrypt(&self, mut msg: Message, _ctx: &PluginContext<'_>) -> Result<Message, CipherError> {
        let field = || self.nonce_field.to_string();
        let nonce = msg
            .auth
            .get(&self.nonce_field)
            .ok_or_else(|| CipherError::MissingField(field()))?;
        let nonce = <[u8; Self::NONCE_LEN]>::try_from(nonce.as_ref())
            .map_err(|_| CipherError::MalformedField(field()))?;
        if msg.content().len() < Self::TAG_LEN {
            return Err(CipherError::Decrypt);
        }
        let aad = self.associated_data(msg.message_type, msg.uri());
        let mut buf = BytesMut::from(msg.content().as_ref());
        self.cipher
            .decrypt_in_place(&XNonce::from(nonce), &aad, &mut buf)
            .map_err(|_| CipherError::Decrypt)?;
        let plain = buf.freeze();
        msg.body = if self.encrypt_uri {
            // Authenticated, so only a broken sender gets here with a bad layout.
            Body::decode(plain).map_err(|e| CipherError::Other(format!("bad plaintext: {e}")))?
        } else {
            Body {
                uri: msg.body.uri,
                content: plain,
            }
        };
        msg.auth.remove(&self.nonce_field);
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use proptest::prelude::*;

    use super::*;
    use crate::message::PostcardCodec;
    use crate::plugin::{
        AuthError, Freshness, HmacAuth, OpenError, Plugins, SealError, Stage, open_inner,
        open_outer, seal,
    };

    fn ctx() -> PluginContext<'static> {
        PluginContext::default()
    }

    fn request() -> Message {
        let mut m = Message::new(MessageType::REQUEST_URI, "echo", "hello");
        m.set_request_id(7);
        m
    }

    fn both_modes() -> [AeadCipher; 2] {
        [
            AeadCipher::new(b"secret"),
            AeadCipher::new(b"secret").encrypt_uri(true),
        ]
    }

    #[test]
    fn round_trip_both_modes() {
        for c in both_modes() {
            let enc = c.encrypt(request(), &ctx()).unwrap();
            assert_eq!(enc.auth.get("iv").unwrap().len(), 24);
            assert_eq!(enc.request_id(), Some(7), "other fields untouched");
            assert!(!enc.content().windows(5).any(|w| w == b"hello"));
            if c.encrypts_uri() {
                assert!(enc.uri().is_empty());
                assert_eq!(enc.content().len(), 2 + 4 + 5 + 16);
            } else {
                assert_eq!(enc.uri().as_ref(), b"echo");
                assert_eq!(enc.content().len(), 5 + 16);
            }
            let wire = enc.to_bytes(&PostcardCodec).unwrap();
            let back = Message::decode(wire, &PostcardCodec).unwrap();
            assert_eq!(c.decrypt(back, &ctx()).unwrap(), request());
        }
    }

    #[test]
    fn round_trip_through_seal_and_empty_parts() {
        for c in both_modes() {
            let node = Plugins::new().cipher(c);
            for msg in [
                request(),
                Message::ok("", ""),
                Message::ok("u", ""),
                Message::ok("", "c"),
            ] {
                let sealed = seal(msg.clone(), &Plugins::new(), &node, &ctx()).unwrap();
                assert_eq!(open_outer(sealed, &node, &ctx()).unwrap(), msg);
            }
        }
    }

    #[test]
    fn nonces_are_fresh_per_message() {
        let c = AeadCipher::new(b"k");
        let a = c.encrypt(request(), &ctx()).unwrap();
        let b = c.encrypt(request(), &ctx()).unwrap();
        assert_ne!(a.auth.get("iv"), b.auth.get("iv"));
        assert_ne!(a.content(), b.content());
    }

    #[test]
    fn wrong_key_rejected() {
        for (good, bad) in [
            (AeadCipher::new(b"secret"), AeadCipher::new(b"secreT")),
            (AeadCipher::from_key([1; 32]), AeadCipher::from_key([2; 32])),
        ] {
            let enc = good.encrypt(request(), &ctx()).unwrap();
            assert_eq!(bad.decrypt(enc, &ctx()), Err(CipherError::Decrypt));
        }
        // Same secret, HmacAuth's key is a different one.
        let enc = AeadCipher::new(b"s").encrypt(request(), &ctx()).unwrap();
        let hmac_key = derive_key(b"netaio/hmac-auth/v1", b"s");
        assert_eq!(
            AeadCipher::from_key(hmac_key).decrypt(enc, &ctx()),
            Err(CipherError::Decrypt)
        );
    }

    #[test]
    fn tampering_rejected() {
        for c in both_modes() {
            let enc = c.encrypt(request(), &ctx()).unwrap();
            let mut cases: Vec<(&str, Message)> = Vec::new();
            let mut m = enc.clone();
            m.message_type = MessageType::SUBSCRIBE_URI;
            cases.push(("type byte", m));
            cases.push(("uri", enc.clone().with_uri("other")));
            let mut content = enc.content().to_vec();
            content[0] ^= 1;
            cases.push(("content", enc.clone().with_content(content)));
            let mut content = enc.content().to_vec();
            *content.last_mut().unwrap() ^= 1;
            cases.push(("tag", enc.clone().with_content(content)));
            let content = enc.content().slice(..enc.content().len() - 1);
            cases.push(("truncated", enc.clone().with_content(content)));
            let mut m = enc.clone();
            let mut iv = m.auth.get("iv").unwrap().to_vec();
            iv[23] ^= 1;
            m.auth.insert("iv", iv);
            cases.push(("nonce", m));
            for (what, m) in cases {
                assert_eq!(
                    c.decrypt(m, &ctx()),
                    Err(CipherError::Decrypt),
                    "{what} (encrypt_uri {})",
                    c.encrypts_uri()
                );
            }
        }
    }

    #[test]
    fn mode_and_field_name_are_bound() {
        let clear = AeadCipher::new(b"k");
        let hidden = AeadCipher::new(b"k").encrypt_uri(true);
        // A uri-encrypted message with its uri moved back into clear does not decrypt in clear mode.
        let enc = hidden.encrypt(Message::ok("", "x"), &ctx()).unwrap();
        assert_eq!(clear.decrypt(enc, &ctx()), Err(CipherError::Decrypt));
        let enc = clear.encrypt(Message::ok("", "x"), &ctx()).unwrap();
        assert_eq!(hidden.decrypt(enc, &ctx()), Err(CipherError::Decrypt));
        // The nonce moved to another field name.
        let other = AeadCipher::new(b"k").nonce_field("iv2");
        let mut enc = clear.encrypt(request(), &ctx()).unwrap();
        let iv = enc.auth.remove("iv").unwrap();
        enc.auth.insert("iv2", iv);
        assert_eq!(other.decrypt(enc, &ctx()), Err(CipherError::Decrypt));
    }

    #[test]
    fn missing_or_malformed_nonce_and_short_content() {
        let c = AeadCipher::new(b"k");
        let enc = c.encrypt(request(), &ctx()).unwrap();
        let mut m = enc.clone();
        m.auth.remove("iv");
        assert_eq!(
            c.decrypt(m, &ctx()),
            Err(CipherError::MissingField("iv".into()))
        );
        let mut m = enc.clone();
        m.auth.insert("iv", vec![0u8; 12]);
        assert_eq!(
            c.decrypt(m, &ctx()),
            Err(CipherError::MalformedField("iv".into()))
        );
        let m = enc.clone().with_content(vec![0u8; 15]);
        assert_eq!(c.decrypt(m, &ctx()), Err(CipherError::Decrypt));
        // A plain message.
        assert!(c.decrypt(request(), &ctx()).is_err());
    }

    #[test]
    fn refuses_to_overwrite_its_field() {
        let c = AeadCipher::new(b"k");
        let mut m = request();
        m.auth.insert("iv", "x");
        assert!(matches!(c.encrypt(m, &ctx()), Err(CipherError::Other(_))));
        // Two ciphers stacked with distinct names work.
        let inner = Plugins::new().cipher(AeadCipher::new(b"in").nonce_field("in.iv"));
        let outer = Plugins::new().cipher(AeadCipher::new(b"out"));
        let sealed = seal(request(), &inner, &outer, &ctx()).unwrap();
        let routed = open_outer(sealed, &outer, &ctx()).unwrap();
        assert_eq!(open_inner(routed, &inner, &ctx()).unwrap(), request());
    }

    #[test]
    fn size_limit_counts_the_tag_and_uri_prefix() {
        let c = AeadCipher::new(b"k");
        let max = MAX_URI_AND_CONTENT;
        // uri 4 + content + 16 = max fits.
        let fits = Message::ok("echo", vec![0u8; max - 4 - 16]);
        let enc = c.encrypt(fits, &ctx()).unwrap();
        assert_eq!(enc.uri().len() + enc.content().len(), max);
        enc.to_bytes(&PostcardCodec).unwrap();
        let over = Message::ok("echo", vec![0u8; max - 4 - 15]);
        assert_eq!(
            c.encrypt(over, &ctx()),
            Err(CipherError::TooLarge(EncodeError::BodyTooLarge {
                len: max + 1,
                max
            }))
        );
        let hidden = AeadCipher::new(b"k").encrypt_uri(true);
        let fits = Message::ok("echo", vec![0u8; max - 2 - 4 - 16]);
        hidden.encrypt(fits, &ctx()).unwrap();
        let over = Message::ok("echo", vec![0u8; max - 2 - 4 - 15]);
        assert!(matches!(
            hidden.encrypt(over, &ctx()),
            Err(CipherError::TooLarge(_))
        ));
        // Through seal, the stage is reported.
        let node = Plugins::new().cipher(AeadCipher::new(b"k"));
        let err = seal(
            Message::ok("", vec![0u8; max]),
            &Plugins::new(),
            &node,
            &ctx(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SealError::Cipher {
                stage: Stage::Outer,
                source: CipherError::TooLarge(_)
            }
        ));
    }

    /// With HmacAuth on top (encrypt-then-MAC): iv tampering is caught by the MAC before
    /// decryption, and replays and stale frames are refused.
    #[test]
    fn with_hmac_replay_and_stale_rejected() {
        let now = Arc::new(AtomicU64::new(1_700_000_000));
        let clock = now.clone();
        let node = Plugins::new()
            .auth(HmacAuth::new(b"s").freshness(
                Freshness::default().clock(Arc::new(move || clock.load(Ordering::SeqCst))),
            ))
            .cipher(AeadCipher::new(b"s"));
        let sealed = seal(request(), &Plugins::new(), &node, &ctx()).unwrap();
        let mut m = sealed.clone();
        let mut iv = m.auth.get("iv").unwrap().to_vec();
        iv[0] ^= 1;
        m.auth.insert("iv", iv);
        assert!(matches!(
            open_outer(m, &node, &ctx()),
            Err(OpenError::Auth {
                source: AuthError::Invalid,
                ..
            })
        ));
        assert_eq!(
            open_outer(sealed.clone(), &node, &ctx()).unwrap(),
            request()
        );
        assert!(matches!(
            open_outer(sealed.clone(), &node, &ctx()),
            Err(OpenError::Auth {
                source: AuthError::Replay,
                ..
            })
        ));
        let later = seal(request(), &Plugins::new(), &node, &ctx()).unwrap();
        now.fetch_add(61, Ordering::SeqCst);
        assert!(matches!(
            open_outer(later, &node, &ctx()),
            Err(OpenError::Auth {
                source: AuthError::Stale { .. },
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn decrypt_never_panics(
            t in any::<u8>(),
            uri in prop::collection::vec(any::<u8>(), 0..32),
            content in prop::collection::vec(any::<u8>(), 0..80),
            iv in prop::option::of(prop::collection::vec(any::<u8>(), 0..30)),
            hidden in any::<bool>(),
        ) {
            let c = AeadCipher::new(b"k").encrypt_uri(hidden);
            let mut m = Message::new(MessageType::from_u8(t), uri, content);
            if let Some(iv) = iv {
                m.auth.insert("iv", iv);
            }
            prop_assert!(c.decrypt(m, &ctx()).is_err());
        }

        #[test]
        fn round_trips_any_message(
            t in any::<u8>(),
            uri in prop::collection::vec(any::<u8>(), 0..32),
            content in prop::collection::vec(any::<u8>(), 0..200),
            hidden in any::<bool>(),
        ) {
            let c = AeadCipher::new(b"k").encrypt_uri(hidden);
            let m = Message::new(MessageType::from_u8(t), uri, content);
            let enc = c.encrypt(m.clone(), &ctx()).unwrap();
            prop_assert_eq!(c.decrypt(enc, &ctx()).unwrap(), m);
        }
    }
}
