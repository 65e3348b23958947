//! Byte-level vectors from the Python prototype (graspy, `grasp.py` version RFC8990-BC-20260821):
//! each hex string is what its encoder (`_ass_message`, with cbor2) produced for the message
//! named, run by hand against a checkout of its repository (its code is not part of this
//! project). Each vector must decode to the message shown and encode back to the same bytes.

use std::net::IpAddr;

use netaio_grasp::{Flags, FloodItem, Locator, Message, Objective, Outcome, ResponseOption, Value};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ini() -> IpAddr {
    "fd00:231::1".parse().unwrap()
}

fn obj(name: &str, flags: u64, lc: u8, value: Option<Value>) -> Objective {
    Objective {
        name: name.into(),
        flags: Flags(flags),
        loop_count: lc,
        value,
    }
}

fn nzd150() -> Value {
    Value::Array(vec!["NZD".into(), 150.into()])
}

fn one_two_three() -> Value {
    Value::Array(vec![1.into(), "two".into(), 3.into()])
}

fn v6(a: &str, port: u16) -> Locator {
    Locator::Ipv6 {
        addr: a.parse().unwrap(),
        protocol: 6,
        port,
    }
}

/// Decodes to `m` and encodes back to the same bytes.
fn check(hexs: &str, m: Message) {
    let bytes = hex(hexs);
    assert_eq!(Message::decode(&bytes, 2048).unwrap(), m, "{hexs}");
    assert_eq!(m.encode().unwrap(), bytes, "{m:?}");
}

#[test]
fn graspy_vectors_decode_and_encode_back_byte_for_byte() {
    check("8100", Message::Noop);
    // graspy sends an absent value as null: the objective has four items.
    check(
        "84011adeadbeef50fd00023100000000000000000000000184634558330306f6",
        Message::Discovery {
            session_id: 0xdead_beef,
            initiator: ini(),
            objective: obj("EX3", 3, 6, Some(Value::Null)),
        },
    );
    check(
        "85021adeadbeef50fd0002310000000000000000000000011a000927c084186750fd00023100000000000000000000000206199c41",
        Message::Response {
            session_id: 0xdead_beef,
            initiator: ini(),
            ttl: 600_000,
            options: vec![ResponseOption::Locator(v6("fd00:231::2", 40001))],
            objective: None,
        },
    );
    check(
        "86021adeadbeef50fd0002310000000000000000000000011a000927c084186750fd00023100000000000000000000000206199c418463455832050483016374776f03",
        Message::Response {
            session_id: 0xdead_beef,
            initiator: ini(),
            ttl: 600_000,
            options: vec![ResponseOption::Locator(v6("fd00:231::2", 40001))],
            objective: Some(obj("EX2", 5, 4, Some(one_two_three()))),
        },
    );
    // The divert format of the fixed prototype (its divertBug.md): one option, locators inline.
    check(
        "85020150fd0002310000000000000000000000011a000923d883186484186750fd00023200000000000000000000000306199c4284186750fd00023200000000000000000000000406199c43",
        Message::Response {
            session_id: 1,
            initiator: ini(),
            ttl: 599_000,
            options: vec![ResponseOption::Divert(vec![
                v6("fd00:232::3", 40002),
                v6("fd00:232::4", 40003),
            ])],
            objective: None,
        },
    );
    check(
        "83031a123456788463455833030882634e5a441896",
        Message::ReqNeg {
            session_id: 0x1234_5678,
            objective: obj("EX3", 3, 8, Some(nzd150())),
        },
    );
    check(
        "8304078463455832050483016374776f03",
        Message::ReqSyn {
            session_id: 7,
            objective: obj("EX2", 5, 4, Some(one_two_three())),
        },
    );
    check(
        "83051a123456788463455833030882634e5a441896",
        Message::Negotiate {
            session_id: 0x1234_5678,
            objective: obj("EX3", 3, 8, Some(nzd150())),
        },
    );
    check(
        "830605811865",
        Message::End {
            session_id: 5,
            outcome: Outcome::Accept,
        },
    );
    check(
        "83060582186670496e76616c69642063757272656e6379",
        Message::End {
            session_id: 5,
            outcome: Outcome::Decline(Some("Invalid currency".into())),
        },
    );
    check(
        "830605811866",
        Message::End {
            session_id: 5,
            outcome: Outcome::Decline(None),
        },
    );
    check(
        "830705190bb8",
        Message::Wait {
            session_id: 5,
            waiting_ms: 3000,
        },
    );
    check(
        "8308078463455832050483016374776f03",
        Message::Synch {
            session_id: 7,
            objective: obj("EX2", 5, 4, Some(one_two_three())),
        },
    );
    check(
        "8509186350fd000231000000000000000000000001192710828463455831050467666c6f6f64203180",
        Message::Flood {
            session_id: 99,
            initiator: ini(),
            ttl: 10_000,
            items: vec![FloodItem {
                objective: obj("EX1", 5, 4, Some("flood 1".into())),
                locator: None,
            }],
        },
    );
    check(
        "8509186350fd00023100000000000000000000000100828463455831050467666c6f6f64203184186750fd00023100000000000000000000000106191b69",
        Message::Flood {
            session_id: 99,
            initiator: ini(),
            ttl: 0,
            items: vec![FloodItem {
                objective: obj("EX1", 5, 4, Some("flood 1".into())),
                locator: Some(v6("fd00:231::1", 7017)),
            }],
        },
    );
    check(
        "8318630569537572707269736521",
        Message::Invalid {
            session_id: 5,
            content: Some("Surprise!".into()),
        },
    );
    // A value the prototype wraps in tag 24 (bytes that are CBOR themselves).
    let tagged = obj(
        "EX3",
        3,
        8,
        Some(Value::Tag(
            24,
            Box::new(Value::Bytes(nzd150().to_cbor().unwrap())),
        )),
    );
    check(
        "83031a1234567884634558330308d8184782634e5a441896",
        Message::ReqNeg {
            session_id: 0x1234_5678,
            objective: tagged.clone(),
        },
    );
    assert_eq!(
        tagged.value.unwrap().decode_embedded_cbor().unwrap(),
        nzd150()
    );
}
