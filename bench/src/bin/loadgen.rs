//! The benchmark client: `loadgen --address ADDR --workload w1|w2|w3|w5|idle [--mode M]
//! [--size B] [--count N] [--warmup N] [--conns N] [--seconds S] [--rate-estimate R]`.
//! Prints one JSON line with the measurement.

use std::process::ExitCode;

fn main() -> ExitCode {
    match netaio_bench::client::main_with(std::env::args().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
