//! Security keys in a real browser: headless Chromium (Debian `chromium`, driven over
//! the DevTools protocol) with a virtual CTAP2 authenticator, on the pages the real
//! `rampart-ca` serves over HTTPS, with the real `rampart` CLI waiting in the
//! terminal and a real sshd judging the certificate.
//!
//! - A key is enrolled from an invite (`rampart enroll --webauthn`), the page showing
//!   the code the terminal printed; `rampart login --mfa webauthn`, approved in the
//!   same browser, yields a certificate that sshd accepts and whose
//!   `mfa-uv@rampart`/`mfa-aaguid@rampart` extensions name the key the CA lists.
//! - Refused, audited, nothing issued: Deny clicked; an answer that reaches the CA
//!   after its challenge expired (held in the browser with the DevTools `Fetch`
//!   domain), and an enrolment nobody answered; a browser's signed answer sent
//!   again; another user's key (the browser finds none of the user's keys; a
//!   doctored page makes it sign with the other's, and the CA refuses); a key
//!   without user verification for a role that needs a phishing-resistant factor,
//!   and a key with it whose model the CA does not vouch for (Chromium's virtual
//!   authenticator, until the operator allow-lists its AAGUID);
//!   an AAGUID outside the attestation policy at enrolment; the page opened at
//!   another origin (the browser itself refuses an IP origin for RP ID
//!   `localhost`; through a relay on another port, the CA refuses the origin the
//!   browser signed); a key whose signature counter goes backwards (a clone).
//! - The pages say what happened: the short code the terminal shows, an expired
//!   link, a finished request, a browser without WebAuthn.
//!
//! Chromium trusts exactly the CA's TLS key (`--ignore-certificate-errors-spki-list`),
//! and the pages are browsed at `https://localhost:PORT`, the CA's default origin
//! (RP ID `localhost`).

// Helpers outside #[test] functions are test code too: a panic is a failed test.
// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rampart_api::webauthn::{
    CeremonyStarted, LoginStartRequest, WaitRequest, WebauthnKey, EXT_MFA_AAGUID, EXT_MFA_ATTESTED,
    EXT_MFA_UV, KEYS, LOGIN_START, WAIT,
};
use rampart_api::{paths, CreateUserRequest, InviteRequest, InviteResponse, User};
use rampart_e2e::chromium::{AuthenticatorOptions, Chromium, ChromiumOptions};
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::process::{describe, drain, wait_deadline};
use rampart_e2e::{api_admin, ssh_login, AuditDb, Ca, Cli, CmdOutput, Session, Sshd, TEST_ACCOUNT};
use serde_json::{json, Map, Value};

/// The AAGUID Chromium's virtual CTAP2 authenticator reports with `direct`
/// attestation (seen with Chromium 156).
const CHROMIUM_AAGUID: &str = "01020304-0506-0708-0102-030405060708";

