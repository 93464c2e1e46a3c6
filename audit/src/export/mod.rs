//! Export: the audit log in the formats SIEMs read, and offline proof of an
//! exported copy.
//!
//! **Owns:** the per-event encoders (pure functions over [`Event`]: [`to_cef`],
//! [`to_ocsf`], [`to_syslog`], [`jsonl_event`]), the streaming exporter over a
//! read-only database ([`export`]) and the verifier of a JSON Lines export
//! ([`verify_export`]). The formats are specified in `audit/SCHEMA.md`.
//! **Must never:** write to the audit database (it is opened read-only) or read
//! the wall clock: every time written comes from an event.
//!
//! Every encoder matches on [`EventKind`] without a wildcard arm, so a new kind
//! does not compile until it has a CEF name, an OCSF class and a syslog severity.

mod cef;
mod jsonl;
mod ocsf;
mod syslog;

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension};

pub use cef::{cef_escape_extension, cef_escape_header, to_cef, CEF_SEVERITY_MAX};
pub use jsonl::{
    canonical_body, jsonl_checkpoint, jsonl_event, jsonl_event_line, jsonl_header, verify_export,
    ExportHeader, ExportVerifyReport, EXPORT_FORMAT_VERSION,
};
pub use ocsf::{ocsf_class, to_ocsf, OcsfClass, OCSF_VERSION};
pub use syslog::{sd_escape, syslog_severity, to_syslog, FACILITY_AUTHPRIV, SYSLOG_PEN};

use crate::checkpoint::Checkpoint;
use crate::event::{canonical_time, decode_body, Event, EventKind};
use crate::store::{open_read_only, seq_to_sql};
use crate::AuditError;

/// The product name written into every export (`rampart-ca` writes the log).
pub const PRODUCT: &str = "rampart-ca";
/// The vendor name written into CEF headers and OCSF metadata.
pub const VENDOR: &str = "Rampart";
/// The product version written into exports: this crate's version, which the
/// workspace shares with `rampart-ca`.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An export format (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExportFormat {
    /// JSON Lines in Rampart's own schema, with hashes and checkpoints: provable
    /// offline with [`verify_export`].
    Jsonl,
    /// ArcSight Common Event Format, one `CEF:0|…` line per event.
    Cef,
    /// OCSF 1.3.0 JSON, one object per line.
    Ocsf,
    /// RFC 5424 syslog lines with structured data, one per line.
    Syslog,
}

impl ExportFormat {
    /// The name used on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Cef => "cef",
            ExportFormat::Ocsf => "ocsf",
            ExportFormat::Syslog => "syslog",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "cef" => Ok(ExportFormat::Cef),
            "ocsf" => Ok(ExportFormat::Ocsf),
            "syslog" => Ok(ExportFormat::Syslog),
            other => Err(AuditError::Config(format!(
                "unknown export format {other:?} (jsonl, cef, ocsf or syslog)"
            ))),
        }
    }
}

/// Which events to export. `since` is inclusive, `until` exclusive (as in
/// [`crate::Query`]); `kinds` (any of) and `user` only apply to the SIEM formats,
/// because a JSON Lines export must be a gap-free range to be provable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportFilter {
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only these kinds (empty: every kind). Not allowed with [`ExportFormat::Jsonl`].
    pub kinds: Vec<EventKind>,
    /// Only events about this user. Not allowed with [`ExportFormat::Jsonl`].
    pub user: Option<String>,
}

/// How to export.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    /// The output format.
    pub format: ExportFormat,
    /// Which events.
    pub filter: ExportFilter,
    /// The RFC 5424 HOSTNAME field for [`ExportFormat::Syslog`] (`-` when unknown).
    pub hostname: String,
}

impl ExportOptions {
    /// Export every event in `format`.
    pub fn new(format: ExportFormat) -> Self {
        ExportOptions {
            format,
            filter: ExportFilter::default(),
            hostname: "-".to_owned(),
        }
    }
}

