//! X25519Cipher: round trips, wrong keys, tampering, missing fields, unknown peers, the key cache,
//! and a property test that decrypt never panics.

// The helpers below are test code too (clippy only relaxes these lints inside `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use bytes::Bytes;
use common::{ctx, wire};
use netaio::message::{EncodeError, MAX_URI_AND_CONTENT};
use netaio::peer::{Peer, PeerData};
use netaio::plugin::{CipherError, CipherPlugin, PeerPlugin, PluginContext, PostcardPeerPlugin};
use netaio::{Message, MessageType};
use netaio_asymmetric::cipher::{DEFAULT_NONCE_FIELD, NONCE_LEN, overhead};
use netaio_asymmetric::{AsymmetricPeerPlugin, Identity, X25519_FIELD, X25519Cipher};
use proptest::prelude::*;

struct Party {
    id: Identity,
    peer: Peer,
    cipher: X25519Cipher,
}

fn party(name: &str) -> Party {
    let id = Identity::generate();
    Party {
        peer: id.peer(name.to_owned()).unwrap(),
        cipher: X25519Cipher::new(&id),
        id,
    }
}

fn pair() -> (Party, Party) {
    (party("alice"), party("bob"))
}

/// Alice seals for Bob; returns the sealed message.
fn seal(a: &Party, b: &Party, msg: &Message) -> Message {
    a.cipher.encrypt(msg.clone(), &ctx(&b.peer)).unwrap()
}

/// Bob opens what came from Alice.
fn open(b: &Party, a: &Party, msg: Message) -> Result<Message, CipherError> {
    b.cipher.decrypt(msg, &ctx(&a.peer))
}

#[test]
fn round_trip_through_the_wire() {
    let (a, b) = pair();
    for msg in [
        Message::ok("echo", "hello"),
        Message::new(MessageType::custom(200), "", ""),
        Message::new(MessageType::PUBLISH_URI, "topic/1", vec![0u8; 1000]),
    ] {
        let sealed = seal(&a, &b, &msg);
        assert_eq!(sealed.uri(), msg.uri(), "uri stays in clear by default");
        assert_eq!(
            sealed.content().len(),
            msg.content().len() + overhead(false)
        );
        if !msg.content().is_empty() {
            assert_ne!(&sealed.content()[..msg.content().len()], &msg.content()[..]);
        }
        assert_eq!(
            sealed.auth.get(DEFAULT_NONCE_FIELD).unwrap().len(),
            NONCE_LEN
        );
        let opened = open(&b, &a, wire(&sealed)).unwrap();
        assert_eq!(
            opened, msg,
            "the nonce field is removed and the body restored"
        );
    }
}

#[test]
fn both_directions_work_and_other_fields_survive() {
    let (a, b) = pair();
    let mut msg = Message::ok("x", "from alice");
    msg.set_request_id(42);
    let opened = open(&b, &a, seal(&a, &b, &msg)).unwrap();
    assert_eq!(opened.request_id(), Some(42));
    assert_eq!(opened, msg);
    let reply = Message::ok("x", "from bob");
    assert_eq!(open(&a, &b, seal(&b, &a, &reply)).unwrap(), reply);
}

#[test]
fn encrypted_uri_round_trip_hides_the_uri() {
    let a = party("alice");
    let b = party("bob");
    let (ca, cb) = (
        X25519Cipher::new(&a.id).encrypt_uri(true),
        X25519Cipher::new(&b.id).encrypt_uri(true),
    );
    let msg = Message::new(MessageType::REQUEST_URI, "secret/path", "body");
    let sealed = ca.encrypt(msg.clone(), &ctx(&b.peer)).unwrap();
    assert!(sealed.uri().is_empty());
    assert_eq!(
        sealed.content().len(),
        "secret/path".len() + "body".len() + overhead(true)
    );
    assert!(!sealed.content().windows(6).any(|w| w == b"secret"));
    assert_eq!(cb.decrypt(wire(&sealed), &ctx(&a.peer)).unwrap(), msg);
    // A receiver expecting a clear uri fails cleanly (the mode is bound as associated data).
    assert_eq!(open(&b, &a, sealed.clone()), Err(CipherError::Decrypt));
    // And the other way round.
    let clear = seal(&a, &b, &msg);
    assert_eq!(cb.decrypt(clear, &ctx(&a.peer)), Err(CipherError::Decrypt));
}