/// Generous: a loaded 2-core machine runs the CA, the CLI and Chromium at once.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// `dev`: principal = the user, any MFA from OTP up. `prod`: needs a
/// phishing-resistant factor (a security key that verified the user).
fn policy(admin: &str) -> String {
    format!(
        r#"version = 1

[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{{user}}"]
min_factor = "otp"
extensions = ["permit-pty"]

[roles.prod]
principals = ["{{user}}"]
min_factor = "phishing-resistant"
extensions = ["permit-pty"]

[groups]
engineers = ["dev"]
sre = ["prod"]

[users]
"{admin}" = ["dev"]
"#
    )
}

/// A started CA with the test policy and `config` merged into its config.
fn ca_with(config: &str) -> Ca {
    let mut ca = Ca::init_with(None, config);
    ca.write_policy(&policy(&ca.info().admin_user));
    ca.start();
    ca
}

/// The CA's port (from its `https://127.0.0.1:PORT` URL).
fn port_of(ca: &Ca) -> u16 {
    ca.url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {}", ca.url()))
}

/// As admin: create `name` in `groups` and invite them; returns the invite code.
fn invite(admin: &Session, name: &str, groups: &[&str]) -> String {
    let _: User = admin
        .client
        .post_json(
            paths::ADMIN_USERS,
            &CreateUserRequest {
                name: name.to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                admin: false,
            },
        )
        .unwrap_or_else(|e| panic!("create user {name}: {e}"));
    let inv: InviteResponse = admin
        .client
        .post_json(
            paths::ADMIN_INVITES,
            &InviteRequest {
                user: name.to_owned(),
                ttl_seconds: None,
            },
        )
        .unwrap_or_else(|e| panic!("invite {name}: {e}"));
    inv.code.expose().to_owned()
}

/// The keys the CA lists for `user` (admin API).
fn keys_of(admin: &Session, user: &str) -> Vec<WebauthnKey> {
    admin
        .client
        .get_json(&format!("{KEYS}?user={user}"))
        .unwrap_or_else(|e| panic!("list keys of {user}: {e}"))
}

/// Chromium trusting this CA's TLS key, with one virtual authenticator.
fn browser(ca: &Ca, opts: AuthenticatorOptions) -> Chromium {
    let mut c = Chromium::start_with(&ChromiumOptions::trusting_ca(ca));
    c.enable_virtual_authenticator(opts);
    c
}

/// Audit events of `kind` that name `user`.
fn audit_for(ca: &Ca, kind: &str, user: &str) -> Vec<Map<String, Value>> {
    AuditDb::new(ca.audit_db())
        .events_of_kind(kind)
        .into_iter()
        .filter(|e| e.get("user").and_then(Value::as_str) == Some(user))
        .collect()
}

/// The text of an audit row (all columns), for searching a reason code in it.
fn row_text(row: &Map<String, Value>) -> String {
    Value::Object(row.clone()).to_string()
}

/// Assert that nothing was issued to `user`: no session, no certificate.
fn nothing_issued(ca: &Ca, user: &str, sessions_before: usize) {
    assert_eq!(
        audit_for(ca, "session_created", user).len(),
        sessions_before,
        "no new session for {user}"
    );
    assert!(
        audit_for(ca, "cert_issued", user).is_empty(),
        "no certificate for {user}"
    );
}

/// A `rampart` command waiting for a browser: it printed the page URL and the short
/// code and is long-polling the CA. Killed on drop if a test ends before it does.
struct Waiting {
    child: Option<Child>,
    desc: String,
    url: String,
    code: String,
    stdout: thread::JoinHandle<String>,
    stderr: thread::JoinHandle<String>,
}

impl Waiting {
    /// Spawn `rampart ARGS` (with `--no-browser` among them) and wait for the page
    /// URL and the "Type this code on the page …: CODE" line on its stderr.
    fn spawn(cli: &Cli, args: &[&str]) -> Waiting {
        let mut c = cli.command();
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let desc = describe(&c);
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn `{desc}`: {e}"));
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let err = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        let deadline = Instant::now() + PAGE_TIMEOUT;
        let (mut url, mut code) = (None, None);
        while url.is_none() || code.is_none() {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let t = line.trim();
                    if t.starts_with("https://") && t.contains("/webauthn/r/") {
                        url = Some(t.to_owned());
                    } else if let Some(rest) =
                        t.strip_prefix("Type this code on the page before you touch your key: ")
                    {
                        code = rest.split_whitespace().next().map(str::to_owned);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "`{desc}` printed no page URL and short code\n--- stdout ---\n{}\n--- stderr ---\n{}",
                        stdout.join().unwrap_or_default(),
                        stderr.join().unwrap_or_default()
                    );
                }
            }
        }
        Waiting {
            child: Some(child),
            desc,
            url: url.unwrap(),
            code: code.unwrap(),
            stdout,
            stderr,
        }
    }

    /// Wait for the command to end (it long-polls; the CA answers at once when the
    /// request is settled).
    fn finish(mut self) -> CmdOutput {
        let mut child = self.child.take().expect("not finished yet");
        let status = wait_deadline(&mut child, Duration::from_secs(120), &self.desc);
        let (stdout, stderr) = (
            std::mem::replace(&mut self.stdout, thread::spawn(String::new)),
            std::mem::replace(&mut self.stderr, thread::spawn(String::new)),
        );
        CmdOutput {
            cmd: self.desc.clone(),
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a request's page said after a button was pressed.
#[derive(Debug)]
struct PageResult {
    /// `ok`, `denied` or `error` (the page's `data-result`).
    result: String,
    /// The CA's refusal code, if the page got one (`data-code`).
    code: String,
    /// The status line.
    status: String,
}

/// Open a request's page, check it is open and shows `code` (the code the
/// terminal printed), and wait until it is ready.
fn open_page(chromium: &mut Chromium, url: &str, code: &str) {
    chromium.navigate(url);
    let page = chromium.wait_for("document.body && document.body.dataset.page", PAGE_TIMEOUT);
    assert_eq!(
        page,
        "open",
        "the request page is open: {}",
        chromium.text()
    );
    // The page never shows the code: the user types what the terminal shows.
    let page_text = chromium.text();
    assert!(
        !page_text.contains(code),
        "the page must not show the code: {page_text}"
    );
    type_code(chromium, code);
}

/// Type `code` into the page's code field, as the user copies it from the
/// terminal.
fn type_code(chromium: &mut Chromium, code: &str) {
    chromium.eval(&format!(
        "document.getElementById('code').value = {}",
        serde_json::Value::String(code.to_owned())
    ));
}

/// Press `button` (`#approve` / `#deny`) and wait for the page's verdict.
fn press(chromium: &mut Chromium, button: &str) -> PageResult {
    chromium.click(button);
    chromium.wait_for(
        "['ok', 'denied', 'error', 'unsupported'].includes(document.body.dataset.result)",
        PAGE_TIMEOUT,
    );
    let v = chromium.eval(
        "({ result: document.body.dataset.result, code: document.body.dataset.code || '', \
           status: document.getElementById('status').textContent })",
    );
    PageResult {
        result: v["result"].as_str().unwrap_or_default().to_owned(),
        code: v["code"].as_str().unwrap_or_default().to_owned(),
        status: v["status"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Start `rampart enroll --invite CODE --webauthn --no-browser` (naming the key
/// `key_name` if given) and wait for the page it prints.
fn start_enrolment(ca: &Ca, cli: &Cli, invite: &str, key_name: Option<&str>) -> Waiting {
    let mut args = vec![
        "enroll",
        "--ca",
        ca.url(),
        "--ca-fingerprint",
        ca.fingerprint(),
        "--invite",
        invite,
        "--webauthn",
        "--no-browser",
    ];
    if let Some(name) = key_name {
        args.extend(["--key-name", name]);
    }
    Waiting::spawn(cli, &args)
}

/// `rampart enroll --invite CODE --webauthn`, approved in `chromium`. Returns the
/// CLI's output (asserted successful).
fn enrol(ca: &Ca, chromium: &mut Chromium, cli: &Cli, invite: &str) -> CmdOutput {
    let w = start_enrolment(ca, cli, invite, Some("chromium"));
    open_page(chromium, &w.url, &w.code);
    let r = press(chromium, "#approve");
    assert_eq!(r.result, "ok", "enrolment approved in the browser: {r:?}");
    let out = w.finish();
    out.assert_success("rampart enroll --webauthn");
    out
}

/// A new user `name` in `engineers` who enrolled a key from an invite in a
/// fresh browser: that browser (holding the key) and the user's CLI.
fn enrolled_user(ca: &Ca, admin: &Session, name: &str) -> (Chromium, Cli) {
    let code = invite(admin, name, &["engineers"]);
    let mut chromium = browser(ca, AuthenticatorOptions::default());
    let cli = Cli::new(ca, name);
    enrol(ca, &mut chromium, &cli, &code);
    (chromium, cli)
}

/// Start `rampart login --mfa webauthn` for the CLI's saved user and CA.
fn start_login(cli: &Cli) -> Waiting {
    Waiting::spawn(cli, &["login", "--mfa", "webauthn", "--no-browser"])
}

/// Start a key login for `cli` and open its page in `chromium`, ready for a press.
fn open_login(chromium: &mut Chromium, cli: &Cli) -> Waiting {
    let w = start_login(cli);
    open_page(chromium, &w.url, &w.code);
    w
}

#[test]
fn a_key_enrolled_from_an_invite_approves_a_login_whose_certificate_sshd_accepts() {
    let ca = ca_with("");
    let (_admin_user, admin) = api_admin(&ca);
    let code = invite(&admin, "alice", &["engineers"]);
    let mut chromium = browser(&ca, AuthenticatorOptions::default());
    let cli = Cli::new(&ca, "alice");

    // Enrolment from the invite: the page is the CA's, at https://localhost.
    let w = start_enrolment(&ca, &cli, &code, Some("chromium"));
    let origin = format!("https://localhost:{}/webauthn/r/", port_of(&ca));
    assert!(w.url.starts_with(&origin), "{} is on {origin}", w.url);
    open_page(&mut chromium, &w.url, &w.code);
    assert!(chromium.text().contains("alice"), "the page names the user");
    assert_eq!(chromium.eval("window.isSecureContext"), json!(true));
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "ok", "{r:?}");
    let out = w.finish();
    out.assert_success("rampart enroll --webauthn");
    assert!(out.stdout.contains("Enrolled alice"), "{out}");
    assert!(
        out.stdout.to_lowercase().contains("recovery codes"),
        "an invite enrolment hands out recovery codes\n{out}"
    );

    // The authenticator holds the credential; the CA lists the key with its model.
    let creds = chromium.credentials();
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["rpId"], "localhost");
    let keys = keys_of(&admin, "alice");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    assert_eq!(key.name, "chromium");
    assert_eq!(key.aaguid, CHROMIUM_AAGUID, "{key:?}");
    assert!(key.user_verified, "{key:?}");
    assert!(key.disabled_reason.is_none(), "{key:?}");
    let enrolled = audit_for(&ca, "webauthn_key_enrolled", "alice");
    assert_eq!(enrolled.len(), 1, "the enrolment is audited");
    assert!(row_text(&enrolled[0]).contains(CHROMIUM_AAGUID));

    // Login approved in the same browser.
    let w = start_login(&cli);
    assert_ne!(w.code, "", "the terminal shows a short code");
    open_page(&mut chromium, &w.url, &w.code);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "ok", "{r:?}");
    let out = w.finish();
    out.assert_success("rampart login --mfa webauthn");

    // The certificate carries the key's evidence…
    let info = inspect_cert(&cli.cert());
    assert_eq!(info.principals, ["alice"], "{}", info.text);
    assert_eq!(
        info.extension_value(EXT_MFA_UV).as_deref(),
        Some("yes"),
        "{}",
        info.text
    );
    assert_eq!(
        info.extension_value(EXT_MFA_AAGUID).as_deref(),
        Some(key.aaguid.as_str()),
        "the AAGUID the CA lists for the key\n{}",
        info.text
    );
    // …and a real sshd trusting the user CA accepts it.
    let sshd = Sshd::start(&ca.user_ca_pub());
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);
    ssh_login(&sshd, TEST_ACCOUNT, &cli.identity(), Some(&cli.cert()))
        .assert_success("ssh with the certificate a browser-approved login gave");

    let issued = audit_for(&ca, "cert_issued", "alice");
    assert_eq!(issued.len(), 1);
    assert!(row_text(&issued[0]).contains("webauthn"), "{:?}", issued[0]);
    let key_after = &keys_of(&admin, "alice")[0];
    assert!(key_after.last_used_at.is_some(), "{key_after:?}");
    assert!(key_after.sign_count > key.sign_count, "the counter moved");
    ca.verify_audit().assert_success("rampart audit verify");
}

#[test]
fn deny_in_the_browser_refuses_the_waiting_login() {
    let ca = ca_with("");
    let (_a, admin) = api_admin(&ca);
    let (mut chromium, cli) = enrolled_user(&ca, &admin, "bob");

    let w = start_login(&cli);
    let url = w.url.clone();
    open_page(&mut chromium, &w.url, &w.code);
    let r = press(&mut chromium, "#deny");
    assert_eq!(r.result, "denied", "{r:?}");
    assert!(r.status.contains("Nothing was approved"), "{r:?}");
    let out = w.finish();
    out.assert_failure("a denied login");
    assert!(out.stderr.contains("denied"), "{out}");
    assert!(!cli.cert().exists(), "no certificate written");

    let failed = audit_for(&ca, "mfa_failed", "bob");
    assert!(
        failed
            .iter()
            .any(|e| row_text(e).contains("webauthn_denied")),
        "the denial is audited: {failed:?}"
    );
    nothing_issued(&ca, "bob", 0);
    // The SIEM export says the same.
    let db = ca.audit_db();
    let export = Cli::new(&ca, "auditor").run(
        &[
            "audit",
            "export",
            "--db",
            db.to_str().expect("UTF-8 path"),
            "--format",
            "ocsf",
            "--kind",
            "mfa_failed",
            "--user",
            "bob",
        ],
        None,
    );
    export.assert_success("rampart audit export");
    assert!(export.stdout.contains("webauthn_denied"), "{export}");

    // The link cannot be used again.
    chromium.navigate(&url);
    let page = chromium.wait_for("document.body && document.body.dataset.page", PAGE_TIMEOUT);
    assert_eq!(page, "finished", "{}", chromium.text());
    ca.verify_audit().assert_success("rampart audit verify");
}

#[test]
fn an_answer_that_arrives_after_the_challenge_expired_is_refused() {
    let mut ca = ca_with("");
    let (_a, admin) = api_admin(&ca);
    let (mut chromium, _cli) = enrolled_user(&ca, &admin, "carol");

    // Short-lived challenges from now on (the key stays enrolled across the restart).
    ca.stop();
    ca.merge_config("[webauthn]\nchallenge_ttl = \"3s\"\n");
    ca.start();

    // The login is started through the API, and nobody polls until the end, so the
    // browser's answer is the first thing the CA hears after the expiry.
    let api = ca.api();
    let started: CeremonyStarted = api
        .post_json(
            LOGIN_START,
            &LoginStartRequest {
                user: "carol".to_owned(),
                direct: false,
            },
        )
        .expect("login/start");
    open_page(&mut chromium, &started.url, &started.short_code);
    // The key signs at once, but its answer is held in the browser past the expiry.
    let mark = chromium.events().len();
    chromium.hold_requests("*/answer");
    chromium.click("#approve");
    let held = chromium.next_held_request(mark, PAGE_TIMEOUT);
    let wait_until = started.expires_at + chrono::Duration::seconds(2);
    while chrono::Utc::now() < wait_until {
        thread::sleep(Duration::from_millis(200));
    }
    chromium.release_request(held["requestId"].as_str().expect("requestId"));
    chromium.wait_for(
        "['ok', 'error'].includes(document.body.dataset.result)",
        PAGE_TIMEOUT,
    );
    let r = chromium
        .eval("({ result: document.body.dataset.result, code: document.body.dataset.code || '' })");
    assert_eq!(r["result"], "error", "{r}");
    assert_eq!(r["code"], "webauthn_request_expired", "{r}");

    // The starter learns the same; nothing was issued.
    let err = api
        .post_json::<_, Value>(
            WAIT,
            &WaitRequest {
                request_id: started.request_id.clone(),
                poll_token: started.poll_token.clone(),
            },
        )
        .expect_err("an expired request is refused");
    assert!(err.to_string().contains("expired"), "{err}");
    let failed = audit_for(&ca, "mfa_failed", "carol");
    assert!(
        failed
            .iter()
            .any(|e| row_text(e).contains("webauthn_request_expired")),
        "the late answer is audited: {failed:?}"
    );
    nothing_issued(&ca, "carol", 0);

    // Reopening the link offers nothing to approve, and says why: expired, not
    // "already answered" (which would tell carol someone else answered it).
    chromium.navigate(&started.url);
    let page = chromium.wait_for("document.body && document.body.dataset.page", PAGE_TIMEOUT);
    assert_eq!(page, "expired", "{}", chromium.text());
    assert_eq!(
        chromium.eval("document.getElementById('approve') === null"),
        json!(true)
    );
    ca.verify_audit().assert_success("rampart audit verify");
}

#[test]
fn a_key_without_user_verification_gets_no_certificate_for_a_phishing_resistant_role() {
    let ca = ca_with("");
    let (_a, admin) = api_admin(&ca);
    let code = invite(&admin, "dave", &["sre"]);
    // A security key without a PIN: presence only.
    let mut chromium = browser(
        &ca,
        AuthenticatorOptions {
            has_resident_key: false,
            has_user_verification: false,
            is_user_verified: false,
            automatic_presence_simulation: true,
        },
    );
    let cli = Cli::new(&ca, "dave");
    enrol(&ca, &mut chromium, &cli, &code);
    let key = &keys_of(&admin, "dave")[0];
    assert!(!key.user_verified, "{key:?}");

    let w = open_login(&mut chromium, &cli);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "ok", "the key itself works: {r:?}");
    let out = w.finish();
    out.assert_failure("a certificate for a phishing-resistant role without UV");
    assert!(
        out.stderr.contains("phishing-resistant"),
        "the refusal says what the role needs\n{out}"
    );
    assert!(!cli.cert().exists(), "no certificate written");
    let denied = audit_for(&ca, "cert_denied", "dave");
    assert_eq!(denied.len(), 1, "the refusal is audited");
    assert!(
        audit_for(&ca, "cert_issued", "dave").is_empty(),
        "no certificate for dave"
    );
    ca.verify_audit().assert_success("rampart audit verify");
}

/// Chromium's virtual authenticator verifies the user, but nothing vouches for
/// its model: its attestation chains to no configured root and, by default, no
/// AAGUID is allow-listed. It is an `unattested-key`, so the `prod` role (needs
/// `phishing-resistant`) refuses it. Once the operator allow-lists its AAGUID
/// (the migration path for keys enrolled before attestation counted), the same
/// key counts, its certificate says so, and sshd accepts it.
#[test]
fn an_unattested_key_does_not_unlock_a_phishing_resistant_role_until_its_model_is_allowed() {
    let mut ca = ca_with("");
    let (_a, admin) = api_admin(&ca);
    let code = invite(&admin, "nina", &["sre"]);
    let mut chromium = browser(&ca, AuthenticatorOptions::default());
    let cli = Cli::new(&ca, "nina");
    enrol(&ca, &mut chromium, &cli, &code);
    let key = &keys_of(&admin, "nina")[0];
    assert!(key.user_verified, "the key verified the user: {key:?}");
    assert!(!key.attested, "nothing vouches for its model: {key:?}");

    let w = open_login(&mut chromium, &cli);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "ok", "the key itself works: {r:?}");
    let out = w.finish();
    out.assert_failure("a phishing-resistant role with an unattested key");
    assert!(
        out.stderr.contains("phishing-resistant") && out.stderr.contains("unattested-key"),
        "the refusal names what the role needs and what the key is\n{out}"
    );
    assert!(!cli.cert().exists(), "no certificate written");
    assert_eq!(audit_for(&ca, "cert_denied", "nina").len(), 1);
    assert!(audit_for(&ca, "cert_issued", "nina").is_empty());

    // The operator vouches for this model; the same key now counts.
    ca.stop();
    ca.merge_config(&format!(
        "[webauthn]\nallowed_aaguids = [\"{CHROMIUM_AAGUID}\"]\n"
    ));
    ca.start();
    // The admin's session is in the CA's database: it outlives the restart.
    let key = &keys_of(&admin, "nina")[0];
    assert!(key.attested, "an allow-listed model is attested: {key:?}");
    let w = open_login(&mut chromium, &cli);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "ok", "{r:?}");
    w.finish()
        .assert_success("rampart login --mfa webauthn with an allow-listed key");
    let info = inspect_cert(&cli.cert());
    assert_eq!(info.principals, ["nina"], "{}", info.text);
    assert_eq!(
        info.extension_value(EXT_MFA_ATTESTED).as_deref(),
        Some("yes"),
        "{}",
        info.text
    );
    assert_eq!(
        info.extension_value(EXT_MFA_UV).as_deref(),
        Some("yes"),
        "{}",
        info.text
    );
    let sshd = Sshd::start(&ca.user_ca_pub());
    sshd.set_principals(TEST_ACCOUNT, &["nina"]);
    ssh_login(&sshd, TEST_ACCOUNT, &cli.identity(), Some(&cli.cert()))
        .assert_success("ssh with the phishing-resistant certificate");
    ca.verify_audit().assert_success("rampart audit verify");
}

