//! `POST /v1/bastion/events`: a bastion's session events judged one by one
//! against the bounds in the parent module's docs, and appended in one audit
//! transaction, each refused one replaced by `audit_event_rejected`.

use rampart_api::ErrorCode;

use chrono::{DateTime, SecondsFormat, Utc};
use rampart_api as api;
use rampart_audit::{EventKind, NewEvent, Outcome};
use sha2::{Digest, Sha256};

use super::{
    invalid, parse_session_id, MAX_DETAILS, MAX_NAME_BYTES, MAX_TEXT_BYTES, RESERVED_DETAILS,
};
use crate::authority::bastion::Bastion;
use crate::authority::{Authority, Caller};
use crate::error::CaError;

impl Authority {
    /// `POST /v1/bastion/events`: judge each event, then append them all (valid
    /// ones as sent, refused ones as `audit_event_rejected`) in one audit
    /// transaction. See the module docs.
    pub fn bastion_events(
        &self,
        _caller: &Caller,
        bastion: &Bastion,
        batch: &api::BastionEventBatch,
    ) -> Result<api::BastionEventAck, CaError> {
        if batch.events.len() > api::MAX_EVENTS_PER_BATCH {
            return Err(CaError::bad_request(
                ErrorCode::BatchTooLarge,
                format!("at most {} events per batch", api::MAX_EVENTS_PER_BATCH),
            ));
        }
        let now = self.now();
        let actor = format!("bastion:{}", bastion.record.name);
        let mut rejected = Vec::new();
        // Every event's ID in batch order: the bastion's own (a resend of an
        // event already in the chain is not written again), or the CA's.
        let mut ids: Vec<Option<String>> = Vec::with_capacity(batch.events.len());
        let mut events: Vec<NewEvent> = Vec::with_capacity(batch.events.len());
        for (i, ev) in batch.events.iter().enumerate() {
            let id = match ev.id.as_deref().map(parse_event_id) {
                None => None,
                Some(Some(id)) => Some(id),
                Some(None) => {
                    let reason = format!("event {i}: id must be a ULID");
                    events.push(rejected_event(ev, &actor, now, &reason));
                    rejected.push(api::RejectedEvent { index: i, reason });
                    ids.push(None);
                    continue;
                }
            };
            if let Some(id) = id {
                if self
                    .audit_log()
                    .contains_id(&id)
                    .map_err(CaError::AuditUnavailable)?
                {
                    ids.push(Some(id.to_string()));
                    continue;
                }
            }
            let out = match check_event(i, ev) {
                Ok(()) => accepted_event(ev, &actor, now),
                Err(e) => {
                    let reason = match e {
                        CaError::BadRequest { message, .. } => message,
                        other => other.to_string(),
                    };
                    tracing::warn!(bastion = %bastion.record.name, "bastion event refused: {reason}");
                    let stand_in = rejected_event(ev, &actor, now, &reason);
                    rejected.push(api::RejectedEvent { index: i, reason });
                    stand_in
                }
            };
            events.push(match id {
                Some(id) => out.with_id(id),
                None => out,
            });
            ids.push(None);
        }
        let appended = self.audit_log().append_all(events).map_err(|e| {
            tracing::error!(error = %rampart_api::report::one_line(&e), "audit append of bastion events failed; refusing them");
            CaError::AuditUnavailable(e)
        })?;
        let mut fresh = appended.iter().map(|a| a.id.to_string());
        let ids = ids
            .into_iter()
            .map(|known| known.or_else(|| fresh.next()).unwrap_or_default())
            .collect();
        Ok(api::BastionEventAck { ids, rejected })
    }
}

/// A bastion's event ID: a canonical ULID.
fn parse_event_id(s: &str) -> Option<ulid::Ulid> {
    let id = ulid::Ulid::from_string(s).ok()?;
    (id.to_string() == s).then_some(id)
}

