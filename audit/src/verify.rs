//! `verify`: re-walk the chain from genesis and check every row and checkpoint.
//!
//! Why this can run in parallel: the chain condition "hash(n) = SHA-256(hash(n-1) ‖
//! body(n))" is checked row by row against the *stored* previous hash. If every
//! row passes, by induction every stored hash equals the one recomputed from
//! genesis; and at the first row that fails, all earlier stored hashes were
//! right, so the failure names the same sequence number a sequential re-walk
//! would. The reading thread streams rows from SQLite in sequence order, checks
//! what is inherently sequential (gaps, duplicates, which checkpoint belongs to
//! which row), and hands chunks of rows to worker threads that hash and parse
//! them; results are folded back in order, so the first problem is reported.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use rusqlite::Rows;

use crate::checkpoint::{checkpoint_message, verify_signature};
use crate::event::{chain_hash, BodyView, BODY_VERSION};
use crate::store::{open_read_only, serial_from_sql};
use crate::AuditError;

/// Result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked and found good (before the first problem, if any).
    pub events: u64,
    /// Checkpoints checked and found good.
    pub checkpoints: u64,
    /// The last good sequence number.
    pub last_seq: u64,
    /// The last good checkpoint's sequence number (0 if none): events after it are
    /// chained but not yet covered by a signature, so a cut there would not show.
    pub last_checkpoint_seq: u64,
    /// Whether checkpoint signatures were checked (a public key was given).
    pub signatures_checked: bool,
    /// The first problem found, or `None` if the log verified.
    pub problem: Option<VerifyProblem>,
    /// After retention pruned the log: the anchor the chain was verified from
    /// (its signature checked when a public key was given). `None`: from genesis.
    pub anchor: Option<crate::retention::Anchor>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// The first bad sequence number and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The first sequence number at which the log is not what was written.
    pub seq: u64,
    /// Why, in words (`hash mismatch (event altered)`).
    pub reason: String,
}

impl fmt::Display for VerifyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sequence {}: {}", self.seq, self.reason)
    }
}

fn problem(seq: u64, reason: String) -> VerifyProblem {
    VerifyProblem { seq, reason }
}

/// Rows per chunk handed to a worker.
const CHUNK_ROWS: usize = 2048;

/// A column value copied out of SQLite into the chunk's byte arena.
#[derive(Clone, Copy, Debug)]
enum Col {
    Null,
    Text(u32, u32),
    Int(i64),
    Other,
}

#[derive(Debug)]
struct RowRec {
    seq: u64,
    id: Col,
    time: Col,
    kind: Col,
    user: Col,
    serial: Col,
    body: Col,
    hash: Option<[u8; 32]>,
}

#[derive(Debug)]
struct CpRec {
    seq: i64,
    hash: Option<[u8; 32]>,
    time: Option<String>,
    signature: Option<String>,
}

#[derive(Debug, Default)]
struct Chunk {
    index: u64,
    /// Stored hash of the row before this chunk's first row (zeros at genesis).
    prev: [u8; 32],
    buf: Vec<u8>,
    rows: Vec<RowRec>,
    /// Checkpoints matched to a row of this chunk, by row index.
    checkpoints: Vec<(usize, CpRec)>,
    /// A problem the reader found after the last row (gap, duplicate, cut tail…).
    trailing: Option<VerifyProblem>,
}

#[derive(Debug, Default)]
struct ChunkResult {
    rows_ok: u64,
    last_seq: u64,
    checkpoints_ok: u64,
    last_checkpoint_seq: u64,
    problem: Option<VerifyProblem>,
}

impl Chunk {
    fn push_col(&mut self, v: ValueRef<'_>) -> Col {
        match v {
            ValueRef::Null => Col::Null,
            ValueRef::Integer(i) => Col::Int(i),
            ValueRef::Text(t) => {
                let start = self.buf.len();
                self.buf.extend_from_slice(t);
                match (u32::try_from(start), u32::try_from(t.len())) {
                    (Ok(s), Ok(l)) => Col::Text(s, l),
                    _ => Col::Other,
                }
            }
            _ => Col::Other,
        }
    }