#[test]
fn an_aaguid_outside_the_attestation_policy_cannot_enrol() {
    // Only one (made-up) authenticator model may enrol; Chromium's is not it.
    let ca = ca_with("[webauthn]\nallowed_aaguids = [\"cb69481e-8ff7-4039-93ec-0a2729a154a8\"]\n");
    let (_a, admin) = api_admin(&ca);
    let code = invite(&admin, "erin", &["engineers"]);
    let mut chromium = browser(&ca, AuthenticatorOptions::default());
    let cli = Cli::new(&ca, "erin");

    let w = start_enrolment(&ca, &cli, &code, None);
    open_page(&mut chromium, &w.url, &w.code);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "error", "{r:?}");
    assert_eq!(r.code, "webauthn_aaguid_not_allowed", "{r:?}");
    let out = w.finish();
    out.assert_failure("enrolment of a key outside the attestation policy");
    assert!(out.stderr.contains("webauthn_aaguid_not_allowed"), "{out}");

    assert!(keys_of(&admin, "erin").is_empty(), "no key stored");
    let refused = audit_for(&ca, "webauthn_enrolment_refused", "erin");
    assert!(
        refused
            .iter()
            .any(|e| row_text(e).contains("webauthn_aaguid_not_allowed")
                && row_text(e).contains(CHROMIUM_AAGUID)),
        "the refusal names the reason and the AAGUID: {refused:?}"
    );
    assert!(audit_for(&ca, "webauthn_key_enrolled", "erin").is_empty());
    nothing_issued(&ca, "erin", 0);
    ca.verify_audit().assert_success("rampart audit verify");
}

