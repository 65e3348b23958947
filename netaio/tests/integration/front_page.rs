//! The rustdoc front page (`netaio/README.md`, the crate's docs) works inside rustdoc and the
//! root README's Rust blocks are all compiled: the front page sends no one to "README.md", has no
//! `[`X`]s` link rustdoc prints literally, names every public module; the main types have an
//! example at the top of their page; no Rust block of the root README is `ignore`d (they are
//! doctests of `netaio-examples`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

const FRONT: &str = include_str!("../../README.md");
const ROOT_README: &str = include_str!("../../../README.md");
const LIB: &str = include_str!("../../src/lib.rs");

#[test]
fn the_front_page_stands_alone_and_lists_every_module() {
    assert!(
        !FRONT.contains("README.md"),
        "the front page refers to README.md"
    );
    assert!(
        !FRONT.contains("`]s"),
        "a link with a plural `s` is printed literally by rustdoc"
    );
    let modules: Vec<&str> = LIB
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').trim_end_matches(" {"))
        .collect();
    assert!(modules.len() >= 8, "{modules:?}");
    for m in modules {
        assert!(
            FRONT.contains(&format!("[`{m}`]")) || FRONT.contains(&format!("`{m}`")),
            "module {m} is not on the front page"
        );
    }
    assert!(
        FRONT.contains("tracing_subscriber"),
        "how to turn logging on"
    );
}

/// The doc comment right above `item` in `src`.
fn doc_above(src: &str, item: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(item))
        .unwrap_or_else(|| panic!("{item} not found"));
    let mut doc = Vec::new();
    for l in lines[..at].iter().rev() {
        let t = l.trim_start();
        if t.starts_with("///") {
            doc.push(t);
        } else if !t.starts_with("#[") {
            break;
        }
    }
    doc.reverse();
    doc.join("\n")
}

#[test]
fn the_main_types_have_an_example_on_their_page() {
    let cases = [
        (
            include_str!("../../src/tcp/connection.rs"),
            "pub struct Connection {",
        ),
        (
            include_str!("../../src/udp/node.rs"),
            "pub struct UdpNode {",
        ),
        (
            include_str!("../../src/udp/handle.rs"),
            "pub struct UdpHandle {",
        ),
        (
            include_str!("../../src/router/builder.rs"),
            "pub struct Router {",
        ),
        (
            include_str!("../../src/error.rs"),
            "pub enum RequestError {",
        ),
        (
            include_str!("../../src/tcp/server.rs"),
            "pub struct TcpServer {",
        ),
    ];
    for (src, item) in cases {
        let doc = doc_above(src, item);
        assert!(doc.contains("/// ```"), "{item} has no example:\n{doc}");
    }
}

#[test]
fn every_rust_block_of_the_root_readme_is_compiled() {
    let ignored: Vec<&str> = ROOT_README
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("```rust") && t.contains("ignore")
        })
        .collect();
    assert!(ignored.is_empty(), "ignored Rust blocks: {ignored:?}");
}
