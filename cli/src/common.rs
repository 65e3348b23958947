//! The flags every command shares: the plugins and their secrets, `--python-compat`,
//! `--udp-buffer`, `--json` and `-v`. Secrets come from a flag, a file or an environment variable; they are never
//! printed (not in `--help`, not in errors, not in `Debug`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher};
use netaio::plugin::{AeadCipher, AuthPlugin, CipherPlugin, HmacAuth};
use netaio::tcp::{TcpClientBuilder, TcpServerBuilder};
use netaio::udp::UdpNodeBuilder;
use netaio_asymmetric::ed25519_dalek::VerifyingKey;
use netaio_asymmetric::{Ed25519Auth, Identity};

use crate::exit::Failure;

/// The shared flags (global: before or after the command name).
#[derive(Clone, clap::Args)]
pub struct CommonArgs {
    /// Authenticate every message with HMAC-SHA256 and this secret (prefer --hmac-file or
    /// $NETAIO_HMAC: a flag is visible to other users of the machine)
    #[arg(
        long,
        value_name = "SECRET",
        env = "NETAIO_HMAC",
        hide_env_values = true,
        global = true
    )]
    pub hmac: Option<String>,
    /// Read the HMAC secret from this file (a trailing newline is ignored)
    #[arg(
        long,
        value_name = "FILE",
        env = "NETAIO_HMAC_FILE",
        global = true,
        conflicts_with = "hmac"
    )]
    pub hmac_file: Option<PathBuf>,
    /// Encrypt every message (XChaCha20-Poly1305) with a key derived from this secret
    #[arg(
        long,
        value_name = "KEY",
        env = "NETAIO_CIPHER",
        hide_env_values = true,
        global = true
    )]
    pub cipher: Option<String>,
    /// Read the cipher key from this file (a trailing newline is ignored)
    #[arg(
        long,
        value_name = "FILE",
        env = "NETAIO_CIPHER_FILE",
        global = true,
        conflicts_with = "cipher"
    )]
    pub cipher_file: Option<PathBuf>,
    /// Talk to Python netaio 0.0.9: its wire format, and its (insecure) legacy HMAC and cipher
    /// for --hmac and --cipher
    #[arg(long, global = true)]
    pub python_compat: bool,
    /// With --python-compat and --cipher: leave the uri in clear (Python: encrypt_uri=False)
    #[arg(long, global = true)]
    pub no_encrypt_uri: bool,
    /// Sign every message with the Ed25519 key of this identity file (`netaio identity new FILE`)
    #[arg(long, value_name = "FILE", env = "NETAIO_IDENTITY", global = true, conflicts_with_all = ["hmac", "hmac_file"])]
    pub identity: Option<PathBuf>,
    /// Accept messages signed by this Ed25519 public key (hex; repeat for several); with --identity
    #[arg(long, value_name = "HEX", global = true, requires = "identity", value_parser = parse_peer_key)]
    pub peer_key: Vec<VerifyingKey>,
    /// UDP nodes: both socket buffers (SO_RCVBUF, SO_SNDBUF), bytes (default: the kernel's;
    /// Linux caps the request at net.core.rmem_max / wmem_max and a warning says so); for
    /// bursts of large datagrams
    #[arg(long, value_name = "BYTES", global = true)]
    pub udp_buffer: Option<usize>,
    /// One JSON object per line on stdout (for scripts)
    #[arg(long, global = true)]
    pub json: bool,
    /// More logs on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl fmt::Debug for CommonArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whether a secret is set, never what it is.
        f.debug_struct("CommonArgs")
            .field("hmac", &self.hmac.as_ref().map(|_| "<secret>"))
            .field("hmac_file", &self.hmac_file)
            .field("cipher", &self.cipher.as_ref().map(|_| "<secret>"))
            .field("cipher_file", &self.cipher_file)
            .field("python_compat", &self.python_compat)
            .field("identity", &self.identity)
            .field("peer_key", &self.peer_key.len())
            .field("udp_buffer", &self.udp_buffer)
            .field("json", &self.json)
            .field("verbose", &self.verbose)
            .finish()
    }
}

