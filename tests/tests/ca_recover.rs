//! `rampart-ca recover-admin` with the real binaries: when the only admin has
//! lost their factor, an operator on the CA host makes a one-time invite for
//! them, beside the running daemon. It refuses non-admins, is audited as
//! `admin_recovery_invite` before the invite exists (the chain still verifies
//! with two writers), and the admin enrols a new factor with it and is an
//! admin again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rampart_e2e::process::run;
use rampart_e2e::{bin, bootstrap_admin, AuditDb, Ca, Cli};

fn recover(ca: &Ca, user: &str) -> rampart_e2e::CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.args(["recover-admin", "--config"])
        .arg(ca.config_path())
        .args([user, "--ttl", "30m"]);
    run(c)
}

#[test]
fn a_locked_out_admin_is_invited_back_offline_and_audited() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin_name = ca.info().admin_user.clone();
    let admin = bootstrap_admin(&ca);
    admin.cli.add_user("bob", &["engineers"]);

    // Not for users who are not admins, nor for nobody.
    let out = recover(&ca, "bob");
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("not an admin"), "{out}");
    let out = recover(&ca, "nobody");
    assert!(!out.status.success(), "{out}");

    // The admin lost their phone: a new invite, printed as the enrol command.
    let out = recover(&ca, &admin_name);
    out.assert_success("rampart-ca recover-admin");
    let line = out.stdout.trim();
    assert!(line.starts_with("rampart enroll --ca https://"), "{out}");
    assert!(line.contains(ca.fingerprint()), "{out}");
    let code = line
        .split_whitespace()
        .skip_while(|w| *w != "--invite")
        .nth(1)
        .expect("an invite code")
        .to_owned();

    // The daemon kept running: the invite works at once.
    let cli = Cli::with_home(&ca, &admin_name, ca.root().join("new-laptop"));
    let mut back = cli.enroll(&code);
    back.login();
    // An admin again: admin commands work from the new factor.
    back.cli
        .admin(&["user", "list"])
        .assert_success("admin user list");
    // The invite is single use.
    assert!(Cli::with_home(&ca, &admin_name, ca.root().join("again"))
        .try_enroll(&code)
        .is_err());

    let events = AuditDb::new(ca.audit_db()).events();
    let recovery = events
        .iter()
        .map(|e| serde_json::Value::Object(e.clone()).to_string())
        .find(|e| e.contains("admin_recovery_invite"))
        .expect("the recovery is audited");
    assert!(recovery.contains(&admin_name), "{recovery}");
    assert!(recovery.contains("rampart-ca recover-admin"), "{recovery}");
    ca.verify_audit()
        .assert_success("the chain verifies across the offline write");
}
