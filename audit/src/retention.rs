//! Retention: prune events older than a window, leaving the rest provable from a
//! signed **anchor**.
//!
//! **Owns:** the `anchors` table, the relaxed delete triggers that allow removing
//! only rows at or before the newest anchor, and [`prune`].
//! **Must never:** delete an event that no signed checkpoint covers, the log's
//! last event (the writer continues the chain from it), or an event a forwarder
//! has not yet delivered.
//!
//! # How pruning stays provable
//!
//! Pruning picks the newest signed checkpoint `A` whose event is older than the
//! cut-off, copies it (seq, hash, time, signature) into `anchors`, then deletes
//! the events at or before `A.seq` and the checkpoints before it. `verify` then
//! starts from the newest anchor: it checks the anchor's signature with the audit
//! key (the same SSHSIG message as any checkpoint) and continues the chain from
//! `A.hash` at `A.seq + 1`. A forged anchor fails its signature; a removed row
//! after the anchor is a gap; a removed anchor leaves a chain that does not start
//! at 1 (reported as missing rows).
//!
//! ```text
//! CREATE TABLE anchors (seq INTEGER PRIMARY KEY, hash BLOB, time TEXT, signature TEXT) STRICT
//! -- append-only like the others
//! CREATE TRIGGER events_no_delete BEFORE DELETE ON events
//!     WHEN OLD.seq > coalesce((SELECT max(seq) FROM anchors), 0)
//!     BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
//! -- checkpoints: the same, with `>=` (the anchor's own checkpoint stays, so that
//! -- an export starting right after it finds its `prev_hash`)
//! ```
//!
//! The table and the relaxed triggers are installed by the first [`prune`], in
//! the same transaction as the first anchor, so a log that never prunes keeps the
//! original schema. Deletes run in short transactions of [`PRUNE_CHUNK`] rows so
//! the writer is never blocked for long; a crash in between leaves rows at or
//! before the anchor, which `verify` ignores and the next prune removes.
//!
//! Anchors are taken from existing checkpoints, so pruning needs no key.
//!
//! # What an anchor proves, and what it does not
//!
//! An anchor's signature proves that the chain really had hash `A.hash` at
//! `A.seq`, so the events after it are provably the ones that followed. It does
//! **not** prove that pruning up to `A` was ever decided: the anchor is a copy of
//! an ordinary checkpoint, so whoever can write the database can copy any
//! checkpoint into `anchors` (the table and its relaxed triggers are plain SQL),
//! delete the history before it, and still pass [`crate::verify`].
//! [`prune_witnessed`] therefore records each new anchor in the witness file
//! *before* storing it, and [`crate::witness::check`] fails a database whose
//! anchor the witness never saw.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::event::canonical_time;
use crate::store::{check_ids, seq_to_sql};
use crate::AuditError;

/// Rows deleted per transaction.
pub const PRUNE_CHUNK: u64 = 5_000;

const ANCHOR_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS anchors (
    seq       INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    hash      BLOB NOT NULL CHECK (length(hash) = 32),
    time      TEXT NOT NULL,
    signature TEXT NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS anchors_no_update BEFORE UPDATE ON anchors
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS anchors_no_delete BEFORE DELETE ON anchors
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
DROP TRIGGER IF EXISTS events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    WHEN OLD.seq > coalesce((SELECT max(seq) FROM anchors), 0)
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
DROP TRIGGER IF EXISTS checkpoints_no_delete;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
    WHEN OLD.seq >= coalesce((SELECT max(seq) FROM anchors), 0)
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
";

/// A signed chain position from which verification starts after pruning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// The last pruned sequence number (the anchor checkpoint's sequence).
    pub seq: u64,
    /// The chain hash at `seq`.
    pub hash: [u8; 32],
    /// That event's canonical time.
    pub time: String,
    /// The checkpoint's armored SSHSIG signature.
    pub signature: String,
}

