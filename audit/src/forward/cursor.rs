//! The forwarders' own connection to the audit database: read events in order
//! after a sequence number (each with its checkpoint), find checkpoints signed
//! after their event was read, read the head, and keep each forwarder's durable
//! cursor in `forwarder_cursors` (outside the chain; see the module above).

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use chrono::{DateTime, Utc};

use super::Record;
use crate::checkpoint::Checkpoint;
use crate::event::decode_body;
use crate::store::{check_ids, seq_to_sql};
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

/// Whether this forwarder may send: on a log several CAs share, one
/// forwarder of a name sends at a time and the others stand by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lease {
    /// This process sends; `fresh` when it has just taken over (its cursor
    /// may have moved under another holder and must be read again).
    Held { fresh: bool },
    /// Another process holds it.
    Elsewhere,
}

/// What the forwarder's thread needs from the log: events after its cursor,
/// checkpoints, the head, and its durable cursor.
pub(super) trait Cursors: Send {
    /// The durable cursor of forwarder `name` (0: never confirmed anything).
    fn load(&mut self, name: &str) -> Result<u64, AuditError>;
    /// Move the durable cursor of `name` to `seq` (never backwards).
    fn save(&mut self, name: &str, seq: u64) -> Result<(), AuditError>;
    /// The log's last sequence number (0 when empty).
    fn head(&mut self) -> Result<u64, AuditError>;
    /// The chain hash of the event before `seq` (zeros before sequence 1).
    fn hash_before(&mut self, seq: u64) -> Result<[u8; 32], AuditError>;
    /// Up to `limit` events with `seq > after`, in order, each with its checkpoint.
    fn read_after(&mut self, after: u64, limit: u32) -> Result<Vec<Record>, AuditError>;
    /// The newest checkpoint with `after < seq <= upto`, as a checkpoint-only record.
    fn late_checkpoint(&mut self, after: u64, upto: u64) -> Result<Option<Record>, AuditError>;
    /// The newest checkpoint's sequence number at or before `upto` (0: none).
    fn checkpoint_upto(&mut self, upto: u64) -> Result<u64, AuditError>;
    /// Take or keep the right to send as `name`. A log one CA owns needs none.
    fn hold_lease(&mut self, _name: &str) -> Result<Lease, AuditError> {
        Ok(Lease::Held { fresh: false })
    }
}

/// The cursors of a forwarder on an SQLite log.
pub(super) struct SqliteCursors {
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
    check_ids(path, app, ver)?;
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

impl SqliteCursors {
    pub(super) fn open(path: &Path) -> Result<SqliteCursors, AuditError> {
        let conn = open_checked(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // The writer set WAL on the file; readers never block it, and cursor
        // commits need no fsync of their own (NORMAL): a lost cursor means resends.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Leave WAL checkpoints to the log's writer: a cursor save that happens to
        // cross the auto-checkpoint threshold would otherwise copy the whole WAL
        // into the database on the forwarder's thread and stall delivery.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.set_prepared_statement_cache_capacity(8);
        let mut me = SqliteCursors { conn };
        let tx = me
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(CURSOR_SCHEMA)?;
        tx.commit()?;
        Ok(me)
    }
}

impl Cursors for SqliteCursors {
    fn load(&mut self, name: &str) -> Result<u64, AuditError> {
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

    fn save(&mut self, name: &str, seq: u64) -> Result<(), AuditError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO forwarder_cursors (name, last_seq, updated_at)
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             ON CONFLICT (name) DO UPDATE
             SET last_seq = max(last_seq, excluded.last_seq), updated_at = excluded.updated_at",
        )?;
        st.execute(params![name, seq_to_sql(seq)?])?;
        Ok(())
    }

    /// The log's last sequence number (0 when empty).
    fn head(&mut self) -> Result<u64, AuditError> {
        let mut st = self.conn.prepare_cached("SELECT max(seq) FROM events")?;
        let v: Option<i64> = st.query_row([], |r| r.get(0))?;
        Ok(v.map(seq_from_sql).unwrap_or(0))
    }

