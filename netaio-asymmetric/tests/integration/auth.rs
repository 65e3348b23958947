//! Ed25519Auth: round trips (peer-data key and allow-list by key id), wrong keys, tampering,
//! freshness and replay, missing and malformed fields, the trust rules, stacking with the cipher,
//! and a property test that check never panics.

// The helpers below are test code too (clippy only relaxes these lints inside `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use common::{T0, clock, ctx, wire};
use netaio::message::fields::REQUEST_ID;
use netaio::peer::{Peer, PeerData};
use netaio::plugin::{
    AuthError, AuthPlugin, OpenError, PeerPlugin, PluginContext, Plugins, Stage, open_inner,
    open_outer, seal,
};
use netaio::{Message, MessageType};
use netaio_asymmetric::auth::{key_id, signed_bytes};
use netaio_asymmetric::{
    AsymmetricPeerPlugin, ED25519_FIELD, Ed25519Auth, Identity, X25519_FIELD, X25519Cipher,
};
use proptest::prelude::*;

const FIELDS: [&str; 4] = ["ts", "nonce", "sig", "kid"];

fn signer(id: &Identity) -> Ed25519Auth {
    Ed25519Auth::new(id).freshness(clock(60).0)
}

/// Alice signs a message; Bob knows her as a peer.
struct Setup {
    alice: Identity,
    alice_peer: Peer,
    signer: Ed25519Auth,
    verifier: Ed25519Auth,
    now: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

fn setup() -> Setup {
    let alice = Identity::generate();
    let (fresh, now) = clock(60);
    Setup {
        alice_peer: alice.peer("alice").unwrap(),
        signer: signer(&alice),
        verifier: Ed25519Auth::new(&Identity::generate()).freshness(fresh),
        alice,
        now,
    }
}

fn signed(s: &Setup, msg: Message) -> Message {
    let mut msg = msg;
    s.signer.make(&mut msg, &PluginContext::default()).unwrap();
    msg
}

fn check(s: &Setup, mut msg: Message) -> Result<Message, AuthError> {
    s.verifier
        .check(&mut msg, &ctx(&s.alice_peer))
        .map(|()| msg)
}

#[test]
fn round_trip_with_the_peer_data_key() {
    let s = setup();
    let mut original = Message::new(MessageType::CREATE_URI, "things/1", "payload");
    original.set_request_id(7);
    let sent = signed(&s, original.clone());
    for f in FIELDS {
        assert!(sent.auth.contains(f), "{f}");
    }
    assert_eq!(sent.auth.get("ts").unwrap().as_ref(), T0.to_be_bytes());
    assert_eq!(sent.auth.get("nonce").unwrap().len(), 16);
    assert_eq!(sent.auth.get("sig").unwrap().len(), 64);
    assert_eq!(
        sent.auth.get("kid").unwrap().as_ref(),
        key_id(&s.alice.verifying_key())
    );
    let got = check(&s, wire(&sent)).unwrap();
    assert_eq!(got, original, "own fields removed, others (rid) kept");
}

#[test]
fn round_trip_with_the_allow_list_and_no_peer() {
    let s = setup();
    let verifier = Ed25519Auth::new(&Identity::generate())
        .freshness(clock(60).0)
        .allow(Identity::generate().verifying_key())
        .allow(s.alice.verifying_key());
    let mut msg = signed(&s, Message::ok("u", "c"));
    verifier.check(&mut msg, &PluginContext::default()).unwrap();
    assert_eq!(msg, Message::ok("u", "c"));
}

#[test]
fn the_signature_is_over_the_documented_bytes() {
    let s = setup();
    let sent = signed(&s, Message::new(MessageType::REQUEST_URI, "echo", "hello"));
    let nonce = sent.auth.get("nonce").unwrap().clone();
    let bytes = signed_bytes(
        sent.message_type,
        sent.uri(),
        &sent.auth,
        ["ts", "nonce", "sig"],
        sent.content(),
        T0,
        &nonce,
    );
    let mut expected = Vec::new();
    expected.extend_from_slice(&28u32.to_be_bytes());
    expected.extend_from_slice(b"netaio-asymmetric/ed25519/v1");
    expected.push(0);
    expected.extend_from_slice(&4u32.to_be_bytes());
    expected.extend_from_slice(b"echo");
    expected.extend_from_slice(&1u32.to_be_bytes()); // one other field: kid
    expected.extend_from_slice(&3u32.to_be_bytes());
    expected.extend_from_slice(b"kid");
    expected.extend_from_slice(&8u32.to_be_bytes());
    expected.extend_from_slice(&key_id(&s.alice.verifying_key()));
    expected.extend_from_slice(&5u32.to_be_bytes());
    expected.extend_from_slice(b"hello");
    expected.extend_from_slice(&T0.to_be_bytes());
    expected.extend_from_slice(&16u32.to_be_bytes());
    expected.extend_from_slice(&nonce);
    assert_eq!(bytes, expected);
    let sig: [u8; 64] = sent.auth.get("sig").unwrap().as_ref().try_into().unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    assert!(s.alice.verifying_key().verify_strict(&bytes, &sig).is_ok());
}

#[test]
fn wrong_keys_are_rejected() {
    let s = setup();
    let sent = signed(&s, Message::ok("u", "c"));
    // Bob thinks the sender is Mallory (another peer key): the signature does not verify.
    let mallory = Identity::generate().peer("mallory").unwrap();
    assert_eq!(
        s.verifier.check(&mut sent.clone(), &ctx(&mallory)),
        Err(AuthError::Invalid)
    );
    // Mallory signs with her own key but claims Alice's key id: refused.
    let forger = signer(&Identity::generate());
    let mut forged = Message::ok("u", "c");
    forger.make(&mut forged, &PluginContext::default()).unwrap();
    forged
        .auth
        .insert("kid", key_id(&s.alice.verifying_key()).to_vec());
    let allow = Ed25519Auth::new(&Identity::generate())
        .freshness(clock(60).0)
        .allow(s.alice.verifying_key());
    assert_eq!(
        allow.check(&mut forged, &PluginContext::default()),
        Err(AuthError::Invalid)
    );
    // Against Alice's real key via her peer data: still invalid.
    assert_eq!(check(&s, forged), Err(AuthError::Invalid));
}

#[test]
fn tampering_is_detected() {
    let s = setup();
    let mut original = Message::new(MessageType::REQUEST_URI, "echo", "hello");
    original.auth.insert("iv", vec![1u8; 16]);
    let sent = signed(&s, original);
    type Tamper = fn(&mut Message);
    let cases: [(&str, Tamper); 9] = [
        ("type byte", |m| m.message_type = MessageType::SUBSCRIBE_URI),
        ("uri", |m| m.body.uri = Bytes::from_static(b"echp")),
        ("content", |m| m.body.content = Bytes::from_static(b"hellO")),
        ("nonce", |m| {
            let mut n = m.auth.get("nonce").unwrap().to_vec();
            n[15] ^= 1;
            m.auth.insert("nonce", n);
        }),
        ("timestamp", |m| {
            m.auth.insert("ts", (T0 + 1).to_be_bytes().to_vec());
        }),
        ("other field (cipher iv)", |m| {
            m.auth.insert("iv", vec![2u8; 16]);
        }),
        ("added field", |m| {
            m.auth.insert(REQUEST_ID, vec![9]);
        }),
        ("removed other field", |m| {
            m.auth.remove("iv");
        }),
        ("signature", |m| {
            let mut sig = m.auth.get("sig").unwrap().to_vec();
            sig[0] ^= 1;
            m.auth.insert("sig", sig);
        }),
    ];
    for (what, tamper) in cases {
        let mut t = sent.clone();
        tamper(&mut t);
        assert_eq!(check(&s, t), Err(AuthError::Invalid), "{what}");
    }
    // Failed checks recorded nothing: the genuine message is still accepted once.
    assert!(check(&s, sent.clone()).is_ok());
    assert_eq!(check(&s, sent), Err(AuthError::Replay));
}

#[test]
fn key_id_is_covered_when_the_peer_key_is_used() {
    let s = setup();
    let sent = signed(&s, Message::ok("u", "c"));
    let mut t = sent.clone();
    t.auth.insert("kid", vec![0u8; 8]);
    assert_eq!(check(&s, t), Err(AuthError::Invalid));
}

#[test]
fn replay_within_the_window_is_rejected() {
    let s = setup();
    let sent = signed(&s, Message::ok("u", "c"));
    assert!(check(&s, sent.clone()).is_ok());
    s.now.store(T0 + 59, Ordering::SeqCst);
    assert_eq!(check(&s, sent.clone()), Err(AuthError::Replay));
    // A new message (new nonce) is fine.
    assert!(check(&s, signed(&s, Message::ok("u", "c"))).is_ok());
}

#[test]
fn stale_and_future_timestamps_are_rejected() {
    let s = setup();
    let sent = signed(&s, Message::ok("u", "c"));
    s.now.store(T0 + 61, Ordering::SeqCst);
    assert_eq!(
        check(&s, sent.clone()),
        Err(AuthError::Stale {
            ts: T0,
            now: T0 + 61
        })
    );
    s.now.store(T0 - 61, Ordering::SeqCst);
    assert_eq!(
        check(&s, sent.clone()),
        Err(AuthError::Stale {
            ts: T0,
            now: T0 - 61
        })
    );
    // The window edge is inclusive.
    s.now.store(T0 + 60, Ordering::SeqCst);
    assert!(check(&s, sent).is_ok());
}

#[test]
fn missing_fields_are_rejected() {
    let s = setup();
    let sent = signed(&s, Message::ok("u", "c"));
    for f in ["ts", "nonce", "sig"] {
        let mut t = sent.clone();
        t.auth.remove(f);
        assert_eq!(check(&s, t), Err(AuthError::MissingField(f.into())), "{f}");
    }
    assert_eq!(
        check(&s, Message::ok("u", "c")),
        Err(AuthError::MissingField("sig".into()))
    );
    // Without a peer, the key id is needed to find the key on the allow-list.
    let allow = Ed25519Auth::new(&Identity::generate())
        .freshness(clock(60).0)
        .allow(s.alice.verifying_key());
    let mut t = sent.clone();
    t.auth.remove("kid");
    assert_eq!(
        allow.check(&mut t, &PluginContext::default()),
        Err(AuthError::MissingField("kid".into()))
    );
}

#[test]
fn malformed_fields_are_rejected() {
    let s = setup();
    let sent = signed(&s, Message::ok("u", "c"));
    for (f, len) in [
        ("ts", 4),
        ("ts", 9),
        ("nonce", 15),
        ("nonce", 32),
        ("sig", 63),
        ("sig", 0),
    ] {
        let mut t = sent.clone();
        t.auth.insert(f, vec![0u8; len]);
        assert_eq!(
            check(&s, t),
            Err(AuthError::MalformedField(f.into())),
            "{f} of {len}"
        );
    }
    let allow = Ed25519Auth::new(&Identity::generate())
        .freshness(clock(60).0)
        .allow(s.alice.verifying_key());
    let mut t = sent.clone();
    t.auth.insert("kid", vec![0u8; 32]);
    assert_eq!(
        allow.check(&mut t, &PluginContext::default()),
        Err(AuthError::MalformedField("kid".into()))
    );
}

#[test]
fn unknown_keys_are_a_typed_error() {
    let s = setup();
    let sent = signed(&s, Message::ok("u", "c"));
    let none = PluginContext::default();
    // No peer and no allow-list.
    assert_eq!(
        s.verifier.check(&mut sent.clone(), &none),
        Err(AuthError::UnknownKey)
    );
    // A peer without an ed25519 key.
    let keyless = Peer::new("alice");
    assert_eq!(
        s.verifier.check(&mut sent.clone(), &ctx(&keyless)),
        Err(AuthError::UnknownKey)
    );
    // An allow-list without the signer.
    let other = Ed25519Auth::new(&Identity::generate())
        .freshness(clock(60).0)
        .allow(Identity::generate().verifying_key());
    assert_eq!(
        other.check(&mut sent.clone(), &none),
        Err(AuthError::UnknownKey)
    );
    // A peer key that is not a curve point.
    let mut bad = PeerData::new();
    let mut two = [0u8; 32];
    two[0] = 2;
    bad.insert(ED25519_FIELD.into(), Bytes::copy_from_slice(&two));
    let bad = Peer::new("x").with_data(AsymmetricPeerPlugin.encode_data(&bad).unwrap());
    assert_eq!(
        s.verifier.check(&mut sent.clone(), &ctx(&bad)),
        Err(AuthError::UnknownKey)
    );
}

#[test]
fn untrusted_peer_keys_need_the_allow_list() {
    let s = setup();
    let sent = signed(&s, Message::ok("u", "c"));
    let strict = Ed25519Auth::new(&Identity::generate())
        .freshness(clock(60).0)
        .trust_peer_keys(false);
    assert_eq!(
        strict.check(&mut sent.clone(), &ctx(&s.alice_peer)),
        Err(AuthError::UnknownKey)
    );
    let strict = strict.allow(s.alice.verifying_key());
    assert!(strict.check(&mut sent.clone(), &ctx(&s.alice_peer)).is_ok());
    // A peer whose data names another key: with untrusted peer keys, the allow-list (by key id)
    // still decides.
    let liar = Identity::generate().peer("alice").unwrap();
    let strict2 = Ed25519Auth::new(&Identity::generate())
        .freshness(clock(60).0)
        .trust_peer_keys(false)
        .allow(s.alice.verifying_key());
    assert!(strict2.check(&mut sent.clone(), &ctx(&liar)).is_ok());
}

#[test]
fn weak_peer_key_never_verifies() {
    // A small-order ed25519 key in the peer data: verify_strict refuses everything.
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut data = PeerData::new();
    data.insert(ED25519_FIELD.into(), Bytes::copy_from_slice(&one));
    data.insert(X25519_FIELD.into(), Bytes::copy_from_slice(&[9; 32]));
    let weak = Peer::new("w").with_data(AsymmetricPeerPlugin.encode_data(&data).unwrap());
    let mut msg = Message::ok("u", "c");
    let (fresh, _) = clock(60);
    msg.auth.insert("ts", T0.to_be_bytes().to_vec());
    msg.auth.insert("nonce", vec![0u8; 16]);
    msg.auth.insert("sig", vec![0u8; 64]);
    let v = Ed25519Auth::new(&Identity::generate()).freshness(fresh);
    assert_eq!(v.check(&mut msg, &ctx(&weak)), Err(AuthError::Invalid));
}

#[test]
fn make_refuses_to_overwrite_its_fields() {
    let s = setup();
    for f in FIELDS {
        let mut m = Message::ok("u", "c");
        m.auth.insert(f, vec![1]);
        let err = s
            .signer
            .make(&mut m, &PluginContext::default())
            .unwrap_err();
        assert!(
            matches!(err, AuthError::Other(ref t) if t.contains(f)),
            "{f}: {err:?}"
        );
    }
    // Signing twice is the same mistake.
    let mut m = signed(&s, Message::ok("u", "c"));
    assert!(s.signer.make(&mut m, &PluginContext::default()).is_err());
}

#[test]
fn configurable_field_names_and_no_key_id() {
    let alice = Identity::generate();
    let named = |a: Ed25519Auth| {
        a.ts_field("t")
            .nonce_field("n")
            .sig_field("s")
            .key_id_field("k")
            .freshness(clock(60).0)
    };
    let signer = named(Ed25519Auth::new(&alice)).send_key_id(false);
    let verifier = named(Ed25519Auth::new(&Identity::generate()));
    let mut m = Message::ok("u", "c");
    signer.make(&mut m, &PluginContext::default()).unwrap();
    let names: Vec<&str> = m.auth.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["n", "s", "t"]);
    let peer = alice.peer("a").unwrap();
    verifier.check(&mut m, &ctx(&peer)).unwrap();
    assert!(m.auth.is_empty());
}

