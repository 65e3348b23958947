//! Property tests of the codec: every message, option and value round-trips; arbitrary bytes
//! (random, and mutations of valid messages) never panic the decoder.

use netaio_grasp::{DecodeError, Message, Value};
use proptest::prelude::*;

use crate::strategies;

/// Large enough for anything the strategies make.
const BIG: usize = 1 << 20;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips(m in strategies::message()) {
        let bytes = m.encode().unwrap();
        prop_assert_eq!(Message::decode(&bytes, BIG).unwrap(), m.clone());
        // On a stream, the same message is found at the head of a buffer holding more.
        let mut stream = bytes.clone();
        stream.extend_from_slice(&Message::Noop.encode().unwrap());
        let (first, used) = Message::decode_prefix(&stream, BIG).unwrap();
        prop_assert_eq!(first, m);
        prop_assert_eq!(used, bytes.len());
        // Every proper prefix is truncated, never anything else.
        for cut in [0, bytes.len() / 2, bytes.len() - 1] {
            prop_assert_eq!(Message::decode_prefix(&bytes[..cut], BIG).err(), Some(DecodeError::Truncated));
        }
    }

    #[test]
    fn every_value_round_trips(v in strategies::value()) {
        let bytes = v.to_cbor().unwrap();
        prop_assert_eq!(Value::from_cbor(&bytes).unwrap(), v.clone());
        let wrapped = Value::embedded_cbor(&v).unwrap();
        prop_assert_eq!(wrapped.decode_embedded_cbor().unwrap(), v);
    }

    #[test]
    fn every_locator_round_trips_in_a_flood_and_a_divert(l in strategies::locator()) {
        let flood = Message::Flood {
            session_id: 1,
            initiator: "fd00::1".parse().unwrap(),
            ttl: 0,
            items: vec![netaio_grasp::FloodItem { objective: netaio_grasp::Objective::new("EX1"), locator: Some(l.clone()) }],
        };
        prop_assert_eq!(Message::decode(&flood.encode().unwrap(), BIG).unwrap(), flood);
        let divert = Message::Response {
            session_id: 1,
            initiator: "fd00::1".parse().unwrap(),
            ttl: 0,
            options: vec![netaio_grasp::ResponseOption::Divert(vec![l.clone(), l])],
            objective: None,
        };
        prop_assert_eq!(Message::decode(&divert.encode().unwrap(), BIG).unwrap(), divert);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = Message::decode(&bytes, 2048);
        let _ = Message::decode_prefix(&bytes, 2048);
        let _ = Value::from_cbor(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        m in strategies::message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = m.encode().unwrap();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let _ = Message::decode(&bytes, BIG);
        let _ = Message::decode_prefix(&bytes, 64);
    }
}
