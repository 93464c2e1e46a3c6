//! The stable `code` of the CA's error bodies ([`crate::ErrorBody`]).
//!
//! One enum for both ends: the CA builds every error from an [`ErrorCode`], and
//! the CLI and the bastion compare the code they receive with one. The strings
//! are the wire format: a variant's string never changes (tests pin each one).
//! [`crate::ErrorBody::code`] stays a `String`, so a client still reads an error
//! from a newer CA whose code it does not know; compare it with `==`
//! (`body.code == ErrorCode::SessionMfaRequired`).
//!
//! A policy denial carries the policy's own [`DenyCode`]: the policy crate stays
//! free of API concerns, and this enum wraps its codes ([`ErrorCode::Denied`]).
//! Two denial codes are spelled like codes the CA also gives outside the policy
//! (`invalid_request`, `webauthn_link_refused`); [`From<DenyCode>`] maps those to
//! the plain variants, so one string has one value.

use std::fmt;

use rampart_policy::DenyCode;
use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`], its string table and [`ErrorCode::ALL`] from one list,
/// so the serde spelling (snake_case of the variant) and [`ErrorCode::as_str`]
/// cannot be edited apart without the round-trip test noticing.
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $s:literal, )*) => {
        /// A stable, machine-readable error code. See the module documentation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )*
            /// The policy denied the request; the string is the denial's code.
            /// Build it with `ErrorCode::from(deny_code)`, which keeps one value
            /// per string.
            #[serde(untagged)]
            Denied(DenyCode),
        }

        impl ErrorCode {
            /// Every variant except [`ErrorCode::Denied`].
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $s,)*
                    ErrorCode::Denied(d) => d.as_str(),
                }
            }
        }
    };
}

error_codes! {
    // The request itself.
    /// The body is larger than the CA accepts (413).
    BodyTooLarge = "body_too_large",
    /// The body could not be read.
    BadBody = "bad_body",
    /// The body is not JSON.
    MalformedJson = "malformed_json",
    /// The body or a parameter is well-formed but not a valid request.
    InvalidRequest = "invalid_request",
    /// A request needing a content type came without the right one.
    ContentType = "content_type",
    /// A query parameter is invalid.
    InvalidQuery = "invalid_query",
    /// A list limit is out of range.
    InvalidLimit = "invalid_limit",
    /// No such endpoint.
    NotFound = "not_found",
    /// The endpoint does not take this method (405; `Allow` says which).
    MethodNotAllowed = "method_not_allowed",
    /// A bug or an impossible state; the detail is in the CA's log (500).
    Internal = "internal",
    /// The audit log cannot be written, so the CA refuses the action (503).
    AuditUnavailable = "audit_unavailable",
    /// The CA's database cannot be reached right now (503); retry later.
    DatabaseUnavailable = "database_unavailable",

    // Names and values in a request.
    /// A user name is not a valid Rampart user name.
    InvalidUserName = "invalid_user_name",
    /// A group name is invalid.
    InvalidGroup = "invalid_group",
    /// A public key cannot be parsed.
    InvalidPublicKey = "invalid_public_key",
    /// The key type is not one the CA signs.
    UnsupportedKey = "unsupported_key",
    /// A key fingerprint is malformed.
    InvalidFingerprint = "invalid_fingerprint",
    /// A requested certificate lifetime is invalid.
    InvalidTtl = "invalid_ttl",
    /// A reason (for a revocation, a disable) is missing or invalid.
    InvalidReason = "invalid_reason",
    /// A revocation request is invalid.
    InvalidRevocation = "invalid_revocation",
    /// A source-address rule is invalid.
    InvalidSource = "invalid_source",
    /// Labels are invalid.
    InvalidLabels = "invalid_labels",
    /// A subject (of an OIDC link) is invalid.
    InvalidSubject = "invalid_subject",
    /// A security-key name is invalid.
    InvalidKeyName = "invalid_key_name",
    /// A name is already in use.
    NameTaken = "name_taken",
    /// A name does not match the one expected.
    NameMismatch = "name_mismatch",

    // Users, enrolment and admin.
    /// No such user.
    UserUnknown = "user_unknown",
    /// The user already exists.
    UserExists = "user_exists",
    /// The user is disabled.
    UserDisabled = "user_disabled",
    /// The user is locked after too many failures (429).
    UserLocked = "user_locked",
    /// The caller is not an admin.
    NotAdmin = "not_admin",
    /// Admin operations need a recent MFA check.
    AdminMfaStale = "admin_mfa_stale",
    /// Admin operations are refused from a recovery-code login.
    AdminNeedsMfa = "admin_needs_mfa",
    /// An admin may not disable themself.
    CannotDisableSelf = "cannot_disable_self",
    /// The invite or enrolment is unknown.
    EnrollmentUnknown = "enrollment_unknown",
    /// The invite or enrolment has expired.
    EnrollmentExpired = "enrollment_expired",
    /// The invite code is not valid.
    InviteUnknown = "invite_unknown",
    /// The invite has already been used.
    InviteUsed = "invite_used",
    /// The invite has expired.
    InviteExpired = "invite_expired",
    /// Too many failures from this source address (429).
    SourceRateLimited = "source_rate_limited",
    /// The source address is not allowed.
    SourceAddressDenied = "source_address_denied",

    // Factors and sessions.
    /// The second factor is wrong.
    FactorInvalid = "factor_invalid",
    /// The second factor was already used.
    FactorReplayed = "factor_replayed",
    /// The second factor is malformed.
    FactorMalformed = "factor_malformed",
    /// The second factor is not one this user or CA can use.
    FactorUnsupported = "factor_unsupported",
    /// The request carries no session token.
    SessionMissing = "session_missing",
    /// The session token is invalid or expired.
    SessionInvalid = "session_invalid",
    /// A token is unknown.
    TokenUnknown = "token_unknown",
    /// A single-use token was already used.
    TokenUsed = "token_used",
    /// A token (or an OIDC ID token) has expired.
    TokenExpired = "token_expired",
    /// Two MFA proofs in one request disagree.
    MfaConflict = "mfa_conflict",

    // Certificates and keys.
    /// No certificate with this serial.
    SerialUnknown = "serial_unknown",
    /// The key is revoked.
    KeyRevoked = "key_revoked",
    /// The certificate cannot be parsed.
    CertificateMalformed = "certificate_malformed",
    /// The certificate is not valid.
    CertificateInvalid = "certificate_invalid",
    /// The certificate has expired.
    CertificateExpired = "certificate_expired",
    /// The certificate is revoked.
    CertificateRevoked = "certificate_revoked",
    /// The certificate was not issued by this CA.
    CertificateForeign = "certificate_foreign",
    /// The certificate is unknown to the CA.
    CertificateUnknown = "certificate_unknown",
    /// The certificate is not a user certificate.
    CertificateNotUser = "certificate_not_user",
    /// The certificate carries no MFA.
    CertificateNoMfa = "certificate_no_mfa",
    /// The certificate is not a host certificate.
    CertificateNotHost = "certificate_not_host",
    /// A host's renewal proof is not a signature by the certificate's key
    /// over the request, or its time is too far from the CA's.
    RenewalProofInvalid = "renewal_proof_invalid",

    // Bastions and their sessions.
    /// The request carries no bastion credential.
    BastionCredentialMissing = "bastion_credential_missing",
    /// The bastion credential is wrong.
    BastionCredentialInvalid = "bastion_credential_invalid",
    /// No such bastion.
    BastionUnknown = "bastion_unknown",
    /// A bastion name is invalid.
    InvalidBastionName = "invalid_bastion_name",
    /// The host key is not registered.
    HostKeyNotRegistered = "host_key_not_registered",
    /// The host key is revoked.
    HostKeyRevoked = "host_key_revoked",
    /// A bastion event is invalid.
    InvalidEvent = "invalid_event",
    /// Too many events in one batch.
    BatchTooLarge = "batch_too_large",
    /// A session ID is invalid.
    InvalidSessionId = "invalid_session_id",
    /// The abnormal-end marker is invalid.
    InvalidAbnormalEnd = "invalid_abnormal_end",
    /// The policy denies the session.
    AccessDenied = "access_denied",
    /// A session target is invalid.
    InvalidTarget = "invalid_target",
    /// A host certificate request is refused.
    HostRefused = "host_refused",
    /// The per-session certificate needs a per-session code: the bastion asks the
    /// user for one and retries with `totp_code` set.
    SessionMfaRequired = "session_mfa_required",
    /// The per-session certificate needs a security-key approval: the bastion
    /// starts one, shows it to the user and retries with `webauthn_approval` set.
    SessionApprovalRequired = "session_approval_required",
    /// A request names a session the CA does not know.
    SessionUnknown = "session_unknown",
    /// The user's proof of presence is missing.
    UserProofRequired = "user_proof_required",
    /// The user's proof of presence does not show the certificate holder.
    UserProofInvalid = "user_proof_invalid",
    /// Another bastion presented this proof first.
    UserProofForeign = "user_proof_foreign",
    /// The proof is used past its window.
    UserProofExpired = "user_proof_expired",

    // Recordings.
    /// The recording digest header is missing.
    RecordingDigestMissing = "recording_digest_missing",
    /// The recording does not match its digest.
    RecordingDigestMismatch = "recording_digest_mismatch",
    /// The recording is not zstd data.
    RecordingNotZstd = "recording_not_zstd",
    /// The recording is larger than the CA accepts.
    RecordingTooLarge = "recording_too_large",
    /// Other bytes were already sealed for this session.
    RecordingExists = "recording_exists",
    /// No recording for this session.
    RecordingNotFound = "recording_not_found",
    /// The sealed recording's file is missing.
    RecordingMissing = "recording_missing",
    /// The stored recording no longer matches its seal.
    RecordingTampered = "recording_tampered",

    // OIDC.
    /// OIDC login is not configured.
    OidcDisabled = "oidc_disabled",
    /// No such OIDC provider.
    OidcProviderUnknown = "oidc_provider_unknown",
    /// No such OIDC provider (from the login flow).
    OidcUnknownProvider = "oidc_unknown_provider",
    /// The OIDC provider cannot be reached (502).
    OidcProviderUnavailable = "oidc_provider_unavailable",
    /// The provider offers no device flow.
    OidcDeviceUnsupported = "oidc_device_unsupported",
    /// The redirect URI is not allowed.
    OidcRedirectInvalid = "oidc_redirect_invalid",
    /// The login state is unknown or already used.
    OidcStateUnknown = "oidc_state_unknown",
    /// The login took too long.
    OidcStateExpired = "oidc_state_expired",
    /// Too many OIDC logins are pending.
    OidcBusy = "oidc_busy",
    /// Too many host join tokens are outstanding (for this admin, or in all).
    HostTokensFull = "host_tokens_full",
    /// The OIDC identity is linked to no user.
    OidcUserUnknown = "oidc_user_unknown",
    /// The account is not linked to the OIDC identity.
    OidcAccountNotLinked = "oidc_account_not_linked",
    /// The user is already linked to an OIDC identity.
    OidcUserLinked = "oidc_user_linked",
    /// The OIDC identity is already linked to a user.
    OidcSubjectLinked = "oidc_subject_linked",
    /// Linking would conflict with an existing link.
    OidcLinkConflict = "oidc_link_conflict",
    /// This user must log in with OIDC.
    OidcRequired = "oidc_required",
    /// The provider's login is too old: authenticate again.
    OidcStepUpRequired = "oidc_step_up_required",
    /// The provider refused the authorization code.
    CodeRejected = "code_rejected",
    /// The provider answered without an ID token.
    NoIdToken = "no_id_token",
    /// The ID token is unsigned.
    AlgNone = "alg_none",
    /// The ID token's algorithm is not allowed.
    AlgNotAllowed = "alg_not_allowed",
    /// The ID token's key ID is unknown.
    UnknownKid = "unknown_kid",
    /// The ID token's signature is wrong.
    BadSignature = "bad_signature",
    /// The ID token's issuer is wrong.
    WrongIssuer = "wrong_issuer",
    /// The ID token is for another audience.
    WrongAudience = "wrong_audience",
    /// The ID token's nonce does not match.
    NonceMismatch = "nonce_mismatch",
    /// The ID token has no `auth_time`.
    AuthTimeMissing = "auth_time_missing",
    /// The ID token's user-name claim is missing or invalid.
    UsernameInvalid = "username_invalid",
    /// The ID token is malformed.
    TokenMalformed = "token_malformed",

    // Security keys (WebAuthn).
    /// Security keys are not configured.
    WebauthnDisabled = "webauthn_disabled",
    /// The user has no usable security key.
    WebauthnNoKeys = "webauthn_no_keys",
    /// No such security key.
    WebauthnKeyUnknown = "webauthn_key_unknown",
    /// The security key is disabled.
    WebauthnKeyDisabled = "webauthn_key_disabled",
    /// The security key is already registered.
    WebauthnKeyExists = "webauthn_key_exists",
    /// The user already has a security key of this name.
    WebauthnKeyNameTaken = "webauthn_key_name_taken",
    /// The authenticator's model is not allowed.
    WebauthnAaguidNotAllowed = "webauthn_aaguid_not_allowed",
    /// The assertion is malformed.
    WebauthnMalformed = "webauthn_malformed",
    /// The assertion was already used.
    WebauthnReplayed = "webauthn_replayed",
    /// The credential is unknown.
    WebauthnUnknownCredential = "webauthn_unknown_credential",
    /// The credential belongs to another user.
    WebauthnForeignCredential = "webauthn_foreign_credential",
    /// Too many prompts are pending.
    WebauthnBusy = "webauthn_busy",
    /// The user refused the request.
    WebauthnDenied = "webauthn_denied",
    /// The request needs its short code.
    WebauthnCodeRequired = "webauthn_code_required",
    /// The short code is wrong.
    WebauthnCodeMismatch = "webauthn_code_mismatch",
    /// No such request.
    WebauthnRequestUnknown = "webauthn_request_unknown",
    /// The request has expired.
    WebauthnRequestExpired = "webauthn_request_expired",
    /// No such approval.
    WebauthnApprovalUnknown = "webauthn_approval_unknown",
    /// The request was already answered.
    WebauthnRequestFinished = "webauthn_request_finished",
    /// Too many security-key prompts: locked for a while (429).
    WebauthnPromptsLocked = "webauthn_prompts_locked",
    /// The security-key login is too old for this.
    WebauthnMfaStale = "webauthn_mfa_stale",
    /// The security key was used through a link, which the roles refuse.
    WebauthnLinkRefused = "webauthn_link_refused",
    /// A stored refusal's code is one this version does not know.
    WebauthnInvalid = "webauthn_invalid",
    /// The browser answered for another web site (origin).
    WebauthnWrongOrigin = "webauthn_wrong_origin",
    /// The key answered for another relying party (RP ID).
    WebauthnWrongRpId = "webauthn_wrong_rp_id",
    /// The answer is for another challenge (replayed or stale).
    WebauthnChallengeMismatch = "webauthn_challenge_mismatch",
    /// The answer is for another kind of ceremony.
    WebauthnWrongCeremony = "webauthn_wrong_ceremony",
    /// The CA requires user verification (PIN or biometric) on the key.
    WebauthnUvMissing = "webauthn_uv_missing",
    /// The key did not report user presence (touch).
    WebauthnUpMissing = "webauthn_up_missing",
    /// The key's signature counter went backwards; the key is now disabled.
    WebauthnSignCount = "webauthn_sign_count",
    /// The key's signature does not verify.
    WebauthnSignatureInvalid = "webauthn_signature_invalid",
    /// The key is already enrolled or answered with an algorithm not offered.
    WebauthnKeyRefused = "webauthn_key_refused",
    /// The key's attestation is not trusted.
    WebauthnAttestationUntrusted = "webauthn_attestation_untrusted",
    /// A security key cannot be enrolled from a recovery-code session.
    EnrolmentRecoverySession = "enrolment_recovery_session",
    /// The session's factor is weaker than the key to enrol.
    EnrolmentFactorTooWeak = "enrolment_factor_too_weak",
    /// The approval was already used.
    WebauthnApprovalUsed = "webauthn_approval_used",
    /// The approval has not been given yet.
    WebauthnApprovalPending = "webauthn_approval_pending",
    /// The approval was given for another user, session, target or login.
    WebauthnApprovalMismatch = "webauthn_approval_mismatch",
    /// An approval is invalid.
    InvalidApproval = "invalid_approval",

    // PIV attestation (a refused attestation, never a silent downgrade).
    /// PIV attestation is not configured.
    PivAttestationNotConfigured = "piv_attestation_not_configured",
    /// The attestation is malformed.
    PivAttestationMalformed = "piv_attestation_malformed",
    /// The attestation chain is broken.
    PivAttestationChainBroken = "piv_attestation_chain_broken",
    /// An attestation signature is wrong.
    PivAttestationBadSignature = "piv_attestation_bad_signature",
    /// An attestation signature is too weak.
    PivAttestationWeakSignature = "piv_attestation_weak_signature",
    /// The attestation root is not trusted.
    PivAttestationUntrustedRoot = "piv_attestation_untrusted_root",
    /// An attestation certificate is not valid now.
    PivAttestationNotValidNow = "piv_attestation_not_valid_now",
    /// An intermediate is not a CA.
    PivAttestationNotCa = "piv_attestation_not_ca",
    /// The attestation path is too long.
    PivAttestationPathTooLong = "piv_attestation_path_too_long",
    /// An unknown critical extension.
    PivAttestationCriticalExtension = "piv_attestation_critical_extension",
    /// The touch/PIN policy extension is missing.
    PivAttestationPolicyMissing = "piv_attestation_policy_missing",
    /// The touch policy is weaker than required.
    PivAttestationTouchPolicy = "piv_attestation_touch_policy",
    /// The PIN policy is weaker than required.
    PivAttestationPinPolicy = "piv_attestation_pin_policy",
    /// The attested key is not the key to sign.
    PivAttestationKeyMismatch = "piv_attestation_key_mismatch",
    /// The key type cannot be attested.
    PivAttestationUnsupportedKey = "piv_attestation_unsupported_key",
}

impl ErrorCode {
    /// The code spelled `s`, or `None` for a code this build does not know.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        use serde::de::IntoDeserializer;
        let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            s.into_deserializer();
        ErrorCode::deserialize(de).ok()
    }
}

impl From<DenyCode> for ErrorCode {
    fn from(d: DenyCode) -> Self {
        match d {
            DenyCode::InvalidRequest => ErrorCode::InvalidRequest,
            DenyCode::WebauthnLinkRefused => ErrorCode::WebauthnLinkRefused,
            other => ErrorCode::Denied(other),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<ErrorCode> for str {
    fn eq(&self, other: &ErrorCode) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<ErrorCode> for &str {
    fn eq(&self, other: &ErrorCode) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<ErrorCode> for String {
    fn eq(&self, other: &ErrorCode) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every denial code the policy has today (the policy's enum is
    /// non-exhaustive, so a new one must be added here by hand).
    const DENY_CODES: &[DenyCode] = &[
        DenyCode::InvalidRequest,
        DenyCode::NoRole,
        DenyCode::DeniedByRule,
        DenyCode::RecoveryRefused,
        DenyCode::FactorTooWeak,
        DenyCode::WebauthnLinkRefused,
        DenyCode::MfaTooOld,
        DenyCode::MfaInFuture,
        DenyCode::NoPrincipals,
        DenyCode::LoginNotGranted,
        DenyCode::TargetNotAllowed,
        DenyCode::InvalidHostName,
        DenyCode::TargetNotRegistered,
    ];

    fn all() -> Vec<ErrorCode> {
        let mut all = ErrorCode::ALL.to_vec();
        all.extend(DENY_CODES.iter().map(|&d| ErrorCode::from(d)));
        all
    }

    #[test]
    fn every_code_round_trips_through_its_string() {
        for code in all() {
            let s = code.as_str();
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{s}\""),
                "{code:?}"
            );
            assert_eq!(
                serde_json::from_str::<ErrorCode>(&format!("\"{s}\"")).unwrap(),
                code
            );
            assert_eq!(ErrorCode::parse(s), Some(code), "{s}");
            assert_eq!(code.to_string(), s);
            let owned: String = s.into();
            assert!(s == code, "{s}");
            assert!(owned == code, "{s}");
            assert!(code == s, "{s}");
        }
    }

    #[test]
    fn every_string_is_snake_case_and_names_one_code() {
        let mut seen = std::collections::BTreeMap::new();
        for code in all() {
            let s = code.as_str();
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            let first = *seen.entry(s).or_insert(code);
            assert_eq!(first, code, "two variants spell {s}");
        }
    }

    #[test]
    fn a_denial_keeps_the_policy_spelling() {
        for &d in DENY_CODES {
            assert_eq!(ErrorCode::from(d).as_str(), d.as_str());
        }
        assert_eq!(
            ErrorCode::from(DenyCode::NoRole),
            ErrorCode::Denied(DenyCode::NoRole)
        );
        assert_eq!(
            ErrorCode::from(DenyCode::InvalidRequest),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn unknown_and_malformed_strings_are_not_codes() {
        for s in ["", "nope", "Session_Unknown", "session_unknown ", "denied"] {
            assert_eq!(ErrorCode::parse(s), None, "{s:?}");
        }
        assert!(serde_json::from_str::<ErrorCode>("\"nope\"").is_err());
    }

    #[test]
    fn some_codes_keep_their_historic_spelling() {
        assert_eq!(
            ErrorCode::SessionMfaRequired.as_str(),
            "session_mfa_required"
        );
        assert_eq!(
            ErrorCode::SessionApprovalRequired.as_str(),
            "session_approval_required"
        );
        assert_eq!(ErrorCode::SessionUnknown.as_str(), "session_unknown");
        assert_eq!(ErrorCode::RecordingMissing.as_str(), "recording_missing");
        assert_eq!(ErrorCode::Denied(DenyCode::NoRole).as_str(), "no_role");
    }
}
