//! The request table's rules, in injected time.

use super::*;
use bytes::Bytes;

/// Small bounds, for the tests here and in `requests/mod.rs`.
pub(in crate::node::requests) const LIMITS: Limits = Limits {
    total: 8,
    per_peer: 4,
};
pub(in crate::node::requests) const SECOND: Duration = Duration::from_secs(1);

fn table(matching: Matching) -> RequestTable<u8> {
    RequestTable::new(LIMITS, matching, LateReplyConfig::default())
}

fn start(t: &mut RequestTable<u8>, peer: u8, msg: Message, now: Instant) -> (u64, AnswerRx) {
    let mut msg = msg;
    let s = t
        .start(peer, &mut msg, Plugins::new(), SECOND, None, now)
        .unwrap();
    assert_eq!(msg.request_id(), Some(s.id));
    (s.id, s.rx)
}

fn take(t: &mut RequestTable<u8>, from: u8, r: &Message) -> Option<Pending<u8>> {
    t.take_reply(from, r, Instant::now).pending()
}

/// A message of type `t` at `uri`, with no content.
fn typed(t: MessageType, uri: &str) -> Message {
    Message::new(t, uri.to_owned(), "")
}

fn reply(t: MessageType, uri: &str, rref: Option<u64>) -> Message {
    let mut m = Message::new(t, uri.to_owned(), "");
    if let Some(r) = rref {
        m.set_reply_ref(r);
    }
    m
}

#[test]
fn a_reply_reference_names_its_request_and_only_from_that_peer() {
    let now = Instant::now();
    let mut t = table(Matching::Native);
    let (a, _ra) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "x"), now);
    let (b, _rb) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "x"), now);
    assert_ne!(a, b);
    let r = reply(MessageType::RESPOND_URI, "x", Some(b));
    assert!(take(&mut t, 2, &r).is_none(), "another peer cannot answer");
    assert_eq!(t.len(), 2);
    assert!(take(&mut t, 1, &r).is_some());
    assert!(take(&mut t, 1, &r).is_none(), "answered once");
    assert_eq!(t.len(), 1);
    // A reference to no waiting request is not matched by uri instead.
    let stale = reply(MessageType::RESPOND_URI, "x", Some(999));
    assert!(take(&mut t, 1, &stale).is_none());
    assert_eq!(t.len(), 1);
}

#[test]
fn without_a_reference_the_oldest_request_for_the_uri_that_the_type_answers() {
    let now = Instant::now();
    let mut t = table(Matching::Native);
    let (create, _r1) = start(&mut t, 1, typed(MessageType::CREATE_URI, "u"), now);
    let (req1, _r2) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "u"), now);
    let (req2, _r3) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "u"), now);
    // RESPOND_URI answers requests, not the CREATE_URI.
    let p = take(&mut t, 1, &reply(MessageType::RESPOND_URI, "u", None));
    assert_eq!(p.map(|p| p.sent), Some(MessageType::REQUEST_URI));
    assert!(t.entries.contains_key(&req2) && !t.entries.contains_key(&req1));
    // OK answers the oldest of CREATE_URI and REQUEST_URI (Python answers requests with OK).
    assert!(take(&mut t, 1, &reply(MessageType::OK, "u", None)).is_some());
    assert!(!t.entries.contains_key(&create));
    // Other uri, other peer, or a type that answers nothing: no match.
    assert!(take(&mut t, 1, &reply(MessageType::OK, "v", None)).is_none());
    assert!(take(&mut t, 2, &reply(MessageType::OK, "u", None)).is_none());
    assert!(take(&mut t, 1, &reply(MessageType::NOTIFY_URI, "u", None)).is_none());
    // An error for the uri answers it.
    assert!(take(&mut t, 1, &reply(MessageType::NOT_FOUND, "u", None)).is_some());
    assert_eq!(t.len(), 0);
}

#[test]
fn python_matching_gives_unreferenced_errors_to_the_oldest_request_of_that_peer() {
    let now = Instant::now();
    for matching in [Matching::Native, Matching::Python] {
        let mut t = table(matching);
        let (first, _r1) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "a"), now);
        let (_second, _r2) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "b"), now);
        let (_other, _r3) = start(&mut t, 2, typed(MessageType::REQUEST_URI, "c"), now);
        let err = reply(MessageType::AUTH_ERROR, "ERROR", None);
        let got = take(&mut t, 1, &err);
        if matching == Matching::Python {
            assert_eq!(got.map(|p| p.uri), Some(Bytes::from_static(b"a")));
            assert!(!t.entries.contains_key(&first));
        } else {
            assert!(got.is_none());
        }
        // A non-error without a match never takes the oldest.
        assert!(take(&mut t, 1, &reply(MessageType::OK, "ERROR", None)).is_none());
    }
}

