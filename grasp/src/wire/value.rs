//! [`Value`]: any CBOR data item, as an objective's value may be, and its encoding with `minicbor`.
//!
//! GRASP leaves an objective's value to the objective's specification: "a simple value or a data
//! structure of any kind, as long as it can be represented in CBOR" (RFC 8990, section 2.10.1).
//! So the value is kept as the CBOR data model itself, tags and simple values included, and
//! survives a decode and re-encode unchanged (up to the width of floats and of length headers,
//! which CBOR leaves to the encoder).

use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};

use super::error::{DecodeError, EncodeError};

/// How deeply arrays, maps and tags may nest in one message (the message's own array counts as
/// one level). Deeper input is refused with [`DecodeError::TooDeep`] before it can exhaust the
/// stack; a value deeper than this cannot be encoded either ([`EncodeError::TooDeep`]).
pub const MAX_DEPTH: usize = 32;

/// One CBOR data item (RFC 8949), as carried in an objective's value.
///
/// ```
/// use netaio_grasp::Value;
///
/// let v = Value::from(vec![Value::from("NZD"), Value::from(150)]);
/// assert_eq!(v.as_array().map(|a| a.len()), Some(2));
/// assert_eq!(v.as_array().unwrap()[1].as_i64(), Some(150));
/// // CBOR inside CBOR, tag 24, as the Python prototype sends it.
/// let embedded = Value::embedded_cbor(&v).unwrap();
/// assert_eq!(embedded.decode_embedded_cbor().unwrap(), v);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer, from -2^64 to 2^64 - 1 (major types 0 and 1).
    Integer(i128),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A UTF-8 text string.
    Text(String),
    /// An array.
    Array(Vec<Value>),
    /// A map, its pairs in the order received (duplicate keys are kept).
    Map(Vec<(Value, Value)>),
    /// A tagged item: the tag number and the item.
    Tag(u64, Box<Value>),
    /// `true` or `false`.
    Bool(bool),
    /// `null` (Python's `None`).
    Null,
    /// `undefined`.
    Undefined,
    /// Another simple value (0 to 19 or 32 to 255).
    Simple(u8),
    /// A floating-point number (sent as half, single or double precision).
    Float(f64),
}

impl Value {
    /// The integer, when it is one that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => i64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// The text, when it is a text string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The bytes, when it is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The items, when it is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The items, mutable, when it is an array.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// `value` encoded and wrapped as "encoded CBOR data item" (tag 24 around a byte string), the
    /// form RFC 8990's examples and the Python prototype use to carry a value opaquely.
    pub fn embedded_cbor(value: &Value) -> Result<Value, EncodeError> {
        Ok(Value::Tag(24, Box::new(Value::Bytes(value.to_cbor()?))))
    }

    /// The item inside tag 24 (or inside a plain byte string) decoded; `None` when this is
    /// neither or the bytes are not one well-formed CBOR item.
    pub fn decode_embedded_cbor(&self) -> Option<Value> {
        let bytes = match self {
            Value::Tag(24, inner) => inner.as_bytes()?,
            Value::Bytes(b) => b,
            _ => return None,
        };
        Value::from_cbor(bytes).ok()
    }

    /// This value as one CBOR item.
    pub fn to_cbor(&self) -> Result<Vec<u8>, EncodeError> {
        let mut e = Encoder::new(Vec::new());
        encode(&mut e, self, 0)?;
        Ok(e.into_writer())
    }

    /// Decode exactly one CBOR item (nothing may follow it).
    pub fn from_cbor(bytes: &[u8]) -> Result<Value, DecodeError> {
        let mut d = Decoder::new(bytes);
        let v = decode(&mut d, 0)?;
        let extra = bytes.len().saturating_sub(d.position());
        if extra > 0 {
            return Err(DecodeError::TrailingBytes { extra });
        }
        Ok(v)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                Value::Integer(i128::from(i))
            }
        }
    )*};
}
from_int!(u8, u16, u32, u64, i8, i16, i32, i64);

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::Array(items)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}

/// Map a `minicbor` decoding error to ours: running out of input is [`DecodeError::Truncated`]
/// (on a TCP stream: wait for more bytes), anything else is malformed CBOR.
pub(crate) fn cbor_error(e: minicbor::decode::Error) -> DecodeError {
    if e.is_end_of_input() {
        DecodeError::Truncated
    } else {
        DecodeError::Malformed {
            position: e.position(),
            reason: e.to_string(),
        }
    }
}

fn malformed(d: &Decoder<'_>, reason: &str) -> DecodeError {
    DecodeError::Malformed {
        position: Some(d.position()),
        reason: reason.to_owned(),
    }
}

