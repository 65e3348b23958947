//! The relay's messages on the wire: three message types from the range netaio reserves (0 to
//! 30, unassigned in Python netaio 0.0.9), the address in the uri, the limits in a reservation's
//! answer, and the refusals.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::{Message, MessageType};

/// A peer asks the relay to reserve its id on this connection: uri = the peer id, content empty.
/// Answered OK with the [`RelayLimits`] (postcard), or a refusal.
pub const RESERVE: MessageType = MessageType::from_u8(26);
/// A sender hands the relay an envelope: uri = the recipient's [`RelayAddress`], content = the
/// inner frame, sealed for the recipient. Unanswered when relayed; answered with a refusal when
/// not, if the envelope carries a request id and the inner frame is not an error.
pub const FORWARD: MessageType = MessageType::from_u8(27);
/// The relay delivers an envelope: uri = the sender's [`RelayAddress`] (to answer to), content =
/// the inner frame as the sender sealed it.
pub const DELIVER: MessageType = MessageType::from_u8(28);

/// Whether a message type is one of the relay's.
pub const fn is_relay_type(t: u8) -> bool {
    matches!(t, 26..=28)
}

/// The uri of every refusal the relay sends.
pub const REFUSAL_URI: &[u8] = b"relay";

/// Where an envelope goes, or where it came from: a peer id with a reservation, or a circuit (a
/// sender without a reservation, known to the relay by a number while its circuit lasts).
///
/// In a uri: `0x00 ‖ peer id`, or `0x01 ‖ circuit u64 BE`.
///
/// ```
/// use netaio::relay::RelayAddress;
///
/// let a = RelayAddress::Peer(netaio::bytes::Bytes::from_static(b"node-c"));
/// assert_eq!(RelayAddress::decode(&a.encode()), Some(a));
/// assert_eq!(RelayAddress::decode(b"\x02"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RelayAddress {
    /// A peer with a reservation at the relay.
    Peer(Bytes),
    /// A circuit, for the reserved peer to answer its sender.
    Circuit(u64),
}

impl RelayAddress {
    /// The uri form.
    pub fn encode(&self) -> Bytes {
        match self {
            RelayAddress::Peer(id) => {
                let mut b = BytesMut::with_capacity(1 + id.len());
                b.put_u8(0);
                b.put_slice(id);
                b.freeze()
            }
            RelayAddress::Circuit(n) => {
                let mut b = BytesMut::with_capacity(9);
                b.put_u8(1);
                b.put_u64(*n);
                b.freeze()
            }
        }
    }

    /// The length of the uri form.
    pub(crate) fn encoded_len(&self) -> usize {
        match self {
            RelayAddress::Peer(id) => 1 + id.len(),
            RelayAddress::Circuit(_) => 9,
        }
    }

    /// The uri form, appended to `dst` (no buffer of its own).
    pub(crate) fn encode_into(&self, dst: &mut BytesMut) {
        match self {
            RelayAddress::Peer(id) => {
                dst.put_u8(0);
                dst.put_slice(id);
            }
            RelayAddress::Circuit(n) => {
                dst.put_u8(1);
                dst.put_u64(*n);
            }
        }
    }

    /// [`decode`](Self::decode) of a uri held in `Bytes`: a peer id is a slice of it, not a
    /// copy (for a use that does not outlive the message: the slice holds its buffer).
    pub(crate) fn decode_bytes(uri: &Bytes) -> Option<Self> {
        match uri.first()? {
            0 if uri.len() > 1 => Some(RelayAddress::Peer(uri.slice(1..))),
            _ => Self::decode(uri),
        }
    }

    /// From the uri form; `None` when it is not one.
    pub fn decode(uri: &[u8]) -> Option<Self> {
        match uri.split_first()? {
            (0, id) if !id.is_empty() => Some(RelayAddress::Peer(Bytes::copy_from_slice(id))),
            (1, n) => Some(RelayAddress::Circuit(u64::from_be_bytes(
                n.try_into().ok()?,
            ))),
            _ => None,
        }
    }
}

/// What a relay announces in its answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RelayLimits {
    /// Seconds until the reservation expires (renew before).
    pub reservation_secs: u64,
    /// The largest inner frame relayed.
    pub max_envelope_size: u64,
    /// Envelopes queued for one recipient at most.
    pub queue_envelopes: u64,
    /// Bytes queued for one recipient at most.
    pub queue_bytes: u64,
    /// Envelopes per second one connection may send.
    pub envelopes_per_second: u64,
    /// Inner-frame bytes per second one connection may send.
    pub bytes_per_second: u64,
    /// How long a circuit (a sender without reservation) lasts, in seconds.
    pub circuit_secs: u64,
    /// Bytes a circuit carries.
    pub circuit_bytes: u64,
}

