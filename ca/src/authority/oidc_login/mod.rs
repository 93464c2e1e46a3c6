//! The authority's side of an OIDC login: audit, user mapping (just-in-time
//! creation, group sync, disabled users refused), the role requirements that
//! trigger a step-up, and the session. A child module of `authority` so that it
//! uses the same audit, rate-limit and session rules as the TOTP login.
//!
//! # Files
//!
//! - `mod.rs`: the relying party, the endpoints (code flow, device flow,
//!   pending logins) and opening the session.
//! - `users.rs`: which Rampart user a login is (link, invite, just in time).
//! - `gate.rs`: the roles that need an OIDC session, and its certificate
//!   extensions.

use rampart_api::ErrorCode;
use rampart_policy::MfaMethod;
use std::sync::Arc;

use rampart_api::oidc::{
    OidcDevicePollRequest, OidcDevicePollResponse, OidcDeviceStartRequest, OidcDeviceStartResponse,
    OidcFinishRequest, OidcFinishResponse, OidcPendingRequest, OidcPendingResponse,
    OidcStartRequest, OidcStartResponse,
};
use rampart_audit::{EventKind, Outcome};

use super::{to_chrono, Authority, Caller, ProvenLogin, Session};
use crate::error::CaError;
use crate::oidc::{AuthParams, IdpLogin, OidcFailure, RelyingParty, MAX_CODE_BYTES};
use crate::secrets;
use crate::store::IdpEvidence;

mod gate;
mod users;

/// `mfa-idp@rampart`: the provider that vouched for the login.
pub const EXT_MFA_IDP: &str = "mfa-idp@rampart";
/// `mfa-acr@rampart`: the token's `acr`.
pub const EXT_MFA_ACR: &str = "mfa-acr@rampart";
/// `mfa-amr@rampart`: the token's `amr`, comma-separated.
pub const EXT_MFA_AMR: &str = "mfa-amr@rampart";
/// `mfa-auth-time@rampart`: the token's `auth_time` (RFC 3339). The certificate's
/// `mfa-time@rampart` carries the same instant: for OIDC the MFA happened when
/// the user authenticated at the provider.
pub const EXT_MFA_AUTH_TIME: &str = "mfa-auth-time@rampart";

impl Authority {
    /// Install the OIDC relying party (none configured: OIDC endpoints refuse).
    pub fn set_oidc(&self, rp: RelyingParty) {
        if let Ok(mut slot) = self.oidc.write() {
            *slot = Some(Arc::new(rp));
        }
    }