#[test]
fn unauthenticated_replies_answer_only_as_errors() {
    let now = Instant::now();
    let mut t = table(Matching::Native);
    let (id, _r) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "a"), now);
    assert!(
        t.take_unauthenticated(1, Some(id), MessageType::OK)
            .is_none()
    );
    assert!(
        t.take_unauthenticated(1, None, MessageType::AUTH_ERROR)
            .is_none()
    );
    assert!(
        t.take_unauthenticated(2, Some(id), MessageType::AUTH_ERROR)
            .is_none()
    );
    assert!(
        t.take_unauthenticated(1, Some(id), MessageType::AUTH_ERROR)
            .is_some()
    );
    let mut py = table(Matching::Python);
    let (_id, _r) = start(&mut py, 1, typed(MessageType::REQUEST_URI, "a"), now);
    assert!(
        py.take_unauthenticated(1, None, MessageType::AUTH_ERROR)
            .is_some()
    );
}

#[test]
fn bounds_in_total_and_per_peer() {
    let now = Instant::now();
    let mut t = table(Matching::Native);
    let mut keep = Vec::new();
    for _ in 0..LIMITS.per_peer {
        keep.push(start(&mut t, 1, typed(MessageType::REQUEST_URI, "a"), now));
    }
    let mut m = typed(MessageType::REQUEST_URI, "a");
    let e = t
        .start(1, &mut m, Plugins::new(), SECOND, None, now)
        .unwrap_err();
    assert!(matches!(e, RequestError::TooManyInFlight(n) if n == LIMITS.per_peer));
    for _ in 0..LIMITS.per_peer {
        keep.push(start(&mut t, 2, typed(MessageType::REQUEST_URI, "a"), now));
    }
    let e = t
        .start(3, &mut m, Plugins::new(), SECOND, None, now)
        .unwrap_err();
    assert!(matches!(e, RequestError::TooManyInFlight(n) if n == LIMITS.total));
    // A request that leaves makes room for its peer again.
    assert!(t.remove(keep[0].0).is_some());
    assert!(
        t.start(1, &mut m, Plugins::new(), SECOND, None, now)
            .is_ok()
    );
    assert_eq!(t.per_peer.get(&1), Some(&LIMITS.per_peer));
}

#[test]
fn deadlines_are_data_and_expire_in_order() {
    let t0 = Instant::now();
    let mut t = table(Matching::Native);
    assert_eq!(t.poll_timeout(), None);
    let mut start_for = |uri, secs| {
        let mut m = typed(MessageType::REQUEST_URI, uri);
        let timeout = Duration::from_secs(secs);
        let s = t
            .start(1, &mut m, Plugins::new(), timeout, None, t0)
            .unwrap();
        (s.deadline, s.rx)
    };
    let (da, mut ra) = start_for("a", 3);
    let (db, mut rb) = start_for("b", 1);
    assert_eq!(da, t0 + Duration::from_secs(3));
    assert_eq!(t.poll_timeout(), Some(db));
    assert_eq!(t.handle_timeout(t0 + Duration::from_millis(999)).hard, 0);
    assert_eq!(
        t.handle_timeout(db).hard,
        1,
        "a deadline is reached at its instant"
    );
    assert!(matches!(rb.try_recv(), Ok(Err(RequestError::Timeout(d))) if d == SECOND));
    assert!(ra.try_recv().is_err(), "the later request still waits");
    assert_eq!(t.poll_timeout(), Some(da));
    assert_eq!(t.handle_timeout(t0 + Duration::from_secs(60)).hard, 1);
    assert!(matches!(ra.try_recv(), Ok(Err(RequestError::Timeout(_)))));
    assert_eq!((t.len(), t.poll_timeout()), (0, None));
}

#[test]
fn a_huge_timeout_does_not_overflow() {
    let now = Instant::now();
    let mut t = table(Matching::Native);
    let mut m = typed(MessageType::REQUEST_URI, "a");
    let s = t
        .start(1, &mut m, Plugins::new(), Duration::MAX, None, now)
        .unwrap();
    assert!(s.deadline > now + Duration::from_secs(86_400));
}

