//! A small `--flag value` parser for the example programs (no dependency needed for three flags).
//!
//! ```
//! use netaio_examples::args::Flags;
//!
//! let args = ["--port", "9000", "--bind=::1"].map(String::from);
//! let flags = Flags::parse(args, &["port", "bind", "seconds"]).unwrap();
//! assert_eq!(flags.value_or("port", 8888u16).unwrap(), 9000);
//! assert_eq!(flags.value::<u64>("seconds").unwrap(), None);
//! assert_eq!(flags.ip_or("bind", [0, 0, 0, 0].into()).unwrap().to_string(), "::1");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::process::ExitCode;
use std::str::FromStr;

/// Why the command line was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// `-h` or `--help` was given: print the usage and exit successfully.
    Help,
    /// A flag the program does not know.
    Unknown(String),
    /// A flag given without its value.
    MissingValue(String),
    /// A flag given twice.
    Duplicate(String),
    /// An argument that is not a flag.
    Positional(String),
    /// A value that does not parse.
    Invalid {
        /// The flag, without `--`.
        flag: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Help => f.write_str("help requested"),
            UsageError::Unknown(a) => write!(f, "unknown option `{a}`"),
            UsageError::MissingValue(flag) => write!(f, "`--{flag}` needs a value"),
            UsageError::Duplicate(flag) => write!(f, "`--{flag}` given more than once"),
            UsageError::Positional(a) => write!(f, "unexpected argument `{a}`"),
            UsageError::Invalid {
                flag,
                value,
                reason,
            } => write!(f, "invalid value `{value}` for `--{flag}`: {reason}"),
        }
    }
}

impl std::error::Error for UsageError {}

/// Parsed `--name value` (or `--name=value`) pairs, and `--switch`es without a value.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    values: BTreeMap<String, String>,
    switches: Vec<String>,
}

impl Flags {
    /// Parse the program's own arguments (skipping the program name).
    pub fn from_env(known: &[&str]) -> Result<Self, UsageError> {
        Self::parse(std::env::args().skip(1), known)
    }