#[test]
fn error_reply_and_flags() {
    let s = setup();
    let reply = s.signer.error_reply(&AuthError::Invalid);
    assert_eq!(reply.message_type, MessageType::AUTH_ERROR);
    assert_eq!(reply.uri().as_ref(), b"ERROR");
    assert!(!s.signer.is_peer_specific());
    assert!(!s.signer.is_blocking());
}

/// X25519Cipher + Ed25519Auth through the fixed pipeline, as instance plugins: encrypt, then sign
/// the ciphertext (and the cipher's nonce field).
#[test]
fn stacked_with_the_cipher_in_the_pipeline() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let (pa, pb) = (alice.peer("alice").unwrap(), bob.peer("bob").unwrap());
    let at_alice = Plugins::new()
        .cipher(X25519Cipher::new(&alice))
        .auth(Ed25519Auth::new(&alice).freshness(clock(60).0));
    let at_bob = Plugins::new()
        .cipher(X25519Cipher::new(&bob))
        .auth(Ed25519Auth::new(&bob).freshness(clock(60).0));
    let msg = Message::ok("echo", "secret");
    let sealed = seal(msg.clone(), &Plugins::new(), &at_alice, &ctx(&pb)).unwrap();
    assert!(sealed.auth.contains("xnonce") && sealed.auth.contains("sig"));
    let frame = wire(&sealed);

    // The cipher's nonce is signed: changing it fails the signature before decryption.
    let mut t = frame.clone();
    t.auth.insert("xnonce", vec![0u8; 24]);
    assert!(matches!(
        open_outer(t, &at_bob, &ctx(&pa)),
        Err(OpenError::Auth {
            stage: Stage::Outer,
            source: AuthError::Invalid
        })
    ));

    let opened = open_outer(frame.clone(), &at_bob, &ctx(&pa)).unwrap();
    assert_eq!(open_inner(opened, &Plugins::new(), &ctx(&pa)).unwrap(), msg);
    assert!(matches!(
        open_outer(frame, &at_bob, &ctx(&pa)),
        Err(OpenError::Auth {
            source: AuthError::Replay,
            ..
        })
    ));

    // As inner plugins (one handler), under no instance plugins.
    let sealed = seal(msg.clone(), &at_alice, &Plugins::new(), &ctx(&pb)).unwrap();
    let routed = open_outer(sealed, &Plugins::new(), &ctx(&pa)).unwrap();
    assert_eq!(open_inner(routed, &at_bob, &ctx(&pa)).unwrap(), msg);
}

