//! A tiny `--flag value` / `--switch` parser (three binaries, a dozen flags: no dependency).

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::Result;

/// Parsed flags: `--name value`, `--name=value`, or a bare `--switch`.
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: BTreeMap<String, String>,
    switches: Vec<String>,
}

impl Args {
    /// Parse `args`. `valued` lists the flags that take a value, `switches` those that do not;
    /// anything else is an error.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        valued: &[&str],
        switches: &[&str],
    ) -> Result<Self> {
        let mut out = Args::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument `{arg}`").into());
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (flag.to_owned(), None),
            };
            if switches.contains(&name.as_str()) && inline.is_none() {
                out.switches.push(name);
            } else if valued.contains(&name.as_str()) {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| format!("`--{name}` needs a value"))?,
                };
                out.values.insert(name, value);
            } else {
                return Err(format!("unknown option `--{name}`").into());
            }
        }
        Ok(out)
    }

    /// True when the switch was given.
    pub fn has(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// The raw value of a flag.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The parsed value of a flag, or `default`.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            Some(v) => v
                .parse()
                .map_err(|e| format!("invalid value `{v}` for `--{name}`: {e}").into()),
            None => Ok(default),
        }
    }

    /// A comma-separated list, or `default`.
    pub fn list_or<T: FromStr + Clone>(&self, name: &str, default: &[T]) -> Result<Vec<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            Some(v) => v
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|e| format!("invalid value `{s}` for `--{name}`: {e}").into())
                })
                .collect(),
            None => Ok(default.to_vec()),
        }
    }
}