/// What [`export`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Event lines written.
    pub events: u64,
    /// Checkpoint lines written (JSON Lines only).
    pub checkpoints: u64,
    /// First exported sequence number (0 when nothing was exported).
    pub first_seq: u64,
    /// Last exported sequence number (0 when nothing was exported).
    pub last_seq: u64,
    /// JSON Lines only: events in the requested range that were left out because
    /// no signed checkpoint covers them yet (they follow the last checkpoint);
    /// export again after the CA's next checkpoint to include them.
    pub held_back: u64,
    /// JSON Lines only: the export ends after its last checkpoint because the log
    /// has no checkpoint at all in the range, so [`verify_export`] will call the
    /// tail unproven.
    pub unsigned_tail: bool,
}

/// Export events from the audit database at `db` (opened read-only, one read
/// transaction, so the export is a consistent snapshot even while the CA
/// appends) to `out`, one line per record, streaming: memory use does not grow
/// with the log.
///
/// JSON Lines exports are a gap-free range of sequence numbers: `since`/`until`
/// pick the first and last event, the end is then moved forward to the next
/// signed checkpoint (or, if there is none yet, back to the last one), so that
/// the export ends at a checkpoint and [`verify_export`] can prove it. A JSON
/// Lines export with `kinds` or `user` set is refused with
/// [`AuditError::Config`].
pub fn export(
    db: &Path,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    let conn = open_read_only(db)?;
    conn.execute_batch("BEGIN")?;
    let summary = match opts.format {
        ExportFormat::Jsonl => export_jsonl(&conn, &opts.filter, out),
        _ => export_filtered(&conn, opts, out),
    }?;
    out.flush()?;
    Ok(summary)
}

fn body_text<'a>(seq: u64, v: ValueRef<'a>) -> Result<&'a [u8], AuditError> {
    match v {
        ValueRef::Text(t) => Ok(t),
        _ => Err(AuditError::CorruptRow {
            seq,
            reason: "body is not text".into(),
        }),
    }
}

fn hash_col(seq: u64, v: ValueRef<'_>) -> Result<[u8; 32], AuditError> {
    match v {
        ValueRef::Blob(b) => <[u8; 32]>::try_from(b).map_err(|_| AuditError::CorruptRow {
            seq,
            reason: "hash is not 32 bytes".into(),
        }),
        _ => Err(AuditError::CorruptRow {
            seq,
            reason: "hash is not a blob".into(),
        }),
    }
}

fn seq_col(v: ValueRef<'_>) -> Result<u64, AuditError> {
    match v {
        ValueRef::Integer(i) => u64::try_from(i).map_err(|_| AuditError::CorruptRow {
            seq: 0,
            reason: format!("negative sequence {i}"),
        }),
        _ => Err(AuditError::CorruptRow {
            seq: 0,
            reason: "sequence is not an integer".into(),
        }),
    }
}

