//! The core's rules, in injected time.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;

type TestCore = Core<u32, SmallRng>;

fn core() -> TestCore {
    Core::new(
        CoreConfig::default().validation_timeout(Duration::from_secs(5)),
        SmallRng::seed_from_u64(1),
    )
}

fn actions(core: &mut TestCore) -> Vec<Action<u32>> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

/// The notifications in `actions`: (conn, message id, data type, data).
fn notifications(actions: &[Action<u32>]) -> Vec<(ConnId, u16, u16, Bytes)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify {
                conn,
                message:
                    ApiMessage::Notification {
                        message_id,
                        data_type,
                        data,
                    },
            } => Some((*conn, *message_id, *data_type, data.clone())),
            _ => None,
        })
        .collect()
}

fn releases(actions: &[Action<u32>]) -> Vec<(u32, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Release { item, valid, .. } => Some((*item, *valid)),
            _ => None,
        })
        .collect()
}

fn subscribe(core: &mut TestCore, now: Instant, conn: ConnId, data_type: u16) {
    core.connected(conn);
    core.message(now, conn, ApiMessage::Notify { data_type });
}

fn validate(core: &mut TestCore, now: Instant, conn: ConnId, id: u16, valid: bool) {
    core.message(
        now,
        conn,
        ApiMessage::Validation {
            message_id: id,
            valid,
        },
    );
}

#[test]
fn the_first_subscriber_follows_the_type_and_the_last_leaves_it() {
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    subscribe(&mut c, now, 2, 7);
    assert_eq!(actions(&mut c), [Action::Follow(7)]);
    c.closed(1);
    assert!(actions(&mut c).is_empty());
    c.closed(2);
    assert_eq!(actions(&mut c), [Action::Unfollow(7)]);
    assert_eq!(c.subscribers(7), 0);
}

#[test]
fn peer_data_is_released_only_when_every_subscriber_answered_valid() {
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    subscribe(&mut c, now, 2, 7);
    subscribe(&mut c, now, 3, 8);
    actions(&mut c);
    c.from_peer(now, 42, 7, Bytes::from_static(b"data"), true);
    let a = actions(&mut c);
    let n = notifications(&a);
    assert_eq!(n.len(), 2, "both type-7 subscribers, not the type-8 one");
    assert!(
        n.iter()
            .all(|(conn, _, t, d)| *conn != 3 && *t == 7 && d == "data")
    );
    assert!(releases(&a).is_empty(), "held until validated");
    assert_eq!(c.pending(), (1, 4));
    let (first, second) = (n[0].clone(), n[1].clone());
    validate(&mut c, now, first.0, first.1, true);
    assert!(actions(&mut c).is_empty(), "one answer is not every answer");
    validate(&mut c, now, second.0, second.1, true);
    assert_eq!(releases(&actions(&mut c)), [(42, true)]);
    assert_eq!(c.pending(), (0, 0));
    assert_eq!(c.stats().released, 1);
}

#[test]
fn one_invalid_answer_discards_at_once_and_later_answers_are_still_known() {
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    subscribe(&mut c, now, 2, 7);
    actions(&mut c);
    c.from_peer(now, 42, 7, Bytes::from_static(b"x"), true);
    let n = notifications(&actions(&mut c));
    validate(&mut c, now, n[0].0, n[0].1, false);
    assert_eq!(releases(&actions(&mut c)), [(42, false)]);
    // The other module answers afterwards: accepted, no second verdict, no close.
    validate(&mut c, now, n[1].0, n[1].1, true);
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.pending(), (0, 0));
    assert_eq!(c.stats().discarded, 1);
}

#[test]
fn a_missing_validation_times_out_as_invalid() {
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    actions(&mut c);
    c.from_peer(now, 42, 7, Bytes::from_static(b"x"), true);
    let n = notifications(&actions(&mut c));
    assert_eq!(c.next_deadline(), Some(now + Duration::from_secs(5)));
    c.tick(now + Duration::from_millis(4_999));
    assert!(actions(&mut c).is_empty(), "not yet");
    c.tick(now + Duration::from_secs(5));
    assert_eq!(releases(&actions(&mut c)), [(42, false)]);
    assert_eq!(c.stats().timeouts, 1);
    assert_eq!(c.next_deadline(), None);
    // Its id is forgotten: answering now is a validation for an unknown id.
    validate(&mut c, now + Duration::from_secs(6), 1, n[0].1, true);
    assert!(matches!(
        actions(&mut c)[..],
        [
            Action::Close {
                conn: 1,
                error: ApiError::UnknownMessageId(_)
            },
            ..
        ]
    ));
}

#[test]
fn a_subscriber_closing_unanswered_counts_as_invalid() {
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    subscribe(&mut c, now, 2, 7);
    actions(&mut c);
    c.from_peer(now, 42, 7, Bytes::from_static(b"x"), true);
    let n = notifications(&actions(&mut c));
    let answering = n.iter().find(|x| x.0 == 2).unwrap();
    validate(&mut c, now, 2, answering.1, true);
    c.closed(1);
    assert_eq!(releases(&actions(&mut c)), [(42, false)]);
}

