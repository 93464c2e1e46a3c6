//! Per-session WebAuthn approval at the bastion (issue 4, "Per-session WebAuthn
//! at the bastion"): a real `rampart-ca`, `rampart-bastion` and `sshd` target,
//! stock `ssh -J`, and headless Chromium with a virtual authenticator.
//!
//! alice holds a certificate from `rampart login` (TOTP) and has enrolled a
//! security key in the browser from an admin's invite (a TOTP session may not
//! add a key itself). The role for `db-mfa` says `session_mfa`, so
//! the CA asks the bastion for a security-key approval; ssh's
//! keyboard-interactive prompt (answered through `SSH_ASKPASS`) shows the
//! approval URL and short code. The session waits for the approval given in
//! Chromium, then proceeds with a per-session certificate carrying the
//! WebAuthn evidence; Deny or an expired approval refuses it, audited
//! `access_denied`.

// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_api::webauthn as wapi;
use rampart_e2e::bastion::{host_ca_target, interactive_ssh_config, scratch, Bastion, TargetSpec};
use rampart_e2e::chromium::{AuthenticatorOptions, Chromium, ChromiumOptions};
use rampart_e2e::{bootstrap_admin, onboard, AuditDb, Ca, Enrolled, Sshd, TEST_ACCOUNT};
use serde_json::Value;

const BASTION: &str = "bastion-wa";
const T: Duration = Duration::from_secs(120);

fn policy(admin: &str) -> String {
    format!(
        r#"version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.guarded]
principals = ["{{user}}"]
logins = ["{TEST_ACCOUNT}"]
min_factor = "otp"
session_mfa = true
targets = {{ allow = ["db-mfa"] }}

[groups]
engineers = ["guarded"]

[users]
"{admin}" = ["guarded"]

[bastions."{BASTION}"]
targets = ["db-*"]
"#
    )
}

struct World {
    ca: Ca,
    _admin: Enrolled,
    alice: Enrolled,
    _sshd: Sshd,
    bastion: Bastion,
    browser: Chromium,
    dir: tempfile::TempDir,
    config: PathBuf,
    askpass: PathBuf,
    /// The AAGUID of alice's key as the CA lists it.
    aaguid: String,
}

/// A CA whose approvals live `approval_ttl`, alice with a security key
/// enrolled in Chromium, a target sshd that shows the session's certificate
/// to the session (`ExposeAuthInfo`), and a bastion leading to it.
fn world(approval_ttl: &str) -> World {
    let mut ca = Ca::init_with(
        None,
        &format!("[webauthn]\napproval_ttl = \"{approval_ttl}\"\n"),
    );
    ca.write_policy(&policy(&ca.info().admin_user.clone()));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &["engineers"]);
    alice.login();

    let mut browser = Chromium::start_with(&ChromiumOptions::trusting_ca(&ca));
    browser.enable_virtual_authenticator(AuthenticatorOptions::default());
    let aaguid = enrol_key(&ca, &admin, &mut browser);

    let sshd = host_ca_target(&ca, &admin, vec!["ExposeAuthInfo yes".into()]);
    let mut bastion = Bastion::join(
        &ca,
        &admin,
        BASTION,
        &[TargetSpec::host_ca("db-mfa", sshd.port())],
    );
    bastion.start();
    let dir = scratch("bastion-webauthn");
    let base = bastion.ssh_config(&alice, dir.path(), &["db-mfa"]);
    // Keyboard-interactive allowed; ssh's prompt goes to an askpass helper that
    // writes the prompt to a file and answers with an empty line (Enter).
    let config = interactive_ssh_config(&base, "webauthn");
    let askpass = dir.path().join("askpass.sh");
    std::fs::write(
        &askpass,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\necho\n",
            dir.path().join("prompts").display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&askpass)
        .status()
        .unwrap();
    World {
        ca,
        _admin: admin,
        alice,
        _sshd: sshd,
        bastion,
        browser,
        dir,
        config,
        askpass,
        aaguid,
    }
}

