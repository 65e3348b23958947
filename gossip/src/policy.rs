//! [`BulletinPolicy`]: what a node accepts (and mints): the proof of work, how long content
//! lives, how far ahead a clock may be, how large content may be. A bulletin that fails it is
//! neither stored nor forwarded.

use std::time::Duration;

use bytes::Bytes;

use crate::bulletin::{Bulletin, BulletinHeader};
use crate::ids::{BulletinId, ContentId, TopicId};
use crate::work::{ProofOfWork, WorkNotFound};

/// Why a received bulletin is refused (neither stored nor forwarded). Checked in this order, the
/// cheapest first, the proof of work before hashing the content (so a spammer cannot make a node
/// hash large content for free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The content is longer than the policy's `max_content_len`.
    #[error("content of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The content's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `now >= timestamp + ttl` (Python's `Bulletin.expired`).
    #[error("expired: published at {timestamp}, now {now}")]
    Expired {
        /// The header's timestamp.
        timestamp: i32,
        /// The receiver's clock.
        now: u64,
    },
    /// The timestamp is further ahead of the receiver's clock than `max_clock_skew` (it would
    /// stay stored longer than the ttl).
    #[error("from the future: published at {timestamp}, now {now}")]
    FromTheFuture {
        /// The header's timestamp.
        timestamp: i32,
        /// The receiver's clock.
        now: u64,
    },
    /// The header's digest does not meet the difficulty.
    #[error("insufficient proof of work (need {need})")]
    InsufficientWork {
        /// What the policy requires.
        need: netaio_tapehash::Difficulty,
    },
    /// The content id is not the content's SHA-256 (the Python library does not check this).
    #[error("content id {claimed} is not the content's hash {actual}")]
    ContentMismatch {
        /// The header's content id.
        claimed: ContentId,
        /// `SHA-256` of the content received.
        actual: ContentId,
    },
}

/// Why a bulletin could not be minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The content is longer than the policy's `max_content_len` (receivers would refuse it).
    #[error("content of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The content's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `now` does not fit the header's 32-bit signed timestamp (after January 2038).
    #[error("time {0} does not fit a 32-bit timestamp")]
    ClockOutOfRange(u64),
    /// No nonce was found within the proof of work's `max_tries`.
    #[error(transparent)]
    Work(#[from] WorkNotFound),
}

/// A bulletin that passed [`BulletinPolicy::verify`] (or was minted by
/// [`BulletinPolicy::mint`]), with its id and the time it expires. Only these go into a
/// [`ContentStore`](crate::ContentStore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBulletin {
    bulletin: Bulletin,
    id: BulletinId,
    expires_at: i64,
}

impl VerifiedBulletin {
    /// The bulletin.
    pub fn bulletin(&self) -> &Bulletin {
        &self.bulletin
    }

    /// Its id (`SHA-256` of the header).
    pub fn id(&self) -> BulletinId {
        self.id
    }

    /// When it expires: its timestamp plus the verifying policy's ttl, in Unix seconds.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The bulletin.
    pub fn into_bulletin(self) -> Bulletin {
        self.bulletin
    }

    /// The same bulletin with its content in an allocation of its own: a received payload may be
    /// a slice of a larger buffer, which a stored bulletin should not keep alive.
    pub(crate) fn detached(self) -> Self {
        let Self {
            bulletin,
            id,
            expires_at,
        } = self;
        let (header, content) = bulletin.into_parts();
        Self {
            bulletin: Bulletin::new(header, Bytes::copy_from_slice(&content)),
            id,
            expires_at,
        }
    }
}

/// What bulletins a node accepts and mints. Defaults: [`ProofOfWork::default`] (the `gossip`
/// library's), a ttl of 3,600 s (the library's `CONTENT_TTL`), 300 s of clock skew, 32 KiB of
/// content.
///
/// ```
/// use netaio_gossip::{BulletinPolicy, Refused, TopicId};
///
/// let policy = BulletinPolicy::default();
/// let now = 1_700_000_000;
/// let minted = policy.mint(TopicId::from_descriptor(b"weather"), "rain at noon", now, 0)?;
/// // A receiver runs the same checks on what arrives.
/// let received = netaio_gossip::Bulletin::decode(minted.bulletin().encode())?;
/// assert_eq!(policy.verify(received.clone(), now + 10)?.id(), minted.id());
/// assert!(matches!(policy.verify(received, now + 3_600), Err(Refused::Expired { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulletinPolicy {
    work: ProofOfWork,
    ttl: Duration,
    max_clock_skew: Duration,
    max_content_len: usize,
}

