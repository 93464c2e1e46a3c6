//! The hardware-key factor, driven through the authority with real WebAuthn
//! credentials and assertions from webauthn-authenticator-rs's software token:
//! enrolment from an invite and from a session, login (CTAP2 `FINISH` and the
//! page + `WAIT` path), certificate evidence, keys listing and removal, bastion
//! approvals, and every refusal the issue names — each refused, audited, and
//! nothing issued.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use rampart_api as api;
use rampart_api::webauthn as wapi;
use rampart_ca::authority::bastion::Bastion;
use rampart_ca::authority::webauthn::{PageState, WaitState};
use rampart_ca::authority::{Caller, Session};
use rampart_ca::clock::Clock;
use rampart_ca::config::Limits;
use rampart_ca::store::BastionRecord;
use rampart_ca::webauthn::{RawWebauthn, RelyingParty, Settings, UserVerification};
use rampart_ca::CaError;
use rampart_signer::FileCaKey;
use reqwest::Url;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_core::proto::{CreationChallengeResponse, RequestChallengeResponse};

const POLICY: &str = r#"
version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{user}"]
min_factor = "otp"
targets = { allow = ["db-*"] }

[roles.prod]
principals = ["root"]
min_factor = "phishing-resistant"
targets = { allow = ["db-*"] }

# Security keys only from the user's own machine (CTAP2), never approved
# through a link; per-session checks at the bastion then have to be TOTP codes.
[roles.desk]
principals = ["deploy"]
min_factor = "otp"
webauthn_link = false
access = "bastion"
session_mfa = true
targets = { allow = ["app-*"] }

[groups]
engineers = ["dev"]
sre = ["prod"]
desk = ["desk"]

[bastions.bastion-1]
targets = ["db-*", "app-*"]

[bastions.bastion-2]
targets = ["db-*"]
"#;

/// The software token's AAGUID (webauthn-authenticator-rs `softtoken::AAGUID`).
const SOFT_AAGUID: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";
const ORIGIN: &str = "https://localhost:8443";

type Fixture = common::TestAuthority;

fn settings(f: impl FnOnce(&mut RawWebauthn)) -> Settings {
    let mut raw = RawWebauthn::default();
    f(&mut raw);
    rampart_ca::webauthn::validate(&raw, "127.0.0.1:8443".parse().unwrap()).unwrap()
}

fn fixture_with(limits: Limits, s: Settings) -> Fixture {
    let t = common::authority(POLICY, limits, None);
    t.auth.set_webauthn(RelyingParty::new(s).unwrap());
    t
}

fn fixture() -> Fixture {
    fixture_with(Limits::default(), settings(|_| {}))
}

fn token() -> SoftToken {
    SoftToken::new(false).unwrap().0
}

/// A software token that claims user verification without any PIN: exactly
/// what a software authenticator claiming UV looks like to the CA. (It reports
/// UV only where the CA requires it: see [`uv_fixture`].)
fn uv_token() -> SoftToken {
    SoftToken::new(true).unwrap().0
}

/// A CA requiring user verification, plus `f`'s settings: the software token
/// then reports UV.
fn uv_settings(f: impl FnOnce(&mut RawWebauthn)) -> Settings {
    settings(|r| {
        r.user_verification = UserVerification::Required;
        f(r)
    })
}

fn uv_fixture() -> Fixture {
    fixture_with(Limits::default(), uv_settings(|_| {}))
}

/// A key's registration answer to `started` (a `direct` start), at `origin`.
fn register_answer(
    token: &mut SoftToken,
    started: &wapi::CeremonyStarted,
    at: &str,
) -> serde_json::Value {
    let ccr: CreationChallengeResponse =
        serde_json::from_value(started.public_key.clone().unwrap()).unwrap();
    let reg = token.do_registration(Url::parse(at).unwrap(), ccr).unwrap();
    serde_json::to_value(reg).unwrap()
}

/// A key's assertion for request options `options` (`{"publicKey": …}`).
fn assertion(token: &mut SoftToken, options: serde_json::Value, at: &str) -> serde_json::Value {
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let a = token
        .do_authentication(Url::parse(at).unwrap(), rcr)
        .unwrap();
    serde_json::to_value(a).unwrap()
}

impl Fixture {
    /// Security-key requests the store keeps (the CA's requests in progress).
    fn requests_kept(&self) -> i64 {
        rusqlite::Connection::open(self.dir.path().join("ca.db"))
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM pending WHERE kind = 'webauthn_request'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn user(&self, name: &str, groups: &[&str], admin: bool) -> api::WireSecret {
        self.auth
            .create_user(
                None,
                None,
                &api::CreateUserRequest {
                    name: name.into(),
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                    admin,
                },
            )
            .unwrap();
        self.auth
            .create_invite(
                None,
                None,
                &api::InviteRequest {
                    user: name.into(),
                    ttl_seconds: None,
                },
            )
            .unwrap()
            .code
    }

    fn register_start(&self, invite: &str, name: &str) -> Result<wapi::CeremonyStarted, CaError> {
        self.auth.webauthn_register_start(
            &self.caller,
            None,
            &wapi::RegisterStartRequest {
                invite: Some(invite.into()),
                name: name.into(),
                direct: true,
                replaces: None,
            },
        )
    }

    fn finish(
        &self,
        started: &wapi::CeremonyStarted,
        credential: serde_json::Value,
    ) -> Result<wapi::CeremonyOutcome, CaError> {
        self.auth.webauthn_finish(
            &self.caller,
            &wapi::FinishRequest {
                request_id: started.request_id.clone(),
                poll_token: started.poll_token.clone(),
                credential,
            },
        )
    }

    /// A user with one enrolled key (from an invite, CTAP2 path).
    fn enrolled(
        &self,
        name: &str,
        groups: &[&str],
        admin: bool,
    ) -> (SoftToken, wapi::WebauthnKey, Vec<api::WireSecret>) {
        self.enrolled_with(name, groups, admin, token())
    }

    /// [`Fixture::enrolled`] with the token `t` (e.g. one that verifies the user).
    fn enrolled_with(
        &self,
        name: &str,
        groups: &[&str],
        admin: bool,
        mut t: SoftToken,
    ) -> (SoftToken, wapi::WebauthnKey, Vec<api::WireSecret>) {
        let invite = self.user(name, groups, admin);
        let started = self.register_start(invite.expose(), "blue").unwrap();
        let answer = register_answer(&mut t, &started, ORIGIN);
        match self.finish(&started, answer).unwrap() {
            wapi::CeremonyOutcome::Registered {
                user,
                key,
                recovery_codes,
            } => {
                assert_eq!(user, name);
                (t, key, recovery_codes)
            }
            other => panic!("{other:?}"),
        }
    }

    fn login_start(&self, user: &str, direct: bool) -> Result<wapi::CeremonyStarted, CaError> {
        self.auth.webauthn_login_start(
            &self.caller,
            &wapi::LoginStartRequest {
                user: user.into(),
                direct,
            },
        )
    }

    /// CTAP2 login with `t`.
    fn login(&self, user: &str, t: &mut SoftToken) -> Result<api::LoginResponse, CaError> {
        let started = self.login_start(user, true)?;
        let a = assertion(t, started.public_key.clone().unwrap(), ORIGIN);
        match self.finish(&started, a)? {
            wapi::CeremonyOutcome::LoggedIn { login } => Ok(login),
            other => panic!("{other:?}"),
        }
    }

    fn cert(&self, token: &str) -> Result<api::CertResponse, CaError> {
        let session = self.auth.authenticate(token)?;
        let key = FileCaKey::generate("subject").unwrap();
        let cert = self.auth.issue_user_cert(
            &self.caller,
            &session,
            &api::CertRequest {
                public_key: key.private_key().public_key().to_openssh().unwrap(),
                ttl_seconds: None,
            },
        )?;
        common::remember_key(&cert.certificate, key.private_key());
        Ok(cert)
    }

    fn events(&self) -> Vec<rampart_audit::Event> {
        self.auth
            .audit_log()
            .query(&rampart_audit::Query::default())
            .unwrap()
    }

    /// The last event of `kind`.
    fn last(&self, kind: &str) -> rampart_audit::Event {
        self.events()
            .into_iter()
            .rev()
            .find(|e| e.kind.as_str() == kind)
            .unwrap_or_else(|| panic!("no {kind} event"))
    }

    /// The keys the session's own user holds, as `GET /v1/webauthn/keys` lists them.
    fn own_keys(&self, session: &Session) -> Vec<wapi::WebauthnKey> {
        self.auth
            .webauthn_list_keys(&self.caller, session, None)
            .unwrap()
    }

    /// As the browser does: sign the challenge `started`'s page offers with `t`
    /// and post the answer from the page. Returns the signed answer (to replay
    /// it) and the page's verdict (`logged_in`, `approved`, ...).
    fn answer_on_page(
        &self,
        t: &mut SoftToken,
        started: &wapi::CeremonyStarted,
    ) -> (serde_json::Value, &'static str) {
        let options = self
            .auth
            .webauthn_page_options(&self.caller, &started.request_id, &started.short_code)
            .unwrap();
        let a = assertion(t, options, ORIGIN);
        let verdict = self
            .auth
            .webauthn_page_answer(&self.caller, &started.request_id, &a)
            .unwrap();
        (a, verdict)
    }

    /// Assert that the last event of `kind` gives `reason` (a refusal's code).
    fn assert_last_reason(&self, kind: &str, reason: &str) {
        assert_eq!(
            self.last(kind).reason.as_deref(),
            Some(reason),
            "the last {kind} event's reason"
        );
    }

    fn count(&self, kind: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.kind.as_str() == kind)
            .count()
    }

