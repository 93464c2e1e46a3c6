//! `verify`: re-walk the chain from genesis and check every row and checkpoint.

use std::fmt;
use std::path::Path;

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

struct CpRow {
    seq: i64,
    hash: Option<[u8; 32]>,
    time: Option<String>,
    signature: Option<String>,
}

fn next_cp(rows: &mut Rows<'_>) -> Result<Option<CpRow>, AuditError> {
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let text = |v: ValueRef<'_>| match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::to_owned),
        _ => None,
    };
    Ok(Some(CpRow {
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

fn text_col<'a>(v: ValueRef<'a>) -> Option<&'a str> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    }
}

/// Verify the log at `path`: recompute every hash from genesis, check that
/// sequence numbers are gap-free and each body belongs at its position, that the
/// indexed columns agree with the body, and that every checkpoint matches the
/// chain (and, with `audit_pubkey`, carries a valid signature). Opens the database
/// read-only and streams rows, so memory use does not grow with the log.
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
    let mut ev_stmt = conn
        .prepare("SELECT seq, id, time, kind, user, serial, body, hash FROM events ORDER BY seq")?;
    let mut cp_stmt =
        conn.prepare("SELECT seq, hash, time, signature FROM checkpoints ORDER BY seq")?;
    let mut cps = cp_stmt.query([])?;
    let mut cp = next_cp(&mut cps)?;

    let mut report = VerifyReport {
        events: 0,
        checkpoints: 0,
        last_seq: 0,
        last_checkpoint_seq: 0,
        signatures_checked: audit_pubkey.is_some(),
        problem: None,
    };
    let mut prev = [0u8; 32];
    let mut rows = ev_stmt.query([])?;
    macro_rules! fail {
        ($seq:expr, $($arg:tt)*) => {{
            report.problem = Some(VerifyProblem { seq: $seq, reason: format!($($arg)*) });
            return Ok(report);
        }};
    }
    while let Some(r) = rows.next()? {
        let expected = report.last_seq + 1;
        let seq = match r.get_ref(0)? {
            ValueRef::Integer(i) => i,
            _ => fail!(expected, "sequence column is not an integer"),
        };
        let seq_u = u64::try_from(seq).unwrap_or(0);
        if seq_u < expected {
            if seq_u == report.last_seq && seq_u != 0 {
                fail!(seq_u, "duplicated row");
            }
            fail!(
                expected,
                "unexpected sequence number {seq} (rows out of order)"
            );
        }
        if seq_u > expected {
            fail!(
                expected,
                "missing (row deleted; next row is sequence {seq_u})"
            );
        }
        // Any checkpoint that should have been matched by an earlier event.
        if let Some(c) = &cp {
            if c.seq < seq {
                fail!(
                    u64::try_from(c.seq).unwrap_or(0),
                    "checkpoint for a sequence number that is not in the chain"
                );
            }
        }
        let body = match r.get_ref(6)? {
            ValueRef::Text(t) => t,
            _ => fail!(seq_u, "body is not text"),
        };
        let stored_hash = match r.get_ref(7)? {
            ValueRef::Blob(b) => <[u8; 32]>::try_from(b).ok(),
            _ => None,
        };
        let computed = chain_hash(&prev, body);
        let view: Result<BodyView<'_>, _> = serde_json::from_slice(body);
        if let Ok(v) = &view {
            if v.seq != seq_u {
                fail!(
                    seq_u,
                    "event body belongs at sequence {} (rows swapped, moved or duplicated)",
                    v.seq
                );
            }
        }
        if stored_hash != Some(computed) {
            fail!(seq_u, "hash mismatch (event altered)");
        }
        let v = match view {
            Ok(v) => v,
            Err(e) => fail!(seq_u, "body is not a valid event: {e}"),
        };
        if v.v != BODY_VERSION {
            fail!(seq_u, "unsupported body version {}", v.v);
        }
        // The indexed copies must say what the body says, or queries would lie.
        let col_mismatch = if text_col(r.get_ref(1)?) != Some(&*v.id) {
            Some("id")
        } else if text_col(r.get_ref(2)?) != Some(&*v.time) {
            Some("time")
        } else if text_col(r.get_ref(3)?) != Some(&*v.kind) {
            Some("kind")
        } else if match r.get_ref(4)? {
            ValueRef::Null => v.user.is_some(),
            other => text_col(other) != v.user.as_deref() || v.user.is_none(),
        } {
            Some("user")
        } else if match r.get_ref(5)? {
            ValueRef::Null => v.serial.is_some(),
            ValueRef::Integer(i) => v.serial != Some(serial_from_sql(i)),
            _ => true,
        } {
            Some("serial")
        } else {
            None
        };
        if let Some(col) = col_mismatch {
            fail!(
                seq_u,
                "indexed column `{col}` does not match the event body"
            );
        }
        if let Some(c) = &cp {
            if c.seq == seq {
                if c.hash != Some(computed) {
                    fail!(seq_u, "checkpoint hash does not match the chain");
                }
                if c.time.as_deref() != Some(&*v.time) {
                    fail!(seq_u, "checkpoint time does not match the event");
                }
                if let Some(key) = audit_pubkey {
                    let msg = checkpoint_message(seq_u, &computed, &v.time);
                    let sig = c.signature.as_deref().unwrap_or("");
                    if let Err(e) = verify_signature(key, msg.as_bytes(), sig) {
                        fail!(seq_u, "checkpoint signature invalid ({e})");
                    }
                }
                report.checkpoints += 1;
                report.last_checkpoint_seq = seq_u;
                cp = next_cp(&mut cps)?;
                if let Some(n) = &cp {
                    if n.seq == seq {
                        fail!(seq_u, "duplicated checkpoint");
                    }
                }
            }
        }
        prev = computed;
        report.events += 1;
        report.last_seq = seq_u;
    }
    if let Some(c) = cp {
        fail!(
            report.last_seq + 1,
            "log ends at sequence {} but a checkpoint was signed at sequence {} (tail removed)",
            report.last_seq,
            c.seq
        );
    }
    Ok(report)
}
