//! Encoding and decoding of [`Message`]s: CBOR via [`Value`] (so `minicbor` does every byte),
//! then the message's structure checked against RFC 8990's CDDL (section 2.8 and 5).
//!
//! Decoding is bounded: the input is refused past the size limit before it is looked at, no
//! length header can make it allocate more than the input holds, nesting is capped at
//! [`MAX_DEPTH`](super::MAX_DEPTH), and every way the input can be wrong is a [`DecodeError`].
//!
//! Leniency, as RFC 8990 asks or the Python prototype does: options of a response that the
//! message type does not define are skipped ("SHOULD be silently discarded"), an initiator may
//! be any 16 (or 4) bytes, and a flags word may carry bits GRASP does not define.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use minicbor::{Decoder, Encoder};

use super::error::{DecodeError, EncodeError};
use super::message::{
    FloodItem, Message, MessageType, O_ACCEPT, O_DECLINE, O_DIVERT, O_FQDN_LOCATOR, O_IPV4_LOCATOR,
    O_IPV6_LOCATOR, O_URI_LOCATOR, Outcome, ResponseOption,
};
use super::objective::{Flags, Locator, Objective};
use super::value::{self, Value};

/// `GRASP_DEF_MAX_SIZE`: every node accepts unicast messages of at least this many bytes, and
/// sends none longer unless agreed for the objective.
pub const DEFAULT_MAX_SIZE: usize = 2048;

impl Message {
    /// Encode it as one CBOR item.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let v = to_value(self)?;
        let mut e = Encoder::new(Vec::new());
        value::encode(&mut e, &v, 0)?;
        Ok(e.into_writer())
    }

    /// Encode it, refusing a result longer than `max` bytes ([`EncodeError::TooLong`]).
    pub fn encode_limited(&self, max: usize) -> Result<Vec<u8>, EncodeError> {
        let bytes = self.encode()?;
        if bytes.len() > max {
            return Err(EncodeError::TooLong {
                len: bytes.len(),
                max,
            });
        }
        Ok(bytes)
    }

    /// Decode a datagram (or any input holding exactly one message) of at most `max` bytes.
    pub fn decode(bytes: &[u8], max: usize) -> Result<Message, DecodeError> {
        if bytes.len() > max {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                max,
            });
        }
        let (m, used) = Message::decode_prefix(bytes, max)?;
        let extra = bytes.len().saturating_sub(used);
        if extra > 0 {
            return Err(DecodeError::TrailingBytes { extra });
        }
        Ok(m)
    }

    /// Decode the message at the start of a stream buffer: the message and how many bytes it
    /// took. [`DecodeError::Truncated`] means more bytes may complete it, unless the buffer
    /// already holds `max` bytes: then the message is too long ([`DecodeError::TooLong`]).
    pub fn decode_prefix(bytes: &[u8], max: usize) -> Result<(Message, usize), DecodeError> {
        let window = bytes.get(..max).unwrap_or(bytes);
        let mut d = Decoder::new(window);
        let v = match value::decode(&mut d, 0) {
            Err(DecodeError::Truncated) if bytes.len() >= max => {
                return Err(DecodeError::TooLong {
                    len: bytes.len(),
                    max,
                });
            }
            other => other?,
        };
        Ok((from_value(v)?, d.position()))
    }
}

// ---- encoding ---------------------------------------------------------------------------------

fn int(n: impl Into<i128>) -> Value {
    Value::Integer(n.into())
}

fn initiator_value(a: &IpAddr) -> Value {
    match a {
        IpAddr::V6(v6) => Value::Bytes(v6.octets().to_vec()),
        IpAddr::V4(v4) => Value::Bytes(v4.octets().to_vec()),
    }
}

/// `objective` as its CBOR array (public within the crate: the relay re-encodes floods).
pub(crate) fn objective_value(o: &Objective) -> Value {
    let mut items = vec![
        Value::Text(o.name.clone()),
        int(o.flags.0),
        int(o.loop_count),
    ];
    if let Some(v) = &o.value {
        items.push(v.clone());
    }
    Value::Array(items)
}

fn locator_value(l: &Locator) -> Value {
    Value::Array(match l {
        Locator::Ipv6 {
            addr,
            protocol,
            port,
        } => vec![
            int(O_IPV6_LOCATOR),
            Value::Bytes(addr.octets().to_vec()),
            int(*protocol),
            int(*port),
        ],
        Locator::Ipv4 {
            addr,
            protocol,
            port,
        } => vec![
            int(O_IPV4_LOCATOR),
            Value::Bytes(addr.octets().to_vec()),
            int(*protocol),
            int(*port),
        ],
        Locator::Fqdn {
            name,
            protocol,
            port,
        } => vec![
            int(O_FQDN_LOCATOR),
            Value::Text(name.clone()),
            int(*protocol),
            int(*port),
        ],
        Locator::Uri {
            uri,
            protocol,
            port,
        } => vec![
            int(O_URI_LOCATOR),
            Value::Text(uri.clone()),
            protocol.map_or(Value::Null, int),
            port.map_or(Value::Null, int),
        ],
    })
}

