//! An open request between its steps ([`Entry`]): what it is for, its
//! challenge state, the digests of its short code and poll token, and how it
//! ended. Kept sealed in the store (see the parent module's "Where requests
//! live").

use chrono::{DateTime, Utc};
use rampart_api::webauthn as wapi;
use rampart_api::ErrorCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use webauthn_rs_core::proto::{AuthenticationState, RegistrationState};

use crate::error::CaError;

/// What a request is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Purpose {
    /// Enrol a key for `user`.
    Register {
        /// The user.
        user: String,
        /// The key's name.
        name: String,
        /// From an invite (first factor: recovery codes) or a session.
        via_invite: bool,
        /// The session that asked (not for an invite).
        session_id: Option<String>,
        /// The ID of the user's key this one replaces: removed together with
        /// the new key's registration.
        replaces: Option<String>,
        /// webauthn-rs state (the challenge).
        state: Box<RegistrationState>,
    },
    /// Log `user` in.
    Login {
        /// The user.
        user: String,
        /// webauthn-rs state (the challenge and allowed credentials).
        state: Box<AuthenticationState>,
    },
    /// Approve one bastion session of `user`.
    Approval {
        /// The user.
        user: String,
        /// The bastion that asked.
        bastion: String,
        /// The bastion's session ID.
        session_id: String,
        /// The target.
        target: String,
        /// The login on the target.
        login: String,
        /// webauthn-rs state.
        state: Box<AuthenticationState>,
    },
}

impl Purpose {
    /// The user the request names.
    pub(crate) fn user(&self) -> &str {
        match self {
            Purpose::Register { user, .. }
            | Purpose::Login { user, .. }
            | Purpose::Approval { user, .. } => user,
        }
    }

    /// Metrics flow.
    pub(crate) fn flow(&self) -> crate::metrics::Flow {
        match self {
            Purpose::Register { .. } => crate::metrics::Flow::Enrolment,
            Purpose::Login { .. } => crate::metrics::Flow::Login,
            Purpose::Approval { .. } => crate::metrics::Flow::Session,
        }
    }

    /// A short word for audit details.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Purpose::Register { .. } => "register",
            Purpose::Login { .. } => "login",
            Purpose::Approval { .. } => "approval",
        }
    }
}

/// A refusal remembered for the starter.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Refusal {
    /// Stable code.
    pub code: ErrorCode,
    /// For the user.
    pub message: String,
    /// 403 (a decision: denied, disabled) rather than 401 (a failed proof).
    pub forbidden: bool,
}

impl Refusal {
    /// As an API error.
    pub(crate) fn error(&self) -> CaError {
        if self.forbidden {
            CaError::forbidden(self.code, self.message.clone())
        } else {
            CaError::unauthenticated(self.code, self.message.clone())
        }
    }
}

/// Where a request is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Status {
    /// Waiting for an answer.
    Open,
    /// An answer took the challenge and is being checked.
    Checking,
    /// Finished well; the outcome waits for its starter.
    Done(Box<wapi::CeremonyOutcome>),
    /// An approval whose outcome the bastion has seen, until the session
    /// certificate consumes it.
    Collected(Box<wapi::CeremonyOutcome>),
    /// Refused (denied, expired, failed a check).
    Refused(Refusal),
    /// Ended and collected by its starter (or consumed): kept until it would
    /// have been forgotten anyway, so a late answer is refused as a replay and
    /// its page says it was answered — never the secrets of its outcome.
    Closed,
}

/// A [`Refusal`] as read back from the store.
#[derive(Deserialize)]
struct StoredRefusal {
    code: String,
    message: String,
    forbidden: bool,
}

impl<'de> Deserialize<'de> for Refusal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = StoredRefusal::deserialize(d)?;
        Ok(Refusal {
            // Codes are this binary's own (a stored request is sealed, so the
            // database cannot make one up); one written by another version
            // that this one does not know reads as `webauthn_invalid`.
            code: ErrorCode::parse(&r.code).unwrap_or(ErrorCode::WebauthnInvalid),
            message: r.message,
            forbidden: r.forbidden,
        })
    }
}

/// One request, as kept in the store between the requests that make it up
/// (see [`RelyingParty`]).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// What it is for.
    pub purpose: Purpose,
    /// SHA-256 of the poll token.
    pub poll_digest: [u8; 32],
    /// SHA-256 of the short code (normalised), which is shown to the starter
    /// only; the user types it on the page before the page gets the options
    /// (number matching: a link sent by someone else comes without the code
    /// on the victim's own terminal).
    pub code_digest: [u8; 32],
    /// Wrong codes typed on the page so far.
    pub code_misses: u8,
    /// The page was given the right code: only then may it answer.
    pub code_matched: bool,
    /// When it was started (shown on the page; M9 latency).
    pub started_at: DateTime<Utc>,
    /// When it stops accepting an answer.
    pub expires_at: DateTime<Utc>,
    /// Started for the CTAP2 path (`direct`): metrics say `fido2`.
    pub direct: bool,
    /// The W3C options (`{"publicKey": …}`) handed to the page or the CLI.
    pub options: serde_json::Value,
    /// The source network of whoever started it.
    pub network: String,
    /// Where it is.
    pub status: Status,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("kind", &self.purpose.kind())
            .field("user", &self.purpose.user())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A short code as compared: case, spaces and dashes aside (the user copies
/// it by hand).
pub(super) fn code_digest(code: &str) -> [u8; 32] {
    let norm: Vec<u8> = code
        .bytes()
        .filter(|b| !matches!(b, b'-' | b' ' | b'\t'))
        .map(|b| b.to_ascii_uppercase())
        .collect();
    Sha256::digest(&norm).into()
}

impl Entry {
    /// The metrics factor: `fido2` for the CTAP2 path, else `webauthn`.
    pub(crate) fn factor(&self) -> crate::metrics::Factor {
        if self.direct {
            crate::metrics::Factor::Fido2
        } else {
            crate::metrics::Factor::Webauthn
        }
    }

    /// Does `typed` match the short code? Constant time.
    pub(crate) fn code_matches(&self, typed: &str) -> bool {
        bool::from(code_digest(typed).ct_eq(&self.code_digest))
    }

    /// Does `token` match the poll token? Constant time.
    pub(crate) fn token_matches(&self, token: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        bool::from(d.ct_eq(&self.poll_digest))
    }

    /// Move to `status`.
    pub(crate) fn set(&mut self, status: Status) {
        self.status = status;
    }

    /// Until when it counts against its starter's share of open requests:
    /// while open, until its end; once answered or refused, no longer.
    pub(crate) fn counts_until(&self) -> DateTime<Utc> {
        match self.status {
            Status::Open => self.expires_at,
            _ => self.started_at,
        }
    }
}

/// A new request's public parts, and the entry to keep.
#[derive(Debug)]
pub(crate) struct NewRequest {
    /// Request ID.
    pub request_id: String,
    /// Poll token (to hand out once).
    pub poll_token: rampart_api::WireSecret,
    /// Short code (to show the starter once).
    pub short_code: String,
    /// The entry.
    pub entry: Entry,
}
