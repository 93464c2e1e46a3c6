//! The MFA evidence a per-session certificate carries, and the factor policy
//! is asked with: the outer certificate's (method, time, event, an IdP's or a
//! security key's evidence), unless a fresh per-session TOTP code or
//! security-key approval replaces all of it.
//!
//! **Owns:** reading the outer certificate's MFA extensions
//! (`certificate_no_mfa` when there are none or the method is unknown), the
//! per-session code's and approval's refusals, and which factor each method is.
//! The code itself is verified by `session_checks::verify_session_totp`, the
//! approval taken by `Authority::take_webauthn_approval`.

use chrono::{DateTime, Utc};
use rampart_api as api;
use rampart_api::ErrorCode;
use rampart_policy::MfaMethod;
use ssh_key::Certificate;

use crate::authority::webauthn::ApprovalEvidence;
use crate::authority::{Authority, Caller};
use crate::factor::FactorFailure;

use super::super::{Bastion, Refusal};
use super::Checked;

/// How a security key was used, as policy weighs a `webauthn` factor.
#[derive(Debug, Clone, Copy)]
struct KeyUse {
    user_verified: bool,
    attested: bool,
    via_link: bool,
}

/// The MFA evidence of one per-session certificate.
#[derive(Debug, Clone)]
pub(super) struct SessionMfa {
    /// `mfa-method@rampart`, or the name found there when this build does
    /// not know it (refused when policy asks for the factor, so that a fresh
    /// per-session factor can still replace it).
    pub(super) method: Result<MfaMethod, String>,
    /// `mfa-time@rampart`: when the user last proved a factor.
    pub(super) time: DateTime<Utc>,
    /// `mfa-event@rampart`: the audit event of that proof.
    pub(super) event: String,
    /// An IdP's or a security key's evidence, copied into the certificate.
    pub(super) idp_evidence: Vec<(String, String)>,
    /// For method `webauthn`: the outer certificate's key, or the approval's.
    key: KeyUse,
    /// A fresh per-session code or approval was verified.
    pub(super) per_session: bool,
}

