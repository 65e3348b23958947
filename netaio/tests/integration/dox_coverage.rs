#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Keeps `dox.md` (the API reference at the repository root) in step with the code: every public
//! struct, enum, trait, type alias, module, module-level constant and module-level free function
//! declared under `netaio/src` must be named in `dox.md`, in a heading or an inline code span.
//!
//! Items are collected from the source text: `pub struct|enum|trait|type|mod NAME` at any
//! indentation and `pub [const|async] fn NAME` / `pub const NAME` at column 0 (module level;
//! methods are not required). `pub(crate)` items, `#[cfg(test)]` modules and comments are skipped.
//! An item that is `pub` in a private module but not re-exported should be `pub(crate)` instead.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::rust_files;

const DOX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dox.md");
const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

fn ident_prefix(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The public item names declared in one source file.
fn public_items(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = src.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        // Skip a `#[cfg(test)]` module: from its `mod` line to the closing brace at its indentation.
        if trimmed.starts_with("#[cfg(test)]") {
            let indent = line.len() - trimmed.len();
            if let Some(next) = lines.peek()
                && next.trim_start().starts_with("mod ")
                && next.trim_end().ends_with('{')
            {
                let close = format!("{}}}", " ".repeat(indent));
                for l in lines.by_ref() {
                    if l.trim_end() == close {
                        break;
                    }
                }
            }
            continue;
        }
        let at_module_level = !line.starts_with(char::is_whitespace);
        let Some(rest) = trimmed.strip_prefix("pub ") else {
            continue;
        };
        let mut kinds = vec!["struct ", "enum ", "trait ", "type ", "mod "];
        if at_module_level {
            // `const fn` before `const`: the first matching keyword wins.
            kinds.extend(["fn ", "async fn ", "const fn ", "const "]);
        }
        let name = kinds
            .iter()
            .find_map(|kw| rest.strip_prefix(kw).map(ident_prefix));
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            names.push(n.to_owned());
        }
    }
    names
}

/// Identifiers named in `dox.md` headings and inline code spans (fenced code blocks excluded: an
/// example that uses a name does not document it).
fn documented_names(dox: &str) -> BTreeSet<String> {
    let mut texts: Vec<&str> = Vec::new();
    let mut in_fence = false;
    for line in dox.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if line.starts_with('#') {
            texts.push(line);
        }
        // Inline code spans: text between pairs of backticks.
        let mut parts = line.split('`');
        parts.next();
        while let Some(code) = parts.next() {
            texts.push(code);
            parts.next();
        }
    }
    texts
        .iter()
        .flat_map(|t| t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_public_item_is_in_dox_md() {
    let dox = std::fs::read_to_string(DOX).expect("dox.md at the repository root");
    let documented = documented_names(&dox);

    let mut files = Vec::new();
    rust_files(Path::new(SRC), 0, &mut files);
    let mut items = BTreeSet::new();
    for f in &files {
        items.extend(public_items(&std::fs::read_to_string(f).unwrap()));
    }

    // The walker must find the crate's items; if it finds nothing the test would pass vacuously.
    for expected in [
        "Message",
        "MessageType",
        "TcpServer",
        "Connection",
        "AuthPlugin",
        "Handler",
        "PeerData",
        "seal",
        "default_auth_error_reply",
        "MAX_FRAME",
        "fields",
        "plugin",
    ] {
        assert!(
            items.contains(expected),
            "source walk missed {expected}: {items:?}"
        );
    }
    // Test-only and crate-private items are not collected.
    for hidden in ["tests", "PeerSlot", "Routes", "NodePlugins", "Link"] {
        assert!(!items.contains(hidden), "{hidden} is not public API");
    }
    assert!(items.len() >= 60, "only {} items found", items.len());

    let missing: Vec<_> = items.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "public items not documented in dox.md (add a heading or a `code span`): {missing:?}"
    );
}

#[test]
fn collector_understands_the_source_forms() {
    let src = "\
pub struct A;
pub(crate) struct Hidden;
/// pub struct InDoc;
pub enum B { X }
pub fn free() {}
pub async fn free_async() {}
pub const fn free_const() {}
pub const LIMIT: usize = 1;
impl A {
    pub fn method(&self) {}
    pub const ASSOC: u8 = 0;
}
pub mod inner {
    pub type Alias = u8;
    pub trait T {}
}
#[cfg(test)]
mod tests {
    pub struct TestOnly;
    mod nested {
    }
    pub fn helper() {}
}
pub struct AfterTests;
";
    let names = public_items(src);
    assert_eq!(
        names,
        [
            "A",
            "B",
            "free",
            "free_async",
            "free_const",
            "LIMIT",
            "inner",
            "Alias",
            "T",
            "AfterTests"
        ]
    );

    let dox = "# `Alpha`\ntext `Beta::gamma(x)` and `delta`\n```rust\nlet NotDoc = 1;\n```\n";
    let doc = documented_names(dox);
    for n in ["Alpha", "Beta", "gamma", "x", "delta"] {
        assert!(doc.contains(n), "{n}");
    }
    assert!(!doc.contains("NotDoc") && !doc.contains("text"));
}
