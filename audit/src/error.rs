//! The crate's one error type.

/// Everything that can go wrong while writing, reading or verifying the audit log.
///
/// A *tampered* log is not an error: [`crate::verify`] returns `Ok` with a
/// [`crate::VerifyProblem`] naming the first bad sequence number. Errors are for
/// the cases where the question could not be answered at all (I/O, SQLite, a
/// database that is not an audit log) or where an append was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// SQLite reported an error (I/O error, disk full, database locked, corrupt file…).
    #[error("audit database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The PostgreSQL audit database failed (connection, statement, commit).
    #[error("audit database (PostgreSQL): {0}")]
    Postgres(#[from] postgres::Error),

    /// A filesystem operation outside SQLite failed.
    #[error("audit I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The batch this event was part of could not be committed; nothing of it was
    /// written. The writer reloads the chain head from the database, so a later
    /// append continues the chain correctly once the cause is gone.
    #[error("audit event not written: {0}")]
    WriteFailed(String),

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

impl From<ssh_key::Error> for AuditError {
    fn from(e: ssh_key::Error) -> Self {
        AuditError::Signature(e.to_string())
    }
}
