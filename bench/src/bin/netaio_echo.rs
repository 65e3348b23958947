//! The netaio echo server of the benchmark: `netaio-echo [--mode none|hmac|hmac+aead]
//! [--address 127.0.0.1:0] [--threads 1] [--replay-capacity N] [--transport tcp|udp]
//! [--idle-timeout S]`. Prints `listening ADDR`.

use std::process::ExitCode;

use clap::Parser;
use netaio_bench::Impl;
use netaio_bench::args::ServerArgs;

/// The netaio-echo server of the benchmark; prints `listening ADDR` once bound.
#[derive(Debug, Parser)]
#[command(name = "netaio-echo")]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    match netaio_bench::server::run(Cli::parse().server, Impl::Netaio) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::try_parse_from(["netaio-echo"]).unwrap();
        assert_eq!(cli.server.address, "127.0.0.1:0".parse().unwrap());
        let cli =
            Cli::try_parse_from(["netaio-echo", "--threads", "2", "--transport=udp"]).unwrap();
        assert_eq!(cli.server.threads, 2);
        assert_eq!(cli.server.transport, netaio_bench::Transport::Udp);
        // The implementation is the binary's.
        assert!(Cli::try_parse_from(["netaio-echo", "--impl", "python"]).is_err());
    }
}
