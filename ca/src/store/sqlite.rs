//! The embedded SQLite store.
//!
//! One connection behind a mutex, WAL journal. Ordinary commits use
//! `synchronous=NORMAL`: they survive a crash of the process (the `kill -9` case)
//! and are fsynced at WAL checkpoints. Writes that a power loss must not undo
//! commit with `synchronous=FULL` ([`SqliteStore::durably`]): serial
//! reservations, so a serial is never handed out twice, and security state —
//! revocations, user disables and the sessions they end, bastion removals,
//! disabled WebAuthn keys — so a revoked or disabled credential can never come
//! back after the CA host loses power. The durable record of every issued certificate is its audit event, which the audit
//! log commits with `synchronous=FULL` before the certificate leaves the CA.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    AttemptLimits, AttemptLock, BastionJoin, BastionRecord, CertKind, CertRecord, CounterUpdate,
    FailureTally, IdpBinding, IdpEvidence, InviteRedemption, LockScope, PendingEnrollment,
    Revocations, SessionRecord, Store, StoreError, TotpRecord, UserRecord, WebauthnEvidence,
    WebauthnKeyRecord,
};

const SCHEMA: &str = r#"
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

const SERIAL_HIGH_WATER: &str = "serial_reserved_upto";
const KRL_VERSION: &str = "krl_version";

/// SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

fn json_list(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("list {s:?}: {e}")))
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit the database")))
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        Self::init(conn)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        add_missing_columns(&conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Db("store lock poisoned".into()))
    }

    /// Run `f` in one transaction committed with `synchronous=FULL`, then go back
    /// to NORMAL. FULL fsyncs the WAL at this commit: the write survives a power
    /// loss, not only a crash of the process.
    fn durably<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        let result = (|| {
            let tx = conn.transaction().map_err(db)?;
            let out = f(&tx)?;
            tx.commit().map_err(db)?;
            Ok(out)
        })();
        let reset = conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(db);
        // The write's own error says more than a failed reset after it.
        let out = result?;
        reset?;
        Ok(out)
    }

    fn row_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, bool, bool, String)> {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ))
    }

    fn user_from(t: (String, String, bool, bool, String)) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            name: t.0,
            groups: json_list(&t.1)?,
            admin: t.2,
            disabled: t.3,
            created_at: parse_ts(&t.4)?,
        })
    }

    fn cert_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<CertRow> {
        Ok(CertRow {
            serial: row.get(0)?,
            kind: row.get(1)?,
            subject: row.get(2)?,
            key_fingerprint: row.get(3)?,
            key_id: row.get(4)?,
            principals_json: row.get(5)?,
            valid_after: row.get(6)?,
            valid_before: row.get(7)?,
            issued_at: row.get(8)?,
        })
    }
}

const WEBAUTHN_KEY_COLUMNS: &str = "id, user, credential_id, credential_json, aaguid, \
     attestation_format, user_verified, backup_eligible, backup_state, sign_count, name, \
     created_at, last_used_at, disabled_reason, attestation_verified";

/// A `webauthn_keys` row as read, before its timestamps are parsed.
struct WebauthnKeyRow {
    id: String,
    user: String,
    credential_id: String,
    credential: String,
    aaguid: String,
    attestation_format: String,
    user_verified: bool,
    backup_eligible: bool,
    backup_state: bool,
    sign_count: i64,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    disabled_reason: Option<String>,
    attestation_verified: bool,
}

impl WebauthnKeyRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(WebauthnKeyRow {
            id: r.get(0)?,
            user: r.get(1)?,
            credential_id: r.get(2)?,
            credential: r.get(3)?,
            aaguid: r.get(4)?,
            attestation_format: r.get(5)?,
            user_verified: r.get(6)?,
            backup_eligible: r.get(7)?,
            backup_state: r.get(8)?,
            sign_count: r.get(9)?,
            name: r.get(10)?,
            created_at: r.get(11)?,
            last_used_at: r.get(12)?,
            disabled_reason: r.get(13)?,
            attestation_verified: r.get(14)?,
        })
    }

    fn into_record(self) -> Result<WebauthnKeyRecord, StoreError> {
        Ok(WebauthnKeyRecord {
            sign_count: u32::try_from(self.sign_count)
                .map_err(|_| StoreError::Corrupt(format!("sign count {}", self.sign_count)))?,
            created_at: parse_ts(&self.created_at)?,
            last_used_at: self.last_used_at.as_deref().map(parse_ts).transpose()?,
            id: self.id,
            user: self.user,
            credential_id: self.credential_id,
            credential: self.credential,
            aaguid: self.aaguid,
            attestation_format: self.attestation_format,
            user_verified: self.user_verified,
            attestation_verified: self.attestation_verified,
            backup_eligible: self.backup_eligible,
            backup_state: self.backup_state,
            name: self.name,
            disabled_reason: self.disabled_reason,
        })
    }
}

struct CertRow {
    serial: i64,
    kind: String,
    subject: String,
    key_fingerprint: String,
    key_id: String,
    principals_json: String,
    valid_after: i64,
    valid_before: i64,
    issued_at: String,
}

impl CertRow {
    fn into_record(self) -> Result<CertRecord, StoreError> {
        let u = |v: i64| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v}")));
        Ok(CertRecord {
            serial: u(self.serial)?,
            kind: if self.kind == "host" {
                CertKind::Host
            } else {
                CertKind::User
            },
            subject: self.subject,
            key_fingerprint: self.key_fingerprint,
            key_id: self.key_id,
            principals: json_list(&self.principals_json)?,
            valid_after: u(self.valid_after)?,
            valid_before: u(self.valid_before)?,
            issued_at: parse_ts(&self.issued_at)?,
        })
    }
}

impl SqliteStore {
    /// One bastion by a `WHERE` clause over its own columns with one parameter.
    fn bastion_where(
        &self,
        clause: &str,
        param: rusqlite::types::Value,
    ) -> Result<Option<BastionRecord>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, String, String)> = conn
            .prepare_cached(&format!(
                "SELECT name, host_key_fingerprint, joined_at FROM bastions WHERE {clause}"
            ))
            .map_err(db)?
            .query_row([param], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(db)?;
        row.map(|(name, host_key_fingerprint, joined)| {
            Ok(BastionRecord {
                name,
                host_key_fingerprint,
                joined_at: parse_ts(&joined)?,
            })
        })
        .transpose()
    }
}

