//! Decoding values as `packify.unpack` does, with its tolerance and our limits.

use std::collections::HashMap;

use bytes::Bytes;

use super::encode::put_value;
use super::*;

/// Reads values out of one buffer; values are slices of it.
struct Reader<'a> {
    src: &'a Bytes,
}

/// Whether Python could hash a value (use it as a dict key); the error names the culprit.
type Hashable = Result<(), &'static str>;

/// A decoded value, where it ends, whether Python could hash it, and for a tuple whether its
/// first item could be hashed (a dict item's key).
struct Decoded {
    value: Value,
    end: usize,
    hashable: Hashable,
    first_hashable: Hashable,
}

impl Reader<'_> {
    fn need(
        &self,
        what: &'static str,
        pos: usize,
        end: usize,
        n: usize,
    ) -> Result<(), PackifyError> {
        let got = end.saturating_sub(pos);
        if got < n {
            Err(PackifyError::Truncated { what, need: n, got })
        } else {
            Ok(())
        }
    }

    /// A big-endian unsigned int of `width` (1, 2 or 4) bytes at `pos`.
    fn uint(
        &self,
        what: &'static str,
        pos: usize,
        end: usize,
        width: usize,
    ) -> Result<u64, PackifyError> {
        self.need(what, pos, end, width)?;
        let bytes = self.src.get(pos..pos + width).unwrap_or_default();
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn slice(&self, from: usize, to: usize) -> Bytes {
        if from <= to && to <= self.src.len() {
            self.src.slice(from..to)
        } else {
            Bytes::new()
        }
    }

    /// `len` bytes at `pos` (after checking they are there).
    fn take(
        &self,
        what: &'static str,
        pos: usize,
        end: usize,
        len: u64,
    ) -> Result<Bytes, PackifyError> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.need(what, pos, end, len)?;
        Ok(self.slice(pos, pos + len))
    }

    /// Decode the value starting at `pos`; the value must end by `end` (bytes after it up to
    /// `end` are ignored, as in Python).
    fn value(&self, pos: usize, end: usize, depth: usize) -> Result<Decoded, PackifyError> {
        self.need("value", pos, end, 1)?;
        let code = self.src.get(pos).copied().unwrap_or_default();
        let cat = code & 0xC0;
        let type_id = code & 0x3F;
        let width = match cat {
            CAT1 => 1,
            CAT2 => 2,
            CAT3 => 4,
            _ => 0,
        };
        let cat0_ok = matches!(
            type_id,
            T_INT | T_NEG_INT | T_BIG_INT | T_BIG_NEG | T_BOOL | T_FLOAT | T_NONE
        );
        let known = matches!(
            type_id,
            T_NONE
                | T_BYTES
                | T_BYTEARRAY
                | T_STR
                | T_INT
                | T_NEG_INT
                | T_BOOL
                | T_FLOAT
                | T_DECIMAL
                | T_LIST
                | T_SET
                | T_TUPLE
                | T_DICT
                | T_BIG_INT
                | T_BIG_NEG
                | T_PACKABLE
        );
        if !known || (width == 0 && !cat0_ok) {
            return Err(PackifyError::InvalidCode(code));
        }
        let p = pos + 1;
        let ok = Ok(());
        let (value, end_at, hashable) = match type_id {
            T_NONE => (Value::None, p, ok),
            T_BOOL => {
                self.need("bool", p, end, 1)?;
                let b = self.src.get(p).copied().unwrap_or_default();
                (Value::Bool(b != 0), p + 1, ok)
            }
            T_BYTES | T_BYTEARRAY | T_STR => {
                let what = match type_id {
                    T_STR => "str",
                    _ => "bytes",
                };
                let len = self.uint(what, p, end, width)?;
                let data = self.take(what, p + width, end, len)?;
                let next = p + width + data.len();
                match type_id {
                    T_STR => {
                        let s =
                            std::str::from_utf8(&data).map_err(|_| PackifyError::InvalidUtf8)?;
                        (Value::Str(s.to_owned()), next, ok)
                    }
                    T_BYTES => (Value::Bytes(data), next, ok),
                    _ => (Value::Bytes(data), next, Err("bytearray")),
                }
            }
            T_INT | T_NEG_INT => {
                let negative = type_id == T_NEG_INT;
                if width == 0 {
                    let size = self.uint("int", p, end, 1)?;
                    let data = self.take("int", p + 1, end, size)?;
                    let next = p + 1 + data.len();
                    (Value::Int(Int::from_magnitude(negative, &data)), next, ok)
                } else {
                    let n = self.uint("int", p, end, width)?;
                    (
                        Value::Int(Int::from_magnitude(negative, &n.to_be_bytes())),
                        p + width,
                        ok,
                    )
                }
            }
            T_BIG_INT | T_BIG_NEG => {
                let size = self.uint("big int", p, end, 4)?;
                let data = self.take("big int", p + 4, end, size)?;
                let next = p + 4 + data.len();
                (
                    Value::Int(Int::from_magnitude(type_id == T_BIG_NEG, &data)),
                    next,
                    ok,
                )
            }
            T_LIST | T_TUPLE | T_DICT => return self.container(type_id, width, p, end, depth),
            T_FLOAT => return Err(PackifyError::Unsupported("float")),
            T_DECIMAL => return Err(PackifyError::Unsupported("Decimal")),
            T_SET => return Err(PackifyError::Unsupported("set")),
            _ => return Err(PackifyError::Unsupported("Packable")),
        };
        Ok(Decoded {
            value,
            end: end_at,
            hashable,
            first_hashable: Ok(()),
        })
    }

    fn container(
        &self,
        type_id: u8,
        width: usize,
        p: usize,
        end: usize,
        depth: usize,
    ) -> Result<Decoded, PackifyError> {
        let what = match type_id {
            T_LIST => "list",
            T_TUPLE => "tuple",
            _ => "dict",
        };
        if depth >= MAX_DEPTH {
            return Err(PackifyError::TooDeep);
        }
        self.need(what, p, end, 1 + width)?;
        let icat = self.src.get(p).copied().unwrap_or_default();
        let iwidth = match icat {
            CAT1 => 1,
            CAT2 => 2,
            CAT3 => 4,
            other => return Err(PackifyError::InvalidItemCategory(other)),
        };
        let count = usize::try_from(self.uint(what, p + 1, end, width)?).unwrap_or(usize::MAX);
        let table = p + 1 + width;
        let table_len = count.saturating_mul(iwidth);
        self.need(what, table, end, table_len)?;
        // Every item takes at least one byte, so `count` is bounded by the input from here on.
        let mut lens = Vec::with_capacity(count.min(end.saturating_sub(table)));
        let mut total = 0usize;
        for i in 0..count {
            let len = usize::try_from(self.uint(what, table + i * iwidth, end, iwidth)?)
                .unwrap_or(usize::MAX);
            total = total.saturating_add(len);
            lens.push(len);
        }
        let mut at = table + table_len;
        self.need(what, at, end, total)?;
        let mut items = Vec::with_capacity(count);
        let mut hashable = Ok(());
        let mut first_hashable = Ok(());
        for (i, len) in lens.into_iter().enumerate() {
            let item = self.value(at, at + len, depth + 1)?;
            if i == 0 {
                first_hashable = item.hashable;
            }
            hashable = hashable.and(item.hashable);
            items.push(item);
            at += len;
        }
        let value = match type_id {
            T_LIST => {
                hashable = Err("list");
                Value::List(items.into_iter().map(|d| d.value).collect())
            }
            T_TUPLE => Value::Tuple(items.into_iter().map(|d| d.value).collect()),
            _ => {
                hashable = Err("dict");
                Value::Dict(dict_from_items(items)?)
            }
        };
        Ok(Decoded {
            value,
            end: at,
            hashable,
            first_hashable,
        })
    }
}

