//! Retention: pruning deletes old events only up to a signed checkpoint, which
//! becomes the anchor `verify` starts from. After pruning the log verifies and
//! names its anchor; a tampered or removed anchor and a row deleted after it are
//! detected; the DELETE trigger still refuses anything past the anchor; a JSON
//! Lines export starts after the anchor and still proves offline; the writer and
//! a forwarder carry on across a prune.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use rampart_audit::export::{export, verify_export, ExportFormat, ExportOptions};
use rampart_audit::retention::{prune, read_anchor};
use rampart_audit::{verify, AuditLog};

fn count(path: &std::path::Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// 200 events (times t(1)..t(200)), a checkpoint every 25.
fn pruned_at_60() -> Fixture {
    let f = Fixture::new();
    build(&f.path, 200, 25);
    // Events before t(60) are old: the newest checkpoint among them is at 50.
    let r = prune(&f.path, t(60)).unwrap();
    assert!(r.new_anchor);
    assert_eq!(r.anchor.as_ref().unwrap().seq, 50);
    assert_eq!(r.events_deleted, 50);
    assert_eq!(r.checkpoints_deleted, 1, "the checkpoint at 25");
    f
}

#[test]
fn keep_forever_is_the_default_and_nothing_old_enough_prunes_nothing() {
    let f = Fixture::new();
    build(&f.path, 30, 25);
    // Nothing is older than t(10) with a checkpoint at or before it.
    let r = prune(&f.path, t(10)).unwrap();
    assert_eq!(r.anchor, None);
    assert_eq!(r.events_deleted, 0);
    assert_eq!(count(&f.path, "events"), 30);
    // Without any anchor, the original triggers still refuse every delete.
    let c = rusqlite::Connection::open(&f.path).unwrap();
    let e = c
        .execute("DELETE FROM events WHERE seq = 1", [])
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    assert_eq!(
        rampart_audit::retention::parse_retention("forever").unwrap(),
        None
    );
}

#[test]
fn after_pruning_verify_passes_from_the_signed_anchor() {
    let f = pruned_at_60();
    assert_eq!(count(&f.path, "events"), 150);
    let rep = verify(&f.path, Some(key().public_key())).unwrap();
    assert!(rep.is_ok(), "{:?}", rep.problem);
    let a = rep.anchor.clone().unwrap();
    assert_eq!(a.seq, 50);
    assert_eq!(rep.events, 150);
    assert_eq!(rep.last_seq, 200);
    assert!(rep.signatures_checked);
    assert_eq!(read_anchor(&f.path).unwrap(), Some(a));
    // Pruning again with the same cut-off is a no-op; a later one moves the anchor.
    let r = prune(&f.path, t(60)).unwrap();
    assert!(!r.new_anchor);
    assert_eq!(r.events_deleted, 0);
    let r = prune(&f.path, t(120)).unwrap();
    assert_eq!(r.anchor.unwrap().seq, 100);
    assert_eq!(r.events_deleted, 50);
    let rep = verify(&f.path, Some(key().public_key())).unwrap();
    assert!(rep.is_ok(), "{:?}", rep.problem);
    assert_eq!(rep.anchor.unwrap().seq, 100);
    assert_eq!(count(&f.path, "anchors"), 2);
}

#[test]
fn the_delete_trigger_still_refuses_rows_past_the_anchor_and_anchors_are_append_only() {
    let f = pruned_at_60();
    let c = rusqlite::Connection::open(&f.path).unwrap();
    for sql in [
        "DELETE FROM events WHERE seq = 51",
        "DELETE FROM events",
        "DELETE FROM checkpoints WHERE seq = 50",
        "DELETE FROM anchors",
        "UPDATE anchors SET seq = 75",
        "UPDATE events SET user = 'x' WHERE seq = 60",
    ] {
        let e = c.execute(sql, []).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(count(&f.path, "events"), 150);
}

#[test]
fn tampering_after_pruning_is_detected() {
    // (what the attacker does, the first bad sequence, words in the reason)
    let cases: [(&str, u64, &str); 5] = [
        (
            "UPDATE anchors SET signature = (SELECT signature FROM checkpoints WHERE seq = 75)",
            50,
            "anchor signature",
        ),
        (
            "UPDATE anchors SET hash = zeroblob(32)",
            50,
            "anchor signature",
        ),
        ("DELETE FROM events WHERE seq = 51", 51, "missing"),
        ("DELETE FROM events WHERE seq = 130", 130, "missing"),
        // Without its anchor the log no longer starts where the chain says.
        ("DELETE FROM anchors", 1, "missing"),
    ];
    for (sql, seq, why) in cases {
        let f = pruned_at_60();
        let c = attacker(&f.path);
        c.execute_batch("DROP TRIGGER anchors_no_update; DROP TRIGGER anchors_no_delete;")
            .unwrap();
        c.execute_batch(sql).unwrap();
        drop(c);
        let rep = verify(&f.path, Some(key().public_key())).unwrap();
        let p = rep.problem.unwrap_or_else(|| panic!("{sql}: not detected"));
        assert_eq!(p.seq, seq, "{sql}: {p}");
        assert!(p.reason.contains(why), "{sql}: {p}");
    }
    // A forged anchor, signed by another key, fails its signature.
    let f = pruned_at_60();
    let other = rampart_audit::Checkpoint::sign(&other_key(), 50, [1; 32], t(50)).unwrap();
    let c = attacker(&f.path);
    c.execute_batch("DROP TRIGGER anchors_no_update;").unwrap();
    c.execute("UPDATE anchors SET signature = ?1", [&other.signature])
        .unwrap();
    drop(c);
    let p = verify(&f.path, Some(key().public_key()))
        .unwrap()
        .problem
        .unwrap();
    assert_eq!(p.seq, 50);
    // Without the key, an altered anchor hash still breaks the chain at 51.
    let f = pruned_at_60();
    let c = attacker(&f.path);
    c.execute_batch("DROP TRIGGER anchors_no_update; UPDATE anchors SET hash = zeroblob(32);")
        .unwrap();
    drop(c);
    let p = verify(&f.path, None).unwrap().problem.unwrap();
    assert_eq!(p.seq, 51, "{p}");
}

#[test]
fn export_after_pruning_starts_at_the_anchor_and_proves_offline() {
    let f = pruned_at_60();
    let mut out = Vec::new();
    let s = export(&f.path, &ExportOptions::new(ExportFormat::Jsonl), &mut out).unwrap();
    assert_eq!(s.first_seq, 51);
    assert_eq!(s.last_seq, 200);
    let text = String::from_utf8(out.clone()).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let anchor = read_anchor(&f.path).unwrap().unwrap();
    assert_eq!(header["prev_hash"], hex::encode(anchor.hash), "{header}");
    let rep = verify_export(&out[..], key().public_key()).unwrap();
    assert!(rep.is_ok(), "{:?}", rep.problem);
    assert_eq!(rep.first_seq, 51);
    assert_eq!(rep.last_seq, 200);
    // Dropping the first exported event is still detected.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(1);
    let cut = lines.join("\n") + "\n";
    let rep = verify_export(cut.as_bytes(), key().public_key()).unwrap();
    assert!(rep.problem.is_some());
}

#[test]
fn pruning_never_removes_the_head_nor_undelivered_events_and_the_writer_continues() {
    let f = Fixture::new();
    build(&f.path, 50, 25); // checkpoints at 25 and 50 (the head)
                            // Everything is old, but the head stays: the anchor is the checkpoint at 25.
    let r = prune(&f.path, t(1_000)).unwrap();
    assert_eq!(r.anchor.unwrap().seq, 25);
    assert_eq!(count(&f.path, "events"), 25);
    // The writer continues the chain after a prune.
    let log = AuditLog::open(&f.path, Some(key()), config(25)).unwrap();
    for i in 51..=80 {
        log.append(ev(i)).unwrap();
    }
    log.close().unwrap();
    let rep = verify(&f.path, Some(key().public_key())).unwrap();
    assert!(rep.is_ok(), "{:?}", rep.problem);
    assert_eq!(rep.last_seq, 80);

    // A forwarder that has only confirmed up to 30 holds pruning at or below 30.
    let c = rusqlite::Connection::open(&f.path).unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS forwarder_cursors (name TEXT PRIMARY KEY NOT NULL,
         last_seq INTEGER NOT NULL, updated_at TEXT NOT NULL) STRICT;
         INSERT INTO forwarder_cursors VALUES ('siem', 30, 'now');",
    )
    .unwrap();
    drop(c);
    let r = prune(&f.path, t(1_000)).unwrap();
    assert_eq!(r.held_by_forwarder, Some(("siem".into(), 30)));
    assert_eq!(r.anchor.unwrap().seq, 25, "no checkpoint in 26..=30");
    assert_eq!(r.events_deleted, 0);
}
