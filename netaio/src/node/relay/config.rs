//! [`RelayConfig`]: the limits of a relay, with rust-libp2p's circuit relay v2 defaults where it
//! has one.

use std::time::Duration;

/// A rate: `count` events per `period`, as a token bucket holding at most `count` (a burst of
/// `count`, then `count` per `period`).
///
/// ```
/// use std::time::Duration;
/// use netaio::relay::Rate;
///
/// let r = Rate::new(30, Duration::from_secs(120));
/// assert_eq!((r.count, r.period), (30, Duration::from_secs(120)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events per period, and the burst.
    pub count: u64,
    /// The period.
    pub period: Duration,
}

impl Rate {
    /// `count` per `period` (a zero period counts as one nanosecond).
    pub const fn new(count: u64, period: Duration) -> Self {
        Self { count, period }
    }

    /// `count` per second.
    pub const fn per_second(count: u64) -> Self {
        Self::new(count, Duration::from_secs(1))
    }
}

/// The limits of a relay ([`Relay`](crate::relay::Relay)); every limit has a default and a setter.
///
/// Reservations and circuits follow rust-libp2p's circuit relay v2 (`relay::Config`): 128
/// reservations, 4 per source IP, each lasting an hour; 16 circuits (a sender without a
/// reservation talking to a reserved peer), 4 per recipient, each lasting 2 minutes and
/// carrying at most 128 KiB; reservations and circuits created at most 30 per connection per 2
/// minutes and 60 per source IP per minute. Envelopes, which libp2p has no counterpart for (its
/// circuits are streams), are bounded per recipient (32 queued, 256 KiB), in size (64 KiB, a
/// largest native frame) and in rate per sending connection (500 per second, 8 MiB per second)
/// and per source IP (1,000 per second, 16 MiB per second).
///
/// ```
/// use std::time::Duration;
/// use netaio::relay::{Rate, RelayConfig};
///
/// let config = RelayConfig::default()
///     .max_reservations(1024)
///     .reservation_duration(Duration::from_secs(600))
///     .queue_envelopes(8)
///     .envelope_rate_per_sender(Rate::per_second(100));
/// assert_eq!(config.get_max_reservations(), 1024);
/// assert_eq!(config.get_max_reservations_per_ip(), 4);
/// assert_eq!(config.get_queue_envelopes(), 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    pub(crate) max_reservations: usize,
    pub(crate) max_reservations_per_ip: usize,
    pub(crate) reservation_duration: Duration,
    pub(crate) reservation_rate_per_sender: Rate,
    pub(crate) reservation_rate_per_ip: Rate,
    pub(crate) max_circuits: usize,
    pub(crate) max_circuits_per_peer: usize,
    pub(crate) circuit_duration: Duration,
    pub(crate) circuit_bytes: u64,
    pub(crate) max_envelope_size: usize,
    pub(crate) queue_envelopes: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) envelope_rate_per_sender: Rate,
    pub(crate) byte_rate_per_sender: Rate,
    pub(crate) envelope_rate_per_ip: Rate,
    pub(crate) byte_rate_per_ip: Rate,
    pub(crate) max_tracked_ips: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_reservations: 128,
            max_reservations_per_ip: 4,
            reservation_duration: Duration::from_secs(3600),
            reservation_rate_per_sender: Rate::new(30, Duration::from_secs(120)),
            reservation_rate_per_ip: Rate::new(60, Duration::from_secs(60)),
            max_circuits: 16,
            max_circuits_per_peer: 4,
            circuit_duration: Duration::from_secs(120),
            circuit_bytes: 128 * 1024,
            max_envelope_size: 64 * 1024,
            queue_envelopes: 32,
            queue_bytes: 256 * 1024,
            envelope_rate_per_sender: Rate::per_second(500),
            byte_rate_per_sender: Rate::per_second(8 << 20),
            envelope_rate_per_ip: Rate::per_second(1000),
            byte_rate_per_ip: Rate::per_second(16 << 20),
            max_tracked_ips: 4096,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident, $get:ident: $t:ty;)*) => {
        impl RelayConfig {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, v: $t) -> Self {
                    self.$name = v;
                    self
                }

                #[doc = concat!("See [`", stringify!($name), "`](Self::", stringify!($name), ").")]
                pub fn $get(&self) -> $t {
                    self.$name
                }
            )*
        }
    };
}

setters! {
    /// Reservations held at once (default 128); a reservation beyond is refused.
    max_reservations, get_max_reservations: usize;
    /// Reservations held at once from one source IP (an IPv6 /64) (default 4).
    max_reservations_per_ip, get_max_reservations_per_ip: usize;
    /// How long a reservation lasts unless renewed (default 1 h); the reservation's answer says it.
    reservation_duration, get_reservation_duration: Duration;
    /// Reservations and circuits one connection may create (default 30 per 2 min).
    reservation_rate_per_sender, get_reservation_rate_per_sender: Rate;
    /// Reservations and circuits one source IP may create (default 60 per min).
    reservation_rate_per_ip, get_reservation_rate_per_ip: Rate;
    /// Circuits at once (default 16): a circuit carries envelopes from a sender without a
    /// reservation to a reserved peer, and the peer's replies back.
    max_circuits, get_max_circuits: usize;
    /// Circuits at once to one reserved peer (default 4).
    max_circuits_per_peer, get_max_circuits_per_peer: usize;
    /// How long a circuit lasts (default 2 min); a new one may be created after it.
    circuit_duration, get_circuit_duration: Duration;
    /// Bytes a circuit carries in both directions before it ends (default 128 KiB).
    circuit_bytes, get_circuit_bytes: u64;
    /// The largest inner frame relayed (default 64 KiB).
    max_envelope_size, get_max_envelope_size: usize;
    /// Envelopes queued for one recipient connection (default 32); beyond, the sender is refused.
    queue_envelopes, get_queue_envelopes: usize;
    /// Bytes of envelopes queued for one recipient connection (default 256 KiB).
    queue_bytes, get_queue_bytes: usize;
    /// Envelopes one sending connection may relay (default 500 per second).
    envelope_rate_per_sender, get_envelope_rate_per_sender: Rate;
    /// Inner-frame bytes one sending connection may relay (default 8 MiB per second).
    byte_rate_per_sender, get_byte_rate_per_sender: Rate;
    /// Envelopes one source IP (an IPv6 /64) may relay (default 1,000 per second).
    envelope_rate_per_ip, get_envelope_rate_per_ip: Rate;
    /// Inner-frame bytes one source IP may relay (default 16 MiB per second).
    byte_rate_per_ip, get_byte_rate_per_ip: Rate;
    /// Source IPs, and sending connections, whose rates are tracked at once (default 4,096
    /// each); beyond, idle entries are forgotten first.
    max_tracked_ips, get_max_tracked_ips: usize;
}
