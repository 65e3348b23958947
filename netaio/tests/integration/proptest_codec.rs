//! Property tests of the wire model and the frame codec: round trips for arbitrary messages, and no
//! panic on arbitrary input (random bytes and frames with plausible headers).

// The helpers below are test code too (clippy only relaxes these lints inside `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{BufMut, Bytes, BytesMut};
use netaio::codec::{FrameCodec, MessageCodec};
use netaio::message::{
    AuthFields, AuthFieldsCodec, Body, DecodeError, EncodeError, Header, MAX_FRAME,
    MAX_URI_AND_CONTENT, PostcardCodec,
};
use netaio::{Message, MessageType};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

/// Any field name: arbitrary Unicode scalar values, the empty name included.
fn field_name() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

fn auth_fields() -> impl Strategy<Value = AuthFields> {
    btree_map(field_name(), vec(any::<u8>(), 0..64), 0..8).prop_map(|map| {
        let mut fields = AuthFields::new();
        for (name, value) in map {
            fields.insert(&name, value);
        }
        fields
    })
}

fn message_type() -> impl Strategy<Value = MessageType> {
    any::<u8>().prop_map(MessageType::from_u8)
}

/// Messages of every type with arbitrary auth fields and a small body.
fn small_message() -> impl Strategy<Value = Message> {
    (
        message_type(),
        auth_fields(),
        vec(any::<u8>(), 0..64),
        vec(any::<u8>(), 0..512),
    )
        .prop_map(|(message_type, auth, uri, content)| Message {
            message_type,
            auth,
            body: Body::new(uri, content),
        })
}

/// Messages whose uri + content is anywhere up to the limit, the limit itself included.
fn large_message() -> impl Strategy<Value = Message> {
    (0..=300usize, prop_oneof![Just(0usize), 0..=300usize])
        .prop_flat_map(|(uri_len, short_by)| {
            let content_len = MAX_URI_AND_CONTENT - uri_len - short_by;
            (
                message_type(),
                auth_fields(),
                vec(any::<u8>(), uri_len),
                vec(any::<u8>(), content_len),
            )
        })
        .prop_map(|(message_type, auth, uri, content)| Message {
            message_type,
            auth,
            body: Body::new(uri, content),
        })
}

fn encode(msg: &Message) -> Bytes {
    msg.to_bytes(&PostcardCodec).expect("within the limits")
}

fn check_round_trip(msg: &Message) -> Result<(), TestCaseError> {
    let frame = encode(msg);
    let header = Header::from_bytes(&frame).expect("a whole header");
    prop_assert_eq!(header.message_type, msg.message_type);
    prop_assert_eq!(header.frame_len(), frame.len());
    let back = Message::decode(frame.clone(), &PostcardCodec).expect("decodes");
    prop_assert_eq!(&back, msg);
    // Encoding is canonical: the decoded message encodes to the same bytes.
    prop_assert_eq!(encode(&back), frame);
    Ok(())
}

/// Encode `body` with an arbitrary header: correct or random checksum, the given lengths.
fn raw_frame(t: u8, auth: &[u8], body: &[u8], checksum: Option<u32>) -> BytesMut {
    let header = Header {
        message_type: MessageType::from_u8(t),
        auth_length: u16::try_from(auth.len()).unwrap(),
        body_length: u16::try_from(body.len()).unwrap(),
        checksum: checksum.unwrap_or_else(|| crc32fast::hash(body)),
    };
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&header.to_bytes());
    buf.extend_from_slice(auth);
    buf.extend_from_slice(body);
    buf
}