/// An admin invites alice (a TOTP user) to enrol a key — a TOTP session may not
/// add one itself — and she approves the enrolment in Chromium; returns the
/// key's AAGUID as the CA lists it.
fn enrol_key(ca: &Ca, admin: &Enrolled, browser: &mut Chromium) -> String {
    let invite = admin.cli.invite("alice", None);
    let api = ca.api();
    let started: wapi::CeremonyStarted = api
        .post_json(
            wapi::REGISTER_START,
            &wapi::RegisterStartRequest {
                invite: Some(invite.into()),
                name: "key-1".into(),
                direct: false,
                replaces: None,
            },
        )
        .unwrap();
    browser.navigate(&started.url);
    browser.wait_for("document.getElementById('approve') !== null", T);
    type_code(browser, &started.short_code);
    browser.click("#approve");
    browser.wait_for("document.body.dataset.result === 'ok'", T);
    let outcome: wapi::CeremonyOutcome = api
        .post_json_timeout(
            wapi::WAIT,
            &wapi::WaitRequest {
                request_id: started.request_id,
                poll_token: started.poll_token,
            },
            Duration::from_secs(60),
        )
        .unwrap();
    let wapi::CeremonyOutcome::Registered { key, .. } = outcome else {
        panic!("the enrolment ended {outcome:?}");
    };
    key.aaguid
}