fn check_name(field: &str, value: &str) -> Result<(), CaError> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES || value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must be 1-{MAX_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_event(i: usize, ev: &api::BastionEvent) -> Result<(), CaError> {
    let at = |e: CaError| match e {
        CaError::BadRequest { code, message } => CaError::BadRequest {
            code,
            message: format!("event {i}: {message}"),
        },
        other => other,
    };
    let names = [
        ("user", &ev.user),
        ("login", &ev.login),
        ("target", &ev.target),
        ("source", &ev.source),
    ];
    for (field, value) in names {
        if let Some(v) = value {
            check_name(field, v).map_err(at)?;
        }
    }
    if let Some(s) = &ev.session_id {
        if parse_session_id(s).is_none() {
            return Err(at(invalid("session_id must be a ULID")));
        }
    }
    if ev.reason.as_ref().is_some_and(|r| r.len() > MAX_TEXT_BYTES) {
        return Err(at(invalid(format!(
            "reason is longer than {MAX_TEXT_BYTES} bytes"
        ))));
    }
    if ev.details.len() > MAX_DETAILS {
        return Err(at(invalid(format!("more than {MAX_DETAILS} details"))));
    }
    for (key, value) in &ev.details {
        check_name("a detail key", key).map_err(at)?;
        if RESERVED_DETAILS.contains(&key.as_str()) {
            return Err(at(invalid(format!(
                "detail {key:?} is set by the CA; send it as a field"
            ))));
        }
        let encoded = serde_json::to_vec(value).map_err(|e| at(invalid(e.to_string())))?;
        if encoded.len() > MAX_TEXT_BYTES {
            return Err(at(invalid(format!(
                "detail {key:?} is longer than {MAX_TEXT_BYTES} bytes"
            ))));
        }
    }
    let missing = |field: &str| at(invalid(format!("{field} is required for this kind")));
    match ev.kind {
        api::BastionEventKind::SessionStarted => {
            for (field, v) in [
                ("session_id", &ev.session_id),
                ("user", &ev.user),
                ("login", &ev.login),
                ("target", &ev.target),
            ] {
                if v.is_none() {
                    return Err(missing(field));
                }
            }
        }
        api::BastionEventKind::SessionEnded if ev.session_id.is_none() => {
            return Err(missing("session_id"));
        }
        _ => {}
    }
    Ok(())
}

fn kind_of(kind: api::BastionEventKind) -> EventKind {
    match kind {
        api::BastionEventKind::SessionStarted => EventKind::BastionSessionStarted,
        api::BastionEventKind::SessionEnded => EventKind::BastionSessionEnded,
        api::BastionEventKind::ConnectionRefused => EventKind::BastionConnectionRefused,
        api::BastionEventKind::Exec => EventKind::BastionExec,
        api::BastionEventKind::FileOp => EventKind::BastionFileOp,
        api::BastionEventKind::Forward => EventKind::BastionForward,
        api::BastionEventKind::RequestRefused => EventKind::BastionRequestRefused,
        api::BastionEventKind::ConfigReloaded => EventKind::BastionConfigReloaded,
    }
}

/// A valid bastion event as it goes into the chain.
fn accepted_event(ev: &api::BastionEvent, actor: &str, now: DateTime<Utc>) -> NewEvent {
    let outcome = if ev.success {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let mut out = NewEvent::new(kind_of(ev.kind), outcome, now)
        .actor(actor)
        .detail("at", ev.at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    if let Some(s) = &ev.session_id {
        out = out.session(s);
    }
    if let Some(u) = &ev.user {
        out = out.user(u);
    }
    if let Some(t) = &ev.target {
        out = out.target(t);
    }
    if let Some(s) = &ev.source {
        out = out.source(s);
    }
    if let Some(s) = ev.serial {
        out = out.serial(s);
    }
    if let Some(r) = &ev.reason {
        out = out.reason(r);
    }
    if let Some(l) = &ev.login {
        out = out.detail("login", l.clone());
    }
    for (k, v) in &ev.details {
        out = out.detail(k, v.clone());
    }
    out
}

/// What stands in the chain for an event the CA refused: its kind, the
/// session and user when those are valid, and the SHA-256 of the event as
/// received, so the gap is visible and the bastion's copy can be matched.
fn rejected_event(
    ev: &api::BastionEvent,
    actor: &str,
    now: DateTime<Utc>,
    reason: &str,
) -> NewEvent {
    let digest = serde_json::to_vec(ev)
        .map(|bytes| hex::encode(Sha256::digest(bytes)))
        .unwrap_or_default();
    let kind = serde_json::to_value(ev.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut out = NewEvent::new(EventKind::AuditEventRejected, Outcome::Failure, now)
        .actor(actor)
        .reason(reason)
        .detail("rejected_kind", kind)
        .detail("digest", digest)
        .detail("at", ev.at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    if let Some(s) = ev.session_id.as_deref().and_then(parse_session_id) {
        out = out.session(&s);
    }
    if let Some(u) = ev.user.as_deref().filter(|u| check_name("user", u).is_ok()) {
        out = out.user(u);
    }
    if let Some(s) = ev.serial {
        out = out.serial(s);
    }
    out
}
