//! `--help` and `completions`.

use crate::common::run;

#[test]
fn help_lists_every_command_with_examples() {
    let out = run(&["--help"]);
    out.assert_code(0);
    for cmd in [
        "request",
        "create",
        "update",
        "delete",
        "call",
        "send",
        "subscribe",
        "serve",
        "listen",
        "discover",
        "grasp",
        "bench",
        "relay",
        "daemon",
        "identity",
        "completions",
    ] {
        assert!(
            out.stdout.contains(&format!("  {cmd} ")),
            "{cmd}: {}",
            out.stdout
        );
        if !matches!(cmd, "grasp" | "identity") {
            let sub = run(&[cmd, "--help"]);
            sub.assert_code(0);
            assert!(
                sub.stdout.contains("Example"),
                "{cmd} --help: {}",
                sub.stdout
            );
        }
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        out.assert_code(0);
        assert!(
            out.stdout.contains("netaio") && out.stdout.contains("subscribe"),
            "{shell}"
        );
    }
    run(&["completions", "cmd.exe"]).assert_code(2);
}
