//! The CA library's error type.
//!
//! A failure caused by a client gives that client a short, clear reason (the
//! `Display` of the client-facing variants, with a stable code); internal failures
//! are reported to the client as a generic message while the detail goes to tracing.

use std::path::PathBuf;

use rampart_api::ErrorCode;

/// Errors of the CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The request is malformed or names something invalid (HTTP 400).
    #[error("{message}")]
    BadRequest {
        /// Stable error code.
        code: ErrorCode,
        /// One sentence for the user.
        message: String,
    },
    /// The caller did not prove who they are: bad code, bad or expired session (401).
    #[error("{message}")]
    Unauthenticated {
        /// Stable error code.
        code: ErrorCode,
        /// One sentence for the user.
        message: String,
    },
    /// The caller is known but not allowed: policy denial, disabled user (403).
    #[error("{message}")]
    Forbidden {
        /// Stable error code.
        code: ErrorCode,
        /// One sentence for the user.
        message: String,
    },
    /// Something named in the request does not exist (404).
    #[error("{message}")]
    NotFound {
        /// Stable error code.
        code: ErrorCode,
        /// One sentence for the user.
        message: String,
    },
    /// The request conflicts with current state, e.g. the user exists (409).
    #[error("{message}")]
    Conflict {
        /// Stable error code.
        code: ErrorCode,
        /// One sentence for the user.
        message: String,
    },
    /// Too many failures from this user or address (429).
    #[error("{message}")]
    RateLimited {
        /// Stable error code.
        code: ErrorCode,
        /// One sentence for the user.
        message: String,
        /// Seconds until trying again makes sense.
        retry_after_secs: u64,
    },
    /// An upstream identity provider could not be reached (HTTP 502).
    #[error("{message}")]
    Upstream {
        /// Stable code.
        code: ErrorCode,
        /// Human message.
        message: String,
    },
    // The variants below that wrap a lower error name what failed and keep the
    // error as their source without repeating it: reporters walk the chain
    // (`rampart_api::report::one_line`) and print each cause once.
    /// The audit log cannot be written, so the action was refused (503, fail closed).
    #[error("the audit log cannot be written, so the action was refused")]
    AuditUnavailable(#[source] rampart_audit::AuditError),
    /// The store failed.
    #[error("the CA database failed")]
    Store(#[from] crate::store::StoreError),
    /// Certificate or KRL signing failed.
    #[error("signing failed")]
    Signer(#[from] rampart_signer::SignerError),
    /// A configuration problem, found at start-up or by `check`.
    #[error("configuration error: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A bug or an impossible state; details in the logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CaError {
    /// A 400 with a code and message.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        CaError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 401 with a code and message.
    pub fn unauthenticated(code: ErrorCode, message: impl Into<String>) -> Self {
        CaError::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    /// A 403 with a code and message.
    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        CaError::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// A 404 with a code and message.
    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        CaError::NotFound {
            code,
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CaError::Io {
            path: path.into(),
            source,
        }
    }

    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            CaError::BadRequest { .. } => 400,
            CaError::Unauthenticated { .. } => 401,
            CaError::Forbidden { .. } => 403,
            CaError::NotFound { .. } => 404,
            CaError::Conflict { .. } => 409,
            CaError::RateLimited { .. } => 429,
            CaError::Upstream { .. } => 502,
            CaError::AuditUnavailable(_) => 503,
            CaError::Store(crate::store::StoreError::Unavailable { .. }) => 503,
            _ => 500,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            CaError::BadRequest { code, .. }
            | CaError::Unauthenticated { code, .. }
            | CaError::Forbidden { code, .. }
            | CaError::NotFound { code, .. }
            | CaError::Conflict { code, .. }
            | CaError::RateLimited { code, .. }
            | CaError::Upstream { code, .. } => *code,
            CaError::AuditUnavailable(_) => ErrorCode::AuditUnavailable,
            CaError::Store(crate::store::StoreError::Unavailable { .. }) => {
                ErrorCode::DatabaseUnavailable
            }
            _ => ErrorCode::Internal,
        }
    }

    /// The message a client may see. Internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self.status() {
            500 => "internal error; the operator can find details in the CA's log".to_owned(),
            503 if self.code() == ErrorCode::DatabaseUnavailable => {
                "the CA's database cannot be reached right now, so the CA refuses this \
                 action; try again later"
                    .to_owned()
            }
            503 => "the audit log cannot be written right now, so the CA refuses this action; \
                    try again later"
                .to_owned(),
            _ => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use rampart_api::report::one_line;
    use rampart_audit::AuditError;

    fn sqlite_failure() -> rusqlite::Error {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("SELECT * FROM no_such_table").unwrap_err()
    }

    /// What SQLite said, once, however many layers wrap it.
    fn said_once(e: &CaError) -> String {
        let line = one_line(e);
        assert_eq!(line.matches("no_such_table").count(), 1, "{line}");
        assert!(!e.to_string().contains("no_such_table"), "{e}");
        line
    }

    #[test]
    fn a_wrapped_sqlite_failure_prints_its_cause_once() {
        let cause = sqlite_failure().to_string();
        let audit = CaError::AuditUnavailable(AuditError::write_failed_by(
            "its batch was not committed",
            AuditError::from(sqlite_failure()),
        ));
        // rusqlite adds SQLite's result code as a further cause.
        let want = format!(
            "the audit log cannot be written, so the action was refused: \
             audit event not written: its batch was not committed: \
             the SQLite audit database failed: {cause}"
        );
        let line = said_once(&audit);
        assert!(line.starts_with(&want), "{line}");
        let store = CaError::from(StoreError::database("SQLite query", sqlite_failure()));
        let want = format!("the CA database failed: SQLite query: {cause}");
        let line = said_once(&store);
        assert!(line.starts_with(&want), "{line}");
    }

    #[test]
    fn a_file_error_names_the_path_then_the_cause() {
        let e = CaError::io(
            "/etc/rampart/ca.toml",
            std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        );
        assert_eq!(one_line(&e), "/etc/rampart/ca.toml: No such file");
    }
}
