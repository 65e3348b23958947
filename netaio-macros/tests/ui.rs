//! Compile tests for the attribute macros: every accepted form compiles (and runs), every mistake
//! is a compile error whose text is committed next to the case (`tests/ui/fail/*.stderr`).
//!
//! After an intended change of an error message, regenerate with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
