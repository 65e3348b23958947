//! The daemon's configuration: an INI file, as the gossip module's specification has it.
//!
//! ```ini
//! hostkey = /var/lib/netaiod/hostkey   ; the node's identity seed (created if missing, 0600)
//!
//! [gossip]
//! degree = 30                 ; neighbours to exchange with
//! cache_size = 50             ; data items kept (oldest evicted)
//! max_connections = 60
//! min_connections = 10
//! search_cooldown = 60        ; seconds between peer searches
//! bootstrapper = localhost:7000
//! known_peers = 10.0.0.2:7001, [fd00::3]:7001
//! p2p_address = localhost:7001
//! api_address = localhost:7051
//! validation_timeout = 10     ; seconds a module has to answer a notification
//! admission_difficulty = 0    ; proof of work new peers must show (bits; 0: off)
//!
//! [native]                    ; the netaio-native local API (optional)
//! socket = /run/netaiod/native.sock ; local applications, on a Unix socket
//! socket_mode = 0660          ; the socket file's mode, octal (default 0600: the daemon's user)
//! address = 127.0.0.1:7060    ; local applications on loopback TCP (socket, address or both)
//! peer_address = 10.0.0.1:7070 ; other daemons' calls
//! relay = 10.0.0.9:9100        ; optional: a netaio relay to reserve the peer id at
//! call_timeout = 10
//! allowed_uids = 1000, 1001   ; who may connect (default: anyone)
//! ```
//!
//! Unknown sections and keys are warned about; a bad value is an error at start-up.

use std::path::PathBuf;
use std::time::Duration;

/// A `host:port` address (`[addr]:port` for IPv6), resolved when the daemon starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host name or IP (without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} is not host:port"))?;
        let host = match host.strip_prefix('[') {
            Some(rest) => rest
                .strip_suffix(']')
                .ok_or_else(|| format!("{text:?}: unclosed '['"))?,
            None if host.contains(':') => {
                return Err(format!("{text:?}: write an IPv6 address as [addr]:port"));
            }
            None => host,
        };
        if host.is_empty() {
            return Err(format!("{text:?}: no host"));
        }
        let port = port
            .parse()
            .map_err(|_| format!("{text:?}: {port:?} is not a port"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// `host:port` as `tokio::net::lookup_host` takes it.
    pub fn to_lookup(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_lookup())
    }
}

/// The daemon's settings (see the module doc for the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// The identity seed file (`hostkey`); none: a new identity each start.
    pub hostkey: Option<PathBuf>,
    /// Neighbours to exchange with (`degree`, default 5).
    pub degree: usize,
    /// Data items kept (`cache_size`, default 50).
    pub cache_size: usize,
    /// Connections accepted from peers (`max_connections`, default 256).
    pub max_connections: usize,
    /// Fewest neighbours before searching for more (`min_connections`, default 1).
    pub min_connections: usize,
    /// Time between peer searches (`search_cooldown`, default 60 s).
    pub search_cooldown: Duration,
    /// A known node to join through (`bootstrapper`).
    pub bootstrapper: Option<HostPort>,
    /// More known nodes (`known_peers`, comma- or space-separated).
    pub known_peers: Vec<HostPort>,
    /// Where peers connect (`p2p_address`, required).
    pub p2p_address: HostPort,
    /// Where local modules connect (`api_address`, required).
    pub api_address: HostPort,
    /// Time a module has to answer a notification (`validation_timeout`, default 10 s).
    pub validation_timeout: Duration,
    /// Proof of work a new peer's handshake must carry — the gossip hello, and the native API's
    /// PEER_HELLO — in leading zero bits of a SHA-256 hashcash stamp (`admission_difficulty`,
    /// default 0: off; at most 28). The daemon stamps its
    /// own handshakes with as many bits, so daemons configured alike connect; a peer that does
    /// not stamp (another of the course's implementations, or a daemon with 0) is refused by a
    /// daemon that asks for work. Keep it off in a mixed network.
    pub admission_difficulty: u32,
    /// The netaio-native local API (`[native]`: `socket`, `socket_mode`, `address`,
    /// `peer_address`, `relay`, `call_timeout`, `allowed_uids`); none without the section.
    pub native: Option<NativeSection>,
}

