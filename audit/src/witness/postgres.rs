//! The witness beside a log in PostgreSQL that several CAs share.
//!
//! Each CA keeps its own witness of the checkpoints it cut; the shared
//! database must hold each witnessed position with the witnessed hash (it is
//! never behind them). Checkpoints other writers cut are theirs to witness. As
//! for SQLite, a missing witness beside a log with checkpoints is refused, and
//! a CA that joins an existing log starts its witness on purpose
//! ([`restart_postgres`], behind `rampart-ca witness-restart`).

use std::path::Path;

use ::postgres::Client;

use super::check::signature_problem;
use super::start::restart_with;
use super::{absent_problem, compare, is_absent, read, Head, StartPoints, WitnessReport};
use crate::store::postgres::{connect_checked, hash_at, head, newest_checkpoint, PgConfig};
use crate::AuditError;

fn points(c: &mut Client) -> Result<StartPoints, AuditError> {
    Ok(StartPoints {
        anchor: None,
        checkpoint: newest_checkpoint(c)?,
    })
}

/// Compare the shared log with the newest line of the witness at `witness`
/// (its signature checked with `key`). Returns `Err` only when the database
/// or the file cannot be read.
pub(crate) fn check_client(
    c: &mut Client,
    witness: &Path,
    key: Option<&ssh_key::PublicKey>,
) -> Result<WitnessReport, AuditError> {
    let entries = read(witness)?;
    let (seq, hash) = head(c)?;
    let mut report = WitnessReport {
        db_head: Head { seq, hash },
        anchor: None,
        witnessed_head: None,
        lines_checked: 0,
        problem: None,
    };
    let Some(newest) = entries.iter().max_by_key(|e| e.seq) else {
        return Ok(report);
    };
    let want = Head {
        seq: newest.seq,
        hash: newest.hash,
    };
    report.witnessed_head = Some((want, newest.line));
    let what = format!("the witness (line {})", newest.line);
    if let Some(p) = key.and_then(|k| signature_problem(k, newest, &what)) {
        report.problem = Some(p);
        return Ok(report);
    }
    report.problem = compare(&mut |s| hash_at(c, s), &report.db_head, None, &want, &what)?;
    report.lines_checked = 1;
    Ok(report)
}

/// [`check_client`] on a connection of its own (`rampart-ca check`).
pub fn check_postgres(
    db: &PgConfig,
    witness: &Path,
    key: Option<&ssh_key::PublicKey>,
) -> Result<WitnessReport, AuditError> {
    check_client(&mut connect_checked(db)?, witness, key)
}

/// What the writer does when it opens a shared log with a witness: the
/// refusals of [`super::open_check`], against the newest line.
pub(crate) fn open_check_postgres(
    c: &mut Client,
    witness: &Path,
    key: Option<&ssh_key::PublicKey>,
) -> Result<(), AuditError> {
    if is_absent(witness)? {
        return match absent_problem(witness, &points(c)?) {
            Some(p) => Err(AuditError::WitnessMissing(p)),
            None => Ok(()),
        };
    }
    match check_client(c, witness, key)?.problem {
        None => Ok(()),
        Some(p) => Err(AuditError::Witness(format!(
            "{p} (witness {})",
            witness.display()
        ))),
    }
}

/// Where a new witness for the shared log starts: its newest checkpoint.
pub fn start_points_postgres(db: &PgConfig) -> Result<StartPoints, AuditError> {
    points(&mut connect_checked(db)?)
}

/// [`super::restart`] for a shared log: write its newest checkpoint as the
/// first line of a missing or empty witness.
pub fn restart_postgres(db: &PgConfig, witness: &Path) -> Result<StartPoints, AuditError> {
    restart_with(witness, "the shared audit log", || {
        start_points_postgres(db)
    })
}
