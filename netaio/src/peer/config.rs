//! [`PeerConfig`]: how a node manages its peers.

use std::time::Duration;

use bytes::Bytes;

use crate::plugin::Plugins;

/// The longest interval or timeout accepted: longer values are clamped (a deadline computed from
/// `Duration::MAX` would overflow).
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);
/// Automatic peer management settings, given to a transport's `peer_management(PeerConfig)`.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`app_id`](Self::app_id) | `netaio` | uri of every peer-management message; nodes with another app id ignore ours |
/// | [`advertise_interval`](Self::advertise_interval) | 20 s (as in Python) | UDP: time between two multicast `ADVERTISE_PEER` (the first at start, the second at most 1 s later) |
/// | [`jitter`](Self::jitter) | 0.1 | each interval is drawn from interval × [1 − jitter, 1 + jitter], so nodes started together do not advertise in lockstep |
/// | [`peer_timeout`](Self::peer_timeout) | 60 s (as in Python) | UDP: a peer not heard from for this long expires |
/// | [`max_peers`](Self::max_peers) | 1,024 | peer table capacity; beyond it a new peer evicts the least recently heard |
/// | [`max_peers_per_ip`](Self::max_peers_per_ip) | 64 | peers from one IP address (IPv6: one /64); beyond it a new one evicts that IP's least recently heard |
/// | [`answers_per_ip`](Self::answers_per_ip) | 8 | UDP: `PEER_DISCOVERED` answers per second to one source IP |
/// | [`plugins`](Self::plugins) | none | inner plugins applied to peer-management messages (after the node's instance plugins on receive, before them on send) |
///
/// Setters take the plain names and consume the config; the getters are `get_`-prefixed
/// ([`get_app_id`](Self::get_app_id), …).
///
/// ```
/// use std::time::Duration;
/// use netaio::peer::PeerConfig;
/// use netaio::plugin::{HmacAuth, Plugins};
///
/// let config = PeerConfig::default()
///     .app_id("sensors")
///     .advertise_interval(Duration::from_secs(5))
///     .peer_timeout(Duration::from_secs(15))
///     .max_peers(64)
///     .plugins(Plugins::new().auth(HmacAuth::new(b"peer secret")));
/// assert_eq!(config.get_advertise_interval(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct PeerConfig {
    app_id: Bytes,
    advertise_interval: Duration,
    jitter: f64,
    peer_timeout: Duration,
    max_peers: usize,
    max_peers_per_ip: usize,
    answers_per_ip: u32,
    plugins: Plugins,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            app_id: Bytes::from_static(b"netaio"),
            advertise_interval: Duration::from_secs(20),
            jitter: 0.1,
            peer_timeout: Duration::from_secs(60),
            max_peers: 1024,
            max_peers_per_ip: crate::peer::PeerTable::DEFAULT_MAX_PER_IP,
            answers_per_ip: 8,
            plugins: Plugins::new(),
        }
    }
}

impl PeerConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// The app id: the uri of every peer-management message (default `netaio`, as in Python).
    #[must_use]
    pub fn app_id(mut self, app_id: impl Into<Bytes>) -> Self {
        self.app_id = app_id.into();
        self
    }

    /// Time between two adverts (default 20 s); at least 10 ms.
    #[must_use]
    pub fn advertise_interval(mut self, every: Duration) -> Self {
        self.advertise_interval = every.clamp(Duration::from_millis(10), LONGEST);
        self
    }

    /// Random spread of each interval, as a fraction of it (default 0.1; clamped to 0..=0.5).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 0.5)
        } else {
            0.0
        };
        self
    }

    /// How long a peer may stay silent before it expires (default 60 s; at most a year, so that
    /// deadlines computed from it cannot overflow).
    #[must_use]
    pub fn peer_timeout(mut self, timeout: Duration) -> Self {
        self.peer_timeout = timeout.min(LONGEST);
        self
    }

    /// The peer table's capacity (default 1,024). When it is full, a new peer evicts the least
    /// recently heard one (see [`PeerTable`](crate::peer::PeerTable)).
    #[must_use]
    pub fn max_peers(mut self, n: usize) -> Self {
        self.max_peers = n;
        self
    }

    /// Peers the table holds from one IP address, for IPv6 one /64 (default 64, at least 1): a
    /// new one from an IP at its share evicts that IP's least recently heard peer, so one host
    /// advertising many ids cannot push the other hosts' peers out.
    #[must_use]
    pub fn max_peers_per_ip(mut self, n: usize) -> Self {
        self.max_peers_per_ip = n.max(1);
        self
    }

    /// UDP: how many adverts from one source IP are answered with `PEER_DISCOVERED` per second
    /// (default 8); the others are recorded but not answered (the advertiser hears this node's
    /// next advert instead). An advert's source address may be forged, and the answer goes to it.
    #[must_use]
    pub fn answers_per_ip(mut self, n: u32) -> Self {
        self.answers_per_ip = n;
        self
    }

    /// Inner plugins for peer-management messages (default none).
    #[must_use]
    pub fn plugins(mut self, plugins: Plugins) -> Self {
        self.plugins = plugins;
        self
    }

    /// The app id set with [`app_id`](Self::app_id).
    pub fn get_app_id(&self) -> &Bytes {
        &self.app_id
    }

    /// The advert interval set with [`advertise_interval`](Self::advertise_interval).
    pub fn get_advertise_interval(&self) -> Duration {
        self.advertise_interval
    }

    /// The jitter fraction set with [`jitter`](Self::jitter).
    pub fn get_jitter(&self) -> f64 {
        self.jitter
    }

    /// The peer timeout set with [`peer_timeout`](Self::peer_timeout).
    pub fn get_peer_timeout(&self) -> Duration {
        self.peer_timeout
    }

    /// The peer table's capacity set with [`max_peers`](Self::max_peers).
    pub fn get_max_peers(&self) -> usize {
        self.max_peers
    }

    /// The per-IP share set with [`max_peers_per_ip`](Self::max_peers_per_ip).
    pub fn get_max_peers_per_ip(&self) -> usize {
        self.max_peers_per_ip
    }

    /// The answer rate set with [`answers_per_ip`](Self::answers_per_ip).
    pub fn get_answers_per_ip(&self) -> u32 {
        self.answers_per_ip
    }

    /// The inner plugins set with [`plugins`](Self::plugins).
    pub fn get_plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// One interval with jitter applied.
    pub(crate) fn next_interval(&self) -> Duration {
        if self.jitter <= 0.0 {
            return self.advertise_interval;
        }
        let spread: f64 = rand::random::<f64>() * 2.0 - 1.0;
        self.advertise_interval
            .mul_f64((1.0 + spread * self.jitter).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_intervals_stay_in_range() {
        let c = PeerConfig::default()
            .advertise_interval(Duration::from_millis(1000))
            .jitter(0.2);
        for _ in 0..200 {
            let d = c.next_interval();
            assert!(
                d >= Duration::from_millis(800) && d <= Duration::from_millis(1200),
                "{d:?}"
            );
        }
        let fixed = c.clone().jitter(0.0);
        assert_eq!(fixed.next_interval(), Duration::from_millis(1000));
        assert_eq!(c.clone().jitter(f64::NAN).get_jitter(), 0.0);
        assert_eq!(c.jitter(9.0).get_jitter(), 0.5);
    }
}
