//! `netaio`: a command-line tool to poke, watch and measure netaio services, as grpcurl is to
//! gRPC. Every command and flag is documented in `CLI.md` at the repository root; the exit codes
//! are in [`exit`].
//!
//! ```text
//! netaio serve --listen 127.0.0.1:8888          # terminal 1: an echo server printing what it gets
//! netaio request 127.0.0.1:8888 echo hello      # terminal 2: RESPOND_URI  echo  hello
//! ```
//!
//! The tool uses the library's public API only (and netaiod's `NativeClient` for `daemon`). One module per command under `cmd/`; the flags
//! every command shares (plugins, secrets, output) are in `common.rs`, printing in `output.rs`.
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod common;
mod content;
mod exit;
mod output;
mod target;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::exit::Failure;

fn main() -> ExitCode {
    let cli: Cli = netaio_support::parse_args();
    let default_filter = match cli.common.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    netaio_support::init_tracing(default_filter);
    let out = output::Output::new(cli.common.json);
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "netaio", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return out.fail(&Failure::other(format!("cannot start the runtime: {e}"))),
    };
    match runtime.block_on(cmd::run(cli, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => out.fail(&failure),
    }
}
