//! A user's enrolled keys as the API shows them: listing (one's own, or an
//! admin's look at anyone's) and removal (audited before it happens).

use rampart_api::webauthn as wapi;
use rampart_api::ErrorCode;
use rampart_audit::{EventKind, Outcome};
use rampart_policy::MfaMethod;

use crate::authority::{Authority, Caller, Session};
use crate::error::CaError;
use crate::store::WebauthnKeyRecord;

/// A stored key as the API lists it; `attested` is whether the CA trusts its
/// model under the current settings ([`RelyingParty::key_attested`]).
pub fn key_view(k: &WebauthnKeyRecord, attested: bool) -> wapi::WebauthnKey {
    wapi::WebauthnKey {
        id: k.id.clone(),
        name: k.name.clone(),
        credential_id: k.credential_id.clone(),
        aaguid: k.aaguid.clone(),
        attestation_format: k.attestation_format.clone(),
        user_verified: k.user_verified,
        attested,
        backup_eligible: k.backup_eligible,
        backup_state: k.backup_state,
        sign_count: k.sign_count,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        disabled_reason: k.disabled_reason.clone(),
    }
}

impl Authority {
    /// `GET /v1/webauthn/keys[?user=NAME]`: the caller's keys, or (admin) anyone's.
    pub fn webauthn_list_keys(
        &self,
        caller: &Caller,
        session: &Session,
        user: Option<&str>,
    ) -> Result<Vec<wapi::WebauthnKey>, CaError> {
        let user = match user {
            Some(u) if u != session.user.name => {
                self.require_admin(caller, session, "webauthn_keys")?;
                self.require_user(u)?.name
            }
            _ => session.user.name.clone(),
        };
        let rp = self.webauthn()?;
        Ok(self
            .store
            .webauthn_keys(&user)?
            .iter()
            .map(|k| key_view(k, rp.key_attested(k.attestation_verified, &k.aaguid)))
            .collect())
    }

    /// `POST /v1/webauthn/keys/remove`: by the owner, or an admin (fresh MFA).
    pub fn webauthn_remove_key(
        &self,
        caller: &Caller,
        session: &Session,
        req: &wapi::KeyRemoveRequest,
    ) -> Result<wapi::WebauthnKey, CaError> {
        if req.user != session.user.name {
            self.require_admin(caller, session, "webauthn_key_remove")?;
        } else {
            self.require_fresh_mfa(session, "removing a key")?;
        }
        let unknown = || {
            CaError::not_found(
                ErrorCode::WebauthnKeyUnknown,
                format!("{} has no key with ID {:?}", req.user, req.id),
            )
        };
        let Some(key) = self
            .store
            .webauthn_keys(&req.user)?
            .into_iter()
            .find(|k| k.id == req.id)
        else {
            return Err(unknown());
        };
        // Audit first: a key the log does not show as removed stays.
        self.record(
            self.event(
                EventKind::WebauthnKeyRemoved,
                Outcome::Success,
                Some(caller),
            )
            .actor(&session.user.name)
            .session(&session.record.id)
            .user(&req.user)
            .mfa_method(MfaMethod::Webauthn.as_str())
            .detail("key_id", key.id.clone())
            .detail("name", key.name.clone())
            .detail("aaguid", key.aaguid.clone()),
        )?;
        let removed = self
            .store
            .remove_webauthn_key(&req.user, &req.id)?
            .ok_or_else(unknown)?;
        let attested = self
            .webauthn()
            .is_ok_and(|rp| rp.key_attested(removed.attestation_verified, &removed.aaguid));
        Ok(key_view(&removed, attested))
    }
}
