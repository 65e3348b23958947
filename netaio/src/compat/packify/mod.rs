//! The value encoding of Python's `packify` 0.4.0, for the subset netaio puts on the wire: `None`,
//! `bool`, `int` (any size), `bytes`, `str`, `tuple`, `list` and `dict`.
//!
//! Python netaio encodes its auth block (a `dict` of field name to bytes) and its peer adverts
//! (an `(id, data)` tuple, the data itself a packed `dict`) with `packify.pack`. [`encode`] and
//! [`decode`] reproduce that byte for byte:
//!
//! - every value starts with a code byte: the top two bits give the width of the length (or of a
//!   small int) that follows (`0x40` one byte, `0x80` two, `0xC0` four, big-endian), the low six
//!   bits the type;
//! - a container (`tuple`, `list`, `dict`) is its code, the width of its item lengths, its item
//!   count, one length per item, then the encoded items;
//! - a `dict` is a container of encoded `(key, value)` tuples **sorted by their encoded bytes**,
//!   so the encoding of a dict does not depend on its order;
//! - ints up to 2³²−1 are a code and 1, 2 or 4 bytes; larger ones a byte count and the
//!   big-endian magnitude.
//!
//! Decoding follows Python's `packify.unpack`, with its tolerance:
//!
//! - **bytes after a complete value are ignored**, at the top level and inside each container
//!   item (`4103616263ffff` decodes to `b"abc"`); [`decode_prefix`] tells how many bytes the
//!   value used, for callers that want to be strict;
//! - any nonzero bool byte is `true`; the length category of `None` and `bool` is ignored;
//! - a `bytearray` (type 2) decodes as [`Value::Bytes`];
//! - a dict whose key appears twice keeps the first key and the last value, and `True`/`1`,
//!   `False`/`0` are the same key, as in a Python dict.
//!
//! It is stricter where Python would crash or where a type is outside the subset: floats,
//! `Decimal`, sets and `Packable` classes give [`PackifyError::Unsupported`], nesting is limited to
//! [`MAX_DEPTH`] levels, and every malformed input is a [`PackifyError`], never a panic.
//!
//! ```
//! use netaio::compat::packify::{self, Value};
//!
//! let value = Value::Dict(vec![
//!     (Value::from("b"), Value::from(1)),
//!     (Value::from("a"), Value::bytes(&b"x"[..])),
//! ]);
//! let bytes = packify::encode(&value).unwrap();
//! // Python: packify.pack({'b': 1, 'a': b'x'}).hex()
//! assert_eq!(hex::encode(&bytes), "4d40020a0b4c4002030243016244014c40020303430161410178");
//! assert_eq!(packify::decode(&bytes).unwrap(), value);
//! ```

use std::fmt;

use bytes::Bytes;

mod decode;
mod encode;

pub use decode::{decode, decode_bytes, decode_prefix};
pub(crate) use encode::{DICT, TUPLE, put_bytes, put_container, put_str};
pub use encode::{encode, encode_into};

/// The deepest nesting of containers [`decode`] accepts (the top-level value is depth 0).
pub const MAX_DEPTH: usize = 64;

// Type ids (the low six bits of a code byte).
pub(super) const T_NONE: u8 = 0;
pub(super) const T_BYTES: u8 = 1;
pub(super) const T_BYTEARRAY: u8 = 2;
pub(super) const T_STR: u8 = 3;
pub(super) const T_INT: u8 = 4;
pub(super) const T_NEG_INT: u8 = 5;
pub(super) const T_BOOL: u8 = 6;
pub(super) const T_FLOAT: u8 = 7;
pub(super) const T_DECIMAL: u8 = 8;
pub(super) const T_LIST: u8 = 10;
pub(super) const T_SET: u8 = 11;
pub(super) const T_TUPLE: u8 = 12;
pub(super) const T_DICT: u8 = 13;
pub(super) const T_BIG_INT: u8 = 14;
pub(super) const T_BIG_NEG: u8 = 15;
pub(super) const T_PACKABLE: u8 = 20;

