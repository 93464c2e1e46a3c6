//! The witness file against an attacker who can write the audit database: a log
//! cut back to an earlier checkpoint, an `anchors` row copied from a checkpoint
//! to make the history before it deletable, and an altered witness line are all
//! invisible to `verify` on the database alone, and all caught by the witness;
//! a writer refuses to open a database that is behind its witness, and one whose
//! witness was deleted or emptied (only a deliberate `restart` begins it again).

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test binary is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rampart_audit::retention::prune_witnessed;
use rampart_audit::witness::{self, Depth, Head, WitnessKind};
use rampart_audit::{verify, AuditConfig, AuditError, AuditLog};

fn witness_path(f: &Fixture) -> PathBuf {
    f.dir.path().join("audit.witness")
}

fn wconfig(every: u64, w: &Path) -> AuditConfig {
    AuditConfig {
        checkpoint_every_events: every,
        witness: Some(w.to_owned()),
        ..AuditConfig::default()
    }
}

/// 50 events, a checkpoint every 10 (10, 20, 30, 40, 50), all witnessed.
fn witnessed_log() -> (Fixture, PathBuf) {
    let f = Fixture::new();
    let w = witness_path(&f);
    let log = AuditLog::open(&f.path, Some(key()), wconfig(10, &w)).unwrap();
    for i in 1..=50 {
        log.append(ev(i)).unwrap();
    }
    log.close().unwrap();
    (f, w)
}

fn check_all(f: &Fixture, w: &Path) -> witness::WitnessReport {
    witness::check_file(&f.path, w, Some(key().public_key()), Depth::All).unwrap()
}

#[test]
fn every_committed_checkpoint_is_witnessed_and_an_intact_log_agrees() {
    let (f, w) = witnessed_log();
    let entries = witness::read(&w).unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![10, 20, 30, 40, 50]);
    assert!(entries.iter().all(|e| e.kind == WitnessKind::Checkpoint));
    let r = check_all(&f, &w);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.lines_checked, 5);
    assert_eq!(r.db_head.seq, 50);
    assert_eq!(r.witnessed_head.unwrap().0, r.db_head);
    // The same head, typed in by hand, agrees too.
    let expected = Head::parse(&format!("50:{}", hex::encode(r.db_head.hash))).unwrap();
    assert_eq!(witness::check_expected(&f.path, &expected).unwrap(), None);
}

