//! Two CAs on one PostgreSQL and a bastion that polls only the first: a
//! revocation made through the *second* CA ends a live session on the bastion
//! within seconds (the revocation list the bastion polls is read from the
//! shared database, whichever CA wrote it), new connections are refused, and
//! the first CA's KRL, which hosts sync, revokes the certificate at once. The
//! session's recording, uploaded by the bastion to the first CA, plays
//! through the second (recordings are kept in the shared database), and
//! `rampart audit verify --recordings` checks it there.
//! Real `rampart-ca` ×2, throwaway PostgreSQL, `rampart-bastion`, `sshd`, `ssh -J`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use rampart_e2e::bastion::ssh;
use rampart_e2e::eventually;
use rampart_e2e::ha::{postgres_ca, Scene};
use rampart_e2e::keys::krl_revokes;
use rampart_e2e::process::run;
use rampart_test_postgres::TestPostgres;

#[test]
fn a_revocation_through_one_ca_ends_a_session_on_a_bastion_that_polls_the_other() {
    let pg = TestPostgres::start();
    let mut ca1 = postgres_ca(&pg.create_database("rampart"));
    let mut ca2 = ca1.copy_as_another_ca();
    ca1.start();
    ca2.start();
    // Joined through CA 1; its config names only CA 1.
    let mut scene = Scene::new(&ca1, "ha-revocation");
    let (mut child, _out, err) = scene.live_session("echo ha-recorded-output; sleep 120");
    let (admin, alice, dir) = (&scene.admin, &scene.alice, scene.dir.path());

    // CA 1 has served its KRL (and holds it signed) before the revocation.
    let krl = dir.join("krl-from-ca1");
    std::fs::write(&krl, ca1.api().get_bytes(rampart_api::paths::KRL).unwrap()).unwrap();
    assert!(!krl_revokes(&krl, &alice.cli.cert()));

    // The admin revokes alice through CA 2.
    let mut revoke = admin.cli.command();
    revoke
        .env("RAMPART_CA", ca2.url())
        .env("RAMPART_CA_FINGERPRINT", ca2.fingerprint())
        .args(["admin", "revoke", "--user", "alice"]);
    run(revoke).assert_success("rampart admin revoke --user alice, through CA 2");
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the session still runs 15 s after the revocation through CA 2\n{}",
            scene.bastion.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = t0.elapsed();
    assert!(!status.success());
    // The bastion polls every 2 s: one poll, plus the time to end the session.
    assert!(
        took < Duration::from_secs(5),
        "session ended after {took:?}"
    );
    eprintln!("live session ended {took:?} after a revocation through the other CA");
    let stderr = std::fs::read_to_string(err).unwrap();
    assert!(stderr.contains("revoked"), "{stderr}");
    let out = ssh(
        &scene.config,
        &[&scene.target(), "true"],
        None,
        Duration::from_secs(60),
    );
    out.assert_failure("a new connection after the revocation");

    // Hosts that sync their KRL from CA 1 get the revocation made through CA 2
    // at once, not at CA 1's next hourly re-signing.
    std::fs::write(&krl, ca1.api().get_bytes(rampart_api::paths::KRL).unwrap()).unwrap();
    assert!(
        krl_revokes(&krl, &alice.cli.cert()),
        "CA 1's KRL revokes the certificate revoked through CA 2"
    );

    // The recording went to CA 1; an admin plays it through CA 2.
    let through_ca2 = |args: &[&str]| {
        let mut c = admin.cli.command();
        c.env("RAMPART_CA", ca2.url())
            .env("RAMPART_CA_FINGERPRINT", ca2.fingerprint())
            .args(args);
        run(c)
    };
    let mut session = String::new();
    eventually("the session's recording is sealed", || {
        let out = through_ca2(&["sessions", "list", "--json", "--user", "alice"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        match v["sessions"].as_array().and_then(|s| s.first()) {
            Some(s) if s["recording_sha256"].is_string() => {
                session = s["session_id"].as_str().unwrap().to_owned();
                true
            }
            _ => false,
        }
    });
    let play = through_ca2(&["sessions", "play", &session, "--speed", "0"]);
    play.assert_success("rampart sessions play, through CA 2");
    assert!(play.stdout.contains("ha-recorded-output"), "{play}");
    for ca in [&ca1, &ca2] {
        assert!(
            !ca.dir()
                .join("recordings")
                .join(format!("{session}.cast.zst"))
                .exists(),
            "the recording is in the database, not in a CA's directory"
        );
    }
    let mut verify = admin.cli.command();
    verify.args([
        "audit",
        "verify",
        "--db",
        &pg.url("rampart"),
        "--audit-pubkey",
        ca1.audit_pubkey().to_str().unwrap(),
        "--recordings",
        &pg.url("rampart"),
    ]);
    let out = run(verify);
    out.assert_success("rampart audit verify --recordings postgres://…");
    assert!(
        out.stdout.contains("OK: 1 sealed recordings match"),
        "{out}"
    );

    scene.bastion.stop();
    ca1.stop();
    ca2.stop();
}
