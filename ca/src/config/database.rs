//! Where the CA's state lives: an SQLite file, or a PostgreSQL database shared
//! by several CAs (its password never shown; TLS to it verified against the
//! operator's CA when `database_tls_ca_file` is set).

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
    /// `database_tls_ca_file` (absolute): TLS required, the server's
    /// certificate checked against these CA certificates.
    pub tls_ca_file: Option<PathBuf>,
}

/// The files that go with a `postgres://` database: its password, and the CA
/// certificates its server's TLS certificate must chain to.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PgFiles<'a> {
    pub password: Option<&'a Path>,
    pub tls_ca: Option<&'a Path>,
}

impl std::fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDatabase")
            .field("url", &self.redacted())
            .field("password_file", &self.password_file)
            .field("tls_ca_file", &self.tls_ca_file)
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
        let target = crate::store::postgres::PgTarget::new(&self.url, password).map_err(|e| {
            CaError::Config(format!("database: {}", rampart_api::report::one_line(&e)))
        })?;
        match &self.tls_ca_file {
            None => Ok(target),
            Some(f) => {
                let pem = std::fs::read(f).map_err(|e| CaError::io(f, e))?;
                target.with_tls_roots(&pem).map_err(|e| {
                    CaError::Config(format!(
                        "database_tls_ca_file {}: {}",
                        f.display(),
                        rampart_api::report::one_line(&e)
                    ))
                })
            }
        }
    }
}

impl PostgresDatabase {
    /// The same database as connection settings for the audit log (password
    /// file read now).
    pub fn audit_store(&self) -> Result<rampart_audit::AuditStore, CaError> {
        let config = self.target()?.config();
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
    main: PgFiles<'_>,
    base: &Path,
) -> Result<(rampart_audit::AuditStore, PathBuf), CaError> {
    let is_pg = rampart_audit::is_postgres_url(raw.database.to_str().unwrap_or_default());
    let files = match (&raw.database_password_file, is_pg) {
        (Some(p), _) => PgFiles {
            password: Some(p.as_path()),
            tls_ca: main.tls_ca.filter(|_| is_pg),
        },
        (None, true) => main,
        (None, false) => PgFiles::default(),
    };
    let place = Database::from_raw(&raw.database, files, base)
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
        files: PgFiles<'_>,
        base: &Path,
    ) -> Result<Database, CaError> {
        let text = raw.to_str().unwrap_or_default();
        if crate::store::postgres::is_postgres_url(text) {
            // Checked now (the URL parses, no unverified TLS asked for),
            // connected later.
            crate::store::postgres::PgTarget::new(text, None)
                .map_err(|e| CaError::Config(format!("database: {e}")))?;
            return Ok(Database::Postgres(PostgresDatabase {
                url: text.to_owned(),
                password_file: files.password.map(|p| base.join(p)),
                tls_ca_file: files.tls_ca.map(|p| base.join(p)),
            }));
        }
        if files.password.is_some() || files.tls_ca.is_some() {
            return Err(CaError::Config(
                "database_password_file and database_tls_ca_file are for a postgres:// \
                 database; this one is an SQLite file"
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
