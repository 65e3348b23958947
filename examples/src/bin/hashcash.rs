//! Proof of work against spam: the server's `post` route demands a 16-bit hashcash stamp on every
//! request (an inner `HashcashAuth` on that route only), while `status` stays free. A client that
//! solves stamps posts (the time each call took, stamp included, is printed); a client that does
//! not is refused with `RequestError::Auth` before the handler runs.
//!
//! ```text
//! cargo run -p netaio-examples --bin hashcash
//! ```
//!
//! The work is asked of clients only: the server's plugin checks stamps but does not stamp its
//! replies (`stamp_outgoing(false)`), and the clients' plugin stamps requests but does not
//! require stamps on replies (`require_incoming(false)`). The client solves on tokio's blocking
//! pool (`HashcashAuth` is a blocking plugin), so solving never stalls other connections.

use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use netaio::plugin::{HashcashAuth, Plugins, SendOptions};
use netaio::router::Content;
use netaio::{Connection, Message, MessageType, RequestError, Router, TcpClient, TcpServer};
use netaio::{handlers, on};
use netaio_examples::{init_tracing, show};

/// Leading zero bits a stamp needs: 65,536 hashes on average, a few milliseconds on one core in
/// a release build (see `HashcashAuth`'s cost table); each extra bit doubles the cost.
const DIFFICULTY: u32 = 16;
/// Generous: a debug build on a slow machine may take a while to solve.
const WAIT: Duration = Duration::from_secs(30);

/// Posts accepted by the server.
static POSTS: AtomicUsize = AtomicUsize::new(0);

/// Free for everyone.
#[on(REQUEST_URI, uri = "status")]
async fn status() -> Message {
    Message::respond(
        "status",
        format!("{} post(s)", POSTS.load(Ordering::SeqCst)),
    )
}

/// Only with a stamp of `DIFFICULTY` bits over this very message (type, uri and content), made
/// within the last minute and not seen before. The reply goes out unstamped.
#[on(
    REQUEST_URI,
    uri = "post",
    auth = HashcashAuth::new(DIFFICULTY).stamp_outgoing(false)
)]
async fn post(Content(text): Content) -> Message {
    let n = POSTS.fetch_add(1, Ordering::SeqCst) + 1;
    Message::ok("post", format!("post #{n} accepted ({} bytes)", text.len()))
}

/// What a client attaches to its `post` calls (Python: `request(..., auth_plugin=...)`).
fn stamping() -> SendOptions {
    SendOptions::new()
        .inner(Plugins::new().auth(HashcashAuth::new(DIFFICULTY).require_incoming(false)))
}

#[tokio::main]
async fn main() -> ExitCode {
    netaio_support::parse_no_args(
        "hashcash",
        "Proof of work against spam: one route demands a hashcash stamp on every request; prints what a client that solves stamps and one that does not get. Takes no arguments.",
    );
    init_tracing("warn");
    match run().await {
        Ok(()) => {
            println!("hashcash example finished");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hashcash: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new().routes(handlers![status, post]))
        .bind()
        .await?;
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());
    println!("server listening on {addr}; \"post\" needs a {DIFFICULTY}-bit stamp");

    // A client that does the work.
    let client = TcpClient::builder().request_timeout(WAIT).build();
    let honest = client.connect(addr).await?;
    println!("client that solves stamps connected");
    for text in ["hello", "proof of work, not of identity", "third post"] {
        let msg = Message::new(MessageType::REQUEST_URI, "post", text);
        println!("> {} (with a {DIFFICULTY}-bit stamp)", show::message(&msg));
        let started = Instant::now();
        let reply = honest
            .call_with(msg, &stamping())
            .await
            .map_err(|e| format!("post refused: {}", show::request_error(&e)))?;
        let took = started.elapsed();
        println!("< {}", show::message(&reply));
        println!(
            "  stamp solved and call answered in {} ms",
            took.as_millis()
        );
        expect(reply.message_type == MessageType::OK, "the post accepted")?;
    }

    // A client that does not: `status` answers it, `post` does not.
    let lazy = client.connect(addr).await?;
    println!("client that does not solve stamps connected");
    let reply = call(&lazy, Message::new(MessageType::REQUEST_URI, "status", "")).await?;
    expect(
        reply.content().as_ref() == b"3 post(s)",
        "three posts so far",
    )?;
    let spam = Message::new(MessageType::REQUEST_URI, "post", "buy now");
    println!("> {} (no stamp)", show::message(&spam));
    match lazy.call(spam).await {
        Err(e @ RequestError::Auth(_)) => println!("< error {}", show::request_error(&e)),
        Err(e) => return Err(format!("expected RequestError::Auth, got {e}").into()),
        Ok(m) => return Err(format!("spam accepted: {}", show::message(&m)).into()),
    }

    let reply = call(
        &honest,
        Message::new(MessageType::REQUEST_URI, "status", ""),
    )
    .await?;
    expect(
        reply.content().as_ref() == b"3 post(s)",
        "the unstamped post did not reach the handler",
    )?;

    lazy.close().await;
    honest.close().await;
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(15), serving)
        .await
        .map_err(|_| "server did not stop within 15 s")??;
    println!("server shut down");
    Ok(())
}

/// Print a call and its reply; any error ends the example.
async fn call(conn: &Connection, msg: Message) -> Result<Message, Box<dyn Error>> {
    println!("> {}", show::message(&msg));
    let reply = conn
        .call(msg)
        .await
        .map_err(|e| format!("request failed: {}", show::request_error(&e)))?;
    println!("< {}", show::message(&reply));
    Ok(reply)
}

fn expect(ok: bool, what: &str) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected outcome: expected {what}").into())
    }
}
