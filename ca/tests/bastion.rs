//! The bastion operations of the authority, driven through its public methods with
//! a manual clock, for the rules that depend on time: join-token expiry, and MFA
//! freshness taken from the user's outer certificate (and refreshed by a
//! per-session TOTP code, once per time step). The HTTP surface is covered by the
//! e2e test `tests/tests/bastion_api.rs`.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rampart_api as api;
use rampart_ca::authority::bastion::Bastion;
use rampart_ca::authority::{Authority, Caller};
use rampart_ca::clock::{Clock, ManualClock};
use rampart_ca::config::Limits;
use rampart_ca::CaError;
use rampart_signer::FileCaKey;

const POLICY: &str = r#"
version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{user}"]
min_factor = "otp"
mfa_max_age = "10m"
targets = { allow = ["db-*"] }

[groups]
engineers = ["dev"]
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    auth: Authority,
    caller: Caller,
}

fn fixture() -> Fixture {
    let t = common::authority(POLICY, Limits::default(), None);
    Fixture {
        _dir: t.dir,
        clock: t.clock,
        auth: t.auth,
        caller: Caller {
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        },
    }
}

fn minutes(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

impl Fixture {
    fn code(&self, totp: &totp_rs::TOTP) -> String {
        totp.generate(self.clock.now().timestamp() as u64)
    }

    /// Create, invite and enrol `name`; returns their authenticator.
    fn enrol(&self, name: &str, admin: bool) -> totp_rs::TOTP {
        self.auth
            .create_user(
                None,
                None,
                &api::CreateUserRequest {
                    name: name.into(),
                    groups: vec!["engineers".into()],
                    admin,
                },
            )
            .unwrap();
        let invite = self
            .auth
            .create_invite(
                None,
                None,
                &api::InviteRequest {
                    user: name.into(),
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
        let totp = totp_rs::TOTP::from_url(&started.totp_uri).unwrap();
        self.auth
            .enroll_finish(
                &self.caller,
                &api::EnrollFinishRequest {
                    enrollment_token: started.enrollment_token,
                    totp_code: self.code(&totp),
                },
            )
            .unwrap();
        totp
    }

    /// Log in (after moving one TOTP step on) and get a 1 h certificate.
    fn login_cert(&self, name: &str, totp: &totp_rs::TOTP) -> (String, api::CertResponse) {
        self.clock.advance(chrono::Duration::seconds(30));
        let login = self
            .auth
            .login(
                &self.caller,
                &api::LoginRequest {
                    user: name.into(),
                    factor: api::FactorProof::Totp {
                        code: self.code(totp),
                    },
                },
            )
            .unwrap();
        let session = self.auth.authenticate(&login.session_token).unwrap();
        let key = FileCaKey::generate("subject").unwrap();
        let cert = self
            .auth
            .issue_user_cert(
                &self.caller,
                &session,
                &api::CertRequest {
                    public_key: key.private_key().public_key().to_openssh().unwrap(),
                    ttl_seconds: None,
                },
            )
            .unwrap();
        (login.session_token, cert)
    }

    fn join(&self, admin_token: &str) -> Bastion {
        let session = self.auth.authenticate(admin_token).unwrap();
        let token = self
            .auth
            .create_bastion_token(
                &self.caller,
                &session,
                &api::BastionTokenRequest {
                    name: None,
                    ttl_seconds: None,
                },
            )
            .unwrap();
        let host = FileCaKey::generate("bastion host").unwrap();
        let joined = self
            .auth
            .bastion_join(
                &self.caller,
                &api::BastionJoinRequest {
                    token: token.token,
                    name: "bastion-1".into(),
                    host_public_key: host.private_key().public_key().to_openssh().unwrap(),
                },
            )
            .unwrap();
        self.auth.authenticate_bastion(&joined.credential).unwrap()
    }

    fn session_cert(
        &self,
        bastion: &Bastion,
        outer: &str,
        totp_code: Option<String>,
    ) -> Result<api::SessionCertResponse, CaError> {
        let key = FileCaKey::generate("ephemeral").unwrap();
        self.auth.bastion_session_cert(
            &self.caller,
            bastion,
            &api::SessionCertRequest {
                user_certificate: outer.to_owned(),
                login: "alice".into(),
                target: "db-1".into(),
                target_labels: Default::default(),
                session_id: "s1".into(),
                public_key: key.private_key().public_key().to_openssh().unwrap(),
                source: None,
                totp_code,
            },
        )
    }
}

#[test]
fn join_tokens_expire_by_the_cas_clock_and_have_a_ceiling() {
    let f = fixture();
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let admin = f.auth.authenticate(&admin_token).unwrap();
    let make = |ttl: Option<u64>| {
        f.auth.create_bastion_token(
            &f.caller,
            &admin,
            &api::BastionTokenRequest {
                name: Some("bastion-1".into()),
                ttl_seconds: ttl,
            },
        )
    };
    assert_eq!(make(Some(0)).unwrap_err().code(), "invalid_ttl");
    assert_eq!(make(Some(24 * 3600 + 1)).unwrap_err().code(), "invalid_ttl");
    let token = make(None).unwrap();
    assert_eq!(token.expires_at, f.clock.now() + minutes(60), "default 1 h");
    // A bad name is refused before any token exists.
    let bad = f.auth.create_bastion_token(
        &f.caller,
        &admin,
        &api::BastionTokenRequest {
            name: Some("not a host".into()),
            ttl_seconds: None,
        },
    );
    assert_eq!(bad.unwrap_err().code(), "invalid_bastion_name");

    f.clock.advance(minutes(61));
    let host = FileCaKey::generate("bastion host").unwrap();
    let err = f
        .auth
        .bastion_join(
            &f.caller,
            &api::BastionJoinRequest {
                token: token.token.clone(),
                name: "bastion-1".into(),
                host_public_key: host.private_key().public_key().to_openssh().unwrap(),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "token_expired");
    // Non-admins get no token.
    let alice_totp = f.enrol("alice", false);
    let (alice_token, _) = f.login_cert("alice", &alice_totp);
    let alice = f.auth.authenticate(&alice_token).unwrap();
    f.auth
        .require_admin(&f.caller, &alice, "bastion_token")
        .unwrap_err();
}

#[test]
fn mfa_freshness_comes_from_the_outer_certificate_or_a_per_session_code() {
    let f = fixture();
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let bastion = f.join(&admin_token);
    let alice_totp = f.enrol("alice", false);
    let (_, outer) = f.login_cert("alice", &alice_totp);

    // Within the role's mfa_max_age (10m): granted; valid 60 s from the CA's now.
    f.clock.advance(minutes(5));
    let ok = f.session_cert(&bastion, &outer.certificate, None).unwrap();
    let c = ok.certificate;
    assert_eq!(c.principals, ["alice"]);
    assert_eq!(
        c.valid_before,
        f.clock.now() + chrono::Duration::seconds(60)
    );
    assert!(c.key_id.contains("session=s1") && c.key_id.contains("via=bastion-1"));
    let cert = ssh_key::Certificate::from_openssh(&c.certificate).unwrap();
    assert_eq!(
        cert.critical_options()
            .get("source-address")
            .map(String::as_str),
        Some("192.0.2.10/32"),
        "source-address is the bastion's address as the CA saw it"
    );

    // The outer certificate is still valid (1 h) but its MFA is 15 minutes old.
    f.clock.advance(minutes(10));
    let err = f
        .session_cert(&bastion, &outer.certificate, None)
        .unwrap_err();
    assert_eq!(err.code(), "access_denied");
    // A per-session TOTP code refreshes the evidence…
    let code = f.code(&alice_totp);
    let fresh = f
        .session_cert(&bastion, &outer.certificate, Some(code.clone()))
        .unwrap();
    assert!(fresh.session_mfa);
    let cert = ssh_key::Certificate::from_openssh(&fresh.certificate.certificate).unwrap();
    assert_eq!(
        cert.extensions()
            .get("mfa-time@rampart")
            .map(String::as_str),
        Some("2026-05-01T10:16:05Z"),
        "the per-session code's time, not the login's"
    );
    // …once per time step.
    let err = f
        .session_cert(&bastion, &outer.certificate, Some(code))
        .unwrap_err();
    assert_eq!(err.code(), "factor_replayed");

    // After the outer certificate expires (1 h), nothing is issued, code or not.
    f.clock.advance(minutes(60));
    let err = f
        .session_cert(&bastion, &outer.certificate, Some(f.code(&alice_totp)))
        .unwrap_err();
    assert_eq!(err.code(), "certificate_expired");
}
