//! The authority's side of an OIDC login: audit, user mapping (just-in-time
//! creation, group sync, disabled users refused), the role requirements that
//! trigger a step-up, and the session. A child module of `authority` so that it
//! uses the same audit, rate-limit and session rules as the TOTP login.

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
use crate::store::{IdpBinding, IdpEvidence, StoreError, UserRecord};

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
                    state: started.state,
                    authorize_url: started.authorize_url,
                    expires_at: started.expires_at,
                })
            }
            Err(failure) => {
                self.record(
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .mfa_method(MfaMethod::Oidc.as_str())
                        .reason(failure.code().as_str())
                        .detail("provider", req.provider.clone())
                        .detail("stage", "start"),
                )?;
                Err(Self::oidc_failure_error(&failure))
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
        let pending = self.take_oidc_login(&req.state)?;
        let provider = pending.as_ref().map(|p| p.provider.clone());
        let finished = match &pending {
            Some(p) => rp.finish(p, &req.code, now),
            None => Err(OidcFailure::StateUnknown),
        };
        let login = match finished {
            Ok(l) => l,
            Err(failure) => {
                return Err(self.oidc_rejected(caller, &failure, &req.state, provider, "code")?)
            }
        };
        let outcome = self.oidc_complete(caller, &rp, login, req.invite.as_deref(), now);
        Self::oidc_answered(&req.state, &outcome);
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
        let pending = self.oidc_login_pending(&req.state)?;
        let checked = match &pending {
            Some(p) => rp.pending_check(p, self.now()),
            None => Err(OidcFailure::StateUnknown),
        };
        match checked {
            Ok(expires_at) => Ok(OidcPendingResponse { expires_at }),
            Err(failure) => {
                if let OidcFailure::ProviderUnavailable(_) = failure {
                    self.record(
                        self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                            .mfa_method(MfaMethod::Oidc.as_str())
                            .reason(failure.code().as_str())
                            .detail("provider", pending.as_ref().map(|p| p.provider.clone()))
                            .detail("stage", "wait"),
                    )?;
                }
                Err(Self::oidc_failure_error(&failure))
            }
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
                    handle: d.handle,
                    user_code: d.user_code,
                    verification_uri: d.verification_uri,
                    verification_uri_complete: d.verification_uri_complete,
                    expires_at: d.expires_at,
                    interval_seconds: d.interval,
                })
            }
            Err(failure) => {
                self.record(
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .mfa_method(MfaMethod::Oidc.as_str())
                        .reason(failure.code().as_str())
                        .detail("provider", req.provider.clone())
                        .detail("stage", "device_start"),
                )?;
                Err(Self::oidc_failure_error(&failure))
            }
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
        let provider = self.oidc_device_provider(&req.handle)?;
        let now = self.now();
        let login = match self.poll_oidc_device(&req.handle, now)? {
            Ok(None) => return Ok(OidcDevicePollResponse::Pending),
            Ok(Some(l)) => l,
            Err(failure) => {
                return Err(self.oidc_rejected(
                    caller,
                    &failure,
                    &req.handle,
                    provider,
                    "device",
                )?)
            }
        };
        let outcome = self.oidc_complete(caller, &rp, login, req.invite.as_deref(), now);
        Self::oidc_answered(&req.handle, &outcome);
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
                    state: String::new(),
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
                state: started.state,
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

    /// The Rampart user for a provider-vouched login: the user the account is
    /// linked to, else the invite's user (linked now), else one created just in
    /// time where the provider allows it; groups synced from the token, refused
    /// if disabled whatever the provider says.
    fn oidc_user(
        &self,
        caller: &Caller,
        login: &IdpLogin,
        invite: Option<&str>,
    ) -> Result<UserRecord, CaError> {
        let c = &login.claims;
        let refuse = |reason: &str, err: CaError| -> Result<UserRecord, CaError> {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(&c.username)
                    .mfa_method(MfaMethod::Oidc.as_str())
                    .reason(reason)
                    .detail("provider", login.provider.clone()),
            )?;
            Err(err)
        };
        let settings = self.oidc()?.settings(&login.provider).cloned();
        let jit = settings.as_ref().is_some_and(|s| s.jit_users);
        let sync_groups = settings.as_ref().is_none_or(|s| s.sync_groups);
        // Only the provider's subject names the user: the user-name claim is
        // often editable at the provider, so it may create a new user (JIT) but
        // never claim an existing one. An existing user is tied to a provider
        // account by an admin (`rampart admin user link`) or by an invite
        // redeemed with this login. A linked account logs in as its user and
        // leaves any invite it brought unspent.
        let linked = self.store.idp_subject_user(&login.provider, &c.subject)?;
        let mut user = match (linked, invite) {
            (Some(linked), _) => self.require_user(&linked)?,
            // With an invite, the invite alone names the user: no lookup by
            // name, no JIT.
            (None, Some(invite)) => self.oidc_link_by_invite(caller, login, invite)?,
            (None, None) => match self.store.user(&c.username)? {
                Some(existing) => {
                    return refuse(
                        "oidc_account_not_linked",
                        CaError::forbidden(
                            ErrorCode::OidcAccountNotLinked,
                            format!(
                                "Rampart user {} exists but is not linked to this {} account; \
                                 an admin links it with `rampart admin user link {} \
                                 --provider {} --subject {}`, or sends an invite to redeem \
                                 with `rampart enroll --invite CODE --oidc {}`",
                                existing.name,
                                login.provider,
                                existing.name,
                                login.provider,
                                c.subject,
                                login.provider
                            ),
                        ),
                    )
                }
                None if jit => self.oidc_create_user(caller, login)?,
                None => {
                    return refuse(
                        "oidc_user_unknown",
                        CaError::forbidden(
                            ErrorCode::OidcUserUnknown,
                            format!(
                                "the provider vouched for {}, who is not a Rampart user; ask an \
                                 admin",
                                c.username
                            ),
                        ),
                    )
                }
            },
        };
        if user.disabled {
            return refuse(
                "user_disabled",
                CaError::forbidden(ErrorCode::UserDisabled, "this user is disabled"),
            );
        }
        // With `sync_groups`, the provider is the source of truth for groups
        // when it sends them.
        if sync_groups && !c.groups.is_empty() && c.groups != user.groups {
            self.store.set_groups(&user.name, &c.groups)?;
            self.record(
                self.event(EventKind::UserGroupsChanged, Outcome::Success, Some(caller))
                    .actor(&format!("oidc:{}", login.provider))
                    .user(&user.name)
                    .detail("from", user.groups.clone())
                    .detail("to", c.groups.clone()),
            )?;
            user.groups = c.groups.clone();
        }
        Ok(user)
    }

    /// Link a login's provider account, which no user holds yet, to the user
    /// an invite names: the invite holder's way to what `rampart admin user
    /// link` does. It grants nothing new: the holder could enrol a TOTP for
    /// that user with the same invite. Redemption spends the invite, so a
    /// refusal after it (the user is disabled, or linked to another account at
    /// this provider) spends it too, as a refused enrolment does.
    fn oidc_link_by_invite(
        &self,
        caller: &Caller,
        login: &IdpLogin,
        invite: &str,
    ) -> Result<UserRecord, CaError> {
        let c = &login.claims;
        let now = self.now();
        // Audits and counts its refusals (unknown, used or expired invite,
        // disabled user).
        let name = self.redeem_invite(caller, invite, now)?;
        let event = |kind: EventKind, outcome: Outcome| {
            self.event(kind, outcome, Some(caller))
                .user(&name)
                .mfa_method(MfaMethod::Oidc.as_str())
                .detail("provider", login.provider.clone())
                .detail("subject", c.subject.clone())
        };
        // One account per user per provider: an invite does not move a link;
        // only an admin removes one.
        if let Some(current) = self
            .store
            .idp_link(&login.provider, &name)?
            .filter(|s| *s != c.subject)
        {
            self.record(
                event(EventKind::InviteRefused, Outcome::Failure)
                    .reason("oidc_user_linked")
                    .detail("linked_subject", current),
            )?;
            return Err(CaError::Conflict {
                code: ErrorCode::OidcUserLinked,
                message: format!(
                    "{name} is already linked to another {} account; an admin removes that \
                     link first (`rampart admin user link {name} --provider {} --unlink`)",
                    login.provider, login.provider
                ),
            });
        }
        // Audit first: the link is a state change the log must know of.
        self.record(event(EventKind::InviteRedeemed, Outcome::Success))?;
        self.record(
            event(EventKind::UserIdpLinked, Outcome::Success)
                .actor(&name)
                .detail("via", "invite"),
        )?;
        match self
            .store
            .bind_idp_subject(&login.provider, &c.subject, &name, now)?
        {
            IdpBinding::Bound | IdpBinding::Matches => self.require_user(&name),
            // A login or an admin linked either side between the checks and
            // the bind.
            IdpBinding::SubjectBoundTo(_) | IdpBinding::UserBoundElsewhere => {
                Err(CaError::Conflict {
                    code: ErrorCode::OidcLinkConflict,
                    message: "the link changed meanwhile; ask an admin".to_owned(),
                })
            }
        }
    }

    /// Create the user a provider vouched for (just-in-time) and link the
    /// provider account to it in the same breath. A concurrent first login of
    /// the same account finds the user and the link already there.
    fn oidc_create_user(&self, caller: &Caller, login: &IdpLogin) -> Result<UserRecord, CaError> {
        let c = &login.claims;
        let now = self.now();
        let record = UserRecord {
            name: c.username.clone(),
            groups: c.groups.clone(),
            admin: false,
            disabled: false,
            created_at: now,
        };
        match self.store.create_user(&record) {
            Ok(()) => {
                self.record(
                    self.event(EventKind::UserCreated, Outcome::Success, Some(caller))
                        .actor(&format!("oidc:{}", login.provider))
                        .user(&c.username)
                        .detail("groups", c.groups.clone())
                        .detail("subject", c.subject.clone())
                        .detail("jit", true),
                )?;
            }
            // A user of that name appeared since the lookup: whoever made it, it
            // is not this login's to claim (a concurrent first login of the
            // same account links it, and the next try finds the link).
            Err(StoreError::Duplicate(_)) => {
                return match self.store.idp_subject_user(&login.provider, &c.subject)? {
                    Some(linked) if linked == c.username => self.require_user(&linked),
                    _ => Err(CaError::Conflict {
                        code: ErrorCode::OidcAccountNotLinked,
                        message: format!(
                            "Rampart user {} was created meanwhile and is not linked to this \
                             {} account; try again or ask an admin",
                            c.username, login.provider
                        ),
                    }),
                };
            }
            Err(e) => return Err(e.into()),
        }
        match self
            .store
            .bind_idp_subject(&login.provider, &c.subject, &c.username, now)?
        {
            IdpBinding::Bound | IdpBinding::Matches => self.require_user(&c.username),
            // Someone else's user of that name appeared meanwhile.
            IdpBinding::SubjectBoundTo(_) | IdpBinding::UserBoundElsewhere => {
                Err(CaError::forbidden(
                    ErrorCode::OidcAccountNotLinked,
                    format!(
                        "Rampart user {} is linked to another {} account",
                        c.username, login.provider
                    ),
                ))
            }
        }
    }

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
