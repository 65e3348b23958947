//! The benchmark client: `loadgen --address ADDR --workload w1|w2|w3|w4|w5|idle [--mode M]
//! [--size B] [--count N] [--warmup N] [--conns N] [--seconds S] [--rate-estimate R]`.
//! Prints one JSON line with the measurement.

use std::process::ExitCode;

use clap::Parser;
use netaio_bench::args::ClientArgs;

/// The benchmark client: one workload against an echo server; prints one JSON line (`ready N` for
/// the idle workload).
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    #[command(flatten)]
    client: ClientArgs,
}

fn main() -> ExitCode {
    match netaio_bench::client::run(Cli::parse().client) {
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
    fn parses_the_driver_s_flags() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "--address",
            "127.0.0.1:9",
            "--workload",
            "w2",
            "--count",
            "1000",
        ])
        .unwrap();
        assert_eq!(
            (cli.client.workload.as_str(), cli.client.count),
            ("w2", Some(1000))
        );
        assert!(Cli::try_parse_from(["loadgen", "--workload", "w2"]).is_err());
    }
}
