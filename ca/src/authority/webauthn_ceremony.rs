//! The authority's side of the hardware-key factor: who may start which ceremony,
//! what an answer proves, and everything that follows from it — audit events,
//! failure counting and lockout (the same as for TOTP), sessions, enrolled keys,
//! recovery codes, the evidence a certificate carries, and the approvals a
//! bastion's per-session certificate consumes. A child module of `authority` so
//! that these rules share the TOTP login's helpers. The cryptographic checks are
//! `crate::webauthn`'s.
//!
//! Reason codes (API error `code`, audit `reason`) are stable:
//! `webauthn_request_unknown`, `webauthn_request_expired`, `webauthn_replayed`,
//! `webauthn_denied`, `webauthn_no_keys`, `webauthn_malformed`,
//! `webauthn_unknown_credential`, `webauthn_foreign_credential`,
//! `webauthn_key_disabled`, `webauthn_sign_count`, `webauthn_uv_missing`,
//! `webauthn_wrong_origin`, `webauthn_wrong_rp_id`, `webauthn_challenge_mismatch`,
//! `webauthn_signature_invalid`, `webauthn_aaguid_not_allowed`,
//! `webauthn_key_exists`, `webauthn_attestation_untrusted`, `webauthn_invalid`,
//! `enrolment_factor_too_weak`, `enrolment_recovery_session`.
//!
//! Enrolment never raises what a user can prove: a session adds a key only when
//! its own factor is at least as strong as the new key could be (see
//! `require_enrolment_strength`); anyone else needs an admin's invite. Whether
//! the CA vouches for a key's model (attestation verified at enrolment, or an
//! allow-listed AAGUID) decides whether its UV assertions are
//! `phishing-resistant` or only `unattested-key`, and travels in the session's
//! evidence and the certificate (`mfa-key-attested@rampart`).

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rampart_api::webauthn as wapi;
use rampart_audit::{EventKind, NewEvent, Outcome};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationFormat, AuthenticationState, Credential, PublicKeyCredential,
    RegisterPublicKeyCredential,
};

use super::bastion::Bastion;
use super::{lockout, to_chrono, Authority, Caller, ProvenLogin, Session};
use crate::error::CaError;
use crate::metrics::{self, Approval, Bypass};
use crate::secrets;
use crate::store::{CounterUpdate, StoreError, WebauthnEvidence, WebauthnKeyRecord};
use crate::webauthn::{self as rp_mod, Entry, Purpose, Refusal, RelyingParty, Status};

/// How long after its request's end an approval may still be consumed.
const APPROVAL_USE_GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// What a `WAIT` finds.
#[derive(Debug)]
pub enum WaitState {
    /// The ceremony ended well.
    Ready(wapi::CeremonyOutcome),
    /// Nobody answered yet: wait on `changed` (at most until `expires_at`).
    Pending {
        /// The request's end.
        expires_at: DateTime<Utc>,
        /// Changes when the request does.
        changed: watch::Receiver<u64>,
    },
}

/// What the page of a request shows.
#[derive(Debug, Clone)]
pub struct PageView {
    /// `login`, `register` or `approval`.
    pub kind: &'static str,
    /// The user the request names.
    pub user: String,
    /// One line: what approving does.
    pub what: String,
    /// The source network of whoever started it (an IPv4 address, or an IPv6
    /// /64): the user can tell whether it was them.
    pub requested_from: String,
    /// When it was started.
    pub requested_at: DateTime<Utc>,
    /// The request's end.
    pub expires_at: DateTime<Utc>,
    /// Open for an answer, or how it ended.
    pub state: PageState,
}

/// Where a request is, for its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageState {
    /// Waiting for the user.
    Open,
    /// Already answered (approved, denied or refused).
    Finished,
    /// Past its end.
    Expired,
}

/// A bastion approval as the per-session certificate consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalEvidence {
    /// The `mfa_succeeded` event of the approval.
    pub mfa_event: String,
    /// When the key was used.
    pub mfa_time: DateTime<Utc>,
    /// UV flag of the assertion.
    pub user_verified: bool,
    /// The key's AAGUID.
    pub aaguid: String,
    /// The CA trusted the key's model when it approved.
    pub attested: bool,
}

/// A verified assertion.
struct Assertion {
    key: WebauthnKeyRecord,
    user_verified: bool,
    /// The CA trusts the key's model ([`RelyingParty::key_attested`]).
    attested: bool,
}

/// The answer taken from a request (its challenge is now used).
struct Taken {
    purpose: Purpose,
    direct: bool,
    started: std::time::Instant,
    metrics_id: String,
}

enum Take {
    Taken(Taken),
    Replayed(Purpose, bool),
    Expired(Purpose),
}

fn unknown_request() -> CaError {
    CaError::not_found(
        "webauthn_request_unknown",
        "this security-key request is unknown or ended long ago; start again",
    )
}

/// Wrong codes a page may type before its request ends refused.
pub const MAX_CODE_MISSES: u8 = 3;

