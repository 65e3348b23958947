//! tapehash1, tapehash2 and tapehash3: a program generated from the preimage runs on a tape of
//! bytes derived from it, and the result is the SHA-256 of the tape.
//!
//! Byte for byte the algorithms of the Python package `tapehash` 0.1.1 (`tapehash/algos.py`),
//! including its quirks (opcodes 3 and 8, and 4 and 6, do the same thing; tapehash3's code and
//! tape are two prefixes of one SHAKE256 stream). Every hash function is a RustCrypto crate.

use blake2::{Blake2b512, Blake2s256};
use md5::Md5;
use sha2::{Digest, Sha256};
use sha3::{Sha3_256, Sha3_512};
use shake::digest::{ExtendableOutput, Update, XofReader};
use shake::{Shake128, Shake256, Shake256Reader};

/// The smallest `code_size` or `tape_size_multiplier`.
pub const MIN_PARAM: u32 = 1;
/// The largest `code_size` or `tape_size_multiplier` (as in the Python package).
pub const MAX_PARAM: u32 = 65_536;
/// The Python package's default `code_size` of tapehash1.
pub const DEFAULT_CODE_SIZE_1: u32 = 20;
/// The Python package's default `code_size` of tapehash3.
pub const DEFAULT_CODE_SIZE_3: u32 = 64;
/// The Python package's default `tape_size_multiplier` of tapehash2 and tapehash3.
pub const DEFAULT_TAPE_SIZE_MULTIPLIER: u32 = 2;

/// A tuning parameter out of range (the Python package raises `ValueError` for the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// `code_size` is not between 1 and 65,536.
    #[error("code_size must be between 1 and 65,536, got {0}")]
    CodeSize(u32),
    /// `tape_size_multiplier` is not between 1 and 65,536.
    #[error("tape_size_multiplier must be between 1 and 65,536, got {0}")]
    TapeSizeMultiplier(u32),
}

const fn in_range(n: u32) -> bool {
    MIN_PARAM <= n && n <= MAX_PARAM
}

fn code_size(n: u32) -> Result<usize, ParamError> {
    if in_range(n) {
        Ok(n as usize)
    } else {
        Err(ParamError::CodeSize(n))
    }
}

fn multiplier(n: u32) -> Result<usize, ParamError> {
    if in_range(n) {
        Ok(n as usize)
    } else {
        Err(ParamError::TapeSizeMultiplier(n))
    }
}

/// tapehash1: code = SHAKE256(preimage) of `code_size` bytes, tape = BLAKE2b-512(preimage)
/// (64 bytes); each code byte runs its opcode (high nibble) at its pointer (low nibble) in each
/// 16-byte quarter of the tape. Cost grows linearly with `code_size` (the Python default is
/// [`DEFAULT_CODE_SIZE_1`]; the `gossip` library used 64).
///
/// ```
/// let digest = netaio_tapehash::tapehash1(b"hello world", 20)?;
/// assert_eq!(digest.len(), 32);
/// assert!(netaio_tapehash::tapehash1(b"hello world", 0).is_err());
/// # Ok::<(), netaio_tapehash::ParamError>(())
/// ```
pub fn tapehash1(preimage: &[u8], code_size: u32) -> Result<[u8; 32], ParamError> {
    let code_size = self::code_size(code_size)?;
    let mut tape: [u8; 64] = Blake2b512::digest(preimage).into();
    for_each_code_chunk(preimage, code_size, |chunk| {
        for &instruction in chunk {
            let (opcode, pointer) = decode(instruction);
            for quarter in [0, 16, 32, 48] {
                execute(opcode, pointer + quarter, &mut tape);
            }
        }
    });
    Ok(Sha256::digest(tape).into())
}