// Length categories (the top two bits of a code byte).
pub(super) const CAT1: u8 = 0x40;
pub(super) const CAT2: u8 = 0x80;
pub(super) const CAT3: u8 = 0xC0;

/// A value of the packify subset.
///
/// Equality is Python's for the subset, except that `True == 1` only holds for dict keys: two
/// [`Value::Dict`]s are equal when they hold the same pairs in any order.
#[derive(Clone)]
pub enum Value {
    /// Python `None`.
    None,
    /// Python `bool`.
    Bool(bool),
    /// Python `int`, of any size.
    Int(Int),
    /// Python `bytes` (a `bytearray` decodes to this too).
    Bytes(Bytes),
    /// Python `str`.
    Str(String),
    /// Python `tuple`.
    Tuple(Vec<Value>),
    /// Python `list`.
    List(Vec<Value>),
    /// Python `dict`, as `(key, value)` pairs. The encoding sorts the pairs, so their order here
    /// does not matter; keys should be unique (a decoded dict's keys are).
    Dict(Vec<(Value, Value)>),
}

/// An integer of any size: a sign and a big-endian magnitude without leading zero bytes (zero
/// has an empty magnitude and is never negative).
///
/// ```
/// use netaio::compat::packify::Int;
///
/// let big = Int::from_magnitude(false, &[1, 0, 0, 0, 0]);
/// assert_eq!(big.to_u64(), Some(1 << 32));
/// assert_eq!(Int::from(-300).to_i64(), Some(-300));
/// assert_eq!(Int::from(0u8).magnitude(), &[] as &[u8]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Int {
    negative: bool,
    magnitude: Vec<u8>,
}

impl Int {
    /// An int from a sign and a big-endian magnitude (leading zero bytes are dropped; zero is
    /// never negative).
    pub fn from_magnitude(negative: bool, magnitude: &[u8]) -> Self {
        let start = magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(magnitude.len());
        let magnitude = magnitude.get(start..).unwrap_or_default().to_vec();
        Self {
            negative: negative && !magnitude.is_empty(),
            magnitude,
        }
    }

    /// True for a value below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The absolute value, big-endian, without leading zero bytes.
    pub fn magnitude(&self) -> &[u8] {
        &self.magnitude
    }

    /// The absolute value, when it fits in a `u128`.
    fn magnitude_u128(&self) -> Option<u128> {
        if self.magnitude.len() > 16 {
            return None;
        }
        Some(
            self.magnitude
                .iter()
                .fold(0u128, |acc, b| (acc << 8) | u128::from(*b)),
        )
    }

    /// The value as an `i128`, when it fits.
    pub fn to_i128(&self) -> Option<i128> {
        let m = self.magnitude_u128()?;
        if self.negative {
            0i128.checked_sub_unsigned(m)
        } else {
            i128::try_from(m).ok()
        }
    }

    /// The value as an `i64`, when it fits.
    pub fn to_i64(&self) -> Option<i64> {
        self.to_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// The value as a `u64`, when it fits (not for negative values).
    pub fn to_u64(&self) -> Option<u64> {
        self.to_i128().and_then(|v| u64::try_from(v).ok())
    }
}

impl fmt::Debug for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_i128() {
            Some(v) => write!(f, "{v}"),
            None => {
                f.write_str(if self.negative { "-0x" } else { "0x" })?;
                for b in &self.magnitude {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl From<u128> for Int {
    fn from(v: u128) -> Self {
        Self::from_magnitude(false, &v.to_be_bytes())
    }
}

impl From<i128> for Int {
    fn from(v: i128) -> Self {
        Self::from_magnitude(v < 0, &v.unsigned_abs().to_be_bytes())
    }
}

macro_rules! int_from {
    ($via:ty: $($t:ty),*) => {$(
        impl From<$t> for Int {
            fn from(v: $t) -> Self {
                Self::from(<$via>::from(v))
            }
        }
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(Int::from(v))
            }
        }
    )*};
}

int_from!(u128: u8, u16, u32, u64);
int_from!(i128: i8, i16, i32, i64);

impl From<i128> for Value {
    fn from(v: i128) -> Self {
        Value::Int(Int::from(v))
    }
}

impl From<u128> for Value {
    fn from(v: u128) -> Self {
        Value::Int(Int::from(v))
    }
}

impl From<Int> for Value {
    fn from(v: Int) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

impl From<Bytes> for Value {
    fn from(v: Bytes) -> Self {
        Value::Bytes(v)
    }
}

impl Value {
    /// A `bytes` value.
    pub fn bytes(v: impl Into<Bytes>) -> Self {
        Value::Bytes(v.into())
    }