    fn text(&self, c: Col) -> Option<&[u8]> {
        match c {
            Col::Text(s, l) => {
                let r: Range<usize> = (s as usize)..(s as usize + l as usize);
                self.buf.get(r)
            }
            _ => None,
        }
    }
}

fn next_cp(rows: &mut Rows<'_>) -> Result<Option<CpRec>, AuditError> {
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let text = |v: ValueRef<'_>| match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::to_owned),
        _ => None,
    };
    Ok(Some(CpRec {
        seq: match r.get_ref(0)? {
            ValueRef::Integer(i) => i,
            _ => -1,
        },
        hash: match r.get_ref(1)? {
            ValueRef::Blob(b) => <[u8; 32]>::try_from(b).ok(),
            _ => None,
        },
        time: text(r.get_ref(2)?),
        signature: text(r.get_ref(3)?),
    }))
}

/// Folds chunk results into the report in chunk order, up to the first problem.
#[derive(Debug, Default)]
struct Folder {
    pending: BTreeMap<u64, ChunkResult>,
    next: u64,
    done: bool,
}

impl Folder {
    fn add(&mut self, index: u64, r: ChunkResult, report: &mut VerifyReport) {
        self.pending.insert(index, r);
        while let Some(r) = self.pending.remove(&self.next) {
            self.next += 1;
            if self.done {
                continue;
            }
            report.events += r.rows_ok;
            report.checkpoints += r.checkpoints_ok;
            if r.rows_ok > 0 {
                report.last_seq = r.last_seq;
            }
            if r.checkpoints_ok > 0 {
                report.last_checkpoint_seq = r.last_checkpoint_seq;
            }
            if r.problem.is_some() {
                report.problem = r.problem;
                self.done = true;
            }
        }
    }
}

/// Check one chunk: every row, then its checkpoints, then the trailing problem,
/// in sequence order, stopping at the first problem.
fn check_chunk(chunk: &Chunk, key: Option<&ssh_key::PublicKey>) -> ChunkResult {
    let mut res = ChunkResult::default();
    let mut prev = chunk.prev;
    let mut cps = chunk.checkpoints.iter().peekable();
    for (i, row) in chunk.rows.iter().enumerate() {
        if let Err(p) = check_row(chunk, row, &prev) {
            res.problem = Some(p);
            return res;
        }
        // `check_row` proved hash == SHA-256(prev ‖ body).
        let hash = row.hash.unwrap_or([0; 32]);
        while let Some((_, cp)) = cps.next_if(|(idx, _)| *idx == i) {
            let time = chunk
                .text(row.time)
                .and_then(|t| std::str::from_utf8(t).ok())
                .unwrap_or("");
            if cp.hash != Some(hash) {
                res.problem = Some(problem(
                    row.seq,
                    "checkpoint hash does not match the chain".into(),
                ));
                return res;
            }
            if cp.time.as_deref() != Some(time) {
                res.problem = Some(problem(
                    row.seq,
                    "checkpoint time does not match the event".into(),
                ));
                return res;
            }
            if let Some(key) = key {
                let msg = checkpoint_message(row.seq, &hash, time);
                let sig = cp.signature.as_deref().unwrap_or("");
                if let Err(e) = verify_signature(key, msg.as_bytes(), sig) {
                    res.problem = Some(problem(
                        row.seq,
                        format!("checkpoint signature invalid ({e})"),
                    ));
                    return res;
                }
            }
            res.checkpoints_ok += 1;
            res.last_checkpoint_seq = row.seq;
        }
        prev = hash;
        res.rows_ok += 1;
        res.last_seq = row.seq;
    }
    res.problem = chunk.trailing.clone();
    res
}

