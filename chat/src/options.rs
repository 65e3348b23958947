//! The `chat` program's command line: [`Cli`] (clap), turned into the chat's [`Options`] by
//! [`Cli::into_options`], which also reads the room secret from its file or [`SECRET_ENV`].
//!
//! ```
//! let (opts, _color) =
//!     netaio_chat::options::parse(["chat", "--nick", "alice", "--identity", "/tmp/a/id"], None)
//!         .unwrap();
//! assert_eq!(opts.known_peers, std::path::PathBuf::from("/tmp/a/known_peers"));
//! assert_eq!(opts.bind.to_string(), "0.0.0.0:0");
//! ```

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use netaio_support::MulticastArgs;
use zeroize::Zeroizing;

use crate::app::Options;
use crate::ui::ColorMode;

/// The environment variable read for the room secret when no flag gives one.
pub const SECRET_ENV: &str = "NETAIO_CHAT_ROOM_SECRET";

/// An end-to-end encrypted LAN chat: peers found by UDP multicast, every message signed and
/// encrypted per recipient. Type /help in the chat for its commands.
// The doc comments of the struct and its fields are the `--help` text.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat")]
pub struct Cli {
    /// Your nick: letters, digits, - _ . (at most 24)
    #[arg(long, value_name = "NICK", value_parser = nick)]
    pub nick: String,
    /// Your key (created on first run, mode 0600) [default: $XDG_CONFIG_HOME/netaio-chat/identity
    /// or ~/.config/netaio-chat/identity]
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Keys accepted per nick [default: known_peers next to the identity]
    #[arg(long, value_name = "FILE")]
    pub known_peers: Option<PathBuf>,
    /// Only people with this secret find and read each other (also from the
    /// NETAIO_CHAT_ROOM_SECRET variable, which `ps` does not show)
    #[arg(long, value_name = "S", conflicts_with = "room_secret_file")]
    pub room_secret: Option<String>,
    /// The room secret is the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub room_secret_file: Option<PathBuf>,
    /// `--bind --port --group --group-port --interface`, as the `discovery` example's.
    #[command(flatten)]
    pub lan: MulticastArgs,
    /// Time between adverts, ms
    #[arg(long, value_name = "N", default_value_t = 5_000, value_parser = millis())]
    pub advert_interval_ms: u64,
    /// A peer not heard for this long has gone, ms (at least twice the advert interval)
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = millis())]
    pub peer_timeout_ms: u64,
    /// Wait this long for each recipient's acknowledgement before retrying, ms (3 tries)
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = millis())]
    pub ack_timeout_ms: u64,
    /// Colours: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorMode,
}

