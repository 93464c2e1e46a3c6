//! The CA on PostgreSQL (`init --database postgres://…`) through the real
//! binaries: a throwaway PostgreSQL cluster, a real `rampart-ca`, the real CLI.
//! The state lives in PostgreSQL (no `ca.db`), survives a restart, and two CAs
//! sharing the database serve the same users and sessions without ever
//! handing out one serial twice. A login begun on one CA is finished on the
//! other (against the real OIDC provider, and with a software security key
//! over the CTAP2 path), exactly once, and one network's budget of login
//! starts is one budget for both CAs.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;

use rampart_api::oidc::{
    OidcFinishRequest, OidcFinishResponse, OidcStartRequest, OidcStartResponse, FINISH, START,
};
use rampart_api::webauthn::{CeremonyOutcome, WaitRequest, WAIT};
use rampart_e2e::fido2::{finish, options_of, origin_of, start_direct_login, SoftKey};
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::oidc::{account, code_and_state, OidcProvider};
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::process::run;
use rampart_e2e::{bin, bootstrap_admin, free_port, onboard, AuditDb, Ca, Cli};
use rampart_test_postgres::TestPostgres;
use serde_json::json;

#[test]
fn a_ca_on_postgres_enrols_logs_in_and_keeps_its_users_across_a_restart() {
    let pg = TestPostgres::start();
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
            .contains(&format!("CA database OK: {url} (schema version 2)")),
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
    let pg = TestPostgres::start();
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
    let pg = TestPostgres::start();
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

    // CA 1 dies (`kill -9`): the next `rampart login` goes to CA 2. The
    // code is read first, so the time is the failover's, not the TOTP step's.
    let code = carol.totp.fresh_code();
    ca1.kill9();
    let t0 = std::time::Instant::now();
    let out = both.login_with(&code, &[]);
    let took = t0.elapsed();
    out.assert_success("login with CA 1 killed: CA 2 answers");
    eprintln!("`rampart login` succeeded through CA 2 {took:?} after kill -9 of CA 1");
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

/// Two CAs on one throwaway PostgreSQL, both relying on `provider` as `corp`
/// (just-in-time users), with `extra` merged into their config.
fn two_cas_with_oidc(pg: &TestPostgres, provider: &OidcProvider, extra: &str) -> (Ca, Ca) {
    let url = pg.create_database("rampart");
    let ca1 = Ca::init_postgres(&url, "");
    ca1.merge_config(&provider.ca_config(ca1.dir(), "corp", "jit_users = true"));
    if !extra.is_empty() {
        ca1.merge_config(extra);
    }
    let mut ca2 = ca1.copy_as_another_ca();
    let mut ca1 = ca1;
    ca1.start();
    ca2.start();
    (ca1, ca2)
}

fn oidc_start(ca: &Ca) -> Result<OidcStartResponse, rampart_api::ClientError> {
    ca.api().post_json(
        START,
        &OidcStartRequest {
            provider: "corp".into(),
            redirect_uri: format!("http://127.0.0.1:{}/callback", free_port()),
            user: None,
        },
    )
}

fn oidc_finish(
    ca: &Ca,
    code: &str,
    state: &str,
) -> Result<OidcFinishResponse, rampart_api::ClientError> {
    ca.api().post_json(
        FINISH,
        &OidcFinishRequest {
            state: state.to_owned().into(),
            code: code.to_owned().into(),
            invite: None,
        },
    )
}

/// Whether one audit event in `ca`'s own log mentions every one of `words`.
fn audited(ca: &Ca, words: &[&str]) -> bool {
    AuditDb::new(ca.audit_db())
        .events()
        .iter()
        .map(|e| serde_json::Value::Object(e.clone()).to_string())
        .any(|e| words.iter().all(|w| e.contains(w)))
}

#[test]
fn an_oidc_login_begun_on_one_ca_is_finished_on_the_other_once() {
    let pg = TestPostgres::start();
    let provider =
        OidcProvider::start(json!({ "alice": account(&["engineers"], &["pwd", "otp"]) }));
    let (ca1, ca2) = two_cas_with_oidc(&pg, &provider, "");

    let started = oidc_start(&ca1).expect("oidc start on CA 1");
    let redirect = provider.authenticate(&started.authorize_url, "alice");
    let (code, state) = code_and_state(&redirect);
    // The state, nonce and PKCE verifier are in the database, but neither
    // the state itself nor the verifier in the clear.
    let kept = pg.psql(
        "rampart",
        "SELECT kind || ' ' || encode(payload, 'escape') FROM pending",
    );
    assert!(kept.starts_with("oidc_login "), "{kept}");
    assert!(!kept.contains(&state), "the state is stored in the clear");
    assert!(!kept.contains("pkce") && !kept.contains("nonce"), "{kept}");

    let finished = oidc_finish(&ca2, &code, &state).expect("oidc finish on CA 2");
    let OidcFinishResponse::LoggedIn { login } = finished else {
        panic!("expected a session, got {finished:?}");
    };
    assert_eq!(login.user, "alice");
    assert_eq!(login.mfa_method, "oidc");
    assert!(audited(&ca2, &["mfa_succeeded", "alice", "oidc"]));
    assert_eq!(pg.psql("rampart", "SELECT COUNT(*) FROM pending"), "0");

    // The finished step, replayed on either CA, is refused and audited there.
    for (n, ca) in [(1, &ca1), (2, &ca2)] {
        let again = oidc_finish(ca, &code, &state).expect_err("a replayed state");
        assert_eq!(
            again.api_code(),
            Some("oidc_state_unknown"),
            "CA {n}: {again}"
        );
        assert!(
            audited(ca, &["mfa_failed", "oidc_state_unknown"]),
            "CA {n} did not audit the replay"
        );
    }
    // And a login raced to both CAs at once is finished by one of them.
    let started = oidc_start(&ca2).expect("oidc start on CA 2");
    let redirect = provider.authenticate(&started.authorize_url, "alice");
    let (code, state) = code_and_state(&redirect);
    let racers: Vec<_> = [ca1.api(), ca2.api()]
        .into_iter()
        .map(|api| {
            let (code, state) = (code.clone(), state.clone());
            std::thread::spawn(move || {
                api.post_json::<_, OidcFinishResponse>(
                    FINISH,
                    &OidcFinishRequest {
                        state: state.into(),
                        code: code.into(),
                        invite: None,
                    },
                )
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(refused.api_code(), Some("oidc_state_unknown"), "{refused}");

    let (mut ca1, mut ca2) = (ca1, ca2);
    ca1.stop();
    ca2.stop();
    assert_clean_stops(&ca1);
    assert_clean_stops(&ca2);
}

#[test]
fn one_networks_budget_of_login_starts_is_shared_by_both_cas() {
    let pg = TestPostgres::start();
    let provider = OidcProvider::start(json!({ "alice": account(&["engineers"], &["pwd"]) }));
    let (ca1, ca2) = two_cas_with_oidc(&pg, &provider, "[totp]\nip_max_starts = 4\n");

    // Four starts from this network, alternating between the CAs, are the
    // whole budget: each CA alone saw only two.
    for ca in [&ca1, &ca2, &ca1, &ca2] {
        oidc_start(ca).expect("a start within the budget");
    }
    for (n, ca) in [(1, &ca1), (2, &ca2)] {
        let refused = oidc_start(ca).expect_err("a start past the shared budget");
        assert_eq!(
            refused.api_code(),
            Some("source_rate_limited"),
            "CA {n}: {refused}"
        );
        assert!(
            matches!(refused, rampart_api::ClientError::Api { status: 429, .. }),
            "{refused}"
        );
    }
    let (mut ca1, mut ca2) = (ca1, ca2);
    ca1.stop();
    ca2.stop();
}

#[test]
fn a_security_key_login_begun_on_one_ca_is_finished_on_the_other_once() {
    let pg = TestPostgres::start();
    let url = pg.create_database("rampart");
    let mut ca1 = Ca::init_postgres(&url, "");
    // Behind a load balancer both CAs serve one origin: the pages' and the
    // keys' relying party are the same whichever CA answers.
    let port = ca1.url().rsplit(':').next().unwrap().to_owned();
    ca1.merge_config(&format!(
        "[webauthn]\nrp_id = \"localhost\"\norigin = \"https://localhost:{port}\"\n"
    ));
    let mut ca2 = ca1.copy_as_another_ca();
    ca1.start();
    ca2.start();
    let admin = bootstrap_admin(&ca1);

    // Alice enrols a software key through CA 1.
    admin.cli.add_user("alice", &[ENGINEERS]);
    let invite = admin.cli.invite("alice", None);
    let alice = Cli::new(&ca1, "alice");
    let tokens = ca1.root().join("soft-tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let key = SoftKey::new(&tokens, "alice");
    key.run(
        &alice,
        &[
            "enroll",
            "--ca",
            ca1.url(),
            "--ca-fingerprint",
            ca1.fingerprint(),
            "--invite",
            &invite,
            "--fido2",
            "--key-name",
            "soft-alice",
        ],
    )
    .assert_success("rampart enroll --fido2 through CA 1");

    // Started on CA 1, the key's answer is posted to CA 2.
    let (api1, api2) = (ca1.api(), ca2.api());
    let started = start_direct_login(&api1, "alice");
    let cred = key
        .sign(&origin_of(&started), &options_of(&started), |_| {})
        .unwrap();
    match finish(&api2, &started, &cred) {
        Ok(CeremonyOutcome::LoggedIn { login }) => {
            assert_eq!(login.user, "alice");
            assert_eq!(login.mfa_method, "webauthn");
        }
        other => panic!("the answer through CA 2 must log in: {other:?}"),
    }
    assert!(audited(&ca2, &["mfa_succeeded", "alice", "webauthn"]));
    // Nothing of the ceremony is stored in the clear.
    let kept = pg.psql(
        "rampart",
        "SELECT encode(payload, 'escape') FROM pending WHERE kind = 'webauthn_request'",
    );
    assert!(
        !kept.contains("challenge") && !kept.contains(&started.short_code),
        "{kept}"
    );

    // The same answer again, on either CA: a replay, refused and audited there.
    for (n, (ca, api)) in [(1, (&ca1, &api1)), (2, (&ca2, &api2))] {
        let again = finish(api, &started, &cred).expect_err("a replayed assertion");
        assert_eq!(
            again.api_code(),
            Some("webauthn_replayed"),
            "CA {n}: {again}"
        );
        assert!(
            audited(ca, &["mfa_failed", "alice", "webauthn_replayed"]),
            "CA {n} did not audit the replay"
        );
    }
    // The starter's WAIT on CA 1 finds the request ended, not its outcome.
    let wait: Result<CeremonyOutcome, _> = api1.post_json(
        WAIT,
        &WaitRequest {
            request_id: started.request_id.clone(),
            poll_token: started.poll_token.clone(),
        },
    );
    assert_eq!(
        wait.expect_err("a collected request").api_code(),
        Some("webauthn_request_unknown")
    );

    // One answer raced to both CAs at once: one logs in, the other is a replay.
    let started = start_direct_login(&api2, "alice");
    let cred = key
        .sign(&origin_of(&started), &options_of(&started), |_| {})
        .unwrap();
    let racers: Vec<_> = [ca1.api(), ca2.api()]
        .into_iter()
        .map(|api| {
            let (started, cred) = (started.clone(), cred.clone());
            std::thread::spawn(move || finish(&api, &started, &cred))
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(refused.api_code(), Some("webauthn_replayed"), "{refused}");

    ca1.stop();
    ca2.stop();
    assert_clean_stops(&ca1);
    assert_clean_stops(&ca2);
}