#[test]
fn each_message_gets_a_fresh_nonce() {
    let (a, b) = pair();
    let msg = Message::ok("u", "same");
    let s1 = seal(&a, &b, &msg);
    let s2 = seal(&a, &b, &msg);
    assert_ne!(
        s1.auth.get(DEFAULT_NONCE_FIELD),
        s2.auth.get(DEFAULT_NONCE_FIELD)
    );
    assert_ne!(s1.content(), s2.content());
}

#[test]
fn wrong_keys_are_rejected() {
    let (a, b) = pair();
    let eve = party("eve");
    let sealed = seal(&a, &b, &Message::ok("u", "for bob"));
    // Eve cannot open a message for Bob, even knowing Alice is the sender.
    assert_eq!(open(&eve, &a, sealed.clone()), Err(CipherError::Decrypt));
    // Bob, believing it came from Eve, cannot either.
    assert_eq!(open(&b, &eve, sealed.clone()), Err(CipherError::Decrypt));
    // A message Alice sent to Bob cannot be reflected back to Alice as if from Bob: each
    // direction has its own key.
    assert_eq!(open(&a, &b, sealed.clone()), Err(CipherError::Decrypt));
    // Still fine for Bob.
    assert!(open(&b, &a, sealed).is_ok());
}

#[test]
fn tampering_is_detected() {
    let (a, b) = pair();
    let msg = Message::new(MessageType::REQUEST_URI, "echo", "hello world");
    let sealed = seal(&a, &b, &msg);

    let mut t = sealed.clone();
    t.message_type = MessageType::SUBSCRIBE_URI;
    assert_eq!(open(&b, &a, t), Err(CipherError::Decrypt), "type byte");

    let t = sealed.clone().with_uri("echp");
    assert_eq!(open(&b, &a, t), Err(CipherError::Decrypt), "uri");

    let t = sealed.clone().with_uri("");
    assert_eq!(open(&b, &a, t), Err(CipherError::Decrypt), "uri removed");

    for i in 0..sealed.content().len() {
        let mut c = sealed.content().to_vec();
        c[i] ^= 0x01;
        let t = sealed.clone().with_content(c);
        assert_eq!(
            open(&b, &a, t),
            Err(CipherError::Decrypt),
            "content byte {i}"
        );
    }
    let short = sealed.content().slice(..sealed.content().len() - 1);
    assert_eq!(
        open(&b, &a, sealed.clone().with_content(short)),
        Err(CipherError::Decrypt)
    );

    let mut nonce = sealed.auth.get(DEFAULT_NONCE_FIELD).unwrap().to_vec();
    nonce[0] ^= 0x80;
    let mut t = sealed.clone();
    t.auth.insert(DEFAULT_NONCE_FIELD, nonce);
    assert_eq!(open(&b, &a, t), Err(CipherError::Decrypt), "nonce");

    assert_eq!(open(&b, &a, sealed), Ok(msg));
}

#[test]
fn missing_or_malformed_nonce_field_is_rejected() {
    let (a, b) = pair();
    let sealed = seal(&a, &b, &Message::ok("u", "x"));
    let mut t = sealed.clone();
    t.auth.remove(DEFAULT_NONCE_FIELD);
    assert_eq!(
        open(&b, &a, t),
        Err(CipherError::MissingField(DEFAULT_NONCE_FIELD.into()))
    );
    for len in [0, 12, 23, 25] {
        let mut t = sealed.clone();
        t.auth.insert(DEFAULT_NONCE_FIELD, vec![0u8; len]);
        assert_eq!(
            open(&b, &a, t),
            Err(CipherError::MalformedField(DEFAULT_NONCE_FIELD.into())),
            "nonce of {len} bytes"
        );
    }
    // A plain message that was never encrypted.
    assert_eq!(
        open(&b, &a, Message::ok("u", "plain text")),
        Err(CipherError::MissingField(DEFAULT_NONCE_FIELD.into()))
    );
}

