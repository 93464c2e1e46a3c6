//! Where a witness starts: the positions a new one begins from, the refusal
//! of a missing or empty witness beside a log that has checkpoints (at open
//! and in `rampart-ca check`), and starting one over on purpose.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::check::{check_file, hash32, seq_u64};
use super::{append, is_absent, Depth, Head, WitnessKind};
use crate::retention::{newest_anchor, Anchor};
use crate::store::open_read_only;
use crate::AuditError;

/// The newest checkpoint stored in the database, if any (what a new witness
/// starts from), in the shape of an anchor (the same four signed fields).
fn newest_checkpoint(conn: &Connection) -> Result<Option<Anchor>, AuditError> {
    let row: Option<(i64, Vec<u8>, String, String)> = conn
        .query_row(
            "SELECT seq, hash, time, signature FROM checkpoints ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    row.map(|(seq, hash, time, signature)| {
        let seq = seq_u64(seq)?;
        Ok(Anchor {
            seq,
            hash: hash32(seq, &hash)?,
            time,
            signature,
        })
    })
    .transpose()
}

/// Where a new witness starts: the database's retention anchor (if it was ever
/// pruned) and its newest checkpoint, the two positions the old witness would
/// have held last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartPoints {
    /// The retention anchor, written first as an `anchor` line.
    pub anchor: Option<Anchor>,
    /// The newest checkpoint, written after it as a `checkpoint` line.
    pub checkpoint: Option<Anchor>,
}

impl StartPoints {
    /// True for a database that never signed a checkpoint (a new log): there is
    /// nothing a witness could have recorded, so nothing can be missing.
    pub fn is_empty(&self) -> bool {
        self.anchor.is_none() && self.checkpoint.is_none()
    }

    /// The highest of the two positions: the head a new witness starts from.
    pub fn newest(&self) -> Option<Head> {
        [self.anchor.as_ref(), self.checkpoint.as_ref()]
            .into_iter()
            .flatten()
            .max_by_key(|a| a.seq)
            .map(|a| Head {
                seq: a.seq,
                hash: a.hash,
            })
    }
}

/// The positions a new witness for the database at `db` starts from.
pub fn start_points(db: &Path) -> Result<StartPoints, AuditError> {
    let conn = open_read_only(db)?;
    // One snapshot for both.
    conn.execute_batch("BEGIN")?;
    Ok(StartPoints {
        anchor: newest_anchor(&conn)?,
        checkpoint: newest_checkpoint(&conn)?,
    })
}

fn write_start(witness: &Path, points: &StartPoints) -> Result<(), AuditError> {
    if let Some(a) = &points.anchor {
        append(
            witness,
            WitnessKind::Anchor,
            a.seq,
            &a.hash,
            &a.time,
            &a.signature,
        )?;
    }
    if let Some(c) = &points.checkpoint {
        append(
            witness,
            WitnessKind::Checkpoint,
            c.seq,
            &c.hash,
            &c.time,
            &c.signature,
        )?;
    }
    Ok(())
}

/// The refusal for a missing or empty witness beside a database that has
/// signed checkpoints. The database's own newest checkpoint proves nothing
/// about what came after it, so starting over from it would accept a log cut
/// back to any earlier checkpoint; only a deliberate [`restart`] does that.
pub(crate) fn absent_problem(witness: &Path, points: &StartPoints) -> Option<String> {
    let head = points.newest()?;
    Some(format!(
        "the audit witness {} is missing or empty, but the audit database holds signed \
         checkpoints up to {head}: the witness was deleted or emptied, which may mean the \
         log was cut back to an earlier checkpoint as well, and a new witness started from \
         the database would hide that",
        witness.display()
    ))
}

/// Start a new witness at `witness` from the database at `db` on purpose
/// (`rampart-ca witness-restart`): write its anchor and newest checkpoint as
/// the first lines. Refuses when the witness exists and is not empty (there is
/// nothing to restart; an operator who means to replace it moves it aside
/// first) and when the database has no checkpoint yet (a new log starts its
/// witness by itself). Returns what it wrote.
pub fn restart(db: &Path, witness: &Path) -> Result<StartPoints, AuditError> {
    let log = format!("the audit database {}", db.display());
    restart_with(witness, &log, || start_points(db))
}

/// What [`restart`] and [`super::restart_postgres`] share: refuse a witness
/// that is there, read where the log's witness starts (`points`), refuse a
/// log with no checkpoint yet (`log` names it), and write the first lines.
pub(super) fn restart_with(
    witness: &Path,
    log: &str,
    points: impl FnOnce() -> Result<StartPoints, AuditError>,
) -> Result<StartPoints, AuditError> {
    if !is_absent(witness)? {
        return Err(AuditError::Witness(format!(
            "{} exists and is not empty: there is nothing to restart (to replace it, \
             move it aside first and keep it as evidence)",
            witness.display()
        )));
    }
    let points = points()?;
    if points.is_empty() {
        return Err(AuditError::Witness(format!(
            "{log} has no checkpoint yet: there is nothing to witness, \
             and the CA begins {} by itself at its first checkpoint",
            witness.display()
        )));
    }
    write_start(witness, &points)?;
    Ok(points)
}

/// What the writer does when it opens a log with a witness: refuse a database
/// that is behind or disagrees with the witness's newest line, and refuse a
/// missing (or empty) witness beside a database that has checkpoints
/// ([`AuditError::WitnessMissing`]). Only a log with no checkpoint yet begins
/// its witness here (it is empty until the first checkpoint is committed).
pub(crate) fn open_check(
    db: &Path,
    witness: &Path,
    key: Option<&ssh_key::PublicKey>,
) -> Result<(), AuditError> {
    if is_absent(witness)? {
        let points = start_points(db)?;
        return match absent_problem(witness, &points) {
            Some(p) => Err(AuditError::WitnessMissing(p)),
            None => Ok(()),
        };
    }
    let report = check_file(db, witness, key, Depth::Newest)?;
    match report.problem {
        None => Ok(()),
        Some(p) => Err(AuditError::Witness(format!(
            "{p} (witness {})",
            witness.display()
        ))),
    }
}

/// `rampart-ca check`'s view of a missing or empty witness: the same refusal
/// `open` gives (`Some`), or `None` when the database has no checkpoint yet.
pub fn absent_check(db: &Path, witness: &Path) -> Result<Option<String>, AuditError> {
    if !is_absent(witness)? {
        return Ok(None);
    }
    Ok(absent_problem(witness, &start_points(db)?))
}
