//! The forwarders' own connection to the audit database: read events in order
//! after a sequence number, read the head, and keep each forwarder's durable
//! cursor in `forwarder_cursors` (outside the chain; see the module above).

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::Record;
use crate::event::decode_body;
use crate::store::{seq_to_sql, APPLICATION_ID, SCHEMA_VERSION};
use crate::AuditError;

/// Name of the cursor table in the audit database.
pub const CURSOR_TABLE: &str = "forwarder_cursors";

const CURSOR_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS forwarder_cursors (
    name       TEXT PRIMARY KEY NOT NULL,
    last_seq   INTEGER NOT NULL CHECK (last_seq >= 0),
    updated_at TEXT NOT NULL
) STRICT;
";

pub(super) struct CursorStore {
    conn: Connection,
}

fn open_checked(path: &Path, flags: OpenFlags) -> Result<Connection, AuditError> {
    if !path.exists() {
        return Err(AuditError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} does not exist", path.display()),
        )));
    }
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let ver: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app != APPLICATION_ID || ver != SCHEMA_VERSION {
        return Err(AuditError::Format(format!(
            "{}: application_id {app:#x}, version {ver}",
            path.display()
        )));
    }
    Ok(conn)
}

fn seq_from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The durable cursor of forwarder `name` in the audit database at `path`
/// (0 when it has never confirmed anything). Read-only; for tools and tests.
pub fn read_cursor(path: &Path, name: &str) -> Result<u64, AuditError> {
    let conn = open_checked(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let exists: bool = conn
        .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1")?
        .exists([CURSOR_TABLE])?;
    if !exists {
        return Ok(0);
    }
    let v: Option<i64> = conn
        .query_row(
            "SELECT last_seq FROM forwarder_cursors WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.map(seq_from_sql).unwrap_or(0))
}

impl CursorStore {
    pub(super) fn open(path: &Path) -> Result<CursorStore, AuditError> {
        let conn = open_checked(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // The writer set WAL on the file; readers never block it, and cursor
        // commits need no fsync of their own (NORMAL): a lost cursor means resends.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Leave WAL checkpoints to the log's writer: a cursor save that happens to
        // cross the auto-checkpoint threshold would otherwise copy the whole WAL
        // into the database on the forwarder's thread and stall delivery.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.set_prepared_statement_cache_capacity(8);
        let mut me = CursorStore { conn };
        let tx = me
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(CURSOR_SCHEMA)?;
        tx.commit()?;
        Ok(me)
    }

    pub(super) fn load(&mut self, name: &str) -> Result<u64, AuditError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT last_seq FROM forwarder_cursors WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.map(seq_from_sql).unwrap_or(0))
    }

    pub(super) fn save(&mut self, name: &str, seq: u64) -> Result<(), AuditError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO forwarder_cursors (name, last_seq, updated_at)
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             ON CONFLICT (name) DO UPDATE
             SET last_seq = excluded.last_seq, updated_at = excluded.updated_at",
        )?;
        st.execute(params![name, seq_to_sql(seq)?])?;
        Ok(())
    }

    /// The log's last sequence number (0 when empty).
    pub(super) fn head(&mut self) -> Result<u64, AuditError> {
        let mut st = self.conn.prepare_cached("SELECT max(seq) FROM events")?;
        let v: Option<i64> = st.query_row([], |r| r.get(0))?;
        Ok(v.map(seq_from_sql).unwrap_or(0))
    }

    /// The chain hash of the event before `seq`: zeros before sequence 1, the
    /// stored row's hash, or (when retention pruned that row) the anchor's hash.
    pub(super) fn hash_before(&mut self, seq: u64) -> Result<[u8; 32], AuditError> {
        let Some(prev) = seq.checked_sub(1).filter(|p| *p > 0) else {
            return Ok([0; 32]);
        };
        let mut st = self
            .conn
            .prepare_cached("SELECT hash FROM events WHERE seq = ?1")?;
        let h: Option<Vec<u8>> = st.query_row([seq_to_sql(prev)?], |r| r.get(0)).optional()?;
        let h = match h {
            Some(h) => Some(h),
            None => crate::retention::anchor_hash(&self.conn, prev)?.map(|h| h.to_vec()),
        };
        h.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .ok_or_else(|| AuditError::CorruptRow {
                seq: prev,
                reason: "no stored hash (row missing and no anchor)".into(),
            })
    }

    /// Up to `limit` events with `seq > after`, in sequence order.
    pub(super) fn read_after(&mut self, after: u64, limit: u32) -> Result<Vec<Record>, AuditError> {
        let mut st = self.conn.prepare_cached(
            "SELECT seq, body, hash FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = st.query(params![seq_to_sql(after)?, i64::from(limit)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let seq = seq_from_sql(r.get::<_, i64>(0)?);
            let body = match r.get_ref(1)? {
                ValueRef::Text(t) => t,
                _ => {
                    return Err(AuditError::CorruptRow {
                        seq,
                        reason: "body is not text".into(),
                    })
                }
            };
            let hash = match r.get_ref(2)? {
                ValueRef::Blob(b) => <[u8; 32]>::try_from(b).ok(),
                _ => None,
            }
            .ok_or_else(|| AuditError::CorruptRow {
                seq,
                reason: "hash is not 32 bytes".into(),
            })?;
            let event = decode_body(seq, body, hash)?;
            let body = String::from_utf8(body.to_vec()).map_err(|e| AuditError::CorruptRow {
                seq,
                reason: format!("body: {e}"),
            })?;
            out.push(Record { event, body });
        }
        Ok(out)
    }
}