impl RelayLimits {
    /// The content of the reservation's answer.
    pub fn encode(&self) -> Bytes {
        postcard::to_allocvec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// From a reservation's answer.
    pub fn decode(content: &[u8]) -> Option<Self> {
        postcard::from_bytes(content).ok()
    }
}

/// Why a relay did not take an envelope or a reservation. On the wire: an error reply with uri
/// `relay` and this refusal's code as content; NOT_FOUND for [`NoRoute`](Self::NoRoute),
/// NOT_PERMITTED for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RelayRefusal {
    /// The recipient has no reservation (or the circuit is gone). This is information, not
    /// proof: a recipient that left just after a relayed envelope may have received it.
    #[error("relay: no route to the recipient")]
    NoRoute,
    /// The inner frame is larger than the relay's envelope limit.
    #[error("relay: envelope too large")]
    TooLarge,
    /// The inner frame is itself a relay message (an envelope is relayed once).
    #[error("relay: nested envelope")]
    Nested,
    /// The sender or its IP is above its rate.
    #[error("relay: rate limited")]
    RateLimited,
    /// The recipient's queue is full (in envelopes or bytes).
    #[error("relay: recipient queue full")]
    QueueFull,
    /// No circuit can be made (too many at the relay or to the recipient), or this one ran out of
    /// time or bytes.
    #[error("relay: circuit limit")]
    CircuitLimit,
    /// The relay holds as many reservations as it may (in total or for this IP).
    #[error("relay: reservation limit")]
    ReservationLimit,
    /// Another connection holds a reservation for this id.
    #[error("relay: peer id reserved by another connection")]
    Taken,
    /// The message is not a well-formed relay message.
    #[error("relay: malformed")]
    Malformed,
    /// The relay's reservation check refused the id to this sender: with self-certifying ids,
    /// the id is not that of the key that signed the reservation
    /// ([`Relay::reservation_check`](crate::relay::Relay::reservation_check)).
    #[error("relay: the peer id is not the signer's")]
    NotYours,
}

impl RelayRefusal {
    const ALL: [RelayRefusal; 10] = [
        RelayRefusal::NoRoute,
        RelayRefusal::TooLarge,
        RelayRefusal::Nested,
        RelayRefusal::RateLimited,
        RelayRefusal::QueueFull,
        RelayRefusal::CircuitLimit,
        RelayRefusal::ReservationLimit,
        RelayRefusal::Taken,
        RelayRefusal::Malformed,
        RelayRefusal::NotYours,
    ];

    /// The code on the wire.
    pub fn code(self) -> &'static str {
        match self {
            RelayRefusal::NoRoute => "no-route",
            RelayRefusal::TooLarge => "too-large",
            RelayRefusal::Nested => "nested",
            RelayRefusal::RateLimited => "rate-limited",
            RelayRefusal::QueueFull => "queue-full",
            RelayRefusal::CircuitLimit => "circuit-limit",
            RelayRefusal::ReservationLimit => "reservation-limit",
            RelayRefusal::Taken => "taken",
            RelayRefusal::Malformed => "malformed",
            RelayRefusal::NotYours => "not-yours",
        }
    }

    /// The refusal as the relay sends it.
    pub fn to_message(self) -> Message {
        let t = match self {
            RelayRefusal::NoRoute => MessageType::NOT_FOUND,
            _ => MessageType::NOT_PERMITTED,
        };
        Message::new(t, Bytes::from_static(REFUSAL_URI), self.code())
    }

    /// The refusal a reply stands for, if it is one.
    ///
    /// ```
    /// use netaio::relay::RelayRefusal;
    ///
    /// let m = RelayRefusal::NoRoute.to_message();
    /// assert_eq!(RelayRefusal::from_message(&m), Some(RelayRefusal::NoRoute));
    /// ```
    pub fn from_message(m: &Message) -> Option<Self> {
        if !m.message_type.is_error() || m.uri().as_ref() != REFUSAL_URI {
            return None;
        }
        Self::ALL
            .into_iter()
            .find(|r| r.code().as_bytes() == m.content().as_ref())
    }

    /// The refusal behind a call's error, if the relay refused the call's envelope.
    pub fn from_error(e: &crate::RequestError) -> Option<Self> {
        e.reply().and_then(Self::from_message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_refusals_round_trip() {
        for a in [
            RelayAddress::Peer(Bytes::from_static(b"x")),
            RelayAddress::Circuit(u64::MAX),
        ] {
            assert_eq!(RelayAddress::decode(&a.encode()), Some(a.clone()));
            // The forms without a buffer of their own: the same bytes, the same address.
            let mut dst = BytesMut::from(&b"head"[..]);
            a.encode_into(&mut dst);
            assert_eq!(&dst[4..], &a.encode()[..]);
            assert_eq!(a.encoded_len(), a.encode().len());
            assert_eq!(RelayAddress::decode_bytes(&a.encode()), Some(a));
        }
        for bad in [&b""[..], b"\x00", b"\x01\x00", b"\x02x"] {
            let bad = Bytes::from_static(bad);
            assert_eq!(RelayAddress::decode_bytes(&bad), None, "{bad:?}");
        }
        assert_eq!(RelayAddress::decode(b""), None);
        assert_eq!(RelayAddress::decode(b"\x00"), None, "empty peer id");
        assert_eq!(RelayAddress::decode(b"\x01\x00"), None, "short circuit");
        for r in RelayRefusal::ALL {
            assert_eq!(RelayRefusal::from_message(&r.to_message()), Some(r));
        }
        let other = Message::new(MessageType::NOT_FOUND, "relay", "?");
        assert_eq!(RelayRefusal::from_message(&other), None);
    }

    #[test]
    fn the_relay_types_are_unassigned_in_python() {
        for t in [RESERVE, FORWARD, DELIVER] {
            assert!(t.name().is_none() && t.value() < MessageType::FIRST_CUSTOM);
            assert!(is_relay_type(t.value()));
        }
    }
}
