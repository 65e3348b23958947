//! The `chat` program's command line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use netaio::udp::{MulticastConfig, MulticastInterface};
use netaio_examples::args::{Flags, UsageError};
use zeroize::Zeroizing;

use crate::app::Options;
use crate::ui::ColorMode;

/// The environment variable read for the room secret when no flag gives one.
pub const SECRET_ENV: &str = "NETAIO_CHAT_ROOM_SECRET";

/// Usage text (after the program name).
pub const USAGE: &str = "--nick NICK [--identity FILE] [--known-peers FILE]
            [--room-secret S | --room-secret-file FILE] [--bind ADDR] [--port P] [--group IP]
            [--group-port P] [--interface NAME] [--advert-interval-ms N] [--peer-timeout-ms N]
            [--ack-timeout-ms N] [--color auto|always|never]
  --nick NICK            your nick: letters, digits, - _ . (at most 24)
  --identity FILE        your key (created on first run, mode 0600)
                         (default $XDG_CONFIG_HOME/netaio-chat/identity or
                         ~/.config/netaio-chat/identity)
  --known-peers FILE     keys accepted per nick (default: known_peers next to the identity)
  --room-secret S        only people with this secret find and read each other (also from
                         the NETAIO_CHAT_ROOM_SECRET variable, which `ps` does not show)
  --room-secret-file F   the room secret is the first line of F
  --bind ADDR            address to bind: 0.0.0.0 (default, every LAN interface), :: for IPv6,
                         or one address such as 127.0.0.1 (that interface only)
  --port P               unicast port (default 0: any free port)
  --group IP             multicast group (default 239.255.110.97, or ff02::6e61:696f for IPv6)
  --group-port P         multicast port (default 8889)
  --interface NAME       find peers on this interface only
  --advert-interval-ms N time between adverts (default 5000)
  --peer-timeout-ms N    a peer not heard for this long has gone (default 20000)
  --ack-timeout-ms N     wait this long for each recipient's acknowledgement before
                         retrying (default 1000; 3 tries)
  --color WHEN           colours: auto (default: on a terminal, unless NO_COLOR is set),
                         always, never";

const FLAGS: &[&str] = &[
    "nick",
    "identity",
    "known-peers",
    "room-secret",
    "room-secret-file",
    "bind",
    "port",
    "group",
    "group-port",
    "interface",
    "advert-interval-ms",
    "peer-timeout-ms",
    "ack-timeout-ms",
    "color",
];

