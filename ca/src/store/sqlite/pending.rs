//! Flows in progress in SQLite (schema version 4). Every change runs in an
//! immediate transaction, which holds the database's write lock from its
//! start: a take or a compare-and-set cannot interleave with another, in this
//! process or another one on the same file.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{db, parse_ts, ts, SqliteStore};
use crate::store::pending::{key_of, kind_of};
use crate::store::{PendingCaps, PendingEntry, PendingKind, PendingPut, PendingStore, StoreError};

/// Schema version 4: the `pending` and `budget_events` tables.
pub(super) fn version_4(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS pending (
             kind       TEXT NOT NULL,
             key        BLOB NOT NULL,
             owner      TEXT NOT NULL,
             counts_until TEXT NOT NULL,
             payload    BLOB NOT NULL,
             version    INTEGER NOT NULL,
             created_at TEXT NOT NULL,
             forget_at  TEXT NOT NULL,
             PRIMARY KEY (kind, key)
         );
         CREATE INDEX IF NOT EXISTS pending_forget ON pending(forget_at);
         CREATE INDEX IF NOT EXISTS pending_owner ON pending(kind, owner);
         CREATE TABLE IF NOT EXISTS budget_events (
             budget TEXT NOT NULL,
             key    TEXT NOT NULL,
             at     TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS budget_events_key ON budget_events(budget, key, at);
         CREATE INDEX IF NOT EXISTS budget_events_at ON budget_events(budget, at);",
    )
    .map_err(db)
}

const COLUMNS: &str = "kind, key, owner, counts_until, payload, version, created_at, forget_at";

/// One row as read, before its columns are checked.
struct Raw {
    kind: String,
    key: Vec<u8>,
    owner: String,
    counts_until: String,
    payload: Vec<u8>,
    version: i64,
    created_at: String,
    forget_at: String,
}

fn entry_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        kind: r.get(0)?,
        key: r.get(1)?,
        owner: r.get(2)?,
        counts_until: r.get(3)?,
        payload: r.get(4)?,
        version: r.get(5)?,
        created_at: r.get(6)?,
        forget_at: r.get(7)?,
    })
}

fn decode(raw: Raw) -> Result<PendingEntry, StoreError> {
    Ok(PendingEntry {
        kind: kind_of(&raw.kind)?,
        key: key_of(&raw.key)?,
        owner: raw.owner,
        counts_until: parse_ts(&raw.counts_until)?,
        payload: raw.payload,
        version: raw.version,
        created_at: parse_ts(&raw.created_at)?,
        forget_at: parse_ts(&raw.forget_at)?,
    })
}

fn live(
    conn: &Connection,
    kind: PendingKind,
    key: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<PendingEntry>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM pending WHERE kind = ?1 AND key = ?2 AND forget_at > ?3"),
        params![kind.as_str(), &key[..], ts(now)],
        entry_of,
    )
    .optional()
    .map_err(db)?
    .map(decode)
    .transpose()
}

fn count(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<u32, StoreError> {
    let n: i64 = conn.query_row(sql, p, |r| r.get(0)).map_err(db)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

impl PendingStore for SqliteStore {
    fn pending_put(
        &self,
        entry: &PendingEntry,
        caps: &PendingCaps,
        now: DateTime<Utc>,
    ) -> Result<PendingPut, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        tx.execute(
            "DELETE FROM pending WHERE forget_at <= ?1",
            params![ts(now)],
        )
        .map_err(db)?;
        let kind = entry.kind.as_str();
        let total = count(
            &tx,
            "SELECT COUNT(*) FROM pending WHERE kind = ?1",
            params![kind],
        )?;
        let mine = count(
            &tx,
            "SELECT COUNT(*) FROM pending WHERE kind = ?1 AND owner = ?2 AND counts_until > ?3",
            params![kind, entry.owner, ts(now)],
        )?;
        if total >= caps.total || mine >= caps.per_owner {
            return Ok(PendingPut::Full);
        }
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO pending({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)
                     ON CONFLICT(kind, key) DO NOTHING"
                ),
                params![
                    kind,
                    &entry.key[..],
                    entry.owner,
                    ts(entry.counts_until),
                    entry.payload,
                    ts(entry.created_at),
                    ts(entry.forget_at)
                ],
            )
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(format!("pending {kind} entry")));
        }
        tx.commit().map_err(db)?;
        Ok(PendingPut::Stored)
    }

    fn pending_get(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingEntry>, StoreError> {
        live(&*self.conn()?, kind, key, now)
    }

    fn pending_list(
        &self,
        kind: PendingKind,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingEntry>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM pending WHERE kind = ?1 AND forget_at > ?2
                 ORDER BY created_at, key"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map(params![kind.as_str(), ts(now)], entry_of)
            .map_err(db)?;
        rows.map(|r| r.map_err(db).and_then(decode)).collect()
    }

    fn pending_take(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingEntry>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let found = live(&tx, kind, key, now)?;
        if found.is_some() {
            tx.execute(
                "DELETE FROM pending WHERE kind = ?1 AND key = ?2",
                params![kind.as_str(), &key[..]],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(found)
    }

    fn pending_update(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        version: i64,
        payload: &[u8],
        counts_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn()?
            .execute(
                "UPDATE pending SET payload = ?1, counts_until = ?2, version = version + 1
                 WHERE kind = ?3 AND key = ?4 AND version = ?5 AND forget_at > ?6",
                params![
                    payload,
                    ts(counts_until),
                    kind.as_str(),
                    &key[..],
                    version,
                    ts(now)
                ],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    fn pending_purge(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let gone = self
            .conn()?
            .execute(
                "DELETE FROM pending WHERE forget_at <= ?1",
                params![ts(now)],
            )
            .map_err(db)?;
        Ok(gone as u64)
    }
}