fn meta_u64(conn: &Connection, key: &str) -> Result<u64, StoreError> {
    let v: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(db)?;
    match v {
        None => Ok(0),
        Some(bytes) => {
            let arr: [u8; 8] = bytes
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("meta {key}")))?;
            Ok(u64::from_be_bytes(arr))
        }
    }
}

fn set_meta_u64(conn: &Connection, key: &str, v: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, v.to_be_bytes().to_vec()],
    )
    .map_err(db)?;
    Ok(())
}

/// The network of the user-wide attempt row.
const ALL_NETWORKS: &str = "*";

fn chrono_of(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// One row of `attempts`, or a fresh one.
#[derive(Debug)]
struct AttemptRow {
    count: u32,
    since: DateTime<Utc>,
    lock_level: u32,
    locked_until: Option<DateTime<Utc>>,
}

impl AttemptRow {
    fn load(conn: &Connection, user: &str, network: &str) -> Result<AttemptRow, StoreError> {
        let row: Option<(u32, String, u32, Option<String>)> = conn
            .query_row(
                "SELECT count, since, lock_level, locked_until FROM attempts
                 WHERE user = ?1 AND network = ?2",
                params![user, network],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(db)?;
        Ok(match row {
            Some((count, since, lock_level, locked_until)) => AttemptRow {
                count,
                since: parse_ts(&since)?,
                lock_level,
                locked_until: locked_until.as_deref().map(parse_ts).transpose()?,
            },
            None => AttemptRow {
                count: 0,
                since: DateTime::<Utc>::MIN_UTC,
                lock_level: 0,
                locked_until: None,
            },
        })
    }

    fn save(&self, conn: &Connection, user: &str, network: &str) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO attempts(user, network, count, since, lock_level, locked_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(user, network) DO UPDATE SET count = excluded.count,
                 since = excluded.since, lock_level = excluded.lock_level,
                 locked_until = excluded.locked_until",
            params![
                user,
                network,
                self.count,
                ts(self.since),
                self.lock_level,
                self.locked_until.map(ts)
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    /// A pair quiet for longer than the longest lock starts over, back-off too.
    fn expire_pair(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) {
        if self.since + chrono_of(limits.max_lockout) < now {
            self.count = 0;
            self.lock_level = 0;
        }
    }

    /// The user-wide count is per window.
    fn expire_window(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) {
        if self.since + chrono_of(limits.user_window) < now {
            self.count = 0;
            self.since = now;
        }
    }

    /// Lock the pair for `lockout`, doubled for each earlier lock, at most
    /// `max_lockout`.
    fn lock_pair(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) -> AttemptLock {
        let factor = 1u32.checked_shl(self.lock_level).unwrap_or(u32::MAX);
        let length = limits
            .lockout
            .checked_mul(factor)
            .unwrap_or(limits.max_lockout)
            .min(limits.max_lockout);
        let until = now + chrono_of(length);
        self.locked_until = Some(until);
        self.lock_level = self.lock_level.saturating_add(1);
        self.count = 0;
        self.since = now;
        AttemptLock {
            scope: LockScope::Source,
            until,
        }
    }
}

/// The user-wide lock if one holds (it is the wider answer), else the pair's.
fn lock_in_force(pair: &AttemptRow, all: &AttemptRow, now: DateTime<Utc>) -> Option<AttemptLock> {
    [(all, LockScope::User), (pair, LockScope::Source)]
        .into_iter()
        .find_map(|(row, scope)| {
            row.locked_until
                .filter(|until| *until > now)
                .map(|until| AttemptLock { scope, until })
        })
}

/// The user a provider account is linked to.
fn idp_user_of_subject(
    conn: &Connection,
    provider: &str,
    subject: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT user FROM idp_subjects WHERE provider = ?1 AND subject = ?2",
        [provider, subject],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)
}

/// The provider account a user is linked to.
fn idp_subject_of_user(
    conn: &Connection,
    provider: &str,
    user: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT subject FROM idp_subjects WHERE provider = ?1 AND user = ?2",
        [provider, user],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)
}

impl Store for SqliteStore {
    fn create_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let r = conn.execute(
            "INSERT INTO users(name, groups_json, admin, disabled, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                u.name,
                to_json(&u.groups),
                u.admin,
                u.disabled,
                ts(u.created_at)
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Duplicate(format!("user {}", u.name)))
            }
            Err(e) => Err(db(e)),
        }
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT name, groups_json, admin, disabled, created_at FROM users WHERE name = ?1",
                [name],
                Self::row_user,
            )
            .optional()
            .map_err(db)?;
        row.map(Self::user_from).transpose()
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT name, groups_json, admin, disabled, created_at FROM users ORDER BY name",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], Self::row_user)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        rows.into_iter().map(Self::user_from).collect()
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        let n = self.durably(|tx| {
            tx.execute(
                "UPDATE users SET disabled = ?2 WHERE name = ?1",
                params![name, disabled],
            )
            .map_err(db)
        })?;
        Ok(n == 1)
    }

    fn set_groups(&self, name: &str, groups: &[String]) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .execute(
                "UPDATE users SET groups_json = ?2 WHERE name = ?1",
                params![name, to_json(groups)],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn create_invite(
        &self,
        code_hash: &[u8; 32],
        user: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO invites(code_hash, user, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![code_hash.to_vec(), user, ts(now), ts(expires_at)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn redeem_invite(
        &self,
        code_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<InviteRedemption, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let row: Option<(String, String, Option<String>)> = tx
            .query_row(
                "SELECT user, expires_at, used_at FROM invites WHERE code_hash = ?1",
                [code_hash.to_vec()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db)?;
        let outcome = match row {
            None => InviteRedemption::Unknown,
            Some((_, _, Some(_))) => InviteRedemption::AlreadyUsed,
            Some((user, expires, None)) => {
                if parse_ts(&expires)? <= now {
                    InviteRedemption::Expired
                } else {
                    tx.execute(
                        "UPDATE invites SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
                        params![code_hash.to_vec(), ts(now)],
                    )
                    .map_err(db)?;
                    InviteRedemption::Redeemed(user)
                }
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn put_enrollment(
        &self,
        token_hash: &[u8; 32],
        p: &PendingEnrollment,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO enrollments(token_hash, user, sealed_seed, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash.to_vec(), p.user, p.sealed_seed, ts(p.expires_at)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn enrollment(&self, token_hash: &[u8; 32]) -> Result<Option<PendingEnrollment>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, Vec<u8>, String)> = conn
            .query_row(
                "SELECT user, sealed_seed, expires_at FROM enrollments WHERE token_hash = ?1",
                [token_hash.to_vec()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db)?;
        row.map(|(user, sealed_seed, exp)| {
            Ok(PendingEnrollment {
                user,
                sealed_seed,
                expires_at: parse_ts(&exp)?,
            })
        })
        .transpose()
    }

    fn complete_enrollment(
        &self,
        token_hash: &[u8; 32],
        user: &str,
        totp: &TotpRecord,
        recovery: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let n = tx
            .execute(
                "DELETE FROM enrollments WHERE token_hash = ?1 AND user = ?2",
                params![token_hash.to_vec(), user],
            )
            .map_err(db)?;
        if n != 1 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO totp(user, sealed_seed, last_step) VALUES (?1, ?2, ?3)
             ON CONFLICT(user) DO UPDATE SET sealed_seed = excluded.sealed_seed,
                                             last_step = excluded.last_step",
            params![user, totp.sealed_seed, totp.last_step],
        )
        .map_err(db)?;
        tx.execute("DELETE FROM recovery_codes WHERE user = ?1", [user])
            .map_err(db)?;
        for (id, hash) in recovery {
            tx.execute(
                "INSERT INTO recovery_codes(user, id, hash) VALUES (?1, ?2, ?3)",
                params![user, id, hash],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(true)
    }

    fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT sealed_seed, last_step FROM totp WHERE user = ?1",
            [user],
            |r| {
                Ok(TotpRecord {
                    sealed_seed: r.get(0)?,
                    last_step: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(db)
    }

    fn advance_totp_step(&self, user: &str, step: i64) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .execute(
                "UPDATE totp SET last_step = ?2 WHERE user = ?1 AND last_step < ?2",
                params![user, step],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn recovery_code(&self, user: &str, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT hash FROM recovery_codes WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
            params![user, id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)
    }

    fn use_recovery_code(
        &self,
        user: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .execute(
                "UPDATE recovery_codes SET used_at = ?3
                 WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
                params![user, id, ts(now)],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn recovery_codes_left(&self, user: &str) -> Result<u32, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT COUNT(*) FROM recovery_codes WHERE user = ?1 AND used_at IS NULL",
            [user],
            |r| r.get(0),
        )
        .map_err(db)
    }

    fn attempt_lock(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AttemptLock>, StoreError> {
        let conn = self.conn()?;
        let pair = AttemptRow::load(&conn, user, network)?;
        let all = AttemptRow::load(&conn, user, ALL_NETWORKS)?;
        Ok(lock_in_force(&pair, &all, now))
    }

    fn begin_attempt(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<Result<(), AttemptLock>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut pair = AttemptRow::load(&tx, user, network)?;
        let mut all = AttemptRow::load(&tx, user, ALL_NETWORKS)?;
        if let Some(lock) = lock_in_force(&pair, &all, now) {
            return Ok(Err(lock));
        }
        pair.expire_pair(now, limits);
        all.expire_window(now, limits);
        // A count already at the limit (a crash between count and lock, or a
        // lowered limit) locks now rather than allowing one more guess.
        if pair.count >= limits.max_failures {
            let lock = pair.lock_pair(now, limits);
            pair.save(&tx, user, network)?;
            tx.commit().map_err(db)?;
            return Ok(Err(lock));
        }
        pair.count += 1;
        pair.since = now;
        all.count += 1;
        pair.save(&tx, user, network)?;
        all.save(&tx, user, ALL_NETWORKS)?;
        tx.commit().map_err(db)?;
        Ok(Ok(()))
    }

    fn attempt_failed(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<FailureTally, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut pair = AttemptRow::load(&tx, user, network)?;
        let mut all = AttemptRow::load(&tx, user, ALL_NETWORKS)?;
        let mut tally = FailureTally {
            source_failures: pair.count,
            user_failures: all.count,
            locked: None,
        };
        if pair.count >= limits.max_failures {
            tally.locked = Some(pair.lock_pair(now, limits));
        }
        if all.count >= limits.user_max_failures {
            let until = now + chrono_of(limits.user_lockout);
            all.locked_until = Some(until);
            all.count = 0;
            all.since = now;
            tally.locked = Some(AttemptLock {
                scope: LockScope::User,
                until,
            });
        }
        pair.save(&tx, user, network)?;
        all.save(&tx, user, ALL_NETWORKS)?;
        tx.commit().map_err(db)?;
        Ok(tally)
    }

    fn attempt_succeeded(&self, user: &str, network: &str) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE attempts SET count = 0, lock_level = 0 WHERE user = ?1 AND network = ?2",
            params![user, network],
        )
        .map_err(db)?;
        conn.execute(
            "UPDATE attempts SET count = MAX(count - 1, 0) WHERE user = ?1 AND network = ?2",
            params![user, ALL_NETWORKS],
        )
        .map_err(db)?;
        Ok(())
    }

    fn create_session(&self, token_hash: &[u8; 32], s: &SessionRecord) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO sessions(token_hash, id, user, mfa_method, mfa_time, mfa_event, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                token_hash.to_vec(),
                s.id,
                s.user,
                s.mfa_method,
                ts(s.mfa_time),
                s.mfa_event,
                ts(s.expires_at)
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, String, String, String, String, String)> = conn
            .prepare_cached(
                "SELECT id, user, mfa_method, mfa_time, mfa_event, expires_at
                 FROM sessions WHERE token_hash = ?1",
            )
            .map_err(db)?
            .query_row([token_hash.to_vec()], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()
            .map_err(db)?;
        row.map(|(id, user, mfa_method, mfa_time, mfa_event, expires_at)| {
            Ok(SessionRecord {
                id,
                user,
                mfa_method,
                mfa_time: parse_ts(&mfa_time)?,
                mfa_event,
                expires_at: parse_ts(&expires_at)?,
            })
        })
        .transpose()
    }

    fn put_idp_evidence(
        &self,
        session_id: &str,
        ev: &IdpEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        // Rows outlive nothing: expired ones go whenever a new one comes.
        conn.execute("DELETE FROM idp_evidence WHERE expires_at < ?1", [ts(now)])
            .map_err(db)?;
        conn.execute(
            "INSERT OR REPLACE INTO idp_evidence(session_id, provider, acr, amr, auth_time, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                session_id,
                ev.provider,
                ev.acr,
                ev.amr.join(" "),
                ts(ev.auth_time),
                ts(expires_at)
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn bind_idp_subject(
        &self,
        provider: &str,
        subject: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<IdpBinding, StoreError> {
        // One connection guard over the checks and the insert: nothing binds
        // in between.
        let conn = self.conn()?;
        if let Some(bound) = idp_user_of_subject(&conn, provider, subject)? {
            return Ok(if bound == user {
                IdpBinding::Matches
            } else {
                IdpBinding::SubjectBoundTo(bound)
            });
        }
        if idp_subject_of_user(&conn, provider, user)?.is_some() {
            return Ok(IdpBinding::UserBoundElsewhere);
        }
        conn.execute(
            "INSERT INTO idp_subjects(provider, subject, user, bound_at) VALUES (?1, ?2, ?3, ?4)",
            params![provider, subject, user, ts(now)],
        )
        .map_err(db)?;
        Ok(IdpBinding::Bound)
    }

    fn idp_subject_user(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        idp_user_of_subject(&*self.conn()?, provider, subject)
    }

    fn idp_link(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError> {
        idp_subject_of_user(&*self.conn()?, provider, user)
    }

    fn unlink_idp_subject(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "DELETE FROM idp_subjects WHERE provider = ?1 AND user = ?2 RETURNING subject",
            [provider, user],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)
    }

    fn idp_evidence(&self, session_id: &str) -> Result<Option<IdpEvidence>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, Option<String>, String, String)> = conn
            .query_row(
                "SELECT provider, acr, amr, auth_time FROM idp_evidence WHERE session_id = ?1",
                [session_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(db)?;
        match row {
            None => Ok(None),
            Some((provider, acr, amr, auth_time)) => Ok(Some(IdpEvidence {
                provider,
                acr,
                amr: amr.split_whitespace().map(str::to_owned).collect(),
                auth_time: parse_ts(&auth_time)?,
            })),
        }
    }

    fn add_webauthn_key(
        &self,
        k: &WebauthnKeyRecord,
        recovery: Option<&[(String, String)]>,
        replaces: Option<&str>,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        // The replaced key goes first, so the new one may take its name.
        let replaced = match replaces {
            Some(id) => {
                let row = tx
                    .query_row(
                        &format!(
                            "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys
                             WHERE user = ?1 AND id = ?2"
                        ),
                        [&k.user, id],
                        WebauthnKeyRow::read,
                    )
                    .optional()
                    .map_err(db)?;
                tx.execute(
                    "DELETE FROM webauthn_keys WHERE user = ?1 AND id = ?2",
                    [&k.user, id],
                )
                .map_err(db)?;
                row
            }
            None => None,
        };
        let r = tx.execute(
            &format!(
                "INSERT INTO webauthn_keys({WEBAUTHN_KEY_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ),
            params![
                k.id,
                k.user,
                k.credential_id,
                k.credential,
                k.aaguid,
                k.attestation_format,
                k.user_verified,
                k.backup_eligible,
                k.backup_state,
                i64::from(k.sign_count),
                k.name,
                ts(k.created_at),
                k.last_used_at.map(ts),
                k.disabled_reason,
                k.attestation_verified,
            ],
        );
        match r {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::Duplicate(format!(
                    "webauthn key {:?} or credential",
                    k.name
                )))
            }
            Err(e) => return Err(db(e)),
        }
        if let Some(codes) = recovery {
            tx.execute("DELETE FROM recovery_codes WHERE user = ?1", [&k.user])
                .map_err(db)?;
            for (id, hash) in codes {
                tx.execute(
                    "INSERT INTO recovery_codes(user, id, hash) VALUES (?1, ?2, ?3)",
                    params![k.user, id, hash],
                )
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        replaced.map(WebauthnKeyRow::into_record).transpose()
    }

    fn webauthn_keys(&self, user: &str) -> Result<Vec<WebauthnKeyRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys WHERE user = ?1
                 ORDER BY created_at, id"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map([user], WebauthnKeyRow::read)
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        rows.into_iter().map(WebauthnKeyRow::into_record).collect()
    }

    fn webauthn_key_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                &format!(
                    "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys WHERE credential_id = ?1"
                ),
                [credential_id],
                WebauthnKeyRow::read,
            )
            .optional()
            .map_err(db)?;
        row.map(WebauthnKeyRow::into_record).transpose()
    }

    fn webauthn_key_used(
        &self,
        id: &str,
        count: u32,
        credential: &str,
        backup_state: bool,
        now: DateTime<Utc>,
    ) -> Result<CounterUpdate, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let stored: Option<i64> = tx
            .query_row(
                "SELECT sign_count FROM webauthn_keys WHERE id = ?1 AND disabled_reason IS NULL",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let Some(stored) = stored else {
            return Ok(CounterUpdate::Gone);
        };
        let count = i64::from(count);
        // WebAuthn §7.2 step 21: when either counter is non-zero, the new one
        // must be greater.
        if (count != 0 || stored != 0) && count <= stored {
            return Ok(CounterUpdate::Regressed(
                u32::try_from(stored).unwrap_or(u32::MAX),
            ));
        }
        tx.execute(
            "UPDATE webauthn_keys SET sign_count = ?2, credential_json = ?3, backup_state = ?4,
                    last_used_at = ?5
             WHERE id = ?1",
            params![id, count, credential, backup_state, ts(now)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(CounterUpdate::Advanced)
    }

    fn disable_webauthn_key(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let n = self.durably(|tx| {
            tx.execute(
                "UPDATE webauthn_keys SET disabled_reason = ?2 WHERE id = ?1",
                params![id, reason],
            )
            .map_err(db)
        })?;
        Ok(n == 1)
    }

    fn remove_webauthn_key(
        &self,
        user: &str,
        id: &str,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let row = tx
            .query_row(
                &format!(
                    "SELECT {WEBAUTHN_KEY_COLUMNS} FROM webauthn_keys WHERE user = ?1 AND id = ?2"
                ),
                [user, id],
                WebauthnKeyRow::read,
            )
            .optional()
            .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        tx.execute(
            "DELETE FROM webauthn_keys WHERE user = ?1 AND id = ?2",
            [user, id],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        row.into_record().map(Some)
    }

    fn put_webauthn_evidence(
        &self,
        session_id: &str,
        ev: &WebauthnEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        // Rows outlive nothing: expired ones go whenever a new one comes.
        conn.execute(
            "DELETE FROM webauthn_evidence WHERE expires_at < ?1",
            [ts(now)],
        )
        .map_err(db)?;
        conn.execute(
            "INSERT OR REPLACE INTO webauthn_evidence(session_id, key_id, aaguid, user_verified,
                 expires_at, attested)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                session_id,
                ev.key_id,
                ev.aaguid,
                ev.user_verified,
                ts(expires_at),
                ev.attested
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn webauthn_evidence(&self, session_id: &str) -> Result<Option<WebauthnEvidence>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT key_id, aaguid, user_verified, attested FROM webauthn_evidence
             WHERE session_id = ?1",
            [session_id],
            |r| {
                Ok(WebauthnEvidence {
                    key_id: r.get(0)?,
                    aaguid: r.get(1)?,
                    user_verified: r.get(2)?,
                    attested: r.get(3)?,
                })
            },
        )
        .optional()
        .map_err(db)
    }

    fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            [token_hash.to_vec()],
        )
        .map_err(db)?;
        Ok(())
    }

    fn delete_user_sessions(&self, user: &str) -> Result<u64, StoreError> {
        // Called when a user is disabled or revoked: the ended sessions must stay
        // ended after a power loss.
        let n = self.durably(|tx| {
            tx.execute("DELETE FROM sessions WHERE user = ?1", [user])
                .map_err(db)
        })?;
        Ok(n as u64)
    }

    fn reserve_serials(&self, count: u64) -> Result<u64, StoreError> {
        self.durably(|tx| {
            let high = meta_u64(tx, SERIAL_HIGH_WATER)?;
            let new_high = high
                .checked_add(count)
                .ok_or_else(|| StoreError::Corrupt("serial space exhausted".into()))?;
            set_meta_u64(tx, SERIAL_HIGH_WATER, new_high)?;
            Ok(high + 1)
        })
    }

    fn insert_cert(&self, c: &CertRecord) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached(
            "INSERT INTO certs(serial, kind, subject, key_fingerprint, key_id, principals_json,
                               valid_after, valid_before, issued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(db)?
        .execute(params![
            i64_of(c.serial)?,
            match c.kind {
                CertKind::User => "user",
                CertKind::Host => "host",
            },
            c.subject,
            c.key_fingerprint,
            c.key_id,
            to_json(&c.principals),
            i64_of(c.valid_after)?,
            i64_of(c.valid_before)?,
            ts(c.issued_at)
        ])
        .map_err(db)?;
        Ok(())
    }

    fn serials_for_user(&self, user: &str) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT serial FROM certs WHERE kind = 'user' AND subject = ?1")
            .map_err(db)?;
        let rows = stmt
            .query_map([user], |r| r.get::<_, i64>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|v| u64::try_from(v).ok())
            .collect())
    }

    fn serials_for_key(&self, fingerprint: &str) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT serial FROM certs WHERE kind = 'user' AND key_fingerprint = ?1")
            .map_err(db)?;
        let rows = stmt
            .query_map([fingerprint], |r| r.get::<_, i64>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|v| u64::try_from(v).ok())
            .collect())
    }

    fn cert(&self, serial: u64) -> Result<Option<CertRecord>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT serial, kind, subject, key_fingerprint, key_id, principals_json,
                        valid_after, valid_before, issued_at FROM certs WHERE serial = ?1",
                [i64_of(serial)?],
                Self::cert_from,
            )
            .optional()
            .map_err(db)?;
        row.map(CertRow::into_record).transpose()
    }

    fn revoke(
        &self,
        serials: &[u64],
        key_fingerprints: &[String],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.durably(|tx| {
            let mut changed = 0;
            for s in serials {
                changed += tx
                    .execute(
                        "INSERT OR IGNORE INTO revoked_serials(serial, reason, revoked_at)
                     VALUES (?1, ?2, ?3)",
                        params![i64_of(*s)?, reason, ts(now)],
                    )
                    .map_err(db)?;
            }
            for fp in key_fingerprints {
                changed += tx
                    .execute(
                        "INSERT OR IGNORE INTO revoked_keys(fingerprint, reason, revoked_at)
                     VALUES (?1, ?2, ?3)",
                        params![fp, reason, ts(now)],
                    )
                    .map_err(db)?;
            }
            let mut version = meta_u64(tx, KRL_VERSION)?;
            if changed > 0 {
                version += 1;
                set_meta_u64(tx, KRL_VERSION, version)?;
            }
            Ok(version)
        })
    }

    fn revocations(&self) -> Result<Revocations, StoreError> {
        let conn = self.conn()?;
        let version = meta_u64(&conn, KRL_VERSION)?;
        let mut stmt = conn
            .prepare("SELECT serial FROM revoked_serials ORDER BY serial")
            .map_err(db)?;
        let serials = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?
            .into_iter()
            .filter_map(|v| u64::try_from(v).ok())
            .collect();
        let mut stmt = conn
            .prepare("SELECT fingerprint FROM revoked_keys ORDER BY fingerprint")
            .map_err(db)?;
        let key_fingerprints = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(Revocations {
            version,
            serials,
            key_fingerprints,
        })
    }

    fn record_host_key(&self, fingerprint: &str, public_key: &str) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT OR IGNORE INTO host_keys(fingerprint, public_key) VALUES (?1, ?2)",
            [fingerprint, public_key],
        )
        .map_err(db)?;
        Ok(())
    }

    fn revoked_host_keys(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT h.public_key FROM host_keys h JOIN revoked_keys r
                   ON r.fingerprint = h.fingerprint ORDER BY h.fingerprint",
            )
            .map_err(db)?;
        let keys = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(keys)
    }

    fn key_revoked(&self, fingerprint: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM revoked_keys WHERE fingerprint = ?1")
            .map_err(db)?
            .query_row([fingerprint], |r| r.get(0))
            .map_err(db)?;
        Ok(n > 0)
    }

    fn serial_revoked(&self, serial: u64) -> Result<bool, StoreError> {
        // A serial that does not fit the column can never have been revoked.
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(false);
        };
        let conn = self.conn()?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM revoked_serials WHERE serial = ?1")
            .map_err(db)?
            .query_row([serial], |r| r.get(0))
            .map_err(db)?;
        Ok(n > 0)
    }

    fn create_bastion_token(
        &self,
        token_hash: &[u8; 32],
        name: Option<&str>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO bastion_tokens(token_hash, name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash.to_vec(), name, ts(now), ts(expires_at)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn join_bastion(
        &self,
        token_hash: &[u8; 32],
        bastion: &BastionRecord,
        credential_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<BastionJoin, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let row: Option<(Option<String>, String, Option<String>)> = tx
            .query_row(
                "SELECT name, expires_at, used_at FROM bastion_tokens WHERE token_hash = ?1",
                [token_hash.to_vec()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db)?;
        let outcome = match row {
            None => BastionJoin::Unknown,
            Some((_, _, Some(_))) => BastionJoin::AlreadyUsed,
            Some((bound, expires, None)) => {
                let taken: bool = tx
                    .query_row(
                        "SELECT COUNT(*) FROM bastions WHERE name = ?1",
                        [&bastion.name],
                        |r| r.get::<_, i64>(0),
                    )
                    .map_err(db)?
                    > 0;
                if parse_ts(&expires)? <= now {
                    BastionJoin::Expired
                } else if let Some(b) = bound.as_ref().filter(|b| **b != bastion.name) {
                    BastionJoin::NameMismatch(b.clone())
                } else if taken && bound.is_none() {
                    BastionJoin::NameTaken
                } else {
                    tx.execute(
                        "UPDATE bastion_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
                        params![token_hash.to_vec(), ts(now)],
                    )
                    .map_err(db)?;
                    // A token made for this name re-registers it (new host key,
                    // new credential; the old credential stops working).
                    tx.execute(
                        "INSERT INTO bastions(name, credential_hash, host_key_fingerprint, joined_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(name) DO UPDATE SET credential_hash = excluded.credential_hash,
                             host_key_fingerprint = excluded.host_key_fingerprint,
                             joined_at = excluded.joined_at",
                        params![
                            bastion.name,
                            credential_hash.to_vec(),
                            bastion.host_key_fingerprint,
                            ts(bastion.joined_at)
                        ],
                    )
                    .map_err(db)?;
                    BastionJoin::Joined
                }
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn bastion(&self, name: &str) -> Result<Option<BastionRecord>, StoreError> {
        self.bastion_where("name = ?1", rusqlite::types::Value::Text(name.to_owned()))
    }

    fn bastion_names(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let names = conn
            .prepare("SELECT name FROM bastions ORDER BY name")
            .map_err(db)?
            .query_map([], |r| r.get(0))
            .map_err(db)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(db)?;
        Ok(names)
    }

    fn remove_bastion(&self, name: &str) -> Result<bool, StoreError> {
        // Revokes the bastion's CA credential: must not come back after a power loss.
        let n = self.durably(|tx| {
            tx.execute("DELETE FROM bastions WHERE name = ?1", [name])
                .map_err(db)
        })?;
        Ok(n == 1)
    }

    fn bastion_by_credential(
        &self,
        credential_hash: &[u8; 32],
    ) -> Result<Option<BastionRecord>, StoreError> {
        self.bastion_where(
            "credential_hash = ?1",
            rusqlite::types::Value::Blob(credential_hash.to_vec()),
        )
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn()?;
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn store_with_user() -> SqliteStore {
        let s = SqliteStore::in_memory().unwrap();
        s.create_user(&UserRecord {
            name: "alice".into(),
            groups: vec!["engineers".into()],
            admin: false,
            disabled: false,
            created_at: now(),
        })
        .unwrap();
        s
    }

    #[test]
    fn users_round_trip_and_names_are_unique() {
        let s = store_with_user();
        let u = s.user("alice").unwrap().unwrap();
        assert_eq!(u.groups, vec!["engineers".to_string()]);
        let dup = s.create_user(&u).unwrap_err();
        assert!(matches!(dup, StoreError::Duplicate(_)));
        assert!(s.set_disabled("alice", true).unwrap());
        assert!(s.user("alice").unwrap().unwrap().disabled);
        assert!(!s.set_disabled("nobody", true).unwrap());
    }

    #[test]
    fn invites_redeem_once_and_expire() {
        let s = store_with_user();
        let h = [7u8; 32];
        s.create_invite(&h, "alice", now() + chrono::Duration::hours(1), now())
            .unwrap();
        assert_eq!(
            s.redeem_invite(&h, now()).unwrap(),
            InviteRedemption::Redeemed("alice".into())
        );
        assert_eq!(
            s.redeem_invite(&h, now()).unwrap(),
            InviteRedemption::AlreadyUsed
        );
        assert_eq!(
            s.redeem_invite(&[1; 32], now()).unwrap(),
            InviteRedemption::Unknown
        );
        let h2 = [8u8; 32];
        s.create_invite(&h2, "alice", now() + chrono::Duration::seconds(1), now())
            .unwrap();
        assert_eq!(
            s.redeem_invite(&h2, now() + chrono::Duration::seconds(2))
                .unwrap(),
            InviteRedemption::Expired
        );
    }

    #[test]
    fn totp_steps_only_move_forward() {
        let s = store_with_user();
        let t = [1u8; 32];
        s.put_enrollment(
            &t,
            &PendingEnrollment {
                user: "alice".into(),
                sealed_seed: vec![1, 2, 3],
                expires_at: now(),
            },
        )
        .unwrap();
        let rec = TotpRecord {
            sealed_seed: vec![1, 2, 3],
            last_step: 100,
        };
        let codes = vec![("abcd".to_string(), "hash".to_string())];
        assert!(s.complete_enrollment(&t, "alice", &rec, &codes).unwrap());
        assert!(!s.complete_enrollment(&t, "alice", &rec, &codes).unwrap());
        assert!(
            !s.advance_totp_step("alice", 100).unwrap(),
            "replay of the enrolment step"
        );
        assert!(s.advance_totp_step("alice", 101).unwrap());
        assert!(!s.advance_totp_step("alice", 101).unwrap(), "replay");
        assert!(!s.advance_totp_step("alice", 99).unwrap(), "older step");
        assert_eq!(s.recovery_codes_left("alice").unwrap(), 1);
        assert!(s.use_recovery_code("alice", "abcd", now()).unwrap());
        assert!(!s.use_recovery_code("alice", "abcd", now()).unwrap());
        assert_eq!(s.recovery_code("alice", "abcd").unwrap(), None);
    }

    #[test]
    fn serial_reservations_never_overlap_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.db");
        let first = SqliteStore::open(&p).unwrap().reserve_serials(100).unwrap();
        assert_eq!(first, 1);
        let s = SqliteStore::open(&p).unwrap();
        assert_eq!(s.reserve_serials(100).unwrap(), 101);
        assert_eq!(s.reserve_serials(1).unwrap(), 201);
    }

    /// Revocations, disables and the sessions, bastions and keys they end are
    /// written under `synchronous=FULL`, as serial reservations are; ordinary
    /// writes stay NORMAL. Temporary triggers on the store's own connection read
    /// `pragma_synchronous` (0 OFF, 1 NORMAL, 2 FULL) as each row is written.
    #[test]
    fn security_state_is_written_with_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("ca.db")).unwrap();
        s.create_user(&UserRecord {
            name: "alice".into(),
            groups: vec![],
            admin: false,
            disabled: false,
            created_at: now(),
        })
        .unwrap();
        {
            let conn = s.conn().unwrap();
            conn.execute_batch(
                "INSERT INTO sessions VALUES (x'01', 's1', 'alice', 'totp', 't', 'e', 't');
                 INSERT INTO bastions VALUES ('b1', x'02', 'SHA256:h', 't');
                 INSERT INTO webauthn_keys(id, user, credential_id, credential_json, aaguid,
                     attestation_format, user_verified, backup_eligible, backup_state,
                     sign_count, name, created_at)
                 VALUES ('k1', 'alice', 'c1', '{}', 'a', 'none', 1, 0, 0, 0, 'key', 't');
                 CREATE TEMP TABLE seen(what TEXT, level INTEGER);",
            )
            .unwrap();
            for (what, trigger) in [
                ("revoked serial", "AFTER INSERT ON main.revoked_serials"),
                ("revoked key", "AFTER INSERT ON main.revoked_keys"),
                ("user disabled", "AFTER UPDATE OF disabled ON main.users"),
                ("session ended", "AFTER DELETE ON main.sessions"),
                ("bastion removed", "AFTER DELETE ON main.bastions"),
                (
                    "webauthn key disabled",
                    "AFTER UPDATE OF disabled_reason ON main.webauthn_keys",
                ),
                ("meta inserted", "AFTER INSERT ON main.meta"),
                ("meta updated", "AFTER UPDATE ON main.meta"),
                ("failure (ordinary)", "AFTER INSERT ON main.attempts"),
            ] {
                conn.execute_batch(&format!(
                    "CREATE TEMP TRIGGER \"{what}\" {trigger} BEGIN
                         INSERT INTO seen SELECT '{what}', synchronous FROM pragma_synchronous;
                     END;"
                ))
                .unwrap();
            }
        }

        s.revoke(&[5], &["SHA256:k".into()], "test", now()).unwrap();
        assert!(s.set_disabled("alice", true).unwrap());
        assert_eq!(s.delete_user_sessions("alice").unwrap(), 1);
        assert!(s.remove_bastion("b1").unwrap());
        assert!(s
            .disable_webauthn_key("k1", "sign_count_regressed")
            .unwrap());
        s.reserve_serials(10).unwrap();
        s.begin_attempt("alice", "192.0.2.1", now(), &limits())
            .unwrap()
            .unwrap();

        let conn = s.conn().unwrap();
        let seen: Vec<(String, i64)> = conn
            .prepare("SELECT what, level FROM seen ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let full = |what: &str| (what.to_owned(), 2);
        assert_eq!(
            seen,
            vec![
                full("revoked serial"),
                full("revoked key"),
                full("meta inserted"), // the KRL version
                full("user disabled"),
                full("session ended"),
                full("bastion removed"),
                full("webauthn key disabled"),
                full("meta inserted"), // the serial high-water mark
                ("failure (ordinary)".to_owned(), 1), // the pair's row
                ("failure (ordinary)".to_owned(), 1), // the user-wide row
            ]
        );
        // And the connection is back to NORMAL for what follows.
        let level: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 1);
    }

    #[test]
    fn revocations_bump_the_version_only_when_something_is_new() {
        let s = store_with_user();
        assert_eq!(s.revoke(&[5, 6], &[], "test", now()).unwrap(), 1);
        assert_eq!(s.revoke(&[5], &[], "again", now()).unwrap(), 1);
        assert_eq!(
            s.revoke(&[], &["SHA256:abc".into()], "key", now()).unwrap(),
            2
        );
        let r = s.revocations().unwrap();
        assert_eq!(r.serials, vec![5, 6]);
        assert!(s.key_revoked("SHA256:abc").unwrap());
        assert!(s.serial_revoked(5).unwrap() && s.serial_revoked(6).unwrap());
        assert!(!s.serial_revoked(7).unwrap());
    }

    fn limits() -> AttemptLimits {
        AttemptLimits {
            max_failures: 3,
            lockout: std::time::Duration::from_secs(60),
            max_lockout: std::time::Duration::from_secs(200),
            user_max_failures: 20,
            user_window: std::time::Duration::from_secs(3600),
            user_lockout: std::time::Duration::from_secs(900),
        }
    }

    /// Begin and fail one attempt; the lock it set, if any.
    fn fail(s: &SqliteStore, net: &str, at: DateTime<Utc>) -> Result<FailureTally, AttemptLock> {
        s.begin_attempt("alice", net, at, &limits()).unwrap()?;
        Ok(s.attempt_failed("alice", net, at, &limits()).unwrap())
    }

    #[test]
    fn a_pair_locks_at_its_limit_and_backs_off() {
        let s = store_with_user();
        let t = now();
        assert_eq!(fail(&s, "192.0.2.1", t).unwrap().source_failures, 1);
        assert_eq!(fail(&s, "192.0.2.1", t).unwrap().locked, None);
        let third = fail(&s, "192.0.2.1", t).unwrap();
        let first_lock = AttemptLock {
            scope: LockScope::Source,
            until: t + chrono::Duration::seconds(60),
        };
        assert_eq!(third.locked, Some(first_lock));
        // Locked: refused without being counted, from that network only.
        assert_eq!(fail(&s, "192.0.2.1", t), Err(first_lock));
        assert_eq!(
            s.attempt_lock("alice", "192.0.2.1", t).unwrap(),
            Some(first_lock)
        );
        assert_eq!(s.attempt_lock("alice", "198.51.100.7", t).unwrap(), None);
        assert!(fail(&s, "198.51.100.7", t).is_ok());
        // After the lock, three more failures lock twice as long, then 200 s at most.
        let t2 = t + chrono::Duration::seconds(61);
        for _ in 0..2 {
            fail(&s, "192.0.2.1", t2).unwrap();
        }
        let second = fail(&s, "192.0.2.1", t2).unwrap().locked.unwrap();
        assert_eq!(second.until, t2 + chrono::Duration::seconds(120));
        let t3 = t2 + chrono::Duration::seconds(121);
        for _ in 0..2 {
            fail(&s, "192.0.2.1", t3).unwrap();
        }
        let third = fail(&s, "192.0.2.1", t3).unwrap().locked.unwrap();
        assert_eq!(third.until, t3 + chrono::Duration::seconds(200));
    }

    #[test]
    fn a_success_takes_back_the_count_and_the_back_off() {
        let s = store_with_user();
        let t = now();
        fail(&s, "192.0.2.1", t).unwrap();
        fail(&s, "192.0.2.1", t).unwrap();
        s.begin_attempt("alice", "192.0.2.1", t, &limits())
            .unwrap()
            .unwrap();
        s.attempt_succeeded("alice", "192.0.2.1").unwrap();
        assert_eq!(fail(&s, "192.0.2.1", t).unwrap().source_failures, 1);
        // The user-wide count keeps the two real failures and this one.
        assert_eq!(fail(&s, "192.0.2.1", t).unwrap().user_failures, 4);
    }

    #[test]
    fn parallel_guesses_cannot_pass_the_check_before_any_is_counted() {
        let s = store_with_user();
        let t = now();
        // Three attempts begun, none finished yet: the fourth is refused.
        for _ in 0..3 {
            s.begin_attempt("alice", "192.0.2.1", t, &limits())
                .unwrap()
                .unwrap();
        }
        let refused = s.begin_attempt("alice", "192.0.2.1", t, &limits()).unwrap();
        assert_eq!(refused.unwrap_err().scope, LockScope::Source);
    }

    #[test]
    fn the_user_wide_lock_needs_many_networks_and_ends() {
        let s = store_with_user();
        let t = now();
        let mut locked = None;
        for i in 0..20 {
            let net = format!("192.0.2.{i}");
            locked = fail(&s, &net, t).unwrap().locked;
        }
        let lock = locked.expect("the twentieth failure locks the user");
        assert_eq!(lock.scope, LockScope::User);
        assert_eq!(
            s.attempt_lock("alice", "203.0.113.9", t).unwrap(),
            Some(lock)
        );
        let later = lock.until + chrono::Duration::seconds(1);
        assert_eq!(s.attempt_lock("alice", "203.0.113.9", later).unwrap(), None);
        assert!(fail(&s, "203.0.113.9", later).is_ok());
    }

    #[test]
    fn idp_subjects_bind_once_and_both_ways() {
        let s = SqliteStore::in_memory().unwrap();
        let bind = |sub: &str, user: &str| s.bind_idp_subject("corp", sub, user, now()).unwrap();
        assert_eq!(bind("sub-a", "alice"), IdpBinding::Bound);
        assert_eq!(bind("sub-a", "alice"), IdpBinding::Matches);
        assert_eq!(
            bind("sub-a", "bob"),
            IdpBinding::SubjectBoundTo("alice".into())
        );
        assert_eq!(bind("sub-b", "alice"), IdpBinding::UserBoundElsewhere);
        // Another provider is another namespace.
        assert_eq!(
            s.bind_idp_subject("other", "sub-b", "alice", now())
                .unwrap(),
            IdpBinding::Bound
        );
    }

    #[test]
    fn idp_links_are_looked_up_both_ways_and_unlinked_per_provider() {
        let s = SqliteStore::in_memory().unwrap();
        s.bind_idp_subject("corp", "sub-a", "alice", now()).unwrap();
        s.bind_idp_subject("other", "sub-x", "alice", now())
            .unwrap();
        assert_eq!(
            s.idp_subject_user("corp", "sub-a").unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(s.idp_subject_user("corp", "sub-x").unwrap(), None);
        assert_eq!(
            s.idp_link("corp", "alice").unwrap().as_deref(),
            Some("sub-a")
        );
        assert_eq!(
            s.unlink_idp_subject("corp", "alice").unwrap().as_deref(),
            Some("sub-a")
        );
        assert_eq!(s.unlink_idp_subject("corp", "alice").unwrap(), None);
        assert_eq!(s.idp_subject_user("corp", "sub-a").unwrap(), None);
        // The other provider's link stands, and the subject is free to bind anew.
        assert_eq!(
            s.idp_link("other", "alice").unwrap().as_deref(),
            Some("sub-x")
        );
        assert_eq!(
            s.bind_idp_subject("corp", "sub-a", "bob", now()).unwrap(),
            IdpBinding::Bound
        );
    }

    #[test]
    fn revoked_host_keys_are_those_whose_fingerprint_is_revoked() {
        let s = SqliteStore::in_memory().unwrap();
        s.record_host_key("SHA256:a", "ssh-ed25519 AAAA-a").unwrap();
        s.record_host_key("SHA256:b", "ssh-ed25519 AAAA-b").unwrap();
        // A second certificate for the same key records nothing new.
        s.record_host_key("SHA256:a", "ssh-ed25519 AAAA-a").unwrap();
        assert!(s.revoked_host_keys().unwrap().is_empty());
        s.revoke(&[], &["SHA256:b".into(), "SHA256:user".into()], "t", now())
            .unwrap();
        assert_eq!(s.revoked_host_keys().unwrap(), ["ssh-ed25519 AAAA-b"]);
    }

    #[test]
    fn idp_evidence_round_trips() {
        let s = SqliteStore::in_memory().unwrap();
        let ev = IdpEvidence {
            provider: "corp".into(),
            acr: Some("gold".into()),
            amr: vec!["pwd".into(), "hwk".into()],
            auth_time: now(),
        };
        s.put_idp_evidence("s1", &ev, now(), now()).unwrap();
        assert_eq!(s.idp_evidence("s1").unwrap(), Some(ev));
        assert_eq!(s.idp_evidence("s2").unwrap(), None);
    }

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
        // Opening again finds the columns present and changes nothing.
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.webauthn_keys("alice").unwrap().len(), 1);
    }
}
