//! tapehash: the proof-of-work hash functions of the netaio author's Python package `tapehash`
//! (0.1.1), byte for byte, and the two difficulty rules his libraries use.
//!
//! A tapehash runs a small program derived from the preimage over a tape of bytes derived from
//! it; a quarter or so of the instructions hash the whole tape with one of six hash functions
//! (SHA-256, MD5, SHAKE128, SHA3-256, SHA3-512, BLAKE2s), which makes each try cost hundreds of
//! SHA-256s and a dedicated circuit for it hard to build. All hashes are RustCrypto crates.
//!
//! - [`tapehash1`], [`tapehash2`], [`tapehash3`]: the three functions, with Python's parameters
//!   (`code_size`, `tape_size_multiplier`, each 1 to 65,536, else [`ParamError`]).
//! - [`Tapehash`]: one of them with its parameters checked once, as a stamp function.
//! - [`Difficulty`]: leading zero bits ([`leading_zero_bits`], the `gossip` library's rule) or
//!   linear ([`linear_difficulty`], [`linear_target`], [`meets_linear`], the `tapehash`
//!   package's `2**256 // digest`).
//!
//! Used by `netaio-gossip` (bulletins: tapehash1, code size 64, 7 leading zero bits) and by
//! `netaio`'s `HashcashAuth` with the `tapehash` feature.
//!
//! ```
//! use netaio_tapehash::{Difficulty, Tapehash};
//!
//! let stamp = Tapehash::v1(64)?;
//! let need = Difficulty::LeadingZeroBits(4);
//! // Find a counter whose digest meets the difficulty (16 tries on average).
//! let counter = (0u32..)
//!     .find(|n| need.is_met_by(&stamp.hash(&[b"message".as_slice(), &n.to_be_bytes()].concat())))
//!     .unwrap();
//! let digest = stamp.hash(&[b"message".as_slice(), &counter.to_be_bytes()].concat());
//! assert!(need.is_met_by(&digest));
//! # Ok::<(), netaio_tapehash::ParamError>(())
//! ```
#![forbid(unsafe_code)]

mod algos;
mod difficulty;

pub use algos::{
    DEFAULT_CODE_SIZE_1, DEFAULT_CODE_SIZE_3, DEFAULT_TAPE_SIZE_MULTIPLIER, MAX_PARAM, MIN_PARAM,
    ParamError, Tapehash, tapehash1, tapehash2, tapehash3,
};
pub use difficulty::{
    Difficulty, leading_zero_bits, linear_difficulty, linear_target, meets_linear,
};
