//! The instrumentation API: one call per event, from anywhere in the CA.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rampart_api::ErrorCode;

use super::*;
use crate::error::CaError;

// ----- the instrumentation API -------------------------------------------------

/// M1: a challenge was issued (for TOTP logins, the request arrived).
pub fn mfa_challenge(factor: Factor, flow: Flow) {
    metrics()
        .challenges
        .get_or_create_owned(&ff(factor, flow))
        .inc();
}

/// M1 + M2 + M5: an answer was checked. `result` is `Ok(())` or the stable error
/// code of the failure; `latency` runs from the challenge to the verdict.
pub fn mfa_result(factor: Factor, flow: Flow, result: Result<(), &'static str>, latency: Duration) {
    let m = metrics();
    let outcome = if result.is_ok() { "success" } else { "failure" };
    m.completions
        .get_or_create_owned(&FactorFlowOutcome {
            factor: factor.as_str(),
            flow: flow.as_str(),
            outcome,
        })
        .inc();
    m.latency
        .get_or_create_owned(&ff(factor, flow))
        .observe(latency.as_secs_f64());
    if let Err(reason) = result {
        m.errors
            .get_or_create_owned(&FactorReason {
                factor: factor.as_str(),
                reason,
            })
            .inc();
    }
}

/// M1–M5 and M7 for one `POST /v1/login` with the factor named `method`: the
/// challenge and its answer at once (TOTP and recovery codes have no separate
/// challenge), the error code as the reason, replays, lockouts and rate limits as
/// bypass attempts, recovery-code logins as fallbacks from TOTP.
pub fn login_finished<T>(
    method: rampart_policy::MfaMethod,
    result: &Result<T, CaError>,
    latency: Duration,
) {
    let factor = Factor::from(method);
    mfa_challenge(factor, Flow::Login);
    let outcome = result.as_ref().map(|_| ()).map_err(CaError::code);
    mfa_result(
        factor,
        Flow::Login,
        outcome.map_err(ErrorCode::as_str),
        latency,
    );
    match outcome {
        Ok(()) if factor == Factor::Recovery => {
            recovery_login();
            // Recovery codes come with a TOTP enrolment: using one means the
            // primary factor was not at hand.
            fallback_login(Factor::Recovery, Factor::Totp);
        }
        Ok(()) => {}
        Err(ErrorCode::FactorReplayed) => bypass_attempt(factor, Bypass::Replay),
        Err(ErrorCode::UserLocked) => bypass_attempt(factor, Bypass::LockedOutAttempt),
        Err(ErrorCode::SourceRateLimited) => bypass_attempt(factor, Bypass::RateLimited),
        Err(_) => {}
    }
}

/// One `POST /v1/bastion/session-cert` finished: a per-session certificate issued
/// or refused (`Err(code)`). When the bastion sent a TOTP code (`totp_sent`), the
/// verdict on it is an M1/M2/M5 completion in flow `session` — unless the request
/// was refused before the code was looked at (a code that is not `factor_*`).
pub fn session_cert_finished(totp_sent: bool, result: Result<(), &'static str>, latency: Duration) {
    match result {
        Ok(()) => cert_issued(CertKind::Session, latency),
        Err(code) => cert_denied(CertKind::Session, code),
    }
    if !totp_sent {
        return;
    }
    let checked = match result {
        Ok(()) => true,
        Err(code) => code.starts_with("factor_"),
    };
    if checked {
        mfa_challenge(Factor::Totp, Flow::Session);
        mfa_result(Factor::Totp, Flow::Session, result, latency);
        if result == Err("factor_replayed") {
            bypass_attempt(Factor::Totp, Bypass::Replay);
        }
    }
}

/// M3: a login succeeded with `used` although the user normally uses `primary`.
pub fn fallback_login(used: Factor, primary: Factor) {
    metrics()
        .fallbacks
        .get_or_create_owned(&Fallback {
            factor: used.as_str(),
            primary: primary.as_str(),
        })
        .inc();
}

