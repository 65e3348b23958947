//! `subscribe ADDR URI...`: subscribe over TCP, then print each notification until Ctrl-C,
//! `--seconds` or `--count`; a `udp://` address goes to [`super::subscribe_udp`].

use std::time::Duration;

use netaio::{Message, MessageType, ReceiveError, TcpClient};
use serde_json::json;

use super::after;
use crate::common::CommonArgs;
use crate::exit::{Code, Failure};
use crate::output::Output;
use crate::target::{Target, Transport};

/// What the command line asks for.
pub struct Args {
    /// Where to subscribe.
    pub addr: Target,
    /// The uris.
    pub uris: Vec<String>,
    /// Stop after this many notifications.
    pub count: Option<u64>,
    /// Stop after this long.
    pub seconds: Option<Duration>,
    /// How long to wait for each confirmation.
    pub timeout: Duration,
    /// How often to subscribe again (over UDP: a subscription there is a lease).
    pub renew: Duration,
}

/// Subscribe to every uri (each confirmed), then print what arrives (`renew`: over UDP only).
pub async fn run(common: &CommonArgs, out: &Output, args: Args) -> Result<(), Failure> {
    if args.addr.transport == Transport::Udp {
        return super::subscribe_udp::run(common, out, args).await;
    }
    let Args {
        addr,
        uris,
        count,
        seconds,
        timeout,
        renew: _,
    } = args;
    let plugins = common.plugins()?;
    let client = plugins
        .client(TcpClient::builder())
        .request_timeout(timeout)
        .build();
    let conn = client
        .connect(addr.host_port.as_str())
        .await
        .map_err(|e| Failure::connect(&e))?;
    for uri in &uris {
        let sub = Message::new(MessageType::SUBSCRIBE_URI, uri.clone(), "");
        match conn.call(sub).await {
            Ok(reply) if reply.message_type == MessageType::CONFIRM_SUBSCRIBE => {
                out.event("subscribed", json!({"uri": uri}), || {
                    format!("subscribed {uri}")
                });
            }
            Ok(reply) => {
                out.message("reply", None, &reply, json!({}));
                conn.close().await;
                return Err(Failure::new(
                    Code::ErrorReply,
                    format!("subscribing to {uri:?}: expected CONFIRM_SUBSCRIBE"),
                ));
            }
            Err(e) => {
                if let Some(reply) = e.reply() {
                    out.message("error_reply", None, reply, json!({}));
                }
                conn.close().await;
                return Err(Failure::request(&e));
            }
        }
    }
    let receiving = async {
        let mut n = 0u64;
        while count.is_none_or(|c| n < c) {
            match conn.receive_once().await {
                Ok(msg) => {
                    out.message("notification", None, &msg, json!({}));
                    n += 1;
                }
                Err(ReceiveError::Closed) => {
                    return Err(Failure::new(
                        Code::Connection,
                        "the server closed the connection",
                    ));
                }
                Err(e) => return Err(Failure::other(e.to_string())),
            }
        }
        Ok(())
    };
    let result = tokio::select! {
        r = receiving => r,
        why = netaio_support::signals::stop_signals() => {
            tracing::info!("{why}: stopping");
            Ok(())
        }
        () = after(seconds) => Ok(()),
    };
    conn.close().await;
    result
}
