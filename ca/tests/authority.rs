//! The authority's rules, driven through its public methods with a manual clock:
//! enrolment, TOTP replay and lockout, recovery codes, policy-gated issuance,
//! revocation, admin checks, and failing closed when the audit log cannot be
//! written.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::start;
use std::path::Path;
use std::time::Duration;

use rampart_api as api;
use rampart_ca::authority::Caller;
use rampart_ca::clock::Clock;
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
principals = ["{user}", "deploy"]
max_ttl = "4h"
min_factor = "otp"
extensions = ["permit-pty"]

[roles.breakglass]
principals = ["{user}"]
max_ttl = "15m"
min_factor = "recovery"
allow_recovery = true

[groups]
engineers = ["dev"]
oncall = ["breakglass"]
admins = ["dev"]
"#;

type Fixture = common::TestAuthority;

fn fixture_with(limits: Limits, audit_path: Option<&Path>) -> Fixture {
    common::authority(POLICY, limits, audit_path)
}

fn fixture() -> Fixture {
    fixture_with(Limits::default(), None)
}

/// An enrolled user: its TOTP generator and recovery codes.
struct Enrolled {
    totp: totp_rs::TOTP,
    recovery: Vec<api::WireSecret>,
}

impl Fixture {
    fn code(&self, e: &Enrolled, steps_ahead: i64) -> String {
        let t = self.clock.now().timestamp() + steps_ahead * 30;
        e.totp.generate(t as u64)
    }

    fn add_user(&self, name: &str, groups: &[&str], admin: bool) -> Enrolled {
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
        let totp = totp_rs::TOTP::from_url(started.totp_uri.expose()).unwrap();
        let code = totp.generate(self.clock.now().timestamp() as u64);
        let finished = self
            .auth
            .enroll_finish(
                &self.caller,
                &api::EnrollFinishRequest {
                    enrollment_token: started.enrollment_token,
                    totp_code: code.into(),
                },
            )
            .unwrap();
        Enrolled {
            totp,
            recovery: finished.recovery_codes,
        }
    }

    fn login(&self, user: &str, factor: api::FactorProof) -> Result<api::LoginResponse, CaError> {
        self.auth.login(
            &self.caller,
            &api::LoginRequest {
                user: user.into(),
                factor,
            },
        )
    }

    fn cert(&self, token: &str, ttl: Option<u64>) -> Result<api::CertResponse, CaError> {
        let session = self.auth.authenticate(token)?;
        let key = FileCaKey::generate("subject").unwrap();
        self.auth.issue_user_cert(
            &self.caller,
            &session,
            &api::CertRequest {
                public_key: key.private_key().public_key().to_openssh().unwrap(),
                ttl_seconds: ttl,
            },
        )
    }

    fn kinds(&self) -> Vec<String> {
        self.auth
            .audit_log()
            .query(&rampart_audit::Query::default())
            .unwrap()
            .into_iter()
            .map(|e| e.kind.as_str().to_owned())
            .collect()
    }

    /// The events of one kind, as JSON (`details` under `"details"`).
    fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.auth
            .audit_log()
            .query(&rampart_audit::Query::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.kind.as_str() == kind)
            .map(|e| serde_json::json!({ "details": e.details }))
            .collect()
    }
}

fn totp(code: String) -> api::FactorProof {
    api::FactorProof::Totp { code: code.into() }
}