fn parse_peer_key(s: &str) -> Result<VerifyingKey, String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut bytes).map_err(|e| format!("not 32 bytes of hex: {e}"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key".to_owned())
}

/// A secret read from a file: its bytes without one trailing newline.
fn read_secret(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    let mut bytes = std::fs::read(path).map_err(|e| {
        Failure::other(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(Failure::other(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Read an identity file: 64 hex digits (the 32-byte seed), as `netaio identity new` writes.
pub fn read_identity(path: &Path) -> Result<Identity, Failure> {
    let text = read_secret(path, "identity")?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim_ascii(), &mut seed).map_err(|_| {
        Failure::other(format!(
            "the identity file {} does not hold 64 hex digits",
            path.display()
        ))
    })?;
    Ok(Identity::from_seed(seed))
}

/// The instance plugins the flags ask for, ready for any builder (and the UDP socket buffers,
/// which every UDP node's builder takes here too).
#[derive(Clone, Default)]
pub struct Plugins {
    auth: Option<Arc<dyn AuthPlugin>>,
    cipher: Option<Arc<dyn CipherPlugin>>,
    python_compat: bool,
    udp_buffer: Option<usize>,
}

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugins")
            .field("auth", &self.auth.is_some())
            .field("cipher", &self.cipher.is_some())
            .field("python_compat", &self.python_compat)
            .field("udp_buffer", &self.udp_buffer)
            .finish()
    }
}

impl CommonArgs {
    /// Build the plugins (reading the secret files); a file that cannot be read is a failure.
    pub fn plugins(&self) -> Result<Plugins, Failure> {
        let hmac = match (&self.hmac, &self.hmac_file) {
            (Some(s), _) => Some(s.as_bytes().to_vec()),
            (None, Some(p)) => Some(read_secret(p, "HMAC secret")?),
            (None, None) => None,
        };
        let cipher = match (&self.cipher, &self.cipher_file) {
            (Some(s), _) => Some(s.as_bytes().to_vec()),
            (None, Some(p)) => Some(read_secret(p, "cipher key")?),
            (None, None) => None,
        };
        let mut plugins = Plugins {
            python_compat: self.python_compat,
            udp_buffer: self.udp_buffer,
            ..Plugins::default()
        };
        if self.python_compat {
            if self.identity.is_some() {
                return Err(Failure::other(
                    "--identity cannot be used with --python-compat (Python netaio 0.0.9 has no Ed25519 signatures on this wire)",
                ));
            }
            if let Some(secret) = hmac {
                plugins.auth = Some(Arc::new(LegacyHmacAuth::new(secret)));
            }
            if let Some(key) = cipher {
                let c = LegacySha256StreamCipher::new(key).encrypt_uri(!self.no_encrypt_uri);
                plugins.cipher = Some(Arc::new(c));
            }
            return Ok(plugins);
        }
        if let Some(secret) = hmac {
            plugins.auth = Some(Arc::new(HmacAuth::new(secret)));
        }
        if let Some(path) = &self.identity {
            let identity = read_identity(path)?;
            let mut auth = Ed25519Auth::new(&identity).trust_peer_keys(false);
            for key in &self.peer_key {
                auth = auth.allow(*key);
            }
            plugins.auth = Some(Arc::new(auth));
        }
        if let Some(key) = cipher {
            plugins.cipher = Some(Arc::new(AeadCipher::new(key)));
        }
        Ok(plugins)
    }
}

impl Plugins {
    /// A client builder with these plugins.
    pub fn client(&self, b: TcpClientBuilder) -> TcpClientBuilder {
        let b = if self.python_compat {
            b.python_compat()
        } else {
            b
        };
        self.plugins(b)
    }

    /// A server builder with these plugins.
    pub fn server(&self, b: TcpServerBuilder) -> TcpServerBuilder {
        let b = if self.python_compat {
            b.python_compat()
        } else {
            b
        };
        self.plugins(b)
    }

    /// A UDP node builder with these plugins (and `--udp-buffer`'s socket buffers).
    pub fn udp(&self, b: UdpNodeBuilder) -> UdpNodeBuilder {
        let b = if self.python_compat {
            b.python_compat()
        } else {
            b
        };
        let b = match self.udp_buffer {
            Some(n) => b.recv_buffer_size(n).send_buffer_size(n),
            None => b,
        };
        self.plugins(b)
    }

    /// The auth and cipher plugins on any node builder (`python_compat` is per kind of node).
    fn plugins<K>(&self, mut b: netaio::NodeBuilder<K>) -> netaio::NodeBuilder<K> {
        if let Some(a) = &self.auth {
            b = b.auth_arc(a.clone());
        }
        if let Some(c) = &self.cipher {
            b = b.cipher_arc(c.clone());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use netaio::udp::UdpNode;

    use crate::cli::Cli;

    /// `--udp-buffer` reaches the sockets of the UDP nodes the commands build (Linux reports
    /// twice the size set; 64 KiB is below any default cap).
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn udp_buffer_reaches_the_udp_nodes_socket() {
        let cli = Cli::try_parse_from([
            "netaio",
            "listen",
            "--udp",
            "127.0.0.1:0",
            "--udp-buffer",
            "65536",
        ])
        .unwrap();
        assert_eq!(cli.common.udp_buffer, Some(65_536));
        let builder = cli.common.plugins().unwrap().udp(UdpNode::builder());
        let node = builder.address(([127, 0, 0, 1], 0)).bind().await.unwrap();
        assert_eq!(node.recv_buffer_size().unwrap(), 2 * 65_536);
        assert_eq!(node.send_buffer_size().unwrap(), 2 * 65_536);

        let cli = Cli::try_parse_from(["netaio", "listen", "--udp", "127.0.0.1:0"]).unwrap();
        let builder = cli.common.plugins().unwrap().udp(UdpNode::builder());
        let node = builder.address(([127, 0, 0, 1], 0)).bind().await.unwrap();
        let default: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_default")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(node.recv_buffer_size().unwrap(), default);
    }
}