/// What [`prune`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The anchor now in force (the newest), if any.
    pub anchor: Option<Anchor>,
    /// Whether this run created a new anchor.
    pub new_anchor: bool,
    /// Events deleted by this run.
    pub events_deleted: u64,
    /// Checkpoints deleted by this run.
    pub checkpoints_deleted: u64,
    /// Set when a forwarder's cursor held pruning back: (forwarder, cursor).
    pub held_by_forwarder: Option<(String, u64)>,
}

fn open_rw(path: &Path) -> Result<Connection, AuditError> {
    if !path.exists() {
        return Err(AuditError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} does not exist", path.display()),
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let ver: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    check_ids(path, app, ver)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, AuditError> {
    Ok(conn
        .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1")?
        .exists([name])?)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The newest anchor in the database behind `conn`, if the log was ever pruned.
pub(crate) fn newest_anchor(conn: &Connection) -> Result<Option<Anchor>, AuditError> {
    if !table_exists(conn, "anchors")? {
        return Ok(None);
    }
    let row = conn
        .query_row(
            "SELECT seq, hash, time, signature FROM anchors ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((seq, hash, time, signature)) = row else {
        return Ok(None);
    };
    let seq = to_u64(seq);
    let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| AuditError::CorruptRow {
        seq,
        reason: "anchor hash is not 32 bytes".into(),
    })?;
    Ok(Some(Anchor {
        seq,
        hash,
        time,
        signature,
    }))
}

/// The hash of the anchor at exactly `seq`, if there is one.
pub(crate) fn anchor_hash(conn: &Connection, seq: u64) -> Result<Option<[u8; 32]>, AuditError> {
    if !table_exists(conn, "anchors")? {
        return Ok(None);
    }
    let h: Option<Vec<u8>> = conn
        .query_row(
            "SELECT hash FROM anchors WHERE seq = ?1",
            [seq_to_sql(seq)?],
            |r| r.get(0),
        )
        .optional()?;
    Ok(h.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()))
}

/// The newest anchor of the audit database at `path` (read-only).
pub fn read_anchor(path: &Path) -> Result<Option<Anchor>, AuditError> {
    let conn = crate::store::open_read_only(path)?;
    newest_anchor(&conn)
}

/// Delete the events older than `cutoff` (event time strictly before it), up to
/// the newest signed checkpoint among them, which becomes the anchor. Never
/// deletes the log's last event, nor an event past the lowest forwarder cursor
/// (a forwarder that has not delivered it yet). Safe to run beside the writer
/// and the forwarders; safe to re-run after a crash.
pub fn prune(path: &Path, cutoff: DateTime<Utc>) -> Result<PruneReport, AuditError> {
    prune_witnessed(path, cutoff, None)
}

/// [`prune`], recording a new anchor in the `witness` file (see
/// [`crate::witness`]) before it is stored, so that `verify --witness` can tell
/// this anchor from one copied in by hand. A witness that cannot be written
/// stops the prune before anything is deleted.
pub fn prune_witnessed(
    path: &Path,
    cutoff: DateTime<Utc>,
    witness: Option<&Path>,
) -> Result<PruneReport, AuditError> {
    let mut conn = open_rw(path)?;
    let mut report = PruneReport::default();
    let cutoff = canonical_time(&cutoff);

    // 1. Choose and record the anchor (one IMMEDIATE transaction).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head: Option<i64> = tx.query_row("SELECT max(seq) FROM events", [], |r| r.get(0))?;
    let head = to_u64(head.unwrap_or(0));
    let mut limit = head.saturating_sub(1);
    if table_exists(&tx, "forwarder_cursors")? {
        let low: Option<(String, i64)> = tx
            .query_row(
                "SELECT name, last_seq FROM forwarder_cursors ORDER BY last_seq ASC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((name, cursor)) = low {
            let cursor = to_u64(cursor);
            if cursor < limit {
                limit = cursor;
                report.held_by_forwarder = Some((name, cursor));
            }
        }
    }
    let current = newest_anchor(&tx)?;
    let candidate = tx
        .query_row(
            "SELECT seq, hash, time, signature FROM checkpoints
             WHERE seq <= ?1 AND time < ?2 ORDER BY seq DESC LIMIT 1",
            params![seq_to_sql(limit)?, cutoff],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()?;
    let mut anchor = current.clone();
    if let Some((seq, hash, time, signature)) = candidate {
        let seq = to_u64(seq);
        if current.as_ref().is_none_or(|a| a.seq < seq) {
            let hash =
                <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| AuditError::CorruptRow {
                    seq,
                    reason: "checkpoint hash is not 32 bytes".into(),
                })?;
            if let Some(w) = witness {
                // Before the row: a crash in between leaves a witnessed anchor
                // the database never got, which is harmless (nothing was pruned).
                // An anchor is a checkpoint, and a log with checkpoints began
                // its witness long ago: a missing file was deleted, and
                // pruning must not begin a new one (that is `witness::restart`,
                // a deliberate, audited step).
                crate::witness::append_existing(
                    w,
                    crate::witness::WitnessKind::Anchor,
                    seq,
                    &hash,
                    &time,
                    &signature,
                )?;
            }
            tx.execute_batch(ANCHOR_SCHEMA)?;
            tx.execute(
                "INSERT INTO anchors (seq, hash, time, signature) VALUES (?1, ?2, ?3, ?4)",
                params![seq_to_sql(seq)?, &hash[..], time, signature],
            )?;
            anchor = Some(Anchor {
                seq,
                hash,
                time,
                signature,
            });
            report.new_anchor = true;
        }
    }
    tx.commit()?;
    report.anchor = anchor.clone();
    let Some(anchor) = anchor else {
        return Ok(report);
    };

    // 2. Delete in short transactions so the writer waits at most one chunk.
    let upto = seq_to_sql(anchor.seq)?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM events WHERE seq IN
             (SELECT seq FROM events WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
            params![upto, i64::try_from(PRUNE_CHUNK).unwrap_or(5_000)],
        )?;
        tx.commit()?;
        report.events_deleted += n as u64;
        if (n as u64) < PRUNE_CHUNK {
            break;
        }
    }
    report.checkpoints_deleted =
        conn.execute("DELETE FROM checkpoints WHERE seq < ?1", [upto])? as u64;
    if report.events_deleted > 0 {
        tracing::info!(
            anchor = anchor.seq,
            events = report.events_deleted,
            checkpoints = report.checkpoints_deleted,
            "audit retention pruned old events"
        );
    }
    if let Some((name, cursor)) = &report.held_by_forwarder {
        tracing::warn!(forwarder = %name, cursor,
            "audit retention held back: a forwarder has not delivered older events yet");
    }
    Ok(report)
}

