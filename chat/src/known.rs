//! Known peers: which Ed25519 keys you have accepted for which nick, kept in a file like SSH's
//! `known_hosts` (trust on first use).
//!
//! The first key seen for a nick is remembered. A different key later announcing the same nick is
//! *changed*: the chat flags it and does not show its messages until you accept it with `/trust`
//! (which adds a line; a nick may have several keys, say a laptop and a desktop). Nicks compare
//! without case (`Alice` is `alice`). Your own nick counts as known with your own key; someone else
//! announcing it with a key you never accepted for it is a *namesake*: shown with its fingerprint,
//! not remembered, and not called a changed key (from where you sit, nobody you know changed).
//!
//! File format, one entry a line: `NICK ED25519-PUBLIC-KEY-HEX`; `#` starts a comment. Delete a
//! line to forget a key.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::protocol::{hex, valid_nick};

/// What a (nick, key) pair is to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// This key is known for this nick.
    Known,
    /// Nobody was known under this nick: remembered now (first use).
    New,
    /// Your own nick, announced by a key you have not accepted for it (someone else chose the
    /// same nick, or pretends to be you to the others): shown as `nick#fingerprint`, not
    /// remembered.
    Namesake,
    /// The nick is known with other keys only: flagged, not trusted.
    Changed {
        /// The keys known for the nick.
        known: Vec<[u8; 32]>,
    },
}

/// The known-peers table, backed by a file (or only in memory).
#[derive(Debug, Default)]
pub struct KnownPeers {
    path: Option<PathBuf>,
    by_nick: BTreeMap<String, Vec<[u8; 32]>>,
}

impl KnownPeers {
    /// A table kept in memory only.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Load the file at `path` (a missing file is an empty table; it is created on the first
    /// [`remember`](Self::remember)). Lines that do not parse are skipped and described in the
    /// returned warnings.
    pub fn load(path: &Path) -> io::Result<(Self, Vec<String>)> {
        let mut table = Self {
            path: Some(path.to_owned()),
            by_nick: BTreeMap::new(),
        };
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((table, Vec::new())),
            Err(e) => return Err(e),
        };
        let mut warnings = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Some((nick, key)) => {
                    table.insert(&nick, key);
                }
                None => warnings.push(format!(
                    "{}:{}: not `NICK KEY-HEX`, ignored",
                    path.display(),
                    n + 1
                )),
            }
        }
        Ok((table, warnings))
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn insert(&mut self, nick: &str, key: [u8; 32]) -> bool {
        let keys = self.by_nick.entry(nick.to_ascii_lowercase()).or_default();
        if keys.contains(&key) {
            return false;
        }
        keys.push(key);
        true
    }

    /// The keys known for `nick`.
    pub fn keys(&self, nick: &str) -> &[[u8; 32]] {
        self.by_nick
            .get(&nick.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// What `key` announcing `nick` is, given that this chat itself is `own` (nick, key).
    pub fn classify(&self, nick: &str, key: &[u8; 32], own: (&str, &[u8; 32])) -> Trust {
        let known = self.keys(nick);
        let yours = nick.eq_ignore_ascii_case(own.0);
        if known.contains(key) || (yours && key == own.1) {
            Trust::Known
        } else if known.is_empty() {
            if yours { Trust::Namesake } else { Trust::New }
        } else {
            Trust::Changed {
                known: known.to_vec(),
            }
        }
    }

    /// Accept `key` for `nick`: add it to the table and append it to the file (created 0600 with
    /// a header if missing). The table is updated even if writing fails.
    pub fn remember(&mut self, nick: &str, key: &[u8; 32]) -> io::Result<()> {
        if !self.insert(nick, *key) {
            return Ok(());
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        crate::identity::create_private_dirs(path)?;
        let mut file = match crate::identity::create_private_file(path) {
            Ok(mut f) => {
                f.write_all(
                    b"# netaio chat known peers: NICK ED25519-PUBLIC-KEY-HEX, one a line.\n\
                      # Delete a line to forget a key.\n",
                )?;
                f
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::OpenOptions::new().append(true).open(path)?
            }
            Err(e) => return Err(e),
        };
        writeln!(file, "{} {}", nick.to_ascii_lowercase(), hex(key))?;
        file.sync_all()
    }
}

fn parse_line(line: &str) -> Option<(String, [u8; 32])> {
    let mut parts = line.split_whitespace();
    let (nick, key) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || valid_nick(nick).is_err() || key.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (b, pair) in out.iter_mut().zip(key.as_bytes().chunks_exact(2)) {
        *b = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some((nick.to_owned(), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: (&str, &[u8; 32]) = ("me", &[9; 32]);

    #[test]
    fn first_use_then_known_then_changed() {
        let mut t = KnownPeers::in_memory();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(t.classify("alice", &a, ME), Trust::New);
        t.remember("alice", &a).unwrap();
        assert_eq!(t.classify("alice", &a, ME), Trust::Known);
        assert_eq!(t.classify("ALICE", &a, ME), Trust::Known, "case-blind");
        assert_eq!(
            t.classify("Alice", &b, ME),
            Trust::Changed { known: vec![a] }
        );
        // Accepting the second key (a second device).
        t.remember("alice", &b).unwrap();
        assert_eq!(t.classify("alice", &b, ME), Trust::Known);
        assert_eq!(t.keys("alice"), &[a, b]);
    }

    #[test]
    fn own_nick_is_known_with_own_key_and_another_key_is_a_namesake() {
        let mut t = KnownPeers::in_memory();
        assert_eq!(t.classify("ME", ME.1, ME), Trust::Known);
        // Not "changed": nobody known under this nick changed keys.
        assert_eq!(t.classify("me", &[1; 32], ME), Trust::Namesake);
        // Once a key is accepted for the nick, others are changed keys again.
        t.remember("me", &[1; 32]).unwrap();
        assert_eq!(t.classify("me", &[1; 32], ME), Trust::Known);
        assert_eq!(
            t.classify("me", &[2; 32], ME),
            Trust::Changed {
                known: vec![[1; 32]]
            }
        );
    }

    #[test]
    fn persisted_and_reloaded_with_0600_and_bad_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/known_peers");
        let (mut t, w) = KnownPeers::load(&path).unwrap();
        assert!(w.is_empty());
        t.remember("Alice", &[1; 32]).unwrap();
        t.remember("bob", &[2; 32]).unwrap();
        t.remember("bob", &[2; 32]).unwrap(); // no duplicate line
        let mut text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with("bob ")).count(), 1);
        text.push_str("garbage line\nbad\u{1b}nick 0101\n");
        fs::write(&path, text).unwrap();
        let (t2, w) = KnownPeers::load(&path).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(t2.keys("alice"), &[[1; 32]]);
        assert_eq!(t2.keys("BOB"), &[[2; 32]]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
