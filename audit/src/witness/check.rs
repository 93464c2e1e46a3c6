//! Comparing an SQLite audit database with what was recorded elsewhere: every
//! line (or the newest) of a witness, or one expected head.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{read, Head, WitnessEntry, WitnessKind};
use crate::checkpoint::{checkpoint_message, verify_signature};
use crate::retention::{newest_anchor, Anchor};
use crate::store::{open_read_only, seq_to_sql};
use crate::AuditError;

/// How much of a witness [`check`] compares with the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Only the newest line (and the anchor): what a starting CA checks.
    Newest,
    /// Every line: what `rampart audit verify --witness` checks.
    All,
}

/// What [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessReport {
    /// The database's head (its last event).
    pub db_head: Head,
    /// The database's retention anchor, if it was ever pruned.
    pub anchor: Option<Anchor>,
    /// The witness's newest line (highest sequence) and its line number.
    pub witnessed_head: Option<(Head, u64)>,
    /// Lines compared with the database (and their signatures checked).
    pub lines_checked: u64,
    /// The first disagreement, in words, or `None`.
    pub problem: Option<String>,
}

impl WitnessReport {
    /// True when the database agrees with the witness.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// A stored chain hash as 32 bytes; anything else is a corrupt row, not a zero
/// hash (a zero would read as "the empty log" and could hide a cut).
pub(super) fn hash32(seq: u64, h: &[u8]) -> Result<[u8; 32], AuditError> {
    <[u8; 32]>::try_from(h).map_err(|_| AuditError::CorruptRow {
        seq,
        reason: "hash is not 32 bytes".into(),
    })
}

pub(super) fn seq_u64(seq: i64) -> Result<u64, AuditError> {
    u64::try_from(seq).map_err(|_| AuditError::CorruptRow {
        seq: 0,
        reason: format!("negative sequence number {seq}"),
    })
}

fn db_head(conn: &Connection) -> Result<Head, AuditError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match row {
        None => Head {
            seq: 0,
            hash: [0; 32],
        },
        Some((seq, hash)) => {
            let seq = seq_u64(seq)?;
            Head {
                seq,
                hash: hash32(seq, &hash)?,
            }
        }
    })
}

fn hash_at(conn: &Connection, seq: u64) -> Result<Option<[u8; 32]>, AuditError> {
    let mut st = conn.prepare_cached("SELECT hash FROM events WHERE seq = ?1")?;
    let h: Option<Vec<u8>> = st.query_row([seq_to_sql(seq)?], |r| r.get(0)).optional()?;
    h.map(|h| hash32(seq, &h)).transpose()
}

/// Where [`compare`] reads the chain hash stored at a sequence number.
pub(crate) type HashAt<'a> = dyn FnMut(u64) -> Result<Option<[u8; 32]>, AuditError> + 'a;

/// Compare one recorded position with the database; `what` names where it came
/// from (`the witness (line 7)`, `the expected head`).
pub(crate) fn compare(
    hash_at: &mut HashAt<'_>,
    db: &Head,
    anchor: Option<&Anchor>,
    want: &Head,
    what: &str,
) -> Result<Option<String>, AuditError> {
    if want.seq > db.seq {
        return Ok(Some(format!(
            "the audit database is behind {what}: the database's head is {db}, \
             but {what} recorded {want}; events after sequence {} were removed, \
             or the database was restored from an older copy",
            db.seq
        )));
    }
    let have = match anchor {
        // Pruned history cannot be compared; the anchor itself can.
        Some(a) if want.seq < a.seq => return Ok(None),
        Some(a) if want.seq == a.seq => Some(a.hash),
        _ if want.seq == 0 => Some([0; 32]),
        _ => hash_at(want.seq)?,
    };
    Ok(match have {
        None => Some(format!(
            "sequence {} recorded by {what} is missing from the audit database",
            want.seq
        )),
        Some(h) if h != want.hash => Some(format!(
            "the audit database disagrees with {what}: at sequence {} the chain's hash is {}, \
             but {what} recorded {} (the log was rewritten from there on, or {what} was altered)",
            want.seq,
            hex::encode(h),
            hex::encode(want.hash)
        )),
        Some(_) => None,
    })
}

