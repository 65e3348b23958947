//! [`HashcashAuth`]: proof-of-work stamps against spam.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

use super::hmac::{ensure_absent, fixed_field, put_field, put_lp};
use super::{AuthError, AuthPlugin, Freshness, PluginContext};
use crate::{Message, MessageType};

/// Proof of work: the sender spends CPU to find a stamp, the receiver checks it with one hash.
///
/// `make` adds two auth fields: the sender's clock (`pow_ts`, 8 bytes big-endian seconds since
/// the Unix epoch) and a counter (`pow_nonce`, 8 bytes big-endian) such that
///
/// ```text
/// SHA-256( len ‖ "netaio/hashcash/v1" ‖ type byte ‖ len ‖ uri ‖ SHA-256(content) ‖ ts ‖ counter )
/// ```
///
/// (lengths as 8-byte big-endian) starts with at least `difficulty` zero bits. `check` computes
/// the same hash (plus one hash of the content), refuses fewer bits with
/// [`AuthError::InsufficientWork`], refuses a timestamp outside the window (±60 s by default)
/// and a stamp already seen within it ([`Freshness`], keyed by the stamp's digest), then removes
/// the two fields. A stamp is bound to its type, uri and content, so it cannot be reused on
/// another message. It does not cover other auth fields and proves nothing about the sender:
/// it rate-limits, it does not authenticate. Stack it with [`HmacAuth`](super::HmacAuth) (one of
/// them as the inner plugin) for both.
///
/// By default the plugin both stamps what it sends and requires stamps on what it receives, so a
/// server with it stamps its replies too. To demand work from clients only, give the server
/// [`stamp_outgoing(false)`](Self::stamp_outgoing) and the clients
/// [`require_incoming(false)`](Self::require_incoming).
///
/// Difficulty is per plugin: one on the node's instance plugins sets the node-wide cost, and one
/// attached to a route with `Route::with_inner` as an inner plugin (with other field names, see
/// [`field_prefix`](Self::field_prefix)) sets a higher cost for that route.
///
/// # Tapehash
///
/// With the `tapehash` feature, [`tapehash`](Self::tapehash) replaces SHA-256 by one of the
/// netaio author's tapehash functions ([`Tapehash`](super::Tapehash)), which cost hundreds of
/// SHA-256s per try on a CPU and are harder to build a circuit for. The stamp is then
///
/// ```text
/// tapehash( SHA-256( len ‖ "netaio/hashcash/tapehash/v1" ‖ type byte ‖ len ‖ uri ‖ SHA-256(content) ‖ ts ) ‖ counter )
/// ```
///
/// (the same fields, another domain tag; the message is hashed once, so a try costs one
/// tapehash of 40 bytes whatever the message's size). Both ends must use the same function and
/// parameters: a stamp made with another is refused as [`AuthError::InsufficientWork`]. Use a
/// much lower difficulty than with SHA-256: tapehash1 with code size 64 costs 30 to 55 µs per
/// try on the development machine in a release build (`cargo bench -p netaio-tapehash`), some
/// 300 to 500 times a SHA-256 try, so 8 bits take about 10 ms.
///
/// # Cost
///
/// Finding a stamp takes 2^`difficulty` hashes on average (a geometric distribution: often less,
/// sometimes several times more); checking takes one. Measured on one core of the development
/// machine (Xeon @ 2.1 GHz with the SHA extensions, release build): 13.1 million stamp hashes per
/// second (76 ns each).
///
/// | difficulty | mean hashes | expected time on one core | measured mean (solves)  |
/// |-----------:|------------:|--------------------------:|------------------------:|
/// | 8          | 256         | 20 µs                     | 20 µs (2000)            |
/// | 16         | 65,536      | 5 ms                      | 4.8–5.1 ms (200)        |
/// | 20         | 1,048,576   | 80 ms                     | 73–79 ms (30)           |
/// | 22         | 4,194,304   | 0.32 s                    | 0.34–0.53 s (10)        |
/// | 24         | 16,777,216  | 1.3 s                     |                         |
///
/// A CPU without SHA instructions is a few times slower; a GPU is much faster, so proof of work
/// limits cheap spam, not a determined attacker.
///
/// Each extra bit doubles the cost. Keep the expected time well below the freshness window: a
/// stamp made at `ts` must arrive within the window. [`is_blocking`](AuthPlugin::is_blocking)
/// is true, so the transports solve on the blocking thread pool and other connections are not
/// stalled. Solving gives up after [`max_tries`](Self::max_tries) attempts (default
/// 2^(difficulty + 8), where failing by bad luck has probability about e^-256) with
/// [`AuthError::Other`].
///
/// ```
/// use netaio::plugin::{open_outer, seal, HashcashAuth, PluginContext, Plugins};
/// use netaio::{Message, MessageType};
///
/// let node = Plugins::new().auth(HashcashAuth::new(8));
/// let ctx = PluginContext::default();
/// let msg = Message::new(MessageType::REQUEST_URI, "post", "hello");
/// let sealed = seal(msg.clone(), &Plugins::new(), &node, &ctx).unwrap();
/// assert_eq!(open_outer(sealed.clone(), &node, &ctx).unwrap(), msg);
/// assert!(open_outer(sealed, &node, &ctx).is_err(), "a stamp is good once");
/// ```
pub struct HashcashAuth {
    difficulty: u32,
    function: StampFunction,
    max_tries: Option<u64>,
    ts_field: Cow<'static, str>,
    nonce_field: Cow<'static, str>,
    freshness: Freshness,
    stamp_outgoing: bool,
    require_incoming: bool,
}