/// Parse a retention window: `90d`, `12h`, `30m`, `2w`, or `forever`.
/// `None` means keep forever.
pub fn parse_retention(s: &str) -> Result<Option<chrono::Duration>, AuditError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("forever") || t.is_empty() {
        return Ok(None);
    }
    let bad = || {
        AuditError::Config(format!(
            "retention {s:?}: expected a number followed by m, h, d or w (e.g. \"90d\"), or \"forever\""
        ))
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    let d = match unit {
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    // Shorter than an hour would prune faster than checkpoints are signed.
    if d < chrono::Duration::hours(1) {
        return Err(AuditError::Config(format!(
            "retention {s:?} is shorter than one hour"
        )));
    }
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_windows_parse() {
        assert_eq!(parse_retention("forever").unwrap(), None);
        assert_eq!(
            parse_retention("90d").unwrap(),
            Some(chrono::Duration::days(90))
        );
        assert_eq!(
            parse_retention("12h").unwrap(),
            Some(chrono::Duration::hours(12))
        );
        assert_eq!(
            parse_retention("2w").unwrap(),
            Some(chrono::Duration::weeks(2))
        );
        for bad in [
            "90",
            "d",
            "0d",
            "-1d",
            "5s",
            "30m",
            "1y",
            "9999999999999999w",
        ] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }
}
