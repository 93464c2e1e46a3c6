//! The audit log on a real PostgreSQL (a throwaway cluster): several writers
//! share one chain without a fork or a gap, the tables refuse edits, a
//! rewrite behind the triggers is found by `verify` on a copy, a newer schema
//! is refused, and a writer comes back after the server restarts.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test binary is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{ev, key};
use rampart_audit::{
    copy_to_sqlite, pg_config, verify, AuditConfig, AuditError, AuditLog, CheckpointSigner,
    EventKind, PgConfig, Query,
};
use rampart_test_postgres::TestPostgres;

fn config(url: &str) -> PgConfig {
    pg_config(url, None).unwrap()
}

fn open(db: &PgConfig, cfg: AuditConfig) -> AuditLog {
    let signer: Arc<dyn CheckpointSigner> = Arc::new(key());
    AuditLog::open_postgres(db, Some(signer), cfg).unwrap()
}

fn small_checkpoints() -> AuditConfig {
    AuditConfig {
        checkpoint_every_events: 100,
        ..AuditConfig::default()
    }
}

/// Each statement, run by the tables' owner on database `audit`, is refused
/// by the append-only triggers.
fn refused_as_append_only(pg: &TestPostgres, statements: &[&str]) {
    for sql in statements {
        let mut c = postgres::Client::connect(&pg.url("audit"), postgres::NoTls).unwrap();
        let e = c.batch_execute(sql).unwrap_err();
        assert!(
            e.as_db_error()
                .is_some_and(|d| d.message().contains("append-only")),
            "{sql}: {e}"
        );
    }
}

/// Copy the log out and verify it with the audit key.
fn verified(db: &PgConfig) -> rampart_audit::VerifyReport {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    copy_to_sqlite(db, &copy).unwrap();
    verify(&copy, Some(key().public_key())).unwrap()
}

#[test]
fn two_writers_share_one_chain_without_a_fork_or_a_gap() {
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let logs = [
        open(&db, small_checkpoints()),
        open(&db, small_checkpoints()),
    ];
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = logs[(t % 2) as usize].clone();
            std::thread::spawn(move || {
                (0..150u64)
                    .map(|i| log.append(ev(t * 1000 + i)).unwrap().seq)
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    for log in &logs {
        log.close().unwrap();
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=1200).collect::<Vec<_>>(), "every position once");
    let report = verified(&db);
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.events, 1200);
    assert_eq!(
        report.last_checkpoint_seq, 1200,
        "the final checkpoint covers all"
    );
    assert!(
        report.checkpoints >= 12,
        "{} checkpoints",
        report.checkpoints
    );
}

#[test]
fn the_tables_refuse_edits_and_a_rewrite_behind_the_triggers_is_found() {
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let log = open(&db, small_checkpoints());
    for i in 0..20 {
        log.append(ev(i).user("alice")).unwrap();
    }
    log.close().unwrap();
    refused_as_append_only(
        &pg,
        &[
            "UPDATE audit_events SET \"user\" = 'mallory' WHERE seq = 7",
            "DELETE FROM audit_events WHERE seq = 20",
            "TRUNCATE audit_events",
            "DELETE FROM audit_checkpoints",
        ],
    );
    assert!(verified(&db).is_ok());
    // The owner can switch the triggers off; the chain still tells.
    pg.psql(
        "audit",
        "ALTER TABLE audit_events DISABLE TRIGGER USER;
         UPDATE audit_events SET body = replace(body, 'alice', 'mallory') WHERE seq = 7;",
    );
    let report = verified(&db);
    let problem = report.problem.expect("a rewritten event is found");
    assert_eq!(problem.seq, 7, "{problem}");
}