    /// The Python type name (`"NoneType"`, `"bool"`, `"int"`, `"bytes"`, `"str"`, `"tuple"`,
    /// `"list"` or `"dict"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Bytes(_) => "bytes",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }

    /// The bytes of a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The text of a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The int of a [`Value::Int`].
    pub fn as_int(&self) -> Option<&Int> {
        match self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The items of a [`Value::Tuple`] or a [`Value::List`].
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// The pairs of a [`Value::Dict`].
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value under a `str` key of a [`Value::Dict`].
    ///
    /// ```
    /// use netaio::compat::packify::Value;
    /// let d = Value::Dict(vec![(Value::from("k"), Value::from(7))]);
    /// assert_eq!(d.get("k"), Some(&Value::from(7)));
    /// assert_eq!(d.get("x"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Tuple(a), Value::Tuple(b)) | (Value::List(a), Value::List(b)) => a == b,
            (Value::Dict(a), Value::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v == v2))
            }
            _ => false,
        }
    }
}

impl Eq for Value {}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Value::Int(i) => i.fmt(f),
            Value::Bytes(b) => {
                f.write_str("b")?;
                crate::message::HexPreview(b).fmt(f)
            }
            Value::Str(s) => s.fmt(f),
            Value::Tuple(v) => {
                let mut t = f.debug_tuple("");
                for x in v {
                    t.field(x);
                }
                t.finish()
            }
            Value::List(v) => f.debug_list().entries(v).finish(),
            Value::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (k, v)))
                .finish(),
        }
    }
}

