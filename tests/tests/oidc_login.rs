//! OIDC step-up against a real OpenID provider (panva's `oidc-provider`, run with
//! node on loopback): the code + PKCE flow ends in a certificate whose principals
//! come from the provider's groups claim and whose extensions carry the
//! provider's evidence, and a real sshd accepts it; a role that needs `amr` hwk
//! sends the user back with `prompt=login`, `max_age=0`; a stopped provider
//! gives a clear error; an existing user's provider account is linked only by
//! an admin or by the user's invite redeemed with a login at the provider
//! (`rampart enroll --invite CODE --oidc corp`).

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rampart_api::oidc::{
    OidcFinishRequest, OidcFinishResponse, OidcStartRequest, OidcStartResponse, FINISH, START,
};
use rampart_api::{paths, CertRequest, CertResponse, LoginResponse};
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::oidc::{account, code_and_state, OidcProvider};
use rampart_e2e::{free_port, ssh_login, AuditDb, Ca, KeyPair, Sshd, TEST_ACCOUNT};
use serde_json::json;

const POLICY: &str = r#"
version = 1
[defaults]
ttl = "1h"
min_factor = "otp"

[roles.ops]
principals = ["ops-{user}"]
extensions = ["permit-pty"]

[roles.dba]
principals = ["dba-{user}"]
oidc_amr = ["hwk"]

[groups]
ops-team = ["ops"]
dbas = ["dba"]
"#;

fn ca_with(provider: &OidcProvider, extra: &str) -> Ca {
    let mut ca = Ca::init_with(Some(POLICY), "");
    ca.merge_config(&provider.ca_config(ca.dir(), "corp", extra));
    ca.start();
    ca
}

/// A CA whose bootstrap admin may take the `ops` role, so `rampart login`
/// (which fetches a certificate) works for them.
fn ca_with_admin_role(provider: &OidcProvider, extra: &str) -> Ca {
    let mut ca = Ca::init_with(Some(POLICY), "");
    ca.merge_config(&provider.ca_config(ca.dir(), "corp", extra));
    ca.write_policy(&format!(
        "{POLICY}\n[users]\n\"{}\" = [\"ops\"]\n",
        ca.info().admin_user
    ));
    ca.start();
    ca
}

fn redirect_uri() -> String {
    format!("http://127.0.0.1:{}/callback", free_port())
}

fn start(ca: &Ca, user: Option<&str>) -> OidcStartResponse {
    ca.api()
        .post_json(
            START,
            &OidcStartRequest {
                provider: "corp".into(),
                redirect_uri: redirect_uri(),
                user: user.map(str::to_owned),
            },
        )
        .unwrap_or_else(|e| panic!("oidc start: {e}"))
}

fn finish(
    ca: &Ca,
    redirect: &reqwest::Url,
) -> Result<OidcFinishResponse, rampart_api::ClientError> {
    finish_with(ca, redirect, None)
}

/// [`finish`], bringing an invite.
fn finish_with(
    ca: &Ca,
    redirect: &reqwest::Url,
    invite: Option<&str>,
) -> Result<OidcFinishResponse, rampart_api::ClientError> {
    let (code, state) = code_and_state(redirect);
    ca.api().post_json(
        FINISH,
        &OidcFinishRequest {
            state: state.into(),
            code: code.into(),
            invite: invite.map(Into::into),
        },
    )
}

fn logged_in(r: OidcFinishResponse) -> LoginResponse {
    match r {
        OidcFinishResponse::LoggedIn { login } => login,
        other => panic!("expected a session, got {other:?}"),
    }
}

/// Whether one audit event mentions every one of `words`.
fn audited(ca: &Ca, words: &[&str]) -> bool {
    AuditDb::new(ca.audit_db())
        .events()
        .iter()
        .map(|e| serde_json::Value::Object(e.clone()).to_string())
        .any(|e| words.iter().all(|w| e.contains(w)))
}

