//! Sealed recordings against the digests in the chain
//! (`rampart audit verify --recordings`).

use std::path::Path;

use super::store::{is_plain_session_id, RecordingStore};
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
/// `store` holds that session's recording and its SHA-256 is the sealed one.
/// Run [`crate::verify`] first: this trusts the events it reads.
pub fn verify_recordings(
    db: &Path,
    store: &RecordingStore,
) -> Result<RecordingsReport, AuditError> {
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
        if !is_plain_session_id(&session) {
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
        match store.digest(&session) {
            Ok(Some((have, _))) if have == want => report.matched += 1,
            Ok(Some((have, _))) => report.problems.push(problem(format!(
                "the stored recording in {store} has SHA-256 {have}, the audit log sealed {want}"
            ))),
            Ok(None) => report
                .problems
                .push(problem(format!("it is missing from {store}"))),
            Err(e) => report.problems.push(problem(format!(
                "{store}: {}",
                rampart_api::report::one_line(&e)
            ))),
        }
    }
    Ok(report)
}
