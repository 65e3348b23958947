//! Tests of [`AeadAuth`]: round trips, tampering, freshness, keys, reflection, stacking.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::message::PostcardCodec;
use crate::plugin::{
    AeadCipher, HmacAuth, OpenError, Plugins, SealError, Stage, open_inner, open_outer, seal,
};

const T0: u64 = 1_700_000_000;

/// Plugins on one shared, settable clock.
struct Clocked {
    now: Arc<AtomicU64>,
}

impl Clocked {
    fn new() -> Self {
        Self {
            now: Arc::new(AtomicU64::new(T0)),
        }
    }
    fn freshness(&self) -> Freshness {
        let now = self.now.clone();
        Freshness::default().clock(Arc::new(move || now.load(Ordering::SeqCst)))
    }
    fn auth(&self, secret: &[u8]) -> AeadAuth {
        AeadAuth::new(secret).freshness(self.freshness())
    }
    fn set(&self, t: u64) {
        self.now.store(t, Ordering::SeqCst);
    }
}

fn ctx() -> PluginContext<'static> {
    PluginContext::default()
}

fn at(node: u64) -> PluginContext<'static> {
    PluginContext {
        node: Some(node),
        ..PluginContext::default()
    }
}

fn request() -> Message {
    let mut m = Message::new(MessageType::REQUEST_URI, "echo", "hello");
    m.set_request_id(42);
    m
}

fn made(auth: &AeadAuth, msg: &Message) -> Message {
    let mut m = msg.clone();
    auth.make(&mut m, &ctx()).unwrap();
    m
}

/// Both algorithms × both modes, on one clock.
fn all(c: &Clocked, secret: &[u8]) -> Vec<AeadAuth> {
    let mut v = Vec::new();
    for alg in AeadAlgorithm::ALL {
        for hidden in [false, true] {
            v.push(c.auth(secret).algorithm(alg).encrypt_uri(hidden));
        }
    }
    v
}

fn label(a: &AeadAuth) -> String {
    format!("{} encrypt_uri {}", a.get_algorithm(), a.encrypts_uri())
}

#[test]
fn round_trip_both_algorithms_and_modes_over_the_wire() {
    let c = Clocked::new();
    for a in all(&c, b"secret") {
        let sealed = made(&a, &request());
        let nonce = sealed.auth.get("nonce").unwrap();
        assert_eq!(
            nonce.len(),
            8 + a.get_algorithm().nonce_tail_len(),
            "{}",
            label(&a)
        );
        assert_eq!(
            sealed.auth.get("ts").unwrap().as_ref(),
            &T0.to_be_bytes()[..]
        );
        assert_eq!(sealed.request_id(), Some(42), "other fields untouched");
        assert!(!sealed.content().windows(5).any(|w| w == b"hello"));
        if a.encrypts_uri() {
            assert!(sealed.uri().is_empty());
            assert_eq!(sealed.content().len(), 2 + 4 + 5 + 16);
        } else {
            assert_eq!(sealed.uri().as_ref(), b"echo");
            assert_eq!(sealed.content().len(), 5 + 16);
        }
        let wire = sealed.to_bytes(&PostcardCodec).unwrap();
        let mut back = Message::decode(wire, &PostcardCodec).unwrap();
        a.check(&mut back, &ctx()).unwrap();
        assert_eq!(back, request(), "{}", label(&a));
    }
}

#[test]
fn round_trip_through_seal_and_empty_parts() {
    let c = Clocked::new();
    for a in all(&c, b"secret") {
        let node = Plugins::new().auth(a);
        for msg in [
            request(),
            Message::ok("", ""),
            Message::ok("u", ""),
            Message::ok("", "c"),
            Message::ok("big", vec![7u8; 60_000]),
            // Associated data too long for the stack buffer (with the uri in clear).
            Message::ok("u".repeat(1_000), "long uri"),
        ] {
            let sealed = seal(msg.clone(), &Plugins::new(), &node, &ctx()).unwrap();
            assert_eq!(open_outer(sealed, &node, &ctx()).unwrap(), msg);
        }
    }
}

