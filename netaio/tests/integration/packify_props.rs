//! Properties of the packify codec: decoding never panics on any input, encode/decode round
//! trips, and the auth-fields codec agrees with the general encoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use netaio::compat::packify::{self, Int, Value};
use netaio::compat::{PackifyCodec, PackifyPeerPlugin};
use netaio::message::{AuthFields, AuthFieldsCodec, Message};
use netaio::plugin::PeerPlugin;
use proptest::prelude::*;

fn int() -> impl Strategy<Value = Int> {
    prop_oneof![
        any::<i64>().prop_map(Int::from),
        any::<u32>().prop_map(Int::from),
        (any::<bool>(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(neg, m)| Int::from_magnitude(neg, &m)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        int().prop_map(Value::Int),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::bytes),
        ".{0,12}".prop_map(Value::from),
    ]
}

/// Values of the subset; dict keys are unique (str keys, or int keys).
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::btree_map("[a-z]{0,6}", inner.clone(), 0..6).prop_map(|m| {
                Value::Dict(m.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
            }),
            prop::collection::btree_map(any::<i32>(), inner, 0..4).prop_map(|m| {
                Value::Dict(m.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
            }),
        ]
    })
}

fn auth_fields() -> impl Strategy<Value = AuthFields> {
    prop::collection::btree_map(".{0,10}", prop::collection::vec(any::<u8>(), 0..80), 0..8)
        .prop_map(|m| m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let src = Bytes::from(data);
        if let Ok((_, used)) = packify::decode_prefix(&src) {
            prop_assert!(used <= src.len());
        }
        let _ = PackifyCodec.decode(&src);
        let _ = PackifyPeerPlugin.unpack(&src);
        let _ = PackifyPeerPlugin.decode_data(&src);
    }

    #[test]
    fn decode_never_panics_on_damaged_encodings(
        v in value(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = packify::encode(&v).unwrap();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= b;
        }
        let _ = packify::decode(&bytes);
        let _ = packify::decode(&bytes[..cut.index(bytes.len() + 1)]);
    }

    #[test]
    fn encode_then_decode_gives_the_value_back(v in value()) {
        let bytes = packify::encode(&v).unwrap();
        let src = Bytes::from(bytes.clone());
        let (back, used) = packify::decode_prefix(&src).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(&back, &v);
        // The encoding is canonical: the decoded value encodes to the same bytes.
        prop_assert_eq!(packify::encode(&back).unwrap(), bytes);
    }

    #[test]
    fn a_truncated_encoding_is_an_error(v in value(), cut in any::<prop::sample::Index>()) {
        let bytes = packify::encode(&v).unwrap();
        let n = cut.index(bytes.len());
        prop_assert!(packify::decode(&bytes[..n]).is_err(), "{} of {} bytes decoded", n, bytes.len());
    }

    #[test]
    fn the_auth_codec_is_packify_of_a_str_to_bytes_dict(fields in auth_fields()) {
        let mut buf = BytesMut::new();
        PackifyCodec.encode(&fields, &mut buf).unwrap();
        let general = Value::Dict(
            fields
                .iter()
                .map(|(k, v)| (Value::from(k), Value::Bytes(v.clone())))
                .collect(),
        );
        prop_assert_eq!(&buf[..], &packify::encode(&general).unwrap()[..]);
        prop_assert_eq!(PackifyCodec.decode(&buf.freeze()).unwrap(), fields.clone());
        // And a whole message carries them.
        let msg = Message { auth: fields, ..Message::ok("u", "c") };
        let frame = msg.to_bytes(&PackifyCodec).unwrap();
        prop_assert_eq!(Message::decode(frame, &PackifyCodec).unwrap(), msg);
    }
}
