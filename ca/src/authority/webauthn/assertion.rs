//! Checking a login or approval answer: the key must be one of the user's
//! enabled keys, its signature good, its counter moving forward (else it is
//! disabled as possibly cloned); every failed proof counts towards lockout as a
//! wrong TOTP code does.

use rampart_api::ErrorCode;
use rampart_audit::{EventKind, Outcome};
use rampart_policy::MfaMethod;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{AuthenticationState, Credential, PublicKeyCredential};

use super::{b64url, refusal};
use crate::authority::{lockout, Authority, Caller};
use crate::error::CaError;
use crate::metrics::{self, Bypass};
use crate::store::{CounterUpdate, StoreError, WebauthnKeyRecord};
use crate::webauthn::{self as rp_mod, Purpose, Refusal, RelyingParty};

/// A verified assertion.
pub(super) struct Assertion {
    pub(super) key: WebauthnKeyRecord,
    pub(super) user_verified: bool,
    /// The CA trusts the key's model ([`RelyingParty::key_attested`]).
    pub(super) attested: bool,
}

impl Authority {
    /// A failed proof of an attempt begun in [`Self::check_assertion`]:
    /// counted against the (user, network) pair and the user (locks as for
    /// TOTP), audited.
    pub(super) fn failed_proof(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        r: Refusal,
        details: &[(&str, serde_json::Value)],
    ) -> Result<Refusal, CaError> {
        self.attempt_failed(
            caller,
            purpose.user(),
            &caller.network(),
            metrics::Factor::Webauthn,
            self.refusal_event(caller, purpose, &r, details),
        )?;
        Ok(r)
    }