/// tapehash2: code = BLAKE2b-512(preimage), tape = SHAKE256(preimage) of
/// 32 × `tape_size_multiplier` bytes; each pair of code bytes runs one opcode at two places of
/// the 32-byte block the pair selects. Memory grows with `tape_size_multiplier` (default
/// [`DEFAULT_TAPE_SIZE_MULTIPLIER`]).
pub fn tapehash2(preimage: &[u8], tape_size_multiplier: u32) -> Result<[u8; 32], ParamError> {
    let blocks = multiplier(tape_size_multiplier)?;
    let code: [u8; 64] = Blake2b512::digest(preimage).into();
    let mut tape = shake256_bytes(preimage, blocks * 32);
    run_paired(&code, blocks, &mut tape);
    Ok(Sha256::digest(&tape).into())
}

/// tapehash3: code = SHAKE256(preimage) of `code_size` bytes, tape = SHAKE256(preimage) of
/// 32 × `tape_size_multiplier` bytes; the code runs as in [`tapehash2`] (a last odd code byte
/// selects its block alone). Tunable in time and memory (defaults [`DEFAULT_CODE_SIZE_3`] and
/// [`DEFAULT_TAPE_SIZE_MULTIPLIER`]).
pub fn tapehash3(
    preimage: &[u8],
    code_size: u32,
    tape_size_multiplier: u32,
) -> Result<[u8; 32], ParamError> {
    let code_size = self::code_size(code_size)?;
    let blocks = multiplier(tape_size_multiplier)?;
    let mut tape = shake256_bytes(preimage, blocks * 32);
    // The chunks have an even length except the last, so pairs never straddle two chunks.
    for_each_code_chunk(preimage, code_size, |chunk| {
        run_paired(chunk, blocks, &mut tape)
    });
    Ok(Sha256::digest(&tape).into())
}

/// The SHAKE256 stream of the preimage.
fn shake256(preimage: &[u8]) -> Shake256Reader {
    let mut xof = Shake256::default();
    xof.update(preimage);
    xof.finalize_xof()
}

fn shake256_bytes(preimage: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    shake256(preimage).read(&mut out);
    out
}

/// Feed the `code_size` bytes of SHAKE256(preimage) to `run` in chunks of at most 64 bytes (an
/// even number, the last chunk aside), without allocating the code.
fn for_each_code_chunk(preimage: &[u8], code_size: usize, mut run: impl FnMut(&[u8])) {
    let mut reader = shake256(preimage);
    let mut buf = [0u8; 64];
    let mut left = code_size;
    while left > 0 {
        let n = left.min(buf.len());
        if let Some(chunk) = buf.get_mut(..n) {
            reader.read(chunk);
            run(chunk);
        }
        left -= n;
    }
}

/// Opcode (high nibble) and pointer (low nibble) of one code byte.
fn decode(instruction: u8) -> (u8, usize) {
    (instruction >> 4, usize::from(instruction & 0x0f))
}

/// tapehash2 and 3: each pair of code bytes, read as a big-endian number modulo the number of
/// 32-byte blocks, selects a block; the first byte's opcode runs at its pointer and 16 bytes
/// further in that block. A lone last byte is a one-byte number (Python's `code[i:i+2]`).
fn run_paired(code: &[u8], blocks: usize, tape: &mut [u8]) {
    for pair in code.chunks(2) {
        let (first, selector) = match *pair {
            [a, b] => (a, usize::from(u16::from_be_bytes([a, b]))),
            [a] => (a, usize::from(a)),
            _ => continue,
        };
        let (opcode, pointer) = decode(first);
        let base = (selector % blocks) * 32;
        execute(opcode, pointer + base, tape);
        execute(opcode, pointer + 16 + base, tape);
    }
}

