//! What a typed line means.

/// A parsed input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Nothing (an empty line).
    Empty,
    /// Text for the room.
    Say(String),
    /// `/msg NICK TEXT`: a direct message.
    Msg {
        /// Who: a nick, or `nick#fingerprint` when several people use it.
        to: String,
        /// What.
        text: String,
    },
    /// `/nick NEW`.
    Nick(String),
    /// `/peers`.
    Peers,
    /// `/trust NICK FINGERPRINT`: accept a changed key.
    Trust {
        /// The nick.
        nick: String,
        /// At least the first 8 hex digits of the key's fingerprint.
        fingerprint: String,
    },
    /// `/stats`: what was dropped.
    Stats,
    /// `/whoami`.
    Whoami,
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
}

/// The `/help` text, one entry a line.
pub const HELP: &[&str] = &[
    "TEXT                  say TEXT to everyone in the room (//TEXT says a line starting with /)",
    "/msg NICK TEXT        say TEXT to NICK only (NICK#FINGERPRINT if several use the nick)",
    "/peers                who is here: nick, key fingerprint, address, last heard",
    "/nick NEW             change your nick",
    "/trust NICK FP        accept the key with fingerprint FP (8+ hex digits) for NICK",
    "/stats                messages dropped (failed signature or decryption, duplicates, withheld)",
    "/whoami               your nick, fingerprint and files",
    "/help                 this list",
    "/quit                 leave (Ctrl-C and end of input do too)",
];

/// Parse one line (without its line terminator). Errors are one-line usage messages.
///
/// ```
/// use netaio_chat::commands::{parse, Command};
/// assert_eq!(parse("hello"), Ok(Command::Say("hello".into())));
/// assert_eq!(parse("/msg bob hi there"), Ok(Command::Msg { to: "bob".into(), text: "hi there".into() }));
/// assert!(parse("/frobnicate").is_err());
/// ```
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Command::Empty);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_owned()));
    };
    if rest.starts_with('/') {
        return Ok(Command::Say(rest.to_owned()));
    }
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (rest, ""),
    };
    let no_args = |c: Command| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(format!("/{name} takes no arguments"))
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "msg" | "m" | "query" => {
            let (to, text) = args
                .split_once(char::is_whitespace)
                .map(|(t, x)| (t, x.trim()))
                .unwrap_or((args, ""));
            if to.is_empty() || text.is_empty() {
                return Err("usage: /msg NICK TEXT".into());
            }
            Ok(Command::Msg {
                to: to.to_owned(),
                text: text.to_owned(),
            })
        }
        "nick" => {
            if args.is_empty() || args.contains(char::is_whitespace) {
                return Err("usage: /nick NEW".into());
            }
            Ok(Command::Nick(args.to_owned()))
        }
        "trust" => {
            let mut parts = args.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(nick), Some(fp), None) => Ok(Command::Trust {
                    nick: nick.to_owned(),
                    fingerprint: fp.to_owned(),
                }),
                _ => Err("usage: /trust NICK FINGERPRINT".into()),
            }
        }
        "peers" | "who" => no_args(Command::Peers),
        "stats" => no_args(Command::Stats),
        "whoami" => no_args(Command::Whoami),
        "help" | "?" => Ok(Command::Help),
        "quit" | "exit" | "q" => Ok(Command::Quit),
        _ => Err(format!("unknown command /{name}; /help lists them")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(parse(""), Ok(Command::Empty));
        assert_eq!(parse("   \r\n"), Ok(Command::Empty));
        assert_eq!(parse("  hi  \r\n"), Ok(Command::Say("  hi  ".into())));
        assert_eq!(parse("//etc"), Ok(Command::Say("/etc".into())));
        assert_eq!(
            parse("/MSG  bob   two  words "),
            Ok(Command::Msg {
                to: "bob".into(),
                text: "two  words".into()
            })
        );
        assert!(parse("/msg bob").is_err());
        assert!(parse("/msg").is_err());
        assert_eq!(parse("/nick robert"), Ok(Command::Nick("robert".into())));
        assert!(parse("/nick").is_err());
        assert!(parse("/nick a b").is_err());
        assert_eq!(
            parse("/trust alice 0123abcd"),
            Ok(Command::Trust {
                nick: "alice".into(),
                fingerprint: "0123abcd".into()
            })
        );
        assert!(parse("/trust alice").is_err());
        assert_eq!(parse("/peers"), Ok(Command::Peers));
        assert!(parse("/peers x").is_err());
        assert_eq!(parse("/who"), Ok(Command::Peers));
        assert_eq!(parse("/stats"), Ok(Command::Stats));
        assert_eq!(parse("/whoami"), Ok(Command::Whoami));
        assert_eq!(parse("/help"), Ok(Command::Help));
        assert_eq!(parse("/quit"), Ok(Command::Quit));
        assert_eq!(parse("/quit bye all"), Ok(Command::Quit));
        assert!(parse("/").is_err());
        assert!(parse("/nope").is_err());
    }
}
