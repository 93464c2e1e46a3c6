//! Bastion sessions on the CA side (docs/architecture.md, flows 4 and 6): the events a
//! bastion reports, the recordings it uploads, and the admin views built from
//! them.
//!
//! **Owns:** turning [`api::BastionEventBatch`]es into audit events
//! (`RA-BAS-006` … `RA-BAS-012`, `RA-BAS-016`), storing and sealing recordings
//! (`recording_sealed`, `RA-BAS-013`), and answering `GET /v1/admin/sessions`
//! and a session's recording download.
//! **Must never:** keep session state of its own. The audit chain is the
//! record: the session list is computed from `bastion_session_started`,
//! `bastion_session_ended` and `recording_sealed` events, so it cannot disagree
//! with what `rampart audit verify` checks. Downloading a recording is audited
//! (`recording_viewed`, `RA-BAS-014`).
//!
//! # Events
//!
//! `POST /v1/bastion/events` (bastion credential) takes up to
//! [`api::MAX_EVENTS_PER_BATCH`] events and writes all of them in one audit
//! transaction, or none ([`rampart_audit::AuditLog::append_all`]); a 503 means
//! none is written and the bastion must refuse what it was about to do. Each
//! event is judged on its own: one out of bounds is not written as sent but
//! replaced, in its place, by `audit_event_rejected` (kind, session, user,
//! SHA-256 of the event as received, the reason), and the answer names it
//! ([`api::BastionEventAck::rejected`]). One bad event never takes the rest of
//! its batch with it, so a hostile user who gets a long field into an event
//! cannot erase the events beside it. An event carries the ULID the bastion
//! gave it, which becomes its ID in the chain (a stand-in keeps it too): a
//! bastion that resends a batch it got no answer for (the CA restarted, the
//! connection dropped, the bastion was killed with its spool on disk) has the
//! events already in the chain skipped, so each is written exactly once. Each
//! event gets the CA's time; the bastion's own clock is kept as the `at` detail,
//! `actor` is `bastion:NAME`, `source` is the user's address as the bastion saw
//! it, and `login` becomes a detail. Bounds: names (user, login, target, source,
//! detail keys) at most 256 bytes without control characters, `reason` and each
//! detail value at most 4 KiB (JSON-encoded), at most 32 details; `at` and
//! `login` are reserved detail keys. `session_id` must be a ULID;
//! `session_started` needs session, user, login and target, `session_ended` a
//! session.
//!
//! # Recordings
//!
//! `PUT /v1/bastion/recordings/{session_id}` (bastion credential), body = the
//! finished `.cast.zst`, header [`api::RECORDING_SHA256_HEADER`] = its SHA-256.
//! Optional `?abnormal_end=true` or header [`ABNORMAL_END_HEADER`]`: 1` marks a
//! session that did not end cleanly (the bastion finished it after a crash).
//! The CA checks the digest, that the body is zstd, and that this bastion
//! reported `session_started` for the session; stores the file as
//! `<audit database dir>/recordings/<session>.cast.zst` (mode 0600; temporary
//! file, fsync, then a link that cannot replace an existing file); and appends
//! `recording_sealed` with `sha256`, `bytes`, `format`, `abnormal_end`. A second
//! upload of the same bytes answers as the first did (so a retry after a lost
//! reply is safe); different bytes for a sealed session are refused (409
//! `recording_exists`). If the seal cannot be audited the file stays and the
//! bastion's retry seals it.
//!
//! Recordings live beside the audit database because they are audit evidence:
//! the chain holds their digests, and `rampart audit verify --recordings DIR`
//! checks one against the other.

use rampart_api::ErrorCode;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rampart_api as api;
use rampart_audit::{Event, EventKind, NewEvent, Outcome, Query};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::bastion::Bastion;
use super::{Authority, Caller, Session};
use crate::error::CaError;

