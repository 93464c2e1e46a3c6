//! Logging in with a key: who may start a key login (and the same gate for a
//! bastion approval), and the session a verified assertion opens, with the
//! key's evidence stored beside it.

use rampart_api::webauthn as wapi;
use rampart_api::ErrorCode;
use rampart_audit::{EventKind, Outcome};
use rampart_policy::MfaMethod;
use webauthn_rs_core::proto::Credential;

use super::assertion::Assertion;
use crate::authority::{lockout, to_chrono, Authority, Caller, ProvenLogin};
use crate::error::CaError;
use crate::secrets;
use crate::store::{WebauthnEvidence, WebauthnKeyRecord};
use crate::webauthn::Purpose;

impl Authority {
    /// `POST /v1/webauthn/login/start`.
    pub fn webauthn_login_start(
        &self,
        caller: &Caller,
        req: &wapi::LoginStartRequest,
    ) -> Result<wapi::CeremonyStarted, CaError> {
        self.spend_start_budget(caller)?;
        let rp = self.webauthn()?;
        if !crate::authority::valid_user_name(&req.user) {
            return Err(CaError::bad_request(
                ErrorCode::InvalidUserName,
                "that is not a valid user name",
            ));
        }
        if !req.direct {
            self.check_prompt_fatigue(&req.user)?;
        }
        let creds = self.key_user(caller, &req.user, "login_start")?;
        let (options, state) = rp.login_options(creds.into_iter().map(|(_, c)| c).collect())?;
        let options = serde_json::to_value(&options)
            .map_err(|e| CaError::Internal(format!("webauthn options: {e}")))?;
        self.open_request(
            &rp,
            caller,
            Purpose::Login {
                user: req.user.clone(),
                state: Box::new(state),
            },
            rp.settings().challenge_ttl,
            req.direct,
            options,
        )
    }

    /// The user a login or approval names, if they may use a key now; refusals
    /// audited. Unknown users and users without keys get the same answer.
    pub(super) fn key_user(
        &self,
        caller: &Caller,
        user: &str,
        stage: &str,
    ) -> Result<Vec<(WebauthnKeyRecord, Credential)>, CaError> {
        let refuse = |reason: &str| {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(user)
                    .mfa_method(MfaMethod::Webauthn.as_str())
                    .reason(reason)
                    .detail("stage", stage),
            )
        };
        let no_keys = || {
            CaError::unauthenticated(
                ErrorCode::WebauthnNoKeys,
                "no usable security key is enrolled for this user",
            )
        };
        let Some(record) = self.store.user(user)? else {
            self.note_source_failure(caller);
            refuse("webauthn_no_keys")?;
            return Err(no_keys());
        };
        if record.disabled {
            refuse("user_disabled")?;
            return Err(CaError::forbidden(
                ErrorCode::UserDisabled,
                "this user is disabled",
            ));
        }
        let now = self.now();
        if let Some(lock) = self.attempt_lock(user, &caller.network())? {
            refuse("user locked out")?;
            return Err(lockout::locked_error(user, &lock, now));
        }
        let creds = self.usable_credentials(user)?;
        if creds.is_empty() {
            self.note_source_failure(caller);
            refuse("webauthn_no_keys")?;
            return Err(no_keys());
        }
        Ok(creds)
    }

    /// After a verified login assertion: a session exactly like `login` makes,
    /// with method `webauthn` and the key's evidence beside it.
    pub(super) fn open_key_session(
        &self,
        caller: &Caller,
        user: &str,
        a: &Assertion,
        direct: bool,
    ) -> Result<wapi::CeremonyOutcome, CaError> {
        let now = self.now();
        let record = self.require_user(user)?;
        if record.disabled {
            return Err(CaError::forbidden(
                ErrorCode::UserDisabled,
                "this user is disabled",
            ));
        }
        self.attempt_succeeded(user, &caller.network())?;
        let token = secrets::new_token();
        let session_id = secrets::new_public_id();
        let expires_at = now + to_chrono(self.settings.session_ttl);
        let mfa_event = self
            .record(
                self.event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
                    .user(user)
                    .mfa_method(MfaMethod::Webauthn.as_str())
                    .session(&session_id)
                    .detail("key_id", a.key.id.clone())
                    .detail("aaguid", a.key.aaguid.clone())
                    .detail("user_verified", a.user_verified)
                    .detail("attested", a.attested)
                    .detail("via", if direct { "ctap2" } else { "browser" }),
            )?
            .id
            .to_string();
        self.store.put_webauthn_evidence(
            &session_id,
            &WebauthnEvidence {
                key_id: a.key.id.clone(),
                aaguid: a.key.aaguid.clone(),
                user_verified: a.user_verified,
                attested: a.attested,
                via_link: !direct,
            },
            expires_at,
            now,
        )?;
        let login = self.open_session(
            caller,
            ProvenLogin {
                user,
                admin: record.admin,
                mfa_method: MfaMethod::Webauthn,
                mfa_time: now,
                mfa_event,
                session_id,
                token,
                expires_at,
            },
        )?;
        Ok(wapi::CeremonyOutcome::LoggedIn { login })
    }
}