/// A receiver opens both algorithms, whatever it sends itself.
#[test]
fn a_receiver_opens_both_algorithms() {
    let c = Clocked::new();
    for send in AeadAlgorithm::ALL {
        for recv in AeadAlgorithm::ALL {
            let sender = c.auth(b"k").algorithm(send);
            let receiver = c.auth(b"k").algorithm(recv);
            let mut m = made(&sender, &request());
            receiver.check(&mut m, &ctx()).unwrap();
            assert_eq!(m, request());
        }
    }
}

#[test]
fn nonces_never_repeat() {
    let c = Clocked::new();
    for alg in AeadAlgorithm::ALL {
        let a = c.auth(b"k").algorithm(alg);
        let mut nonces: Vec<Bytes> = (0..200)
            .map(|_| made(&a, &request()).auth.get("nonce").unwrap().clone())
            .collect();
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 200, "{alg}");
    }
    // Two plugins with the same key (two processes) do not share a GCM nonce sequence.
    let x = made(
        &c.auth(b"k").algorithm(AeadAlgorithm::Aes256Gcm),
        &request(),
    );
    let y = made(
        &c.auth(b"k").algorithm(AeadAlgorithm::Aes256Gcm),
        &request(),
    );
    assert_ne!(x.auth.get("nonce"), y.auth.get("nonce"));
}

/// Every part of a sealed message changed, one at a time, is refused as `Invalid`; the refused
/// message is left as it was and nothing is recorded in the replay cache.
#[test]
fn tampering_with_any_field_is_refused() {
    let c = Clocked::new();
    for a in all(&c, b"secret") {
        let mut base = request();
        base.auth.insert("in.mac", vec![9u8; 32]);
        let sealed = made(&a, &base);
        let mut cases: Vec<(&str, Message)> = Vec::new();
        let mut m = sealed.clone();
        m.message_type = MessageType::SUBSCRIBE_URI;
        cases.push(("type byte", m));
        cases.push(("uri", sealed.clone().with_uri("echO")));
        let mut content = sealed.content().to_vec();
        content[0] ^= 1;
        cases.push(("ciphertext", sealed.clone().with_content(content)));
        let mut content = sealed.content().to_vec();
        *content.last_mut().unwrap() ^= 0x80;
        cases.push(("tag", sealed.clone().with_content(content)));
        let content = sealed.content().slice(..sealed.content().len() - 1);
        cases.push(("truncated", sealed.clone().with_content(content)));
        cases.push(("empty content", sealed.clone().with_content("")));
        let n = sealed.auth.get("nonce").unwrap().to_vec();
        for i in [0, 7, 8, n.len() - 1] {
            let mut m = sealed.clone();
            let mut n = n.clone();
            n[i] ^= 1;
            m.auth.insert("nonce", n);
            cases.push(("nonce byte", m));
        }
        let mut m = sealed.clone();
        m.auth.insert("ts", (T0 + 1).to_be_bytes().to_vec());
        cases.push(("timestamp", m));
        let mut m = sealed.clone();
        m.auth.insert("in.mac", vec![8u8; 32]);
        cases.push(("another plugin's field", m));
        let mut m = sealed.clone();
        m.set_request_id(43);
        cases.push(("request id", m));
        let mut m = sealed.clone();
        m.set_reply_ref(1);
        cases.push(("added field", m));
        let mut m = sealed.clone();
        m.auth.remove("rid");
        cases.push(("removed field", m));
        let mut m = sealed.clone();
        let renamed = m.auth.remove("in.mac").unwrap();
        m.auth.insert("in.maC", renamed);
        cases.push(("renamed field", m));
        // Moving bytes between the uri and the content keeps their concatenation.
        let (u, ct) = (sealed.uri().clone(), sealed.content().clone());
        let mut joined = u.to_vec();
        joined.extend_from_slice(&ct[..1]);
        cases.push((
            "uri/content boundary",
            sealed.clone().with_uri(joined).with_content(ct.slice(1..)),
        ));
        for (what, m) in cases {
            let mut got = m.clone();
            assert_eq!(
                a.check(&mut got, &ctx()),
                Err(AuthError::Invalid),
                "{what} ({})",
                label(&a)
            );
            assert_eq!(got, m, "{what}: a refused message is left as it was");
        }
        assert!(a.get_freshness().is_empty(), "{}", label(&a));
        a.check(&mut sealed.clone(), &ctx()).unwrap();
    }
}

