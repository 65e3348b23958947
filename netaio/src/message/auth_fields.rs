//! [`AuthFields`] (the auth block as an ordered map) and the [`AuthFieldsCodec`] seam.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{DEFAULT_MAX_AUTH_FIELDS, DecodeError, EncodeError};

/// The auth block of a message: an ordered map from field name to bytes.
///
/// Names are UTF-8 strings and are kept sorted, so iteration order is canonical (plugins that MAC or
/// sign "every other field" rely on it). Values are [`Bytes`]: a decoded block is sliced out of the
/// frame, not copied.
///
/// ```
/// use netaio::message::AuthFields;
///
/// let mut fields = AuthFields::new();
/// fields.insert("nonce", &b"0123"[..]);
/// fields.insert("ts", vec![0, 0, 0, 1]);
/// assert_eq!(fields.get("nonce").unwrap().as_ref(), b"0123");
/// let names: Vec<&str> = fields.iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["nonce", "ts"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthFields {
    // Sorted by name; a handful of entries, so a vector beats a tree.
    entries: Vec<(FieldName, Bytes)>,
}

/// A field name: UTF-8 checked once, stored as `Bytes` so that cloning never allocates.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FieldName(Bytes);

impl FieldName {
    fn as_str(&self) -> &str {
        // Only ever built from a `&str` or a UTF-8-checked slice.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl AuthFields {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(n, _)| n.0.as_ref().cmp(name.as_bytes()))
    }

    /// The value of a field.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.position(name)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    /// True when the field is present.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Set a field, returning the previous value.
    pub fn insert(&mut self, name: &str, value: impl Into<Bytes>) -> Option<Bytes> {
        let value = value.into();
        match self.position(name) {
            Ok(i) => self
                .entries
                .get_mut(i)
                .map(|(_, v)| std::mem::replace(v, value)),
            Err(i) => {
                let name = FieldName(Bytes::copy_from_slice(name.as_bytes()));
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    /// Set a field whose name is a `'static` string (no allocation for the name).
    pub fn insert_static(&mut self, name: &'static str, value: impl Into<Bytes>) -> Option<Bytes> {
        let value = value.into();
        match self.position(name) {
            Ok(i) => self
                .entries
                .get_mut(i)
                .map(|(_, v)| std::mem::replace(v, value)),
            Err(i) => {
                let name = FieldName(Bytes::from_static(name.as_bytes()));
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    /// The index of a field in canonical order, for a caller that reads it and then removes it
    /// ([`value_at`](Self::value_at), [`remove_at`](Self::remove_at)) without searching again.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.position(name).ok()
    }

    /// The value of the field at this index.
    pub(crate) fn value_at(&self, index: usize) -> Option<&Bytes> {
        self.entries.get(index).map(|(_, v)| v)
    }

    /// Remove the fields at these two distinct indices (no-op for an index out of range).
    pub(crate) fn remove_two_at(&mut self, a: usize, b: usize) {
        let (lo, hi) = (a.min(b), a.max(b));
        if hi < self.entries.len() {
            self.entries.remove(hi);
        }
        if lo != hi && lo < self.entries.len() {
            self.entries.remove(lo);
        }
    }

    /// Remove a field, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Bytes> {
        self.position(name).ok().map(|i| self.entries.remove(i).1)
    }

    /// Iterate over `(name, value)` in canonical (byte-wise sorted) name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Bytes)> + '_ {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// How many fields it has room for without allocating.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// [`iter`](Self::iter) with the names as bytes: for a caller that only hashes or copies
    /// them (no UTF-8 check per name, which `iter` pays to hand out `&str`).
    pub(crate) fn iter_bytes(&self) -> impl ExactSizeIterator<Item = (&[u8], &Bytes)> + '_ {
        self.entries.iter().map(|(n, v)| (n.0.as_ref(), v))
    }

    /// Remove every field.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

impl fmt::Debug for AuthFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(n, v)| (n, super::HexPreview(v))))
            .finish()
    }
}

impl<'a, V: Into<Bytes>> FromIterator<(&'a str, V)> for AuthFields {
    fn from_iter<I: IntoIterator<Item = (&'a str, V)>>(iter: I) -> Self {
        let mut fields = AuthFields::new();
        for (n, v) in iter {
            fields.insert(n, v);
        }
        fields
    }
}

