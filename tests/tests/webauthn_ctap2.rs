//! The CLI's CTAP2 path end to end: a real `rampart-ca` (WebAuthn relying party,
//! `user_verification = "required"`), the real `rampart` CLI speaking CTAP2 to
//! webauthn-authenticator-rs's software token (the CLI's test-only
//! `RAMPART_FIDO2_SOFT_TOKEN`), a real sshd and `ssh-keygen -L`.
//!
//! Shown: enrolment from an invite with `--fido2` (recovery codes printed, the
//! token file created by it), `rampart login --mfa fido2` → a certificate that
//! sshd accepts, carrying `mfa-method@rampart=webauthn`, `mfa-uv@rampart=yes` and
//! the token's AAGUID. Refused — each audited with its reason, no certificate: a
//! replayed assertion, another user's credential, user verification missing, a
//! wrong origin, a signature counter going backwards (the key is then disabled
//! and stays refused). `rampart admin user keys` lists keys and `--remove`
//! removes one (audited), after which that user's key logins are refused. A
//! role with `webauthn_link = false` is granted to the CLI's own CTAP2 login and
//! left out for the same key approved on the CA's page, and the certificate says
//! which it was (`mfa-webauthn-link@rampart`).

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use rampart_api::webauthn::{CeremonyOutcome, WebauthnKey, KEYS};
use rampart_api::{Client, ClientError};
use rampart_e2e::cli::parse_recovery_codes;
use rampart_e2e::fido2::{finish, options_of, origin_of, start_direct_login, SoftKey};
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::{
    audit_verify, bootstrap_admin, ssh_login, AuditDb, Ca, Cli, CmdOutput, Enrolled, Sshd,
    TEST_ACCOUNT,
};
use serde_json::{json, Map, Value};

/// The AAGUID webauthn-authenticator-rs's `SoftToken` reports.
const SOFT_TOKEN_AAGUID: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";

/// UV required (so the certificate says `mfa-uv@rampart yes` and an answer
/// without UV is refused); failure limits high enough that the negative cases
/// below do not lock anybody out of the cases after them.
const CONFIG: &str = "[totp]\nmax_failures = 100\nip_max_failures = 1000\n\
                      [webauthn]\nuser_verification = \"required\"\n";

struct World {
    ca: Ca,
    admin: Enrolled,
    tokens: PathBuf,
}

impl World {
    fn new() -> World {
        World::with_policy_tail("")
    }

