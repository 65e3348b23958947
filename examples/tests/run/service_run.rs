//! The `service` example (a `#[service]` key-value store) run as a user runs it: it prints every
//! exchange, including the error replies as typed errors, and exits 0. The wait is bounded, and the
//! child is killed if it does not finish.

use crate::common;

use common::run;

const SERVICE: &str = env!("CARGO_BIN_EXE_service");

#[test]
fn service_example_prints_the_exchange_and_exits_0() {
    let (ok, stdout, stderr) = run(SERVICE);
    assert!(ok, "service failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let expected = [
        r#"> create "color" "blue""#,
        r#"< OK "color" "created""#,
        r#"< OK "size" "created""#,
        r#"< error RequestError::Error: ERROR "ERROR" "key exists""#,
        r#"< RESPOND_URI "color" "blue""#,
        r#"< OK "color" "updated""#,
        r#"< RESPOND_URI "color" "green""#,
        r#"< RESPOND_URI "keys" "color,size""#,
        r#"< OK "size" "deleted""#,
        r#"< error RequestError::NotFound: NOT_FOUND "ERROR" "key not found""#,
        r#"< RESPOND_URI "keys" "color""#,
        "server shut down",
        "service example finished",
    ];
    // In order: each expected line appears after the previous one.
    let mut lines = stdout.lines();
    for line in expected {
        assert!(
            lines.any(|l| l == line),
            "missing (or out of order) line {line:?} in stdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}
