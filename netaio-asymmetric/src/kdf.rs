//! HKDF-SHA256 (RFC 5869), written with the `hmac` crate.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    // HMAC takes keys of any length, so this never fails; an empty key is the fallback anyway.
    let mut mac =
        HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&[0; 64].into()));
    for part in parts {
        mac.update(part);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// HKDF-Extract: `PRK = HMAC-SHA256(salt, ikm)`.
pub(crate) fn extract(salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    hmac(salt, &[ikm])
}

/// HKDF-Expand: fills `out` (at most 255 × 32 bytes; longer outputs are truncated to that) with
/// `T(1) ‖ T(2) ‖ …`, `T(i) = HMAC-SHA256(PRK, T(i-1) ‖ info ‖ i)`. `info` is given in parts,
/// hashed as their concatenation.
pub(crate) fn expand(prk: &[u8; 32], info: &[&[u8]], out: &mut [u8]) {
    let mut previous: Option<Zeroizing<[u8; 32]>> = None;
    for (i, chunk) in (1u8..=255).zip(out.chunks_mut(32)) {
        let counter = [i];
        let mut parts: Vec<&[u8]> = Vec::with_capacity(info.len() + 2);
        if let Some(t) = &previous {
            parts.push(&t[..]);
        }
        parts.extend_from_slice(info);
        parts.push(&counter);
        let t = hmac(prk, &parts);
        for (dst, src) in chunk.iter_mut().zip(t.iter()) {
            *dst = *src;
        }
        previous = Some(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 5869 appendix A.1 (basic test case with SHA-256).
    #[test]
    fn rfc5869_case_1() {
        let ikm = [0x0b; 22];
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let prk = extract(&salt, &ikm);
        assert_eq!(
            prk.to_vec(),
            hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        );
        let mut okm = [0u8; 42];
        // info split in parts hashes like the concatenation
        expand(&prk, &[&info[..3], &info[3..]], &mut okm);
        assert_eq!(
            okm.to_vec(),
            hex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
    }

    /// RFC 5869 appendix A.3 (zero-length salt and info).
    #[test]
    fn rfc5869_case_3() {
        let prk = extract(&[], &[0x0b; 22]);
        let mut okm = [0u8; 42];
        expand(&prk, &[], &mut okm);
        assert_eq!(
            okm.to_vec(),
            hex(
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
            )
        );
    }
}
