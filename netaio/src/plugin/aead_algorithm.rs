//! [`AeadAlgorithm`]: the two AEADs of [`AeadAuth`](super::AeadAuth), which one this CPU runs
//! fastest, and their keyed instances (built once per key: no key schedule per message).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::Aes256Gcm;
use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

/// An authenticated cipher of [`AeadAuth`](super::AeadAuth).
///
/// Both are sound for any number of messages under one key with the nonces `AeadAuth` makes; they
/// differ in speed. AES-256-GCM runs on the AES and carry-less multiply instructions of most x86
/// and ARMv8 CPUs and then needs no per-message set-up (its key schedule and hash key are computed
/// once per key), which makes it the faster of the two for short messages; without those
/// instructions it falls back to slow (constant-time) software. XChaCha20-Poly1305 is fast in
/// software everywhere, but derives a ChaCha20 key and a Poly1305 key for every message.
///
/// A receiver opens either, whichever it sends ([`preferred`](Self::preferred) may differ between
/// two machines): the algorithm is told by the nonce's length and bound into the associated data.
///
/// ```
/// use netaio::plugin::AeadAlgorithm;
///
/// let alg = AeadAlgorithm::preferred();
/// assert!(AeadAlgorithm::ALL.contains(&alg));
/// assert_eq!(AeadAlgorithm::Aes256Gcm.name(), "aes-256-gcm");
/// assert_eq!(AeadAlgorithm::default(), alg);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AeadAlgorithm {
    /// AES-256-GCM (NIST SP 800-38D), 96-bit nonces, 128-bit tags.
    Aes256Gcm,
    /// XChaCha20-Poly1305 (ChaCha20-Poly1305, RFC 8439, with a 192-bit nonce), 128-bit tags.
    XChaCha20Poly1305,
}

impl Default for AeadAlgorithm {
    /// [`preferred`](Self::preferred).
    fn default() -> Self {
        Self::preferred()
    }
}

impl fmt::Display for AeadAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// The instructions AES-GCM's hash (GHASH, via POLYVAL) needs, as the `polyval` crate checks them.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
cpufeatures::new!(clmul, "avx", "pclmulqdq");
#[cfg(target_arch = "aarch64")]
cpufeatures::new!(clmul, "aes");

fn has_clmul() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    {
        clmul::get()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    {
        false
    }
}

impl AeadAlgorithm {
    /// Both algorithms.
    pub const ALL: [Self; 2] = [Self::Aes256Gcm, Self::XChaCha20Poly1305];

    /// The faster on this CPU: AES-256-GCM when the CPU has AES and carry-less multiply
    /// instructions (x86 AES-NI with PCLMULQDQ and AVX, ARMv8 AES/PMULL; detected at run time),
    /// else XChaCha20-Poly1305.
    pub fn preferred() -> Self {
        if Self::Aes256Gcm.is_hardware_accelerated() {
            Self::Aes256Gcm
        } else {
            Self::XChaCha20Poly1305
        }
    }

    /// True when this CPU runs the algorithm on dedicated instructions: AES-256-GCM with the AES
    /// and carry-less multiply instructions, XChaCha20-Poly1305 always (SIMD, or portable code
    /// that needs nothing special).
    pub fn is_hardware_accelerated(self) -> bool {
        match self {
            Self::Aes256Gcm => aes_gcm::aes::hardware_accelerated() && has_clmul(),
            Self::XChaCha20Poly1305 => true,
        }
    }

    /// The name: `aes-256-gcm` or `xchacha20-poly1305`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }

    /// The byte that stands for the algorithm in associated data.
    pub(super) const fn id(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
            Self::XChaCha20Poly1305 => 2,
        }
    }

    /// The per-message part of `AeadAuth`'s nonce field, after the 8-byte sender id: AES-GCM's
    /// 96-bit nonce, or 16 random bytes that complete XChaCha20's 192-bit nonce.
    pub(super) const fn nonce_tail_len(self) -> usize {
        match self {
            Self::Aes256Gcm => 12,
            Self::XChaCha20Poly1305 => 16,
        }
    }

    /// The algorithm whose nonce field is `len` bytes long (sender id included).
    pub(super) fn from_nonce_len(len: usize) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| SENDER_LEN + a.nonce_tail_len() == len)
    }
}

/// Length of the sender id at the start of `AeadAuth`'s nonce field.
pub(super) const SENDER_LEN: usize = 8;

