//! Daemon-to-daemon calls on 127.0.0.1: a daemon's peer id comes from its host key, and a
//! PEER_CALL reaches an application only when sealed (encrypted and signed) by the keys of the
//! daemon that greeted on that connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use netaio::plugin::{CipherError, CipherPlugin, PluginContext, Plugins, SendOptions};
use netaio::router::Content;
use netaio::{Connection, Message, MessageType, Router, TcpClient};
use netaio_asymmetric::{AsymmetricPeerPlugin, Identity, PublicKeys, X25519Cipher};
use netaiod::native::{PEER_CALL_URI, PEER_HELLO_URI, peer_id_text};
use netaiod::{Daemon, DaemonConfig, NativeClient};

const LIMIT: Duration = Duration::from_secs(10);

/// A daemon with a native API and the host key at `key`.
async fn daemon(key: &std::path::Path) -> Daemon {
    let text = format!(
        "hostkey = {}\n[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\n\
         [native]\naddress = 127.0.0.1:0\npeer_address = 127.0.0.1:0\ncall_timeout = 5\n",
        key.display()
    );
    Daemon::start(DaemonConfig::parse(&text).unwrap().0)
        .await
        .unwrap()
}

fn key_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netaiod-peer-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// An application behind `d` serving `echo`, counting the requests it gets.
async fn echo_app(d: &Daemon) -> (NativeClient, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let router = Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        move |Content(body): Content| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Message::respond("echo", [&b"echo: "[..], &body[..]].concat()) }
        },
    );
    let app = NativeClient::connect(d.native().unwrap().local_addr(), router)
        .await
        .unwrap();
    app.serve("echo").await.unwrap();
    (app, count)
}

