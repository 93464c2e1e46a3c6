//! TOTP and invites through the real CLI: wrong codes, replays, lockout, recovery
//! codes, reused and expired invites. Each refusal must leave the user unable to
//! get a certificate, and wrong codes must be audited.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::{bootstrap_admin, onboard, AuditDb, Ca, Cli};

/// Small enough to reach quickly, long enough to still be locked when we check.
const LOCKOUT_CONFIG: &str = "[totp]\nmax_failures = 3\nlockout = \"5m\"\n";
/// Room for the deliberate failures of the other test without locking carol out.
const ROOMY_CONFIG: &str = "[totp]\nmax_failures = 10\nlockout = \"5m\"\n";

#[test]
fn wrong_code_replay_and_recovery_codes() {
    let mut ca = Ca::init_e2e(ROOMY_CONFIG);
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut carol = onboard(&ca, &admin, "carol", &[ENGINEERS]);
    assert!(
        carol.recovery_codes.len() >= 8,
        "expected a sheet of recovery codes, got {:?}",
        carol.recovery_codes
    );
    let audit = AuditDb::new(ca.audit_db());
    let failed_before = audit.events_of_kind("mfa_failed").len();

    // A wrong code: refused, no certificate, and an mfa_failed event.
    let wrong = carol.totp.wrong_code();
    let out = carol.cli.login_with(&wrong, &[]);
    out.assert_failure("wrong TOTP code");
    assert!(
        !out.stderr.contains(&wrong),
        "the CLI must not echo the code back\n{out}"
    );
    assert!(
        !carol.cli.cert().exists(),
        "no certificate after a wrong code\n{out}"
    );
    let failed = audit.events_of_kind("mfa_failed");
    assert_eq!(
        failed.len(),
        failed_before + 1,
        "one mfa_failed event per wrong code; kinds: {:?}",
        audit.kinds()
    );

    // The same right code twice: the first works, the replay is refused.
    let code = carol.totp.fresh_code();
    carol
        .cli
        .login_with(&code, &[])
        .assert_success("fresh TOTP code");
    let first_cert = std::fs::read_to_string(carol.cli.cert()).unwrap();
    let out = carol.cli.login_with(&code, &[]);
    out.assert_failure("replayed TOTP code");
    let lower = out.stderr.to_ascii_lowercase();
    assert!(
        lower.contains("already used") || lower.contains("replay"),
        "the refusal should say the code was already used\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(carol.cli.cert()).unwrap(),
        first_cert,
        "a refused login must not replace the certificate"
    );

    // A recovery code works exactly once; another one still works afterwards.
    let r0 = carol.recovery_codes[0].clone();
    let r1 = carol.recovery_codes[1].clone();
    let out = carol.cli.login_with(&r0, &["--recovery"]);
    out.assert_success("first use of a recovery code");
    let info = rampart_e2e::keys::inspect_cert(&carol.cli.cert());
    assert!(
        info.key_id.contains("mfa=recovery"),
        "a recovery login must say so in the key ID: {}",
        info.key_id
    );
    carol
        .cli
        .login_with(&r0, &["--recovery"])
        .assert_failure("second use of the same recovery code");
    carol
        .cli
        .login_with(&r1, &["--recovery"])
        .assert_success("another unused recovery code");
    // A TOTP code is not a recovery code and vice versa.
    carol
        .cli
        .login_with(&r1, &[])
        .assert_failure("recovery code sent as a TOTP code");
}

