//! The schema version of `ca.db`, and the way from any older version to it.
//!
//! `PRAGMA user_version` is the version of the schema a database holds; 0 means
//! empty, or written by a release from before the schema was versioned.
//! [`MIGRATIONS`] has one step per version, in order. Opening a database runs
//! the steps it lacks and then sets the version, all in one transaction: a step
//! that fails leaves the database as it was, and two processes opening an old
//! database at once cannot both upgrade it. A database whose version is above
//! [`SCHEMA_VERSION`] was written by a newer release; its rows may mean things
//! this binary would misread or overwrite, so it is refused, not opened.
//!
//! `PRAGMA application_id` marks the file as a CA database, so that `database`
//! pointed at some other SQLite file (the audit log's, say) is refused rather
//! than given CA tables.
//!
//! A later schema change appends a [`Migration`] here: it must not edit what
//! an earlier version created, since databases already past that version never
//! run it again.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{db, schema};
use crate::store::StoreError;

/// `PRAGMA application_id` of a CA database: "RAMC" (the audit log's is "RAMA").
pub const APPLICATION_ID: i64 = 0x5241_4d43;

/// One step up: what it does, and the version it brings a database to.
struct Migration {
    version: u32,
    what: &'static str,
    apply: fn(&Connection) -> Result<(), StoreError>,
}

/// Every step, oldest first; entry `i` brings a database to version `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "the tables of the unversioned releases, with their added columns",
        apply: schema::version_1,
    },
    Migration {
        version: 2,
        what: "user_proofs: which bastion first presented each user proof",
        apply: super::user_proofs::version_2,
    },
    Migration {
        version: 3,
        what: "how each security-key login's assertion arrived (webauthn_evidence.via_link)",
        apply: version_3,
    },
    Migration {
        version: 4,
        what:
            "flows in progress between requests (pending) and per-network budgets (budget_events)",
        apply: super::pending::version_4,
    },
];

/// Schema version 3: each key login records whether its assertion came
/// through the CA's approval page (a link) or from the client's own CTAP2
/// call, for roles with `webauthn_link = false`. Rows written before cannot
/// tell, so they read as through a link: never as proven direct. A database
/// that has the column already (its version set back by hand) is left as is.
fn version_3(conn: &Connection) -> Result<(), StoreError> {
    let present: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('webauthn_evidence') \
             WHERE name = 'via_link'",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if present {
        return Ok(());
    }
    conn.execute_batch(
        "ALTER TABLE webauthn_evidence ADD COLUMN via_link INTEGER NOT NULL DEFAULT 1",
    )
    .map_err(db)
}

/// The schema version this binary writes (and the newest it can open).
pub const SCHEMA_VERSION: u32 = match MIGRATIONS {
    [.., last] => last.version,
    [] => 0,
};

// The list is numbered from 1 without gaps, so no step is skipped or run twice;
// a mistake here fails the build.
const _: () = {
    let mut rest = MIGRATIONS;
    let mut expected = 1;
    while let [m, tail @ ..] = rest {
        assert!(m.version == expected);
        expected += 1;
        rest = tail;
    }
};

/// The schema of a database as found, without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The version the database holds (0: from before versioning, or empty).
    pub found: u32,
    /// The version this binary writes.
    pub supported: u32,
}

impl SchemaStatus {
    /// The next open would upgrade it.
    pub fn needs_upgrade(&self) -> bool {
        self.found < self.supported
    }
}

/// The two header fields, checked: a foreign file or a too-new schema is an
/// error.
fn read(conn: &Connection) -> Result<SchemaStatus, StoreError> {
    let app: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(db)?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    // 0: a database from before the id was set, or a new one.
    if app != 0 && app != APPLICATION_ID {
        return Err(StoreError::NotCaDatabase {
            application_id: app,
        });
    }
    match u32::try_from(found) {
        Ok(found) if found <= SCHEMA_VERSION => Ok(SchemaStatus {
            found,
            supported: SCHEMA_VERSION,
        }),
        _ => Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }),
    }
}

/// Bring an open database to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // A current database is only read: opening it takes no write lock.
    let app: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(db)?;
    if !read(conn)?.needs_upgrade() && app == APPLICATION_ID {
        return Ok(());
    }
    // Write-locked from the start, and read again under the lock: another
    // process may have upgraded it in between.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let status = read(&tx)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > status.found) {
        (m.apply)(&tx).map_err(|e| {
            StoreError::database(
                format!("upgrading the schema to version {} ({})", m.version, m.what),
                e,
            )
        })?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(db)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// The schema of the database at `path`, read without changing it (for
/// `rampart-ca check`, which must not upgrade what it inspects).
pub fn inspect(path: &Path) -> Result<SchemaStatus, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db)?;
    read(&conn)
}

impl super::SqliteStore {
    /// The schema version of the open database (always [`SCHEMA_VERSION`] once
    /// opened).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(read(&*self.conn()?)?.found)
    }
}