impl Default for BulletinPolicy {
    fn default() -> Self {
        Self {
            work: ProofOfWork::default(),
            ttl: Self::DEFAULT_TTL,
            max_clock_skew: Self::DEFAULT_MAX_CLOCK_SKEW,
            max_content_len: Self::DEFAULT_MAX_CONTENT_LEN,
        }
    }
}

impl BulletinPolicy {
    /// How long content lives by default (the Python library's `CONTENT_TTL`).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3_600);
    /// How far ahead of the receiver's clock a timestamp may be by default (the Python library
    /// has no limit; its `MESSAGE_TTL` is this long).
    pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
    /// The default largest content: 32 KiB, so that a bulletin fits one netaio frame with room
    /// to spare.
    pub const DEFAULT_MAX_CONTENT_LEN: usize = 32 * 1024;

    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// This proof of work (default [`ProofOfWork::default`]).
    #[must_use]
    pub fn proof_of_work(mut self, work: ProofOfWork) -> Self {
        self.work = work;
        self
    }

    /// Content lives this long after its timestamp (whole seconds; default 3,600 s).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// A timestamp may be this far ahead of the receiver's clock (whole seconds; default 300 s).
    #[must_use]
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// The largest content accepted and minted, in bytes (default 32 KiB).
    #[must_use]
    pub fn max_content_len(mut self, n: usize) -> Self {
        self.max_content_len = n;
        self
    }

    /// The proof of work.
    pub fn get_proof_of_work(&self) -> &ProofOfWork {
        &self.work
    }

    /// The ttl.
    pub fn get_ttl(&self) -> Duration {
        self.ttl
    }

    /// The largest clock skew accepted.
    pub fn get_max_clock_skew(&self) -> Duration {
        self.max_clock_skew
    }

    /// The largest content accepted.
    pub fn get_max_content_len(&self) -> usize {
        self.max_content_len
    }

    fn expires_at(&self, timestamp: i32) -> i64 {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        i64::from(timestamp).saturating_add(ttl)
    }

    fn now_i64(now: u64) -> i64 {
        i64::try_from(now).unwrap_or(i64::MAX)
    }

    /// Check a received bulletin at `now` (Unix seconds): size, expiry, clock skew, proof of
    /// work, then that the content id is the content's hash. A refusal is logged at debug
    /// level.
    pub fn verify(&self, bulletin: Bulletin, now: u64) -> Result<VerifiedBulletin, Refused> {
        let result = self.check(&bulletin, now);
        match result {
            Ok(expires_at) => Ok(VerifiedBulletin {
                id: bulletin.id(),
                bulletin,
                expires_at,
            }),
            Err(e) => {
                tracing::debug!(topic = ?bulletin.topic(), error = %e, "bulletin refused");
                Err(e)
            }
        }
    }

    fn check(&self, bulletin: &Bulletin, now: u64) -> Result<i64, Refused> {
        let header = bulletin.header();
        let len = bulletin.content().len();
        if len > self.max_content_len {
            return Err(Refused::TooLarge {
                len,
                max: self.max_content_len,
            });
        }
        let expires_at = self.expires_at(header.timestamp);
        let now_i = Self::now_i64(now);
        if now_i >= expires_at {
            return Err(Refused::Expired {
                timestamp: header.timestamp,
                now,
            });
        }
        let skew = i64::try_from(self.max_clock_skew.as_secs()).unwrap_or(i64::MAX);
        if i64::from(header.timestamp) > now_i.saturating_add(skew) {
            return Err(Refused::FromTheFuture {
                timestamp: header.timestamp,
                now,
            });
        }
        if !self.work.is_met_by(header) {
            return Err(Refused::InsufficientWork {
                need: self.work.difficulty(),
            });
        }
        let actual = ContentId::of(bulletin.content());
        if actual != header.content_id {
            return Err(Refused::ContentMismatch {
                claimed: header.content_id,
                actual,
            });
        }
        Ok(expires_at)
    }