#[test]
fn repeated_failures_lock_the_account() {
    let mut ca = Ca::init_e2e(LOCKOUT_CONFIG);
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut dave = onboard(&ca, &admin, "dave", &[ENGINEERS]);

    for i in 0..3 {
        let wrong = dave.totp.wrong_code();
        dave.cli
            .login_with(&wrong, &[])
            .assert_failure(&format!("wrong code #{}", i + 1));
    }
    // Locked now: even a right, never-used code is refused.
    let out = dave.login_with(&[]);
    out.assert_failure("right code while locked out");
    assert!(
        out.stderr.to_ascii_lowercase().contains("lock"),
        "the refusal should say the account is locked\n{out}"
    );
    assert!(
        !dave.cli.cert().exists(),
        "no certificate while locked\n{out}"
    );
    let audit = AuditDb::new(ca.audit_db());
    assert!(
        audit.events_of_kind("mfa_failed").len() >= 3,
        "kinds: {:?}",
        audit.kinds()
    );
    assert!(
        !audit.events_of_kind("mfa_locked_out").is_empty(),
        "the lockout itself is an audit event; kinds: {:?}",
        audit.kinds()
    );

    // The lock is per user: another user of the same CA still logs in.
    let mut eve = onboard(&ca, &admin, "eve", &[ENGINEERS]);
    eve.login();
}

#[test]
fn a_strangers_hundred_wrong_codes_do_not_lock_the_admin_out() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let mut admin = bootstrap_admin(&ca);
    let admin_name = ca.info().admin_user.clone();
    // The stranger talks to the CA over HTTPS from another loopback address.
    let stranger = rampart_e2e::http::RawHttp::from_address(
        ca.url(),
        ca.pin(),
        Some("127.0.0.66".parse().unwrap()),
    );
    let mut codes = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..100 {
        let body = serde_json::to_vec(&rampart_api::LoginRequest {
            user: admin_name.clone(),
            factor: rampart_api::FactorProof::Totp {
                code: admin.totp.wrong_code().into(),
            },
        })
        .unwrap();
        let r = stranger.post(rampart_api::paths::LOGIN, body, None);
        let code = r.error_body().map(|b| b.code).unwrap_or_default();
        *codes.entry(code).or_default() += 1;
    }
    // Five guesses were judged; every later one was refused unjudged.
    assert_eq!(codes.get("factor_invalid"), Some(&5), "{codes:?}");
    assert_eq!(codes.values().sum::<u32>(), 100, "{codes:?}");
    // The admin, from 127.0.0.1 with the real CLI, logs in as ever.
    admin.login();
    let audit = AuditDb::new(ca.audit_db());
    let locks = audit.events_of_kind("mfa_locked_out");
    assert_eq!(
        locks.len(),
        1,
        "one lock, of the stranger's network: {locks:?}"
    );
    assert!(format!("{locks:?}").contains("127.0.0.66"), "{locks:?}");
}

#[test]
fn invites_are_single_use_and_expire() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);

    // init's admin invite was used by bootstrap_admin: a second use is refused.
    let again = Cli::new(&ca, "admin-again");
    let out = again
        .try_enroll(&ca.info().admin_invite)
        .expect_err("the admin invite must not work twice");
    assert!(!out.stdout.contains("otpauth://"), "{out}");
    assert!(
        out.stderr.to_ascii_lowercase().contains("used"),
        "the refusal should say the invite was used\n{out}"
    );

    // A fresh invite works once.
    admin.cli.add_user("erin", &[ENGINEERS]);
    let code = admin.cli.invite("erin", None);
    let mut erin = Cli::new(&ca, "erin").enroll(&code);
    erin.login();
    let second = Cli::with_home(&ca, "erin", ca.root().join("home-erin-2"));
    second
        .try_enroll(&code)
        .expect_err("an invite must not work twice");

    // An invite that expired is refused.
    admin.cli.add_user("frank", &[ENGINEERS]);
    let code = admin.cli.invite("frank", Some("2s"));
    std::thread::sleep(Duration::from_secs(3));
    let out = Cli::new(&ca, "frank")
        .try_enroll(&code)
        .expect_err("an expired invite must be refused");
    assert!(
        out.stderr.to_ascii_lowercase().contains("expire"),
        "the refusal should say the invite expired\n{out}"
    );
    let audit = AuditDb::new(ca.audit_db());
    assert!(
        audit.events_of_kind("invite_refused").len() >= 3,
        "each refused invite is audited; kinds: {:?}",
        audit.kinds()
    );

    // A garbage invite is refused too.
    Cli::new(&ca, "nobody")
        .try_enroll("not-an-invite")
        .expect_err("a made-up invite must be refused");
}
