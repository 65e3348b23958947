//! `chat --nick NICK`: an end-to-end encrypted LAN chat. See the crate docs and the README's
//! "LAN chat" section; `chat --help` lists the flags.

use std::process::ExitCode;
use std::sync::Arc;

use netaio_chat::options::from_env;
use netaio_chat::ui::Ui;
use netaio_chat::{app, input};
use netaio_support::init_tracing;
use netaio_support::signals::stop_signals;

#[tokio::main]
async fn main() -> ExitCode {
    // `--help` prints the help and exits 0; a usage error exits 2 with the usage.
    let (opts, color) = from_env().unwrap_or_else(|e| e.exit());
    init_tracing("warn");
    let ui = Arc::new(Ui::stdout(color.for_stdout()));
    let stop = stop_signals();
    let wildcard = opts.bind.ip().is_unspecified();
    match app::run(opts, ui, input::stdin_lines(), stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            if wildcard && matches!(e, app::ChatError::Bind(_)) {
                eprintln!(
                    "chat: no network interface to find peers on? `--bind 127.0.0.1` chats with \
                     people on this machine only; `--interface NAME` picks one"
                );
            }
            ExitCode::FAILURE
        }
    }
}