#[tokio::test]
async fn the_peer_id_is_derived_from_the_host_key_and_called_by_it() {
    let (key_a, key_b) = (key_path("a"), key_path("b"));
    let a = daemon(&key_a).await;
    let b = daemon(&key_b).await;
    let seed: [u8; 32] = std::fs::read(&key_a).unwrap().try_into().unwrap();
    let id_a = a.native().unwrap().peer_id().to_owned();
    assert_eq!(
        id_a,
        peer_id_text(&Identity::from_seed(seed).public_keys()),
        "the hex of the self-certifying id of the host key"
    );
    assert_eq!(id_a.len(), 32);
    assert_ne!(id_a, b.native().unwrap().peer_id());
    let (_app_a, served) = echo_app(&a).await;
    let app_b = NativeClient::connect(b.native().unwrap().local_addr(), Router::new())
        .await
        .unwrap();
    // By the bare id before any address is known: a clear error.
    let unknown = app_b.call(&id_a, "echo", "x").await.unwrap_err();
    assert!(
        unknown.to_string().contains("no address known"),
        "{unknown}"
    );
    // Another daemon's address under A's id (B's own): B refuses to call it (the keys there
    // are not A's).
    let (_app_b_serving, served_b) = echo_app(&b).await;
    let wrong = format!("{id_a}@{}", b.native().unwrap().peer_addr());
    let refused = tokio::time::timeout(LIMIT, app_b.call(&wrong, "echo", "three"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(refused.to_string().contains("is not peer"), "{refused}");
    // With its address once, then by the id alone.
    let with_addr = format!("{id_a}@{}", a.native().unwrap().peer_addr());
    let reply = tokio::time::timeout(LIMIT, app_b.call(&with_addr, "echo", "one"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "echo: one");
    let reply = tokio::time::timeout(LIMIT, app_b.call(&id_a, "echo", "two"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "echo: two");
    assert_eq!(served.load(Ordering::SeqCst), 2);
    assert_eq!(served_b.load(Ordering::SeqCst), 0);

    // Restarted with the same host key: the same id.
    a.shutdown().await;
    let a = daemon_keeping(&key_a).await;
    assert_eq!(a.native().unwrap().peer_id(), id_a);
    a.shutdown().await;
    b.shutdown().await;
}

/// A daemon on an existing key file (not removed first).
async fn daemon_keeping(key: &std::path::Path) -> Daemon {
    daemon(key).await
}

/// X25519 that flips the last ciphertext byte after encrypting (the signature, made after, is
/// then valid over the tampered bytes: only the cipher can notice).
struct Tamper(X25519Cipher);

impl CipherPlugin for Tamper {
    fn encrypt(&self, msg: Message, ctx: &PluginContext<'_>) -> Result<Message, CipherError> {
        let mut msg = self.0.encrypt(msg, ctx)?;
        let mut content = msg.content().to_vec();
        if let Some(last) = content.last_mut() {
            *last ^= 1;
        }
        msg.body.content = Bytes::from(content);
        Ok(msg)
    }

    fn decrypt(&self, msg: Message, ctx: &PluginContext<'_>) -> Result<Message, CipherError> {
        self.0.decrypt(msg, ctx)
    }

    fn is_peer_specific(&self) -> bool {
        true
    }
}

fn keys(id: &Identity) -> Bytes {
    let k = id.public_keys();
    let mut out = BytesMut::new();
    out.put_slice(&k.x25519);
    out.put_slice(&k.ed25519);
    out.freeze()
}

/// Greets the daemon on `conn` as `me`; the daemon's keys.
async fn greet(conn: &Connection, me: &Identity) -> PublicKeys {
    let hello = Message::new(MessageType::REQUEST_URI, PEER_HELLO_URI, keys(me));
    let reply = conn.call(hello).await.unwrap();
    let c = reply.content();
    PublicKeys {
        x25519: c[..32].try_into().unwrap(),
        ed25519: c[32..64].try_into().unwrap(),
    }
}

fn peer_call(body: &str) -> Message {
    let mut c = BytesMut::new();
    c.put_u16(4);
    c.put_slice(b"echo");
    c.put_slice(body.as_bytes());
    Message::new(MessageType::REQUEST_URI, PEER_CALL_URI, c.freeze())
}

#[tokio::test]
async fn unsealed_tampered_or_foreign_signed_peer_calls_are_refused() {
    let a = daemon(&key_path("refuse")).await;
    let (_app, served) = echo_app(&a).await;
    let mallory = Identity::generate();
    let client = TcpClient::builder()
        .peer_plugin(AsymmetricPeerPlugin)
        .request_timeout(Duration::from_secs(3))
        .build();
    let conn = client
        .connect(a.native().unwrap().peer_addr())
        .await
        .unwrap();
    // A hello with unusable keys is refused.
    let bad = Message::new(MessageType::REQUEST_URI, PEER_HELLO_URI, vec![0u8; 64]);
    assert!(conn.call(bad).await.is_err());
    let a_keys = greet(&conn, &mallory).await;
    assert_eq!(peer_id_text(&a_keys), a.native().unwrap().peer_id());
    let record = AsymmetricPeerPlugin
        .peer(
            Bytes::copy_from_slice(&netaio_asymmetric::peer_id(&a_keys)),
            &a_keys,
            Default::default(),
        )
        .unwrap();
    conn.set_peer(Some(record));
    let call = |plugins: Plugins, body: &'static str| {
        let conn = conn.clone();
        async move {
            let opts = SendOptions::new()
                .inner(plugins)
                .timeout(Duration::from_secs(3));
            tokio::time::timeout(LIMIT, conn.call_with(peer_call(body), &opts))
                .await
                .unwrap()
        }
    };

    // In clear: refused.
    assert!(call(Plugins::new(), "clear").await.is_err());
    // Encrypted but unsigned: refused.
    let unsigned = Plugins::new().cipher(X25519Cipher::new(&mallory));
    assert!(call(unsigned, "unsigned").await.is_err());
    // Sealed by another identity than the one that greeted: refused.
    let eve = Identity::generate();
    assert!(
        call(netaio_gossip::net::peer_plugins(&eve), "eve")
            .await
            .is_err()
    );
    // Sealed by mallory, one ciphertext byte flipped: refused.
    let tampered = Plugins::new()
        .cipher(Tamper(X25519Cipher::new(&mallory)))
        .auth(
            netaio_asymmetric::Ed25519Auth::new(&mallory)
                .ts_field("sig_ts")
                .nonce_field("sig_nonce"),
        );
    assert!(call(tampered, "tampered").await.is_err());
    assert_eq!(
        served.load(Ordering::SeqCst),
        0,
        "none reached the application"
    );
    // Sealed as the greeted daemon: served (so the refusals above are the sealing's).
    let reply = call(netaio_gossip::net::peer_plugins(&mallory), "sealed")
        .await
        .unwrap();
    assert_eq!(reply.content().as_ref(), b"echo: sealed");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    a.shutdown().await;
}
