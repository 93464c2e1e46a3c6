//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use rampart_audit::{AuditConfig, AuditLog, EventKind, NewEvent, Outcome};
use ssh_key::private::Ed25519Keypair;
use ssh_key::PrivateKey;
use std::path::{Path, PathBuf};

pub fn key() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]))
}

pub fn other_key() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[8; 32]))
}

pub fn t(i: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + chrono::Duration::milliseconds(i as i64)
}

/// A varied event: cycles kinds, users and optional fields.
pub fn ev(i: u64) -> NewEvent {
    let kinds = EventKind::all();
    let kind = kinds[(i as usize) % kinds.len()];
    let mut e = NewEvent::new(
        kind,
        if i % 5 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        t(i),
    )
    .user(&format!("user{}", i % 7))
    .source("192.0.2.10")
    .detail("i", i);
    if i % 3 == 0 {
        e = e.serial(1000 + i).mfa_method("totp").mfa_age_seconds(5);
    }
    if i % 4 == 0 {
        e = e
            .reason("because")
            .actor("admin")
            .target("db-1")
            .session("s-1");
    }
    e
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        Fixture { dir, path }
    }

    pub fn open(&self, cfg: AuditConfig) -> AuditLog {
        AuditLog::open(&self.path, Some(key()), cfg).unwrap()
    }
}

pub fn config(every: u64) -> AuditConfig {
    AuditConfig {
        checkpoint_every_events: every,
        ..AuditConfig::default()
    }
}

/// Fill a log with `n` events and close it (final checkpoint at `n`).
pub fn build(path: &Path, n: u64, every: u64) {
    let log = AuditLog::open(path, Some(key()), config(every)).unwrap();
    for i in 1..=n {
        log.append(ev(i)).unwrap();
    }
    log.close().unwrap();
}

/// A raw connection with the append-only triggers removed, as an attacker with
/// the `sqlite3` tool and write access to the file would have.
pub fn attacker(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;
         DROP TRIGGER checkpoints_no_update; DROP TRIGGER checkpoints_no_delete;",
    )
    .unwrap();
    c
}
