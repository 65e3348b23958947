//! [`X25519Cipher`]: static-static X25519, HKDF-SHA256, XChaCha20-Poly1305.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use netaio::Message;
use netaio::message::Body;
use netaio::plugin::{CipherError, CipherPlugin, PluginContext};
use sha2::Sha256;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::Identity;
use crate::peer::{X25519_FIELD, remote_key};

/// The default name of the auth field carrying the 24-byte nonce.
pub const DEFAULT_NONCE_FIELD: &str = "xnonce";

/// The default bound on the number of peers whose derived keys are cached.
pub const DEFAULT_KEY_CACHE: usize = 1024;

/// Length of the nonce (XChaCha20-Poly1305).
pub const NONCE_LEN: usize = 24;

/// Length of the Poly1305 tag appended to the ciphertext.
pub const TAG_LEN: usize = 16;

/// HKDF salt: fixes the protocol and version.
const KDF_SALT: &[u8] = b"netaio-asymmetric/x25519/hkdf-sha256/v1";
/// HKDF info prefix; followed by the sender's and the recipient's X25519 public keys.
const KDF_INFO: &[u8] = b"netaio-asymmetric/x25519/xchacha20poly1305/key";
/// Associated-data prefix.
const AD_DOMAIN: &[u8] = b"netaio-asymmetric/x25519/ad/v1";

/// `key(S→R) = HKDF-Expand(PRK, KDF_INFO ‖ pub_S ‖ pub_R, 32)`, from the HKDF holding the PRK of
/// one shared secret (see [`X25519Cipher`]).
fn direction_key(
    prk: &Hkdf<Sha256>,
    sender: &[u8; 32],
    recipient: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, CipherError> {
    let mut key = Zeroizing::new([0u8; 32]);
    // HKDF-Expand refuses only outputs over 255 × 32 bytes, never a 32-byte key; the error arm
    // exists to avoid a panic path, not because it can happen.
    prk.expand_multi_info(&[KDF_INFO, sender, recipient], &mut key[..])
        .map_err(|_| CipherError::UnknownKey)?;
    Ok(key)
}

/// Per-peer encryption with static X25519 keys and XChaCha20-Poly1305.
///
/// The key for a message from S to R is derived as
///
/// ```text
/// shared   = X25519(own secret, other's public key)          (the same on both sides)
/// PRK      = HKDF-Extract(salt = "netaio-asymmetric/x25519/hkdf-sha256/v1", shared)
/// key(S→R) = HKDF-Expand(PRK, "netaio-asymmetric/x25519/xchacha20poly1305/key" ‖ pub_S ‖ pub_R, 32)
/// ```
///
/// so each direction has its own key: a message cannot be reflected back to its sender, and
/// both sides derive the same key for a given direction because the label orders the keys by
/// role (sender first), not by who computes it. The shared secret must be contributory (a peer
/// key of small order is refused as unknown).
///
/// Each message gets a fresh random 24-byte nonce, carried in the auth field
/// [`DEFAULT_NONCE_FIELD`] (`xnonce`, configurable). The associated data binds
/// `"netaio-asymmetric/x25519/ad/v1" ‖ type byte ‖ mode byte ‖ u16 uri length ‖ uri` where the
/// uri is the one on the wire, so changing the message type or the clear uri makes decryption
/// fail. With [`encrypt_uri`](Self::encrypt_uri) the plaintext is `u16 uri length ‖ uri ‖
/// content` and the wire uri is empty; the mode byte makes a receiver configured differently fail
/// cleanly. Other auth fields (request ids, an auth plugin's fields) are not bound: pair the
/// cipher with an auth plugin, such as [`Ed25519Auth`](crate::Ed25519Auth), to cover them.
///
/// The peer's X25519 public key comes from its peer data ([`X25519_FIELD`]), decoded with
/// `ctx.peer_plugin` (or [`AsymmetricPeerPlugin`](crate::AsymmetricPeerPlugin) when the context
/// has none). With no peer in the context, or no usable key in its data, both
/// [`encrypt`](CipherPlugin::encrypt) and [`decrypt`](CipherPlugin::decrypt) fail with
/// [`CipherError::UnknownKey`]. Derived keys are cached per peer public key (at most
/// [`DEFAULT_KEY_CACHE`] peers by default, oldest evicted first).
///
/// There is no forward secrecy: whoever later learns either static secret can decrypt recorded
/// traffic. Peer keys learned from unauthenticated adverts allow a man in the middle; trust the
/// peer data you give the cipher.
///
/// ```
/// use netaio::Message;
/// use netaio::plugin::{CipherPlugin, PluginContext};
/// use netaio_asymmetric::{AsymmetricPeerPlugin, Identity, X25519Cipher};
///
/// let (alice, bob) = (Identity::generate(), Identity::generate());
/// let (alice_peer, bob_peer) = (alice.peer("alice").unwrap(), bob.peer("bob").unwrap());
/// let to_bob = PluginContext {
///     peer: Some(&bob_peer),
///     peer_plugin: Some(&AsymmetricPeerPlugin),
///     ..Default::default()
/// };
/// let from_alice = PluginContext {
///     peer: Some(&alice_peer),
///     peer_plugin: Some(&AsymmetricPeerPlugin),
///     ..Default::default()
/// };
///
/// let msg = Message::ok("echo", "hello");
/// let sealed = X25519Cipher::new(&alice).encrypt(msg.clone(), &to_bob).unwrap();
/// assert_ne!(sealed.content(), msg.content());
/// let opened = X25519Cipher::new(&bob).decrypt(sealed, &from_alice).unwrap();
/// assert_eq!(opened, msg);
/// ```
pub struct X25519Cipher {
    secret: StaticSecret,
    public: [u8; 32],
    nonce_field: Cow<'static, str>,
    encrypt_uri: bool,
    cache: Mutex<KeyCache>,
}

impl fmt::Debug for X25519Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X25519Cipher")
            .field("nonce_field", &self.nonce_field)
            .field("encrypt_uri", &self.encrypt_uri)
            .field("cached_peers", &self.cache().map.len())
            .finish_non_exhaustive()
    }
}

