//! Two plugin layers, as in the Python README's plugin example: every message between the server
//! and its clients is encrypted (`AeadCipher`) and authenticated (`HmacAuth`) with the node secret
//! (the instance, or outer, layer), and one route, `admin`, also needs an inner layer with its own
//! secret, attached with `#[netaio::on(..., auth = ..., cipher = ...)]` (Python:
//! `@server.on(key, auth_plugin=..., cipher_plugin=...)`).
//!
//! ```text
//! cargo run -p netaio-examples --bin hmac_cipher
//! ```
//!
//! It shows the two layers on the wire, a call to `admin` with and without the inner layer, and a
//! client with the wrong node secret; the refusals arrive as `RequestError::Auth`, and no refused
//! message reaches a handler.

use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netaio::plugin::{AeadCipher, HmacAuth, PluginContext, Plugins, SendOptions, seal};
use netaio::router::Content;
use netaio::{Connection, Message, MessageType, RequestError, Router, TcpClient, TcpServer};
use netaio::{handlers, on};
use netaio_examples::{init_tracing, show};

/// The secret every node shares (a real one is random, at least 16 bytes: see the README).
const NODE_SECRET: &[u8] = b"node secret: 7f3a9c2e5b18d604";
/// The secret of the `admin` route's inner layer, known only to administrators.
const ADMIN_SECRET: &[u8] = b"admin secret: c41d88e2a0b7f935";
const WAIT: Duration = Duration::from_secs(5);

/// How many times the admin handler ran: only authenticated calls may count.
static ADMIN_RUNS: AtomicUsize = AtomicUsize::new(0);

/// The instance layer of the server and of the clients: same secret on both ends. With
/// `encrypt_uri`, even the uri is hidden on the wire; routing sees the decrypted one.
fn node_auth(secret: &[u8]) -> HmacAuth {
    HmacAuth::new(secret)
}
fn node_cipher(secret: &[u8]) -> AeadCipher {
    AeadCipher::new(secret).encrypt_uri(true)
}

/// The inner layer of `admin`: a second `HmacAuth` and `AeadCipher` in the same message, so their
/// fields get other names (`admin.nonce`, `admin.ts`, `admin.hmac`, `admin.iv`).
fn admin_auth() -> HmacAuth {
    HmacAuth::new(ADMIN_SECRET).field_prefix("admin.")
}
fn admin_cipher() -> AeadCipher {
    AeadCipher::new(ADMIN_SECRET).nonce_field("admin.iv")
}
fn admin_layer() -> Plugins {
    Plugins::new().auth(admin_auth()).cipher(admin_cipher())
}

#[on(REQUEST_URI, uri = "echo")]
async fn echo(msg: Message) -> Message {
    Message::respond(msg.uri().clone(), msg.content().clone())
}

/// Runs only for messages that passed both layers; its reply is sealed with both.
#[on(REQUEST_URI, uri = "admin", auth = admin_auth(), cipher = admin_cipher())]
async fn admin(Content(order): Content) -> Message {
    ADMIN_RUNS.fetch_add(1, Ordering::SeqCst);
    Message::respond("admin", [&b"done: "[..], &order].concat())
}