/// The SIEM formats: every matching event, in sequence order.
fn export_filtered(
    conn: &Connection,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    let f = &opts.filter;
    let mut sql = String::from("SELECT seq, body, hash FROM events WHERE 1=1");
    let mut args: Vec<Value> = Vec::new();
    if !f.kinds.is_empty() {
        sql.push_str(" AND kind IN (");
        for (i, k) in f.kinds.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(Value::Text(k.as_str().to_owned()));
        }
        sql.push(')');
    }
    if let Some(u) = &f.user {
        sql.push_str(" AND user = ?");
        args.push(Value::Text(u.clone()));
    }
    if let Some(t) = &f.since {
        sql.push_str(" AND time >= ?");
        args.push(Value::Text(canonical_time(t)));
    }
    if let Some(t) = &f.until {
        sql.push_str(" AND time < ?");
        args.push(Value::Text(canonical_time(t)));
    }
    sql.push_str(" ORDER BY seq");
    let mut st = conn.prepare(&sql)?;
    let mut rows = st.query(rusqlite::params_from_iter(args))?;
    let mut summary = ExportSummary::default();
    while let Some(r) = rows.next()? {
        let seq = seq_col(r.get_ref(0)?)?;
        let body = body_text(seq, r.get_ref(1)?)?;
        let hash = hash_col(seq, r.get_ref(2)?)?;
        let ev = decode_body(seq, body, hash)?;
        let line = match opts.format {
            ExportFormat::Cef => to_cef(&ev),
            ExportFormat::Ocsf => serde_json::to_string(&to_ocsf(&ev))
                .map_err(|e| AuditError::Format(format!("encoding OCSF: {e}")))?,
            ExportFormat::Syslog => to_syslog(&ev, &opts.hostname),
            // `export` sends JSON Lines to `export_jsonl`; a filtered event has no
            // provable predecessor here.
            ExportFormat::Jsonl => {
                return Err(AuditError::Config(
                    "JSON Lines is exported as a range, not filtered".into(),
                ))
            }
        };
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        if summary.events == 0 {
            summary.first_seq = seq;
        }
        summary.events += 1;
        summary.last_seq = seq;
    }
    Ok(summary)
}

fn opt_seq(conn: &Connection, sql: &str, args: &[Value]) -> Result<Option<u64>, AuditError> {
    let v: Option<i64> = conn.query_row(sql, rusqlite::params_from_iter(args), |r| r.get(0))?;
    Ok(v.and_then(|s| u64::try_from(s).ok()))
}

/// The gap-free range a JSON Lines export covers, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub start: u64,
    pub end: u64,
    pub held_back: u64,
    pub unsigned_tail: bool,
}

/// Pick the end of a JSON Lines export: the first checkpoint at or after
/// `end_target`; else the last checkpoint in `[start, end_target]` (holding the
/// unsigned tail back); else `end_target` itself (no checkpoint to end on).
/// `checkpoints` are sorted sequence numbers.
pub(crate) fn choose_range(start: u64, end_target: u64, checkpoints: &[u64]) -> Range {
    if let Some(&c) = checkpoints.iter().find(|&&c| c >= end_target) {
        return Range {
            start,
            end: c,
            held_back: 0,
            unsigned_tail: false,
        };
    }
    match checkpoints
        .iter()
        .rev()
        .find(|&&c| c >= start && c <= end_target)
    {
        Some(&c) => Range {
            start,
            end: c,
            held_back: end_target - c,
            unsigned_tail: false,
        },
        None => Range {
            start,
            end: end_target,
            held_back: 0,
            unsigned_tail: true,
        },
    }
}

