//! The chat identity: a 32-byte seed (the Ed25519 secret key, from which the X25519 key is derived
//! too) kept in a file, created on first run with permissions 0600 in a directory with 0700.
//!
//! The file is text: comment lines (`#`) and one line of 64 hex digits. As with SSH private keys,
//! a file that others can read is refused.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use netaio_asymmetric::Identity;
use zeroize::Zeroizing;

use crate::protocol::fingerprint;

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading failed.
    #[error("cannot read identity file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Creating failed.
    #[error("cannot create identity file {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file does not hold a seed.
    #[error("{} is not a chat identity file: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// Others may read the file.
    #[error(
        "identity file {} has permissions {mode:03o}: others can read your key; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// An identity and where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The keys.
    pub identity: Identity,
    /// True when this run created the file.
    pub created: bool,
}

/// The default directory for the chat's files: `$XDG_CONFIG_HOME/netaio-chat`, else
/// `$HOME/.config/netaio-chat`; `None` when neither variable is set.
pub fn default_dir() -> Option<PathBuf> {
    let non_empty = |v: std::ffi::OsString| (!v.is_empty()).then(|| PathBuf::from(v));
    std::env::var_os("XDG_CONFIG_HOME")
        .and_then(non_empty)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(non_empty)
                .map(|h| h.join(".config"))
        })
        .map(|d| d.join("netaio-chat"))
}

/// Load the identity at `path`, or create a new one there (and the missing directories, 0700) if
/// the file does not exist.
pub fn load_or_create(path: &Path) -> Result<Loaded, IdentityError> {
    match load(path) {
        Ok(identity) => Ok(Loaded {
            identity,
            created: false,
        }),
        Err(IdentityError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            match create(path) {
                Ok(identity) => Ok(Loaded {
                    identity,
                    created: true,
                }),
                // Another process created it first: use that one.
                Err(IdentityError::Create { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists =>
                {
                    load(path).map(|identity| Loaded {
                        identity,
                        created: false,
                    })
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Load the identity at `path`.
pub fn load(path: &Path) -> Result<Identity, IdentityError> {
    let read = |source| IdentityError::Read {
        path: path.to_owned(),
        source,
    };
    let format = |reason| IdentityError::Format {
        path: path.to_owned(),
        reason,
    };
    let meta = fs::metadata(path).map_err(read)?;
    check_permissions(path, &meta)?;
    if meta.len() > 4096 {
        return Err(format("too large"));
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(read)?);
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().ok_or_else(|| format("no key line"))?;
    if lines.next().is_some() {
        return Err(format("more than one key line"));
    }
    let seed = Zeroizing::new(
        parse_seed(line).ok_or_else(|| format("the key line is not 64 hex digits"))?,
    );
    Ok(Identity::from_seed(*seed))
}

fn parse_seed(line: &str) -> Option<[u8; 32]> {
    let digits = line.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut seed = [0u8; 32];
    for (byte, pair) in seed.iter_mut().zip(digits.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(s, 16).ok()?;
    }
    Some(seed)
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), IdentityError> {
    Ok(())
}

/// Create the directories leading to `path` (0700 on Unix).
pub fn create_private_dirs(path: &Path) -> io::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Open a new file for writing, failing if it exists (0600 on Unix).
pub fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn create(path: &Path) -> Result<Identity, IdentityError> {
    let fail = |source| IdentityError::Create {
        path: path.to_owned(),
        source,
    };
    create_private_dirs(path).map_err(fail)?;
    let identity = Identity::generate();
    let mut file = create_private_file(path).map_err(fail)?;
    let hex = Zeroizing::new(crate::protocol::hex(identity.seed()));
    let body = Zeroizing::new(format!(
        "# netaio chat identity: the seed of your Ed25519 key. Keep it private (mode 0600).\n\
         # Fingerprint of the public key: {}\n{}\n",
        fingerprint(&identity.public_keys().ed25519),
        hex.as_str()
    ));
    let written = file
        .write_all(body.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        // Do not leave a half-written identity behind.
        let _ = fs::remove_file(path);
        return Err(fail(e));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_with_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/identity");
        let first = load_or_create(&path).unwrap();
        assert!(first.created);
        let again = load_or_create(&path).unwrap();
        assert!(!again.created);
        assert_eq!(first.identity.public_keys(), again.identity.public_keys());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity");
        load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&path).unwrap_err();
        assert!(
            matches!(e, IdentityError::Permissions { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"));
    }

    #[test]
    fn malformed_files_are_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        for (i, body) in [
            "",
            "# only a comment\n",
            "xyz\n",
            &"0".repeat(63),
            &format!("{}\n{}\n", "0".repeat(64), "1".repeat(64)),
        ]
        .iter()
        .enumerate()
        {
            let path = dir.path().join(format!("id{i}"));
            let mut f = create_private_file(&path).unwrap();
            f.write_all(body.as_bytes()).unwrap();
            drop(f);
            let e = load_or_create(&path).unwrap_err();
            assert!(matches!(e, IdentityError::Format { .. }), "{body:?}: {e}");
            assert_eq!(fs::read_to_string(&path).unwrap(), *body, "left as it was");
        }
    }

    #[test]
    fn the_seed_is_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity");
        let mut f = create_private_file(&path).unwrap();
        writeln!(f, "# comment\n\n{}", "01".repeat(32)).unwrap();
        drop(f);
        let id = load(&path).unwrap();
        assert_eq!(id.public_keys(), Identity::from_seed([1; 32]).public_keys());
    }
}
