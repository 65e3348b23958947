//! [`ProofOfWork`]: the stamp function and difficulty a bulletin's header must meet, and the
//! nonce search that meets it.

use netaio_tapehash::{Difficulty, Tapehash};

use crate::bulletin::BulletinHeader;

/// No nonce met the difficulty within the allowed tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no nonce met {difficulty} in {tries} tries")]
pub struct WorkNotFound {
    /// The difficulty searched for.
    pub difficulty: Difficulty,
    /// How many nonces were tried.
    pub tries: u64,
}

/// The proof of work of bulletins: `function(header)` must meet `difficulty`.
///
/// The default is the Python `gossip` library's: [`Tapehash::v1`] with code size 64 and 7 leading
/// zero bits, so 128 tapehashes on average to mint (3.5 to 7 ms on one core of the development
/// machine in a release build: `cargo bench -p netaio-gossip`), one to check (25 to 55 µs).
///
/// ```
/// use netaio_gossip::{BulletinHeader, ContentId, ProofOfWork, TopicId};
/// use netaio_tapehash::Difficulty;
///
/// let pow = ProofOfWork::default();
/// assert_eq!(pow.difficulty(), Difficulty::LeadingZeroBits(7));
/// let header = BulletinHeader {
///     topic: TopicId::from_descriptor(b"weather"),
///     content_id: ContentId::of(b"rain at noon"),
///     timestamp: 1,
///     nonce: 7,
/// };
/// let solved = pow.solve(header)?;
/// assert!(pow.is_met_by(&solved));
/// assert_eq!(solved.nonce, 153); // the nonce Python's `Bulletin.hashcash` finds
/// # Ok::<(), netaio_gossip::WorkNotFound>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofOfWork {
    function: Tapehash,
    difficulty: Difficulty,
    max_tries: Option<u64>,
}

impl Default for ProofOfWork {
    fn default() -> Self {
        Self::new(Self::DEFAULT_FUNCTION, Self::DEFAULT_DIFFICULTY)
    }
}

impl ProofOfWork {
    /// The `gossip` library's stamp function: tapehash1 with its `TAPEHASH_CODE_SIZE`, 64.
    pub const DEFAULT_FUNCTION: Tapehash = match Tapehash::v1(64) {
        Ok(t) => t,
        // Evaluated at compile time: a bad constant fails the build, never a run.
        Err(_) => panic!("code size 64 is valid"),
    };
    /// The `gossip` library's `BULLETIN_DIFFICULTY`.
    pub const DEFAULT_DIFFICULTY: Difficulty = Difficulty::LeadingZeroBits(7);

    /// `function` must meet `difficulty`.
    pub fn new(function: Tapehash, difficulty: Difficulty) -> Self {
        Self {
            function,
            difficulty,
            max_tries: None,
        }
    }

    /// Give up [`solve`](Self::solve) after `n` tries, at least 1 (default: 256 times the
    /// expected number, see [`get_max_tries`](Self::get_max_tries)).
    #[must_use]
    pub fn max_tries(mut self, n: u64) -> Self {
        self.max_tries = Some(n.max(1));
        self
    }

    /// The tries after which [`solve`](Self::solve) gives up: the configured number, or 256 times
    /// [`Difficulty::expected_hashes`] (failing by bad luck then has probability about e^-256),
    /// at most 2^31 (every non-negative nonce).
    pub fn get_max_tries(&self) -> u64 {
        const NONCES: u64 = 1 << 31;
        self.max_tries.unwrap_or_else(|| {
            let tries = self.difficulty.expected_hashes() * 256.0;
            if tries >= NONCES as f64 {
                NONCES
            } else {
                (tries as u64).max(1)
            }
        })
    }

    /// The stamp function.
    pub fn function(&self) -> Tapehash {
        self.function
    }

    /// The difficulty.
    pub fn difficulty(&self) -> Difficulty {
        self.difficulty
    }

    /// `function(header)`.
    pub fn digest(&self, header: &BulletinHeader) -> [u8; 32] {
        self.function.hash(&header.to_bytes())
    }

    /// Whether the header shows enough work.
    pub fn is_met_by(&self, header: &BulletinHeader) -> bool {
        self.difficulty.is_met_by(&self.digest(header))
    }