/// Header a bastion may set (value `1` or `true`) on a recording upload to say
/// that the session ended abnormally; same as the query `?abnormal_end=true`.
pub const ABNORMAL_END_HEADER: &str = api::RECORDING_ABNORMAL_END_HEADER;
/// Longest user, login, target, source or detail key from a bastion.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest reason, and longest JSON encoding of one detail value.
pub const MAX_TEXT_BYTES: usize = 4 * 1024;
/// Most details on one bastion event.
pub const MAX_DETAILS: usize = 32;
/// Default `limit` of `GET /v1/admin/sessions`.
pub const SESSIONS_DEFAULT_LIMIT: usize = 50;
/// Largest `limit` of `GET /v1/admin/sessions`.
pub const SESSIONS_MAX_LIMIT: usize = 1000;
/// Name of the recordings directory, beside the audit database.
pub const RECORDINGS_DIR: &str = "recordings";
/// Detail keys the CA sets itself.
const RESERVED_DETAILS: [&str; 2] = ["at", "login"];
/// The first four bytes of every zstd frame (RFC 8878 §3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Filters of `GET /v1/admin/sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only this user's sessions.
    pub user: Option<String>,
    /// Only sessions to this target.
    pub target: Option<String>,
    /// Only this session.
    pub session: Option<String>,
    /// At most this many (default [`SESSIONS_DEFAULT_LIMIT`], at most
    /// [`SESSIONS_MAX_LIMIT`]).
    pub limit: Option<usize>,
}

/// A sealed recording ready to be served.
#[derive(Debug, Clone)]
pub struct SealedRecording {
    /// The compressed bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256 as sealed in the audit chain.
    pub sha256: String,
}

fn invalid(message: impl Into<String>) -> CaError {
    CaError::bad_request(ErrorCode::InvalidEvent, message)
}

/// A canonical ULID (26 Crockford base-32 characters, upper case), which is
/// also what makes a session ID safe as a file name.
pub fn parse_session_id(s: &str) -> Option<String> {
    let id = ulid::Ulid::from_string(s).ok()?;
    let canonical = id.to_string();
    (canonical == s).then_some(canonical)
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

fn detail_str<'a>(ev: &'a Event, key: &str) -> Option<&'a str> {
    ev.details.get(key).and_then(|v| v.as_str())
}