    /// Mint a bulletin of `content` for `topic`, stamped `now`, searching nonces from
    /// `start_nonce` (Python starts from a random value below 65,536; so does
    /// [`mint_random`](Self::mint_random)). CPU-heavy: see [`ProofOfWork`] for the cost.
    pub fn mint(
        &self,
        topic: TopicId,
        content: impl Into<Bytes>,
        now: u64,
        start_nonce: i32,
    ) -> Result<VerifiedBulletin, MintError> {
        let content = content.into();
        let len = content.len();
        if len > self.max_content_len {
            return Err(MintError::TooLarge {
                len,
                max: self.max_content_len,
            });
        }
        let timestamp = i32::try_from(now).map_err(|_| MintError::ClockOutOfRange(now))?;
        let header = self.work.solve(BulletinHeader {
            topic,
            content_id: ContentId::of(&content),
            timestamp,
            nonce: start_nonce,
        })?;
        let bulletin = Bulletin::new(header, content);
        Ok(VerifiedBulletin {
            id: bulletin.id(),
            expires_at: self.expires_at(timestamp),
            bulletin,
        })
    }

    /// [`mint`](Self::mint) from a random nonce below 65,536, as Python does, so that two
    /// bulletins of the same content in the same second differ.
    pub fn mint_random(
        &self,
        topic: TopicId,
        content: impl Into<Bytes>,
        now: u64,
    ) -> Result<VerifiedBulletin, MintError> {
        let start = i32::from(rand::random::<u16>());
        self.mint(topic, content, now, start)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use netaio_tapehash::{Difficulty, Tapehash};

    use super::*;
    use crate::work::WorkNotFound;

    const NOW: u64 = 1_700_000_000;

    fn weather() -> TopicId {
        TopicId::from_descriptor(b"weather")
    }

    /// The Python library's `Bulletin(Topic.from_descriptor(b'weather'),
    /// Content.from_content(b'rain at noon'), 1, 7).hashcash().pack()` (commit 09077e3): minted
    /// here at timestamp 1 from start nonce 7, byte for byte the same (nonce 153).
    #[test]
    fn mints_what_python_mints() {
        let minted = BulletinPolicy::default()
            .ttl(Duration::from_secs(u64::from(u32::MAX)))
            .mint(weather(), "rain at noon", 1, 7)
            .unwrap();
        assert_eq!(minted.bulletin().header().nonce, 153);
        let wire = minted.bulletin().encode();
        assert_eq!(wire.len(), 84, "Python's packed length");
        assert_eq!(
            hex::encode(&wire[..72]),
            "e5e72beb4e3c6926d3dc9e3e2ef7833ba50cd919c2460a782b244fd071e920de5d06db6bbe6e658383e8356bb744b677d5537743a01703c82d6d81d06a5aff060000000100000099"
        );
        assert_eq!(&wire[72..], b"rain at noon");
        assert_eq!(minted.expires_at(), 1 + i64::from(u32::MAX));
    }

    fn minted(policy: &BulletinPolicy, ts: u64) -> Bulletin {
        policy
            .mint(weather(), "rain at noon", ts, 0)
            .unwrap()
            .into_bulletin()
    }

    #[test]
    fn accepts_within_ttl_and_skew() {
        let p = BulletinPolicy::default();
        let b = minted(&p, NOW);
        let v = p.verify(b.clone(), NOW + 3_599).unwrap();
        assert_eq!(v.id(), b.id());
        assert_eq!(v.expires_at(), NOW as i64 + 3_600);
        assert_eq!(v.bulletin(), &b);
        // Published up to 300 s ahead of the receiver's clock.
        p.verify(b, NOW - 300).unwrap();
    }

    #[test]
    fn expired_and_future_refused() {
        let p = BulletinPolicy::default();
        let b = minted(&p, NOW);
        let ts = NOW as i32;
        assert_eq!(
            p.verify(b.clone(), NOW + 3_600),
            Err(Refused::Expired {
                timestamp: ts,
                now: NOW + 3_600
            })
        );
        assert_eq!(
            p.verify(b.clone(), NOW - 301),
            Err(Refused::FromTheFuture {
                timestamp: ts,
                now: NOW - 301
            })
        );
        let short = p
            .ttl(Duration::from_secs(10))
            .max_clock_skew(Duration::ZERO);
        assert!(matches!(
            short.verify(b.clone(), NOW + 10),
            Err(Refused::Expired { .. })
        ));
        assert!(matches!(
            short.verify(b.clone(), NOW - 1),
            Err(Refused::FromTheFuture { .. })
        ));
        short.verify(b, NOW + 9).unwrap();
    }

    #[test]
    fn insufficient_work_refused() {
        let p = BulletinPolicy::default();
        let b = minted(&p, NOW);
        // The nonce before the one found fails (the search stops at the first that meets it).
        let mut header = *b.header();
        header.nonce -= 1;
        assert!(header.nonce >= 0, "minted from 0, so a nonce > 0 was found");
        let forged = Bulletin::new(header, b.content().clone());
        assert_eq!(
            p.verify(forged, NOW),
            Err(Refused::InsufficientWork {
                need: Difficulty::LeadingZeroBits(7)
            })
        );
    }

    #[test]
    fn content_mismatch_refused() {
        let p = BulletinPolicy::default();
        let b = minted(&p, NOW);
        // A valid header (its work done) carried with other content.
        let swapped = Bulletin::new(*b.header(), "buy now");
        assert_eq!(
            p.verify(swapped, NOW),
            Err(Refused::ContentMismatch {
                claimed: ContentId::of(b"rain at noon"),
                actual: ContentId::of(b"buy now"),
            })
        );
    }

    #[test]
    fn too_large_refused_and_not_minted() {
        let p = BulletinPolicy::default().max_content_len(4);
        assert_eq!(
            p.mint(weather(), "12345", NOW, 0),
            Err(MintError::TooLarge { len: 5, max: 4 })
        );
        let b = minted(&BulletinPolicy::default(), NOW);
        assert_eq!(p.verify(b, NOW), Err(Refused::TooLarge { len: 12, max: 4 }));
        assert_eq!(p.get_max_content_len(), 4);
    }

    /// The cheap checks come first: an expired bulletin is refused as expired even when its work
    /// is missing, and missing work is found before the content is hashed.
    #[test]
    fn refusal_order() {
        let p = BulletinPolicy::default();
        let b = minted(&p, NOW);
        let mut header = *b.header();
        header.nonce -= 1;
        let bad = Bulletin::new(header, "other content");
        assert!(matches!(
            p.verify(bad.clone(), NOW + 4_000),
            Err(Refused::Expired { .. })
        ));
        assert!(matches!(
            p.verify(bad, NOW),
            Err(Refused::InsufficientWork { .. })
        ));
    }

    #[test]
    fn mint_errors() {
        let p = BulletinPolicy::default();
        let late = u64::from(i32::MAX as u32) + 1;
        assert_eq!(
            p.mint(weather(), "x", late, 0),
            Err(MintError::ClockOutOfRange(late))
        );
        let impossible =
            ProofOfWork::new(Tapehash::v1(1).unwrap(), Difficulty::LeadingZeroBits(100))
                .max_tries(2);
        assert_eq!(
            p.proof_of_work(impossible).mint(weather(), "x", NOW, 0),
            Err(MintError::Work(WorkNotFound {
                difficulty: Difficulty::LeadingZeroBits(100),
                tries: 2
            }))
        );
    }

    /// Any tapehash and either difficulty rule: what one policy mints, it verifies; a receiver
    /// with another stamp function refuses it.
    #[test]
    fn other_functions_and_linear_difficulty() {
        let work = ProofOfWork::new(Tapehash::v3(16, 2).unwrap(), Difficulty::Linear(50));
        let p = BulletinPolicy::default().proof_of_work(work);
        let b = minted(&p, NOW);
        let digest = work.digest(b.header());
        assert!(netaio_tapehash::meets_linear(&digest, 50));
        p.verify(b.clone(), NOW).unwrap();
        let other = ProofOfWork::new(Tapehash::v2(2).unwrap(), Difficulty::Linear(50));
        assert!(!other.is_met_by(b.header()), "checked from the parts first");
        assert!(matches!(
            BulletinPolicy::default()
                .proof_of_work(other)
                .verify(b, NOW),
            Err(Refused::InsufficientWork { .. })
        ));
    }

    /// Python starts from a random nonce below 65,536: bulletins of the same content in the same
    /// second get different ids.
    #[test]
    fn random_starts_give_distinct_bulletins() {
        let p = BulletinPolicy::default().proof_of_work(ProofOfWork::new(
            Tapehash::v1(1).unwrap(),
            Difficulty::LeadingZeroBits(0),
        ));
        let ids: std::collections::HashSet<BulletinId> = (0..4)
            .map(|_| p.mint_random(weather(), "same", NOW).unwrap().id())
            .collect();
        assert!(ids.len() > 1, "four random starts all equal");
        for _ in 0..20 {
            let b = p.mint_random(weather(), "same", NOW).unwrap();
            assert!((0..=65_535).contains(&b.bulletin().header().nonce));
        }
    }
}