impl SessionMfa {
    /// The evidence the outer certificate carries (signed by this CA).
    pub(super) fn from_outer(outer: &Certificate, user: &str) -> Result<Self, Refusal> {
        let ext = |name: &str| outer.extensions().get(name).cloned();
        let Some(time) = ext(rampart_signer::EXT_MFA_TIME)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
        else {
            return Err(Refusal::new(
                ErrorCode::CertificateNoMfa,
                "the user certificate carries no MFA evidence",
            )
            .user(user));
        };
        // An IdP's (or a security key's) evidence travels with the outer
        // certificate's MFA; a fresh per-session code replaces that MFA, and
        // the evidence with it.
        let idp_evidence = [
            crate::authority::oidc_login::EXT_MFA_IDP,
            crate::authority::oidc_login::EXT_MFA_ACR,
            crate::authority::oidc_login::EXT_MFA_AMR,
            crate::authority::oidc_login::EXT_MFA_AUTH_TIME,
            api::webauthn::EXT_MFA_UV,
            api::webauthn::EXT_MFA_ATTESTED,
            api::webauthn::EXT_MFA_LINK,
            api::webauthn::EXT_MFA_AAGUID,
        ]
        .iter()
        .filter_map(|name| ext(name).map(|v| ((*name).to_owned(), v)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
        // The key's UV flag and whether the CA trusted its model travel in the
        // outer certificate (signed by this CA). A certificate without the
        // attestation extension predates it: its key counts as unattested;
        // without the link extension, its assertion counts as given through a
        // link (only `no` proves a key on the user's machine).
        let key = KeyUse {
            user_verified: ext(api::webauthn::EXT_MFA_UV).as_deref() == Some("yes"),
            attested: ext(api::webauthn::EXT_MFA_ATTESTED).as_deref() == Some("yes"),
            via_link: ext(api::webauthn::EXT_MFA_LINK).as_deref() != Some("no"),
        };
        Ok(SessionMfa {
            method: {
                let name = ext(rampart_signer::EXT_MFA_METHOD).unwrap_or_default();
                name.parse().map_err(|_| name)
            },
            time,
            event: ext(rampart_signer::EXT_MFA_EVENT).unwrap_or_default(),
            idp_evidence,
            key,
            per_session: false,
        })
    }

    /// A per-session TOTP code was verified at `now` (audit event `event_id`).
    pub(super) fn fresh_totp(&mut self, event_id: String, now: DateTime<Utc>) {
        self.method = Ok(MfaMethod::Totp);
        self.time = now;
        self.event = event_id;
        self.idp_evidence.clear();
        self.per_session = true;
    }

    /// A per-session security-key approval was consumed.
    pub(super) fn fresh_approval(&mut self, ev: ApprovalEvidence) {
        self.method = Ok(MfaMethod::Webauthn);
        self.time = ev.mfa_time;
        self.event = ev.mfa_event;
        // A per-session approval is always given on the CA's page.
        self.idp_evidence = crate::authority::webauthn::evidence_extensions(
            ev.user_verified,
            ev.attested,
            true,
            &ev.aaguid,
        );
        self.key = KeyUse {
            user_verified: ev.user_verified,
            attested: ev.attested,
            via_link: true,
        };
        self.per_session = true;
    }

    /// The method's name as the certificate and the audit log carry it.
    pub(super) fn method_name(&self) -> &str {
        match &self.method {
            Ok(m) => m.as_str(),
            Err(name) => name,
        }
    }

    /// The factor policy weighs this evidence as.
    pub(super) fn factor(&self, user: &str) -> Result<rampart_policy::Factor, Refusal> {
        Ok(match &self.method {
            Ok(MfaMethod::Totp) => rampart_policy::Factor::Totp,
            Ok(MfaMethod::Recovery) => rampart_policy::Factor::Recovery,
            Ok(MfaMethod::Oidc) => rampart_policy::Factor::Oidc,
            Ok(MfaMethod::Webauthn) => rampart_policy::Factor::Webauthn {
                user_verified: self.key.user_verified,
                attested: self.key.attested,
                via_link: self.key.via_link,
            },
            Err(other) => {
                return Err(Refusal::new(
                    ErrorCode::CertificateNoMfa,
                    format!("the user certificate names an unknown MFA method {other:?}"),
                )
                .user(user))
            }
        })
    }
}

impl Authority {
    /// Verify the request's per-session TOTP code (audited
    /// `mfa_succeeded`/`mfa_failed` there); the `mfa_succeeded` event's ID.
    pub(super) fn per_session_totp(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
        user: &str,
        code: &str,
    ) -> Checked<String> {
        self.verify_session_totp(
            caller,
            bastion,
            req.source.as_deref(),
            user,
            code,
            &req.session_id,
        )
        .map_err(Err)?
        .map_err(|failure| {
            Ok(Refusal::new(
                failure.code(),
                match failure {
                    FactorFailure::Replayed => "that code was already used; wait for the next one",
                    FactorFailure::Malformed => "that is not a well-formed totp code",
                    FactorFailure::Invalid => "that code is not right",
                },
            )
            .user(user))
        })
    }

    /// A security-key approval given for this bastion, user and session:
    /// consumed here (single use), its evidence returned. Denied,
    /// expired, pending or foreign approvals refuse the certificate (audited
    /// `access_denied` with the approval's code).
    pub(super) fn per_session_approval(
        &self,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
        approval: &api::webauthn::WaitRequest,
        user: &str,
    ) -> Checked<ApprovalEvidence> {
        self.take_webauthn_approval(
            &bastion.record.name,
            approval,
            user,
            &req.session_id,
            &req.target,
            &req.login,
        )
        .map_err(Err)?
        .map_err(|(code, message)| Ok(Refusal::new(code, message).user(user)))
    }
}