/// Why a value could not be decoded (or, for [`PackifyError::TooLong`], encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackifyError {
    /// The input ends before the value does.
    #[error("{what} is truncated: needs {need} bytes, got {got}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed from that point.
        need: usize,
        /// Bytes left.
        got: usize,
    },
    /// A code byte with an unknown type id, or without the length a type needs.
    #[error("corrupt data: invalid code byte 0x{0:02x}")]
    InvalidCode(u8),
    /// A container's item length category is not `0x40`, `0x80` or `0xC0`.
    #[error("corrupt container: invalid item length category 0x{0:02x}")]
    InvalidItemCategory(u8),
    /// A valid packify type outside the subset (float, Decimal, set, Packable).
    #[error("unsupported packify type {0}")]
    Unsupported(&'static str),
    /// A `str` that is not UTF-8.
    #[error("str is not valid UTF-8")]
    InvalidUtf8,
    /// A dict item that is not a 2-tuple.
    #[error("corrupt dict: item is not a key/value pair")]
    NotAPair,
    /// A dict key Python cannot hash (a list, a dict or a bytearray).
    #[error("corrupt dict: key is not hashable ({0})")]
    UnhashableKey(&'static str),
    /// Containers nested deeper than [`MAX_DEPTH`].
    #[error("containers nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Encoding: a length or count that does not fit in 32 bits.
    #[error("{0} too long to encode (over 4 GiB or 2^32 items)")]
    TooLong(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> String {
        hex::encode(encode(v).unwrap())
    }

    #[test]
    fn reference_examples_beyond_the_vectors() {
        // Section 2.5: a dict of 300 str keys needs a u16 count; items stay short (0x40).
        let pairs = (0..300)
            .map(|i| (Value::from(format!("k{i}")), Value::from(i)))
            .collect();
        assert!(enc(&Value::Dict(pairs)).starts_with("8d40012c"));
        // (300-byte bytes,): the item is 303 bytes, so item lengths take 2 bytes (0x80).
        let t = Value::Tuple(vec![Value::bytes(vec![0u8; 300])]);
        assert!(enc(&t).starts_with("4c8001012f81012c"));
    }

    #[test]
    fn big_ints_switch_to_the_byte_count_forms() {
        assert_eq!(enc(&Value::from(u64::MAX)), "0408ffffffffffffffff");
        assert_eq!(enc(&Value::from(i64::MIN)), "05088000000000000000");
        let huge = Int::from_magnitude(false, &[1u8; 256]);
        let e = encode(&Value::Int(huge.clone())).unwrap();
        assert_eq!(hex::encode(&e[..5]), "0e00000100");
        assert_eq!(decode(&e).unwrap(), Value::Int(huge));
        let neg = Int::from_magnitude(true, &[2u8; 300]);
        let e = encode(&Value::Int(neg.clone())).unwrap();
        assert_eq!(hex::encode(&e[..5]), "0f0000012c");
        assert_eq!(decode(&e).unwrap(), Value::Int(neg));
        assert_eq!(Int::from(i128::MIN).to_i128(), Some(i128::MIN));
        assert_eq!(Int::from(-1).to_u64(), None);
        assert_eq!(Int::from_magnitude(true, &[0, 0]), Int::from(0));
    }

    #[test]
    fn decoding_is_as_lenient_as_python() {
        // Any nonzero bool byte; the category bits of None and bool are ignored.
        assert_eq!(decode(b"\x06\x05").unwrap(), Value::Bool(true));
        assert_eq!(decode(b"\x46\x00").unwrap(), Value::Bool(false));
        assert_eq!(decode(b"\x40").unwrap(), Value::None);
        // A non-canonical int, and negative zero.
        assert_eq!(decode(b"\x04\x02\x00\x05").unwrap(), Value::from(5));
        assert_eq!(decode(b"\x45\x00").unwrap(), Value::from(0));
        // A bytearray is bytes.
        assert_eq!(decode(b"\x42\x01a").unwrap(), Value::bytes(&b"a"[..]));
        // Bytes after an item, inside its declared length, are ignored.
        assert_eq!(
            decode(b"\x4c\x40\x01\x04\x41\x01a\xff").unwrap(),
            Value::Tuple(vec![Value::bytes(&b"a"[..])])
        );
        // Duplicate keys: the first key stays, the last value wins; True and 1 are one key.
        let k1 = encode(&Value::Tuple(vec![Value::from(1), Value::from("one")])).unwrap();
        let kt = encode(&Value::Tuple(vec![Value::Bool(true), Value::from("true")])).unwrap();
        let mut d = Vec::new();
        put_container(&mut d, T_DICT, &[k1, kt]).unwrap();
        assert_eq!(
            decode(&d).unwrap(),
            Value::Dict(vec![(Value::from(1), Value::from("true"))])
        );
    }

    fn err(bytes: &[u8]) -> PackifyError {
        decode(bytes).unwrap_err()
    }

    #[test]
    fn malformed_input_gives_typed_errors() {
        assert!(matches!(err(b""), PackifyError::Truncated { .. }));
        assert!(matches!(
            err(b"\x41\x05ab"),
            PackifyError::Truncated { got: 2, .. }
        ));
        assert!(matches!(err(b"\x81\x01"), PackifyError::Truncated { .. }));
        assert!(matches!(err(b"\x06"), PackifyError::Truncated { .. }));
        assert!(matches!(err(b"\x04"), PackifyError::Truncated { .. }));
        assert!(matches!(
            err(b"\x0e\x00\x00\x00\x09\x01"),
            PackifyError::Truncated { .. }
        ));
        assert_eq!(err(b"\x09"), PackifyError::InvalidCode(0x09));
        assert_eq!(err(b"\x01\x00"), PackifyError::InvalidCode(0x01));
        assert_eq!(err(b"\x0c\x40\x00"), PackifyError::InvalidCode(0x0c));
        assert_eq!(
            err(b"\x4a\x00\x00"),
            PackifyError::InvalidItemCategory(0x00)
        );
        assert_eq!(err(b"\x43\x01\xff"), PackifyError::InvalidUtf8);
        assert_eq!(
            err(b"\x07\x00\x00\x00\x00\x00\x00\x00\x00"),
            PackifyError::Unsupported("float")
        );
        assert_eq!(err(b"\x4b\x40\x00"), PackifyError::Unsupported("set"));
        assert_eq!(err(b"\x48\x01\x31"), PackifyError::Unsupported("Decimal"));
        assert_eq!(err(b"\x54\x00\x00"), PackifyError::Unsupported("Packable"));
        // A container declaring more items or bytes than there are.
        assert!(matches!(
            err(b"\x4a\x40\x05\x01"),
            PackifyError::Truncated { .. }
        ));
        assert!(matches!(
            err(b"\xca\xc0\xff\xff\xff\xff"),
            PackifyError::Truncated { .. }
        ));
        assert!(matches!(
            err(b"\x4a\x40\x01\x09\x41"),
            PackifyError::Truncated { .. }
        ));
        // An item of length 0 has no code byte.
        assert!(matches!(
            err(b"\x4a\x40\x01\x00"),
            PackifyError::Truncated { .. }
        ));
        // Dict items must be 2-tuples with hashable keys.
        assert_eq!(err(b"\x4d\x40\x01\x02\x41\x00"), PackifyError::NotAPair);
        let list_key = encode(&Value::Tuple(vec![Value::List(vec![]), Value::None])).unwrap();
        let mut d = Vec::new();
        put_container(&mut d, T_DICT, &[list_key]).unwrap();
        assert_eq!(err(&d), PackifyError::UnhashableKey("list"));
        let mut pair = Vec::new();
        put_container(&mut pair, T_TUPLE, &[&b"\x42\x01a"[..], &b"\x00"[..]]).unwrap();
        let mut d = Vec::new();
        put_container(&mut d, T_DICT, &[pair]).unwrap();
        assert_eq!(err(&d), PackifyError::UnhashableKey("bytearray"));
        // A bytearray value (not key) is fine.
        let mut pair = Vec::new();
        put_container(&mut pair, T_TUPLE, &[&b"\x00"[..], &b"\x42\x01a"[..]]).unwrap();
        let mut d = Vec::new();
        put_container(&mut d, T_DICT, &[pair]).unwrap();
        assert!(decode(&d).is_ok());
    }

    #[test]
    fn nesting_is_bounded() {
        let mut v = Value::None;
        for _ in 0..MAX_DEPTH {
            v = Value::Tuple(vec![v]);
        }
        let ok = encode(&v).unwrap();
        assert_eq!(decode(&ok).unwrap(), v);
        let deeper = encode(&Value::List(vec![v])).unwrap();
        assert_eq!(err(&deeper), PackifyError::TooDeep);
        // A hand-made chain far deeper than that is refused without recursing into it.
        let mut chain = Vec::new();
        for _ in 0..10_000 {
            chain.extend_from_slice(b"\x4c\x40\x01\xff");
        }
        assert!(decode(&chain).is_err());
    }

    #[test]
    fn decoded_bytes_are_slices_of_the_input() {
        let src = Bytes::from(encode(&Value::Tuple(vec![Value::bytes(vec![7u8; 40])])).unwrap());
        let v = decode_bytes(&src).unwrap();
        let b = v.as_seq().unwrap()[0].as_bytes().unwrap();
        let range = src.as_ptr() as usize..src.as_ptr() as usize + src.len();
        assert!(range.contains(&(b.as_ptr() as usize)));
    }

    #[test]
    fn dict_equality_ignores_order() {
        let a = Value::Dict(vec![
            (Value::from("x"), Value::None),
            (Value::from("y"), Value::from(1)),
        ]);
        let b = Value::Dict(vec![
            (Value::from("y"), Value::from(1)),
            (Value::from("x"), Value::None),
        ]);
        assert_eq!(a, b);
        assert_eq!(encode(&a).unwrap(), encode(&b).unwrap());
        assert_ne!(a, Value::Dict(vec![(Value::from("x"), Value::None)]));
        assert_eq!(a.get("y"), Some(&Value::from(1)));
    }
}