/// A nick the protocol accepts.
fn nick(s: &str) -> Result<String, String> {
    crate::protocol::valid_nick(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

/// Milliseconds, at least 1 (a zero interval or timeout would spin or never wait).
fn millis() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}

/// A usage error found after parsing, with the usage, exiting 2 like clap's own.
fn usage_error(kind: ErrorKind, message: impl std::fmt::Display) -> clap::Error {
    Cli::command().error(kind, message)
}

impl Cli {
    /// The chat's options: the default files filled in, the room secret read (from
    /// `--room-secret`, else the first line of `--room-secret-file`, else `env_secret`, the value
    /// of [`SECRET_ENV`]), and the checks that involve several flags.
    pub fn into_options(
        self,
        env_secret: Option<String>,
    ) -> Result<(Options, ColorMode), clap::Error> {
        let identity = match self.identity {
            Some(p) => p,
            None => crate::identity::default_dir()
                .ok_or_else(|| {
                    usage_error(
                        ErrorKind::MissingRequiredArgument,
                        "neither XDG_CONFIG_HOME nor HOME is set: give --identity FILE",
                    )
                })?
                .join("identity"),
        };
        let known_peers = match self.known_peers {
            Some(p) => p,
            None => identity
                .parent()
                .map_or_else(|| PathBuf::from("known_peers"), |d| d.join("known_peers")),
        };
        // clap refuses --room-secret with --room-secret-file (`conflicts_with`).
        let room_secret = match (self.room_secret, self.room_secret_file) {
            (Some(s), _) => Some(Zeroizing::new(s)),
            (None, Some(f)) => {
                let text = Zeroizing::new(std::fs::read_to_string(&f).map_err(|e| {
                    usage_error(
                        ErrorKind::ValueValidation,
                        format!("cannot read '--room-secret-file {}': {e}", f.display()),
                    )
                })?);
                Some(Zeroizing::new(
                    text.lines().next().unwrap_or_default().to_owned(),
                ))
            }
            (None, None) => env_secret.map(Zeroizing::new),
        };
        if room_secret.as_deref().is_some_and(String::is_empty) {
            return Err(usage_error(
                ErrorKind::ValueValidation,
                "the room secret is empty",
            ));
        }
        let bind = self.lan.bind_addr();
        if let Some(group) = self.lan.group
            && (!group.is_multicast() || group.is_ipv4() != bind.is_ipv4())
        {
            return Err(usage_error(
                ErrorKind::ValueValidation,
                format!(
                    "invalid value '{group}' for '--group <IP>': not a multicast address of the \
                     bind address's family"
                ),
            ));
        }
        let advert_interval = Duration::from_millis(self.advert_interval_ms);
        let peer_timeout = Duration::from_millis(self.peer_timeout_ms);
        if peer_timeout < advert_interval * 2 {
            return Err(usage_error(
                ErrorKind::ValueValidation,
                format!(
                    "invalid value '{}' for '--peer-timeout-ms <N>': must be at least twice the \
                     advert interval, or peers would come and go",
                    self.peer_timeout_ms
                ),
            ));
        }
        Ok((
            Options {
                nick: self.nick,
                identity,
                known_peers,
                bind,
                multicast: self.lan.multicast(),
                advert_interval,
                peer_timeout,
                ack_timeout: Duration::from_millis(self.ack_timeout_ms),
                room_secret: room_secret.map(|s| Zeroizing::new(s.as_bytes().to_vec())),
            },
            self.color,
        ))
    }
}

/// Parse the program's arguments (and the secret variable).
pub fn from_env() -> Result<(Options, ColorMode), clap::Error> {
    parse(
        std::env::args_os(),
        std::env::var_os(SECRET_ENV).map(|v| v.to_string_lossy().into_owned()),
    )
}

/// Parse `args` (the program name first); `env_secret` is the value of [`SECRET_ENV`], if set.
pub fn parse<I, T>(args: I, env_secret: Option<String>) -> Result<(Options, ColorMode), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    netaio_support::try_parse_args_from::<Cli, _, _>(args)?.into_options(env_secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str], env: Option<&str>) -> Result<(Options, ColorMode), clap::Error> {
        parse(
            std::iter::once("chat").chain(args.iter().copied()),
            env.map(str::to_owned),
        )
    }

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_paths() {
        let (o, c) = p(&["--nick", "alice", "--identity", "/tmp/x/id"], None).unwrap();
        assert_eq!(o.nick, "alice");
        assert_eq!(o.known_peers, PathBuf::from("/tmp/x/known_peers"));
        assert_eq!(o.bind, "0.0.0.0:0".parse().unwrap());
        assert_eq!(o.multicast, netaio::udp::MulticastConfig::default());
        assert_eq!(o.advert_interval, Duration::from_secs(5));
        assert_eq!(o.peer_timeout, Duration::from_secs(20));
        assert_eq!(o.ack_timeout, Duration::from_secs(1));
        assert!(o.room_secret.is_none());
        assert_eq!(c, ColorMode::Auto);
    }

    #[test]
    fn flags() {
        let (o, c) = p(
            &[
                "--nick=bob",
                "--identity",
                "/tmp/b/id",
                "--known-peers",
                "/tmp/kp",
                "--bind",
                "::",
                "--port",
                "7000",
                "--group",
                "ff02::1",
                "--group-port",
                "7001",
                "--advert-interval-ms",
                "200",
                "--peer-timeout-ms",
                "15000",
                "--ack-timeout-ms",
                "500",
                "--color",
                "never",
            ],
            None,
        )
        .unwrap();
        assert_eq!(o.known_peers, PathBuf::from("/tmp/kp"));
        assert_eq!(o.bind, "[::]:7000".parse().unwrap());
        assert_eq!(o.multicast.get_port(), Some(7001));
        assert_eq!(o.advert_interval, Duration::from_millis(200));
        assert_eq!(o.peer_timeout, Duration::from_secs(15));
        assert_eq!(o.ack_timeout, Duration::from_millis(500));
        assert_eq!(c, ColorMode::Never);
    }

    #[test]
    fn secret_sources() {
        let base = ["--nick", "a", "--identity", "/tmp/id"];
        let (o, _) = p(&base, Some("from-env")).unwrap();
        assert_eq!(
            o.room_secret.as_deref().map(Vec::as_slice),
            Some(&b"from-env"[..])
        );
        let mut args = base.to_vec();
        args.extend(["--room-secret", "flag"]);
        let (o, _) = p(&args, Some("from-env")).unwrap();
        assert_eq!(
            o.room_secret.as_deref().map(Vec::as_slice),
            Some(&b"flag"[..])
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "line one\nline two\n").unwrap();
        let mut args = base.to_vec();
        let f = file.to_str().unwrap();
        args.extend(["--room-secret-file", f]);
        let (o, _) = p(&args, Some("from-env")).unwrap();
        assert_eq!(
            o.room_secret.as_deref().map(Vec::as_slice),
            Some(&b"line one"[..])
        );
        args.extend(["--room-secret", "x"]);
        assert_eq!(
            p(&args, None).unwrap_err().kind(),
            ErrorKind::ArgumentConflict
        );
        assert!(p(&["--nick", "a", "--room-secret", ""], None).is_err());
        assert!(p(&["--nick", "a", "--identity", "/tmp/id"], Some("")).is_err());
        let missing = dir.path().join("missing");
        let missing = missing.to_str().unwrap();
        assert!(p(&["--nick", "a", "--room-secret-file", missing], None).is_err());
    }

    #[test]
    fn refusals() {
        assert_eq!(
            p(&[], None).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        for bad in [
            &["--nick", "a b"][..],
            &["--nick", "a", "--group", "10.0.0.1"],
            &["--nick", "a", "--group", "ff02::1"],
            &["--nick", "a", "--advert-interval-ms", "0"],
            &[
                "--nick",
                "a",
                "--advert-interval-ms",
                "1000",
                "--peer-timeout-ms",
                "1500",
            ],
            &["--nick", "a", "--color", "sometimes"],
            &["--nick", "a", "--nick", "b"],
            &["--nick", "a", "extra"],
        ] {
            let err = p(bad, None).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
            assert!(err.to_string().contains("Usage: chat"), "{bad:?}: {err}");
        }
        assert!(
            p(
                &[
                    "--nick",
                    "a",
                    "--identity",
                    "/tmp/id",
                    "--bind",
                    "::",
                    "--group",
                    "ff02::1"
                ],
                None
            )
            .is_ok()
        );
    }
}
