//! Line output: one line per event, each starting with the local time, flushed at once (so a
//! program reading the chat through a pipe sees every line when it happens). Colours only when
//! asked for (by default: when stdout is a terminal and `NO_COLOR` is not set). Through a pipe, no
//! other terminal control sequence; at a terminal the lines go through the line editor's printer,
//! which prints them above the prompt and the half-typed line. Text from the network is
//! [sanitized](crate::protocol::sanitize) before it is printed.
//!
//! Line shapes:
//!
//! ```text
//! [14:03:07] <alice> hello everyone            a room message
//! [14:03:09] <alice> (private) see you at 5    a direct message to you
//! [14:03:10] * bob joined (...)                a notice: joins, leaves, nick changes
//! [14:03:11] !! ...                            a warning: key changes, withheld messages
//! [14:03:12] ! ...                             a problem with what you typed or sent
//! ```
//!
//! At a terminal, one's own lines are shown too, once their delivery is known ([`Ui::own`]):
//!
//! ```text
//! [14:03:13] <bob> hi alice ✓                  delivered to everyone here
//! [14:03:14] <bob> (to alice) psst ✓           a direct message, delivered
//! [14:03:15] <bob> hi all ✗ not delivered to carol (no answer)
//! [14:03:16] <bob> hello? …                    not acknowledged yet: the outcome follows
//! [14:03:18] ! not delivered to carol (no answer): "hello?"
//! ```

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use crate::protocol::sanitize;

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// When stdout is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl std::str::FromStr for ColorMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            _ => Err("expected auto, always or never".into()),
        }
    }
}

impl ColorMode {
    /// Whether to colour stdout.
    pub fn for_stdout(self) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => {
                io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const CYAN: &str = "\x1b[36m";
const WARN: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const GREEN: &str = "\x1b[32m";
const NICK_COLOURS: [&str; 8] = [
    "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[92m", "\x1b[94m", "\x1b[95m",
];

/// The longest part of a line's text quoted in its delivery outcome.
const QUOTE: usize = 40;

/// Where the lines go.
enum Sink {
    Writer(Box<dyn Write + Send>),
    /// The line editor's printer: above the prompt while a line is being edited.
    Printer(Box<dyn rustyline::ExternalPrinter + Send>),
}

/// A line one typed, as the transcript shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnLine {
    /// One's nick when it was typed.
    pub nick: String,
    /// The recipient of a direct message (as typed).
    pub to: Option<String>,
    /// What was said.
    pub text: String,
}

/// What became of a line one typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// Every recipient acknowledged it.
    Delivered,
    /// Not acknowledged yet (a first attempt went unanswered).
    Pending,
    /// These recipients did not acknowledge it: (who, why).
    Failed(&'a [(String, String)]),
}

/// Where the chat writes its lines.
pub struct Ui {
    out: Mutex<Sink>,
    color: bool,
    echo: bool,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("color", &self.color)
            .field("echo", &self.echo)
            .finish()
    }
}

impl Ui {
    /// Lines to stdout.
    pub fn stdout(color: bool) -> Self {
        Self::to_writer(Box::new(io::stdout()), color)
    }

    /// Lines to any writer (tests). One's own lines are not shown (as through a pipe).
    pub fn to_writer(out: Box<dyn Write + Send>, color: bool) -> Self {
        Self {
            out: Mutex::new(Sink::Writer(out)),
            color,
            echo: false,
        }
    }

    /// Lines through a line editor's printer (printed above the prompt and the line being
    /// typed), one's own lines included.
    pub fn terminal(printer: Box<dyn rustyline::ExternalPrinter + Send>, color: bool) -> Self {
        Self {
            out: Mutex::new(Sink::Printer(printer)),
            color,
            echo: true,
        }
    }

    /// Show one's own lines ([`own`](Self::own)), or not.
    #[must_use]
    pub fn echo(mut self, yes: bool) -> Self {
        self.echo = yes;
        self
    }

    /// Whether one's own lines are shown.
    pub fn echoes(&self) -> bool {
        self.echo
    }