#[test]
fn failing_a_peer_or_everything_answers_closed() {
    let now = Instant::now();
    let mut t = table(Matching::Native);
    let (_, mut r1) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "a"), now);
    let (_, mut r2) = start(&mut t, 2, typed(MessageType::REQUEST_URI, "a"), now);
    assert_eq!(t.fail_peer(1), 1);
    assert!(matches!(r1.try_recv(), Ok(Err(RequestError::Closed))));
    assert!(r2.try_recv().is_err());
    assert_eq!(t.fail_all(false), 1);
    assert!(matches!(r2.try_recv(), Ok(Err(RequestError::Closed))));
    // Not for good: new requests are taken; for good: refused.
    let mut m = typed(MessageType::REQUEST_URI, "a");
    assert!(
        t.start(1, &mut m, Plugins::new(), SECOND, None, now)
            .is_ok()
    );
    t.fail_all(true);
    assert!(matches!(
        t.start(1, &mut m, Plugins::new(), SECOND, None, now),
        Err(RequestError::Send(crate::SendError::Closed))
    ));
    assert_eq!(t.poll_timeout(), None);
}

fn request(uri: &str) -> Message {
    Message::new(MessageType::REQUEST_URI, uri.to_owned(), "")
}

/// A native table at `t0` with one request to peer 1 at uri `a` (hard timeout one second,
/// and `soft`): the table, the request as sent, and what `start` returned.
fn one_request(soft: Option<Duration>) -> (Instant, RequestTable<u8>, Message, Started) {
    let t0 = Instant::now();
    let mut t = table(Matching::Native);
    let mut m = request("a");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, soft, t0)
        .unwrap();
    (t0, t, m, s)
}

#[test]
fn soft_then_hard_expiry_and_a_reply_between_is_on_time() {
    let (t0, mut t, _, s) = one_request(Some(SECOND / 4));
    let mut rx = s.rx;
    assert_eq!(s.soft, Some(t0 + SECOND / 4));
    assert_eq!(t.poll_timeout(), s.soft, "the soft deadline comes first");
    assert_eq!(t.next_deadline(s.id), s.soft);
    assert_eq!(t.handle_timeout(t0 + SECOND / 5), Expiries::default());
    assert_eq!(
        t.handle_timeout(t0 + SECOND / 4),
        Expiries { soft: 1, hard: 0 }
    );
    assert_eq!(t.soft_passed(s.id), Some(1));
    assert!(
        rx.try_recv().is_err(),
        "still waiting after its soft deadline"
    );
    assert_eq!(t.poll_timeout(), Some(s.deadline));
    assert_eq!(t.next_deadline(s.id), Some(s.deadline));
    // A reply between the two deadlines answers it like one in time.
    let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
    let p = take(&mut t, 1, &r).unwrap();
    p.answer(RequestError::from_reply(r));
    assert!(matches!(rx.try_recv(), Ok(Ok(_))));
    assert_eq!(t.handle_timeout(t0 + SECOND * 2), Expiries::default());
    // Another one runs to its hard deadline.
    let mut m = request("b");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND / 4), t0)
        .unwrap();
    let mut rx = s.rx;
    assert_eq!(t.handle_timeout(t0 + SECOND), Expiries { soft: 1, hard: 1 });
    assert!(matches!(rx.try_recv(), Ok(Err(RequestError::Timeout(d))) if d == SECOND));
    assert_eq!(t.soft_passed(s.id), None);
    let c = t.counts();
    assert_eq!((c.soft_timeouts, c.timeouts), (2, 1));
    // A soft timeout longer than the hard one is the hard one.
    let mut m = request("c");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND * 9), t0)
        .unwrap();
    assert_eq!(s.soft, Some(s.deadline));
}