impl fmt::Debug for HashcashAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashcashAuth")
            .field("difficulty", &self.difficulty)
            .field("function", &self.function)
            .field("max_tries", &self.get_max_tries())
            .field("ts_field", &self.ts_field)
            .field("nonce_field", &self.nonce_field)
            .field("freshness", &self.freshness)
            .field("stamp_outgoing", &self.stamp_outgoing)
            .field("require_incoming", &self.require_incoming)
            .finish()
    }
}

/// What hashes a stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StampFunction {
    Sha256,
    #[cfg(feature = "tapehash")]
    Tapehash(super::Tapehash),
}

/// Everything of one message's stamps but the counter, hashed once.
enum StampPrefix {
    /// The SHA-256 state after the prefix.
    Sha256(Sha256),
    /// The function and the 32-byte SHA-256 of the prefix; the preimage of a try is that digest
    /// followed by the counter.
    #[cfg(feature = "tapehash")]
    Tapehash(super::Tapehash, [u8; 32]),
}

/// Leading zero bits of a digest.
fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for b in digest {
        if *b != 0 {
            return bits + b.leading_zeros();
        }
        bits += 8;
    }
    bits
}

impl HashcashAuth {
    /// The domain tag at the start of every stamp.
    pub const DOMAIN: &'static str = "netaio/hashcash/v1";
    /// The domain tag of tapehash stamps (see [`tapehash`](Self::tapehash)).
    pub const TAPEHASH_DOMAIN: &'static str = "netaio/hashcash/tapehash/v1";
    /// Default timestamp field name.
    pub const TS_FIELD: &'static str = "pow_ts";
    /// Default counter field name.
    pub const NONCE_FIELD: &'static str = "pow_nonce";
    /// The largest difficulty (the digest's length in bits).
    pub const MAX_DIFFICULTY: u32 = 256;

    /// Stamps of `difficulty` leading zero bits (at most 256), default field names and a default
    /// [`Freshness`] (±60 s, 65,536 stamps).
    pub fn new(difficulty: u32) -> Self {
        Self {
            difficulty: difficulty.min(Self::MAX_DIFFICULTY),
            function: StampFunction::Sha256,
            max_tries: None,
            ts_field: Cow::Borrowed(Self::TS_FIELD),
            nonce_field: Cow::Borrowed(Self::NONCE_FIELD),
            freshness: Freshness::default(),
            stamp_outgoing: true,
            require_incoming: true,
        }
    }

    /// Whether `make` solves stamps for outgoing messages (default `true`). A server that only
    /// demands work from its clients sets `false`, so that it does not pay for a stamp on every
    /// reply; its clients then set [`require_incoming(false)`](Self::require_incoming).
    ///
    /// ```
    /// use netaio::plugin::HashcashAuth;
    /// let at_server = HashcashAuth::new(20).stamp_outgoing(false);
    /// let at_client = HashcashAuth::new(20).require_incoming(false);
    /// ```
    #[must_use]
    pub fn stamp_outgoing(mut self, on: bool) -> Self {
        self.stamp_outgoing = on;
        self
    }

