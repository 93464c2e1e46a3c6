//! Recordings: sealing a bastion's upload (digest, zstd, the session it
//! reported, stored once and fsynced, then `recording_sealed`) and handing
//! one to an admin (checked against its seal, `recording_viewed` first).

use rampart_api::ErrorCode;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use rampart_api as api;
use rampart_audit::{EventKind, Outcome};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{detail_str, is_hex_sha256, parse_session_id, SealedRecording, ZSTD_MAGIC};
use crate::authority::bastion::Bastion;
use crate::authority::{Authority, Caller, Session};
use crate::error::CaError;

impl Authority {
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

fn sync_dir(dir: &Path) -> Result<(), CaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CaError::io(dir, e))
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
