//! Identity derivation (checked against the Python reference vectors), public keys in peer data,
//! and the peer plugin's validation.

// The helpers below are test code too (clippy only relaxes these lints inside `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::Bytes;
use ed25519_dalek::Signer;
use netaio::peer::{Peer, PeerData};
use netaio::plugin::{PeerError, PeerPlugin, PostcardPeerPlugin};
use netaio_asymmetric::{AsymmetricPeerPlugin, ED25519_FIELD, Identity, PublicKeys, X25519_FIELD};

/// Python netaio 0.0.9, asymmetric.py: seed 32 × 01 and 32 × 02 give these X25519 public keys
/// (`SHA-512(seed)[0..32]` clamped, as PyNaCl's `to_curve25519_private_key`).
#[test]
fn x25519_public_key_matches_python_vectors() {
    let a = Identity::from_seed([1; 32]);
    let b = Identity::from_seed([2; 32]);
    assert_eq!(
        a.public_keys().x25519.to_vec(),
        hex::decode("1b1b58dd50ea14b60da17b790cd02754d970c9bab864ebb3c0f3016fe51d3f57").unwrap()
    );
    assert_eq!(
        b.public_keys().x25519.to_vec(),
        hex::decode("60346e7c911a5f6ba154129174cafe75b294ac3bbd5549632f48cec6266f8410").unwrap()
    );
}

/// The Ed25519 half: seed 32 × 01 gives the Python vkey, and signing the Python tapescript
/// message gives the Python signature (Ed25519 is deterministic).
#[test]
fn ed25519_key_and_signature_match_python_vectors() {
    let a = Identity::from_seed([1; 32]);
    assert_eq!(
        a.public_keys().ed25519.to_vec(),
        hex::decode("8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c").unwrap()
    );
    let msg =
        hex::decode("00046563686f68656c6c6f000102030405060708090a0b0c0d0e0f6553f100").unwrap();
    let sig = a.signing_key().sign(&msg);
    assert_eq!(
        sig.to_bytes().to_vec(),
        hex::decode(concat!(
            "ee9fc1a5a5b15da97ad942e368e6c6cd06753f904d438af7924c57cdee64aa9b",
            "77780d1bf7d7c57a7a9f9d21331567671362d25607181b9aa950391e6e493803"
        ))
        .unwrap()
    );
    assert!(a.verifying_key().verify_strict(&msg, &sig).is_ok());
}

/// The X25519 scalar is the Ed25519 signing scalar, so the X25519 public key is the Ed25519 key
/// mapped to Montgomery form.
#[test]
fn x25519_key_is_the_birational_map_of_the_ed25519_key() {
    for _ in 0..8 {
        let id = Identity::generate();
        assert_eq!(
            id.verifying_key().to_montgomery().to_bytes(),
            id.public_keys().x25519
        );
    }
}

#[test]
fn from_seed_is_deterministic_and_generate_is_random() {
    let seed = [7; 32];
    assert_eq!(
        Identity::from_seed(seed).public_keys(),
        Identity::from_seed(seed).public_keys()
    );
    assert_eq!(Identity::from_seed(seed).seed(), &seed);
    let (a, b) = (Identity::generate(), Identity::generate());
    assert_ne!(a.seed(), b.seed());
    assert_ne!(a.public_keys(), b.public_keys());
    // Round trip through the stored seed.
    assert_eq!(
        Identity::from_seed(*a.seed()).public_keys(),
        a.public_keys()
    );
}

#[test]
fn debug_does_not_print_the_seed() {
    let id = Identity::from_seed([0xab; 32]);
    let shown = format!("{id:?}");
    assert!(!shown.contains("abab"), "{shown}");
    assert!(!shown.contains("171, 171"), "{shown}");
    assert!(shown.contains("PublicKeys"));
}

