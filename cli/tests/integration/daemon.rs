//! `daemon`: status, peers, publish, subscribe and call against two netaiod daemons the test
//! runs in process on 127.0.0.1 (B joined through A), an application behind A serving `echo`.

use netaio::router::Content;
use netaio::{Message, MessageType, Router};
use netaiod::{Daemon, DaemonConfig, NativeClient};

use crate::common::{LIMIT, Proc, netaio, run};

fn config(bootstrapper: Option<std::net::SocketAddr>) -> DaemonConfig {
    let boot = bootstrapper.map_or_else(String::new, |a| format!("bootstrapper = {a}\n"));
    let text = format!(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\n{boot}\
         [native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\ncall_timeout = 5\n"
    );
    DaemonConfig::parse(&text).unwrap().0
}

/// The daemons, the application behind A, and the runtime they run on.
struct Net {
    rt: tokio::runtime::Runtime,
    a: Option<Daemon>,
    b: Option<Daemon>,
    app: Option<NativeClient>,
}

impl Net {
    fn start() -> Net {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (a, b, app) = rt.block_on(async {
            let a = Daemon::start(config(None)).await.unwrap();
            let b = Daemon::start(config(Some(a.node().addr()))).await.unwrap();
            // B joined through A: A's neighbour (bounded wait on A's view).
            let mut view = a.node().watch_neighbors();
            let b_addr = b.node().addr();
            tokio::time::timeout(LIMIT, view.wait_for(|n| n.contains(&b_addr)))
                .await
                .unwrap()
                .unwrap();
            let echo = Router::new().on(
                (MessageType::REQUEST_URI, "echo"),
                |Content(c): Content| async move {
                    Message::respond("echo", [&b"echo: "[..], &c[..]].concat())
                },
            );
            let app = NativeClient::connect(a.native().unwrap().local_addr(), echo)
                .await
                .unwrap();
            app.serve("echo").await.unwrap();
            (a, b, app)
        });
        Net {
            rt,
            a: Some(a),
            b: Some(b),
            app: Some(app),
        }
    }

    fn a(&self) -> &Daemon {
        self.a.as_ref().unwrap()
    }

    fn b(&self) -> &Daemon {
        self.b.as_ref().unwrap()
    }

    fn api(d: &Daemon) -> String {
        d.native().unwrap().local_addr().to_string()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let (a, b, app) = (self.a.take(), self.b.take(), self.app.take());
        self.rt.block_on(async move {
            if let Some(app) = app {
                app.close().await;
            }
            for d in [a, b].into_iter().flatten() {
                d.shutdown().await;
            }
        });
    }
}

#[test]
fn status_peers_and_calls_by_peer_id() {
    let net = Net::start();
    let (api_a, api_b) = (Net::api(net.a()), Net::api(net.b()));
    let a_id = net.a().native().unwrap().peer_id().to_owned();

    let out = run(&["--json", "daemon", "--api", &api_a, "status"]);
    out.assert_code(0);
    let s = &out.events("status")[0];
    assert_eq!(s["peer_id"], a_id.as_str());
    assert_eq!(s["features"], serde_json::json!(["serve", "call"]));
    assert_eq!(s["neighbours"], 1);

    // --api after the daemon command too; B's address among A's neighbours.
    let out = run(&["--json", "daemon", "peers", "--api", &api_a]);
    out.assert_code(0);
    let peers: Vec<_> = out
        .events("peer")
        .iter()
        .map(|p| p["addr"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(peers, vec![net.b().node().addr().to_string()]);

    // From B, the application behind A by A's peer id: the first time with where A's daemons
    // answer (`ID@host:port`, remembered by B), then by the id alone; content from stdin.
    let a_at = format!("{a_id}@{}", net.a().native().unwrap().peer_addr());
    let out = run(&[
        "--json", "daemon", "--api", &api_b, "call", &a_at, "echo", "ping",
    ]);
    out.assert_code(0);
    let r = &out.events("reply")[0];
    assert_eq!(
        (r["content"].as_str(), r["peer"].as_str()),
        (Some("echo: ping"), Some(a_at.as_str()))
    );
    let mut cmd = netaio(&["daemon", "--api", &api_b, "call", &a_id, "echo", "-d", "@-"]);
    cmd.arg("--json");
    let out = crate::common::run_with(cmd, Some(b"from stdin"));
    out.assert_code(0);
    assert_eq!(out.events("reply")[0]["content"], "echo: from stdin");

    // A uri nobody serves there: NOT_FOUND carried back, exit 3.
    let out = run(&["daemon", "--api", &api_b, "call", &a_id, "nothing"]);
    out.assert_code(3);
    // A daemon that is not there: a connection failure, exit 6, one line.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = run(&["daemon", "--api", &closed.to_string(), "status"]);
    out.assert_code(6);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn published_gossip_reaches_a_subscriber() {
    let net = Net::start();
    let api_a = Net::api(net.a());
    let mut sub = Proc::spawn(netaio(&[
        "--json",
        "daemon",
        "--api",
        &api_a,
        "subscribe",
        "9",
        "--count",
        "1",
    ]));
    assert_eq!(sub.event("subscribed")["topic"], 9);
    // Another local application publishes: the daemon notifies its other subscribers.
    let out = run(&[
        "--json",
        "daemon",
        "--api",
        &api_a,
        "publish",
        "9",
        "hello all",
    ]);
    out.assert_code(0);
    let p = &out.events("published")[0];
    assert_eq!(
        (p["topic"].as_u64(), p["content_len"].as_u64()),
        (Some(9), Some(9))
    );
    let n = sub.event("notification");
    assert_eq!(
        (n["topic"].as_u64(), n["content"].as_str()),
        (Some(9), Some("hello all"))
    );
    assert_eq!(n["message_id"], 0, "no validation asked");
    assert_eq!(sub.wait(), Some(0), "--count 1 ends it");
    // A topic that is not a u16: a usage error.
    run(&["daemon", "--api", &api_a, "publish", "70000", "x"]).assert_code(2);
}

#[test]
fn a_subscriber_exits_6_when_the_daemon_stops() {
    let mut net = Net::start();
    let api_a = Net::api(net.a());
    let mut sub = Proc::spawn(netaio(&[
        "--json",
        "daemon",
        "--api",
        &api_a,
        "subscribe",
        "3",
    ]));
    assert_eq!(sub.event("subscribed")["topic"], 3);
    let (a, app) = (net.a.take().unwrap(), net.app.take().unwrap());
    net.rt.block_on(async move {
        app.close().await;
        a.shutdown().await;
    });
    assert_eq!(sub.wait(), Some(6));
    let failure = sub.event("failure");
    assert_eq!(failure["kind"], "connection_failed");
}

/// `--socket PATH`: the daemon's native API on its Unix socket (`[native] socket`), instead of
/// `--api`; a socket nobody serves is a connection failure (exit 6).
#[cfg(unix)]
#[test]
fn status_over_the_daemons_unix_socket() {
    let dir = std::env::temp_dir().join(format!("netaio-cli-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("native.sock");
    let text = format!(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\n\
         [native]\nsocket = {}\npeer_address = 127.0.0.1:0\n",
        path.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = rt
        .block_on(Daemon::start(DaemonConfig::parse(&text).unwrap().0))
        .unwrap();
    let id = d.native().unwrap().peer_id().to_owned();
    let socket = path.to_str().unwrap();
    let out = run(&["--json", "daemon", "--socket", socket, "status"]);
    out.assert_code(0);
    assert_eq!(out.events("status")[0]["peer_id"], id.as_str());
    rt.block_on(d.shutdown());
    let out = run(&["daemon", "--socket", socket, "status"]);
    out.assert_code(6);
    let _ = std::fs::remove_dir_all(&dir);
}
