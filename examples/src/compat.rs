//! What the Python interop programs (`compat_server`, `compat_client`, `compat_udp_node`) share: the plugin flags
//! (`--hmac SECRET`, `--cipher KEY`, `--no-encrypt-uri`) with the Python library's defaults, and
//! the request contents the client sends.
//!
//! ```
//! use clap::Parser;
//! use netaio_examples::compat::{content_for, PluginFlags};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     plugins: PluginFlags,
//! }
//!
//! let cli = Cli::try_parse_from(["prog", "--hmac", "s", "--cipher", "k", "--no-encrypt-uri"]).unwrap();
//! assert_eq!(cli.plugins.describe(), "hmac + cipher (uri in clear)");
//! assert_eq!(content_for(0).len(), 0);
//! assert_eq!(content_for(1).len(), 1000);
//! ```

use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher};
use netaio::tcp::{TcpClientBuilder, TcpServerBuilder};
use netaio::udp::UdpNodeBuilder;

/// The plugin options of the interop programs (flatten them into a `clap::Parser` with
/// `#[command(flatten)]`). The doc comments of the fields are the `--help` text.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PluginFlags {
    /// Python's HMACAuthPlugin with this secret (insecure legacy MAC)
    #[arg(long, value_name = "SECRET")]
    pub hmac: Option<String>,
    /// Python's Sha256StreamCipherPlugin with this key (insecure legacy cipher)
    #[arg(long, value_name = "KEY")]
    pub cipher: Option<String>,
    /// The cipher leaves the uri in clear (Python: encrypt_uri=False)
    // The field is the Python option, true unless the flag is given.
    #[arg(long = "no-encrypt-uri", action = clap::ArgAction::SetFalse)]
    pub encrypt_uri: bool,
    /// Ignored (the Python programs take it)
    #[arg(long)]
    pub verbose: bool,
}

impl Default for PluginFlags {
    /// Python's defaults: no plugins, and a cipher would encrypt the uri.
    fn default() -> Self {
        Self {
            hmac: None,
            cipher: None,
            encrypt_uri: true,
            verbose: false,
        }
    }
}

impl PluginFlags {
    /// The auth plugin, if any.
    pub fn auth(&self) -> Option<LegacyHmacAuth> {
        self.hmac.as_deref().map(LegacyHmacAuth::new)
    }

    /// The cipher plugin, if any.
    pub fn cipher(&self) -> Option<LegacySha256StreamCipher> {
        self.cipher
            .as_deref()
            .map(|k| LegacySha256StreamCipher::new(k).encrypt_uri(self.encrypt_uri))
    }

    /// A server builder in Python-compatible mode with these plugins.
    pub fn server(&self, builder: TcpServerBuilder) -> TcpServerBuilder {
        let mut b = builder.python_compat();
        if let Some(a) = self.auth() {
            b = b.auth(a);
        }
        if let Some(c) = self.cipher() {
            b = b.cipher(c);
        }
        b
    }

    /// A client builder in Python-compatible mode with these plugins.
    pub fn client(&self, builder: TcpClientBuilder) -> TcpClientBuilder {
        let mut b = builder.python_compat();
        if let Some(a) = self.auth() {
            b = b.auth(a);
        }
        if let Some(c) = self.cipher() {
            b = b.cipher(c);
        }
        b
    }

    /// A UDP node builder in Python-compatible mode with these plugins.
    pub fn udp(&self, builder: UdpNodeBuilder) -> UdpNodeBuilder {
        let mut b = builder.python_compat();
        if let Some(a) = self.auth() {
            b = b.auth(a);
        }
        if let Some(c) = self.cipher() {
            b = b.cipher(c);
        }
        b
    }

    /// A short description for logs: `plain`, `hmac`, `cipher`, `hmac + cipher`, with
    /// `(uri in clear)` when the cipher leaves the uri unencrypted.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.hmac.is_some() {
            parts.push("hmac");
        }
        if self.cipher.is_some() {
            parts.push("cipher");
        }
        let mut s = if parts.is_empty() {
            "plain".to_owned()
        } else {
            parts.join(" + ")
        };
        if self.cipher.is_some() && !self.encrypt_uri {
            s.push_str(" (uri in clear)");
        }
        s
    }
}

/// The content of the `i`-th echo request: sizes vary from 0 to 1,000 bytes (request 0 is empty,
/// request 1 has 1,000 bytes, the others spread between), with every byte value appearing.
pub fn content_for(i: usize) -> Vec<u8> {
    let len = match i {
        0 => 0,
        1 => 1000,
        _ => (i * 379) % 1001,
    };
    (0..len).map(|j| ((i * 7 + j) % 256) as u8).collect()
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        plugins: PluginFlags,
    }

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_python_s() {
        let cli = Cli::try_parse_from(["prog"]).unwrap();
        assert_eq!(cli.plugins, PluginFlags::default());
        assert!(cli.plugins.encrypt_uri);
        assert_eq!(cli.plugins.describe(), "plain");
    }

    #[test]
    fn flags() {
        let cli =
            Cli::try_parse_from(["prog", "--cipher=k", "--no-encrypt-uri", "--verbose"]).unwrap();
        assert_eq!(cli.plugins.cipher.as_deref(), Some("k"));
        assert!(!cli.plugins.encrypt_uri);
        assert_eq!(cli.plugins.describe(), "cipher (uri in clear)");
        // A switch takes no value, and is given once.
        assert!(Cli::try_parse_from(["prog", "--no-encrypt-uri=1"]).is_err());
        assert!(Cli::try_parse_from(["prog", "--verbose", "--verbose"]).is_err());
        assert!(Cli::try_parse_from(["prog", "--hmac"]).is_err());
    }
}
