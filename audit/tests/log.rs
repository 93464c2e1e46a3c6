//! The log's behaviour end to end over a real SQLite file.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test binary is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rampart_audit::{
    verify, AuditConfig, AuditError, AuditLog, EventKind, NewEvent, Outcome, Query, Severity,
};

#[test]
fn empty_log_head_and_verify() {
    let f = Fixture::new();
    let log = f.open(config(1000));
    assert_eq!(log.head().unwrap(), (0, [0; 32]));
    assert!(log.healthy());
    assert_eq!(log.checkpoint_now().unwrap(), None, "nothing to checkpoint");
    log.close().unwrap();
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!(
        (r.events, r.checkpoints, r.last_seq, r.problem),
        (0, 0, 0, None)
    );
}

#[test]
fn happy_path_chain_verifies_with_checkpoints() {
    let f = Fixture::new();
    let log = f.open(config(10));
    let mut last = None;
    for i in 1..=35 {
        let a = log.append(ev(i)).unwrap();
        assert_eq!(a.seq, i);
        last = Some(a);
    }
    let last = last.unwrap();
    assert_eq!(log.head().unwrap(), (35, last.hash));
    log.close().unwrap();
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!(r.problem, None);
    assert!(r.is_ok() && r.signatures_checked);
    assert_eq!(r.events, 35);
    // count checkpoints at 10, 20, 30 and the final one on close at 35
    assert_eq!(r.checkpoints, 4);
    assert_eq!(r.last_checkpoint_seq, 35);
    // Without a key, the chain is still checked but signatures are not.
    let r = verify(&f.path, None).unwrap();
    assert!(r.is_ok() && !r.signatures_checked);
    // With the wrong key, the first checkpoint fails.
    let r = verify(&f.path, Some(other_key().public_key())).unwrap();
    let p = r.problem.unwrap();
    assert_eq!(p.seq, 10);
    assert!(p.reason.contains("checkpoint signature invalid"), "{p}");
}

#[test]
fn appended_hash_matches_query_and_fields_round_trip() {
    let f = Fixture::new();
    let log = f.open(config(1000));
    let id = ulid::Ulid::from_parts(1_700_000_000_000, 42);
    let a = log
        .append(
            NewEvent::new(EventKind::MfaSucceeded, Outcome::Success, t(1))
                .with_id(id)
                .actor("ca")
                .user("alice")
                .source("198.51.100.7")
                .target("alice@db-1")
                .session("sess-9")
                .serial(u64::MAX)
                .mfa_method("totp")
                .mfa_age_seconds(-3)
                .reason("ok")
                .detail("nested", serde_json::json!({"b": 1, "a": [1, "x"]}))
                .detail("f", 1.5),
        )
        .unwrap();
    assert_eq!((a.seq, a.id), (1, id));
    let got = log.query(&Query::all()).unwrap();
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_eq!(e.id, id);
    assert_eq!(e.hash, a.hash);
    assert_eq!(e.time, t(1));
    assert_eq!(e.code, "RA-AUTH-003");
    assert_eq!(e.severity, Severity::Info);
    assert_eq!(e.serial, Some(u64::MAX));
    assert_eq!(e.mfa_age_seconds, Some(-3));
    assert_eq!(e.target.as_deref(), Some("alice@db-1"));
    assert_eq!(e.details["nested"]["a"][1], "x");
    // u64::MAX serial is queryable
    assert_eq!(log.query(&Query::all().serial(u64::MAX)).unwrap().len(), 1);
    assert_eq!(log.query(&Query::all().serial(1)).unwrap().len(), 0);
    log.close().unwrap();
    assert!(verify(&f.path, Some(key().public_key())).unwrap().is_ok());
}