    /// The header with the first nonce from `header.nonce` on that meets the difficulty (Python's
    /// `Bulletin.hashcash`: the same start gives the same nonce). Nonces stay in `0..=i32::MAX`,
    /// wrapping to 0, since a Python node cannot hash a negative one; a negative start counts
    /// from 0.
    pub fn solve(&self, mut header: BulletinHeader) -> Result<BulletinHeader, WorkNotFound> {
        header.nonce = header.nonce.max(0);
        let tries = self.get_max_tries();
        for _ in 0..tries {
            if self.is_met_by(&header) {
                return Ok(header);
            }
            header.nonce = header.nonce.checked_add(1).unwrap_or(0);
        }
        Err(WorkNotFound {
            difficulty: self.difficulty,
            tries,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ids::{ContentId, TopicId};

    /// A bulletin minted by the Python `gossip` library (commit 09077e3,
    /// `Bulletin(...).hashcash()` with tapehash1, code size 64, 7 leading zero bits).
    struct PythonBulletin {
        descriptor: &'static [u8],
        content: &'static [u8],
        timestamp: i32,
        start_nonce: i32,
        /// The nonce it found.
        nonce: i32,
        header: &'static str,
        digest: &'static str,
    }

    const PYTHON_BULLETINS: [PythonBulletin; 3] = [
        PythonBulletin {
            descriptor: b"node beacon channel",
            content: b"hello gossip",
            timestamp: 1_700_000_000,
            start_nonce: 1,
            nonce: 175,
            header: "e1f2dec91e2405540f00893946b634d85e0227c40dd70dc38fcf8ec6ff9e9b9447d12e56685e1770495fd0a48c06f50e2da98b075c1d13fa275b377ed29b482c6553f100000000af",
            digest: "0000a87ffaca328b45beb33f3aa34e6d392f3c7d3aaafe324ea9755aaadd30c5",
        },
        PythonBulletin {
            descriptor: b"chat/general",
            content: b"",
            timestamp: 1_234_567_890,
            start_nonce: 4242,
            nonce: 4320,
            header: "dc53a0d06e0362f3db24782d8d98a540551f96dd7fc18bf9cb2985c17eaf3928e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855499602d2000010e0",
            digest: "01bd6a4df0ab4c569d57b76194c60a954e737bcbe8d59dc48f91647cd9c3ebe0",
        },
        PythonBulletin {
            descriptor: b"weather",
            content: b"rain at noon",
            timestamp: 1,
            start_nonce: 7,
            nonce: 153,
            header: "e5e72beb4e3c6926d3dc9e3e2ef7833ba50cd919c2460a782b244fd071e920de5d06db6bbe6e658383e8356bb744b677d5537743a01703c82d6d81d06a5aff060000000100000099",
            digest: "00f29880fa366938ee87129b853f61f91112d85c934325fe4e4ae01d1f836f88",
        },
    ];

    #[test]
    fn solves_to_the_nonce_python_finds() {
        let pow = ProofOfWork::default();
        for v in PYTHON_BULLETINS {
            let header = BulletinHeader {
                topic: TopicId::from_descriptor(v.descriptor),
                content_id: ContentId::of(v.content),
                timestamp: v.timestamp,
                nonce: v.start_nonce,
            };
            let solved = pow.solve(header).unwrap();
            assert_eq!(solved.nonce, v.nonce, "{:?}", v.descriptor);
            assert_eq!(hex::encode(solved.to_bytes()), v.header);
            assert_eq!(hex::encode(pow.digest(&solved)), v.digest);
            assert!(pow.is_met_by(&solved));
            // The nonce before it fails, as in Python's loop.
            let before = BulletinHeader {
                nonce: v.nonce - 1,
                ..solved
            };
            assert!(!pow.is_met_by(&before));
        }
    }

    /// Python's 200-byte-content vector started at nonce 65,535 and found 65,552 (17 tries):
    /// the nonce search continues past 16 bits.
    #[test]
    fn nonces_past_sixteen_bits() {
        let content: Vec<u8> = (0u8..200).collect();
        let header = BulletinHeader {
            topic: TopicId::from_descriptor(b""),
            content_id: ContentId::of(&content),
            timestamp: 2_000_000_000,
            nonce: 65_535,
        };
        let solved = ProofOfWork::default().solve(header).unwrap();
        assert_eq!(solved.nonce, 65_552);
        assert_eq!(
            hex::encode(solved.to_bytes()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8551901da1c9f699b48f6b2636e65cbf73abf99d0441ef67f5c540a42f7051dec6f7735940000010010"
        );
    }

    #[test]
    fn gives_up_and_wraps_within_non_negative_nonces() {
        let header = BulletinHeader {
            topic: TopicId::beacon(),
            content_id: ContentId::of(b""),
            timestamp: 0,
            nonce: i32::MAX,
        };
        let impossible =
            ProofOfWork::new(Tapehash::v1(1).unwrap(), Difficulty::LeadingZeroBits(200))
                .max_tries(3);
        assert_eq!(
            impossible.solve(header),
            Err(WorkNotFound {
                difficulty: Difficulty::LeadingZeroBits(200),
                tries: 3
            })
        );
        // Difficulty 0: the start itself; i32::MAX then 0 when it must move on.
        let any = ProofOfWork::new(Tapehash::v1(1).unwrap(), Difficulty::LeadingZeroBits(0));
        assert_eq!(any.solve(header).unwrap().nonce, i32::MAX);
        assert_eq!(
            any.solve(BulletinHeader {
                nonce: -5,
                ..header
            })
            .unwrap()
            .nonce,
            0,
            "a negative start counts from 0"
        );
        let linear = ProofOfWork::new(Tapehash::v1(1).unwrap(), Difficulty::Linear(1 << 40));
        // Search: 256 × 2^40 tries is more than every non-negative nonce.
        assert_eq!(linear.get_max_tries(), 1 << 31);
        assert_eq!(ProofOfWork::default().get_max_tries(), 128 * 256);
        assert_eq!(ProofOfWork::default().max_tries(0).get_max_tries(), 1);
    }
}