    /// Whether `check` requires a stamp on incoming messages (default `true`). With `false`,
    /// messages without a stamp pass and a stamp that is present is removed unverified (a stamp
    /// proves work, not identity, so there is nothing to gain from checking one not required).
    #[must_use]
    pub fn require_incoming(mut self, on: bool) -> Self {
        self.require_incoming = on;
        self
    }

    /// The required number of leading zero bits.
    pub fn difficulty(&self) -> u32 {
        self.difficulty
    }

    /// Give up solving after `n` attempts, at least 1 (default 2^(difficulty + 8), see
    /// [`get_max_tries`](Self::get_max_tries)).
    ///
    /// ```
    /// use netaio::plugin::HashcashAuth;
    /// let pow = HashcashAuth::new(20).max_tries(1 << 24);
    /// assert_eq!(pow.get_max_tries(), 1 << 24);
    /// ```
    #[must_use]
    pub fn max_tries(mut self, n: u64) -> Self {
        self.max_tries = Some(n.max(1));
        self
    }

    /// The number of attempts after which solving gives up: the configured number, or
    /// 2^(difficulty + 8) (saturating at `u64::MAX`).
    pub fn get_max_tries(&self) -> u64 {
        self.max_tries
            .unwrap_or_else(|| 1u64.checked_shl(self.difficulty + 8).unwrap_or(u64::MAX))
    }

    /// The timestamp field's name (default [`TS_FIELD`](Self::TS_FIELD), `pow_ts`). The two
    /// field names must differ.
    ///
    /// ```
    /// use netaio::plugin::HashcashAuth;
    /// let pow = HashcashAuth::new(8).ts_field("t").nonce_field("n");
    /// assert_eq!(pow.names(), ["t", "n"]);
    /// ```
    #[must_use]
    pub fn ts_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.ts_field = name.into();
        self
    }

    /// The counter field's name (default [`NONCE_FIELD`](Self::NONCE_FIELD), `pow_nonce`).
    #[must_use]
    pub fn nonce_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.nonce_field = name.into();
        self
    }

    /// The timestamp and counter field names.
    pub fn names(&self) -> [&str; 2] {
        [&self.ts_field, &self.nonce_field]
    }

    /// The default field names behind a prefix (`"h."` gives `h.pow_ts` and `h.pow_nonce`;
    /// default: no prefix), for a second `HashcashAuth` in the same message.
    ///
    /// ```
    /// use netaio::plugin::{HashcashAuth, Plugins};
    /// // A costlier stamp for one route, on top of the node's.
    /// let inner = Plugins::new().auth(HashcashAuth::new(20).field_prefix("route."));
    /// ```
    #[must_use]
    pub fn field_prefix(self, prefix: &str) -> Self {
        self.ts_field(format!("{prefix}{}", Self::TS_FIELD))
            .nonce_field(format!("{prefix}{}", Self::NONCE_FIELD))
    }

    /// This timestamp window, stamp cache and clock (default [`Freshness::default`]: ±60 s,
    /// 65,536 stamps, the system clock).
    #[must_use]
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = freshness;
        self
    }

    /// The plugin's [`Freshness`], set with [`freshness`](Self::freshness).
    pub fn get_freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// Stamps with `function`, a tapehash, instead of SHA-256 (see [Tapehash](#tapehash) above;
    /// the `tapehash` feature).
    ///
    /// ```
    /// use netaio::plugin::{HashcashAuth, Tapehash};
    /// let pow = HashcashAuth::new(8).tapehash(Tapehash::v1(64)?);
    /// assert_eq!(pow.get_tapehash(), Some(Tapehash::v1(64)?));
    /// # Ok::<(), netaio_tapehash::ParamError>(())
    /// ```
    #[cfg(feature = "tapehash")]
    #[must_use]
    pub fn tapehash(mut self, function: super::Tapehash) -> Self {
        self.function = StampFunction::Tapehash(function);
        self
    }

    /// The tapehash stamps are made with, `None` for SHA-256 (the default).
    #[cfg(feature = "tapehash")]
    pub fn get_tapehash(&self) -> Option<super::Tapehash> {
        match self.function {
            StampFunction::Tapehash(t) => Some(t),
            StampFunction::Sha256 => None,
        }
    }

    /// The hash state after everything but the counter.
    fn prefix(
        &self,
        message_type: MessageType,
        uri: &[u8],
        content: &[u8],
        ts: u64,
    ) -> StampPrefix {
        let domain = match self.function {
            StampFunction::Sha256 => Self::DOMAIN,
            #[cfg(feature = "tapehash")]
            StampFunction::Tapehash(_) => Self::TAPEHASH_DOMAIN,
        };
        let mut h = Sha256::new();
        put_lp(&mut h, domain.as_bytes());
        Digest::update(&mut h, [message_type.value()]);
        put_lp(&mut h, uri);
        Digest::update(&mut h, Sha256::digest(content));
        Digest::update(&mut h, ts.to_be_bytes());
        match self.function {
            StampFunction::Sha256 => StampPrefix::Sha256(h),
            #[cfg(feature = "tapehash")]
            StampFunction::Tapehash(t) => StampPrefix::Tapehash(t, h.finalize().into()),
        }
    }

    fn stamp(prefix: &StampPrefix, counter: u64) -> [u8; 32] {
        match prefix {
            StampPrefix::Sha256(state) => {
                let mut h = state.clone();
                Digest::update(&mut h, counter.to_be_bytes());
                h.finalize().into()
            }
            #[cfg(feature = "tapehash")]
            StampPrefix::Tapehash(t, digest) => {
                let mut preimage = [0u8; 40];
                let (head, tail) = preimage.split_at_mut(32);
                head.copy_from_slice(digest);
                tail.copy_from_slice(&counter.to_be_bytes());
                t.hash(&preimage)
            }
        }
    }

    /// Search counters from `start` (wrapping); the first one with enough zero bits.
    fn solve(&self, prefix: &StampPrefix, start: u64) -> Option<u64> {
        (0..self.get_max_tries())
            .map(|i| start.wrapping_add(i))
            .find(|c| leading_zero_bits(&Self::stamp(prefix, *c)) >= self.difficulty)
    }

    fn make_from(&self, msg: &mut Message, start: u64) -> Result<(), AuthError> {
        ensure_absent(&msg.auth, &[&self.ts_field, &self.nonce_field])?;
        let ts = self.freshness.now();
        let prefix = self.prefix(msg.message_type, msg.uri(), msg.content(), ts);
        let counter = self.solve(&prefix, start).ok_or_else(|| {
            AuthError::Other(format!(
                "no proof of work of {} bits found in {} tries",
                self.difficulty,
                self.get_max_tries()
            ))
        })?;
        put_field(&mut msg.auth, &self.ts_field, ts.to_be_bytes().to_vec());
        put_field(
            &mut msg.auth,
            &self.nonce_field,
            counter.to_be_bytes().to_vec(),
        );
        Ok(())
    }
}