#[test]
fn a_log_cut_back_to_an_earlier_checkpoint_is_caught_by_the_witness() {
    let (f, w) = witnessed_log();
    let head = check_all(&f, &w).db_head;
    // Cut everything after checkpoint 30: events and checkpoints alike.
    let c = attacker(&f.path);
    c.execute_batch("DELETE FROM events WHERE seq > 30; DELETE FROM checkpoints WHERE seq > 30;")
        .unwrap();
    drop(c);
    // The database alone cannot tell: it is a valid, signed log ending at 30.
    let rep = verify(&f.path, Some(key().public_key())).unwrap();
    assert!(rep.is_ok(), "{rep:?}");
    assert_eq!(rep.last_seq, 30);

    let r = check_all(&f, &w);
    let p = r.problem.expect("the witness must see the cut");
    assert!(p.contains("behind"), "{p}");
    assert!(
        p.contains("sequence 30") && p.contains("sequence 40"),
        "{p}"
    );
    // The newest line alone (what a starting CA checks) names both heads.
    let r = witness::check_file(&f.path, &w, None, Depth::Newest).unwrap();
    let p = r.problem.unwrap();
    assert!(
        p.contains("sequence 30") && p.contains("sequence 50"),
        "{p}"
    );
    assert!(p.contains(&hex::encode(head.hash)), "{p}");
    // --expect-head with the old head says the same.
    let p = witness::check_expected(&f.path, &head).unwrap().unwrap();
    assert!(p.contains("behind"), "{p}");

    // And the writer refuses to continue the chain from the cut.
    let err = AuditLog::open(&f.path, Some(key()), wconfig(10, &w)).unwrap_err();
    assert!(matches!(err, AuditError::Witness(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("sequence 30") && msg.contains("sequence 50"),
        "{msg}"
    );
}

#[test]
fn a_chain_rewritten_past_a_witnessed_checkpoint_disagrees_with_it() {
    let (f, w) = witnessed_log();
    // Rewrite from 41 on: same length, re-chained, re-checkpointed with no key at all
    // (the attacker has no audit key, so drop the old checkpoints and append anew).
    let c = attacker(&f.path);
    c.execute_batch("DELETE FROM events WHERE seq > 40; DELETE FROM checkpoints WHERE seq > 40;")
        .unwrap();
    drop(c);
    let log = AuditLog::open(&f.path, None, AuditConfig::default()).unwrap();
    for i in 100..110 {
        log.append(ev(i)).unwrap();
    }
    log.close().unwrap();
    assert!(verify(&f.path, Some(key().public_key())).unwrap().is_ok());
    let p = check_all(&f, &w).problem.unwrap();
    assert!(p.contains("disagrees") && p.contains("sequence 50"), "{p}");
}

#[test]
fn a_copied_anchors_row_is_caught_by_the_witness() {
    let (f, w) = witnessed_log();
    // Copy checkpoint 30 (genuinely signed) into an anchors table and delete the
    // history before it, as retention would have.
    let c = attacker(&f.path);
    c.execute_batch(
        "CREATE TABLE anchors (seq INTEGER PRIMARY KEY NOT NULL, hash BLOB NOT NULL,
             time TEXT NOT NULL, signature TEXT NOT NULL) STRICT;
         INSERT INTO anchors SELECT seq, hash, time, signature FROM checkpoints WHERE seq = 30;
         DELETE FROM events WHERE seq <= 30; DELETE FROM checkpoints WHERE seq < 30;",
    )
    .unwrap();
    drop(c);
    // The database alone: a signed anchor, a valid chain after it.
    let rep = verify(&f.path, Some(key().public_key())).unwrap();
    assert!(rep.is_ok(), "{rep:?}");
    assert_eq!(rep.anchor.as_ref().unwrap().seq, 30);

    let p = check_all(&f, &w).problem.expect("an unwitnessed anchor");
    assert!(p.contains("anchor") && p.contains("never"), "{p}");
    assert!(p.contains("sequence 30"), "{p}");
}

#[test]
fn an_anchor_made_by_retention_is_witnessed_and_verifies() {
    let (f, w) = witnessed_log();
    // Cut-off after event 35's time: the anchor is checkpoint 30.
    let r = prune_witnessed(&f.path, t(35), Some(&w)).unwrap();
    assert_eq!(r.anchor.as_ref().unwrap().seq, 30);
    assert!(r.events_deleted > 0);
    let entries = witness::read(&w).unwrap();
    let last = entries.last().unwrap();
    assert_eq!((last.kind, last.seq), (WitnessKind::Anchor, 30));
    let r = check_all(&f, &w);
    assert!(r.is_ok(), "{r:?}");
    // Lines before the anchor were still signature-checked.
    assert_eq!(r.lines_checked, 6);
}

#[test]
fn pruning_does_not_begin_a_deleted_witness_again() {
    let (f, w) = witnessed_log();
    std::fs::remove_file(&w).unwrap();
    let err = prune_witnessed(&f.path, t(35), Some(&w)).unwrap_err();
    assert!(
        matches!(&err, AuditError::Witness(m) if m.contains("has disappeared")),
        "{err}"
    );
    assert!(!w.exists(), "no new witness holding only the anchor");
    // Nothing was pruned: the log is whole and still needs its witness back.
    let report = verify(&f.path, Some(key().public_key())).unwrap();
    assert!(report.problem.is_none(), "{report:?}");
    assert_eq!(report.events, 50);
}

#[test]
fn a_tampered_witness_line_is_detected() {
    let (f, w) = witnessed_log();
    let text = std::fs::read_to_string(&w).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    // Line 2 (checkpoint 20) now claims another hash.
    v["hash"] = serde_json::Value::String("ab".repeat(32));
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 1 {
            out.push_str(&serde_json::to_string(&v).unwrap());
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    std::fs::write(&w, out).unwrap();

    // With the key: the line's signature fails.
    let p = check_all(&f, &w).problem.unwrap();
    assert!(p.contains("line 2") && p.contains("signature"), "{p}");
    // Without it: its hash is not the chain's at 20.
    let r = witness::check_file(&f.path, &w, None, Depth::All).unwrap();
    let p = r.problem.unwrap();
    assert!(p.contains("line 2") && p.contains("sequence 20"), "{p}");
    // The database itself is fine.
    assert!(verify(&f.path, Some(key().public_key())).unwrap().is_ok());

    // A line that is not a witness line at all, or a torn last line, is refused.
    std::fs::write(&w, format!("{}\nnot json\n", lines[0])).unwrap();
    let err = witness::read(&w).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
    std::fs::write(&w, format!("{}\n{}", lines[0], &lines[1][..40])).unwrap();
    let err = witness::read(&w).unwrap_err().to_string();
    assert!(
        err.contains("line 2") && err.contains("incomplete"),
        "{err}"
    );
}

/// Opening with the witness and asserting the refusal names the missing file,
/// the newest checkpoint and the possibility of a cut.
fn assert_refused_as_missing(f: &Fixture, w: &Path, newest: u64) {
    let err = AuditLog::open(&f.path, Some(key()), wconfig(10, w)).unwrap_err();
    let AuditError::WitnessMissing(msg) = &err else {
        panic!("expected WitnessMissing, got {err:?}");
    };
    assert!(msg.contains(&w.display().to_string()), "{msg}");
    assert!(msg.contains("missing or empty"), "{msg}");
    assert!(msg.contains(&format!("sequence {newest}")), "{msg}");
    assert!(msg.contains("cut back"), "{msg}");
    // The same answer for `rampart-ca check`, without opening a writer.
    let p = witness::absent_check(&f.path, w).unwrap().unwrap();
    assert_eq!(&p, msg);
}

#[test]
fn a_deleted_witness_beside_checkpoints_is_refused_not_restarted() {
    let (f, w) = witnessed_log();
    std::fs::remove_file(&w).unwrap();
    assert_refused_as_missing(&f, &w, 50);
    // Refusing wrote nothing: neither a new witness nor an event.
    assert!(!w.exists());
    assert_eq!(witness::read_head(&f.path).unwrap().seq, 50);
}

#[test]
fn an_emptied_witness_beside_checkpoints_is_refused() {
    let (f, w) = witnessed_log();
    std::fs::write(&w, b"").unwrap();
    assert_refused_as_missing(&f, &w, 50);
    assert_eq!(std::fs::metadata(&w).unwrap().len(), 0);
}

#[test]
fn a_log_cut_back_with_its_witness_deleted_is_refused() {
    // The attack: cut the log back to checkpoint 30 (a valid, signed, shorter
    // log) and delete the witness that would show the cut.
    let (f, w) = witnessed_log();
    let c = attacker(&f.path);
    c.execute_batch("DELETE FROM events WHERE seq > 30; DELETE FROM checkpoints WHERE seq > 30;")
        .unwrap();
    drop(c);
    std::fs::remove_file(&w).unwrap();
    assert!(verify(&f.path, Some(key().public_key())).unwrap().is_ok());
    assert_refused_as_missing(&f, &w, 30);
}

#[test]
fn a_log_without_checkpoints_begins_its_witness_at_its_first_checkpoint() {
    let f = Fixture::new();
    let w = witness_path(&f);
    // A new log: no witness, nothing to have witnessed.
    let log = AuditLog::open(&f.path, Some(key()), wconfig(10, &w)).unwrap();
    assert_eq!(witness::absent_check(&f.path, &w).unwrap(), None);
    for i in 1..=3 {
        log.append(ev(i)).unwrap();
    }
    // Closing signs the first checkpoint, and it is witnessed.
    log.close().unwrap();
    let entries = witness::read(&w).unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    assert!(check_all(&f, &w).is_ok());
    // From here on the witness guards the log like any other.
    std::fs::remove_file(&w).unwrap();
    assert_refused_as_missing(&f, &w, 3);
}

#[test]
fn an_empty_witness_beside_a_log_with_no_checkpoint_is_accepted() {
    let f = Fixture::new();
    let w = witness_path(&f);
    // Events, but no checkpoint key, so no checkpoint.
    let log = AuditLog::open(&f.path, None, AuditConfig::default()).unwrap();
    log.append(ev(1)).unwrap();
    log.close().unwrap();
    std::fs::write(&w, b"").unwrap();
    let log = AuditLog::open(&f.path, None, wconfig(10, &w)).unwrap();
    log.close().unwrap();
}

#[test]
fn a_restarted_witness_starts_at_the_newest_checkpoint_and_then_guards_it() {
    let (f, w) = witnessed_log();
    std::fs::remove_file(&w).unwrap();
    let points = witness::restart(&f.path, &w).unwrap();
    assert_eq!(points.newest().unwrap().seq, 50);
    assert!(points.anchor.is_none());
    let entries = witness::read(&w).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].kind, entries[0].seq),
        (WitnessKind::Checkpoint, 50)
    );
    assert!(check_all(&f, &w).is_ok(), "the restarted line verifies");
    // The writer opens again and the witness moves on.
    let log = AuditLog::open(&f.path, Some(key()), wconfig(10, &w)).unwrap();
    log.append(ev(51)).unwrap();
    log.close().unwrap();
    assert_eq!(witness::read(&w).unwrap().last().unwrap().seq, 51);
    // A cut after the restart is caught again.
    let c = attacker(&f.path);
    c.execute_batch("DELETE FROM events WHERE seq > 50; DELETE FROM checkpoints WHERE seq > 50;")
        .unwrap();
    drop(c);
    let err = AuditLog::open(&f.path, Some(key()), wconfig(10, &w)).unwrap_err();
    assert!(matches!(err, AuditError::Witness(_)), "{err}");
}

