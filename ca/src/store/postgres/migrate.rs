//! The schema version of a PostgreSQL CA database, and the way to it.
//!
//! `rampart_ca_schema` has one row per applied version; the highest is the
//! version the database holds (none, or no table: an empty database).
//! [`MIGRATIONS`] has one step per version, in order. Opening runs the missing
//! steps and records them in one transaction, under an advisory lock, so two
//! CAs starting on one database at once upgrade it once; PostgreSQL's DDL is
//! transactional, so a failed step leaves the database as it was. A database
//! above [`SCHEMA_VERSION`] was written by a newer release and is refused.
//!
//! A later schema change appends a [`Migration`] here and never edits an
//! earlier one.

use postgres::{Client, Transaction};

use super::{db, schema, PgTarget};
use crate::store::sqlite::SchemaStatus;
use crate::store::StoreError;

/// The advisory lock key that serialises schema upgrades ("RAMC").
const MIGRATION_LOCK: i64 = 0x5241_4d43;

struct Migration {
    version: u32,
    what: &'static str,
    apply: fn(&mut Transaction<'_>) -> Result<(), StoreError>,
}

/// Every step, oldest first; entry `i` brings a database to version `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "the CA's tables",
        apply: schema::version_1,
    },
    Migration {
        version: 2,
        what: "flows in progress between requests (pending) and per-network budgets",
        apply: schema::version_2,
    },
];

/// The schema version this binary writes (and the newest it can open).
pub const SCHEMA_VERSION: u32 = match MIGRATIONS {
    [.., last] => last.version,
    [] => 0,
};

const _: () = {
    let mut rest = MIGRATIONS;
    let mut expected = 1;
    while let [m, tail @ ..] = rest {
        assert!(m.version == expected);
        expected += 1;
        rest = tail;
    }
};

/// The version found, checked against this binary's.
fn read(c: &mut impl postgres::GenericClient) -> Result<SchemaStatus, StoreError> {
    let exists: bool = c
        .query_one("SELECT to_regclass('rampart_ca_schema') IS NOT NULL", &[])
        .map_err(db)?
        .get(0);
    let found: i64 = if exists {
        c.query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM rampart_ca_schema",
            &[],
        )
        .map_err(db)?
        .get(0)
    } else {
        0
    };
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

/// Bring the database to [`SCHEMA_VERSION`].
pub(super) fn migrate(c: &mut Client) -> Result<(), StoreError> {
    // A current database is only read.
    if !read(c)?.needs_upgrade() {
        return Ok(());
    }
    let mut tx = c.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS rampart_ca_schema (
             version    INTEGER PRIMARY KEY,
             what       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .map_err(db)?;
    // Read again under the lock: another CA may have upgraded it meanwhile.
    let status = read(&mut tx)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > status.found) {
        (m.apply)(&mut tx).map_err(|e| {
            StoreError::database(
                format!("upgrading the schema to version {} ({})", m.version, m.what),
                e,
            )
        })?;
        let version = i32::try_from(m.version)
            .map_err(|_| StoreError::Corrupt(format!("schema version {}", m.version)))?;
        tx.execute(
            "INSERT INTO rampart_ca_schema(version, what) VALUES ($1, $2)",
            &[&version, &m.what],
        )
        .map_err(db)?;
    }
    tx.commit().map_err(db)
}

/// The schema of the database, read without changing it (`rampart-ca check`).
pub fn inspect(target: &PgTarget) -> Result<SchemaStatus, StoreError> {
    let mut c = target.config().connect().map_err(db)?;
    read(&mut c)
}

impl super::PostgresStore {
    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(read(&mut *self.conn()?)?.found)
    }

    /// Where it is (password redacted when shown).
    pub fn target(&self) -> &PgTarget {
        &self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing::TestPostgres;
    use crate::store::postgres::PostgresStore;

    #[test]
    fn a_new_database_is_brought_to_the_current_version_once() {
        let pg = TestPostgres::start();
        let t = PgTarget::new(&pg.create_database("ca"), None).unwrap();
        assert_eq!(inspect(&t).unwrap().found, 0);
        let s = PostgresStore::open(&t).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        drop(s);
        // Opening again applies nothing twice (the version rows are unique).
        let s = PostgresStore::open(&t).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let status = inspect(&t).unwrap();
        assert!(!status.needs_upgrade());
    }

    #[test]
    fn concurrent_first_opens_migrate_once() {
        let pg = TestPostgres::start();
        let t = PgTarget::new(&pg.create_database("ca"), None).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || PostgresStore::open(&t).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(inspect(&t).unwrap().found, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let pg = TestPostgres::start();
        let url = pg.create_database("ca");
        let t = PgTarget::new(&url, None).unwrap();
        drop(PostgresStore::open(&t).unwrap());
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.execute(
            "INSERT INTO rampart_ca_schema(version, what) VALUES ($1, 'from the future')",
            &[&(i32::try_from(SCHEMA_VERSION).unwrap() + 1)],
        )
        .unwrap();
        let e = PostgresStore::open(&t).unwrap_err();
        assert!(
            matches!(e, StoreError::SchemaTooNew { found, supported }
                if found == i64::from(SCHEMA_VERSION) + 1 && supported == SCHEMA_VERSION),
            "{e:?}"
        );
        assert!(matches!(inspect(&t), Err(StoreError::SchemaTooNew { .. })));
    }
}
