//! [`ReservationCheck`]: who may reserve which peer id, decided by the application (with
//! self-certifying ids: the id must be the one of the key that signed the reservation).

use crate::Message;

/// Decides whether the sender of a reservation may reserve `peer_id`. A relay without one
/// gives an id to the first live connection that asks (ids are names); with one, a reservation
/// it refuses is answered [`RelayRefusal::NotYours`](super::RelayRefusal::NotYours).
///
/// `reserve` is the RESERVE as the server's instance plugins left it: its
/// [`SIGNER_FIELD`](crate::plugin::SIGNER_FIELD) holds the verified signer's key when the
/// server's auth exposes one (netaio-asymmetric's `Ed25519Auth::expose_signer`), and its content
/// is what the peer sent with the reservation
/// ([`Connection::reserve_with`](crate::Connection::reserve_with)). netaio-asymmetric's
/// `SelfCertifiedReservations` is the check for its self-certifying ids. A closure is one too:
///
/// ```
/// use netaio::relay::ReservationCheck;
///
/// // Only ids starting with "guest-".
/// let check = |id: &[u8], _reserve: &netaio::Message| id.starts_with(b"guest-");
/// let m = netaio::Message::new(netaio::relay::RESERVE, "guest-1", "");
/// assert!(check.allows(b"guest-1", &m));
/// assert!(!check.allows(b"admin", &m));
/// ```
pub trait ReservationCheck: Send + Sync + 'static {
    /// Whether `peer_id` may be reserved by the sender of `reserve`.
    fn allows(&self, peer_id: &[u8], reserve: &Message) -> bool;

    /// Whether [`allows`](Self::allows) passing proves that the id is the sender's own (its key
    /// signed the reservation), not merely that the sender may hold it. Then a reservation of
    /// an id held by another connection or address moves to the sender (a peer that
    /// reconnected, or whose address changed, takes its id back at once) instead of being
    /// [`RelayRefusal::Taken`](super::RelayRefusal::Taken). Default `false`: a policy (a prefix,
    /// an allow-list of ids) passes for whoever asks, so first come first served stays.
    fn proves_ownership(&self) -> bool {
        false
    }
}

impl<F: Fn(&[u8], &Message) -> bool + Send + Sync + 'static> ReservationCheck for F {
    fn allows(&self, peer_id: &[u8], reserve: &Message) -> bool {
        self(peer_id, reserve)
    }
}