    /// [`World::new`] with `tail` appended to the standard policy, which ends
    /// inside its `[users]` table.
    fn with_policy_tail(tail: &str) -> World {
        let mut ca = Ca::init_e2e(CONFIG);
        if !tail.is_empty() {
            let policy = std::fs::read_to_string(ca.policy_path()).unwrap();
            ca.write_policy(&format!("{policy}{tail}"));
        }
        ca.start();
        let admin = bootstrap_admin(&ca);
        let tokens = ca.root().join("soft-tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        World { ca, admin, tokens }
    }

    fn audit(&self) -> AuditDb {
        AuditDb::new(self.ca.dir().join("audit.db"))
    }

    /// The admin's API client (their CLI session's bearer token).
    fn admin_api(&self) -> Client {
        let s: Value = serde_json::from_str(
            &std::fs::read_to_string(self.admin.cli.home().join("session.json")).unwrap(),
        )
        .unwrap();
        self.ca
            .api()
            .with_token(s["token"].as_str().unwrap().to_owned())
    }

    /// Create `name`, invite them, and enrol a software key with
    /// `rampart enroll --fido2`; returns their CLI, key and what enrol printed.
    fn enrol_fido2(&self, name: &str) -> (Cli, SoftKey, CmdOutput) {
        self.admin.cli.add_user(name, &[ENGINEERS]);
        let invite = self.admin.cli.invite(name, None);
        let cli = Cli::new(&self.ca, name);
        let key = SoftKey::new(&self.tokens, name);
        assert!(
            !key.path.exists(),
            "the token file is the enrolment's to create"
        );
        let out = key.run(
            &cli,
            &[
                "enroll",
                "--ca",
                self.ca.url(),
                "--ca-fingerprint",
                self.ca.fingerprint(),
                "--invite",
                &invite,
                "--fido2",
                "--key-name",
                &format!("soft-{name}"),
            ],
        );
        out.assert_success("rampart enroll --fido2");
        assert!(
            key.path.is_file(),
            "enrolment must create the token file\n{out}"
        );
        (cli, key, out)
    }

    /// `user`'s keys, through the admin API.
    fn keys_of(&self, user: &str) -> Vec<WebauthnKey> {
        self.admin_api()
            .get_json(&format!("{KEYS}?user={user}"))
            .unwrap_or_else(|e| panic!("GET keys of {user}: {e}"))
    }

    /// Events of `kind` about `user`.
    fn events(&self, kind: &str, user: &str) -> Vec<Map<String, Value>> {
        self.audit()
            .events_of_kind(kind)
            .into_iter()
            .filter(|e| row_text(e).contains(&format!("\"{user}\"")))
            .collect()
    }

    fn certs_issued_to(&self, user: &str) -> usize {
        self.events("cert_issued", user).len()
    }

    /// Assert that exactly one more `mfa_failed` event with `reason` exists for
    /// `user` than `before` counted.
    fn assert_refusal_audited(&self, user: &str, reason: &str, before: usize) {
        let n = self.failures_with(user, reason);
        assert_eq!(
            n,
            before + 1,
            "one mfa_failed event for {user} with reason {reason} expected; all of them: {:#?}",
            self.events("mfa_failed", user)
        );
    }

    fn failures_with(&self, user: &str, reason: &str) -> usize {
        self.events("mfa_failed", user)
            .iter()
            .filter(|e| row_text(e).contains(reason))
            .count()
    }
}

/// A whole audit row as text (the schema's columns are not assumed).
fn row_text(row: &Map<String, Value>) -> String {
    serde_json::to_string(row).unwrap()
}

/// A fresh home for a negative login, so that "no certificate" means no file.
fn fresh_cli(ca: &Ca, user: &str, tag: &str) -> Cli {
    Cli::with_home(ca, user, ca.root().join(format!("home-{user}-{tag}")))
}

fn login_args(ca: &Ca, user: &str) -> Vec<String> {
    [
        "login",
        "--ca",
        ca.url(),
        "--ca-fingerprint",
        ca.fingerprint(),
        "--user",
        user,
        "--mfa",
        "fido2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn api_code(r: Result<CeremonyOutcome, ClientError>) -> String {
    match r {
        Err(ClientError::Api { code, .. }) => code,
        Ok(o) => panic!("expected a refusal, got {o:?}"),
        Err(e) => panic!("expected an API refusal, got {e}"),
    }
}

fn assert_no_cert(cli: &Cli, out: &CmdOutput) {
    assert!(
        !cli.cert().exists(),
        "a refused login must not leave a certificate\n{out}"
    );
}

#[test]
fn fido2_enrol_login_ssh_and_every_refusal() {
    let w = World::new();
    let audit_before_alice = w.events("webauthn_key_enrolled", "alice").len();
    assert_eq!(audit_before_alice, 0);

    // --- enrolment from an invite, CTAP2 from the CLI --------------------------
    let (alice, alice_key, out) = w.enrol_fido2("alice");
    let codes = parse_recovery_codes(&out.stdout);
    assert!(
        codes.len() >= 5,
        "an invite enrolment prints recovery codes\n{out}"
    );
    let enrolled = w.events("webauthn_key_enrolled", "alice");
    assert_eq!(enrolled.len(), 1, "{enrolled:#?}");
    assert!(
        row_text(&enrolled[0]).contains(SOFT_TOKEN_AAGUID),
        "{enrolled:#?}"
    );
    let keys = w.keys_of("alice");
    assert_eq!(keys.len(), 1, "{keys:#?}");
    assert_eq!(keys[0].name, "soft-alice");
    assert_eq!(keys[0].aaguid, SOFT_TOKEN_AAGUID);

    // --- login, certificate, real sshd -------------------------------------------
    let out = alice_key.run(&alice, &["login", "--mfa", "fido2"]);
    out.assert_success("rampart login --mfa fido2");
    let info = inspect_cert(&alice.cert());
    assert!(
        info.key_id.contains("user=alice") && info.key_id.contains("mfa=webauthn"),
        "{}",
        info.text
    );
    assert_eq!(
        info.extension_value("mfa-method@rampart").as_deref(),
        Some("webauthn"),
        "{}",
        info.text
    );
    assert_eq!(
        info.extension_value("mfa-uv@rampart").as_deref(),
        Some("yes"),
        "{}",
        info.text
    );
    assert_eq!(
        info.extension_value("mfa-aaguid@rampart").as_deref(),
        Some(SOFT_TOKEN_AAGUID),
        "{}",
        info.text
    );
    let sshd = Sshd::start(&w.ca.user_ca_pub());
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);
    let mark = sshd.log_len();
    ssh_login(&sshd, TEST_ACCOUNT, &alice.identity(), Some(&alice.cert()))
        .assert_success("sshd accepts the certificate from a FIDO2 login");
    let log = sshd.log_since(mark);
    assert!(
        log.contains(&format!("serial {}", info.serial)),
        "sshd must name the certificate's serial\n{log}"
    );

    // --- a replayed assertion (the API driven directly) --------------------------
    let api = w.ca.api();
    let certs = w.certs_issued_to("alice");
    let started = start_direct_login(&api, "alice");
    let cred = alice_key
        .sign(&origin_of(&started), &options_of(&started), |_| {})
        .unwrap();
    match finish(&api, &started, &cred) {
        Ok(CeremonyOutcome::LoggedIn { login }) => assert_eq!(login.user, "alice"),
        other => panic!("an honest answer must log in: {other:?}"),
    }
    let replays = w.failures_with("alice", "webauthn_replayed");
    assert_eq!(
        api_code(finish(&api, &started, &cred)),
        "webauthn_replayed",
        "the same answer twice"
    );
    w.assert_refusal_audited("alice", "webauthn_replayed", replays);
    // The same assertion against a new request: its challenge is not this one's.
    let started2 = start_direct_login(&api, "alice");
    let mismatches = w.failures_with("alice", "webauthn_challenge_mismatch");
    assert_eq!(
        api_code(finish(&api, &started2, &cred)),
        "webauthn_challenge_mismatch",
        "an old assertion for a new challenge"
    );
    w.assert_refusal_audited("alice", "webauthn_challenge_mismatch", mismatches);
    assert_eq!(
        w.certs_issued_to("alice"),
        certs,
        "no certificate came of the replays"
    );

    // --- another user's credential -----------------------------------------------
    let (_bob, bob_key, _) = w.enrol_fido2("bob");
    let bob_cred_id = w.keys_of("bob")[0].credential_id.clone();
    let started = start_direct_login(&api, "alice");
    let bobs = bob_key
        .sign(&origin_of(&started), &options_of(&started), |o| {
            o["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": bob_cred_id}]);
        })
        .unwrap();
    let foreign = w.failures_with("alice", "webauthn_foreign_credential");
    assert_eq!(
        api_code(finish(&api, &started, &bobs)),
        "webauthn_foreign_credential"
    );
    w.assert_refusal_audited("alice", "webauthn_foreign_credential", foreign);

    // --- user verification missing where required ---------------------------------
    let started = start_direct_login(&api, "alice");
    let no_uv = alice_key
        .sign(&origin_of(&started), &options_of(&started), |o| {
            // The token then answers with user presence only (flags UP, no UV).
            o["publicKey"]["userVerification"] = json!("discouraged");
        })
        .unwrap();
    let uv = w.failures_with("alice", "webauthn_uv_missing");
    assert_eq!(
        api_code(finish(&api, &started, &no_uv)),
        "webauthn_uv_missing"
    );
    w.assert_refusal_audited("alice", "webauthn_uv_missing", uv);
    assert_eq!(w.certs_issued_to("alice"), certs);

    // --- a wrong origin, through the CLI --------------------------------------------
    let elsewhere = fresh_cli(&w.ca, "alice", "origin");
    let wrong = w.failures_with("alice", "webauthn_wrong_origin");
    let out = alice_key.run_with_origin(
        &elsewhere,
        &as_strs(&login_args(&w.ca, "alice")),
        "https://localhost:1",
    );
    out.assert_failure("a wrong origin");
    assert_eq!(out.status.code(), Some(5), "the CA refused: exit 5\n{out}");
    assert!(out.stderr.contains("webauthn_wrong_origin"), "{out}");
    assert!(out.stderr.contains("origin"), "{out}");
    w.assert_refusal_audited("alice", "webauthn_wrong_origin", wrong);
    assert_no_cert(&elsewhere, &out);
    assert_eq!(w.certs_issued_to("alice"), certs);

    // Alice's key still works after all that (nothing was disabled).
    let again = fresh_cli(&w.ca, "alice", "again");
    alice_key
        .run(&again, &as_strs(&login_args(&w.ca, "alice")))
        .assert_success("alice's key after the refusals");

    // --- a signature counter going backwards: a cloned key -----------------------
    let (carol, carol_key, _) = w.enrol_fido2("carol");
    let snapshot = w.tokens.join("carol.before-login");
    carol_key.save_to(&snapshot);
    carol_key
        .run(&carol, &["login", "--mfa", "fido2"])
        .assert_success("carol's first login");
    carol_key.restore_from(&snapshot);
    let clone_home = fresh_cli(&w.ca, "carol", "clone");
    let certs = w.certs_issued_to("carol");
    let out = carol_key.run(&clone_home, &as_strs(&login_args(&w.ca, "carol")));
    out.assert_failure("an old counter");
    assert_eq!(out.status.code(), Some(5), "{out}");
    assert!(out.stderr.contains("webauthn_sign_count"), "{out}");
    assert!(
        out.stderr.contains("cloned"),
        "the CLI says what it means\n{out}"
    );
    assert_no_cert(&clone_home, &out);
    let cloned = w.events("webauthn_key_cloned", "carol");
    assert_eq!(cloned.len(), 1, "{cloned:#?}");
    assert!(
        row_text(&cloned[0]).contains("sign_count_regressed"),
        "{cloned:#?}"
    );
    let carols = w.keys_of("carol");
    assert_eq!(
        carols[0].disabled_reason.as_deref(),
        Some("sign_count_regressed"),
        "{carols:#?}"
    );
    // Later logins with that key are refused, whatever its counter says now:
    // carol has no usable key left, so the CA does not even start one.
    let later = fresh_cli(&w.ca, "carol", "later");
    let out = carol_key.run(&later, &as_strs(&login_args(&w.ca, "carol")));
    out.assert_failure("a disabled key");
    assert_eq!(out.status.code(), Some(5), "{out}");
    assert!(out.stderr.contains("webauthn_no_keys"), "{out}");
    assert!(out.stderr.contains("disabled"), "{out}");
    assert_no_cert(&later, &out);
    assert_eq!(w.certs_issued_to("carol"), certs);
    // The admin table shows why.
    let table = w.admin.cli.admin(&["user", "keys", "carol"]);
    table.assert_success("rampart admin user keys carol");
    assert!(table.stdout.contains("sign_count_regressed"), "{table}");

    // --- admin: list, remove (audited), then the key is gone ---------------------
    let table = w.admin.cli.admin(&["user", "keys", "alice"]);
    table.assert_success("rampart admin user keys alice");
    for col in [
        "ID",
        "NAME",
        "AAGUID",
        "CREATED",
        "LAST USED",
        "SIGN COUNT",
        "DISABLED",
    ] {
        assert!(table.stdout.contains(col), "column {col}\n{table}");
    }
    let key_id = key_id_in_table(&table.stdout, "soft-alice");
    assert_eq!(key_id, w.keys_of("alice")[0].id);
    assert!(table.stdout.contains(SOFT_TOKEN_AAGUID), "{table}");
    w.admin
        .cli
        .admin(&["user", "keys", "alice", "--remove", &key_id])
        .assert_success("rampart admin user keys alice --remove");
    let removed = w.events("webauthn_key_removed", "alice");
    assert_eq!(removed.len(), 1, "{removed:#?}");
    assert!(row_text(&removed[0]).contains(&key_id), "{removed:#?}");
    assert!(w.keys_of("alice").is_empty());
    let table = w.admin.cli.admin(&["user", "keys", "alice"]);
    assert!(table.stdout.contains("no security keys"), "{table}");
    let gone = fresh_cli(&w.ca, "alice", "gone");
    let out = alice_key.run(&gone, &as_strs(&login_args(&w.ca, "alice")));
    out.assert_failure("a removed key");
    assert_eq!(out.status.code(), Some(5), "{out}");
    assert_no_cert(&gone, &out);

    // Everything above is in a chain that still verifies.
    audit_verify(&w.ca.dir().join("audit.db")).assert_success("rampart audit verify");
}