/// Run one opcode on the byte at `pointer`. Opcodes 0 to 9 change the byte alone; 10 to 15
/// replace it with a byte of a hash of the whole tape rotated to start at `pointer`, the byte's
/// own value choosing which.
fn execute(opcode: u8, pointer: usize, tape: &mut [u8]) {
    let Some(&data) = tape.get(pointer) else {
        // Pointers are built in range by every caller.
        return;
    };
    let new = match opcode {
        0 => data,
        1 => data.wrapping_add(1),
        2 => data.wrapping_sub(1),
        3 | 8 => data >> 1,
        4 | 6 => data << 1,
        5 => !data,
        7 => data.wrapping_mul(data),
        9 => data.rotate_left(4),
        _ => {
            // The rotated tape is `head ‖ tail`; hashing the two parts in turn avoids a copy.
            let (tail, head) = tape.split_at(pointer);
            match opcode {
                10 => pick::<Sha256>(head, tail, data),
                11 => pick::<Md5>(head, tail, data),
                12 => shake128_byte(head, tail, data),
                13 => pick::<Sha3_256>(head, tail, data),
                14 => pick::<Sha3_512>(head, tail, data),
                _ => pick::<Blake2s256>(head, tail, data),
            }
        }
    };
    if let Some(cell) = tape.get_mut(pointer) {
        *cell = new;
    }
}

/// The byte at `index` modulo the output size of `D(head ‖ tail)`.
fn pick<D: Digest>(head: &[u8], tail: &[u8], index: u8) -> u8 {
    let mut hasher = D::new();
    Digest::update(&mut hasher, head);
    Digest::update(&mut hasher, tail);
    let out = hasher.finalize();
    out.get(usize::from(index) % out.len())
        .copied()
        .unwrap_or_default()
}

/// The byte at `index` (0 to 255) of the SHAKE128 stream of `head ‖ tail`.
fn shake128_byte(head: &[u8], tail: &[u8], index: u8) -> u8 {
    let mut xof = Shake128::default();
    xof.update(head);
    xof.update(tail);
    let mut reader = xof.finalize_xof();
    let mut buf = [0u8; 256];
    let Some(prefix) = buf.get_mut(..=usize::from(index)) else {
        return 0;
    };
    reader.read(prefix);
    prefix.last().copied().unwrap_or_default()
}

/// One of the three functions with its parameters, checked once: [`hash`](Self::hash) cannot
/// fail. The stamp function of a proof of work (`netaio-gossip`'s bulletins, `netaio`'s
/// `HashcashAuth` with the `tapehash` feature).
///
/// ```
/// use netaio_tapehash::Tapehash;
/// let gossip = Tapehash::v1(64)?;
/// assert_eq!(gossip.hash(b"header"), netaio_tapehash::tapehash1(b"header", 64)?);
/// assert_eq!(gossip.to_string(), "tapehash1(code_size=64)");
/// # Ok::<(), netaio_tapehash::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tapehash(Variant);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Variant {
    One {
        code_size: u32,
    },
    Two {
        tape_size_multiplier: u32,
    },
    Three {
        code_size: u32,
        tape_size_multiplier: u32,
    },
}

impl Tapehash {
    /// [`tapehash1`] with this `code_size` (1 to 65,536). A `const fn`, so a constant of fixed
    /// parameters is checked at compile time.
    pub const fn v1(code_size: u32) -> Result<Self, ParamError> {
        if !in_range(code_size) {
            return Err(ParamError::CodeSize(code_size));
        }
        Ok(Self(Variant::One { code_size }))
    }

    /// [`tapehash2`] with this `tape_size_multiplier` (1 to 65,536).
    pub const fn v2(tape_size_multiplier: u32) -> Result<Self, ParamError> {
        if !in_range(tape_size_multiplier) {
            return Err(ParamError::TapeSizeMultiplier(tape_size_multiplier));
        }
        Ok(Self(Variant::Two {
            tape_size_multiplier,
        }))
    }

    /// [`tapehash3`] with this `code_size` and `tape_size_multiplier` (each 1 to 65,536).
    pub const fn v3(code_size: u32, tape_size_multiplier: u32) -> Result<Self, ParamError> {
        if !in_range(code_size) {
            return Err(ParamError::CodeSize(code_size));
        }
        if !in_range(tape_size_multiplier) {
            return Err(ParamError::TapeSizeMultiplier(tape_size_multiplier));
        }
        Ok(Self(Variant::Three {
            code_size,
            tape_size_multiplier,
        }))
    }