#[test]
fn a_newer_schema_is_refused_and_an_empty_database_is_not_a_log() {
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let dir = tempfile::tempdir().unwrap();
    // Nothing there yet: a reader says so rather than copying nothing.
    let e = copy_to_sqlite(&db, &dir.path().join("a.db")).unwrap_err();
    assert!(e.to_string().contains("no Rampart audit log"), "{e}");
    open(&db, AuditConfig::default()).close().unwrap();
    pg.psql("audit", "UPDATE audit_schema SET version = 99");
    let signer: Arc<dyn CheckpointSigner> = Arc::new(key());
    let e = AuditLog::open_postgres(&db, Some(signer), AuditConfig::default()).unwrap_err();
    assert!(
        matches!(&e, AuditError::Format(m) if m.contains("newer")),
        "{e}"
    );
    let e = copy_to_sqlite(&db, &dir.path().join("b.db")).unwrap_err();
    assert!(e.to_string().contains("newer"), "{e}");
}

#[test]
fn appends_fail_while_the_server_is_down_and_succeed_after_it_returns() {
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let log = open(&db, small_checkpoints());
    for i in 0..10 {
        log.append(ev(i)).unwrap();
    }
    pg.stop();
    let e = log.append(ev(10)).unwrap_err();
    assert!(matches!(e, AuditError::WriteFailed { .. }), "{e}");
    assert!(!log.healthy(), "a failed write marks the log unhealthy");
    pg.restart();
    let at = log.append(ev(11)).unwrap();
    assert_eq!(at.seq, 11, "the refused event left no trace");
    assert!(log.healthy());
    log.close().unwrap();
    let report = verified(&db);
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.events, 11);
}

#[test]
fn queries_filter_as_they_do_on_sqlite() {
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        AuditLog::open(&dir.path().join("audit.db"), None, AuditConfig::default()).unwrap();
    let postgres = AuditLog::open_postgres(&db, None, AuditConfig::default()).unwrap();
    for i in 0..120 {
        sqlite.append(ev(i)).unwrap();
        postgres.append(ev(i)).unwrap();
    }
    let kind = EventKind::all()[3];
    let queries = [
        Query::all(),
        Query::all().kind(kind),
        Query::all().user("user3"),
        Query::all().serial(1003),
        Query::all().since(common::t(40)).until(common::t(50)),
        Query::all().after_seq(100).limit(5),
        Query::all().user("user2").newest_first().limit(3),
    ];
    for q in queries {
        let shape = |events: Vec<rampart_audit::Event>| {
            events
                .into_iter()
                .map(|e| (e.seq, e.kind, e.user, e.serial, e.time))
                .collect::<Vec<_>>()
        };
        let want = shape(sqlite.query(&q).unwrap());
        assert!(!want.is_empty(), "{q:?} matches something");
        assert_eq!(shape(postgres.query(&q).unwrap()), want, "{q:?}");
    }
    let first = postgres.query(&Query::all().limit(1)).unwrap();
    assert!(postgres.contains_id(&first[0].id).unwrap());
    assert!(!postgres.contains_id(&ulid::Ulid::new()).unwrap());
}

#[test]
fn an_event_id_another_writer_stored_is_refused_alone() {
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let a = open(&db, AuditConfig::default());
    let b = open(&db, AuditConfig::default());
    let id = ulid::Ulid::new();
    a.append(ev(1).with_id(id)).unwrap();
    let e = b.append_all(vec![ev(2).with_id(id), ev(3)]).unwrap_err();
    assert!(matches!(e, AuditError::DuplicateId(x) if x == id), "{e}");
    let all = b.query(&Query::all()).unwrap();
    assert_eq!(all.len(), 2, "the other event of the group was written");
}

