//! The benchmark driver (and, with `server` / `client` as first argument, the two roles it spawns).
//!
//! `cargo run --release -p netaio-bench --bin bench -- --quick`; `--help` for the options.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let result = match args.peek().map(String::as_str) {
        Some("server") => netaio_bench::server::main_with(args.skip(1), None),
        Some("client") => netaio_bench::client::main_with(args.skip(1)),
        _ => netaio_bench::driver::main_with(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
