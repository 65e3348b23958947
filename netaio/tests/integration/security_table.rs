//! Keeps `SECURITY.md` honest: every test its tables name exists in the workspace's sources.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::rust_files;

const SECURITY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../SECURITY.md");
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The code spans of the last column of every table row.
fn named_tests(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
    {
        let cells: Vec<&str> = line.trim_end_matches('|').split('|').collect();
        let Some(last) = cells.last() else { continue };
        for span in last.split('`').skip(1).step_by(2) {
            if span
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                out.insert(span.to_owned());
            }
        }
    }
    out
}

fn is_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

#[test]
fn every_test_named_in_security_md_exists() {
    let text = std::fs::read_to_string(SECURITY).unwrap();
    let names = named_tests(&text);
    assert!(
        names.len() >= 20,
        "the tables name only {} tests",
        names.len()
    );
    let mut sources = String::new();
    for dir in [
        "netaio",
        "netaio-asymmetric",
        "tests",
        "bench",
        "chat",
        "examples",
        "gossip",
        "netaiod",
        "cli",
        "grasp",
    ] {
        let dir = Path::new(WORKSPACE).join(dir);
        if dir.exists() {
            let mut files = Vec::new();
            rust_files(&dir, 0, &mut files);
            for file in files {
                sources.push_str(&std::fs::read_to_string(file).unwrap());
                sources.push('\n');
            }
        }
    }
    let missing: Vec<_> = names.iter().filter(|n| !is_word(&sources, n)).collect();
    assert!(
        missing.is_empty(),
        "SECURITY.md names tests that do not exist: {missing:?}"
    );
}
