//! [`PackifyCodec`]: the auth block as Python netaio encodes it.

use bytes::{Bytes, BytesMut};

use super::packify::{self, PackifyError, Value};
use crate::message::{
    AuthFields, AuthFieldsCodec, DEFAULT_MAX_AUTH_FIELDS, DecodeError, EncodeError,
};

/// The Python-compatible auth-block encoding: `packify.pack(fields)` of a `dict` from field name
/// (`str`) to value (`bytes`), as Python netaio 0.0.9 puts it on the wire.
///
/// - An empty map is the empty dict `4d 40 00` (3 bytes; Python never sends an empty block).
/// - The pairs are sorted by their encoded bytes, as `packify` does, so the HMAC fields come out
///   as `ts, hmac, nonce` and with a cipher as `ts, iv, hmac, nonce`, byte for byte as Python.
/// - Decoding accepts the pairs in any order and ignores bytes after the dict, like Python.
///
/// [`AuthFields`] hold bytes, while a Python dict may hold other types. Decoded values map to
/// bytes this way:
///
/// | Python value | field value |
/// |---|---|
/// | `bytes`, `bytearray` | the bytes |
/// | `str` | its UTF-8 bytes |
/// | `int` from 0 to 2³²−1 | 4 bytes, big-endian (the Python plugins' timestamp convention: an `int` `ts` checks like the 4 bytes Python's HMAC plugin turns it into) |
///
/// Anything else (a block that is not a dict, a key that is not a `str`, a value that is `None`,
/// a `bool`, a negative or larger `int`, or a container) is refused with
/// [`DecodeError::AuthBlock`]: the bundled Python plugins only ever put bytes there, and a value
/// that cannot be represented is better refused than silently changed. An empty block (Python
/// refuses it too) is refused the same way. Re-encoding a decoded block writes every value as
/// `bytes`.
///
/// A dict that declares more than [`DEFAULT_MAX_AUTH_FIELDS`] pairs is refused with
/// [`DecodeError::TooManyAuthFields`] as soon as its header is read, before any pair is decoded
/// (Python's plugins send at most 4); [`PackifyCodec::with_max_fields`] sets another limit.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netaio::compat::PackifyCodec;
/// use netaio::message::{AuthFields, AuthFieldsCodec};
///
/// let mut buf = BytesMut::new();
/// PackifyCodec.encode(&AuthFields::new(), &mut buf).unwrap();
/// assert_eq!(&buf[..], b"\x4d\x40\x00");
///
/// let fields: AuthFields = [("iv", &b"0123456789abcdef"[..])].into_iter().collect();
/// let mut buf = BytesMut::new();
/// PackifyCodec.encode(&fields, &mut buf).unwrap();
/// assert_eq!(&buf[..4], b"\x4d\x40\x01\x1b");
/// assert_eq!(PackifyCodec.decode(&buf.freeze()).unwrap(), fields);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PackifyCodec;

/// [`PackifyCodec`] with a field-count limit other than [`DEFAULT_MAX_AUTH_FIELDS`]: made by
/// [`PackifyCodec::with_max_fields`]. Encodes as [`PackifyCodec`] does (the limit only applies to
/// decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedPackifyCodec {
    max_fields: usize,
}

impl BoundedPackifyCodec {
    /// The most pairs a decoded dict may declare.
    pub const fn max_fields(&self) -> usize {
        self.max_fields
    }
}

impl Default for BoundedPackifyCodec {
    /// The default limit, [`DEFAULT_MAX_AUTH_FIELDS`].
    fn default() -> Self {
        PackifyCodec::with_max_fields(DEFAULT_MAX_AUTH_FIELDS)
    }
}

impl AuthFieldsCodec for BoundedPackifyCodec {
    fn encode(&self, fields: &AuthFields, dst: &mut BytesMut) -> Result<(), EncodeError> {
        PackifyCodec.encode(fields, dst)
    }