impl AuthPlugin for HashcashAuth {
    /// Solve a stamp (CPU-heavy: see the cost table in the type docs). The counter search starts
    /// at a random value, so two identical messages in the same second get different stamps.
    fn make(&self, msg: &mut Message, _ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        if !self.stamp_outgoing {
            return Ok(());
        }
        self.make_from(msg, rand::random())
    }

    fn check(&self, msg: &mut Message, _ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        if !self.require_incoming {
            msg.auth.remove(&self.ts_field);
            msg.auth.remove(&self.nonce_field);
            return Ok(());
        }
        let ts = u64::from_be_bytes(fixed_field::<8>(&msg.auth, &self.ts_field)?);
        let counter = u64::from_be_bytes(fixed_field::<8>(&msg.auth, &self.nonce_field)?);
        let prefix = self.prefix(msg.message_type, msg.uri(), msg.content(), ts);
        let digest = Self::stamp(&prefix, counter);
        let got = leading_zero_bits(&digest);
        if got < self.difficulty {
            return Err(AuthError::InsufficientWork {
                got,
                need: self.difficulty,
            });
        }
        self.freshness.accept(ts, &digest)?;
        msg.auth.remove(&self.ts_field);
        msg.auth.remove(&self.nonce_field);
        Ok(())
    }

    /// AUTH_ERROR `proof of work required` with uri `ERROR`.
    fn error_reply(&self, _err: &AuthError) -> Message {
        Message::new(MessageType::AUTH_ERROR, "ERROR", "proof of work required")
    }