fn to_value(m: &Message) -> Result<Value, EncodeError> {
    let head = |t: MessageType, sid: u32| vec![int(t.number()), int(sid)];
    let invalid = |mtype, what| EncodeError::Invalid { mtype, what };
    Ok(Value::Array(match m {
        Message::Noop => vec![int(MessageType::Noop.number())],
        Message::Discovery {
            session_id,
            initiator,
            objective,
        } => {
            let mut v = head(MessageType::Discovery, *session_id);
            v.push(initiator_value(initiator));
            v.push(objective_value(objective));
            v
        }
        Message::Response {
            session_id,
            initiator,
            ttl,
            options,
            objective,
        } => {
            let mut v = head(MessageType::Response, *session_id);
            v.push(initiator_value(initiator));
            v.push(int(*ttl));
            if options.is_empty() {
                return Err(invalid(MessageType::Response, "no locator option"));
            }
            for o in options {
                v.push(match o {
                    ResponseOption::Locator(l) => locator_value(l),
                    ResponseOption::Divert(ls) => {
                        if ls.is_empty() {
                            return Err(invalid(MessageType::Response, "empty divert option"));
                        }
                        let mut d = vec![int(O_DIVERT)];
                        d.extend(ls.iter().map(locator_value));
                        Value::Array(d)
                    }
                });
            }
            if let Some(o) = objective {
                v.push(objective_value(o));
            }
            v
        }
        Message::ReqNeg {
            session_id,
            objective,
        }
        | Message::ReqSyn {
            session_id,
            objective,
        }
        | Message::Negotiate {
            session_id,
            objective,
        }
        | Message::Synch {
            session_id,
            objective,
        } => {
            let mut v = head(m.kind(), *session_id);
            v.push(objective_value(objective));
            v
        }
        Message::End {
            session_id,
            outcome,
        } => {
            let mut v = head(MessageType::End, *session_id);
            v.push(Value::Array(match outcome {
                Outcome::Accept => vec![int(O_ACCEPT)],
                Outcome::Decline(None) => vec![int(O_DECLINE)],
                Outcome::Decline(Some(r)) => vec![int(O_DECLINE), Value::Text(r.clone())],
            }));
            v
        }
        Message::Wait {
            session_id,
            waiting_ms,
        } => {
            let mut v = head(MessageType::Wait, *session_id);
            v.push(int(*waiting_ms));
            v
        }
        Message::Flood {
            session_id,
            initiator,
            ttl,
            items,
        } => {
            let mut v = head(MessageType::Flood, *session_id);
            v.push(initiator_value(initiator));
            v.push(int(*ttl));
            if items.is_empty() {
                return Err(invalid(MessageType::Flood, "no objective"));
            }
            for it in items {
                v.push(Value::Array(vec![
                    objective_value(&it.objective),
                    it.locator
                        .as_ref()
                        .map_or(Value::Array(Vec::new()), locator_value),
                ]));
            }
            v
        }
        Message::Invalid {
            session_id,
            content,
        } => {
            let mut v = head(MessageType::Invalid, *session_id);
            if let Some(c) = content {
                v.push(c.clone());
            }
            v
        }
    }))
}

// ---- decoding ---------------------------------------------------------------------------------

/// Reads one message's items in order, for the structural checks.
struct Fields {
    mtype: MessageType,
    session_id: Option<u32>,
    items: std::vec::IntoIter<Value>,
}

impl Fields {
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError::Invalid {
            mtype: self.mtype,
            session_id: self.session_id,
            what,
        }
    }

    fn next(&mut self, what: &'static str) -> Result<Value, DecodeError> {
        self.items.next().ok_or_else(|| self.err(what))
    }

    fn end(&mut self) -> Result<(), DecodeError> {
        match self.items.next() {
            None => Ok(()),
            Some(_) => Err(self.err("unexpected extra item")),
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.next(what)?;
        as_uint(&v).ok_or_else(|| self.err(what))
    }

    fn initiator(&mut self) -> Result<IpAddr, DecodeError> {
        let v = self.next("missing initiator")?;
        initiator(&v).ok_or_else(|| self.err("initiator is not a 4- or 16-byte string"))
    }

    fn objective(&mut self) -> Result<Objective, DecodeError> {
        let v = self.next("missing objective")?;
        objective(v).map_err(|what| self.err(what))
    }
}

