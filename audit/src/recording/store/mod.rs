//! Where sealed recordings are kept once a bastion has uploaded them:
//! [`RecordingStore`], one seam over two places.
//!
//! - [`RecordingStore::Dir`]: one file per session, `<session>.cast.zst`
//!   (0600, never replaced), in the directory beside an SQLite audit log. One
//!   CA reads and writes it.
//! - [`RecordingStore::Postgres`]: rows in the audit database that several CAs
//!   share (`audit_recordings`, one row per session with its digest and size,
//!   and `audit_recording_chunks`, the bytes in pieces of [`CHUNK_BYTES`]), so
//!   any CA hands out a recording that another CA received. Both tables are
//!   append-only by trigger, like the chain.
//!
//! A recording is stored from a file the caller has already written (the CA
//! spools an upload to disk as it arrives) and read back in pieces, so that
//! neither direction holds a whole recording in memory. A session is stored
//! once: storing it again with the same digest is a retried upload and
//! changes nothing; another digest is refused ([`PutOutcome::OtherStored`]).
//! Whether the bytes still match the digest sealed in the chain is the
//! caller's check ([`RecordingStore::digest`]); the store keeps what it got.

use std::path::{Path, PathBuf};

use crate::store::postgres::PgConfig;
use crate::AuditError;

mod dir;
mod postgres;

/// Size of the pieces a recording is read and stored in (1 MiB).
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Where sealed recordings are kept. See the module docs.
#[derive(Clone)]
pub enum RecordingStore {
    /// One file per session in this directory.
    Dir(PathBuf),
    /// The recording tables of this PostgreSQL audit database.
    Postgres(Box<PgConfig>),
}

impl std::fmt::Display for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordingStore::Dir(d) => write!(f, "{}", d.display()),
            RecordingStore::Postgres(c) => {
                write!(
                    f,
                    "{} (recording tables)",
                    crate::store::postgres::describe(c)
                )
            }
        }
    }
}

impl std::fmt::Debug for RecordingStore {
    // Never the PostgreSQL password: only where the recordings are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordingStore({self})")
    }
}

/// What [`RecordingStore::put_once`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The recording is stored now.
    Stored,
    /// The same bytes (same digest) were stored before: a retried upload.
    AlreadyStored,
    /// Another recording is stored for that session; nothing changed.
    OtherStored,
}

/// A stored recording, read in pieces of at most [`CHUNK_BYTES`].
pub struct RecordingChunks(Source);

enum Source {
    File(std::fs::File),
    Postgres(Box<postgres::Chunks>),
}

impl std::fmt::Debug for RecordingChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingChunks")
    }
}

impl Iterator for RecordingChunks {
    type Item = Result<Vec<u8>, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Source::File(f) => dir::next_chunk(f),
            Source::Postgres(c) => c.next_chunk(),
        }
    }
}

/// A session ID becomes a file name or a key: only a plain token may.
pub fn is_plain_session_id(session: &str) -> bool {
    !session.is_empty()
        && session.len() <= 128
        && session.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn check_session(session: &str) -> Result<(), AuditError> {
    if is_plain_session_id(session) {
        Ok(())
    } else {
        Err(AuditError::Recording(format!(
            "session ID {session:?} is not a plain token"
        )))
    }
}

impl RecordingStore {
    /// Store the finished recording in the file `spooled` (`bytes` long, with
    /// lowercase hex SHA-256 `sha256`) for `session`, unless one is stored:
    /// see [`PutOutcome`]. Durable when it returns `Stored`.
    ///
    /// For [`RecordingStore::Dir`] the file must be in that directory: it is
    /// linked into place, not copied; the caller removes its own name after.
    pub fn put_once(
        &self,
        session: &str,
        spooled: &Path,
        sha256: &str,
        bytes: u64,
    ) -> Result<PutOutcome, AuditError> {
        check_session(session)?;
        match self {
            RecordingStore::Dir(d) => dir::put_once(d, session, spooled, sha256),
            RecordingStore::Postgres(c) => postgres::put_once(c, session, spooled, sha256, bytes),
        }
    }

    /// The stored recording of `session`, or `None` when there is none.
    pub fn open(&self, session: &str) -> Result<Option<RecordingChunks>, AuditError> {
        check_session(session)?;
        let source = match self {
            RecordingStore::Dir(d) => dir::open(d, session)?.map(Source::File),
            RecordingStore::Postgres(c) => {
                postgres::open(c, session)?.map(|c| Source::Postgres(Box::new(c)))
            }
        };
        Ok(source.map(RecordingChunks))
    }

    /// Lowercase hex SHA-256 and size of the stored recording of `session`,
    /// computed from its bytes (not from what was claimed when it was
    /// stored), or `None` when there is none.
    pub fn digest(&self, session: &str) -> Result<Option<(String, u64)>, AuditError> {
        use sha2::{Digest, Sha256};
        let Some(chunks) = self.open(session)? else {
            return Ok(None);
        };
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        for chunk in chunks {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(Some((hex::encode(hasher.finalize()), bytes)))
    }

    /// Copy every `<session>.cast.zst` in `dir` that this store does not hold
    /// yet into it (a CA that kept recordings in its own directory before
    /// moving to a shared store). Returns how many were copied; the files
    /// stay. What was sealed is checked when a recording is read or verified.
    /// A [`RecordingStore::Dir`] imports nothing: it is such a directory.
    pub fn import_dir(&self, dir: &Path) -> Result<usize, AuditError> {
        if let RecordingStore::Dir(_) = self {
            return Ok(0);
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut copied = 0;
        for entry in entries {
            let path = entry?.path();
            let Some(session) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".cast.zst"))
                .filter(|s| is_plain_session_id(s))
            else {
                continue;
            };
            if self.open(session)?.is_some() {
                continue;
            }
            let (sha256, bytes) = super::digest_file(&path)?;
            if self.put_once(session, &path, &sha256, bytes)? == PutOutcome::Stored {
                copied += 1;
            }
        }
        Ok(copied)
    }
}

#[cfg(test)]
mod tests;