/// Python's `{pair[0]: pair[1] for pair in items}`: every item a 2-tuple with a hashable key; a
/// repeated key keeps its first position and its last value.
fn dict_from_items(items: Vec<Decoded>) -> Result<Vec<(Value, Value)>, PackifyError> {
    let mut pairs: Vec<(Value, Value)> = Vec::with_capacity(items.len());
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for item in items {
        let Value::Tuple(kv) = item.value else {
            return Err(PackifyError::NotAPair);
        };
        let Ok::<[Value; 2], _>([k, v]) = kv.try_into() else {
            return Err(PackifyError::NotAPair);
        };
        item.first_hashable.map_err(PackifyError::UnhashableKey)?;
        // Python compares keys by value with True == 1 and False == 0: key them by an encoding
        // that writes bools as ints.
        let mut fingerprint = Vec::new();
        put_value(&mut fingerprint, &k, true)?;
        match index.get(&fingerprint) {
            Some(&i) => {
                if let Some(slot) = pairs.get_mut(i) {
                    slot.1 = v;
                }
            }
            None => {
                index.insert(fingerprint, pairs.len());
                pairs.push((k, v));
            }
        }
    }
    Ok(pairs)
}

/// Decode the value at the start of `src` and tell where it ends; the value's bytes are slices
/// of `src` (no copy). Bytes after the value are not looked at.
///
/// ```
/// use bytes::Bytes;
/// use netaio::compat::packify::{decode_prefix, Value};
///
/// let src = Bytes::from_static(b"\x41\x03abc\xff\xff");
/// let (value, used) = decode_prefix(&src).unwrap();
/// assert_eq!((value, used), (Value::bytes(&b"abc"[..]), 5));
/// ```
pub fn decode_prefix(src: &Bytes) -> Result<(Value, usize), PackifyError> {
    let reader = Reader { src };
    let d = reader.value(0, src.len(), 0)?;
    Ok((d.value, d.end))
}

/// Decode a value, ignoring any bytes after it, as Python's `packify.unpack` does. The value's
/// bytes are slices of `src`.
pub fn decode_bytes(src: &Bytes) -> Result<Value, PackifyError> {
    decode_prefix(src).map(|(v, _)| v)
}

/// Decode a value from a slice (copied once), ignoring any bytes after it, as Python's
/// `packify.unpack` does.
///
/// ```
/// use netaio::compat::packify::{decode, PackifyError, Value};
///
/// assert_eq!(decode(b"\x43\x02hi").unwrap(), Value::from("hi"));
/// assert_eq!(decode(b"\x41\x03abc\xff\xff").unwrap(), Value::bytes(&b"abc"[..]));
/// assert!(matches!(decode(b"\x41\x05ab"), Err(PackifyError::Truncated { .. })));
/// assert!(matches!(decode(b""), Err(PackifyError::Truncated { .. })));
/// ```
pub fn decode(src: &[u8]) -> Result<Value, PackifyError> {
    decode_bytes(&Bytes::copy_from_slice(src))
}
