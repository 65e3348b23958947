//! [`GraspError`]: the error codes of RFC 8991 (its appendix A), as one enum.

use std::sync::Arc;

/// Why a GRASP operation failed, with RFC 8991's names and numbers ([`code`](Self::code),
/// [`rfc_name`](Self::rfc_name)). `ok` (0) is `Ok(_)`.
///
/// ```
/// use netaio_grasp::GraspError;
///
/// let e = GraspError::Declined { reason: Some("Invalid currency".into()) };
/// assert_eq!((e.code(), e.rfc_name()), (1, "declined"));
/// assert_eq!(e.to_string(), "declined: Invalid currency");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GraspError {
    /// `declined` (1): the peer ended the negotiation with `O_DECLINE`.
    #[error("declined{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Declined {
        /// The peer's reason, if it gave one.
        reason: Option<String>,
    },
    /// `noReply` (2): no answer yet (non-blocking calls; unused by this async API).
    #[error("no reply")]
    NoReply,
    /// `unspec` (3): no more specific code applies.
    #[error("unspecified error: {0}")]
    Unspec(String),
    /// `ASAfull` (4): the ASA registry is full.
    #[error("ASA registry full")]
    AsaFull,
    /// `dupASA` (5): an ASA of that name is registered.
    #[error("duplicate ASA name")]
    DupAsa,
    /// `noASA` (6): no such ASA.
    #[error("ASA not registered")]
    NoAsa,
    /// `notYourASA` (7): registered, but not with this handle.
    #[error("ASA registered but not by you")]
    NotYourAsa,
    /// `notBoth` (8): an objective cannot be both negotiable and synchronizable.
    #[error("objective cannot support both negotiation and synchronization")]
    NotBoth,
    /// `notDry` (9): dry run without negotiation.
    #[error("dry-run allowed only with negotiation")]
    NotDry,
    /// `notOverlap` (10): overlapping registration refused.
    #[error("overlap not supported")]
    NotOverlap,
    /// `objFull` (11): the objective registry is full.
    #[error("objective registry full")]
    ObjFull,
    /// `objReg` (12): the objective is registered already (without overlap).
    #[error("objective already registered")]
    ObjReg,
    /// `notYourObj` (13): the objective is not registered by this ASA.
    #[error("objective not registered by this ASA")]
    NotYourObj,
    /// `notObj` (14): no such objective.
    #[error("objective not found")]
    NotObj,
    /// `notNeg` (15): the objective is not negotiable.
    #[error("objective not negotiable")]
    NotNeg,
    /// `noSecurity` (16): no security substrate (unused: the node runs on what it is given).
    #[error("no security")]
    NoSecurity,
    /// `noDiscReply` (17): discovery found no peer.
    #[error("no reply to discovery")]
    NoDiscReply,
    /// `sockErrNegRq` (18): the negotiation request could not be sent.
    #[error("socket error sending negotiation request: {0}")]
    SockErrNegRq(Arc<std::io::Error>),
    /// `noSession` (19): the session is over (or never was).
    #[error("no session")]
    NoSession,
    /// `noSocket` (20): the session has no connection.
    #[error("no socket")]
    NoSocket,
    /// `loopExhausted` (21): the loop count does not allow another step.
    #[error("loop count exhausted")]
    LoopExhausted,
    /// `sockErrNegStep` (22): a negotiation step could not be sent.
    #[error("socket error sending negotiation step: {0}")]
    SockErrNegStep(Arc<std::io::Error>),
    /// `noPeer` (23): the peer closed the connection (nobody listening there).
    #[error("negotiation peer not listening")]
    NoPeer,
    /// `CBORfail` (24): the peer's answer is not CBOR.
    #[error("CBOR decode failure")]
    CborFail,
    /// `invalidNeg` (25): an M_NEGOTIATE for another objective, or not negotiable.
    #[error("invalid negotiate message")]
    InvalidNeg,
    /// `invalidEnd` (26): an M_END without accept or decline.
    #[error("invalid end message")]
    InvalidEnd,
    /// `noNegReply` (27): no answer to a negotiation step before the timeout.
    #[error("no reply to negotiation step")]
    NoNegReply,
    /// `noValidStep` (28): the answer to a negotiation step is not a negotiation message.
    #[error("no valid reply to negotiation step")]
    NoValidStep,
    /// `sockErrWait` (29): an M_WAIT could not be sent.
    #[error("socket error sending wait message: {0}")]
    SockErrWait(Arc<std::io::Error>),
    /// `sockErrEnd` (30): an M_END (or M_INVALID) could not be sent.
    #[error("socket error sending end message: {0}")]
    SockErrEnd(Arc<std::io::Error>),
    /// `IDclash` (31): an incoming request's session id is active already.
    #[error("incoming request session id clash")]
    IdClash,
    /// `notSynch` (32): the objective is not synchronizable.
    #[error("not a synchronization objective")]
    NotSynch,
    /// `notFloodDisc` (33): not flooded, and discovery found no peer.
    #[error("not flooded and no reply to discovery")]
    NotFloodDisc,
    /// `sockErrSynRq` (34): the synchronization request could not be sent.
    #[error("socket error sending synch request: {0}")]
    SockErrSynRq(Arc<std::io::Error>),
    /// `noListener` (35): the peer closed the connection without answering.
    #[error("synchronization peer not listening")]
    NoListener,
    /// `noSynchReply` (36): no answer before the timeout.
    #[error("no reply to synchronization request")]
    NoSynchReply,
    /// `noValidSynch` (37): the answer is not an M_SYNCH for the objective.
    #[error("no valid reply to synchronization request")]
    NoValidSynch,
    /// `invalidLoc` (38): a locator this node cannot use.
    #[error("invalid locator")]
    InvalidLoc,
}

