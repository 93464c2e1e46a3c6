//! The audit database's schema version: a database from a newer release is
//! refused by the writer and every reader and left untouched; reopening a
//! current one changes nothing and keeps it verifiable.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test binary is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{build, config, key, Fixture};
use rampart_audit::{schema_version, verify, AuditError, AuditLog};
use rusqlite::Connection;

fn pragma(path: &std::path::Path, name: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

fn schema(path: &std::path::Path) -> Vec<String> {
    Connection::open(path)
        .unwrap()
        .prepare("SELECT sql FROM sqlite_schema ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn reopening_a_current_database_changes_nothing() {
    let f = Fixture::new();
    build(&f.path, 5, 2);
    let before = schema(&f.path);
    assert_eq!(schema_version(&f.path).unwrap(), 1);
    AuditLog::open(&f.path, Some(key()), config(2))
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(schema(&f.path), before);
    assert_eq!(pragma(&f.path, "user_version"), 1);
    assert!(verify(&f.path, Some(key().public_key())).unwrap().is_ok());
}

#[test]
fn a_database_from_a_newer_release_is_refused_everywhere_and_left_alone() {
    let f = Fixture::new();
    build(&f.path, 5, 2);
    Connection::open(&f.path)
        .unwrap()
        .pragma_update(None, "user_version", 2)
        .unwrap();
    let before = schema(&f.path);
    let names_both = |e: AuditError| {
        let msg = e.to_string();
        assert!(
            matches!(e, AuditError::Format(_))
                && msg.contains("schema version 2")
                && msg.contains("the 1 this"),
            "{msg}"
        );
    };
    names_both(AuditLog::open(&f.path, Some(key()), config(2)).unwrap_err());
    names_both(verify(&f.path, None).unwrap_err());
    names_both(schema_version(&f.path).unwrap_err());
    assert_eq!(schema(&f.path), before);
    assert_eq!(pragma(&f.path, "user_version"), 2);
    let events: i64 = Connection::open(&f.path)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 5);
}

#[test]
fn readers_refuse_an_older_version_they_would_misread() {
    let f = Fixture::new();
    build(&f.path, 3, 2);
    Connection::open(&f.path)
        .unwrap()
        .pragma_update(None, "user_version", 0)
        .unwrap();
    let msg = verify(&f.path, None).unwrap_err().to_string();
    assert!(msg.contains("schema version 0 is older"), "{msg}");
}
