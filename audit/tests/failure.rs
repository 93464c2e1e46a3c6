//! Fail closed and recover: when the database cannot be written, every pending
//! append gets `Err`, `healthy()` turns false, and service resumes by itself (with
//! a correct, gap-free chain) once the cause is gone.
//!
//! The honest failure we can cause as root: another process holds the database's
//! write lock (`BEGIN EXCLUSIVE`, as an operator's stray `sqlite3` session would).
//! File permissions do not stop root, so a read-only file cannot be simulated here.

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
use rampart_audit::{verify, AuditConfig, AuditError, AuditLog};

fn quick_fail_config() -> AuditConfig {
    AuditConfig {
        busy_timeout: Duration::from_millis(200),
        checkpoint_every_events: 5,
        ..AuditConfig::default()
    }
}

#[test]
fn locked_database_fails_closed_then_recovers() {
    let f = Fixture::new();
    let log = f.open(quick_fail_config());
    for i in 1..=3 {
        log.append(ev(i)).unwrap();
    }
    let head_before = log.head().unwrap();
    assert!(log.healthy());

    let blocker = rusqlite::Connection::open(&f.path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    // Several concurrent appenders: every one of them gets an error.
    let results: Vec<_> = (0..4)
        .map(|i| {
            let log = log.clone();
            std::thread::spawn(move || log.append(ev(100 + i)))
        })
        .map(|h| h.join().unwrap())
        .collect();
    for r in &results {
        match r {
            Err(e @ AuditError::WriteFailed { .. }) => {
                // SQLite's own words arrive as the cause, said once.
                let line = rampart_api::report::one_line(e);
                assert!(line.contains("locked") || line.contains("busy"), "{line}");
                assert_eq!(line.matches("database is").count(), 1, "{line}");
            }
            other => panic!("expected WriteFailed, got {other:?}"),
        }
    }
    assert!(!log.healthy());
    assert_eq!(log.head().unwrap(), head_before, "nothing half-written");
    assert!(
        log.checkpoint_now().is_err(),
        "checkpoint also fails while locked"
    );

    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);

    let a = log.append(ev(4)).unwrap();
    assert_eq!(a.seq, 4, "the chain continues where the database really is");
    assert!(log.healthy());
    for i in 5..=12 {
        log.append(ev(i)).unwrap();
    }
    log.close().unwrap();
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!(r.problem, None);
    assert_eq!(r.events, 12);
}

#[test]
fn two_writers_on_one_file_never_fork_the_chain() {
    // Not a supported deployment, but it must not corrupt anything: each writer
    // sees the head move, reloads it and continues from the stored chain.
    let f = Fixture::new();
    let a = AuditLog::open(&f.path, Some(key()), config(7)).unwrap();
    let b = AuditLog::open(&f.path, Some(key()), config(7)).unwrap();
    let mut seqs = Vec::new();
    for i in 1..=20u64 {
        let log = if i % 2 == 0 { &a } else { &b };
        seqs.push(log.append(ev(i)).unwrap().seq);
    }
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    a.close().unwrap();
    b.close().unwrap();
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!(r.problem, None);
    assert_eq!(r.events, 20);
}

#[test]
fn an_outage_under_load_loses_nothing_it_acknowledged_and_stores_nothing_it_refused() {
    let f = Fixture::new();
    let log = f.open(AuditConfig {
        max_batch: 16,
        ..quick_fail_config()
    });
    let stop_at = std::time::Instant::now() + Duration::from_millis(1500);
    let workers: Vec<_> = (0..8u64)
        .map(|w| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let mut n = 0u64;
                while std::time::Instant::now() < stop_at {
                    let tag = format!("w{w}-{n}");
                    out.push((
                        tag.clone(),
                        log.append(ev(w * 10_000 + n).detail("tag", tag.as_str())),
                    ));
                    n += 1;
                }
                out
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let blocker = rusqlite::Connection::open(&f.path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(blocker); // an open transaction dropped = rolled back, lock released

    let results: Vec<_> = workers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let ok: Vec<_> = results
        .iter()
        .filter_map(|(t, r)| r.as_ref().ok().map(|a| (t, *a)))
        .collect();
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    assert!(failed > 0, "the outage was seen");
    assert!(ok.len() > failed, "service resumed");
    assert!(log.healthy());
    log.close().unwrap();

    let stored = rampart_audit::AuditLog::open(&f.path, None, AuditConfig::default())
        .unwrap()
        .query(&rampart_audit::Query::all())
        .unwrap();
    assert_eq!(
        stored.len(),
        ok.len(),
        "exactly the acknowledged events are stored"
    );
    for (tag, a) in &ok {
        let e = &stored[(a.seq - 1) as usize];
        assert_eq!((e.seq, e.id, e.hash), (a.seq, a.id, a.hash));
        assert_eq!(e.details["tag"], serde_json::json!(tag));
    }
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!(r.problem, None);
}