/// Length of both algorithms' tags.
pub(super) const TAG_LEN: usize = 16;

/// Both ciphers, keyed once: AES-256-GCM's key schedule and hash key, XChaCha20-Poly1305's key.
pub(super) struct AeadKeys {
    gcm: Aes256Gcm,
    xchacha: XChaCha20Poly1305,
}

/// Why an AEAD operation failed: a tag that does not verify, or a nonce of the wrong length.
#[derive(Debug)]
pub(super) struct Refused;

impl AeadKeys {
    /// One key per algorithm, `HKDF-Expand(PRK = key, info = "{label} {name}")` (RFC 5869):
    /// independent keys, so the two algorithms never share one.
    pub(super) fn new(key: &[u8; 32], label: &str) -> Self {
        let subkey = |alg: AeadAlgorithm| -> [u8; 32] {
            let mut okm = [0u8; 32];
            // A 32-byte PRK is the hash length, and 32 bytes of output one block: neither fails.
            if let Ok(hk) = Hkdf::<Sha256>::from_prk(key) {
                let info = [label.as_bytes(), b" ", alg.name().as_bytes()].concat();
                if hk.expand(&info, &mut okm).is_ok() {
                    return okm;
                }
            }
            unreachable!("HKDF-SHA256 expands a 32-byte PRK to 32 bytes")
        };
        Self {
            gcm: Aes256Gcm::new(&subkey(AeadAlgorithm::Aes256Gcm).into()),
            xchacha: XChaCha20Poly1305::new(&subkey(AeadAlgorithm::XChaCha20Poly1305).into()),
        }
    }

