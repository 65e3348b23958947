//! What the netaio programs (`examples/` and the `chat`) share, so that none depends on another
//! program's crate:
//!
//! - [`init_tracing`]: logs to stderr, filtered by `RUST_LOG`;
//! - [`signals`]: a future completing on Ctrl-C / SIGTERM, and one after `--seconds N`;
//! - [`parse_args`]: clap's `Parser::parse`, with the usage after every usage error, and
//!   [`parse_no_args`] for the programs that take none (`--help` works, anything else is refused);
//! - [`parse_ip`]: the clap value parser of address flags (`::1` and `[::1]` both work);
//! - [`MulticastArgs`]: the `--bind --port --group --group-port --interface` flags of the
//!   programs that find peers by multicast (`discovery`, `chat`).
//!
//! ```
//! use clap::Parser;
//! use netaio_support::MulticastArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     lan: MulticastArgs,
//! }
//!
//! let cli = Cli::try_parse_from(["prog", "--bind", "[::1]", "--group-port", "7400"]).unwrap();
//! assert_eq!(cli.lan.bind_addr().to_string(), "[::1]:0");
//! assert_eq!(cli.lan.multicast().get_port(), Some(7400));
//! ```
#![forbid(unsafe_code)]

pub mod signals;

use std::io::IsTerminal;
use std::net::{AddrParseError, IpAddr, SocketAddr};

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use netaio::udp::{MulticastConfig, MulticastInterface};
use tracing_subscriber::EnvFilter;

/// Install a log subscriber writing to stderr. `RUST_LOG` (for example `RUST_LOG=netaio=debug`)
/// overrides `default_filter`.
pub fn init_tracing(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // A second call (several programs in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Parse the program's arguments into `P`, or exit: for `--help`, the help on stdout and exit code
/// 0; for a usage error, the error and the usage on stderr and exit code 2.
pub fn parse_args<P: Parser>() -> P {
    try_parse_args_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// Parse `args` (the program name first) into `P`, like `P::try_parse_from`, but every usage
/// error carries the usage: clap leaves it out of some (a value that does not parse, for one),
/// and the programs have always shown it, so that the user sees the flags at once.
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// #[command(name = "prog")]
/// struct Cli {
///     #[arg(long)]
///     port: u16,
/// }
///
/// let err = netaio_support::try_parse_args_from::<Cli, _, _>(["prog", "--port", "x"]).err().unwrap();
/// assert!(err.to_string().contains("Usage: prog --port <PORT>"), "{err}");
/// ```
pub fn try_parse_args_from<P, I, T>(args: I) -> Result<P, clap::Error>
where
    P: Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    P::try_parse_from(args.iter().cloned()).map_err(|e| {
        // The program as it was called, as clap names it in the usage of its other errors.
        let mut cmd = P::command();
        if let Some(name) = args
            .first()
            .and_then(|a| std::path::Path::new(a).file_name())
        {
            cmd = cmd.bin_name(name.to_string_lossy());
        }
        with_usage(e, &mut cmd)
    })
}

/// The command line of a program that takes no arguments: `--help` prints `about` and the usage
/// and exits 0; any argument is a usage error (the error and the usage on stderr, exit code 2), so a
/// mistyped flag is not silently ignored.
pub fn parse_no_args(name: &'static str, about: &'static str) {
    if let Err(e) = try_no_args_from(name, about, std::env::args_os()) {
        e.exit();
    }
}

/// [`parse_no_args`] on `args` (the program name first), returning the error or help instead of
/// exiting.
///
/// ```
/// assert!(netaio_support::try_no_args_from("demo", "A demo.", ["demo"]).is_ok());
/// let err = netaio_support::try_no_args_from("demo", "A demo.", ["demo", "--port", "1"]).unwrap_err();
/// assert_eq!(err.exit_code(), 2);
/// assert!(err.to_string().contains("Usage: demo"), "{err}");
/// let help = netaio_support::try_no_args_from("demo", "A demo.", ["demo", "--help"]).unwrap_err();
/// assert_eq!(help.exit_code(), 0);
/// assert!(help.to_string().contains("A demo."), "{help}");
/// ```
pub fn try_no_args_from<I, T>(
    name: &'static str,
    about: &'static str,
    args: I,
) -> Result<(), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = clap::Command::new(name).about(about);
    cmd.try_get_matches_from_mut(args)
        .map(drop)
        .map_err(|e| with_usage(e, &mut cmd))
}