    /// True (unless [`stamp_outgoing(false)`](HashcashAuth::stamp_outgoing)): solving is
    /// CPU-heavy, so the transports run `make` off the async executor.
    fn is_blocking(&self) -> bool {
        self.stamp_outgoing
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use proptest::prelude::*;

    use super::*;
    use crate::message::PostcardCodec;
    use crate::plugin::{HmacAuth, Plugins, open_inner, open_outer, seal};

    const T0: u64 = 1_700_000_000;
    const D: u32 = 12;

    fn ctx() -> PluginContext<'static> {
        PluginContext::default()
    }

    fn clock() -> (Arc<AtomicU64>, Freshness) {
        let now = Arc::new(AtomicU64::new(T0));
        let c = now.clone();
        (
            now,
            Freshness::default().clock(Arc::new(move || c.load(Ordering::SeqCst))),
        )
    }

    fn pow(d: u32) -> (Arc<AtomicU64>, HashcashAuth) {
        let (now, f) = clock();
        (now, HashcashAuth::new(d).freshness(f))
    }

    fn request() -> Message {
        Message::new(MessageType::REQUEST_URI, "post", "hello")
    }

    /// A stamp solved deterministically (fixed clock and start counter).
    fn stamped(p: &HashcashAuth, msg: &Message) -> Message {
        let mut m = msg.clone();
        p.make_from(&mut m, 0).unwrap();
        m
    }

    fn set_counter(m: &mut Message, c: u64) {
        m.auth.insert("pow_nonce", c.to_be_bytes().to_vec());
    }

