//! [`AuditStore`]: where a CA's audit log lives (an SQLite file of its own,
//! or a PostgreSQL database several CAs share), and the operations a CA and
//! its tools need on it whichever it is, so callers never match on the kind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::forward::{ForwardError, Forwarder, ForwarderSettings, Sink};
use crate::store::postgres::{describe, postgres_schema_version, PgConfig};
use crate::witness::{self, Depth, Head, StartPoints, WitnessReport};
use crate::{AuditConfig, AuditError, AuditLog, CheckpointSigner};

/// Where an audit log is stored.
#[derive(Clone)]
pub enum AuditStore {
    /// An SQLite file (e.g. `audit.db`) one CA writes.
    Sqlite(PathBuf),
    /// Tables in a PostgreSQL database that several CAs append to.
    Postgres(Box<PgConfig>),
}

impl std::fmt::Display for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditStore::Sqlite(p) => write!(f, "{}", p.display()),
            AuditStore::Postgres(c) => f.write_str(&describe(c)),
        }
    }
}

impl std::fmt::Debug for AuditStore {
    // Never the PostgreSQL password: only where the database is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditStore({self})")
    }
}

impl AuditStore {
    /// The SQLite file, when that is the store.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            AuditStore::Sqlite(p) => Some(p),
            AuditStore::Postgres(_) => None,
        }
    }

    /// Open the log for appending (see [`AuditLog::open_with_signer`] and
    /// [`AuditLog::open_postgres`]).
    pub fn open(
        &self,
        checkpoint_key: Option<Arc<dyn CheckpointSigner>>,
        config: AuditConfig,
    ) -> Result<AuditLog, AuditError> {
        match self {
            AuditStore::Sqlite(p) => AuditLog::open_with_signer(p, checkpoint_key, config),
            AuditStore::Postgres(c) => AuditLog::open_postgres(c, checkpoint_key, config),
        }
    }

    /// The stored schema version, read without changing anything. An error
    /// for a store this binary cannot read; on PostgreSQL 0 means no log yet.
    pub fn schema_version(&self) -> Result<i64, AuditError> {
        match self {
            AuditStore::Sqlite(p) => crate::schema_version(p),
            AuditStore::Postgres(c) => postgres_schema_version(c),
        }
    }

    /// The log's head (its last event).
    pub fn head(&self) -> Result<Head, AuditError> {
        match self {
            AuditStore::Sqlite(p) => witness::read_head(p),
            AuditStore::Postgres(c) => {
                let mut client = crate::store::postgres::connect_checked(c)?;
                let (seq, hash) = crate::store::postgres::head(&mut client)?;
                Ok(Head { seq, hash })
            }
        }
    }

    /// Compare the log with the witness file's newest line (what opening the
    /// log checks).
    pub fn check_witness(
        &self,
        witness_file: &Path,
        key: Option<&ssh_key::PublicKey>,
    ) -> Result<WitnessReport, AuditError> {
        match self {
            AuditStore::Sqlite(p) => witness::check_file(p, witness_file, key, Depth::Newest),
            AuditStore::Postgres(c) => witness::check_postgres(c, witness_file, key),
        }
    }

    /// For a missing or empty witness: the refusal opening the log would give,
    /// or `None` when the log has no checkpoint yet.
    pub fn absent_witness_problem(
        &self,
        witness_file: &Path,
    ) -> Result<Option<String>, AuditError> {
        match self {
            AuditStore::Sqlite(p) => witness::absent_check(p, witness_file),
            AuditStore::Postgres(c) => {
                if !witness::is_absent(witness_file)? {
                    return Ok(None);
                }
                let points = witness::start_points_postgres(c)?;
                Ok(witness::absent_problem(witness_file, &points))
            }
        }
    }

    /// Where a new witness would start.
    pub fn witness_start_points(&self) -> Result<StartPoints, AuditError> {
        match self {
            AuditStore::Sqlite(p) => witness::start_points(p),
            AuditStore::Postgres(c) => witness::start_points_postgres(c),
        }
    }

    /// Start a new witness on purpose (see [`witness::restart`]).
    pub fn restart_witness(&self, witness_file: &Path) -> Result<StartPoints, AuditError> {
        match self {
            AuditStore::Sqlite(p) => witness::restart(p, witness_file),
            AuditStore::Postgres(c) => witness::restart_postgres(c, witness_file),
        }
    }

    /// Start a SIEM forwarder reading this log (see [`Forwarder::spawn`] and
    /// [`Forwarder::spawn_postgres`]).
    pub fn spawn_forwarder(
        &self,
        settings: ForwarderSettings,
        sink: Box<dyn Sink>,
    ) -> Result<Forwarder, ForwardError> {
        match self {
            AuditStore::Sqlite(p) => Forwarder::spawn(p, settings, sink),
            AuditStore::Postgres(c) => Forwarder::spawn_postgres(c, settings, sink),
        }
    }
}