#[test]
fn custom_nonce_field_name() {
    let (a, b) = pair();
    let ca = X25519Cipher::new(&a.id).nonce_field("iv");
    let cb = X25519Cipher::new(&b.id).nonce_field("iv");
    let msg = Message::ok("u", "x");
    let sealed = ca.encrypt(msg.clone(), &ctx(&b.peer)).unwrap();
    assert!(sealed.auth.contains("iv") && !sealed.auth.contains(DEFAULT_NONCE_FIELD));
    assert_eq!(cb.decrypt(sealed.clone(), &ctx(&a.peer)).unwrap(), msg);
    assert_eq!(
        open(&b, &a, sealed),
        Err(CipherError::MissingField(DEFAULT_NONCE_FIELD.into()))
    );
}

#[test]
fn refuses_to_overwrite_its_field() {
    let (a, b) = pair();
    let once = seal(&a, &b, &Message::ok("u", "x"));
    let err = a.cipher.encrypt(once, &ctx(&b.peer)).unwrap_err();
    assert!(
        matches!(err, CipherError::Other(ref s) if s.contains("already present")),
        "{err:?}"
    );
}

#[test]
fn unknown_peer_key_is_a_typed_error_both_ways() {
    let (a, b) = pair();
    let msg = Message::ok("u", "x");
    let sealed = seal(&a, &b, &msg);

    // No peer at all.
    let none = PluginContext::default();
    assert_eq!(
        a.cipher.encrypt(msg.clone(), &none),
        Err(CipherError::UnknownKey)
    );
    assert_eq!(
        b.cipher.decrypt(sealed.clone(), &none),
        Err(CipherError::UnknownKey)
    );

    // A peer without keys, with a key of the wrong length, with undecodable data.
    let keyless = Peer::new("bob");
    let mut short = PeerData::new();
    short.insert(X25519_FIELD.into(), Bytes::from_static(&[9; 31]));
    let short = Peer::new("bob").with_data(AsymmetricPeerPlugin.encode_data(&short).unwrap());
    let garbage = Peer::new("bob").with_data(Bytes::from_static(b"\xff\xff"));
    for peer in [&keyless, &short, &garbage] {
        assert_eq!(
            a.cipher.encrypt(msg.clone(), &ctx(peer)),
            Err(CipherError::UnknownKey)
        );
        assert_eq!(
            b.cipher.decrypt(sealed.clone(), &ctx(peer)),
            Err(CipherError::UnknownKey)
        );
    }

    // A small-order key (u = 0) would give a known shared secret: refused as unknown.
    let mut zero = PeerData::new();
    zero.insert(X25519_FIELD.into(), Bytes::from_static(&[0; 32]));
    let zero = Peer::new("z").with_data(AsymmetricPeerPlugin.encode_data(&zero).unwrap());
    assert_eq!(
        a.cipher.encrypt(msg.clone(), &ctx(&zero)),
        Err(CipherError::UnknownKey)
    );
    assert_eq!(
        b.cipher.decrypt(sealed, &ctx(&zero)),
        Err(CipherError::UnknownKey)
    );
}

#[test]
fn peer_data_decodes_with_the_core_plugin_or_without_one() {
    let (a, b) = pair();
    let msg = Message::ok("u", "x");
    let core = PluginContext {
        peer: Some(&b.peer),
        peer_plugin: Some(&PostcardPeerPlugin),
        ..Default::default()
    };
    let sealed = a.cipher.encrypt(msg.clone(), &core).unwrap();
    let bare = PluginContext {
        peer: Some(&a.peer),
        ..Default::default()
    };
    assert_eq!(b.cipher.decrypt(sealed, &bare).unwrap(), msg);
}

