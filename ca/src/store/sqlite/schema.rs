//! The tables of `ca.db` as schema version 1 has them: the tables, and the
//! columns added to them before the schema was versioned. [`super::migrate`]
//! applies them; later versions append migrations there rather than edit this.

use rusqlite::Connection;

use super::db;
use crate::store::StoreError;

/// The tables, idempotent: a database written before versioning has some or
/// all of them already.
const V1_TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    name        TEXT PRIMARY KEY,
    groups_json TEXT NOT NULL,
    admin       INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invites (
    code_hash  BLOB PRIMARY KEY,
    user       TEXT NOT NULL REFERENCES users(name),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE TABLE IF NOT EXISTS enrollments (
    token_hash  BLOB PRIMARY KEY,
    user        TEXT NOT NULL REFERENCES users(name),
    sealed_seed BLOB NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS totp (
    user        TEXT PRIMARY KEY REFERENCES users(name),
    sealed_seed BLOB NOT NULL,
    last_step   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS recovery_codes (
    user    TEXT NOT NULL REFERENCES users(name),
    id      TEXT NOT NULL,
    hash    TEXT NOT NULL,
    used_at TEXT,
    PRIMARY KEY (user, id)
);
-- Failed factor checks per (user, source network); network '*' is the
-- user-wide row. For a pair, `since` is the last attempt; for '*', the start
-- of the current window.
DROP TABLE IF EXISTS failures;
CREATE TABLE IF NOT EXISTS attempts (
    user         TEXT NOT NULL,
    network      TEXT NOT NULL,
    count        INTEGER NOT NULL,
    since        TEXT NOT NULL,
    lock_level   INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    PRIMARY KEY (user, network)
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash BLOB PRIMARY KEY,
    id         TEXT NOT NULL,
    user       TEXT NOT NULL,
    mfa_method TEXT NOT NULL,
    mfa_time   TEXT NOT NULL,
    mfa_event  TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS certs (
    serial          INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    principals_json TEXT NOT NULL,
    valid_after     INTEGER NOT NULL,
    valid_before    INTEGER NOT NULL,
    issued_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS certs_subject ON certs(kind, subject);
CREATE INDEX IF NOT EXISTS certs_key ON certs(key_fingerprint);
CREATE TABLE IF NOT EXISTS revoked_serials (
    serial     INTEGER PRIMARY KEY,
    reason     TEXT NOT NULL,
    revoked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_keys (
    fingerprint TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    revoked_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS host_keys (
    fingerprint TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bastion_tokens (
    token_hash BLOB PRIMARY KEY,
    name       TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE TABLE IF NOT EXISTS bastions (
    name                 TEXT PRIMARY KEY,
    credential_hash      BLOB NOT NULL UNIQUE,
    host_key_fingerprint TEXT NOT NULL,
    joined_at            TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS idp_subjects (
    provider TEXT NOT NULL,
    subject  TEXT NOT NULL,
    user     TEXT NOT NULL,
    bound_at TEXT NOT NULL,
    PRIMARY KEY (provider, subject),
    UNIQUE (provider, user)
);
CREATE TABLE IF NOT EXISTS idp_evidence (
    session_id TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    acr        TEXT,
    amr        TEXT NOT NULL,
    auth_time  TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webauthn_keys (
    id                 TEXT PRIMARY KEY,
    user               TEXT NOT NULL REFERENCES users(name),
    credential_id      TEXT NOT NULL UNIQUE,
    credential_json    TEXT NOT NULL,
    aaguid             TEXT NOT NULL,
    attestation_format TEXT NOT NULL,
    user_verified      INTEGER NOT NULL,
    backup_eligible    INTEGER NOT NULL,
    backup_state       INTEGER NOT NULL,
    sign_count         INTEGER NOT NULL,
    name               TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    last_used_at       TEXT,
    disabled_reason    TEXT,
    attestation_verified INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user, name)
);
CREATE TABLE IF NOT EXISTS webauthn_evidence (
    session_id    TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    aaguid        TEXT NOT NULL,
    user_verified INTEGER NOT NULL,
    expires_at    TEXT NOT NULL,
    attested      INTEGER NOT NULL DEFAULT 0
);
"#;

/// Columns added after a table's first release: `(table, column, definition)`.
/// A database made by an older version gets them on open; their defaults are the
/// safe reading of a row written before the column existed (a key stored before
/// attestation was recorded is unattested).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    (
        "webauthn_keys",
        "attestation_verified",
        "INTEGER NOT NULL DEFAULT 0",
    ),
    (
        "webauthn_evidence",
        "attested",
        "INTEGER NOT NULL DEFAULT 0",
    ),
];

/// Add the [`ADDED_COLUMNS`] an older database lacks.
fn add_missing_columns(conn: &Connection) -> Result<(), StoreError> {
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = conn
            .query_row(
                &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
                [column],
                |r| r.get(0),
            )
            .map_err(db)?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))
            .map_err(db)?;
        }
    }
    Ok(())
}

/// Schema version 1: create what is missing (tables, indexes, added columns).
/// Safe on an empty database and on one written by any unversioned release.
pub(super) fn version_1(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(V1_TABLES).map_err(db)?;
    add_missing_columns(conn)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::store::prelude::*;
    use crate::store::sqlite::SqliteStore;

    /// A database from before attestation was recorded: the columns are added on
    /// open, and its keys and evidence read as not attested.
    #[test]
    fn an_older_database_gains_the_attestation_columns_as_unattested() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE users (name TEXT PRIMARY KEY, groups_json TEXT NOT NULL,
                     admin INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
                     created_at TEXT NOT NULL);
                 CREATE TABLE webauthn_keys (
                     id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name),
                     credential_id TEXT NOT NULL UNIQUE, credential_json TEXT NOT NULL,
                     aaguid TEXT NOT NULL, attestation_format TEXT NOT NULL,
                     user_verified INTEGER NOT NULL, backup_eligible INTEGER NOT NULL,
                     backup_state INTEGER NOT NULL, sign_count INTEGER NOT NULL,
                     name TEXT NOT NULL, created_at TEXT NOT NULL, last_used_at TEXT,
                     disabled_reason TEXT, UNIQUE (user, name));
                 CREATE TABLE webauthn_evidence (session_id TEXT PRIMARY KEY,
                     key_id TEXT NOT NULL, aaguid TEXT NOT NULL,
                     user_verified INTEGER NOT NULL, expires_at TEXT NOT NULL);
                 INSERT INTO users VALUES ('alice', '[]', 0, 0, '2026-01-01T00:00:00Z');
                 INSERT INTO webauthn_keys VALUES ('k1', 'alice', 'c1', '{}', 'a', 'packed',
                     1, 0, 0, 0, 'old', '2026-01-01T00:00:00Z', NULL, NULL);
                 INSERT INTO webauthn_evidence VALUES ('s1', 'k1', 'a', 1,
                     '2099-01-01T00:00:00Z');",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let keys = s.webauthn_keys("alice").unwrap();
        assert_eq!(keys.len(), 1);
        assert!(!keys[0].attestation_verified);
        assert!(keys[0].user_verified);
        let ev = s.webauthn_evidence("s1").unwrap().unwrap();
        assert!(!ev.attested && ev.user_verified);
        // Nothing recorded how that login's assertion arrived: not proven direct.
        assert!(ev.via_link);
        // Opening again finds the columns present and changes nothing.
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.webauthn_keys("alice").unwrap().len(), 1);
    }
}