/// The mode, the algorithm and the field names are bound: a message moved to the other mode, a
/// nonce padded to the other algorithm's length, or renamed fields do not open.
#[test]
fn mode_algorithm_and_field_names_are_bound() {
    let c = Clocked::new();
    let clear = c.auth(b"k");
    let hidden = c.auth(b"k").encrypt_uri(true);
    let m = made(&hidden, &Message::ok("", "x"));
    assert_eq!(clear.check(&mut m.clone(), &ctx()), Err(AuthError::Invalid));
    let m = made(&clear, &Message::ok("", "x"));
    assert_eq!(
        hidden.check(&mut m.clone(), &ctx()),
        Err(AuthError::Invalid)
    );

    let gcm = c.auth(b"k").algorithm(AeadAlgorithm::Aes256Gcm);
    let mut m = made(&gcm, &request());
    let mut n = m.auth.get("nonce").unwrap().to_vec();
    n.extend_from_slice(&[0; 4]);
    m.auth.insert("nonce", n);
    assert_eq!(gcm.check(&mut m, &ctx()), Err(AuthError::Invalid));

    let named = c.auth(b"k").nonce_field("n").ts_field("t");
    let mut m = made(&clear, &request());
    let (n, t) = (
        m.auth.remove("nonce").unwrap(),
        m.auth.remove("ts").unwrap(),
    );
    m.auth.insert("n", n);
    m.auth.insert("t", t);
    assert_eq!(named.check(&mut m, &ctx()), Err(AuthError::Invalid));
}

#[test]
fn wrong_key_is_refused() {
    let c = Clocked::new();
    for alg in AeadAlgorithm::ALL {
        let m = made(&c.auth(b"secret").algorithm(alg), &request());
        assert_eq!(
            c.auth(b"Secret").check(&mut m.clone(), &ctx()),
            Err(AuthError::Invalid),
            "{alg}"
        );
        let m = made(&AeadAuth::from_key([1; 32]).algorithm(alg), &request());
        assert_eq!(
            AeadAuth::from_key([2; 32]).check(&mut m.clone(), &ctx()),
            Err(AuthError::Invalid)
        );
        // The same secret keys HmacAuth and AeadCipher differently.
        let m = made(&c.auth(b"s").algorithm(alg), &request());
        for label in [HmacAuth::KDF_LABEL, AeadCipher::KDF_LABEL] {
            let other = AeadAuth::from_key(derive_key(label.as_bytes(), b"s"));
            assert_eq!(other.check(&mut m.clone(), &ctx()), Err(AuthError::Invalid));
        }
    }
    // `new` is `from_key` of the HKDF-Extract of the secret under the label.
    let m = made(&c.auth(b"s"), &request());
    let same = AeadAuth::from_key(derive_key(AeadAuth::KDF_LABEL.as_bytes(), b"s"))
        .freshness(c.freshness());
    same.check(&mut m.clone(), &ctx()).unwrap();
}

#[test]
fn replay_within_the_window_is_refused() {
    let c = Clocked::new();
    for a in all(&c, b"secret") {
        let sealed = made(&a, &request());
        a.check(&mut sealed.clone(), &ctx()).unwrap();
        assert_eq!(a.check(&mut sealed.clone(), &ctx()), Err(AuthError::Replay));
        c.set(T0 + 60);
        assert_eq!(a.check(&mut sealed.clone(), &ctx()), Err(AuthError::Replay));
        c.set(T0);
        // Two seals of the same message pass once each.
        let (x, y) = (made(&a, &request()), made(&a, &request()));
        a.check(&mut x.clone(), &ctx()).unwrap();
        a.check(&mut y.clone(), &ctx()).unwrap();
    }
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let sender = Clocked::new();
    let receiver = Clocked::new();
    for alg in AeadAlgorithm::ALL {
        let s = sender.auth(b"secret").algorithm(alg);
        let r = receiver.auth(b"secret");
        let sealed = made(&s, &request());
        receiver.set(T0 + 61);
        assert_eq!(
            r.check(&mut sealed.clone(), &ctx()),
            Err(AuthError::Stale {
                ts: T0,
                now: T0 + 61
            })
        );
        receiver.set(T0 - 61);
        assert!(matches!(
            r.check(&mut sealed.clone(), &ctx()),
            Err(AuthError::Stale { .. })
        ));
        assert!(r.get_freshness().is_empty());
        receiver.set(T0 + 60);
        r.check(&mut sealed.clone(), &ctx()).unwrap();
        receiver.set(T0);
    }
}

