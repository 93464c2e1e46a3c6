//! A real log written by `AuditLog`, exported with `export::export`, proven with
//! `export::verify_export` — then every way of damaging the copy is shown to be
//! detected and named: an edited byte, a dropped line, two lines swapped, a cut
//! tail, a forged checkpoint, and a full rewrite re-signed with another key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{config, ev, key, other_key, t, Fixture};
use rampart_audit::export::{
    export, jsonl_checkpoint, jsonl_event_line, verify_export, ExportFilter, ExportFormat,
    ExportOptions, ExportVerifyReport,
};
use rampart_audit::{AuditConfig, AuditError, AuditLog, Checkpoint, EventKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

const EVERY: u64 = 10;

/// 95 events cycling through every kind (with hostile text in some), closed so
/// the last checkpoint is at 95; checkpoints every 10 events.
fn log(n: u64) -> Fixture {
    let f = Fixture::new();
    let log = f.open(config(EVERY));
    for i in 1..=n {
        let mut e = ev(i);
        if i % 7 == 0 {
            e = e.reason("pipe | eq = back\\slash\nnewline \"q\" ]ü");
        }
        log.append(e).unwrap();
    }
    log.close().unwrap();
    f
}

fn export_jsonl(
    f: &Fixture,
    filter: ExportFilter,
) -> (Vec<String>, rampart_audit::export::ExportSummary) {
    let mut opts = ExportOptions::new(ExportFormat::Jsonl);
    opts.filter = filter;
    let mut out = Vec::new();
    let summary = export(&f.path, &opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n'));
    (text.lines().map(str::to_owned).collect(), summary)
}

fn check(lines: &[String]) -> ExportVerifyReport {
    let mut text = lines.join("\n");
    text.push('\n');
    verify_export(text.as_bytes(), key().public_key()).unwrap()
}

fn line_of(lines: &[String], ty: &str, seq: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["type"] == ty && v["seq"] == seq
        })
        .unwrap_or_else(|| panic!("no {ty} line for {seq}"))
}

fn failed_at(lines: &[String]) -> (u64, String) {
    let r = check(lines);
    let p = r.problem.expect("the damaged export must not verify");
    (p.seq, p.reason)
}

#[test]
fn full_export_verifies_and_matches_the_log() {
    let f = log(95);
    let (lines, s) = export_jsonl(&f, ExportFilter::default());
    assert_eq!(
        (
            s.events,
            s.checkpoints,
            s.first_seq,
            s.last_seq,
            s.held_back
        ),
        (95, 10, 1, 95, 0)
    );
    assert!(!s.unsigned_tail);
    assert_eq!(lines.len(), 1 + 95 + 10);
    let h: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(h["type"], "export");
    assert_eq!((h["v"].clone(), h["body_v"].clone()), (1.into(), 1.into()));
    assert_eq!(h["first_seq"], 1);
    assert_eq!(h["last_seq"], 95);
    assert_eq!(h["prev_hash"], "00".repeat(32));
    // Checkpoint lines sit right after their events.
    for cp in [10u64, 20, 90, 95] {
        assert_eq!(
            line_of(&lines, "checkpoint", cp),
            line_of(&lines, "event", cp) + 1
        );
    }
    // Each event line's hash is recomputable by hand from its neighbours.
    let mut prev = [0u8; 32];
    for l in lines
        .iter()
        .filter(|l| l.starts_with("{\"type\":\"event\""))
    {
        let v: Value = serde_json::from_str(l).unwrap();
        let mut h = Sha256::new();
        h.update(prev);
        h.update(v["body"].as_str().unwrap().as_bytes());
        let hash: [u8; 32] = h.finalize().into();
        assert_eq!(v["hash"], hex::encode(hash));
        assert_eq!(v["prev_hash"], hex::encode(prev));
        prev = hash;
    }
    // …and equals what the database holds.
    let db_log = AuditLog::open(&f.path, None, AuditConfig::default()).unwrap();
    let events = db_log.query(&rampart_audit::Query::all()).unwrap();
    db_log.close().unwrap();
    assert_eq!(events.len(), 95);
    assert_eq!(events[94].hash, prev);
    for (e, l) in events
        .iter()
        .zip(lines.iter().filter(|l| l.contains("\"type\":\"event\"")))
    {
        assert_eq!(
            *l,
            rampart_audit::export::jsonl_event(e, &decode_prev(l)).unwrap()
        );
    }

    let r = check(&lines);
    assert_eq!(r.problem, None);
    assert_eq!(
        (r.events, r.checkpoints, r.first_seq, r.last_seq),
        (95, 10, 1, 95)
    );

    // With another key nothing is proven.
    let text = lines.join("\n");
    let r = verify_export(text.as_bytes(), other_key().public_key()).unwrap();
    assert_eq!(r.problem.unwrap().seq, 10);
}