/// The ID in the row of the key named `name` (first column).
fn key_id_in_table(table: &str, name: &str) -> String {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no row for {name}\n{table}"))
        .to_owned()
}

/// `keys add --fido2` for a logged-in user, `keys list`, `keys remove`.
#[test]
fn a_logged_in_user_adds_lists_and_removes_their_own_keys() {
    let w = World::new();
    let (dave, dave_key, _) = w.enrol_fido2("dave");
    dave_key
        .run(&dave, &["login", "--mfa", "fido2"])
        .assert_success("dave logs in");
    // A second key, in a second token file, added with the session.
    let spare = SoftKey::new(&w.tokens, "dave-spare");
    let out = spare.run(&dave, &["keys", "add", "spare", "--fido2"]);
    out.assert_success("rampart keys add spare --fido2");
    assert!(spare.path.is_file());
    let list = dave_key.run(&dave, &["keys", "list"]);
    list.assert_success("rampart keys list");
    assert!(
        list.stdout.contains("soft-dave") && list.stdout.contains("spare"),
        "{list}"
    );
    let enrolled = w.events("webauthn_key_enrolled", "dave");
    assert_eq!(enrolled.len(), 2, "{enrolled:#?}");

    // The spare key logs in on its own.
    let home = fresh_cli(&w.ca, "dave", "spare");
    spare
        .run(&home, &as_strs(&login_args(&w.ca, "dave")))
        .assert_success("login with the spare key");
    assert!(home.cert().is_file());

    // Remove the first key; it no longer logs in, the spare still does.
    let id = key_id_in_table(&list.stdout, "soft-dave");
    dave_key
        .run(&dave, &["keys", "remove", &id])
        .assert_success("rampart keys remove");
    assert_eq!(w.events("webauthn_key_removed", "dave").len(), 1);
    let home = fresh_cli(&w.ca, "dave", "removed");
    let out = dave_key.run(&home, &as_strs(&login_args(&w.ca, "dave")));
    out.assert_failure("the removed key");
    assert_no_cert(&home, &out);
    let home = fresh_cli(&w.ca, "dave", "spare2");
    spare
        .run(&home, &as_strs(&login_args(&w.ca, "dave")))
        .assert_success("the spare key still logs in");
}

