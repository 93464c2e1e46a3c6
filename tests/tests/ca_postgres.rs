//! The CA on PostgreSQL (`init --database postgres://…`) through the real
//! binaries: a throwaway PostgreSQL cluster, a real `rampart-ca`, the real CLI.
//! The state lives in PostgreSQL (no `ca.db`), survives a restart, and two CAs
//! sharing the database serve the same users and sessions without ever
//! handing out one serial twice.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;

use rampart_e2e::keys::inspect_cert;
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::postgres::Postgres;
use rampart_e2e::process::run;
use rampart_e2e::{bin, bootstrap_admin, onboard, Ca, Cli};

#[test]
fn a_ca_on_postgres_enrols_logs_in_and_keeps_its_users_across_a_restart() {
    let pg = Postgres::start();
    let url = pg.create_database("rampart");
    let mut ca = Ca::init_postgres(&url, "");
    assert!(!ca.ca_db().exists(), "init made a ca.db beside PostgreSQL");
    let config = std::fs::read_to_string(ca.config_path()).unwrap();
    assert!(
        config.contains(&format!("database = \"{url}\"")),
        "{config}"
    );

    let mut check = std::process::Command::new(bin("rampart-ca"));
    check.arg("check").arg("--config").arg(ca.config_path());
    let out = run(check);
    out.assert_success("rampart-ca check");
    assert!(
        out.stdout
            .contains(&format!("CA database OK: {url} (schema version 1)")),
        "{out}"
    );

    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut carol = onboard(&ca, &admin, "carol", &[ENGINEERS]);
    let code = carol.totp.fresh_code();
    carol
        .cli
        .login_with(&code, &[])
        .assert_success("carol's first login");
    let first = inspect_cert(&carol.cli.cert());
    // The users are rows in PostgreSQL, not in some file beside the CA.
    assert_eq!(
        pg.psql("rampart", "SELECT name FROM users ORDER BY name"),
        format!("{}\ncarol", ca.info().admin_user)
    );
    assert!(!ca.ca_db().exists());

    // After a restart the CA finds carol, her factor and her used TOTP step.
    ca.restart();
    carol
        .cli
        .login_with(&code, &[])
        .assert_failure("the code of her first login, replayed after the restart");
    let out = carol.login();
    let second = inspect_cert(&carol.cli.cert());
    assert!(second.serial > first.serial, "{out}");
    ca.stop();
    assert_clean_stops(&ca);
}

/// Both stops were clean: the blocking PostgreSQL client panics when its last
/// connection is closed on an async worker, as the daemon's shutdown may do.
fn assert_clean_stops(ca: &Ca) {
    let log = ca.log();
    assert!(!log.contains("panicked"), "the CA panicked\n{log}");
}