fn decode_prev(line: &str) -> [u8; 32] {
    let v: Value = serde_json::from_str(line).unwrap();
    let b = hex::decode(v["prev_hash"].as_str().unwrap()).unwrap();
    b.try_into().unwrap()
}

#[test]
fn one_edited_byte_is_named() {
    let f = log(95);
    let (lines, _) = export_jsonl(&f, ExportFilter::default());
    // Inside the hashed body only.
    let mut a = lines.clone();
    let i = line_of(&a, "event", 37);
    let at = a[i].find("\\\"i\\\":37").expect("detail in body");
    a[i].replace_range(at + 7..at + 8, "8");
    let (seq, why) = failed_at(&a);
    assert_eq!(seq, 37, "{why}");
    // Inside the indexed fields only (what a SIEM would show).
    let mut b = lines.clone();
    let i = line_of(&b, "event", 52);
    b[i] = b[i].replacen("\"user\":\"user3\"", "\"user\":\"userX\"", 1);
    assert_ne!(b[i], lines[i]);
    let (seq, why) = failed_at(&b);
    assert_eq!(seq, 52, "{why}");
    assert!(why.contains("differs from the hashed body"), "{why}");
    // Edit, then recompute every later hash and prev_hash: the next checkpoint,
    // signed over the true hash, names where the forgery is caught.
    let mut c = lines.clone();
    let i = line_of(&c, "event", 41);
    c[i] = c[i]
        .replace("\"i\":41", "\"i\":14")
        .replace("\\\"i\\\":41", "\\\"i\\\":14");
    let mut prev = decode_prev(&c[i]);
    for l in c.iter_mut().skip(i) {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["type"] != "event" {
            continue;
        }
        // Rendered as the exporter renders it: a careful forger leaves no
        // formatting trace, only the checkpoint signature stands in the way.
        let body = v["body"].as_str().unwrap();
        let mut h = Sha256::new();
        h.update(prev);
        h.update(body.as_bytes());
        let hash: [u8; 32] = h.finalize().into();
        *l = jsonl_event_line(body, &prev, &hash).unwrap();
        prev = hash;
    }
    let (seq, why) = failed_at(&c);
    assert_eq!(seq, 50, "{why}");
    assert!(why.contains("checkpoint hash does not match"), "{why}");
    // A line re-serialized with other key order is not "as exported".
    let mut d = lines.clone();
    let i = line_of(&d, "event", 12);
    d[i] = serde_json::from_str::<Value>(&d[i]).unwrap().to_string();
    assert_ne!(d[i], lines[i]);
    let (seq, why) = failed_at(&d);
    assert_eq!(seq, 12, "{why}");
    assert!(why.contains("not exactly as exported"), "{why}");
}

#[test]
fn dropped_line_is_named() {
    let f = log(95);
    let (mut lines, _) = export_jsonl(&f, ExportFilter::default());
    let i = line_of(&lines, "event", 23);
    lines.remove(i);
    let (seq, why) = failed_at(&lines);
    assert_eq!(seq, 23, "{why}");
    assert!(why.contains("missing"), "{why}");
}