/// How the auth block is turned into bytes and back.
///
/// The frame layout is fixed; only the auth block's encoding varies between the native mode
/// ([`PostcardCodec`], the default) and the Python-compatible mode (packify). Implement this to carry
/// the auth block in another format; the transports take it as `Arc<dyn AuthFieldsCodec>`.
///
/// A decoder must reject malformed input with [`DecodeError::AuthBlock`] and never panic, and
/// should refuse a block that declares more fields than it is willing to decode with
/// [`DecodeError::TooManyAuthFields`] before decoding them (the bundled codecs refuse more than
/// [`DEFAULT_MAX_AUTH_FIELDS`] unless told otherwise).
pub trait AuthFieldsCodec: fmt::Debug + Send + Sync + 'static {
    /// Append the encoding of `fields` to `dst`.
    fn encode(&self, fields: &AuthFields, dst: &mut BytesMut) -> Result<(), EncodeError>;

    /// Decode a whole auth block. Values should be slices of `block` (`Bytes::slice_ref`), not copies.
    fn decode(&self, block: &Bytes) -> Result<AuthFields, DecodeError>;
}

/// The native auth-block encoding: postcard (via serde) of a sequence of `(name, bytes)` pairs in
/// canonical name order. An empty map is encoded as an empty block (0 bytes) and an empty block
/// decodes to an empty map.
///
/// Decoding rejects trailing bytes, invalid UTF-8 in a name and duplicate names, and a block that
/// declares more than [`DEFAULT_MAX_AUTH_FIELDS`] fields ([`DecodeError::TooManyAuthFields`], as
/// soon as the count is read); [`PostcardCodec::with_max_fields`] gives a codec with another limit.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netaio::message::{AuthFields, AuthFieldsCodec, PostcardCodec};
///
/// let fields: AuthFields = [("ts", &b"\x01"[..])].into_iter().collect();
/// let mut buf = BytesMut::new();
/// PostcardCodec.encode(&fields, &mut buf).unwrap();
/// assert_eq!(&buf[..], b"\x01\x02ts\x01\x01");
/// assert_eq!(PostcardCodec.decode(&buf.freeze()).unwrap(), fields);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PostcardCodec;

impl PostcardCodec {
    /// The same encoding, refusing blocks that declare more than `max_fields` fields (instead of
    /// [`DEFAULT_MAX_AUTH_FIELDS`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use bytes::BytesMut;
    /// use netaio::message::{AuthFields, AuthFieldsCodec, DecodeError, PostcardCodec};
    ///
    /// let fields: AuthFields = [("a", "1"), ("b", "2"), ("c", "3")].into_iter().collect();
    /// let mut buf = BytesMut::new();
    /// PostcardCodec.encode(&fields, &mut buf).unwrap();
    /// let block = buf.freeze();
    /// assert!(PostcardCodec::with_max_fields(3).decode(&block).is_ok());
    /// assert_eq!(
    ///     PostcardCodec::with_max_fields(2).decode(&block),
    ///     Err(DecodeError::TooManyAuthFields { count: 3, max: 2 })
    /// );
    /// let codec: Arc<dyn AuthFieldsCodec> = Arc::new(PostcardCodec::with_max_fields(64));
    /// # let _ = codec;
    /// ```
    pub const fn with_max_fields(max_fields: usize) -> BoundedPostcardCodec {
        BoundedPostcardCodec { max_fields }
    }
}

/// [`PostcardCodec`] with a field-count limit other than [`DEFAULT_MAX_AUTH_FIELDS`]: made by
/// [`PostcardCodec::with_max_fields`]. Encodes as [`PostcardCodec`] does (the limit only applies
/// to decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedPostcardCodec {
    max_fields: usize,
}

impl BoundedPostcardCodec {
    /// The most fields a decoded block may declare.
    pub const fn max_fields(&self) -> usize {
        self.max_fields
    }
}

impl Default for BoundedPostcardCodec {
    /// The default limit, [`DEFAULT_MAX_AUTH_FIELDS`].
    fn default() -> Self {
        PostcardCodec::with_max_fields(DEFAULT_MAX_AUTH_FIELDS)
    }
}