#[test]
fn two_cas_on_one_postgres_share_users_and_sessions_and_never_a_serial() {
    let pg = Postgres::start();
    let url = pg.create_database("rampart");
    let mut ca1 = Ca::init_postgres(&url, "");
    let mut ca2 = ca1.copy_as_another_ca();
    ca1.start();
    ca2.start();
    assert_ne!(ca1.url(), ca2.url());

    let admin = bootstrap_admin(&ca1);
    let mut serials = vec![(1, inspect_cert(&admin.cli.cert()).serial)];

    // Enrolled through CA 1, carol logs in through CA 2.
    let mut carol = onboard(&ca1, &admin, "carol", &[ENGINEERS]);
    let via2 = Cli::for_ca(
        ca2.url(),
        ca2.fingerprint(),
        "carol",
        carol.cli.home().to_path_buf(),
    );
    let code = carol.totp.fresh_code();
    via2.login_with(&code, &[])
        .assert_success("carol's login through CA 2");
    serials.push((2, inspect_cert(&via2.cert()).serial));
    // The step she used through CA 2 is used for CA 1 too.
    carol
        .cli
        .login_with(&code, &[])
        .assert_failure("the same code again, through CA 1");

    // The admin's session, opened on CA 1, works on CA 2: invite dave there.
    let mut invite = admin.cli.command();
    invite
        .env("RAMPART_CA", ca2.url())
        .env("RAMPART_CA_FINGERPRINT", ca2.fingerprint())
        .args(["admin", "user", "add", "dave", "--group", ENGINEERS]);
    run(invite).assert_success("rampart admin user add through CA 2");
    let mut invite = admin.cli.command();
    invite
        .env("RAMPART_CA", ca2.url())
        .env("RAMPART_CA_FINGERPRINT", ca2.fingerprint())
        .args(["admin", "invite", "dave"]);
    let out = run(invite);
    out.assert_success("rampart admin invite through CA 2");
    let code = rampart_e2e::cli::parse_invite_code(&out.stdout)
        .unwrap_or_else(|| panic!("no invite code\n{out}"));
    // Redeemed through CA 1; the invite is spent for CA 2 as well.
    let mut dave = Cli::new(&ca1, "dave").enroll(&code);
    let again = Cli::for_ca(
        ca2.url(),
        ca2.fingerprint(),
        "dave",
        ca2.root().join("home-dave-again"),
    )
    .try_enroll(&code);
    assert!(
        again.is_err(),
        "an invite redeemed through CA 1 worked on CA 2"
    );
    dave.login();
    serials.push((1, inspect_cert(&dave.cli.cert()).serial));

    // More certificates from both: carol through CA 1, dave through CA 2.
    carol.login();
    serials.push((1, inspect_cert(&carol.cli.cert()).serial));
    let dave2 = Cli::for_ca(
        ca2.url(),
        ca2.fingerprint(),
        "dave",
        dave.cli.home().to_path_buf(),
    );
    let code = dave.totp.fresh_code();
    dave2
        .login_with(&code, &[])
        .assert_success("dave's login through CA 2");
    serials.push((2, inspect_cert(&dave2.cert()).serial));

    let distinct: HashSet<u64> = serials.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        distinct.len(),
        serials.len(),
        "a serial repeated: {serials:?}"
    );
    assert!(serials.iter().any(|(ca, _)| *ca == 1) && serials.iter().any(|(ca, _)| *ca == 2));
    // Every certificate is recorded in the shared database.
    let recorded = pg.psql("rampart", "SELECT COUNT(*) FROM certs WHERE kind = 'user'");
    assert_eq!(recorded, serials.len().to_string());
    ca1.stop();
    ca2.stop();
    assert_clean_stops(&ca1);
    assert_clean_stops(&ca2);
}

/// A CLI that knows both CAs (`--ca URL1,URL2`) keeps working when the one it
/// used stops, and when neither answers it says so naming both.
#[test]
fn a_cli_given_both_cas_moves_on_when_one_is_down() {
    let pg = Postgres::start();
    let url = pg.create_database("rampart");
    let mut ca1 = Ca::init_postgres(&url, "");
    let mut ca2 = ca1.copy_as_another_ca();
    ca1.start();
    ca2.start();
    assert_eq!(ca1.fingerprint(), ca2.fingerprint(), "one TLS identity");
    let admin = bootstrap_admin(&ca1);
    let mut carol = onboard(&ca1, &admin, "carol", &[ENGINEERS]);
    let both = Cli::for_ca(
        &format!("{},{}", ca1.url(), ca2.url()),
        ca1.fingerprint(),
        "carol",
        carol.cli.home().to_path_buf(),
    );
    both.login_with(&carol.totp.fresh_code(), &[])
        .assert_success("login with both CAs up");
    let first = inspect_cert(&both.cert()).serial;

    ca1.stop();
    let out = both.login_with(&carol.totp.fresh_code(), &[]);
    out.assert_success("login with CA 1 down: CA 2 answers");
    let second = inspect_cert(&both.cert()).serial;
    assert_ne!(first, second, "a new certificate, from CA 2");

    ca2.stop();
    let out = both.login_with(&carol.totp.fresh_code(), &[]);
    assert!(!out.status.success(), "{out}");
    for ca in [&ca1, &ca2] {
        assert!(
            out.stderr.contains(ca.url()),
            "names {}: {}",
            ca.url(),
            out.stderr
        );
    }
    assert_clean_stops(&ca1);
    assert_clean_stops(&ca2);
}