    /// The digest of `preimage`.
    pub fn hash(&self, preimage: &[u8]) -> [u8; 32] {
        // The parameters were checked when `self` was made.
        let digest = match self.0 {
            Variant::One { code_size } => tapehash1(preimage, code_size),
            Variant::Two {
                tape_size_multiplier,
            } => tapehash2(preimage, tape_size_multiplier),
            Variant::Three {
                code_size,
                tape_size_multiplier,
            } => tapehash3(preimage, code_size, tape_size_multiplier),
        };
        digest.unwrap_or_default()
    }

    /// Which function: 1, 2 or 3.
    pub fn version(&self) -> u8 {
        match self.0 {
            Variant::One { .. } => 1,
            Variant::Two { .. } => 2,
            Variant::Three { .. } => 3,
        }
    }

    /// The `code_size` (tapehash1 and 3), `None` for tapehash2.
    pub fn code_size(&self) -> Option<u32> {
        match self.0 {
            Variant::One { code_size } | Variant::Three { code_size, .. } => Some(code_size),
            Variant::Two { .. } => None,
        }
    }

    /// The `tape_size_multiplier` (tapehash2 and 3), `None` for tapehash1.
    pub fn tape_size_multiplier(&self) -> Option<u32> {
        match self.0 {
            Variant::Two {
                tape_size_multiplier,
            }
            | Variant::Three {
                tape_size_multiplier,
                ..
            } => Some(tape_size_multiplier),
            Variant::One { .. } => None,
        }
    }
}

