#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Keeps `ARCHITECTURE.md` and the imports of `netaio/src` in step: the layer table of
//! ARCHITECTURE.md says which top-level module may import which; every path into the crate
//! (`crate::x`, `$crate::x`, `super::super::x`, and names imported from the crate root such as
//! `crate::{Message, RequestError}`, resolved through lib.rs's re-exports) of every source file
//! must be allowed for the file's module. Comments are skipped (doc links are not imports).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::rust_files;

const ARCHITECTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ARCHITECTURE.md");
const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Modules outside the layers: lib.rs re-exports everything; node_macros.rs is expanded inside
/// the transports.
const FACADES: [&str; 2] = ["lib", "node_macros"];

/// The rows of ARCHITECTURE.md's layer table: module → the modules it may import.
fn rules(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let spans = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut rules = BTreeMap::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| layer | modules | may import |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').collect();
        let (modules, imports) = (spans(cells[2]), spans(cells[3]));
        for m in &modules {
            // A layer's modules may import each other.
            let allowed: BTreeSet<String> = imports.iter().chain(&modules).cloned().collect();
            rules.insert(m.clone(), allowed);
        }
    }
    rules
}

/// The top-level module a source file belongs to (`tcp` for src/tcp/server.rs, `codec` for
/// src/codec.rs).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(SRC).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// lib.rs's `pub use module::{A, B}` / `pub use module::A`: crate-root name → module.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.trim().rsplit("::").next().unwrap().to_owned();
            if !name.is_empty() {
                names.insert(name, module.to_owned());
            }
        }
    }
    names
}

/// The crate modules a line of code reaches: `crate::x`, `$crate::x`, `super::super::x` (from a
/// file one level down), and the names in `crate::{...}` mapped through the root re-exports.
fn imports_of(line: &str, depth: usize, root: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in line.match_indices("crate::") {
        let rest = &line[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',') {
                let item = item.trim();
                let head = ident(item);
                if item.contains("::") {
                    found.push(head);
                } else if let Some(m) = root.get(&head) {
                    found.push(m.clone());
                }
            }
            continue;
        }
        let head = ident(rest);
        if rest[head.len()..].starts_with("::") {
            found.push(head);
        } else if let Some(m) = root.get(&head) {
            found.push(m.clone());
        }
    }
    // `super::super::x` from a file two levels below the root (src/a/b.rs) names module `x`.
    if depth >= 2 {
        for (i, _) in line.match_indices("super::super::") {
            found.push(ident(&line[i + "super::super::".len()..]));
        }
    }
    found
}

#[test]
fn imports_follow_the_layers_of_architecture_md() {
    let rules = rules(&std::fs::read_to_string(ARCHITECTURE).unwrap());
    assert!(
        rules.len() >= 10,
        "the layer table of ARCHITECTURE.md was not found"
    );
    let root = root_names(&std::fs::read_to_string(format!("{SRC}/lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(Path::new(SRC), 0, &mut files);
    let mut violations = Vec::new();
    let mut unknown = BTreeSet::new();
    for file in &files {
        let module = module_of(file);
        if FACADES.contains(&module.as_str()) {
            continue;
        }
        let Some(allowed) = rules.get(&module) else {
            unknown.insert(module);
            continue;
        };
        let depth = file.strip_prefix(SRC).unwrap().components().count();
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for target in imports_of(code, depth, &root) {
                if target != module && rules.contains_key(&target) && !allowed.contains(&target) {
                    violations.push(format!(
                        "{}:{}: `{module}` imports `{target}`: {}",
                        file.strip_prefix(SRC).unwrap().display(),
                        n + 1,
                        code.trim()
                    ));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from ARCHITECTURE.md's layer table: {unknown:?}"
    );
    assert!(
        violations.is_empty(),
        "imports that break ARCHITECTURE.md's layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_every_kind_of_path() {
    let root = BTreeMap::from([
        ("Message".to_owned(), "message".to_owned()),
        ("TcpServer".to_owned(), "tcp".to_owned()),
    ]);
    assert_eq!(imports_of("use crate::tcp::driver;", 1, &root), ["tcp"]);
    assert_eq!(
        imports_of("use crate::{Message, TcpServer, udp::UdpNode};", 1, &root),
        ["message", "tcp", "udp"]
    );
    assert_eq!(
        imports_of("let x = $crate::router::Route::on(k, h);", 1, &root),
        ["router"]
    );
    assert_eq!(imports_of("use super::super::tcp::x;", 2, &root), ["tcp"]);
    assert!(imports_of("use super::super::tcp::x;", 1, &root).is_empty());
    let table = "| layer | modules | may import |\n|---|---|---|\n| 1 | `a`, `b` | — |\n\
                 | 2 | `c` | `a` |\n| 3 | `d` | `c` |\n| 4 | `e` | |\n| 5 | `f` | |\n\n| 6 | `g` | `c` |";
    let r = rules(&format!("{table}\n| 7 | `h` | |"));
    // The table ends at its first non-row line.
    assert!(!r.contains_key("g"));
    assert!(r["a"].contains("b") && !r["a"].contains("c"));
    assert!(r["c"].contains("a") && !r["c"].contains("b"));
}
