//! What the Python interop programs (`compat_server`, `compat_client`, `compat_udp_node`) share: the plugin flags
//! (`--hmac SECRET`, `--cipher KEY`, `--no-encrypt-uri`) with the Python library's defaults, and
//! the request contents the client sends.
//!
//! ```
//! use netaio_examples::args::Flags;
//! use netaio_examples::compat::{content_for, PluginFlags};
//!
//! let args = ["--hmac", "s", "--cipher", "k", "--no-encrypt-uri"].map(String::from);
//! let flags = Flags::parse_with_switches(args, PluginFlags::VALUES, PluginFlags::SWITCHES).unwrap();
//! let plugins = PluginFlags::from_flags(&flags);
//! assert_eq!(plugins.describe(), "hmac + cipher (uri in clear)");
//! assert_eq!(content_for(0).len(), 0);
//! assert_eq!(content_for(1).len(), 1000);
//! ```

use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher};
use netaio::tcp::{TcpClientBuilder, TcpServerBuilder};
use netaio::udp::UdpNodeBuilder;

use crate::args::Flags;

/// The plugin options of the interop programs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginFlags {
    /// `--hmac SECRET`: Python's `HMACAuthPlugin({"secret": SECRET})`.
    pub hmac: Option<String>,
    /// `--cipher KEY`: Python's `Sha256StreamCipherPlugin({"key": KEY})`.
    pub cipher: Option<String>,
    /// False with `--no-encrypt-uri` (Python's default `encrypt_uri=True` otherwise).
    pub encrypt_uri: bool,
}

impl PluginFlags {
    /// The flags that take a value.
    pub const VALUES: &'static [&'static str] = &["hmac", "cipher"];
    /// The switches (`--verbose` is accepted and ignored, like the Python programs do).
    pub const SWITCHES: &'static [&'static str] = &["no-encrypt-uri", "verbose"];

    /// Read the options from parsed flags.
    pub fn from_flags(flags: &Flags) -> Self {
        Self {
            hmac: flags.raw("hmac").map(str::to_owned),
            cipher: flags.raw("cipher").map(str::to_owned),
            encrypt_uri: !flags.is_set("no-encrypt-uri"),
        }
    }

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