#[test]
fn too_large_is_reported_not_truncated() {
    let (a, b) = pair();
    let fits = Message::ok("", vec![7u8; MAX_URI_AND_CONTENT - overhead(false)]);
    let sealed = seal(&a, &b, &fits);
    assert_eq!(sealed.content().len(), MAX_URI_AND_CONTENT);
    assert_eq!(open(&b, &a, wire(&sealed)).unwrap(), fits);

    let over = Message::ok("", vec![7u8; MAX_URI_AND_CONTENT - overhead(false) + 1]);
    assert!(matches!(
        a.cipher.encrypt(over, &ctx(&b.peer)),
        Err(CipherError::TooLarge(EncodeError::BodyTooLarge { .. }))
    ));
}

#[test]
fn key_cache_is_bounded_and_optional() {
    let a = party("alice");
    let cipher = X25519Cipher::new(&a.id).key_cache(3);
    let msg = Message::ok("u", "x");
    let peers: Vec<Party> = (0..5).map(|i| party(&format!("p{i}"))).collect();
    for (i, p) in peers.iter().enumerate() {
        cipher.encrypt(msg.clone(), &ctx(&p.peer)).unwrap();
        assert_eq!(cipher.cached_peers(), (i + 1).min(3));
    }
    // Evicted keys are derived again, identically.
    let sealed = cipher.encrypt(msg.clone(), &ctx(&peers[0].peer)).unwrap();
    assert_eq!(peers[0].cipher.decrypt(sealed, &ctx(&a.peer)).unwrap(), msg);
    assert_eq!(cipher.cached_peers(), 3);

    let uncached = X25519Cipher::new(&a.id).key_cache(0);
    let b = party("bob");
    let sealed = uncached.encrypt(msg.clone(), &ctx(&b.peer)).unwrap();
    assert_eq!(uncached.cached_peers(), 0);
    assert_eq!(b.cipher.decrypt(sealed, &ctx(&a.peer)).unwrap(), msg);
}

#[test]
fn is_peer_specific() {
    assert!(party("a").cipher.is_peer_specific());
}

fn arb_message() -> impl Strategy<Value = Message> {
    (
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(
            (
                prop_oneof![Just("xnonce".to_owned()), "[a-z]{1,6}"],
                proptest::collection::vec(any::<u8>(), 0..40),
            ),
            0..4,
        ),
    )
        .prop_map(|(t, uri, content, fields)| {
            let mut m = Message::new(MessageType::from_u8(t), uri, content);
            for (k, v) in fields {
                m.auth.insert(&k, v);
            }
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary messages never decrypt (a forgery would need the key) and never panic, with
    /// either mode.
    #[test]
    fn decrypt_of_arbitrary_input_fails_cleanly(msg in arb_message(), encrypt_uri in any::<bool>()) {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let cipher = X25519Cipher::new(&b).encrypt_uri(encrypt_uri);
        let peer = a.peer("a").unwrap();
        let r = cipher.decrypt(msg, &ctx(&peer));
        prop_assert!(r.is_err());
    }

    /// Tampering with any one byte of a genuine sealed message's content is detected.
    #[test]
    fn sealed_round_trip_and_bit_flips(
        uri in proptest::collection::vec(any::<u8>(), 0..30),
        content in proptest::collection::vec(any::<u8>(), 0..300),
        encrypt_uri in any::<bool>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let (pa, pb) = (a.peer("a").unwrap(), b.peer("b").unwrap());
        let ca = X25519Cipher::new(&a).encrypt_uri(encrypt_uri);
        let cb = X25519Cipher::new(&b).encrypt_uri(encrypt_uri);
        let msg = Message::ok(uri, content);
        let sealed = ca.encrypt(msg.clone(), &ctx(&pb)).unwrap();
        prop_assert_eq!(cb.decrypt(sealed.clone(), &ctx(&pa)).unwrap(), msg);
        let mut c = sealed.content().to_vec();
        let i = flip.index(c.len());
        c[i] ^= 1 << bit;
        prop_assert_eq!(cb.decrypt(sealed.with_content(c), &ctx(&pa)), Err(CipherError::Decrypt));
    }
}
