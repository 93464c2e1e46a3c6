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
//! The body is spooled to a temporary file in the recordings directory as it
//! arrives (digest, size and zstd magic counted on the way; never the whole
//! recording in memory). The CA checks the digest, that the body is zstd, and
//! that this bastion reported `session_started` for the session; stores it
//! once in the [`rampart_audit::recording::RecordingStore`] (with SQLite,
//! `<audit database dir>/recordings/<session>.cast.zst`, mode 0600, linked
//! into place so it cannot replace an existing file; with a shared PostgreSQL
//! audit log, in its recording tables, so any CA hands it out); and appends
//! `recording_sealed` with `sha256`, `bytes`, `format`, `abnormal_end`. A second
//! upload of the same bytes answers as the first did (so a retry after a lost
//! reply is safe); different bytes for a sealed session are refused (409
//! `recording_exists`). If the seal cannot be audited the file stays and the
//! bastion's retry seals it.
//!
//! Recordings live with the audit log because they are audit evidence: the
//! chain holds their digests, and `rampart audit verify --recordings DIR|URL`
//! checks one against the other. A download is read from the store twice, a
//! piece at a time: once to check the digest, once to send.
//!
//! # Files
//!
//! - `mod.rs`: the bounds, the admin's session list, helpers shared below.
//! - `events.rs`: judging and appending a bastion's event batch.
//! - `recordings.rs`: spooling and sealing an upload, handing a recording to
//!   an admin.

use rampart_api::ErrorCode;
use std::collections::HashMap;
use std::path::PathBuf;

use rampart_api as api;
use rampart_audit::{Event, EventKind, Outcome, Query};

use super::Authority;
use crate::error::CaError;

mod events;
mod recordings;

pub use recordings::{RecordingSpool, SpooledRecording};

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
#[derive(Debug)]
pub struct SealedRecording {
    /// The compressed bytes, in pieces.
    pub chunks: rampart_audit::recording::RecordingChunks,
    /// Their SHA-256 as sealed in the audit chain.
    pub sha256: String,
    /// How many bytes there are.
    pub bytes: u64,
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

fn detail_str<'a>(ev: &'a Event, key: &str) -> Option<&'a str> {
    ev.details.get(key).and_then(|v| v.as_str())
}

fn is_hex_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Authority {
    /// Where uploads are spooled, and sealed recordings stored without a
    /// shared database ([`super::Settings::recordings_dir`]).
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
