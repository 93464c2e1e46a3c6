//! The audit tables in PostgreSQL: their schema steps, applied under a lock
//! so that two CAs starting at once do not both create them, and the version
//! check that refuses a schema this binary does not know.

use ::postgres::{Client, GenericClient};

use super::{connect, describe, pg_err, PgConfig};
use crate::AuditError;

/// The advisory lock schema changes hold, so two CAs starting at once do not
/// both create the tables.
const MIGRATE_LOCK: i64 = 0x5241_4d41_0000_0002;

/// Schema steps, oldest first; entry `i` takes version `i` to `i + 1`. A
/// released step is never edited.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2];

/// The schema version this binary writes and the newest it opens.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const SCHEMA_V1: &str = r#"
CREATE TABLE audit_events (
    seq    BIGINT PRIMARY KEY CHECK (seq >= 1),
    id     TEXT NOT NULL,
    time   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    "user" TEXT,
    serial BIGINT,
    body   TEXT NOT NULL,
    hash   BYTEA NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT audit_events_id UNIQUE (id)
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_kind_time ON audit_events (kind, time);
CREATE INDEX audit_events_user_time ON audit_events ("user", time) WHERE "user" IS NOT NULL;
CREATE INDEX audit_events_serial ON audit_events (serial) WHERE serial IS NOT NULL;
CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY CHECK (seq >= 1),
    hash      BYTEA NOT NULL CHECK (length(hash) = 32),
    time      TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE audit_forwarder_cursors (
    name       TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL CHECK (last_seq >= 0),
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"#;

/// Version 2: sealed session recordings, shared by every CA (see
/// `crate::recording::store`). A recording's row is written first, its chunks
/// after it in the same transaction; both tables are append-only like the
/// chain, so a stored recording is never replaced.
const SCHEMA_V2: &str = r#"
CREATE TABLE audit_recordings (
    session   TEXT PRIMARY KEY CHECK (session ~ '^[0-9A-Za-z]{1,128}$'),
    sha256    TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes     BIGINT NOT NULL CHECK (bytes >= 0),
    chunks    INTEGER NOT NULL CHECK (chunks >= 0),
    stored_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE audit_recording_chunks (
    session TEXT NOT NULL REFERENCES audit_recordings (session),
    idx     INTEGER NOT NULL CHECK (idx >= 0),
    data    BYTEA NOT NULL,
    PRIMARY KEY (session, idx)
);
CREATE TRIGGER audit_recordings_append_only BEFORE UPDATE OR DELETE ON audit_recordings
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_recordings_no_truncate BEFORE TRUNCATE ON audit_recordings
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_recording_chunks_append_only BEFORE UPDATE OR DELETE
    ON audit_recording_chunks FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_recording_chunks_no_truncate BEFORE TRUNCATE ON audit_recording_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"#;

/// The stored schema version (0: no audit tables yet).
fn stored_version(c: &mut impl GenericClient) -> Result<i64, ::postgres::Error> {
    let exists: bool = c
        .query_one("SELECT to_regclass('audit_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(c.query_opt("SELECT version FROM audit_schema", &[])?
        .map(|r| r.get::<_, i32>(0).into())
        .unwrap_or(0))
}

fn check_not_newer(cfg: &PgConfig, version: i64) -> Result<(), AuditError> {
    if version > PG_SCHEMA_VERSION {
        return Err(AuditError::Format(format!(
            "{}: audit schema version {version} is newer than the {PG_SCHEMA_VERSION} this \
             binary knows: use the release that wrote it, or a newer one",
            describe(cfg)
        )));
    }
    Ok(())
}

/// Create the audit tables or bring them up to [`PG_SCHEMA_VERSION`], in one
/// transaction under [`MIGRATE_LOCK`]; refuse a newer schema.
pub(super) fn migrate(client: &mut Client, cfg: &PgConfig) -> Result<(), AuditError> {
    let mut tx = client.transaction().map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .map_err(pg_err)?;
    let version = stored_version(&mut tx).map_err(pg_err)?;
    check_not_newer(cfg, version)?;
    let done = usize::try_from(version).unwrap_or(0);
    let pending = MIGRATIONS.get(done..).unwrap_or_default();
    if !pending.is_empty() {
        for step in pending {
            tx.batch_execute(step).map_err(pg_err)?;
        }
        let v = i32::try_from(PG_SCHEMA_VERSION).unwrap_or(i32::MAX);
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS audit_schema (version INTEGER NOT NULL);
             DELETE FROM audit_schema;",
        )
        .map_err(pg_err)?;
        tx.execute("INSERT INTO audit_schema (version) VALUES ($1)", &[&v])
            .map_err(pg_err)?;
    }
    tx.commit().map_err(pg_err)
}

/// The stored schema version of the audit tables at `cfg`, read without
/// changing anything (0: none yet); an error when newer than this binary.
pub fn postgres_schema_version(cfg: &PgConfig) -> Result<i64, AuditError> {
    let mut c = connect(cfg)?;
    let v = stored_version(&mut c).map_err(pg_err)?;
    check_not_newer(cfg, v)?;
    Ok(v)
}

pub(crate) fn connect_checked(cfg: &PgConfig) -> Result<Client, AuditError> {
    let mut client = connect(cfg)?;
    let version = stored_version(&mut client).map_err(pg_err)?;
    check_not_newer(cfg, version)?;
    if version < PG_SCHEMA_VERSION {
        return Err(AuditError::Format(format!(
            "{}: audit schema version {version} is older than the {PG_SCHEMA_VERSION} this \
             binary reads{}",
            describe(cfg),
            if version == 0 {
                " (no Rampart audit log there yet)"
            } else {
                ": start rampart-ca once to upgrade it"
            }
        )));
    }
    Ok(client)
}
