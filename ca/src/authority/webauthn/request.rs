//! What every security-key request shares, whatever it is for: opening it, the
//! starter's `WAIT`, taking its challenge for exactly one answer (a second is a
//! replay), checking that answer and settling how the request ended — and the
//! audit event of a refusal. An answer arrives here from the starter itself
//! (the CTAP2 path) or from the CA's page (`link_page`).
//!
//! Requests are kept in the store's pending area (see `crate::webauthn`, "Where
//! requests live"): [`Authority::with_request`] reads one, lets a step look at
//! or change it, and writes a change back by compare-and-set on its version,
//! starting over when another step (on this CA or another) changed it first.

use chrono::{DateTime, Utc};
use rampart_api::webauthn as wapi;
use rampart_api::ErrorCode;
use rampart_audit::{EventKind, NewEvent, Outcome};
use rampart_policy::MfaMethod;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use zeroize::Zeroizing;

use super::approvals::APPROVAL_USE_GRACE;
use super::{ended_expired, expired_refusal, metrics_id, refusal, unknown_request, EXPIRED};
use crate::authority::{to_chrono, Authority, Caller};
use crate::error::CaError;
use crate::metrics::{self, Approval, Bypass};
use crate::store::{PendingCaps, PendingEntry, PendingKind, PendingPut, StoreError};
use crate::webauthn::{
    Entry, Purpose, Refusal, RelyingParty, Status, KEEP_AFTER_EXPIRY,
    MAX_OPEN_PER_USER_AND_NETWORK, MAX_PENDING,
};

const KIND: PendingKind = PendingKind::WebauthnRequest;

const CAPS: PendingCaps = PendingCaps {
    total: MAX_PENDING,
    per_owner: MAX_OPEN_PER_USER_AND_NETWORK,
};

/// How often a step starts over after losing a compare-and-set before the
/// request is declared too contended (only a flood of answers does that).
const MAX_RETRIES: usize = 32;

fn request_key(request_id: &str) -> [u8; 32] {
    Sha256::digest(request_id.as_bytes()).into()
}

/// The sealing context of a request: its row.
fn context(key: &[u8; 32]) -> String {
    format!("pending {} {}", KIND.as_str(), hex::encode(key))
}

fn corrupt(e: serde_json::Error) -> CaError {
    CaError::Store(StoreError::Corrupt(format!("webauthn request: {e}")))
}

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

/// The answer taken from a request (its challenge is now used).
pub(super) struct Taken {
    pub(super) purpose: Purpose,
    pub(super) direct: bool,
    pub(super) started_at: DateTime<Utc>,
    pub(super) metrics_id: String,
}

pub(super) enum Take {
    Taken(Taken),
    Replayed(Purpose, bool),
    Expired(Purpose),
}

impl Authority {
    /// Keep a new request. Full (more than [`MAX_PENDING`] kept, or
    /// [`MAX_OPEN_PER_USER_AND_NETWORK`] open for its user from its network):
    /// refused.
    fn insert_request(&self, request_id: &str, entry: &Entry) -> Result<(), CaError> {
        let key = request_key(request_id);
        let now = self.now();
        let json = Zeroizing::new(serde_json::to_vec(entry).map_err(corrupt)?);
        let row = PendingEntry {
            kind: KIND,
            key,
            owner: format!("{} {}", entry.network, entry.purpose.user()),
            counts_until: entry.counts_until(),
            payload: self.sealer.seal(&json, &context(&key))?,
            version: 0,
            created_at: now,
            forget_at: entry.expires_at + to_chrono(KEEP_AFTER_EXPIRY),
        };
        match self.store.pending_put(&row, &CAPS, now)? {
            PendingPut::Stored => Ok(()),
            PendingPut::Full => Err(CaError::RateLimited {
                code: ErrorCode::WebauthnBusy,
                message: "too many security-key requests are open; try again in a minute".into(),
                retry_after_secs: 60,
            }),
        }
    }

