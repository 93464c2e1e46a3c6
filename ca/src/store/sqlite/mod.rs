//! The embedded SQLite store.
//!
//! One connection behind a mutex, WAL journal. Ordinary commits use
//! `synchronous=NORMAL`: they survive a crash of the process (the `kill -9` case)
//! and are fsynced at WAL checkpoints. Writes that a power loss must not undo
//! commit with `synchronous=FULL` ([`SqliteStore::durably`]): serial
//! reservations, so a serial is never handed out twice, and security state —
//! revocations, user disables and the sessions they end, bastion removals,
//! disabled WebAuthn keys — so a revoked or disabled credential can never come
//! back after the CA host loses power. The durable record of every issued
//! certificate is its audit event, which the audit log commits with
//! `synchronous=FULL` before the certificate leaves the CA.
//!
//! This module owns the connection, its durability modes and the row helpers
//! every area shares; [`schema`] owns the tables, [`migrate`] the schema
//! version and the steps between versions, and one module per area implements
//! that area's trait.

mod attempts;
mod bastions;
mod budgets;
mod certs;
mod factors;
mod migrate;
mod pending;
mod schema;
mod sessions;
mod user_proofs;
mod users;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

pub use migrate::{inspect, SchemaStatus, APPLICATION_ID, SCHEMA_VERSION};

use super::{MetaStore, StoreError};

/// SQLite implementation of [`Store`](crate::store::Store).
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::database("SQLite", e)
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

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        migrate::migrate(&mut conn)?;
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

/// A table of single-use tokens (invites, bastion join tokens): one row per
/// token hash, with an expiry, a `used_at` set when the token is spent, and one
/// column the token carries (the user it enrols, the name it is bound to).
struct TokenTable {
    table: &'static str,
    key: &'static str,
    carried: &'static str,
}

/// A single-use token as found, before it is spent.
enum Token<T> {
    /// No such token.
    Unknown,
    /// Spent already.
    Used,
    /// Past its expiry.
    Expired,
    /// Usable; carries the token's column.
    Live(T),
}

impl TokenTable {
    /// Look a token up. Callers run this and [`TokenTable::spend`] in one
    /// transaction, so that two presentations cannot both find it live.
    fn find<T: rusqlite::types::FromSql>(
        &self,
        conn: &Connection,
        hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Token<T>, StoreError> {
        let row: Option<(T, String, Option<String>)> = conn
            .query_row(
                &format!(
                    "SELECT {}, expires_at, used_at FROM {} WHERE {} = ?1",
                    self.carried, self.table, self.key
                ),
                [hash.to_vec()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db)?;
        Ok(match row {
            None => Token::Unknown,
            Some((_, _, Some(_))) => Token::Used,
            Some((carried, expires, None)) => {
                if parse_ts(&expires)? <= now {
                    Token::Expired
                } else {
                    Token::Live(carried)
                }
            }
        })
    }

    /// Mark a live token used.
    fn spend(
        &self,
        conn: &Connection,
        hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        conn.execute(
            &format!(
                "UPDATE {} SET used_at = ?2 WHERE {} = ?1 AND used_at IS NULL",
                self.table, self.key
            ),
            params![hash.to_vec(), ts(now)],
        )
        .map_err(db)?;
        Ok(())
    }
}

impl MetaStore for SqliteStore {
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

    fn replace_meta(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let changed = match expected {
            None => conn.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
                params![key, value],
            ),
            Some(old) => conn.execute(
                "UPDATE meta SET value = ?2 WHERE key = ?1 AND value = ?3",
                params![key, value, old],
            ),
        }
        .map_err(db)?;
        Ok(changed == 1)
    }
}

/// Fixtures the area tests share.
#[cfg(test)]
mod testing {
    use chrono::{DateTime, Utc};

    use crate::store::AttemptLimits;

    pub(super) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    pub(super) fn limits() -> AttemptLimits {
        AttemptLimits {
            max_failures: 3,
            lockout: std::time::Duration::from_secs(60),
            max_lockout: std::time::Duration::from_secs(200),
            user_max_failures: 20,
            user_window: std::time::Duration::from_secs(3600),
            user_lockout: std::time::Duration::from_secs(900),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{limits, now};
    use super::*;
    use crate::store::prelude::*;
    use crate::store::UserRecord;

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
}
