//! Byte-for-byte reproduction of the test vectors recorded from Python netaio 0.0.9 (with packify
//! 0.4.0), `tests/fixtures/python-netaio-0.0.9-vectors.json`: every packify value and every frame,
//! encoded from its description and decoded back, with the same fixed nonces, IVs, timestamps and
//! uri splits Python used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::Bytes;
use netaio::compat::packify::{self, Int, Value};
use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher, PackifyCodec, PackifyPeerPlugin};
use netaio::message::{AuthFields, AuthFieldsCodec, Body, Header};
use netaio::plugin::{AuthPlugin, CipherPlugin, PeerPlugin, PluginContext};
use netaio::{Message, MessageType};
use serde_json::Value as Json;

const VECTORS: &str = include_str!("../fixtures/python-netaio-0.0.9-vectors.json");

fn vectors() -> Json {
    serde_json::from_str(VECTORS).expect("the fixture is JSON")
}

/// A packify value from the fixture's description (`{"type": ..., ...}`).
fn value_of(j: &Json) -> Value {
    let items = |j: &Json| -> Vec<Value> {
        j["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(value_of)
            .collect()
    };
    match j["type"].as_str().unwrap() {
        "none" => Value::None,
        "bool" => Value::Bool(j["value"].as_bool().unwrap()),
        "int" => {
            let v = &j["value"];
            match (v.as_i64(), v.as_u64()) {
                (Some(i), _) => Value::Int(Int::from(i)),
                (None, Some(u)) => Value::Int(Int::from(u)),
                _ => panic!("int out of range in the fixture: {v}"),
            }
        }
        "bytes" => Value::bytes(hex::decode(j["hex"].as_str().unwrap()).unwrap()),
        "str" => Value::from(j["value"].as_str().unwrap()),
        "tuple" => Value::Tuple(items(j)),
        "list" => Value::List(items(j)),
        "dict" => Value::Dict(
            j["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| (value_of(&pair[0]), value_of(&pair[1])))
                .collect(),
        ),
        other => panic!("unexpected type {other} in the fixture"),
    }
}

#[test]
fn the_fixture_has_what_the_reference_promises() {
    let v = vectors();
    assert_eq!(v["library"], "netaio 0.0.9, packify 0.4.0");
    assert_eq!(v["packify"].as_array().unwrap().len(), 29);
    assert_eq!(v["messages"].as_array().unwrap().len(), 17);
}

#[test]
fn every_packify_vector_encodes_and_decodes_byte_for_byte() {
    let v = vectors();
    for case in v["packify"].as_array().unwrap() {
        let value = value_of(&case["value"]);
        let expected = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        let encoded = packify::encode(&value).unwrap();
        assert_eq!(
            hex::encode(&encoded),
            hex::encode(&expected),
            "encoding of {value:?} differs from Python's"
        );
        assert_eq!(
            packify::decode(&expected).unwrap(),
            value,
            "decoding {case}"
        );
        // Python ignores bytes after a complete value; so do we.
        let mut longer = expected.clone();
        longer.extend_from_slice(b"\xff\x00\xff");
        let src = Bytes::from(longer);
        let (back, used) = packify::decode_prefix(&src).unwrap();
        assert_eq!((back, used), (value, expected.len()));
    }
}

/// The plugins a message vector used, with the fixed values Python was given.
struct Fixed {
    nonce: Vec<u8>,
    ts: u32,
    iv: [u8; 16],
    split: usize,
}

fn fixed(case: &Json) -> Fixed {
    let f = &case["fixed"];
    Fixed {
        nonce: hex::decode(f["nonce_hex"].as_str().unwrap()).unwrap(),
        ts: u32::try_from(f["ts"].as_u64().unwrap()).unwrap(),
        iv: hex::decode(f["iv_hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
        split: f["uri_split"].as_u64().map_or(0, |s| s as usize),
    }
}

fn plugins(case: &Json) -> (Option<LegacyHmacAuth>, Option<LegacySha256StreamCipher>) {
    let auth = case["hmac_secret"].as_str().map(LegacyHmacAuth::new);
    let cipher = case["cipher_key"].as_str().map(|k| {
        LegacySha256StreamCipher::new(k).encrypt_uri(case["encrypt_uri"].as_bool().unwrap())
    });
    (auth, cipher)
}

fn plain_message(case: &Json) -> Message {
    Message::new(
        MessageType::from_u8(u8::try_from(case["message_type"].as_u64().unwrap()).unwrap()),
        hex::decode(case["plain_uri_hex"].as_str().unwrap()).unwrap(),
        hex::decode(case["plain_content_hex"].as_str().unwrap()).unwrap(),
    )
}

/// Seal as Python's instance plugins do (cipher encrypt, then auth make), with the fixed values:
/// the HMAC plugin reuses a nonce and ts already in the fields, the cipher takes its IV and split.
fn seal_fixed(case: &Json, msg: Message) -> Message {
    let (auth, cipher) = plugins(case);
    let f = fixed(case);
    let ctx = PluginContext::default();
    let mut msg = msg;
    if auth.is_some() {
        msg.auth.insert("nonce", f.nonce.clone());
        msg.auth.insert("ts", f.ts.to_be_bytes().to_vec());
    }
    if let Some(c) = &cipher {
        msg = c.encrypt_with(msg, f.iv, f.split).unwrap();
    }
    if let Some(a) = &auth {
        a.make(&mut msg, &ctx).unwrap();
    }
    msg
}

#[test]
fn every_frame_is_reproduced_byte_for_byte_and_opens_back() {
    let v = vectors();
    let ctx = PluginContext::default();
    for case in v["messages"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let plain = plain_message(case);
        let sealed = seal_fixed(case, plain.clone());

        // Encode: the whole frame, and its parts.
        let wire = sealed.to_bytes(&PackifyCodec).unwrap();
        assert_eq!(
            hex::encode(&wire),
            case["wire_hex"].as_str().unwrap(),
            "{name}: frame differs from Python's"
        );
        let header = Header::from_bytes(&wire).unwrap();
        let h = &case["header"];
        assert_eq!(u64::from(header.message_type.value()), h["message_type"]);
        assert_eq!(u64::from(header.auth_length), h["auth_length"], "{name}");
        assert_eq!(u64::from(header.body_length), h["body_length"], "{name}");
        assert_eq!(u64::from(header.checksum), h["checksum"], "{name}");
        let auth_end = Header::LEN + usize::from(header.auth_length);
        assert_eq!(
            hex::encode(&wire[Header::LEN..auth_end]),
            case["auth_hex"],
            "{name}"
        );
        assert_eq!(hex::encode(&wire[auth_end..]), case["body_hex"], "{name}");

        // Decode Python's bytes: the auth fields are the recorded ones.
        let frame = Bytes::from(hex::decode(case["wire_hex"].as_str().unwrap()).unwrap());
        let mut received = Message::decode(frame, &PackifyCodec).unwrap();
        let recorded = PackifyCodec::fields_from_value(&value_of(&case["auth_fields"])).unwrap();
        assert_eq!(received.auth, recorded, "{name}: auth fields");
        assert_eq!(received, sealed, "{name}: decoded frame");

        // Open as Python's receiver does (auth check, then decrypt): the plain message is back.
        let (auth, cipher) = plugins(case);
        if let Some(a) = &auth {
            a.check(&mut received, &ctx).unwrap();
        }
        if let Some(c) = &cipher {
            received = c.decrypt(received, &ctx).unwrap();
        }
        assert_eq!(received, plain, "{name}: opened message");
    }
}

#[test]
fn frames_with_plugins_fail_their_checks_when_tampered_or_keyed_wrongly() {
    let v = vectors();
    let ctx = PluginContext::default();
    let mut checked = 0;
    for case in v["messages"].as_array().unwrap() {
        let Some(secret) = case["hmac_secret"].as_str() else {
            continue;
        };
        let frame = Bytes::from(hex::decode(case["wire_hex"].as_str().unwrap()).unwrap());
        let msg = Message::decode(frame, &PackifyCodec).unwrap();
        let wrong = LegacyHmacAuth::new(format!("{secret}!"));
        assert!(wrong.check(&mut msg.clone(), &ctx).is_err());
        let mut tampered = msg.clone();
        let mut content = tampered.content().to_vec();
        content.push(0);
        tampered.body.content = content.into();
        assert!(
            LegacyHmacAuth::new(secret)
                .check(&mut tampered, &ctx)
                .is_err()
        );
        checked += 1;
    }
    assert_eq!(
        checked, 4,
        "hmac_request, hmac_empty_body and the two with a cipher"
    );
}

#[test]
fn the_peer_vectors_pack_and_unpack_as_python_default_peer_plugin() {
    let v = vectors();
    for name in ["advertise_peer", "disconnect"] {
        let case = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let content =
            Bytes::from(hex::decode(case["plain_content_hex"].as_str().unwrap()).unwrap());
        assert_eq!(
            case["plain_uri_hex"],
            hex::encode(b"netaio"),
            "uri is the app id"
        );
        let peer = PackifyPeerPlugin.unpack(&content).unwrap();
        assert_eq!(peer.id.as_ref(), b"peer-id-0001");
        let data = PackifyPeerPlugin.decode_data(&peer.data).unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data["pubkey"].as_ref(), &[0xaa; 32]);
        PackifyPeerPlugin.validate(&peer).unwrap();

        // Built from scratch, the same bytes.
        let encoded = PackifyPeerPlugin.encode_data(&data).unwrap();
        assert_eq!(encoded, peer.data);
        let packed = PackifyPeerPlugin
            .pack(&netaio::peer::Peer::new("peer-id-0001").with_data(encoded))
            .unwrap();
        assert_eq!(hex::encode(&packed), hex::encode(&content), "{name}");
    }
}

#[test]
fn the_primitive_vectors_match() {
    let v = vectors();
    let h = &v["primitives"]["hmac"];
    let auth = LegacyHmacAuth::new(h["secret"].as_str().unwrap());
    let body = Body::decode(Bytes::from(
        hex::decode(h["body_hex"].as_str().unwrap()).unwrap(),
    ))
    .unwrap();
    let mac = auth.mac(
        &hex::decode(h["nonce_hex"].as_str().unwrap()).unwrap(),
        &hex::decode(h["ts_bytes_hex"].as_str().unwrap()).unwrap(),
        &body,
    );
    assert_eq!(hex::encode(mac), h["mac_hex"]);

    let s = &v["primitives"]["stream_cipher"];
    let cipher = LegacySha256StreamCipher::new(s["key"].as_str().unwrap());
    let iv = hex::decode(s["iv_hex"].as_str().unwrap()).unwrap();
    assert_eq!(
        hex::encode(cipher.keystream(&iv, 70)),
        s["keystream_70_hex"]
    );
    let pt = hex::decode(s["plaintext_hex"].as_str().unwrap()).unwrap();
    let ct: Vec<u8> = pt
        .iter()
        .zip(cipher.keystream(&iv, pt.len()))
        .map(|(p, k)| p ^ k)
        .collect();
    assert_eq!(hex::encode(&ct), s["ciphertext_hex"]);
}

#[test]
fn the_auth_block_round_trips_through_the_codec() {
    let fields: AuthFields = [
        ("nonce", vec![1u8; 16]),
        ("ts", vec![0x65, 0x53, 0xf1, 0x00]),
        ("hmac", vec![2u8; 32]),
        ("iv", vec![3u8; 16]),
    ]
    .into_iter()
    .collect();
    let mut buf = bytes::BytesMut::new();
    PackifyCodec.encode(&fields, &mut buf).unwrap();
    // The pairs in packify's order: ts, iv, hmac, nonce (by encoded length first).
    let decoded = packify::decode(&buf).unwrap();
    let names: Vec<&str> = decoded
        .as_dict()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(names, ["ts", "iv", "hmac", "nonce"]);
    assert_eq!(PackifyCodec.decode(&buf.freeze()).unwrap(), fields);
}