#[test]
fn a_reply_after_a_soft_deadline_no_timer_handled_yet_counts_it() {
    let t0 = Instant::now();
    let mut t = table(Matching::Native);
    for (at, counted) in [(SECOND / 8, 0), (SECOND / 2, 1)] {
        let mut m = request("a");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND / 4), t0)
            .unwrap();
        let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
        let before = t.counts().soft_timeouts;
        assert!(t.take_reply(1, &r, || t0 + at).pending().is_some());
        assert_eq!(t.counts().soft_timeouts - before, counted, "at {at:?}");
    }
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn a_reply_after_the_hard_timeout_is_late_once_and_only_from_its_peer() {
    let (t0, mut t, _, s) = one_request(None);
    assert_eq!(t.handle_timeout(t0 + SECOND).hard, 1);
    let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
    assert!(matches!(
        t.take_reply(2, &r, || t0 + SECOND * 2),
        Taken::Nothing
    ));
    match t.take_reply(1, &r, || t0 + SECOND * 2) {
        Taken::Late(e) => {
            assert_eq!((e.peer, e.sent), (1, MessageType::REQUEST_URI));
            assert_eq!(e.uri.as_ref(), b"a");
            assert_eq!(e.deadline, s.deadline);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        t.take_reply(1, &r, || t0 + SECOND * 2),
        Taken::Nothing
    ));
    assert_eq!(t.counts().late_replies, 1);
    // Only past its window: forgotten.
    let mut m = request("b");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, None, t0)
        .unwrap();
    t.handle_timeout(t0 + SECOND);
    let r = reply(MessageType::RESPOND_URI, "b", Some(s.id));
    let window = LateReplyConfig::default().get_window();
    assert!(matches!(
        t.take_reply(1, &r, || t0 + SECOND + window),
        Taken::Nothing
    ));
    // A request that was answered, or given up, is not late: its reply is only stale.
    let (id, _rx) = start(&mut t, 1, request("c"), t0);
    t.remove(id);
    let r = reply(MessageType::RESPOND_URI, "c", Some(id));
    assert!(matches!(t.take_reply(1, &r, || t0), Taken::Nothing));
}

#[test]
fn ids_are_random_nonzero_and_never_reused_while_remembered() {
    let now = Instant::now();
    let mut t = RequestTable::new(
        Limits {
            total: 10_000,
            per_peer: 10_000,
        },
        Matching::Native,
        LateReplyConfig::default(),
    );
    let mut ids = std::collections::HashSet::new();
    let mut high = 0;
    for _ in 0..1000 {
        let (id, _rx) = start(&mut t, 1, request("a"), now);
        assert_ne!(id, 0);
        assert!(ids.insert(id), "unique");
        if id > u64::MAX / 2 {
            high += 1;
        }
    }
    // Not a counter: about half of them have their top bit set.
    assert!((300..700).contains(&high), "{high}");
}

#[test]
fn a_resend_rearms_the_soft_deadline_and_a_restart_keeps_the_id() {
    let (t0, mut t, m, s) = one_request(Some(SECOND / 4));
    // The restarts below: the request as it was, with this soft deadline.
    let timing = |soft| Timing {
        started: t0,
        deadline: s.deadline,
        timeout: SECOND,
        soft,
        soft_events: None,
    };
    t.handle_timeout(t0 + SECOND / 4);
    t.resend(s.id, Some(t0 + SECOND / 2));
    assert_eq!(t.next_deadline(s.id), Some(t0 + SECOND / 2));
    assert_eq!(
        t.handle_timeout(t0 + SECOND / 2),
        Expiries { soft: 1, hard: 0 }
    );
    assert_eq!(t.soft_passed(s.id), Some(2));
    // A soft deadline at or past the hard one is not armed.
    t.resend(s.id, Some(t0 + SECOND));
    assert_eq!(t.next_deadline(s.id), Some(s.deadline));
    assert_eq!(t.counts().retries, 2);
    // The link dropped: the request failed, and is registered again as it was.
    assert_eq!(t.fail_all(false), 1);
    let mut rx = t
        .restart(
            s.id,
            1,
            &m,
            Plugins::new(),
            Timing {
                soft_events: s.soft_events.clone(),
                ..timing(Some(t0 + SECOND * 3 / 4))
            },
        )
        .unwrap();
    assert_eq!(t.counts().retries, 3);
    assert_eq!(t.next_deadline(s.id), Some(t0 + SECOND * 3 / 4));
    let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
    let p = take(&mut t, 1, &r).unwrap();
    assert!(p.resent, "no round-trip sample from a re-sent request");
    p.answer(RequestError::from_reply(r));
    assert!(matches!(rx.try_recv(), Ok(Ok(_))));
    // Restarting refuses an id that waits, and a closed table.
    let (id, _rx) = start(&mut t, 1, request("b"), t0);
    assert!(t.restart(id, 1, &m, Plugins::new(), timing(None)).is_err());
    t.fail_all(true);
    assert!(matches!(
        t.restart(7, 1, &m, Plugins::new(), timing(None)),
        Err(RequestError::Send(crate::SendError::Closed))
    ));
}

