//! [`Config`]: the protocol's parameters and bounds.

use std::time::Duration;

use super::wire::Limits;

/// The longest interval or timeout accepted: longer values are clamped (a deadline computed from
/// `Duration::MAX` would overflow).
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);
const SHORTEST: Duration = Duration::from_millis(1);

/// The protocol's parameters. Nodes of one swarm should share them (the walk lengths and the hop
/// budget especially).
///
/// Membership (HyParView; the defaults are the paper's, as iroh-gossip uses them):
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `active_view` | 5 | neighbours (open connections) kept |
/// | `passive_view` | 30 | known peers kept to replace neighbours |
/// | `active_walk` | 6 | hops of a `ForwardJoin` walk (a new node becomes a neighbour where it ends) |
/// | `passive_walk` | 3 | hops left at which a `ForwardJoin` adds the new node to the passive view |
/// | `shuffle_walk` | 6 | hops of a `Shuffle` walk |
/// | `shuffle_active`, `shuffle_passive` | 3, 4 | active and passive peers sampled into a `Shuffle` |
/// | `shuffle_interval` | 60 s | time between two shuffles (also when an isolated node rejoins) |
/// | `neighbor_timeout` | 500 ms | a `Neighbor` request unanswered this long failed: the peer leaves the passive view |
/// | `ban_duration`, `max_banned` | 10 min, 1,024 | a peer that sent an invalid message is refused this long; the ban list's size |
///
/// Broadcast (Plumtree):
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `eager_new_neighbors` | false | whether a new neighbour starts on the tree (eager) or off it (lazy; the tree then grows by grafts) |
/// | `graft_timeout` | 300 ms | wait, after a message is announced, for it to arrive along the tree before grafting |
/// | `graft_window` | 5 ms | with no eager neighbour, wait this long after the first announcement, then graft the announcer with the fewest hops |
/// | `graft_retry` | 100 ms | wait for a graft's answer before grafting from the next announcer (about a round trip) |
/// | `tree_check` | 2 s | after a graft that did not join the tree, wait this long for the tree's copy; none: join the link |
/// | `ihave_delay` | 5 ms | announcements are batched this long |
/// | `optimization_threshold` | 0 (off) | hops by which an announcement must beat the tree's delivery for the tree to be rewired (the paper's optimization; iroh-gossip uses 7) |
/// | `max_hops` | 64 | hop budget: a message is not forwarded past this many hops (random senders on 1,000 nodes reach 31) |
/// | `seen_lifetime`, `seen_capacity` | 5 min, 65,536 | ids of messages seen, for dedup; the lifetime must exceed the longest propagation time |
/// | `payload_cache_lifetime`, `payload_cache_messages`, `payload_cache_bytes` | 30 s, 4,096, 16 MiB | recent payloads kept to answer grafts |
/// | `max_missing` | 4,096 | announced messages being waited for |
///
/// Topics and anti-entropy:
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `max_topics` | 256 | topics one node subscribes to (and remembers per neighbour) |
/// | `sync_interval` | 30 s | time between two anti-entropy exchanges (with one random neighbour; also on each new link) |
/// | `sync_answer_gap` | 1 s | a neighbour's sync requests for one topic are answered at most once per this time |
/// | `max_fetching` | 4,096 | ids being fetched at once |
///
/// Back-pressure and wire limits:
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `queue_messages`, `queue_bytes` | 1,024, 1 MiB | per-peer send queue; beyond it the lowest-priority messages are dropped and a `SlowPeer` event is emitted |
/// | `limits` | [`Limits::default`] | largest payload (60 KiB) and lists a message may carry |
///
/// Validation by the application (a daemon asking its local modules, say):
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `hold_subscribed` | false | a valid message of a subscribed topic is held (reported as [`Event::Held`](super::Event::Held), neither stored nor forwarded) until [`Protocol::release`](super::Protocol::release) |
/// | `relay_unsubscribed` | true | whether messages of topics this node does not subscribe to are relayed (false: ignored) |
/// | `max_held`, `max_held_bytes` | 256, 4 MiB | messages held at once; beyond either bound the oldest is dropped unforwarded |
///
/// Setters take the plain names and consume the config; getters are `get_`-prefixed.
///
/// ```
/// use std::time::Duration;
/// use netaio_gossip::proto::Config;
///
/// let config = Config::default().active_view(8).shuffle_interval(Duration::from_secs(30));
/// assert_eq!(config.get_active_view(), 8);
/// assert_eq!(config.get_passive_view(), 30);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) active_view: usize,
    pub(crate) passive_view: usize,
    pub(crate) active_walk: u8,
    pub(crate) passive_walk: u8,
    pub(crate) shuffle_walk: u8,
    pub(crate) shuffle_active: usize,
    pub(crate) shuffle_passive: usize,
    pub(crate) shuffle_interval: Duration,
    pub(crate) neighbor_timeout: Duration,
    pub(crate) ban_duration: Duration,
    pub(crate) max_banned: usize,
    pub(crate) eager_new_neighbors: bool,
    pub(crate) graft_timeout: Duration,
    pub(crate) graft_window: Duration,
    pub(crate) graft_retry: Duration,
    pub(crate) tree_check: Duration,
    pub(crate) ihave_delay: Duration,
    pub(crate) optimization_threshold: u8,
    pub(crate) max_hops: u8,
    pub(crate) seen_lifetime: Duration,
    pub(crate) seen_capacity: usize,
    pub(crate) payload_cache_lifetime: Duration,
    pub(crate) payload_cache_messages: usize,
    pub(crate) payload_cache_bytes: usize,
    pub(crate) max_missing: usize,
    pub(crate) max_topics: usize,
    pub(crate) sync_interval: Duration,
    pub(crate) sync_answer_gap: Duration,
    pub(crate) max_fetching: usize,
    pub(crate) queue_messages: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) limits: Limits,
    pub(crate) hold_subscribed: bool,
    pub(crate) relay_unsubscribed: bool,
    pub(crate) max_held: usize,
    pub(crate) max_held_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            active_view: 5,
            passive_view: 30,
            active_walk: 6,
            passive_walk: 3,
            shuffle_walk: 6,
            shuffle_active: 3,
            shuffle_passive: 4,
            shuffle_interval: Duration::from_secs(60),
            neighbor_timeout: Duration::from_millis(500),
            ban_duration: Duration::from_secs(600),
            max_banned: 1024,
            eager_new_neighbors: false,
            graft_timeout: Duration::from_millis(300),
            graft_window: Duration::from_millis(5),
            graft_retry: Duration::from_millis(100),
            tree_check: Duration::from_secs(2),
            ihave_delay: Duration::from_millis(5),
            optimization_threshold: 0,
            max_hops: 64,
            seen_lifetime: Duration::from_secs(300),
            seen_capacity: 65_536,
            payload_cache_lifetime: Duration::from_secs(30),
            payload_cache_messages: 4096,
            payload_cache_bytes: 16 << 20,
            max_missing: 4096,
            max_topics: 256,
            sync_interval: Duration::from_secs(30),
            sync_answer_gap: Duration::from_secs(1),
            max_fetching: 4096,
            queue_messages: 1024,
            queue_bytes: 1 << 20,
            limits: Limits::default(),
            hold_subscribed: false,
            relay_unsubscribed: true,
            max_held: 256,
            max_held_bytes: 4 << 20,
        }
    }
}