/// A node refuses its own message sent back to it; another node (another id) and a context
/// without a node id accept it. The node id is the nonce's first 8 bytes, authenticated.
#[test]
fn a_message_reflected_to_its_sender_is_refused() {
    let c = Clocked::new();
    for alg in AeadAlgorithm::ALL {
        // One plugin instance shared by both nodes (as in one process): the node id tells them
        // apart.
        let node = Plugins::new().auth(c.auth(b"secret").algorithm(alg));
        let sealed = seal(request(), &Plugins::new(), &node, &at(1)).unwrap();
        assert_eq!(
            &sealed.auth.get("nonce").unwrap()[..8],
            &1u64.to_be_bytes()[..]
        );
        let e = open_outer(sealed.clone(), &node, &at(1)).unwrap_err();
        assert!(
            matches!(
                e,
                OpenError::Auth {
                    source: AuthError::Reflected,
                    ..
                }
            ),
            "{e:?}"
        );
        // Refused before the replay cache: the other node accepts it, once.
        assert_eq!(
            open_outer(sealed.clone(), &node, &at(2)).unwrap(),
            request()
        );
        assert!(open_outer(sealed, &node, &at(2)).is_err());
        // Outside a node (no id) nothing is compared.
        let plain = seal(request(), &Plugins::new(), &node, &ctx()).unwrap();
        assert_eq!(open_outer(plain, &node, &at(1)).unwrap(), request());
    }
}

/// The sender the replay cache counts is the node id in the nonce: a node at its quota is held
/// back, another node is not.
#[test]
fn the_replay_cache_counts_nonces_per_sending_node() {
    let c = Clocked::new();
    let a = AeadAuth::new(b"k").freshness(c.freshness().per_sender(2));
    let from = |node: u64| {
        let mut m = request();
        a.make(&mut m, &at(node)).unwrap();
        m
    };
    a.check(&mut from(1), &at(9)).unwrap();
    a.check(&mut from(1), &at(9)).unwrap();
    // Node 1 is at its quota of 2 within its current second.
    assert_eq!(a.check(&mut from(1), &at(9)), Err(AuthError::CacheFull));
    // Node 2 is served.
    a.check(&mut from(2), &at(9)).unwrap();
    a.check(&mut from(2), &at(9)).unwrap();
}

#[test]
fn missing_and_malformed_fields_are_refused() {
    let c = Clocked::new();
    let a = c.auth(b"secret");
    let sealed = made(&a, &request());
    for name in ["nonce", "ts"] {
        let mut m = sealed.clone();
        m.auth.remove(name);
        assert_eq!(
            a.check(&mut m, &ctx()),
            Err(AuthError::MissingField(name.into())),
            "{name}"
        );
    }
    for (name, value) in [
        ("nonce", vec![0u8; 19]),
        ("nonce", vec![0u8; 25]),
        ("nonce", vec![]),
        ("ts", vec![0u8; 4]),
    ] {
        let mut m = sealed.clone();
        m.auth.insert(name, value);
        assert_eq!(
            a.check(&mut m, &ctx()),
            Err(AuthError::MalformedField(name.into())),
            "{name}"
        );
    }
    // A plain message.
    assert!(a.check(&mut request(), &ctx()).is_err());
}