#[test]
fn a_restart_carries_the_retention_anchor_over() {
    let (f, w) = witnessed_log();
    prune_witnessed(&f.path, t(35), Some(&w)).unwrap();
    std::fs::remove_file(&w).unwrap();
    let points = witness::restart(&f.path, &w).unwrap();
    let kinds: Vec<(WitnessKind, u64)> = witness::read(&w)
        .unwrap()
        .iter()
        .map(|e| (e.kind, e.seq))
        .collect();
    assert_eq!(
        kinds,
        vec![(WitnessKind::Anchor, 30), (WitnessKind::Checkpoint, 50)]
    );
    assert_eq!(points.newest().unwrap().seq, 50);
    assert!(check_all(&f, &w).is_ok());
}

#[test]
fn a_restart_refuses_a_witness_that_is_there_and_a_log_with_nothing_to_witness() {
    let (f, w) = witnessed_log();
    let before = std::fs::read(&w).unwrap();
    let err = witness::restart(&f.path, &w).unwrap_err().to_string();
    assert!(
        err.contains("not empty") && err.contains("move it aside"),
        "{err}"
    );
    assert_eq!(std::fs::read(&w).unwrap(), before, "left untouched");

    let g = Fixture::new();
    let gw = witness_path(&g);
    let log = AuditLog::open(&g.path, None, AuditConfig::default()).unwrap();
    log.append(ev(1)).unwrap();
    log.close().unwrap();
    let err = witness::restart(&g.path, &gw).unwrap_err().to_string();
    assert!(err.contains("no checkpoint yet"), "{err}");
    assert!(!gw.exists());
}

