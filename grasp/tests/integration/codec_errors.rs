//! Each way the decoder refuses input, with the typed error it names.

use netaio_grasp::wire::{DEFAULT_MAX_SIZE, MAX_DEPTH};
use netaio_grasp::{DecodeError, EncodeError, Message, MessageType, Objective, Value};

fn cbor(v: &Value) -> Vec<u8> {
    v.to_cbor().unwrap()
}

fn int(i: i64) -> Value {
    Value::from(i)
}

#[test]
fn a_message_over_the_limit_is_refused_before_it_is_read() {
    let big = Message::Invalid {
        session_id: 1,
        content: Some(Value::Bytes(vec![0; 3000])),
    };
    let bytes = big.encode().unwrap();
    assert_eq!(
        Message::decode(&bytes, DEFAULT_MAX_SIZE),
        Err(DecodeError::TooLong {
            len: bytes.len(),
            max: 2048
        })
    );
    // On a stream: once `max` bytes are buffered and the message is still incomplete.
    assert!(matches!(
        Message::decode_prefix(&bytes, DEFAULT_MAX_SIZE),
        Err(DecodeError::TooLong { max: 2048, .. })
    ));
    assert!(matches!(
        big.encode_limited(DEFAULT_MAX_SIZE),
        Err(EncodeError::TooLong { max: 2048, .. })
    ));
}

#[test]
fn a_message_of_exactly_2048_bytes_is_accepted() {
    // Pad the diagnostic so that the whole message is 2,048 bytes.
    let mut n = 2040;
    loop {
        let m = Message::Invalid {
            session_id: 1,
            content: Some(Value::Bytes(vec![7; n])),
        };
        let bytes = m.encode().unwrap();
        match bytes.len().cmp(&2048) {
            std::cmp::Ordering::Equal => {
                assert_eq!(Message::decode(&bytes, DEFAULT_MAX_SIZE).unwrap(), m);
                assert!(m.encode_limited(DEFAULT_MAX_SIZE).is_ok());
                return;
            }
            std::cmp::Ordering::Greater => n -= 1,
            std::cmp::Ordering::Less => n += 1,
        }
    }
}

