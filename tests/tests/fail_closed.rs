//! Fail closed without stalling: with the audit database on a small, real
//! filesystem (tmpfs) that fills up, the CA refuses the actions it cannot record
//! (503 `audit_unavailable`), keeps answering health checks and public reads, and
//! serves again by itself once space is freed — with a chain that still verifies
//! and an event for every action that was answered with success.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use rampart_api::{
    paths, CertRequest, CertResponse, CreateUserRequest, Health, InviteRequest, InviteResponse,
    User,
};
use rampart_e2e::small_disk::SmallDisk;
use rampart_e2e::{api_admin, Ca, KeyPair};

fn issue(
    client: &rampart_api::Client,
    key: &str,
) -> Result<CertResponse, rampart_api::ClientError> {
    client.post_json(
        paths::CERTS,
        &CertRequest {
            public_key: key.to_owned(),
            ttl_seconds: Some(600),
        },
    )
}

fn create_user(admin: &rampart_api::Client, name: &str) -> Result<User, rampart_api::ClientError> {
    admin.post_json(
        paths::ADMIN_USERS,
        &CreateUserRequest {
            name: name.into(),
            groups: vec!["engineers".into()],
            admin: false,
        },
    )
}

/// Invites in the CA store, by user, read with the sqlite3 shell.
fn invite_rows(ca: &Ca) -> String {
    rampart_e2e::audit_db::sqlite3(
        &ca.ca_db(),
        "SELECT user, expires_at FROM invites ORDER BY rowid;",
    )
}

#[test]
fn a_full_audit_disk_refuses_actions_and_service_resumes_when_space_returns() {
    let mut ca = Ca::init_e2e("");
    let disk = SmallDisk::mount(&ca.root().join("auditfs"), "4m");
    // Move the audit log (made by init) onto the small disk.
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", ca.audit_db().display()));
        if from.exists() {
            std::fs::copy(&from, disk.dir().join(format!("audit.db{suffix}"))).unwrap();
            std::fs::remove_file(&from).unwrap();
        }
    }
    let audit_db = disk.dir().join("audit.db");
    // The witness stays where init wrote it (off the small disk): the CA refuses
    // a database with checkpoints whose witness is missing.
    ca.merge_config(&format!(
        "[audit]\ndatabase = {:?}\nwitness_file = {:?}\n",
        audit_db.display().to_string(),
        ca.dir().join("audit.witness").display().to_string()
    ));
    ca.start();
    let (_admin, session) = api_admin(&ca);
    let admin = session.client.clone();
    create_user(&admin, "before").expect("works while there is space");
    let key = KeyPair::ed25519(ca.root(), "subject").public_line();
    let first = issue(&admin, &key).expect("issuance works while there is space");

    let filler = disk.fill();
    // SQLite may still have room in pages it already owns; keep acting until the
    // log refuses. Every success in between must still end up in the chain.
    let mut succeeded = Vec::new();
    let mut refused = None;
    for i in 0..500 {
        let name = format!("during{i}");
        match create_user(&admin, &name) {
            Ok(_) => succeeded.push(name),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk must make the CA refuse actions");
    assert_eq!(refused.api_code(), Some("audit_unavailable"), "{refused}");
    assert!(
        refused.to_string().contains("audit log"),
        "the refusal says why: {refused}"
    );
    // The refused user was not created behind the log's back.
    let refused_name = format!("during{}", succeeded.len());
    // Issuance is refused the same way, with the same clear reason.
    let mut issued_during = Vec::new();
    let cert_refusal = loop {
        match issue(&admin, &key) {
            Ok(c) => issued_during.push(c.serial),
            Err(e) => break e,
        }
        assert!(
            issued_during.len() < 500,
            "issuance never refused on a full disk"
        );
    };
    assert_eq!(
        cert_refusal.api_code(),
        Some("audit_unavailable"),
        "{cert_refusal}"
    );
    // So is an invite, and none is stored: an enrolment door the log does not
    // know about must not exist.
    let invites_before = invite_rows(&ca);
    let invite_refusal = admin
        .post_json::<_, InviteResponse>(
            paths::ADMIN_INVITES,
            &InviteRequest {
                user: "before".into(),
                ttl_seconds: None,
            },
        )
        .expect_err("an invite while the audit log cannot be written");
    assert_eq!(
        invite_refusal.api_code(),
        Some("audit_unavailable"),
        "{invite_refusal}"
    );
    assert_eq!(invite_rows(&ca), invites_before, "no invite stored");

    // Reads and health keep working while writes fail.
    let health: Health = ca.api().get_json(paths::HEALTH).unwrap();
    assert_eq!(health.status, "degraded");
    assert!(ca.api().user_ca().unwrap().starts_with("ssh-ed25519 "));
    assert!(!ca.api().get_bytes(paths::KRL).unwrap().is_empty());

    // Free the space: the CA resumes by itself, no restart.
    std::fs::remove_file(filler).unwrap();
    let mut resumed = false;
    for _ in 0..50 {
        if create_user(&admin, "after").is_ok() {
            resumed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(resumed, "the CA must resume once the disk has space again");
    let health: Health = ca.api().get_json(paths::HEALTH).unwrap();
    assert_eq!(health.status, "ok");
    let after = issue(&admin, &key).expect("issuance resumes once space returns");
    assert!(after.serial > first.serial);

    let users: Vec<User> = admin.get_json(paths::ADMIN_USERS).unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert!(
        !names.contains(&refused_name.as_str()),
        "a refused action must not change state: {names:?}"
    );
    ca.stop();
    let verify = rampart_e2e::audit_verify_with(&audit_db, Some(&ca.audit_pubkey()));
    verify.assert_success("audit verify after the disk-full episode");
    // Every certificate handed out has its event; none was issued silently.
    let issued: std::collections::HashSet<u64> = rampart_e2e::AuditDb::new(&audit_db)
        .events_of_kind("cert_issued")
        .iter()
        .filter_map(|r| r.get("serial")?.as_u64())
        .collect();
    for s in issued_during
        .iter()
        .chain([first.serial, after.serial].iter())
    {
        assert!(
            issued.contains(s),
            "serial {s} was handed out without its event"
        );
    }
    // Nothing half-written: every certificate the CA stored has its event too.
    let stored = rampart_e2e::audit_db::sqlite3(&ca.ca_db(), "SELECT serial FROM certs");
    for line in stored.lines().filter(|l| !l.trim().is_empty()) {
        let s: u64 = line.trim().parse().unwrap();
        assert!(
            issued.contains(&s),
            "certificate {s} is stored without its event"
        );
    }
    let created = rampart_e2e::AuditDb::new(&audit_db).events_of_kind("user_created");
    let expected = succeeded
        .iter()
        .map(String::as_str)
        .chain(["before", "after"]);
    for name in expected {
        assert!(
            created
                .iter()
                .any(|row| serde_json::Value::Object(row.clone())
                    .to_string()
                    .contains(&format!("\"{name}\""))),
            "user {name} was created with success but has no user_created event"
        );
    }
}
