//! Enrolling a key: from an admin's invite (a new user's first factor, with
//! recovery codes) or by a logged-in user whose own factor is at least as strong
//! as the new key could be, and checking the key's registration answer.

use base64::Engine as _;
use rampart_api::webauthn as wapi;
use rampart_api::ErrorCode;
use rampart_audit::{EventKind, Outcome};
use rampart_policy::MfaMethod;
use sha2::{Digest, Sha256};
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{AttestationFormat, RegisterPublicKeyCredential};

use super::keys::key_view;
use super::request::Taken;
use super::{b64url, refusal};
use crate::authority::{Authority, Caller, Session};
use crate::error::CaError;
use crate::secrets;
use crate::store::{StoreError, WebauthnKeyRecord};
use crate::webauthn::{self as rp_mod, Purpose, Refusal, RelyingParty};

/// A stable, opaque WebAuthn user handle for a user name (16 bytes; the spec
/// asks for no personal data in it, so it is a digest, not the name).
pub(super) fn user_handle(user: &str) -> [u8; 16] {
    let d = Sha256::digest(format!("rampart-webauthn-user\0{user}").as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(d.get(..16).unwrap_or(&[0u8; 16]));
    out
}

pub(super) fn format_name(f: &AttestationFormat) -> &'static str {
    match f {
        AttestationFormat::Packed => "packed",
        AttestationFormat::Tpm => "tpm",
        AttestationFormat::AndroidKey => "android-key",
        AttestationFormat::AndroidSafetyNet => "android-safetynet",
        AttestationFormat::FIDOU2F => "fido-u2f",
        AttestationFormat::AppleAnonymous => "apple",
        AttestationFormat::None => "none",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

impl Authority {
    /// No factor escalation at enrolment: a session may add a key only if the
    /// factor it logged in with is at least as strong as the strongest factor the
    /// new key could prove ([`rp_mod::Settings::enrolment_tier`]). A TOTP or OIDC
    /// session (otp) therefore never adds a key. A recovery code stands in for a
    /// lost factor, so a recovery-code session may only re-enrol that factor: a
    /// key that `replaces` one of the user's keys, and only where the new key
    /// could not be phishing-resistant, and never for an admin while
    /// `[admin] allow_recovery = false` (else a stolen recovery code would buy a
    /// key that passes the admin gate). Everyone else needs an admin's invite.
    /// Refusals are audited as `webauthn_enrolment_refused` with reason
    /// `enrolment_recovery_session` or `enrolment_factor_too_weak`.
    pub(super) fn require_enrolment_strength(
        &self,
        caller: &Caller,
        session: &Session,
        rp: &RelyingParty,
        key_name: &str,
        replaces: Option<&WebauthnKeyRecord>,
    ) -> Result<(), CaError> {
        use rampart_policy::FactorStrength;
        let factor = self.session_factor(session)?;
        let have = factor.strength();
        let needed = rp.settings().enrolment_tier();
        let refusal = if factor == rampart_policy::Factor::Recovery {
            let why = if replaces.is_none() {
                Some(
                    "a session opened with a recovery code may only replace a lost key \
                     (`rampart keys add NAME --replaces ID`, see `rampart keys list`)"
                        .to_owned(),
                )
            } else if needed >= FactorStrength::PhishingResistant {
                Some(format!(
                    "a new security key here can prove a {needed} factor, and a recovery code \
                     is never enough for that"
                ))
            } else if session.user.admin && !self.settings.admin_allow_recovery {
                Some(
                    "an admin's recovery code cannot enrol a key while [admin] allow_recovery \
                     is off"
                        .to_owned(),
                )
            } else {
                None
            };
            why.map(|w| (ErrorCode::EnrolmentRecoverySession, w))
        } else if have < needed {
            Some((
                ErrorCode::EnrolmentFactorTooWeak,
                format!(
                    "a new security key here can prove a {needed} factor, stronger than the \
                     {factor} ({have}) you logged in with"
                ),
            ))
        } else {
            None
        };
        let Some((reason, why)) = refusal else {
            return Ok(());
        };
        let mut ev = self
            .event(
                EventKind::WebauthnEnrolmentRefused,
                Outcome::Failure,
                Some(caller),
            )
            .user(&session.user.name)
            .session(&session.record.id)
            .mfa_method(MfaMethod::Webauthn.as_str())
            .reason(reason.as_str())
            .detail("request", "register")
            .detail("name", key_name.to_owned())
            .detail("session_factor", factor.to_string())
            .detail("session_strength", have.as_str())
            .detail("needed", needed.as_str());
        if let Some(k) = replaces {
            ev = ev.detail("replaces", k.id.clone());
        }
        self.record(ev)?;
        Err(CaError::forbidden(
            reason,
            format!(
                "{why}; ask an admin for an invite (`rampart admin invite {}`) and enrol the \
                 key with it",
                session.user.name
            ),
        ))
    }

    /// `POST /v1/webauthn/register/start`: from an invite (a new user's first
    /// factor; the invite is used up now, like a TOTP enrolment's) or for the
    /// logged-in user (`session`).
    pub fn webauthn_register_start(
        &self,
        caller: &Caller,
        session: Option<&Session>,
        req: &wapi::RegisterStartRequest,
    ) -> Result<wapi::CeremonyStarted, CaError> {
        let rp = self.webauthn()?;
        if !rp_mod::valid_key_name(&req.name) {
            return Err(CaError::bad_request(
                ErrorCode::InvalidKeyName,
                "a key name is 1-64 letters, digits, '-', '_', '.' or spaces",
            ));
        }
        let name = req.name.trim().to_owned();
        let (user, via_invite, session_id) = match (&req.invite, session) {
            (Some(_), _) if req.replaces.is_some() => {
                return Err(CaError::bad_request(
                    ErrorCode::InvalidRequest,
                    "replaces goes with a session, not an invite; remove old keys with \
                     `rampart keys remove`",
                ))
            }
            (Some(invite), _) => {
                self.check_source_limit(caller)?;
                (
                    self.redeem_invite_for_key(caller, invite.expose())?,
                    true,
                    None,
                )
            }
            (None, Some(s)) => {
                self.require_fresh_mfa(s, "adding a key")?;
                let replaced = match &req.replaces {
                    Some(id) => Some(
                        self.store
                            .webauthn_keys(&s.user.name)?
                            .into_iter()
                            .find(|k| &k.id == id)
                            .ok_or_else(|| {
                                CaError::not_found(
                                    ErrorCode::WebauthnKeyUnknown,
                                    format!("{} has no key with ID {id:?}", s.user.name),
                                )
                            })?,
                    ),
                    None => None,
                };
                self.require_enrolment_strength(caller, s, &rp, &name, replaced.as_ref())?;
                (s.user.name.clone(), false, Some(s.record.id.clone()))
            }
            (None, None) => {
                return Err(CaError::unauthenticated(
                    ErrorCode::SessionMissing,
                    "enrolling a key needs an invite or a session; run `rampart login`",
                ))
            }
        };
        let keys = self.store.webauthn_keys(&user)?;
        // The replaced key's name is free for its successor.
        if keys
            .iter()
            .any(|k| k.name == name && Some(&k.id) != req.replaces.as_ref())
        {
            return Err(CaError::Conflict {
                code: ErrorCode::WebauthnKeyNameTaken,
                message: format!("{user} already has a key named {name:?}"),
            });
        }
        let mut exclude = Vec::with_capacity(keys.len());
        for k in &keys {
            if let Ok(id) =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&k.credential_id)
            {
                exclude.push(id);
            }
        }
        let (options, state) = rp.register_options(&user_handle(&user), &user, exclude)?;
        let options = serde_json::to_value(&options)
            .map_err(|e| CaError::Internal(format!("webauthn options: {e}")))?;
        self.open_request(
            &rp,
            caller,
            Purpose::Register {
                user,
                name,
                via_invite,
                session_id,
                replaces: req.replaces.clone(),
                state: Box::new(state),
            },
            rp.settings().challenge_ttl,
            req.direct,
            options,
        )
    }

    /// Redeem an invite for a key enrolment; refusals audited as for TOTP.
    pub(super) fn redeem_invite_for_key(
        &self,
        caller: &Caller,
        invite: &str,
    ) -> Result<String, CaError> {
        let user = self.redeem_invite(caller, invite, self.now())?;
        self.record(
            self.event(EventKind::InviteRedeemed, Outcome::Success, Some(caller))
                .user(&user)
                .mfa_method(MfaMethod::Webauthn.as_str()),
        )?;
        Ok(user)
    }

    /// Check a registration answer and enrol the key.
    pub(super) fn finish_register(
        &self,
        rp: &RelyingParty,
        caller: &Caller,
        taken: &Taken,
        credential: &serde_json::Value,
    ) -> Result<Result<wapi::CeremonyOutcome, Refusal>, CaError> {
        let Purpose::Register {
            user,
            name,
            via_invite,
            session_id,
            replaces,
            state,
        } = &taken.purpose
        else {
            return Err(CaError::Internal("not a registration".into()));
        };
        let purpose = &taken.purpose;
        let refuse = |r: Refusal, details: &[(&str, serde_json::Value)]| {
            self.note_source_failure(caller);
            self.audit_refusal(caller, purpose, &r, details)
                .map(|()| Err(r))
        };
        let reg: RegisterPublicKeyCredential = match serde_json::from_value(credential.clone()) {
            Ok(r) => r,
            Err(e) => {
                return refuse(
                    refusal(
                        ErrorCode::WebauthnMalformed,
                        "the key's answer is not a WebAuthn registration",
                    ),
                    &[("detail", e.to_string().into())],
                )
            }
        };
        let aaguid = rp_mod::aaguid_of_attestation(&reg.response.attestation_object)
            .unwrap_or_else(|| rp_mod::format_aaguid(&[0u8; 16]));
        let cred = match rp.finish_register(&reg, state) {
            Ok(c) => c,
            Err(e) => {
                let (code, message) = rp_mod::failure_of(&e);
                return refuse(
                    refusal(code, message),
                    &[("aaguid", aaguid.into()), ("detail", e.to_string().into())],
                );
            }
        };
        let allowed = &rp.settings().allowed_aaguids;
        if !allowed.is_empty() && !allowed.contains(&aaguid) {
            return refuse(
                refusal(
                    ErrorCode::WebauthnAaguidNotAllowed,
                    format!(
                        "this CA does not accept this model of key (AAGUID {aaguid}); ask an admin which keys are allowed"
                    ),
                ),
                &[("aaguid", aaguid.into())],
            );
        }
        if rp.settings().uv_required() && !cred.user_verified {
            let (code, message) = rp_mod::failure_of(&WebauthnError::UserNotVerified);
            return refuse(refusal(code, message), &[("aaguid", aaguid.into())]);
        }
        let credential_id = b64url(cred.cred_id.as_ref());
        if self
            .store
            .webauthn_key_by_credential(&credential_id)?
            .is_some()
        {
            return refuse(
                refusal(ErrorCode::WebauthnKeyExists, "this key is already enrolled"),
                &[("aaguid", aaguid.into())],
            );
        }
        let now = self.now();
        let record = WebauthnKeyRecord {
            id: secrets::new_public_id(),
            user: user.clone(),
            credential_id: credential_id.clone(),
            credential: serde_json::to_string(&cred)
                .map_err(|e| CaError::Internal(format!("webauthn credential: {e}")))?,
            aaguid: aaguid.clone(),
            attestation_format: format_name(&cred.attestation_format).to_owned(),
            user_verified: cred.user_verified,
            // With roots configured, webauthn-rs accepted the registration only
            // because its attestation chained to one of them.
            attestation_verified: rp.settings().attestation_roots.is_some(),
            backup_eligible: cred.backup_eligible,
            backup_state: cred.backup_state,
            sign_count: cred.counter,
            name: name.clone(),
            created_at: now,
            last_used_at: None,
            disabled_reason: None,
        };
        let codes = if *via_invite {
            secrets::new_recovery_codes(crate::authority::RECOVERY_CODES)
        } else {
            Vec::new()
        };
        let mut hashed = Vec::with_capacity(codes.len());
        for c in &codes {
            hashed.push((c.id.clone(), secrets::hash_recovery_code(c.code.expose())?));
        }
        let replaced = match self.store.add_webauthn_key(
            &record,
            via_invite.then_some(hashed.as_slice()),
            replaces.as_deref(),
        ) {
            Ok(replaced) => replaced,
            Err(StoreError::Duplicate(_)) => {
                return refuse(
                    refusal(
                        ErrorCode::WebauthnKeyExists,
                        "this key, or a key with this name, is already enrolled",
                    ),
                    &[("aaguid", aaguid.into())],
                )
            }
            Err(e) => return Err(e.into()),
        };
        let mut ev = self
            .event(
                EventKind::WebauthnKeyEnrolled,
                Outcome::Success,
                Some(caller),
            )
            .user(user)
            .mfa_method(MfaMethod::Webauthn.as_str())
            .detail("key_id", record.id.clone())
            .detail("name", record.name.clone())
            .detail("aaguid", record.aaguid.clone())
            .detail("credential_id", credential_id)
            .detail("attestation_format", record.attestation_format.clone())
            .detail("user_verified", record.user_verified)
            .detail("attestation_verified", record.attestation_verified)
            .detail(
                "attested",
                rp.key_attested(record.attestation_verified, &record.aaguid),
            )
            .detail("backup_eligible", record.backup_eligible)
            .detail("via", if *via_invite { "invite" } else { "session" });
        if let Some(s) = session_id {
            ev = ev.session(s);
        }
        if let Some(old) = &replaced {
            ev = ev.detail("replaces", old.id.clone());
        }
        self.record(ev)?;
        if let Some(old) = &replaced {
            let mut ev = self
                .event(
                    EventKind::WebauthnKeyRemoved,
                    Outcome::Success,
                    Some(caller),
                )
                .actor(user)
                .user(user)
                .mfa_method(MfaMethod::Webauthn.as_str())
                .detail("key_id", old.id.clone())
                .detail("name", old.name.clone())
                .detail("aaguid", old.aaguid.clone())
                .detail("replaced_by", record.id.clone());
            if let Some(s) = session_id {
                ev = ev.session(s);
            }
            self.record(ev)?;
        }
        if *via_invite {
            self.record(
                self.event(
                    EventKind::RecoveryCodesIssued,
                    Outcome::Success,
                    Some(caller),
                )
                .user(user)
                .detail("count", crate::authority::RECOVERY_CODES as u64),
            )?;
        }
        Ok(Ok(wapi::CeremonyOutcome::Registered {
            user: user.clone(),
            key: key_view(
                &record,
                rp.key_attested(record.attestation_verified, &record.aaguid),
            ),
            recovery_codes: codes.into_iter().map(|c| c.code).collect(),
        }))
    }
}