/// Setter (plain name, consuming) and getter (`get_` name) for one field, with a clamp.
macro_rules! setting {
    ($(#[$doc:meta])* $name:ident, $get:ident: $ty:ty, |$v:ident| $clamp:expr) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, $v: $ty) -> Self {
            self.$name = $clamp;
            self
        }

        $(#[$doc])*
        pub fn $get(&self) -> $ty {
            self.$name
        }
    };
}

fn time(d: Duration) -> Duration {
    d.clamp(SHORTEST, LONGEST)
}

impl Config {
    /// The defaults (see the tables above).
    pub fn new() -> Self {
        Self::default()
    }

    setting!(
        /// Neighbours kept (default 5, at least 1).
        active_view, get_active_view: usize, |n| n.max(1));
    setting!(
        /// Known peers kept besides the neighbours (default 30).
        passive_view, get_passive_view: usize, |n| n);
    setting!(
        /// Hops of a `ForwardJoin` random walk (default 6).
        active_walk, get_active_walk: u8, |n| n);
    setting!(
        /// Hops left at which a `ForwardJoin` puts the new node in the passive view (default 3).
        passive_walk, get_passive_walk: u8, |n| n);
    setting!(
        /// Hops of a `Shuffle` random walk (default 6).
        shuffle_walk, get_shuffle_walk: u8, |n| n);
    setting!(
        /// Active peers sampled into a shuffle (default 3).
        shuffle_active, get_shuffle_active: usize, |n| n);
    setting!(
        /// Passive peers sampled into a shuffle (default 4).
        shuffle_passive, get_shuffle_passive: usize, |n| n);
    setting!(
        /// Time between two shuffles (default 60 s).
        shuffle_interval, get_shuffle_interval: Duration, |d| time(d));
    setting!(
        /// Time a `Neighbor` request may stay unanswered (default 500 ms).
        neighbor_timeout, get_neighbor_timeout: Duration, |d| time(d));
    setting!(
        /// Time a peer that sent an invalid message stays refused (default 10 min).
        ban_duration, get_ban_duration: Duration, |d| time(d));
    setting!(
        /// Peers remembered as banned; the oldest ban ends early beyond it (default 1,024).
        max_banned, get_max_banned: usize, |n| n);
    setting!(
        /// Whether a new neighbour starts eager, on the broadcast tree (default false: lazy, the
        /// tree grows from grafts, and the first messages do not flood the overlay).
        eager_new_neighbors, get_eager_new_neighbors: bool, |b| b);
    setting!(
        /// Wait for an announced message to arrive along the tree before grafting it
        /// (default 300 ms).
        graft_timeout, get_graft_timeout: Duration, |d| time(d));
    setting!(
        /// With no eager neighbour, the wait after a first announcement before grafting the
        /// announcer with the fewest hops (default 5 ms; zero grafts the first announcer at once).
        graft_window, get_graft_window: Duration, |d| d.min(LONGEST));
    setting!(
        /// Wait for a graft's answer before asking the next announcer (default 100 ms).
        graft_retry, get_graft_retry: Duration, |d| time(d));
    setting!(
        /// After a graft that did not join the tree, how long to wait for the tree's copy before
        /// joining the link (default 2 s).
        tree_check, get_tree_check: Duration, |d| time(d));
    setting!(
        /// Time announcements are batched before they are sent (default 5 ms).
        ihave_delay, get_ihave_delay: Duration, |d| time(d));
    setting!(
        /// Hops by which an announcement must beat the tree for the tree to be rewired
        /// (default 0: off; the paper's optimization rewires the tree toward one sender, which with
        /// several senders costs more than it saves).
        optimization_threshold, get_optimization_threshold: u8, |n| n);
    setting!(
        /// The hop budget: most hops a message travels by push (default 64, at least 1).
        max_hops, get_max_hops: u8, |n| n.max(1));
    setting!(
        /// Time an id is remembered as seen (default 5 min).
        seen_lifetime, get_seen_lifetime: Duration, |d| time(d));
    setting!(
        /// Ids remembered as seen; the oldest are forgotten beyond it (default 65,536).
        seen_capacity, get_seen_capacity: usize, |n| n.max(1));
    setting!(
        /// Time a payload is kept to answer grafts (default 30 s).
        payload_cache_lifetime, get_payload_cache_lifetime: Duration, |d| time(d));
    setting!(
        /// Payloads kept to answer grafts (default 4,096).
        payload_cache_messages, get_payload_cache_messages: usize, |n| n);
    setting!(
        /// Bytes of payloads kept to answer grafts (default 16 MiB).
        payload_cache_bytes, get_payload_cache_bytes: usize, |n| n);
    setting!(
        /// Announced messages waited for at once; further announcements are ignored
        /// (default 4,096).
        max_missing, get_max_missing: usize, |n| n);
    setting!(
        /// Topics a node subscribes to, and remembers per neighbour (default 256).
        max_topics, get_max_topics: usize, |n| n);
    setting!(
        /// Time between two anti-entropy exchanges (default 30 s).
        sync_interval, get_sync_interval: Duration, |d| time(d));
    setting!(
        /// Least time between two answers to one neighbour's sync requests for one topic
        /// (default 1 s).
        sync_answer_gap, get_sync_answer_gap: Duration, |d| d.min(LONGEST));
    setting!(
        /// Ids being fetched at once (default 4,096).
        max_fetching, get_max_fetching: usize, |n| n);
    setting!(
        /// Messages queued for one peer (default 1,024, at least 1).
        queue_messages, get_queue_messages: usize, |n| n.max(1));
    setting!(
        /// Bytes queued for one peer (default 1 MiB).
        queue_bytes, get_queue_bytes: usize, |n| n);
    setting!(
        /// Largest payload and lists a message may carry, sent or received.
        limits, get_limits: Limits, |l| l);
    setting!(
        /// Whether a valid message of a subscribed topic is held for the application's verdict
        /// (default false): reported as [`Event::Held`](super::Event::Held), it is neither stored
        /// nor forwarded until [`Protocol::release`](super::Protocol::release).
        hold_subscribed, get_hold_subscribed: bool, |b| b);
    setting!(
        /// Whether messages of topics this node does not subscribe to are relayed (default true:
        /// every node relays every topic); false ignores them.
        relay_unsubscribed, get_relay_unsubscribed: bool, |b| b);
    setting!(
        /// Messages held at once; beyond it the oldest is dropped unforwarded (default 256).
        max_held, get_max_held: usize, |n| n.max(1));
    setting!(
        /// Bytes of payloads held at once (default 4 MiB).
        max_held_bytes, get_max_held_bytes: usize, |n| n);
}