/// A plain TCP relay from a new loopback port to `to` (as a phishing proxy in front
/// of the CA would be: TLS still ends at the CA). Returns the relay's port; it
/// lives until the test process ends.
fn tcp_relay(to: u16) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
    let port = l.local_addr().expect("relay address").port();
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(client) = conn else { continue };
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            for (mut from, mut into) in [
                (client.try_clone(), upstream.try_clone()),
                (upstream.try_clone(), client.try_clone()),
            ]
            .into_iter()
            .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
            {
                thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    port
}

#[test]
fn a_page_opened_at_another_origin_approves_nothing() {
    let ca = ca_with("");
    let port = port_of(&ca);
    let (_a, admin) = api_admin(&ca);
    let (mut chromium, cli) = enrolled_user(&ca, &admin, "frank");

    let w = start_login(&cli);
    let real = format!("https://localhost:{port}/");
    assert!(w.url.starts_with(&real), "{}", w.url);
    let path = w.url.trim_start_matches(&real).to_owned();

    // 1. At https://127.0.0.1 the browser itself refuses RP ID `localhost`.
    open_page(
        &mut chromium,
        &format!("https://127.0.0.1:{port}/{path}"),
        &w.code,
    );
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "error", "{r:?}");
    assert!(
        r.status.contains("refused this site"),
        "the page says the browser refused this address: {r:?}"
    );
    assert!(
        audit_for(&ca, "mfa_failed", "frank").is_empty(),
        "no answer reached the CA"
    );

    // 2. Through a relay on another port — same RP ID, another origin — the browser
    //    signs, and the CA refuses the origin. (The page is still open: the
    //    browser's refusal consumed nothing.)
    let relay = tcp_relay(port);
    open_page(
        &mut chromium,
        &format!("https://localhost:{relay}/{path}"),
        &w.code,
    );
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "error", "{r:?}");
    assert_eq!(r.code, "webauthn_wrong_origin", "{r:?}");
    let out = w.finish();
    out.assert_failure("a login approved at the wrong origin");
    assert!(out.stderr.contains("origin"), "{out}");
    assert!(!cli.cert().exists(), "no certificate written");

    let failed = audit_for(&ca, "mfa_failed", "frank");
    assert!(
        failed
            .iter()
            .any(|e| row_text(e).contains("webauthn_wrong_origin")),
        "the wrong origin is audited: {failed:?}"
    );
    nothing_issued(&ca, "frank", 0);
    ca.verify_audit().assert_success("rampart audit verify");
}