/// The two keys shared with one peer.
struct PairKeys {
    to_peer: XChaCha20Poly1305,
    from_peer: XChaCha20Poly1305,
}

/// Derived keys by peer public key; insertion order for eviction.
struct KeyCache {
    map: HashMap<[u8; 32], Arc<PairKeys>>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl KeyCache {
    fn insert(&mut self, peer: [u8; 32], keys: Arc<PairKeys>) {
        if self.capacity == 0 {
            return;
        }
        if self.map.insert(peer, keys).is_none() {
            self.order.push_back(peer);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

impl X25519Cipher {
    /// A cipher using this identity's X25519 key, with the defaults: nonce field `xnonce`, uri in
    /// clear, [`DEFAULT_KEY_CACHE`] cached peers.
    pub fn new(identity: &Identity) -> Self {
        Self {
            secret: identity.x25519_secret().clone(),
            public: identity.x25519_public().to_bytes(),
            nonce_field: Cow::Borrowed(DEFAULT_NONCE_FIELD),
            encrypt_uri: false,
            cache: Mutex::new(KeyCache {
                map: HashMap::new(),
                order: VecDeque::new(),
                capacity: DEFAULT_KEY_CACHE,
            }),
        }
    }

    /// Encrypt the uri with the content (default false). The wire uri is then empty, so use it on
    /// the instance (outer) cipher, which is undone before routing; as a handler's inner cipher
    /// the route would have to match the empty uri.
    ///
    /// ```
    /// use netaio::Message;
    /// use netaio::plugin::{CipherPlugin, PluginContext};
    /// use netaio_asymmetric::{Identity, X25519Cipher};
    ///
    /// let (alice, bob) = (Identity::generate(), Identity::generate());
    /// let bob_peer = bob.peer("bob").unwrap();
    /// let to_bob = PluginContext { peer: Some(&bob_peer), ..Default::default() };
    /// let cipher = X25519Cipher::new(&alice).encrypt_uri(true);
    /// let sealed = cipher.encrypt(Message::ok("private/uri", "x"), &to_bob).unwrap();
    /// assert!(sealed.uri().is_empty());
    /// ```
    #[must_use]
    pub fn encrypt_uri(mut self, on: bool) -> Self {
        self.encrypt_uri = on;
        self
    }

    /// The name of the auth field carrying the nonce (default [`DEFAULT_NONCE_FIELD`]).
    #[must_use]
    pub fn nonce_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.nonce_field = name.into();
        self
    }

    /// How many peers' derived keys to keep (default [`DEFAULT_KEY_CACHE`]; 0 disables the
    /// cache, deriving the keys for every message).
    #[must_use]
    pub fn key_cache(self, capacity: usize) -> Self {
        {
            let mut cache = self.cache();
            cache.capacity = capacity;
            cache.map.clear();
            cache.order.clear();
        }
        self
    }

    /// The number of peers whose keys are cached now.
    pub fn cached_peers(&self) -> usize {
        self.cache().map.len()
    }

    fn cache(&self) -> MutexGuard<'_, KeyCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys shared with the peer of this public key, from the cache or derived.
    fn keys_for(&self, peer: &[u8; 32]) -> Result<Arc<PairKeys>, CipherError> {
        if let Some(keys) = self.cache().map.get(peer) {
            return Ok(keys.clone());
        }
        let shared = self.secret.diffie_hellman(&X25519Public::from(*peer));
        if !shared.was_contributory() {
            tracing::warn!("peer x25519 key has small order; refused");
            return Err(CipherError::UnknownKey);
        }
        let prk = Hkdf::<Sha256>::new(Some(KDF_SALT), shared.as_bytes());
        let derive = |sender: &[u8; 32], recipient: &[u8; 32]| {
            let key = direction_key(&prk, sender, recipient)?;
            Ok::<_, CipherError>(XChaCha20Poly1305::new(&(*key).into()))
        };
        let keys = Arc::new(PairKeys {
            to_peer: derive(&self.public, peer)?,
            from_peer: derive(peer, &self.public)?,
        });
        self.cache().insert(*peer, keys.clone());
        Ok(keys)
    }

    fn peer_key(ctx: &PluginContext<'_>) -> Result<[u8; 32], CipherError> {
        remote_key(ctx, X25519_FIELD).ok_or(CipherError::UnknownKey)
    }

    fn associated_data(&self, msg: &Message) -> Vec<u8> {
        let uri = msg.uri();
        let mut ad = Vec::with_capacity(AD_DOMAIN.len() + 4 + uri.len());
        ad.extend_from_slice(AD_DOMAIN);
        ad.push(msg.message_type.value());
        ad.push(u8::from(self.encrypt_uri));
        // Wire uris fit in u16 (the body limit); saturating keeps this total.
        ad.extend_from_slice(&u16::try_from(uri.len()).unwrap_or(u16::MAX).to_be_bytes());
        ad.extend_from_slice(uri);
        ad
    }
}

impl CipherPlugin for X25519Cipher {
    fn encrypt(&self, mut msg: Message, ctx: &PluginContext<'_>) -> Result<Message, CipherError> {
        let peer = Self::peer_key(ctx)?;
        if msg.auth.contains(&self.nonce_field) {
            return Err(CipherError::Other(format!(
                "auth field {:?} already present",
                self.nonce_field
            )));
        }
        let keys = self.keys_for(&peer)?;
        let body = std::mem::take(&mut msg.body);
        let mut buf = Vec::with_capacity(2 + body.uri.len() + body.content.len() + TAG_LEN);
        if self.encrypt_uri {
            body.check_size()?;
            buf.extend_from_slice(
                &u16::try_from(body.uri.len())
                    .unwrap_or(u16::MAX)
                    .to_be_bytes(),
            );
            buf.extend_from_slice(&body.uri);
        } else {
            msg.body.uri = body.uri;
        }
        buf.extend_from_slice(&body.content);
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let ad = self.associated_data(&msg);
        keys.to_peer
            .encrypt_in_place(&XNonce::from(nonce), &ad, &mut buf)
            .map_err(|_| CipherError::Other("encryption failed".into()))?;
        msg.body.content = Bytes::from(buf);
        msg.body.check_size()?;
        msg.auth
            .insert(&self.nonce_field, Bytes::copy_from_slice(&nonce));
        Ok(msg)
    }

    fn decrypt(&self, mut msg: Message, ctx: &PluginContext<'_>) -> Result<Message, CipherError> {
        let peer = Self::peer_key(ctx)?;
        let field = self.nonce_field.as_ref();
        let nonce = msg
            .auth
            .get(field)
            .ok_or_else(|| CipherError::MissingField(field.to_owned()))?;
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce.as_ref())
            .map_err(|_| CipherError::MalformedField(field.to_owned()))?;
        if msg.content().len() < TAG_LEN {
            return Err(CipherError::Decrypt);
        }
        let keys = self.keys_for(&peer)?;
        let ad = self.associated_data(&msg);
        let mut buf = msg.body.content.to_vec();
        keys.from_peer
            .decrypt_in_place(&XNonce::from(nonce), &ad, &mut buf)
            .map_err(|_| CipherError::Decrypt)?;
        msg.auth.remove(field);
        let plain = Bytes::from(buf);
        if self.encrypt_uri {
            // Authenticated, so malformed only if the sender is broken.
            msg.body = Body::decode(plain)
                .map_err(|e| CipherError::Other(format!("malformed plaintext: {e}")))?;
        } else {
            msg.body.content = plain;
        }
        Ok(msg)
    }

    fn is_peer_specific(&self) -> bool {
        true
    }
}

/// The encrypted size of a body: what [`X25519Cipher`] adds (the tag, and 2 bytes with
/// `encrypt_uri`), for callers sizing messages near the limit.
///
/// ```
/// assert_eq!(netaio_asymmetric::cipher::overhead(false), 16);
/// assert_eq!(netaio_asymmetric::cipher::overhead(true), 18);
/// ```
pub const fn overhead(encrypt_uri: bool) -> usize {
    if encrypt_uri { TAG_LEN + 2 } else { TAG_LEN }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 5869 appendix A.1 (basic test case with SHA-256), with the info given in parts as
    /// [`direction_key`] gives it: the parts hash as their concatenation.
    #[test]
    fn rfc5869_case_1() {
        let salt = unhex("000102030405060708090a0b0c");
        let info = unhex("f0f1f2f3f4f5f6f7f8f9");
        let (prk, hkdf) = Hkdf::<Sha256>::extract(Some(&salt), &[0x0b; 22]);
        assert_eq!(
            hex::encode(prk),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
        );
        let mut okm = [0u8; 42];
        hkdf.expand_multi_info(&[&info[..3], &info[3..]], &mut okm)
            .unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    /// RFC 5869 appendix A.3 (zero-length salt and info).
    #[test]
    fn rfc5869_case_3() {
        let hkdf = Hkdf::<Sha256>::new(Some(&[]), &[0x0b; 22]);
        let mut okm = [0u8; 42];
        hkdf.expand_multi_info(&[], &mut okm).unwrap();
        assert_eq!(
            hex::encode(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }

    /// The per-direction keys are pinned: a change to the salt, the label or the order of the
    /// public keys would make this build unable to talk to the previous one. The expected values
    /// are HKDF-SHA256 computed independently (Python's `hmac`), and match the hand-written HKDF
    /// this crate used before.
    #[test]
    fn direction_keys_are_pinned() {
        let shared: Vec<u8> = (0u8..32).collect();
        let prk = Hkdf::<Sha256>::new(Some(KDF_SALT), &shared);
        let (a, b) = ([0x11; 32], [0x22; 32]);
        assert_eq!(
            hex::encode(*direction_key(&prk, &a, &b).unwrap()),
            "b7084591e907d09304d19ec2a302ee4514d2dff390326724946e7e7546d0e4a0"
        );
        assert_eq!(
            hex::encode(*direction_key(&prk, &b, &a).unwrap()),
            "cb8061a5044bd6e83f51b8f48cd611d38b961a49f31ec94c1d49774a5cc4bd0b"
        );
    }
}
