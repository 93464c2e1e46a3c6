//! What a key session proves to the rest of the CA: the policy factor it counts
//! as, and the certificate extensions that carry its evidence to hosts.

use rampart_api::webauthn as wapi;
use rampart_policy::MfaMethod;

use crate::authority::{Authority, Session};
use crate::error::CaError;
use crate::store::WebauthnEvidence;

impl Authority {
    /// The policy factor a session's login proved.
    pub(crate) fn session_factor(
        &self,
        session: &Session,
    ) -> Result<rampart_policy::Factor, CaError> {
        Ok(match session.record.mfa_method {
            MfaMethod::Totp => rampart_policy::Factor::Totp,
            MfaMethod::Recovery => rampart_policy::Factor::Recovery,
            MfaMethod::Oidc => rampart_policy::Factor::Oidc,
            MfaMethod::Webauthn => self.webauthn_factor(session)?,
        })
    }

    /// The policy factor of a `webauthn` session (UV, trust in the key's model
    /// and how the assertion arrived, from its evidence).
    pub(crate) fn webauthn_factor(
        &self,
        session: &Session,
    ) -> Result<rampart_policy::Factor, CaError> {
        let ev = self.webauthn_session_evidence(session)?;
        Ok(rampart_policy::Factor::Webauthn {
            user_verified: ev.user_verified,
            attested: ev.attested,
            via_link: ev.via_link,
        })
    }

    pub(super) fn webauthn_session_evidence(
        &self,
        session: &Session,
    ) -> Result<WebauthnEvidence, CaError> {
        self.store
            .webauthn_evidence(&session.record.id)?
            .ok_or_else(|| {
                CaError::Internal(format!(
                    "WebAuthn session {} has no key evidence",
                    session.record.id
                ))
            })
    }

    /// The certificate extensions carrying a WebAuthn session's evidence
    /// ([`evidence_extensions`]); none for other sessions.
    pub(crate) fn webauthn_extensions(
        &self,
        session: &Session,
    ) -> Result<Vec<(String, String)>, CaError> {
        if session.record.mfa_method != MfaMethod::Webauthn {
            return Ok(Vec::new());
        }
        let ev = self.webauthn_session_evidence(session)?;
        Ok(evidence_extensions(
            ev.user_verified,
            ev.attested,
            ev.via_link,
            &ev.aaguid,
        ))
    }
}

/// `mfa-uv@rampart`, `mfa-key-attested@rampart`, `mfa-webauthn-link@rampart`
/// and `mfa-aaguid@rampart` for a key's evidence.
pub fn evidence_extensions(
    user_verified: bool,
    attested: bool,
    via_link: bool,
    aaguid: &str,
) -> Vec<(String, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    vec![
        (wapi::EXT_MFA_UV.to_owned(), yes_no(user_verified)),
        (wapi::EXT_MFA_ATTESTED.to_owned(), yes_no(attested)),
        (wapi::EXT_MFA_LINK.to_owned(), yes_no(via_link)),
        (wapi::EXT_MFA_AAGUID.to_owned(), aaguid.to_owned()),
    ]
}
