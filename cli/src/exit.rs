//! Exit codes and the one-line failure every command ends with when it does not succeed.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (a reply that is not an error type, or the command ran to its end) |
//! | 1 | any other failure: a file that cannot be read, an address that cannot be bound, … |
//! | 2 | usage error (a bad flag or value; clap prints the usage) |
//! | 3 | an error reply: ERROR, NOT_FOUND or NOT_PERMITTED |
//! | 4 | authentication refused: AUTH_ERROR from the other side, ERROR `decryption failed` (a wrong cipher key), or its reply refused by our plugins |
//! | 5 | timeout: no reply (or nothing heard) in time |
//! | 6 | connection failure: unreachable, refused, name not resolved, closed before the reply |

use netaio::{ConnectError, RequestError, SendError};

/// The content of the ERROR a server sends for a message it cannot decrypt.
const DECRYPTION_FAILED: &[u8] = b"decryption failed";

/// What a failed command exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 1: anything not below.
    Other = 1,
    /// 3: ERROR, NOT_FOUND or NOT_PERMITTED.
    ErrorReply = 3,
    /// 4: authentication refused, by either side.
    Auth = 4,
    /// 5: nothing in time.
    Timeout = 5,
    /// 6: no connection, or it ended.
    Connection = 6,
}

impl Code {
    /// The name in `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            Code::Other => "failure",
            Code::ErrorReply => "error_reply",
            Code::Auth => "auth_refused",
            Code::Timeout => "timeout",
            Code::Connection => "connection_failed",
        }
    }
}

/// A command's failure: its exit code and a one-line message (never a secret).
#[derive(Debug, Clone)]
pub struct Failure {
    /// The exit code.
    pub code: Code,
    /// What went wrong, on one line.
    pub message: String,
}

impl Failure {
    /// A failure with this code.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Exit code 1.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(Code::Other, message)
    }

    /// A failed connect.
    pub fn connect(e: &ConnectError) -> Self {
        let code = match e {
            ConnectError::Timeout { .. } => Code::Timeout,
            _ => Code::Connection,
        };
        Self::new(code, e.to_string())
    }

    /// A failed send.
    pub fn send(e: &SendError) -> Self {
        let code = match e {
            SendError::Closed | SendError::UnknownConnection | SendError::Io(_) => Code::Connection,
            _ => Code::Other,
        };
        Self::new(code, e.to_string())
    }

    /// A failed request (without its error reply, which `output` prints).
    pub fn request(e: &RequestError) -> Self {
        let code = match e {
            RequestError::Timeout(_) => Code::Timeout,
            RequestError::Closed => Code::Connection,
            RequestError::Send(s) => return Self::send(s),
            RequestError::Auth(_) => Code::Auth,
            RequestError::Refused(_) => Code::Auth,
            // The other side could not decrypt it: a wrong or missing cipher key.
            RequestError::Error(reply) if reply.content().as_ref() == DECRYPTION_FAILED => {
                Code::Auth
            }
            RequestError::NotFound(_) | RequestError::NotPermitted(_) | RequestError::Error(_) => {
                Code::ErrorReply
            }
            _ => Code::Other,
        };
        let message = match e {
            RequestError::Auth(reply) => format!(
                "authentication refused by the other side ({}); check --hmac / --cipher / --identity",
                String::from_utf8_lossy(reply.content())
            ),
            RequestError::Error(reply) if reply.content().as_ref() == DECRYPTION_FAILED => {
                "the other side could not decrypt the request; check --cipher".to_owned()
            }
            RequestError::Refused(why) => {
                format!("the reply failed our plugins ({why}); check the secret")
            }
            other => other.to_string(),
        };
        Self::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use netaio::Message;

    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_code() {
        let cases = [
            (RequestError::Timeout(Duration::from_secs(1)), 5),
            (RequestError::Closed, 6),
            (RequestError::Send(SendError::Closed), 6),
            (RequestError::Auth(Message::error("x")), 4),
            (RequestError::NotFound(Message::not_found()), 3),
            (RequestError::Error(Message::error("boom")), 3),
            (RequestError::Error(Message::error("decryption failed")), 4),
            (RequestError::NotPermitted(Message::not_permitted()), 3),
        ];
        for (e, code) in cases {
            assert_eq!(Failure::request(&e).code as i32, code, "{e}");
        }
        let unresolved = ConnectError::Resolve("nowhere".into());
        assert_eq!(Failure::connect(&unresolved).code, Code::Connection);
    }
}