fn as_uint<T: TryFrom<i128>>(v: &Value) -> Option<T> {
    match v {
        Value::Integer(i) if *i >= 0 => T::try_from(*i).ok(),
        _ => None,
    }
}

fn initiator(v: &Value) -> Option<IpAddr> {
    let b = v.as_bytes()?;
    if let Ok(a) = <[u8; 16]>::try_from(b) {
        Some(IpAddr::V6(Ipv6Addr::from(a)))
    } else {
        <[u8; 4]>::try_from(b)
            .ok()
            .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
    }
}

/// An objective from its array; the error says what is wrong.
pub(crate) fn objective(v: Value) -> Result<Objective, &'static str> {
    let Value::Array(items) = v else {
        return Err("objective is not an array");
    };
    if !(3..=4).contains(&items.len()) {
        return Err("objective has the wrong number of items");
    }
    let mut it = items.into_iter();
    let (Some(Value::Text(name)), Some(flags), Some(lc)) = (it.next(), it.next(), it.next()) else {
        return Err("objective name is not text");
    };
    let flags = as_uint::<u64>(&flags).ok_or("objective flags are not an unsigned integer")?;
    let loop_count = as_uint::<u8>(&lc).ok_or("loop count is not 0 to 255")?;
    Ok(Objective {
        name,
        flags: Flags(flags),
        loop_count,
        value: it.next(),
    })
}

/// The option number at the head of an option array, if it is one.
fn option_number(v: &Value) -> Option<u64> {
    v.as_array()?.first().and_then(as_uint::<u64>)
}

/// A locator option; the error says what is wrong.
fn locator(v: Value) -> Result<Locator, &'static str> {
    let Value::Array(items) = v else {
        return Err("locator option is not an array");
    };
    let [kind, what, proto, port] = <[Value; 4]>::try_from(items)
        .map_err(|_| "locator option has the wrong number of items")?;
    let kind = as_uint::<u8>(&kind).ok_or("locator option number is not an integer")?;
    let proto_u8 = || as_uint::<u8>(&proto).ok_or("locator protocol is not 0 to 255");
    let port_u16 = || as_uint::<u16>(&port).ok_or("locator port is not 0 to 65535");
    match kind {
        O_IPV6_LOCATOR => {
            let a = what
                .as_bytes()
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .ok_or("IPv6 locator is not 16 bytes")?;
            Ok(Locator::Ipv6 {
                addr: Ipv6Addr::from(a),
                protocol: proto_u8()?,
                port: port_u16()?,
            })
        }
        O_IPV4_LOCATOR => {
            let a = what
                .as_bytes()
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .ok_or("IPv4 locator is not 4 bytes")?;
            Ok(Locator::Ipv4 {
                addr: Ipv4Addr::from(a),
                protocol: proto_u8()?,
                port: port_u16()?,
            })
        }
        O_FQDN_LOCATOR => {
            let Value::Text(name) = what else {
                return Err("FQDN locator is not text");
            };
            Ok(Locator::Fqdn {
                name,
                protocol: proto_u8()?,
                port: port_u16()?,
            })
        }
        O_URI_LOCATOR => {
            let Value::Text(uri) = what else {
                return Err("URI locator is not text");
            };
            let protocol = match proto {
                Value::Null => None,
                _ => Some(proto_u8()?),
            };
            let port = match port {
                Value::Null => None,
                _ => Some(port_u16()?),
            };
            Ok(Locator::Uri {
                uri,
                protocol,
                port,
            })
        }
        _ => Err("not a locator option"),
    }
}

fn is_locator_number(n: u64) -> bool {
    (u64::from(O_IPV6_LOCATOR)..=u64::from(O_URI_LOCATOR)).contains(&n)
}

