//! Who may use the native local API: its listeners (the Unix socket, with its file mode, and
//! loopback TCP) and the uid check at HELLO (`allowed_uids`), by the kernel's record of the
//! connecting process on the socket and by its socket tables on TCP.

use std::net::SocketAddr;

use netaio::router::{Context, ErrorReply};
use netaio::{Router, TcpServer};

use super::{NativeConfig, NativeError};
use crate::peercred::loopback_peer_uid;

/// Refuses (`NOT_PERMITTED`) a connection whose process's uid is not in `allowed` (not empty).
/// `server` is the local server's TCP address (for the socket tables).
pub(super) fn check_uid(
    allowed: &[u32],
    ctx: &Context,
    server: Option<SocketAddr>,
) -> Result<(), ErrorReply> {
    let uid = match ctx.peer_credentials() {
        // The Unix socket: the kernel's record of the connecting process.
        Some(cred) => Some(cred.uid),
        // Loopback TCP: the owner of the client's socket in the kernel's tables.
        None => server.and_then(|server| loopback_peer_uid(ctx.peer_addr(), server)),
    };
    uid_allowed(allowed, uid).map_err(|why| {
        tracing::warn!(from = %ctx.peer_addr(), ?uid, "native API: uid not allowed");
        ErrorReply::not_permitted(why)
    })
}

/// Whether a process with `uid` (`None`: it could not be told) may say hello when `allowed`
/// is not empty; the refusal's text otherwise.
pub fn uid_allowed(allowed: &[u32], uid: Option<u32>) -> Result<(), String> {
    match uid {
        Some(u) if allowed.contains(&u) => Ok(()),
        Some(u) => Err(format!("uid {u} is not allowed")),
        None => Err("the connecting uid could not be told".to_owned()),
    }
}

/// Binds the local server: on the Unix socket (its mode set before anything is served), on the
/// TCP address, or both.
pub(super) async fn bind_local(
    config: &NativeConfig,
    router: Router,
) -> Result<TcpServer, NativeError> {
    let builder = TcpServer::builder().router(router);
    let server = match (&config.socket, config.address) {
        (None, None) => return Err(NativeError::NoListener),
        (None, Some(addr)) => builder.address(addr).bind().await?,
        #[cfg(unix)]
        (Some(path), None) => builder.bind_unix(path).await?,
        #[cfg(unix)]
        (Some(path), Some(addr)) => builder.address(addr).unix_socket(path).bind().await?,
        #[cfg(not(unix))]
        (Some(_), _) => return Err(NativeError::NoListener),
    };
    #[cfg(unix)]
    if let Some(path) = &config.socket {
        use std::os::unix::fs::PermissionsExt;
        // Before serving; a connection made between the bind and this (the file had the
        // umask's mode) waits in the backlog, and still has to pass the uid check at HELLO.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.socket_mode))
            .map_err(|source| NativeError::SocketMode {
                path: path.clone(),
                source,
            })?;
    }
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_uids_may_say_hello() {
        assert_eq!(uid_allowed(&[0, 1000], Some(1000)), Ok(()));
        assert_eq!(uid_allowed(&[0, 1000], Some(0)), Ok(()));
        assert_eq!(
            uid_allowed(&[1000], Some(1001)),
            Err("uid 1001 is not allowed".to_owned())
        );
        assert!(uid_allowed(&[1000], None).is_err());
    }
}
