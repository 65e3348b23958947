//! Values on the command line and content on the screen: message types by name or number,
//! durations, `-d @FILE` / `-d @-`, and the preview of bytes for people.

use std::io::Read;
use std::time::Duration;

use netaio::MessageType;
use netaio::message::MAX_URI_AND_CONTENT;

/// A message type: a name (`REQUEST_URI`, `request_uri`, or without `_URI`: `request`) or a
/// number 0 to 255.
pub fn parse_type(s: &str) -> Result<MessageType, String> {
    if let Ok(n) = s.parse::<u8>() {
        return Ok(MessageType::from_u8(n));
    }
    let upper = s.to_ascii_uppercase();
    MessageType::ALL_NAMED
        .iter()
        .copied()
        .find(|t| {
            t.name()
                .is_some_and(|n| n == upper || n.strip_suffix("_URI") == Some(upper.as_str()))
        })
        .ok_or_else(|| {
            format!("unknown message type {s:?} (a name such as REQUEST_URI, or a number 0-255)")
        })
}

/// A duration: `2.5` (seconds), `2.5s`, `250ms`; above 0 and under a day.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(secs) = s.strip_suffix('s') {
        (secs, 1.0)
    } else {
        (s, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n * scale < 86_400.0 => {
            Ok(Duration::from_secs_f64(n * scale))
        }
        Ok(_) => Err("not a duration above 0 and under a day".into()),
        Err(_) => Err(format!(
            "{s:?} is not a duration (seconds, or with a unit: 2s, 250ms)"
        )),
    }
}

/// The content of a message from `-d`: `@FILE` reads a file, `@-` standard input, anything
/// else is the content itself. More than a message can carry is refused before reading on.
pub fn read_data(d: &str) -> Result<Vec<u8>, String> {
    let limit = MAX_URI_AND_CONTENT as u64 + 1;
    let mut buf = Vec::new();
    match d.strip_prefix('@') {
        Some("-") => {
            std::io::stdin()
                .lock()
                .take(limit)
                .read_to_end(&mut buf)
                .map_err(|e| format!("reading standard input: {e}"))?;
        }
        Some(path) => {
            std::fs::File::open(path)
                .and_then(|f| f.take(limit).read_to_end(&mut buf))
                .map_err(|e| format!("reading {path}: {e}"))?;
        }
        None => buf.extend_from_slice(d.as_bytes()),
    }
    if buf.len() > MAX_URI_AND_CONTENT {
        return Err(format!(
            "the content is larger than a message can carry ({MAX_URI_AND_CONTENT} bytes with the uri)"
        ));
    }
    Ok(buf)
}

/// `b` for people: the text when it is printable UTF-8, else `0x` and hex; longer than `max`
/// characters, truncated with `… (N bytes)`.
pub fn preview(b: &[u8], max: usize) -> String {
    let text = std::str::from_utf8(b)
        .ok()
        .filter(|s| s.chars().all(|c| !c.is_control() || c == '\t'));
    match text {
        Some(s) if s.chars().count() > max => {
            let cut: String = s.chars().take(max).collect();
            format!("{cut}… ({} bytes)", b.len())
        }
        Some(s) => s.to_owned(),
        None => {
            // "0x" and two digits a byte, within `max`.
            let n = max.saturating_sub(2) / 2;
            match b.get(..n) {
                Some(head) if b.len() > n => {
                    format!("0x{}… ({} bytes)", hex::encode(head), b.len())
                }
                _ => format!("0x{}", hex::encode(b)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_name_or_number() {
        assert_eq!(parse_type("REQUEST_URI"), Ok(MessageType::REQUEST_URI));
        assert_eq!(parse_type("create"), Ok(MessageType::CREATE_URI));
        assert_eq!(parse_type("ok"), Ok(MessageType::OK));
        assert_eq!(parse_type("100"), Ok(MessageType::from_u8(100)));
        assert!(parse_type("256").is_err());
        assert!(parse_type("shout").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["0", "-1", "soon", "NaN", "1e9"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn previews() {
        assert_eq!(preview(b"hello", 10), "hello");
        assert_eq!(preview(b"\x00\xff", 10), "0x00ff");
        assert_eq!(preview(b"abcdefghijkl", 5), "abcde… (12 bytes)");
        assert_eq!(preview(&[1u8; 100], 8), "0x010101… (100 bytes)");
        assert_eq!(preview(b"a\nb", 10), "0x610a62");
    }

    #[test]
    fn data_literal_or_file() {
        assert_eq!(read_data("text").unwrap(), b"text");
        let path = std::env::temp_dir().join(format!("netaio-cli-data-{}", std::process::id()));
        std::fs::write(&path, b"\x00from file").unwrap();
        assert_eq!(
            read_data(&format!("@{}", path.display())).unwrap(),
            b"\x00from file"
        );
        std::fs::write(&path, vec![0u8; MAX_URI_AND_CONTENT + 1]).unwrap();
        assert!(read_data(&format!("@{}", path.display())).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(read_data("@/nonexistent/netaio").is_err());
    }
}