/// A frame with a plausible header: lengths matching (or nearly matching) what follows, a correct
/// checksum most of the time, an auth block that is often valid postcard, and a body whose uri length
/// is often in range.
fn plausible_frame(max_body: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        prop_oneof![
            auth_fields().prop_map(|f| {
                let mut b = BytesMut::new();
                PostcardCodec.encode(&f, &mut b).unwrap();
                b.to_vec()
            }),
            vec(any::<u8>(), 0..32),
        ],
        any::<u16>(),
        vec(any::<u8>(), 0..=max_body),
        prop_oneof![3 => Just(None), 1 => any::<u32>().prop_map(Some)],
        prop_oneof![4 => Just(0i32), 1 => -16i32..16],
    )
        .prop_map(|(t, auth, uri_len, rest, checksum, adjust)| {
            let mut body = Vec::with_capacity(rest.len() + 2);
            // Keep the uri length within the body most of the time.
            let uri_len = if rest.is_empty() {
                uri_len
            } else {
                uri_len % u16::try_from(rest.len() + 1).unwrap_or(u16::MAX)
            };
            body.extend_from_slice(&uri_len.to_be_bytes());
            body.extend_from_slice(&rest);
            body.truncate(usize::from(u16::MAX));
            let mut frame = raw_frame(t, &auth, &body, checksum).to_vec();
            // Sometimes cut the frame short or add bytes after it.
            if adjust < 0 {
                frame.truncate(frame.len().saturating_sub(adjust.unsigned_abs() as usize));
            } else {
                frame.extend(std::iter::repeat_n(0xa5, adjust.unsigned_abs() as usize));
            }
            frame
        })
}

/// Decoding must not panic; when it succeeds, the message must survive a round trip.
fn decode_is_total(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(msg) = Message::decode(Bytes::copy_from_slice(bytes), &PostcardCodec) {
        prop_assert!(msg.uri().len() + msg.content().len() <= MAX_URI_AND_CONTENT);
        let again = Message::decode(encode(&msg), &PostcardCodec).expect("re-decodes");
        prop_assert_eq!(again, msg);
    }
    Ok(())
}