impl AuthFieldsCodec for BoundedPostcardCodec {
    fn encode(&self, fields: &AuthFields, dst: &mut BytesMut) -> Result<(), EncodeError> {
        PostcardCodec.encode(fields, dst)
    }

    fn decode(&self, block: &Bytes) -> Result<AuthFields, DecodeError> {
        decode_postcard(block, self.max_fields)
    }
}

/// The longest varint postcard reads for a `u64` / `usize`.
const VARINT_MAX: usize = 10;

/// Append `n` as postcard writes a `usize`: LEB128, 7 bits per byte, least significant first.
fn put_varint(dst: &mut BytesMut, mut n: u64) {
    while n >= 0x80 {
        dst.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    dst.put_u8(n as u8);
}

/// The encoded length of [`put_varint`]'s output.
fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// Read a varint as postcard does (at most 10 bytes, the 10th at most 1; overlong forms accepted).
fn take_varint(block: &[u8], pos: &mut usize) -> Result<usize, DecodeError> {
    let mut out = 0u64;
    for i in 0..VARINT_MAX {
        let Some(&b) = block.get(*pos) else {
            return Err(DecodeError::AuthBlock(
                "auth block ends inside a length".into(),
            ));
        };
        *pos += 1;
        out |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if i == VARINT_MAX - 1 && b > 1 {
                break;
            }
            return usize::try_from(out)
                .map_err(|_| DecodeError::AuthBlock("length out of range".into()));
        }
    }
    Err(DecodeError::AuthBlock(
        "bad varint in the auth block".into(),
    ))
}

/// A length-prefixed byte string at `pos`, as a range of `block`.
fn take_bytes(block: &[u8], pos: &mut usize) -> Result<std::ops::Range<usize>, DecodeError> {
    let len = take_varint(block, pos)?;
    let start = *pos;
    let end = start
        .checked_add(len)
        .filter(|end| *end <= block.len())
        .ok_or_else(|| DecodeError::AuthBlock("auth block ends inside a field".into()))?;
    *pos = end;
    Ok(start..end)
}

/// The encoding is written and read by hand, byte for byte what postcard (de)serializes for a
/// `Vec<(&str, &[u8])>`: a varint count, then per pair a varint length and the name's UTF-8, a
/// varint length and the value. (Through serde it cost an intermediate vector, a size pass and a
/// copy per frame; the tests check the two agree on every input.)
impl AuthFieldsCodec for PostcardCodec {
    fn encode(&self, fields: &AuthFields, dst: &mut BytesMut) -> Result<(), EncodeError> {
        if fields.is_empty() {
            return Ok(());
        }
        let size = varint_len(fields.len() as u64)
            + fields
                .entries
                .iter()
                .map(|(n, v)| {
                    varint_len(n.0.len() as u64) + n.0.len() + varint_len(v.len() as u64) + v.len()
                })
                .sum::<usize>();
        dst.reserve(size);
        put_varint(dst, fields.len() as u64);
        for (name, value) in &fields.entries {
            put_varint(dst, name.0.len() as u64);
            dst.put_slice(&name.0);
            put_varint(dst, value.len() as u64);
            dst.put_slice(value);
        }
        Ok(())
    }

    fn decode(&self, block: &Bytes) -> Result<AuthFields, DecodeError> {
        decode_postcard(block, DEFAULT_MAX_AUTH_FIELDS)
    }
}

