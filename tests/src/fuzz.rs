//! The bodies of the fuzz targets, one function per target, each taking arbitrary bytes.
//!
//! `fuzz/` (cargo-fuzz, nightly) runs them under libFuzzer; on the stable toolchain the e2e test
//! `fuzz_replay` runs them over the committed corpus (`fuzz/corpus/<target>/`) and over seeded
//! mutations of it, so every CI run exercises them. Each function panics only when netaio
//! breaks one of its promises (it panicked itself, or accepted something it must refuse); a
//! refusal is the expected outcome for almost every input.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use netaio::codec::FrameCodec;
use netaio::compat::PackifyCodec;
use netaio::message::{AuthFieldsCodec, PostcardCodec};
use netaio::plugin::{AeadCipher, HmacAuth, PluginContext, Plugins, open_outer, seal};
use netaio::{Message, MessageType};
use netaio_gossip::{Bulletin, BulletinHeader, BulletinPolicy, ContentId, TopicId};
use tokio_util::codec::Decoder;

/// One fuzz target: arbitrary bytes in, a panic only on a broken promise.
pub type Target = fn(&[u8]);

/// The targets by name: the names of `fuzz/fuzz_targets/*.rs` and of the corpus directories.
pub const TARGETS: [(&str, Target); 7] = [
    ("frame_stream", frame_stream),
    ("message_decode", message_decode),
    ("postcard_auth_block", postcard_auth_block),
    ("packify_auth_block", packify_auth_block),
    ("pipeline_hmac_aead", pipeline_hmac_aead),
    ("gossip_bulletin", gossip_bulletin),
    ("grasp_message", grasp_message),
];

/// A byte stream, cut into reads where the stream says, through the frame splitter and the
/// frame decoder (the TCP driver's path). A frame that decodes must encode back to a frame that
/// decodes to the same message.
pub fn frame_stream(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let mut codec = FrameCodec::new().max_frame_size(64 * 1024);
    let mut buf = BytesMut::new();
    let step = usize::from(cut).max(1);
    for chunk in stream.chunks(step) {
        buf.extend_from_slice(chunk);
        // Bounded: each frame consumes at least a header's bytes.
        for _ in 0..=stream.len() {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Ok(msg) = frame.decode(codec.auth_codec()) {
                        round_trips(&msg, codec.auth_codec());
                    }
                }
                Ok(None) => break,
                // The stream cannot be trusted after this: a transport closes the connection.
                Err(_) => return,
            }
        }
    }
}

/// One datagram (the UDP node's path): decoded with the native and the Python auth codecs.
pub fn message_decode(data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    let native = PostcardCodec;
    if let Ok(msg) = Message::decode(frame.clone(), &native) {
        round_trips(&msg, &native);
    }
    let python = PackifyCodec;
    if let Ok(msg) = Message::decode(frame, &python) {
        round_trips(&msg, &python);
    }
}

/// An auth block alone, native layout.
pub fn postcard_auth_block(data: &[u8]) {
    auth_block(data, &PostcardCodec);
}

/// An auth block alone, the Python (`packify`) layout.
pub fn packify_auth_block(data: &[u8]) {
    auth_block(data, &PackifyCodec);
}

