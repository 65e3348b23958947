//! A server and a client in one process: the echo service on 127.0.0.1 (a free port), a client
//! that makes a request, gets a NOT_FOUND as a typed error, subscribes, publishes and receives the
//! notification through its own router, then both shut down gracefully.
//!
//! ```text
//! cargo run -p netaio-examples --bin demo
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use netaio::router::State;
use netaio::{Connection, Message, MessageType, RequestError, Router, TcpClient, TcpServer};
use netaio_examples::{init_tracing, service, show};
use tokio::sync::mpsc;

const TOPIC: &str = "news";
const WAIT: Duration = Duration::from_secs(5);

type Notes = mpsc::Sender<Message>;

#[tokio::main]
async fn main() -> ExitCode {
    netaio_support::parse_no_args(
        "demo",
        "A server and a client in one process: request, NOT_FOUND as a typed error, subscribe, publish, notify, graceful shutdown; prints the exchange. Takes no arguments.",
    );
    init_tracing("warn");
    match run().await {
        Ok(()) => {
            println!("demo finished");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    // Server: the same handlers as echo_server.
    let server = TcpServer::bind(([127, 0, 0, 1], 0), service::router()).await?;
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());
    println!("server listening on {addr}");

    // Client: its router takes the notifications the server pushes (Python: `@client.on(...)`).
    let (notes_tx, mut notes) = mpsc::channel::<Message>(16);
    let client_router = Router::new()
        .on(
            MessageType::NOTIFY_URI,
            |State(notes): State<Notes>, msg: Message| async move {
                // Nothing to answer; a closed channel only means the demo is over.
                let _ = notes.send(msg).await;
            },
        )
        .with_state(notes_tx);
    let client = TcpClient::builder()
        .router(client_router)
        .request_timeout(WAIT)
        .build();
    let conn = client.connect(addr).await?;
    println!("client connected to {}", conn.peer_addr());

    // 1. Request/response.
    let reply = call(
        &conn,
        Message::new(MessageType::REQUEST_URI, "echo", "hello"),
    )
    .await?;
    check(reply.message_type == MessageType::RESPOND_URI && reply.content().as_ref() == b"hello")?;

    // 2. No handler for DELETE_URI: the server's default answers NOT_FOUND, which `delete`
    //    returns as `RequestError::NotFound`, not as a reply to inspect nor as a timeout.
    println!(
        "> {}",
        show::message(&Message::new(MessageType::DELETE_URI, "missing", ""))
    );
    match conn.delete("missing").await {
        Err(e @ RequestError::NotFound(_)) => println!("< error {}", show::request_error(&e)),
        Err(e) => return Err(format!("expected NotFound, got {e}").into()),
        Ok(m) => return Err(format!("expected NotFound, got {}", show::message(&m)).into()),
    }

    // 3. Subscribe, publish, and receive the notification.
    let reply = call(&conn, Message::new(MessageType::SUBSCRIBE_URI, TOPIC, "")).await?;
    check(reply.message_type == MessageType::CONFIRM_SUBSCRIBE)?;
    let publish = Message::new(MessageType::PUBLISH_URI, TOPIC, "netaio 0.1 released");
    let reply = call(&conn, publish.clone()).await?;
    check(reply.message_type == MessageType::OK)?;
    let note = tokio::time::timeout(WAIT, notes.recv())
        .await
        .map_err(|_| "no notification within 5 s")?
        .ok_or("client router gone")?;
    println!(
        "< {} (notification, via the client router)",
        show::message(&note)
    );
    check(note.message_type == MessageType::NOTIFY_URI && note.content() == publish.content())?;

    // 4. Unsubscribe.
    let reply = call(&conn, Message::new(MessageType::UNSUBSCRIBE_URI, TOPIC, "")).await?;
    check(reply.message_type == MessageType::CONFIRM_UNSUBSCRIBE)?;

    // 5. Graceful shutdown: close the client, then stop the server and wait for it.
    conn.close().await;
    println!("client closed");
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(15), serving)
        .await
        .map_err(|_| "server did not stop within 15 s")??;
    println!("server shut down");
    Ok(())
}

async fn call(conn: &Connection, msg: Message) -> Result<Message, Box<dyn Error>> {
    println!("> {}", show::message(&msg));
    let reply = conn
        .call(msg)
        .await
        .map_err(|e| format!("request failed: {}", show::request_error(&e)))?;
    println!("< {}", show::message(&reply));
    Ok(reply)
}

#[track_caller]
fn check(ok: bool) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!(
            "unexpected reply (check at {})",
            std::panic::Location::caller()
        )
        .into())
    }
}