#[test]
fn peer_carries_both_keys_and_extra_data() {
    let id = Identity::generate();
    let peer = id.peer("node-1").unwrap();
    assert_eq!(peer.id.as_ref(), b"node-1");
    assert_eq!(PublicKeys::from_peer(&peer).unwrap(), id.public_keys());
    // The encoding is the core postcard peer encoding.
    let data = PostcardPeerPlugin.decode_data(&peer.data).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[X25519_FIELD].as_ref(), id.public_keys().x25519);
    assert_eq!(data[ED25519_FIELD].as_ref(), id.public_keys().ed25519);

    let mut extra = PeerData::new();
    extra.insert("name".into(), Bytes::from_static(b"alice"));
    extra.insert(X25519_FIELD.into(), Bytes::from_static(b"stale")); // overwritten
    let peer = id.peer_with("n", extra).unwrap();
    let data = AsymmetricPeerPlugin.decode_data(&peer.data).unwrap();
    assert_eq!(data["name"].as_ref(), b"alice");
    assert_eq!(PublicKeys::from_data(&data).unwrap(), id.public_keys());
    assert!(AsymmetricPeerPlugin.validate(&peer).is_ok());

    // pack/unpack keeps id and data.
    let packed = AsymmetricPeerPlugin.pack(&peer).unwrap();
    let back = AsymmetricPeerPlugin.unpack(&packed).unwrap();
    assert_eq!((back.id, back.data), (peer.id, peer.data));
}

fn peer_with(entries: &[(&str, &[u8])]) -> Peer {
    let data: PeerData = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Bytes::copy_from_slice(v)))
        .collect();
    Peer::new("p").with_data(AsymmetricPeerPlugin.encode_data(&data).unwrap())
}

fn invalid(peer: &Peer) -> String {
    match AsymmetricPeerPlugin.validate(peer) {
        Err(PeerError::Invalid(why)) => why,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn validate_rejects_missing_or_malformed_keys() {
    let keys = Identity::generate().public_keys();
    let (x, e) = (&keys.x25519[..], &keys.ed25519[..]);

    assert!(
        AsymmetricPeerPlugin
            .validate(&peer_with(&[(X25519_FIELD, x), (ED25519_FIELD, e)]))
            .is_ok()
    );

    assert!(invalid(&peer_with(&[(ED25519_FIELD, e)])).contains("x25519"));
    assert!(invalid(&peer_with(&[(X25519_FIELD, x)])).contains("ed25519"));
    assert!(
        invalid(&peer_with(&[(X25519_FIELD, &x[..31]), (ED25519_FIELD, e)])).contains("31 bytes")
    );
    assert!(
        invalid(&peer_with(&[
            (X25519_FIELD, x),
            (ED25519_FIELD, &[e, &[0][..]].concat())
        ]))
        .contains("33 bytes")
    );
    assert!(invalid(&peer_with(&[])).contains("no x25519"));
    // Empty id.
    let mut nameless = peer_with(&[(X25519_FIELD, x), (ED25519_FIELD, e)]);
    nameless.id = Bytes::new();
    assert!(invalid(&nameless).contains("empty id"));
    // Undecodable data.
    let garbage = Peer::new("p").with_data(Bytes::from_static(b"\xff\xff\xff"));
    assert!(matches!(
        AsymmetricPeerPlugin.validate(&garbage),
        Err(PeerError::Malformed(_))
    ));
}

#[test]
fn validate_rejects_unusable_curve_points() {
    let keys = Identity::generate().public_keys();
    let (x, e) = (&keys.x25519[..], &keys.ed25519[..]);

    // X25519 points of small order: u = 0 and u = 1.
    let mut one = [0u8; 32];
    one[0] = 1;
    for small in [[0u8; 32], one] {
        let why = invalid(&peer_with(&[(X25519_FIELD, &small), (ED25519_FIELD, e)]));
        assert!(why.contains("x25519 key has small order"), "{why}");
    }
    // Ed25519: y = 1 is the identity (small order); y = 2 is not on the curve.
    let why = invalid(&peer_with(&[(X25519_FIELD, x), (ED25519_FIELD, &one)]));
    assert!(why.contains("small order"), "{why}");
    let mut two = [0u8; 32];
    two[0] = 2;
    let why = invalid(&peer_with(&[(X25519_FIELD, x), (ED25519_FIELD, &two)]));
    assert!(why.contains("not a valid point"), "{why}");
}

#[test]
fn public_keys_data_round_trip_and_debug_hex() {
    let keys = Identity::from_seed([1; 32]).public_keys();
    assert_eq!(PublicKeys::from_data(&keys.to_data()).unwrap(), keys);
    assert!(keys.check().is_ok());
    assert_eq!(keys.verifying_key().unwrap().to_bytes(), keys.ed25519);
    let shown = format!("{keys:?}");
    assert!(shown.contains("1b1b58dd"), "{shown}");
}