#[test]
fn a_witness_refuses_a_shared_database_that_lost_its_checkpoints() {
    let pg = TestPostgres::start();
    let first = config(&pg.create_database("audit"));
    let dir = tempfile::tempdir().unwrap();
    let witness = dir.path().join("audit.witness");
    let with_witness = AuditConfig {
        witness: Some(witness.clone()),
        ..small_checkpoints()
    };
    let log = open(&first, with_witness.clone());
    for i in 0..150 {
        log.append(ev(i)).unwrap();
    }
    log.close().unwrap();
    assert!(rampart_audit::witness::read(&witness).unwrap().len() >= 2);
    // The same database opens again.
    open(&first, with_witness.clone()).close().unwrap();
    // A database put in its place (a restore from an older copy) does not.
    let replaced = config(&pg.create_database("replaced"));
    let other = open(&replaced, small_checkpoints());
    for i in 0..10 {
        other.append(ev(i)).unwrap();
    }
    other.close().unwrap();
    let signer: Arc<dyn CheckpointSigner> = Arc::new(key());
    let e = AuditLog::open_postgres(&replaced, Some(signer), with_witness).unwrap_err();
    assert!(
        matches!(&e, AuditError::Witness(m) if m.contains("behind")),
        "{e}"
    );
}

#[test]
fn a_witness_restart_on_a_shared_log_starts_at_its_newest_checkpoint() {
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("audit.witness");
    // Events but no checkpoint (no signer): nothing to witness yet.
    let unsigned = AuditLog::open_postgres(&db, None, AuditConfig::default()).unwrap();
    unsigned.append(ev(1)).unwrap();
    unsigned.close().unwrap();
    let err = rampart_audit::witness::restart_postgres(&db, &w)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the shared audit log has no checkpoint yet"),
        "{err}"
    );
    assert!(!w.exists(), "nothing written");

    let log = open(&db, small_checkpoints());
    for i in 2..150 {
        log.append(ev(i)).unwrap();
    }
    log.close().unwrap();
    let points = rampart_audit::witness::restart_postgres(&db, &w).unwrap();
    assert_eq!(points.anchor, None, "a shared log has no retention anchor");
    let newest = points.checkpoint.clone().unwrap();
    let lines = rampart_audit::witness::read(&w).unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0].kind, lines[0].seq, lines[0].hash),
        (
            rampart_audit::witness::WitnessKind::Checkpoint,
            newest.seq,
            newest.hash
        )
    );
    let report = rampart_audit::witness::check_postgres(&db, &w, Some(key().public_key())).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);

    // A witness that is there is never replaced.
    let before = std::fs::read(&w).unwrap();
    let err = rampart_audit::witness::restart_postgres(&db, &w)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not empty") && err.contains("move it aside"),
        "{err}"
    );
    assert_eq!(std::fs::read(&w).unwrap(), before, "left untouched");
    // And the writer opens beside the restarted witness.
    let with_witness = AuditConfig {
        witness: Some(w.clone()),
        ..small_checkpoints()
    };
    open(&db, with_witness).close().unwrap();
}

#[test]
fn the_first_append_and_query_after_a_server_restart_succeed() {
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let log = open(&db, small_checkpoints());
    log.append(ev(0)).unwrap();
    assert_eq!(log.query(&Query::all()).unwrap().len(), 1);
    // Nothing is written while the server is away: the writer's and the
    // reader's connections only learn they were closed on their next use.
    pg.stop();
    pg.restart();
    assert_eq!(log.append(ev(1)).unwrap().seq, 2);
    assert_eq!(log.query(&Query::all()).unwrap().len(), 2);
    assert!(log.healthy());
}

/// A file of `len` bytes under `dir` and its SHA-256.
fn spooled(
    dir: &std::path::Path,
    name: &str,
    len: usize,
    seed: u8,
) -> (std::path::PathBuf, String) {
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ seed).collect();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let (sha, _) = rampart_audit::recording::digest_file(&path).unwrap();
    (path, sha)
}

fn sealed(log: &AuditLog, i: u64, session: &str, sha: &str) {
    log.append(
        rampart_audit::NewEvent::new(
            EventKind::RecordingSealed,
            rampart_audit::Outcome::Success,
            common::t(i),
        )
        .session(session)
        .detail("sha256", sha.to_owned()),
    )
    .unwrap();
}