/// The `[native]` section: the netaio-native local API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeSection {
    /// The Unix socket local applications connect to (`socket = PATH`). A stale socket file
    /// there (nobody listening) is replaced at start; a daemon listening there is an error. The
    /// file is removed when the daemon stops.
    pub socket: Option<PathBuf>,
    /// The socket file's mode (`socket_mode`, octal; default `0600`: only the daemon's user may
    /// connect; `0660` lets a group in, with `allowed_uids` naming who of it may say hello).
    pub socket_mode: u32,
    /// Where local applications connect over TCP (`address`; keep it on loopback). At least one
    /// of `socket` and `address`; both serve the same API.
    pub address: Option<HostPort>,
    /// Where other daemons connect for calls (`peer_address`, required).
    pub peer_address: HostPort,
    /// A netaio relay (`relay = host:port`, optional): the daemon reserves its peer id there,
    /// and calls through it the peers it cannot reach directly.
    pub relay: Option<HostPort>,
    /// Time a call may take end to end (`call_timeout`, default 10 s).
    pub call_timeout: Duration,
    /// The uids whose applications may connect (`allowed_uids`, comma- or space-separated;
    /// default: any).
    pub allowed_uids: Vec<u32>,
}

/// The native socket's mode without `socket_mode`: only the daemon's user.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not INI.
    #[error("not an INI file: {0}")]
    Syntax(String),
    /// A required key is missing (`[section] key`).
    #[error("{0} is required")]
    Missing(&'static str),
    /// A value is not what the key takes.
    #[error("{key} = {value:?}: {reason}")]
    Value {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
}

const GOSSIP_KEYS: &[&str] = &[
    "degree",
    "cache_size",
    "max_connections",
    "min_connections",
    "search_cooldown",
    "bootstrapper",
    "known_peers",
    "p2p_address",
    "api_address",
    "validation_timeout",
    "admission_difficulty",
];

impl DaemonConfig {
    /// Reads and parses the file at `path`; warnings are logged.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let (config, warnings) = Self::parse(&text)?;
        for w in warnings {
            tracing::warn!("{}: {w}", path.display());
        }
        Ok(config)
    }

    /// Parses INI text: the configuration, and warnings (unknown sections and keys).
    pub fn parse(text: &str) -> Result<(Self, Vec<String>), ConfigError> {
        let ini = ini::Ini::load_from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let mut warnings = Vec::new();
        let mut hostkey = None;
        let mut gossip: Vec<(String, String)> = Vec::new();
        let mut native: Vec<(String, String)> = Vec::new();
        for (section, props) in ini.iter() {
            for (key, value) in props.iter() {
                match (section, key) {
                    (None, "hostkey") => hostkey = Some(PathBuf::from(value.trim())),
                    (Some("gossip"), k) if GOSSIP_KEYS.contains(&k) => {
                        gossip.push((k.to_owned(), value.trim().to_owned()));
                    }
                    (
                        Some("native"),
                        k @ ("address" | "peer_address" | "call_timeout" | "allowed_uids" | "relay"
                        | "socket" | "socket_mode"),
                    ) => {
                        native.push((k.to_owned(), value.trim().to_owned()));
                    }
                    (Some("gossip" | "native") | None, k) => {
                        warnings.push(format!("unknown key {k:?}"));
                    }
                    (Some(s), _) => {
                        let w = format!("unknown section [{s}] ignored");
                        if !warnings.contains(&w) {
                            warnings.push(w);
                        }
                    }
                }
            }
        }
        let get = |k: &str| {
            gossip
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v)
        };
        let number = |k: &'static str, default: usize| -> Result<usize, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|e: std::num::ParseIntError| bad(k, v, e)),
            }
        };
        let address = |k: &'static str| -> Result<Option<HostPort>, ConfigError> {
            get(k)
                .map(|v| HostPort::parse(v).map_err(|e| bad(k, v, e)))
                .transpose()
        };
        let seconds = |k: &'static str, default: u64| {
            number(k, 0).map(|n| match n {
                0 => Duration::from_secs(default),
                n => Duration::from_secs(n as u64),
            })
        };
        let degree = number("degree", 5)?;
        if degree == 0 {
            return Err(bad("degree", "0", "at least 1"));
        }
        let admission_difficulty = match get("admission_difficulty") {
            None => 0,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n <= netaio_gossip::net::MAX_ADMISSION_DIFFICULTY => n,
                _ => {
                    return Err(bad(
                        "admission_difficulty",
                        v,
                        format!(
                            "a number of bits from 0 (off) to {}",
                            netaio_gossip::net::MAX_ADMISSION_DIFFICULTY
                        ),
                    ));
                }
            },
        };
        let known_peers = match get("known_peers") {
            None => Vec::new(),
            Some(v) => v
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(|p| HostPort::parse(p).map_err(|e| bad("known_peers", v, e)))
                .collect::<Result<_, _>>()?,
        };
        let native = if ini.section(Some("native")).is_some() {
            let nget = |k: &str| {
                native
                    .iter()
                    .rev()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v)
            };
            let naddr = |k: &'static str| -> Result<HostPort, ConfigError> {
                let v = nget(k).ok_or(ConfigError::Missing(k))?;
                HostPort::parse(v).map_err(|e| bad(k, v, e))
            };
            let call_timeout = match nget("call_timeout") {
                None => Duration::from_secs(10),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Duration::from_secs(n),
                    _ => return Err(bad("call_timeout", v, "a positive number of seconds")),
                },
            };
            let allowed_uids = match nget("allowed_uids") {
                None => Vec::new(),
                Some(v) => v
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|u| !u.is_empty())
                    .map(|u| {
                        u.parse()
                            .map_err(|_| bad("allowed_uids", v, "not a list of uids"))
                    })
                    .collect::<Result<_, _>>()?,
            };
            let socket = nget("socket").map(PathBuf::from);
            let address = match nget("address") {
                Some(_) => Some(naddr("address")?),
                None => None,
            };
            if socket.is_none() && address.is_none() {
                return Err(ConfigError::Missing("[native] socket or address"));
            }
            let socket_mode = match nget("socket_mode") {
                None => DEFAULT_SOCKET_MODE,
                Some(v) => match u32::from_str_radix(v.trim_start_matches("0o"), 8) {
                    Ok(m) if m <= 0o777 => m,
                    _ => return Err(bad("socket_mode", v, "an octal mode such as 0600")),
                },
            };
            Some(NativeSection {
                socket,
                socket_mode,
                address,
                peer_address: naddr("peer_address")?,
                relay: match nget("relay") {
                    Some(_) => Some(naddr("relay")?),
                    None => None,
                },
                call_timeout,
                allowed_uids,
            })
        } else {
            None
        };
        let config = Self {
            hostkey,
            degree,
            cache_size: number("cache_size", 50)?.max(1),
            max_connections: number("max_connections", 256)?.max(1),
            min_connections: number("min_connections", 1)?,
            search_cooldown: seconds("search_cooldown", 60)?,
            bootstrapper: address("bootstrapper")?,
            known_peers,
            p2p_address: address("p2p_address")?
                .ok_or(ConfigError::Missing("[gossip] p2p_address"))?,
            api_address: address("api_address")?
                .ok_or(ConfigError::Missing("[gossip] api_address"))?,
            validation_timeout: seconds("validation_timeout", 10)?,
            admission_difficulty,
            native,
        };
        Ok((config, warnings))
    }
}