#[test]
fn a_signature_counter_going_backwards_disables_the_key() {
    let ca = ca_with("");
    let (_a, admin) = api_admin(&ca);
    let (mut chromium, cli) = enrolled_user(&ca, &admin, "grace");

    // One good login moves the CA's stored counter forward.
    let w = open_login(&mut chromium, &cli);
    assert_eq!(press(&mut chromium, "#approve").result, "ok");
    w.finish().assert_success("a first login");
    let stored = keys_of(&admin, "grace")[0].sign_count;
    assert!(stored >= 1, "counter {stored}");

    // A copy of the key with a fresh counter: same credential and private key.
    let cred = chromium.credentials().remove(0);
    let auth = chromium.authenticator_id().to_owned();
    chromium.cdp(
        "WebAuthn.removeCredential",
        json!({ "authenticatorId": auth, "credentialId": cred["credentialId"] }),
    );
    let mut clone = cred.clone();
    clone["signCount"] = json!(0);
    chromium.cdp(
        "WebAuthn.addCredential",
        json!({ "authenticatorId": auth, "credential": clone }),
    );

    let sessions_before = audit_for(&ca, "session_created", "grace").len();
    let certs_before = audit_for(&ca, "cert_issued", "grace").len();
    let w = open_login(&mut chromium, &cli);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "error", "{r:?}");
    assert_eq!(r.code, "webauthn_sign_count", "{r:?}");
    let out = w.finish();
    out.assert_failure("a login with a cloned key");
    assert!(out.stderr.contains("cloned"), "{out}");

    let cloned = audit_for(&ca, "webauthn_key_cloned", "grace");
    assert_eq!(cloned.len(), 1, "a high-severity clone event");
    let key = &keys_of(&admin, "grace")[0];
    assert!(
        key.disabled_reason.is_some(),
        "the key is disabled: {key:?}"
    );
    assert_eq!(
        audit_for(&ca, "session_created", "grace").len(),
        sessions_before
    );
    assert_eq!(audit_for(&ca, "cert_issued", "grace").len(), certs_before);
    ca.verify_audit().assert_success("rampart audit verify");
}

