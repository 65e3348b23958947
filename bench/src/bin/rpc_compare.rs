//! `rpc-compare`: netaio's library server and client beside tarpc's and a raw tokio echo (issue
//! 20's table in one command); `--help` for the options.
//!
//! `cargo run --release -p netaio-bench --bin rpc-compare`

use std::process::ExitCode;

use clap::Parser;
use netaio_bench::rpc::compare;
use netaio_bench::rpc::{RpcCli, RpcRole};

fn main() -> ExitCode {
    let cli = RpcCli::parse();
    let result = match cli.role {
        Some(RpcRole::Server(s)) => compare::server(s),
        Some(RpcRole::Client(c)) => compare::client(c),
        None => compare::run(cli.driver),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
