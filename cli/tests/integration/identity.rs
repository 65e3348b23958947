//! `identity new|show`, and `--identity` / `--peer-key`: Ed25519 signatures both ways.

use crate::common::{run, serve};

fn identity(dir: &std::path::Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let out = run(&["--json", "identity", "new", path.to_str().unwrap()]);
    out.assert_code(0);
    let key = out.events("identity")[0]["ed25519"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), 64);
    let shown = run(&["--json", "identity", "show", path.to_str().unwrap()]);
    assert_eq!(shown.events("identity")[0]["ed25519"], key);
    // Never overwritten.
    run(&["identity", "new", path.to_str().unwrap()]).assert_code(1);
    (path.to_str().unwrap().to_owned(), key)
}

#[test]
fn signed_requests_between_known_keys_and_a_stranger_refused() {
    let dir = std::env::temp_dir().join(format!("netaio-cli-ids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server_id, server_key) = identity(&dir, "server");
    let (client_id, client_key) = identity(&dir, "client");
    let (stranger_id, _) = identity(&dir, "stranger");
    let (_server, port) = serve(
        "127.0.0.1:0",
        &["--identity", &server_id, "--peer-key", &client_key],
    );
    let addr = format!("127.0.0.1:{port}");
    let out = run(&[
        "--json",
        "--identity",
        &client_id,
        "--peer-key",
        &server_key,
        "request",
        &addr,
        "echo",
        "signed",
    ]);
    out.assert_code(0);
    assert_eq!(out.events("reply")[0]["content"], "signed");
    let out = run(&[
        "--json",
        "--identity",
        &stranger_id,
        "--peer-key",
        &server_key,
        "request",
        &addr,
        "echo",
        "x",
    ]);
    out.assert_code(4);
    run(&["request", &addr, "echo", "--peer-key", "00"]).assert_code(2);
    std::fs::remove_dir_all(&dir).unwrap();
}
