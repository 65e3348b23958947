//! The RFC 8991 API between two nodes in one process, over IPv4 multicast on the loopback
//! interface (Linux delivers it there when the interface is chosen explicitly): node A on
//! 127.0.0.1, node B on 127.0.0.2, each test on its own multicast port. Discovery, negotiation
//! (accept, offer, decline with a reason, wait), synchronization (plain and rapid mode), floods,
//! and listening while busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use netaio_grasp::proto::CoreInterface;
use netaio_grasp::{
    Asa, Grasp, GraspError, Negotiated, Objective, Outcome, RegisterOptions, Step, Value,
};

static PORT: AtomicU16 = AtomicU16::new(47_100);

fn lo_index() -> u32 {
    netaio_grasp::net::interfaces::system_interfaces()
        .unwrap()
        .into_iter()
        .find(|i| i.name == "lo")
        .map(|i| i.index)
        .unwrap()
}

async fn node(ip: &str, port: u16) -> Grasp {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Grasp::builder()
        .ipv6(false)
        .ipv4(true)
        .port(port)
        .multicast_loop(true)
        .start_on(
            vec![CoreInterface {
                index: lo_index(),
                link_local: None,
                ipv4: Some(ip.parse().unwrap()),
            }],
            None,
        )
        .await
        .unwrap()
}

pub(crate) async fn pair() -> (Grasp, Grasp) {
    let port = PORT.fetch_add(1, Ordering::SeqCst);
    (node("127.0.0.1", port).await, node("127.0.0.2", port).await)
}

fn nzd(amount: i64) -> Value {
    Value::Array(vec!["NZD".into(), amount.into()])
}

pub(crate) fn ex3() -> Objective {
    Objective::new("EX3").neg(true).loop_count(8)
}

const SECOND: Duration = Duration::from_secs(1);

/// The listener of the scenario: declines a currency other than NZD, accepts an amount
/// up to its reserve (100, +10 per offer), else offers its reserve, with one M_WAIT above 100.
async fn serve_ex3(asa: Asa, rounds: usize) {
    for _ in 0..rounds {
        let (mut s, req) = asa.listen_negotiate(&ex3()).await.unwrap();
        tokio::spawn(async move {
            let value = req.value.clone().unwrap();
            let items = value.as_array().unwrap();
            if items[0].as_text() != Some("NZD") {
                s.end_negotiate(Outcome::Decline(Some("Invalid currency".into())))
                    .await
                    .unwrap();
                return;
            }
            let mut reserve = 100;
            let mut asked = items[1].as_i64().unwrap();
            let mut waited = false;
            loop {
                if asked <= reserve {
                    s.end_negotiate(Outcome::Accept).await.unwrap();
                    return;
                }
                if reserve > 100 && !waited {
                    waited = true;
                    s.negotiate_wait(3000).await.unwrap();
                }
                let offer = ex3().value(nzd(reserve));
                reserve += 10;
                match s.negotiate_step(&offer, Some(5 * SECOND)).await {
                    Ok(Step::Offer(o)) => {
                        asked = o.value.unwrap().as_array().unwrap()[1].as_i64().unwrap()
                    }
                    Ok(Step::Accepted(_)) | Err(_) => return,
                }
            }
        });
    }
}

#[tokio::test]
async fn discovery_and_negotiation_accept_offer_and_decline() {
    let (a, b) = pair().await;
    let briggs = a.register_asa("Briggs").unwrap();
    briggs
        .register_obj(&ex3(), RegisterOptions::default())
        .await
        .unwrap();
    tokio::spawn(serve_ex3(briggs.clone(), 3));
    let gray = b.register_asa("Gray").unwrap();
    gray.register_obj(&ex3(), RegisterOptions::default())
        .await
        .unwrap();

    // Discovery finds A (until A's listener is up, a retry).
    let mut found = Vec::new();
    for _ in 0..20 {
        found = gray.discover(&ex3(), SECOND / 2).await.unwrap();
        if !found.is_empty() {
            break;
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].socket_addr().unwrap().ip().to_string(),
        "127.0.0.1"
    );
    let peer = &found[0];

    // Accepted at once.
    let r = gray
        .request_negotiate(&ex3().value(nzd(80)), Some(peer), Some(5 * SECOND))
        .await
        .unwrap();
    assert!(matches!(r, Negotiated::Accepted(o) if o.value == Some(nzd(80))));

    // 150: offered 100, ask 120, offered 110 (after a wait), accepted by us.
    let Negotiated::Offer(mut s, offer) = gray
        .request_negotiate(&ex3().value(nzd(150)), Some(peer), Some(5 * SECOND))
        .await
        .unwrap()
    else {
        panic!("accepted at once")
    };
    assert_eq!(offer.value, Some(nzd(100)));
    // The listener echoed 8; we hold 7.
    assert_eq!((offer.loop_count, s.loop_count()), (7, 7));
    let next = s
        .negotiate_step(&ex3().value(nzd(120)), Some(5 * SECOND))
        .await
        .unwrap();
    let Step::Offer(o) = next else {
        panic!("{next:?}")
    };
    assert_eq!(o.value, Some(nzd(110)));
    assert_eq!(o.loop_count, 5);
    s.end_negotiate(Outcome::Accept).await.unwrap();

    // Another currency: declined with the reason.
    let r = gray
        .request_negotiate(
            &ex3().value(Value::Array(vec!["USD".into(), 10.into()])),
            Some(peer),
            Some(5 * SECOND),
        )
        .await;
    assert!(
        matches!(&r, Err(GraspError::Declined { reason: Some(why) }) if why == "Invalid currency"),
        "{r:?}"
    );
}