    pub(super) fn oidc(&self) -> Result<Arc<RelyingParty>, CaError> {
        self.oidc
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| {
                CaError::bad_request(
                    ErrorCode::OidcDisabled,
                    "this CA has no OIDC provider configured",
                )
            })
    }

    fn oidc_failure_error(failure: &OidcFailure) -> CaError {
        match failure {
            OidcFailure::ProviderUnavailable(_) => CaError::Upstream {
                code: ErrorCode::OidcProviderUnavailable,
                message: failure.message(),
            },
            OidcFailure::UnknownProvider => CaError::bad_request(failure.code(), failure.message()),
            _ => CaError::unauthenticated(failure.code(), failure.message()),
        }
    }

    /// The metrics ID of a login challenge: a digest, so `state` and device handles
    /// (bearer-like secrets) never sit in the metrics registry.
    fn oidc_challenge_id(state_or_handle: &str) -> String {
        hex::encode(secrets::digest_secret(state_or_handle))
    }

    /// A provider round-trip (code redemption or device poll) failed: count it
    /// against the source (unless the provider itself is down), close the metrics
    /// challenge as failed, audit it, and give the client its error.
    fn oidc_rejected(
        &self,
        caller: &Caller,
        failure: &OidcFailure,
        challenge: &str,
        provider: Option<String>,
        flow: &str,
    ) -> Result<CaError, CaError> {
        if !matches!(failure, OidcFailure::ProviderUnavailable(_)) {
            self.note_source_failure(caller);
        }
        crate::metrics::challenge_answered(
            crate::metrics::Factor::Oidc,
            crate::metrics::Flow::Login,
            &Self::oidc_challenge_id(challenge),
            Err(failure.code().as_str()),
        );
        let mut ev = self
            .event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
            .mfa_method(MfaMethod::Oidc.as_str())
            .reason(failure.code().as_str())
            .detail("flow", flow)
            .detail("message", failure.message());
        if let Some(p) = provider {
            ev = ev.detail("provider", p);
        }
        self.record(ev)?;
        Ok(Self::oidc_failure_error(failure))
    }

    /// A login refused before any challenge was handed out (its start) or
    /// while it waits: audited with the stage it failed at, and the client's
    /// error.
    fn oidc_refused_at(
        &self,
        caller: &Caller,
        failure: &OidcFailure,
        provider: Option<String>,
        stage: &str,
    ) -> Result<CaError, CaError> {
        self.record(
            self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                .mfa_method(MfaMethod::Oidc.as_str())
                .reason(failure.code().as_str())
                .detail("provider", provider)
                .detail("stage", stage),
        )?;
        Ok(Self::oidc_failure_error(failure))
    }

    /// The provider vouched for a login: the metrics challenge is answered, with
    /// success only when a session was opened (a step-up request is a failure of
    /// this challenge; its new state opens another).
    fn oidc_answered(challenge: &str, outcome: &Result<OidcFinishResponse, CaError>) {
        let result = match outcome {
            Ok(OidcFinishResponse::LoggedIn { .. }) => Ok(()),
            Ok(OidcFinishResponse::StepUpRequired { .. }) => {
                Err(ErrorCode::OidcStepUpRequired.as_str())
            }
            Err(e) => Err(e.code().as_str()),
        };
        crate::metrics::challenge_answered(
            crate::metrics::Factor::Oidc,
            crate::metrics::Flow::Login,
            &Self::oidc_challenge_id(challenge),
            result,
        );
    }

    fn oidc_opened(challenge: &str, expires_at: chrono::DateTime<chrono::Utc>) {
        crate::metrics::challenge_opened(
            crate::metrics::Factor::Oidc,
            crate::metrics::Flow::Login,
            &Self::oidc_challenge_id(challenge),
            expires_at,
        );
    }

    /// `POST /v1/oidc/start`.
    pub fn oidc_start(
        &self,
        caller: &Caller,
        req: &OidcStartRequest,
    ) -> Result<OidcStartResponse, CaError> {
        self.spend_start_budget(caller)?;
        let rp = self.oidc()?;
        let now = self.now();
        // Ask up front for what the user's roles need, so that a user who holds
        // a strict role is not sent round twice. Unknown users get a plain login.
        let mut params = AuthParams::default();
        if let Some(name) = req.user.as_deref() {
            if super::valid_user_name(name) {
                if let Some(user) = self.store.user(name)? {
                    let reqs = self.policy()?.oidc_requirements(&user.name, &user.groups);
                    params.acr_values = reqs.acr_values();
                    params.max_age = reqs.max_age.map(|(_, d)| d);
                }
            }
        }
        match rp.start(&req.provider, &req.redirect_uri, &params, now)? {
            Ok((started, pending)) => {
                self.keep_oidc_login(caller, &started.state, &pending)?;
                Self::oidc_opened(&started.state, started.expires_at);
                Ok(OidcStartResponse {
                    state: started.state.into(),
                    authorize_url: started.authorize_url,
                    expires_at: started.expires_at,
                })
            }
            Err(failure) => {
                Err(self.oidc_refused_at(caller, &failure, Some(req.provider.clone()), "start")?)
            }
        }
    }

    /// `POST /v1/oidc/finish`: redeem the code, check the token, map the user,
    /// check the roles' requirements, open a session.
    pub fn oidc_finish(
        &self,
        caller: &Caller,
        req: &OidcFinishRequest,
    ) -> Result<OidcFinishResponse, CaError> {
        self.check_source_limit(caller)?;
        let rp = self.oidc()?;
        let now = self.now();
        if req.state.is_empty()
            || req.state.len() > MAX_CODE_BYTES
            || req.code.is_empty()
            || req.code.len() > MAX_CODE_BYTES
        {
            return Err(CaError::bad_request(
                ErrorCode::InvalidRequest,
                "state and code must be 1-2048 characters",
            ));
        }
        // Single use: taken from the store before anything else, whatever
        // happens next and whichever CA started it.
        let pending = self.take_oidc_login(req.state.expose())?;
        let provider = pending.as_ref().map(|p| p.provider.clone());
        let finished = match &pending {
            Some(p) => rp.finish(p, req.code.expose(), now),
            None => Err(OidcFailure::StateUnknown),
        };
        let login = match finished {
            Ok(l) => l,
            Err(failure) => {
                return Err(self.oidc_rejected(
                    caller,
                    &failure,
                    req.state.expose(),
                    provider,
                    "code",
                )?)
            }
        };
        let outcome = self.oidc_complete(
            caller,
            &rp,
            login,
            req.invite.as_ref().map(rampart_api::WireSecret::expose),
            now,
        );
        Self::oidc_answered(req.state.expose(), &outcome);
        outcome
    }

    /// `POST /v1/oidc/pending`: whether a login the CLI waits on can still
    /// finish. A provider gone away ends the wait (audited once per login: the
    /// CLI stops asking).
    pub fn oidc_pending(
        &self,
        caller: &Caller,
        req: &OidcPendingRequest,
    ) -> Result<OidcPendingResponse, CaError> {
        let rp = self.oidc()?;
        if req.state.is_empty() || req.state.len() > MAX_CODE_BYTES {
            return Err(CaError::bad_request(ErrorCode::InvalidRequest, "bad state"));
        }
        let pending = self.oidc_login_pending(req.state.expose())?;
        let checked = match &pending {
            Some(p) => rp.pending_check(p, self.now()),
            None => Err(OidcFailure::StateUnknown),
        };
        match checked {
            Ok(expires_at) => Ok(OidcPendingResponse { expires_at }),
            Err(failure @ OidcFailure::ProviderUnavailable(_)) => {
                let provider = pending.as_ref().map(|p| p.provider.clone());
                Err(self.oidc_refused_at(caller, &failure, provider, "wait")?)
            }
            Err(failure) => Err(Self::oidc_failure_error(&failure)),
        }
    }

    /// `POST /v1/oidc/device/start`.
    pub fn oidc_device_start(
        &self,
        caller: &Caller,
        req: &OidcDeviceStartRequest,
    ) -> Result<OidcDeviceStartResponse, CaError> {
        self.spend_start_budget(caller)?;
        let rp = self.oidc()?;
        match rp.device_start(&req.provider, self.now())? {
            Ok((d, pending)) => {
                self.keep_oidc_device(caller, &d.handle, &pending)?;
                Self::oidc_opened(&d.handle, d.expires_at);
                Ok(OidcDeviceStartResponse {
                    handle: d.handle.into(),
                    user_code: d.user_code,
                    verification_uri: d.verification_uri,
                    verification_uri_complete: d.verification_uri_complete,
                    expires_at: d.expires_at,
                    interval_seconds: d.interval,
                })
            }
            Err(failure) => Err(self.oidc_refused_at(
                caller,
                &failure,
                Some(req.provider.clone()),
                "device_start",
            )?),
        }
    }

    /// `POST /v1/oidc/device/poll`.
    pub fn oidc_device_poll(
        &self,
        caller: &Caller,
        req: &OidcDevicePollRequest,
    ) -> Result<OidcDevicePollResponse, CaError> {
        self.check_source_limit(caller)?;
        let rp = self.oidc()?;
        if req.handle.is_empty() || req.handle.len() > MAX_CODE_BYTES {
            return Err(CaError::bad_request(
                ErrorCode::InvalidRequest,
                "bad handle",
            ));
        }
        let provider = self.oidc_device_provider(req.handle.expose())?;
        let now = self.now();
        let login = match self.poll_oidc_device(req.handle.expose(), now)? {
            Ok(None) => return Ok(OidcDevicePollResponse::Pending),
            Ok(Some(l)) => l,
            Err(failure) => {
                return Err(self.oidc_rejected(
                    caller,
                    &failure,
                    req.handle.expose(),
                    provider,
                    "device",
                )?)
            }
        };
        let outcome = self.oidc_complete(
            caller,
            &rp,
            login,
            req.invite.as_ref().map(rampart_api::WireSecret::expose),
            now,
        );
        Self::oidc_answered(req.handle.expose(), &outcome);
        match outcome? {
            OidcFinishResponse::LoggedIn { login } => {
                Ok(OidcDevicePollResponse::LoggedIn { login })
            }
            OidcFinishResponse::StepUpRequired { code, reason, .. } => Err(CaError::forbidden(
                ErrorCode::OidcStepUpRequired,
                format!(
                    "{reason} ({code}); the device grant cannot ask the provider again: use \
                     `rampart login --mfa oidc` in a browser"
                ),
            )),
        }
    }

    /// After the provider vouched for a login: map the user (an `invite` may
    /// link an unlinked account), check the roles' requirements (a step-up
    /// reuses the login's redirect URI), open a session.
    fn oidc_complete(
        &self,
        caller: &Caller,
        rp: &RelyingParty,
        login: IdpLogin,
        invite: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<OidcFinishResponse, CaError> {
        let user = self.oidc_user(caller, &login, invite)?;
        let reqs = self.policy()?.oidc_requirements(&user.name, &user.groups);
        let age = (now - login.claims.auth_time)
            .to_std()
            .unwrap_or(std::time::Duration::ZERO);
        if let Err(why) = reqs.check(login.claims.acr.as_deref(), &login.claims.amr, age) {
            // Not a wrong answer, a too-weak one: no failure count, but audited,
            // and the user is sent back to the provider for exactly what is missing.
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(&user.name)
                    .mfa_method(MfaMethod::Oidc.as_str())
                    .reason(why.code)
                    .detail("provider", login.provider.clone())
                    .detail("step_up", true)
                    .detail("message", why.message.clone()),
            )?;
            if login.redirect_uri.is_empty() {
                // Device grant: no redirect to send the user back to.
                return Ok(OidcFinishResponse::StepUpRequired {
                    code: why.code.to_owned(),
                    reason: why.message,
                    state: rampart_api::WireSecret::new(String::new()),
                    authorize_url: String::new(),
                });
            }
            let params = AuthParams {
                acr_values: reqs.acr_values(),
                max_age: Some(std::time::Duration::ZERO),
                prompt_login: true,
            };
            let (started, pending) = rp
                .start(&login.provider, &login.redirect_uri, &params, now)?
                .map_err(|f| Self::oidc_failure_error(&f))?;
            self.keep_oidc_login(caller, &started.state, &pending)?;
            Self::oidc_opened(&started.state, started.expires_at);
            return Ok(OidcFinishResponse::StepUpRequired {
                code: why.code.to_owned(),
                reason: why.message,
                state: started.state.into(),
                authorize_url: started.authorize_url,
            });
        }
        self.attempt_succeeded(&user.name, &caller.network())?;
        let token = secrets::new_token();
        let session_id = secrets::new_public_id();
        let expires_at = now + to_chrono(self.settings.session_ttl);
        let c = &login.claims;
        let mfa_event = self
            .record(
                self.event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
                    .user(&user.name)
                    .mfa_method(MfaMethod::Oidc.as_str())
                    .session(&session_id)
                    .detail("provider", login.provider.clone())
                    .detail("subject", c.subject.clone())
                    .detail("acr", c.acr.clone().unwrap_or_default())
                    .detail("amr", c.amr.clone())
                    .detail("auth_time", c.auth_time.to_rfc3339()),
            )?
            .id
            .to_string();
        self.store.put_idp_evidence(
            &session_id,
            &IdpEvidence {
                provider: login.provider.clone(),
                acr: c.acr.clone(),
                amr: c.amr.clone(),
                auth_time: c.auth_time,
            },
            expires_at,
            now,
        )?;
        let login = self.open_session(
            caller,
            ProvenLogin {
                user: &user.name,
                admin: user.admin,
                mfa_method: MfaMethod::Oidc,
                // Freshness is measured from the authentication at the provider.
                mfa_time: c.auth_time,
                mfa_event,
                session_id,
                token,
                expires_at,
            },
        )?;
        Ok(OidcFinishResponse::LoggedIn { login })
    }
}
