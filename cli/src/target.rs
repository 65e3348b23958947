//! An address on the command line: `HOST:PORT` or `tcp://HOST:PORT` for TCP, `udp://HOST:PORT`
//! for UDP. IPv6 in brackets: `[::1]:8888`.

use std::fmt;
use std::net::SocketAddr;

use crate::exit::{Code, Failure};

/// Which transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

/// A transport and a host:port (not resolved yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// TCP or UDP.
    pub transport: Transport,
    /// `host:port` as given.
    pub host_port: String,
}

impl Target {
    /// For `#[arg(value_parser = Target::parse)]`.
    pub fn parse(s: &str) -> Result<Target, String> {
        let (transport, rest) = if let Some(r) = s.strip_prefix("udp://") {
            (Transport::Udp, r)
        } else if let Some(r) = s.strip_prefix("tcp://") {
            (Transport::Tcp, r)
        } else if s.contains("://") {
            return Err(format!("{s:?}: only tcp:// and udp:// addresses"));
        } else {
            (Transport::Tcp, s)
        };
        match rest.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(Target {
                transport,
                host_port: rest.to_owned(),
            }),
            _ => Err(format!("{s:?} is not HOST:PORT (IPv6 as [::1]:8888)")),
        }
    }

    /// The first address the host resolves to.
    pub async fn resolve(&self) -> Result<SocketAddr, Failure> {
        let mut addrs = tokio::net::lookup_host(&self.host_port)
            .await
            .map_err(|e| Failure::new(Code::Connection, format!("{}: {e}", self.host_port)))?;
        addrs.next().ok_or_else(|| {
            Failure::new(Code::Connection, format!("{}: no address", self.host_port))
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.transport {
            Transport::Tcp => write!(f, "{}", self.host_port),
            Transport::Udp => write!(f, "udp://{}", self.host_port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let t = Target::parse("127.0.0.1:8888").unwrap();
        assert_eq!(
            (t.transport, t.host_port.as_str()),
            (Transport::Tcp, "127.0.0.1:8888")
        );
        let t = Target::parse("udp://[::1]:9").unwrap();
        assert_eq!(
            (t.transport, t.host_port.as_str()),
            (Transport::Udp, "[::1]:9")
        );
        assert_eq!(t.to_string(), "udp://[::1]:9");
        assert_eq!(
            Target::parse("tcp://localhost:1").unwrap().host_port,
            "localhost:1"
        );
        for bad in ["8888", "host:", "host:x", "http://a:1", ":1", "a:70000"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
