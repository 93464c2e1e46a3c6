//! Recordings: spooling a bastion's upload to disk as it arrives
//! ([`RecordingSpool`]: digest, size and zstd magic counted on the way, never
//! the whole recording in memory), sealing it (the session it reported, stored
//! once in the [`RecordingStore`], then `recording_sealed`), and handing one to
//! an admin in pieces (checked against its seal, `recording_viewed` first).

use rampart_api::ErrorCode;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;

use rampart_api as api;
use rampart_audit::recording::{PutOutcome, RecordingStore};
use rampart_audit::{EventKind, Outcome};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{detail_str, is_hex_sha256, parse_session_id, SealedRecording, ZSTD_MAGIC};
use crate::authority::bastion::Bastion;
use crate::authority::{Authority, Caller, Session};
use crate::error::CaError;

/// An upload being written to a temporary file (0600) in the recordings
/// directory; the file goes away when this is dropped unless the store linked
/// it into place.
#[derive(Debug)]
pub struct RecordingSpool {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    bytes: u64,
    head: Vec<u8>,
}

/// A finished upload: its file, SHA-256 and size as received.
#[derive(Debug)]
pub struct SpooledRecording {
    path: tempfile::TempPath,
    sha256: String,
    bytes: u64,
    zstd: bool,
}

impl RecordingSpool {
    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Append the next piece of the upload. The writes go to the page cache;
    /// [`RecordingSpool::finish`] makes them durable.
    pub fn write(&mut self, piece: &[u8]) -> Result<(), CaError> {
        if self.head.len() < ZSTD_MAGIC.len() {
            let want = ZSTD_MAGIC.len() - self.head.len();
            self.head
                .extend_from_slice(piece.get(..want.min(piece.len())).unwrap_or_default());
        }
        self.hasher.update(piece);
        self.bytes += piece.len() as u64;
        self.file
            .write_all(piece)
            .map_err(|e| CaError::io(self.file.path(), e))
    }

    /// The whole upload is here: flush it to disk.
    pub fn finish(self) -> Result<SpooledRecording, CaError> {
        let RecordingSpool {
            file,
            hasher,
            bytes,
            head,
        } = self;
        file.as_file()
            .sync_all()
            .map_err(|e| CaError::io(file.path(), e))?;
        Ok(SpooledRecording {
            path: file.into_temp_path(),
            sha256: hex::encode(hasher.finalize()),
            bytes,
            zstd: head == ZSTD_MAGIC,
        })
    }
}

impl SpooledRecording {
    /// Bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Authority {
    /// The store sealed recordings go to: the shared PostgreSQL audit
    /// database when the CA has one, else its recordings directory.
    pub fn recording_store(&self) -> RecordingStore {
        match &self.settings.recordings_database {
            Some(db) => RecordingStore::Postgres(db.clone()),
            None => RecordingStore::Dir(self.recordings_dir()),
        }
    }

    /// Start spooling an upload in the recordings directory (made 0700 when
    /// missing).
    pub fn spool_recording(&self) -> Result<RecordingSpool, CaError> {
        let dir = self.recordings_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| CaError::io(&dir, e))?;
        let file = tempfile::Builder::new()
            .prefix(".upload-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| CaError::io(&dir, e))?;
        Ok(RecordingSpool {
            file,
            hasher: Sha256::new(),
            bytes: 0,
            head: Vec::with_capacity(ZSTD_MAGIC.len()),
        })
    }

    /// `PUT /v1/bastion/recordings/{session_id}`. See the module docs.
    pub fn seal_recording(
        &self,
        _caller: &Caller,
        bastion: &Bastion,
        session_id: &str,
        claimed_sha256: Option<&str>,
        upload: &SpooledRecording,
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
        let actual = upload.sha256.clone();
        if !bool::from(actual.as_bytes().ct_eq(claimed.as_bytes())) {
            return Err(CaError::bad_request(
                ErrorCode::RecordingDigestMismatch,
                "the body's SHA-256 does not match the header; the upload was damaged",
            ));
        }
        if !upload.zstd {
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

        let outcome = self
            .recording_store()
            .put_once(&session, &upload.path, &actual, upload.bytes)
            .map_err(CaError::AuditUnavailable)?;
        if outcome == PutOutcome::OtherStored {
            return Err(CaError::Conflict {
                code: ErrorCode::RecordingExists,
                message: "a different recording is already stored for that session".into(),
            });
        }

        if let Some(sealed) = self.session_event(EventKind::RecordingSealed, &session)? {
            if detail_str(&sealed, "sha256") == Some(actual.as_str()) {
                return Ok(api::RecordingSealed {
                    session_id: session,
                    sha256: actual,
                    bytes: upload.bytes,
                    event_id: sealed.id.to_string(),
                });
            }
        }
        let mut ev = self
            .event(EventKind::RecordingSealed, Outcome::Success, None)
            .actor(&actor)
            .session(&session)
            .detail("sha256", actual.clone())
            .detail("bytes", upload.bytes)
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
            bytes: upload.bytes,
            event_id: appended.id.to_string(),
        })
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
        let store = self.recording_store();
        let missing = || CaError::Conflict {
            code: ErrorCode::RecordingMissing,
            message: "the sealed recording is gone from the CA's store".into(),
        };
        // Two passes, neither holding the whole recording: check the digest,
        // then hand out the bytes (the CLI checks the digest again).
        let (actual, bytes) = store
            .digest(&session)
            .map_err(CaError::AuditUnavailable)?
            .ok_or_else(missing)?;
        if !bool::from(actual.as_bytes().ct_eq(sha256.as_bytes())) {
            tracing::error!(session = %session, sealed = %sha256, actual = %actual,
                "stored recording does not match its sealed digest");
            return Err(CaError::Conflict {
                code: ErrorCode::RecordingTampered,
                message: "the stored recording does not match the digest sealed in the audit log"
                    .into(),
            });
        }
        let chunks = store
            .open(&session)
            .map_err(CaError::AuditUnavailable)?
            .ok_or_else(missing)?;
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
        Ok(SealedRecording {
            chunks,
            sha256,
            bytes,
        })
    }
}
