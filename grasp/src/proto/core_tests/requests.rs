//! Requests (routed, closed, discarded), synchronization, `M_INVALID`, the 2,048-byte limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default
)]

use super::*;

#[test]
fn requests_are_routed_closed_or_discarded() {
    let (mut n, _) = ex3_listener(Some("fd00::1"));
    let p: IpAddr = "fd00::9".parse().unwrap();
    let req = |sid, name: &str| Message::ReqNeg {
        session_id: sid,
        objective: Objective::new(name).neg(true),
    };
    assert!(matches!(
        n.on_request(p, req(5, "EX3")),
        RequestDecision::Negotiate { session_id: 5, .. }
    ));
    // The same session id while that session is active: discarded (the peer times out).
    assert_eq!(n.on_request(p, req(5, "EX3")), RequestDecision::Discard);
    n.end_session(5, Origin::Remote(p));
    // Nobody listening for it: closed at once.
    assert_eq!(n.on_request(p, req(6, "EX9")), RequestDecision::Close);
    // Not negotiable in the request: closed.
    let syn = Message::ReqNeg {
        session_id: 7,
        objective: Objective::new("EX3"),
    };
    assert_eq!(n.on_request(p, syn), RequestDecision::Close);
    // Not a request at all, M_INVALID included: closed, never answered.
    let inv = Message::Invalid {
        session_id: 8,
        content: None,
    };
    assert_eq!(n.on_request(p, inv), RequestDecision::Close);
}

#[test]
fn a_synchronization_request_gets_the_value() {
    let mut n = node(vec![iface(IF1, 1)], Some("fd00::1"));
    let asa = n.register_asa("A").unwrap();
    let ex2 = Objective::new("EX2").synch(true).loop_count(4);
    n.register_obj(asa, &ex2, RegisterOptions::default(), 5)
        .unwrap();
    let p: IpAddr = "fd00::9".parse().unwrap();
    let req = Message::ReqSyn {
        session_id: 3,
        objective: Objective::new("EX2").synch(true),
    };
    assert_eq!(
        n.on_request(p, req.clone()),
        RequestDecision::Close,
        "not listening yet"
    );
    let v = Value::Array(vec![1.into(), "two".into(), 3.into()]);
    n.listen_synchronize(asa, &ex2.clone().value(v.clone()))
        .unwrap();
    let RequestDecision::Reply(bytes) = n.on_request(p, req) else {
        panic!()
    };
    assert_eq!(
        decode(&bytes),
        Message::Synch {
            session_id: 3,
            objective: ex2.value(v)
        }
    );
}

#[test]
fn m_invalid_answers_bad_unicast_but_never_m_invalid() {
    let n = node(vec![iface(IF1, 1)], None);
    let unknown = DecodeError::UnknownType {
        mtype: 42,
        session_id: Some(7),
    };
    let bytes = n.invalid_answer(&unknown).unwrap();
    assert!(matches!(
        decode(&bytes),
        Message::Invalid { session_id: 7, .. }
    ));
    assert!(bytes.len() < 64);
    let bad_req = DecodeError::Invalid {
        mtype: MessageType::ReqNeg,
        session_id: Some(8),
        what: "x",
    };
    assert!(n.invalid_answer(&bad_req).is_some());
    let bad_invalid = DecodeError::Invalid {
        mtype: MessageType::Invalid,
        session_id: Some(9),
        what: "x",
    };
    assert_eq!(n.invalid_answer(&bad_invalid), None);
    assert_eq!(
        n.invalid_answer(&DecodeError::UnknownType {
            mtype: 42,
            session_id: None
        }),
        None
    );
    assert_eq!(n.invalid_answer(&DecodeError::Truncated), None);
}

#[test]
fn multicasts_of_unknown_or_unicast_types_are_dropped_silently() {
    let t0 = Instant::now();
    let (mut n, _) = ex3_listener(Some("fd00::1"));
    let unknown = Value::Array(vec![42.into(), 1.into()]).to_cbor().unwrap();
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &unknown)
            .is_empty()
    );
    let invalid = Message::Invalid {
        session_id: 1,
        content: None,
    }
    .encode()
    .unwrap();
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &invalid)
            .is_empty()
    );
    let req = Message::ReqNeg {
        session_id: 1,
        objective: Objective::new("EX3").neg(true),
    };
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &req.encode().unwrap())
            .is_empty()
    );
}

#[test]
fn the_2048_byte_limit_applies_to_what_is_received_and_sent() {
    let t0 = Instant::now();
    let (mut n, asa) = ex3_listener(Some("fd00::1"));
    let pad = |len: usize| Objective::new("EX3").value(Value::Bytes(vec![0; len]));
    // A discovery of 2,048 bytes is answered; one byte more is dropped.
    let mut len = 2000;
    let exact = loop {
        let d = discovery(1, "fd00::9", pad(len));
        match d.len() {
            2048 => break d,
            l if l > 2048 => len -= 1,
            _ => len += 1,
        }
    };
    assert_eq!(
        responses(&n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &exact)).len(),
        1
    );
    let over = discovery(2, "fd00::9", pad(len + 1));
    assert_eq!(over.len(), 2049);
    assert!(
        n.on_multicast(t0, Family::V6, IF1, peer(9, 1, 0), &over)
            .is_empty()
    );
    // Nothing longer is sent.
    let ex1 = Objective::new("EX1").synch(true);
    n.register_obj(asa, &ex1, RegisterOptions::default(), 0)
        .unwrap();
    let big = ex1.value(Value::Bytes(vec![0; 2100]));
    assert!(matches!(
        n.flood(t0, asa, 0, vec![(big.clone(), None)]),
        Err(GraspError::Unspec(_))
    ));
    assert!(matches!(
        n.discover(t0, asa, &big, Duration::from_secs(1), false, None),
        Err(GraspError::Unspec(_))
    ));
}
