//! The audit witness against a tamperer who cuts the log back while the CA is
//! stopped: with the real `rampart-ca` and the real `sqlite3` shell, every event
//! and checkpoint after an earlier checkpoint is deleted. The cut log still
//! verifies on its own (it is a valid, signed log, just shorter); with the witness
//! file `rampart-ca` keeps beside it, `rampart audit verify --witness` fails, and
//! `rampart-ca serve` and `rampart-ca check` refuse, naming both heads. A forged
//! witness line and an `anchors` row copied in by hand are refused too.
//!
//! Deleting the witness does not switch it off: beside a database with
//! checkpoints, a missing witness stops `serve` and fails `check` (also when the
//! log was cut back first, the whole attack), until an operator runs
//! `rampart-ca witness-restart`, which is audited before the new witness exists.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::time::Duration;

use rampart_e2e::audit_db::sqlite3;
use rampart_e2e::process::run_timeout;
use rampart_e2e::{audit_verify_with, bin, bootstrap_admin, AuditDb, Ca, CmdOutput};

fn rampart_verify(args: &[&std::ffi::OsStr]) -> CmdOutput {
    rampart_e2e::audit_verify_args(args)
}

fn ca_cmd(ca: &Ca, sub: &str) -> CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.arg(sub)
        .arg("--config")
        .arg(ca.config_path())
        .env("RUST_LOG", "info");
    // A `serve` that started after all would be killed here and fail the test.
    run_timeout(c, None, Duration::from_secs(60))
}

