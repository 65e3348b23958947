//! The benchmark driver (and, with `server` / `client` as first argument, the two roles it spawns).
//!
//! `cargo run --release -p netaio-bench --bin bench -- --quick`; `--help` for the options.

use std::process::ExitCode;

use clap::Parser;
use netaio_bench::args::{BenchCli, Role};

fn main() -> ExitCode {
    let cli = BenchCli::parse();
    let result = match cli.role {
        Some(Role::Server(s)) => netaio_bench::server::run(s.server, s.imp),
        Some(Role::Client(c)) => netaio_bench::client::run(c),
        None => netaio_bench::driver::run(cli.driver),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