    fn poll(&self, started: &wapi::CeremonyStarted) -> Result<WaitState, CaError> {
        self.auth.webauthn_poll(
            &self.caller,
            &wapi::WaitRequest {
                request_id: started.request_id.clone(),
                poll_token: started.poll_token.clone(),
            },
            None,
        )
    }
}

fn ext(cert: &api::CertResponse, name: &str) -> Option<String> {
    ssh_key::Certificate::from_openssh(&cert.certificate)
        .unwrap()
        .extensions()
        .get(name)
        .cloned()
}

#[test]
fn enrol_from_invite_then_login_gives_a_certificate_with_key_evidence() {
    let f = fixture();
    let (mut t, key, recovery) = f.enrolled("alice", &["engineers", "sre"], false);
    assert_eq!(
        recovery.len(),
        10,
        "a first factor comes with recovery codes"
    );
    assert_eq!(key.aaguid, SOFT_AAGUID);
    assert_eq!(key.name, "blue");
    assert_eq!(key.attestation_format, "packed");
    assert!(key.disabled_reason.is_none());
    let enrolled = f.last("webauthn_key_enrolled");
    assert_eq!(enrolled.user.as_deref(), Some("alice"));
    assert_eq!(enrolled.details["aaguid"], SOFT_AAGUID);
    assert_eq!(enrolled.details["via"], "invite");
    assert_eq!(f.count("recovery_codes_issued"), 1);

    let login = f.login("alice", &mut t).unwrap();
    assert_eq!(login.mfa_method, "webauthn");
    let ok = f.last("mfa_succeeded");
    assert_eq!(ok.mfa_method.as_deref(), Some("webauthn"));
    assert_eq!(ok.id.to_string(), login.mfa_event);

    // The soft token does not verify the user: UV = no, so the phishing-resistant
    // role is not granted, but the OTP-strength one is.
    let cert = f.cert(login.session_token.expose()).unwrap();
    assert_eq!(
        ext(&cert, "mfa-method@rampart").as_deref(),
        Some("webauthn")
    );
    assert_eq!(ext(&cert, wapi::EXT_MFA_UV).as_deref(), Some("no"));
    assert_eq!(
        ext(&cert, wapi::EXT_MFA_AAGUID).as_deref(),
        Some(SOFT_AAGUID)
    );
    assert_eq!(cert.principals, vec!["alice".to_string()]);

    // The key's counter and last use moved.
    let session = f.auth.authenticate(login.session_token.expose()).unwrap();
    let keys = f.own_keys(&session);
    assert_eq!(keys.len(), 1);
    assert!(keys[0].sign_count > key.sign_count);
    assert!(keys[0].last_used_at.is_some());
}

#[test]
fn browser_page_path_login_is_collected_by_wait_once() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("bob", &["engineers"], false);
    let started = f.login_start("bob", false).unwrap();
    assert!(
        started.public_key.is_none(),
        "browser requests carry no options"
    );
    assert!(started
        .url
        .starts_with("https://localhost:8443/webauthn/r/"));
    let page = f.auth.webauthn_page(&started.request_id).unwrap().unwrap();
    assert_eq!(page.user, "bob");
    assert_eq!(page.requested_from, f.caller.network());
    assert_eq!(page.state, PageState::Open);
    assert!(matches!(
        f.poll(&started).unwrap(),
        WaitState::Pending { .. }
    ));

    let (a, verdict) = f.answer_on_page(&mut t, &started);
    assert_eq!(verdict, "logged_in");
    // A second answer to the same challenge is a replay: refused, audited.
    let err = f
        .auth
        .webauthn_page_answer(&f.caller, &started.request_id, &a)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_replayed");
    f.assert_last_reason("mfa_failed", "webauthn_replayed");
    let page = f.auth.webauthn_page(&started.request_id).unwrap().unwrap();
    assert_eq!(page.state, PageState::Finished);

    let login = match f.poll(&started).unwrap() {
        WaitState::Ready(wapi::CeremonyOutcome::LoggedIn { login }) => login,
        other => panic!("{other:?}"),
    };
    assert_eq!(login.user, "bob");
    f.auth.authenticate(login.session_token.expose()).unwrap();
    // The session token is handed out once.
    assert_eq!(
        f.poll(&started).unwrap_err().code(),
        "webauthn_request_unknown"
    );
    // A wrong poll token learns nothing.
    let mut other = started.clone();
    other.poll_token = "guess".into();
    assert_eq!(
        f.poll(&other).unwrap_err().code(),
        "webauthn_request_unknown"
    );
}

#[test]
fn a_replayed_assertion_for_a_new_challenge_is_refused() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("carol", &["engineers"], false);
    let first = f.login_start("carol", true).unwrap();
    let a = assertion(&mut t, first.public_key.clone().unwrap(), ORIGIN);
    f.finish(&first, a.clone()).unwrap();
    // The same FINISH again: its challenge is used.
    assert_eq!(
        f.finish(&first, a.clone()).unwrap_err().code(),
        "webauthn_replayed"
    );
    f.assert_last_reason("mfa_failed", "webauthn_replayed");
    // The old assertion against a fresh challenge.
    let second = f.login_start("carol", true).unwrap();
    let err = f.finish(&second, a).unwrap_err();
    assert_eq!(err.code(), "webauthn_challenge_mismatch");
    f.assert_last_reason("mfa_failed", "webauthn_challenge_mismatch");
    let failed = f.last("mfa_failed");
    assert_eq!(failed.user.as_deref(), Some("carol"));
    assert_eq!(
        f.count("session_created"),
        1,
        "nothing issued for the replay"
    );
}

#[test]
fn an_expired_challenge_is_refused_and_audited() {
    let f = fixture_with(
        Limits::default(),
        settings(|r| r.challenge_ttl = Some("30s".into())),
    );
    let (mut t, _, _) = f.enrolled("dave", &["engineers"], false);
    let started = f.login_start("dave", true).unwrap();
    let a = assertion(&mut t, started.public_key.clone().unwrap(), ORIGIN);
    f.clock.advance(chrono::Duration::seconds(31));
    let err = f.finish(&started, a).unwrap_err();
    assert_eq!(err.code(), "webauthn_request_expired");
    f.assert_last_reason("mfa_failed", "webauthn_request_expired");
    assert_eq!(f.count("session_created"), 0);

    // Nobody answered another one: WAIT says expired (audited once).
    let idle = f.login_start("dave", false).unwrap();
    f.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(
        f.poll(&idle).unwrap_err().code(),
        "webauthn_request_expired"
    );
    let page = f.auth.webauthn_page(&idle.request_id).unwrap();
    assert!(page.is_none() || page.unwrap().state == PageState::Expired);
}

