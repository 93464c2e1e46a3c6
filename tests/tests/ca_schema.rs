//! Schema versions with the real binaries: `rampart-ca check` reports the schema
//! version of `ca.db` and the audit database without changing them; a `ca.db`
//! from a newer release (its version raised with the real `sqlite3` shell) makes
//! `check` and `serve` refuse, naming both versions, and is left as it was; one
//! from before versioning is upgraded by the next start, with its users intact.

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
use rampart_e2e::{bin, bootstrap_admin, Ca, CmdOutput};

fn ca_cmd(ca: &Ca, sub: &str) -> CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.arg(sub).arg("--config").arg(ca.config_path());
    // A `serve` that started after all would be killed here and fail the test.
    run_timeout(c, None, Duration::from_secs(60))
}

#[test]
fn check_reports_schema_versions_and_a_newer_ca_db_is_refused_untouched() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let _admin = bootstrap_admin(&ca);
    ca.stop();
    let db = ca.ca_db();
    let version = |sql: &str| sqlite3(&db, sql).trim().to_owned();

    let check = ca_cmd(&ca, "check");
    check.assert_success("rampart-ca check on a current CA");
    assert!(
        check.stdout.contains("CA database OK: ")
            && check.stdout.contains("ca.db (schema version 4)")
            && check.stdout.contains("audit.db (schema version 1)"),
        "{check}"
    );
    assert_eq!(version("PRAGMA application_id"), (0x5241_4d43).to_string());

    // A database a newer release wrote.
    sqlite3(&db, "PRAGMA user_version = 7");
    let users_before = sqlite3(&db, "SELECT name, admin FROM users ORDER BY name");
    for sub in ["check", "serve"] {
        let out = ca_cmd(&ca, sub);
        out.assert_failure(&format!("rampart-ca {sub} on a newer ca.db"));
        let text = out.combined();
        assert!(
            text.contains("schema version 7") && text.contains("the 4 this rampart-ca knows"),
            "{sub} must name both versions\n{out}"
        );
    }
    assert_eq!(version("PRAGMA user_version"), "7", "left as it was");
    assert_eq!(
        sqlite3(&db, "SELECT name, admin FROM users ORDER BY name"),
        users_before
    );

    // A database from before versioning: `check` says the start upgrades it,
    // and the start does.
    sqlite3(&db, "PRAGMA user_version = 0; PRAGMA application_id = 0");
    let check = ca_cmd(&ca, "check");
    check.assert_success("rampart-ca check on an unversioned ca.db");
    assert!(
        check
            .stdout
            .contains("schema version 0; the next start upgrades it to 4"),
        "{check}"
    );
    assert_eq!(
        version("PRAGMA user_version"),
        "0",
        "check upgrades nothing"
    );
    ca.start();
    ca.stop();
    assert_eq!(version("PRAGMA user_version"), "4");
    assert_eq!(
        sqlite3(&db, "SELECT name, admin FROM users ORDER BY name"),
        users_before
    );
}
