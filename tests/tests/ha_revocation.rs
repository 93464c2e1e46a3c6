//! Two CAs on one PostgreSQL and a bastion that polls only the first: a
//! revocation made through the *second* CA ends a live session on the bastion
//! within seconds (the revocation list the bastion polls is read from the
//! shared database, whichever CA wrote it), new connections are refused, and
//! the first CA's KRL, which hosts sync, revokes the certificate at once.
//! Real `rampart-ca` ×2, throwaway PostgreSQL, `rampart-bastion`, `sshd`, `ssh -J`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use rampart_e2e::bastion::{host_ca_target, scratch, ssh, ssh_spawn, Bastion, TargetSpec};
use rampart_e2e::keys::krl_revokes;
use rampart_e2e::process::run;
use rampart_e2e::{bootstrap_admin, eventually, onboard, Ca, TEST_ACCOUNT};
use rampart_test_postgres::TestPostgres;

const BASTION: &str = "bastion-1";

fn policy(admin: &str) -> String {
    rampart_e2e::policy::bastion_policy(admin, BASTION)
}

#[test]
fn a_revocation_through_one_ca_ends_a_session_on_a_bastion_that_polls_the_other() {
    let pg = TestPostgres::start();
    let url = pg.create_database("rampart");
    let mut ca1 = Ca::init_postgres(&url, "");
    ca1.write_policy(&policy(&ca1.info().admin_user.clone()));
    let mut ca2 = ca1.copy_as_another_ca();
    ca1.start();
    ca2.start();

    let admin = bootstrap_admin(&ca1);
    let mut alice = onboard(&ca1, &admin, "alice", &["engineers"]);
    alice.login();
    let sshd = host_ca_target(&ca1, &admin, Vec::new());
    // Joined through CA 1; its config names only CA 1.
    let mut bastion = Bastion::join(
        &ca1,
        &admin,
        BASTION,
        &[TargetSpec::host_ca("db-1", sshd.port())],
    );
    bastion.start();
    let dir = scratch("ha-revocation");
    let config = bastion.ssh_config(&alice, dir.path(), &["db-1"]);
    let (mut child, _out, err) = ssh_spawn(
        &config,
        &[&format!("{TEST_ACCOUNT}@db-1"), "sleep 120"],
        dir.path(),
        "live",
    );
    eventually("the session reaches the target", || {
        sshd.log().contains("user=alice")
    });

    // CA 1 has served its KRL (and holds it signed) before the revocation.
    let krl = dir.path().join("krl-from-ca1");
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
            bastion.log()
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
        &config,
        &[&format!("{TEST_ACCOUNT}@db-1"), "true"],
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
    bastion.stop();
    ca1.stop();
    ca2.stop();
}