#[test]
fn reordered_lines_are_named() {
    let f = log(95);
    let (mut lines, _) = export_jsonl(&f, ExportFilter::default());
    let (a, b) = (line_of(&lines, "event", 61), line_of(&lines, "event", 62));
    lines.swap(a, b);
    let (seq, why) = failed_at(&lines);
    assert_eq!(seq, 61, "{why}");
    // A duplicated line is named too.
    let (mut lines, _) = export_jsonl(&f, ExportFilter::default());
    let i = line_of(&lines, "event", 70);
    let dup = lines[i].clone();
    lines.insert(i + 1, dup);
    let (seq, why) = failed_at(&lines);
    assert_eq!(seq, 70, "{why}");
}

#[test]
fn cut_tail_is_named() {
    let f = log(95);
    let (lines, _) = export_jsonl(&f, ExportFilter::default());
    // Cut the last checkpoint only: events 91..=95 are no longer signed.
    let cut = &lines[..lines.len() - 1];
    let (seq, why) = failed_at(cut);
    assert_eq!(seq, 91, "{why}");
    assert!(why.contains("not covered by a signed checkpoint"), "{why}");
    // Cut after the checkpoint at 90: the header still says 95.
    let i = line_of(&lines, "checkpoint", 90);
    let (seq, why) = failed_at(&lines[..=i]);
    assert_eq!(seq, 91, "{why}");
    assert!(why.contains("tail cut"), "{why}");
    // Cut in the middle of a checkpoint interval.
    let i = line_of(&lines, "event", 93);
    let (seq, _) = failed_at(&lines[..=i]);
    assert_eq!(seq, 94);
}

