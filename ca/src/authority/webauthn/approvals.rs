//! Per-session approvals for a bastion: a joined bastion asks the user to
//! approve one SSH session (always through the link page), and the per-session
//! certificate consumes that approval once — for exactly that bastion, user,
//! session, target and login.

use chrono::{DateTime, Utc};
use rampart_api::webauthn as wapi;
use rampart_api::ErrorCode;
use rampart_audit::{EventKind, Outcome};
use rampart_policy::MfaMethod;

use super::assertion::Assertion;
use super::{clean, EXPIRED};
use crate::authority::bastion::Bastion;
use crate::authority::{Authority, Caller};
use crate::error::CaError;
use crate::webauthn::{Purpose, Status};

/// How long after its request's end an approval may still be consumed.
pub(super) const APPROVAL_USE_GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// A bastion approval as the per-session certificate consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalEvidence {
    /// The `mfa_succeeded` event of the approval.
    pub mfa_event: String,
    /// When the key was used.
    pub mfa_time: DateTime<Utc>,
    /// UV flag of the assertion.
    pub user_verified: bool,
    /// The key's AAGUID.
    pub aaguid: String,
    /// The CA trusted the key's model when it approved.
    pub attested: bool,
}

impl Authority {
    /// `POST /v1/bastion/approvals/start`: a per-session approval of `req.user`,
    /// asked by a joined bastion.
    pub fn webauthn_approval_start(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &wapi::BastionApprovalStartRequest,
    ) -> Result<wapi::CeremonyStarted, CaError> {
        let rp = self.webauthn()?;
        if !crate::authority::valid_user_name(&req.user)
            || !clean(&req.session_id, 128)
            || !clean(&req.target, 255)
            || !clean(&req.login, 64)
        {
            return Err(CaError::bad_request(
                ErrorCode::InvalidApproval,
                "user, session_id (≤ 128), target (≤ 255) and login (≤ 64) must be non-empty and printable",
            ));
        }
        self.check_prompt_fatigue(&req.user)?;
        let creds = self.key_user(caller, &req.user, "approval_start")?;
        let (options, state) = rp.login_options(creds.into_iter().map(|(_, c)| c).collect())?;
        let options = serde_json::to_value(&options)
            .map_err(|e| CaError::Internal(format!("webauthn options: {e}")))?;
        self.open_request(
            &rp,
            caller,
            Purpose::Approval {
                user: req.user.clone(),
                bastion: bastion.record.name.clone(),
                session_id: req.session_id.clone(),
                target: req.target.clone(),
                login: req.login.clone(),
                state: Box::new(state),
            },
            rp.settings().approval_ttl,
            false,
            options,
        )
    }

    /// After a verified approval assertion: the `mfa_succeeded` event the
    /// per-session certificate will point at.
    pub(super) fn approve_session(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        a: &Assertion,
    ) -> Result<wapi::CeremonyOutcome, CaError> {
        let Purpose::Approval {
            user,
            bastion,
            session_id,
            target,
            login,
            ..
        } = purpose
        else {
            return Err(CaError::Internal("not an approval".into()));
        };
        let now = self.now();
        self.attempt_succeeded(user, &caller.network())?;
        let mfa_event = self
            .record(
                self.event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
                    .actor(&format!("bastion:{bastion}"))
                    .user(user)
                    .mfa_method(MfaMethod::Webauthn.as_str())
                    .session(session_id)
                    .target(target)
                    .detail("login", login.clone())
                    .detail("key_id", a.key.id.clone())
                    .detail("aaguid", a.key.aaguid.clone())
                    .detail("user_verified", a.user_verified)
                    .detail("attested", a.attested)
                    .detail("via", "approval"),
            )?
            .id
            .to_string();
        Ok(wapi::CeremonyOutcome::Approved {
            mfa_event,
            mfa_time: now,
            user_verified: a.user_verified,
            aaguid: a.key.aaguid.clone(),
            attested: a.attested,
        })
    }

    /// Consume a bastion approval for the per-session certificate: it must be
    /// approved, for this bastion, user and session, and is usable once.
    /// `Err((code, message))` refuses the certificate.
    pub fn take_webauthn_approval(
        &self,
        bastion: &str,
        approval: &wapi::WaitRequest,
        user: &str,
        session_id: &str,
        target: &str,
        login: &str,
    ) -> Result<Result<ApprovalEvidence, (ErrorCode, String)>, CaError> {
        let rp = self.webauthn()?;
        let now = self.now();
        // Single use: the approval is closed in the same compare-and-set that
        // reads it, so of two certificates asked for with it (through any
        // CAs) one gets it.
        let got = self.with_request(&rp, &approval.request_id, |e| {
            if !e.token_matches(approval.poll_token.expose()) {
                return Err((
                    ErrorCode::WebauthnApprovalUnknown,
                    "unknown approval".to_owned(),
                ));
            }
            let Purpose::Approval {
                user: u,
                bastion: b,
                session_id: s,
                target: t,
                login: l,
                ..
            } = &e.purpose
            else {
                return Err((
                    ErrorCode::WebauthnApprovalUnknown,
                    "unknown approval".to_owned(),
                ));
            };
            // The user approved `login@target` on the page: an approval is
            // good for exactly that, from that bastion, for that session.
            if b != bastion || u != user || s != session_id || t != target || l != login {
                return Err((
                    ErrorCode::WebauthnApprovalMismatch,
                    "that approval was given for another user, session, target or login".to_owned(),
                ));
            }
            // The bastion retries at once after its wait; an approval left
            // lying around is not good for later.
            if now > e.expires_at + APPROVAL_USE_GRACE {
                return Err((
                    EXPIRED,
                    "that approval expired before it was used".to_owned(),
                ));
            }
            match &e.status {
                Status::Done(o) | Status::Collected(o) => match o.as_ref() {
                    wapi::CeremonyOutcome::Approved {
                        mfa_event,
                        mfa_time,
                        user_verified,
                        aaguid,
                        attested,
                    } => {
                        let evidence = ApprovalEvidence {
                            mfa_event: mfa_event.clone(),
                            mfa_time: *mfa_time,
                            user_verified: *user_verified,
                            aaguid: aaguid.clone(),
                            attested: *attested,
                        };
                        e.set(Status::Closed);
                        Ok(evidence)
                    }
                    _ => Err((
                        ErrorCode::WebauthnApprovalUnknown,
                        "unknown approval".to_owned(),
                    )),
                },
                Status::Refused(r) => Err((r.code, r.message.clone())),
                Status::Closed => Err((
                    ErrorCode::WebauthnApprovalUsed,
                    "that approval was already used".to_owned(),
                )),
                _ => Err((
                    ErrorCode::WebauthnApprovalPending,
                    "the approval has not been given yet".to_owned(),
                )),
            }
        })?;
        match got {
            None => Ok(Err((
                ErrorCode::WebauthnApprovalUnknown,
                "unknown or already used approval".to_owned(),
            ))),
            // Single use: a second certificate needs a second approval.
            Some(Ok(ev)) => Ok(Ok(ev)),
            Some(Err(e)) => Ok(Err(e)),
        }
    }
}