/// Decode one item at `depth` (the number of arrays, maps and tags around it).
pub(crate) fn decode(d: &mut Decoder<'_>, depth: usize) -> Result<Value, DecodeError> {
    if depth >= MAX_DEPTH {
        return Err(DecodeError::TooDeep { max: MAX_DEPTH });
    }
    let ty = d.datatype().map_err(cbor_error)?;
    // An item takes at least one byte, so no count may exceed the bytes left: a length header
    // claiming more is refused (as truncated) before anything is allocated for it.
    let left = d.input().len().saturating_sub(d.position());
    Ok(match ty {
        Type::Bool => Value::Bool(d.bool().map_err(cbor_error)?),
        Type::Null => {
            d.null().map_err(cbor_error)?;
            Value::Null
        }
        Type::Undefined => {
            d.undefined().map_err(cbor_error)?;
            Value::Undefined
        }
        Type::U8
        | Type::U16
        | Type::U32
        | Type::U64
        | Type::I8
        | Type::I16
        | Type::I32
        | Type::I64
        | Type::Int => Value::Integer(i128::from(d.int().map_err(cbor_error)?)),
        Type::F16 | Type::F32 | Type::F64 => Value::Float(d.f64().map_err(cbor_error)?),
        Type::Simple => Value::Simple(d.simple().map_err(cbor_error)?),
        Type::Bytes => Value::Bytes(d.bytes().map_err(cbor_error)?.to_vec()),
        Type::BytesIndef => {
            let mut out = Vec::new();
            for chunk in d.bytes_iter().map_err(cbor_error)? {
                out.extend_from_slice(chunk.map_err(cbor_error)?);
            }
            Value::Bytes(out)
        }
        Type::String => Value::Text(d.str().map_err(cbor_error)?.to_owned()),
        Type::StringIndef => {
            let mut out = String::new();
            for chunk in d.str_iter().map_err(cbor_error)? {
                out.push_str(chunk.map_err(cbor_error)?);
            }
            Value::Text(out)
        }
        Type::Array | Type::ArrayIndef => {
            let len = d.array().map_err(cbor_error)?;
            let mut items = Vec::new();
            match len {
                Some(n) => {
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    if n > left {
                        return Err(DecodeError::Truncated);
                    }
                    items.reserve_exact(n);
                    for _ in 0..n {
                        items.push(decode(d, depth + 1)?);
                    }
                }
                None => {
                    while !at_break(d)? {
                        items.push(decode(d, depth + 1)?);
                    }
                }
            }
            Value::Array(items)
        }
        Type::Map | Type::MapIndef => {
            let len = d.map().map_err(cbor_error)?;
            let mut pairs = Vec::new();
            match len {
                Some(n) => {
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    if n > left / 2 {
                        return Err(DecodeError::Truncated);
                    }
                    pairs.reserve_exact(n);
                    for _ in 0..n {
                        let k = decode(d, depth + 1)?;
                        let v = decode(d, depth + 1)?;
                        pairs.push((k, v));
                    }
                }
                None => {
                    while !at_break(d)? {
                        let k = decode(d, depth + 1)?;
                        let v = decode(d, depth + 1)?;
                        pairs.push((k, v));
                    }
                }
            }
            Value::Map(pairs)
        }
        Type::Tag => {
            let tag = d.tag().map_err(cbor_error)?;
            Value::Tag(tag.as_u64(), Box::new(decode(d, depth + 1)?))
        }
        Type::Break => return Err(malformed(d, "unexpected break")),
        Type::Unknown(b) => {
            return Err(malformed(d, &format!("reserved initial byte {b:#04x}")));
        }
    })
}

/// True (and the break consumed) when the next byte ends an indefinite-length item.
fn at_break(d: &mut Decoder<'_>) -> Result<bool, DecodeError> {
    if d.datatype().map_err(cbor_error)? == Type::Break {
        // The break is the one byte 0xff.
        d.set_position(d.position() + 1);
        Ok(true)
    } else {
        Ok(false)
    }
}

type Enc = Encoder<Vec<u8>>;

/// Writing to a `Vec` cannot fail: `minicbor`'s results there carry an `Infallible` error.
fn written<T>(_: Result<T, minicbor::encode::Error<core::convert::Infallible>>) {}

/// Encode one item at `depth`.
pub(crate) fn encode(e: &mut Enc, v: &Value, depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(EncodeError::TooDeep { max: MAX_DEPTH });
    }
    match v {
        Value::Integer(i) => {
            let int = minicbor::data::Int::try_from(*i)
                .map_err(|_| EncodeError::IntegerOutOfRange(*i))?;
            written(e.int(int));
        }
        Value::Bytes(b) => written(e.bytes(b)),
        Value::Text(t) => written(e.str(t)),
        Value::Array(items) => {
            written(e.array(items.len() as u64));
            for item in items {
                encode(e, item, depth + 1)?;
            }
        }
        Value::Map(pairs) => {
            written(e.map(pairs.len() as u64));
            for (k, val) in pairs {
                encode(e, k, depth + 1)?;
                encode(e, val, depth + 1)?;
            }
        }
        Value::Tag(t, inner) => {
            written(e.tag(Tag::new(*t)));
            encode(e, inner, depth + 1)?;
        }
        Value::Bool(b) => written(e.bool(*b)),
        Value::Null => written(e.null()),
        Value::Undefined => written(e.undefined()),
        Value::Simple(s) => {
            // 20..=23 are false, true, null and undefined; 24..=31 are reserved (RFC 8949 3.3).
            if (20..32).contains(s) {
                return Err(EncodeError::ReservedSimple(*s));
            }
            written(e.simple(*s));
        }
        Value::Float(f) => {
            // The shortest of single and double precision that holds the value exactly.
            let single = *f as f32;
            if f64::from(single) == *f || f.is_nan() {
                written(e.f32(single));
            } else {
                written(e.f64(*f));
            }
        }
    }
    Ok(())
}