#[test]
fn recordings_are_stored_once_shared_append_only_and_checked_against_their_seal() {
    use rampart_audit::recording::store::CHUNK_BYTES;
    use rampart_audit::recording::{verify_recordings, PutOutcome, RecordingStore};
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    let log = open(&db, small_checkpoints());
    let store = RecordingStore::Postgres(Box::new(db.clone()));
    let dir = tempfile::tempdir().unwrap();

    // Two CAs store the same session at once, with other bytes each: exactly
    // one lands, the other is told another recording is there.
    let len = 2 * CHUNK_BYTES + 5;
    let (a, sha_a) = spooled(dir.path(), "a", len, 1);
    let (b, sha_b) = spooled(dir.path(), "b", len, 2);
    let outcomes: Vec<PutOutcome> = std::thread::scope(|s| {
        let ta = s.spawn(|| store.put_once("S1", &a, &sha_a, len as u64).unwrap());
        let tb = s.spawn(|| store.put_once("S1", &b, &sha_b, len as u64).unwrap());
        vec![ta.join().unwrap(), tb.join().unwrap()]
    });
    assert!(outcomes.contains(&PutOutcome::Stored), "{outcomes:?}");
    assert!(outcomes.contains(&PutOutcome::OtherStored), "{outcomes:?}");
    let (kept, kept_file) = if outcomes[0] == PutOutcome::Stored {
        (sha_a.clone(), &a)
    } else {
        (sha_b.clone(), &b)
    };
    // Read back by another handle (another CA), in chunks, byte for byte.
    let other_ca = RecordingStore::Postgres(Box::new(db.clone()));
    let mut back = Vec::new();
    for chunk in other_ca.open("S1").unwrap().unwrap() {
        back.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(back, std::fs::read(kept_file).unwrap());
    assert_eq!(
        store.put_once("S1", kept_file, &kept, len as u64).unwrap(),
        PutOutcome::AlreadyStored
    );
    // A file that is not what its caller claims is not stored.
    let (c, _) = spooled(dir.path(), "c", 100, 3);
    assert!(store.put_once("S2", &c, &sha_a, 100).is_err());
    assert!(store.open("S2").unwrap().is_none());
    assert!(store.put_once("S2", &c, &kept, 99).is_err());
    assert!(store.open("S2").unwrap().is_none());

    refused_as_append_only(
        &pg,
        &[
            "UPDATE audit_recording_chunks SET data = 'x' WHERE session = 'S1'",
            "DELETE FROM audit_recording_chunks",
            "UPDATE audit_recordings SET sha256 = repeat('0', 64)",
            "TRUNCATE audit_recordings CASCADE",
        ],
    );

    // The chain seals S1's digest; verify finds it matching, then finds a
    // byte edited behind the triggers, and a sealed session never stored.
    sealed(&log, 1, "S1", &kept);
    sealed(&log, 2, "S3", &sha_a);
    log.close().unwrap();
    let check = || {
        let copy = dir.path().join(format!("copy-{}.db", ulid::Ulid::new()));
        copy_to_sqlite(&db, &copy).unwrap();
        verify_recordings(&copy, &store).unwrap()
    };
    let report = check();
    assert_eq!((report.sealed, report.matched), (2, 1), "{report:?}");
    assert_eq!(report.problems[0].session, "S3");
    assert!(report.problems[0].reason.contains("missing"), "{report:?}");
    pg.psql(
        "audit",
        "ALTER TABLE audit_recording_chunks DISABLE TRIGGER USER;
         UPDATE audit_recording_chunks SET data = set_byte(data, 6, get_byte(data, 6) # 1)
             WHERE session = 'S1' AND idx = 1;",
    );
    let report = check();
    assert_eq!((report.sealed, report.matched), (2, 0), "{report:?}");
    assert_eq!(report.problems[0].session, "S1");
    assert!(report.problems[0].reason.contains("sealed"), "{report:?}");
}

#[test]
fn a_version_1_log_gains_the_recording_tables_and_a_directory_is_imported_once() {
    use rampart_audit::recording::{PutOutcome, RecordingStore};
    let pg = TestPostgres::start();
    let db = config(&pg.create_database("audit"));
    open(&db, AuditConfig::default()).close().unwrap();
    // What a log written by the release before recordings moved looks like.
    pg.psql(
        "audit",
        "DROP TABLE audit_recording_chunks, audit_recordings;
         UPDATE audit_schema SET version = 1;",
    );
    let store = RecordingStore::Postgres(Box::new(db.clone()));
    let e = store.open("S1").unwrap_err();
    assert!(e.to_string().contains("older"), "{e}");
    let log = open(&db, AuditConfig::default());
    assert_eq!(rampart_audit::postgres_schema_version(&db).unwrap(), 2);

    let dir = tempfile::tempdir().unwrap();
    let (one, sha_one) = spooled(dir.path(), "S1.cast.zst", 3000, 1);
    spooled(dir.path(), "S2.cast.zst", 10, 2);
    spooled(dir.path(), "not-a-session.cast.zst", 10, 3);
    spooled(dir.path(), "S3.cast", 10, 4);
    assert_eq!(store.import_dir(dir.path()).unwrap(), 2);
    assert_eq!(store.import_dir(dir.path()).unwrap(), 0, "imported once");
    assert_eq!(store.digest("S1").unwrap(), Some((sha_one.clone(), 3000)));
    assert!(store.open("S3").unwrap().is_none());
    assert_eq!(
        store.put_once("S1", &one, &sha_one, 3000).unwrap(),
        PutOutcome::AlreadyStored
    );
    assert_eq!(
        store.import_dir(&dir.path().join("absent")).unwrap(),
        0,
        "no directory, nothing to import"
    );
    log.close().unwrap();
}

/// A CA, and a server certificate it signed for `names`: (CA PEM, cert PEM, key PEM).
fn server_pki(names: &[&str]) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn over_tls_the_server_is_verified_and_plain_or_unverified_connections_fail() {
    let (ca_pem, cert, tls_key) = server_pki(&["127.0.0.1"]);
    let pg = TestPostgres::start_tls(&cert, &tls_key);
    let url = pg.create_database("audit");
    // Verified TLS: the log works.
    let tls = config(&url).with_tls_roots(ca_pem.as_bytes()).unwrap();
    assert!(tls.uses_tls());
    let log = open(&tls, AuditConfig::default());
    log.append(ev(1)).unwrap();
    assert_eq!(log.query(&Query::all()).unwrap().len(), 1);
    log.close().unwrap();
    let report = {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.db");
        copy_to_sqlite(&tls, &copy).unwrap();
        verify(&copy, Some(key().public_key())).unwrap()
    };
    assert!(report.is_ok());

    // Without TLS: the server refuses (hostnossl … reject).
    let signer: Arc<dyn CheckpointSigner> = Arc::new(key());
    let e = AuditLog::open_postgres(&config(&url), Some(signer.clone()), AuditConfig::default())
        .unwrap_err();
    assert!(matches!(e, AuditError::Postgres(_)), "{e}");
    // A server certificate from another CA: refused by the client.
    let (other_ca, _, _) = server_pki(&["127.0.0.1"]);
    let wrong = config(&url).with_tls_roots(other_ca.as_bytes()).unwrap();
    let e =
        AuditLog::open_postgres(&wrong, Some(signer.clone()), AuditConfig::default()).unwrap_err();
    assert!(matches!(e, AuditError::Postgres(_)), "{e}");
    // The right CA, but a certificate for another name than the URL's host.
    let named = url.replace("127.0.0.1", "localhost");
    let e = AuditLog::open_postgres(
        &config(&named).with_tls_roots(ca_pem.as_bytes()).unwrap(),
        Some(signer),
        AuditConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(e, AuditError::Postgres(_)), "{e}");
    // Asking for unverified TLS in the URL is refused up front.
    let e = rampart_audit::pg_config(&format!("{url}?sslmode=require"), None).unwrap_err();
    assert!(e.to_string().contains("database_tls_ca_file"), "{e}");
    // Not PEM: a clear configuration error.
    let e = config(&url)
        .with_tls_roots(b"not a certificate")
        .unwrap_err();
    assert!(matches!(e, AuditError::Config(_)), "{e}");
}
