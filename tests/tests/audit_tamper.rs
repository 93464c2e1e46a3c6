//! The audit chain against a tamperer with the real `sqlite3` shell: after a
//! scripted scenario `rampart audit verify` says OK; on copies of the database
//! where one field was altered, one row deleted, or two rows swapped (triggers
//! dropped first), it fails and names the sequence number where the chain breaks.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use rampart_e2e::audit_db::{sqlite3, sqlite3_raw};
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::{audit_verify_with, bootstrap_admin, mentions_number, onboard, AuditDb, Ca};
use serde_json::Value;

/// Run a scripted scenario and return a stopped CA with a quiet audit.db.
fn scenario() -> Ca {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    alice.login();
    let wrong = alice.totp.wrong_code();
    alice
        .cli
        .login_with(&wrong, &[])
        .assert_failure("wrong code");
    let serial = rampart_e2e::keys::inspect_cert(&alice.cli.cert()).serial;
    admin
        .cli
        .admin(&["revoke", "--serial", &serial.to_string()])
        .assert_success("revoke");
    ca.stop();
    ca
}

fn quote(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

/// A fresh, trigger-free copy of the audit database to vandalise.
fn vandal_copy(orig: &AuditDb, dir: &Path, name: &str) -> AuditDb {
    let copy = orig.backup_to(&dir.join(name));
    copy.drop_triggers();
    copy
}

#[test]
fn verify_detects_altered_deleted_and_swapped_events() {
    let ca = scenario();
    let dir = ca.root().to_path_buf();
    let orig = AuditDb::new(ca.audit_db()).backup_to(&dir.join("audit-orig.db"));

    let key = ca.audit_pubkey();
    let verify = |db: &AuditDb| audit_verify_with(&db.path, Some(&key));
    let ok = verify(&orig);
    ok.assert_success("audit verify on the untouched log");
    assert!(
        ok.stdout.trim_start().starts_with("OK"),
        "verify should say OK\n{ok}"
    );
    assert!(
        !ok.combined().contains("not checked"),
        "with the audit key, checkpoint signatures must be checked\n{ok}"
    );

    let table = orig.events_table();
    let seq = orig.seq_column();
    let seqs = orig.seqs();
    assert!(
        seqs.len() >= 6,
        "the scenario should have logged more events: {seqs:?}"
    );
    let kinds = orig.kinds();
    for k in ["mfa_failed", "cert_issued"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} event in {kinds:?}");
    }
    let k = seqs[seqs.len() / 2];
    let next = seqs[seqs.len() / 2 + 1];

    // The log is append-only while its triggers are in place.
    let guarded = orig.backup_to(&dir.join("audit-guarded.db"));
    assert!(
        !guarded.triggers().is_empty(),
        "audit.db should carry append-only triggers"
    );
    let upd = sqlite3_raw(
        &guarded.path,
        &format!(
            "UPDATE {} SET kind = 'x' WHERE {} = {k}",
            quote(&table),
            quote(&seq)
        ),
    );
    assert!(
        !upd.success(),
        "an UPDATE must be refused by the triggers\n{upd}"
    );
    let del = sqlite3_raw(
        &guarded.path,
        &format!("DELETE FROM {} WHERE {} = {k}", quote(&table), quote(&seq)),
    );
    assert!(
        !del.success(),
        "a DELETE must be refused by the triggers\n{del}"
    );

    // 1. Alter one field of event k.
    let altered = vandal_copy(&orig, &dir, "audit-altered.db");
    let row = orig
        .events()
        .into_iter()
        .find(|r| r.get(&seq).and_then(Value::as_i64) == Some(k))
        .expect("row k");
    let preferred = [
        "actor", "reason", "outcome", "source", "target", "detail", "data",
    ];
    let column = preferred
        .iter()
        .map(|c| (*c).to_owned())
        .chain(row.keys().cloned())
        .find(|c| {
            c != &seq
                && !c.contains("hash")
                && !c.contains("sig")
                && row.get(c).is_some_and(Value::is_string)
        })
        .expect("a text column to alter");
    sqlite3(
        &altered.path,
        &format!(
            "UPDATE {t} SET {c} = {c} || 'X' WHERE {s} = {k}",
            t = quote(&table),
            c = quote(&column),
            s = quote(&seq)
        ),
    );
    let out = verify(&altered);
    out.assert_failure(&format!("verify after altering `{column}` of event {k}"));
    assert!(
        mentions_number(&out.combined(), k as u64),
        "verify must name sequence number {k}\n{out}"
    );

    // 2. Delete event k.
    let deleted = vandal_copy(&orig, &dir, "audit-deleted.db");
    sqlite3(
        &deleted.path,
        &format!("DELETE FROM {} WHERE {} = {k}", quote(&table), quote(&seq)),
    );
    let out = verify(&deleted);
    out.assert_failure(&format!("verify after deleting event {k}"));
    assert!(
        mentions_number(&out.combined(), k as u64) || mentions_number(&out.combined(), next as u64),
        "verify must name sequence number {k} (deleted) or {next} (where the chain breaks)\n{out}"
    );

    // 3. Swap the contents of events k and k+1, keeping the sequence numbers.
    let swapped = vandal_copy(&orig, &dir, "audit-swapped.db");
    let cols: Vec<String> = swapped
        .columns(&table)
        .into_iter()
        .filter(|c| c != &seq)
        .collect();
    let list = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let (t, s) = (quote(&table), quote(&seq));
    sqlite3(
        &swapped.path,
        &format!(
            "BEGIN;
             CREATE TEMP TABLE a AS SELECT {list} FROM {t} WHERE {s} = {k};
             CREATE TEMP TABLE b AS SELECT {list} FROM {t} WHERE {s} = {next};
             DELETE FROM {t} WHERE {s} IN ({k}, {next});
             INSERT INTO {t} ({s}, {list}) SELECT {k}, {list} FROM temp.b;
             INSERT INTO {t} ({s}, {list}) SELECT {next}, {list} FROM temp.a;
             COMMIT;"
        ),
    );
    let swapped_kinds = swapped.kinds();
    assert_eq!(swapped_kinds.len(), kinds.len());
    let out = verify(&swapped);
    out.assert_failure(&format!("verify after swapping events {k} and {next}"));
    assert!(
        mentions_number(&out.combined(), k as u64) || mentions_number(&out.combined(), next as u64),
        "verify must name sequence number {k} or {next}\n{out}"
    );

    // The original is still fine: the copies were the only victims.
    verify(&orig).assert_success("verify on the original after all that");

    // Checkpoints are signed by the audit key: another key does not verify them.
    let other = rampart_e2e::KeyPair::ed25519(&dir, "not-the-audit-key");
    let out = audit_verify_with(&orig.path, Some(&other.public));
    out.assert_failure("verify with the wrong audit key");
}
