//! The hand-written tokio echo server of the benchmark (same framing, no routing, no plugins):
//! `baseline-echo [--address 127.0.0.1:0] [--threads 1]`. Prints `listening ADDR`.

use std::process::ExitCode;

use netaio_bench::Impl;

fn main() -> ExitCode {
    match netaio_bench::server::main_with(std::env::args().skip(1), Some(Impl::Baseline)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