/// A page opened in time and left open past the request's end: once the
/// starter's `WAIT` has recorded the expiry, the page's buttons say "expired" —
/// never "already answered", which tells the user someone else answered their
/// request — and a late answer is audited as expired, not as a replay.
#[test]
fn a_page_left_open_past_its_expiry_says_expired_not_answered() {
    let f = fixture_with(
        Limits::default(),
        settings(|r| r.challenge_ttl = Some("30s".into())),
    );
    let (mut t, _, _) = f.enrolled("erin", &["engineers"], false);
    let started = f.login_start("erin", false).unwrap();
    let options = f
        .auth
        .webauthn_page_options(&f.caller, &started.request_id, &started.short_code)
        .unwrap();
    // The key signs in time; the answer is posted too late.
    let late = assertion(&mut t, options, ORIGIN);
    f.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(
        f.poll(&started).unwrap_err().code(),
        "webauthn_request_expired"
    );
    let page = f.auth.webauthn_page(&started.request_id).unwrap().unwrap();
    assert_eq!(page.state, PageState::Expired);

    let err = f
        .auth
        .webauthn_page_options(&f.caller, &started.request_id, &started.short_code)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_request_expired", "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(!err.to_string().contains("already answered"), "{err}");

    let err = f
        .auth
        .webauthn_page_deny(&f.caller, &started.request_id)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_request_expired", "{err}");

    let failed_before = f.count("mfa_failed");
    let err = f
        .auth
        .webauthn_page_answer(&f.caller, &started.request_id, &late)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_request_expired", "{err}");
    f.assert_last_reason("mfa_failed", "webauthn_request_expired");
    assert_eq!(
        f.count("mfa_failed"),
        failed_before + 1,
        "the late answer is audited once"
    );
    assert_eq!(f.count("session_created"), 0);
    // The starter hears of it again, and the page still says expired.
    assert_eq!(
        f.poll(&started).unwrap_err().code(),
        "webauthn_request_expired"
    );
    let page = f.auth.webauthn_page(&started.request_id).unwrap().unwrap();
    assert_eq!(page.state, PageState::Expired);

    // A request that was answered still says so.
    let answered = f.login_start("erin", false).unwrap();
    f.answer_on_page(&mut t, &answered);
    let err = f
        .auth
        .webauthn_page_options(&f.caller, &answered.request_id, &answered.short_code)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_request_finished", "{err}");
}

#[test]
fn another_users_credential_is_refused() {
    let f = fixture();
    let (_alice_t, _, _) = f.enrolled("alice", &["engineers"], false);
    let (mut bob_t, _, _) = f.enrolled("bob", &["engineers"], false);
    // Bob's key answers a challenge issued for Alice's login (Bob asked for a
    // login of his own to get options his key will sign).
    let alice_req = f.login_start("alice", true).unwrap();
    let bob_req = f.login_start("bob", true).unwrap();
    let mut opts = bob_req.public_key.clone().unwrap();
    opts["publicKey"]["challenge"] =
        alice_req.public_key.clone().unwrap()["publicKey"]["challenge"].clone();
    let a = assertion(&mut bob_t, opts, ORIGIN);
    let err = f.finish(&alice_req, a).unwrap_err();
    assert_eq!(err.code(), "webauthn_foreign_credential");
    let failed = f.last("mfa_failed");
    assert_eq!(failed.user.as_deref(), Some("alice"));
    assert_eq!(failed.details["key_owner"], "bob");
    assert_eq!(f.count("session_created"), 0);
}

#[test]
fn a_sign_count_going_backwards_disables_the_key() {
    let f = fixture();
    let (mut t, key, _) = f.enrolled("erin", &["engineers"], false);
    let copy = t.to_cbor().unwrap();
    f.login("erin", &mut t).unwrap();
    // The clone still has the old counter.
    let mut clone = SoftToken::from_cbor(&copy).unwrap();
    let err = f.login("erin", &mut clone).unwrap_err();
    assert_eq!(err.code(), "webauthn_sign_count");
    let cloned = f.last("webauthn_key_cloned");
    assert_eq!(cloned.severity.as_str(), "high");
    assert_eq!(cloned.details["key_id"], key.id.as_str());
    assert!(cloned.details["presented_count"].as_u64() <= cloned.details["stored_count"].as_u64());
    assert_eq!(f.count("session_created"), 1);
    // The key is disabled: even the genuine one cannot log in any more.
    assert_eq!(
        f.login("erin", &mut t).unwrap_err().code(),
        "webauthn_no_keys"
    );
}

#[test]
fn missing_user_verification_is_refused_where_required() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("frank", &["engineers"], false);
    f.auth.set_webauthn(
        RelyingParty::new(settings(|r| {
            r.user_verification = UserVerification::Required
        }))
        .unwrap(),
    );
    let err = f.login("frank", &mut t).unwrap_err();
    assert_eq!(err.code(), "webauthn_uv_missing");
    f.assert_last_reason("mfa_failed", "webauthn_uv_missing");
    assert_eq!(f.count("session_created"), 0);
}

