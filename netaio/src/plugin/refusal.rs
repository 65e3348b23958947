//! Why a message was refused, in one word a person can act on ([`RefusalReason`]), and which
//! plugin refused it: what a node's refusal log line and its per-source counts say.

use std::fmt;

use super::{AuthError, CipherError, OpenError, Plugins};

/// Why a plugin refused a message, grouped by what the operator can do about it.
///
/// ```
/// use netaio::plugin::{AuthError, OpenError, RefusalReason, Stage};
///
/// let e = OpenError::Auth { stage: Stage::Outer, source: AuthError::Invalid };
/// assert_eq!(e.reason(), RefusalReason::BadMac);
/// assert_eq!(e.reason().to_string(), "bad MAC or signature");
/// assert!(e.reason().hint().contains("secret"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The fields the plugin needs are absent: the sender has no such plugin (auth or a cipher
    /// configured on one side only), or another one.
    MissingField,
    /// A field is there but malformed.
    Malformed,
    /// The MAC or signature does not verify: another secret or key.
    BadMac,
    /// The timestamp is outside the accepted window: a clock is wrong, or the message is old.
    Stale,
    /// The message (its nonce) was seen before.
    Replay,
    /// The message was sent by this very node and came back.
    Reflected,
    /// The sender's key is not known or not allowed.
    UnknownKey,
    /// The replay cache is full of live nonces.
    ReplayCacheFull,
    /// Proof of work below the required difficulty.
    InsufficientWork,
    /// The ciphertext does not decrypt: another key, or tampering.
    Decrypt,
    /// Anything else.
    Other,
}

impl RefusalReason {
    /// What to check first, as a short sentence.
    pub fn hint(self) -> &'static str {
        match self {
            RefusalReason::MissingField => {
                "is the same plugin configured on both sides (auth or cipher on one side only)?"
            }
            RefusalReason::Malformed => "does the peer use the same plugin and codec?",
            RefusalReason::BadMac => "is the secret (or key) the same on both sides?",
            RefusalReason::Stale => "are both clocks right (or is this an old message replayed)?",
            RefusalReason::Replay => "a message seen before: replayed, or sent twice",
            RefusalReason::Reflected => "this node's own message came back to it",
            RefusalReason::UnknownKey => "is the peer's key known (exchanged or allowed)?",
            RefusalReason::ReplayCacheFull => "the replay cache is full: raise its size",
            RefusalReason::InsufficientWork => "does the peer use the same difficulty?",
            RefusalReason::Decrypt => "is the cipher key the same on both sides?",
            RefusalReason::Other => "see the error",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefusalReason::MissingField => "missing fields",
            RefusalReason::Malformed => "malformed fields",
            RefusalReason::BadMac => "bad MAC or signature",
            RefusalReason::Stale => "stale timestamp",
            RefusalReason::Replay => "replay",
            RefusalReason::Reflected => "reflected",
            RefusalReason::UnknownKey => "unknown key",
            RefusalReason::ReplayCacheFull => "replay cache full",
            RefusalReason::InsufficientWork => "insufficient proof of work",
            RefusalReason::Decrypt => "decryption failed",
            RefusalReason::Other => "refused",
        })
    }
}

impl From<&AuthError> for RefusalReason {
    fn from(e: &AuthError) -> Self {
        match e {
            AuthError::MissingField(_) => RefusalReason::MissingField,
            AuthError::MalformedField(_) => RefusalReason::Malformed,
            AuthError::Invalid => RefusalReason::BadMac,
            AuthError::Stale { .. } => RefusalReason::Stale,
            AuthError::Replay => RefusalReason::Replay,
            AuthError::Reflected => RefusalReason::Reflected,
            AuthError::CacheFull => RefusalReason::ReplayCacheFull,
            AuthError::UnknownKey => RefusalReason::UnknownKey,
            AuthError::InsufficientWork { .. } => RefusalReason::InsufficientWork,
            AuthError::TooLarge(_) | AuthError::Other(_) => RefusalReason::Other,
        }
    }
}

impl From<&CipherError> for RefusalReason {
    fn from(e: &CipherError) -> Self {
        match e {
            CipherError::MissingField(_) => RefusalReason::MissingField,
            CipherError::MalformedField(_) => RefusalReason::Malformed,
            CipherError::Decrypt => RefusalReason::Decrypt,
            CipherError::UnknownKey => RefusalReason::UnknownKey,
            CipherError::TooLarge(_) | CipherError::Other(_) => RefusalReason::Other,
        }
    }
}

impl OpenError {
    /// Why, grouped by what to do about it.
    pub fn reason(&self) -> RefusalReason {
        match self {
            OpenError::Auth { source, .. } => source.into(),
            OpenError::Cipher { source, .. } => source.into(),
        }
    }

    /// The name of the plugin of `layer` (the layer this error came from) that refused:
    /// its auth plugin for an auth error, its cipher for a decryption error.
    pub fn plugin_name(&self, layer: &Plugins) -> &'static str {
        let name = match self {
            OpenError::Auth { .. } => layer.auth.as_ref().map(|a| a.name()),
            OpenError::Cipher { .. } => layer.cipher.as_ref().map(|c| c.name()),
        };
        name.unwrap_or("plugin")
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::plugin::{AeadCipher, HmacAuth, Stage};

    #[test]
    fn the_refusing_plugin_is_named_by_its_type() {
        let layer = Plugins::new()
            .auth(HmacAuth::new(b"k"))
            .cipher(AeadCipher::new(b"k"));
        let auth = OpenError::Auth {
            stage: Stage::Outer,
            source: AuthError::Stale { ts: 1, now: 100 },
        };
        let cipher = OpenError::Cipher {
            stage: Stage::Outer,
            source: CipherError::Decrypt,
        };
        assert_eq!(auth.plugin_name(&layer), "HmacAuth");
        assert_eq!(auth.reason(), RefusalReason::Stale);
        assert_eq!(cipher.plugin_name(&layer), "AeadCipher");
        assert_eq!(cipher.reason(), RefusalReason::Decrypt);
        assert_eq!(
            super::super::traits::short_type_name("a::b::Wrap<c::D>"),
            "Wrap<c::D>"
        );
    }
}