#[tokio::test]
async fn synchronization_plain_and_rapid_and_floods() {
    let (a, b) = pair().await;
    let briggs = a.register_asa("Briggs").unwrap();
    let ex2 = Objective::new("EX2").synch(true).loop_count(4);
    let ex5 = Objective::new("EX5").synch(true);
    let ex1 = Objective::new("EX1").synch(true);
    let v = Value::Array(vec![1.into(), "two".into(), 3.into()]);
    briggs
        .register_obj(&ex2, RegisterOptions::default())
        .await
        .unwrap();
    briggs
        .register_obj(&ex5, RegisterOptions::default().rapid(true))
        .await
        .unwrap();
    briggs
        .register_obj(&ex1, RegisterOptions::default())
        .await
        .unwrap();
    briggs
        .listen_synchronize(&ex2.clone().value(v.clone()))
        .unwrap();
    briggs
        .listen_synchronize(&ex5.clone().value("rapid"))
        .unwrap();
    let gray = b.register_asa("Gray").unwrap();

    let got = gray.synchronize(&ex2, None, Some(SECOND)).await.unwrap();
    assert_eq!(got.value, Some(v.clone()));
    // The receiver decrements the loop count.
    assert_eq!(got.loop_count, 3);
    // Rapid mode: the value came with the discovery response.
    let got = gray.synchronize(&ex5, None, Some(SECOND)).await.unwrap();
    assert_eq!(got.value, Some(Value::from("rapid")));

    // A value that changes is served as it is now.
    briggs
        .listen_synchronize(&ex2.clone().value("changed"))
        .unwrap();
    let peer = gray.discover(&ex2, SECOND).await.unwrap();
    let got = gray
        .synchronize(&ex2, peer.first(), Some(5 * SECOND))
        .await
        .unwrap();
    assert_eq!(got.value, Some(Value::from("changed")));
    briggs.stop_synchronize(&ex2).unwrap();
    let r = gray.synchronize(&ex2, peer.first(), Some(5 * SECOND)).await;
    assert!(matches!(r, Err(GraspError::NoListener)), "{r:?}");

    // Floods: B receives A's, with the ttl.
    briggs
        .flood(10_000, &[(ex1.clone().value("flood 1"), None)])
        .unwrap();
    let mut floods = Vec::new();
    for _ in 0..50 {
        floods = gray.get_flood(&ex1).unwrap();
        if !floods.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(floods.len(), 1);
    assert_eq!(floods[0].objective.value, Some(Value::from("flood 1")));
    assert!(floods[0].expires_at.is_some());
    // synchronize() prefers the flooded value.
    assert_eq!(
        gray.synchronize(&ex1, None, Some(SECOND))
            .await
            .unwrap()
            .value,
        Some(Value::from("flood 1"))
    );
    gray.expire_flood(&floods[0]).unwrap();
    assert!(gray.get_flood(&ex1).unwrap().is_empty());
}

#[tokio::test]
async fn requests_wait_while_the_listener_is_busy_and_several_listeners_share_them() {
    let (a, b) = pair().await;
    let briggs = a.register_asa("Briggs").unwrap();
    briggs
        .register_obj(&ex3(), RegisterOptions::default())
        .await
        .unwrap();
    let served = Arc::new(AtomicU16::new(0));
    // Two listening tasks; each handles one request at a time, slowly (a real sleep would be
    // wrong here: they wait for each other instead, one request per turn).
    for _ in 0..2 {
        let asa = briggs.clone();
        let served = served.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = asa.listen_negotiate(&ex3()).await else {
                    return;
                };
                // Busy: the next requests queue meanwhile.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                s.end_negotiate(Outcome::Accept).await.unwrap();
                served.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let gray = b.register_asa("Gray").unwrap();
    gray.register_obj(&ex3(), RegisterOptions::default())
        .await
        .unwrap();
    let mut peer = Vec::new();
    for _ in 0..20 {
        peer = gray.discover(&ex3(), SECOND / 2).await.unwrap();
        if !peer.is_empty() {
            break;
        }
    }
    let peer = peer.first().cloned().unwrap();
    let mut all = Vec::new();
    for i in 0..12 {
        let gray = gray.clone();
        let peer = peer.clone();
        all.push(tokio::spawn(async move {
            gray.request_negotiate(&ex3().value(nzd(i)), Some(&peer), Some(10 * SECOND))
                .await
        }));
    }
    for t in all {
        let r = t.await.unwrap();
        assert!(matches!(r, Ok(Negotiated::Accepted(_))), "{r:?}");
    }
    assert_eq!(served.load(Ordering::SeqCst), 12);

    // After stop_negotiate, requests are refused at once (the peer closes): noPeer.
    briggs.stop_negotiate(&ex3()).unwrap();
    let r = gray
        .request_negotiate(&ex3().value(nzd(1)), Some(&peer), Some(10 * SECOND))
        .await;
    assert!(matches!(r, Err(GraspError::NoPeer)), "{r:?}");
}

#[tokio::test]
async fn registration_errors_carry_rfc_8991_names() {
    let (a, _b) = pair().await;
    let asa = a.register_asa("A").unwrap();
    assert!(matches!(a.register_asa("A"), Err(GraspError::DupAsa)));
    let both = Objective::new("X").neg(true).synch(true);
    let e = asa
        .register_obj(&both, RegisterOptions::default())
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rfc_name()), (8, "notBoth"));
    let r = asa.listen_negotiate(&ex3()).await;
    assert!(matches!(r, Err(GraspError::NotYourObj)), "{r:?}");
    asa.deregister_asa().unwrap();
    let r = asa.discover(&ex3(), SECOND).await;
    assert!(matches!(r, Err(GraspError::NoAsa)), "{r:?}");
}