#[test]
fn the_timer_is_woken_only_for_a_deadline_earlier_than_the_one_it_sleeps_to() {
    let t0 = Instant::now();
    let mut t = table(Matching::Native);
    // The first request of an idle table wakes the (sleeping) timer.
    let (a, _ra) = start(&mut t, 1, request("a"), t0);
    assert!(t.take_wake());
    assert!(!t.take_wake(), "taken");
    assert_eq!(t.fire(t0).1, Some(t0 + SECOND));
    // Later deadlines (the common case: the same timeout, started later) do not.
    let (_b, _rb) = start(&mut t, 1, request("b"), t0 + SECOND / 10);
    assert!(!t.take_wake());
    // An answered request leaves; the timer then wakes at its stale instant, for nothing
    // due, and sleeps on to the next deadline.
    t.remove(a);
    assert_eq!(
        t.fire(t0 + SECOND),
        (Expiries::default(), Some(t0 + SECOND * 11 / 10))
    );
    // An earlier deadline, hard or soft, does.
    let mut m = request("c");
    t.start(1, &mut m, Plugins::new(), SECOND / 2, None, t0 + SECOND)
        .unwrap();
    assert!(!t.take_wake(), "t0 + 1.5 s comes after t0 + 1.1 s");
    let mut m = request("d");
    let s = t
        .start(
            1,
            &mut m,
            Plugins::new(),
            SECOND,
            Some(SECOND / 100),
            t0 + SECOND,
        )
        .unwrap();
    assert!(t.take_wake());
    assert_eq!(t.fire(t0 + SECOND).1, s.soft);
    // A re-armed soft deadline, earlier than the timer's next instant, too.
    let (_, next) = t.fire(t0 + SECOND * 101 / 100);
    assert_eq!(next, Some(t0 + SECOND * 11 / 10));
    t.resend(s.id, Some(t0 + SECOND * 102 / 100));
    assert!(t.take_wake());
}

#[test]
fn the_timer_fires_soft_and_hard_timeouts_as_events_in_injected_time() {
    let t0 = Instant::now();
    let mut t = table(Matching::Native);
    let mut m = request("a");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND / 4), t0)
        .unwrap();
    let events = s.soft_events.clone().unwrap();
    let mut soft = events.subscribe();
    let mut rx = s.rx;
    // Woken early (another request's stale instant): nothing due, told when to wake.
    assert_eq!(
        t.fire(t0 + SECOND / 8),
        (Expiries::default(), Some(t0 + SECOND / 4))
    );
    assert!(!soft.has_changed().unwrap());
    // At the soft deadline: an event, the request still waits, next wake is the hard one.
    assert_eq!(
        t.fire(t0 + SECOND / 4),
        (Expiries { soft: 1, hard: 0 }, Some(s.deadline))
    );
    assert!(soft.has_changed().unwrap());
    assert_eq!(*soft.borrow_and_update(), 1);
    assert!(rx.try_recv().is_err());
    // Re-sent, then registered again after a drop: the count goes on over the same events.
    t.resend(s.id, Some(t0 + SECOND / 2));
    t.fail_all(false);
    let mut rx = t
        .restart(
            s.id,
            1,
            &m,
            Plugins::new(),
            Timing {
                started: t0,
                deadline: s.deadline,
                timeout: SECOND,
                soft: Some(t0 + SECOND * 3 / 4),
                soft_events: Some(events),
            },
        )
        .unwrap();
    assert_eq!(t.fire(t0 + SECOND * 3 / 4).0.soft, 1);
    assert_eq!(*soft.borrow_and_update(), 2);
    // At the hard deadline: the answer is the timeout, and nothing is left to wake for.
    assert_eq!(t.fire(s.deadline), (Expiries { soft: 0, hard: 1 }, None));
    assert!(matches!(rx.try_recv(), Ok(Err(RequestError::Timeout(d))) if d == SECOND));
    assert!(
        !soft.has_changed().unwrap(),
        "a hard timeout is no soft event"
    );
}