    fn decode(&self, block: &Bytes) -> Result<AuthFields, DecodeError> {
        decode_packify(block, self.max_fields)
    }
}

/// The number of items a packify dict at the start of `block` declares, read from its header
/// alone (`None` when `block` does not start with a whole dict header: the decoder says why).
fn declared_dict_len(block: &[u8]) -> Option<usize> {
    let code = *block.first()?;
    if code & 0x3F != packify::T_DICT {
        return None;
    }
    let width = match code & 0xC0 {
        packify::CAT1 => 1,
        packify::CAT2 => 2,
        packify::CAT3 => 4,
        _ => return None,
    };
    // The code, the item-length category, then the count in `width` big-endian bytes.
    let count = block.get(2..2 + width)?;
    usize::try_from(count.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))).ok()
}

/// Decode a packify auth block, refusing a dict that declares more than `max_fields` pairs
/// before decoding it.
fn decode_packify(block: &Bytes, max_fields: usize) -> Result<AuthFields, DecodeError> {
    if let Some(count) = declared_dict_len(block)
        && count > max_fields
    {
        return Err(DecodeError::TooManyAuthFields {
            count,
            max: max_fields,
        });
    }
    let value = packify::decode_bytes(block).map_err(|e| DecodeError::AuthBlock(e.to_string()))?;
    PackifyCodec::fields_from_value(&value)
}

impl PackifyCodec {
    /// The same encoding, refusing dicts that declare more than `max_fields` pairs (instead of
    /// [`DEFAULT_MAX_AUTH_FIELDS`]).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use netaio::compat::PackifyCodec;
    /// use netaio::message::{AuthFields, AuthFieldsCodec, DecodeError};
    ///
    /// let fields: AuthFields = [("a", "1"), ("b", "2"), ("c", "3")].into_iter().collect();
    /// let mut buf = BytesMut::new();
    /// PackifyCodec.encode(&fields, &mut buf).unwrap();
    /// let block = buf.freeze();
    /// assert!(PackifyCodec::with_max_fields(3).decode(&block).is_ok());
    /// assert_eq!(
    ///     PackifyCodec::with_max_fields(2).decode(&block),
    ///     Err(DecodeError::TooManyAuthFields { count: 3, max: 2 })
    /// );
    /// ```
    pub const fn with_max_fields(max_fields: usize) -> BoundedPackifyCodec {
        BoundedPackifyCodec { max_fields }
    }

    /// The auth fields of a decoded packify value (a `dict` of `str` to bytes; see the type docs
    /// for the other values accepted).
    ///
    /// ```
    /// use netaio::compat::packify::Value;
    /// use netaio::compat::PackifyCodec;
    ///
    /// let value = Value::Dict(vec![(Value::from("ts"), Value::from(1_700_000_000u32))]);
    /// let fields = PackifyCodec::fields_from_value(&value).unwrap();
    /// assert_eq!(fields.get("ts").unwrap().as_ref(), b"\x65\x53\xf1\x00");
    /// assert!(PackifyCodec::fields_from_value(&Value::List(vec![])).is_err());
    /// ```
    pub fn fields_from_value(value: &Value) -> Result<AuthFields, DecodeError> {
        let Value::Dict(pairs) = value else {
            return Err(DecodeError::AuthBlock(format!(
                "auth block is a {}, not a dict",
                value.type_name()
            )));
        };
        let mut named = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let Value::Str(name) = k else {
                return Err(DecodeError::AuthBlock(format!(
                    "auth field name is a {}, not a str",
                    k.type_name()
                )));
            };
            let bytes = field_bytes(v)
                .map_err(|why| DecodeError::AuthBlock(format!("auth field {name:?}: {why}")))?;
            named.push((name.as_str(), bytes));
        }
        // Sort once (stable, so among duplicate names the last stays last, and wins as in Python),
        // then insert in order: each insert appends, so a block of n pairs costs n log n, not n².
        named.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut fields = AuthFields::new();
        for (name, bytes) in named {
            fields.insert(name, bytes);
        }
        Ok(fields)
    }
}