    /// Run `f` on a request, if it is kept. What `f` changes is written back
    /// by compare-and-set; if another step changed the request first, `f`
    /// runs again on the new state, so `f` must only look at and change the
    /// entry.
    pub(super) fn with_request<R>(
        &self,
        rp: &RelyingParty,
        request_id: &str,
        mut f: impl FnMut(&mut Entry) -> R,
    ) -> Result<Option<R>, CaError> {
        let key = request_key(request_id);
        let context = context(&key);
        for _ in 0..MAX_RETRIES {
            let now = self.now();
            let Some(row) = self.store.pending_get(KIND, &key, now)? else {
                return Ok(None);
            };
            let before = self.sealer.open(&row.payload, &context)?;
            let mut entry: Entry = serde_json::from_slice(&before).map_err(corrupt)?;
            let out = f(&mut entry);
            let after = Zeroizing::new(serde_json::to_vec(&entry).map_err(corrupt)?);
            if *after == *before {
                return Ok(Some(out));
            }
            let sealed = self.sealer.seal(&after, &context)?;
            if self.store.pending_update(
                KIND,
                &key,
                row.version,
                &sealed,
                entry.counts_until(),
                now,
            )? {
                rp.notify();
                return Ok(Some(out));
            }
        }
        Err(CaError::Internal(
            "a security-key request changed too often to be updated".into(),
        ))
    }

    pub(super) fn open_request(
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
        self.insert_request(&new.request_id, &new.entry)?;
        metrics::challenge_opened(factor, flow, &metrics_id(&new.request_id), expires_at);
        Ok(wapi::CeremonyStarted {
            url: rp.page_url(&new.request_id),
            request_id: new.request_id,
            poll_token: new.poll_token,
            short_code: new.short_code,
            expires_at,
            public_key: direct.then_some(options),
        })
    }

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
            Pending(DateTime<Utc>),
        }
        // Subscribed before the look, so that a change right after it wakes
        // the wait.
        let changed = rp.subscribe();
        let look = self
            .with_request(&rp, &req.request_id, |e| {
                if !e.token_matches(req.poll_token.expose()) {
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
                    Status::Open | Status::Checking => Look::Pending(e.expires_at),
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
                    self.note_unanswered_prompt(caller, purpose.user(), r.code.as_str())?;
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
            Look::Pending(expires_at) => Ok(WaitState::Pending {
                expires_at,
                changed,
            }),
        }
    }

    /// Take a request's challenge for one answer (a second one is a replay).
    pub(super) fn take(
        &self,
        rp: &RelyingParty,
        caller: &Caller,
        request_id: &str,
        poll_token: Option<&str>,
    ) -> Result<Take, CaError> {
        let now = self.now();
        let got = self.with_request(rp, request_id, |e: &mut Entry| {
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
                        started_at: e.started_at,
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
    pub(super) fn settle(
        &self,
        rp: &RelyingParty,
        request_id: &str,
        status: Status,
    ) -> Result<(), CaError> {
        self.with_request(rp, request_id, |e| e.set(status.clone()))?;
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
            Some(req.poll_token.expose()),
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

    /// Check an answer for a request and act on it.
    pub(super) fn answer(
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
                    ErrorCode::WebauthnReplayed,
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
                let waited = (self.now() - taken.started_at).to_std().unwrap_or_default();
                match (&taken.purpose, taken.direct) {
                    (Purpose::Approval { .. }, _) => metrics::approval(Approval::Session, waited),
                    (_, false) => metrics::approval(Approval::Browser, waited),
                    _ => {}
                }
                self.settle(rp, request_id, Status::Done(Box::new(outcome.clone())))?;
                Ok(outcome)
            }
            Ok(Err(r)) => {
                metrics::challenge_answered(factor, flow, &taken.metrics_id, Err(r.code.as_str()));
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
    pub(super) fn audit_refusal(
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
    pub(super) fn refusal_event(
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
            .mfa_method(MfaMethod::Webauthn.as_str())
            .reason(r.code.as_str())
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
}