#[test]
fn make_refuses_to_overwrite_its_fields() {
    let c = Clocked::new();
    for name in ["nonce", "ts"] {
        let mut m = request();
        m.auth.insert(name, "x");
        let before = m.clone();
        assert!(matches!(
            c.auth(b"s").make(&mut m, &ctx()),
            Err(AuthError::Other(_))
        ));
        assert_eq!(m, before);
    }
    // Two with the same names, inner and outer: refused when sealing.
    let outer = Plugins::new().auth(c.auth(b"outer"));
    let inner = Plugins::new().auth(c.auth(b"inner"));
    let err = seal(request(), &inner, &outer, &ctx()).unwrap_err();
    assert!(
        matches!(&err, SealError::Auth { stage: Stage::Outer, source: AuthError::Other(t) } if t.contains("already present")),
        "{err:?}"
    );
    // HmacAuth uses the same default names.
    let inner = Plugins::new().auth(HmacAuth::new(b"inner"));
    assert!(seal(request(), &inner, &outer, &ctx()).is_err());
}

/// An inner `AeadAuth` with its own names and secret under an instance one that hides the uri:
/// the instance layer opens before routing (which sees the uri), the inner one after; the outer
/// tag covers the inner fields.
#[test]
fn stacked_inner_and_instance_layers() {
    let c = Clocked::new();
    for alg in AeadAlgorithm::ALL {
        let outer = Plugins::new().auth(c.auth(b"outer").algorithm(alg).encrypt_uri(true));
        let inner = Plugins::new().auth(c.auth(b"inner").field_prefix("in."));
        let sealed = seal(request(), &inner, &outer, &ctx()).unwrap();
        assert!(sealed.uri().is_empty());
        assert!(sealed.auth.contains("in.nonce") && sealed.auth.contains("nonce"));
        let routed = open_outer(sealed.clone(), &outer, &ctx()).unwrap();
        assert_eq!(routed.uri().as_ref(), b"echo", "routing sees the uri");
        assert!(routed.auth.contains("in.nonce") && !routed.auth.contains("nonce"));
        assert_eq!(open_inner(routed, &inner, &ctx()).unwrap(), request());
        let mut m = sealed.clone();
        m.auth.insert("in.ts", (T0 + 1).to_be_bytes().to_vec());
        assert!(matches!(
            open_outer(m, &outer, &ctx()),
            Err(OpenError::Auth {
                stage: Stage::Outer,
                source: AuthError::Invalid
            })
        ));
    }
    // Under HmacAuth (prefixed) and with an AeadCipher in the cipher slot, it still composes.
    let node = Plugins::new()
        .auth(c.auth(b"k"))
        .cipher(AeadCipher::new(b"k"));
    let inner = Plugins::new().auth(HmacAuth::new(b"i").field_prefix("in."));
    let sealed = seal(request(), &inner, &node, &ctx()).unwrap();
    let routed = open_outer(sealed, &node, &ctx()).unwrap();
    assert_eq!(open_inner(routed, &inner, &ctx()).unwrap(), request());
}

#[test]
fn size_limit_counts_the_tag_and_uri_prefix() {
    let c = Clocked::new();
    let max = MAX_URI_AND_CONTENT;
    let a = c.auth(b"k");
    let fits = Message::ok("echo", vec![0u8; max - 4 - 16]);
    let m = made(&a, &fits);
    assert_eq!(m.uri().len() + m.content().len(), max);
    m.to_bytes(&PostcardCodec).unwrap();
    let mut over = Message::ok("echo", vec![0u8; max - 4 - 15]);
    let before = over.clone();
    assert_eq!(
        a.make(&mut over, &ctx()),
        Err(AuthError::TooLarge(EncodeError::BodyTooLarge {
            len: max + 1,
            max
        }))
    );
    assert_eq!(over, before, "nothing added");
    let hidden = c.auth(b"k").encrypt_uri(true);
    made(&hidden, &Message::ok("echo", vec![0u8; max - 2 - 4 - 16]));
    let mut over = Message::ok("echo", vec![0u8; max - 2 - 4 - 15]);
    assert!(matches!(
        hidden.make(&mut over, &ctx()),
        Err(AuthError::TooLarge(_))
    ));
}

