//! The approval-link flow: the CA's own page for a request whose starter printed
//! a link instead of talking to a key. The page shows who asked, from where and
//! for what; it hands out the challenge only for the code the starter's
//! terminal shows (number matching, so a user cannot approve a stranger's
//! request by habit), takes the browser's answer, or ends the request on Deny.
//! Every refusal here also counts towards the user's prompt fatigue.

use chrono::{DateTime, Utc};
use rampart_api::webauthn as wapi;
use rampart_api::ErrorCode;

use super::request::Take;
use super::{ended_expired, expired_refusal, metrics_id, refusal, unknown_request};
use crate::authority::{Authority, Caller};
use crate::error::CaError;
use crate::metrics;
use crate::webauthn::{Purpose, Refusal, RelyingParty, Status};

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

/// Wrong codes a page may type before its request ends refused.
pub const MAX_CODE_MISSES: u8 = 3;

impl Authority {
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
        if self.with_request(&rp, request_id, |e| e.code_matched)? == Some(false) {
            self.note_source_failure(caller);
            let r = refusal(
                ErrorCode::WebauthnCodeRequired,
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
            code: ErrorCode::WebauthnDenied,
            message: "the request was denied in the browser".into(),
            forbidden: true,
        };
        self.refuse_on_page(&rp, caller, request_id, r)
    }

    /// End an open request from its page with `r` (a denial, an answer that
    /// skipped the code): audited, counted towards the user's prompt fatigue,
    /// and the starter's wait ends with `r`.
    pub(super) fn refuse_on_page(
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
                    code: ErrorCode::WebauthnRequestFinished,
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
            Err(r.code.as_str()),
        );
        // Audit first: the starter learns of the denial only once it is logged.
        self.audit_refusal(caller, &taken.purpose, &r, &[])?;
        if !taken.direct {
            self.note_unanswered_prompt(caller, taken.purpose.user(), r.code.as_str())?;
        }
        self.settle(rp, request_id, Status::Refused(r))
    }

    /// What a request's page shows; `None` for an unknown request.
    pub fn webauthn_page(&self, request_id: &str) -> Result<Option<PageView>, CaError> {
        let rp = self.webauthn()?;
        let now = self.now();
        self.with_request(&rp, request_id, |e| {
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
        let look = self.with_request(&rp, request_id, |e| match e.status {
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
                    ErrorCode::WebauthnCodeMismatch,
                    "the code typed on the page did not match the one the terminal showed",
                );
                e.set(Status::Refused(r.clone()));
                Look::Ended(e.purpose.clone(), e.direct, r)
            }
            Status::Open => Look::Refused(expired_refusal().error()),
            ref st if ended_expired(st) => Look::Refused(expired_refusal().error()),
            _ => Look::Refused(CaError::Conflict {
                code: ErrorCode::WebauthnRequestFinished,
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
                    ErrorCode::WebauthnCodeMismatch,
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
                    Err(r.code.as_str()),
                );
                self.audit_refusal(caller, &purpose, &r, &[])?;
                self.note_unanswered_prompt(caller, purpose.user(), r.code.as_str())?;
                Err(r.error())
            }
        }
    }
}
