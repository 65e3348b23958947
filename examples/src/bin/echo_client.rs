//! The echo client: the Python README's `TCPClient` example in Rust, against `echo_server`.
//!
//! ```text
//! echo_client [--port P] [--host H]
//! ```
//!
//! Sends an echo request, subscribes to a topic, publishes to it and receives the notification,
//! then unsubscribes. Prints each exchange; exits 0 when every reply is the expected one, and
//! non-zero with the reason otherwise.

use std::process::ExitCode;
use std::time::Duration;

use netaio::{Connection, Message, MessageType, TcpClient};
use netaio_examples::args::{Flags, UsageError, strip_brackets, usage_exit};
use netaio_examples::{init_tracing, show};

const USAGE: &str = "[--port P] [--host H]
  --port P   server port (default 8888)
  --host H   server host (default 127.0.0.1; IPv6 like ::1 works)";
const TOPIC: &str = "news";
const WAIT: Duration = Duration::from_secs(5);

fn options() -> Result<(String, u16), UsageError> {
    let flags = Flags::from_env(&["port", "host"])?;
    let port = flags.value_or("port", 8888u16)?;
    let host = strip_brackets(flags.raw("host").unwrap_or("127.0.0.1")).to_owned();
    Ok((host, port))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (host, port) = match options() {
        Ok(o) => o,
        Err(e) => return usage_exit("echo_client", USAGE, &e),
    };
    init_tracing("warn");

    let client = TcpClient::builder()
        .connect_timeout(WAIT)
        .request_timeout(WAIT)
        .build();
    let conn = match client.connect((host.as_str(), port)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("echo_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("connected to {}", conn.peer_addr());
    let outcome = exchange(&conn).await;
    conn.close().await;
    match outcome {
        Ok(()) => {
            println!("all replies as expected");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("echo_client: {reason}");
            ExitCode::FAILURE
        }
    }
}

async fn exchange(conn: &Connection) -> Result<(), String> {
    // Echo: REQUEST_URI -> RESPOND_URI with the same uri and content.
    let request = Message::new(MessageType::REQUEST_URI, "echo", "hello from Rust");
    let reply = call(conn, request.clone()).await?;
    expect(
        &reply,
        MessageType::RESPOND_URI,
        request.uri(),
        request.content(),
    )?;

    // Subscribe, then publish to the same topic: the server notifies every subscriber (us).
    let sub = Message::new(MessageType::SUBSCRIBE_URI, TOPIC, "");
    let reply = call(conn, sub).await?;
    expect(
        &reply,
        MessageType::CONFIRM_SUBSCRIBE,
        TOPIC.as_bytes(),
        b"",
    )?;

    let publish = Message::new(MessageType::PUBLISH_URI, TOPIC, "netaio 0.1 released");
    let reply = call(conn, publish.clone()).await?;
    // "notified N": N counts every subscriber, other clients of a shared server included.
    if reply.message_type != MessageType::OK || !reply.content().starts_with(b"notified ") {
        return Err(format!(
            "unexpected reply {}; expected OK \"notified N\"",
            show::message(&reply)
        ));
    }

    // The notification is not a reply to a request: it arrives through receive_once.
    let note = conn
        .receive_timeout(WAIT)
        .await
        .map_err(|e| format!("waiting for the notification: {e}"))?;
    println!("< {} (notification)", show::message(&note));
    expect(
        &note,
        MessageType::NOTIFY_URI,
        TOPIC.as_bytes(),
        publish.content(),
    )?;

    let unsub = Message::new(MessageType::UNSUBSCRIBE_URI, TOPIC, "");
    let reply = call(conn, unsub).await?;
    expect(
        &reply,
        MessageType::CONFIRM_UNSUBSCRIBE,
        TOPIC.as_bytes(),
        b"",
    )?;
    Ok(())
}

/// Send `msg`, print the exchange, and return the reply (an error reply is an error).
async fn call(conn: &Connection, msg: Message) -> Result<Message, String> {
    println!("> {}", show::message(&msg));
    match conn.call(msg).await {
        Ok(reply) => {
            println!("< {}", show::message(&reply));
            Ok(reply)
        }
        Err(e) => Err(format!("request failed: {}", show::request_error(&e))),
    }
}

fn expect(m: &Message, t: MessageType, uri: &[u8], content: &[u8]) -> Result<(), String> {
    if m.message_type == t && m.uri().as_ref() == uri && m.content().as_ref() == content {
        Ok(())
    } else {
        Err(format!(
            "unexpected reply {}; expected {}",
            show::message(m),
            show::message(&Message::new(t, uri.to_vec(), content.to_vec()))
        ))
    }
}
