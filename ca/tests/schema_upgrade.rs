//! `ca.db` schema versions: a database written by the release before versioning
//! (the fixture is a dump of one) is upgraded on open with its rows intact; a
//! database from a newer release, or another application's, is refused and left
//! untouched; a failed upgrade changes nothing; reopening changes nothing.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test binary is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use rampart_ca::store::prelude::*;
use rampart_ca::store::sqlite::{inspect, SqliteStore, APPLICATION_ID, SCHEMA_VERSION};
use rampart_ca::store::{BastionJoin, BastionRecord, CertKind, InviteRedemption, StoreError};
use rusqlite::Connection;

/// `sqlite3 ca.db .dump` of a database the unversioned release wrote.
const UNVERSIONED: &str = include_str!("fixtures/ca-db-unversioned.sql");

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn load(path: &Path, sql: &str) {
    Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

fn pragma(path: &Path, name: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

/// Everything in the database as text: the schema, every row, the header
/// fields. Equal dumps mean nothing changed.
fn dump(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut out: Vec<String> = conn
        .prepare(
            "SELECT type || ' ' || name || ' ' || ifnull(sql, '') FROM sqlite_schema ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get_ref(i).map(|v| format!("{v:?}")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push(format!("{t}: {}", row.unwrap().join(", ")));
        }
    }
    for p in ["user_version", "application_id"] {
        out.push(format!("{p} {}", pragma(path, p)));
    }
    out.sort();
    out
}

#[test]
fn a_database_from_the_unversioned_release_is_upgraded_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    load(&path, UNVERSIONED);
    assert_eq!(pragma(&path, "user_version"), 0);
    let before = inspect(&path).unwrap();
    assert_eq!(before.found, 0);
    assert!(before.needs_upgrade());
    assert_eq!(pragma(&path, "user_version"), 0, "inspect changes nothing");

    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
    assert_eq!(pragma(&path, "application_id"), APPLICATION_ID);

    // Users.
    let alice = s.user("alice").unwrap().unwrap();
    assert!(alice.admin && !alice.disabled);
    assert_eq!(alice.groups, ["ops", "engineers"]);
    assert!(s.user("bob").unwrap().unwrap().disabled);
    assert_eq!(s.users().unwrap().len(), 3);
    // Certificates, revocations and the serial high-water mark.
    let host = s.cert(2).unwrap().unwrap();
    assert_eq!(
        (host.kind, host.subject.as_str()),
        (CertKind::Host, "web1.example.com")
    );
    let mut alices = s.serials_for_user("alice").unwrap();
    alices.sort_unstable();
    assert_eq!(alices, [1, 3]);
    let r = s.revocations().unwrap();
    assert_eq!((r.version, r.serials.as_slice()), (2, &[3][..]));
    assert_eq!(r.key_fingerprints, ["SHA256:web1key"]);
    assert!(s.serial_revoked(3).unwrap() && !s.serial_revoked(1).unwrap());
    assert_eq!(s.revoked_host_keys().unwrap().len(), 1);
    assert_eq!(
        s.reserve_serials(1).unwrap(),
        11,
        "no serial handed out twice"
    );
    // Single-use tokens keep their state.
    assert_eq!(
        s.redeem_invite(&[0x12; 32], now()).unwrap(),
        InviteRedemption::AlreadyUsed
    );
    assert_eq!(
        s.redeem_invite(&[0x11; 32], now()).unwrap(),
        InviteRedemption::Redeemed("carol".into())
    );
    let b = BastionRecord {
        name: "bastion2".into(),
        host_key_fingerprint: "SHA256:b2".into(),
        joined_at: now(),
    };
    assert_eq!(
        s.join_bastion(&[0x41; 32], &b, &[0x50; 32], now()).unwrap(),
        BastionJoin::AlreadyUsed
    );
    assert_eq!(
        s.bastion_by_credential(&[0x42; 32]).unwrap().unwrap().name,
        "bastion1"
    );
    // Factors, sessions, links and metadata.
    assert_eq!(s.totp("alice").unwrap().unwrap().last_step, 59_000_000);
    assert_eq!(s.recovery_codes_left("alice").unwrap(), 1);
    let keys = s.webauthn_keys("alice").unwrap();
    assert!(keys.len() == 1 && keys[0].attestation_verified && keys[0].sign_count == 7);
    assert!(s.session(&[0x31; 32]).unwrap().is_some());
    assert_eq!(
        s.idp_link("corp", "alice").unwrap().as_deref(),
        Some("sub-alice")
    );
    assert_eq!(s.meta("seal_salt").unwrap().unwrap(), b"fixture-salt");
}

#[test]
fn reopening_a_current_database_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    load(&path, UNVERSIONED);
    drop(SqliteStore::open(&path).unwrap());
    let once = dump(&path);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    drop(s);
    assert_eq!(dump(&path), once);
    assert_eq!(inspect(&path).unwrap().found, SCHEMA_VERSION);
    assert!(!inspect(&path).unwrap().needs_upgrade());
}

#[test]
fn a_database_from_a_newer_release_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    load(&path, UNVERSIONED);
    drop(SqliteStore::open(&path).unwrap());
    let newer = i64::from(SCHEMA_VERSION) + 1;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let before = dump(&path);

    let err = SqliteStore::open(&path).unwrap_err();
    match &err {
        StoreError::SchemaTooNew { found, supported } => {
            assert_eq!((*found, *supported), (newer, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("schema version {newer}"))
            && msg.contains(&format!("the {SCHEMA_VERSION} this")),
        "{msg}"
    );
    assert!(matches!(
        inspect(&path),
        Err(StoreError::SchemaTooNew { .. })
    ));
    assert_eq!(dump(&path), before);
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
            .unwrap();
        conn.pragma_update(None, "application_id", 0x5241_4d41_i64)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let before = dump(&path);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotCaDatabase {
                application_id: 0x5241_4d41
            }
        ),
        "{err:?}"
    );
    assert_eq!(dump(&path), before);
}

#[test]
fn a_failed_upgrade_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    // An unversioned database whose `certs` table lacks the columns version 1
    // indexes: the upgrade fails part-way, after creating other tables.
    load(
        &path,
        "CREATE TABLE certs (serial INTEGER PRIMARY KEY); INSERT INTO certs VALUES (7);",
    );
    let before = dump(&path);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("upgrading the schema to version 1"),
        "{err}"
    );
    assert_eq!(
        dump(&path),
        before,
        "no table, column or version was left behind"
    );
}