#[test]
fn unknown_ids_and_wrong_direction_close_only_that_connection() {
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    subscribe(&mut c, now, 2, 7);
    actions(&mut c);
    validate(&mut c, now, 1, 999, true);
    assert_eq!(
        actions(&mut c),
        [Action::Close {
            conn: 1,
            error: ApiError::UnknownMessageId(999)
        }]
    );
    assert_eq!(c.subscribers(7), 1, "conn 2 keeps its subscription");
    let notification = ApiMessage::Notification {
        message_id: 1,
        data_type: 7,
        data: Bytes::new(),
    };
    c.message(now, 2, notification);
    assert_eq!(
        actions(&mut c),
        [
            Action::Close {
                conn: 2,
                error: ApiError::WrongDirection(502)
            },
            Action::Unfollow(7)
        ]
    );
}

#[test]
fn a_local_announce_is_published_and_notified_to_the_other_subscribers_only() {
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    subscribe(&mut c, now, 2, 7);
    actions(&mut c);
    let announce = ApiMessage::Announce {
        ttl: 2,
        data_type: 7,
        data: Bytes::from_static(b"hello"),
    };
    c.message(now, 1, announce);
    let a = actions(&mut c);
    assert_eq!(
        a[0],
        Action::Publish {
            data_type: 7,
            ttl: 2,
            data: Bytes::from_static(b"hello")
        }
    );
    let n = notifications(&a);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].0, 2, "not back to the announcer");
    // Its validation is accepted and releases nothing (nothing is held).
    validate(&mut c, now, 2, n[0].1, false);
    assert!(actions(&mut c).is_empty());
    // A type nobody here subscribes to: published, nobody notified.
    c.message(
        now,
        1,
        ApiMessage::Announce {
            ttl: 0,
            data_type: 9,
            data: Bytes::new(),
        },
    );
    assert_eq!(actions(&mut c).len(), 1);
}

#[test]
fn peer_data_of_an_unregistered_type_is_discarded() {
    let now = Instant::now();
    let mut c = core();
    c.from_peer(now, 5, 3, Bytes::from_static(b"x"), true);
    assert_eq!(releases(&actions(&mut c)), [(5, false)]);
}

#[test]
fn pending_items_are_bounded_in_count_and_bytes() {
    let now = Instant::now();
    let mut c = Core::new(
        CoreConfig::default().max_pending(2).max_pending_bytes(10),
        SmallRng::seed_from_u64(2),
    );
    subscribe(&mut c, now, 1, 7);
    actions(&mut c);
    c.from_peer(now, 1, 7, Bytes::from_static(b"1234"), true);
    c.from_peer(now, 2, 7, Bytes::from_static(b"1234567"), true);
    assert_eq!(releases(&actions(&mut c)), [(2, false)], "bytes bound");
    c.from_peer(now, 3, 7, Bytes::from_static(b"12"), true);
    c.from_peer(now, 4, 7, Bytes::from_static(b"1"), true);
    assert_eq!(releases(&actions(&mut c)), [(4, false)], "count bound");
    assert_eq!(c.pending(), (2, 6));
    assert_eq!(c.stats().overflow, 2);
}

#[test]
fn message_ids_are_unique_per_connection() {
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    actions(&mut c);
    for item in 0..500 {
        c.from_peer(now, item, 7, Bytes::new(), true);
    }
    let ids: HashSet<u16> = notifications(&actions(&mut c))
        .iter()
        .map(|n| n.1)
        .collect();
    assert_eq!(ids.len(), 500);
}

#[test]
fn an_unvalidated_subscriber_is_notified_but_not_waited_for() {
    let now = Instant::now();
    let mut c = core();
    c.connected(1);
    c.subscribe_unvalidated(1, 7);
    subscribe(&mut c, now, 2, 7);
    assert_eq!(actions(&mut c), [Action::Follow(7)]);
    c.from_peer(now, 42, 7, Bytes::from_static(b"x"), true);
    let n = notifications(&actions(&mut c));
    assert_eq!(n.len(), 2);
    let unvalidated = n.iter().find(|x| x.0 == 1).unwrap();
    assert_eq!(unvalidated.1, 0, "message id 0: nothing to answer");
    let validating = n.iter().find(|x| x.0 == 2).unwrap().clone();
    validate(&mut c, now, 2, validating.1, true);
    assert_eq!(
        releases(&actions(&mut c)),
        [(42, true)],
        "only conn 2 was waited for"
    );
    // Alone, it lets peer data through at once.
    c.closed(2);
    actions(&mut c);
    c.from_peer(now, 43, 7, Bytes::new(), true);
    assert_eq!(releases(&actions(&mut c)), [(43, true)]);
}

#[test]
fn the_hop_budget_decides_whether_a_valid_item_goes_further() {
    assert!(forwards(0, 200), "0: unlimited");
    assert!(!forwards(1, 0), "ttl 1: the announcer's neighbours only");
    assert!(forwards(2, 0));
    assert!(!forwards(2, 1));
    assert!(!forwards(255, 254));
    let now = Instant::now();
    let mut c = core();
    subscribe(&mut c, now, 1, 7);
    actions(&mut c);
    c.from_peer(now, 42, 7, Bytes::new(), false);
    let n = notifications(&actions(&mut c));
    validate(&mut c, now, 1, n[0].1, true);
    assert_eq!(
        actions(&mut c),
        [Action::Release {
            item: 42,
            valid: true,
            forward: false
        }]
    );
}