/// The browser flow seen from the terminal, without a browser: the CLI prints the
/// page and the short code, then waits. Ctrl-C while it waits ends it at once with
/// nothing saved; a request nobody answers ends as `webauthn_request_expired`
/// (exit 5) with a line that says to start again.
#[test]
fn waiting_for_a_browser_ends_cleanly_on_ctrl_c_and_on_expiry() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut ca = Ca::init_e2e("[webauthn]\nchallenge_ttl = \"8s\"\n");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let w = World {
        tokens: ca.root().join("soft-tokens"),
        ca,
        admin,
    };
    std::fs::create_dir_all(&w.tokens).unwrap();
    let (erin, erin_key, _) = w.enrol_fido2("erin");

    /// Spawn `rampart login --mfa webauthn --no-browser` in a fresh home and read
    /// stderr until the page URL and the short code were printed.
    fn spawn_waiting(
        w: &World,
        key: &SoftKey,
        tag: &str,
    ) -> (Cli, std::process::Child, std::sync::mpsc::Receiver<String>) {
        let cli = fresh_cli(&w.ca, "erin", tag);
        let mut args = login_args(&w.ca, "erin");
        let mfa = args.iter().position(|a| a == "fido2").unwrap();
        args[mfa] = "webauthn".to_owned();
        args.push("--no-browser".to_owned());
        let mut c = key.command(&cli, &as_strs(&args));
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut url, mut code) = (false, false);
        while !(url && code) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no page URL and short code from the CLI: {e}"));
            url |= line.contains("https://localhost:") && line.contains("/webauthn/r/");
            code |= line.contains("Type this code on the page");
        }
        (cli, child, rx)
    }

    // Ctrl-C while waiting: the process ends promptly, no session, no certificate.
    let (cli, mut child, _rx) = spawn_waiting(&w, &erin_key, "ctrl-c");
    // kill(1), as a terminal's Ctrl-C would send it (this crate forbids `unsafe`).
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "rampart did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    assert!(
        !cli.home().join("session.json").exists(),
        "no session after Ctrl-C"
    );
    assert!(!cli.cert().exists(), "no certificate after Ctrl-C");

    // Nobody answers: the CA ends the request and the CLI says so.
    let (cli, mut child, rx) = spawn_waiting(&w, &erin_key, "expiry");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "rampart kept waiting after the request expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let rest: Vec<String> = rx.try_iter().collect();
    let rest = rest.join("\n");
    assert_eq!(status.code(), Some(5), "the CA refused: exit 5\n{rest}");
    assert!(rest.contains("webauthn_request_expired"), "{rest}");
    assert!(rest.contains("run the command again"), "{rest}");
    assert!(!cli.home().join("session.json").exists());
    assert!(!cli.cert().exists());

    // The same key still logs in from the terminal afterwards.
    erin_key
        .run(&erin, &["login", "--mfa", "fido2"])
        .assert_success("erin's key after the abandoned requests");
}