/// Decode a postcard auth block, refusing a declared count above `max_fields` before reading
/// any field.
fn decode_postcard(block: &Bytes, max_fields: usize) -> Result<AuthFields, DecodeError> {
    if block.is_empty() {
        return Ok(AuthFields::new());
    }
    let mut pos = 0;
    let count = take_varint(block, &mut pos)?;
    if count > max_fields {
        return Err(DecodeError::TooManyAuthFields {
            count,
            max: max_fields,
        });
    }
    // Each pair takes at least two bytes: do not trust the count for the allocation.
    let mut entries = Vec::with_capacity(count.min(block.len() / 2));
    for _ in 0..count {
        let name = take_bytes(block, &mut pos)?;
        let name_bytes = block.get(name.clone()).unwrap_or_default();
        if std::str::from_utf8(name_bytes).is_err() {
            return Err(DecodeError::AuthBlock(
                "field name is not valid UTF-8".into(),
            ));
        }
        let value = take_bytes(block, &mut pos)?;
        entries.push((FieldName(block.slice(name)), block.slice(value)));
    }
    if pos != block.len() {
        return Err(DecodeError::AuthBlock(format!(
            "{} trailing bytes",
            block.len() - pos
        )));
    }
    if !entries.is_sorted_by(|a, b| a.0 < b.0) {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if entries
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.0 == b.0))
        {
            return Err(DecodeError::AuthBlock("duplicate field name".into()));
        }
    }
    Ok(AuthFields { entries })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::ser::{SerializeSeq, SerializeTuple};

    use super::*;

    /// The reference: what postcard itself writes for the pairs (the encoding before it was
    /// written by hand).
    fn postcard_reference(fields: &AuthFields) -> Vec<u8> {
        struct RawBytes<'a>(&'a [u8]);
        impl serde::Serialize for RawBytes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        struct Pair<'a>(&'a str, &'a [u8]);
        impl serde::Serialize for Pair<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(self.0)?;
                t.serialize_element(&RawBytes(self.1))?;
                t.end()
            }
        }
        struct Pairs<'a>(&'a AuthFields);
        impl serde::Serialize for Pairs<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for (n, v) in self.0.iter() {
                    seq.serialize_element(&Pair(n, v))?;
                }
                seq.end()
            }
        }
        if fields.is_empty() {
            return Vec::new();
        }
        postcard::to_allocvec(&Pairs(fields)).unwrap()
    }

    /// The reference decoder: postcard's, with the same checks on top.
    fn postcard_reference_decode(block: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
        if block.is_empty() {
            return Some(Vec::new());
        }
        let (pairs, rest): (Vec<(&str, &[u8])>, &[u8]) = postcard::take_from_bytes(block).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let mut v: Vec<(String, Vec<u8>)> = pairs
            .into_iter()
            .map(|(n, b)| (n.to_owned(), b.to_vec()))
            .collect();
        v.sort();
        if v.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        Some(v)
    }

    proptest! {
        #[test]
        fn encoding_is_postcards(
            pairs in proptest::collection::vec(("[a-z.]{0,12}", proptest::collection::vec(any::<u8>(), 0..300)), 0..6)
        ) {
            let fields: AuthFields = pairs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
            let mut buf = BytesMut::new();
            PostcardCodec.encode(&fields, &mut buf).unwrap();
            prop_assert_eq!(&buf[..], &postcard_reference(&fields)[..]);
            prop_assert_eq!(PostcardCodec.decode(&buf.freeze()).unwrap(), fields);
        }

        /// The map behaves like a sorted map (`BTreeMap`) through any sequence of inserts and
        /// removes, and a map rebuilt from the same fields is equal and encodes the same.
        #[test]
        fn behaves_like_a_sorted_map(
            ops in proptest::collection::vec((any::<bool>(), "[abc]{1,2}", any::<u8>()), 0..24)
        ) {
            let mut fields = AuthFields::new();
            let mut model = std::collections::BTreeMap::new();
            for (insert, name, value) in ops {
                if insert {
                    let old = fields.insert(&name, vec![value]);
                    prop_assert_eq!(old, model.insert(name.clone(), Bytes::from(vec![value])));
                } else {
                    prop_assert_eq!(fields.remove(&name), model.remove(&name));
                }
                prop_assert_eq!(fields.len(), model.len());
                prop_assert_eq!(fields.is_empty(), model.is_empty());
                let got: Vec<(&str, &Bytes)> = fields.iter().collect();
                let want: Vec<(&str, &Bytes)> = model.iter().map(|(n, v)| (n.as_str(), v)).collect();
                prop_assert_eq!(got, want);
                for (name, value) in &model {
                    prop_assert_eq!(fields.get(name), Some(value));
                }
                // Rebuilt from scratch, it is equal and encodes the same.
                let rebuilt: AuthFields = model.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
                prop_assert_eq!(&rebuilt, &fields);
                let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
                PostcardCodec.encode(&fields, &mut a).unwrap();
                PostcardCodec.encode(&rebuilt, &mut b).unwrap();
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(PostcardCodec.decode(&a.freeze()).unwrap(), fields.clone());
            }
        }

        /// Reading by index and removing two fields by index agree with `get` and two `remove`s.
        #[test]
        fn index_access_and_remove_two_at_agree_with_get_and_remove(
            names in proptest::collection::btree_set("[abc]{1,2}", 0..8),
            a in "[abc]{1,2}",
            b in "[abc]{1,2}",
        ) {
            let fields: AuthFields = names.iter().map(|n| (n.as_str(), n.as_bytes().to_vec())).collect();
            for n in [&a, &b] {
                let at = fields.index_of(n);
                prop_assert_eq!(at.is_some(), names.contains(n));
                prop_assert_eq!(at.and_then(|i| fields.value_at(i)), fields.get(n));
            }
            if let (Some(i), Some(j)) = (fields.index_of(&a), fields.index_of(&b)) {
                let mut by_index = fields.clone();
                by_index.remove_two_at(i, j);
                let mut by_name = fields.clone();
                by_name.remove(&a);
                by_name.remove(&b);
                prop_assert_eq!(by_index, by_name);
            }
        }

        #[test]
        fn decoding_agrees_with_postcard_on_any_bytes(
            block in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(0x80), Just(0xff), any::<u8>()], 0..24)
        ) {
            let ours = PostcardCodec.decode(&Bytes::copy_from_slice(&block));
            let reference = postcard_reference_decode(&block);
            match (ours, reference) {
                (Ok(f), Some(r)) => {
                    let f: Vec<(String, Vec<u8>)> =
                        f.iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect();
                    prop_assert_eq!(f, r);
                }
                (Err(DecodeError::AuthBlock(_)), None) => {}
                // More than the limit: postcard might decode it, we refuse it.
                (Err(DecodeError::TooManyAuthFields { count, max }), _) => {
                    prop_assert!(count > max && max == DEFAULT_MAX_AUTH_FIELDS);
                }
                (ours, reference) => prop_assert!(false, "{block:?}: ours {ours:?}, postcard {reference:?}"),
            }
        }
    }

    #[test]
    fn varints_match_postcard_at_the_edges() {
        for n in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut ours = BytesMut::new();
            put_varint(&mut ours, n);
            assert_eq!(ours.len(), varint_len(n), "{n}");
            let theirs = postcard::to_allocvec(&(n as usize)).unwrap();
            assert_eq!(&ours[..], &theirs[..], "{n}");
            let mut pos = 0;
            assert_eq!(take_varint(&ours, &mut pos).unwrap() as u64, n);
            assert_eq!(pos, ours.len());
        }
        // An overlong zero is accepted (as postcard does); an 11th byte or a 10th above 1 is not.
        assert_eq!(take_varint(&[0x80, 0x00], &mut 0).unwrap(), 0);
        let mut ten = vec![0xffu8; 9];
        ten.push(0x02);
        assert!(take_varint(&ten, &mut 0).is_err());
        assert!(take_varint(&[0x80; 11], &mut 0).is_err());
    }

    #[test]
    fn keeps_names_sorted_and_replaces() {
        let mut f = AuthFields::new();
        assert_eq!(f.insert("z", &b"1"[..]), None);
        assert_eq!(f.insert("a", &b"2"[..]), None);
        assert_eq!(f.insert_static("m", &b"3"[..]), None);
        assert_eq!(f.insert("a", &b"4"[..]).as_deref(), Some(&b"2"[..]));
        let names: Vec<_> = f.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "m", "z"]);
        assert_eq!(f.remove("m").as_deref(), Some(&b"3"[..]));
        assert!(!f.contains("m"));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn postcard_round_trip_is_zero_copy() {
        let f: AuthFields = [("nonce", vec![7u8; 24]), ("ts", vec![1, 2])]
            .into_iter()
            .collect();
        let mut buf = BytesMut::new();
        PostcardCodec.encode(&f, &mut buf).unwrap();
        let block = buf.freeze();
        let back = PostcardCodec.decode(&block).unwrap();
        assert_eq!(back, f);
        let v = back.get("nonce").unwrap();
        let range = block.as_ptr() as usize..block.as_ptr() as usize + block.len();
        assert!(
            range.contains(&(v.as_ptr() as usize)),
            "value is a slice of the block"
        );
    }

    #[test]
    fn postcard_rejects_bad_blocks() {
        for bad in [
            &b"\x01"[..],                     // count 1, nothing follows
            &b"\x01\x02t"[..],                // name truncated
            &b"\x01\x01\xff\x00"[..],         // invalid utf-8 name
            &b"\x00\x00"[..],                 // trailing byte
            &b"\x02\x01a\x00\x01a\x00"[..],   // duplicate name
            &b"\xff\xff\xff\xff\xff\xff"[..], // varint overflow
        ] {
            let r = PostcardCodec.decode(&Bytes::copy_from_slice(bad));
            assert!(
                matches!(r, Err(DecodeError::AuthBlock(_))),
                "{bad:?} gave {r:?}"
            );
        }
        assert_eq!(
            PostcardCodec.decode(&Bytes::new()).unwrap(),
            AuthFields::new()
        );
    }

    /// `n` one-byte-named, empty fields, encoded.
    fn block_of(n: usize) -> Bytes {
        let fields: AuthFields = (0..n)
            .map(|i| format!("f{i:04}"))
            .collect::<Vec<_>>()
            .iter()
            .map(|name| (name.as_str(), Bytes::new()))
            .collect();
        assert_eq!(fields.len(), n);
        let mut buf = BytesMut::new();
        PostcardCodec.encode(&fields, &mut buf).unwrap();
        buf.freeze()
    }

    #[test]
    fn a_count_above_the_limit_is_refused_before_the_fields() {
        // Claims a million fields and holds none: the count alone is refused (a decoder that read
        // on would fail with "ends inside a length").
        let mut claim = BytesMut::new();
        put_varint(&mut claim, 1_000_000);
        assert_eq!(
            PostcardCodec.decode(&claim.freeze()),
            Err(DecodeError::TooManyAuthFields {
                count: 1_000_000,
                max: DEFAULT_MAX_AUTH_FIELDS
            })
        );
        // One field too many, every field well formed.
        assert_eq!(
            PostcardCodec.decode(&block_of(DEFAULT_MAX_AUTH_FIELDS + 1)),
            Err(DecodeError::TooManyAuthFields {
                count: DEFAULT_MAX_AUTH_FIELDS + 1,
                max: DEFAULT_MAX_AUTH_FIELDS
            })
        );
        // Exactly the limit is accepted.
        let at_limit = PostcardCodec
            .decode(&block_of(DEFAULT_MAX_AUTH_FIELDS))
            .unwrap();
        assert_eq!(at_limit.len(), DEFAULT_MAX_AUTH_FIELDS);
    }

    #[test]
    fn the_limit_is_configurable() {
        let five = block_of(5);
        assert!(PostcardCodec::with_max_fields(5).decode(&five).is_ok());
        assert_eq!(
            PostcardCodec::with_max_fields(4).decode(&five),
            Err(DecodeError::TooManyAuthFields { count: 5, max: 4 })
        );
        let big = block_of(100);
        assert!(PostcardCodec.decode(&big).is_err());
        let codec = PostcardCodec::with_max_fields(100);
        assert_eq!(codec.max_fields(), 100);
        assert_eq!(codec.decode(&big).unwrap().len(), 100);
        // It encodes as the default codec does.
        let fields = codec.decode(&big).unwrap();
        let mut a = BytesMut::new();
        codec.encode(&fields, &mut a).unwrap();
        assert_eq!(a.freeze(), big);
        assert_eq!(
            BoundedPostcardCodec::default().max_fields(),
            DEFAULT_MAX_AUTH_FIELDS
        );
        // Through a message: the typed error comes out of `Message::decode`.
        let mut m = crate::Message::new(crate::MessageType::REQUEST_URI, "u", "c");
        m.auth = codec.decode(&big).unwrap();
        let frame = m.to_bytes(&codec).unwrap();
        assert_eq!(crate::Message::decode(frame.clone(), &codec).unwrap(), m);
        assert!(matches!(
            crate::Message::decode(frame, &PostcardCodec),
            Err(DecodeError::TooManyAuthFields { count: 100, .. })
        ));
    }
}
