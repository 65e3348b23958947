//! The rules of RFC 8990 that [`Core`] enforces, each tested with injected time: discovery
//! answers and their locators, relaying (loop counts, once per session, the rate limit,
//! `O_DIVERT` from the cache), the flood cache, DULL mode, request decisions, `M_INVALID`, and
//! the 2,048-byte limit. One file per group of rules; the helpers are here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default
)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use super::*;
use crate::wire::{
    DecodeError, FloodItem, Locator, Message, MessageType, Objective, ResponseOption, Value,
};

const IF1: u32 = 2;
const IF2: u32 = 3;

fn ll(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n)
}

fn iface(index: u32, n: u16) -> CoreInterface {
    CoreInterface {
        index,
        link_local: Some(ll(n)),
        ipv4: None,
    }
}

/// A counter as the "random" source: session ids are 1000, 1001, …
fn counter(start: u32) -> Box<dyn FnMut() -> u32 + Send> {
    let mut n = start;
    Box::new(move || {
        n += 1;
        n
    })
}

fn node(interfaces: Vec<CoreInterface>, address: Option<&str>) -> Core {
    let mut c = CoreConfig::default();
    c.interfaces = interfaces;
    c.address = address.map(|a| a.parse().unwrap());
    Core::new(c, counter(1000))
}

fn peer(n: u16, port: u16, ifindex: u32) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(ll(n), port, 0, ifindex))
}

fn discovery(sid: u32, initiator: &str, obj: Objective) -> Vec<u8> {
    Message::Discovery {
        session_id: sid,
        initiator: initiator.parse().unwrap(),
        objective: obj,
    }
    .encode()
    .unwrap()
}

fn decode(bytes: &[u8]) -> Message {
    Message::decode(bytes, 1 << 20).unwrap()
}

/// A node listening for EX3 on port 4000.
fn ex3_listener(address: Option<&str>) -> (Core, AsaId) {
    let mut n = node(vec![iface(IF1, 1)], address);
    let asa = n.register_asa("Briggs").unwrap();
    let ex3 = Objective::new("EX3").neg(true).loop_count(8);
    n.register_obj(asa, &ex3, RegisterOptions::default(), 4000)
        .unwrap();
    n.listen_negotiate(asa, &ex3).unwrap();
    (n, asa)
}

fn responses(out: &[Output]) -> Vec<(SocketAddr, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Respond { to, bytes } => Some((*to, decode(bytes))),
            _ => None,
        })
        .collect()
}

fn multicasts(out: &[Output]) -> Vec<(u32, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Multicast { ifindex, bytes, .. } => Some((*ifindex, decode(bytes))),
            _ => None,
        })
        .collect()
}

mod discovery;
mod relay_and_flood;
mod requests;