/// M4: a login with a recovery code.
pub fn recovery_login() {
    metrics().recovery_logins.inc();
}

/// M4: someone asked to recover access (re-enrolment of an enrolled user).
pub fn recovery_request() {
    metrics().recovery_requests.inc();
}

/// M6: one request to an identity provider; `Err(code)` for a failure. Also sets
/// `rampart_idp_up{provider}` from the outcome.
pub fn provider_request(provider: &str, result: Result<(), &'static str>) {
    let m = metrics();
    let provider = m.providers.label(provider);
    let outcome = match result {
        Ok(()) => "success",
        Err(code) => code,
    };
    m.idp_requests
        .get_or_create_owned(&ProviderOutcome {
            provider: provider.clone(),
            outcome,
        })
        .inc();
    m.idp_up
        .get_or_create_owned(&Provider { provider })
        .set(i64::from(result.is_ok()));
}

/// M6: declare a configured provider at start, so its series exist (up = 1 until
/// a request fails).
pub fn provider_configured(provider: &str) {
    let m = metrics();
    let provider = m.providers.label(provider);
    m.idp_requests.get_or_create_owned(&ProviderOutcome {
        provider: provider.clone(),
        outcome: "success",
    });
    m.idp_up.get_or_create_owned(&Provider { provider }).set(1);
}

/// An API connection refused by a connection cap.
pub fn connection_refused(why: crate::connections::Refused) {
    metrics()
        .connections_refused
        .get_or_create_owned(&Reason {
            reason: why.as_str(),
        })
        .inc();
}

/// M7: a refused event that looks like an attempt to get around MFA.
pub fn bypass_attempt(factor: Factor, kind: Bypass) {
    metrics()
        .bypass
        .get_or_create_owned(&FactorKind {
            factor: factor.as_str(),
            kind: kind.as_str(),
        })
        .inc();
}

/// M9: an approval waited `latency` for the person.
pub fn approval(kind: Approval, latency: Duration) {
    metrics()
        .approval_latency
        .get_or_create_owned(&Kind {
            kind: kind.as_str(),
        })
        .observe(latency.as_secs_f64());
}

/// M10: a challenge with an identity (`id`: a token digest, a ceremony ID — never
/// a secret) that may be answered until `expires_at`. Counts it for M1 too.
pub fn challenge_opened(factor: Factor, flow: Flow, id: &str, expires_at: DateTime<Utc>) {
    mfa_challenge(factor, flow);
    let m = metrics();
    let Ok(mut open) = m.challenges_open.lock() else {
        return;
    };
    if open.len() >= MAX_TRACKED_CHALLENGES {
        return;
    }
    let previous = open.insert(
        id.to_owned(),
        OpenChallenge {
            factor,
            flow,
            expires_at,
            started: Instant::now(),
        },
    );
    if previous.is_none() {
        m.open.get_or_create_owned(&ff(factor, flow)).inc();
    }
}

/// The answer to an open challenge was checked: counts M1/M2/M5 with the latency
/// since [`challenge_opened`]. A success closes the challenge; a failure leaves it
/// open for another try.
pub fn challenge_answered(factor: Factor, flow: Flow, id: &str, result: Result<(), &'static str>) {
    let m = metrics();
    let started = {
        let Ok(mut open) = m.challenges_open.lock() else {
            return;
        };
        let started = open.get(id).map(|c| c.started);
        if result.is_ok() && open.remove(id).is_some() {
            m.open.get_or_create_owned(&ff(factor, flow)).dec();
        }
        started
    };
    let latency = started.map(|s| s.elapsed()).unwrap_or_default();
    mfa_result(factor, flow, result, latency);
}

/// Count open challenges past their expiry as abandoned (M10) and forget them.
/// Called on every scrape with the CA's clock.
pub fn expire_challenges(now: DateTime<Utc>) {
    let m = metrics();
    let Ok(mut open) = m.challenges_open.lock() else {
        return;
    };
    open.retain(|_, c| {
        if c.expires_at > now {
            return true;
        }
        let labels = ff(c.factor, c.flow);
        m.abandoned.get_or_create_owned(&labels).inc();
        m.open.get_or_create_owned(&labels).dec();
        false
    });
}