#[test]
fn an_aaguid_outside_the_policy_cannot_enrol() {
    let f = fixture_with(
        Limits::default(),
        settings(|r| r.allowed_aaguids = vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".into()]),
    );
    let invite = f.user("gina", &["engineers"], false);
    let mut t = token();
    let started = f.register_start(invite.expose(), "blue").unwrap();
    let answer = register_answer(&mut t, &started, ORIGIN);
    let err = f.finish(&started, answer).unwrap_err();
    assert_eq!(err.code(), "webauthn_aaguid_not_allowed");
    f.assert_last_reason("webauthn_enrolment_refused", "webauthn_aaguid_not_allowed");
    let refused = f.last("webauthn_enrolment_refused");
    assert_eq!(refused.details["aaguid"], SOFT_AAGUID);
    assert_eq!(f.count("webauthn_key_enrolled"), 0);
}

#[test]
fn a_wrong_origin_is_refused() {
    let f = fixture();
    let invite = f.user("hank", &["engineers"], false);
    let mut t = token();
    let started = f.register_start(invite.expose(), "blue").unwrap();
    let answer = register_answer(&mut t, &started, "https://localhost:9999");
    assert_eq!(
        f.finish(&started, answer).unwrap_err().code(),
        "webauthn_wrong_origin"
    );
    f.assert_last_reason("webauthn_enrolment_refused", "webauthn_wrong_origin");

    let (mut t, _, _) = f.enrolled("ivan", &["engineers"], false);
    let started = f.login_start("ivan", true).unwrap();
    let a = assertion(
        &mut t,
        started.public_key.clone().unwrap(),
        "https://localhost:9999",
    );
    assert_eq!(
        f.finish(&started, a).unwrap_err().code(),
        "webauthn_wrong_origin"
    );
    f.assert_last_reason("mfa_failed", "webauthn_wrong_origin");
    assert_eq!(f.count("session_created"), 0);
}

#[test]
fn deny_on_the_page_refuses_the_waiting_starter() {
    let f = fixture();
    let (_t, _, _) = f.enrolled("jane", &["engineers"], false);
    let started = f.login_start("jane", false).unwrap();
    f.auth
        .webauthn_page_deny(&f.caller, &started.request_id)
        .unwrap();
    let err = f.poll(&started).unwrap_err();
    assert_eq!(err.code(), "webauthn_denied");
    assert!(matches!(err, CaError::Forbidden { .. }));
    f.assert_last_reason("mfa_failed", "webauthn_denied");
}

#[test]
fn failures_count_toward_the_lockout() {
    let f = fixture_with(
        {
            let mut limits = Limits::default();
            limits.attempts.max_failures = 2;
            limits
        },
        settings(|_| {}),
    );
    let (mut t, _, _) = f.enrolled("kim", &["engineers"], false);
    for _ in 0..2 {
        let started = f.login_start("kim", true).unwrap();
        let a = assertion(
            &mut t,
            started.public_key.clone().unwrap(),
            "https://localhost:9999",
        );
        f.finish(&started, a).unwrap_err();
    }
    assert_eq!(f.count("mfa_locked_out"), 1);
    assert_eq!(
        f.login_start("kim", true).unwrap_err().code(),
        "user_locked"
    );
}

#[test]
fn keys_are_listed_added_and_removed_with_audit() {
    // Keys that verify the user: a key session may then add another key.
    let f = uv_fixture();
    let (mut t, key, _) = f.enrolled_with("lena", &["engineers"], false, uv_token());
    let (mut admin_t, _, _) = f.enrolled_with("root_admin", &["engineers"], true, uv_token());
    let login = f.login("lena", &mut t).unwrap();
    let session = f.auth.authenticate(login.session_token.expose()).unwrap();

    // A second key from the session: no recovery codes this time.
    let started = f
        .auth
        .webauthn_register_start(
            &f.caller,
            Some(&session),
            &wapi::RegisterStartRequest {
                invite: None,
                name: "green".into(),
                direct: true,
                replaces: None,
            },
        )
        .unwrap();
    let mut t2 = uv_token();
    let answer = register_answer(&mut t2, &started, ORIGIN);
    match f.finish(&started, answer).unwrap() {
        wapi::CeremonyOutcome::Registered {
            recovery_codes,
            key,
            ..
        } => {
            assert!(recovery_codes.is_empty());
            assert_eq!(key.name, "green");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.last("webauthn_key_enrolled").details["via"], "session");
    // The same name twice is refused up front.
    let dup = f.auth.webauthn_register_start(
        &f.caller,
        Some(&session),
        &wapi::RegisterStartRequest {
            invite: None,
            name: "green".into(),
            direct: true,
            replaces: None,
        },
    );
    assert_eq!(dup.unwrap_err().code(), "webauthn_key_name_taken");

    assert_eq!(f.own_keys(&session).len(), 2);
    // Not an admin: nobody else's keys.
    assert_eq!(
        f.auth
            .webauthn_list_keys(&f.caller, &session, Some("root_admin"))
            .unwrap_err()
            .code(),
        "not_admin"
    );
    // An admin lists and removes them.
    let admin_login = f.login("root_admin", &mut admin_t).unwrap();
    let admin = f
        .auth
        .authenticate(admin_login.session_token.expose())
        .unwrap();
    let listed = f
        .auth
        .webauthn_list_keys(&f.caller, &admin, Some("lena"))
        .unwrap();
    assert_eq!(listed.len(), 2);
    let removed = f
        .auth
        .webauthn_remove_key(
            &f.caller,
            &admin,
            &wapi::KeyRemoveRequest {
                user: "lena".into(),
                id: key.id.clone(),
            },
        )
        .unwrap();
    assert_eq!(removed.id, key.id);
    let ev = f.last("webauthn_key_removed");
    assert_eq!(ev.actor.as_deref(), Some("root_admin"));
    assert_eq!(ev.user.as_deref(), Some("lena"));
    // The removed key is no longer offered; the other one logs in.
    let started = f.login_start("lena", true).unwrap();
    let allowed = started.public_key.unwrap()["publicKey"]["allowCredentials"].clone();
    assert_eq!(allowed.as_array().unwrap().len(), 1);
    assert_ne!(allowed[0]["id"], key.credential_id.as_str());
    f.login("lena", &mut t2).unwrap();
    // The owner removes their own key.
    let green = f.own_keys(&session)[0].clone();
    f.auth
        .webauthn_remove_key(
            &f.caller,
            &session,
            &wapi::KeyRemoveRequest {
                user: "lena".into(),
                id: green.id,
            },
        )
        .unwrap();
    assert!(f.own_keys(&session).is_empty());
}

#[test]
fn a_bastion_approval_is_approved_once_for_its_session() {
    let f = fixture();
    let (mut t, key, _) = f.enrolled("mia", &["sre"], false);
    let bastion = Bastion {
        record: BastionRecord {
            name: "bastion-1".into(),
            host_key_fingerprint: "SHA256:x".into(),
            joined_at: common::start(),
        },
    };
    let started = f
        .auth
        .webauthn_approval_start(
            &f.caller,
            &bastion,
            &wapi::BastionApprovalStartRequest {
                user: "mia".into(),
                session_id: "s-1".into(),
                target: "db-1".into(),
                login: "root".into(),
            },
        )
        .unwrap();
    let page = f.auth.webauthn_page(&started.request_id).unwrap().unwrap();
    assert_eq!(page.kind, "approval");
    assert!(page.what.contains("root@db-1"), "{}", page.what);
    let wait = wapi::WaitRequest {
        request_id: started.request_id.clone(),
        poll_token: started.poll_token.clone(),
    };
    // The user's WAIT cannot see a bastion's request, nor can another bastion.
    assert!(f.auth.webauthn_poll(&f.caller, &wait, None).is_err());
    assert!(f
        .auth
        .webauthn_poll(&f.caller, &wait, Some("bastion-2"))
        .is_err());
    let (_, verdict) = f.answer_on_page(&mut t, &started);
    assert_eq!(verdict, "approved");
    let outcome = match f
        .auth
        .webauthn_poll(&f.caller, &wait, Some("bastion-1"))
        .unwrap()
    {
        WaitState::Ready(o) => o,
        other => panic!("{other:?}"),
    };
    let wapi::CeremonyOutcome::Approved {
        mfa_event,
        aaguid,
        user_verified,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(aaguid, key.aaguid);
    assert!(!user_verified);
    let ok = f.last("mfa_succeeded");
    assert_eq!(ok.id.to_string(), mfa_event);
    assert_eq!(ok.session.as_deref(), Some("s-1"));
    assert_eq!(ok.actor.as_deref(), Some("bastion:bastion-1"));

    // The certificate path consumes it once, for that user, session, target
    // and login only: what the page showed is what the approval is good for.
    let take = |bastion: &str, user: &str, session: &str, target: &str, login: &str| {
        f.auth
            .take_webauthn_approval(bastion, &wait, user, session, target, login)
            .unwrap()
    };
    for (bastion, user, session, target, login) in [
        ("bastion-1", "mia", "s-2", "db-1", "root"),
        ("bastion-2", "mia", "s-1", "db-1", "root"),
        ("bastion-1", "max", "s-1", "db-1", "root"),
        ("bastion-1", "mia", "s-1", "db-prod", "root"),
        ("bastion-1", "mia", "s-1", "db-1", "postgres"),
    ] {
        let refused = take(bastion, user, session, target, login).unwrap_err();
        assert_eq!(refused.0, "webauthn_approval_mismatch", "{target} {login}");
    }
    let ev = take("bastion-1", "mia", "s-1", "db-1", "root").unwrap();
    assert_eq!(ev.mfa_event, mfa_event);
    assert!(take("bastion-1", "mia", "s-1", "db-1", "root").is_err());
}

#[test]
fn login_for_an_unknown_user_or_one_without_keys_looks_the_same() {
    let f = fixture();
    f.user("nokeys", &["engineers"], false);
    let a = f.login_start("nokeys", false).unwrap_err();
    let b = f.login_start("ghost", false).unwrap_err();
    assert_eq!(a.code(), "webauthn_no_keys");
    assert_eq!(b.code(), a.code());
    assert_eq!(a.public_message(), b.public_message());
}

#[test]
fn a_per_session_certificate_carries_the_outer_certificates_key_evidence() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("olga", &["engineers", "sre"], false);
    let login = f.login("olga", &mut t).unwrap();
    let outer = f.cert(login.session_token.expose()).unwrap();
    let bastion = Bastion {
        record: BastionRecord {
            name: "bastion-1".into(),
            host_key_fingerprint: "SHA256:x".into(),
            joined_at: common::start(),
        },
    };
    let session_cert = |login: &str| {
        let key = FileCaKey::generate("ephemeral").unwrap();
        f.auth.bastion_session_cert(
            &f.caller,
            &bastion,
            &api::SessionCertRequest {
                user_certificate: outer.certificate.clone(),
                login: login.into(),
                target: "db-1".into(),
                target_labels: Default::default(),
                session_id: "s1".into(),
                public_key: key.private_key().public_key().to_openssh().unwrap(),
                source: None,
                totp_code: None,
                webauthn_approval: None,
                user_proof: Some(common::user_proof(&outer.certificate)),
            },
        )
    };
    let ok = session_cert("olga").unwrap();
    assert_eq!(
        ext(&ok.certificate, "mfa-method@rampart").as_deref(),
        Some("webauthn")
    );
    assert_eq!(
        ext(&ok.certificate, wapi::EXT_MFA_UV).as_deref(),
        Some("no")
    );
    assert_eq!(
        ext(&ok.certificate, wapi::EXT_MFA_AAGUID).as_deref(),
        Some(SOFT_AAGUID)
    );
    // root needs a phishing-resistant factor: a key without UV is not one.
    assert_eq!(session_cert("root").unwrap_err().code(), "access_denied");
}

/// The soft token's attestation root as a PEM file in `dir`.
fn root_pem(
    dir: &std::path::Path,
    name: &str,
    root: &crypto_glue::x509::Certificate,
) -> std::path::PathBuf {
    use crypto_glue::traits::{EncodePem, LineEndingPem};
    let path = dir.join(name);
    std::fs::write(&path, root.to_pem(LineEndingPem::LF).unwrap()).unwrap();
    path
}

#[test]
fn attestation_roots_admit_only_keys_they_attest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut trusted, trusted_root) = SoftToken::new(false).unwrap();
    let (mut other, _) = SoftToken::new(false).unwrap();
    let roots = vec![root_pem(dir.path(), "root.pem", &trusted_root)];
    let f = fixture_with(Limits::default(), settings(|r| r.attestation_roots = roots));

    let invite = f.user("pat", &["engineers"], false);
    let started = f.register_start(invite.expose(), "blue").unwrap();
    let answer = register_answer(&mut other, &started, ORIGIN);
    assert_eq!(
        f.finish(&started, answer).unwrap_err().code(),
        "webauthn_attestation_untrusted"
    );
    f.assert_last_reason(
        "webauthn_enrolment_refused",
        "webauthn_attestation_untrusted",
    );

    let invite = f.user("quinn", &["engineers"], false);
    let started = f.register_start(invite.expose(), "blue").unwrap();
    let answer = register_answer(&mut trusted, &started, ORIGIN);
    assert!(matches!(
        f.finish(&started, answer).unwrap(),
        wapi::CeremonyOutcome::Registered { .. }
    ));

    // A file without a certificate is a configuration error.
    std::fs::write(dir.path().join("empty.pem"), "nothing here").unwrap();
    let raw = RawWebauthn {
        attestation_roots: vec![dir.path().join("empty.pem")],
        ..Default::default()
    };
    assert!(rampart_ca::webauthn::validate(&raw, "127.0.0.1:8443".parse().unwrap()).is_err());
}