/// Feed `bytes` to `codec` in chunks; decode every frame it yields. Stops at the first stream error.
fn drive_frame_codec(
    mut codec: FrameCodec,
    bytes: &[u8],
    chunk: usize,
) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    let mut frames = 0usize;
    for part in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(part);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    frames += 1;
                    // A frame needs at least its 9-byte header.
                    prop_assert!(frames <= bytes.len() / Header::LEN);
                    prop_assert!(frame.header.frame_len() <= codec.max_frame());
                    let _ = frame.decode(codec.auth_codec());
                }
                Ok(None) => break,
                Err(_) => return Ok(()),
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn small_messages_round_trip(msg in small_message()) {
        check_round_trip(&msg)?;
    }

    #[test]
    fn auth_fields_round_trip(fields in auth_fields()) {
        let mut buf = BytesMut::new();
        PostcardCodec.encode(&fields, &mut buf).unwrap();
        prop_assert_eq!(buf.is_empty(), fields.is_empty());
        let block = buf.freeze();
        let back = PostcardCodec.decode(&block).unwrap();
        prop_assert_eq!(&back, &fields);
        // Names iterate in byte order, and values are slices of the block.
        let names: Vec<&str> = back.iter().map(|(n, _)| n).collect();
        prop_assert!(names.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
        let range = block.as_ptr_range();
        for (_, v) in back.iter().filter(|(_, v)| !v.is_empty()) {
            prop_assert!(range.contains(&v.as_ptr()));
        }
    }

    #[test]
    fn header_round_trips(t in any::<u8>(), a in any::<u16>(), b in any::<u16>(), c in any::<u32>()) {
        let h = Header { message_type: MessageType::from_u8(t), auth_length: a, body_length: b, checksum: c };
        let bytes = h.to_bytes();
        prop_assert_eq!(Header::from_bytes(&bytes), Ok(h));
        prop_assert_eq!(h.frame_len(), 9 + usize::from(a) + usize::from(b));
    }

    #[test]
    fn any_nine_bytes_are_a_header(bytes in vec(any::<u8>(), 0..20)) {
        match Header::from_bytes(&bytes) {
            Ok(h) => prop_assert_eq!(&h.to_bytes()[..], &bytes[..9]),
            Err(e) => prop_assert_eq!(e, DecodeError::TruncatedHeader { got: bytes.len() }),
        }
    }

    #[test]
    fn message_decode_never_panics(bytes in vec(any::<u8>(), 0..600)) {
        decode_is_total(&bytes)?;
    }

    #[test]
    fn message_decode_never_panics_on_plausible_frames(frame in plausible_frame(600)) {
        decode_is_total(&frame)?;
    }

    #[test]
    fn postcard_decode_never_panics(bytes in vec(any::<u8>(), 0..256)) {
        if let Ok(fields) = PostcardCodec.decode(&Bytes::from(bytes)) {
            let mut buf = BytesMut::new();
            PostcardCodec.encode(&fields, &mut buf).unwrap();
            prop_assert_eq!(PostcardCodec.decode(&buf.freeze()).unwrap(), fields);
        }
    }

    #[test]
    fn postcard_decode_never_panics_on_plausible_blocks(
        pairs in vec((vec(any::<u8>(), 0..8), vec(any::<u8>(), 0..16)), 0..6),
        extra_count in 0usize..2,
        cut in 0usize..8,
    ) {
        // A sequence of (name, value) pairs with names that may be invalid UTF-8 or repeated, a
        // count that may be off, and an end that may be cut.
        let mut buf = BytesMut::new();
        buf.put_u8(u8::try_from(pairs.len() + extra_count).unwrap());
        for (name, value) in &pairs {
            buf.put_u8(u8::try_from(name.len()).unwrap());
            buf.extend_from_slice(name);
            buf.put_u8(u8::try_from(value.len()).unwrap());
            buf.extend_from_slice(value);
        }
        let keep = buf.len().saturating_sub(cut);
        buf.truncate(keep);
        let r = PostcardCodec.decode(&buf.freeze());
        if let Err(e) = &r {
            prop_assert!(matches!(e, DecodeError::AuthBlock(_)), "{:?}", e);
        }
    }

    #[test]
    fn frame_codec_never_panics(
        bytes in vec(any::<u8>(), 0..2048),
        chunk in 1usize..64,
        max in 0usize..=MAX_FRAME + 16,
    ) {
        drive_frame_codec(FrameCodec::new().max_frame_size(max), &bytes, chunk)?;
    }

    #[test]
    fn frame_codec_never_panics_on_plausible_frames(
        frames in vec(plausible_frame(300), 0..4),
        chunk in 1usize..64,
    ) {
        let bytes: Vec<u8> = frames.concat();
        drive_frame_codec(FrameCodec::new(), &bytes, chunk)?;
    }

    #[test]
    fn message_codec_reassembles_any_chunking(
        msgs in vec(small_message(), 0..5),
        chunks in vec(1usize..200, 1..8),
    ) {
        let mut codec = MessageCodec::default();
        let mut wire = BytesMut::new();
        for m in &msgs {
            codec.encode(m.clone(), &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = &wire[..];
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                out.push(m);
                prop_assert!(out.len() <= msgs.len());
            }
        }
        prop_assert_eq!(out, msgs);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn bodies_over_the_limit_are_refused(extra in 1usize..2000, uri_len in 0usize..100) {
        let content = vec![0u8; MAX_URI_AND_CONTENT + extra - uri_len];
        let msg = Message::new(MessageType::OK, vec![b'u'; uri_len], content);
        let mut dst = BytesMut::from(&b"keep"[..]);
        prop_assert_eq!(
            msg.encode(&PostcardCodec, &mut dst),
            Err(EncodeError::BodyTooLarge { len: MAX_URI_AND_CONTENT + extra, max: MAX_URI_AND_CONTENT })
        );
        prop_assert_eq!(&dst[..], b"keep");
    }
}

// Big inputs (tens of kilobytes): fewer cases so the suite stays fast.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn large_messages_round_trip(msg in large_message()) {
        check_round_trip(&msg)?;
    }

    #[test]
    fn message_decode_never_panics_on_large_input(bytes in vec(any::<u8>(), 0..70_000)) {
        decode_is_total(&bytes)?;
    }

    #[test]
    fn message_decode_never_panics_on_large_plausible_frames(frame in plausible_frame(usize::from(u16::MAX) - 2)) {
        decode_is_total(&frame)?;
    }

    #[test]
    fn frame_codec_never_panics_on_large_input(
        bytes in vec(any::<u8>(), 0..70_000),
        chunk in 1usize..20_000,
    ) {
        drive_frame_codec(FrameCodec::new(), &bytes, chunk)?;
    }

    #[test]
    fn large_frames_survive_the_stream(msg in large_message(), chunk in 1usize..20_000) {
        let codec = FrameCodec::new();
        let wire = codec.to_frame(&msg).unwrap();
        let mut codec = MessageCodec::new(codec);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for part in wire.chunks(chunk) {
            buf.extend_from_slice(part);
            if let Some(m) = codec.decode(&mut buf).unwrap() {
                out.push(m);
            }
        }
        prop_assert_eq!(out, vec![msg]);
    }
}
