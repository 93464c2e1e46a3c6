//! `rampart-ca backup` and a restore with the real binaries, as the operator
//! guide describes them: a backup taken while the daemon serves logins, checked
//! with stock `sha256sum -c`, holding no passphrase; the CA directory lost and
//! restored from it; the restored CA passes `check`, its audit chain verifies
//! against the backup's witness, and a user enrolled before the backup logs in
//! again. Refusals: an existing or nested output directory, and a live audit
//! log that does not verify (no backup of a tampered log is made, not even a
//! partial one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use rampart_e2e::audit_db::sqlite3;
use rampart_e2e::process::run;
use rampart_e2e::{audit_verify_args, bin, bootstrap_admin, onboard, AuditDb, Ca, CmdOutput};

fn backup(ca: &Ca, out: &Path) -> CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.args(["backup", "--config"])
        .arg(ca.config_path())
        .arg("--out")
        .arg(out);
    run(c)
}

fn sha256sum_check(dir: &Path) -> CmdOutput {
    let mut c = Command::new("sha256sum");
    c.args(["--strict", "-c", "MANIFEST.sha256"])
        .current_dir(dir);
    run(c)
}

fn cp_a(from: &Path, to: &Path) {
    let mut c = Command::new("cp");
    c.arg("-a").arg(from).arg(to);
    run(c).assert_success("cp -a");
}

#[test]
fn a_backup_taken_while_serving_restores_into_a_working_ca() {
    // A checkpoint after every event: the witness moves while the backup runs.
    let mut ca = Ca::init_e2e("[audit]\ncheckpoint_every_events = 1");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut bob = onboard(&ca, &admin, "bob", &["engineers"]);
    bob.login();

    // Taken while the daemon serves.
    let saved = ca.root().join("backup-1");
    let out = backup(&ca, &saved);
    out.assert_success("rampart-ca backup");
    assert!(out.stdout.contains("head: "), "{out}");
    assert!(
        !ca.root().join("backup-1.partial").exists(),
        "the staging directory is renamed away"
    );
    sha256sum_check(&saved).assert_success("sha256sum -c MANIFEST.sha256");
    for f in [
        "config.toml",
        "policy.toml",
        "ca.db",
        "audit.db",
        "audit.witness",
        "keys/user_ca",
        "keys/audit",
        "tls/cert.pem",
    ] {
        assert!(saved.join(f).is_file(), "{f} is in the backup\n{out}");
    }
    for db in ["ca.db", "audit.db"] {
        let mode = std::fs::metadata(saved.join(db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{db} snapshot is private ({mode:o})");
    }
    // The passphrase (here the dev file beside the keys) stays out, and so do
    // the live databases' journals.
    assert!(ca.dir().join("secrets/passphrase").is_file());
    assert!(!saved.join("secrets/passphrase").exists(), "{out}");
    assert!(!saved.join("audit.db-wal").exists());
    assert!(
        out.stdout.contains("passphrase is not in the backup"),
        "{out}"
    );

    // The manifest covers the keys: an edited key file is caught by stock tools.
    let edited = ca.root().join("edited");
    cp_a(&saved, &edited);
    let key = edited.join("keys/host_ca.pub");
    let mut text = std::fs::read_to_string(&key).unwrap();
    text.push('\n');
    std::fs::write(&key, text).unwrap();
    let check = sha256sum_check(&edited);
    assert!(!check.status.success(), "{check}");
    assert!(check.stdout.contains("keys/host_ca.pub: FAILED"), "{check}");

    // Refusals: an existing directory, one inside the CA directory.
    let again = backup(&ca, &saved);
    assert!(!again.status.success(), "{again}");
    assert!(again.stderr.contains("already exists"), "{again}");
    let nested = backup(&ca, &ca.dir().join("backups"));
    assert!(!nested.status.success(), "{nested}");
    assert!(
        nested.stderr.contains("inside the CA directory"),
        "{nested}"
    );
    assert!(!ca.dir().join("backups").exists());

    // Life goes on after the backup: one more login, then the disk is lost.
    bob.login();
    let events_at_backup = AuditDb::new(saved.join("audit.db")).events().len();
    assert!(AuditDb::new(ca.audit_db()).events().len() > events_at_backup);
    ca.stop();
    let passphrase = std::fs::read(ca.dir().join("secrets/passphrase")).unwrap();
    std::fs::remove_dir_all(ca.dir()).unwrap();

    // Restore: the backup, plus the passphrase kept apart from it.
    cp_a(&saved, ca.dir());
    std::fs::create_dir_all(ca.dir().join("secrets")).unwrap();
    let pass_file = ca.dir().join("secrets/passphrase");
    std::fs::write(&pass_file, passphrase).unwrap();
    std::fs::set_permissions(&pass_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(ca.dir().join("MANIFEST.sha256")).unwrap();

    let mut c = Command::new(bin("rampart-ca"));
    c.args(["check", "--config"]).arg(ca.config_path());
    run(c).assert_success("rampart-ca check on the restored CA");
    let verify = audit_verify_args(&[
        "--db".as_ref(),
        ca.audit_db().as_os_str(),
        "--audit-pubkey".as_ref(),
        ca.audit_pubkey().as_os_str(),
        "--witness".as_ref(),
        ca.dir().join("audit.witness").as_os_str(),
    ]);
    verify.assert_success("rampart audit verify --witness on the restored log");

    ca.start();
    bob.login();
    // Two certificates were issued before the backup and one after the restore;
    // the one issued between the backup and the loss is not in the restored log.
    let kinds = AuditDb::new(ca.audit_db()).kinds();
    let issued = kinds.iter().filter(|k| *k == "cert_issued").count();
    assert_eq!(issued, 3, "{kinds:?}");
    ca.verify_audit()
        .assert_success("the restored chain verifies after new writes");
}

#[test]
fn a_live_log_that_does_not_verify_is_not_backed_up() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    drop(admin);
    ca.stop();

    let log = AuditDb::new(ca.audit_db());
    log.drop_triggers();
    sqlite3(
        &ca.audit_db(),
        &format!(
            "UPDATE \"{t}\" SET body = body || ' ' WHERE \"{s}\" = 2",
            t = log.events_table(),
            s = log.seq_column()
        ),
    );

    let out_dir = ca.root().join("backup-of-a-tampered-log");
    let out = backup(&ca, &out_dir);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("does not check out"), "{out}");
    assert!(out.stderr.contains("sequence 2"), "{out}");
    assert!(!out_dir.exists(), "no backup directory");
    assert!(
        !ca.root().join("backup-of-a-tampered-log.partial").exists(),
        "no partial backup left behind"
    );
}