#[test]
fn only_a_sub_millisecond_soft_deadline_next_in_line_is_kept_finely() {
    let t0 = Instant::now();
    let mut t = table(Matching::Native);
    assert!(!t.next_is_fine(), "nothing waits");
    let us = Duration::from_micros;
    // A 1 ms soft timeout is tokio's business.
    let mut m = request("a");
    t.start(1, &mut m, Plugins::new(), SECOND, Some(FINE), t0)
        .unwrap();
    assert!(!t.next_is_fine());
    // A 50 µs one, next in line, is kept finely.
    let mut m = request("b");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, Some(us(50)), t0)
        .unwrap();
    assert!(t.next_is_fine());
    // Past it, the next deadline is the 1 ms one: not fine any more.
    assert_eq!(t.fire(t0 + us(50)).0.soft, 1);
    assert!(!t.next_is_fine());
    // Its retry re-arms it finely.
    t.resend(s.id, Some(t0 + us(100)));
    assert!(t.next_is_fine());
    // A hard deadline before it comes first: not fine.
    let mut m = request("c");
    t.start(1, &mut m, Plugins::new(), us(60), None, t0)
        .unwrap();
    assert!(!t.next_is_fine());
}

#[test]
fn a_request_whose_fine_soft_deadline_the_timer_waits_for_wakes_it_when_it_leaves() {
    // The timer waits finely (the fine timer thread spins its last microseconds) for a
    // sub-millisecond soft deadline: a request answered or dropped before it must wake the
    // timer to stop, or that is paid for nothing.
    let t0 = Instant::now();
    let us = Duration::from_micros;
    let mut t = table(Matching::Native);
    let mut m = request("a");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, Some(us(200)), t0)
        .unwrap();
    assert!(t.take_wake(), "an earlier deadline wakes the timer");
    assert_eq!(t.fire(t0).1, Some(t0 + us(200)));
    assert!(t.next_is_fine());
    // A second one, due later: not what the timer waits for; its end wakes nothing.
    let mut m2 = request("b");
    let s2 = t
        .start(1, &mut m2, Plugins::new(), SECOND, Some(us(300)), t0)
        .unwrap();
    assert!(!t.take_wake());
    assert!(t.remove(s2.id).is_some());
    assert!(!t.take_wake());
    // The answer to the first stops the timer's wait: it then sleeps to the next deadline.
    let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
    assert!(matches!(
        t.take_reply(1, &r, || t0 + us(50)),
        Taken::Answers(_)
    ));
    assert!(t.take_wake(), "answered before its fine soft deadline");
    assert_eq!(t.fire(t0 + us(50)).1, None, "nothing left to wait for");
    // A caller that drops its call does the same.
    let mut m = request("c");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, Some(us(100)), t0)
        .unwrap();
    t.fire(t0);
    assert!(t.next_is_fine());
    assert!(t.remove(s.id).is_some());
    assert!(t.take_wake());
    // A plain request (no soft deadline) never wakes the timer when it is answered.
    let mut m = request("d");
    let s = t
        .start(1, &mut m, Plugins::new(), SECOND, None, t0)
        .unwrap();
    t.fire(t0);
    let r = reply(MessageType::RESPOND_URI, "d", Some(s.id));
    assert!(matches!(t.take_reply(1, &r, || t0), Taken::Answers(_)));
    assert!(!t.take_wake());
}

#[test]
fn a_python_peer_s_late_reply_is_matched_by_uri() {
    let t0 = Instant::now();
    for matching in [Matching::Native, Matching::Python] {
        let mut t = table(matching);
        let (id, _rx) = start(&mut t, 1, request("slow/1"), t0);
        assert_eq!(t.fire(t0 + SECOND).0.hard, 1);
        assert_eq!(t.late_by_uri_possible(), matching == Matching::Python);
        let late = t0 + SECOND * 2;
        // Not from another peer, not for another uri, not an error.
        for (from, r) in [
            (2, reply(MessageType::RESPOND_URI, "slow/1", None)),
            (1, reply(MessageType::RESPOND_URI, "slow/2", None)),
            (1, reply(MessageType::NOT_FOUND, "slow/1", None)),
        ] {
            assert!(matches!(t.take_reply(from, &r, || late), Taken::Nothing));
        }
        let r = reply(MessageType::RESPOND_URI, "slow/1", None);
        match (matching, t.take_reply(1, &r, || late)) {
            (Matching::Python, Taken::Late(e)) => {
                assert_eq!((e.id, e.uri.as_ref()), (id, &b"slow/1"[..]));
            }
            (Matching::Native, Taken::Nothing) => {}
            (m, other) => panic!("{m:?}: {other:?}"),
        }
        // Taken once.
        assert!(matches!(t.take_reply(1, &r, || late), Taken::Nothing));
        assert!(!t.late_by_uri_possible());
    }
}
