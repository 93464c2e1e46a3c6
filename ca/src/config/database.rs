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