/// `ssh -J bastion TEST_ACCOUNT@db-mfa CMD` in the background, prompts
/// answered by the askpass helper.
fn spawn_ssh(w: &World, tag: &str, cmd: &str) -> (Child, PathBuf, PathBuf) {
    let out = w.dir.path().join(format!("{tag}.out"));
    let err = w.dir.path().join(format!("{tag}.err"));
    let child = Command::new(rampart_e2e::require_peer("ssh"))
        .env_remove("SSH_AUTH_SOCK")
        .env("SSH_ASKPASS", &w.askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .arg("-F")
        .arg(&w.config)
        .args([&format!("{TEST_ACCOUNT}@db-mfa"), cmd])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    (child, out, err)
}

/// Wait for the approval prompt that appears after `seen` earlier prompts;
/// returns (URL, short code).
fn next_approval_prompt(w: &World, seen: usize, err: &Path) -> (String, String) {
    let deadline = Instant::now() + T;
    loop {
        let prompts = std::fs::read_to_string(w.dir.path().join("prompts")).unwrap_or_default();
        // OpenSSH prefixes "(login@host) ", then the bastion's
        // "Approve at URL (type the code CODE there), then press Enter: ".
        if let Some(rest) = prompts
            .lines()
            .filter_map(|l| l.split_once("Approve at ").map(|(_, r)| r))
            .nth(seen)
        {
            let (url, rest) = rest.split_once(" (type the code ").unwrap();
            let (code, _) = rest.split_once(" there)").unwrap();
            return (url.to_owned(), code.to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "no approval prompt\nprompts:\n{prompts}\nssh stderr:\n{}\nbastion log:\n{}",
            std::fs::read_to_string(err).unwrap_or_default(),
            w.bastion.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Type `code` into the approval page's code field, as the user copies it
/// from their terminal.
fn type_code(browser: &mut Chromium, code: &str) {
    browser.eval(&format!(
        "document.getElementById('code').value = {}",
        Value::String(code.to_owned())
    ));
}

fn wait_child(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + T;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: ssh did not finish within {T:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bodies(ca: &Ca, kind: &str) -> Vec<serde_json::Value> {
    AuditDb::new(ca.audit_db()).bodies(kind)
}

/// `ssh-keygen -L` of the certificate line in an `ExposeAuthInfo` file's text.
fn describe_cert(dir: &Path, auth_info: &str) -> String {
    let line = auth_info
        .lines()
        .find_map(|l| l.strip_prefix("publickey "))
        .unwrap_or_else(|| panic!("no publickey line in SSH_USER_AUTH:\n{auth_info}"));
    let path = dir.join("session-cert.pub");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let out = Command::new(rampart_e2e::require_peer("ssh-keygen"))
        .arg("-L")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen -L: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An extension's value from `ssh-keygen -L` output. OpenSSH 9.2 prints
/// extensions it does not know as `name UNKNOWN OPTION: <hex> (len N)`, the hex
/// being the SSH string (u32 length, then the bytes) that holds the value.
fn extension(listing: &str, name: &str) -> String {
    let line = listing
        .lines()
        .map(str::trim)
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no extension {name} in:\n{listing}"));
    let Some((_, rest)) = line.split_once("UNKNOWN OPTION: ") else {
        return line.trim_start_matches(name).trim().to_owned();
    };
    let hex = rest.split_whitespace().next().unwrap_or_default();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    String::from_utf8_lossy(bytes.get(4..).unwrap_or_default()).into_owned()
}

#[test]
fn ssh_waits_for_the_approval_given_in_the_browser_and_deny_refuses_the_session() {
    let mut w = world("5m");

    // Approved in the browser: the session proceeds, under a per-session
    // certificate that carries the approval's evidence.
    let asked = chrono::Utc::now();
    let (mut child, out, err) =
        spawn_ssh(&w, "approved", "echo approved-ok; cat \"$SSH_USER_AUTH\"");
    let (url, code) = next_approval_prompt(&w, 0, &err);
    w.browser.navigate(&url);
    w.browser
        .wait_for("document.getElementById('approve') !== null", T);
    let page = w.browser.text();
    assert!(
        !page.contains(&code),
        "the approval page must not show the code the ssh prompt showed:\n{page}"
    );
    assert!(page.contains("Requested from"), "{page}");
    type_code(&mut w.browser, &code);
    assert!(
        page.contains(&format!("{TEST_ACCOUNT}@db-mfa")) || page.contains("db-mfa"),
        "the page says what is being approved:\n{page}"
    );
    w.browser.click("#approve");
    w.browser
        .wait_for("document.body.dataset.result === 'ok'", T);
    let st = wait_child(&mut child, "approved");
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(
        st.success() && stdout.starts_with("approved-ok"),
        "ssh after the approval: {st:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nbastion:\n{}",
        w.bastion.log()
    );
    let cert = describe_cert(w.dir.path(), &stdout);
    assert!(cert.contains("mfa-method@rampart"), "{cert}");
    let ext = |name: &str| -> String { extension(&cert, name) };
    assert_eq!(ext("mfa-method@rampart"), "webauthn", "{cert}");
    assert_eq!(ext("mfa-uv@rampart"), "yes", "{cert}");
    assert_eq!(
        ext("mfa-aaguid@rampart"),
        w.aaguid,
        "the AAGUID the CA lists ({}) is in the certificate:\n{cert}",
        w.aaguid
    );
    // Fresh: the key was used after ssh asked (the outer certificate's TOTP
    // login was earlier). A few seconds of slack for clock reading order only.
    let mfa_time = chrono::DateTime::parse_from_rfc3339(&ext("mfa-time@rampart")).unwrap();
    assert!(
        mfa_time >= asked - chrono::Duration::seconds(5),
        "mfa-time {mfa_time} is the approval's, after {asked}"
    );
    let granted = serde_json::to_string(&bodies(&w.ca, "access_granted")).unwrap();
    assert!(
        granted.contains("webauthn") && granted.contains("db-mfa"),
        "access_granted with webauthn: {granted}"
    );

    // Denied in the browser: the session is refused with a reason, and the CA
    // audits access_denied.
    let denied_before = bodies(&w.ca, "access_denied").len();
    let (mut child, out, err) = spawn_ssh(&w, "denied", "echo should-not-run");
    let (url, _code) = next_approval_prompt(&w, 1, &err);
    w.browser.navigate(&url);
    w.browser
        .wait_for("document.getElementById('deny') !== null", T);
    w.browser.click("#deny");
    w.browser
        .wait_for("document.body.dataset.result === 'denied'", T);
    let st = wait_child(&mut child, "denied");
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(
        !st.success() && !stdout.contains("should-not-run"),
        "a denied approval refuses the session: {st:?}\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("access denied"), "{stderr}");
    let denied = bodies(&w.ca, "access_denied");
    assert!(
        denied.len() > denied_before && serde_json::to_string(&denied).unwrap().contains("db-mfa"),
        "access_denied audited: {denied:?}"
    );
    assert!(
        serde_json::to_string(&denied[denied_before..])
            .unwrap()
            .contains("webauthn_denied"),
        "the refusal names the Deny, not a used approval: {denied:?}"
    );
    let _ = &w.alice;
}

#[test]
fn an_expired_approval_refuses_the_session() {
    let w = world("6s");
    let (mut child, out, err) = spawn_ssh(&w, "expired", "echo should-not-run");
    // Seen, never answered.
    let _ = next_approval_prompt(&w, 0, &err);
    let st = wait_child(&mut child, "expired");
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(
        !st.success() && !stdout.contains("should-not-run"),
        "an expired approval refuses the session: {st:?}\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("access denied"), "{stderr}");
    let denied = serde_json::to_string(&bodies(&w.ca, "access_denied")).unwrap();
    assert!(denied.contains("db-mfa"), "access_denied audited: {denied}");
}