fn invalid(flag: &str, value: &str, reason: impl Into<String>) -> UsageError {
    UsageError::Invalid {
        flag: flag.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// Parse the program's arguments (and the secret variable).
pub fn from_env() -> Result<(Options, ColorMode), UsageError> {
    parse(
        std::env::args().skip(1),
        std::env::var_os(SECRET_ENV).map(|v| v.to_string_lossy().into_owned()),
    )
}

/// Parse `args`; `env_secret` is the value of [`SECRET_ENV`], if set.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env_secret: Option<String>,
) -> Result<(Options, ColorMode), UsageError> {
    let flags = Flags::parse(args, FLAGS)?;
    let nick: String = flags
        .value("nick")?
        .ok_or_else(|| UsageError::MissingValue("nick".into()))?;
    if let Err(e) = crate::protocol::valid_nick(&nick) {
        return Err(invalid("nick", &nick, e.to_string()));
    }
    let identity = match flags.value::<PathBuf>("identity")? {
        Some(p) => p,
        None => crate::identity::default_dir()
            .ok_or_else(|| {
                invalid(
                    "identity",
                    "",
                    "neither XDG_CONFIG_HOME nor HOME is set: give --identity FILE",
                )
            })?
            .join("identity"),
    };
    let known_peers = match flags.value::<PathBuf>("known-peers")? {
        Some(p) => p,
        None => identity
            .parent()
            .map_or_else(|| PathBuf::from("known_peers"), |d| d.join("known_peers")),
    };
    let room_secret = match (flags.raw("room-secret"), flags.raw("room-secret-file")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "room-secret-file",
                "",
                "give --room-secret or --room-secret-file, not both",
            ));
        }
        (Some(s), None) => Some(s.to_owned()),
        (None, Some(f)) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(f)
                    .map_err(|e| invalid("room-secret-file", f, e.to_string()))?,
            );
            Some(text.lines().next().unwrap_or_default().to_owned())
        }
        (None, None) => env_secret,
    };
    if room_secret.as_deref() == Some("") {
        return Err(invalid("room-secret", "", "the room secret is empty"));
    }
    let ip = flags.ip_or("bind", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
    let mut multicast = MulticastConfig::default();
    if flags.raw("group").is_some() {
        let group = flags.ip_or("group", ip)?;
        if !group.is_multicast() || group.is_ipv4() != ip.is_ipv4() {
            return Err(invalid(
                "group",
                &group.to_string(),
                "not a multicast address of the bind address's family",
            ));
        }
        multicast = multicast.with_group(group);
    }
    if let Some(port) = flags.value::<u16>("group-port")? {
        multicast = multicast.with_port(port);
    }
    if let Some(name) = flags.value::<String>("interface")? {
        multicast = multicast.with_interface(MulticastInterface::Name(name));
    }
    let ms = |flag: &str, default: u64| -> Result<Duration, UsageError> {
        let v = flags.value_or(flag, default)?;
        if v == 0 {
            return Err(invalid(flag, "0", "must be at least 1"));
        }
        Ok(Duration::from_millis(v))
    };
    let advert_interval = ms("advert-interval-ms", 5_000)?;
    let peer_timeout = ms("peer-timeout-ms", 20_000)?;
    if peer_timeout < advert_interval * 2 {
        return Err(invalid(
            "peer-timeout-ms",
            &peer_timeout.as_millis().to_string(),
            "must be at least twice the advert interval, or peers would come and go",
        ));
    }
    let color = flags.value_or("color", ColorMode::Auto)?;
    Ok((
        Options {
            nick,
            identity,
            known_peers,
            bind: SocketAddr::new(ip, flags.value_or("port", 0u16)?),
            multicast,
            advert_interval,
            peer_timeout,
            ack_timeout: ms("ack-timeout-ms", 1_000)?,
            room_secret: room_secret.map(|s| Zeroizing::new(s.into_bytes())),
        },
        color,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str], env: Option<&str>) -> Result<(Options, ColorMode), UsageError> {
        parse(args.iter().map(|s| s.to_string()), env.map(str::to_owned))
    }

    #[test]
    fn defaults_and_paths() {
        let (o, c) = p(&["--nick", "alice", "--identity", "/tmp/x/id"], None).unwrap();
        assert_eq!(o.nick, "alice");
        assert_eq!(o.known_peers, PathBuf::from("/tmp/x/known_peers"));
        assert_eq!(o.bind, "0.0.0.0:0".parse().unwrap());
        assert_eq!(o.advert_interval, Duration::from_secs(5));
        assert_eq!(o.peer_timeout, Duration::from_secs(20));
        assert!(o.room_secret.is_none());
        assert_eq!(c, ColorMode::Auto);
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
        let (o, _) = p(&args, None).unwrap();
        assert_eq!(
            o.room_secret.as_deref().map(Vec::as_slice),
            Some(&b"line one"[..])
        );
        args.extend(["--room-secret", "x"]);
        assert!(p(&args, None).is_err());
        assert!(p(&["--nick", "a", "--room-secret", ""], None).is_err());
    }

    #[test]
    fn refusals() {
        assert_eq!(
            p(&[], None).unwrap_err(),
            UsageError::MissingValue("nick".into())
        );
        assert!(p(&["--nick", "a b"], None).is_err());
        assert!(p(&["--nick", "a", "--group", "10.0.0.1"], None).is_err());
        assert!(
            p(&["--nick", "a", "--group", "ff02::1"], None).is_err(),
            "family"
        );
        assert!(p(&["--nick", "a", "--bind", "::", "--group", "ff02::1"], None).is_ok());
        assert!(p(&["--nick", "a", "--advert-interval-ms", "0"], None).is_err());
        assert!(
            p(
                &[
                    "--nick",
                    "a",
                    "--advert-interval-ms",
                    "1000",
                    "--peer-timeout-ms",
                    "1500"
                ],
                None
            )
            .is_err()
        );
        assert!(p(&["--nick", "a", "--color", "sometimes"], None).is_err());
    }
}