    /// The chain hash of the event before `seq`: zeros before sequence 1, the
    /// stored row's hash, or (when retention pruned that row) the anchor's hash.
    fn hash_before(&mut self, seq: u64) -> Result<[u8; 32], AuditError> {
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

    /// Up to `limit` events with `seq > after`, in sequence order, each with the
    /// checkpoint stored for it (if any).
    fn read_after(&mut self, after: u64, limit: u32) -> Result<Vec<Record>, AuditError> {
        let mut st = self.conn.prepare_cached(
            "SELECT e.seq, e.body, e.hash, c.hash, c.time, c.signature FROM events e \
             LEFT JOIN checkpoints c ON c.seq = e.seq \
             WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
        )?;
        let mut rows = st.query(params![seq_to_sql(after)?, i64::from(limit)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(record(r)?);
        }
        Ok(out)
    }

    /// The newest checkpoint with `after < seq <= upto`, as a checkpoint-only
    /// record for the event it signs: a checkpoint signed after its event was sent.
    fn late_checkpoint(&mut self, after: u64, upto: u64) -> Result<Option<Record>, AuditError> {
        if upto <= after {
            return Ok(None);
        }
        let mut st = self.conn.prepare_cached(
            "SELECT e.seq, e.body, e.hash, c.hash, c.time, c.signature FROM checkpoints c \
             JOIN events e ON e.seq = c.seq \
             WHERE c.seq > ?1 AND c.seq <= ?2 ORDER BY c.seq DESC LIMIT 1",
        )?;
        let mut rows = st.query(params![seq_to_sql(after)?, seq_to_sql(upto)?])?;
        let Some(r) = rows.next()? else {
            return Ok(None);
        };
        let mut rec = record(r)?;
        rec.checkpoint_only = true;
        Ok(Some(rec))
    }

    /// The newest checkpoint's sequence number at or before `upto` (0: none).
    fn checkpoint_upto(&mut self, upto: u64) -> Result<u64, AuditError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT max(seq) FROM checkpoints WHERE seq <= ?1")?;
        let v: Option<i64> = st.query_row([seq_to_sql(upto)?], |r| r.get(0))?;
        Ok(v.map(seq_from_sql).unwrap_or(0))
    }
}

/// One row of `seq, body, hash` and the (possibly NULL) checkpoint columns
/// `hash, time, signature`.
fn record(r: &rusqlite::Row<'_>) -> Result<Record, AuditError> {
    let seq = seq_from_sql(r.get::<_, i64>(0)?);
    let corrupt = |reason: &str| AuditError::CorruptRow {
        seq,
        reason: reason.into(),
    };
    let body = match r.get_ref(1)? {
        ValueRef::Text(t) => t,
        _ => return Err(corrupt("body is not text")),
    };
    let hash = match r.get_ref(2)? {
        ValueRef::Blob(b) => b,
        _ => return Err(corrupt("hash is not a blob")),
    };
    let checkpoint = match r.get_ref(3)? {
        ValueRef::Null => None,
        ValueRef::Blob(b) => Some(StoredCheckpoint {
            hash: b,
            time: r.get(4)?,
            signature: r.get(5)?,
        }),
        _ => return Err(corrupt("checkpoint hash is not a blob")),
    };
    assemble(seq, body, hash, checkpoint)
}

/// A checkpoint's columns as stored.
pub(super) struct StoredCheckpoint<'a> {
    pub hash: &'a [u8],
    pub time: String,
    pub signature: String,
}

/// A [`Record`] from stored columns, whichever store they came from.
pub(super) fn assemble(
    seq: u64,
    body: &[u8],
    hash: &[u8],
    checkpoint: Option<StoredCheckpoint<'_>>,
) -> Result<Record, AuditError> {
    let corrupt = |reason: &str| AuditError::CorruptRow {
        seq,
        reason: reason.into(),
    };
    let hash = <[u8; 32]>::try_from(hash).map_err(|_| corrupt("hash is not 32 bytes"))?;
    let event = decode_body(seq, body, hash)?;
    let body = String::from_utf8(body.to_vec()).map_err(|e| AuditError::CorruptRow {
        seq,
        reason: format!("body: {e}"),
    })?;
    let checkpoint = match checkpoint {
        None => None,
        Some(cp) => {
            let cp_hash = <[u8; 32]>::try_from(cp.hash)
                .map_err(|_| corrupt("checkpoint hash is not 32 bytes"))?;
            let time = DateTime::parse_from_rfc3339(&cp.time)
                .map_err(|e| AuditError::CorruptRow {
                    seq,
                    reason: format!("checkpoint time: {e}"),
                })?
                .with_timezone(&Utc);
            // Sent as stored, even if it does not match: the SIEM copy is evidence,
            // and `verify` names the mismatch.
            Some(Checkpoint {
                seq,
                hash: cp_hash,
                time,
                signature: cp.signature,
            })
        }
    };
    Ok(Record {
        event,
        body,
        checkpoint,
        checkpoint_only: false,
    })
}