#[test]
fn debug_shows_no_key() {
    let s = format!("{:?}", AeadAuth::from_key([0xab; 32]));
    assert!(s.contains("AeadAuth") && !s.contains("171") && !s.contains("ab, ab"));
}

fn arb_fields() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        Just("nonce".to_owned()),
        Just("ts".to_owned()),
        Just("rid".to_owned()),
        "[a-z]{0,6}",
    ];
    let value = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::vec(any::<u8>(), 20..=20),
        prop::collection::vec(any::<u8>(), 24..=24),
        prop::collection::vec(any::<u8>(), 8..=8),
    ];
    prop::collection::vec((name, value), 0..6)
}

proptest! {
    #[test]
    fn check_never_panics_and_leaves_a_refused_message_as_it_was(
        t in any::<u8>(),
        uri in prop::collection::vec(any::<u8>(), 0..32),
        content in prop::collection::vec(any::<u8>(), 0..64),
        fields in arb_fields(),
        hidden in any::<bool>(),
    ) {
        let a = AeadAuth::new(b"secret").encrypt_uri(hidden);
        let mut m = Message::new(MessageType::from_u8(t), uri, content);
        for (n, v) in fields {
            m.auth.insert(&n, v);
        }
        let before = m.clone();
        prop_assert!(a.check(&mut m, &ctx()).is_err());
        prop_assert_eq!(m, before);
    }

    /// Flipping any one bit of a sealed frame makes it fail to decode or to check.
    #[test]
    fn any_bit_flip_in_the_frame_is_rejected(
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
        gcm in any::<bool>(),
        hidden in any::<bool>(),
    ) {
        let c = Clocked::new();
        let alg = if gcm { AeadAlgorithm::Aes256Gcm } else { AeadAlgorithm::XChaCha20Poly1305 };
        let a = c.auth(b"secret").algorithm(alg).encrypt_uri(hidden);
        let sealed = made(&a, &request());
        let wire = sealed.to_bytes(&PostcardCodec).unwrap();
        let mut bytes = wire.to_vec();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(mut m) = Message::decode(Bytes::from(bytes), &PostcardCodec) {
            prop_assert!(a.check(&mut m, &ctx()).is_err(), "flip at {} accepted", i);
        }
    }

    #[test]
    fn round_trips_any_message(
        t in any::<u8>(),
        uri in prop::collection::vec(any::<u8>(), 0..32),
        content in prop::collection::vec(any::<u8>(), 0..200),
        gcm in any::<bool>(),
        hidden in any::<bool>(),
    ) {
        let alg = if gcm { AeadAlgorithm::Aes256Gcm } else { AeadAlgorithm::XChaCha20Poly1305 };
        let a = AeadAuth::new(b"k").algorithm(alg).encrypt_uri(hidden);
        let m = Message::new(MessageType::from_u8(t), uri, content);
        let mut sealed = m.clone();
        a.make(&mut sealed, &ctx()).unwrap();
        a.check(&mut sealed, &ctx()).unwrap();
        prop_assert_eq!(sealed, m);
    }
}

#[test]
fn one_name_for_both_fields_is_refused_when_sealing() {
    // The timestamp would overwrite the nonce, and every check would fail on the other side.
    let auth = AeadAuth::new(b"k").nonce_field("x").ts_field("x");
    let mut m = request();
    let e = auth.make(&mut m, &ctx()).unwrap_err();
    assert!(
        matches!(&e, AuthError::Other(s) if s.contains("\"x\"")),
        "{e}"
    );
    let hmac = HmacAuth::new(b"k").nonce_field("x").mac_field("x");
    let e = hmac.make(&mut request(), &ctx()).unwrap_err();
    assert!(
        matches!(&e, AuthError::Other(s) if s.contains("both named")),
        "{e}"
    );
    // Distinct names still seal and open.
    let auth = AeadAuth::new(b"k").nonce_field("x").ts_field("y");
    let mut m = made(&auth, &request());
    auth.check(&mut m, &ctx()).unwrap();
}
