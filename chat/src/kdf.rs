//! PBKDF2-HMAC-SHA256 (RFC 8018), to turn a typed room secret into a key.
//!
//! `HmacAuth::new` / `AeadCipher::new` derive their keys with a single HMAC, which is fine for a
//! random secret but lets anyone who captured one frame try billions of passwords per second. A
//! room secret is typed by people, so the chat stretches it first (see
//! [`ROOM_KDF_ROUNDS`](crate::protocol::ROOM_KDF_ROUNDS)) and hands the result to the plugins.
//! Written on the workspace's `hmac` + `sha2` (one block: a 32-byte output needs no more).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// `PBKDF2-HMAC-SHA256(password, salt, rounds, 32 bytes)`. `rounds` of 0 is taken as 1.
///
/// ```
/// // RFC 7914 section 11, first 32 bytes.
/// let key = netaio_chat::kdf::pbkdf2_sha256(b"passwd", b"salt", 1);
/// assert_eq!(key[..4], [0x55, 0xac, 0x04, 0x6e]);
/// ```
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    // The HMAC key block: a key longer than the block is hashed first, a shorter one padded with
    // zeros (RFC 2104), which is what `new_from_slice` does, without its impossible error case.
    let mut block = [0u8; 64];
    if password.len() > block.len() {
        for (b, k) in block.iter_mut().zip(Sha256::digest(password)) {
            *b = k;
        }
    } else {
        for (b, k) in block.iter_mut().zip(password) {
            *b = *k;
        }
    }
    let prf = HmacSha256::new(&block.into());
    let mut first = prf.clone();
    Mac::update(&mut first, salt);
    Mac::update(&mut first, &1u32.to_be_bytes());
    let mut u: [u8; 32] = first.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..rounds.max(1) {
        let mut next = prf.clone();
        Mac::update(&mut next, &u);
        u = next.finalize().into_bytes().into();
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // Reference values from Python's hashlib.pbkdf2_hmac('sha256', ...).
    #[test]
    fn matches_reference_vectors() {
        assert_eq!(
            hex(&pbkdf2_sha256(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"Password", b"NaCl", 80000)),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
        );
    }

    #[test]
    fn long_passwords_are_hashed_first() {
        let long = [b'p'; 100];
        assert_eq!(
            hex(&pbkdf2_sha256(&long, b"salt", 2)),
            "7fb39a0c2291de62231e50ab5f6805b83bab97446d73dccf38114fb21c055427"
        );
    }

    #[test]
    fn zero_rounds_is_one() {
        assert_eq!(pbkdf2_sha256(b"a", b"b", 0), pbkdf2_sha256(b"a", b"b", 1));
    }
}
