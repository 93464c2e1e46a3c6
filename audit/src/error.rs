//! The crate's one error type.

use std::sync::Arc;

/// Everything that can go wrong while writing, reading or verifying the audit log.
///
/// A *tampered* log is not an error: [`crate::verify`] returns `Ok` with a
/// [`crate::VerifyProblem`] naming the first bad sequence number. Errors are for
/// the cases where the question could not be answered at all (I/O, SQLite, a
/// database that is not an audit log) or where an append was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    // The variants that wrap a lower error say what failed and keep that error
    // as their source, without repeating its text: whoever reports the error
    // walks the chain (`rampart_api::report::one_line`) and prints each cause
    // once.
    /// SQLite reported an error (I/O error, disk full, database locked, corrupt file…).
    #[error("the SQLite audit database failed")]
    Sqlite(#[from] rusqlite::Error),

    /// The PostgreSQL audit database failed (connection, statement, commit).
    #[error("the PostgreSQL audit database failed")]
    Postgres(#[from] postgres::Error),

    /// A filesystem operation outside SQLite failed.
    #[error("audit file I/O failed")]
    Io(#[from] std::io::Error),

    /// The batch this event was part of could not be committed; nothing of it was
    /// written. The writer reloads the chain head from the database, so a later
    /// append continues the chain correctly once the cause is gone.
    ///
    /// The cause is shared: one failed batch answers every event in it.
    #[error("audit event not written: {reason}")]
    WriteFailed {
        /// What could not be done.
        reason: String,
        /// The failure underneath, when there is one.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The writer thread has stopped (the log was closed, or the thread could not
    /// be started). Nothing can be appended through this handle any more.
    #[error("audit writer is not running")]
    WriterGone,

    /// The caller pre-allocated an event ID ([`crate::NewEvent::with_id`]) that the
    /// log already holds, or that appears twice in the same batch.
    #[error("audit event ID {0} already exists")]
    DuplicateId(ulid::Ulid),

    /// The file is not a Rampart audit database, or it uses a format version this
    /// build does not understand.
    #[error("audit database format: {0}")]
    Format(String),

    /// A stored row could not be decoded while reading (query). `verify` reports
    /// such rows as a [`crate::VerifyProblem`] instead.
    #[error("corrupt audit row at sequence {seq}: {reason}")]
    CorruptRow {
        /// The row's sequence number.
        seq: u64,
        /// What was wrong with it.
        reason: String,
    },

    /// The checkpoint signing key cannot be used (for instance it is still
    /// encrypted), or producing / parsing an SSHSIG signature failed.
    #[error("audit checkpoint signature: {0}")]
    Signature(String),

    /// The configuration is unusable (for instance `max_batch` of 0).
    #[error("invalid audit configuration: {0}")]
    Config(String),

    /// The witness file cannot be read or written, is damaged, or the database
    /// is behind or disagrees with it (see [`crate::witness`]).
    #[error("audit witness: {0}")]
    Witness(String),

    /// The witness file is missing or empty while the audit database holds
    /// signed checkpoints: the writer refuses to start a new witness by itself
    /// (see [`crate::witness::restart`]).
    #[error("audit witness: {0}")]
    WitnessMissing(String),

    /// A session recording is malformed or over a bound: a header that is not a
    /// Rampart asciicast v2 header, an event line that does not parse, a line or a
    /// decompressed size over its cap, a file with no complete line.
    #[error("session recording: {0}")]
    Recording(String),
}

impl AuditError {
    /// [`AuditError::WriteFailed`] for `reason`, with no lower error to keep.
    pub fn write_failed(reason: impl Into<String>) -> Self {
        AuditError::WriteFailed {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`AuditError::WriteFailed`] for `reason`, caused by `source`.
    pub fn write_failed_by(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        AuditError::WriteFailed {
            reason: reason.into(),
            source: Some(Arc::new(source)),
        }
    }
}

impl From<ssh_key::Error> for AuditError {
    fn from(e: ssh_key::Error) -> Self {
        AuditError::Signature(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use rampart_api::report::one_line;

    use super::*;

    fn sqlite_failure() -> rusqlite::Error {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("SELECT * FROM no_such_table").unwrap_err()
    }

    #[test]
    fn a_failed_batch_names_its_sqlite_cause_once() {
        let cause = sqlite_failure().to_string();
        assert!(cause.contains("no_such_table"), "{cause}");
        let e = AuditError::write_failed_by(
            "its batch was not committed",
            AuditError::from(sqlite_failure()),
        );
        let line = one_line(&e);
        // rusqlite adds SQLite's result code as a further cause.
        let want = format!(
            "audit event not written: its batch was not committed: \
             the SQLite audit database failed: {cause}"
        );
        assert!(line.starts_with(&want), "{line}");
        assert_eq!(line.matches("no_such_table").count(), 1, "{line}");
        // The top line alone does not repeat the cause.
        assert!(!e.to_string().contains("no_such_table"), "{e}");
    }

    #[test]
    fn write_failed_without_a_cause_is_just_the_reason() {
        let e = AuditError::write_failed("an event ID was stored twice meanwhile");
        assert_eq!(
            one_line(&e),
            "audit event not written: an event ID was stored twice meanwhile"
        );
        assert!(std::error::Error::source(&e).is_none());
    }
}
