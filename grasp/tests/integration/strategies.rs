//! proptest strategies for every GRASP message, option and CBOR value.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netaio_grasp::{Flags, FloodItem, Locator, Message, Objective, Outcome, ResponseOption, Value};
use proptest::prelude::*;

/// Any CBOR value, nested a few levels (floats without NaN, which is not equal to itself).
pub fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        (-(1i128 << 64)..(1i128 << 64)).prop_map(Value::Integer),
        any::<i64>().prop_map(|i| Value::Integer(i.into())),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
        ".{0,12}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(Value::Undefined),
        prop_oneof![0u8..20, 32u8..=255].prop_map(Value::Simple),
        any::<f64>()
            .prop_filter("NaN", |f| !f.is_nan())
            .prop_map(Value::Float),
        any::<f32>()
            .prop_filter("NaN", |f| !f.is_nan())
            .prop_map(|f| Value::Float(f.into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            (any::<u64>(), inner).prop_map(|(t, v)| Value::Tag(t, Box::new(v))),
        ]
    })
}

pub fn objective() -> impl Strategy<Value = Objective> {
    (
        ".{0,16}",
        any::<u64>(),
        any::<u8>(),
        proptest::option::of(value()),
    )
        .prop_map(|(name, flags, loop_count, value)| Objective {
            name,
            flags: Flags(flags),
            loop_count,
            value,
        })
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
    ]
}

pub fn locator() -> impl Strategy<Value = Locator> {
    prop_oneof![
        (any::<[u8; 16]>(), any::<u8>(), any::<u16>()).prop_map(|(a, protocol, port)| {
            Locator::Ipv6 {
                addr: a.into(),
                protocol,
                port,
            }
        }),
        (any::<[u8; 4]>(), any::<u8>(), any::<u16>()).prop_map(|(a, protocol, port)| {
            Locator::Ipv4 {
                addr: a.into(),
                protocol,
                port,
            }
        }),
        (".{0,20}", any::<u8>(), any::<u16>()).prop_map(|(name, protocol, port)| Locator::Fqdn {
            name,
            protocol,
            port
        }),
        (
            ".{0,20}",
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u16>())
        )
            .prop_map(|(uri, protocol, port)| Locator::Uri {
                uri,
                protocol,
                port
            }),
    ]
}

fn response_option() -> impl Strategy<Value = ResponseOption> {
    prop_oneof![
        locator().prop_map(ResponseOption::Locator),
        proptest::collection::vec(locator(), 1..4).prop_map(ResponseOption::Divert),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Accept),
        proptest::option::of(".{0,20}").prop_map(Outcome::Decline),
    ]
}

/// Every message type, with valid contents.
pub fn message() -> impl Strategy<Value = Message> {
    let sid = any::<u32>();
    prop_oneof![
        Just(Message::Noop),
        (sid, ip(), objective()).prop_map(|(session_id, initiator, objective)| {
            Message::Discovery {
                session_id,
                initiator,
                objective,
            }
        }),
        (
            sid,
            ip(),
            any::<u32>(),
            proptest::collection::vec(response_option(), 1..4),
            proptest::option::of(objective())
        )
            .prop_map(|(session_id, initiator, ttl, options, objective)| {
                Message::Response {
                    session_id,
                    initiator,
                    ttl,
                    options,
                    objective,
                }
            }),
        (sid, objective()).prop_map(|(session_id, objective)| Message::ReqNeg {
            session_id,
            objective
        }),
        (sid, objective()).prop_map(|(session_id, objective)| Message::ReqSyn {
            session_id,
            objective
        }),
        (sid, objective()).prop_map(|(session_id, objective)| Message::Negotiate {
            session_id,
            objective
        }),
        (sid, outcome()).prop_map(|(session_id, outcome)| Message::End {
            session_id,
            outcome
        }),
        (sid, any::<u32>()).prop_map(|(session_id, waiting_ms)| Message::Wait {
            session_id,
            waiting_ms
        }),
        (sid, objective()).prop_map(|(session_id, objective)| Message::Synch {
            session_id,
            objective
        }),
        (
            sid,
            ip(),
            any::<u32>(),
            proptest::collection::vec((objective(), proptest::option::of(locator())), 1..4)
        )
            .prop_map(|(session_id, initiator, ttl, items)| Message::Flood {
                session_id,
                initiator,
                ttl,
                items: items
                    .into_iter()
                    .map(|(objective, locator)| FloodItem { objective, locator })
                    .collect(),
            }),
        (sid, proptest::option::of(value())).prop_map(|(session_id, content)| {
            Message::Invalid {
                session_id,
                content,
            }
        }),
    ]
}
