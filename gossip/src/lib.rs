//! netaio-gossip: topics and bulletins spread to every interested node of a network by epidemic
//! gossip, with proof of work against spam.
//!
//! Work in progress (issue 15): the data model of the netaio author's Python `gossip` library
//! (topics, bulletins, tapehash proof of work) and an I/O-free protocol core with a simulator.
#![forbid(unsafe_code)]

pub mod proto;
pub mod sim;