#[tokio::main]
async fn main() -> ExitCode {
    netaio_support::parse_no_args(
        "hmac_cipher",
        "Two plugin layers (HmacAuth + AeadCipher for the node, another pair on one route); prints the exchange and the refusals. Takes no arguments.",
    );
    init_tracing("warn");
    match run().await {
        Ok(()) => {
            println!("hmac_cipher example finished");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hmac_cipher: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new().routes(handlers![echo, admin]))
        .auth(node_auth(NODE_SECRET))
        .cipher(node_cipher(NODE_SECRET))
        .bind()
        .await?;
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());
    println!("server listening on {addr}");

    // What the layers put on the wire, with the pure pipeline function the transports use
    // (inner cipher, inner auth, instance cipher, instance auth).
    let node = Plugins::new()
        .auth(node_auth(NODE_SECRET))
        .cipher(node_cipher(NODE_SECRET));
    let order = || Message::new(MessageType::REQUEST_URI, "admin", "rotate keys");
    let sealed = seal(order(), &admin_layer(), &node, &PluginContext::default())?;
    println!(
        "on the wire: uri \"{}\", {} bytes of content instead of {}, auth fields {}",
        sealed.uri().escape_ascii(),
        sealed.content().len(),
        order().content().len(),
        field_names(&sealed)
    );

    // A client with the node secret: the instance layer is applied to everything it sends and
    // checked on everything it receives.
    let client = TcpClient::builder()
        .auth(node_auth(NODE_SECRET))
        .cipher(node_cipher(NODE_SECRET))
        .request_timeout(WAIT)
        .build();
    let conn = client.connect(addr).await?;
    println!("client with the node secret connected");

    let reply = call(
        &conn,
        Message::new(MessageType::REQUEST_URI, "echo", "hello"),
        "",
    )
    .await?;
    expect(reply.content().as_ref() == b"hello", "echo answered")?;

    // The inner layer for this one call (Python: `request(..., auth_plugin=, cipher_plugin=)`);
    // the reply is opened with it too.
    let opts = SendOptions::new().inner(admin_layer());
    let reply = call_with(&conn, order(), &opts, " (with the admin layer)").await?;
    expect(
        reply.content().as_ref() == b"done: rotate keys",
        "admin answered",
    )?;

    // The instance layer alone does not open `admin`.
    let refused = call_refused(&conn, order(), " (without the admin layer)").await?;
    expect(
        refused.content().as_ref() == b"HMAC auth failed",
        "the inner HmacAuth refused",
    )?;

    // A client with the wrong node secret: refused by the server's instance HmacAuth before
    // routing; the AUTH_ERROR reply goes out without plugins, so it can read it.
    let intruder = TcpClient::builder()
        .auth(node_auth(b"a guess"))
        .cipher(node_cipher(b"a guess"))
        .request_timeout(WAIT)
        .build();
    let bad = intruder.connect(addr).await?;
    println!("client with a wrong secret connected");
    call_refused(
        &bad,
        Message::new(MessageType::REQUEST_URI, "echo", "hello"),
        "",
    )
    .await?;
    call_refused(&bad, order(), "").await?;

    let runs = ADMIN_RUNS.load(Ordering::SeqCst);
    println!("the admin handler ran {runs} time(s)");
    expect(
        runs == 1,
        "only the call with the admin layer ran the handler",
    )?;

    bad.close().await;
    conn.close().await;
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(15), serving)
        .await
        .map_err(|_| "server did not stop within 15 s")??;
    println!("server shut down");
    Ok(())
}

fn field_names(msg: &Message) -> String {
    msg.auth
        .iter()
        .map(|(name, _)| name)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn call(conn: &Connection, msg: Message, note: &str) -> Result<Message, Box<dyn Error>> {
    call_with(conn, msg, &SendOptions::new(), note).await
}

/// Print a call and its reply; any error ends the example.
async fn call_with(
    conn: &Connection,
    msg: Message,
    opts: &SendOptions,
    note: &str,
) -> Result<Message, Box<dyn Error>> {
    println!("> {}{note}", show::message(&msg));
    let reply = conn
        .call_with(msg, opts)
        .await
        .map_err(|e| format!("request failed: {}", show::request_error(&e)))?;
    println!("< {}", show::message(&reply));
    Ok(reply)
}

/// Print a call that must be refused with AUTH_ERROR, and return that reply.
async fn call_refused(
    conn: &Connection,
    msg: Message,
    note: &str,
) -> Result<Message, Box<dyn Error>> {
    println!("> {}{note}", show::message(&msg));
    match conn.call(msg).await {
        Err(e @ RequestError::Auth(_)) => {
            println!("< error {}", show::request_error(&e));
            let reply = e.reply().ok_or("an auth error carries the reply")?;
            Ok(reply.clone())
        }
        Err(e) => Err(format!("expected RequestError::Auth, got {e}").into()),
        Ok(m) => Err(format!("expected RequestError::Auth, got {}", show::message(&m)).into()),
    }
}

fn expect(ok: bool, what: &str) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected outcome: expected {what}").into())
    }
}