#[test]
fn an_unanswered_enrolment_expires_and_its_link_says_so() {
    let ca = ca_with("[webauthn]\nchallenge_ttl = \"3s\"\n");
    let (_a, admin) = api_admin(&ca);
    let code = invite(&admin, "ivan", &["engineers"]);
    let mut chromium = browser(&ca, AuthenticatorOptions::default());
    let cli = Cli::new(&ca, "ivan");

    // Nobody answers: the CLI is told, once the request has ended.
    let w = start_enrolment(&ca, &cli, &code, None);
    let url = w.url.clone();
    let out = w.finish();
    out.assert_failure("an enrolment nobody answered");
    assert!(out.stderr.contains("expired"), "{out}");

    // The link now says so, and offers nothing to press.
    chromium.navigate(&url);
    let page = chromium.wait_for("document.body && document.body.dataset.page", PAGE_TIMEOUT);
    assert_eq!(page, "expired", "{}", chromium.text());
    assert!(
        chromium.text().contains("Nothing was approved"),
        "{}",
        chromium.text()
    );
    assert_eq!(
        chromium.eval("document.getElementById('approve') === null"),
        json!(true)
    );

    let refused = audit_for(&ca, "webauthn_enrolment_refused", "ivan");
    assert!(
        refused
            .iter()
            .any(|e| row_text(e).contains("webauthn_request_expired")),
        "the expiry is audited: {refused:?}"
    );
    assert!(keys_of(&admin, "ivan").is_empty());
    assert!(chromium.credentials().is_empty(), "the key was never asked");
    nothing_issued(&ca, "ivan", 0);
}

