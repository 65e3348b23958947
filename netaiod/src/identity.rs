//! The host key: the daemon's netaio-asymmetric identity, kept as its 32-byte seed in a file.

use std::io::Write;
use std::path::Path;

use netaio_asymmetric::Identity;

/// Why the host key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The file could not be read or created.
    #[error("host key {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a 32-byte seed.
    #[error("host key {path}: {len} bytes, not a 32-byte seed")]
    Length {
        /// The file.
        path: String,
        /// Its length.
        len: usize,
    },
}

/// Loads the identity whose seed is in `path`, or creates the file (mode 0600, new random
/// seed) when it does not exist.
pub fn load_or_create(path: &Path) -> Result<Identity, HostKeyError> {
    let io = |source| HostKeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| HostKeyError::Length {
                    path: path.display().to_string(),
                    len: bytes.len(),
                })?;
            Ok(Identity::from_seed(seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let identity = Identity::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(path).map_err(io)?;
            file.write_all(identity.seed()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "new host key created");
            Ok(identity)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn created_once_with_mode_0600_then_reloaded() {
        let dir = std::env::temp_dir().join(format!("netaiod-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hostkey");
        let _ = std::fs::remove_file(&path);
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.seed(), again.seed());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(HostKeyError::Length { len: 5, .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