#[test]
fn enrol_login_and_get_a_certificate_with_mfa_evidence() {
    let f = fixture();
    let alice = f.add_user("alice", &["engineers"], false);
    assert_eq!(alice.recovery.len(), 10);
    // The enrolment step is spent; the next step logs in.
    assert_eq!(
        f.login("alice", totp(f.code(&alice, 0)))
            .unwrap_err()
            .code(),
        "factor_replayed"
    );
    let login = f.login("alice", totp(f.code(&alice, 1))).unwrap();
    assert_eq!(login.mfa_method, "totp");
    let cert = f.cert(login.session_token.expose(), Some(7200)).unwrap();
    assert_eq!(
        cert.principals,
        vec!["alice".to_string(), "deploy".to_string()]
    );
    assert_eq!(
        cert.key_id,
        format!("user=alice serial={} mfa=totp", cert.serial)
    );
    assert_eq!((cert.valid_before - start()).num_seconds(), 7200);
    let parsed = ssh_key::Certificate::from_openssh(&cert.certificate).unwrap();
    assert_eq!(
        parsed.extensions().get("mfa-method@rampart").unwrap(),
        "totp"
    );
    assert_eq!(
        parsed.extensions().get("mfa-event@rampart").unwrap(),
        &login.mfa_event
    );
    // Policy clamps to the role's 4 h.
    let long = f.cert(login.session_token.expose(), Some(86_400)).unwrap();
    assert_eq!((long.valid_before - start()).num_seconds(), 4 * 3600);
    assert!(long.serial > cert.serial);
    let kinds = f.kinds();
    for k in [
        "user_created",
        "invite_redeemed",
        "totp_enrolled",
        "mfa_succeeded",
        "cert_issued",
    ] {
        assert!(kinds.iter().any(|x| x == k), "missing {k} in {kinds:?}");
    }
}

fn limits(max_failures: u32, ip_max_failures: u32) -> Limits {
    let mut limits = Limits::default();
    limits.attempts.max_failures = max_failures;
    limits.attempts.lockout = Duration::from_secs(60);
    limits.ip_max_failures = ip_max_failures;
    limits.ip_window = Duration::from_secs(60);
    limits
}

fn from(addr: &str) -> Caller {
    Caller {
        source: addr.parse().unwrap(),
    }
}

#[test]
fn wrong_codes_are_audited_and_lock_the_user_from_that_network() {
    let f = fixture_with(limits(3, 100), None);
    let bob = f.add_user("bob", &["engineers"], false);
    for _ in 0..3 {
        let e = f.login("bob", totp("000000".into())).unwrap_err();
        assert_eq!(e.code(), "factor_invalid");
    }
    // Locked: even the right code is refused, from this network.
    let e = f.login("bob", totp(f.code(&bob, 1))).unwrap_err();
    assert_eq!(e.code(), "user_locked");
    assert_eq!(e.status(), 429);
    assert!(e.to_string().contains("from this network"), "{e}");
    assert!(f.kinds().iter().any(|k| k == "mfa_locked_out"));
    f.clock.advance(chrono::Duration::seconds(61));
    assert!(f.login("bob", totp(f.code(&bob, 0))).is_ok());
}

#[test]
fn a_strangers_hundred_wrong_codes_do_not_lock_the_admin_out() {
    let f = fixture_with(Limits::default(), None);
    let admin = f.add_user("admin", &["engineers"], true);
    let stranger = from("203.0.113.9");
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for _ in 0..100 {
        let e = f
            .auth
            .login(
                &stranger,
                &api::LoginRequest {
                    user: "admin".into(),
                    factor: totp("000000".into()),
                },
            )
            .unwrap_err();
        *outcomes.entry(e.code().as_str()).or_default() += 1;
    }
    // Five guesses were judged; the rest were refused unjudged.
    assert_eq!(outcomes.get("factor_invalid"), Some(&5), "{outcomes:?}");
    assert_eq!(
        outcomes.get("factor_invalid").unwrap()
            + outcomes.get("user_locked").unwrap_or(&0)
            + outcomes.get("source_rate_limited").unwrap_or(&0),
        100
    );
    // The admin, from their own network, is not locked.
    let login = f.auth.login(
        &from("192.0.2.10"),
        &api::LoginRequest {
            user: "admin".into(),
            factor: totp(f.code(&admin, 1)),
        },
    );
    assert!(login.is_ok(), "{login:?}");
    // The lock is audited with its scope and network.
    let locks = f.events_of("mfa_locked_out");
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(locks[0]["details"]["scope"], "source");
    assert_eq!(locks[0]["details"]["network"], "203.0.113.9");
}

