//! A deterministic, in-process simulator of the [`proto`](crate::proto)col: nodes, links with
//! latency, no sockets.
//!
//! [`Network`] runs [`Protocol`](crate::proto::Protocol) nodes on a discrete-event queue: a seed
//! decides every random choice (latencies, the nodes' RNGs, senders, victims), so a run is
//! reproducible. Links have a latency drawn once per pair (10–50 ms by default); every message is
//! encoded and decoded with the wire format. Nodes can be killed and revived.
//!
//! On top, the scenarios and metrics of iroh-gossip's simulator ([`Scenario`], [`Senders`],
//! [`RoundStats`]: RMR, LDH, missed deliveries, time to deliver, over the seeds of its
//! `simulations/all.toml`), and three of our own: [`churn`] (mass failure), [`away`] (a node
//! returns after missing messages) and [`spam`] (nodes publishing messages without a valid proof
//! of work). The simulated application is [`SimHost`]: a store, and a flag byte in each payload
//! standing in for the proof of work.
//!
//! ```
//! use netaio_gossip::sim::{NetworkConfig, Scenario, Senders};
//!
//! let rounds = Scenario { senders: Senders::Single, nodes: 16, rounds: 3 }.run(&NetworkConfig::default(), 0);
//! assert!(rounds.iter().all(|r| r.missed == 0.0));
//! ```

mod host;
mod network;
mod report;
mod resilience;
mod rounds;

pub use host::{SimHost, payload};
pub use network::{Network, NetworkConfig, NodeEvent, NodeId};
pub use report::{SEEDS, ScenarioResult, table};
pub use resilience::{AwayReport, ChurnReport, SpamReport, away, churn, spam};
pub use rounds::{ROUND_TIMEOUT, RoundStats, Scenario, Senders, Simulator, TOPIC};