#[test]
fn a_strangers_flood_of_starts_fills_only_the_strangers_share() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("rita", &["engineers"], false);
    let stranger = Caller {
        source: "2001:db8:bad:1::7".parse().unwrap(),
    };
    let start_as = |caller: &Caller, user: &str| {
        f.auth.webauthn_login_start(
            caller,
            &wapi::LoginStartRequest {
                user: user.into(),
                direct: false,
            },
        )
    };
    for _ in 0..rampart_ca::webauthn::MAX_OPEN_PER_USER_AND_NETWORK {
        start_as(&stranger, "rita").unwrap();
    }
    assert_eq!(
        start_as(&stranger, "rita").unwrap_err().code(),
        "webauthn_busy"
    );
    // Another address in the same /64 is the same stranger.
    let neighbour = Caller {
        source: "2001:db8:bad:1::8".parse().unwrap(),
    };
    assert_eq!(
        start_as(&neighbour, "rita").unwrap_err().code(),
        "webauthn_busy"
    );
    // Rita, from her own network, still logs in with her key.
    assert!(f.login("rita", &mut t).is_ok());
    // Others are not affected; expired ones stop counting.
    let (_u, _, _) = f.enrolled("sam", &["engineers"], false);
    start_as(&stranger, "sam").unwrap();
    f.clock.advance(chrono::Duration::minutes(3));
    start_as(&stranger, "rita").unwrap();
}

#[test]
fn one_network_has_a_budget_of_unauthenticated_starts() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("uma", &["engineers"], false);
    let sprayer = Caller {
        source: "198.51.100.66".parse().unwrap(),
    };
    let budget = rampart_ca::config::Limits::default().ip_max_starts;
    let mut refused = None;
    // Spraying starts for made-up and real users alike spends the budget.
    for i in 0..=budget {
        let r = f.auth.webauthn_login_start(
            &sprayer,
            &wapi::LoginStartRequest {
                user: if i % 2 == 0 {
                    "uma".into()
                } else {
                    format!("nobody{i}")
                },
                direct: false,
            },
        );
        if let Err(e) = r {
            if e.code() == "source_rate_limited" {
                refused = Some(i);
                break;
            }
        }
    }
    assert!(
        refused.is_some(),
        "{budget} starts from one network were all served"
    );
    // The user's own network is untouched.
    assert!(f.login("uma", &mut t).is_ok());
}

#[test]
fn changing_ones_keys_needs_a_fresh_login() {
    let f = fixture();
    let (mut t, key, _) = f.enrolled("tess", &["engineers"], false);
    let login = f.login("tess", &mut t).unwrap();
    f.clock.advance(chrono::Duration::hours(2));
    let session = f.auth.authenticate(login.session_token.expose()).unwrap();
    let add = f.auth.webauthn_register_start(
        &f.caller,
        Some(&session),
        &wapi::RegisterStartRequest {
            invite: None,
            name: "green".into(),
            direct: true,
            replaces: None,
        },
    );
    assert_eq!(add.unwrap_err().code(), "webauthn_mfa_stale");
    let remove = f.auth.webauthn_remove_key(
        &f.caller,
        &session,
        &wapi::KeyRemoveRequest {
            user: "tess".into(),
            id: key.id,
        },
    );
    assert_eq!(remove.unwrap_err().code(), "webauthn_mfa_stale");
    // Listing stays possible.
    assert_eq!(f.own_keys(&session).len(), 1);
}

/// Number matching: the page gets the key's options only for the code the
/// starter's terminal shows. A victim sent someone else's link has no such
/// code; three wrong codes end the request, refused and audited.
#[test]
fn a_page_must_type_the_starters_code_before_the_key_is_asked() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("erin", &["engineers"], false);
    let started = f.login_start("erin", false).unwrap();

    // Answering without the code step is refused, and nothing is taken.
    let options_peek = f.auth.webauthn_page(&started.request_id).unwrap().unwrap();
    assert_eq!(options_peek.state, PageState::Open);
    for wrong in ["", "AAAA-AAAA"] {
        let err = f
            .auth
            .webauthn_page_options(&f.caller, &started.request_id, wrong)
            .unwrap_err();
        assert_eq!(err.code(), "webauthn_code_mismatch", "{err}");
    }
    // Case and dashes do not matter to a user copying the code by hand.
    let typed = started.short_code.replace('-', " ").to_lowercase();
    let options = f
        .auth
        .webauthn_page_options(&f.caller, &started.request_id, &typed)
        .unwrap();
    let a = assertion(&mut t, options, ORIGIN);
    assert_eq!(
        f.auth
            .webauthn_page_answer(&f.caller, &started.request_id, &a)
            .unwrap(),
        "logged_in"
    );

    // A stranger's request: the page never gets past the code, and the third
    // miss ends it for the starter too.
    let phished = f.login_start("erin", false).unwrap();
    for _ in 0..3 {
        let err = f
            .auth
            .webauthn_page_options(&f.caller, &phished.request_id, "ZZZZ-ZZZZ")
            .unwrap_err();
        assert_eq!(err.code(), "webauthn_code_mismatch", "{err}");
    }
    let err = f
        .auth
        .webauthn_page_options(&f.caller, &phished.request_id, &phished.short_code)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_request_finished", "{err}");
    assert_eq!(
        f.poll(&phished).unwrap_err().code(),
        "webauthn_code_mismatch"
    );
    f.assert_last_reason("mfa_failed", "webauthn_code_mismatch");
}

#[test]
fn an_answer_posted_without_the_code_step_is_refused() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("erin", &["engineers"], false);
    // The attacker gets the options through a request of their own where they
    // know the code, then posts an answer to another request's page.
    let started = f.login_start("erin", false).unwrap();
    let own = f.login_start("erin", true).unwrap();
    let options = own.public_key.clone().unwrap();
    let a = assertion(&mut t, options, ORIGIN);
    let err = f
        .auth
        .webauthn_page_answer(&f.caller, &started.request_id, &a)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_code_required", "{err}");
    assert_eq!(f.count("session_created"), 0);
    // The request it was posted to ends refused, audited, for its starter too.
    f.assert_last_reason("mfa_failed", "webauthn_code_required");
    assert_eq!(
        f.poll(&started).unwrap_err().code(),
        "webauthn_code_required"
    );
}