impl std::fmt::Display for Tapehash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Variant::One { code_size } => write!(f, "tapehash1(code_size={code_size})"),
            Variant::Two {
                tape_size_multiplier,
            } => write!(f, "tapehash2(tape_size_multiplier={tape_size_multiplier})"),
            Variant::Three {
                code_size,
                tape_size_multiplier,
            } => write!(
                f,
                "tapehash3(code_size={code_size}, tape_size_multiplier={tape_size_multiplier})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const HEADER: [u8; 72] = {
        let mut h = [0u8; 72];
        let mut i = 0;
        while i < 72 {
            h[i] = i as u8;
            i += 1;
        }
        h
    };

    /// Copied from the Python package `tapehash==0.1.1` (the live comparison with many more
    /// inputs is `tests/integration/python_vectors.rs`).
    #[test]
    fn fixed_vectors_from_python() {
        let one: [(&[u8], u32, &str); 5] = [
            (
                b"",
                1,
                "b395831639e783de3f0dbd93fef825d8abf36e0d4d06b9fdb78f03c26e9696b1",
            ),
            (
                b"hello world",
                20,
                "47db4e42ad0b3e58468b0a4f43e63a87d112cce7ab445009594e7634a95f9efe",
            ),
            (
                b"test",
                64,
                "8741b65fab128ac7f3506e659a94f684667f89abea09c45a12d83a0c7f2ea7c2",
            ),
            (
                &HEADER,
                64,
                "2715a9e258b9f1f0bc2343a1fbf5bb90d73f8a56ab06ef183431a2c28f83f881",
            ),
            (
                b"test",
                257,
                "9eb25abcb8ef8d045efafc30e71a78a93f6f15f907407b65516d7ef3cb7dbbe2",
            ),
        ];
        for (p, cs, want) in one {
            assert_eq!(hex::encode(tapehash1(p, cs).unwrap()), want, "{p:?} {cs}");
        }
        let two: [(&[u8], u32, &str); 4] = [
            (
                b"test",
                1,
                "b8f2b98b33c05cbbf8b1bf6e88b7594f60a632d9764bee1201327a4254a62fd9",
            ),
            (
                b"test",
                2,
                "5a0670eb9826564fac928209c09efb1795df1a10d1eacd1b47e9a86093d5ef3b",
            ),
            (
                b"x",
                3,
                "9ffc90fe61e4474d1c130c2b4069fd2c180ee107b80bd671879f4c20c6e66370",
            ),
            (
                &HEADER,
                7,
                "d0c6543afa4b4458c3b11d9561b6e2f1df4528866a74223099d24864fc78dc58",
            ),
        ];
        for (p, tsm, want) in two {
            assert_eq!(hex::encode(tapehash2(p, tsm).unwrap()), want, "{p:?} {tsm}");
        }
        let three: [(&[u8], u32, u32, &str); 4] = [
            (
                b"",
                1,
                1,
                "4af62cabb7fce12ea89b5734c79995700fe7da92c43e7bea21b87a4efd543c9c",
            ),
            (
                b"test",
                64,
                2,
                "af84eb5f78cd0c70c5587896cb2542a0849e65f5e1449019a7db1fe0934e1bcf",
            ),
            (
                b"abc",
                7,
                5,
                "a81254f0090e67702f4bee82b6a784ed8dff808849316785a767e905c6ec848f",
            ),
            (
                &HEADER,
                65,
                3,
                "339346b98f7bc91c333ba0cbc3e923d8af052436a105df708311c1d9878449aa",
            ),
        ];
        for (p, cs, tsm, want) in three {
            assert_eq!(
                hex::encode(tapehash3(p, cs, tsm).unwrap()),
                want,
                "{p:?} {cs} {tsm}"
            );
        }
    }

    #[test]
    fn parameters_out_of_range_are_refused() {
        assert_eq!(tapehash1(b"x", 0), Err(ParamError::CodeSize(0)));
        assert_eq!(tapehash1(b"x", 65_537), Err(ParamError::CodeSize(65_537)));
        assert_eq!(tapehash2(b"x", 0), Err(ParamError::TapeSizeMultiplier(0)));
        assert_eq!(
            tapehash2(b"x", 65_537),
            Err(ParamError::TapeSizeMultiplier(65_537))
        );
        assert_eq!(tapehash3(b"x", 0, 2), Err(ParamError::CodeSize(0)));
        assert_eq!(
            tapehash3(b"x", 64, 65_537),
            Err(ParamError::TapeSizeMultiplier(65_537))
        );
        assert!(
            Tapehash::v1(0).is_err() && Tapehash::v2(0).is_err() && Tapehash::v3(1, 0).is_err()
        );
        assert!(tapehash1(b"x", MAX_PARAM).is_ok());
    }

    #[test]
    fn tapehash_value_dispatches_to_its_function() {
        let v1 = Tapehash::v1(33).unwrap();
        let v2 = Tapehash::v2(4).unwrap();
        let v3 = Tapehash::v3(9, 3).unwrap();
        assert_eq!(v1.hash(b"p"), tapehash1(b"p", 33).unwrap());
        assert_eq!(v2.hash(b"p"), tapehash2(b"p", 4).unwrap());
        assert_eq!(v3.hash(b"p"), tapehash3(b"p", 9, 3).unwrap());
        assert_eq!(
            (v1.version(), v1.code_size(), v1.tape_size_multiplier()),
            (1, Some(33), None)
        );
        assert_eq!(
            (v2.version(), v2.code_size(), v2.tape_size_multiplier()),
            (2, None, Some(4))
        );
        assert_eq!(
            (v3.version(), v3.code_size(), v3.tape_size_multiplier()),
            (3, Some(9), Some(3))
        );
        assert_eq!(
            v3.to_string(),
            "tapehash3(code_size=9, tape_size_multiplier=3)"
        );
    }

    /// Each opcode against the Python lambdas, written out for a few bytes.
    #[test]
    fn simple_opcodes() {
        let cases: [(u8, u8, u8); 12] = [
            (0, 7, 7),
            (1, 255, 0),
            (2, 0, 255),
            (2, 9, 8),
            (3, 0x81, 0x40),
            (4, 0x81, 0x02),
            (5, 0x0f, 0xf0),
            (6, 0xc0, 0x80),
            (7, 17, 33), // 289 % 256
            (8, 0xff, 0x7f),
            (9, 0x1e, 0xe1),
            (1, 7, 8),
        ];
        for (op, before, after) in cases {
            let mut tape = [before, 1, 2];
            execute(op, 0, &mut tape);
            assert_eq!(tape, [after, 1, 2], "opcode {op}");
        }
    }
}