#[test]
fn a_browser_without_webauthn_is_told_so_and_approves_nothing() {
    let ca = ca_with("");
    let (_a, admin) = api_admin(&ca);
    let code = invite(&admin, "judy", &["engineers"]);
    let mut chromium = browser(&ca, AuthenticatorOptions::default());
    // A browser without the WebAuthn API, as far as the page can tell.
    chromium.run_before_page_scripts("delete window.PublicKeyCredential;");
    let cli = Cli::new(&ca, "judy");

    let w = start_enrolment(&ca, &cli, &code, None);
    open_page(&mut chromium, &w.url, &w.code);
    chromium.wait_for(
        "document.body.dataset.result === 'unsupported'",
        PAGE_TIMEOUT,
    );
    assert_eq!(
        chromium.eval("document.getElementById('unsupported').hidden"),
        json!(false),
        "the page says the browser cannot do it"
    );
    assert!(
        chromium.text().contains("does not support security keys"),
        "{}",
        chromium.text()
    );
    assert_eq!(
        chromium.eval("document.getElementById('approve').disabled"),
        json!(true),
        "nothing to approve with"
    );
    // Pressing it anyway does nothing.
    chromium.click("#approve");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        chromium.eval("document.body.dataset.result"),
        json!("unsupported")
    );
    assert!(chromium.credentials().is_empty(), "the key was never asked");
    assert!(keys_of(&admin, "judy").is_empty());
    assert!(audit_for(&ca, "webauthn_key_enrolled", "judy").is_empty());
    // The CLI is still waiting; the test's end stops it.
    drop(w);
}

#[test]
fn a_replayed_browser_answer_is_refused() {
    let ca = ca_with("");
    let (_a, admin) = api_admin(&ca);
    let (mut chromium, cli) = enrolled_user(&ca, &admin, "kim");

    // A good login, whose signed answer is recorded on its way to the CA.
    let w = start_login(&cli);
    let first = w.url.clone();
    open_page(&mut chromium, &w.url, &w.code);
    let mark = chromium.events().len();
    chromium.hold_requests("*/answer");
    chromium.click("#approve");
    let held = chromium.next_held_request(mark, PAGE_TIMEOUT);
    let answer = held["request"]["postData"]
        .as_str()
        .expect("the answer's body")
        .to_owned();
    chromium.release_request(held["requestId"].as_str().expect("requestId"));
    chromium.stop_holding_requests();
    chromium.wait_for("document.body.dataset.result === 'ok'", PAGE_TIMEOUT);
    w.finish().assert_success("the first login");
    let sessions = audit_for(&ca, "session_created", "kim").len();
    let certs = audit_for(&ca, "cert_issued", "kim").len();
    assert_eq!((sessions, certs), (1, 1));

    // The same answer, sent again: to its own (answered) request, and to a new one.
    let w = open_login(&mut chromium, &cli);
    let post = |chromium: &mut Chromium, page: &str| {
        let path = format!(
            "{}/answer",
            page.split_once("/webauthn/")
                .map(|(_, p)| format!("/webauthn/{p}"))
                .expect("a page URL")
        );
        chromium.eval(&format!(
            "fetch({path:?}, {{ method: 'POST', headers: {{ 'Content-Type': 'application/json' }}, \
               body: {answer:?} }}).then(r => r.json().then(j => ({{ status: r.status, code: j.code || '' }})))"
        ))
    };
    let again = post(&mut chromium, &first);
    assert!(again["status"].as_u64().unwrap() >= 400, "{again}");
    let replayed = post(&mut chromium, &w.url);
    assert!(replayed["status"].as_u64().unwrap() >= 400, "{replayed}");
    let replay_code = replayed["code"].as_str().unwrap_or_default().to_owned();
    assert!(replay_code.starts_with("webauthn_"), "{replayed}");

    // The login that was replayed into is refused; nothing new was issued.
    let out = w.finish();
    out.assert_failure("a login answered with a replayed assertion");
    let failed = audit_for(&ca, "mfa_failed", "kim");
    assert!(
        failed.iter().any(|e| row_text(e).contains(&replay_code)),
        "the replay is audited ({replay_code}): {failed:?}"
    );
    assert_eq!(audit_for(&ca, "session_created", "kim").len(), sessions);
    assert_eq!(audit_for(&ca, "cert_issued", "kim").len(), certs);
    ca.verify_audit().assert_success("rampart audit verify");
}

