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

use clap::Parser;
use netaio::{Connection, Message, MessageType, TcpClient};
use netaio_examples::{init_tracing, show};
use netaio_support::strip_brackets;

/// The echo client: echo, subscribe, publish, notification and unsubscribe against echo_server.
#[derive(Debug, Parser)]
#[command(name = "echo_client")]
struct Cli {
    /// Server port
    #[arg(long, value_name = "P", default_value_t = 8888)]
    port: u16,
    /// Server host (IPv6 like ::1 works)
    // A name is fine too (`localhost`), so it stays a string; only `[::1]`'s brackets go.
    #[arg(long, value_name = "H", default_value = "127.0.0.1", value_parser = host)]
    host: String,
}

fn host(s: &str) -> Result<String, std::convert::Infallible> {
    Ok(strip_brackets(s).to_owned())
}

const TOPIC: &str = "news";
const WAIT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    let Cli { host, port } = netaio_support::parse_args();
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::try_parse_from(["echo_client"]).unwrap();
        assert_eq!((cli.host.as_str(), cli.port), ("127.0.0.1", 8888));
        let cli = Cli::try_parse_from(["echo_client", "--host", "[::1]", "--port", "9"]).unwrap();
        assert_eq!((cli.host.as_str(), cli.port), ("::1", 9));
        let cli = Cli::try_parse_from(["echo_client", "--host=localhost"]).unwrap();
        assert_eq!(cli.host, "localhost");
        assert!(Cli::try_parse_from(["echo_client", "--bogus", "1"]).is_err());
    }
}