#[test]
fn a_log_cut_back_while_the_ca_is_stopped_is_caught_by_the_witness() {
    // Checkpoints every 3 events, so that there are earlier ones to cut back to.
    let mut ca = Ca::init_e2e("[audit]\ncheckpoint_every_events = 3");
    ca.start();
    let _admin = bootstrap_admin(&ca);
    ca.stop();

    let db = ca.audit_db();
    let witness = ca.dir().join("audit.witness");
    let pubkey = ca.audit_pubkey();
    assert!(
        witness.exists(),
        "the CA must keep audit.witness beside audit.db"
    );
    let seqs = |sql: &str| -> Vec<u64> {
        sqlite3(&db, sql)
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    };
    let checkpoints = seqs("SELECT seq FROM checkpoints ORDER BY seq");
    let head = seqs("SELECT max(seq) FROM events")[0];
    assert!(checkpoints.len() >= 3, "checkpoints: {checkpoints:?}");
    assert_eq!(checkpoints.last(), Some(&head), "stop seals the head");
    let head_hash = sqlite3(
        &db,
        &format!("SELECT lower(hex(hash)) FROM events WHERE seq = {head}"),
    );
    let head_hash = head_hash.trim().to_owned();

    // Before the cut, everything agrees.
    let ok = rampart_verify(&[
        "--db".as_ref(),
        db.as_os_str(),
        "--audit-pubkey".as_ref(),
        pubkey.as_os_str(),
        "--witness".as_ref(),
        witness.as_os_str(),
    ]);
    ok.assert_success("verify --witness before the cut");
    assert!(
        ok.stdout.contains(&format!("head: {head}:{head_hash}")),
        "verify must print the head as SEQ:HASH\n{ok}"
    );
    assert!(ok.stdout.contains("anchor: none"), "{ok}");

    // A forged witness line: its hash changed, its signature left as it was.
    let forged = ca.dir().join("forged.witness");
    let text = std::fs::read_to_string(&witness).unwrap();
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = lines.len();
    lines[n - 1]["hash"] = serde_json::Value::String("ab".repeat(32));
    let forged_text: String = lines
        .iter()
        .map(|l| format!("{}\n", serde_json::to_string(l).unwrap()))
        .collect();
    std::fs::write(&forged, forged_text).unwrap();
    let out = rampart_verify(&[
        "--db".as_ref(),
        db.as_os_str(),
        "--audit-pubkey".as_ref(),
        pubkey.as_os_str(),
        "--witness".as_ref(),
        forged.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(6), "a forged witness line\n{out}");
    assert!(
        out.combined().contains(&format!("line {n}")) && out.combined().contains("signature"),
        "{out}"
    );

    // A copied anchors row, on a copy of the database: checkpoint K made the
    // anchor by hand and the history before it deleted. Verifies alone; the
    // witness never saw that anchor.
    let k = checkpoints[checkpoints.len() - 2];
    let copy = ca.dir().join("anchored.db");
    let anchored = AuditDb::new(&db).backup_to(&copy);
    anchored.drop_triggers();
    sqlite3(
        &copy,
        &format!(
            "CREATE TABLE anchors (seq INTEGER PRIMARY KEY NOT NULL, hash BLOB NOT NULL, \
             time TEXT NOT NULL, signature TEXT NOT NULL) STRICT; \
             INSERT INTO anchors SELECT seq, hash, time, signature FROM checkpoints WHERE seq = {k}; \
             DELETE FROM events WHERE seq <= {k}; DELETE FROM checkpoints WHERE seq < {k};"
        ),
    );
    audit_verify_with(&copy, Some(&pubkey)).assert_success("the anchored copy alone");
    let out = rampart_verify(&[
        "--db".as_ref(),
        copy.as_os_str(),
        "--audit-pubkey".as_ref(),
        pubkey.as_os_str(),
        "--witness".as_ref(),
        witness.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(6), "a copied anchor\n{out}");
    assert!(out.combined().contains("never witnessed"), "{out}");

    // The cut: everything after an earlier checkpoint K, events and checkpoints.
    AuditDb::new(&db).drop_triggers();
    sqlite3(
        &db,
        &format!("DELETE FROM events WHERE seq > {k}; DELETE FROM checkpoints WHERE seq > {k};"),
    );

    // On its own the cut log verifies: this is the hole the witness closes.
    let alone = audit_verify_with(&db, Some(&pubkey));
    alone.assert_success("verify of the cut log without a witness");

    // With the witness it fails, naming the database's head and the witnessed one.
    let out = rampart_verify(&[
        "--db".as_ref(),
        db.as_os_str(),
        "--audit-pubkey".as_ref(),
        pubkey.as_os_str(),
        "--witness".as_ref(),
        witness.as_os_str(),
    ]);
    out.assert_failure("verify --witness after the cut");
    assert_eq!(out.status.code(), Some(6), "{out}");
    let text = out.combined();
    assert!(text.contains("behind"), "{out}");
    assert!(
        text.contains(&format!("sequence {k} ")) && text.contains(&format!("sequence {head} ")),
        "verify must name the database's head {k} and the witnessed head {head}\n{out}"
    );
    // So does --expect-head with the head printed before the cut.
    let out = rampart_verify(&[
        "--db".as_ref(),
        db.as_os_str(),
        "--expect-head".as_ref(),
        format!("{head}:{head_hash}").as_ref(),
    ]);
    out.assert_failure("verify --expect-head after the cut");
    assert!(out.combined().contains("behind"), "{out}");

    // The CA refuses to continue the chain from the cut…
    let serve = ca_cmd(&ca, "serve");
    serve.assert_failure("rampart-ca serve on a cut audit log");
    let text = serve.combined();
    assert!(text.contains("refusing to start"), "{serve}");
    assert!(
        text.contains(&format!("sequence {k} ")) && text.contains(&format!("sequence {head} ")),
        "serve must name both heads\n{serve}"
    );
    assert!(
        text.contains("audit.witness"),
        "serve must name the witness\n{serve}"
    );
    // …and `check` says why before anyone tries.
    let check = ca_cmd(&ca, "check");
    check.assert_failure("rampart-ca check on a cut audit log");
    let text = check.combined();
    assert!(
        text.contains("behind") && text.contains(&format!("sequence {head} ")),
        "{check}"
    );
}

fn verify_witness(ca: &Ca) -> CmdOutput {
    let witness = ca.dir().join("audit.witness");
    rampart_verify(&[
        "--db".as_ref(),
        ca.audit_db().as_os_str(),
        "--audit-pubkey".as_ref(),
        ca.audit_pubkey().as_os_str(),
        "--witness".as_ref(),
        witness.as_os_str(),
    ])
}

/// The refusal of a missing witness, as `serve` and `check` print it: what is
/// missing, that the log may have been cut, how to compare with the SIEM, and
/// the deliberate way out.
fn assert_missing_witness_refusal(out: &CmdOutput, newest: u64) {
    let text = out.combined();
    for needle in [
        "audit.witness is missing or empty",
        &format!("checkpoints up to sequence {newest} "),
        "cut back",
        "--expect-head",
        "keys/audit.pub",
        "rampart-ca witness-restart --config",
        "When the CA refuses to start",
    ] {
        assert!(text.contains(needle), "missing {needle:?}\n{out}");
    }
}

#[test]
fn a_deleted_witness_stops_the_ca_until_it_is_restarted_on_purpose() {
    let mut ca = Ca::init_e2e("[audit]\ncheckpoint_every_events = 3");
    let witness = ca.dir().join("audit.witness");
    // `init` signs a checkpoint at close and witnesses it: serve starts after it.
    assert!(
        std::fs::metadata(&witness).unwrap().len() > 0,
        "init must begin the witness it checkpoints into"
    );
    ca.start();
    let _admin = bootstrap_admin(&ca);
    ca.stop();
    let db = ca.audit_db();
    let head = AuditDb::new(&db).checkpoint_seqs().last().copied().unwrap();

    std::fs::remove_file(&witness).unwrap();
    let serve = ca_cmd(&ca, "serve");
    serve.assert_failure("rampart-ca serve without its witness");
    assert!(serve.combined().contains("refusing to start"), "{serve}");
    assert_missing_witness_refusal(&serve, head);
    assert!(
        !witness.exists(),
        "a refused start must not begin a witness"
    );
    let check = ca_cmd(&ca, "check");
    check.assert_failure("rampart-ca check without its witness");
    assert_missing_witness_refusal(&check, head);

    // An emptied witness is the same as a deleted one.
    std::fs::write(&witness, b"").unwrap();
    let serve = ca_cmd(&ca, "serve");
    serve.assert_failure("rampart-ca serve with an empty witness");
    assert_missing_witness_refusal(&serve, head);

    // The deliberate way out: audited, then a new witness from the newest checkpoint.
    let restart = ca_cmd(&ca, "witness-restart");
    restart.assert_success("rampart-ca witness-restart");
    let events = AuditDb::new(&db).bodies("audit_witness_restarted");
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(ev["actor"], "rampart-ca witness-restart", "{ev}");
    assert_eq!(ev["details"]["from_seq"], head, "{ev}");
    assert!(
        ev["details"]["witness"]
            .as_str()
            .unwrap()
            .ends_with("audit.witness"),
        "{ev}"
    );
    // The new witness starts past the event: a checkpoint signs it.
    let checkpoints = AuditDb::new(&db).checkpoint_seqs();
    let new_head = *checkpoints.last().unwrap();
    assert!(new_head > head, "{checkpoints:?}");
    assert!(
        restart.stdout.contains(&format!("head: {new_head}:")),
        "{restart}"
    );
    let lines = std::fs::read_to_string(&witness).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains(&format!("\"seq\":{new_head},")), "{lines}");
    verify_witness(&ca).assert_success("verify --witness after the restart");

    // Nothing to restart once a witness is there; it is left as it was.
    let again = ca_cmd(&ca, "witness-restart");
    again.assert_failure("a second witness-restart");
    assert!(again.combined().contains("not empty"), "{again}");
    assert_eq!(std::fs::read_to_string(&witness).unwrap(), lines);
    assert_eq!(
        AuditDb::new(&db).bodies("audit_witness_restarted").len(),
        1,
        "a refused restart writes no event"
    );

    // And the CA runs again, its witness moving with it.
    ca_cmd(&ca, "check").assert_success("rampart-ca check after the restart");
    ca.start();
    ca.stop();
    verify_witness(&ca).assert_success("verify --witness after serving again");
    assert!(std::fs::read_to_string(&witness).unwrap().lines().count() > 1);
}

#[test]
fn a_log_cut_back_with_its_witness_deleted_is_refused() {
    let mut ca = Ca::init_e2e("[audit]\ncheckpoint_every_events = 3");
    ca.start();
    let _admin = bootstrap_admin(&ca);
    ca.stop();
    let db = ca.audit_db();
    let checkpoints = AuditDb::new(&db).checkpoint_seqs();
    assert!(checkpoints.len() >= 3, "{checkpoints:?}");
    let head = *checkpoints.last().unwrap();
    let head_hash = sqlite3(
        &db,
        &format!("SELECT lower(hex(hash)) FROM events WHERE seq = {head}"),
    )
    .trim()
    .to_owned();

    // The attack: cut back to an earlier checkpoint, then delete the witness
    // that would show it.
    let k = checkpoints[checkpoints.len() - 2];
    AuditDb::new(&db).drop_triggers();
    sqlite3(
        &db,
        &format!("DELETE FROM events WHERE seq > {k}; DELETE FROM checkpoints WHERE seq > {k};"),
    );
    std::fs::remove_file(ca.dir().join("audit.witness")).unwrap();
    audit_verify_with(&db, Some(&ca.audit_pubkey())).assert_success("the cut log alone");

    let serve = ca_cmd(&ca, "serve");
    serve.assert_failure("rampart-ca serve on a cut log without its witness");
    assert_missing_witness_refusal(&serve, k);
    let check = ca_cmd(&ca, "check");
    check.assert_failure("rampart-ca check on a cut log without its witness");
    assert_missing_witness_refusal(&check, k);
    assert_eq!(
        AuditDb::new(&db).seqs().last().copied(),
        Some(k as i64),
        "the refusals must not continue the chain from the cut"
    );

    // What the refusal says to do finds the cut: the SIEM's newest head.
    let out = rampart_verify(&[
        "--db".as_ref(),
        db.as_os_str(),
        "--expect-head".as_ref(),
        format!("{head}:{head_hash}").as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(6), "{out}");
    assert!(out.combined().contains("behind"), "{out}");
}
