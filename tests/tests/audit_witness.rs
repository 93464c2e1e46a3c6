//! The audit witness against a tamperer who cuts the log back while the CA is
//! stopped: with the real `rampart-ca` and the real `sqlite3` shell, every event
//! and checkpoint after an earlier checkpoint is deleted. The cut log still
//! verifies on its own (it is a valid, signed log, just shorter); with the witness
//! file `rampart-ca` keeps beside it, `rampart audit verify --witness` fails, and
//! `rampart-ca serve` and `rampart-ca check` refuse, naming both heads. A forged
//! witness line and an `anchors` row copied in by hand are refused too.

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
