//! The witness: every signed checkpoint (and every retention anchor) copied to an
//! append-only file outside the audit database, and the comparison of a database
//! with such a copy.
//!
//! **Owns:** the witness file format, appending to it (each line fsynced before
//! the call returns), reading it strictly, and [`check`] / [`check_expected`],
//! which say whether a database is behind, or disagrees with, a head recorded
//! elsewhere.
//! **Must never:** write to the audit database, or skip a line it cannot parse
//! (a damaged witness is reported, not guessed around).
//!
//! # Why
//!
//! The chain and its checkpoints prove that what the database holds was not
//! altered; they cannot prove that nothing was cut off. Whoever can write the
//! database can delete every event and checkpoint after checkpoint *K*, and what
//! is left is a perfectly valid, signed log that ends at *K*. Only a record of a
//! later head kept somewhere else shows the cut. The writer therefore appends each
//! checkpoint it commits to the witness file, and `verify`, `rampart-ca serve` and
//! `rampart-ca check` compare the database with the file's newest line.
//!
//! # Format
//!
//! One JSON object per line, each line ending in `\n`, the shape of the
//! checkpoint lines of a JSON Lines export:
//!
//! ```text
//! {"type":"checkpoint","seq":1200,"hash":"<64 hex>","time":"<canonical time>","signature":"-----BEGIN SSH SIGNATURE-----\n…"}
//! {"type":"anchor","seq":1000,"hash":"<64 hex>","time":"…","signature":"…"}
//! ```
//!
//! `signature` is the checkpoint's armored SSHSIG over the message described in
//! the crate documentation, so every line can be checked with the audit public
//! key alone. `checkpoint` lines are written after the checkpoint is committed
//! (a crash in between leaves the witness one checkpoint behind, never ahead);
//! `anchor` lines are written by retention pruning *before* the anchor row, so an
//! anchor in the database that the witness never saw was not made by Rampart.
//!
//! # What a witness proves, and what it does not
//!
//! With the witness, a database cut back to an earlier checkpoint (its head is
//! below the witnessed head), a chain rewritten from some point on (its hash at a
//! witnessed sequence differs), an `anchors` row copied from a checkpoint to make
//! the history before it deletable (the anchor was never witnessed), and an
//! altered witness line (its signature fails, or its hash is not the chain's) are
//! all detected. A witness file on the CA host is only as safe as that host:
//! whoever is root there can rewrite the file as well as the database. Keep a copy
//! where the CA host cannot write — the SIEM receives every event's `seq` and
//! `hash`, which is all `--expect-head` needs, and the witness file itself can be
//! shipped by a log agent.
//!
//! A log in PostgreSQL that several CAs share is compared the same way by
//! `postgres` (the newest line; there is no retention anchor there).

mod postgres;
pub(crate) use postgres::open_check_postgres;
pub use postgres::{check_postgres, restart_postgres, start_points_postgres};

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{checkpoint_message, verify_signature, Checkpoint};
use crate::event::canonical_time;
use crate::retention::{newest_anchor, Anchor};
use crate::store::{open_read_only, seq_to_sql};
use crate::AuditError;

/// What a witness line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitnessKind {
    /// A signed checkpoint the writer committed.
    Checkpoint,
    /// A checkpoint retention made the anchor (history before it may be pruned).
    Anchor,
}

impl WitnessKind {
    fn as_str(self) -> &'static str {
        match self {
            WitnessKind::Checkpoint => "checkpoint",
            WitnessKind::Anchor => "anchor",
        }
    }
}

/// One parsed witness line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessEntry {
    /// Its line number in the file (from 1).
    pub line: u64,
    /// Checkpoint or anchor.
    pub kind: WitnessKind,
    /// The chain position.
    pub seq: u64,
    /// The chain hash at `seq`.
    pub hash: [u8; 32],
    /// The event's canonical time (part of the signed message).
    pub time: String,
    /// The armored SSHSIG signature by the audit key.
    pub signature: String,
}

/// A chain position: a sequence number and the chain hash there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Sequence number (0: the empty log).
    pub seq: u64,
    /// Chain hash at `seq` (32 zero bytes for the empty log).
    pub hash: [u8; 32],
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sequence {} hash {}", self.seq, hex::encode(self.hash))
    }
}

impl Head {
    /// Parse `SEQ:HASH` (decimal sequence, 64 hex digits), the form
    /// `rampart audit verify` prints and `--expect-head` takes.
    pub fn parse(s: &str) -> Result<Head, AuditError> {
        let bad = |why: &str| AuditError::Config(format!("head {s:?}: {why} (expected SEQ:HASH)"));
        let (seq, hash) = s.trim().split_once(':').ok_or_else(|| bad("no ':'"))?;
        let seq: u64 = seq.parse().map_err(|_| bad("sequence is not a number"))?;
        let hash = parse_hash(hash).ok_or_else(|| bad("hash is not 64 hex digits"))?;
        Ok(Head { seq, hash })
    }
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let v = hex::decode(s).ok()?;
    <[u8; 32]>::try_from(v.as_slice()).ok()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    seq: u64,
    hash: String,
    time: String,
    signature: String,
}

/// Longest witness line accepted (a line is a few hundred bytes).
const MAX_LINE: usize = 16 * 1024;

/// Append one line to the witness at `path` (created with mode 0600 if missing)
/// and fsync it before returning.
pub fn append(
    path: &Path,
    kind: WitnessKind,
    seq: u64,
    hash: &[u8; 32],
    time: &str,
    signature: &str,
) -> Result<(), AuditError> {
    append_line(path, kind, seq, hash, time, signature, true)
}