#[test]
fn an_ipv6_attacker_is_one_network_per_64() {
    let f = fixture_with(limits(3, 100), None);
    let carl = f.add_user("carl", &["engineers"], false);
    for i in 1..=3 {
        let e = f
            .auth
            .login(
                &from(&format!("2001:db8:bad:1::{i}")),
                &api::LoginRequest {
                    user: "carl".into(),
                    factor: totp("000000".into()),
                },
            )
            .unwrap_err();
        assert_eq!(e.code(), "factor_invalid");
    }
    // A fresh address in the same /64 is still the locked network.
    let login_from = |addr: &str, step| {
        f.auth.login(
            &from(addr),
            &api::LoginRequest {
                user: "carl".into(),
                factor: totp(f.code(&carl, step)),
            },
        )
    };
    assert_eq!(
        login_from("2001:db8:bad:1:ffff::99", 1).unwrap_err().code(),
        "user_locked"
    );
    // The next /64 is another network.
    assert!(login_from("2001:db8:bad:2::1", 1).is_ok());
}

#[test]
fn many_networks_lock_the_user_everywhere_and_say_so() {
    let mut l = limits(3, 100);
    l.attempts.user_max_failures = 12;
    let f = fixture_with(l, None);
    let dora = f.add_user("dora", &["engineers"], false);
    for i in 0..12 {
        let _ = f.auth.login(
            &from(&format!("198.51.100.{}", i / 2)),
            &api::LoginRequest {
                user: "dora".into(),
                factor: totp("000000".into()),
            },
        );
    }
    let e = f
        .auth
        .login(
            &from("192.0.2.200"),
            &api::LoginRequest {
                user: "dora".into(),
                factor: totp(f.code(&dora, 1)),
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "user_locked");
    assert!(!e.to_string().contains("from this network"), "{e}");
    let locks = f.events_of("mfa_locked_out");
    assert!(
        locks.iter().any(|l| l["details"]["scope"] == "user"),
        "{locks:?}"
    );
}

#[test]
fn parallel_guesses_are_judged_no_more_often_than_the_limit() {
    let f = fixture_with(limits(3, 1000), None);
    f.add_user("erin", &["engineers"], false);
    let judged = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..32 {
            scope.spawn(|| {
                let r = f.auth.login(
                    &from("203.0.113.50"),
                    &api::LoginRequest {
                        user: "erin".into(),
                        factor: totp("000000".into()),
                    },
                );
                if r.is_err_and(|e| e.code() == "factor_invalid") {
                    judged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(judged.into_inner(), 3);
}

#[test]
fn source_networks_are_rate_limited_too() {
    let f = fixture_with(limits(100, 4), None);
    for i in 0..4 {
        let _ = f.login(&format!("ghost{i}"), totp("123456".into()));
    }
    let e = f.login("ghost9", totp("123456".into())).unwrap_err();
    assert_eq!(e.code(), "source_rate_limited");
}

#[test]
fn recovery_codes_work_once_and_policy_decides_what_they_grant() {
    let f = fixture();
    let carol = f.add_user("carol", &["engineers"], false);
    let code = carol.recovery[3].clone();
    let login = f
        .login("carol", api::FactorProof::Recovery { code: code.clone() })
        .unwrap();
    assert_eq!(login.mfa_method, "recovery");
    // The dev role does not allow recovery logins.
    let e = f.cert(login.session_token.expose(), None).unwrap_err();
    assert_eq!(e.status(), 403);
    assert!(f.kinds().iter().any(|k| k == "recovery_code_used"));
    assert!(f.kinds().iter().any(|k| k == "cert_denied"));
    let again = f
        .login("carol", api::FactorProof::Recovery { code })
        .unwrap_err();
    assert_eq!(again.code(), "factor_invalid");

    // On call, the breakglass role accepts it, with its short TTL.
    let dave = f.add_user("dave", &["oncall"], false);
    let login = f
        .login(
            "dave",
            api::FactorProof::Recovery {
                code: dave.recovery[0].clone(),
            },
        )
        .unwrap();
    let cert = f.cert(login.session_token.expose(), None).unwrap();
    assert_eq!((cert.valid_before - start()).num_seconds(), 15 * 60);
    assert!(cert.key_id.ends_with("mfa=recovery"));
}

#[test]
fn invites_are_single_use_and_expire() {
    let f = fixture();
    f.auth
        .create_user(
            None,
            None,
            &api::CreateUserRequest {
                name: "erin".into(),
                groups: vec![],
                admin: false,
            },
        )
        .unwrap();
    let inv = f
        .auth
        .create_invite(
            None,
            None,
            &api::InviteRequest {
                user: "erin".into(),
                ttl_seconds: Some(60),
            },
        )
        .unwrap();
    let req = api::EnrollStartRequest {
        invite: inv.code.clone(),
    };
    f.auth.enroll_start(&f.caller, &req).unwrap();
    assert_eq!(
        f.auth.enroll_start(&f.caller, &req).unwrap_err().code(),
        "invite_used"
    );
    let inv2 = f
        .auth
        .create_invite(
            None,
            None,
            &api::InviteRequest {
                user: "erin".into(),
                ttl_seconds: Some(60),
            },
        )
        .unwrap();
    f.clock.advance(chrono::Duration::seconds(61));
    let e = f
        .auth
        .enroll_start(&f.caller, &api::EnrollStartRequest { invite: inv2.code })
        .unwrap_err();
    assert_eq!(e.code(), "invite_expired");
    assert!(f.kinds().iter().filter(|k| *k == "invite_refused").count() >= 2);
}

#[test]
fn admin_actions_need_an_admin_and_revocation_reaches_the_krl() {
    let f = fixture();
    let root = f.add_user("root-admin", &["admins"], true);
    let alice = f.add_user("alice", &["engineers"], false);
    let a = f.login("alice", totp(f.code(&alice, 1))).unwrap();
    let alice_session = f.auth.authenticate(a.session_token.expose()).unwrap();
    let e = f
        .auth
        .require_admin(&f.caller, &alice_session, "list_users")
        .unwrap_err();
    assert_eq!(e.code(), "not_admin");
    assert!(f.kinds().iter().any(|k| k == "admin_action_denied"));

    let cert = f.cert(a.session_token.expose(), None).unwrap();
    let r = f.login("root-admin", totp(f.code(&root, 1))).unwrap();
    let admin = f.auth.authenticate(r.session_token.expose()).unwrap();
    f.auth.require_admin(&f.caller, &admin, "revoke").unwrap();
    let krl_before = f.auth.krl();
    let out = f
        .auth
        .revoke(
            &f.caller,
            &admin,
            &api::RevokeRequest {
                serial: Some(cert.serial),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(out.revoked_serials, vec![cert.serial]);
    assert_ne!(*f.auth.krl(), *krl_before);
    // Unknown serial: a clear 404.
    let e = f
        .auth
        .revoke(
            &f.caller,
            &admin,
            &api::RevokeRequest {
                serial: Some(999_999),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.status(), 404);
    // Revoking the user disables it and ends its sessions.
    f.auth
        .revoke(
            &f.caller,
            &admin,
            &api::RevokeRequest {
                user: Some("alice".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(f.auth.authenticate(a.session_token.expose()).is_err());
    // Admin MFA goes stale.
    f.clock.advance(chrono::Duration::hours(2));
    let admin = f.auth.authenticate(r.session_token.expose()).unwrap();
    assert_eq!(
        f.auth
            .require_admin(&f.caller, &admin, "revoke")
            .unwrap_err()
            .code(),
        "admin_mfa_stale"
    );
}

#[test]
fn bad_keys_are_refused_with_a_clear_reason() {
    let f = fixture();
    let alice = f.add_user("alice", &["engineers"], false);
    let login = f.login("alice", totp(f.code(&alice, 1))).unwrap();
    let session = f.auth.authenticate(login.session_token.expose()).unwrap();
    for (key, code) in [
        ("not a key", "invalid_public_key"),
        ("ssh-ed25519 AAAA!!!!", "invalid_public_key"),
        ("", "invalid_public_key"),
    ] {
        let e = f
            .auth
            .issue_user_cert(
                &f.caller,
                &session,
                &api::CertRequest {
                    public_key: key.into(),
                    ttl_seconds: None,
                },
            )
            .unwrap_err();
        assert_eq!(e.code(), code, "{key:?}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn a_host_join_token_certifies_one_host_once_for_the_names_it_was_made_for() {
    let f = fixture_with(limits(5, 6), None);
    let root = f.add_user("root-admin", &["admins"], true);
    let r = f.login("root-admin", totp(f.code(&root, 1))).unwrap();
    let admin = f.auth.authenticate(r.session_token.expose()).unwrap();
    let make = |name: &str, extra: &[&str], ttl: Option<u64>| {
        f.auth.create_host_token(
            &f.caller,
            &admin,
            &api::HostTokenRequest {
                name: name.into(),
                extra_principals: extra.iter().map(|p| p.to_string()).collect(),
                ttl_seconds: ttl,
            },
        )
    };
    let host_key = || {
        FileCaKey::generate("host")
            .unwrap()
            .private_key()
            .public_key()
            .to_openssh()
            .unwrap()
    };
    // Networks other than the admin's: the hosts, and a token guesser.
    let host = from("198.51.100.7");
    let other_host = from("198.51.100.8");
    let guesser = from("203.0.113.9");
    let join = |caller: &Caller, token: &str, key: &str| {
        f.auth.host_join(
            caller,
            &api::HostJoinRequest {
                token: token.into(),
                public_key: key.into(),
            },
        )
    };

    // Names the policy refuses and lifetimes out of bounds make no token.
    for (name, ttl, code) in [
        ("bad name", None, "host_refused"),
        ("web-1", Some(0), "invalid_ttl"),
        (
            "web-1",
            Some(api::HOST_TOKEN_MAX_TTL_SECONDS + 1),
            "invalid_ttl",
        ),
    ] {
        assert_eq!(
            make(name, &[], ttl).unwrap_err().code(),
            code,
            "{name} {ttl:?}"
        );
    }
    assert!(f.events_of("host_token_created").is_empty());

    let tok = make("web-1", &["web-1.example.com", "192.0.2.80"], None).unwrap();
    assert_eq!(
        f.events_of("host_token_created")[0]["details"]["principals"],
        serde_json::json!(["web-1", "web-1.example.com", "192.0.2.80"])
    );
    assert!(
        !format!("{tok:?}").contains(tok.token.expose()),
        "redacted in Debug"
    );

    // A key that does not parse is refused before the token is spent.
    let e = join(&host, tok.token.expose(), "ssh-ed25519 AAAA-not-a-key").unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    let key = host_key();
    let cert = join(&host, tok.token.expose(), &key).unwrap();
    assert_eq!(
        cert.principals,
        ["web-1", "web-1.example.com", "192.0.2.80"]
    );
    let parsed = ssh_key::Certificate::from_openssh(&cert.certificate).unwrap();
    assert_eq!(parsed.cert_type(), ssh_key::certificate::CertType::Host);
    assert_eq!(parsed.key_id(), "web-1");
    assert_eq!(
        parsed.public_key(),
        ssh_key::PublicKey::from_openssh(&key).unwrap().key_data()
    );
    let issued = f.events_of("host_cert_issued");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["details"]["token_created_by"], "root-admin");

    // Used: not again, by this host or another.
    assert_eq!(
        join(&other_host, tok.token.expose(), &host_key())
            .unwrap_err()
            .code(),
        "token_used"
    );
    // Expired: not after its lifetime.
    let short = make("web-2", &[], Some(60)).unwrap();
    f.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        join(&other_host, short.token.expose(), &host_key())
            .unwrap_err()
            .code(),
        "token_expired"
    );
    // A revoked host key gets nothing, and the token stays usable.
    let revoked_key = host_key();
    let fp = ssh_key::PublicKey::from_openssh(&revoked_key)
        .unwrap()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    let admin = f.auth.authenticate(r.session_token.expose()).unwrap();
    f.auth
        .revoke(
            &f.caller,
            &admin,
            &api::RevokeRequest {
                key_fingerprint: Some(fp),
                ..Default::default()
            },
        )
        .unwrap();
    let third = f
        .auth
        .create_host_token(
            &f.caller,
            &admin,
            &api::HostTokenRequest {
                name: "web-3".into(),
                extra_principals: Vec::new(),
                ttl_seconds: None,
            },
        )
        .unwrap();
    assert_eq!(
        join(&other_host, third.token.expose(), &revoked_key)
            .unwrap_err()
            .code(),
        "key_revoked"
    );
    // Two hosts racing with one token: exactly one is certified.
    let results: Vec<bool> = std::thread::scope(|s| {
        let a = s.spawn(|| join(&host, third.token.expose(), &host_key()).is_ok());
        let b = s.spawn(|| join(&other_host, third.token.expose(), &host_key()).is_ok());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");

    // Every refusal is audited (used, expired, revoked key, the race's loser),
    // and guessing tokens runs out of budget.
    let refusals = || {
        f.auth
            .audit_log()
            .query(&rampart_audit::Query::all().kind(rampart_audit::EventKind::HostCertIssued))
            .unwrap()
            .into_iter()
            .filter(|e| e.outcome == rampart_audit::Outcome::Failure)
            .count()
    };
    assert_eq!(refusals(), 4);
    let mut codes = Vec::new();
    for i in 0..8 {
        codes.push(
            join(&guesser, &format!("guess-{i}"), &host_key())
                .unwrap_err()
                .code(),
        );
    }
    assert_eq!(codes[0], "token_unknown");
    assert_eq!(*codes.last().unwrap(), "source_rate_limited", "{codes:?}");
}

#[test]
fn host_join_tokens_are_listed_without_their_secret_and_an_unused_one_can_be_withdrawn() {
    let f = fixture();
    let root = f.add_user("root-admin", &["admins"], true);
    let r = f.login("root-admin", totp(f.code(&root, 1))).unwrap();
    let admin = f.auth.authenticate(r.session_token.expose()).unwrap();
    let make = |name: &str| {
        f.auth
            .create_host_token(
                &f.caller,
                &admin,
                &api::HostTokenRequest {
                    name: name.into(),
                    extra_principals: vec![format!("{name}.example.com")],
                    ttl_seconds: None,
                },
            )
            .unwrap()
    };
    let join = |token: &str| {
        f.auth.host_join(
            &from("198.51.100.7"),
            &api::HostJoinRequest {
                token: token.into(),
                public_key: FileCaKey::generate("host")
                    .unwrap()
                    .private_key()
                    .public_key()
                    .to_openssh()
                    .unwrap(),
            },
        )
    };
    let used = make("web-1");
    f.clock.advance(chrono::Duration::seconds(1));
    let unused = make("web-2");
    join(used.token.expose()).unwrap();

    let list = f.auth.list_host_tokens().unwrap();
    let names: Vec<&str> = list.tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["web-1", "web-2"]);
    assert!(list.tokens[0].used_at.is_some() && list.tokens[1].used_at.is_none());
    assert_eq!(list.tokens[1].extra_principals, ["web-2.example.com"]);
    assert_eq!(list.tokens[1].created_by, "root-admin");
    let shown = serde_json::to_string(&list).unwrap();
    assert!(
        !shown.contains(used.token.expose()) && !shown.contains(unused.token.expose()),
        "no secret in the list"
    );

    let revoke = |id: &str| {
        f.auth.revoke_host_token(
            &f.caller,
            &admin,
            &api::HostTokenRevokeRequest {
                id: id.into(),
                reason: Some("sent to the wrong host".into()),
            },
        )
    };
    assert_eq!(
        revoke(&list.tokens[0].id).unwrap_err().code(),
        "token_used",
        "a used token is the key's business now"
    );
    let e = revoke("0123456789abcdef").unwrap_err();
    assert_eq!((e.code().as_str(), e.status()), ("token_unknown", 404));
    let withdrawn = revoke(&list.tokens[1].id).unwrap();
    assert_eq!(withdrawn.name, "web-2");
    assert_eq!(
        join(unused.token.expose()).unwrap_err().code(),
        "token_unknown"
    );
    assert_eq!(f.auth.list_host_tokens().unwrap().tokens.len(), 1);
    let revoked = f.events_of("revoked");
    assert_eq!(revoked.len(), 1, "audited once: {revoked:?}");
    assert_eq!(revoked[0]["details"]["name"], "web-2");
}