fn is_hex_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn sync_dir(dir: &Path) -> Result<(), CaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CaError::io(dir, e))
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

    /// Where uploaded recordings are stored ([`super::Settings::recordings_dir`]).
    pub fn recordings_dir(&self) -> PathBuf {
        self.settings.recordings_dir.clone()
    }

    /// The newest event of `kind` for `session`.
    fn session_event(&self, kind: EventKind, session: &str) -> Result<Option<Event>, CaError> {
        // The audit query has no session filter; session kinds are few next to
        // the whole log, and the newest match is usually near the head.
        let events = self
            .audit_log()
            .query(&Query::all().kind(kind).newest_first())
            .map_err(CaError::AuditUnavailable)?;
        Ok(events
            .into_iter()
            .find(|e| e.session.as_deref() == Some(session)))
    }

    /// `PUT /v1/bastion/recordings/{session_id}`. See the module docs.
    pub fn seal_recording(
        &self,
        _caller: &Caller,
        bastion: &Bastion,
        session_id: &str,
        claimed_sha256: Option<&str>,
        body: &[u8],
        abnormal_end: bool,
    ) -> Result<api::RecordingSealed, CaError> {
        let session = parse_session_id(session_id).ok_or_else(|| {
            CaError::bad_request(ErrorCode::InvalidSessionId, "the session ID must be a ULID")
        })?;
        let claimed = claimed_sha256.filter(|s| is_hex_sha256(s)).ok_or_else(|| {
            CaError::bad_request(
                ErrorCode::RecordingDigestMissing,
                format!(
                    "header {} must be the lowercase hex SHA-256 of the body",
                    api::RECORDING_SHA256_HEADER
                ),
            )
        })?;
        let actual = hex::encode(Sha256::digest(body));
        if !bool::from(actual.as_bytes().ct_eq(claimed.as_bytes())) {
            return Err(CaError::bad_request(
                ErrorCode::RecordingDigestMismatch,
                "the body's SHA-256 does not match the header; the upload was damaged",
            ));
        }
        if !body.starts_with(&ZSTD_MAGIC) {
            return Err(CaError::bad_request(
                ErrorCode::RecordingNotZstd,
                "a recording is a zstd-compressed asciicast (.cast.zst)",
            ));
        }
        let actor = format!("bastion:{}", bastion.record.name);
        let started = self
            .session_event(EventKind::BastionSessionStarted, &session)?
            .filter(|e| e.actor.as_deref() == Some(actor.as_str()))
            .ok_or_else(|| CaError::Conflict {
                code: ErrorCode::SessionUnknown,
                message: "this bastion reported no session_started for that session".into(),
            })?;

        let dir = self.recordings_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| CaError::io(&dir, e))?;
        let path = dir.join(format!("{session}.cast.zst"));
        store_once(&dir, &path, &session, body, &actual)?;

        if let Some(sealed) = self.session_event(EventKind::RecordingSealed, &session)? {
            if detail_str(&sealed, "sha256") == Some(actual.as_str()) {
                return Ok(api::RecordingSealed {
                    session_id: session,
                    sha256: actual,
                    bytes: body.len() as u64,
                    event_id: sealed.id.to_string(),
                });
            }
        }
        let mut ev = self
            .event(EventKind::RecordingSealed, Outcome::Success, None)
            .actor(&actor)
            .session(&session)
            .detail("sha256", actual.clone())
            .detail("bytes", body.len() as u64)
            .detail("format", rampart_audit::recording::RECORDING_FORMAT)
            .detail("abnormal_end", abnormal_end);
        if let Some(u) = &started.user {
            ev = ev.user(u);
        }
        if let Some(t) = &started.target {
            ev = ev.target(t);
        }
        let appended = self.record(ev)?;
        Ok(api::RecordingSealed {
            session_id: session,
            sha256: actual,
            bytes: body.len() as u64,
            event_id: appended.id.to_string(),
        })
    }

    /// `GET /v1/admin/sessions`: sessions newest first, from the audit log.
    pub fn list_sessions(&self, filter: &SessionFilter) -> Result<api::SessionList, CaError> {
        let limit = filter
            .limit
            .unwrap_or(SESSIONS_DEFAULT_LIMIT)
            .clamp(1, SESSIONS_MAX_LIMIT);
        let query = |kind: EventKind| {
            let mut q = Query::all().kind(kind).newest_first();
            if let Some(u) = &filter.user {
                q = q.user(u);
            }
            q
        };
        let log = self.audit_log();
        let mut started = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for ev in log
            .query(&query(EventKind::BastionSessionStarted))
            .map_err(CaError::AuditUnavailable)?
        {
            if started.len() >= limit {
                break;
            }
            if filter.target.is_some() && ev.target != filter.target {
                continue;
            }
            if filter.session.is_some() && ev.session != filter.session {
                continue;
            }
            let Some(session) = ev.session.clone() else {
                continue;
            };
            if seen.insert(session) {
                started.push(ev);
            }
        }
        let Some(oldest) = started.iter().map(|e| e.time).min() else {
            return Ok(api::SessionList {
                sessions: Vec::new(),
            });
        };
        // Ends and seals come after their start: only look from the oldest start on.
        let later = |kind: EventKind| -> Result<HashMap<String, Event>, CaError> {
            let mut by_session = HashMap::new();
            for ev in log
                .query(&query(kind).since(oldest))
                .map_err(CaError::AuditUnavailable)?
            {
                if let Some(s) = ev.session.clone() {
                    // Newest first: keep the first (latest) event per session.
                    by_session.entry(s).or_insert(ev);
                }
            }
            Ok(by_session)
        };
        let ended = later(EventKind::BastionSessionEnded)?;
        let sealed = later(EventKind::RecordingSealed)?;
        let sessions = started
            .into_iter()
            .filter_map(|ev| {
                let session_id = ev.session.clone()?;
                let end = ended.get(&session_id);
                let seal = sealed.get(&session_id);
                Some(api::SessionSummary {
                    bastion: ev
                        .actor
                        .as_deref()
                        .and_then(|a| a.strip_prefix("bastion:"))
                        .unwrap_or_default()
                        .to_owned(),
                    user: ev.user.clone().unwrap_or_default(),
                    login: detail_str(&ev, "login").unwrap_or_default().to_owned(),
                    target: ev.target.clone().unwrap_or_default(),
                    started_at: ev.time,
                    ended_at: end.map(|e| e.time),
                    end_reason: end.and_then(|e| e.reason.clone()),
                    ended_normally: end.map(|e| e.outcome == Outcome::Success),
                    recording_sha256: seal
                        .and_then(|e| detail_str(e, "sha256"))
                        .map(str::to_owned),
                    session_id,
                })
            })
            .collect();
        Ok(api::SessionList { sessions })
    }

    /// `GET /v1/admin/sessions/{id}/recording`: the stored recording, only if its
    /// SHA-256 is the sealed one (else 409 `recording_tampered`). Who watched
    /// which session is itself audited (`recording_viewed`) before the bytes go
    /// out: a recording can hold secrets typed or shown in the session.
    pub fn session_recording(
        &self,
        caller: &Caller,
        admin: &Session,
        session_id: &str,
    ) -> Result<SealedRecording, CaError> {
        let session = parse_session_id(session_id).ok_or_else(|| {
            CaError::bad_request(ErrorCode::InvalidSessionId, "the session ID must be a ULID")
        })?;
        let sealed = self
            .session_event(EventKind::RecordingSealed, &session)?
            .ok_or_else(|| {
                CaError::not_found(
                    ErrorCode::RecordingNotFound,
                    "no recording was sealed for that session",
                )
            })?;
        let sha256 = detail_str(&sealed, "sha256")
            .filter(|s| is_hex_sha256(s))
            .ok_or_else(|| CaError::Internal("recording_sealed event without a sha256".into()))?
            .to_owned();
        let path = self.recordings_dir().join(format!("{session}.cast.zst"));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CaError::Conflict {
                    code: ErrorCode::RecordingMissing,
                    message: "the sealed recording's file is gone from the CA".into(),
                })
            }
            Err(e) => return Err(CaError::io(&path, e)),
        };
        let actual = hex::encode(Sha256::digest(&bytes));
        if !bool::from(actual.as_bytes().ct_eq(sha256.as_bytes())) {
            tracing::error!(session = %session, sealed = %sha256, actual = %actual,
                "stored recording does not match its sealed digest");
            return Err(CaError::Conflict {
                code: ErrorCode::RecordingTampered,
                message: "the stored recording does not match the digest sealed in the audit log"
                    .into(),
            });
        }
        let mut ev = self
            .event(EventKind::RecordingViewed, Outcome::Success, Some(caller))
            .actor(&admin.user.name)
            .session(&session)
            .detail("sha256", sha256.clone())
            .detail("admin_session", admin.record.id.clone());
        if let Some(u) = &sealed.user {
            ev = ev.user(u);
        }
        if let Some(t) = &sealed.target {
            ev = ev.target(t);
        }
        self.record(ev)?;
        Ok(SealedRecording { bytes, sha256 })
    }
}