impl GraspError {
    /// The RFC 8991 error code.
    pub fn code(&self) -> u8 {
        match self {
            GraspError::Declined { .. } => 1,
            GraspError::NoReply => 2,
            GraspError::Unspec(_) => 3,
            GraspError::AsaFull => 4,
            GraspError::DupAsa => 5,
            GraspError::NoAsa => 6,
            GraspError::NotYourAsa => 7,
            GraspError::NotBoth => 8,
            GraspError::NotDry => 9,
            GraspError::NotOverlap => 10,
            GraspError::ObjFull => 11,
            GraspError::ObjReg => 12,
            GraspError::NotYourObj => 13,
            GraspError::NotObj => 14,
            GraspError::NotNeg => 15,
            GraspError::NoSecurity => 16,
            GraspError::NoDiscReply => 17,
            GraspError::SockErrNegRq(_) => 18,
            GraspError::NoSession => 19,
            GraspError::NoSocket => 20,
            GraspError::LoopExhausted => 21,
            GraspError::SockErrNegStep(_) => 22,
            GraspError::NoPeer => 23,
            GraspError::CborFail => 24,
            GraspError::InvalidNeg => 25,
            GraspError::InvalidEnd => 26,
            GraspError::NoNegReply => 27,
            GraspError::NoValidStep => 28,
            GraspError::SockErrWait(_) => 29,
            GraspError::SockErrEnd(_) => 30,
            GraspError::IdClash => 31,
            GraspError::NotSynch => 32,
            GraspError::NotFloodDisc => 33,
            GraspError::SockErrSynRq(_) => 34,
            GraspError::NoListener => 35,
            GraspError::NoSynchReply => 36,
            GraspError::NoValidSynch => 37,
            GraspError::InvalidLoc => 38,
        }
    }

    /// The name RFC 8991 gives the code (`"noPeer"`, `"declined"`, …).
    pub fn rfc_name(&self) -> &'static str {
        match self {
            GraspError::Declined { .. } => "declined",
            GraspError::NoReply => "noReply",
            GraspError::Unspec(_) => "unspec",
            GraspError::AsaFull => "ASAfull",
            GraspError::DupAsa => "dupASA",
            GraspError::NoAsa => "noASA",
            GraspError::NotYourAsa => "notYourASA",
            GraspError::NotBoth => "notBoth",
            GraspError::NotDry => "notDry",
            GraspError::NotOverlap => "notOverlap",
            GraspError::ObjFull => "objFull",
            GraspError::ObjReg => "objReg",
            GraspError::NotYourObj => "notYourObj",
            GraspError::NotObj => "notObj",
            GraspError::NotNeg => "notNeg",
            GraspError::NoSecurity => "noSecurity",
            GraspError::NoDiscReply => "noDiscReply",
            GraspError::SockErrNegRq(_) => "sockErrNegRq",
            GraspError::NoSession => "noSession",
            GraspError::NoSocket => "noSocket",
            GraspError::LoopExhausted => "loopExhausted",
            GraspError::SockErrNegStep(_) => "sockErrNegStep",
            GraspError::NoPeer => "noPeer",
            GraspError::CborFail => "CBORfail",
            GraspError::InvalidNeg => "invalidNeg",
            GraspError::InvalidEnd => "invalidEnd",
            GraspError::NoNegReply => "noNegReply",
            GraspError::NoValidStep => "noValidStep",
            GraspError::SockErrWait(_) => "sockErrWait",
            GraspError::SockErrEnd(_) => "sockErrEnd",
            GraspError::IdClash => "IDclash",
            GraspError::NotSynch => "notSynch",
            GraspError::NotFloodDisc => "notFloodDisc",
            GraspError::SockErrSynRq(_) => "sockErrSynRq",
            GraspError::NoListener => "noListener",
            GraspError::NoSynchReply => "noSynchReply",
            GraspError::NoValidSynch => "noValidSynch",
            GraspError::InvalidLoc => "invalidLoc",
        }
    }
}