fn export_jsonl(
    conn: &Connection,
    f: &ExportFilter,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    if !f.kinds.is_empty() || f.user.is_some() {
        return Err(AuditError::Config(
            "a JSON Lines export must be a gap-free range to be provable: filter it by \
             time (since/until) only, and by kind or user in the SIEM"
                .into(),
        ));
    }
    let since = f.since.as_ref().map(canonical_time);
    let until = f.until.as_ref().map(canonical_time);
    let mut cond = String::from("1=1");
    let mut args = Vec::new();
    if let Some(s) = &since {
        cond.push_str(" AND time >= ?");
        args.push(Value::Text(s.clone()));
    }
    if let Some(u) = &until {
        cond.push_str(" AND time < ?");
        args.push(Value::Text(u.clone()));
    }
    let start = opt_seq(
        conn,
        &format!("SELECT min(seq) FROM events WHERE {cond}"),
        &args,
    )?;
    let end_target = opt_seq(
        conn,
        &format!("SELECT max(seq) FROM events WHERE {cond}"),
        &args,
    )?;
    let head = opt_seq(conn, "SELECT max(seq) FROM events", &[])?.unwrap_or(0);
    let filters = jsonl::Filters {
        since: since.clone(),
        until: until.clone(),
    };
    let (Some(start), Some(end_target)) = (start, end_target) else {
        // Nothing matches: an empty export positioned after the head.
        let prev = prev_hash(conn, head + 1)?;
        let header = ExportHeader::new(head + 1, prev, head, filters);
        out.write_all(jsonl_header(&header)?.as_bytes())?;
        out.write_all(b"\n")?;
        return Ok(ExportSummary::default());
    };
    let cps = load_checkpoints(conn, start)?;
    let cp_seqs: Vec<u64> = cps.iter().map(|c| c.seq).collect();
    let range = choose_range(start, end_target, &cp_seqs);
    let prev = prev_hash(conn, start)?;
    let header = ExportHeader::new(start, prev, range.end, filters);
    out.write_all(jsonl_header(&header)?.as_bytes())?;
    out.write_all(b"\n")?;

    let mut summary = ExportSummary {
        held_back: range.held_back,
        unsigned_tail: range.unsigned_tail,
        ..ExportSummary::default()
    };
    let mut cps = cps.into_iter().filter(|c| c.seq <= range.end).peekable();
    let mut st = conn
        .prepare("SELECT seq, body, hash FROM events WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq")?;
    let mut rows = st.query([seq_to_sql(range.start)?, seq_to_sql(range.end)?])?;
    let mut prev = prev;
    while let Some(r) = rows.next()? {
        let seq = seq_col(r.get_ref(0)?)?;
        let body = body_text(seq, r.get_ref(1)?)?;
        let hash = hash_col(seq, r.get_ref(2)?)?;
        // Refuse to export a row that is not a valid body for its position: the
        // copy would not verify, and the operator should run `audit verify`.
        decode_body(seq, body, hash)?;
        let body = std::str::from_utf8(body).map_err(|e| AuditError::CorruptRow {
            seq,
            reason: format!("body is not UTF-8: {e}"),
        })?;
        out.write_all(jsonl_event_line(body, &prev, &hash)?.as_bytes())?;
        out.write_all(b"\n")?;
        if summary.events == 0 {
            summary.first_seq = seq;
        }
        summary.events += 1;
        summary.last_seq = seq;
        prev = hash;
        // Checkpoints whose event lies before this one can only be stale rows of a
        // damaged log; skip them rather than write them out of place.
        while cps.peek().is_some_and(|c| c.seq < seq) {
            cps.next();
        }
        if let Some(cp) = cps.next_if(|c| c.seq == seq) {
            out.write_all(jsonl_checkpoint(&cp)?.as_bytes())?;
            out.write_all(b"\n")?;
            summary.checkpoints += 1;
        }
    }
    Ok(summary)
}

/// The chain hash before `start`: zero at genesis, else the previous event's
/// stored hash, else (after pruning) the checkpoint anchoring that position.
fn prev_hash(conn: &Connection, start: u64) -> Result<[u8; 32], AuditError> {
    if start <= 1 {
        return Ok([0; 32]);
    }
    let before = seq_to_sql(start - 1)?;
    for sql in [
        "SELECT hash FROM events WHERE seq = ?1",
        "SELECT hash FROM checkpoints WHERE seq = ?1",
    ] {
        let found: Option<Vec<u8>> = conn.query_row(sql, [before], |r| r.get(0)).optional()?;
        if let Some(h) = found {
            return <[u8; 32]>::try_from(h.as_slice()).map_err(|_| AuditError::CorruptRow {
                seq: start - 1,
                reason: "hash is not 32 bytes".into(),
            });
        }
    }
    Err(AuditError::Format(format!(
        "cannot export from sequence {start}: neither event {} nor a checkpoint for it is in the database",
        start - 1
    )))
}

