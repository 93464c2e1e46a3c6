//! Sealed recordings against the digests in the chain
//! (`rampart audit verify --recordings`).

use std::io;
use std::path::Path;

use super::digest_file;
use crate::AuditError;

/// One sealed recording that does not check out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingProblem {
    /// The session whose recording it is.
    pub session: String,
    /// Sequence number of its `recording_sealed` event.
    pub seq: u64,
    /// What is wrong, in one sentence.
    pub reason: String,
}

/// What [`verify_recordings`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingsReport {
    /// `recording_sealed` events looked at.
    pub sealed: usize,
    /// Those whose file matched.
    pub matched: usize,
    /// The others.
    pub problems: Vec<RecordingProblem>,
}

/// For every `recording_sealed` event in the audit database `db`, check that
/// `dir/<session>.cast.zst` exists and its SHA-256 is the sealed one. Run
/// [`crate::verify`] first: this trusts the events it reads.
pub fn verify_recordings(db: &Path, dir: &Path) -> Result<RecordingsReport, AuditError> {
    let conn = crate::store::open_read_only(db)?;
    let sealed = crate::store::run_query(
        &conn,
        &crate::Query::all().kind(crate::EventKind::RecordingSealed),
    )?;
    let mut report = RecordingsReport {
        sealed: sealed.len(),
        ..RecordingsReport::default()
    };
    for ev in sealed {
        let session = ev.session.clone().unwrap_or_default();
        let problem = |reason: String| RecordingProblem {
            session: session.clone(),
            seq: ev.seq,
            reason,
        };
        // The session ID becomes a file name: only a plain token may.
        let clean = !session.is_empty()
            && session.len() <= 128
            && session.bytes().all(|b| b.is_ascii_alphanumeric());
        if !clean {
            report.problems.push(problem(format!(
                "session ID {session:?} is not a plain token"
            )));
            continue;
        }
        let Some(want) = ev.details.get("sha256").and_then(|v| v.as_str()) else {
            report
                .problems
                .push(problem("the event carries no sha256".to_owned()));
            continue;
        };
        let path = dir.join(format!("{session}.cast.zst"));
        match digest_file(&path) {
            Ok((have, _)) if have == want => report.matched += 1,
            Ok((have, _)) => report.problems.push(problem(format!(
                "{} has SHA-256 {have}, the audit log sealed {want}",
                path.display()
            ))),
            Err(AuditError::Io(e)) if e.kind() == io::ErrorKind::NotFound => report
                .problems
                .push(problem(format!("{} is missing", path.display()))),
            Err(e) => report.problems.push(problem(format!(
                "{}: {}",
                path.display(),
                rampart_api::report::one_line(&e)
            ))),
        }
    }
    Ok(report)
}