    #[test]
    fn leading_zero_bits_counts() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0, 0x80]), 8);
        assert_eq!(leading_zero_bits(&[0, 0, 0x10]), 19);
        assert_eq!(leading_zero_bits(&[0; 32]), 256);
        assert_eq!(leading_zero_bits(&[]), 0);
    }

    #[test]
    fn round_trip_through_seal_and_open() {
        let (_, p) = pow(D);
        let node = Plugins::new().auth(p);
        assert!(node.is_blocking());
        let sealed = seal(request(), &Plugins::new(), &node, &ctx()).unwrap();
        assert_eq!(
            sealed.auth.get("pow_ts").unwrap().as_ref(),
            T0.to_be_bytes()
        );
        let wire = sealed.to_bytes(&PostcardCodec).unwrap();
        let back = Message::decode(wire, &PostcardCodec).unwrap();
        assert_eq!(open_outer(back, &node, &ctx()).unwrap(), request());
    }

    #[test]
    fn stamp_has_the_difficulty() {
        let (_, p) = pow(D);
        let m = stamped(&p, &request());
        let counter = u64::from_be_bytes(m.auth.get("pow_nonce").unwrap()[..].try_into().unwrap());
        let prefix = p.prefix(m.message_type, m.uri(), m.content(), T0);
        assert!(leading_zero_bits(&HashcashAuth::stamp(&prefix, counter)) >= D);
        // Solving from 0 finds the first counter with enough bits.
        assert!((0..counter).all(|c| leading_zero_bits(&HashcashAuth::stamp(&prefix, c)) < D));
    }

    /// Stamps built deliberately: exactly d-1 leading zero bits is refused, exactly d accepted.
    #[test]
    fn d_minus_one_bits_rejected_d_bits_accepted() {
        let (_, p) = pow(D);
        let msg = request();
        let prefix = p.prefix(msg.message_type, msg.uri(), msg.content(), T0);
        let exactly = |bits: u32| {
            (0u64..1 << 24)
                .find(|c| leading_zero_bits(&HashcashAuth::stamp(&prefix, *c)) == bits)
                .unwrap()
        };
        let mut base = msg.clone();
        base.auth.insert("pow_ts", T0.to_be_bytes().to_vec());
        let mut short = base.clone();
        set_counter(&mut short, exactly(D - 1));
        assert_eq!(
            p.check(&mut short, &ctx()),
            Err(AuthError::InsufficientWork {
                got: D - 1,
                need: D
            })
        );
        let mut enough = base.clone();
        set_counter(&mut enough, exactly(D));
        p.check(&mut enough, &ctx()).unwrap();
        assert_eq!(enough, msg);
        // Difficulty 0 accepts anything fresh.
        let mut any = base.clone();
        set_counter(&mut any, exactly(0));
        HashcashAuth::new(0)
            .freshness(clock().1)
            .check(&mut any, &ctx())
            .unwrap();
    }

    #[test]
    fn reused_stamp_rejected() {
        let (now, p) = pow(D);
        let m = stamped(&p, &request());
        p.check(&mut m.clone(), &ctx()).unwrap();
        // The same stamp again.
        assert_eq!(p.check(&mut m.clone(), &ctx()), Err(AuthError::Replay));
        now.store(T0 + 60, Ordering::SeqCst);
        assert_eq!(p.check(&mut m.clone(), &ctx()), Err(AuthError::Replay));
        // The same stamp on other content.
        let other = m.clone().with_content("spam spam spam");
        assert!(matches!(
            p.check(&mut other.clone(), &ctx()),
            Err(AuthError::InsufficientWork { need: D, .. })
        ));
    }

    #[test]
    fn stale_rejected() {
        let (_, sender) = pow(D);
        let (now, receiver) = pow(D);
        let m = stamped(&sender, &request());
        now.store(T0 + 61, Ordering::SeqCst);
        assert_eq!(
            receiver.check(&mut m.clone(), &ctx()),
            Err(AuthError::Stale {
                ts: T0,
                now: T0 + 61
            })
        );
        now.store(T0 - 61, Ordering::SeqCst);
        assert!(matches!(
            receiver.check(&mut m.clone(), &ctx()),
            Err(AuthError::Stale { .. })
        ));
        assert!(receiver.get_freshness().is_empty());
    }

    #[test]
    fn tampering_rejected() {
        let (_, p) = pow(D);
        let m = stamped(&p, &request());
        let counter = u64::from_be_bytes(m.auth.get("pow_nonce").unwrap()[..].try_into().unwrap());
        let mut cases: Vec<(&str, Message)> = Vec::new();
        let mut t = m.clone();
        t.message_type = MessageType::CREATE_URI;
        cases.push(("type byte", t));
        cases.push(("uri", m.clone().with_uri("posT")));
        cases.push(("content", m.clone().with_content("hellO")));
        cases.push(("boundary", m.clone().with_uri("posth").with_content("ello")));
        let mut t = m.clone();
        set_counter(&mut t, counter + 1);
        cases.push(("nonce", t));
        let mut t = m.clone();
        t.auth.insert("pow_ts", (T0 - 1).to_be_bytes().to_vec());
        cases.push(("timestamp", t));
        for (what, mut t) in cases {
            assert!(
                matches!(
                    p.check(&mut t, &ctx()),
                    Err(AuthError::InsufficientWork { need: D, .. })
                ),
                "{what}"
            );
        }
        assert!(p.get_freshness().is_empty());
        p.check(&mut m.clone(), &ctx()).unwrap();
    }

    #[test]
    fn missing_and_malformed_fields_rejected() {
        let (_, p) = pow(D);
        let m = stamped(&p, &request());
        for name in ["pow_ts", "pow_nonce"] {
            let mut t = m.clone();
            t.auth.remove(name);
            assert_eq!(
                p.check(&mut t, &ctx()),
                Err(AuthError::MissingField(name.into()))
            );
            let mut t = m.clone();
            t.auth.insert(name, vec![0u8; 9]);
            assert_eq!(
                p.check(&mut t, &ctx()),
                Err(AuthError::MalformedField(name.into()))
            );
        }
        assert!(p.check(&mut request(), &ctx()).is_err());
    }

    #[test]
    fn gives_up_after_max_tries() {
        let (_, p) = pow(40);
        assert_eq!(p.get_max_tries(), 1 << 48);
        let p = p.max_tries(1000);
        let mut m = request();
        let err = p.make(&mut m, &ctx()).unwrap_err();
        assert!(
            matches!(&err, AuthError::Other(t) if t.contains("1000 tries")),
            "{err:?}"
        );
        assert_eq!(m, request(), "nothing added on failure");
        assert_eq!(HashcashAuth::new(300).difficulty(), 256);
        assert_eq!(HashcashAuth::new(256).get_max_tries(), u64::MAX);
        assert_eq!(HashcashAuth::new(0).max_tries(0).get_max_tries(), 1);
    }

    #[test]
    fn refuses_to_overwrite_and_stacks_with_prefix() {
        let (_, p) = pow(4);
        let mut m = request();
        m.auth.insert("pow_ts", "x");
        assert!(matches!(p.make(&mut m, &ctx()), Err(AuthError::Other(_))));
        // Node-wide 4 bits, 10 bits on one route, plus HMAC.
        let (_, outer) = pow(4);
        let (_, route) = pow(10);
        let inner = Plugins::new().auth(route.field_prefix("r."));
        let outer = Plugins::new().auth(outer);
        let sealed = seal(request(), &inner, &outer, &ctx()).unwrap();
        let routed = open_outer(sealed, &outer, &ctx()).unwrap();
        assert!(routed.auth.contains("r.pow_nonce"));
        assert_eq!(open_inner(routed, &inner, &ctx()).unwrap(), request());
        let hmac = Plugins::new().auth(HmacAuth::new(b"k"));
        let (_, p) = pow(4);
        let inner = Plugins::new().auth(p);
        let sealed = seal(request(), &inner, &hmac, &ctx()).unwrap();
        let routed = open_outer(sealed, &hmac, &ctx()).unwrap();
        assert_eq!(open_inner(routed, &inner, &ctx()).unwrap(), request());
    }

    /// The named field setters decide the fields of a sealed message; the defaults stay as they
    /// were, and a receiver with the same names opens it.
    #[test]
    fn named_fields_in_a_sealed_message() {
        let names = |m: &Message| m.auth.iter().map(|(n, _)| n.to_owned()).collect::<Vec<_>>();
        let default = Plugins::new().auth(pow(4).1);
        let sealed = seal(request(), &Plugins::new(), &default, &ctx()).unwrap();
        assert_eq!(names(&sealed), ["pow_nonce", "pow_ts"]);

        let named = || pow(4).1.ts_field("stamp.t").nonce_field("stamp.n");
        assert_eq!(named().names(), ["stamp.t", "stamp.n"]);
        let sender = Plugins::new().auth(named());
        let sealed = seal(request(), &Plugins::new(), &sender, &ctx()).unwrap();
        assert_eq!(names(&sealed), ["stamp.n", "stamp.t"]);
        let receiver = Plugins::new().auth(named());
        assert_eq!(open_outer(sealed, &receiver, &ctx()).unwrap(), request());

        // One name changed, the other left at its default.
        let sender = Plugins::new().auth(pow(4).1.nonce_field("n"));
        let sealed = seal(request(), &Plugins::new(), &sender, &ctx()).unwrap();
        assert_eq!(names(&sealed), ["n", "pow_ts"]);
    }

    #[test]
    fn error_reply_and_flags() {
        let p = HashcashAuth::new(1);
        let r = p.error_reply(&AuthError::InsufficientWork { got: 0, need: 1 });
        assert_eq!(r.message_type, MessageType::AUTH_ERROR);
        assert_eq!(r.content().as_ref(), b"proof of work required");
        assert!(p.is_blocking());
        assert!(!AuthPlugin::is_peer_specific(&p));
    }

    #[test]
    fn one_directional_modes() {
        let (_, client) = pow(D);
        let client = client.require_incoming(false);
        let (_, server) = pow(D);
        let server = server.stamp_outgoing(false);
        assert!(client.is_blocking() && !server.is_blocking());
        // Client to server: stamped and checked.
        let mut m = request();
        client.make(&mut m, &ctx()).unwrap();
        assert!(m.auth.contains("pow_nonce"));
        server.check(&mut m, &ctx()).unwrap();
        assert_eq!(m, request());
        let mut unstamped = request();
        assert_eq!(
            server.check(&mut unstamped, &ctx()),
            Err(AuthError::MissingField("pow_ts".into()))
        );
        // Server to client: nothing added, nothing required.
        let mut reply = Message::respond("post", "ok");
        server.make(&mut reply, &ctx()).unwrap();
        assert_eq!(reply, Message::respond("post", "ok"));
        client.check(&mut reply, &ctx()).unwrap();
        assert_eq!(reply, Message::respond("post", "ok"));
        // A stamp that is present but not required is removed.
        let mut stamped = stamped(&pow(D).1, &reply);
        client.check(&mut stamped, &ctx()).unwrap();
        assert_eq!(stamped, reply);
    }

    /// The tapehash construction of the type docs, computed here from its parts.
    #[cfg(feature = "tapehash")]
    fn tapehash_stamp(t: crate::plugin::Tapehash, m: &Message, ts: u64, counter: u64) -> [u8; 32] {
        use sha2::Digest as _;
        let mut h = Sha256::new();
        h.update((HashcashAuth::TAPEHASH_DOMAIN.len() as u64).to_be_bytes());
        h.update(HashcashAuth::TAPEHASH_DOMAIN);
        h.update([m.message_type.value()]);
        h.update((m.uri().len() as u64).to_be_bytes());
        h.update(m.uri());
        h.update(Sha256::digest(m.content()));
        h.update(ts.to_be_bytes());
        let mut preimage = h.finalize().to_vec();
        preimage.extend_from_slice(&counter.to_be_bytes());
        t.hash(&preimage)
    }

    #[cfg(feature = "tapehash")]
    fn counter_of(m: &Message) -> u64 {
        u64::from_be_bytes(m.auth.get("pow_nonce").unwrap()[..].try_into().unwrap())
    }

    /// Stamps made with tapehash1 (code size 64) follow the documented construction, open through
    /// the pipeline, and are good once.
    #[cfg(feature = "tapehash")]
    #[test]
    fn tapehash_stamps_round_trip() {
        use crate::plugin::Tapehash;
        let t = Tapehash::v1(64).unwrap();
        let (_, p) = pow(6);
        let p = p.tapehash(t);
        assert_eq!(p.get_tapehash(), Some(t));
        let m = stamped(&p, &request());
        let counter = counter_of(&m);
        assert!(leading_zero_bits(&tapehash_stamp(t, &m, T0, counter)) >= 6);
        // Solving from 0 finds the first counter with enough bits.
        assert!((0..counter).all(|c| leading_zero_bits(&tapehash_stamp(t, &m, T0, c)) < 6));
        p.check(&mut m.clone(), &ctx()).unwrap();
        assert_eq!(p.check(&mut m.clone(), &ctx()), Err(AuthError::Replay));

        let (_, p) = pow(6);
        let node = Plugins::new().auth(p.tapehash(Tapehash::v3(16, 2).unwrap()));
        let sealed = seal(request(), &Plugins::new(), &node, &ctx()).unwrap();
        assert_eq!(open_outer(sealed, &node, &ctx()).unwrap(), request());
    }

    /// A stamp is checked with the receiver's function: SHA-256 stamps fail a tapehash checker,
    /// tapehash stamps fail a SHA-256 checker and a tapehash of other parameters.
    #[cfg(feature = "tapehash")]
    #[test]
    fn stamps_of_another_function_refused() {
        use crate::plugin::Tapehash;
        let t64 = Tapehash::v1(64).unwrap();
        let sha = stamped(&pow(D).1, &request());
        let with_t64 = stamped(&pow(D).1.tapehash(t64), &request());
        // The counters found are not stamps under the other function (checked from the parts, so
        // the assertion below cannot pass by luck unnoticed).
        assert!(leading_zero_bits(&tapehash_stamp(t64, &sha, T0, counter_of(&sha))) < D);
        let t65 = Tapehash::v1(65).unwrap();
        assert!(leading_zero_bits(&tapehash_stamp(t65, &with_t64, T0, counter_of(&with_t64))) < D);
        let refused = |p: HashcashAuth, m: &Message| {
            matches!(
                p.check(&mut m.clone(), &ctx()),
                Err(AuthError::InsufficientWork { need: D, .. })
            )
        };
        assert!(refused(pow(D).1.tapehash(t64), &sha));
        assert!(refused(pow(D).1, &with_t64));
        assert!(refused(pow(D).1.tapehash(t65), &with_t64));
        pow(D)
            .1
            .tapehash(t64)
            .check(&mut with_t64.clone(), &ctx())
            .unwrap();
    }

    proptest! {
        #[test]
        fn check_never_panics(
            t in any::<u8>(),
            uri in prop::collection::vec(any::<u8>(), 0..32),
            content in prop::collection::vec(any::<u8>(), 0..64),
            ts in prop::option::of(prop::collection::vec(any::<u8>(), 0..12)),
            nonce in prop::option::of(prop::collection::vec(any::<u8>(), 0..12)),
        ) {
            let p = HashcashAuth::new(16);
            let mut m = Message::new(MessageType::from_u8(t), uri, content);
            if let Some(ts) = ts { m.auth.insert("pow_ts", ts); }
            if let Some(n) = nonce { m.auth.insert("pow_nonce", n); }
            let before = m.clone();
            // 16 bits by chance is possible but the (random) timestamp is then stale.
            prop_assert!(p.check(&mut m, &ctx()).is_err());
            prop_assert_eq!(m, before);
        }
    }
}