/// No factor escalation at enrolment, over HTTPS with the real CLI: a TOTP login
/// and a recovery-code login may not add a security key (`keys add` is refused
/// before any challenge, the refusal audited with its own reason and telling the
/// user to ask for an invite); an admin's invite still enrols one, and a
/// recovery-code login may then replace that key when it is lost.
#[test]
fn a_totp_or_recovery_login_cannot_add_a_key_but_an_invite_can() {
    let w = World::new();
    let mut erin = rampart_e2e::cli::onboard(&w.ca, &w.admin, "erin", &[ENGINEERS]);
    erin.login();
    let spare = SoftKey::new(&w.tokens, "erin-spare");
    let refused_with = |reason: &str| {
        w.events("webauthn_enrolment_refused", "erin")
            .iter()
            .filter(|e| row_text(e).contains(reason))
            .count()
    };

    let out = spare.run(&erin.cli, &["keys", "add", "spare", "--fido2"]);
    out.assert_failure("keys add with a TOTP session");
    assert!(
        out.stderr.contains("enrolment_factor_too_weak")
            && out.stderr.contains("ask an admin for an invite"),
        "the refusal says why and what to do\n{out}"
    );
    assert_eq!(refused_with("enrolment_factor_too_weak"), 1);

    erin.cli
        .login_with(&erin.recovery_codes[0], &["--recovery"])
        .assert_success("a recovery-code login");
    let out = spare.run(&erin.cli, &["keys", "add", "spare", "--fido2"]);
    out.assert_failure("keys add with a recovery session");
    assert!(
        out.stderr.contains("enrolment_recovery_session")
            && out.stderr.contains("ask an admin for an invite"),
        "{out}"
    );
    assert_eq!(refused_with("enrolment_recovery_session"), 1);
    assert!(w.keys_of("erin").is_empty(), "no key enrolled");
    assert!(w.events("webauthn_key_enrolled", "erin").is_empty());

    // The way out the refusal names: an admin's invite.
    let invite = w.admin.cli.invite("erin", None);
    let out = spare.run(
        &erin.cli,
        &[
            "enroll",
            "--ca",
            w.ca.url(),
            "--ca-fingerprint",
            w.ca.fingerprint(),
            "--invite",
            &invite,
            "--fido2",
            "--key-name",
            "spare",
        ],
    );
    out.assert_success("rampart enroll --fido2 from an admin's invite");
    let keys = w.keys_of("erin");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].attested, "no roots, no allow-list: {:?}", keys[0]);
    let lost_id = keys[0].id.clone();

    // erin loses that key. A recovery code (from the invite's fresh set) may
    // re-enrol it, named with --replaces, where no key can be phishing-resistant.
    let codes = parse_recovery_codes(&out.stdout);
    assert!(
        !codes.is_empty(),
        "the invite enrolment printed codes\n{out}"
    );
    erin.cli
        .login_with(&codes[0], &["--recovery"])
        .assert_success("a recovery-code login with the new codes");
    let new_key = SoftKey::new(&w.tokens, "erin-new");
    let out = new_key.run(
        &erin.cli,
        &["keys", "add", "new", "--fido2", "--replaces", &lost_id],
    );
    out.assert_success("keys add --replaces with a recovery session");
    assert!(out.stdout.contains(&lost_id), "{out}");
    let keys = w.keys_of("erin");
    assert_eq!(
        keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["new"],
        "the lost key is gone in the same step"
    );
    let removed = w.events("webauthn_key_removed", "erin");
    assert_eq!(removed.len(), 1, "{removed:#?}");
    assert!(row_text(&removed[0]).contains(&lost_id), "{removed:#?}");
    let home = fresh_cli(&w.ca, "erin", "new");
    new_key
        .run(&home, &as_strs(&login_args(&w.ca, "erin")))
        .assert_success("the replacement key logs in");
    audit_verify(&w.ca.dir().join("audit.db")).assert_success("rampart audit verify");
}