#[test]
fn a_witness_deleted_under_a_running_writer_is_not_begun_again() {
    let f = Fixture::new();
    let w = witness_path(&f);
    let log = AuditLog::open(&f.path, Some(key()), wconfig(10, &w)).unwrap();
    for i in 1..=10 {
        log.append(ev(i)).unwrap();
    }
    assert!(w.exists(), "the first checkpoint begins the witness");
    std::fs::remove_file(&w).unwrap();
    for i in 11..=20 {
        log.append(ev(i)).unwrap();
    }
    assert!(
        !w.exists(),
        "a deleted witness must not quietly begin again"
    );
    assert_eq!(log.witness_failures(), 1, "the checkpoint at 20 is counted");
    log.close().unwrap();
    // And the next start refuses, as for a witness deleted while stopped.
    assert_refused_as_missing(&f, &w, 20);
}

#[test]
fn expected_heads_parse_strictly() {
    let h = format!("7:{}", "0f".repeat(32));
    assert_eq!(Head::parse(&h).unwrap().seq, 7);
    for bad in [
        "7".to_owned(),
        format!("x:{}", "0f".repeat(32)),
        format!("7:{}", "0f".repeat(31)),
        format!("7:{}", "zz".repeat(32)),
        format!("-1:{}", "0f".repeat(32)),
    ] {
        assert!(Head::parse(&bad).is_err(), "{bad}");
    }
}

#[test]
fn a_witness_that_cannot_be_written_is_counted_and_the_log_goes_on() {
    let f = Fixture::new();
    let w = witness_path(&f);
    let log = AuditLog::open(&f.path, Some(key()), wconfig(10, &w)).unwrap();
    for i in 1..=10 {
        log.append(ev(i)).unwrap();
    }
    assert_eq!(log.witness_failures(), 0);
    // The witness path stops being a writable file (a directory stands there).
    std::fs::remove_file(&w).unwrap();
    std::fs::create_dir(&w).unwrap();
    for i in 11..=30 {
        log.append(ev(i)).unwrap();
    }
    assert_eq!(
        log.witness_failures(),
        2,
        "the checkpoints at 20 and 30 were not witnessed"
    );
    assert!(log.healthy(), "the database itself is fine");
    log.close().unwrap();
}