/// MFA fatigue: after three link prompts a user denied, let expire or
/// mistyped, no new link prompt is sent for them for a while (and that is
/// audited); the terminal's own prompt (`direct`) still works.
#[test]
fn denied_and_abandoned_prompts_lock_further_link_prompts_for_a_while() {
    let f = fixture_with(
        Limits::default(),
        settings(|r| r.challenge_ttl = Some("30s".into())),
    );
    let (_t, _, _) = f.enrolled("erin", &["engineers"], false);
    // Denied twice.
    for _ in 0..2 {
        let s = f.login_start("erin", false).unwrap();
        f.auth.webauthn_page_deny(&f.caller, &s.request_id).unwrap();
    }
    // Abandoned once: it expires and its starter hears so.
    let s = f.login_start("erin", false).unwrap();
    f.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(f.poll(&s).unwrap_err().code(), "webauthn_request_expired");
    f.assert_last_reason("mfa_locked_out", "prompt_fatigue");

    let err = f.login_start("erin", false).unwrap_err();
    assert_eq!(err.code(), "webauthn_prompts_locked", "{err}");
    // The user's own terminal prompt is not a link: it still works.
    assert!(f.login_start("erin", true).is_ok());
    // The window passes: links again.
    f.clock.advance(chrono::Duration::minutes(16));
    assert!(f.login_start("erin", false).is_ok());
}

// ---------------------------------------------------------------------------
// No factor escalation at enrolment; unattested keys are a tier below
// phishing-resistant.
// ---------------------------------------------------------------------------

impl Fixture {
    /// A user enrolled with TOTP from an invite; returns the generator.
    fn totp_user(&self, name: &str, groups: &[&str]) -> (totp_rs::TOTP, Vec<api::WireSecret>) {
        let invite = self.user(name, groups, false);
        let started = self
            .auth
            .enroll_start(&self.caller, &api::EnrollStartRequest { invite })
            .unwrap();
        let totp = totp_rs::TOTP::from_url(started.totp_uri.expose()).unwrap();
        let finished = self
            .auth
            .enroll_finish(
                &self.caller,
                &api::EnrollFinishRequest {
                    enrollment_token: started.enrollment_token,
                    totp_code: totp.generate(self.clock.now().timestamp() as u64).into(),
                },
            )
            .unwrap();
        (totp, finished.recovery_codes)
    }

    /// Log in with a TOTP or recovery code and return the session.
    fn session_with(&self, user: &str, factor: api::FactorProof) -> Session {
        let login = self
            .auth
            .login(
                &self.caller,
                &api::LoginRequest {
                    user: user.into(),
                    factor,
                },
            )
            .unwrap();
        self.auth
            .authenticate(login.session_token.expose())
            .unwrap()
    }

    /// `register/start` for a key named `name` with `session` (no invite).
    fn add_key_start(
        &self,
        session: &Session,
        name: &str,
    ) -> Result<wapi::CeremonyStarted, CaError> {
        self.replace_key_start(session, name, None)
    }

    /// [`Fixture::add_key_start`] for a key that replaces the key `replaces`.
    fn replace_key_start(
        &self,
        session: &Session,
        name: &str,
        replaces: Option<&str>,
    ) -> Result<wapi::CeremonyStarted, CaError> {
        self.auth.webauthn_register_start(
            &self.caller,
            Some(session),
            &wapi::RegisterStartRequest {
                invite: None,
                name: name.into(),
                direct: true,
                replaces: replaces.map(str::to_owned),
            },
        )
    }

    /// Assert `r` is the enrolment refusal `code`, audited with that reason and
    /// the session's factor, with nothing enrolled and the advice to ask for an
    /// invite.
    fn assert_enrolment_refused(
        &self,
        r: Result<wapi::CeremonyStarted, CaError>,
        code: &str,
        session_factor: &str,
        enrolled_before: usize,
    ) {
        let err = r.expect_err("the enrolment must be refused");
        assert_eq!(err.code(), code);
        let message = err.to_string();
        assert!(
            message.contains("ask an admin for an invite"),
            "the refusal says what to do: {message}"
        );
        let ev = self.last("webauthn_enrolment_refused");
        assert_eq!(ev.reason.as_deref(), Some(code));
        assert_eq!(ev.details["session_factor"], session_factor);
        assert_eq!(self.count("webauthn_key_enrolled"), enrolled_before);
    }
}

#[test]
fn a_totp_session_cannot_start_enrolling_a_key() {
    let f = fixture();
    let (totp, _) = f.totp_user("uma", &["engineers"]);
    let code = totp.generate(f.clock.now().timestamp() as u64 + 30);
    let session = f.session_with("uma", api::FactorProof::Totp { code: code.into() });
    f.assert_enrolment_refused(
        f.add_key_start(&session, "blue"),
        "enrolment_factor_too_weak",
        "totp",
        0,
    );
    let ev = f.last("webauthn_enrolment_refused");
    assert_eq!(ev.user.as_deref(), Some("uma"));
    assert_eq!(ev.details["needed"], "unattested-key");
    assert_eq!(ev.details["session_strength"], "otp");
    assert_eq!(f.requests_kept(), 0, "no challenge was handed out");
    // An invite from an admin is the way: it still enrols a key.
    let invite = f
        .auth
        .create_invite(
            None,
            None,
            &api::InviteRequest {
                user: "uma".into(),
                ttl_seconds: None,
            },
        )
        .unwrap()
        .code;
    let started = f.register_start(invite.expose(), "blue").unwrap();
    let mut t = uv_token();
    let answer = register_answer(&mut t, &started, ORIGIN);
    let wapi::CeremonyOutcome::Registered { key, .. } = f.finish(&started, answer).unwrap() else {
        panic!("not registered")
    };
    assert!(!key.attested, "no roots, no allow-list: {key:?}");
    assert_eq!(f.last("webauthn_key_enrolled").details["via"], "invite");
}

#[test]
fn a_recovery_code_session_only_replaces_a_lost_key_below_phishing_resistant() {
    let f = uv_fixture();
    // A user whose key is lost signs in with a recovery code...
    let (_lost, lost_key, recovery) = f.enrolled_with("vic", &["engineers"], false, uv_token());
    let recovery_session = |f: &Fixture, user: &str, code: &str| {
        f.session_with(user, api::FactorProof::Recovery { code: code.into() })
    };
    let session = recovery_session(&f, "vic", recovery[0].expose());
    // ...and may not simply add a key with it: that would be a second key.
    f.assert_enrolment_refused(
        f.add_key_start(&session, "replacement"),
        "enrolment_recovery_session",
        "recovery",
        1,
    );
    // Naming a key that is not theirs finds nothing.
    let (mut other, other_key, _) = f.enrolled_with("olga", &["engineers"], false, uv_token());
    let err = f
        .replace_key_start(&session, "replacement", Some(&other_key.id))
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_key_unknown");
    f.login("olga", &mut other)
        .expect("olga's key is untouched");

    // Replacing the lost key, where no key can be phishing-resistant (no roots,
    // no allow-list), re-enrols the factor the code stands in for: the old key
    // goes in the same step, the new one logs in.
    let started = f
        .replace_key_start(&session, "blue", Some(&lost_key.id))
        .unwrap();
    let mut new_t = uv_token();
    let answer = register_answer(&mut new_t, &started, ORIGIN);
    let wapi::CeremonyOutcome::Registered { key, .. } = f.finish(&started, answer).unwrap() else {
        panic!("not registered")
    };
    assert!(!key.attested, "{key:?}");
    let keys = f.own_keys(&session);
    assert_eq!(
        keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        vec![key.id.as_str()],
        "the lost key is gone, the new one (same name) stays"
    );
    let enrolled = f.last("webauthn_key_enrolled");
    assert_eq!(enrolled.details["replaces"], lost_key.id.as_str());
    assert_eq!(enrolled.details["via"], "session");
    let removed = f.last("webauthn_key_removed");
    assert_eq!(removed.details["key_id"], lost_key.id.as_str());
    assert_eq!(removed.details["replaced_by"], key.id.as_str());
    f.login("vic", &mut new_t).unwrap();

    // A TOTP user's recovery code has no key to replace: nothing to re-enrol here.
    let (_totp, codes) = f.totp_user("wes", &["engineers"]);
    let session = recovery_session(&f, "wes", codes[0].expose());
    f.assert_enrolment_refused(
        f.add_key_start(&session, "blue"),
        "enrolment_recovery_session",
        "recovery",
        3,
    );

    // An admin's recovery code while [admin] allow_recovery = false: not even a
    // replacement (the new key would pass the admin gate the code may not).
    let (_lost, admin_key, codes) = f.enrolled_with("ada", &["engineers"], true, uv_token());
    let session = recovery_session(&f, "ada", codes[0].expose());
    f.assert_enrolment_refused(
        f.replace_key_start(&session, "blue", Some(&admin_key.id)),
        "enrolment_recovery_session",
        "recovery",
        4,
    );
    assert_eq!(
        f.last("webauthn_enrolment_refused").details["needed"],
        "unattested-key"
    );

    // Where the CA vouches for key models a new key would be phishing-resistant:
    // a recovery code is never enough, replacement or not.
    let g = fixture_with(
        Limits::default(),
        uv_settings(|r| r.allowed_aaguids = vec![SOFT_AAGUID.into()]),
    );
    let (_lost, lost_key, codes) = g.enrolled_with("vic", &["sre"], false, uv_token());
    assert!(lost_key.attested, "{lost_key:?}");
    let session = recovery_session(&g, "vic", codes[0].expose());
    g.assert_enrolment_refused(
        g.replace_key_start(&session, "blue", Some(&lost_key.id)),
        "enrolment_recovery_session",
        "recovery",
        1,
    );
    let refused = g.last("webauthn_enrolment_refused");
    assert_eq!(refused.details["needed"], "phishing-resistant");
    assert_eq!(refused.details["replaces"], lost_key.id.as_str());
    assert_eq!(g.own_keys(&session).len(), 1, "the old key stays");
}

