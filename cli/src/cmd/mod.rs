//! One module per command; [`run`] dispatches.

mod bench;
pub mod daemon;
mod discover;
mod grasp;
mod identity;
mod listen;
mod peer;
pub mod relay;
mod request;
mod serve;
mod subscribe;
mod subscribe_udp;

use std::time::Duration;

use netaio::MessageType;

use crate::cli::{Cli, Command};
use crate::exit::Failure;
use crate::output::Output;

/// Run the command.
pub async fn run(cli: Cli, out: &Output) -> Result<(), Failure> {
    let common = cli.common;
    match cli.command {
        Command::Request(ex) => request::exchange(&common, out, MessageType::REQUEST_URI, ex).await,
        Command::Create(ex) => request::exchange(&common, out, MessageType::CREATE_URI, ex).await,
        Command::Update(ex) => request::exchange(&common, out, MessageType::UPDATE_URI, ex).await,
        Command::Delete(ex) => request::exchange(&common, out, MessageType::DELETE_URI, ex).await,
        Command::Call {
            message_type,
            exchange,
        } => request::exchange(&common, out, message_type, exchange).await,
        Command::Send {
            addr,
            message_type,
            body,
        } => request::send(&common, out, addr, message_type, body).await,
        Command::Subscribe {
            addr,
            uris,
            count,
            seconds,
            timeout,
            renew,
        } => {
            let args = subscribe::Args {
                addr,
                uris,
                count,
                seconds,
                timeout,
                renew,
            };
            subscribe::run(&common, out, args).await
        }
        Command::Serve {
            listen,
            reserve_at,
            id,
            route,
            seconds,
        } => {
            let reserve = reserve_at.zip(id);
            serve::run(&common, out, listen, reserve, &route, seconds).await
        }
        Command::Listen {
            udp,
            group,
            group_port,
            interface,
            count,
            seconds,
        } => {
            let group = listen::Group {
                ip: group,
                port: group_port,
                interface,
            };
            listen::run(&common, out, udp, group, count, seconds).await
        }
        Command::Discover(args) => discover::run(&common, out, args).await,
        Command::Grasp(g) => grasp::run(out, g).await,
        Command::Bench(args) => bench::run(&common, out, args).await,
        Command::Relay(args) => relay::run(&common, out, args).await,
        Command::Daemon(args) => daemon::run(out, args).await,
        Command::Identity(i) => identity::run(out, i),
        // Handled before the runtime starts.
        Command::Completions { .. } => Ok(()),
    }
}

/// Completes after `d`, or never.
pub async fn after(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
