//! The chat at a terminal: a line editor (rustyline) reads what is typed on a thread of its own,
//! with history (Up, Down, Ctrl-R), the usual editing keys (Left, Right, Home, End, Backspace,
//! Delete, Ctrl-A/E/K/U/W, Alt-B/F) and Tab completion of commands and of the nicks of the people
//! here. Lines from the chat are printed through the editor's printer, above the prompt, so the
//! half-typed line stays intact. The line the editor leaves on the screen on Enter is erased: the
//! chat shows it again in the transcript's format, with its delivery mark ([`Ui::own`]).
//!
//! Ctrl-C leaves the chat (as SIGINT does through a pipe), Ctrl-D on an empty line is the end of
//! the input. The terminal's settings are saved at the start and put back at the end
//! ([`Restore`]), also when the chat ends while a line is being edited.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, Helper};
use tokio::sync::mpsc;
use unicode_width::UnicodeWidthStr;

use crate::app::Input;
use crate::commands::{self, Command};
use crate::input::MAX_LINE;
use crate::ui::Ui;

/// Lines kept in the history (Up, Down, Ctrl-R).
pub const HISTORY: usize = 500;

/// The commands Tab completes at the start of a line (with a space after those that take
/// arguments).
pub const COMMANDS: &[&str] = &[
    "/help", "/msg ", "/nick ", "/peers", "/quit", "/stats", "/trust ", "/whoami",
];

/// What the line editor shows and completes: one's nick (the prompt) and the people here (as the
/// chat shows them, `nick` or `nick#fingerprint`). The chat keeps it up to date.
#[derive(Debug, Clone, Default)]
pub struct Names(Arc<Mutex<NamesInner>>);

#[derive(Debug, Default)]
struct NamesInner {
    own: String,
    peers: Vec<String>,
}

impl Names {
    fn with<T>(&self, f: impl FnOnce(&mut NamesInner) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One's nick.
    pub fn set_own(&self, nick: &str) {
        self.with(|n| nick.clone_into(&mut n.own));
    }

    /// The people here.
    pub fn set_peers(&self, peers: Vec<String>) {
        self.with(|n| n.peers = peers);
    }

    /// The people here.
    pub fn peers(&self) -> Vec<String> {
        self.with(|n| n.peers.clone())
    }

    fn prompt(&self) -> String {
        self.with(|n| format!("{}> ", n.own))
    }
}

/// What Tab offers for `line` with the cursor at byte `pos`: the start of the word being completed
/// and the candidates for it. A command at the start of a line; otherwise a nick (followed by `: `
/// at the start of a line, as one addresses someone, and by a space elsewhere). Case is ignored.
///
/// ```
/// use netaio_chat::terminal::complete;
/// let peers = ["alice".to_owned(), "Albert".to_owned(), "bob".to_owned()];
/// assert_eq!(complete("/m", 2, &peers), (0, vec!["/msg ".to_owned()]));
/// assert_eq!(complete("/msg al", 7, &peers), (5, vec!["alice ".to_owned(), "Albert ".to_owned()]));
/// assert_eq!(complete("b", 1, &peers), (0, vec!["bob: ".to_owned()]));
/// assert_eq!(complete("hi b", 4, &peers), (3, vec!["bob ".to_owned()]));
/// ```
pub fn complete(line: &str, pos: usize, peers: &[String]) -> (usize, Vec<String>) {
    let before = line.get(..pos).unwrap_or(line);
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = before.get(start..).unwrap_or_default().to_ascii_lowercase();
    let matching = |name: &str| name.to_ascii_lowercase().starts_with(&word);
    let candidates = if start == 0 && word.starts_with('/') {
        COMMANDS
            .iter()
            .filter(|c| matching(c))
            .map(|c| (*c).to_owned())
            .collect()
    } else {
        let after = if start == 0 { ": " } else { " " };
        peers
            .iter()
            .filter(|p| matching(p))
            .map(|p| format!("{p}{after}"))
            .collect()
    };
    (start, candidates)
}

/// The editor's helper: completion only.
struct ChatHelper {
    names: Names,
}

impl Completer for ChatHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete(line, pos, &self.names.peers()))
    }
}

impl Hinter for ChatHelper {
    type Hint = String;
}
impl Highlighter for ChatHelper {}
impl Validator for ChatHelper {}
impl Helper for ChatHelper {}

/// The terminal side of a running chat.
#[derive(Debug)]
pub struct Terminal {
    /// Where the chat prints: through the editor's printer, one's own lines included.
    pub ui: Arc<Ui>,
    /// The lines typed, and Ctrl-C ([`Input::Interrupt`]); closed at Ctrl-D or after `/quit`.
    pub input: mpsc::Receiver<Input>,
    /// Puts the terminal back as it was.
    pub restore: Restore,
}

/// The terminal's settings at the start.
pub struct Restore {
    saved: Termios,
}

impl std::fmt::Debug for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restore").finish_non_exhaustive()
    }
}

impl Restore {
    /// Put the terminal's settings back as they were at the start (the editor may be in the
    /// middle of a line, its raw mode on), and clear a prompt left on the screen.
    pub fn restore(&self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(b"\r\x1b[J").and_then(|()| stdout.flush());
    }
}

impl Terminal {
    /// Whether the chat runs at a terminal: stdin and stdout both are one.
    pub fn available() -> bool {
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
    }

    /// Start the line editor on a thread of its own, the prompt and the completions from `names`.
    pub fn start(names: Names, color: bool) -> Result<Self, ReadlineError> {
        let saved = tcgetattr(std::io::stdin())?;
        let config = Config::builder()
            .max_history_size(HISTORY)?
            .history_ignore_dups(true)?
            .auto_add_history(true)
            .completion_type(CompletionType::List)
            .build();
        let mut editor: Editor<ChatHelper, DefaultHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(ChatHelper {
            names: names.clone(),
        }));
        let printer = editor.create_external_printer()?;
        let ui = Arc::new(Ui::terminal(Box::new(printer), color));
        let (tx, input) = mpsc::channel(64);
        let reader_ui = ui.clone();
        std::thread::spawn(move || read(editor, &names, &reader_ui, &tx));
        Ok(Self {
            ui,
            input,
            restore: Restore { saved },
        })
    }
}

/// The editor's loop: one line at a time until Ctrl-C, Ctrl-D, `/quit`, or the chat stops
/// listening.
fn read(
    mut editor: Editor<ChatHelper, DefaultHistory>,
    names: &Names,
    ui: &Ui,
    tx: &mpsc::Sender<Input>,
) {
    loop {
        let prompt = names.prompt();
        match editor.readline(&prompt) {
            Ok(line) => {
                // The editor leaves `prompt line` on the screen and moves below it; the chat
                // prints the line again in its transcript format.
                if let Some((cols, _)) = editor.dimensions() {
                    let width = prompt.width() + line.width();
                    ui.erase_rows(width / usize::from(cols.max(1)) + 1);
                }
                let quit = commands::parse(&line) == Ok(Command::Quit);
                let item = if line.len() > MAX_LINE {
                    Input::TooLong
                } else {
                    Input::Line(line)
                };
                // After `/quit`, stop reading: the terminal is left in its normal mode while the
                // chat says goodbye.
                if tx.blocking_send(item).is_err() || quit {
                    return;
                }
            }
            Err(ReadlineError::Interrupted) => {
                // In the same channel as the lines, so that it is seen before the channel closes.
                let _ = tx.blocking_send(Input::Interrupt);
                return;
            }
            Err(ReadlineError::Eof) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the terminal");
                return;
            }
        }
    }
}
