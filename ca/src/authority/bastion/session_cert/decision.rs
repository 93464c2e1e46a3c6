//! What policy says of a per-session certificate: whether `login@target` is
//! allowed to this user with this evidence and key (`evaluate_access`),
//! whether the roles want per-session MFA the request did not bring, and the
//! session grant (`evaluate` for a [`SESSION_CERT_TTL`] certificate: its
//! extensions and lifetime ceiling).
//!
//! **Owns:** the policy refusals (`access_denied`, `webauthn_link_refused`)
//! and the per-session MFA prompt ([`api::ErrorCode::SessionMfaRequired`],
//! [`api::ErrorCode::SessionApprovalRequired`]), which is not a decision and so not
//! audited.

use rampart_api::ErrorCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rampart_api as api;
use rampart_policy::{AccessGrant, Decision, Factor, Grant, KeyAssurance, Policy};
use ssh_key::Certificate;

use crate::authority::Authority;
use crate::error::CaError;
use crate::store::UserRecord;

use super::super::{access_denial_code, Refusal, SESSION_CERT_TTL};
use super::Checked;

/// One user's evidence, held against one version of the policy.
#[derive(Debug)]
pub(super) struct SessionPolicy<'a> {
    policy: Arc<Policy>,
    user: &'a UserRecord,
    factor: Factor,
    mfa_time: DateTime<Utc>,
    key: KeyAssurance,
    now: DateTime<Utc>,
}

impl<'a> SessionPolicy<'a> {
    /// `outer` gives the key's assurance: the outer certificate's key was
    /// PIV-attested when the CA marked it so (only the CA can sign that
    /// extension), and then hardware-bound roles apply.
    pub(super) fn new(
        policy: Arc<Policy>,
        user: &'a UserRecord,
        outer: &Certificate,
        factor: Factor,
        mfa_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        let piv = outer
            .extensions()
            .get(crate::piv::EXT_KEY)
            .map(String::as_str)
            == Some(crate::piv::EXT_KEY_PIV);
        let key = if piv {
            KeyAssurance::HardwareAttested
        } else {
            KeyAssurance::Unattested
        };
        SessionPolicy {
            policy,
            user,
            factor,
            mfa_time,
            key,
            now,
        }
    }

    /// Whether the user may reach `req.login@req.target` (with its labels).
    pub(super) fn access(&self, req: &api::SessionCertRequest) -> Result<AccessGrant, Refusal> {
        rampart_policy::evaluate_access_with_key(
            &rampart_policy::AccessRequest {
                user: &self.user.name,
                groups: &self.user.groups,
                factor: self.factor.clone(),
                mfa_time: self.mfa_time,
                login: &req.login,
                target: &req.target,
                labels: &req.target_labels,
            },
            self.key,
            &self.policy,
            self.now,
        )
        .map_err(|d| Refusal::new(access_denial_code(&d), d.reason).user(&self.user.name))
    }

    /// The grant for a per-session certificate: extensions and lifetime.
    pub(super) fn session_grant(&self) -> Result<Grant, Refusal> {
        match rampart_policy::evaluate_session_with_key(
            &rampart_policy::CertRequest {
                user: &self.user.name,
                groups: &self.user.groups,
                factor: self.factor.clone(),
                mfa_time: self.mfa_time,
                requested_ttl: Some(SESSION_CERT_TTL),
                login: None,
            },
            self.key,
            &self.policy,
            self.now,
        ) {
            Decision::Allow(g) => Ok(g),
            Decision::Deny(d) => {
                Err(Refusal::new(access_denial_code(&d), d.reason).user(&self.user.name))
            }
        }
    }
}

impl Authority {
    /// Per-session MFA the roles want and the request did not bring. Not a
    /// denial: the bastion asks the user for a code (or an approval) and
    /// retries, and that retry is audited (mfa_succeeded/failed,
    /// access_granted/denied). Auditing this step too would log every session
    /// twice. Only when nothing the user has could answer is it a refusal.
    pub(super) fn check_session_mfa_given(
        &self,
        req: &api::SessionCertRequest,
        user: &str,
        access: &AccessGrant,
    ) -> Checked<()> {
        if !(access.session_mfa() && req.totp_code.is_none() && req.webauthn_approval.is_none()) {
            return Ok(());
        }
        if self.has_usable_security_key(user).map_err(Err)? {
            if access.webauthn_link() {
                return Err(Err(CaError::unauthenticated(
                    ErrorCode::SessionApprovalRequired,
                    "policy wants a per-session approval with your security key",
                )));
            }
            // A per-session approval is given on the CA's page, which these
            // roles refuse: a TOTP code is the only per-session check left
            // (and must still meet the roles' min_factor).
            if self.store.totp(user).map_err(|e| Err(e.into()))?.is_none() {
                return Err(Ok(Refusal::new(
                    ErrorCode::WebauthnLinkRefused,
                    format!(
                        "the roles that reach {}@{} take no security-key approval through \
                         a link, and a per-session check here is one; {} has no TOTP to \
                         enter instead: ask an admin",
                        req.login, req.target, user
                    ),
                )
                .user(user)));
            }
        }
        Err(Err(CaError::unauthenticated(
            ErrorCode::SessionMfaRequired,
            "policy wants a per-session code for this target; enter your TOTP code",
        )))
    }
}