#[test]
fn a_key_session_adds_a_key_only_up_to_its_own_strength() {
    // No roots, no allow-list: every key is unattested. A key login with UV is an
    // unattested-key factor, as strong as any new key here: allowed.
    let f = uv_fixture();
    let (mut t, _, _) = f.enrolled_with("xena", &["engineers"], false, uv_token());
    let session = f
        .auth
        .authenticate(f.login("xena", &mut t).unwrap().session_token.expose())
        .unwrap();
    let started = f.add_key_start(&session, "green").unwrap();
    let mut t2 = uv_token();
    let answer = register_answer(&mut t2, &started, ORIGIN);
    assert!(matches!(
        f.finish(&started, answer).unwrap(),
        wapi::CeremonyOutcome::Registered { .. }
    ));

    // Where the CA vouches for key models, a new key can be phishing-resistant:
    // an unattested key's session (xena's, once the allow-list names another
    // model) is no longer enough.
    f.auth.set_webauthn(
        RelyingParty::new(uv_settings(|r| {
            r.allowed_aaguids = vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".into()]
        }))
        .unwrap(),
    );
    let session = f
        .auth
        .authenticate(f.login("xena", &mut t).unwrap().session_token.expose())
        .unwrap();
    f.assert_enrolment_refused(
        f.add_key_start(&session, "red"),
        "enrolment_factor_too_weak",
        "webauthn-uv-unattested",
        2,
    );
    assert_eq!(
        f.last("webauthn_enrolment_refused").details["needed"],
        "phishing-resistant"
    );

    // A key login without UV proves only otp: a new key could later assert UV,
    // so it may not add one.
    let g = fixture();
    let (mut weak, _, _) = g.enrolled("yuri", &["engineers"], false);
    let session = g
        .auth
        .authenticate(g.login("yuri", &mut weak).unwrap().session_token.expose())
        .unwrap();
    g.assert_enrolment_refused(
        g.add_key_start(&session, "green"),
        "enrolment_factor_too_weak",
        "webauthn-unattested",
        1,
    );
}

#[test]
fn an_unattested_key_is_refused_by_a_phishing_resistant_role_and_an_allow_listed_one_passes() {
    // No roots, no allow-list: a software token claiming UV is unattested.
    let f = uv_fixture();
    // zoe's only role is prod, which needs phishing-resistant.
    let (mut t, key, _) = f.enrolled_with("zoe", &["sre"], false, uv_token());
    assert!(key.user_verified && !key.attested, "{key:?}");
    assert_eq!(
        f.last("webauthn_key_enrolled").details["attested"],
        serde_json::Value::Bool(false)
    );
    let login = f.login("zoe", &mut t).unwrap();
    let err = f.cert(login.session_token.expose()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("phishing-resistant") && message.contains("unattested-key"),
        "the denial names both tiers: {message}"
    );
    let denied = f.last("cert_denied");
    assert_eq!(denied.user.as_deref(), Some("zoe"));
    assert_eq!(f.count("cert_issued"), 0);

    // The same kind of key, its AAGUID on the allow-list: phishing-resistant.
    let g = fixture_with(
        Limits::default(),
        uv_settings(|r| r.allowed_aaguids = vec![SOFT_AAGUID.into()]),
    );
    let (mut t, key, _) = g.enrolled_with("zoe", &["sre"], false, uv_token());
    assert!(key.attested, "{key:?}");
    let login = g.login("zoe", &mut t).unwrap();
    let cert = g.cert(login.session_token.expose()).unwrap();
    assert_eq!(ext(&cert, wapi::EXT_MFA_ATTESTED).as_deref(), Some("yes"));
    assert_eq!(cert.principals, vec!["root".to_string()]);
}

#[test]
fn a_bastion_session_keeps_the_outer_certificates_key_tier() {
    // A UV key the CA does not vouch for: its outer certificate says so, and the
    // bastion's per-session certificate for prod (phishing-resistant) is refused.
    let f = uv_fixture();
    let (mut t, _, _) = f.enrolled_with("abe", &["engineers", "sre"], false, uv_token());
    let login = f.login("abe", &mut t).unwrap();
    let outer = f.cert(login.session_token.expose()).unwrap();
    assert_eq!(ext(&outer, wapi::EXT_MFA_UV).as_deref(), Some("yes"));
    assert_eq!(ext(&outer, wapi::EXT_MFA_ATTESTED).as_deref(), Some("no"));
    let bastion = Bastion {
        record: BastionRecord {
            name: "bastion-1".into(),
            host_key_fingerprint: "SHA256:x".into(),
            joined_at: common::start(),
        },
    };
    let key = FileCaKey::generate("ephemeral").unwrap();
    let r = f.auth.bastion_session_cert(
        &f.caller,
        &bastion,
        &api::SessionCertRequest {
            user_certificate: outer.certificate.clone(),
            login: "root".into(),
            target: "db-1".into(),
            target_labels: Default::default(),
            session_id: "s1".into(),
            public_key: key.private_key().public_key().to_openssh().unwrap(),
            source: None,
            totp_code: None,
            webauthn_approval: None,
            user_proof: Some(common::user_proof(&outer.certificate)),
        },
    );
    assert_eq!(r.unwrap_err().code(), "access_denied");
}

#[test]
fn keys_enrolled_under_attestation_roots_count_as_attested() {
    let dir = tempfile::tempdir().unwrap();
    let (trusted, trusted_root) = SoftToken::new(true).unwrap();
    let roots = vec![root_pem(dir.path(), "root.pem", &trusted_root)];
    let f = fixture_with(
        Limits::default(),
        uv_settings(|r| r.attestation_roots = roots),
    );
    let (mut t, key, _) = f.enrolled_with("bea", &["engineers", "sre"], false, trusted);
    assert!(key.attested, "{key:?}");
    assert_eq!(
        f.last("webauthn_key_enrolled").details["attestation_verified"],
        serde_json::Value::Bool(true)
    );
    let login = f.login("bea", &mut t).unwrap();
    let cert = f.cert(login.session_token.expose()).unwrap();
    assert!(
        cert.principals.contains(&"root".to_string()),
        "{:?}",
        cert.principals
    );
    // The operator removes every root: the trust they gave is withdrawn, and
    // the key counts as unattested from its next login.
    f.auth
        .set_webauthn(RelyingParty::new(uv_settings(|_| {})).unwrap());
    let session = f.auth.authenticate(login.session_token.expose()).unwrap();
    assert!(!f.own_keys(&session)[0].attested);
    let again = f.login("bea", &mut t).unwrap();
    let cert = f.cert(again.session_token.expose()).unwrap();
    assert!(
        !cert.principals.contains(&"root".to_string()),
        "the phishing-resistant role no longer grants: {:?}",
        cert.principals
    );
}

