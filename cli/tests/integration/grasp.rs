//! `grasp flood` on 127.0.0.1 and `grasp get-flood`, `discover`, `synchronize` on 127.0.0.2,
//! over IPv4 multicast on the loopback interface (`--loopback`).

use crate::common::{Proc, netaio, run};

#[test]
fn flood_then_get_flood_discover_and_synchronize() {
    let port = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut flooder = Proc::spawn(netaio(&[
        "--json",
        "grasp",
        "flood",
        "CLI1",
        r#"[1, "two", {"three": 3}]"#,
        "--loopback",
        "127.0.0.1",
        "--port",
        &port,
        "--seconds",
        "60",
    ]));
    let flooding = flooder.event("flooding");
    assert_eq!(flooding["objective"], "CLI1");
    let at = |cmd: &str, secs: &str| {
        run(&[
            "--json",
            "grasp",
            cmd,
            "CLI1",
            "--loopback",
            "127.0.0.2",
            "--port",
            &port,
            "--seconds",
            secs,
        ])
    };
    let got = at("get-flood", "20");
    got.assert_code(0);
    let flood = &got.events("flood")[0];
    assert_eq!(flood["value"], serde_json::json!([1, "two", {"three": 3}]));

    let found = at("discover", "3");
    found.assert_code(0);
    assert!(!found.events("locator").is_empty(), "{}", found.stdout);

    let synced = at("synchronize", "10");
    synced.assert_code(0);
    assert_eq!(
        synced.events("value")[0]["value"],
        serde_json::json!([1, "two", {"three": 3}])
    );

    // An objective nobody floods: a timeout.
    let none = run(&[
        "--json",
        "grasp",
        "get-flood",
        "NOBODY",
        "--loopback",
        "127.0.0.2",
        "--port",
        &port,
        "--seconds",
        "0.5",
    ]);
    none.assert_code(5);
    run(&["grasp", "flood", "X", "not json", "--loopback", "127.0.0.1"]).assert_code(1);
}