fn query(url: &str, key: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn code_flow_gives_a_certificate_from_idp_groups_with_evidence_that_sshd_accepts() {
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd", "otp"]) }));
    let ca = ca_with(&provider, "jit_users = true");

    let started = start(&ca, None);
    for k in ["state", "nonce", "code_challenge", "max_age"] {
        assert!(
            query(&started.authorize_url, k).is_some(),
            "{k} missing: {}",
            started.authorize_url
        );
    }
    assert_eq!(
        query(&started.authorize_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query(&started.authorize_url, "state").as_deref(),
        Some(started.state.expose())
    );
    assert!(
        !started.authorize_url.contains("secret"),
        "the client secret never goes to the browser"
    );

    let redirect = provider.authenticate(&started.authorize_url, "alice");
    let login = logged_in(finish(&ca, &redirect).expect("finish"));
    assert_eq!(
        login.user, "alice",
        "just-in-time user from preferred_username"
    );
    assert_eq!(login.mfa_method, "oidc");

    // The code and state are single use.
    let again = finish(&ca, &redirect).expect_err("replayed state");
    assert_eq!(again.api_code(), Some("oidc_state_unknown"), "{again}");

    let dir = rampart_e2e::tempdir("oidc-key");
    let key = KeyPair::ed25519(dir.path(), "id");
    let cert: CertResponse = ca
        .api()
        .with_token(login.session_token.clone())
        .post_json(
            paths::CERTS,
            &CertRequest {
                public_key: key.public_line(),
                ttl_seconds: None,
            },
        )
        .expect("certificate");
    assert_eq!(
        cert.principals,
        ["ops-alice"],
        "principal from the groups claim → role ops"
    );
    let cert_path = dir.path().join("id-cert.pub");
    std::fs::write(&cert_path, format!("{}\n", cert.certificate)).expect("write cert");
    let info = inspect_cert(&cert_path);
    assert_eq!(
        info.extension_value("mfa-method@rampart").as_deref(),
        Some("oidc"),
        "{}",
        info.text
    );
    assert_eq!(
        info.extension_value("mfa-idp@rampart").as_deref(),
        Some("corp"),
        "{}",
        info.text
    );
    assert_eq!(
        info.extension_value("mfa-amr@rampart").as_deref(),
        Some("pwd,otp"),
        "{}",
        info.text
    );
    let auth_time = info
        .extension_value("mfa-auth-time@rampart")
        .unwrap_or_else(|| panic!("no mfa-auth-time@rampart\n{}", info.text));
    assert_eq!(
        info.extension_value("mfa-time@rampart").as_deref(),
        Some(auth_time.as_str()),
        "for OIDC the MFA time is the provider's auth_time\n{}",
        info.text
    );

    let sshd = Sshd::start(&ca.user_ca_pub());
    sshd.set_principals(TEST_ACCOUNT, &["ops-alice"]);
    ssh_login(&sshd, TEST_ACCOUNT, &key.private, Some(&cert_path))
        .assert_success("sshd accepts the OIDC-backed certificate");

    assert!(
        audited(&ca, &["mfa_succeeded", "oidc", "corp"]),
        "mfa_succeeded with method oidc and the provider"
    );
    assert!(
        audited(&ca, &["mfa_failed", "oidc_state_unknown"]),
        "the replay is audited"
    );
}

#[test]
fn a_role_needing_amr_hwk_sends_the_user_back_with_prompt_login_and_succeeds_after() {
    let provider = OidcProvider::start(json!({ "dora": account(&["dbas"], &["pwd"]) }));
    let ca = ca_with(&provider, "jit_users = true");

    let first = provider.authenticate(&start(&ca, None).authorize_url, "dora");
    let (code, reason, url) = match finish(&ca, &first).expect("finish") {
        OidcFinishResponse::StepUpRequired {
            code,
            reason,
            authorize_url,
            ..
        } => (code, reason, authorize_url),
        other => panic!("expected a step-up, got {other:?}"),
    };
    assert_eq!(code, "amr_missing");
    assert!(reason.contains("hwk") && reason.contains("dba"), "{reason}");
    assert_eq!(query(&url, "prompt").as_deref(), Some("login"), "{url}");
    assert_eq!(query(&url, "max_age").as_deref(), Some("0"), "{url}");

    // At the prompt the user now uses a hardware key.
    provider.set_account("dora", json!({ "amr": ["pwd", "hwk"] }));
    let second = provider.authenticate(&url, "dora");
    let login = logged_in(finish(&ca, &second).expect("finish after step-up"));
    assert_eq!(login.user, "dora");

    assert!(
        audited(&ca, &["mfa_failed", "amr_missing"]),
        "the too-weak login is audited as amr_missing"
    );
}

#[test]
fn a_user_unknown_to_rampart_is_refused_when_jit_is_off() {
    let provider = OidcProvider::start(json!({ "mallory": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with(&provider, "");
    let redirect = provider.authenticate(&start(&ca, None).authorize_url, "mallory");
    let err = finish(&ca, &redirect).expect_err("unknown user");
    assert_eq!(err.api_code(), Some("oidc_user_unknown"), "{err}");
}

#[test]
fn a_stopped_provider_gives_a_clear_error() {
    let mut provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with(&provider, "jit_users = true");
    provider.stop();
    let err = ca
        .api()
        .post_json::<_, OidcStartResponse>(
            START,
            &OidcStartRequest {
                provider: "corp".into(),
                redirect_uri: redirect_uri(),
                user: None,
            },
        )
        .expect_err("provider down");
    assert_eq!(err.api_code(), Some("oidc_provider_unavailable"), "{err}");
    assert!(err.to_string().contains("cannot be reached"), "{err}");
}

/// `rampart login --mfa oidc --provider corp` for alice, run as a user would:
/// its stderr lines arrive on [`OidcCliLogin::lines`] as it prints them.
struct OidcCliLogin {
    cli: rampart_e2e::Cli,
    child: std::process::Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
    lines: std::sync::mpsc::Receiver<String>,
    what: String,
}

impl OidcCliLogin {
    fn spawn(ca: &Ca, extra: &str) -> OidcCliLogin {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;

        let cli = rampart_e2e::Cli::new(ca, "alice");
        let mut cmd = cli.command();
        cmd.args([
            "login",
            "--ca",
            ca.url(),
            "--ca-fingerprint",
            ca.fingerprint(),
            "--mfa",
            "oidc",
            "--provider",
            "corp",
            extra,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let what = format!("rampart login --mfa oidc {extra}");
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let stdout = rampart_e2e::process::drain(child.stdout.take().expect("stdout"));
        let (tx, lines) = std::sync::mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        OidcCliLogin {
            cli,
            child,
            stdout,
            stderr,
            lines,
            what,
        }
    }

    /// The first stderr line `pick` takes, within a minute.
    fn wait_for<T>(&self, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{} printed nothing expected", self.what));
            if let Some(found) = pick(&line) {
                return found;
            }
        }
    }

    /// Wait (at most `timeout`) for the login to end: its exit status, and
    /// all it printed on stdout and on stderr.
    fn finish(
        mut self,
        timeout: std::time::Duration,
    ) -> (std::process::ExitStatus, String, String) {
        let status = rampart_e2e::process::wait_deadline(&mut self.child, timeout, &self.what);
        let out = self.stdout.join().unwrap_or_default();
        let err = self.stderr.join().unwrap_or_default();
        (status, out, err)
    }

    /// Wait for the login to end; it must have logged alice in with an OIDC
    /// certificate from provider `corp`.
    fn assert_logged_in(self, timeout: std::time::Duration) {
        let what = self.what.clone();
        let cert = self.cli.cert();
        let (status, out, err) = self.finish(timeout);
        assert!(status.success(), "{what} failed\n{out}\n{err}");
        assert!(out.contains("Logged in as alice (oidc)"), "{out}");
        let info = inspect_cert(&cert);
        assert_eq!(info.principals, ["ops-alice"], "{}", info.text);
        assert_eq!(
            info.extension_value("mfa-idp@rampart").as_deref(),
            Some("corp"),
            "{}",
            info.text
        );
    }
}

#[test]
fn a_provider_gone_after_the_ca_used_it_fails_rampart_login_within_seconds() {
    let mut provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with(&provider, "jit_users = true");
    // Used: one login completes, so the CA holds the provider's discovery data.
    logged_in(provider_login(&ca, &provider, "alice").expect("first login"));
    provider.stop();

    let begun = std::time::Instant::now();
    let login = OidcCliLogin::spawn(&ca, "--no-browser");
    let (status, _, err) = login.finish(std::time::Duration::from_secs(60));
    let took = begun.elapsed();
    assert!(!status.success(), "{err}");
    assert!(
        took < std::time::Duration::from_secs(10),
        "failed after {took:?}, not within seconds\n{err}"
    );
    assert!(err.contains("oidc_provider_unavailable"), "{err}");
    assert!(err.contains("--mfa totp"), "the fallback hint: {err}");
    assert!(
        !err.contains("in your browser"),
        "no login URL at a dead provider: {err}"
    );
    // Audited as a failure at the login's start, naming the provider.
    let failed = AuditDb::new(ca.audit_db()).bodies("mfa_failed");
    assert!(
        failed.iter().any(|b| b["details"]["stage"] == "start"
            && b["reason"] == "oidc_provider_unavailable"
            && b["details"]["provider"].is_string()),
        "{failed:?}"
    );
}

#[test]
fn the_clis_wait_for_the_browser_ends_when_the_provider_goes_away() {
    let mut provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with(&provider, "jit_users = true");
    let login = OidcCliLogin::spawn(&ca, "--no-browser");
    // The URL is printed: the CLI waits for a browser that will never come.
    let url = login.wait_for(|l| l.trim_start().starts_with("http://").then(|| l.to_owned()));
    assert!(url.trim().starts_with(&provider.issuer()), "{url}");
    provider.stop();
    let stopped = std::time::Instant::now();
    let (status, _, err) = login.finish(std::time::Duration::from_secs(60));
    let took = stopped.elapsed();
    assert!(!status.success(), "{err}");
    // One check every 5 s, a probe of at most 3 s.
    assert!(
        took < std::time::Duration::from_secs(15),
        "the wait ended {took:?} after the provider stopped\n{err}"
    );
    assert!(err.contains("oidc_provider_unavailable"), "{err}");
    assert!(audited(
        &ca,
        &["mfa_failed", "oidc_provider_unavailable", "wait"]
    ));
}

#[test]
fn device_polls_answer_at_once_and_hold_no_ca_thread() {
    use rampart_api::oidc::{
        OidcDevicePollRequest, OidcDevicePollResponse, OidcDeviceStartRequest,
        OidcDeviceStartResponse, DEVICE_POLL, DEVICE_START,
    };
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with(&provider, "jit_users = true");
    let started: OidcDeviceStartResponse = ca
        .api()
        .post_json(
            DEVICE_START,
            &OidcDeviceStartRequest {
                provider: "corp".into(),
            },
        )
        .expect("device start");
    // 32 polls at once, as a client that ignores the interval would send them:
    // each answers "pending" without waiting for the user.
    let begun = std::time::Instant::now();
    let polls: Vec<_> = (0..32)
        .map(|_| {
            let api = ca.api();
            let handle = started.handle.clone();
            std::thread::spawn(move || {
                api.post_json::<_, OidcDevicePollResponse>(
                    DEVICE_POLL,
                    &OidcDevicePollRequest {
                        handle,
                        invite: None,
                    },
                )
            })
        })
        .collect();
    for p in polls {
        let answer = p.join().expect("poll thread").expect("poll");
        assert!(
            matches!(answer, OidcDevicePollResponse::Pending),
            "{answer:?}"
        );
    }
    let took = begun.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "32 polls took {took:?}: polls wait on CA threads"
    );
    // The provider's interval (5 s) has not passed: nothing was asked of it
    // yet, and the login is still open.
    let again: OidcDevicePollResponse = ca
        .api()
        .post_json(
            DEVICE_POLL,
            &OidcDevicePollRequest {
                handle: started.handle.clone(),
                invite: None,
            },
        )
        .expect("poll again");
    assert!(
        matches!(again, OidcDevicePollResponse::Pending),
        "{again:?}"
    );
}

#[test]
fn rampart_login_mfa_oidc_with_a_scripted_browser_writes_an_oidc_certificate() {
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd", "otp"]) }));
    let ca = ca_with(&provider, "jit_users = true");
    let login = OidcCliLogin::spawn(&ca, "--no-browser");
    let url = login.wait_for(|l| {
        let l = l.trim();
        l.starts_with("http://").then(|| l.to_owned())
    });
    assert!(url.starts_with(&provider.issuer()), "{url}");

    // The "browser": log in at the provider, then follow its redirect to the
    // CLI's loopback listener.
    let redirect = provider.authenticate(&url, "alice");
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    let page = reqwest::blocking::get(redirect.as_str()).expect("deliver the code to the CLI");
    assert!(page.status().is_success(), "{}", page.status());

    login.assert_logged_in(std::time::Duration::from_secs(60));
}

#[test]
fn while_the_provider_is_down_totp_stands_in_only_where_the_role_names_it() {
    const FALLBACK_POLICY: &str = r#"
version = 1
[defaults]
min_factor = "otp"

[roles.dba]
principals = ["dba-{user}"]
oidc_amr = ["hwk"]
fallback_factor = "totp"

[roles.vault]
principals = ["vault-{user}"]
oidc_amr = ["hwk"]

[groups]
dbas = ["dba"]
vault = ["vault"]
"#;
    let mut provider = OidcProvider::start(json!({ "alice": account(&["dbas"], &["pwd"]) }));
    let mut ca = Ca::init_with(Some(FALLBACK_POLICY), "");
    ca.merge_config(&provider.ca_config(ca.dir(), "corp", ""));
    // The bootstrap admin needs a role to log in with TOTP at all.
    ca.write_policy(&format!(
        "{FALLBACK_POLICY}\n[users]\n\"{}\" = [\"dba\"]\n",
        ca.info().admin_user
    ));
    ca.start();
    let (_admin, admin_session) = rampart_e2e::api_admin(&ca);
    let mut dora = rampart_e2e::api_onboard(&ca, &admin_session.client, "dora", &["dbas"]);
    let mut vic = rampart_e2e::api_onboard(&ca, &admin_session.client, "vic", &["vault"]);
    let dir = rampart_e2e::tempdir("oidc-fallback");
    let key = KeyPair::ed25519(dir.path(), "id");
    let cert_for = |s: &rampart_e2e::Session| {
        s.client.post_json::<_, CertResponse>(
            paths::CERTS,
            &CertRequest {
                public_key: key.public_line(),
                ttl_seconds: None,
            },
        )
    };

    // Provider up: a TOTP session does not get a role that needs OIDC.
    let up = cert_for(&dora.login(&ca)).expect_err("TOTP while the provider is up");
    assert_eq!(up.api_code(), Some("oidc_required"), "{up}");
    assert!(up.to_string().contains("provider is up"), "{up}");

    provider.stop();
    // Provider down: the role that names totp as its fallback accepts it, audited.
    let cert = cert_for(&dora.login(&ca)).expect("fallback certificate");
    assert_eq!(cert.principals, ["dba-dora"]);
    assert!(
        audited(
            &ca,
            &[
                "mfa_succeeded",
                "fallback",
                "oidc_provider_unavailable",
                "dora"
            ]
        ),
        "the fallback is audited as one: {:?}",
        AuditDb::new(ca.audit_db())
            .events()
            .iter()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
    );
    // … and the role without a fallback refuses, provider down or not.
    let no = cert_for(&vic.login(&ca)).expect_err("no fallback for vault");
    assert_eq!(no.api_code(), Some("oidc_required"), "{no}");
    assert!(no.to_string().contains("accepts no totp fallback"), "{no}");
}

#[test]
fn rampart_login_device_grant_completes_against_the_same_provider() {
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd", "otp"]) }));
    let ca = ca_with(&provider, "jit_users = true");
    let login = OidcCliLogin::spawn(&ca, "--device");
    let mut uri = None;
    let (uri, code) = login.wait_for(|l| {
        if l.trim_start().starts_with("http://") && uri.is_none() {
            uri = Some(l.trim().to_owned());
        }
        l.strip_prefix("and enter the code: ")
            .map(|code| (uri.clone().unwrap_or_default(), code.trim().to_owned()))
    });
    assert!(uri.starts_with(&provider.issuer()), "{uri}");
    assert!(!code.is_empty());

    provider.approve_device(&uri, &code, "alice");

    login.assert_logged_in(std::time::Duration::from_secs(90));
    assert!(audited(&ca, &["mfa_succeeded", "oidc", "alice"]));
}

/// One login through the real provider that the CA must refuse with `code`,
/// and audit with that reason.
fn refused(ca: &Ca, provider: &OidcProvider, login: &str, code: &str) {
    let redirect = provider.authenticate(&start(ca, None).authorize_url, login);
    let err = finish(ca, &redirect).expect_err(code);
    assert_eq!(err.api_code(), Some(code), "{err}");
    assert!(
        audited(ca, &["mfa_failed", code, "corp"]),
        "mfa_failed {code} is audited"
    );
}

#[test]
fn expired_and_future_tokens_from_the_provider_are_refused_and_audited() {
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with(&provider, "jit_users = true");
    // The provider's clock two hours behind: its ID tokens expired an hour ago.
    provider.set_mode(json!({ "clock_offset": -7200 }));
    refused(&ca, &provider, "alice", "token_expired");
    // Two hours ahead: issued in the future.
    provider.set_mode(json!({ "clock_offset": 7200 }));
    refused(&ca, &provider, "alice", "token_expired");
    // Back in step: accepted.
    provider.set_mode(json!({ "clock_offset": 0 }));
    let redirect = provider.authenticate(&start(&ca, None).authorize_url, "alice");
    logged_in(finish(&ca, &redirect).expect("in step"));
}

#[test]
fn a_token_whose_kid_the_provider_does_not_publish_is_refused_after_one_refetch() {
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    provider.set_mode(json!({ "jwks": "empty" }));
    let ca = ca_with(&provider, "jit_users = true");
    refused(&ca, &provider, "alice", "unknown_kid");
    // Discovery fetched the JWKS once and the unknown kid once more.
    assert_eq!(provider.jwks_fetches(), 2);
    // A second such token within the rate limit does not make the CA fetch again.
    refused(&ca, &provider, "alice", "unknown_kid");
    assert_eq!(provider.jwks_fetches(), 2, "the refetch is rate-limited");
}

#[test]
fn a_token_that_does_not_verify_with_the_published_key_is_refused() {
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    // The JWKS names the signing kid but holds another key.
    provider.set_mode(json!({ "jwks": "wrong_key" }));
    let ca = ca_with(&provider, "jit_users = true");
    refused(&ca, &provider, "alice", "bad_signature");
}

#[test]
fn a_user_disabled_in_rampart_is_refused_whatever_the_provider_says() {
    let provider = OidcProvider::start(json!({ "erin": account(&["ops-team"], &["pwd"]) }));
    let mut ca = Ca::init_with(Some(POLICY), "");
    ca.merge_config(&provider.ca_config(ca.dir(), "corp", "jit_users = true"));
    ca.write_policy(&format!(
        "{POLICY}\n[users]\n\"{}\" = [\"ops\"]\n",
        ca.info().admin_user
    ));
    ca.start();
    let (_admin, admin) = rampart_e2e::api_admin(&ca);
    let first = provider.authenticate(&start(&ca, None).authorize_url, "erin");
    logged_in(finish(&ca, &first).expect("first login creates erin"));
    let _: serde_json::Value = admin
        .client
        .post_json(
            paths::ADMIN_USER_STATE,
            &rampart_api::SetUserStateRequest {
                name: "erin".into(),
                disabled: true,
            },
        )
        .expect("disable erin");
    let again = provider.authenticate(&start(&ca, None).authorize_url, "erin");
    let err = finish(&ca, &again).expect_err("disabled");
    assert_eq!(err.api_code(), Some("user_disabled"), "{err}");
    assert!(audited(&ca, &["mfa_failed", "user_disabled", "erin"]));
}

#[test]
fn an_authentication_older_than_the_roles_max_age_asks_for_a_fresh_one() {
    const FRESH: &str = r#"
version = 1
[roles.ops]
principals = ["ops-{user}"]
mfa_max_age = "2m"
[groups]
ops-team = ["ops"]
"#;
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let mut ca = Ca::init_with(Some(FRESH), "");
    ca.merge_config(&provider.ca_config(
        ca.dir(),
        "corp",
        "jit_users = true\nclock_skew = \"10s\"",
    ));
    ca.start();
    // The user authenticated at the provider ten minutes "ago" (its clock is
    // behind; its tokens are still within their hour).
    provider.set_mode(json!({ "clock_offset": -600 }));
    let redirect = provider.authenticate(&start(&ca, None).authorize_url, "alice");
    match finish(&ca, &redirect).expect("finish") {
        OidcFinishResponse::StepUpRequired {
            code,
            authorize_url,
            ..
        } => {
            assert_eq!(code, "auth_time_stale");
            assert_eq!(query(&authorize_url, "max_age").as_deref(), Some("0"));
            assert_eq!(query(&authorize_url, "prompt").as_deref(), Some("login"));
        }
        other => panic!("expected a step-up, got {other:?}"),
    }
    assert!(audited(&ca, &["mfa_failed", "auth_time_stale"]));
}

#[test]
fn another_provider_account_claiming_the_same_user_name_is_refused() {
    // eve's provider account says preferred_username = alice (a claim many
    // providers let the user edit); the subject differs.
    let mut eve = account(&["ops-team"], &["pwd"]);
    eve["username"] = json!("alice");
    let provider = OidcProvider::start(json!({
        "alice": account(&["ops-team"], &["pwd"]),
        "eve": eve,
    }));
    let ca = ca_with(&provider, "jit_users = true");
    let first = provider.authenticate(&start(&ca, None).authorize_url, "alice");
    logged_in(finish(&ca, &first).expect("alice binds her subject"));
    let other = provider.authenticate(&start(&ca, None).authorize_url, "eve");
    let err = finish(&ca, &other).expect_err("eve posing as alice");
    assert_eq!(err.api_code(), Some("oidc_account_not_linked"), "{err}");
    assert!(audited(&ca, &["mfa_failed", "oidc_account_not_linked"]));
    // alice herself still gets in.
    let again = provider.authenticate(&start(&ca, None).authorize_url, "alice");
    logged_in(finish(&ca, &again).expect("alice again"));
}

/// The login of `account` at the provider, as the CA judges it.
fn provider_login(
    ca: &Ca,
    provider: &OidcProvider,
    account: &str,
) -> Result<OidcFinishResponse, rampart_api::ClientError> {
    let redirect = provider.authenticate(&start(ca, None).authorize_url, account);
    finish(ca, &redirect)
}

#[test]
fn an_existing_user_is_reached_through_the_provider_only_after_an_admin_links_the_account() {
    // bob exists in Rampart before anyone logs in through the provider. The
    // provider holds bob's own account and mallory's, whose editable user-name
    // claim also says bob.
    let mut mallory = account(&["ops-team"], &["pwd"]);
    mallory["username"] = json!("bob");
    let provider = OidcProvider::start(json!({
        "bob": account(&["dbas"], &["pwd"]),
        "mallory": mallory,
    }));
    // JIT on and group sync off: JIT must still never claim an existing user,
    // and the admin's groups must survive the provider's.
    let ca = ca_with_admin_role(&provider, "jit_users = true\nsync_groups = false");
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin.cli.add_user("bob", &["ops-team"]);

    // Before a link: neither account gets in, the refusal names the fix.
    let err = provider_login(&ca, &provider, "bob").expect_err("bob not linked yet");
    assert_eq!(err.api_code(), Some("oidc_account_not_linked"), "{err}");
    assert!(
        err.to_string()
            .contains("rampart admin user link bob --provider corp --subject bob"),
        "{err}"
    );
    let err = provider_login(&ca, &provider, "mallory").expect_err("mallory as bob");
    assert_eq!(err.api_code(), Some("oidc_account_not_linked"), "{err}");
    assert!(audited(
        &ca,
        &["mfa_failed", "oidc_account_not_linked", "bob"]
    ));

    // Bad links are refused: unknown provider, empty and oversized subjects.
    let link = |args: &[&str]| {
        let mut a = vec!["user", "link"];
        a.extend_from_slice(args);
        admin.cli.admin(&a)
    };
    for bad in [
        vec!["bob", "--provider", "nope", "--subject", "bob"],
        vec!["bob", "--provider", "corp", "--subject", ""],
        vec!["bob", "--provider", "corp", "--subject", &"s".repeat(256)],
        vec!["nobody", "--provider", "corp", "--subject", "bob"],
    ] {
        let out = link(&bad);
        assert!(!out.status.success(), "{bad:?} must be refused\n{out}");
    }

    // The admin links bob's own account: bob gets in, and keeps the admin's
    // groups (the provider's `dbas` would ask for a hardware-key step-up).
    let out = link(&["bob", "--provider", "corp", "--subject", "bob"]);
    out.assert_success("rampart admin user link");
    assert!(out.stdout.contains("linked"), "{out}");
    assert!(audited(&ca, &["user_idp_linked", "bob", "corp"]));
    let session = logged_in(provider_login(&ca, &provider, "bob").expect("bob, linked"));
    assert_eq!(session.user, "bob");
    let users = admin.cli.admin(&["user", "list"]);
    let bob_row = users
        .stdout
        .lines()
        .find(|l| l.starts_with("bob"))
        .unwrap_or_else(|| panic!("bob listed\n{users}"));
    assert!(
        bob_row.contains("ops-team") && !bob_row.contains("dbas"),
        "sync_groups = false keeps the admin's groups: {bob_row}"
    );
    // mallory's account is still nobody's, and a second user cannot take bob's.
    let err = provider_login(&ca, &provider, "mallory").expect_err("mallory after link");
    assert_eq!(err.api_code(), Some("oidc_account_not_linked"), "{err}");
    admin.cli.add_user("carol", &[]);
    let out = link(&["carol", "--provider", "corp", "--subject", "bob"]);
    assert!(!out.status.success(), "one account, one user\n{out}");
    assert!(out.stderr.contains("linked to Rampart user bob"), "{out}");

    // Unlinking shuts the door again.
    link(&["bob", "--provider", "corp", "--unlink"]).assert_success("unlink");
    assert!(audited(&ca, &["user_idp_unlinked", "bob"]));
    let err = provider_login(&ca, &provider, "bob").expect_err("bob unlinked");
    assert_eq!(err.api_code(), Some("oidc_account_not_linked"), "{err}");
}

#[test]
fn group_sync_never_takes_admin_away() {
    // The bootstrap admin links their provider account, whose groups say
    // nothing about Rampart admin rights; sync is on (the default).
    // The admin's name is init's choice; the provider learns it first.
    let admin_name = Ca::init_with(Some(POLICY), "").info().admin_user.clone();
    let provider =
        OidcProvider::start(json!({ admin_name.clone(): account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with_admin_role(&provider, "");
    assert_eq!(ca.info().admin_user, admin_name);
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin
        .cli
        .admin(&[
            "user",
            "link",
            &admin_name,
            "--provider",
            "corp",
            "--subject",
            &admin_name,
        ])
        .assert_success("link the admin");
    let session = logged_in(provider_login(&ca, &provider, &admin_name).expect("admin via IdP"));
    assert!(session.admin, "the provider's groups do not remove admin");
    assert!(audited(&ca, &["user_groups_changed", "ops-team"]));
}

/// Figures for the README, not a pass/fail check: run with
/// `cargo nextest run -p rampart-e2e --test oidc_login --run-ignored only oidc_login_latency`.
/// Times `POST /v1/oidc/finish` (code redemption at the provider + ID-token
/// checks + session) over 20 logins against the real provider.
#[test]
#[ignore = "measurement: run explicitly (see the doc comment)"]
fn oidc_login_latency() {
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with(&provider, "jit_users = true");
    let mut finish_ms = Vec::new();
    let mut start_ms = Vec::new();
    for _ in 0..20 {
        let t = std::time::Instant::now();
        let s = start(&ca, None);
        start_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let redirect = provider.authenticate(&s.authorize_url, "alice");
        let t = std::time::Instant::now();
        logged_in(finish(&ca, &redirect).expect("finish"));
        finish_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2], v[v.len() * 9 / 10])
    };
    let (s50, s90) = med(&mut start_ms);
    let (f50, f90) = med(&mut finish_ms);
    println!("oidc start: p50 {s50:.1} ms, p90 {s90:.1} ms; finish: p50 {f50:.1} ms, p90 {f90:.1} ms (n=20)");
}

#[test]
fn oidc_logins_open_and_answer_mfa_challenges_in_the_metrics() {
    use rampart_e2e::prometheus::{scrape, sum};
    let provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let mut ca = Ca::init_with(Some(POLICY), "");
    ca.merge_config(&provider.ca_config(ca.dir(), "corp", "jit_users = true"));
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    ca.merge_config(&format!("[metrics]\nlisten = \"{metrics}\"\n"));
    ca.start();
    let oidc_login = [("factor", "oidc"), ("flow", "login")];
    let count = |name: &str, extra: &[(&str, &str)]| {
        let want: Vec<(&str, &str)> = oidc_login.iter().chain(extra).copied().collect();
        sum(&scrape(metrics), name, &want)
    };

    let started = start(&ca, None);
    assert_eq!(
        count("rampart_mfa_challenges_total", &[]),
        1.0,
        "M1 challenge"
    );
    assert_eq!(
        count("rampart_mfa_challenges_open", &[]),
        1.0,
        "open until answered"
    );

    let redirect = provider.authenticate(&started.authorize_url, "alice");
    logged_in(finish(&ca, &redirect).expect("finish"));
    assert_eq!(
        count("rampart_mfa_completions_total", &[("outcome", "success")]),
        1.0
    );
    assert_eq!(count("rampart_mfa_challenges_open", &[]), 0.0, "closed");
    assert_eq!(count("rampart_mfa_latency_seconds_count", &[]), 1.0, "M2");
    assert!(
        count("rampart_mfa_latency_seconds_sum", &[]) > 0.0,
        "M2 > 0"
    );

    // A replayed state is a failed answer with its reason.
    finish(&ca, &redirect).expect_err("replayed state");
    assert_eq!(
        count("rampart_mfa_completions_total", &[("outcome", "failure")]),
        1.0
    );
    assert_eq!(
        sum(
            &scrape(metrics),
            "rampart_mfa_errors_total",
            &[("factor", "oidc"), ("reason", "oidc_state_unknown")]
        ),
        1.0
    );
}

/// The login of `account` at the provider bringing `invite`, as the CA judges it.
fn invite_login(
    ca: &Ca,
    provider: &OidcProvider,
    account: &str,
    invite: &str,
) -> Result<OidcFinishResponse, rampart_api::ClientError> {
    let redirect = provider.authenticate(&start(ca, None).authorize_url, account);
    finish_with(ca, &redirect, Some(invite))
}

fn bodies(ca: &Ca, kind: &str) -> Vec<serde_json::Value> {
    AuditDb::new(ca.audit_db()).bodies(kind)
}

/// How many audit events of `kind` the CA has written.
fn audit_count(ca: &Ca, kind: &str) -> usize {
    bodies(ca, kind).len()
}

/// The one `user_idp_linked` event for `user`, which an invite made.
fn linked_by_invite(ca: &Ca, user: &str, subject: &str) {
    let links: Vec<_> = bodies(ca, "user_idp_linked")
        .into_iter()
        .filter(|b| b["user"] == user)
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    let b = &links[0];
    assert_eq!(b["actor"], user, "the user links their own account: {b}");
    assert_eq!(b["details"]["via"], "invite", "{b}");
    assert_eq!(b["details"]["provider"], "corp", "{b}");
    assert_eq!(b["details"]["subject"], subject, "{b}");
}

/// The names `rampart admin user list --json` shows.
fn user_names(admin: &rampart_e2e::cli::Enrolled) -> Vec<String> {
    let out = admin.cli.admin(&["user", "list", "--json"]);
    out.assert_success("rampart admin user list --json");
    let users: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("user JSON");
    users
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn an_invite_redeemed_through_the_provider_links_an_existing_user_once() {
    // bob exists in Rampart; his provider account is linked to nobody. The
    // provider also holds an account of someone else who got hold of the
    // invite afterwards.
    let provider = OidcProvider::start(json!({
        "bob": account(&["ops-team"], &["pwd", "otp"]),
        "trudy": account(&["ops-team"], &["pwd"]),
    }));
    let ca = ca_with_admin_role(&provider, "");
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin.cli.add_user("bob", &["ops-team"]);

    // Unlinked, bob's account is refused; the refusal names both ways in.
    let err = provider_login(&ca, &provider, "bob").expect_err("bob not linked yet");
    assert_eq!(err.api_code(), Some("oidc_account_not_linked"), "{err}");
    assert!(err.to_string().contains("--oidc corp"), "{err}");

    let invite = admin.cli.invite("bob", None);
    let redeemed_before = audit_count(&ca, "invite_redeemed");
    let session = logged_in(invite_login(&ca, &provider, "bob", &invite).expect("bob's invite"));
    assert_eq!(session.user, "bob");
    assert_eq!(session.mfa_method, "oidc");
    linked_by_invite(&ca, "bob", "bob");
    assert_eq!(
        audit_count(&ca, "invite_redeemed"),
        redeemed_before + 1,
        "the invite is spent"
    );

    // The session certifies a key with the provider's evidence.
    let dir = rampart_e2e::tempdir("oidc-invite-key");
    let key = KeyPair::ed25519(dir.path(), "id");
    let cert: CertResponse = ca
        .api()
        .with_token(session.session_token.clone())
        .post_json(
            paths::CERTS,
            &CertRequest {
                public_key: key.public_line(),
                ttl_seconds: None,
            },
        )
        .expect("certificate for bob");
    assert_eq!(cert.principals, ["ops-bob"]);
    let cert_path = dir.path().join("id-cert.pub");
    std::fs::write(&cert_path, format!("{}\n", cert.certificate)).expect("write cert");
    let info = inspect_cert(&cert_path);
    assert_eq!(
        info.extension_value("mfa-idp@rampart").as_deref(),
        Some("corp"),
        "{}",
        info.text
    );

    // From now on bob's account is bob, with no invite.
    let again = logged_in(provider_login(&ca, &provider, "bob").expect("bob, linked"));
    assert_eq!(again.user, "bob");

    // The invite is spent: another (unlinked) account cannot redeem it, and
    // nothing links that account or creates a user for it.
    let err = invite_login(&ca, &provider, "trudy", &invite).expect_err("spent invite");
    assert_eq!(err.api_code(), Some("invite_used"), "{err}");
    assert!(audited(&ca, &["invite_refused", "invite_used"]));
    let err = provider_login(&ca, &provider, "trudy").expect_err("trudy is nobody");
    assert_eq!(err.api_code(), Some("oidc_user_unknown"), "{err}");
    assert!(!user_names(&admin).contains(&"trudy".to_owned()));
    // Nor does it enrol a TOTP.
    let out = rampart_e2e::Cli::new(&ca, "bob")
        .try_enroll(&invite)
        .expect_err("the invite must not enrol a TOTP after the link");
    assert!(out.stderr.contains("used"), "{out}");
}

#[test]
fn a_wrong_or_expired_invite_links_and_creates_nothing_and_is_audited() {
    // JIT is on: a login that brings an invite must still never create a user.
    let provider = OidcProvider::start(json!({
        "bob": account(&["ops-team"], &["pwd"]),
        "newbie": account(&["ops-team"], &["pwd"]),
    }));
    let ca = ca_with_admin_role(&provider, "jit_users = true");
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin.cli.add_user("bob", &["ops-team"]);

    let err = invite_login(&ca, &provider, "bob", "not-an-invite").expect_err("made-up invite");
    assert_eq!(err.api_code(), Some("invite_unknown"), "{err}");
    assert!(audited(&ca, &["invite_refused", "invite_unknown"]));

    let expired = admin.cli.invite("bob", Some("1s"));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let err = invite_login(&ca, &provider, "bob", &expired).expect_err("expired invite");
    assert_eq!(err.api_code(), Some("invite_expired"), "{err}");
    assert!(audited(&ca, &["invite_refused", "invite_expired"]));

    let err = invite_login(&ca, &provider, "newbie", "not-an-invite").expect_err("no JIT");
    assert_eq!(err.api_code(), Some("invite_unknown"), "{err}");
    assert!(
        !user_names(&admin).contains(&"newbie".to_owned()),
        "a login bringing an invite creates no user"
    );
    assert_eq!(audit_count(&ca, "user_idp_linked"), 0, "nothing was linked");
    let err = provider_login(&ca, &provider, "bob").expect_err("bob still unlinked");
    assert_eq!(err.api_code(), Some("oidc_account_not_linked"), "{err}");
}

#[test]
fn an_invite_brought_by_an_account_linked_to_another_user_is_left_unspent() {
    let provider = OidcProvider::start(json!({
        "alice": account(&["ops-team"], &["pwd"]),
        "bob": account(&["ops-team"], &["pwd"]),
    }));
    let ca = ca_with_admin_role(&provider, "");
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin.cli.add_user("alice", &["ops-team"]);
    admin.cli.add_user("bob", &["ops-team"]);
    admin
        .cli
        .admin(&[
            "user",
            "link",
            "alice",
            "--provider",
            "corp",
            "--subject",
            "alice",
        ])
        .assert_success("link alice");

    // alice's account brings bob's invite: she is alice, as linked, and the
    // invite is not touched.
    let invite = admin.cli.invite("bob", None);
    let redeemed_before = audit_count(&ca, "invite_redeemed");
    let session = logged_in(invite_login(&ca, &provider, "alice", &invite).expect("alice"));
    assert_eq!(session.user, "alice");
    assert_eq!(audit_count(&ca, "invite_redeemed"), redeemed_before);
    assert!(!audited(&ca, &["invite_refused"]), "nothing refused either");

    // So bob can still redeem it.
    let session = logged_in(invite_login(&ca, &provider, "bob", &invite).expect("bob"));
    assert_eq!(session.user, "bob");
    assert_eq!(audit_count(&ca, "invite_redeemed"), redeemed_before + 1);
}

#[test]
fn an_invite_for_a_user_linked_to_another_account_is_refused_and_audited() {
    let provider = OidcProvider::start(json!({
        "bob": account(&["ops-team"], &["pwd"]),
        "mallory": account(&["ops-team"], &["pwd"]),
    }));
    let ca = ca_with_admin_role(&provider, "");
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin.cli.add_user("bob", &["ops-team"]);
    admin
        .cli
        .admin(&[
            "user",
            "link",
            "bob",
            "--provider",
            "corp",
            "--subject",
            "bob",
        ])
        .assert_success("link bob");

    // An invite does not move a link: only an admin removes one.
    let invite = admin.cli.invite("bob", None);
    let err = invite_login(&ca, &provider, "mallory", &invite).expect_err("bob is linked");
    assert_eq!(err.api_code(), Some("oidc_user_linked"), "{err}");
    assert!(
        err.to_string()
            .contains("rampart admin user link bob --provider corp --unlink"),
        "{err}"
    );
    assert!(audited(
        &ca,
        &["invite_refused", "oidc_user_linked", "bob", "mallory"]
    ));
    assert_eq!(
        audit_count(&ca, "user_idp_linked"),
        1,
        "only the admin's link"
    );
    let err = provider_login(&ca, &provider, "mallory").expect_err("mallory unlinked");
    assert_eq!(err.api_code(), Some("oidc_user_unknown"), "{err}");
    let session = logged_in(provider_login(&ca, &provider, "bob").expect("bob"));
    assert_eq!(session.user, "bob");
}

#[test]
fn a_disabled_users_invite_is_refused_through_the_provider() {
    let provider = OidcProvider::start(json!({ "bob": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with_admin_role(&provider, "");
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin.cli.add_user("bob", &["ops-team"]);
    let invite = admin.cli.invite("bob", None);
    admin
        .cli
        .admin(&["user", "disable", "bob"])
        .assert_success("disable bob");

    let err = invite_login(&ca, &provider, "bob", &invite).expect_err("bob is disabled");
    assert_eq!(err.api_code(), Some("user_disabled"), "{err}");
    assert!(audited(&ca, &["invite_refused", "user_disabled", "bob"]));
    assert_eq!(audit_count(&ca, "user_idp_linked"), 0, "nothing was linked");
    admin
        .cli
        .admin(&["user", "enable", "bob"])
        .assert_success("enable bob");
    let err = provider_login(&ca, &provider, "bob").expect_err("bob unlinked");
    assert_eq!(err.api_code(), Some("oidc_account_not_linked"), "{err}");
}

/// Run a `rampart` command that logs in at the provider, acting as the
/// browser for `account`: `device` picks the device grant (the command prints
/// a URI and a code) over the browser redirect. Returns (success, stdout,
/// stderr).
fn with_scripted_browser(
    mut cmd: std::process::Command,
    provider: &OidcProvider,
    account: &str,
    device: bool,
) -> (bool, String, String) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn rampart");
    let stdout = rampart_e2e::process::drain(child.stdout.take().expect("stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    let err_log = std::thread::spawn(move || {
        let mut all = String::new();
        let mut url = None;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.trim_start().starts_with("http://") && url.is_none() {
                url = Some(line.trim().to_owned());
                if !device {
                    let _ = tx.send((line.trim().to_owned(), String::new()));
                }
            }
            if let Some(code) = line.strip_prefix("and enter the code: ") {
                let _ = tx.send((url.clone().unwrap_or_default(), code.trim().to_owned()));
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let (url, user_code) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("rampart prints the provider URL");
    assert!(url.starts_with(&provider.issuer()), "{url}");
    if device {
        provider.approve_device(&url, &user_code, account);
    } else {
        let redirect = provider.authenticate(&url, account);
        assert_eq!(redirect.host_str(), Some("127.0.0.1"));
        let page = reqwest::blocking::get(redirect.as_str()).expect("deliver the code to the CLI");
        assert!(page.status().is_success(), "{}", page.status());
    }
    let status = rampart_e2e::process::wait_deadline(
        &mut child,
        std::time::Duration::from_secs(90),
        "rampart with a scripted browser",
    );
    (
        status.success(),
        stdout.join().unwrap_or_default(),
        err_log.join().unwrap_or_default(),
    )
}

#[test]
fn rampart_enroll_with_oidc_redeems_the_admins_invite_and_logs_in() {
    let provider = OidcProvider::start(json!({ "bob": account(&["ops-team"], &["pwd", "otp"]) }));
    let ca = ca_with_admin_role(&provider, "");
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin.cli.add_user("bob", &["ops-team"]);

    // The admin's invite prints the line to send, with --oidc.
    let out = admin.cli.admin(&["invite", "bob", "--oidc", "corp"]);
    out.assert_success("rampart admin invite --oidc");
    let line = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("rampart enroll "))
        .unwrap_or_else(|| panic!("no enroll line\n{out}"));
    assert!(line.ends_with("--oidc corp"), "{line}");
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    for w in [
        "--ca",
        ca.url(),
        "--ca-fingerprint",
        ca.fingerprint(),
        "--invite",
    ] {
        assert!(words.contains(&w), "{w} missing from {line}");
    }

    // bob runs it as given (printing the URL instead of opening a browser).
    let bob = rampart_e2e::Cli::new(&ca, "bob");
    let mut cmd = bob.command();
    cmd.args(&words).arg("--no-browser");
    let (ok, out, err) = with_scripted_browser(cmd, &provider, "bob", false);
    assert!(ok, "rampart enroll --oidc failed\n{out}\n{err}");
    assert!(out.contains("corp account is linked to bob"), "{out}");
    assert!(out.contains("Logged in as bob (oidc)"), "{out}");
    linked_by_invite(&ca, "bob", "bob");
    let info = inspect_cert(&bob.cert());
    assert_eq!(info.principals, ["ops-bob"], "{}", info.text);
    assert_eq!(
        info.extension_value("mfa-idp@rampart").as_deref(),
        Some("corp"),
        "{}",
        info.text
    );
    // The CA, its pin and the user are saved: later commands need no flags.
    let config = std::fs::read_to_string(bob.home().join("config.toml")).expect("config.toml");
    assert!(config.contains(ca.url()), "{config}");
    assert!(config.contains(ca.fingerprint()), "{config}");
    assert!(config.contains("\"bob\""), "{config}");
    bob.run(&["status"], None).assert_success("rampart status");
}

#[test]
fn rampart_enroll_with_oidc_device_grant_redeems_the_invite() {
    let provider = OidcProvider::start(json!({ "bob": account(&["ops-team"], &["pwd"]) }));
    let ca = ca_with_admin_role(&provider, "");
    let admin = rampart_e2e::cli::bootstrap_admin(&ca);
    admin.cli.add_user("bob", &["ops-team"]);
    let invite = admin.cli.invite("bob", None);

    let bob = rampart_e2e::Cli::new(&ca, "bob");
    let mut cmd = bob.command();
    cmd.args([
        "enroll",
        "--ca",
        ca.url(),
        "--ca-fingerprint",
        ca.fingerprint(),
        "--invite",
        &invite,
        "--oidc",
        "corp",
        "--device",
    ]);
    let (ok, out, err) = with_scripted_browser(cmd, &provider, "bob", true);
    assert!(ok, "rampart enroll --oidc --device failed\n{out}\n{err}");
    assert!(out.contains("Logged in as bob (oidc)"), "{out}");
    linked_by_invite(&ca, "bob", "bob");
    assert_eq!(inspect_cert(&bob.cert()).principals, ["ops-bob"]);
    // Spent: TOTP enrolment with it is refused.
    rampart_e2e::Cli::with_home(&ca, "bob", ca.root().join("home-bob-totp"))
        .try_enroll(&invite)
        .expect_err("spent invite");
}
