//! Where the CA's state lives: an SQLite file, or a PostgreSQL database shared
//! by several CAs (its password never shown).

use std::path::{Path, PathBuf};

use super::read_secret_file;
use crate::error::CaError;

/// Where the CA's state lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// An SQLite file (absolute path): one CA.
    Sqlite(PathBuf),
    /// A PostgreSQL database, possibly shared by several CAs.
    Postgres(PostgresDatabase),
}

/// `database = "postgres://…"` and its password file. `Debug` and
/// [`PostgresDatabase::redacted`] never show a password.
#[derive(Clone)]
pub struct PostgresDatabase {
    url: String,
    /// `database_password_file` (absolute), read when the store is opened.
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDatabase")
            .field("url", &self.redacted())
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl PostgresDatabase {
    /// The URL with any password masked, for messages and logs.
    pub fn redacted(&self) -> String {
        crate::store::postgres::redact_url(&self.url)
    }

    /// The connection target, with the password file read (it must be 0600).
    pub fn target(&self) -> Result<crate::store::postgres::PgTarget, CaError> {
        let password = self
            .password_file
            .as_deref()
            .map(read_secret_file)
            .transpose()?;
        crate::store::postgres::PgTarget::new(&self.url, password)
            .map_err(|e| CaError::Config(format!("database: {e}")))
    }
}

impl PostgresDatabase {
    /// The same database as connection settings for the audit log (password
    /// file read now).
    pub fn audit_store(&self) -> Result<rampart_audit::AuditStore, CaError> {
        let config = self
            .target()?
            .config()
            .map_err(|e| CaError::Config(format!("[audit] database: {e}")))?;
        Ok(rampart_audit::AuditStore::Postgres(Box::new(config)))
    }
}

/// `[audit] database`: an SQLite file, or a `postgres://` URL (the log several
/// CAs share), whose password comes from `[audit] database_password_file`,
/// else from the top-level `database_password_file`. Also where the witness
/// goes by default: beside an SQLite file, or `audit.witness` in the CA's
/// directory for PostgreSQL.
pub(super) fn audit_store(
    raw: &super::RawAudit,
    main_password_file: Option<&Path>,
    base: &Path,
) -> Result<(rampart_audit::AuditStore, PathBuf), CaError> {
    let is_pg = rampart_audit::is_postgres_url(raw.database.to_str().unwrap_or_default());
    let password = match (&raw.database_password_file, is_pg) {
        (Some(p), _) => Some(p.as_path()),
        (None, true) => main_password_file,
        (None, false) => None,
    };
    let place = Database::from_raw(&raw.database, password, base)
        .map_err(|e| CaError::Config(format!("[audit] {e}")))?;
    let witness = |default: PathBuf| match &raw.witness_file {
        Some(w) => base.join(w),
        None => default,
    };
    Ok(match place {
        Database::Sqlite(p) => {
            let w = witness(p.with_extension("witness"));
            (rampart_audit::AuditStore::Sqlite(p), w)
        }
        Database::Postgres(pg) => (pg.audit_store()?, witness(base.join("audit.witness"))),
    })
}

impl Database {
    pub(super) fn from_raw(
        raw: &Path,
        password_file: Option<&Path>,
        base: &Path,
    ) -> Result<Database, CaError> {
        let text = raw.to_str().unwrap_or_default();
        if crate::store::postgres::is_postgres_url(text) {
            // Checked now (the URL parses, no TLS asked for), connected later.
            crate::store::postgres::PgTarget::new(text, None)
                .map_err(|e| CaError::Config(format!("database: {e}")))?;
            return Ok(Database::Postgres(PostgresDatabase {
                url: text.to_owned(),
                password_file: password_file.map(|p| base.join(p)),
            }));
        }
        if password_file.is_some() {
            return Err(CaError::Config(
                "database_password_file is for a postgres:// database; this one is an \
                 SQLite file"
                    .into(),
            ));
        }
        Ok(Database::Sqlite(base.join(raw)))
    }

    /// The SQLite file, if that is the backend.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(p) => Some(p),
            Database::Postgres(_) => None,
        }
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "{}", p.display()),
            Database::Postgres(pg) => f.write_str(&pg.redacted()),
        }
    }
}
