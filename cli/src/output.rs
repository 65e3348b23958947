//! What the commands print: for people, aligned lines (colour only on a terminal, and never with
//! `NO_COLOR`), content as text when printable and hex otherwise, long content truncated with
//! its length; with `--json`, one JSON object per line on stdout, each with an `event` field.
//! Failures go to stderr as one line (and, with `--json`, as an object on stdout too).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use netaio::{Message, MessageType};
use serde_json::{Map, Value, json};

use crate::content;
use crate::exit::Failure;

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    color: bool,
    tty: bool,
}

/// The width of the type column (the longest name, `CONFIRM_UNSUBSCRIBE`).
const TYPE_WIDTH: usize = 19;

impl Output {
    /// JSON lines or text; colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn new(json: bool) -> Self {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            json,
            color: tty && !json && !no_color,
            tty,
        }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Whether stdout is a terminal (and not JSON): live displays and progress lines.
    pub fn is_live(&self) -> bool {
        self.tty && !self.json
    }

    /// Print one line on stdout, flushed (the tests and pipes read lines as they come).
    pub fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }

    /// Print a JSON object as one line.
    pub fn object(&self, value: &Value) {
        self.line(&value.to_string());
    }

    /// An event: `event` with `fields` as JSON, or `text` for people.
    pub fn event(&self, event: &str, fields: Value, text: impl FnOnce() -> String) {
        if self.json {
            let mut obj = Map::new();
            obj.insert("event".into(), event.into());
            if let Value::Object(more) = fields {
                obj.extend(more);
            }
            self.object(&Value::Object(obj));
        } else {
            self.line(&text());
        }
    }

    /// A message: a reply, a notification, one a server or node received (`peer` then set).
    pub fn message(&self, event: &str, peer: Option<SocketAddr>, msg: &Message, extra: Value) {
        if self.json {
            let mut obj = Map::new();
            obj.insert("event".into(), event.into());
            if let Some(p) = peer {
                obj.insert("peer".into(), p.to_string().into());
            }
            obj.extend(message_json(msg));
            if let Value::Object(more) = extra {
                obj.extend(more);
            }
            self.object(&Value::Object(obj));
        } else {
            let name = type_name(msg.message_type);
            let painted = self.paint(&format!("{name:<TYPE_WIDTH$}"), msg.message_type);
            let uri = content::preview(msg.uri(), 60);
            let body = content::preview(msg.content(), 200);
            let line = match peer {
                Some(p) => format!("{p:<22} {painted} {uri}  {body}"),
                None => format!("{painted} {uri}  {body}"),
            };
            self.line(line.trim_end());
        }
    }

    /// A note for people on stderr (not with `--json`): what a command is waiting for.
    pub fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    /// Print a failure and return its exit code.
    pub fn fail(&self, failure: &Failure) -> ExitCode {
        if self.json {
            self.object(&json!({
                "event": "failure",
                "kind": failure.code.name(),
                "exit_code": failure.code as u8,
                "message": failure.message,
            }));
        }
        eprintln!("netaio: {}", failure.message);
        ExitCode::from(failure.code as u8)
    }

    fn paint(&self, text: &str, t: MessageType) -> String {
        if !self.color {
            return text.to_owned();
        }
        // Red for error types, green for the rest.
        let colour = if t.is_error() { "31" } else { "32" };
        format!("\x1b[{colour}m{text}\x1b[0m")
    }
}

/// A type's name, or its number when it has none.
pub fn type_name(t: MessageType) -> String {
    t.name()
        .map_or_else(|| t.value().to_string(), str::to_owned)
}

/// A message as JSON fields: `type`, `type_value`, `uri` (or `uri_hex`), `content` (or
/// `content_hex`), `content_len`, and `request_id` when it has one.
pub fn message_json(msg: &Message) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("type".into(), type_name(msg.message_type).into());
    obj.insert("type_value".into(), msg.message_type.value().into());
    let (k, v) = bytes_json("uri", msg.uri());
    obj.insert(k, v);
    let (k, v) = bytes_json("content", msg.content());
    obj.insert(k, v);
    obj.insert("content_len".into(), msg.content().len().into());
    obj
}

/// `(name, text)` when `b` is UTF-8, else `(name_hex, hex)`.
pub fn bytes_json(name: &str, b: &[u8]) -> (String, Value) {
    match std::str::from_utf8(b) {
        Ok(s) => (name.to_owned(), s.into()),
        Err(_) => (format!("{name}_hex"), hex::encode(b).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_of_a_message_keeps_text_as_text_and_binary_as_hex() {
        let msg = Message::new(MessageType::from_u8(99), "a", vec![0xff, 0]);
        let obj = message_json(&msg);
        assert_eq!(obj["type"], "99");
        assert_eq!(obj["type_value"], 99);
        assert_eq!(obj["uri"], "a");
        assert_eq!(obj["content_hex"], "ff00");
        assert_eq!(obj["content_len"], 2);
        assert!(!obj.contains_key("content"));
    }
}