/// A certificate was issued; `latency` covers policy, signing, audit and storage.
pub fn cert_issued(kind: CertKind, latency: Duration) {
    let m = metrics();
    let k = Kind {
        kind: kind.as_str(),
    };
    m.certs_issued.get_or_create_owned(&k).inc();
    m.issuance
        .get_or_create_owned(&k)
        .observe(latency.as_secs_f64());
}

/// A certificate request was denied with `reason` (a policy denial code or a
/// refusal code such as `key_revoked`).
pub fn cert_denied(kind: CertKind, reason: &str) {
    let m = metrics();
    let reason = m.reasons.label(reason);
    m.certs_denied
        .get_or_create_owned(&KindReason {
            kind: kind.as_str(),
            reason,
        })
        .inc();
}

/// One audit append finished (successfully or not) after `latency`.
pub fn audit_append(ok: bool, latency: Duration) {
    let m = metrics();
    m.audit_append.observe(latency.as_secs_f64());
    if !ok {
        m.audit_failures.inc();
    }
}

/// Publish the audit log's count of unwitnessed checkpoints (it counts from
/// the log's opening; the counter follows it upwards).
pub fn witness_failures(total: u64) {
    let c = &metrics().witness_failures;
    let seen = c.get();
    if total > seen {
        c.inc_by(total - seen);
    }
}

/// One API request finished; `endpoint` is the matched route template.
pub fn api_request(endpoint: &str, status: u16) {
    let m = metrics();
    let code = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let endpoint = m.endpoints.label(endpoint);
    // The classes an endpoint answers with exist at zero from its first request,
    // so the first 5xx is an increase Prometheus can see (`rate` of a series that
    // is born at 20 is 0).
    for class in ["2xx", "4xx", "5xx"] {
        m.api_requests.get_or_create_owned(&Endpoint {
            endpoint: endpoint.clone(),
            code: class,
        });
    }
    m.api_requests
        .get_or_create_owned(&Endpoint { endpoint, code })
        .inc();
}

/// Publish the KRL the CA serves.
pub fn krl(version: u64, generated_at: u64) {
    let m = metrics();
    m.krl_version
        .set(i64::try_from(version).unwrap_or(i64::MAX));
    m.krl_generated
        .set(i64::try_from(generated_at).unwrap_or(i64::MAX));
}

/// Publish one forwarder's status. Lag is what the SIEM has not confirmed: the
/// log's head (`log_head`, read now, since a forwarder waiting to reconnect does
/// not look) minus the forwarder's durable cursor. Errors are counted from the
/// growth of its consecutive-failure count between two looks (a reset to 0 is a
/// success).
pub fn forwarder_status(status: &rampart_audit::forward::ForwarderStatus, log_head: Option<u64>) {
    let m = metrics();
    let labels = Forwarder {
        forwarder: m.forwarders.label(&status.name),
    };
    let head = log_head.unwrap_or(0).max(status.head_seq);
    m.siem_lag
        .get_or_create_owned(&labels)
        .set(i64::try_from(head.saturating_sub(status.acked_seq)).unwrap_or(i64::MAX));
    m.siem_connected
        .get_or_create_owned(&labels)
        .set(i64::from(status.connected));
    let Ok(mut seen) = m.siem_seen.lock() else {
        return;
    };
    let (last_failures, last_sent) = seen.entry(labels.forwarder.clone()).or_insert((0, 0));
    let failures = status.consecutive_failures;
    let new_errors = if failures >= *last_failures {
        failures - *last_failures
    } else {
        failures
    };
    m.siem_errors
        .get_or_create_owned(&labels)
        .inc_by(u64::from(new_errors));
    m.siem_sent
        .get_or_create_owned(&labels)
        .inc_by(status.events_sent.saturating_sub(*last_sent));
    *last_failures = failures;
    *last_sent = status.events_sent.max(*last_sent);
}
