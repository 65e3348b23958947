//! [`SelfCertifiedReservations`]: a relay's reservation check for self-certifying peer ids.

use bytes::Bytes;
use netaio::Message;
use netaio::plugin::SIGNER_FIELD;
use netaio::relay::ReservationCheck;

use crate::identity::PublicKeys;
use crate::peer::peer_id;

/// A relay's [`ReservationCheck`] for self-certifying peer ids ([`peer_id`]): a peer may
/// reserve an id only when it is [`peer_id`] of the key that signed the reservation (the
/// server's [`Ed25519Auth`](crate::Ed25519Auth) with
/// [`expose_signer`](crate::Ed25519Auth::expose_signer)) and the X25519 key the reservation
/// carries ([`proof`](Self::proof), sent with `Connection::reserve_with`). Anything else,
/// including a server whose auth exposes no signer, is refused (`RelayRefusal::NotYours`).
///
/// ```
/// use netaio::plugin::SIGNER_FIELD;
/// use netaio::relay::{RESERVE, ReservationCheck};
/// use netaio::Message;
/// use netaio_asymmetric::{peer_id, Identity, SelfCertifiedReservations};
///
/// let me = Identity::generate();
/// let id = peer_id(&me.public_keys());
/// let mut reserve = Message::new(RESERVE, id.to_vec(), SelfCertifiedReservations::proof(&me));
/// // As the server's Ed25519Auth leaves it once the signature verified.
/// reserve.auth.insert(SIGNER_FIELD, me.verifying_key().to_bytes().to_vec());
/// assert!(SelfCertifiedReservations.allows(&id, &reserve));
/// let other = peer_id(&Identity::generate().public_keys());
/// assert!(!SelfCertifiedReservations.allows(&other, &reserve));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SelfCertifiedReservations;

impl SelfCertifiedReservations {
    /// The content of a reservation of `identity`'s self-certifying id: its X25519 public key.
    pub fn proof(identity: &crate::Identity) -> Bytes {
        Bytes::copy_from_slice(&identity.public_keys().x25519)
    }
}

impl ReservationCheck for SelfCertifiedReservations {
    fn allows(&self, id: &[u8], reserve: &Message) -> bool {
        let Some(signer) = reserve.auth.get(SIGNER_FIELD) else {
            return false;
        };
        let (Ok(ed25519), Ok(x25519)) = (
            <[u8; 32]>::try_from(signer.as_ref()),
            <[u8; 32]>::try_from(reserve.content().as_ref()),
        ) else {
            return false;
        };
        peer_id(&PublicKeys { x25519, ed25519 }).as_slice() == id
    }

    /// True: the id is derived from the key that signed the reservation, so a reservation of
    /// it held elsewhere (the peer's old address or half-open connection) moves to the signer.
    fn proves_ownership(&self) -> bool {
        true
    }
}