    /// Verify an assertion for `user` against the request's challenge: the key
    /// must be one of the user's enabled keys, and its counter must move forward
    /// (else the key is disabled as possibly cloned).
    pub(super) fn check_assertion(
        &self,
        rp: &RelyingParty,
        caller: &Caller,
        purpose: &Purpose,
        user: &str,
        state: &AuthenticationState,
        credential: &serde_json::Value,
    ) -> Result<Result<Assertion, Refusal>, CaError> {
        // The lock is checked again here, and the attempt counted, in one step:
        // a lock set since the request started holds for its answer too.
        if let Err(lock) = self.begin_attempt(user, &caller.network())? {
            metrics::bypass_attempt(metrics::Factor::Webauthn, Bypass::LockedOutAttempt);
            let r = refusal(
                ErrorCode::UserLocked,
                lockout::locked_message(user, &lock, self.now()),
            );
            self.audit_refusal(
                caller,
                purpose,
                &r,
                &[("scope", lock.scope.as_str().into())],
            )?;
            return Ok(Err(r));
        }
        let rsp: PublicKeyCredential = match serde_json::from_value(credential.clone()) {
            Ok(r) => r,
            Err(e) => {
                return self
                    .failed_proof(
                        caller,
                        purpose,
                        refusal(
                            ErrorCode::WebauthnMalformed,
                            "the key's answer is not a WebAuthn assertion",
                        ),
                        &[("detail", e.to_string().into())],
                    )
                    .map(Err)
            }
        };
        let cred_id = b64url(&rsp.raw_id);
        let key = match self.store.webauthn_key_by_credential(&cred_id)? {
            None => {
                return self
                    .failed_proof(
                        caller,
                        purpose,
                        refusal(
                            ErrorCode::WebauthnUnknownCredential,
                            "that key is not enrolled at this CA",
                        ),
                        &[("credential_id", cred_id.into())],
                    )
                    .map(Err)
            }
            Some(k) if k.user != user => {
                return self
                    .failed_proof(
                        caller,
                        purpose,
                        refusal(
                            ErrorCode::WebauthnForeignCredential,
                            format!("that key is not one of {user}'s keys"),
                        ),
                        &[
                            ("credential_id", cred_id.into()),
                            ("key_owner", k.user.into()),
                        ],
                    )
                    .map(Err)
            }
            Some(k) if k.disabled_reason.is_some() => {
                return self
                    .failed_proof(
                        caller,
                        purpose,
                        refusal(
                            ErrorCode::WebauthnKeyDisabled,
                            "that key is disabled at this CA; ask an admin",
                        ),
                        &[
                            ("key_id", k.id.into()),
                            (
                                "disabled_reason",
                                k.disabled_reason.unwrap_or_default().into(),
                            ),
                        ],
                    )
                    .map(Err)
            }
            Some(k) => k,
        };
        let mut cred: Credential = serde_json::from_str(&key.credential).map_err(|e| {
            CaError::Store(StoreError::Corrupt(format!("webauthn key {}: {e}", key.id)))
        })?;
        let presented = rp_mod::assertion_counter(&rsp.response.authenticator_data);
        let key_details = |k: &WebauthnKeyRecord| -> Vec<(&'static str, serde_json::Value)> {
            vec![
                ("key_id", k.id.clone().into()),
                ("aaguid", k.aaguid.clone().into()),
            ]
        };
        let result = match rp.finish_login(&rsp, state, &cred) {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                let count = presented.map(|(c, _)| c).unwrap_or(0);
                return self
                    .cloned_key(caller, purpose, &key, key.sign_count, count)
                    .map(Err);
            }
            Err(e) => {
                let (code, message) = rp_mod::failure_of(&e);
                let mut d = key_details(&key);
                d.push(("detail", e.to_string().into()));
                return self
                    .failed_proof(caller, purpose, refusal(code, message), &d)
                    .map(Err);
            }
        };
        let uv = result.user_verified();
        if rp.settings().uv_required() && !uv {
            let (code, message) = rp_mod::failure_of(&WebauthnError::UserNotVerified);
            return self
                .failed_proof(caller, purpose, refusal(code, message), &key_details(&key))
                .map(Err);
        }
        cred.counter = result.counter();
        cred.backup_state = result.backup_state();
        let json = serde_json::to_string(&cred)
            .map_err(|e| CaError::Internal(format!("webauthn credential: {e}")))?;
        match self.store.webauthn_key_used(
            &key.id,
            result.counter(),
            &json,
            result.backup_state(),
            self.now(),
        )? {
            CounterUpdate::Advanced => {}
            CounterUpdate::Regressed(stored) => {
                // Another assertion with this counter got there first: two
                // copies of the key are in use.
                return self
                    .cloned_key(caller, purpose, &key, stored, result.counter())
                    .map(Err);
            }
            CounterUpdate::Gone => {
                return self
                    .failed_proof(
                        caller,
                        purpose,
                        refusal(
                            ErrorCode::WebauthnKeyDisabled,
                            "that key was disabled or removed",
                        ),
                        &key_details(&key),
                    )
                    .map(Err)
            }
        }
        let attested = rp.key_attested(key.attestation_verified, &key.aaguid);
        Ok(Ok(Assertion {
            key,
            user_verified: uv,
            attested,
        }))
    }

    /// A counter that did not move forward (WebAuthn §6.1.1): the key may have
    /// been cloned. Disable it, raise `webauthn_key_cloned` (high), refuse.
    pub(super) fn cloned_key(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        key: &WebauthnKeyRecord,
        stored: u32,
        presented: u32,
    ) -> Result<Refusal, CaError> {
        metrics::bypass_attempt(metrics::Factor::Webauthn, Bypass::SignCountRegression);
        self.record(
            self.event(EventKind::WebauthnKeyCloned, Outcome::Failure, Some(caller))
                .user(&key.user)
                .mfa_method(MfaMethod::Webauthn.as_str())
                .reason("sign_count_regressed")
                .detail("key_id", key.id.clone())
                .detail("aaguid", key.aaguid.clone())
                .detail("stored_count", u64::from(stored))
                .detail("presented_count", u64::from(presented)),
        )?;
        self.store
            .disable_webauthn_key(&key.id, "sign_count_regressed")?;
        let (code, message) = rp_mod::failure_of(&WebauthnError::CredentialPossibleCompromise);
        self.failed_proof(
            caller,
            purpose,
            refusal(code, message),
            &[
                ("key_id", key.id.clone().into()),
                ("stored_count", u64::from(stored).into()),
                ("presented_count", u64::from(presented).into()),
            ],
        )
    }
}
