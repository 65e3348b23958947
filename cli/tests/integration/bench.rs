//! `bench`: every request answered and measured.

use crate::common::{run, serve};

#[test]
fn bench_counts_every_request_and_orders_its_percentiles() {
    let (_server, port) = serve("127.0.0.1:0", &[]);
    let out = run(&[
        "--json",
        "bench",
        &format!("127.0.0.1:{port}"),
        "--requests",
        "300",
        "--connections",
        "2",
        "--pipeline",
        "4",
        "--size",
        "100",
    ]);
    out.assert_code(0);
    let b = &out.events("bench")[0];
    assert_eq!(
        (b["ok"].as_u64(), b["failed"].as_u64()),
        (Some(300), Some(0))
    );
    assert_eq!(
        (b["connections"].as_u64(), b["pipeline"].as_u64()),
        (Some(2), Some(4))
    );
    let (p50, p90, p99, max) = (
        b["p50_us"].as_u64().unwrap(),
        b["p90_us"].as_u64().unwrap(),
        b["p99_us"].as_u64().unwrap(),
        b["max_us"].as_u64().unwrap(),
    );
    assert!(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{b}");
    assert!(b["msgs_per_s"].as_f64().unwrap() > 0.0);
    // 300 requests and replies of 100 bytes each: the rate matches the bytes.
    let mb = b["mb_per_s"].as_f64().unwrap();
    let expected = 300.0 * 200.0 / 1e6 / b["seconds"].as_f64().unwrap();
    assert!(
        (mb - expected).abs() < expected * 0.01,
        "{mb} vs {expected}"
    );
}

#[test]
fn bench_against_nothing_fails_to_connect() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run(&["bench", &format!("127.0.0.1:{port}"), "--requests", "1"]).assert_code(6);
}
