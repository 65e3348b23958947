//! Serving and connecting over a Unix socket (a path on the local machine) with everything the
//! TCP transport has: the same driver, server and client. What touches the OS lives here: binding
//! a socket file (and what to do with a stale one), removing it when the server ends, asking the
//! kernel for the peer's credentials, connecting. Who the peer is (its credentials, the address it
//! is given) is in `unix_peer.rs`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

use super::PeerCredentials;
use crate::error::{BindError, ConnectError};

/// The credentials of the peer of `stream`, if the kernel tells them.
pub(crate) fn credentials(stream: &UnixStream) -> Option<PeerCredentials> {
    match stream.peer_cred() {
        Ok(c) => Some(PeerCredentials {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        }),
        Err(e) => {
            tracing::debug!(error = %e, "peer credentials unknown");
            None
        }
    }
}

/// A bound Unix socket; its file is removed when it is dropped, unless another socket has taken
/// the path since.
#[derive(Debug)]
pub(crate) struct UnixSocket {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    /// The socket file's device and inode, to remove only our own.
    file: Option<(u64, u64)>,
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .is_some_and(|m| Some((m.dev(), m.ino())) == self.file);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "socket file not removed");
        }
    }
}

/// Bind a Unix socket at `path`. A socket file already there that nobody listens on (left by a
/// server that did not end cleanly) is removed first; one that a server still listens on, or a
/// file of another kind, is an error and is left alone.
pub(crate) async fn bind(path: &Path) -> Result<UnixSocket, BindError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let err = |source: io::Error| BindError::Unix {
        path: path.to_owned(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            )));
        }
        match UnixStream::connect(path).await {
            Ok(_) => {
                return Err(err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "a server listens on this socket",
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing a stale socket file");
                std::fs::remove_file(path).map_err(err)?;
            }
            Err(e) => return Err(err(e)),
        }
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    let file = std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    Ok(UnixSocket {
        listener,
        path: path.to_owned(),
        file,
    })
}

/// Connect to the Unix socket at `path` within `timeout`.
pub(crate) async fn connect(path: &Path, timeout: Duration) -> Result<UnixStream, ConnectError> {
    let err = |source: io::Error| ConnectError::Unix {
        path: path.to_owned(),
        source,
    };
    tokio::time::timeout(timeout, UnixStream::connect(path))
        .await
        .map_err(|_| err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))?
        .map_err(err)
}