fn bad(key: &str, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError::Value {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_course_file_parses() {
        let (c, warnings) = DaemonConfig::parse(
            "hostkey = /tmp/key\n[gossip]\ndegree = 30\ncache_size = 50\n\
             api_address = localhost:7051\np2p_address = localhost:7001\n\
             bootstrapper = localhost:7000\nknown_peers = 10.0.0.1:1, [::1]:2\n",
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.hostkey, Some(PathBuf::from("/tmp/key")));
        assert_eq!((c.degree, c.cache_size), (30, 50));
        assert_eq!(c.api_address.to_string(), "localhost:7051");
        assert_eq!(c.bootstrapper.unwrap().port, 7000);
        assert_eq!(c.known_peers[1].host, "::1");
        assert_eq!(c.known_peers[1].to_string(), "[::1]:2");
        assert_eq!(c.search_cooldown, Duration::from_secs(60));
        assert_eq!(c.admission_difficulty, 0, "off unless asked for");
        let (c, _) = DaemonConfig::parse(
            "[gossip]\np2p_address = a:1\napi_address = a:2\nadmission_difficulty = 16\n",
        )
        .unwrap();
        assert_eq!(c.admission_difficulty, 16);
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_fail() {
        let (_, warnings) = DaemonConfig::parse(
            "colour = red\n[gossip]\np2p_address = a:1\napi_address = a:2\nspeed = 3\n[other]\nx = 1\ny = 2\n",
        )
        .unwrap();
        assert_eq!(
            warnings,
            [
                "unknown key \"colour\"",
                "unknown key \"speed\"",
                "unknown section [other] ignored"
            ]
        );
        for (text, key) in [
            ("[gossip]\napi_address = a:1\n", "p2p_address"),
            (
                "[gossip]\np2p_address = a:1\napi_address = a\n",
                "api_address",
            ),
            (
                "[gossip]\np2p_address = ::1:7\napi_address = a:1\n",
                "p2p_address",
            ),
            (
                "[gossip]\np2p_address = a:1\napi_address = a:2\ndegree = x\n",
                "degree",
            ),
            (
                "[gossip]\np2p_address = a:1\napi_address = a:2\ndegree = 0\n",
                "degree",
            ),
            (
                "[gossip]\np2p_address = a:99999\napi_address = a:2\n",
                "p2p_address",
            ),
            (
                "[gossip]\np2p_address = a:1\napi_address = a:2\nadmission_difficulty = 29\n",
                "admission_difficulty",
            ),
            (
                "[gossip]\np2p_address = a:1\napi_address = a:2\nadmission_difficulty = -1\n",
                "admission_difficulty",
            ),
        ] {
            let e = DaemonConfig::parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_native_section_is_optional_and_checked() {
        let base = "[gossip]\np2p_address = a:1\napi_address = a:2\n";
        assert_eq!(DaemonConfig::parse(base).unwrap().0.native, None);
        let (c, w) = DaemonConfig::parse(&format!(
            "{base}[native]\naddress = 127.0.0.1:7060\npeer_address = [::1]:7070\ncall_timeout = 3\nallowed_uids = 0, 1000\nrelay = r:9100\nx = 1\n"
        ))
        .unwrap();
        let n = c.native.unwrap();
        assert_eq!(
            (n.address.unwrap().port, n.peer_address.host.as_str()),
            (7060, "::1")
        );
        assert_eq!((n.socket, n.socket_mode), (None, DEFAULT_SOCKET_MODE));
        assert_eq!(n.call_timeout, Duration::from_secs(3));
        assert_eq!(n.allowed_uids, [0, 1000]);
        let relay = n.relay.unwrap();
        assert_eq!((relay.host.as_str(), relay.port), ("r", 9100));
        let bad_relay = format!(
            "{base}[native]\naddress = 127.0.0.1:7060\npeer_address = 127.0.0.1:7070\nrelay = nowhere\n"
        );
        let e = DaemonConfig::parse(&bad_relay).unwrap_err().to_string();
        assert!(e.contains("relay"), "{e}");
        assert_eq!(w, ["unknown key \"x\""]);
        let e = DaemonConfig::parse(&format!("{base}[native]\naddress = 127.0.0.1:7060\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("peer_address"), "{e}");
    }

    #[test]
    fn the_native_api_on_a_socket_with_its_mode() {
        let base = "[gossip]\np2p_address = a:1\napi_address = a:2\n[native]\npeer_address = b:3\n";
        let (c, w) =
            DaemonConfig::parse(&format!("{base}socket = /run/n.sock\nsocket_mode = 0660\n"))
                .unwrap();
        assert!(w.is_empty(), "{w:?}");
        let n = c.native.unwrap();
        assert_eq!(
            n.socket.as_deref(),
            Some(std::path::Path::new("/run/n.sock"))
        );
        assert_eq!((n.socket_mode, n.address), (0o660, None));
        let e = DaemonConfig::parse(base).unwrap_err().to_string();
        assert!(e.contains("socket or address"), "{e}");
        for bad_mode in ["0999", "rw", "01777"] {
            let e = DaemonConfig::parse(&format!("{base}socket = s\nsocket_mode = {bad_mode}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("socket_mode"), "{bad_mode}: {e}");
        }
    }

    #[test]
    fn addresses_take_ipv6_in_brackets() {
        assert_eq!(
            HostPort::parse("[fd00::1]:7001").unwrap(),
            HostPort {
                host: "fd00::1".into(),
                port: 7001
            }
        );
        assert!(HostPort::parse("[fd00::1:7001").is_err());
        assert!(HostPort::parse(":7001").is_err());
    }
}