#[test]
fn a_length_header_larger_than_the_input_is_truncated_not_allocated() {
    // A byte string claiming 2^32 bytes, an array claiming 2^32 items, a map claiming 2^62 pairs.
    for bytes in [
        vec![0x82, 0x01, 0x5a, 0xff, 0xff, 0xff, 0xff, 0x00],
        vec![0x9a, 0xff, 0xff, 0xff, 0xff, 0x00],
        vec![0xbb, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ] {
        assert_eq!(Message::decode(&bytes, 2048), Err(DecodeError::Truncated));
    }
}

#[test]
fn nesting_past_the_limit_is_refused() {
    let mut deep = vec![0x81u8; MAX_DEPTH + 5];
    deep.push(0x00);
    assert_eq!(
        Message::decode(&deep, 2048),
        Err(DecodeError::TooDeep { max: MAX_DEPTH })
    );
    let mut v = Value::Null;
    for _ in 0..MAX_DEPTH + 1 {
        v = Value::Array(vec![v]);
    }
    assert_eq!(v.to_cbor(), Err(EncodeError::TooDeep { max: MAX_DEPTH }));
}

#[test]
fn trailing_bytes_after_a_datagram_are_refused() {
    let mut bytes = Message::Noop.encode().unwrap();
    bytes.push(0);
    assert_eq!(
        Message::decode(&bytes, 2048),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn malformed_cbor_is_refused() {
    // A break outside an indefinite item; a reserved initial byte; text that is not UTF-8.
    for bytes in [
        vec![0x81, 0xff],
        vec![0x81, 0x1c],
        vec![0x82, 0x00, 0x61, 0xff],
    ] {
        assert!(
            matches!(
                Message::decode(&bytes, 2048),
                Err(DecodeError::Malformed { .. })
            ),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn not_a_message() {
    for v in [
        int(1),
        Value::Array(vec![]),
        Value::Array(vec!["x".into()]),
        Value::Array(vec![int(-1), int(1)]),
    ] {
        assert_eq!(
            Message::decode(&cbor(&v), 2048),
            Err(DecodeError::NotAMessage)
        );
    }
}

#[test]
fn an_unknown_type_keeps_its_session_id_for_an_invalid_answer() {
    let v = Value::Array(vec![int(42), int(77), "x".into()]);
    assert_eq!(
        Message::decode(&cbor(&v), 2048),
        Err(DecodeError::UnknownType {
            mtype: 42,
            session_id: Some(77)
        })
    );
}

#[test]
fn contents_that_break_the_cddl_are_invalid() {
    let obj = || cbor_obj(Objective::new("EX1"));
    let cases: Vec<(Value, MessageType)> = vec![
        // Session id over 32 bits.
        (
            Value::Array(vec![int(3), int(1 << 40), obj()]),
            MessageType::ReqNeg,
        ),
        // Initiator of 5 bytes.
        (
            Value::Array(vec![int(1), int(1), Value::Bytes(vec![0; 5]), obj()]),
            MessageType::Discovery,
        ),
        // Loop count 256.
        (
            Value::Array(vec![
                int(4),
                int(1),
                Value::Array(vec!["EX1".into(), int(0), int(256)]),
            ]),
            MessageType::ReqSyn,
        ),
        // A response without any locator.
        (
            Value::Array(vec![int(2), int(1), Value::Bytes(vec![0; 16]), int(0)]),
            MessageType::Response,
        ),
        // An empty divert option.
        (
            Value::Array(vec![
                int(2),
                int(1),
                Value::Bytes(vec![0; 16]),
                int(0),
                Value::Array(vec![int(100)]),
            ]),
            MessageType::Response,
        ),
        // M_END with a locator instead of accept/decline.
        (
            Value::Array(vec![int(6), int(1), Value::Array(vec![int(103)])]),
            MessageType::End,
        ),
        // M_WAIT with text.
        (
            Value::Array(vec![int(7), int(1), "soon".into()]),
            MessageType::Wait,
        ),
        // A flood with no objective, then one whose item is not a pair.
        (
            Value::Array(vec![int(9), int(1), Value::Bytes(vec![0; 16]), int(0)]),
            MessageType::Flood,
        ),
        (
            Value::Array(vec![
                int(9),
                int(1),
                Value::Bytes(vec![0; 16]),
                int(0),
                obj(),
            ]),
            MessageType::Flood,
        ),
        // M_INVALID with two diagnostic items.
        (
            Value::Array(vec![int(99), int(1), int(1), int(2)]),
            MessageType::Invalid,
        ),
    ];
    for (v, mtype) in cases {
        match Message::decode(&cbor(&v), 2048) {
            Err(DecodeError::Invalid { mtype: t, .. }) => assert_eq!(t, mtype, "{v:?}"),
            other => panic!("{v:?}: {other:?}"),
        }
    }
}

#[test]
fn a_response_option_of_another_message_type_is_ignored() {
    // [M_RESPONSE, 1, initiator, 0, [O_ACCEPT], [O_IPv6_LOCATOR, ::1, 6, 80]]
    let v = Value::Array(vec![
        int(2),
        int(1),
        Value::Bytes(vec![0; 16]),
        int(0),
        Value::Array(vec![int(101)]),
        Value::Array(vec![
            int(103),
            Value::Bytes(std::net::Ipv6Addr::LOCALHOST.octets().to_vec()),
            int(6),
            int(80),
        ]),
    ]);
    let Message::Response { options, .. } = Message::decode(&cbor(&v), 2048).unwrap() else {
        panic!("not a response");
    };
    assert_eq!(options.len(), 1);
}

#[test]
fn messages_breaking_the_cddl_are_not_encoded() {
    let r = Message::Response {
        session_id: 1,
        initiator: "::1".parse().unwrap(),
        ttl: 0,
        options: vec![],
        objective: None,
    };
    assert!(matches!(r.encode(), Err(EncodeError::Invalid { .. })));
    let f = Message::Flood {
        session_id: 1,
        initiator: "::1".parse().unwrap(),
        ttl: 0,
        items: vec![],
    };
    assert!(matches!(f.encode(), Err(EncodeError::Invalid { .. })));
    let big = Value::Integer(1i128 << 64);
    assert_eq!(
        big.to_cbor(),
        Err(EncodeError::IntegerOutOfRange(1i128 << 64))
    );
    assert_eq!(
        Value::Simple(22).to_cbor(),
        Err(EncodeError::ReservedSimple(22))
    );
}

fn cbor_obj(o: Objective) -> Value {
    let mut items = vec![
        Value::Text(o.name),
        int(o.flags.0 as i64),
        int(o.loop_count.into()),
    ];
    if let Some(v) = o.value {
        items.push(v);
    }
    Value::Array(items)
}
