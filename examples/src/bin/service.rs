//! A key-value store written as a `#[netaio::service]`, served on 127.0.0.1 (a free port) and
//! used by a client in the same process: CREATE, REQUEST, UPDATE and DELETE, with the error cases
//! arriving as typed errors, then both shut down gracefully.
//!
//! ```text
//! cargo run -p netaio-examples --bin service
//! ```
//!
//! | request | reply |
//! |---|---|
//! | CREATE_URI `key`, content `value` | OK `created`; ERROR `key exists` if it does |
//! | UPDATE_URI `key`, content `value` | OK `updated`; NOT_FOUND `key not found` if absent |
//! | DELETE_URI `key` | OK `deleted`; NOT_FOUND `key not found` if absent |
//! | REQUEST_URI `keys` | RESPOND_URI with the keys, comma-separated |
//! | REQUEST_URI `key` (any other) | RESPOND_URI with the value; NOT_FOUND `key not found` if absent |

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use netaio::router::{Content, ErrorReply, Uri};
use netaio::{Message, RequestError, TcpClient, TcpServer, service};
use netaio_examples::{init_tracing, show};

const WAIT: Duration = Duration::from_secs(5);

/// The store: one value shared by every connection, so its map is behind a `Mutex`.
#[derive(Default)]
struct KvStore {
    items: Mutex<BTreeMap<Bytes, Bytes>>,
}

/// The reply to a request for a key the store does not have.
fn key_not_found() -> ErrorReply {
    ErrorReply::not_found("key not found")
}

#[service]
impl KvStore {
    /// CREATE_URI: add a key; an existing key is an error (a `String` error is an ERROR reply).
    #[on(CREATE_URI)]
    async fn create(&self, Uri(key): Uri, Content(value): Content) -> Result<Message, String> {
        let mut items = self.items();
        if items.contains_key(&key) {
            return Err("key exists".into());
        }
        items.insert(key.clone(), value);
        Ok(Message::ok(key, "created"))
    }

    /// UPDATE_URI: replace a value (an `ErrorReply::not_found` error is a NOT_FOUND reply).
    #[on(UPDATE_URI)]
    async fn update(&self, Uri(key): Uri, Content(value): Content) -> Result<Message, ErrorReply> {
        let mut items = self.items();
        let slot = items.get_mut(&key).ok_or_else(key_not_found)?;
        *slot = value;
        Ok(Message::ok(key, "updated"))
    }

    /// DELETE_URI: remove a key.
    #[on(DELETE_URI)]
    async fn delete(&self, Uri(key): Uri) -> Result<Message, ErrorReply> {
        self.items().remove(&key).ok_or_else(key_not_found)?;
        Ok(Message::ok(key, "deleted"))
    }

    /// REQUEST_URI `keys`: a uri route, so it wins over the type route `get` for this uri.
    #[on(REQUEST_URI, uri = "keys")]
    async fn keys(&self) -> Message {
        let items = self.items();
        let keys: Vec<String> = items
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        Message::respond("keys", keys.join(","))
    }

    /// REQUEST_URI any other uri: the value of that key.
    #[on(REQUEST_URI)]
    async fn get(&self, Uri(key): Uri) -> Result<Message, ErrorReply> {
        let value = self.items().get(&key).cloned().ok_or_else(key_not_found)?;
        Ok(Message::respond(key, value))
    }

    /// Not a route: a plain method, left as it is by `#[service]`.
    fn items(&self) -> MutexGuard<'_, BTreeMap<Bytes, Bytes>> {
        // A handler that panicked while holding the lock left a consistent map (every change is
        // one insert or remove), so the store keeps serving.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    netaio_support::parse_no_args(
        "service",
        "A key-value store written as a #[netaio::service], used by a client in the same process; prints the exchange. Takes no arguments.",
    );
    init_tracing("warn");
    match run().await {
        Ok(()) => {
            println!("service example finished");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    // `mount` registers every route of the service, with the store shared by all connections.
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .mount(KvStore::default())
        .bind()
        .await?;
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());
    println!("server listening on {addr}");

    let client = TcpClient::builder().request_timeout(WAIT).build();
    let conn = client.connect(addr).await?;

    show_call("create", "color", "blue", conn.create("color", "blue")).await?;
    show_call("create", "size", "L", conn.create("size", "L")).await?;
    show_call("create", "color", "red", conn.create("color", "red")).await?;
    show_call("request", "color", "", conn.request("color", "")).await?;
    show_call("update", "color", "green", conn.update("color", "green")).await?;
    show_call("request", "color", "", conn.request("color", "")).await?;
    show_call("request", "keys", "", conn.request("keys", "")).await?;
    show_call("delete", "size", "", conn.delete("size")).await?;
    show_call("update", "size", "M", conn.update("size", "M")).await?;
    show_call("request", "keys", "", conn.request("keys", "")).await?;

    conn.close().await;
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(15), serving)
        .await
        .map_err(|_| "server did not stop within 15 s")??;
    println!("server shut down");
    Ok(())
}

/// Print a call (`> create "color" "blue"`) and its outcome: the reply, or the error reply as a
/// typed error. Anything else (a timeout, a closed connection) ends the example.
async fn show_call(
    verb: &str,
    key: &str,
    value: &str,
    call: impl Future<Output = Result<Message, RequestError>>,
) -> Result<(), Box<dyn Error>> {
    println!(
        "> {verb} \"{}\" \"{}\"",
        key.escape_default(),
        value.escape_default()
    );
    match call.await {
        Ok(reply) => println!("< {}", show::message(&reply)),
        Err(e) if e.reply().is_some() => println!("< error {}", show::request_error(&e)),
        Err(e) => return Err(format!("{verb} {key}: {e}").into()),
    }
    Ok(())
}