fn load_checkpoints(conn: &Connection, from: u64) -> Result<Vec<Checkpoint>, AuditError> {
    let mut st = conn.prepare(
        "SELECT seq, hash, time, signature FROM checkpoints WHERE seq >= ?1 ORDER BY seq",
    )?;
    let mut rows = st.query([seq_to_sql(from)?])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let seq = seq_col(r.get_ref(0)?)?;
        let hash = hash_col(seq, r.get_ref(1)?)?;
        let time: String = r.get(2)?;
        let signature: String = r.get(3)?;
        let time = DateTime::parse_from_rfc3339(&time)
            .map_err(|e| AuditError::CorruptRow {
                seq,
                reason: format!("checkpoint time: {e}"),
            })?
            .with_timezone(&Utc);
        out.push(Checkpoint {
            seq,
            hash,
            time,
            signature,
        });
    }
    Ok(out)
}

/// A short English title per kind: the CEF `Name`, the OCSF and syslog message.
pub fn kind_title(kind: EventKind) -> &'static str {
    match kind {
        EventKind::CaInitialized => "CA initialized",
        EventKind::CaStarted => "CA started",
        EventKind::CaStopped => "CA stopped",
        EventKind::PolicyReloaded => "Policy reloaded",
        EventKind::CaConfigReloaded => "CA configuration reloaded",
        EventKind::AuditWitnessRestarted => "Audit witness restarted on the CA host",
        EventKind::CaKeyRotated => "CA key rotation step on the CA host",
        EventKind::UserCreated => "User created",
        EventKind::UserDisabled => "User disabled",
        EventKind::UserEnabled => "User enabled",
        EventKind::UserGroupsChanged => "User groups changed",
        EventKind::UserIdpLinked => "User linked to an identity-provider account",
        EventKind::UserIdpUnlinked => "User unlinked from an identity-provider account",
        EventKind::AdminRecoveryInvite => "Admin recovery invite made on the CA host",
        EventKind::InviteCreated => "Invite created",
        EventKind::InviteRedeemed => "Invite redeemed",
        EventKind::InviteRefused => "Invite refused",
        EventKind::AdminActionDenied => "Admin action denied",
        EventKind::TotpEnrolled => "TOTP factor enrolled",
        EventKind::RecoveryCodesIssued => "Recovery codes issued",
        EventKind::MfaSucceeded => "MFA succeeded",
        EventKind::MfaFailed => "MFA failed",
        EventKind::MfaLockedOut => "MFA locked out",
        EventKind::RecoveryCodeUsed => "Recovery code used",
        EventKind::WebauthnKeyEnrolled => "Security key enrolled",
        EventKind::WebauthnKeyRemoved => "Security key removed",
        EventKind::WebauthnKeyCloned => "Security key counter regressed (possible clone)",
        EventKind::WebauthnEnrolmentRefused => "Security key enrolment refused",
        EventKind::SessionCreated => "Session created",
        EventKind::SessionEnded => "Session ended",
        EventKind::CertIssued => "User certificate issued",
        EventKind::CertDenied => "User certificate denied",
        EventKind::HostCertIssued => "Host certificate issued",
        EventKind::Revoked => "Revoked",
        EventKind::KrlPublished => "KRL published",
        EventKind::HostTokenCreated => "Host join token created",
        EventKind::BastionTokenCreated => "Bastion join token created",
        EventKind::BastionJoined => "Bastion joined",
        EventKind::BastionJoinRefused => "Bastion join refused",
        EventKind::AccessGranted => "Bastion access granted",
        EventKind::AccessDenied => "Bastion access denied",
        EventKind::BastionSessionStarted => "Bastion session started",
        EventKind::BastionSessionEnded => "Bastion session ended",
        EventKind::BastionConnectionRefused => "Bastion connection refused",
        EventKind::BastionExec => "Bastion exec",
        EventKind::BastionFileOp => "Bastion file operation",
        EventKind::BastionForward => "Bastion forward",
        EventKind::BastionRequestRefused => "Bastion request refused",
        EventKind::RecordingSealed => "Session recording sealed",
        EventKind::RecordingViewed => "Session recording viewed",
        EventKind::AuditEventRejected => "Bastion event rejected",
        EventKind::BastionConfigReloaded => "Bastion config reloaded",
    }
}

