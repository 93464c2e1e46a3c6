//! Per-session user certificates (`POST /v1/bastion/session-cert`): the order
//! of the checks, the audit of a refusal, and the issuance.
//!
//! **Owns:** the sequence. [`Authority::session_cert_inner`] reads as the list
//! of steps; each step lives in a child module and answers with a [`Checked`]
//! outcome, so the one place that decides what happens next is here:
//!
//! 1. [`request`]: the request's own fields, whether the policy registers the
//!    target for this bastion, one MFA answer at most, the ephemeral key.
//! 2. [`outer_cert`]: the user's outer certificate: well-formed, proven by the
//!    user's login signature (bound to this bastion), this CA's, valid now,
//!    recorded for its user, not revoked; the user exists and is enabled.
//! 3. [`mfa`]: the MFA evidence the certificate will carry: the outer
//!    certificate's, or a per-session TOTP code's or security-key approval's.
//! 4. [`decision`]: policy for (user, login, target), the per-session MFA
//!    prompt, the session grant; then the user's address
//!    ([`Authority::check_user_source`]).
//! 5. [`issue`]: sign, audit `access_granted`, store, answer.
//!
//! The checks beyond policy that the steps call (a per-session TOTP code, a
//! usable security key, the user's address) are in `super::session_checks`.
//! The flow as the bastion sees it is in the parent module's docs.

use rampart_api as api;
use rampart_api::ErrorCode;
use rampart_audit::{EventKind, Outcome};

use crate::authority::{Authority, Caller};
use crate::error::CaError;

use super::*;

mod decision;
mod issue;
mod mfa;
mod outer_cert;
mod request;

/// A step's outcome: its value; `Err(Ok(_))`, a refusal for
/// [`Authority::bastion_session_cert`] to audit as `access_denied`; or
/// `Err(Err(_))`, an internal failure or a prompt for per-session MFA (neither
/// is a decision, so neither is audited there).
type Checked<T> = Result<T, Result<Refusal, CaError>>;

impl Authority {
    /// `POST /v1/bastion/session-cert`: check the user's outer certificate and
    /// the policy for (user, login, target); issue a ≈1-minute certificate for the
    /// bastion's ephemeral key. Every decision is audited. See the module docs.
    pub fn bastion_session_cert(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
    ) -> Result<api::SessionCertResponse, CaError> {
        let session_mfa = req.totp_code.is_some() || req.webauthn_approval.is_some();
        let mut outer_serial: Option<u64> = None;
        let started = std::time::Instant::now();
        let result = self.session_cert_inner(caller, bastion, req, &mut outer_serial);
        // The metric's per-session flow is the TOTP code's (the approval's
        // latency and outcome are counted where it is answered).
        crate::metrics::session_cert_finished(
            req.totp_code.is_some(),
            match &result {
                Ok(_) => Ok(()),
                Err(Ok(refusal)) => Err(refusal.code.as_str()),
                Err(Err(e)) => Err(e.code().as_str()),
            },
            started.elapsed(),
        );
        match result {
            Ok(resp) => Ok(resp),
            Err(Ok(refusal)) => {
                let mut ev = self
                    .event(EventKind::AccessDenied, Outcome::Failure, Some(caller))
                    .actor(&bastion.actor())
                    .target(&req.target)
                    .session(&req.session_id)
                    .reason(&refusal.message)
                    .detail("code", refusal.code.as_str())
                    .detail("login", req.login.clone())
                    .detail("session_mfa", session_mfa);
                if let Some(u) = &refusal.user {
                    ev = ev.user(u);
                }
                if let Some(s) = outer_serial {
                    ev = ev.detail("outer_serial", s);
                }
                if let Some(src) = &req.source {
                    ev = ev.detail("user_source", src.clone());
                }
                self.record(ev)?;
                Err(if refusal.bad_request {
                    CaError::bad_request(refusal.code, refusal.message)
                } else {
                    CaError::forbidden(refusal.code, refusal.message)
                })
            }
            Err(Err(e)) => Err(e),
        }
    }

    /// The checks and the issuance, in order; a refusal comes back as
    /// `Err(Ok(_))` for the caller to audit, an internal failure as
    /// `Err(Err(_))`. The order is a security decision, and tests pin it:
    /// nothing about a user is looked up before the user's proof of presence
    /// and the outer certificate pass; a per-session code is verified (or an
    /// approval consumed) only for the user that certificate names; and the
    /// user is asked for one only when policy would otherwise allow the access.
    pub(super) fn session_cert_inner(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
        outer_serial: &mut Option<u64>,
    ) -> Checked<api::SessionCertResponse> {
        let now = self.now();
        // One policy for the whole request: a reload in the middle must not
        // let the registration check and the access decision see two.
        let policy = self.policy().map_err(Err)?;
        let key = self.check_session_request(&policy, bastion, req)?;

        // The outer certificate, and the user it names.
        let outer = outer_cert::parse(&req.user_certificate).map_err(Ok)?;
        *outer_serial = Some(outer.serial());
        self.check_outer_cert(bastion, req, &outer, now)?;
        let user_name = self.recorded_owner(&outer)?;
        let user = self.enabled_user(&user_name)?;

        // The MFA evidence: the outer certificate's, unless a fresh
        // per-session code or approval replaces it.
        let mut mfa = mfa::SessionMfa::from_outer(&outer, &user.name).map_err(Ok)?;
        if let Some(code) = &req.totp_code {
            let event_id =
                self.per_session_totp(caller, bastion, req, &user.name, code.expose())?;
            mfa.fresh_totp(event_id, now);
        }
        if let Some(approval) = &req.webauthn_approval {
            let approved = self.per_session_approval(bastion, req, approval, &user.name)?;
            mfa.fresh_approval(approved);
        }
        let factor = mfa.factor(&user.name).map_err(Ok)?;

        // Policy, asked with that evidence; then where the user is.
        let policy = decision::SessionPolicy::new(policy, &user, &outer, factor, mfa.time, now);
        let access = policy.access(req).map_err(Ok)?;
        self.check_session_mfa_given(req, &user.name, &access)?;
        let grant = policy.session_grant().map_err(Ok)?;
        self.check_user_source(&outer, &grant, req.source.as_deref())
            .map_err(|message| {
                Ok(Refusal::new(ErrorCode::SourceAddressDenied, message).user(&user.name))
            })?;

        let cleared = issue::Cleared {
            user: user.name,
            outer_serial: outer.serial(),
            mfa,
            access,
            grant,
        };
        self.issue_session_cert(caller, bastion, req, key, cleared, now)
            .map_err(Err)
    }
}