fn from_value(v: Value) -> Result<Message, DecodeError> {
    let Value::Array(items) = v else {
        return Err(DecodeError::NotAMessage);
    };
    let mut it = items.into_iter();
    let mtype_num = it
        .next()
        .as_ref()
        .and_then(as_uint::<u64>)
        .ok_or(DecodeError::NotAMessage)?;
    let rest: Vec<Value> = it.collect();
    let session_id = rest.first().and_then(as_uint::<u32>);
    let Some(mtype) = MessageType::from_number(mtype_num) else {
        return Err(DecodeError::UnknownType {
            mtype: mtype_num,
            session_id,
        });
    };
    let mut f = Fields {
        mtype,
        session_id,
        items: rest.into_iter(),
    };
    if mtype == MessageType::Noop {
        f.end()?;
        return Ok(Message::Noop);
    }
    let session_id = f.u32("session id is not 0 to 2^32 - 1")?;
    let m = match mtype {
        MessageType::Noop => Message::Noop,
        MessageType::Discovery => {
            let initiator = f.initiator()?;
            let objective = f.objective()?;
            f.end()?;
            Message::Discovery {
                session_id,
                initiator,
                objective,
            }
        }
        MessageType::Response => {
            let initiator = f.initiator()?;
            let ttl = f.u32("ttl is not 0 to 2^32 - 1")?;
            let mut options = Vec::new();
            let mut objective_seen = None;
            for item in f.items.by_ref() {
                if objective_seen.is_some() {
                    return Err(DecodeError::Invalid {
                        mtype,
                        session_id: Some(session_id),
                        what: "item after the objective",
                    });
                }
                let invalid = |what| DecodeError::Invalid {
                    mtype,
                    session_id: Some(session_id),
                    what,
                };
                match option_number(&item) {
                    Some(n) if n == u64::from(O_DIVERT) => {
                        let Value::Array(parts) = item else {
                            return Err(invalid("divert option is not an array"));
                        };
                        let locs = parts
                            .into_iter()
                            .skip(1)
                            .map(locator)
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(invalid)?;
                        if locs.is_empty() {
                            return Err(invalid("empty divert option"));
                        }
                        options.push(ResponseOption::Divert(locs));
                    }
                    Some(n) if is_locator_number(n) => {
                        options.push(ResponseOption::Locator(locator(item).map_err(invalid)?));
                    }
                    // An option this message type does not define: discarded (RFC 8990 2.8.2).
                    Some(n) => tracing::debug!(option = n, "M_RESPONSE: option ignored"),
                    None => objective_seen = Some(objective(item).map_err(invalid)?),
                }
            }
            if options.is_empty() {
                return Err(f.err("no locator option"));
            }
            Message::Response {
                session_id,
                initiator,
                ttl,
                options,
                objective: objective_seen,
            }
        }
        MessageType::ReqNeg | MessageType::ReqSyn | MessageType::Negotiate | MessageType::Synch => {
            let objective = f.objective()?;
            f.end()?;
            match mtype {
                MessageType::ReqNeg => Message::ReqNeg {
                    session_id,
                    objective,
                },
                MessageType::ReqSyn => Message::ReqSyn {
                    session_id,
                    objective,
                },
                MessageType::Negotiate => Message::Negotiate {
                    session_id,
                    objective,
                },
                _ => Message::Synch {
                    session_id,
                    objective,
                },
            }
        }
        MessageType::End => {
            let opt = f.next("missing accept or decline option")?;
            f.end()?;
            let Value::Array(parts) = opt else {
                return Err(f.err("end option is not an array"));
            };
            let mut p = parts.into_iter();
            let num = p.next().as_ref().and_then(as_uint::<u64>);
            let outcome = match (num, p.next(), p.next()) {
                (Some(n), None, None) if n == u64::from(O_ACCEPT) => Outcome::Accept,
                (Some(n), None, None) if n == u64::from(O_DECLINE) => Outcome::Decline(None),
                (Some(n), Some(Value::Text(r)), None) if n == u64::from(O_DECLINE) => {
                    Outcome::Decline(Some(r))
                }
                _ => return Err(f.err("not an accept or decline option")),
            };
            Message::End {
                session_id,
                outcome,
            }
        }
        MessageType::Wait => {
            let waiting_ms = f.u32("waiting time is not 0 to 2^32 - 1")?;
            f.end()?;
            Message::Wait {
                session_id,
                waiting_ms,
            }
        }
        MessageType::Flood => {
            let initiator = f.initiator()?;
            let ttl = f.u32("ttl is not 0 to 2^32 - 1")?;
            let mut items = Vec::new();
            while let Some(item) = f.items.next() {
                let Value::Array(pair) = item else {
                    return Err(f.err("flood item is not an array"));
                };
                let Ok([obj, loc]) = <[Value; 2]>::try_from(pair) else {
                    return Err(f.err("flood item is not [objective, locator]"));
                };
                let objective = objective(obj).map_err(|what| f.err(what))?;
                let locator = match loc {
                    Value::Array(a) if a.is_empty() => None,
                    other => Some(locator(other).map_err(|what| f.err(what))?),
                };
                items.push(FloodItem { objective, locator });
            }
            if items.is_empty() {
                return Err(f.err("no objective"));
            }
            Message::Flood {
                session_id,
                initiator,
                ttl,
                items,
            }
        }
        MessageType::Invalid => {
            let content = f.items.next();
            f.end()?;
            Message::Invalid {
                session_id,
                content,
            }
        }
    };
    Ok(m)
}
