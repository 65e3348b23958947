//! Encoding values as `packify.pack` does.

use super::*;

/// The length category for `n`: `0x40` below 2^8, `0x80` below 2^16, `0xC0` below 2^32.
fn category(n: u64) -> Option<u8> {
    if n < 1 << 8 {
        Some(CAT1)
    } else if n < 1 << 16 {
        Some(CAT2)
    } else if n < 1 << 32 {
        Some(CAT3)
    } else {
        None
    }
}

/// Append `n` in the width of category `cat`.
fn put_uint(out: &mut Vec<u8>, cat: u8, n: u64) {
    match cat {
        CAT1 => out.push(n as u8),
        CAT2 => out.extend_from_slice(&(n as u16).to_be_bytes()),
        _ => out.extend_from_slice(&(n as u32).to_be_bytes()),
    }
}

fn put_len_prefixed(
    out: &mut Vec<u8>,
    type_id: u8,
    what: &'static str,
    data: &[u8],
) -> Result<(), PackifyError> {
    let len = data.len() as u64;
    let cat = category(len).ok_or(PackifyError::TooLong(what))?;
    out.push(cat | type_id);
    put_uint(out, cat, len);
    out.extend_from_slice(data);
    Ok(())
}

fn put_int(out: &mut Vec<u8>, v: &Int) -> Result<(), PackifyError> {
    let (small, big) = if v.negative {
        (T_NEG_INT, T_BIG_NEG)
    } else {
        (T_INT, T_BIG_INT)
    };
    let m = v.magnitude();
    if m.len() <= 4 {
        let n = m.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let cat = category(n).unwrap_or(CAT3);
        out.push(cat | small);
        put_uint(out, cat, n);
    } else if let Ok(len) = u8::try_from(m.len()) {
        out.extend_from_slice(&[small, len]);
        out.extend_from_slice(m);
    } else {
        let len = u32::try_from(m.len()).map_err(|_| PackifyError::TooLong("int"))?;
        out.push(big);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(m);
    }
    Ok(())
}

/// Append a container of already encoded items.
pub(crate) fn put_container(
    out: &mut Vec<u8>,
    type_id: u8,
    items: &[impl AsRef<[u8]>],
) -> Result<(), PackifyError> {
    let count = category(items.len() as u64).ok_or(PackifyError::TooLong("container"))?;
    let longest = items.iter().map(|i| i.as_ref().len()).max().unwrap_or(0);
    let icat = category(longest as u64).ok_or(PackifyError::TooLong("container item"))?;
    out.push(count | type_id);
    out.push(icat);
    put_uint(out, count, items.len() as u64);
    for item in items {
        put_uint(out, icat, item.as_ref().len() as u64);
    }
    for item in items {
        out.extend_from_slice(item.as_ref());
    }
    Ok(())
}

/// The type id of a dict, for the auth codec's fast path.
pub(crate) const DICT: u8 = T_DICT;
/// The type id of a tuple, for the auth codec's fast path.
pub(crate) const TUPLE: u8 = T_TUPLE;

/// Append the encoding of a `str`.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), PackifyError> {
    put_len_prefixed(out, T_STR, "str", s.as_bytes())
}

/// Append the encoding of a `bytes`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), PackifyError> {
    put_len_prefixed(out, T_BYTES, "bytes", b)
}

pub(super) fn put_value(
    out: &mut Vec<u8>,
    v: &Value,
    bools_as_ints: bool,
) -> Result<(), PackifyError> {
    match v {
        Value::None => out.push(T_NONE),
        Value::Bool(b) if bools_as_ints => put_int(out, &Int::from(u8::from(*b)))?,
        Value::Bool(b) => out.extend_from_slice(&[T_BOOL, u8::from(*b)]),
        Value::Int(i) => put_int(out, i)?,
        Value::Bytes(b) => put_bytes(out, b)?,
        Value::Str(s) => put_str(out, s)?,
        Value::Tuple(items) | Value::List(items) => {
            let type_id = if matches!(v, Value::Tuple(_)) {
                T_TUPLE
            } else {
                T_LIST
            };
            let encoded = items
                .iter()
                .map(|i| {
                    let mut buf = Vec::new();
                    put_value(&mut buf, i, bools_as_ints).map(|()| buf)
                })
                .collect::<Result<Vec<_>, _>>()?;
            put_container(out, type_id, &encoded)?;
        }
        Value::Dict(pairs) => {
            let mut encoded = pairs
                .iter()
                .map(|(k, v)| {
                    let mut key = Vec::new();
                    put_value(&mut key, k, bools_as_ints)?;
                    let mut val = Vec::new();
                    put_value(&mut val, v, bools_as_ints)?;
                    let mut pair = Vec::with_capacity(key.len() + val.len() + 8);
                    put_container(&mut pair, T_TUPLE, &[key, val])?;
                    Ok(pair)
                })
                .collect::<Result<Vec<_>, PackifyError>>()?;
            // Python sorts the encoded pairs: bytewise, a prefix first.
            encoded.sort_unstable();
            put_container(out, T_DICT, &encoded)?;
        }
    }
    Ok(())
}

/// Append the encoding of `value` to `out` (Python `packify.pack`). On error `out` may hold a
/// partial encoding.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) -> Result<(), PackifyError> {
    put_value(out, value, false)
}

/// The encoding of `value` (Python `packify.pack`). Fails only for a length above 2³²−1.
///
/// ```
/// use netaio::compat::packify::{encode, Value};
/// assert_eq!(encode(&Value::None).unwrap(), [0x00]);
/// assert_eq!(encode(&Value::from(256)).unwrap(), [0x84, 0x01, 0x00]);
/// assert_eq!(encode(&Value::from("hi")).unwrap(), [0x43, 0x02, b'h', b'i']);
/// assert_eq!(encode(&Value::Dict(vec![])).unwrap(), [0x4d, 0x40, 0x00]);
/// ```
pub fn encode(value: &Value) -> Result<Vec<u8>, PackifyError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}