    /// Parse `args`; every flag must be one of `known` (names without `--`), and every flag takes
    /// a value.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        known: &[&str],
    ) -> Result<Self, UsageError> {
        Self::parse_with_switches(args, known, &[])
    }

    /// Parse the program's own arguments, with `switches` (flags without a value) besides the
    /// flags with a value.
    pub fn from_env_with_switches(known: &[&str], switches: &[&str]) -> Result<Self, UsageError> {
        Self::parse_with_switches(std::env::args().skip(1), known, switches)
    }

    /// Parse `args`: flags in `known` take a value, flags in `switches` do not.
    ///
    /// ```
    /// use netaio_examples::args::Flags;
    ///
    /// let args = ["--n", "3", "--no-pubsub"].map(String::from);
    /// let flags = Flags::parse_with_switches(args, &["n"], &["no-pubsub", "verbose"]).unwrap();
    /// assert_eq!(flags.value::<u32>("n").unwrap(), Some(3));
    /// assert!(flags.is_set("no-pubsub"));
    /// assert!(!flags.is_set("verbose"));
    /// ```
    pub fn parse_with_switches(
        args: impl IntoIterator<Item = String>,
        known: &[&str],
        switches: &[&str],
    ) -> Result<Self, UsageError> {
        let mut values = BTreeMap::new();
        let mut set = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Err(UsageError::Help);
            }
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(UsageError::Positional(arg));
            };
            if switches.contains(&flag) {
                if set.iter().any(|s| s == flag) {
                    return Err(UsageError::Duplicate(flag.to_owned()));
                }
                set.push(flag.to_owned());
                continue;
            }
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let name = flag.to_owned();
                    if !known.contains(&name.as_str()) {
                        return Err(UsageError::Unknown(arg));
                    }
                    match args.next() {
                        Some(v) if !v.starts_with("--") => (name, v),
                        _ => return Err(UsageError::MissingValue(name)),
                    }
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(UsageError::Unknown(arg));
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(UsageError::Duplicate(name));
            }
        }
        Ok(Self {
            values,
            switches: set,
        })
    }

    /// True when the switch `flag` (without `--`) was given.
    pub fn is_set(&self, flag: &str) -> bool {
        self.switches.iter().any(|s| s == flag)
    }

    /// The raw value of `flag`, if given.
    pub fn raw(&self, flag: &str) -> Option<&str> {
        self.values.get(flag).map(String::as_str)
    }

    /// The value of `flag` parsed as `T`, if given.
    pub fn value<T>(&self, flag: &str) -> Result<Option<T>, UsageError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.raw(flag)
            .map(|v| {
                v.parse().map_err(|e: T::Err| UsageError::Invalid {
                    flag: flag.to_owned(),
                    value: v.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// The value of `flag` parsed as `T`, or `default` when not given.
    pub fn value_or<T>(&self, flag: &str, default: T) -> Result<T, UsageError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.value(flag)?.unwrap_or(default))
    }

    /// The value of `flag` as an IP address (`127.0.0.1`, `::1` or `[::1]`), or `default`.
    pub fn ip_or(&self, flag: &str, default: IpAddr) -> Result<IpAddr, UsageError> {
        match self.raw(flag) {
            None => Ok(default),
            Some(v) => strip_brackets(v)
                .parse()
                .map_err(|e: std::net::AddrParseError| UsageError::Invalid {
                    flag: flag.to_owned(),
                    value: v.to_owned(),
                    reason: e.to_string(),
                }),
        }
    }
}

/// `[::1]` -> `::1`; anything else unchanged.
pub fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Report a usage error: the usage on stdout and exit code 0 for `--help`, otherwise the error and
/// the usage on stderr and exit code 2.
pub fn usage_exit(program: &str, usage: &str, err: &UsageError) -> ExitCode {
    if *err == UsageError::Help {
        println!("usage: {program} {usage}");
        ExitCode::SUCCESS
    } else {
        eprintln!("{program}: {err}\nusage: {program} {usage}");
        ExitCode::from(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, UsageError> {
        Flags::parse(args.iter().map(|s| s.to_string()), &["port", "bind"])
    }

    #[test]
    fn both_spellings_parse() {
        let f = parse(&["--port", "1", "--bind=::1"]).unwrap();
        assert_eq!(f.value::<u16>("port").unwrap(), Some(1));
        assert_eq!(f.raw("bind"), Some("::1"));
    }

    #[test]
    fn defaults_apply_when_absent() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.value_or("port", 8888u16).unwrap(), 8888);
        assert_eq!(
            f.ip_or("bind", [0, 0, 0, 0].into()).unwrap(),
            IpAddr::from([0, 0, 0, 0])
        );
    }

    #[test]
    fn ipv6_with_and_without_brackets() {
        for v in ["::1", "[::1]"] {
            let f = parse(&["--bind", v]).unwrap();
            let ip = f.ip_or("bind", [0, 0, 0, 0].into()).unwrap();
            assert_eq!(ip, IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        }
    }

    #[test]
    fn switches_take_no_value() {
        let parse = |args: &[&str]| {
            Flags::parse_with_switches(args.iter().map(|s| s.to_string()), &["n"], &["quiet"])
        };
        let f = parse(&["--quiet", "--n", "2"]).unwrap();
        assert!(f.is_set("quiet"));
        assert_eq!(f.value::<u8>("n").unwrap(), Some(2));
        assert!(!parse(&["--n", "2"]).unwrap().is_set("quiet"));
        assert_eq!(
            parse(&["--quiet", "--quiet"]).unwrap_err(),
            UsageError::Duplicate("quiet".into())
        );
        // A switch is not a value-taking flag, and the plain parser knows no switches.
        assert_eq!(
            parse(&["--quiet=1"]).unwrap_err(),
            UsageError::Unknown("--quiet=1".into())
        );
        assert_eq!(
            Flags::parse(["--quiet".to_string()], &["n"]).unwrap_err(),
            UsageError::Unknown("--quiet".into())
        );
    }

    #[test]
    fn errors_are_specific() {
        assert_eq!(parse(&["--help"]).unwrap_err(), UsageError::Help);
        assert_eq!(
            parse(&["--nope", "1"]).unwrap_err(),
            UsageError::Unknown("--nope".into())
        );
        assert_eq!(
            parse(&["--nope=1"]).unwrap_err(),
            UsageError::Unknown("--nope=1".into())
        );
        assert_eq!(
            parse(&["--port"]).unwrap_err(),
            UsageError::MissingValue("port".into())
        );
        assert_eq!(
            parse(&["--port", "--bind", "x"]).unwrap_err(),
            UsageError::MissingValue("port".into())
        );
        assert_eq!(
            parse(&["--port", "1", "--port=2"]).unwrap_err(),
            UsageError::Duplicate("port".into())
        );
        assert_eq!(
            parse(&["8888"]).unwrap_err(),
            UsageError::Positional("8888".into())
        );
        let f = parse(&["--port", "99999"]).unwrap();
        let e = f.value::<u16>("port").unwrap_err();
        assert!(
            matches!(e, UsageError::Invalid { ref flag, .. } if flag == "port"),
            "{e:?}"
        );
        let f = parse(&["--bind", "localhost"]).unwrap();
        assert!(f.ip_or("bind", [0, 0, 0, 0].into()).is_err());
    }
}
