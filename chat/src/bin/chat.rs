//! `chat --nick NICK`: an end-to-end encrypted LAN chat. See the crate docs and the README's
//! "LAN chat" section; `chat --help` lists the flags.

use std::process::ExitCode;
use std::sync::Arc;

use netaio_chat::options::{USAGE, from_env};
use netaio_chat::ui::Ui;
use netaio_chat::{app, input};
use netaio_examples::args::usage_exit;
use netaio_examples::init_tracing;
use netaio_examples::signals::stop_signals;

#[tokio::main]
async fn main() -> ExitCode {
    let (opts, color) = match from_env() {
        Ok(o) => o,
        Err(e) => return usage_exit("chat", USAGE, &e),
    };
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
