//! `subscribe`: notifications printed as they arrive, until `--count`.

use crate::common::{Proc, netaio, run, serve};

#[test]
fn notifications_arrive_until_the_count() {
    let (_server, port) = serve("127.0.0.1:0", &["--hmac", "s"]);
    let addr = format!("127.0.0.1:{port}");
    let mut sub = Proc::spawn(netaio(&[
        "--json",
        "--hmac",
        "s",
        "subscribe",
        &addr,
        "news",
        "weather",
        "--count",
        "2",
    ]));
    assert_eq!(sub.event("subscribed")["uri"], "news");
    assert_eq!(sub.event("subscribed")["uri"], "weather");
    for (uri, text) in [("news", "first"), ("weather", "rain")] {
        let out = run(&[
            "--json",
            "--hmac",
            "s",
            "call",
            &addr,
            "-t",
            "PUBLISH_URI",
            uri,
            text,
        ]);
        out.assert_code(0);
        let note = sub.event("notification");
        assert_eq!(
            (
                note["type"].as_str(),
                note["uri"].as_str(),
                note["content"].as_str()
            ),
            (Some("NOTIFY_URI"), Some(uri), Some(text))
        );
    }
    assert_eq!(sub.wait(), Some(0));
}

#[test]
fn a_refused_subscription_fails() {
    let (_server, port) = serve("127.0.0.1:0", &["--hmac", "s"]);
    let out = run(&[
        "--json",
        "--hmac",
        "not-s",
        "subscribe",
        &format!("127.0.0.1:{port}"),
        "news",
    ]);
    out.assert_code(4);
}
