//! The native API on a Unix socket (`[native] socket`): HELLO and a request over it, the socket
//! file's mode, `allowed_uids` checked by the kernel's record of the connecting process, a stale
//! socket file replaced and a live one refused, the file removed at shutdown, and the socket
//! beside the loopback TCP address.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use netaio::{RequestError, Router};
use netaiod::native_client::{NativeAddr, NativeClientError};
use netaiod::{Daemon, DaemonConfig, NativeClient};

/// A directory of the test's own, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netaiod-sock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(socket: &Path, extra: &str) -> DaemonConfig {
    let text = format!(
        "[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\n\
         [native]\nsocket = {}\npeer_address = 127.0.0.1:0\n{extra}",
        socket.display()
    );
    let (config, warnings) = DaemonConfig::parse(&text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    config
}

/// The effective uid of this process (the owner of what it creates).
fn our_uid(dir: &Path) -> u32 {
    let probe = dir.join("probe");
    std::fs::write(&probe, "").unwrap();
    std::fs::metadata(&probe).unwrap().uid()
}

#[tokio::test]
async fn hello_and_a_request_on_the_socket_with_its_mode_and_the_uid_check() {
    let dir = Dir::new("hello");
    let ours = our_uid(&dir.0);
    let path = dir.0.join("native.sock");
    // A stale socket file (its listener gone) is replaced at start.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let cfg = config(
        &path,
        &format!("socket_mode = 0660\nallowed_uids = {ours}\n"),
    );
    let d = Daemon::start(cfg.clone()).await.unwrap();
    assert_eq!(d.native().unwrap().socket_path(), Some(path.as_path()));
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o777, 0o660);

    let app = NativeClient::connect_unix(&path, Router::new())
        .await
        .unwrap();
    assert_eq!(app.peer_id().len(), 32);
    assert_eq!(app.peers().await.unwrap(), Vec::<String>::new());
    app.serve("echo").await.unwrap();

    // A second daemon on the same socket is refused, and the first one serves on.
    let second = config(&path, "");
    let e = Daemon::start(second).await.unwrap_err().to_string();
    assert!(e.contains("listens"), "{e}");
    assert!(app.peers().await.is_ok());
    app.close().await;

    d.shutdown().await;
    assert!(!path.exists(), "the socket file outlived the daemon");
}

#[tokio::test]
async fn a_uid_not_allowed_is_refused_on_the_socket() {
    let dir = Dir::new("refused");
    let ours = our_uid(&dir.0);
    let path = dir.0.join("native.sock");
    let other = ours.wrapping_add(4242);
    let d = Daemon::start(config(&path, &format!("allowed_uids = {other}\n")))
        .await
        .unwrap();
    // The default mode: the daemon's user only.
    let mode = std::fs::symlink_metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    match NativeClient::connect_unix(&path, Router::new()).await {
        Err(NativeClientError::Request(RequestError::NotPermitted(m))) => {
            let text = String::from_utf8_lossy(m.content()).into_owned();
            // The uid is the kernel's record of this process: SO_PEERCRED, not the TCP tables.
            assert!(
                text.contains(&format!("uid {ours} is not allowed")),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    d.shutdown().await;
}

#[tokio::test]
async fn the_socket_and_the_loopback_address_serve_the_same_api() {
    let dir = Dir::new("both");
    let path = dir.0.join("native.sock");
    let d = Daemon::start(config(&path, "address = 127.0.0.1:0\n"))
        .await
        .unwrap();
    let tcp = NativeClient::connect(d.native().unwrap().local_addr(), Router::new())
        .await
        .unwrap();
    let unix = NativeClient::connect_to(
        &NativeAddr::Unix(path.clone()),
        Router::new(),
        netaiod::native::NATIVE_VERSION,
    )
    .await
    .unwrap();
    assert_eq!(tcp.peer_id(), unix.peer_id());
    // A route registered over the socket, another over TCP: one daemon, one table.
    unix.serve("a").await.unwrap();
    tcp.serve("b").await.unwrap();
    tcp.close().await;
    unix.close().await;
    d.shutdown().await;
    assert!(!path.exists());
}