#[test]
fn another_users_key_cannot_approve_a_login() {
    let ca = ca_with("");
    let (_a, admin) = api_admin(&ca);
    let lena_invite = invite(&admin, "lena", &["engineers"]);
    let mike_invite = invite(&admin, "mike", &["engineers"]);
    let lena = Cli::new(&ca, "lena");
    let mike = Cli::new(&ca, "mike");
    {
        let mut lenas_browser = browser(&ca, AuthenticatorOptions::default());
        enrol(&ca, &mut lenas_browser, &lena, &lena_invite);
    }
    // Mike's browser holds only Mike's key.
    let mut chromium = browser(&ca, AuthenticatorOptions::default());
    enrol(&ca, &mut chromium, &mike, &mike_invite);

    // 1. On the page of Lena's login, the browser finds none of her keys.
    let w = open_login(&mut chromium, &lena);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "error", "{r:?}");
    assert!(r.status.contains("not enrolled here"), "{r:?}");
    assert!(
        audit_for(&ca, "mfa_failed", "lena").is_empty(),
        "nothing reached the CA"
    );
    let url = w.url.clone();
    let code = w.code.clone();

    // 2. A doctored page that swaps the CA's list of Lena's keys for Mike's lets
    //    his key sign; the CA refuses a credential that is not hers.
    let mikes = chromium.credentials();
    assert_eq!(mikes.len(), 1, "{mikes:?}");
    let mikes_id = mikes[0]["credentialId"].as_str().expect("credentialId");
    chromium.run_before_page_scripts(&format!(
        "const get = navigator.credentials.get.bind(navigator.credentials); \
         navigator.credentials.get = (o) => {{ \
           if (o && o.publicKey) {{ o.publicKey.allowCredentials = [{{ type: 'public-key', \
             id: Uint8Array.from(atob({mikes_id:?}), c => c.charCodeAt(0)) }}]; }} \
           return get(o); }};"
    ));
    open_page(&mut chromium, &url, &code);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "error", "{r:?}");
    assert_eq!(r.code, "webauthn_foreign_credential", "{r:?}");
    let out = w.finish();
    out.assert_failure("Lena's login approved with Mike's key");
    assert!(!lena.cert().exists(), "no certificate written");
    let failed = audit_for(&ca, "mfa_failed", "lena");
    assert!(
        failed
            .iter()
            .any(|e| row_text(e).contains("webauthn_foreign_credential")),
        "the foreign key is audited: {failed:?}"
    );
    nothing_issued(&ca, "lena", 0);
    assert!(audit_for(&ca, "session_created", "mike").is_empty());
    ca.verify_audit().assert_success("rampart audit verify");
}

/// Number matching in a real browser: the page asks for the code the
/// terminal shows; a wrong one gets an error before the key is ever asked
/// (the authenticator signs nothing), and the right one goes on.
#[test]
fn the_page_asks_for_the_terminals_code_before_the_key() {
    let ca = ca_with("");
    let (_admin_user, admin) = api_admin(&ca);
    let code = invite(&admin, "alice", &["engineers"]);
    let mut chromium = browser(&ca, AuthenticatorOptions::default());
    let cli = Cli::new(&ca, "alice");
    enrol(&ca, &mut chromium, &cli, &code);
    let signed_before = chromium.credentials()[0]["signCount"].clone();

    let w = start_login(&cli);
    open_page(&mut chromium, &w.url, &w.code);
    type_code(&mut chromium, "ZZZZ-ZZZZ");
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "error", "{r:?}");
    assert_eq!(r.code, "webauthn_code_mismatch", "{r:?}");
    assert_eq!(
        chromium.credentials()[0]["signCount"],
        signed_before,
        "the key signed nothing for a wrong code"
    );
    // The user looks again and types the right code.
    chromium.eval("document.body.dataset.result = ''");
    type_code(&mut chromium, &w.code);
    let r = press(&mut chromium, "#approve");
    assert_eq!(r.result, "ok", "{r:?}");
    w.finish().assert_success("rampart login --mfa webauthn");
}