/// Store `body` at `path` unless a file is there: then it must hold the same
/// bytes (a retried upload), else 409 `recording_exists`.
fn store_once(
    dir: &Path,
    path: &Path,
    session: &str,
    body: &[u8],
    sha256: &str,
) -> Result<(), CaError> {
    let existing_matches = |path: &Path| -> Result<(), CaError> {
        let (have, _) = rampart_audit::recording::digest_file(path).map_err(|e| {
            CaError::Internal(format!(
                "reading {}: {}",
                path.display(),
                rampart_api::report::one_line(&e)
            ))
        })?;
        if have == sha256 {
            Ok(())
        } else {
            Err(CaError::Conflict {
                code: ErrorCode::RecordingExists,
                message: "a different recording is already stored for that session".into(),
            })
        }
    };
    if path.exists() {
        return existing_matches(path);
    }
    let tmp = dir.join(format!(".{session}.{}.tmp", ulid::Ulid::new()));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(CaError::io(&tmp, e));
    }
    // A hard link never replaces an existing file, unlike rename: of two
    // concurrent uploads exactly one lands, the other compares.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => existing_matches(path),
        Err(e) => Err(CaError::io(path, e)),
    }
}

/// Parse `abnormal_end` from a query value or the [`ABNORMAL_END_HEADER`] value.
pub fn parse_flag(value: &str) -> Option<bool> {
    match value {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_canonical_ulids() {
        let id = ulid::Ulid::new().to_string();
        assert_eq!(parse_session_id(&id), Some(id.clone()));
        for bad in [
            "",
            "../etc/passwd",
            &id.to_lowercase(),
            &format!("{id}x"),
            "01J0000000000000000000000/",
        ] {
            assert_eq!(parse_session_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn digests_are_lowercase_hex() {
        assert!(is_hex_sha256(&"a".repeat(64)));
        assert!(!is_hex_sha256(&"A".repeat(64)));
        assert!(!is_hex_sha256(&"a".repeat(63)));
        assert!(!is_hex_sha256(&"g".repeat(64)));
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flag("1"), Some(true));
        assert_eq!(parse_flag("false"), Some(false));
        assert_eq!(parse_flag("yes"), None);
    }
}