/// Why a packify value cannot stand for a field's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FieldValueError {
    /// An int that does not fit the 4 big-endian bytes Python's fields use.
    #[error("int {0} outside 0..=2^32-1")]
    IntRange(String),
    /// A value of a type that stands for no bytes.
    #[error("a {0} value cannot be represented")]
    Type(&'static str),
}

/// The bytes a field (or peer data) value stands for: see [`PackifyCodec`].
pub(crate) fn field_bytes(v: &Value) -> Result<Bytes, FieldValueError> {
    match v {
        Value::Bytes(b) => Ok(b.clone()),
        Value::Str(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
        Value::Int(i) => match i.to_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Ok(Bytes::copy_from_slice(&n.to_be_bytes())),
            None => Err(FieldValueError::IntRange(format!("{i:?}"))),
        },
        other => Err(FieldValueError::Type(other.type_name())),
    }
}

/// The encoding of the dict `{name: value}` for (str, bytes) pairs, sorted as packify sorts.
pub(crate) fn encode_str_bytes_dict<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a [u8])>,
    out: &mut Vec<u8>,
) -> Result<(), PackifyError> {
    let mut encoded = Vec::new();
    for (name, value) in pairs {
        let mut key = Vec::with_capacity(name.len() + 5);
        packify::put_str(&mut key, name)?;
        let mut val = Vec::with_capacity(value.len() + 5);
        packify::put_bytes(&mut val, value)?;
        let mut pair = Vec::with_capacity(key.len() + val.len() + 12);
        packify::put_container(&mut pair, packify::TUPLE, &[key, val])?;
        encoded.push(pair);
    }
    encoded.sort_unstable();
    packify::put_container(out, packify::DICT, &encoded)
}

impl AuthFieldsCodec for PackifyCodec {
    fn encode(&self, fields: &AuthFields, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let mut out = Vec::new();
        encode_str_bytes_dict(fields.iter().map(|(n, v)| (n, v.as_ref())), &mut out)
            .map_err(|e| EncodeError::AuthFields(e.to_string()))?;
        dst.extend_from_slice(&out);
        Ok(())
    }

