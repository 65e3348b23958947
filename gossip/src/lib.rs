//! netaio-gossip: topics and bulletins spread to every interested node of a network by epidemic
//! gossip, with proof of work against spam.
//!
//! - The data model of the netaio author's Python `gossip` library: topics, bulletins with a
//!   tapehash proof of work ([`BulletinPolicy`]), the [`ContentStore`], a node's
//!   [`Subscriptions`]. I/O-free; time is passed in.
//! - [`proto`]: the dissemination protocol (HyParView membership, Plumtree broadcast,
//!   anti-entropy) as an I/O-free state machine, and [`sim`], a deterministic simulator of it.
//! - [`BulletinHost`]: the two joined, the protocol's application side over bulletins.
//! - `net` (feature `net`, on by default): `GossipNode`, the protocol run on netaio TCP
//!   connections.
#![forbid(unsafe_code)]

// The data model (topics, bulletins, proof of work, policy, store, subscriptions).
mod bulletin;
mod host;
mod ids;
mod policy;
mod store;
mod subscriptions;
mod work;

pub use bulletin::{Bulletin, BulletinHeader, DecodeError};
pub use host::BulletinHost;
pub use ids::{BEACON_DESCRIPTOR, BulletinId, ContentId, TopicId};
pub use netaio_tapehash::{Difficulty, Tapehash};
pub use policy::{BulletinPolicy, MintError, Refused, VerifiedBulletin};
pub use store::{ContentStore, Inserted, StoreConfig, StoreError};
pub use subscriptions::{DELIVERY_CODE_LEN, DeliveryCodeChanged, Subscriptions, TooManyTopics};
pub use work::{ProofOfWork, WorkNotFound};

// The protocol core (membership, broadcast, anti-entropy) and its simulator.
pub mod proto;
pub mod sim;

// The network binding: the protocol core on netaio TCP connections.
#[cfg(feature = "net")]
pub mod net;
#[cfg(feature = "net")]
pub use net::{Delivery, GossipEvent, GossipNode, GossipNodeBuilder, PublishOutcome, Subscription};
