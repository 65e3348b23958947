//! The plugin examples run as a user runs them: each prints its exchange, with the refusals as
//! typed errors, and exits 0. Every wait is bounded, and a child that does not finish is killed.

// The helpers below are test code too (clippy.toml allows these only inside `#[test]` functions):
// a panic is how they report a failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::common;

use common::run;

const HMAC_CIPHER: &str = env!("CARGO_BIN_EXE_hmac_cipher");
const HASHCASH: &str = env!("CARGO_BIN_EXE_hashcash");
const ASYMMETRIC: &str = env!("CARGO_BIN_EXE_asymmetric");

/// The example exited 0, and printed each of `expected` in this order (other lines may come
/// between them). A line ending in `*` matches any line with that prefix.
fn assert_run(program: &str, expected: &[&str]) -> String {
    let (ok, stdout, stderr) = run(program);
    assert!(ok, "{program} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let mut lines = stdout.lines();
    for want in expected {
        let found = lines.any(|l| match want.strip_suffix('*') {
            Some(prefix) => l.starts_with(prefix),
            None => l == *want,
        });
        assert!(
            found,
            "missing (or out of order) line {want:?} in stdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    stdout
}

#[test]
fn hmac_cipher_example_shows_both_layers_and_the_refusals() {
    let stdout = assert_run(
        HMAC_CIPHER,
        &[
            "server listening on 127.0.0.1:*",
            // The uri is encrypted; both layers' fields are in the auth block.
            "on the wire: uri \"\", 50 bytes of content instead of 11, auth fields \
             admin.hmac admin.iv admin.nonce admin.ts hmac iv nonce ts",
            "client with the node secret connected",
            r#"> REQUEST_URI "echo" "hello""#,
            r#"< RESPOND_URI "echo" "hello""#,
            r#"> REQUEST_URI "admin" "rotate keys" (with the admin layer)"#,
            r#"< RESPOND_URI "admin" "done: rotate keys""#,
            r#"> REQUEST_URI "admin" "rotate keys" (without the admin layer)"#,
            r#"< error RequestError::Auth: AUTH_ERROR "ERROR" "HMAC auth failed""#,
            "client with a wrong secret connected",
            r#"> REQUEST_URI "echo" "hello""#,
            r#"< error RequestError::Auth: AUTH_ERROR "ERROR" "HMAC auth failed""#,
            r#"> REQUEST_URI "admin" "rotate keys""#,
            r#"< error RequestError::Auth: AUTH_ERROR "ERROR" "HMAC auth failed""#,
            "the admin handler ran 1 time(s)",
            "server shut down",
            "hmac_cipher example finished",
        ],
    );
    // Three refusals, and no other error.
    assert_eq!(stdout.matches("< error ").count(), 3, "{stdout}");
}

#[test]
fn hashcash_example_accepts_stamped_posts_and_refuses_the_rest() {
    let stdout = assert_run(
        HASHCASH,
        &[
            "server listening on 127.0.0.1:*",
            "client that solves stamps connected",
            r#"> REQUEST_URI "post" "hello" (with a 16-bit stamp)"#,
            r#"< OK "post" "post #1 accepted (5 bytes)""#,
            "  stamp solved and call answered in *",
            r#"< OK "post" "post #2 accepted (30 bytes)""#,
            "  stamp solved and call answered in *",
            r#"< OK "post" "post #3 accepted (10 bytes)""#,
            "  stamp solved and call answered in *",
            "client that does not solve stamps connected",
            r#"< RESPOND_URI "status" "3 post(s)""#,
            r#"> REQUEST_URI "post" "buy now" (no stamp)"#,
            r#"< error RequestError::Auth: AUTH_ERROR "ERROR" "proof of work required""#,
            r#"< RESPOND_URI "status" "3 post(s)""#,
            "server shut down",
            "hashcash example finished",
        ],
    );
    assert_eq!(stdout.matches("< error ").count(), 1, "{stdout}");
}

#[test]
fn asymmetric_example_exchanges_peers_then_encrypts_and_signs() {
    let stdout = assert_run(
        ASYMMETRIC,
        &[
            "vault listening on 127.0.0.1:*",
            "alice connected",
            r#"> ADVERTISE_PEER "vault" (peer "alice", Ed25519 key *"#,
            r#"  vault recorded peer "alice" for connection *"#,
            r#"< PEER_DISCOVERED "vault" (peer "vault", Ed25519 key *"#,
            r#"  alice recorded peer "vault": its keys are the pinned ones"#,
            // The uri stays in clear (routing needs it); content + 16-byte tag; the plugins' fields.
            r#"on the wire: uri "secret", 35 bytes of content instead of 19, auth fields kid nonce sig ts xnonce"#,
            r#"> REQUEST_URI "secret" "what is the answer?" (encrypted to the vault, signed by alice)"#,
            r#"< RESPOND_URI "secret" "for alice only: the answer to \"what is the answer?\" is 42""#,
            r#"> REQUEST_URI "secret" "what is the answer?" (no plugins)"#,
            r#"< error RequestError::Auth: AUTH_ERROR "ERROR" "Ed25519 auth failed""#,
            "mallory connected",
            r#"> REQUEST_URI "secret" "what is the answer?" (mallory, before the exchange)"#,
            "< not sent: message cannot be sealed: inner cipher: unknown peer key",
            r#"> ADVERTISE_PEER "vault" (peer "mallory", Ed25519 key *"#,
            r#"< error RequestError::NotPermitted: NOT_PERMITTED "vault" "key not registered""#,
            r#"> REQUEST_URI "secret" "what is the answer?" (mallory, unregistered key)"#,
            r#"< error RequestError::Auth: AUTH_ERROR "ERROR" "Ed25519 auth failed""#,
            "server shut down",
            "asymmetric example finished",
        ],
    );
    // Only alice's one protected call was answered.
    assert_eq!(stdout.matches("< RESPOND_URI").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("vault recorded peer").count(), 1, "{stdout}");
}