fn auth_block(data: &[u8], codec: &dyn AuthFieldsCodec) {
    let Ok(fields) = codec.decode(&Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut out = BytesMut::new();
    // A decoded block may not be encodable (a field too long for this layout): that is a
    // refusal, not a bug. One that encodes must decode to the same fields.
    if codec.encode(&fields, &mut out).is_ok() {
        let again = codec.decode(&out.freeze());
        assert_eq!(again.ok(), Some(fields), "auth block did not round-trip");
    }
}

/// The receive pipeline of a node with `HmacAuth` + `AeadCipher`: the input is taken as a frame
/// and opened (only the genuine frame can pass), and, with the first byte odd, as a pattern XORed
/// onto a genuine sealed frame: that frame must open to the original message or be refused,
/// never open to anything else.
pub fn pipeline_hmac_aead(data: &[u8]) {
    let (plugins, sealed, original) = sealed_frame();
    let ctx = PluginContext::default();
    let codec = PostcardCodec;
    // Only the genuine frame can open (and only once: then it is a replay).
    if let Ok(msg) = Message::decode(Bytes::copy_from_slice(data), &codec)
        && let Ok(opened) = open_outer(msg, plugins, &ctx)
    {
        assert_eq!(&opened, original, "an unauthenticated frame was accepted");
    }
    let Some((&mode, pattern)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 || pattern.is_empty() {
        return;
    }
    let mut tampered = sealed.to_vec();
    for (i, b) in pattern.iter().enumerate() {
        if let Some(t) = tampered.get_mut(i % sealed.len()) {
            *t ^= b;
        }
    }
    if tampered == sealed.as_ref() {
        return; // Not tampered: it would be a replay of the genuine frame.
    }
    let Ok(msg) = Message::decode(Bytes::from(tampered), &codec) else {
        return;
    };
    if let Ok(opened) = open_outer(msg, plugins, &ctx) {
        assert_eq!(
            &opened, original,
            "a tampered frame opened to another message"
        );
    }
}

/// A gossip bulletin as it arrives from a peer: decoded, re-encoded to the same bytes, and
/// checked by the default policy (expiry, size, proof of work, content hash) without panicking.
pub fn gossip_bulletin(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let Ok(bulletin) = Bulletin::decode(bytes.clone()) else {
        return;
    };
    assert_eq!(bulletin.encode(), bytes, "bulletin did not round-trip");
    let _ = BulletinPolicy::default().verify(bulletin, 1_700_000_000);
}

/// A GRASP message (`netaio-grasp`), as a datagram and as the start of a TCP stream: a message
/// that decodes encodes to one that decodes to the same message.
pub fn grasp_message(data: &[u8]) {
    use netaio_grasp::Message as Grasp;
    let max = netaio_grasp::wire::DEFAULT_MAX_SIZE;
    for decoded in [
        Grasp::decode(data, max),
        Grasp::decode_prefix(data, max).map(|(m, _)| m),
    ] {
        let Ok(msg) = decoded else { continue };
        // Encoding may refuse what decoding took (a value too deep to write back): a refusal,
        // not a bug. What encodes must decode to a message that encodes the same (compared as
        // bytes: a NaN float is not equal to itself).
        if let Ok(bytes) = msg.encode() {
            let again = Grasp::decode(&bytes, bytes.len().max(max))
                .unwrap_or_else(|e| panic!("an encoded GRASP message does not decode: {e}"));
            assert_eq!(
                again.encode().ok(),
                Some(bytes),
                "GRASP message did not round-trip"
            );
        }
    }
}

/// One genuine frame sealed with the pipeline's plugins, made once.
fn sealed_frame() -> &'static (Plugins, Bytes, Message) {
    static SEALED: OnceLock<(Plugins, Bytes, Message)> = OnceLock::new();
    SEALED.get_or_init(|| {
        let plugins = Plugins::new()
            .auth(HmacAuth::new(b"fuzz secret"))
            .cipher(AeadCipher::new(b"fuzz cipher key"));
        let original = Message::new(MessageType::REQUEST_URI, "fuzz/target", "some content");
        let sealed = seal(
            original.clone(),
            &Plugins::new(),
            &plugins,
            &PluginContext::default(),
        )
        .unwrap_or_else(|e| panic!("sealing the fuzz frame: {e}"))
        .to_bytes(&PostcardCodec)
        .unwrap_or_else(|e| panic!("encoding the fuzz frame: {e}"));
        (plugins, sealed, original)
    })
}

fn round_trips(msg: &Message, codec: &dyn AuthFieldsCodec) {
    // A message that decoded can be too large to encode again only if the decoder accepted
    // more than the encoder allows: a bug either way.
    let bytes = msg
        .to_bytes(codec)
        .unwrap_or_else(|e| panic!("a decoded message does not encode: {e}"));
    let again = Message::decode(bytes, codec).unwrap_or_else(|e| panic!("re-decoding: {e}"));
    assert_eq!(&again, msg, "message did not round-trip");
}

/// Seeds for the corpus: frames and auth blocks of every kind the library makes.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let native: Arc<dyn AuthFieldsCodec> = Arc::new(PostcardCodec);
    let python: Arc<dyn AuthFieldsCodec> = Arc::new(PackifyCodec);
    let (_, sealed, _) = sealed_frame();
    let mut messages = vec![
        Message::new(MessageType::REQUEST_URI, "echo", "hello"),
        Message::new(MessageType::OK, "", ""),
        Message::new(MessageType::PUBLISH_URI, "topic", vec![0u8; 300]),
        Message::error("boom"),
    ];
    let mut with_auth = Message::new(MessageType::SUBSCRIBE_URI, "t", "");
    with_auth.auth.insert("nonce", vec![1u8; 16]);
    with_auth.auth.insert("hmac", vec![2u8; 32]);
    with_auth.set_request_id(7);
    messages.push(with_auth);
    for msg in &messages {
        for codec in [&native, &python] {
            let Ok(bytes) = msg.to_bytes(codec.as_ref()) else {
                continue;
            };
            out.push(("message_decode", bytes.to_vec()));
            let mut stream = vec![7u8];
            stream.extend_from_slice(&bytes);
            stream.extend_from_slice(&bytes);
            out.push(("frame_stream", stream));
            let mut block = BytesMut::new();
            if codec.encode(&msg.auth, &mut block).is_ok() {
                let name = if Arc::ptr_eq(codec, &native) {
                    "postcard_auth_block"
                } else {
                    "packify_auth_block"
                };
                out.push((name, block.to_vec()));
            }
        }
    }
    out.push(("pipeline_hmac_aead", sealed.to_vec()));
    let content = b"a bulletin's content".as_slice();
    let header = BulletinHeader {
        topic: TopicId::from_descriptor(b"a topic"),
        content_id: ContentId::of(content),
        timestamp: 1_700_000_000,
        nonce: 7,
    };
    out.push((
        "gossip_bulletin",
        Bulletin::new(header, content).encode().to_vec(),
    ));
    let mut flip = vec![1u8];
    flip.extend(std::iter::repeat_n(0u8, 20));
    flip.push(0x40);
    out.push(("pipeline_hmac_aead", flip));
    out
}