fn check_row(chunk: &Chunk, row: &RowRec, prev: &[u8; 32]) -> Result<(), VerifyProblem> {
    let seq = row.seq;
    let Some(body) = chunk.text(row.body) else {
        return Err(problem(seq, "body is not text".into()));
    };
    let computed = chain_hash(prev, body);
    // One UTF-8 check of the whole body (fast on ASCII), then a parser that does
    // not re-validate every string: cheaper than `from_slice`.
    let view: Result<BodyView<'_>, String> = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Ok(v) = &view {
        if v.seq != seq {
            return Err(problem(
                seq,
                format!(
                    "event body belongs at sequence {} (rows swapped, moved or duplicated)",
                    v.seq
                ),
            ));
        }
    }
    if row.hash != Some(computed) {
        return Err(problem(seq, "hash mismatch (event altered)".into()));
    }
    let v = view.map_err(|e| problem(seq, format!("body is not a valid event: {e}")))?;
    if v.v != BODY_VERSION {
        return Err(problem(seq, format!("unsupported body version {}", v.v)));
    }
    // The indexed copies must say what the body says, or queries would lie.
    let same = |c: Col, s: Option<&str>| match (chunk.text(c), s) {
        (Some(a), Some(b)) => a == b.as_bytes(),
        (None, None) => matches!(c, Col::Null),
        _ => false,
    };
    let col = if !same(row.id, Some(&v.id)) {
        Some("id")
    } else if !same(row.time, Some(&v.time)) {
        Some("time")
    } else if !same(row.kind, Some(&v.kind)) {
        Some("kind")
    } else if !same(row.user, v.user.as_deref()) {
        Some("user")
    } else if !match row.serial {
        Col::Null => v.serial.is_none(),
        Col::Int(i) => v.serial == Some(serial_from_sql(i)),
        _ => false,
    } {
        Some("serial")
    } else {
        None
    };
    match col {
        Some(col) => Err(problem(
            seq,
            format!("indexed column `{col}` does not match the event body"),
        )),
        None => Ok(()),
    }
}

