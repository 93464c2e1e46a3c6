//! The per-session certificate spec (`UserCertSpec::for_bastion_session`): built
//! only from both policy decisions, principal = the granted login, key ID tied to
//! the session and bastion, lifetime clamped, `source-address` = the bastion.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rampart_policy::{
    evaluate, evaluate_access, AccessGrant, AccessRequest, CertRequest, Decision, Factor, Grant,
    Policy,
};
use rampart_signer::{
    sign_user_cert, BastionSession, CaSigner, FileCaKey, MfaEvidence, SignerError, UserCertSpec,
};

const POLICY: &str = r#"
version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "otp"

[roles.dev]
principals = ["{user}"]
logins = ["{user}", "postgres"]
extensions = ["permit-pty"]
source_address = ["10.0.0.0/8"]
targets = { allow = ["db-*"] }

[groups]
eng = ["dev"]
"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap()
}

fn decisions(user: &str, login: &str) -> (Grant, AccessGrant) {
    let policy = Policy::from_toml(POLICY).unwrap();
    let groups = vec!["eng".to_owned()];
    let mfa_time = now() - chrono::Duration::minutes(1);
    let grant = match evaluate(
        &CertRequest {
            user,
            groups: &groups,
            factor: Factor::Totp,
            mfa_time,
            requested_ttl: Some(Duration::from_secs(3600)),
            login: None,
        },
        &policy,
        now(),
    ) {
        Decision::Allow(g) => g,
        Decision::Deny(d) => panic!("{d}"),
    };
    let access = evaluate_access(
        &AccessRequest {
            user,
            groups: &groups,
            factor: Factor::Totp,
            mfa_time,
            login,
            target: "db-1",
            labels: &Default::default(),
        },
        &policy,
        now(),
    )
    .unwrap();
    (grant, access)
}

fn evidence(method: &str) -> MfaEvidence {
    MfaEvidence {
        method: method.into(),
        time: now() - chrono::Duration::minutes(1),
        event_id: "01JNQ7T3EVENT".into(),
    }
}

fn subject() -> ssh_key::PublicKey {
    FileCaKey::generate("ephemeral")
        .unwrap()
        .private_key()
        .public_key()
        .clone()
}

#[test]
fn session_spec_names_the_login_session_and_bastion() {
    let (grant, access) = decisions("alice", "postgres");
    let src = ["192.0.2.1/32".to_owned()];
    let session = BastionSession {
        id: "01JSESSION",
        bastion: "bastion-1",
        ttl: Duration::from_secs(60),
        source_address: &src,
        user_address: None,
    };
    let spec = UserCertSpec::for_bastion_session(
        &grant,
        &access,
        &session,
        subject(),
        77,
        evidence("totp"),
        now(),
    )
    .unwrap();
    assert_eq!(
        spec.key_id(),
        "user=alice session=01JSESSION serial=77 via=bastion-1"
    );
    assert_eq!(spec.principals(), ["postgres"]);
    let t = u64::try_from(now().timestamp()).unwrap();
    assert_eq!(spec.valid_before(), t + 60);
    assert_eq!(spec.valid_after(), t - 300);
    assert_eq!(spec.critical_options()["source-address"], "192.0.2.1/32");
    assert_eq!(spec.extensions()["mfa-method@rampart"], "totp");
    assert!(spec.extensions().contains_key("permit-pty"));
    assert_eq!(
        spec.extensions()["user-source-address@rampart"],
        "10.0.0.0/8",
        "the user's address rules travel beside the bastion's source-address"
    );
    assert!(
        !spec.extensions().contains_key("user-address@rampart"),
        "no address reported, none written"
    );

    let ca = FileCaKey::generate("user ca").unwrap();
    let cert = sign_user_cert(&ca, &spec).unwrap();
    let fp = ca.public_key().fingerprint(ssh_key::HashAlg::Sha256);
    cert.validate_at(t, [&fp]).unwrap();
    assert!(cert.validate_at(t + 60, [&fp]).is_err(), "gone after 60 s");
}

#[test]
fn session_spec_refusals() {
    let (grant, _) = decisions("alice", "postgres");
    let (_, bobs_access) = decisions("bob", "postgres");
    let (_, access) = decisions("alice", "alice");
    let src: [String; 0] = [];
    let ok = BastionSession {
        id: "s1",
        bastion: "bastion-1",
        ttl: Duration::from_secs(60),
        source_address: &src,
        user_address: None,
    };
    let build = |a: &AccessGrant, s: &BastionSession<'_>, method: &str| {
        UserCertSpec::for_bastion_session(&grant, a, s, subject(), 1, evidence(method), now())
    };
    assert!(build(&access, &ok, "totp").is_ok());
    assert!(matches!(
        build(&bobs_access, &ok, "totp"),
        Err(SignerError::InvalidSpec(_))
    ));
    assert!(matches!(
        build(&access, &ok, "recovery"),
        Err(SignerError::MfaMismatch { .. })
    ));
    for (id, bastion) in [("a b", "bastion-1"), ("s1", "x=y"), ("", "bastion-1")] {
        let s = BastionSession { id, bastion, ..ok };
        assert!(
            matches!(build(&access, &s, "totp"), Err(SignerError::InvalidSpec(_))),
            "{id:?} {bastion:?}"
        );
    }
    // The grant's lifetime is a ceiling: asking for a day yields the grant's hour.
    let long = BastionSession {
        ttl: Duration::from_secs(86400),
        ..ok
    };
    let spec = build(&access, &long, "totp").unwrap();
    let t = u64::try_from(now().timestamp()).unwrap();
    assert_eq!(spec.valid_before(), t + 3600);
}

#[test]
fn session_spec_carries_the_users_reported_address() {
    let (grant, access) = decisions("alice", "postgres");
    let src = ["192.0.2.1/32".to_owned()];
    let mapped: std::net::IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    let session = BastionSession {
        id: "01JSESSION",
        bastion: "bastion-1",
        ttl: Duration::from_secs(60),
        source_address: &src,
        user_address: Some(mapped),
    };
    let spec = UserCertSpec::for_bastion_session(
        &grant,
        &access,
        &session,
        subject(),
        78,
        evidence("totp"),
        now(),
    )
    .unwrap();
    // An IPv4 client seen on a dual-stack socket is written as IPv4, the form
    // the address rules use.
    assert_eq!(spec.extensions()["user-address@rampart"], "10.1.2.3");
    assert_eq!(spec.critical_options()["source-address"], "192.0.2.1/32");
    let ca = FileCaKey::generate("user ca").unwrap();
    let cert = sign_user_cert(&ca, &spec).unwrap();
    assert_eq!(
        cert.extensions()
            .get("user-address@rampart")
            .map(String::as_str),
        Some("10.1.2.3")
    );
}