fn arb_message() -> impl Strategy<Value = Message> {
    (
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("ts".to_owned()),
                    Just("nonce".to_owned()),
                    Just("sig".to_owned()),
                    Just("kid".to_owned()),
                    "[a-z]{1,6}"
                ],
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..80),
                    proptest::collection::vec(any::<u8>(), 8..=8),
                    proptest::collection::vec(any::<u8>(), 16..=16),
                    proptest::collection::vec(any::<u8>(), 64..=64),
                ],
            ),
            0..6,
        ),
        any::<u64>(),
    )
        .prop_map(|(t, uri, content, fields, ts)| {
            let mut m = Message::new(MessageType::from_u8(t), uri, content);
            for (k, v) in fields {
                m.auth.insert(&k, v);
            }
            if ts % 2 == 0 {
                // Often a fresh timestamp, so the check gets past the window.
                m.auth.insert("ts", T0.to_be_bytes().to_vec());
            }
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary fields and content never pass the check and never panic, with a peer key or
    /// with the allow-list.
    #[test]
    fn check_of_arbitrary_input_fails_cleanly(msg in arb_message(), with_peer in any::<bool>()) {
        let alice = Identity::from_seed([1; 32]);
        let peer = alice.peer("a").unwrap();
        let verifier = Ed25519Auth::new(&Identity::from_seed([2; 32]))
            .freshness(clock(60).0)
            .allow(alice.verifying_key());
        let mut m = msg;
        let r = if with_peer {
            verifier.check(&mut m, &ctx(&peer))
        } else {
            verifier.check(&mut m, &PluginContext::default())
        };
        prop_assert!(r.is_err());
    }
}
