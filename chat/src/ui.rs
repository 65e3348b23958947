//! Line output: one line per event, each starting with the local time, flushed at once (so a
//! program reading the chat through a pipe sees every line when it happens). Colours only when
//! asked for (by default: when stdout is a terminal and `NO_COLOR` is not set); never any other
//! terminal control sequence. Text from the network is [sanitized](crate::protocol::sanitize)
//! before it is printed.
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
const NICK_COLOURS: [&str; 8] = [
    "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[92m", "\x1b[94m", "\x1b[95m",
];

/// Where the chat writes its lines.
pub struct Ui {
    out: Mutex<Box<dyn Write + Send>>,
    color: bool,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui").field("color", &self.color).finish()
    }
}

impl Ui {
    /// Lines to stdout.
    pub fn stdout(color: bool) -> Self {
        Self::to_writer(Box::new(io::stdout()), color)
    }

    /// Lines to any writer (tests).
    pub fn to_writer(out: Box<dyn Write + Send>, color: bool) -> Self {
        Self {
            out: Mutex::new(out),
            color,
        }
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
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }

    /// A message: `<nick> text`, or `<nick> (private) text`. Both are sanitized.
    pub fn chat(&self, nick: &str, private: bool, text: &str) {
        let colour = NICK_COLOURS
            .get(
                nick.bytes()
                    .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
                    % NICK_COLOURS.len(),
            )
            .copied()
            .unwrap_or(CYAN);
        let who = self.paint(colour, &format!("<{}>", sanitize(nick)));
        let private = if private { " (private)" } else { "" };
        self.emit(&format!("{who}{private} {}", sanitize(text)));
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
    fn colours_only_when_asked() {
        let out = lines(true, |ui| ui.notice("x"));
        assert!(out[0].contains("\x1b[36m* x\x1b[0m"), "{:?}", out[0]);
    }
}