    fn decode(&self, block: &Bytes) -> Result<AuthFields, DecodeError> {
        decode_packify(block, DEFAULT_MAX_AUTH_FIELDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<AuthFields, DecodeError> {
        PackifyCodec.decode(&Bytes::copy_from_slice(bytes))
    }

    fn dict(pairs: Vec<(Value, Value)>) -> Vec<u8> {
        packify::encode(&Value::Dict(pairs)).unwrap()
    }

    #[test]
    fn python_values_map_to_bytes() {
        let block = dict(vec![
            (Value::from("b"), Value::bytes(&b"\x00\x01"[..])),
            (Value::from("s"), Value::from("héllo")),
            (Value::from("ts"), Value::from(1_700_000_000u32)),
            (Value::from("zero"), Value::from(0)),
        ]);
        let f = decode(&block).unwrap();
        assert_eq!(f.get("b").unwrap().as_ref(), b"\x00\x01");
        assert_eq!(f.get("s").unwrap().as_ref(), "héllo".as_bytes());
        assert_eq!(f.get("ts").unwrap().as_ref(), b"\x65\x53\xf1\x00");
        assert_eq!(f.get("zero").unwrap().as_ref(), b"\x00\x00\x00\x00");
        // A bytearray value is bytes too.
        let mut pair = Vec::new();
        packify::put_container(
            &mut pair,
            packify::TUPLE,
            &[&b"\x43\x01k"[..], b"\x42\x01v"],
        )
        .unwrap();
        let mut block = Vec::new();
        packify::put_container(&mut block, packify::DICT, &[pair]).unwrap();
        assert_eq!(decode(&block).unwrap().get("k").unwrap().as_ref(), b"v");
    }

    #[test]
    fn what_cannot_be_represented_is_refused() {
        for value in [
            Value::None,
            Value::Bool(true),
            Value::from(-1),
            Value::from(1u64 << 32),
            Value::List(vec![]),
            Value::Tuple(vec![]),
            Value::Dict(vec![]),
        ] {
            let block = dict(vec![(Value::from("x"), value.clone())]);
            assert!(
                matches!(decode(&block), Err(DecodeError::AuthBlock(_))),
                "{value:?}"
            );
        }
        // Keys must be str; the block must be a dict; an empty block is refused (as in Python).
        let block = dict(vec![(Value::bytes(&b"x"[..]), Value::bytes(&b"y"[..]))]);
        assert!(matches!(decode(&block), Err(DecodeError::AuthBlock(_))));
        for bad in [&b"\x44\x05"[..], b"\x4a\x40\x00", b"", b"\xff\xff\xff"] {
            assert!(
                matches!(decode(bad), Err(DecodeError::AuthBlock(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn trailing_bytes_after_the_dict_are_ignored_like_python() {
        assert_eq!(decode(b"\x4d\x40\x00\xde\xad").unwrap(), AuthFields::new());
    }

    /// A dict of `n` (str, bytes) pairs.
    fn dict_of(n: usize) -> Bytes {
        let names: Vec<String> = (0..n).map(|i| format!("f{i:04}")).collect();
        let mut out = Vec::new();
        encode_str_bytes_dict(names.iter().map(|n| (n.as_str(), &b""[..])), &mut out).unwrap();
        Bytes::from(out)
    }

    #[test]
    fn a_count_above_the_limit_is_refused_before_the_pairs() {
        // A dict header claiming a million items (4-byte count) and nothing else: the count
        // alone is refused (the decoder would say "truncated").
        let claim = Bytes::from_static(b"\xcd\x40\x00\x0f\x42\x40");
        assert!(matches!(
            packify::decode_bytes(&claim),
            Err(PackifyError::Truncated { .. })
        ));
        assert_eq!(
            PackifyCodec.decode(&claim),
            Err(DecodeError::TooManyAuthFields {
                count: 1_000_000,
                max: DEFAULT_MAX_AUTH_FIELDS
            })
        );
        assert_eq!(
            PackifyCodec.decode(&dict_of(DEFAULT_MAX_AUTH_FIELDS + 1)),
            Err(DecodeError::TooManyAuthFields {
                count: DEFAULT_MAX_AUTH_FIELDS + 1,
                max: DEFAULT_MAX_AUTH_FIELDS
            })
        );
        let at_limit = PackifyCodec
            .decode(&dict_of(DEFAULT_MAX_AUTH_FIELDS))
            .unwrap();
        assert_eq!(at_limit.len(), DEFAULT_MAX_AUTH_FIELDS);
    }

    #[test]
    fn the_limit_is_configurable() {
        let five = dict_of(5);
        assert!(PackifyCodec::with_max_fields(5).decode(&five).is_ok());
        assert_eq!(
            PackifyCodec::with_max_fields(4).decode(&five),
            Err(DecodeError::TooManyAuthFields { count: 5, max: 4 })
        );
        let big = dict_of(300); // a 2-byte count
        assert!(matches!(
            PackifyCodec.decode(&big),
            Err(DecodeError::TooManyAuthFields { count: 300, .. })
        ));
        let codec = PackifyCodec::with_max_fields(300);
        assert_eq!(codec.max_fields(), 300);
        let fields = codec.decode(&big).unwrap();
        assert_eq!(fields.len(), 300);
        let mut again = BytesMut::new();
        codec.encode(&fields, &mut again).unwrap();
        assert_eq!(again.freeze(), big);
        assert_eq!(
            BoundedPackifyCodec::default().max_fields(),
            DEFAULT_MAX_AUTH_FIELDS
        );
    }
}