    /// Erase the last `rows` rows of the terminal (the line the editor left on the screen when
    /// Enter was pressed), so that the line is shown once, in the transcript's format. Nothing
    /// through a writer.
    pub fn erase_rows(&self, rows: usize) {
        let out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Sink::Printer(_) = &*out
            && rows > 0
        {
            // The editor is between two lines: nothing else writes to the terminal meanwhile
            // (the printer writes under this lock).
            let mut stdout = io::stdout().lock();
            let _ = write!(stdout, "\x1b[{rows}A\r\x1b[J").and_then(|()| stdout.flush());
        }
    }

    fn nick_colour(nick: &str) -> &'static str {
        NICK_COLOURS
            .get(
                nick.bytes()
                    .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
                    % NICK_COLOURS.len(),
            )
            .copied()
            .unwrap_or(CYAN)
    }

    fn paint(&self, colour: &str, text: &str) -> String {
        if self.color {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    fn emit(&self, body: &str) {
        let time = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
        let line = format!("{} {body}\n", self.paint(DIM, &format!("[{time}]")));
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A closed stdout (the reader went away) is not worth a panic; the chat carries on.
        match &mut *out {
            Sink::Writer(w) => {
                let _ = w.write_all(line.as_bytes()).and_then(|()| w.flush());
            }
            Sink::Printer(p) => {
                let _ = p.print(line);
            }
        }
    }

    /// A log line of the library, as the log formatter made it (newline included), printed as
    /// it is: at a terminal, above the prompt and the line being typed.
    pub fn log(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *out {
            Sink::Writer(w) => {
                let _ = w.write_all(text.as_bytes()).and_then(|()| w.flush());
            }
            Sink::Printer(p) => {
                let _ = p.print(text.to_owned());
            }
        }
    }

    /// A message: `<nick> text`, or `<nick> (private) text`. Both are sanitized.
    pub fn chat(&self, nick: &str, private: bool, text: &str) {
        let who = self.paint(Self::nick_colour(nick), &format!("<{}>", sanitize(nick)));
        let private = if private { " (private)" } else { "" };
        self.emit(&format!("{who}{private} {}", sanitize(text)));
    }

    /// One's own line with its delivery mark: `<nick> text ✓`, `<nick> (to bob) text ✓`,
    /// `<nick> text …` (pending) or `<nick> text ✗ not delivered to bob (no answer)`. Only when
    /// [echoing](Self::echoes).
    pub fn own(&self, line: &OwnLine, delivery: &Delivery<'_>) {
        if !self.echo {
            return;
        }
        let who = self.paint(
            Self::nick_colour(&line.nick),
            &format!("<{}>", sanitize(&line.nick)),
        );
        let to = line
            .to
            .as_deref()
            .map_or_else(String::new, |t| format!(" (to {})", sanitize(t)));
        let mark = match delivery {
            Delivery::Delivered => self.paint(GREEN, "✓"),
            Delivery::Pending => self.paint(DIM, "…"),
            Delivery::Failed(f) => {
                self.paint(YELLOW, &format!("✗ not delivered to {}", who_and_why(f)))
            }
        };
        self.emit(&format!("{who}{to} {} {mark}", sanitize(&line.text)));
    }

    /// The outcome of a line shown as pending: `* delivered: "text" ✓`, or `! not delivered to
    /// bob (no answer): "text"`. Only when [echoing](Self::echoes).
    pub fn outcome(&self, line: &OwnLine, failures: &[(String, String)]) {
        if !self.echo {
            return;
        }
        let text = sanitize(&line.text);
        let quoted = match text.char_indices().nth(QUOTE) {
            Some((i, _)) => format!("\"{}…\"", text.get(..i).unwrap_or_default()),
            None => format!("\"{text}\""),
        };
        if failures.is_empty() {
            self.emit(&self.paint(GREEN, &format!("* delivered: {quoted} ✓")));
        } else {
            self.error(&format!(
                "not delivered to {}: {quoted}",
                who_and_why(failures)
            ));
        }
    }

    /// A notice: `* text`.
    pub fn notice(&self, text: &str) {
        self.emit(&self.paint(CYAN, &format!("* {text}")));
    }

    /// A warning: `!! text`.
    pub fn warn(&self, text: &str) {
        self.emit(&self.paint(WARN, &format!("!! {text}")));
    }

    /// A problem with a command or a send: `! text`.
    pub fn error(&self, text: &str) {
        self.emit(&self.paint(YELLOW, &format!("! {text}")));
    }

    /// A plain line (help, lists), indented.
    pub fn info(&self, text: &str) {
        self.emit(&format!("  {text}"));
    }
}

/// `bob (no answer), carol (no longer here)`.
fn who_and_why(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(who, why)| format!("{who} ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(color: bool, f: impl FnOnce(&Ui)) -> Vec<String> {
        let buf = Buf::default();
        let ui = Ui::to_writer(Box::new(buf.clone()), color);
        f(&ui);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn plain_lines_have_a_timestamp_and_no_escape_codes() {
        let out = lines(false, |ui| {
            ui.chat("alice", false, "hi");
            ui.chat("bob", true, "psst");
            ui.notice("carol joined");
            ui.warn("key changed");
            ui.error("unknown command");
            ui.info("help");
        });
        let bodies: Vec<&str> = out
            .iter()
            .map(|l| {
                assert!(l.starts_with('[') && l.as_bytes()[9] == b']', "{l}");
                &l[11..]
            })
            .collect();
        assert_eq!(
            bodies,
            [
                "<alice> hi",
                "<bob> (private) psst",
                "* carol joined",
                "!! key changed",
                "! unknown command",
                "  help"
            ]
        );
        assert!(out.iter().all(|l| !l.contains('\x1b')));
    }

    #[test]
    fn network_text_cannot_inject_escape_codes() {
        let out = lines(false, |ui| ui.chat("a", false, "x\x1b]0;owned\x07\ry"));
        assert_eq!(out.len(), 1);
        assert!(!out[0].contains('\x1b') && !out[0].contains('\r'));
        assert!(
            out[0].ends_with("<a> x\\u{1b}]0;owned\\u{7}\\u{d}y"),
            "{}",
            out[0]
        );
    }

    #[test]
    fn own_lines_with_their_delivery_marks_only_when_echoing() {
        let line = OwnLine {
            nick: "bob".into(),
            to: None,
            text: "hi all".into(),
        };
        let direct = OwnLine {
            to: Some("alice".into()),
            text: "x".repeat(50),
            ..line.clone()
        };
        let failed = [
            ("carol".to_owned(), "no answer".to_owned()),
            ("dave".to_owned(), "no longer here".to_owned()),
        ];
        let piped = lines(false, |ui| {
            ui.own(&line, &Delivery::Delivered);
            ui.outcome(&line, &[]);
        });
        assert!(piped.is_empty(), "{piped:?}");
        let buf = Buf::default();
        let ui = Ui::to_writer(Box::new(buf.clone()), false).echo(true);
        ui.own(&line, &Delivery::Delivered);
        ui.own(&direct, &Delivery::Pending);
        ui.own(&line, &Delivery::Failed(&failed));
        ui.outcome(&line, &[]);
        ui.outcome(&direct, &failed[..1]);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let bodies: Vec<&str> = text.lines().map(|l| &l[11..]).collect();
        let fifty = "x".repeat(50);
        let forty = "x".repeat(40);
        assert_eq!(
            bodies,
            [
                "<bob> hi all ✓".to_owned(),
                format!("<bob> (to alice) {fifty} …"),
                "<bob> hi all ✗ not delivered to carol (no answer), dave (no longer here)".into(),
                "* delivered: \"hi all\" ✓".into(),
                format!("! not delivered to carol (no answer): \"{forty}…\""),
            ]
        );
    }

    #[test]
    fn colours_only_when_asked() {
        let out = lines(true, |ui| ui.notice("x"));
        assert!(out[0].contains("\x1b[36m* x\x1b[0m"), "{:?}", out[0]);
    }
}
