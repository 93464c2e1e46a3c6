//! What an OIDC session counts for when a certificate is issued: the roles
//! that need one (and when another factor may stand in), and the
//! certificate extensions that carry the provider's evidence.

use rampart_api::ErrorCode;
use rampart_policy::MfaMethod;

use rampart_audit::{EventKind, Outcome};

use super::{Authority, Caller, Session};
use super::{EXT_MFA_ACR, EXT_MFA_AMR, EXT_MFA_AUTH_TIME, EXT_MFA_IDP};
use crate::error::CaError;

impl Authority {
    /// Roles that set `oidc_acr`/`oidc_amr` need an OIDC session. A session with
    /// another factor gets them only as a fallback: every such role names that
    /// factor as its `fallback_factor` and no configured provider answers now.
    /// A fallback is audited (`mfa_succeeded`, `fallback = true`) and counted.
    /// `Err((code, reason))` refuses the certificate.
    pub(crate) fn oidc_gate(
        &self,
        caller: &Caller,
        policy: &rampart_policy::Policy,
        roles: &[String],
        session: &Session,
    ) -> Result<Result<(), (ErrorCode, String)>, CaError> {
        let method = session.record.mfa_method;
        let gated = policy.oidc_gated_roles(roles);
        if gated.is_empty() || method == MfaMethod::Oidc {
            return Ok(Ok(()));
        }
        for (role, fallback) in &gated {
            if fallback.as_ref().map(|f| f.method()) != Some(method) {
                return Ok(Err((
                    ErrorCode::OidcRequired,
                    format!(
                        "role {role} needs an OIDC login (rampart login --mfa oidc) and accepts no {method} fallback"
                    ),
                )));
            }
        }
        let reachable = self
            .oidc
            .read()
            .ok()
            .and_then(|s| s.clone())
            .is_some_and(|rp| rp.any_reachable(self.now()));
        if reachable {
            return Ok(Err((
                ErrorCode::OidcRequired,
                format!(
                    "role {} needs an OIDC login (rampart login --mfa oidc); the identity provider is up, so {method} is not accepted instead",
                    gated.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )));
        }
        self.record(
            self.event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
                .user(&session.user.name)
                .session(&session.record.id)
                .mfa_method(method.as_str())
                .reason("oidc_provider_unavailable")
                .detail("fallback", true)
                .detail("primary", MfaMethod::Oidc.as_str())
                .detail(
                    "roles",
                    gated.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
                ),
        )?;
        crate::metrics::fallback_login(method.into(), crate::metrics::Factor::Oidc);
        Ok(Ok(()))
    }

    /// The certificate extensions carrying an OIDC session's evidence.
    pub(crate) fn idp_extensions(
        &self,
        session: &Session,
    ) -> Result<Vec<(String, String)>, CaError> {
        if session.record.mfa_method != MfaMethod::Oidc {
            return Ok(Vec::new());
        }
        let Some(ev) = self.store.idp_evidence(&session.record.id)? else {
            return Err(CaError::Internal(format!(
                "OIDC session {} has no provider evidence",
                session.record.id
            )));
        };
        let mut out = vec![
            (EXT_MFA_IDP.to_owned(), ev.provider),
            (
                EXT_MFA_AUTH_TIME.to_owned(),
                ev.auth_time
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        ];
        if let Some(acr) = ev.acr.filter(|a| !a.is_empty()) {
            out.push((EXT_MFA_ACR.to_owned(), acr));
        }
        if !ev.amr.is_empty() {
            out.push((EXT_MFA_AMR.to_owned(), ev.amr.join(",")));
        }
        Ok(out)
    }
}