#[test]
fn duplicate_preset_id_is_refused_without_poisoning_others() {
    let f = Fixture::new();
    let log = f.open(config(1000));
    let id = ulid::Ulid::from_parts(1, 1);
    log.append(ev(1).with_id(id)).unwrap();
    match log.append(ev(2).with_id(id)) {
        Err(AuditError::DuplicateId(d)) => assert_eq!(d, id),
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    assert!(
        log.healthy(),
        "a caller's duplicate is not a storage failure"
    );
    assert_eq!(log.append(ev(3)).unwrap().seq, 2);
    log.close().unwrap();
    assert!(verify(&f.path, None).unwrap().is_ok());
}

#[test]
fn concurrent_appends_16_threads_are_unique_and_gap_free() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        checkpoint_every_events: 100,
        max_batch: 64,
        ..AuditConfig::default()
    });
    let per = 200u64;
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..per)
                    .map(|i| log.append(ev(t * per + i)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs = Vec::new();
    let mut ids = HashSet::new();
    for th in threads {
        for a in th.join().unwrap() {
            seqs.push(a.seq);
            assert!(ids.insert(a.id), "duplicate ULID");
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=16 * per).collect::<Vec<_>>());
    assert_eq!(log.head().unwrap().0, 16 * per);
    log.close().unwrap();
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!(r.problem, None);
    assert_eq!(r.events, 16 * per);
    assert!(r.checkpoints >= 32, "count checkpoints: {}", r.checkpoints);
}

#[test]
fn reopen_resumes_the_chain() {
    let f = Fixture::new();
    build(&f.path, 25, 10);
    let log = f.open(config(10));
    let (seq, _) = log.head().unwrap();
    assert_eq!(seq, 25);
    for i in 26..=40 {
        assert_eq!(log.append(ev(i)).unwrap().seq, i);
    }
    drop(log); // dropping the last handle closes (and checkpoints) too
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!(r.problem, None);
    assert_eq!((r.events, r.last_checkpoint_seq), (40, 40));
    // checkpoints: 10, 20, 25 (close), 35 (count since 25), 40 (drop)
    assert_eq!(r.checkpoints, 5);
}

#[test]
fn time_based_checkpoint_fires() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        checkpoint_every_events: 0,
        checkpoint_every: Duration::from_millis(100),
        ..AuditConfig::default()
    });
    log.append(ev(1)).unwrap();
    log.append(ev(2)).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert!(r.is_ok());
    assert_eq!(
        r.last_checkpoint_seq, 2,
        "idle writer checkpoints after the interval"
    );
    assert_eq!(log.checkpoint_now().unwrap(), None, "nothing new");
    log.close().unwrap();
}

#[test]
fn checkpoint_now_signs_current_head() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        checkpoint_every_events: 0,
        checkpoint_every: Duration::from_secs(3600),
        ..AuditConfig::default()
    });
    for i in 1..=3 {
        log.append(ev(i)).unwrap();
    }
    let cp = log.checkpoint_now().unwrap().unwrap();
    assert_eq!(cp.hash, log.head().unwrap().1);
    assert_eq!(cp.seq, 3);
    assert_eq!(cp.time, t(3), "checkpoint time is the last event's time");
    cp.verify(key().public_key()).unwrap();
    log.close().unwrap();
}

#[test]
fn no_key_means_no_checkpoints_but_chain_verifies() {
    let f = Fixture::new();
    let log = AuditLog::open(&f.path, None, config(2)).unwrap();
    for i in 1..=5 {
        log.append(ev(i)).unwrap();
    }
    assert_eq!(log.checkpoint_now().unwrap(), None);
    log.close().unwrap();
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!((r.events, r.checkpoints, r.problem), (5, 0, None));
}

#[test]
fn close_stops_appends_and_is_idempotent() {
    let f = Fixture::new();
    let log = f.open(config(1000));
    log.append(ev(1)).unwrap();
    let clone = log.clone();
    log.close().unwrap();
    log.close().unwrap();
    assert!(matches!(clone.append(ev(2)), Err(AuditError::WriterGone)));
    assert!(matches!(
        clone.checkpoint_now(),
        Err(AuditError::WriterGone)
    ));
    assert!(!clone.healthy());
    // reads still work after close
    assert_eq!(clone.query(&Query::all()).unwrap().len(), 1);
}

