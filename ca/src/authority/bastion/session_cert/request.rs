//! The per-session request itself, before anything about its user: the
//! session ID, target labels and reported source are well-formed, the policy
//! registers the target for this bastion, at most one per-session MFA answer
//! is sent, and the ephemeral public key parses.
//!
//! **Owns:** the bastion's bad requests (`invalid_session_id`,
//! `invalid_labels`, `invalid_source`, `mfa_conflict`) and the refusal of a
//! target this bastion does not serve.

use rampart_api as api;
use rampart_api::ErrorCode;

use crate::authority::Authority;

use super::super::{clean_token, Bastion, Refusal, MAX_LABELS};
use super::Checked;

impl Authority {
    /// The request's own checks, in order; the ephemeral key the certificate
    /// will be for.
    pub(super) fn check_session_request(
        &self,
        policy: &rampart_policy::Policy,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
    ) -> Checked<ssh_key::PublicKey> {
        check_fields(req).map_err(Ok)?;
        // A bastion serves only the targets the policy registers for it: a
        // stolen credential must not reach hosts its bastion never fronted.
        if let Err(d) = rampart_policy::bastion_may_serve(policy, &bastion.record.name, &req.target)
        {
            return Err(Ok(Refusal::new(d.code.into(), d.reason)));
        }
        if req.totp_code.is_some() && req.webauthn_approval.is_some() {
            return Err(Ok(Refusal::bad_request(
                ErrorCode::MfaConflict,
                "send a totp_code or a webauthn_approval, not both",
            )));
        }
        self.parse_public_key(&req.public_key).map_err(Err)
    }
}

/// The session ID goes into the key ID; labels and the source are audited.
fn check_fields(req: &api::SessionCertRequest) -> Result<(), Refusal> {
    if !clean_token(&req.session_id) {
        return Err(Refusal::bad_request(
            ErrorCode::InvalidSessionId,
            "session_id must be 1-128 of [A-Za-z0-9._-]",
        ));
    }
    if req.target_labels.len() > MAX_LABELS
        || req
            .target_labels
            .iter()
            .any(|(k, v)| k.len() > 128 || v.len() > 256)
    {
        return Err(Refusal::bad_request(
            ErrorCode::InvalidLabels,
            format!("at most {MAX_LABELS} target labels, keys ≤ 128 and values ≤ 256 bytes"),
        ));
    }
    if req.source.as_ref().is_some_and(|s| s.len() > 64) {
        return Err(Refusal::bad_request(
            ErrorCode::InvalidSource,
            "source is longer than 64 bytes",
        ));
    }
    Ok(())
}