#[test]
fn forged_checkpoint_is_named() {
    let f = log(95);
    let (mut lines, _) = export_jsonl(&f, ExportFilter::default());
    let i = line_of(&lines, "checkpoint", 30);
    let v: Value = serde_json::from_str(&lines[i]).unwrap();
    let hash: [u8; 32] = hex::decode(v["hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let time = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let forged = Checkpoint::sign(&other_key(), 30, hash, time).unwrap();
    lines[i] = jsonl_checkpoint(&forged).unwrap();
    let (seq, why) = failed_at(&lines);
    assert_eq!(seq, 30, "{why}");
    assert!(why.contains("signature"), "{why}");
    // A checkpoint moved to the wrong place.
    let (mut lines, _) = export_jsonl(&f, ExportFilter::default());
    let i = line_of(&lines, "checkpoint", 40);
    let cp = lines.remove(i);
    lines.insert(i - 1, cp);
    let (seq, why) = failed_at(&lines);
    assert_eq!(seq, 40, "{why}");
}

#[test]
fn time_window_export_is_a_provable_range() {
    let f = log(95);
    // Events 25..=43 by time; the end moves forward to the checkpoint at 50.
    let filter = ExportFilter {
        since: Some(t(25)),
        until: Some(t(44)),
        ..ExportFilter::default()
    };
    let (lines, s) = export_jsonl(&f, filter);
    assert_eq!(
        (s.first_seq, s.last_seq, s.events, s.checkpoints),
        (25, 50, 26, 3)
    );
    let h: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(h["filters"]["since"], rampart_audit::canonical_time(&t(25)));
    assert_ne!(h["prev_hash"], "00".repeat(32));
    let r = check(&lines);
    assert_eq!(r.problem, None);
    assert_eq!((r.first_seq, r.last_seq), (25, 50));
    // The anchoring prev_hash is bound by the signature too.
    let mut bad = lines.clone();
    bad[0] = bad[0].replace(h["prev_hash"].as_str().unwrap(), &"11".repeat(32));
    assert_eq!(failed_at(&bad).0, 25);
    // Nothing in the window: an empty export that says so.
    let (lines, s) = export_jsonl(
        &f,
        ExportFilter {
            since: Some(t(1000)),
            ..ExportFilter::default()
        },
    );
    assert_eq!((lines.len(), s.events), (1, 0));
    let r = check(&lines);
    assert_eq!((r.problem, r.events), (None, 0));
}

#[test]
fn unsigned_tail_is_held_back_while_the_log_is_open() {
    let f = Fixture::new();
    let log = f.open(config(EVERY));
    for i in 1..=25 {
        log.append(ev(i)).unwrap();
    }
    // The writer is still open: the last checkpoint is at 20.
    let (lines, s) = export_jsonl(&f, ExportFilter::default());
    assert_eq!((s.last_seq, s.held_back, s.unsigned_tail), (20, 5, false));
    assert_eq!(check(&lines).problem, None);
    log.close().unwrap();
    let (lines, s) = export_jsonl(&f, ExportFilter::default());
    assert_eq!((s.last_seq, s.held_back), (25, 0));
    assert_eq!(check(&lines).problem, None);
}

#[test]
fn log_without_checkpoints_exports_but_does_not_verify() {
    let f = Fixture::new();
    let log = AuditLog::open(&f.path, None, config(EVERY)).unwrap();
    for i in 1..=5 {
        log.append(ev(i)).unwrap();
    }
    log.close().unwrap();
    let (lines, s) = export_jsonl(&f, ExportFilter::default());
    assert!(s.unsigned_tail);
    assert_eq!(s.events, 5);
    let (seq, why) = failed_at(&lines);
    assert_eq!(seq, 1, "{why}");
}

#[test]
fn siem_formats_filter_by_kind_user_and_time_and_jsonl_refuses_them() {
    let f = log(95);
    let kinds = EventKind::all();
    let wanted = [kinds[3], kinds[19]];
    for format in [ExportFormat::Cef, ExportFormat::Ocsf, ExportFormat::Syslog] {
        let mut opts = ExportOptions::new(format);
        opts.filter = ExportFilter {
            kinds: wanted.to_vec(),
            user: Some("user3".into()),
            since: Some(t(2)),
            until: Some(t(90)),
        };
        let mut out = Vec::new();
        let s = export(&f.path, &opts, &mut out).unwrap();
        // ev(i): kind = all()[i % 24], user = user{i % 7}; i in 2..90.
        let expected: Vec<u64> = (2..90)
            .filter(|i| wanted.contains(&kinds[(*i as usize) % kinds.len()]) && i % 7 == 3)
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(s.events, expected.len() as u64, "{format:?}");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), expected.len());
        for (line, seq) in text.lines().zip(&expected) {
            let marker = match format {
                ExportFormat::Cef => format!("cn2={seq} "),
                ExportFormat::Ocsf => format!("\"sequence\":{seq},"),
                _ => format!(" seq=\"{seq}\" "),
            };
            assert!(line.contains(&marker), "{line}");
        }
    }
    let mut opts = ExportOptions::new(ExportFormat::Jsonl);
    opts.filter.kinds = vec![EventKind::CertIssued];
    let err = export(&f.path, &opts, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, AuditError::Config(_)), "{err}");
    let mut opts = ExportOptions::new(ExportFormat::Jsonl);
    opts.filter.user = Some("user1".into());
    assert!(matches!(
        export(&f.path, &opts, &mut Vec::new()),
        Err(AuditError::Config(_))
    ));
}

#[test]
fn export_reads_only() {
    let f = log(12);
    let before = std::fs::read(&f.path).unwrap();
    let (_, s) = export_jsonl(&f, ExportFilter::default());
    assert_eq!(s.events, 12);
    assert_eq!(std::fs::read(&f.path).unwrap(), before);
    // A file that is not an audit database is refused, not created or changed.
    let other = f.dir.path().join("not-audit.db");
    let err = export(
        &other,
        &ExportOptions::new(ExportFormat::Cef),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, AuditError::Io(_)), "{err}");
    assert!(!other.exists());
}