#[test]
fn query_filters() {
    let f = Fixture::new();
    let log = f.open(config(1000));
    for i in 1..=100 {
        log.append(ev(i)).unwrap();
    }
    let all = log.query(&Query::all()).unwrap();
    assert_eq!(all.len(), 100);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));

    let alice = log.query(&Query::all().user("user3")).unwrap();
    assert!(!alice.is_empty());
    assert!(alice.iter().all(|e| e.user.as_deref() == Some("user3")));
    assert_eq!(
        alice.len(),
        all.iter()
            .filter(|e| e.user.as_deref() == Some("user3"))
            .count()
    );

    let certs = log
        .query(&Query::all().kind(EventKind::CertIssued))
        .unwrap();
    assert!(!certs.is_empty() && certs.iter().all(|e| e.kind == EventKind::CertIssued));

    let window = log.query(&Query::all().since(t(10)).until(t(20))).unwrap();
    assert_eq!(
        window.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );

    let newest = log.query(&Query::all().newest_first().limit(3)).unwrap();
    assert_eq!(
        newest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![100, 99, 98]
    );

    let page = log.query(&Query::all().after_seq(95)).unwrap();
    assert_eq!(page.len(), 5);

    let by_serial = log.query(&Query::all().serial(1003)).unwrap();
    assert_eq!(by_serial.len(), 1);
    assert_eq!(by_serial[0].seq, 3);

    let none = log.query(&Query::all().user("nobody")).unwrap();
    assert!(none.is_empty());
    log.close().unwrap();
}

#[test]
fn triggers_refuse_update_and_delete() {
    let f = Fixture::new();
    build(&f.path, 5, 2);
    let c = rusqlite::Connection::open(&f.path).unwrap();
    for sql in [
        "UPDATE events SET user = 'mallory' WHERE seq = 2",
        "DELETE FROM events WHERE seq = 5",
        "UPDATE checkpoints SET signature = 'x'",
        "DELETE FROM checkpoints",
    ] {
        let err = c.execute(sql, []).unwrap_err();
        assert!(
            err.to_string().contains("audit log is append-only"),
            "{sql}: {err}"
        );
    }
    drop(c);
    // and the stock sqlite3 tool is refused the same way
    let out = std::process::Command::new("sqlite3")
        .arg(&f.path)
        .arg("DELETE FROM events WHERE seq = 1;")
        .output()
        .expect("sqlite3 is installed (apt-get install -y sqlite3)");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit log is append-only"));
    assert!(verify(&f.path, Some(key().public_key())).unwrap().is_ok());
}

#[test]
fn open_refuses_foreign_database_and_bad_config() {
    let f = Fixture::new();
    let c = rusqlite::Connection::open(&f.path).unwrap();
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    drop(c);
    assert!(matches!(
        AuditLog::open(&f.path, None, AuditConfig::default()),
        Err(AuditError::Format(_))
    ));
    assert!(matches!(verify(&f.path, None), Err(AuditError::Format(_))));
    assert!(matches!(
        verify(&f.dir.path().join("missing.db"), None),
        Err(AuditError::Io(_))
    ));

    let g = Fixture::new();
    let bad = AuditConfig {
        max_batch: 0,
        ..AuditConfig::default()
    };
    assert!(matches!(
        AuditLog::open(&g.path, None, bad),
        Err(AuditError::Config(_))
    ));
}

#[test]
fn encrypted_checkpoint_key_is_refused() {
    let f = Fixture::new();
    let enc = key()
        .encrypt(&mut ssh_key::getrandom::SysRng, "pw")
        .unwrap();
    assert!(matches!(
        AuditLog::open(&f.path, Some(enc), AuditConfig::default()),
        Err(AuditError::Signature(_))
    ));
}

#[test]
fn handle_is_send_sync_and_shared() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<AuditLog>();
    let f = Fixture::new();
    let log = Arc::new(f.open(config(1000)));
    let l2 = Arc::clone(&log);
    std::thread::spawn(move || l2.append(ev(1)).unwrap())
        .join()
        .unwrap();
    assert_eq!(log.head().unwrap().0, 1);
}