/// [`append`] to a witness that must exist already: a missing file is an
/// error naming it, never a new witness.
pub(crate) fn append_existing(
    path: &Path,
    kind: WitnessKind,
    seq: u64,
    hash: &[u8; 32],
    time: &str,
    signature: &str,
) -> Result<(), AuditError> {
    append_line(path, kind, seq, hash, time, signature, false)
}

/// [`append`], creating the file only when `create` (else a missing file is
/// an error naming it).
fn append_line(
    path: &Path,
    kind: WitnessKind,
    seq: u64,
    hash: &[u8; 32],
    time: &str,
    signature: &str,
    create: bool,
) -> Result<(), AuditError> {
    let mut line = serde_json::to_string(&Line {
        kind: kind.as_str().to_owned(),
        seq,
        hash: hex::encode(hash),
        time: time.to_owned(),
        signature: signature.to_owned(),
    })
    .map_err(|e| AuditError::Witness(format!("encoding a witness line: {e}")))?;
    line.push('\n');
    let existed = path.exists();
    if !existed && !create {
        return Err(AuditError::Witness(format!(
            "{} has disappeared since this log began it; not starting a new one \
             (the CA refuses to start without it: docs/audit.md, \"When the CA \
             refuses to start\")",
            path.display()
        )));
    }
    let mut opts = OpenOptions::new();
    opts.append(true).create(create);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let io = |e: std::io::Error| AuditError::Witness(format!("{}: {e}", path.display()));
    let mut file = opts.open(path).map_err(io)?;
    // One write of the whole line: O_APPEND keeps concurrent lines whole.
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)?;
    if !existed {
        // A new file survives a power cut only once its directory entry does.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
    }
    Ok(())
}

/// Append a committed checkpoint.
pub fn append_checkpoint(path: &Path, cp: &Checkpoint) -> Result<(), AuditError> {
    append_checkpoint_to(path, cp, true)
}

/// Append a committed checkpoint, creating the file only when `create`.
pub(crate) fn append_checkpoint_to(
    path: &Path,
    cp: &Checkpoint,
    create: bool,
) -> Result<(), AuditError> {
    append_line(
        path,
        WitnessKind::Checkpoint,
        cp.seq,
        &cp.hash,
        &canonical_time(&cp.time),
        &cp.signature,
        create,
    )
}

/// Read every line of the witness at `path`. Any line that is not a witness
/// line (including a torn last line) is an error naming the line: a witness is
/// evidence, and evidence that does not parse is not silently skipped.
pub fn read(path: &Path) -> Result<Vec<WitnessEntry>, AuditError> {
    let file = File::open(path)
        .map_err(|e| AuditError::Witness(format!("cannot read {}: {e}", path.display())))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        let got = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| AuditError::Witness(format!("reading {}: {e}", path.display())))?;
        if got == 0 {
            break;
        }
        n += 1;
        let bad = |why: String| AuditError::Witness(format!("{} line {n}: {why}", path.display()));
        if buf.last() != Some(&b'\n') {
            return Err(bad(if buf.len() > MAX_LINE {
                format!("longer than {MAX_LINE} bytes")
            } else {
                "incomplete line (no newline at the end)".into()
            }));
        }
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let text = std::str::from_utf8(body).map_err(|e| bad(format!("not UTF-8 ({e})")))?;
        let line: Line =
            serde_json::from_str(text).map_err(|e| bad(format!("not a witness line ({e})")))?;
        let kind = match line.kind.as_str() {
            "checkpoint" => WitnessKind::Checkpoint,
            "anchor" => WitnessKind::Anchor,
            other => return Err(bad(format!("unknown type {other:?}"))),
        };
        let hash = parse_hash(&line.hash).ok_or_else(|| bad("hash is not 64 hex digits".into()))?;
        out.push(WitnessEntry {
            line: n,
            kind,
            seq: line.seq,
            hash,
            time: line.time,
            signature: line.signature,
        });
    }
    Ok(out)
}

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
fn hash32(seq: u64, h: &[u8]) -> Result<[u8; 32], AuditError> {
    <[u8; 32]>::try_from(h).map_err(|_| AuditError::CorruptRow {
        seq,
        reason: "hash is not 32 bytes".into(),
    })
}

fn seq_u64(seq: i64) -> Result<u64, AuditError> {
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
        if let Some(key) = key {
            let msg = checkpoint_message(e.seq, &e.hash, &e.time);
            if let Err(err) = verify_signature(key, msg.as_bytes(), &e.signature) {
                report.problem = Some(format!(
                    "{what}: the signature over sequence {} does not verify with the audit key \
                     (the line was altered or forged): {err}",
                    e.seq
                ));
                return Ok(report);
            }
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

/// Whether the witness at `path` is missing or empty: either way it records
/// nothing to compare a database with.
pub fn is_absent(path: &Path) -> Result<bool, AuditError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len() == 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(AuditError::Witness(format!("{}: {e}", path.display()))),
    }
}

pub(crate) fn write_start(witness: &Path, points: &StartPoints) -> Result<(), AuditError> {
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
    if !is_absent(witness)? {
        return Err(AuditError::Witness(format!(
            "{} exists and is not empty: there is nothing to restart (to replace it, \
             move it aside first and keep it as evidence)",
            witness.display()
        )));
    }
    let points = start_points(db)?;
    if points.is_empty() {
        return Err(AuditError::Witness(format!(
            "the audit database {} has no checkpoint yet: there is nothing to witness, \
             and the CA begins {} by itself at its first checkpoint",
            db.display(),
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