    /// Encrypt `buf` in place, return the tag. `nonce` is the whole nonce field (sender id, then
    /// the algorithm's part).
    pub(super) fn seal(
        &self,
        alg: AeadAlgorithm,
        nonce: &[u8],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Refused> {
        let tag = match alg {
            AeadAlgorithm::Aes256Gcm => {
                let n = gcm_nonce(nonce)?;
                self.gcm
                    .encrypt_inout_detached(&n.into(), ad, InOutBuf::from(buf))
                    .map_err(|_| Refused)?
            }
            AeadAlgorithm::XChaCha20Poly1305 => {
                let n = xchacha_nonce(nonce)?;
                self.xchacha
                    .encrypt_inout_detached(&n, ad, InOutBuf::from(buf))
                    .map_err(|_| Refused)?
            }
        };
        Ok(tag.into())
    }

    /// Verify `tag` and decrypt `buf` in place (left as it was when the tag does not verify).
    pub(super) fn open(
        &self,
        alg: AeadAlgorithm,
        nonce: &[u8],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Refused> {
        match alg {
            AeadAlgorithm::Aes256Gcm => {
                let n = gcm_nonce(nonce)?;
                self.gcm
                    .decrypt_inout_detached(&n.into(), ad, InOutBuf::from(buf), &(*tag).into())
            }
            AeadAlgorithm::XChaCha20Poly1305 => {
                let n = xchacha_nonce(nonce)?;
                self.xchacha
                    .decrypt_inout_detached(&n, ad, InOutBuf::from(buf), &(*tag).into())
            }
        }
        .map_err(|_| Refused)
    }
}

/// AES-GCM's 96-bit nonce: the 12 bytes after the sender id.
fn gcm_nonce(field: &[u8]) -> Result<[u8; 12], Refused> {
    match field.split_first_chunk::<SENDER_LEN>() {
        Some((_, tail)) => <[u8; 12]>::try_from(tail).map_err(|_| Refused),
        None => Err(Refused),
    }
}

/// XChaCha20's 192-bit nonce: the whole field.
fn xchacha_nonce(field: &[u8]) -> Result<XNonce, Refused> {
    <[u8; 24]>::try_from(field)
        .map(XNonce::from)
        .map_err(|_| Refused)
}

/// AES-GCM nonces that never repeat under one key, however many holders of the key send: a
/// random 96-bit start drawn when the plugin is built, XORed with a 64-bit message counter.
///
/// Within one plugin instance the nonces are distinct (the counter never wraps). Two instances
/// collide only if their starts agree in the bits above their counters: with a trillion (2^40)
/// messages from each, a pair collides with probability 2^-56, where 96-bit random nonces would
/// collide somewhere among 2^40 messages with probability about 2^-17 (GCM's usual limit of 2^32
/// random nonces per key). A repeated GCM nonce reveals the XOR of two plaintexts and lets the
/// hash key be recovered, so this matters for a long-lived shared key.
pub(super) struct GcmNonces {
    start: u128,
    count: AtomicU64,
}

impl GcmNonces {
    pub(super) fn new() -> Self {
        let mut start = [0u8; 16];
        rand::fill(&mut start[..]);
        Self {
            start: u128::from_be_bytes(start) >> 32,
            count: AtomicU64::new(0),
        }
    }

    /// The next nonce.
    pub(super) fn next(&self) -> [u8; 12] {
        // Relaxed: only uniqueness matters, and fetch_add gives each caller its own value.
        let n = self.start ^ u128::from(self.count.fetch_add(1, Ordering::Relaxed));
        let bytes = n.to_be_bytes();
        let mut out = [0u8; 12];
        if let Some((_, low)) = bytes.split_first_chunk::<4>() {
            out.copy_from_slice(low);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_lengths_identify_the_algorithm() {
        assert_eq!(
            AeadAlgorithm::from_nonce_len(20),
            Some(AeadAlgorithm::Aes256Gcm)
        );
        assert_eq!(
            AeadAlgorithm::from_nonce_len(24),
            Some(AeadAlgorithm::XChaCha20Poly1305)
        );
        for len in [0, 8, 12, 16, 19, 21, 23, 25, 32] {
            assert_eq!(AeadAlgorithm::from_nonce_len(len), None, "{len}");
        }
        assert_ne!(
            AeadAlgorithm::Aes256Gcm.id(),
            AeadAlgorithm::XChaCha20Poly1305.id()
        );
    }

    #[test]
    fn preferred_follows_the_cpu() {
        let gcm_fast = AeadAlgorithm::Aes256Gcm.is_hardware_accelerated();
        assert_eq!(
            AeadAlgorithm::preferred(),
            if gcm_fast {
                AeadAlgorithm::Aes256Gcm
            } else {
                AeadAlgorithm::XChaCha20Poly1305
            }
        );
        assert!(AeadAlgorithm::XChaCha20Poly1305.is_hardware_accelerated());
        assert_eq!(
            AeadAlgorithm::XChaCha20Poly1305.to_string(),
            "xchacha20-poly1305"
        );
    }

    #[test]
    fn gcm_nonces_are_distinct_and_differ_between_instances() {
        let a = GcmNonces::new();
        let seq: Vec<[u8; 12]> = (0..1000).map(|_| a.next()).collect();
        let mut sorted = seq.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
        // The counter moves the low bits: consecutive nonces differ in the last bytes only.
        let (x, y) = (seq[0], seq[1]);
        assert_eq!(x[..4], y[..4]);
        let b = GcmNonces::new();
        assert_ne!(b.next()[..8], x[..8], "two instances start apart");
    }

    #[test]
    fn the_two_keys_are_independent_and_each_round_trips() {
        let keys = AeadKeys::new(&[7; 32], "test");
        let other = AeadKeys::new(&[7; 32], "other label");
        for alg in AeadAlgorithm::ALL {
            let nonce = vec![3u8; SENDER_LEN + alg.nonce_tail_len()];
            let mut buf = *b"hello world";
            let tag = keys.seal(alg, &nonce, b"ad", &mut buf).unwrap();
            assert_ne!(&buf, b"hello world");
            let sealed = buf;
            assert!(other.open(alg, &nonce, b"ad", &mut buf, &tag).is_err());
            assert_eq!(buf, sealed, "left as it was");
            assert!(keys.open(alg, &nonce, b"aD", &mut buf, &tag).is_err());
            keys.open(alg, &nonce, b"ad", &mut buf, &tag).unwrap();
            assert_eq!(&buf, b"hello world");
            // The wrong nonce length for the algorithm.
            assert!(keys.open(alg, &nonce[1..], b"ad", &mut buf, &tag).is_err());
        }
        // The same bytes under the two algorithms give different ciphertexts: different keys.
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        keys.seal(AeadAlgorithm::Aes256Gcm, &[0; 20], b"", &mut a)
            .unwrap();
        keys.seal(AeadAlgorithm::XChaCha20Poly1305, &[0; 24], b"", &mut b)
            .unwrap();
        assert_ne!(a, b);
    }
}
