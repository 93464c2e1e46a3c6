//! Why an attestation is refused ([`PivError`]), each reason with its stable
//! `piv_attestation_*` code.

use super::{PinPolicy, TouchPolicy};
use rampart_api::ErrorCode;

/// Why an attestation was refused. Every variant has a stable [`PivError::code`]
/// (`piv_attestation_*`) that appears in the API error and the audit event.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PivError {
    /// The CA has no `[piv] attestation_roots`, so it cannot verify anything.
    #[error(
        "this CA does not accept PIV attestations ([piv] attestation_roots is not configured)"
    )]
    NotConfigured,
    /// A certificate or PEM block could not be parsed, or is too large.
    #[error("{what}: {detail}")]
    Malformed {
        /// Which input.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The chain does not link up (issuer name ≠ subject name of the next).
    #[error("the attestation chain is broken: {0}")]
    ChainBroken(String),
    /// A signature in the chain does not verify (altered bytes, wrong issuer key).
    #[error("the signature on the {0} does not verify")]
    BadSignature(&'static str),
    /// A signature uses SHA-1 or an algorithm we do not verify.
    #[error("the {which} is signed with an algorithm that is not accepted ({oid})")]
    WeakSignature {
        /// Which certificate.
        which: &'static str,
        /// The signature algorithm OID.
        oid: String,
    },
    /// No configured root issued the top of the chain.
    #[error(
        "the attestation chain does not lead to a configured Yubico PIV attestation root ({0})"
    )]
    UntrustedRoot(String),
    /// A certificate is outside its validity period at `now`.
    #[error("the {which} is not valid now (valid {not_before} to {not_after})")]
    NotValidNow {
        /// Which certificate.
        which: &'static str,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// An intermediate is not allowed to issue certificates.
    #[error("the {0} is not a CA certificate")]
    NotCa(&'static str),
    /// A pathLenConstraint is exceeded.
    #[error("the chain is longer than the {0}'s path length constraint allows")]
    PathTooLong(&'static str),
    /// A certificate has a critical extension we do not understand (RFC 5280 4.2:
    /// "A certificate-using system MUST reject the certificate if it encounters a
    /// critical extension it does not recognize").
    #[error("the {which} has an unsupported critical extension {oid}")]
    CriticalExtension {
        /// Which certificate.
        which: &'static str,
        /// The extension OID.
        oid: String,
    },
    /// The slot certificate has no PIN/touch policy extension (`…41482.3.8`).
    #[error("the slot attestation has no PIN/touch policy extension")]
    PolicyMissing,
    /// The touch policy is not among the accepted ones.
    #[error("the key's touch policy is {found}; this CA accepts {accepted}")]
    TouchPolicy {
        /// The attested policy.
        found: TouchPolicy,
        /// The accepted ones, comma separated.
        accepted: String,
    },
    /// The PIN policy is not among the accepted ones.
    #[error("the key's PIN policy is {found}; this CA accepts {accepted}")]
    PinPolicy {
        /// The attested policy.
        found: PinPolicy,
        /// The accepted ones, comma separated.
        accepted: String,
    },
    /// The attested key is not the key to be certified.
    #[error("the attested key is not the public key in the request")]
    KeyMismatch,
    /// The key type cannot be attested (PIV holds ECDSA P-256/P-384, RSA, Ed25519).
    #[error("a {0} key cannot be PIV-attested")]
    UnsupportedKey(String),
}

impl PivError {
    /// Stable snake_case code, `piv_attestation_*`.
    pub fn code(&self) -> rampart_api::ErrorCode {
        match self {
            PivError::NotConfigured => ErrorCode::PivAttestationNotConfigured,
            PivError::Malformed { .. } => ErrorCode::PivAttestationMalformed,
            PivError::ChainBroken(_) => ErrorCode::PivAttestationChainBroken,
            PivError::BadSignature(_) => ErrorCode::PivAttestationBadSignature,
            PivError::WeakSignature { .. } => ErrorCode::PivAttestationWeakSignature,
            PivError::UntrustedRoot(_) => ErrorCode::PivAttestationUntrustedRoot,
            PivError::NotValidNow { .. } => ErrorCode::PivAttestationNotValidNow,
            PivError::NotCa(_) => ErrorCode::PivAttestationNotCa,
            PivError::PathTooLong(_) => ErrorCode::PivAttestationPathTooLong,
            PivError::CriticalExtension { .. } => ErrorCode::PivAttestationCriticalExtension,
            PivError::PolicyMissing => ErrorCode::PivAttestationPolicyMissing,
            PivError::TouchPolicy { .. } => ErrorCode::PivAttestationTouchPolicy,
            PivError::PinPolicy { .. } => ErrorCode::PivAttestationPinPolicy,
            PivError::KeyMismatch => ErrorCode::PivAttestationKeyMismatch,
            PivError::UnsupportedKey(_) => ErrorCode::PivAttestationUnsupportedKey,
        }
    }
}

pub(super) fn malformed(what: &'static str, detail: impl Into<String>) -> PivError {
    PivError::Malformed {
        what,
        detail: detail.into(),
    }
}
