//! The authority's side of the hardware-key factor: who may start which ceremony,
//! what an answer proves, and everything that follows from it — audit events,
//! failure counting and lockout (the same as for TOTP), sessions, enrolled keys,
//! recovery codes, the evidence a certificate carries, and the approvals a
//! bastion's per-session certificate consumes. A child of `authority` so that
//! these rules share the TOTP login's helpers. The cryptographic checks are
//! `crate::webauthn`'s.
//!
//! One request's life, file by file:
//! - `register`, `login`, `approvals` open a request (enrolment, login, or a
//!   bastion's per-session approval) and say what a good answer does;
//! - `request` holds what every request shares: opening it, the starter's
//!   `WAIT`, taking its challenge exactly once, and settling how it ended;
//! - an answer comes either straight from the starter (the CTAP2 path,
//!   [`Authority::webauthn_finish`]) or from the CA's own page, reached by a
//!   link the starter prints (`link_page`: the page shows who asked, and hands
//!   out the challenge only for the code the starter's terminal shows);
//! - `assertion` checks a login or approval answer against the user's keys;
//! - `evidence` turns a key session into a policy factor and certificate
//!   extensions; `keys` lists and removes enrolled keys.
//!
//! Reason codes (API error `code`, audit `reason`) are stable:
//! `webauthn_request_unknown`, `webauthn_request_expired`, `webauthn_replayed`,
//! `webauthn_denied`, `webauthn_no_keys`, `webauthn_malformed`,
//! `webauthn_unknown_credential`, `webauthn_foreign_credential`,
//! `webauthn_key_disabled`, `webauthn_sign_count`, `webauthn_uv_missing`,
//! `webauthn_wrong_origin`, `webauthn_wrong_rp_id`, `webauthn_challenge_mismatch`,
//! `webauthn_signature_invalid`, `webauthn_aaguid_not_allowed`,
//! `webauthn_key_exists`, `webauthn_attestation_untrusted`, `webauthn_invalid`,
//! `enrolment_factor_too_weak`, `enrolment_recovery_session`.
//!
//! Enrolment never raises what a user can prove: a session adds a key only when
//! its own factor is at least as strong as the new key could be (see
//! `register`); anyone else needs an admin's invite. Whether the CA vouches for
//! a key's model (attestation verified at enrolment, or an allow-listed AAGUID)
//! decides whether its UV assertions are `phishing-resistant` or only
//! `unattested-key`, and travels in the session's evidence and the certificate
//! (`mfa-key-attested@rampart`).

mod approvals;
mod assertion;
mod evidence;
mod keys;
mod link_page;
mod login;
mod register;
mod request;

pub use approvals::ApprovalEvidence;
pub use evidence::evidence_extensions;
pub use keys::key_view;
pub use link_page::{PageState, PageView, MAX_CODE_MISSES};
pub use request::WaitState;

use rampart_api::ErrorCode;
use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use webauthn_rs_core::proto::Credential;

use crate::authority::{to_chrono, Authority, Session};
use crate::error::CaError;
use crate::store::{StoreError, WebauthnKeyRecord};
use crate::webauthn::{Refusal, RelyingParty, Status};

pub(super) fn unknown_request() -> CaError {
    CaError::not_found(
        ErrorCode::WebauthnRequestUnknown,
        "this security-key request is unknown or ended long ago; start again",
    )
}

/// The refusal code of a request nobody answered in time.
pub(super) const EXPIRED: ErrorCode = ErrorCode::WebauthnRequestExpired;

pub(super) fn expired_refusal() -> Refusal {
    Refusal {
        code: EXPIRED,
        message: "this security-key request expired before it was answered; start again".into(),
        forbidden: false,
    }
}

/// Whether a request ended by expiring, as whoever saw that first recorded it
/// (the starter's `WAIT`, a late answer), rather than by being answered. A page
/// left open past its end must say "expired", not "already answered": the
/// latter tells the user someone else answered their request.
pub(super) fn ended_expired(status: &Status) -> bool {
    matches!(status, Status::Refused(r) if r.code == EXPIRED)
}

pub(super) fn refusal(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
        forbidden: false,
    }
}

/// The metrics identity of a request: a digest, never the request ID itself.
pub(super) fn metrics_id(request_id: &str) -> String {
    hex::encode(Sha256::digest(request_id.as_bytes()))
}

pub(super) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) fn clean(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

impl Authority {
    /// Install the WebAuthn relying party (the server always does; without one
    /// the WebAuthn endpoints refuse).
    pub fn set_webauthn(&self, rp: RelyingParty) {
        if let Ok(mut slot) = self.webauthn.write() {
            *slot = Some(Arc::new(rp));
        }
    }

    /// The relying party.
    pub fn webauthn(&self) -> Result<Arc<RelyingParty>, CaError> {
        self.webauthn
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| {
                CaError::bad_request(
                    ErrorCode::WebauthnDisabled,
                    "this CA has no WebAuthn relying party configured",
                )
            })
    }

    /// A user's usable credentials (disabled keys left out).
    pub(super) fn usable_credentials(
        &self,
        user: &str,
    ) -> Result<Vec<(WebauthnKeyRecord, Credential)>, CaError> {
        let mut out = Vec::new();
        for k in self.store.webauthn_keys(user)? {
            if k.disabled_reason.is_some() {
                continue;
            }
            let cred: Credential = serde_json::from_str(&k.credential).map_err(|e| {
                CaError::Store(StoreError::Corrupt(format!("webauthn key {}: {e}", k.id)))
            })?;
            out.push((k, cred));
        }
        Ok(out)
    }

    /// Changing one's own keys with a bearer session needs an MFA check as fresh
    /// as admin operations do (`[admin] max_mfa_age`): a stolen session token
    /// must not be enough to plant a key or strip the owner's.
    pub(super) fn require_fresh_mfa(&self, session: &Session, what: &str) -> Result<(), CaError> {
        if self.now() - session.record.mfa_time > to_chrono(self.settings.admin_max_mfa_age) {
            return Err(CaError::forbidden(
                ErrorCode::WebauthnMfaStale,
                format!("{what} needs a recent MFA check; run `rampart login` again"),
            ));
        }
        Ok(())
    }
}