/// Whether witness line `e` carries the audit key's signature over its
/// position: `None`, or the problem, naming the line as `what`.
pub(super) fn signature_problem(
    key: &ssh_key::PublicKey,
    e: &WitnessEntry,
    what: &str,
) -> Option<String> {
    let msg = checkpoint_message(e.seq, &e.hash, &e.time);
    let err = verify_signature(key, msg.as_bytes(), &e.signature).err()?;
    Some(format!(
        "{what}: the signature over sequence {} does not verify with the audit key \
         (the line was altered or forged): {err}",
        e.seq
    ))
}

/// Compare the database at `db` with witness `entries` (from [`read`]).
///
/// The database must not be behind the newest witnessed position, must hold the
/// witnessed hash at every witnessed sequence it still has (all lines with
/// [`Depth::All`], the newest with [`Depth::Newest`]), and a retention anchor in
/// the database must have been witnessed as an anchor. With `key`, the checked
/// lines' signatures are verified too, so an altered line is named even where
/// the database no longer reaches. Returns `Err` only when the database cannot
/// be read.
pub fn check(
    db: &Path,
    entries: &[WitnessEntry],
    key: Option<&ssh_key::PublicKey>,
    depth: Depth,
) -> Result<WitnessReport, AuditError> {
    let conn = open_read_only(db)?;
    // One snapshot for the head, the anchor and every lookup.
    conn.execute_batch("BEGIN")?;
    let head = db_head(&conn)?;
    let anchor = newest_anchor(&conn)?;
    let newest = entries
        .iter()
        .enumerate()
        .max_by_key(|(i, e)| (e.seq, *i))
        .map(|(_, e)| e);
    let mut report = WitnessReport {
        db_head: head,
        anchor: anchor.clone(),
        witnessed_head: newest.map(|e| {
            (
                Head {
                    seq: e.seq,
                    hash: e.hash,
                },
                e.line,
            )
        }),
        lines_checked: 0,
        problem: None,
    };
    let selected: Vec<&WitnessEntry> = match depth {
        Depth::All => entries.iter().collect(),
        Depth::Newest => newest.into_iter().collect(),
    };
    for e in selected {
        let what = format!("the witness (line {})", e.line);
        if let Some(p) = key.and_then(|k| signature_problem(k, e, &what)) {
            report.problem = Some(p);
            return Ok(report);
        }
        let want = Head {
            seq: e.seq,
            hash: e.hash,
        };
        if let Some(p) = compare(
            &mut |seq| hash_at(&conn, seq),
            &head,
            anchor.as_ref(),
            &want,
            &what,
        )? {
            report.problem = Some(p);
            return Ok(report);
        }
        report.lines_checked += 1;
    }
    if let Some(a) = &anchor {
        let witnessed = entries
            .iter()
            .any(|e| e.kind == WitnessKind::Anchor && e.seq == a.seq && e.hash == a.hash);
        if !witnessed {
            report.problem = Some(format!(
                "the audit database's retention anchor (sequence {} hash {}) was never \
                 witnessed: Rampart witnesses every anchor before it prunes, so this one was \
                 put there by someone else, and the history before it may have been deleted",
                a.seq,
                hex::encode(a.hash)
            ));
        }
    }
    Ok(report)
}

/// Read the witness at `witness` and [`check`] the database at `db` with it.
pub fn check_file(
    db: &Path,
    witness: &Path,
    key: Option<&ssh_key::PublicKey>,
    depth: Depth,
) -> Result<WitnessReport, AuditError> {
    let entries = read(witness)?;
    check(db, &entries, key, depth)
}

/// Whether the database at `db` has reached `expected` with the same hash
/// (`None`), or the reason it has not.
pub fn check_expected(db: &Path, expected: &Head) -> Result<Option<String>, AuditError> {
    let conn = open_read_only(db)?;
    conn.execute_batch("BEGIN")?;
    let head = db_head(&conn)?;
    let anchor = newest_anchor(&conn)?;
    compare(
        &mut |seq| hash_at(&conn, seq),
        &head,
        anchor.as_ref(),
        expected,
        "the expected head",
    )
}

/// The head (last event) of the audit database at `db`.
pub fn read_head(db: &Path) -> Result<Head, AuditError> {
    db_head(&open_read_only(db)?)
}
