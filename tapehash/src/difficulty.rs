//! When a digest is enough work: the two rules of the netaio author's Python libraries.
//!
//! - Leading zero bits (the `gossip` library's `calculate_difficulty` and `check_difficulty`):
//!   [`leading_zero_bits`], [`Difficulty::LeadingZeroBits`]. Each bit doubles the expected work.
//! - Linear (the `tapehash` package's `calculate_difficulty`, `calculate_target` and
//!   `check_difficulty`): `2**256 // digest`, the expected number of hashes to find that digest
//!   or a smaller one: [`linear_difficulty`], [`linear_target`], [`meets_linear`],
//!   [`Difficulty::Linear`]. Finer-grained than bits.

use crypto_bigint::{NonZero, U256};

/// Number of leading zero bits of a digest (the `gossip` library's `calculate_difficulty`).
///
/// ```
/// use netaio_tapehash::leading_zero_bits;
/// assert_eq!(leading_zero_bits(&[0x00, 0x1f, 0xff]), 11);
/// assert_eq!(leading_zero_bits(&[0; 32]), 256);
/// ```
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for b in digest {
        if *b != 0 {
            return bits + b.leading_zeros();
        }
        bits += 8;
    }
    bits
}

fn to_u256(digest: &[u8; 32]) -> U256 {
    U256::from_be_slice(digest)
}

/// `⌊2**256 / v⌋`, or `None` when that is 2**256 itself (`v` = 1).
fn two_pow_256_div(v: &NonZero<U256>) -> Option<U256> {
    // 2**256 does not fit: divide 2**256 - 1 instead; the quotient is one more exactly when
    // the remainder is v - 1 (then v divides 2**256).
    let (q, r) = U256::MAX.div_rem_vartime(v);
    if r == v.as_ref().wrapping_sub(&U256::ONE) {
        // q + 1 overflows only for v = 1 (q = 2**256 - 1).
        (*v.as_ref() != U256::ONE).then(|| q.wrapping_add(&U256::ONE))
    } else {
        Some(q)
    }
}

fn saturate_u128(v: &U256) -> u128 {
    let bytes = v.to_be_bytes();
    let (high, low) = bytes.split_at(16);
    if high.iter().any(|b| *b != 0) {
        return u128::MAX;
    }
    low.try_into().map(u128::from_be_bytes).unwrap_or(u128::MAX)
}

/// The linear difficulty of a digest, `2**256 // int(digest)` (`2**256 - 1` for an all-zero
/// digest): the `tapehash` package's `calculate_difficulty`, saturated at `u128::MAX` (which
/// only a digest with about 128 leading zero bits reaches; below that the value is exact).
///
/// ```
/// use netaio_tapehash::linear_difficulty;
/// let mut digest = [0xff; 32];
/// assert_eq!(linear_difficulty(&digest), 1);
/// digest[0] = 0x0f; // about 1/16 of the digests are this small
/// assert_eq!(linear_difficulty(&digest), 16);
/// ```
pub fn linear_difficulty(digest: &[u8; 32]) -> u128 {
    let Some(v) = NonZero::new(to_u256(digest)).into_option() else {
        return u128::MAX;
    };
    two_pow_256_div(&v).map_or(u128::MAX, |q| saturate_u128(&q))
}

/// The largest digest (as a 256-bit big-endian number) that the `tapehash` package's `work`
/// accepts for `difficulty`: `2**256 // difficulty - 1`, and `2**256 - 1` for 0 (its
/// `calculate_target`).
pub fn linear_target(difficulty: u128) -> [u8; 32] {
    let max = [0xff; 32];
    if difficulty <= 1 {
        return max;
    }
    let Some(d) = NonZero::new(U256::from_u128(difficulty)).into_option() else {
        return max;
    };
    match two_pow_256_div(&d) {
        Some(q) => {
            let t = q.wrapping_sub(&U256::ONE).to_be_bytes();
            <[u8; 32]>::try_from(&*t).unwrap_or(max)
        }
        None => max,
    }
}

/// Whether `linear_difficulty(digest) >= difficulty` (the `tapehash` package's
/// `check_difficulty`; exact for every `difficulty`, saturation included).
///
/// Python's `work` stops at a digest ≤ [`linear_target`], a slightly stricter rule: the two
/// differ for the single digest `2**256 // difficulty`, so a nonce found either way passes both.
pub fn meets_linear(digest: &[u8; 32], difficulty: u128) -> bool {
    linear_difficulty(digest) >= difficulty
}

/// How much work a digest must show: one of the two rules.
///
/// ```
/// use netaio_tapehash::Difficulty;
/// let mut digest = [0xff; 32];
/// digest[0] = 0x01;
/// assert!(Difficulty::LeadingZeroBits(7).is_met_by(&digest));
/// assert!(!Difficulty::LeadingZeroBits(8).is_met_by(&digest));
/// assert!(Difficulty::Linear(128).is_met_by(&digest));
/// assert!(!Difficulty::Linear(129).is_met_by(&digest));
/// assert_eq!(Difficulty::LeadingZeroBits(7).expected_hashes(), 128.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Difficulty {
    /// At least this many leading zero bits (the `gossip` library's rule; its bulletins need 7).
    /// Above 256 no digest meets it (where Python raises `ValueError`).
    LeadingZeroBits(u32),
    /// A linear difficulty of at least this much ([`meets_linear`]; 0 and 1 accept anything).
    Linear(u128),
}

