//! `AuditLog::append_all`: a group of events lands contiguously in one
//! transaction, or not at all (the bastion's event batches rely on it).

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test binary is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::*;
use rampart_audit::{verify, AuditConfig, AuditError, Query};

#[test]
fn a_group_is_contiguous_even_with_concurrent_appenders() {
    let f = Fixture::new();
    let log = f.open(config(50));
    let noise: Vec<_> = (0..4)
        .map(|w| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    log.append(ev(1000 + w * 100 + i)).unwrap();
                }
            })
        })
        .collect();
    let mut groups = Vec::new();
    for g in 0..10u64 {
        let events = (0..20).map(|i| ev(g * 20 + i)).collect();
        let appended = log.append_all(events).unwrap();
        assert_eq!(appended.len(), 20);
        groups.push(appended);
    }
    for h in noise {
        h.join().unwrap();
    }
    for appended in &groups {
        let first = appended[0].seq;
        let seqs: Vec<u64> = appended.iter().map(|a| a.seq).collect();
        assert_eq!(
            seqs,
            (first..first + 20).collect::<Vec<_>>(),
            "in order, no gap"
        );
    }
    assert!(log.append_all(Vec::new()).unwrap().is_empty());
    log.close().unwrap();
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!(r.problem, None);
    assert_eq!(r.events, 200 + 200);
}

#[test]
fn a_group_larger_than_max_batch_is_not_split() {
    let f = Fixture::new();
    let cfg = AuditConfig {
        max_batch: 4,
        ..config(1000)
    };
    let log = f.open(cfg);
    let appended = log.append_all((0..30).map(ev).collect()).unwrap();
    let seqs: Vec<u64> = appended.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
    log.close().unwrap();
}

#[test]
fn pre_allocated_ids_are_kept_and_a_duplicate_is_refused_alone() {
    let f = Fixture::new();
    let log = f.open(config(1000));
    let id = ulid::Ulid::new();
    assert!(!log.contains_id(&id).unwrap());
    let appended = log.append_all(vec![ev(0), ev(1).with_id(id)]).unwrap();
    assert_eq!(appended[1].id, id, "the caller's ID is the event's");
    assert!(log.contains_id(&id).unwrap());
    // The same ID again (a resend the caller did not check): that event alone
    // is refused, the others of the group are written, and the error says so.
    let again = log.append_all(vec![ev(2), ev(3).with_id(id)]);
    assert!(
        matches!(again, Err(AuditError::DuplicateId(d)) if d == id),
        "{again:?}"
    );
    assert_eq!(
        log.head().unwrap().0,
        3,
        "ev(2) went in, the duplicate did not"
    );
    log.close().unwrap();
}

#[test]
fn a_locked_database_writes_none_of_the_group() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        busy_timeout: Duration::from_millis(200),
        ..config(1000)
    });
    log.append(ev(1)).unwrap();
    let blocker = rusqlite::Connection::open(&f.path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = log.append_all((2..10).map(ev).collect());
    assert!(matches!(r, Err(AuditError::WriteFailed { .. })), "{r:?}");
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    assert_eq!(log.head().unwrap().0, 1);
    assert_eq!(
        log.query(&Query::all()).unwrap().len(),
        1,
        "none of the group"
    );
    let again = log.append_all((2..10).map(ev).collect()).unwrap();
    assert_eq!(again.first().unwrap().seq, 2);
    log.close().unwrap();
}
