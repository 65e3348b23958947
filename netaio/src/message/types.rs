//! [`MessageType`]: the one-byte message type at the start of every frame.

use std::fmt;

/// The type of a message: the first byte of every frame.
///
/// Values 0 to 30 are reserved by the protocol; 19 of them are assigned and have a named constant with
/// the same value as in Python netaio 0.0.9. Values 31 to 255 are free for applications and are made
/// with [`MessageType::custom`] (in a `const`) or [`MessageType::try_custom`].
///
/// Any byte decodes: an unassigned value is routed like any other type (usually to the default
/// handler), it never closes the connection.
///
/// ```
/// use netaio::MessageType;
///
/// const PING: MessageType = MessageType::custom(40);
/// assert_eq!(MessageType::REQUEST_URI.value(), 0);
/// assert_eq!(PING.value(), 40);
/// assert!(MessageType::try_custom(12).is_err());
/// assert_eq!(MessageType::NOT_FOUND.name(), Some("NOT_FOUND"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(u8);

/// The error from [`MessageType::try_custom`]: the value is reserved by the protocol (0 to 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message type {0} is reserved (0..=30); custom message types are 31..=255")]
pub struct ReservedMessageType(pub u8);

macro_rules! message_types {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        impl MessageType {
            $($(#[$doc])* pub const $name: MessageType = MessageType($value);)*

            /// Every assigned (named) message type, in ascending order.
            pub const ALL_NAMED: &'static [MessageType] = &[$(MessageType::$name),*];

            /// The protocol name of an assigned type (`"REQUEST_URI"`), or `None` for a reserved
            /// but unassigned value or a custom type.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }

        /// The assigned message types as free constants, for a glob import:
        ///
        /// ```
        /// use netaio::message::names::*;
        /// use netaio::MessageType;
        ///
        /// assert_eq!(REQUEST_URI, MessageType::REQUEST_URI);
        /// ```
        ///
        /// The attribute macros resolve a bare type name (`#[on(REQUEST_URI)]`) through it.
        pub mod names {
            use super::MessageType;
            $(
                #[doc = concat!("[`MessageType::", stringify!($name), "`].")]
                pub const $name: MessageType = MessageType::$name;
            )*
        }
    };
}

message_types! {
    /// 0: read a resource; answered with [`RESPOND_URI`](Self::RESPOND_URI).
    REQUEST_URI = 0,
    /// 1: the answer to a [`REQUEST_URI`](Self::REQUEST_URI).
    RESPOND_URI = 1,
    /// 2: create a resource; answered with [`OK`](Self::OK).
    CREATE_URI = 2,
    /// 3: update a resource; answered with [`OK`](Self::OK).
    UPDATE_URI = 3,
    /// 4: delete a resource; answered with [`OK`](Self::OK).
    DELETE_URI = 4,
    /// 5: subscribe to a uri (the application's handler calls `subscribe`).
    SUBSCRIBE_URI = 5,
    /// 6: unsubscribe from a uri.
    UNSUBSCRIBE_URI = 6,
    /// 7: publish to a uri (application defined).
    PUBLISH_URI = 7,
    /// 8: the conventional type of `notify` payloads.
    NOTIFY_URI = 8,
    /// 9: peer management: a node advertises itself.
    ADVERTISE_PEER = 9,
    /// 10: a success reply.
    OK = 10,
    /// 11: the conventional reply to [`SUBSCRIBE_URI`](Self::SUBSCRIBE_URI).
    CONFIRM_SUBSCRIBE = 11,
    /// 12: the conventional reply to [`UNSUBSCRIBE_URI`](Self::UNSUBSCRIBE_URI).
    CONFIRM_UNSUBSCRIBE = 12,
    /// 13: the reply to [`ADVERTISE_PEER`](Self::ADVERTISE_PEER), carrying the responder's peer.
    PEER_DISCOVERED = 13,
    /// 20: a generic error.
    ERROR = 20,
    /// 23: authentication failed.
    AUTH_ERROR = 23,
    /// 24: no handler for the request (the default handler's reply).
    NOT_FOUND = 24,
    /// 25: the request is not permitted.
    NOT_PERMITTED = 25,
    /// 30: peer management: the peer is leaving.
    DISCONNECT = 30,
}

impl MessageType {
    /// The smallest value available to applications.
    pub const FIRST_CUSTOM: u8 = 31;

    /// Any byte as a message type, reserved or not. This is what decoding does.
    pub const fn from_u8(value: u8) -> Self {
        Self(value)
    }

    /// A custom (application) message type, for use in a `const`.
    ///
    /// # Panics
    ///
    /// If `value` is reserved (below 31). In a `const` item this is a compile error, which is the
    /// intended use; at run time prefer [`try_custom`](Self::try_custom).
    ///
    /// ```
    /// const CHAT: netaio::MessageType = netaio::MessageType::custom(100);
    /// ```
    #[track_caller]
    pub const fn custom(value: u8) -> Self {
        match Self::try_custom(value) {
            Ok(t) => t,
            Err(_) => panic!("custom message types must be in 31..=255"),
        }
    }

    /// A custom (application) message type, checked: values 0 to 30 are reserved.
    pub const fn try_custom(value: u8) -> Result<Self, ReservedMessageType> {
        if value >= Self::FIRST_CUSTOM {
            Ok(Self(value))
        } else {
            Err(ReservedMessageType(value))
        }
    }

    /// The byte on the wire.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// True for values 31 to 255.
    pub const fn is_custom(self) -> bool {
        self.0 >= Self::FIRST_CUSTOM
    }

    /// True for the error types: [`ERROR`](Self::ERROR), [`AUTH_ERROR`](Self::AUTH_ERROR),
    /// [`NOT_FOUND`](Self::NOT_FOUND) and [`NOT_PERMITTED`](Self::NOT_PERMITTED).
    ///
    /// Nothing answers an error-type message with another error (no error ping-pong).
    pub const fn is_error(self) -> bool {
        matches!(self.0, 20 | 23 | 24 | 25)
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        t.0
    }
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        Self(v)
    }
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "MessageType({})", self.0),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_values_match_python() {
        let expected: &[(&str, u8)] = &[
            ("REQUEST_URI", 0),
            ("RESPOND_URI", 1),
            ("CREATE_URI", 2),
            ("UPDATE_URI", 3),
            ("DELETE_URI", 4),
            ("SUBSCRIBE_URI", 5),
            ("UNSUBSCRIBE_URI", 6),
            ("PUBLISH_URI", 7),
            ("NOTIFY_URI", 8),
            ("ADVERTISE_PEER", 9),
            ("OK", 10),
            ("CONFIRM_SUBSCRIBE", 11),
            ("CONFIRM_UNSUBSCRIBE", 12),
            ("PEER_DISCOVERED", 13),
            ("ERROR", 20),
            ("AUTH_ERROR", 23),
            ("NOT_FOUND", 24),
            ("NOT_PERMITTED", 25),
            ("DISCONNECT", 30),
        ];
        assert_eq!(MessageType::ALL_NAMED.len(), 19);
        for (t, (name, value)) in MessageType::ALL_NAMED.iter().zip(expected) {
            assert_eq!(t.value(), *value);
            assert_eq!(t.name(), Some(*name));
        }
    }

    #[test]
    fn custom_range_is_checked() {
        for v in 0..=30u8 {
            assert_eq!(MessageType::try_custom(v), Err(ReservedMessageType(v)));
        }
        for v in 31..=255u8 {
            assert_eq!(MessageType::try_custom(v).map(MessageType::value), Ok(v));
            assert!(MessageType::from_u8(v).is_custom());
        }
        assert_eq!(MessageType::from_u8(15).name(), None);
        assert_eq!(format!("{:?}", MessageType::from_u8(99)), "MessageType(99)");
    }

    #[test]
    fn error_types() {
        let errors: Vec<u8> = (0..=255u8)
            .filter(|v| MessageType::from_u8(*v).is_error())
            .collect();
        assert_eq!(errors, vec![20, 23, 24, 25]);
    }
}