/// `err` with `cmd`'s usage, unless it has one already or is not an error (`--help`).
pub fn with_usage(mut err: clap::Error, cmd: &mut clap::Command) -> clap::Error {
    let informational = matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !informational && err.get(ContextKind::Usage).is_none() {
        err.insert(
            ContextKind::Usage,
            ContextValue::StyledStr(cmd.render_usage()),
        );
    }
    err
}

/// `[::1]` -> `::1`; anything else unchanged.
///
/// ```
/// assert_eq!(netaio_support::strip_brackets("[::1]"), "::1");
/// assert_eq!(netaio_support::strip_brackets("localhost"), "localhost");
/// ```
pub fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// An IP address flag's value: `127.0.0.1`, `::1`, or `[::1]` (the brackets people copy from a
/// `[::1]:8888` address). For `#[arg(value_parser = parse_ip)]`.
///
/// ```
/// use std::net::Ipv6Addr;
/// assert_eq!(netaio_support::parse_ip("[::1]"), Ok(Ipv6Addr::LOCALHOST.into()));
/// assert!(netaio_support::parse_ip("localhost").is_err());
/// ```
pub fn parse_ip(s: &str) -> Result<IpAddr, AddrParseError> {
    strip_brackets(s).parse()
}

/// The address and multicast flags of a program that finds its peers by multicast. Flatten it
/// into a `clap::Parser` with `#[command(flatten)]`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct MulticastArgs {
    /// Address to bind: 0.0.0.0 (every multicast-capable interface), :: for IPv6, or one address
    /// such as 127.0.0.1 (the interface holding it)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0", value_parser = parse_ip)]
    pub bind: IpAddr,
    /// Unicast port (0: any free port)
    #[arg(long, value_name = "P", default_value_t = 0)]
    pub port: u16,
    /// Multicast group [default: 239.255.110.97, or ff02::6e61:696f for IPv6]
    #[arg(long, value_name = "IP", value_parser = parse_ip)]
    pub group: Option<IpAddr>,
    /// Multicast port [default: 8889]
    #[arg(long, value_name = "P")]
    pub group_port: Option<u16>,
    /// Join the group and send to it on this interface only
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
}

impl MulticastArgs {
    /// The unicast address to bind: `--bind` and `--port`.
    pub fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The multicast setup: netaio's defaults, overridden by the flags given. A group of the
    /// wrong family is not refused here: the node's bind reports it.
    pub fn multicast(&self) -> MulticastConfig {
        let mut config = MulticastConfig::default();
        if let Some(group) = self.group {
            config = config.group(group);
        }
        if let Some(port) = self.group_port {
            config = config.port(port);
        }
        if let Some(name) = &self.interface {
            config = config.interface(MulticastInterface::Name(name.clone()));
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        lan: MulticastArgs,
    }

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["prog"]).unwrap();
        assert_eq!(cli.lan.bind_addr(), "0.0.0.0:0".parse().unwrap());
        assert_eq!(cli.lan.multicast(), MulticastConfig::default());
    }

    #[test]
    fn flags() {
        let cli = Cli::try_parse_from([
            "prog",
            "--bind=::",
            "--port",
            "9",
            "--group",
            "[ff02::1]",
            "--group-port",
            "7400",
            "--interface",
            "eth0",
        ])
        .unwrap();
        assert_eq!(cli.lan.bind_addr(), "[::]:9".parse().unwrap());
        let expected = MulticastConfig::default()
            .group("ff02::1".parse().unwrap())
            .port(7400)
            .interface(MulticastInterface::Name("eth0".into()));
        assert_eq!(cli.lan.multicast(), expected);
    }

    #[test]
    fn refusals() {
        for args in [
            &["prog", "--group", "not-an-ip"][..],
            &["prog", "--port", "65536"],
            &["prog", "--bind"],
            &["prog", "--port", "1", "--port", "2"],
            &["prog", "8888"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn usage_errors_show_the_usage_and_help_is_not_an_error() {
        for args in [&["prog", "--port", "x"][..], &["prog", "--bogus"]] {
            let err = try_parse_args_from::<Cli, _, _>(args).unwrap_err();
            let text = err.to_string();
            assert_eq!(text.matches("Usage: prog").count(), 1, "{text}");
            assert_eq!(err.exit_code(), 2);
        }
        let help = try_parse_args_from::<Cli, _, _>(["prog", "--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert_eq!(help.exit_code(), 0);
        assert!(help.to_string().contains("--group-port <P>"));
    }
}