/// Verify the log at `path`: recompute every hash from genesis (or, after
/// retention pruned it, from the newest signed anchor), check that
/// sequence numbers are gap-free and each body belongs at its position, that the
/// indexed columns agree with the body, and that every checkpoint matches the
/// chain (and, with `audit_pubkey`, carries a valid signature). Opens the database
/// read-only and streams rows (memory use is bounded by a few chunks in flight,
/// whatever the log's size); hashing and parsing use all available cores.
///
/// Returns `Err` only when the database cannot be read; a tampered log is
/// `Ok(report)` with `report.problem` naming the first bad sequence number.
pub fn verify(
    path: &Path,
    audit_pubkey: Option<&ssh_key::PublicKey>,
) -> Result<VerifyReport, AuditError> {
    let conn = open_read_only(path)?;
    // One read transaction, so events and checkpoints are one consistent snapshot
    // even while a writer appends.
    conn.execute_batch("BEGIN")?;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let key = audit_pubkey.cloned().map(Arc::new);

    let mut report = VerifyReport {
        events: 0,
        checkpoints: 0,
        last_seq: 0,
        last_checkpoint_seq: 0,
        signatures_checked: audit_pubkey.is_some(),
        problem: None,
        anchor: None,
    };

    // After pruning, the chain starts right after the newest anchor, from its hash.
    let anchor = crate::retention::newest_anchor(&conn)?;
    let (start_seq, start_hash) = anchor.as_ref().map_or((0, [0u8; 32]), |a| (a.seq, a.hash));
    if let Some(a) = &anchor {
        if let Some(key) = audit_pubkey {
            let msg = checkpoint_message(a.seq, &a.hash, &a.time);
            if let Err(e) = verify_signature(key, msg.as_bytes(), &a.signature) {
                report.problem = Some(problem(
                    a.seq,
                    format!("retention anchor signature invalid ({e})"),
                ));
                return Ok(report);
            }
        }
        report.anchor = Some(a.clone());
    }

    std::thread::scope(|s| -> Result<(), AuditError> {
        // Bounded queue: the reader never runs more than a few chunks ahead.
        let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(workers * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (res_tx, res_rx) = mpsc::channel::<(u64, ChunkResult)>();
        for _ in 0..workers {
            let work_rx = Arc::clone(&work_rx);
            let res_tx = res_tx.clone();
            let key = key.clone();
            s.spawn(move || loop {
                let next = work_rx
                    .lock()
                    .map_err(|_| ())
                    .and_then(|rx| rx.recv().map_err(|_| ()));
                let Ok(chunk) = next else { return };
                let r = check_chunk(&chunk, key.as_deref());
                if res_tx.send((chunk.index, r)).is_err() {
                    return;
                }
            });
        }
        drop(res_tx);

        // Fold results strictly in chunk order.
        let mut folder = Folder::default();
        let read = (|| -> Result<u64, AuditError> {
            // Rows at or before the anchor are leftovers of an interrupted prune.
            let mut ev_stmt = conn.prepare(
                "SELECT seq, id, time, kind, user, serial, body, hash FROM events \
                 WHERE seq > ?1 ORDER BY seq",
            )?;
            let mut cp_stmt = conn.prepare(
                "SELECT seq, hash, time, signature FROM checkpoints WHERE seq > ?1 ORDER BY seq",
            )?;
            let from = crate::store::seq_to_sql(start_seq)?;
            let mut cps = cp_stmt.query([from])?;
            let mut cp = next_cp(&mut cps)?;
            let mut rows = ev_stmt.query([from])?;
            let mut last = start_seq;
            let mut prev = start_hash;
            let mut index = 0u64;
            let mut chunk = Chunk {
                index,
                prev,
                ..Chunk::default()
            };
            let mut stop = false;
            while !stop {
                let Some(r) = rows.next()? else { break };
                let expected = last + 1;
                let seq = match r.get_ref(0)? {
                    ValueRef::Integer(i) => i,
                    _ => {
                        chunk.trailing = Some(problem(
                            expected,
                            "sequence column is not an integer".into(),
                        ));
                        break;
                    }
                };
                let seq_u = u64::try_from(seq).unwrap_or(0);
                if seq_u < expected {
                    chunk.trailing = Some(if seq_u == last && seq_u != 0 {
                        problem(seq_u, "duplicated row".into())
                    } else {
                        problem(
                            expected,
                            format!("unexpected sequence number {seq} (rows out of order)"),
                        )
                    });
                    break;
                }
                if seq_u > expected {
                    chunk.trailing = Some(problem(
                        expected,
                        format!("missing (row deleted; next row is sequence {seq_u})"),
                    ));
                    break;
                }
                let rec = RowRec {
                    seq: seq_u,
                    id: chunk.push_col(r.get_ref(1)?),
                    time: chunk.push_col(r.get_ref(2)?),
                    kind: chunk.push_col(r.get_ref(3)?),
                    user: chunk.push_col(r.get_ref(4)?),
                    serial: chunk.push_col(r.get_ref(5)?),
                    body: chunk.push_col(r.get_ref(6)?),
                    hash: match r.get_ref(7)? {
                        ValueRef::Blob(b) => <[u8; 32]>::try_from(b).ok(),
                        _ => None,
                    },
                };
                prev = rec.hash.unwrap_or([0; 32]);
                chunk.rows.push(rec);
                let row_index = chunk.rows.len() - 1;
                // Attach the checkpoint(s) for this row; one for a missing row is a problem.
                while let Some(c) = cp.take() {
                    if c.seq < seq {
                        chunk.trailing = Some(problem(
                            u64::try_from(c.seq).unwrap_or(0),
                            "checkpoint for a sequence number that is not in the chain".into(),
                        ));
                        stop = true;
                        break;
                    }
                    if c.seq > seq {
                        cp = Some(c);
                        break;
                    }
                    chunk.checkpoints.push((row_index, c));
                    cp = next_cp(&mut cps)?;
                }
                last = seq_u;
                if chunk.rows.len() >= CHUNK_ROWS && !stop {
                    index += 1;
                    let full = std::mem::replace(
                        &mut chunk,
                        Chunk {
                            index,
                            prev,
                            ..Chunk::default()
                        },
                    );
                    if work_tx.send(full).is_err() {
                        break;
                    }
                    while let Ok((i, r)) = res_rx.try_recv() {
                        folder.add(i, r, &mut report);
                    }
                    if folder.done {
                        break;
                    }
                }
            }
            if chunk.trailing.is_none() {
                if let Some(c) = cp {
                    chunk.trailing = Some(problem(
                        last + 1,
                        format!(
                            "log ends at sequence {last} but a checkpoint was signed at sequence {} (tail removed)",
                            c.seq
                        ),
                    ));
                }
            }
            let _ = work_tx.send(chunk);
            Ok(index)
        })();
        drop(work_tx);
        let last_index = read?;
        while folder.next <= last_index {
            let Ok((i, r)) = res_rx.recv() else { break };
            folder.add(i, r, &mut report);
        }
        Ok(())
    })?;
    Ok(report)
}
