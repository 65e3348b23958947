//! The netaio echo server of the benchmark: `netaio-echo [--mode none|hmac|hmac+aead]
//! [--address 127.0.0.1:0] [--threads 1] [--replay-capacity N]`. Prints `listening ADDR`.

use std::process::ExitCode;

use netaio_bench::Impl;

fn main() -> ExitCode {
    match netaio_bench::server::main_with(std::env::args().skip(1), Some(Impl::Netaio)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