/// The refusal code of a request nobody answered in time.
const EXPIRED: &str = "webauthn_request_expired";

fn expired_refusal() -> Refusal {
    Refusal {
        code: EXPIRED,
        message: "this security-key request expired before it was answered; start again".into(),
        forbidden: false,
    }
}

/// Whether a request ended by expiring, as whoever saw that first recorded it
/// (the starter's `WAIT`, a late answer), rather than by being answered. A page
/// left open past its end must say "expired", not "already answered": the
/// latter tells the user someone else answered their request.
fn ended_expired(status: &Status) -> bool {
    matches!(status, Status::Refused(r) if r.code == EXPIRED)
}

fn refusal(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
        forbidden: false,
    }
}

/// The metrics identity of a request: a digest, never the request ID itself.
fn metrics_id(request_id: &str) -> String {
    hex::encode(Sha256::digest(request_id.as_bytes()))
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A stable, opaque WebAuthn user handle for a user name (16 bytes; the spec
/// asks for no personal data in it, so it is a digest, not the name).
fn user_handle(user: &str) -> [u8; 16] {
    let d = Sha256::digest(format!("rampart-webauthn-user\0{user}").as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(d.get(..16).unwrap_or(&[0u8; 16]));
    out
}

fn format_name(f: &AttestationFormat) -> &'static str {
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

fn clean(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

impl Authority {
    /// Install the WebAuthn relying party (the server always does; without one
    /// the WebAuthn endpoints refuse).
    pub fn set_webauthn(&self, rp: RelyingParty) {
        if let Ok(mut slot) = self.webauthn.write() {
            *slot = Some(Arc::new(rp));
        }
    }

    /// The relying party.
    pub fn webauthn(&self) -> Result<Arc<RelyingParty>, CaError> {
        self.webauthn
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| {
                CaError::bad_request(
                    "webauthn_disabled",
                    "this CA has no WebAuthn relying party configured",
                )
            })
    }

    /// A user's usable credentials (disabled keys left out).
    fn usable_credentials(
        &self,
        user: &str,
    ) -> Result<Vec<(WebauthnKeyRecord, Credential)>, CaError> {
        let mut out = Vec::new();
        for k in self.store.webauthn_keys(user)? {
            if k.disabled_reason.is_some() {
                continue;
            }
            let cred: Credential = serde_json::from_str(&k.credential).map_err(|e| {
                CaError::Store(StoreError::Corrupt(format!("webauthn key {}: {e}", k.id)))
            })?;
            out.push((k, cred));
        }
        Ok(out)
    }

    fn open_request(
        &self,
        rp: &RelyingParty,
        caller: &Caller,
        purpose: Purpose,
        ttl: std::time::Duration,
        direct: bool,
        options: serde_json::Value,
    ) -> Result<wapi::CeremonyStarted, CaError> {
        let now = self.now();
        let expires_at = now + to_chrono(ttl);
        let flow = purpose.flow();
        let new = RelyingParty::new_request(
            purpose,
            caller.network(),
            now,
            expires_at,
            direct,
            options.clone(),
        );
        let factor = new.entry.factor();
        let short_code = new.entry.short_code.clone();
        rp.insert(&new.request_id, new.entry, now)?;
        metrics::challenge_opened(factor, flow, &metrics_id(&new.request_id), expires_at);
        Ok(wapi::CeremonyStarted {
            url: rp.page_url(&new.request_id),
            request_id: new.request_id,
            poll_token: new.poll_token,
            short_code,
            expires_at,
            public_key: direct.then_some(options),
        })
    }

    /// Changing one's own keys with a bearer session needs an MFA check as fresh
    /// as admin operations do (`[admin] max_mfa_age`): a stolen session token
    /// must not be enough to plant a key or strip the owner's.
    fn require_fresh_mfa(&self, session: &Session, what: &str) -> Result<(), CaError> {
        if self.now() - session.record.mfa_time > to_chrono(self.settings.admin_max_mfa_age) {
            return Err(CaError::forbidden(
                "webauthn_mfa_stale",
                format!("{what} needs a recent MFA check; run `rampart login` again"),
            ));
        }
        Ok(())
    }

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
    fn require_enrolment_strength(
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
            why.map(|w| ("enrolment_recovery_session", w))
        } else if have < needed {
            Some((
                "enrolment_factor_too_weak",
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
            .mfa_method("webauthn")
            .reason(reason)
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

    // ----- start -----------------------------------------------------------

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
                "invalid_key_name",
                "a key name is 1-64 letters, digits, '-', '_', '.' or spaces",
            ));
        }
        let name = req.name.trim().to_owned();
        let (user, via_invite, session_id) = match (&req.invite, session) {
            (Some(_), _) if req.replaces.is_some() => {
                return Err(CaError::bad_request(
                    "invalid_request",
                    "replaces goes with a session, not an invite; remove old keys with \
                     `rampart keys remove`",
                ))
            }
            (Some(invite), _) => {
                self.check_source_limit(caller)?;
                (self.redeem_invite_for_key(caller, invite)?, true, None)
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
                                    "webauthn_key_unknown",
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
                    "session_missing",
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
                code: "webauthn_key_name_taken",
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
    fn redeem_invite_for_key(&self, caller: &Caller, invite: &str) -> Result<String, CaError> {
        let user = self.redeem_invite(caller, invite, self.now())?;
        self.record(
            self.event(EventKind::InviteRedeemed, Outcome::Success, Some(caller))
                .user(&user)
                .mfa_method("webauthn"),
        )?;
        Ok(user)
    }

    /// The user a login or approval names, if they may use a key now; refusals
    /// audited. Unknown users and users without keys get the same answer.
    fn key_user(
        &self,
        caller: &Caller,
        user: &str,
        stage: &str,
    ) -> Result<Vec<(WebauthnKeyRecord, Credential)>, CaError> {
        let refuse = |reason: &str| {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(user)
                    .mfa_method("webauthn")
                    .reason(reason)
                    .detail("stage", stage),
            )
        };
        let no_keys = || {
            CaError::unauthenticated(
                "webauthn_no_keys",
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
            return Err(CaError::forbidden("user_disabled", "this user is disabled"));
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

    /// `POST /v1/webauthn/login/start`.
    pub fn webauthn_login_start(
        &self,
        caller: &Caller,
        req: &wapi::LoginStartRequest,
    ) -> Result<wapi::CeremonyStarted, CaError> {
        self.spend_start_budget(caller)?;
        let rp = self.webauthn()?;
        if !super::valid_user_name(&req.user) {
            return Err(CaError::bad_request(
                "invalid_user_name",
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

    /// `POST /v1/bastion/approvals/start`: a per-session approval of `req.user`,
    /// asked by a joined bastion.
    pub fn webauthn_approval_start(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &wapi::BastionApprovalStartRequest,
    ) -> Result<wapi::CeremonyStarted, CaError> {
        let rp = self.webauthn()?;
        if !super::valid_user_name(&req.user)
            || !clean(&req.session_id, 128)
            || !clean(&req.target, 255)
            || !clean(&req.login, 64)
        {
            return Err(CaError::bad_request(
                "invalid_approval",
                "user, session_id (≤ 128), target (≤ 255) and login (≤ 64) must be non-empty and printable",
            ));
        }
        self.check_prompt_fatigue(&req.user)?;
        let creds = self.key_user(caller, &req.user, "approval_start")?;
        let (options, state) = rp.login_options(creds.into_iter().map(|(_, c)| c).collect())?;
        let options = serde_json::to_value(&options)
            .map_err(|e| CaError::Internal(format!("webauthn options: {e}")))?;
        self.open_request(
            &rp,
            caller,
            Purpose::Approval {
                user: req.user.clone(),
                bastion: bastion.record.name.clone(),
                session_id: req.session_id.clone(),
                target: req.target.clone(),
                login: req.login.clone(),
                state: Box::new(state),
            },
            rp.settings().approval_ttl,
            false,
            options,
        )
    }

    // ----- wait --------------------------------------------------------------

    /// One look at a request for its starter (`WAIT`, or a bastion's
    /// `approvals/wait` with `bastion` set). A refusal is an error with its code;
    /// a request past its end is refused (and audited) here if nobody answered.
    pub fn webauthn_poll(
        &self,
        caller: &Caller,
        req: &wapi::WaitRequest,
        bastion: Option<&str>,
    ) -> Result<WaitState, CaError> {
        let rp = self.webauthn()?;
        let now = self.now();
        enum Look {
            Unknown,
            BadToken,
            Expired(Purpose, bool),
            Ready(wapi::CeremonyOutcome, bool),
            /// The refusal, and whether to close the request now (a bastion
            /// approval keeps it, so the session-cert call names the real reason).
            Refused(Refusal, bool),
            Pending(DateTime<Utc>, watch::Receiver<u64>),
        }
        let look = rp
            .with(&req.request_id, |e| {
                if !e.token_matches(&req.poll_token) {
                    return Look::BadToken;
                }
                let owner_ok = match (&e.purpose, bastion) {
                    (Purpose::Approval { bastion: b, .. }, Some(name)) => b == name,
                    (Purpose::Approval { .. }, None) | (_, Some(_)) => false,
                    _ => true,
                };
                if !owner_ok {
                    return Look::Unknown;
                }
                match &e.status {
                    Status::Open if now >= e.expires_at => {
                        e.set(Status::Refused(expired_refusal()));
                        Look::Expired(e.purpose.clone(), e.direct)
                    }
                    // An answer being checked settles in milliseconds; one that
                    // never settled (the CA failed mid-check) ends as expired.
                    Status::Checking if now >= e.expires_at + APPROVAL_USE_GRACE => {
                        e.set(Status::Refused(expired_refusal()));
                        // The CA failed, not the user: no fatigue count.
                        Look::Expired(e.purpose.clone(), true)
                    }
                    Status::Open | Status::Checking => {
                        Look::Pending(e.expires_at, e.changed.subscribe())
                    }
                    Status::Done(o) => {
                        let o = (**o).clone();
                        if matches!(e.purpose, Purpose::Approval { .. }) {
                            e.set(Status::Collected(Box::new(o.clone())));
                            Look::Ready(o, false)
                        } else {
                            Look::Ready(o, true)
                        }
                    }
                    Status::Collected(o) => Look::Ready((**o).clone(), false),
                    // An expired request stays marked expired rather than
                    // closed, so that its page keeps saying "expired", not
                    // "already answered"; a refusal holds no secret to forget.
                    Status::Refused(r) => Look::Refused(
                        r.clone(),
                        !matches!(e.purpose, Purpose::Approval { .. }) && r.code != EXPIRED,
                    ),
                    Status::Closed => Look::Unknown,
                }
            })?
            .unwrap_or(Look::Unknown);
        match look {
            Look::Unknown => Err(unknown_request()),
            Look::BadToken => {
                self.note_source_failure(caller);
                Err(unknown_request())
            }
            Look::Expired(purpose, direct) => {
                let r = expired_refusal();
                self.audit_refusal(caller, &purpose, &r, &[])?;
                if !direct && !matches!(purpose, Purpose::Register { .. }) {
                    self.note_unanswered_prompt(caller, purpose.user(), r.code)?;
                }
                Err(r.error())
            }
            Look::Ready(outcome, close) => {
                if close {
                    self.settle(&rp, &req.request_id, Status::Closed)?;
                }
                Ok(WaitState::Ready(outcome))
            }
            Look::Refused(r, close) => {
                if close {
                    self.settle(&rp, &req.request_id, Status::Closed)?;
                }
                Err(r.error())
            }
            Look::Pending(expires_at, changed) => Ok(WaitState::Pending {
                expires_at,
                changed,
            }),
        }
    }

    // ----- answers ----------------------------------------------------------

    /// Take a request's challenge for one answer (a second one is a replay).
    fn take(
        &self,
        rp: &RelyingParty,
        caller: &Caller,
        request_id: &str,
        poll_token: Option<&str>,
    ) -> Result<Take, CaError> {
        let now = self.now();
        let got = rp.with(request_id, |e: &mut Entry| {
            if let Some(t) = poll_token {
                if !e.token_matches(t) {
                    return None;
                }
            }
            Some(match e.status {
                Status::Open if now >= e.expires_at => {
                    e.set(Status::Refused(expired_refusal()));
                    Take::Expired(e.purpose.clone())
                }
                Status::Open => {
                    e.set(Status::Checking);
                    Take::Taken(Taken {
                        purpose: e.purpose.clone(),
                        direct: e.direct,
                        started: e.started,
                        metrics_id: metrics_id(request_id),
                    })
                }
                // Nobody took this challenge: a late answer, not a replay.
                ref st if ended_expired(st) => Take::Expired(e.purpose.clone()),
                _ => Take::Replayed(e.purpose.clone(), e.direct),
            })
        })?;
        match got {
            None => Err(unknown_request()),
            Some(None) => {
                self.note_source_failure(caller);
                Err(unknown_request())
            }
            Some(Some(t)) => Ok(t),
        }
    }

    /// Record how an answered request ended and wake its starter.
    fn settle(&self, rp: &RelyingParty, request_id: &str, status: Status) -> Result<(), CaError> {
        rp.with(request_id, |e| e.set(status))?;
        Ok(())
    }

    /// `POST /v1/webauthn/finish` (CTAP2 path): the starter posts the key's
    /// answer and gets the outcome at once.
    pub fn webauthn_finish(
        &self,
        caller: &Caller,
        req: &wapi::FinishRequest,
    ) -> Result<wapi::CeremonyOutcome, CaError> {
        self.check_source_limit(caller)?;
        let rp = self.webauthn()?;
        let outcome = self.answer(
            &rp,
            caller,
            &req.request_id,
            Some(&req.poll_token),
            &req.credential,
        )?;
        // The starter has it now: only an approval stays, for its certificate.
        match &outcome {
            wapi::CeremonyOutcome::Approved { .. } => self.settle(
                &rp,
                &req.request_id,
                Status::Collected(Box::new(outcome.clone())),
            )?,
            _ => self.settle(&rp, &req.request_id, Status::Closed)?,
        }
        Ok(outcome)
    }

    /// The page posts the browser's answer. The outcome waits for the starter's
    /// `WAIT`; the page learns only that it worked (never the session token).
    pub fn webauthn_page_answer(
        &self,
        caller: &Caller,
        request_id: &str,
        credential: &serde_json::Value,
    ) -> Result<&'static str, CaError> {
        self.check_source_limit(caller)?;
        let rp = self.webauthn()?;
        // The page gets the options only for the right code; an answer posted
        // without that step skipped the user's check of who started this
        // (a replayed or forged answer): it ends the request, refused.
        if rp.with(request_id, |e| e.code_matched)? == Some(false) {
            self.note_source_failure(caller);
            let r = refusal(
                "webauthn_code_required",
                "an answer came without the code the terminal shows; start again",
            );
            self.refuse_on_page(&rp, caller, request_id, r.clone())?;
            return Err(r.error());
        }
        let outcome = self.answer(&rp, caller, request_id, None, credential)?;
        Ok(match outcome {
            wapi::CeremonyOutcome::Registered { .. } => "registered",
            wapi::CeremonyOutcome::Approved { .. } => "approved",
            _ => "logged_in",
        })
    }

    /// The page's Deny button.
    pub fn webauthn_page_deny(&self, caller: &Caller, request_id: &str) -> Result<(), CaError> {
        let rp = self.webauthn()?;
        let r = Refusal {
            code: "webauthn_denied",
            message: "the request was denied in the browser".into(),
            forbidden: true,
        };
        self.refuse_on_page(&rp, caller, request_id, r)
    }

    /// End an open request from its page with `r` (a denial, an answer that
    /// skipped the code): audited, counted towards the user's prompt fatigue,
    /// and the starter's wait ends with `r`.
    fn refuse_on_page(
        &self,
        rp: &RelyingParty,
        caller: &Caller,
        request_id: &str,
        r: Refusal,
    ) -> Result<(), CaError> {
        let taken = match self.take(rp, caller, request_id, None)? {
            Take::Taken(t) => t,
            Take::Expired(purpose) => {
                let r = expired_refusal();
                self.audit_refusal(caller, &purpose, &r, &[])?;
                return Err(r.error());
            }
            Take::Replayed(..) => {
                return Err(CaError::Conflict {
                    code: "webauthn_request_finished",
                    message: "this request was already answered".into(),
                })
            }
        };
        metrics::challenge_answered(
            if taken.direct {
                metrics::Factor::Fido2
            } else {
                metrics::Factor::Webauthn
            },
            taken.purpose.flow(),
            &taken.metrics_id,
            Err(r.code),
        );
        // Audit first: the starter learns of the denial only once it is logged.
        self.audit_refusal(caller, &taken.purpose, &r, &[])?;
        if !taken.direct {
            self.note_unanswered_prompt(caller, taken.purpose.user(), r.code)?;
        }
        self.settle(rp, request_id, Status::Refused(r))
    }

    /// Check an answer for a request and act on it.
    fn answer(
        &self,
        rp: &RelyingParty,
        caller: &Caller,
        request_id: &str,
        poll_token: Option<&str>,
        credential: &serde_json::Value,
    ) -> Result<wapi::CeremonyOutcome, CaError> {
        let taken = match self.take(rp, caller, request_id, poll_token)? {
            Take::Taken(t) => t,
            Take::Expired(purpose) => {
                let r = expired_refusal();
                self.audit_refusal(caller, &purpose, &r, &[])?;
                return Err(r.error());
            }
            Take::Replayed(purpose, direct) => {
                // A second answer to a used challenge: a replayed assertion or a
                // double submit. Refused and audited; the first answer stands.
                let factor = if direct {
                    metrics::Factor::Fido2
                } else {
                    metrics::Factor::Webauthn
                };
                metrics::bypass_attempt(factor, Bypass::Replay);
                let r = refusal(
                    "webauthn_replayed",
                    "this request was already answered; its challenge cannot be used again",
                );
                self.audit_refusal(caller, &purpose, &r, &[])?;
                return Err(r.error());
            }
        };
        let factor = if taken.direct {
            metrics::Factor::Fido2
        } else {
            metrics::Factor::Webauthn
        };
        let flow = taken.purpose.flow();
        let result = match &taken.purpose {
            Purpose::Register { .. } => self.finish_register(rp, caller, &taken, credential),
            Purpose::Login { user, state } => {
                match self.check_assertion(rp, caller, &taken.purpose, user, state, credential)? {
                    Ok(a) => self
                        .open_key_session(caller, user, &a, taken.direct)
                        .map(Ok),
                    Err(r) => Ok(Err(r)),
                }
            }
            Purpose::Approval { user, state, .. } => {
                match self.check_assertion(rp, caller, &taken.purpose, user, state, credential)? {
                    Ok(a) => self.approve_session(caller, &taken.purpose, &a).map(Ok),
                    Err(r) => Ok(Err(r)),
                }
            }
        };
        match result {
            Ok(Ok(outcome)) => {
                metrics::challenge_answered(factor, flow, &taken.metrics_id, Ok(()));
                let waited = taken.started.elapsed();
                match (&taken.purpose, taken.direct) {
                    (Purpose::Approval { .. }, _) => metrics::approval(Approval::Session, waited),
                    (_, false) => metrics::approval(Approval::Browser, waited),
                    _ => {}
                }
                self.settle(rp, request_id, Status::Done(Box::new(outcome.clone())))?;
                Ok(outcome)
            }
            Ok(Err(r)) => {
                metrics::challenge_answered(factor, flow, &taken.metrics_id, Err(r.code));
                self.settle(rp, request_id, Status::Refused(r.clone()))?;
                Err(r.error())
            }
            Err(e) => {
                // An internal failure (audit, store): the request cannot be
                // trusted to have done anything; it ends refused.
                self.settle(
                    rp,
                    request_id,
                    Status::Refused(Refusal {
                        code: e.code(),
                        message: "the CA could not finish this request; start again".into(),
                        forbidden: false,
                    }),
                )?;
                Err(e)
            }
        }
    }

    /// Audit a refused request: `webauthn_enrolment_refused` for an enrolment,
    /// `mfa_failed` otherwise.
    fn audit_refusal(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        r: &Refusal,
        details: &[(&str, serde_json::Value)],
    ) -> Result<(), CaError> {
        self.record(self.refusal_event(caller, purpose, r, details))?;
        Ok(())
    }

    /// The audit event of a refused request.
    fn refusal_event(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        r: &Refusal,
        details: &[(&str, serde_json::Value)],
    ) -> NewEvent {
        let kind = match purpose {
            Purpose::Register { .. } => EventKind::WebauthnEnrolmentRefused,
            _ => EventKind::MfaFailed,
        };
        let mut ev = self
            .event(kind, Outcome::Failure, Some(caller))
            .user(purpose.user())
            .mfa_method("webauthn")
            .reason(r.code)
            .detail("request", purpose.kind());
        if let Purpose::Approval {
            bastion,
            session_id,
            target,
            login,
            ..
        } = purpose
        {
            ev = ev
                .actor(&format!("bastion:{bastion}"))
                .session(session_id)
                .target(target)
                .detail("login", login.clone());
        }
        for (k, v) in details {
            ev = ev.detail(k, v.clone());
        }
        ev
    }

    /// A failed proof of an attempt begun in [`Self::check_assertion`]:
    /// counted against the (user, network) pair and the user (locks as for
    /// TOTP), audited.
    fn failed_proof(
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
    fn check_assertion(
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
                "user_locked",
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
                            "webauthn_malformed",
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
                            "webauthn_unknown_credential",
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
                            "webauthn_foreign_credential",
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
                            "webauthn_key_disabled",
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
                        refusal("webauthn_key_disabled", "that key was disabled or removed"),
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
    fn cloned_key(
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
                .mfa_method("webauthn")
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

    /// After a verified login assertion: a session exactly like `login` makes,
    /// with method `webauthn` and the key's evidence beside it.
    fn open_key_session(
        &self,
        caller: &Caller,
        user: &str,
        a: &Assertion,
        direct: bool,
    ) -> Result<wapi::CeremonyOutcome, CaError> {
        let now = self.now();
        let record = self.require_user(user)?;
        if record.disabled {
            return Err(CaError::forbidden("user_disabled", "this user is disabled"));
        }
        self.attempt_succeeded(user, &caller.network())?;
        let token = secrets::new_token();
        let session_id = secrets::new_public_id();
        let expires_at = now + to_chrono(self.settings.session_ttl);
        let mfa_event = self
            .record(
                self.event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
                    .user(user)
                    .mfa_method("webauthn")
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
            },
            expires_at,
            now,
        )?;
        let login = self.open_session(
            caller,
            ProvenLogin {
                user,
                admin: record.admin,
                mfa_method: "webauthn",
                mfa_time: now,
                mfa_event,
                session_id,
                token,
                expires_at,
            },
        )?;
        Ok(wapi::CeremonyOutcome::LoggedIn { login })
    }

    /// After a verified approval assertion: the `mfa_succeeded` event the
    /// per-session certificate will point at.
    fn approve_session(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        a: &Assertion,
    ) -> Result<wapi::CeremonyOutcome, CaError> {
        let Purpose::Approval {
            user,
            bastion,
            session_id,
            target,
            login,
            ..
        } = purpose
        else {
            return Err(CaError::Internal("not an approval".into()));
        };
        let now = self.now();
        self.attempt_succeeded(user, &caller.network())?;
        let mfa_event = self
            .record(
                self.event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
                    .actor(&format!("bastion:{bastion}"))
                    .user(user)
                    .mfa_method("webauthn")
                    .session(session_id)
                    .target(target)
                    .detail("login", login.clone())
                    .detail("key_id", a.key.id.clone())
                    .detail("aaguid", a.key.aaguid.clone())
                    .detail("user_verified", a.user_verified)
                    .detail("attested", a.attested)
                    .detail("via", "approval"),
            )?
            .id
            .to_string();
        Ok(wapi::CeremonyOutcome::Approved {
            mfa_event,
            mfa_time: now,
            user_verified: a.user_verified,
            aaguid: a.key.aaguid.clone(),
            attested: a.attested,
        })
    }

    /// Check a registration answer and enrol the key.
    fn finish_register(
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
                        "webauthn_malformed",
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
                    "webauthn_aaguid_not_allowed",
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
                refusal("webauthn_key_exists", "this key is already enrolled"),
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
            secrets::new_recovery_codes(super::RECOVERY_CODES)
        } else {
            Vec::new()
        };
        let mut hashed = Vec::with_capacity(codes.len());
        for c in &codes {
            hashed.push((c.id.clone(), secrets::hash_recovery_code(&c.code)?));
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
                        "webauthn_key_exists",
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
            .mfa_method("webauthn")
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
                .mfa_method("webauthn")
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
                .detail("count", super::RECOVERY_CODES as u64),
            )?;
        }
        Ok(Ok(wapi::CeremonyOutcome::Registered {
            user: user.clone(),
            key: key_view(
                &record,
                rp.key_attested(record.attestation_verified, &record.aaguid),
            ),
            recovery_codes: codes.iter().map(|c| c.code.to_string()).collect(),
        }))
    }

    // ----- pages --------------------------------------------------------------

    /// What a request's page shows; `None` for an unknown request.
    pub fn webauthn_page(&self, request_id: &str) -> Result<Option<PageView>, CaError> {
        let rp = self.webauthn()?;
        let now = self.now();
        rp.with(request_id, |e| {
            let (kind, what) = match &e.purpose {
                Purpose::Register { user, name, .. } => (
                    "register",
                    format!("enrol the security key \u{201c}{name}\u{201d} for {user}"),
                ),
                Purpose::Login { user, .. } => ("login", format!("log in to Rampart as {user}")),
                Purpose::Approval {
                    user,
                    target,
                    login,
                    bastion,
                    ..
                } => (
                    "approval",
                    format!("open an SSH session as {login}@{target} for {user} (through bastion {bastion})"),
                ),
            };
            let state = match e.status {
                Status::Open if now >= e.expires_at => PageState::Expired,
                Status::Open => PageState::Open,
                ref st if ended_expired(st) => PageState::Expired,
                _ => PageState::Finished,
            };
            PageView {
                kind,
                user: e.purpose.user().to_owned(),
                what,
                requested_from: e.network.clone(),
                requested_at: e.started_at,
                expires_at: e.expires_at,
                state,
            }
        })
    }

    /// The options the page hands to `navigator.credentials`: only while open,
    /// and only for the code the starter's terminal shows (typed by the user).
    /// [`MAX_CODE_MISSES`] wrong codes end the request, refused.
    pub fn webauthn_page_options(
        &self,
        caller: &Caller,
        request_id: &str,
        typed_code: &str,
    ) -> Result<serde_json::Value, CaError> {
        self.check_source_limit(caller)?;
        let rp = self.webauthn()?;
        let now = self.now();
        enum Look {
            Options(serde_json::Value),
            Miss(u8),
            /// The last miss: the request is now refused.
            Ended(Purpose, bool, Refusal),
            Refused(CaError),
        }
        let look = rp.with(request_id, |e| match e.status {
            Status::Open if now < e.expires_at => {
                if typed_code.len() <= 64 && e.code_matches(typed_code) {
                    e.code_matched = true;
                    return Look::Options(e.options.clone());
                }
                e.code_misses = e.code_misses.saturating_add(1);
                if e.code_misses < MAX_CODE_MISSES {
                    return Look::Miss(MAX_CODE_MISSES - e.code_misses);
                }
                let r = refusal(
                    "webauthn_code_mismatch",
                    "the code typed on the page did not match the one the terminal showed",
                );
                e.set(Status::Refused(r.clone()));
                Look::Ended(e.purpose.clone(), e.direct, r)
            }
            Status::Open => Look::Refused(expired_refusal().error()),
            ref st if ended_expired(st) => Look::Refused(expired_refusal().error()),
            _ => Look::Refused(CaError::Conflict {
                code: "webauthn_request_finished",
                message: "this request was already answered".into(),
            }),
        })?;
        match look {
            None => Err(unknown_request()),
            Some(Look::Options(o)) => Ok(o),
            Some(Look::Refused(e)) => Err(e),
            Some(Look::Miss(left)) => {
                self.note_source_failure(caller);
                Err(CaError::forbidden(
                    "webauthn_code_mismatch",
                    format!(
                        "that is not the code your terminal shows; {left} more tries. If no \
                         terminal of yours shows a code, you did not start this: press Deny"
                    ),
                ))
            }
            Some(Look::Ended(purpose, direct, r)) => {
                self.note_source_failure(caller);
                metrics::challenge_answered(
                    if direct {
                        metrics::Factor::Fido2
                    } else {
                        metrics::Factor::Webauthn
                    },
                    purpose.flow(),
                    &metrics_id(request_id),
                    Err(r.code),
                );
                self.audit_refusal(caller, &purpose, &r, &[])?;
                self.note_unanswered_prompt(caller, purpose.user(), r.code)?;
                Err(r.error())
            }
        }
    }

    // ----- keys ----------------------------------------------------------------

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
                "webauthn_key_unknown",
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
            .mfa_method("webauthn")
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

    // ----- evidence -------------------------------------------------------------

    /// The policy factor a session's login proved.
    pub(crate) fn session_factor(
        &self,
        session: &Session,
    ) -> Result<rampart_policy::Factor, CaError> {
        Ok(match session.record.mfa_method.as_str() {
            "totp" => rampart_policy::Factor::Totp,
            "recovery" => rampart_policy::Factor::Recovery,
            "oidc" => rampart_policy::Factor::Oidc,
            "webauthn" => self.webauthn_factor(session)?,
            other => {
                return Err(CaError::Internal(format!(
                    "session with unknown factor {other}"
                )))
            }
        })
    }

    /// The policy factor of a `webauthn` session (UV from its evidence).
    pub(crate) fn webauthn_factor(
        &self,
        session: &Session,
    ) -> Result<rampart_policy::Factor, CaError> {
        let ev = self.webauthn_session_evidence(session)?;
        Ok(rampart_policy::Factor::Webauthn {
            user_verified: ev.user_verified,
            attested: ev.attested,
        })
    }

    fn webauthn_session_evidence(&self, session: &Session) -> Result<WebauthnEvidence, CaError> {
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
    /// (`mfa-uv@rampart`, `mfa-aaguid@rampart`); none for other sessions.
    pub(crate) fn webauthn_extensions(
        &self,
        session: &Session,
    ) -> Result<Vec<(String, String)>, CaError> {
        if session.record.mfa_method != "webauthn" {
            return Ok(Vec::new());
        }
        let ev = self.webauthn_session_evidence(session)?;
        Ok(evidence_extensions(
            ev.user_verified,
            ev.attested,
            &ev.aaguid,
        ))
    }

    /// Consume a bastion approval for the per-session certificate: it must be
    /// approved, for this bastion, user and session, and is usable once.
    /// `Err((code, message))` refuses the certificate.
    pub fn take_webauthn_approval(
        &self,
        bastion: &str,
        approval: &wapi::WaitRequest,
        user: &str,
        session_id: &str,
        target: &str,
        login: &str,
    ) -> Result<Result<ApprovalEvidence, (&'static str, String)>, CaError> {
        let rp = self.webauthn()?;
        let now = self.now();
        let got = rp.with(&approval.request_id, |e| {
            if !e.token_matches(&approval.poll_token) {
                return Err(("webauthn_approval_unknown", "unknown approval".to_owned()));
            }
            let Purpose::Approval {
                user: u,
                bastion: b,
                session_id: s,
                target: t,
                login: l,
                ..
            } = &e.purpose
            else {
                return Err(("webauthn_approval_unknown", "unknown approval".to_owned()));
            };
            // The user approved `login@target` on the page: an approval is
            // good for exactly that, from that bastion, for that session.
            if b != bastion || u != user || s != session_id || t != target || l != login {
                return Err((
                    "webauthn_approval_mismatch",
                    "that approval was given for another user, session, target or login".to_owned(),
                ));
            }
            // The bastion retries at once after its wait; an approval left
            // lying around is not good for later.
            if now > e.expires_at + APPROVAL_USE_GRACE {
                return Err((
                    EXPIRED,
                    "that approval expired before it was used".to_owned(),
                ));
            }
            match &e.status {
                Status::Done(o) | Status::Collected(o) => match o.as_ref() {
                    wapi::CeremonyOutcome::Approved {
                        mfa_event,
                        mfa_time,
                        user_verified,
                        aaguid,
                        attested,
                    } => Ok(ApprovalEvidence {
                        mfa_event: mfa_event.clone(),
                        mfa_time: *mfa_time,
                        user_verified: *user_verified,
                        aaguid: aaguid.clone(),
                        attested: *attested,
                    }),
                    _ => Err(("webauthn_approval_unknown", "unknown approval".to_owned())),
                },
                Status::Refused(r) => Err((r.code, r.message.clone())),
                Status::Closed => Err((
                    "webauthn_approval_used",
                    "that approval was already used".to_owned(),
                )),
                _ => Err((
                    "webauthn_approval_pending",
                    "the approval has not been given yet".to_owned(),
                )),
            }
        })?;
        match got {
            None => Ok(Err((
                "webauthn_approval_unknown",
                "unknown or already used approval".to_owned(),
            ))),
            Some(Ok(ev)) => {
                // Single use: a second certificate needs a second approval.
                self.settle(&rp, &approval.request_id, Status::Closed)?;
                Ok(Ok(ev))
            }
            Some(Err(e)) => Ok(Err(e)),
        }
    }
}

/// `mfa-uv@rampart`, `mfa-key-attested@rampart` and `mfa-aaguid@rampart` for a
/// key's evidence.
pub fn evidence_extensions(
    user_verified: bool,
    attested: bool,
    aaguid: &str,
) -> Vec<(String, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    vec![
        (wapi::EXT_MFA_UV.to_owned(), yes_no(user_verified)),
        (wapi::EXT_MFA_ATTESTED.to_owned(), yes_no(attested)),
        (wapi::EXT_MFA_AAGUID.to_owned(), aaguid.to_owned()),
    ]
}