impl Fixture {
    fn bastion(&self) -> Bastion {
        Bastion {
            record: BastionRecord {
                name: "bastion-1".into(),
                host_key_fingerprint: "SHA256:x".into(),
                joined_at: common::start(),
            },
        }
    }

    /// A key login through the CA's page (the link path), as `rampart login
    /// --mfa webauthn` does it.
    fn login_on_page(&self, user: &str, t: &mut SoftToken) -> api::LoginResponse {
        let started = self.login_start(user, false).unwrap();
        let (_, verdict) = self.answer_on_page(t, &started);
        assert_eq!(verdict, "logged_in");
        match self.poll(&started).unwrap() {
            WaitState::Ready(wapi::CeremonyOutcome::LoggedIn { login }) => login,
            other => panic!("{other:?}"),
        }
    }

    /// A bastion's per-session certificate for `login@app-1` from `outer`.
    fn app_session_cert(
        &self,
        outer: &api::CertResponse,
        login: &str,
        session_id: &str,
        totp_code: Option<String>,
        webauthn_approval: Option<wapi::WaitRequest>,
    ) -> Result<api::SessionCertResponse, CaError> {
        let key = FileCaKey::generate("ephemeral").unwrap();
        self.auth.bastion_session_cert(
            &self.caller,
            &self.bastion(),
            &api::SessionCertRequest {
                user_certificate: outer.certificate.clone(),
                login: login.into(),
                target: "app-1".into(),
                target_labels: Default::default(),
                session_id: session_id.into(),
                public_key: key.private_key().public_key().to_openssh().unwrap(),
                source: None,
                totp_code: totp_code.map(Into::into),
                webauthn_approval,
                user_proof: Some(common::user_proof(&outer.certificate)),
            },
        )
    }

    /// A per-session approval for `login@app-1`, given on the page with `t`.
    fn approve_on_page(
        &self,
        user: &str,
        login: &str,
        session_id: &str,
        t: &mut SoftToken,
    ) -> wapi::WaitRequest {
        let started = self
            .auth
            .webauthn_approval_start(
                &self.caller,
                &self.bastion(),
                &wapi::BastionApprovalStartRequest {
                    user: user.into(),
                    session_id: session_id.into(),
                    target: "app-1".into(),
                    login: login.into(),
                },
            )
            .unwrap();
        let (_, verdict) = self.answer_on_page(t, &started);
        assert_eq!(verdict, "approved");
        wapi::WaitRequest {
            request_id: started.request_id,
            poll_token: started.poll_token,
        }
    }

    /// Give `user` (who has a key already) a TOTP authenticator too, from an
    /// admin's fresh invite.
    fn add_totp(&self, user: &str) -> totp_rs::TOTP {
        let invite = self
            .auth
            .create_invite(
                None,
                None,
                &api::InviteRequest {
                    user: user.into(),
                    ttl_seconds: None,
                },
            )
            .unwrap();
        let started = self
            .auth
            .enroll_start(
                &self.caller,
                &api::EnrollStartRequest {
                    invite: invite.code,
                },
            )
            .unwrap();
        let totp = totp_rs::TOTP::from_url(started.totp_uri.expose()).unwrap();
        self.auth
            .enroll_finish(
                &self.caller,
                &api::EnrollFinishRequest {
                    enrollment_token: started.enrollment_token,
                    totp_code: totp.generate(self.clock.now().timestamp() as u64).into(),
                },
            )
            .unwrap();
        totp
    }
}

/// A role with `webauthn_link = false` gets into a certificate only from a key
/// login the client made itself (CTAP2); the same key approved on the CA's page
/// is refused for it, with its own code, and the certificate says which way
/// the key was used.
#[test]
fn a_role_without_link_approval_takes_a_direct_key_and_refuses_a_page_approved_one() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("dan", &["desk"], false);

    let page = f.login_on_page("dan", &mut t);
    let err = f.cert(page.session_token.expose()).unwrap_err();
    assert_eq!(err.code(), "webauthn_link_refused");
    let message = err.to_string();
    assert!(
        message.contains("role desk") && message.contains("own machine"),
        "{message}"
    );
    let denied = f.last("cert_denied");
    assert_eq!(denied.details["code"], "webauthn_link_refused");
    assert_eq!(f.count("cert_issued"), 0);
    assert_eq!(f.last("mfa_succeeded").details["via"], "browser");

    let direct = f.login("dan", &mut t).unwrap();
    assert_eq!(f.last("mfa_succeeded").details["via"], "ctap2");
    let cert = f.cert(direct.session_token.expose()).unwrap();
    assert_eq!(ext(&cert, wapi::EXT_MFA_LINK).as_deref(), Some("no"));

    // With another role beside it, a page login still gets that one, and the
    // certificate records the link.
    let (mut t2, _, _) = f.enrolled("eve", &["engineers", "desk"], false);
    let page = f.login_on_page("eve", &mut t2);
    let cert = f.cert(page.session_token.expose()).unwrap();
    assert_eq!(cert.principals, vec!["eve".to_string()]);
    assert_eq!(ext(&cert, wapi::EXT_MFA_LINK).as_deref(), Some("yes"));
}

/// At the bastion: an outer certificate from a page login does not reach a
/// `webauthn_link = false` role; one from a direct login does, but its
/// per-session check cannot be a link approval — the CA asks for a TOTP code
/// when the user has one, refuses with `webauthn_link_refused` when not, and
/// refuses an approval the bastion sends anyway.
#[test]
fn a_bastion_session_for_a_role_without_link_approval_takes_no_page_approval() {
    let f = fixture();
    let (mut t, _, _) = f.enrolled("fay", &["engineers", "desk"], false);

    // Page login: the outer certificate says link, so `desk` does not permit.
    let page = f.login_on_page("fay", &mut t);
    let outer = f.cert(page.session_token.expose()).unwrap();
    assert_eq!(ext(&outer, wapi::EXT_MFA_LINK).as_deref(), Some("yes"));
    let err = f
        .app_session_cert(&outer, "deploy", "s-page", None, None)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_link_refused");
    assert_eq!(
        f.last("access_denied").details["code"],
        "webauthn_link_refused"
    );

    // Direct login: `desk` permits, but wants a per-session check, and fay has
    // only a key: no approval is asked for, the session is refused.
    let direct = f.login("fay", &mut t).unwrap();
    let outer = f.cert(direct.session_token.expose()).unwrap();
    let err = f
        .app_session_cert(&outer, "deploy", "s-1", None, None)
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_link_refused");
    assert!(err.to_string().contains("no TOTP"), "{err}");

    // An approval sent anyway is consumed and refused: it came through a link.
    let approval = f.approve_on_page("fay", "deploy", "s-2", &mut t);
    let err = f
        .app_session_cert(&outer, "deploy", "s-2", None, Some(approval.clone()))
        .unwrap_err();
    assert_eq!(err.code(), "webauthn_link_refused");
    let denied = f.last("access_denied");
    assert_eq!(denied.details["code"], "webauthn_link_refused");
    assert_eq!(
        f.auth
            .take_webauthn_approval("bastion-1", &approval, "fay", "s-2", "app-1", "deploy")
            .unwrap()
            .unwrap_err()
            .0,
        "webauthn_approval_used"
    );

    // With a TOTP authenticator as well, the CA asks for a code instead, and
    // the code opens the session.
    let totp = f.add_totp("fay");
    let err = f
        .app_session_cert(&outer, "deploy", "s-3", None, None)
        .unwrap_err();
    assert_eq!(err.code(), api::ErrorCode::SessionMfaRequired);
    f.clock.advance(chrono::Duration::seconds(30));
    let code = totp.generate(f.clock.now().timestamp() as u64);
    let ok = f
        .app_session_cert(&outer, "deploy", "s-3", Some(code), None)
        .unwrap();
    assert!(ok.session_mfa);
    assert_eq!(
        ext(&ok.certificate, "mfa-method@rampart").as_deref(),
        Some("totp")
    );
}
