//! PBKDF2-HMAC-SHA256 (RFC 8018), to turn a typed room secret into a key.
//!
//! `HmacAuth::new` / `AeadCipher::new` derive their keys with a single HMAC, which is fine for a
//! random secret but lets anyone who captured one frame try billions of passwords per second. A
//! room secret is typed by people, so the chat stretches it first (see
//! [`ROOM_KDF_ROUNDS`](crate::protocol::ROOM_KDF_ROUNDS)) and hands the result to the plugins.
//! The `pbkdf2` crate (RustCrypto) does the work.

/// `PBKDF2-HMAC-SHA256(password, salt, rounds, 32 bytes)`. `rounds` of 0 is taken as 1.
///
/// ```
/// // RFC 7914 section 11, first 32 bytes.
/// let key = netaio_chat::kdf::pbkdf2_sha256(b"passwd", b"salt", 1);
/// assert_eq!(key[..4], [0x55, 0xac, 0x04, 0x6e]);
/// ```
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    // `max(1)`: the crate leaves 0 rounds undocumented; this function promises 1.
    pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(password, salt, rounds.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from Python's hashlib.pbkdf2_hmac('sha256', ...).
    #[test]
    fn matches_reference_vectors() {
        assert_eq!(
            hex::encode(pbkdf2_sha256(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        assert_eq!(
            hex::encode(pbkdf2_sha256(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        assert_eq!(
            hex::encode(pbkdf2_sha256(b"Password", b"NaCl", 80000)),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
        );
    }

    /// The RFC 6070 inputs (written for SHA-1) with SHA-256, as commonly published for
    /// PBKDF2-HMAC-SHA256; the values are the first 32 bytes, checked with Python's hashlib.
    #[test]
    fn matches_rfc6070_style_vectors() {
        let cases: [(&[u8], &[u8], u32, &str); 4] = [
            (
                b"password",
                b"salt",
                1,
                "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
            ),
            (
                b"password",
                b"salt",
                2,
                "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
            ),
            (
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1",
            ),
            (
                b"pass\0word",
                b"sa\0lt",
                4096,
                "89b69d0516f829893c696226650a86878c029ac13ee276509d5ae58b6466a724",
            ),
        ];
        for (password, salt, rounds, want) in cases {
            assert_eq!(hex::encode(pbkdf2_sha256(password, salt, rounds)), want);
        }
    }

    #[test]
    fn long_passwords_are_hashed_first() {
        let long = [b'p'; 100];
        assert_eq!(
            hex::encode(pbkdf2_sha256(&long, b"salt", 2)),
            "7fb39a0c2291de62231e50ab5f6805b83bab97446d73dccf38114fb21c055427"
        );
    }

    #[test]
    fn zero_rounds_is_one() {
        assert_eq!(pbkdf2_sha256(b"a", b"b", 0), pbkdf2_sha256(b"a", b"b", 1));
    }
}
