//! `chat --nick NICK`: an end-to-end encrypted LAN chat. See the crate docs and the README's
//! "LAN chat" section; `chat --help` lists the flags.

use std::process::ExitCode;
use std::sync::Arc;

use netaio_chat::options::from_env;
use netaio_chat::terminal::{Names, Terminal};
use netaio_chat::ui::Ui;
use netaio_chat::{app, input, logs};
use netaio_support::init_tracing;
use netaio_support::signals::stop_signals;

#[tokio::main]
async fn main() -> ExitCode {
    // `--help` prints the help and exits 0; a usage error exits 2 with the usage.
    let (opts, color) = from_env().unwrap_or_else(|e| e.exit());
    let color = color.for_stdout();
    let names = Names::default();
    // The editor's first prompt shows the nick.
    names.set_own(&opts.nick);
    let signals = stop_signals();
    let wildcard = opts.bind.ip().is_unspecified();
    // At a terminal, the line editor; through pipes (or if the editor cannot start), plain lines.
    let terminal = if Terminal::available() {
        Terminal::start(names.clone(), color)
            .map_err(|e| eprintln!("chat: no line editing ({e}): reading plain lines"))
            .ok()
    } else {
        None
    };
    // At a terminal, the library's log lines are printed above the line being typed; otherwise
    // to stderr.
    match &terminal {
        Some(t) => logs::init("warn", t.ui.clone(), color),
        None => init_tracing("warn"),
    }
    let result = match terminal {
        Some(Terminal { ui, input, restore }) => {
            let result = app::run(opts, ui, input, names, signals).await;
            restore.restore();
            result
        }
        None => {
            let ui = Arc::new(Ui::stdout(color));
            app::run(opts, ui, input::stdin_lines(), names, signals).await
        }
    };
    match result {
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