impl Difficulty {
    /// Whether `digest` shows enough work.
    pub fn is_met_by(&self, digest: &[u8; 32]) -> bool {
        match *self {
            Self::LeadingZeroBits(bits) => bits <= 256 && leading_zero_bits(digest) >= bits,
            Self::Linear(d) => meets_linear(digest, d),
        }
    }

    /// The mean number of hashes to meet it (2^bits, or the linear difficulty itself), for cost
    /// estimates and search limits.
    pub fn expected_hashes(&self) -> f64 {
        match *self {
            Self::LeadingZeroBits(bits) => 2f64.powi(bits.min(1024) as i32),
            Self::Linear(d) => (d as f64).max(1.0),
        }
    }
}

impl std::fmt::Display for Difficulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LeadingZeroBits(bits) => write!(f, "{bits} leading zero bits"),
            Self::Linear(d) => write!(f, "linear difficulty {d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]

    use super::*;

    fn from_u128(v: u128) -> [u8; 32] {
        let mut d = [0u8; 32];
        d[16..].copy_from_slice(&v.to_be_bytes());
        d
    }

    #[test]
    fn leading_zero_bits_counts() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0, 0x80]), 8);
        assert_eq!(leading_zero_bits(&[]), 0);
    }

    /// Values worked out by hand: 2**256 // 2**k = 2**(256-k); the all-ones digest gives 1.
    #[test]
    fn linear_difficulty_of_powers_of_two_and_extremes() {
        assert_eq!(linear_difficulty(&[0xff; 32]), 1);
        let mut half = [0u8; 32];
        half[0] = 0x80; // 2**255
        assert_eq!(linear_difficulty(&half), 2);
        half[0] = 0x40; // 2**254
        assert_eq!(linear_difficulty(&half), 4);
        half[31] = 1; // 2**254 + 1: just under 4
        assert_eq!(linear_difficulty(&half), 3);
        // 2**129: 2**127 exactly; 2**128 saturates; so do 1 and 0.
        let mut d = [0u8; 32];
        d[15] = 2;
        assert_eq!(linear_difficulty(&d), 1 << 127);
        d[15] = 1;
        assert_eq!(linear_difficulty(&d), u128::MAX);
        assert_eq!(linear_difficulty(&from_u128(1)), u128::MAX);
        assert_eq!(linear_difficulty(&[0; 32]), u128::MAX);
    }

    #[test]
    fn target_and_check_agree_off_the_boundary() {
        for d in [2u128, 3, 7, 128, 1000, 1 << 20, u64::MAX as u128] {
            let t = linear_target(d);
            assert!(meets_linear(&t, d), "target meets d={d}");
            // One more than the target is 2**256 // d itself: the check still accepts it.
            let mut next = crypto_bigint::U256::from_be_slice(&t);
            next = next.wrapping_add(&crypto_bigint::U256::ONE);
            let next: [u8; 32] = (&*next.to_be_bytes()).try_into().unwrap();
            assert!(meets_linear(&next, d));
            // Two more is too large.
            let mut two = crypto_bigint::U256::from_be_slice(&next);
            two = two.wrapping_add(&crypto_bigint::U256::ONE);
            let two: [u8; 32] = (&*two.to_be_bytes()).try_into().unwrap();
            assert!(!meets_linear(&two, d), "d={d}");
        }
        assert_eq!(linear_target(0), [0xff; 32]);
        assert_eq!(linear_target(1), [0xff; 32]);
        let mut t2 = [0xff; 32];
        t2[0] = 0x7f;
        assert_eq!(linear_target(2), t2);
    }

    #[test]
    fn difficulty_rules() {
        let mut d = [0xffu8; 32];
        d[0] = 0;
        assert!(Difficulty::LeadingZeroBits(8).is_met_by(&d));
        assert!(!Difficulty::LeadingZeroBits(9).is_met_by(&d));
        assert!(!Difficulty::LeadingZeroBits(257).is_met_by(&[0; 32]));
        assert!(Difficulty::LeadingZeroBits(256).is_met_by(&[0; 32]));
        assert!(Difficulty::Linear(0).is_met_by(&[0xff; 32]));
        assert!(Difficulty::Linear(256).is_met_by(&d));
        assert!(!Difficulty::Linear(257).is_met_by(&d));
        assert!(Difficulty::Linear(u128::MAX).is_met_by(&[0; 32]));
        assert_eq!(Difficulty::Linear(0).expected_hashes(), 1.0);
        assert_eq!(
            Difficulty::LeadingZeroBits(7).to_string(),
            "7 leading zero bits"
        );
    }
}
