//! [`Message`]: the eleven GRASP messages (RFC 8990 section 2.8) and their options.

use std::net::IpAddr;

use super::{Locator, Objective, Value};

/// A message type number (`MESSAGE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// `M_NOOP` (0).
    Noop = 0,
    /// `M_DISCOVERY` (1).
    Discovery = 1,
    /// `M_RESPONSE` (2).
    Response = 2,
    /// `M_REQ_NEG` (3).
    ReqNeg = 3,
    /// `M_REQ_SYN` (4).
    ReqSyn = 4,
    /// `M_NEGOTIATE` (5).
    Negotiate = 5,
    /// `M_END` (6).
    End = 6,
    /// `M_WAIT` (7).
    Wait = 7,
    /// `M_SYNCH` (8).
    Synch = 8,
    /// `M_FLOOD` (9).
    Flood = 9,
    /// `M_INVALID` (99).
    Invalid = 99,
}

impl MessageType {
    /// The type for `n`, if GRASP defines it.
    pub fn from_number(n: u64) -> Option<MessageType> {
        Some(match n {
            0 => MessageType::Noop,
            1 => MessageType::Discovery,
            2 => MessageType::Response,
            3 => MessageType::ReqNeg,
            4 => MessageType::ReqSyn,
            5 => MessageType::Negotiate,
            6 => MessageType::End,
            7 => MessageType::Wait,
            8 => MessageType::Synch,
            9 => MessageType::Flood,
            99 => MessageType::Invalid,
            _ => return None,
        })
    }

    /// Its number on the wire.
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// `O_DIVERT` (100).
pub const O_DIVERT: u8 = 100;
/// `O_ACCEPT` (101).
pub const O_ACCEPT: u8 = 101;
/// `O_DECLINE` (102).
pub const O_DECLINE: u8 = 102;
/// `O_IPv6_LOCATOR` (103).
pub const O_IPV6_LOCATOR: u8 = 103;
/// `O_IPv4_LOCATOR` (104).
pub const O_IPV4_LOCATOR: u8 = 104;
/// `O_FQDN_LOCATOR` (105).
pub const O_FQDN_LOCATOR: u8 = 105;
/// `O_URI_LOCATOR` (106).
pub const O_URI_LOCATOR: u8 = 106;

/// An option of a discovery response: a locator of the responder itself, or a divert option
/// pointing elsewhere (a relay answering from its cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseOption {
    /// A locator option.
    Locator(Locator),
    /// `[O_DIVERT, +locator-option]`.
    Divert(Vec<Locator>),
}

/// How a negotiation ends: the option of an `M_END`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `[O_ACCEPT]`.
    Accept,
    /// `[O_DECLINE, ?reason]`.
    Decline(Option<String>),
}

/// One flooded objective with its locator (`None`: the empty array, a null locator).
#[derive(Debug, Clone, PartialEq)]
pub struct FloodItem {
    /// The objective and its value.
    pub objective: Objective,
    /// Where its source can be reached, if given.
    pub locator: Option<Locator>,
}

/// A GRASP message.
///
/// ```
/// use netaio_grasp::{Message, Objective};
///
/// let m = Message::ReqSyn { session_id: 7, objective: Objective::new("EX2").synch(true) };
/// let bytes = m.encode().unwrap();
/// assert_eq!(Message::decode(&bytes, 2048).unwrap(), m);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `[M_NOOP]`.
    Noop,
    /// `[M_DISCOVERY, session-id, initiator, objective]`.
    Discovery {
        /// The session id.
        session_id: u32,
        /// The initiator's address (only to disambiguate the session id).
        initiator: IpAddr,
        /// What is looked for (with a value: rapid mode).
        objective: Objective,
    },
    /// `[M_RESPONSE, session-id, initiator, ttl, (+locator-option // divert-option), ?objective]`.
    Response {
        /// The discovery's session id.
        session_id: u32,
        /// The discovery's initiator.
        initiator: IpAddr,
        /// How long the answer is valid, in milliseconds (0: much longer than the default
        /// timeout).
        ttl: u32,
        /// The locators, or a divert option.
        options: Vec<ResponseOption>,
        /// The objective with its value (rapid mode).
        objective: Option<Objective>,
    },
    /// `[M_REQ_NEG, session-id, objective]`.
    ReqNeg {
        /// The session id.
        session_id: u32,
        /// The objective with the requested value.
        objective: Objective,
    },
    /// `[M_REQ_SYN, session-id, objective]`.
    ReqSyn {
        /// The session id.
        session_id: u32,
        /// The objective.
        objective: Objective,
    },
    /// `[M_NEGOTIATE, session-id, objective]`.
    Negotiate {
        /// The session id.
        session_id: u32,
        /// The objective with the proposed value.
        objective: Objective,
    },
    /// `[M_END, session-id, accept-option / decline-option]`.
    End {
        /// The session id.
        session_id: u32,
        /// Accept or decline.
        outcome: Outcome,
    },
    /// `[M_WAIT, session-id, waiting-time]`.
    Wait {
        /// The session id.
        session_id: u32,
        /// How long the peer asks to wait, in milliseconds.
        waiting_ms: u32,
    },
    /// `[M_SYNCH, session-id, objective]`.
    Synch {
        /// The session id.
        session_id: u32,
        /// The objective with its current value.
        objective: Objective,
    },
    /// `[M_FLOOD, session-id, initiator, ttl, +[objective, (locator-option / [])]]`.
    Flood {
        /// The session id.
        session_id: u32,
        /// The initiator's address.
        initiator: IpAddr,
        /// How long the values are valid, in milliseconds (0: indefinitely).
        ttl: u32,
        /// The flooded objectives.
        items: Vec<FloodItem>,
    },
    /// `[M_INVALID, session-id, ?any]`.
    Invalid {
        /// The session id of the message it answers.
        session_id: u32,
        /// Diagnostic information.
        content: Option<Value>,
    },
}

impl Message {
    /// Its type.
    pub fn kind(&self) -> MessageType {
        match self {
            Message::Noop => MessageType::Noop,
            Message::Discovery { .. } => MessageType::Discovery,
            Message::Response { .. } => MessageType::Response,
            Message::ReqNeg { .. } => MessageType::ReqNeg,
            Message::ReqSyn { .. } => MessageType::ReqSyn,
            Message::Negotiate { .. } => MessageType::Negotiate,
            Message::End { .. } => MessageType::End,
            Message::Wait { .. } => MessageType::Wait,
            Message::Synch { .. } => MessageType::Synch,
            Message::Flood { .. } => MessageType::Flood,
            Message::Invalid { .. } => MessageType::Invalid,
        }
    }

    /// Its session id (every message but `M_NOOP` has one).
    pub fn session_id(&self) -> Option<u32> {
        match self {
            Message::Noop => None,
            Message::Discovery { session_id, .. }
            | Message::Response { session_id, .. }
            | Message::ReqNeg { session_id, .. }
            | Message::ReqSyn { session_id, .. }
            | Message::Negotiate { session_id, .. }
            | Message::End { session_id, .. }
            | Message::Wait { session_id, .. }
            | Message::Synch { session_id, .. }
            | Message::Flood { session_id, .. }
            | Message::Invalid { session_id, .. } => Some(*session_id),
        }
    }

    /// Its initiator field (discovery, response and flood messages have one).
    pub fn initiator(&self) -> Option<IpAddr> {
        match self {
            Message::Discovery { initiator, .. }
            | Message::Response { initiator, .. }
            | Message::Flood { initiator, .. } => Some(*initiator),
            _ => None,
        }
    }
}