/// `webauthn_link = false` with the real daemon: the CLI's own CTAP2 login gets
/// the role, and its certificate says `mfa-webauthn-link@rampart no`; the same
/// key approved on the CA's page (the link path, driven over HTTP as the page's
/// script does) leaves the role out, and that certificate says `yes`.
#[test]
fn a_role_without_link_approval_is_granted_only_to_the_clis_own_key_login() {
    let w = World::with_policy_tail(
        "\"lee\" = [\"desk\"]\n\n[roles.desk]\nprincipals = [\"{user}-desk\"]\n\
         min_factor = \"unattested-key\"\nwebauthn_link = false\n",
    );
    let (lee, lee_key, _) = w.enrol_fido2("lee");

    let out = lee_key.run(&lee, &["login", "--mfa", "fido2"]);
    out.assert_success("rampart login --mfa fido2");
    let info = inspect_cert(&lee.cert());
    let mut principals = info.principals.clone();
    principals.sort();
    assert_eq!(principals, ["lee", "lee-desk"], "{}", info.text);
    assert_eq!(
        info.extension_value("mfa-webauthn-link@rampart").as_deref(),
        Some("no"),
        "{}",
        info.text
    );

    // The link path: start without `direct`, type the terminal's code on the
    // page, answer with the key there, collect the session with WAIT.
    let api = w.ca.api();
    let started: rampart_api::webauthn::CeremonyStarted = api
        .post_json(
            rampart_api::webauthn::LOGIN_START,
            &json!({ "user": "lee", "direct": false }),
        )
        .unwrap();
    assert!(started.public_key.is_none());
    let page = format!(
        "{}/r/{}",
        rampart_api::webauthn::PAGE_PREFIX,
        started.request_id
    );
    let options: Value = api
        .post_json(
            &format!("{page}/options"),
            &json!({ "code": started.short_code }),
        )
        .unwrap();
    let credential = lee_key
        .sign(&origin_of(&started), &options, |_| {})
        .unwrap();
    let verdict: Value = api
        .post_json(
            &format!("{page}/answer"),
            &json!({ "credential": credential }),
        )
        .unwrap();
    assert_eq!(verdict["result"], "logged_in");
    let outcome: CeremonyOutcome = api
        .post_json(
            rampart_api::webauthn::WAIT,
            &json!({ "request_id": started.request_id, "poll_token": started.poll_token }),
        )
        .unwrap();
    let CeremonyOutcome::LoggedIn { login } = outcome else {
        panic!("{outcome:?}")
    };
    let pair = rampart_e2e::keys::KeyPair::ed25519(w.ca.root(), "lee-link");
    let cert: rampart_api::CertResponse = api
        .clone()
        .with_token(login.session_token)
        .post_json(
            rampart_api::paths::CERTS,
            &json!({ "public_key": pair.public_line() }),
        )
        .unwrap();
    assert_eq!(cert.principals, ["lee"], "desk must be left out");
    let cert_file = w.ca.root().join("lee-link-cert.pub");
    std::fs::write(&cert_file, &cert.certificate).unwrap();
    let info = inspect_cert(&cert_file);
    assert_eq!(
        info.extension_value("mfa-webauthn-link@rampart").as_deref(),
        Some("yes"),
        "{}",
        info.text
    );
    let via: Vec<String> = w
        .events("mfa_succeeded", "lee")
        .iter()
        .map(row_text)
        .collect();
    assert!(
        via.iter().any(|r| r.contains("ctap2")) && via.iter().any(|r| r.contains("browser")),
        "{via:#?}"
    );
}