/// One line of human text for an event: the title, and the reason if any.
pub(crate) fn message(ev: &Event) -> String {
    match &ev.reason {
        Some(r) => format!("{}: {r}", kind_title(ev.kind)),
        None => kind_title(ev.kind).to_owned(),
    }
}

/// `details` as compact JSON with every object's keys sorted (serde_json's map
/// is a BTreeMap unless `preserve_order` is on; sort explicitly to not depend on it).
pub(crate) fn details_json(ev: &Event) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<_> = m.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let map: serde_json::Map<String, serde_json::Value> = ev
        .details
        .iter()
        .map(|(k, v)| (k.clone(), sorted(v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Milliseconds since the Unix epoch (CEF `rt`, OCSF `time`).
pub(crate) fn epoch_millis(t: &DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA_MD: &str = include_str!("../../SCHEMA.md");

    #[test]
    fn schema_md_documents_every_kind() {
        for k in EventKind::all() {
            let row = format!(
                "| `{}` | `{}` | {} | ",
                k.code(),
                k.as_str(),
                k.severity().as_str()
            );
            assert!(
                SCHEMA_MD.lines().any(|l| l.starts_with(&row)),
                "SCHEMA.md has no kinds-table row starting {row:?}"
            );
            // …and the OCSF mapping table names its class and activity.
            let c = ocsf_class(*k);
            let prefix = format!(
                "| `{}` | {} | {} | {} | {}",
                k.as_str(),
                c.class_uid,
                c.class_name,
                c.activity_id,
                if c.activity_id == 99 {
                    "Other"
                } else {
                    c.activity_name
                }
            );
            assert!(
                SCHEMA_MD.lines().any(|l| l.starts_with(&prefix)),
                "SCHEMA.md OCSF table has no row starting {prefix:?}"
            );
        }
    }

    #[test]
    fn schema_md_states_the_versions_it_documents() {
        assert!(SCHEMA_MD.contains(&format!("`v` = {}", crate::BODY_VERSION)));
        assert!(SCHEMA_MD.contains(OCSF_VERSION));
        assert!(SCHEMA_MD.contains(&SYSLOG_PEN.to_string()));
        assert!(SCHEMA_MD.contains(&format!("\"v\":{EXPORT_FORMAT_VERSION}")));
    }

    #[test]
    fn range_ends_on_a_checkpoint() {
        // next checkpoint at or after the target: extend to it
        assert_eq!(
            choose_range(1, 15, &[10, 20, 30]),
            Range {
                start: 1,
                end: 20,
                held_back: 0,
                unsigned_tail: false
            }
        );
        assert_eq!(choose_range(1, 20, &[10, 20]).end, 20);
        // none after: hold the unsigned tail back
        assert_eq!(
            choose_range(5, 25, &[10, 20]),
            Range {
                start: 5,
                end: 20,
                held_back: 5,
                unsigned_tail: false
            }
        );
        // no checkpoint in range at all: export it, unsigned
        assert_eq!(
            choose_range(21, 25, &[10, 20]),
            Range {
                start: 21,
                end: 25,
                held_back: 0,
                unsigned_tail: true
            }
        );
        assert!(choose_range(1, 3, &[]).unsigned_tail);
    }

    #[test]
    fn formats_parse_and_print() {
        for f in [
            ExportFormat::Jsonl,
            ExportFormat::Cef,
            ExportFormat::Ocsf,
            ExportFormat::Syslog,
        ] {
            assert_eq!(f.as_str().parse::<ExportFormat>().unwrap(), f);
        }
        assert!("xml".parse::<ExportFormat>().is_err());
    }

    #[test]
    fn every_kind_has_a_title() {
        let mut seen = std::collections::HashSet::new();
        for k in EventKind::all() {
            assert!(seen.insert(kind_title(*k)), "duplicate title for {k}");
        }
    }
}
