//! [`PackifyCodec`]: the auth block as Python netaio encodes it.

use bytes::{Bytes, BytesMut};

use super::packify::{self, PackifyError, Value};
use crate::message::{AuthFields, AuthFieldsCodec, DecodeError, EncodeError};

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

impl PackifyCodec {
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
        let value =
            packify::decode_bytes(block).map_err(|e| DecodeError::AuthBlock(e.to_string()))?;
        Self::fields_from_value(&value)
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
}
