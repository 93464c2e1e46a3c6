//! Unit tests of evaluation: one policy, many requests.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::{Factor, KeyAssurance, Policy};
use chrono::TimeZone;

const P: &str = r#"
version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "otp"

[roles.dev]
principals = ["{user}", "dev"]
extensions = ["permit-pty", "permit-port-forwarding"]
targets = { allow = ["*"], deny = ["prod-*"] }

[roles.ops]
principals = ["{user}", "ops"]
max_ttl = "2h"
source_address = ["10.0.0.0/8"]
targets = { allow = ["prod-*"] }
logins = ["ops"]

[roles.vpn]
principals = ["vpn"]
source_address = ["192.168.0.0/16", "10.0.0.0/8"]

[roles.prod-root]
principals = ["root"]
max_ttl = "1h"
min_factor = "phishing-resistant"
mfa_max_age = "15m"
targets = { allow = ["prod-*"] }

[roles.noprin]
extensions = ["permit-X11-forwarding"]

[roles.fresh]
principals = ["fresh"]
mfa_max_age = "1h"

[roles.long]
principals = ["{user}-with-a-rather-long-suffix-that-pushes-past-the-limit"]

[groups]
eng = ["dev"]
ops = ["ops"]
vpnusers = ["vpn"]
sre = ["dev", "prod-root"]
contractors = ["dev", "prod-root"]
noprin = ["noprin"]
fresh = ["fresh"]
long = ["long", "dev"]

[users]
alice = ["prod-root"]

[[deny]]
groups = ["contractors"]
roles = ["prod-root"]
principals = ["dev"]
reason = "contractors never get prod-root"

[[deny]]
users = ["mallory"]
roles = ["*"]
reason = "offboarded"
"#;

const R: &str = r#"
version = 1
[defaults]
min_factor = "recovery"
[roles.normal]
principals = ["{user}"]
[roles.glass]
principals = ["root"]
allow_recovery = true
[groups]
normal = ["normal"]
both = ["normal", "glass"]
"#;

/// (user, groups, factor, login, target, want roles or code)
type AccessCase = (
    &'static str,
    &'static [&'static str],
    Factor,
    &'static str,
    &'static str,
    Result<&'static [&'static str], DenyCode>,
);
/// (name, extra principals, requested ttl seconds, want ttl seconds or code)
type HostCase = (
    &'static str,
    &'static [&'static str],
    Option<u64>,
    Result<u64, DenyCode>,
);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn uv() -> Factor {
    Factor::Webauthn {
        user_verified: true,
        attested: true,
        via_link: false,
    }
}

struct Case {
    name: &'static str,
    policy: &'static str,
    user: &'static str,
    groups: &'static [&'static str],
    factor: Factor,
    /// Seconds since MFA; negative = in the future.
    mfa_age: i64,
    ttl: Option<u64>,
    login: Option<&'static str>,
    want: Result<(&'static [&'static str], u64), DenyCode>,
}

fn case(name: &'static str, user: &'static str, groups: &'static [&'static str]) -> Case {
    Case {
        name,
        policy: P,
        user,
        groups,
        factor: Factor::Totp,
        mfa_age: 0,
        ttl: None,
        login: None,
        want: Err(DenyCode::InvalidRequest),
    }
}

fn run(c: &Case) -> Decision {
    let policy = Policy::from_toml(c.policy).unwrap();
    let groups: Vec<String> = c.groups.iter().map(|s| (*s).to_owned()).collect();
    let req = CertRequest {
        user: c.user,
        groups: &groups,
        factor: c.factor.clone(),
        mfa_time: now() - chrono::TimeDelta::seconds(c.mfa_age),
        requested_ttl: c.ttl.map(Duration::from_secs),
        login: c.login,
    };
    evaluate(&req, &policy, now())
}

#[test]
fn decision_table() {
    use DenyCode::*;
    let h = 3600;
    let cases = vec![
        Case {
            want: Ok((&["bob", "dev"], h)),
            ..case("plain dev, {user} expanded", "bob", &["eng"])
        },
        Case {
            want: Err(NoRole),
            ..case("no matching group", "bob", &["nobody"])
        },
        Case {
            want: Err(NoRole),
            ..case("no groups at all", "bob", &[])
        },
        Case {
            want: Err(DeniedByRule),
            ..case("wildcard deny rule", "mallory", &["eng", "sre"])
        },
        Case {
            factor: uv(),
            want: Ok((&["carol"], h)),
            ..case(
                "deny beats allow: role and principal removed",
                "carol",
                &["contractors"],
            )
        },
        Case {
            want: Err(FactorTooWeak),
            ..case("totp for prod-root", "alice", &[])
        },
        Case {
            factor: Factor::Webauthn {
                user_verified: false,
                attested: true,
                via_link: false,
            },
            want: Err(FactorTooWeak),
            ..case("webauthn without UV for prod-root", "alice", &[])
        },
        Case {
            // A key that claims UV but whose model the CA does not vouch for.
            factor: Factor::Webauthn {
                user_verified: true,
                attested: false,
                via_link: false,
            },
            want: Err(FactorTooWeak),
            ..case("unattested key with UV for prod-root", "alice", &[])
        },
        Case {
            factor: Factor::Oidc,
            want: Err(FactorTooWeak),
            ..case("oidc for prod-root", "alice", &[])
        },
        Case {
            factor: uv(),
            want: Ok((&["root"], h)),
            ..case("uv for prod-root", "alice", &[])
        },
        Case {
            factor: uv(),
            mfa_age: 20 * 60,
            want: Err(MfaTooOld),
            ..case("stale mfa", "alice", &[])
        },
        Case {
            factor: uv(),
            mfa_age: 15 * 60,
            want: Ok((&["root"], h)),
            ..case("mfa exactly at the limit", "alice", &[])
        },
        Case {
            mfa_age: -10 * 60,
            want: Err(MfaInFuture),
            ..case("mfa in the future", "bob", &["eng"])
        },
        Case {
            mfa_age: -2 * 60,
            want: Ok((&["bob", "dev"], h)),
            ..case("small clock skew tolerated", "bob", &["eng"])
        },
        Case {
            factor: Factor::Recovery,
            want: Err(RecoveryRefused),
            ..case("recovery refused", "bob", &["eng"])
        },
        Case {
            policy: R,
            factor: Factor::Recovery,
            want: Err(RecoveryRefused),
            ..case("recovery, role without allow_recovery", "bob", &["normal"])
        },
        Case {
            policy: R,
            factor: Factor::Recovery,
            want: Ok((&["root"], h)),
            ..case("recovery, break-glass role only", "bob", &["both"])
        },
        Case {
            policy: R,
            want: Ok((&["root", "bob"], h)),
            ..case("totp gets both roles (role-name order)", "bob", &["both"])
        },
        Case {
            want: Err(NoPrincipals),
            ..case("role without principals", "bob", &["noprin"])
        },
        Case {
            want: Ok((&["bob", "dev"], h)),
            ..case(
                "extension-only role adds nothing but extensions",
                "bob",
                &["eng", "noprin"],
            )
        },
        Case {
            login: Some("root"),
            want: Err(LoginNotGranted),
            ..case("login not granted", "bob", &["eng"])
        },
        Case {
            login: Some("dev"),
            want: Ok((&["bob", "dev"], h)),
            ..case("login granted", "bob", &["eng"])
        },
        Case {
            want: Err(InvalidRequest),
            ..case("bad user name", "bob smith", &["eng"])
        },
        Case {
            want: Err(InvalidRequest),
            ..case("empty user name", "", &["eng"])
        },
        Case {
            ttl: Some(0),
            want: Err(InvalidRequest),
            ..case("zero ttl", "bob", &["eng"])
        },
        Case {
            login: Some("a,b"),
            want: Err(InvalidRequest),
            ..case("bad login", "bob", &["eng"])
        },
        Case {
            ttl: Some(24 * h),
            want: Ok((&["bob", "dev"], 8 * h)),
            ..case("ttl above defaults.max_ttl", "bob", &["eng"])
        },
        Case {
            ttl: Some(90),
            want: Ok((&["bob", "dev"], 90)),
            ..case("ttl below ceilings", "bob", &["eng"])
        },
        Case {
            ttl: Some(4 * h),
            want: Ok((&["carl", "ops"], 2 * h)),
            ..case("role max_ttl below defaults", "carl", &["ops"])
        },
        Case {
            want: Ok((&["carl", "ops"], h)),
            ..case("no ttl requested: default", "carl", &["ops"])
        },
        Case {
            factor: uv(),
            ttl: Some(8 * h),
            want: Ok((&["dana", "dev", "root"], h)),
            ..case("strictest contributing role caps ttl", "dana", &["sre"])
        },
        Case {
            want: Ok((&["fresh"], h)),
            mfa_age: 59 * 60,
            ..case("freshness met", "erin", &["fresh"])
        },
        Case {
            mfa_age: 2 * h as i64,
            want: Err(FactorTooWeak),
            ..case("most specific failure wins", "alice", &["fresh"])
        },
        Case {
            want: Ok((&["averyveryveryveryverylongname", "dev"], h)),
            ..case(
                "over-long expanded principal skipped",
                "averyveryveryveryverylongname",
                &["long"],
            )
        },
    ];
    for c in &cases {
        let d = run(c);
        match (&c.want, &d) {
            (Ok((principals, ttl)), Decision::Allow(g)) => {
                assert_eq!(g.principals(), *principals, "{}", c.name);
                assert_eq!(g.ttl(), Duration::from_secs(*ttl), "{}", c.name);
                assert_eq!(g.user(), c.user, "{}", c.name);
                assert_eq!(g.factor(), &c.factor, "{}", c.name);
            }
            (Err(code), Decision::Deny(den)) => {
                assert_eq!(den.code, *code, "{}: {}", c.name, den.reason);
                assert!(!den.reason.is_empty(), "{}", c.name);
            }
            _ => panic!("{}: want {:?}, got {d:?}", c.name, c.want),
        }
    }
}

#[test]
fn denial_reasons_are_specific() {
    let c = case("x", "alice", &[]);
    let reason = run(&c).denial().unwrap().reason.clone();
    assert_eq!(
        reason,
        "role prod-root needs a phishing-resistant factor; you used totp (otp)"
    );

    let c = Case {
        mfa_age: 2 * 3600,
        ..case("x", "alice", &["fresh"])
    };
    let reason = run(&c).denial().unwrap().reason.clone();
    assert!(
        reason.contains("role prod-root needs a phishing-resistant"),
        "{reason}"
    );
    assert!(
        reason.contains("role fresh needs MFA within the last 1h; yours is 2h old"),
        "{reason}"
    );

    let c = case("x", "mallory", &["eng"]);
    assert_eq!(
        run(&c).denial().unwrap().reason,
        "role dev removed by a deny rule: offboarded"
    );

    let c = Case {
        factor: uv(),
        ..case("x", "carol", &["contractors"])
    };
    let g = run(&c).into_result().unwrap();
    let all = g.reasons().join("\n");
    assert!(
        all.contains("role prod-root removed by a deny rule: contractors never get prod-root"),
        "{all}"
    );
    assert!(
        all.contains("principal dev removed by a deny rule"),
        "{all}"
    );
    assert_eq!(g.roles(), ["dev"]);
}

#[test]
fn grant_reasons_name_unused_roles() {
    let c = case("x", "dana", &["sre"]);
    let g = run(&c).into_result().unwrap();
    assert_eq!(g.roles(), ["dev"]);
    let all = g.reasons().join("\n");
    assert!(all.contains("role dev grants dana, dev"), "{all}");
    assert!(
        all.contains("not used: role prod-root needs a phishing-resistant factor"),
        "{all}"
    );
}

#[test]
fn source_address_union_fails_closed() {
    let nets = |groups: &'static [&'static str]| -> Vec<String> {
        let g = run(&case("x", "bob", groups)).into_result().unwrap();
        g.source_address().iter().map(ToString::to_string).collect()
    };
    assert!(nets(&["eng"]).is_empty(), "unrestricted role");
    // An unrestricted role does not lift another role's restriction.
    assert_eq!(nets(&["eng", "ops"]), ["10.0.0.0/8"]);
    // Two restricting roles: the union, deduplicated.
    assert_eq!(nets(&["ops", "vpnusers"]), ["10.0.0.0/8", "192.168.0.0/16"]);
}

#[test]
fn bastion_only_roles_stay_out_of_the_users_own_certificate() {
    let policy = Policy::from_toml(
        r#"version = 1
[roles.dev]
principals = ["{user}"]
targets = { allow = ["dev-*"] }
[roles.dba]
principals = ["postgres"]
access = "bastion"
targets = { allow = ["db-*"] }
[groups]
eng = ["dev", "dba"]
dbas = ["dba"]
"#,
    )
    .unwrap();
    let now = Utc::now();
    let req = |groups: &'static [String]| CertRequest {
        user: "alice",
        groups,
        factor: Factor::Totp,
        mfa_time: now,
        requested_ttl: None,
        login: None,
    };
    let own = |groups| match evaluate(&req(groups), &policy, now) {
        Decision::Allow(g) => g.principals().to_vec(),
        Decision::Deny(d) => panic!("{d:?}"),
    };
    let session = |groups| match evaluate_session_with_key(
        &req(groups),
        KeyAssurance::Unattested,
        &policy,
        now,
    ) {
        Decision::Allow(g) => g.principals().to_vec(),
        Decision::Deny(d) => panic!("{d:?}"),
    };
    static ENG: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["eng".to_owned()]);
    static DBAS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["dbas".to_owned()]);
    assert_eq!(own(&ENG), ["alice"]);
    assert_eq!(session(&ENG), ["postgres", "alice"]);
    // Only bastion-only roles: the own certificate gets the one principal
    // no account can have (an empty list would be valid for every account).
    assert_eq!(own(&DBAS), [BASTION_ONLY_PRINCIPAL]);
    assert_eq!(session(&DBAS), ["postgres"]);
    // And asking for the bastion-only account directly is refused.
    let direct = CertRequest {
        login: Some("postgres"),
        ..req(&ENG)
    };
    assert!(matches!(
        evaluate(&direct, &policy, now),
        Decision::Deny(Denial {
            code: DenyCode::LoginNotGranted,
            ..
        })
    ));
    // A typo in the mode is an error, not a silent direct role.
    let err =
        Policy::from_toml("version = 1\n[roles.x]\nprincipals = [\"a\"]\naccess = \"bastian\"\n")
            .unwrap_err();
    assert!(err.to_string().contains("access"), "{err}");
}

#[test]
fn extensions_are_unioned() {
    let g = run(&case("x", "bob", &["eng", "noprin"]))
        .into_result()
        .unwrap();
    let names: Vec<&str> = g.extensions().keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "permit-X11-forwarding",
            "permit-port-forwarding",
            "permit-pty"
        ]
    );
    assert!(g.extensions().values().all(String::is_empty));
    // Default extensions: permit-pty only.
    let g = run(&case("x", "carl", &["ops"])).into_result().unwrap();
    assert_eq!(g.extensions().keys().collect::<Vec<_>>(), ["permit-pty"]);
}

#[test]
fn hardware_bound_roles_need_an_attested_key() {
    const HB: &str = r#"
version = 1
[roles.dev]
principals = ["{user}"]
[roles.prod]
principals = ["root"]
min_factor = "hardware-bound"
[groups]
eng = ["dev"]
sre = ["dev", "prod"]
only-prod = ["prod"]
"#;
    let policy = Policy::from_toml(HB).unwrap();
    let groups = vec!["only-prod".to_owned()];
    let req = |factor| CertRequest {
        user: "bob",
        groups: &groups,
        factor,
        mfa_time: now(),
        requested_ttl: None,
        login: None,
    };
    // Without attestation: refused, and told how to get there.
    for f in [Factor::Totp, uv()] {
        let d = evaluate(&req(f), &policy, now());
        let denial = d.denial().unwrap();
        assert_eq!(denial.code, DenyCode::FactorTooWeak);
        assert!(denial.reason.contains("--key piv"), "{}", denial.reason);
    }
    // With an attested key (any factor that passes the other checks): allowed.
    let g = evaluate_with_key(
        &req(Factor::Totp),
        KeyAssurance::HardwareAttested,
        &policy,
        now(),
    )
    .into_result()
    .unwrap();
    assert_eq!(g.principals(), ["root"]);
    assert_eq!(g.key_assurance(), KeyAssurance::HardwareAttested);
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["factor_strength"], "hardware-bound");
    assert_eq!(v["key"], "hardware-attested");
    // Recovery codes stay refused where the role does not accept them.
    let d = evaluate_with_key(
        &req(Factor::Recovery),
        KeyAssurance::HardwareAttested,
        &policy,
        now(),
    );
    assert_eq!(d.denial().unwrap().code, DenyCode::RecoveryRefused);
    // A user with both roles gets only the unattested one's principals without a key.
    let both = vec!["sre".to_owned()];
    let r = CertRequest {
        groups: &both,
        ..req(Factor::Totp)
    };
    let g = evaluate(&r, &policy, now()).into_result().unwrap();
    assert_eq!(g.principals(), ["bob"]);
    assert_eq!(g.key_assurance(), KeyAssurance::Unattested);
    let g = evaluate_with_key(&r, KeyAssurance::HardwareAttested, &policy, now())
        .into_result()
        .unwrap();
    assert_eq!(g.principals(), ["bob", "root"]);
}

#[test]
fn bastion_access_to_a_hardware_bound_role_needs_the_attested_key() {
    const HB: &str = r#"
version = 1
[roles.prod]
principals = ["root"]
min_factor = "hardware-bound"
targets = { allow = ["prod-*"] }
[groups]
sre = ["prod"]
"#;
    let policy = Policy::from_toml(HB).unwrap();
    let groups = vec!["sre".to_owned()];
    let labels = BTreeMap::new();
    let req = AccessRequest {
        user: "bob",
        groups: &groups,
        factor: Factor::Totp,
        mfa_time: now(),
        login: "root",
        target: "prod-db",
        labels: &labels,
    };
    let err = evaluate_access(&req, &policy, now()).unwrap_err();
    assert_eq!(err.code, DenyCode::FactorTooWeak);
    let g = evaluate_access_with_key(&req, KeyAssurance::HardwareAttested, &policy, now()).unwrap();
    assert_eq!(g.roles(), ["prod"]);
}

#[test]
fn sub_second_ttl_rounds_down_not_up() {
    let policy = Policy::from_toml(P).unwrap();
    let groups = vec!["eng".to_owned()];
    let req = CertRequest {
        user: "bob",
        groups: &groups,
        factor: Factor::Totp,
        mfa_time: now(),
        requested_ttl: Some(Duration::from_millis(1700)),
        login: None,
    };
    let g = evaluate(&req, &policy, now()).into_result().unwrap();
    assert_eq!(g.ttl(), Duration::from_secs(1));
    assert_eq!(g.mfa_time(), now());
    let req = CertRequest {
        requested_ttl: Some(Duration::from_millis(999)),
        ..req
    };
    assert_eq!(
        evaluate(&req, &policy, now()).denial().unwrap().code,
        DenyCode::InvalidRequest
    );
}

#[test]
fn decision_serialises_to_json() {
    let allow = run(&case("x", "bob", &["eng"]));
    let v = serde_json::to_value(&allow).unwrap();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["user"], "bob");
    assert_eq!(v["ttl_seconds"], 3600);
    assert_eq!(v["principals"], serde_json::json!(["bob", "dev"]));
    assert_eq!(v["roles"], serde_json::json!(["dev"]));
    assert_eq!(v["factor"], "totp");
    assert_eq!(v["factor_strength"], "otp");
    assert_eq!(v["extensions"]["permit-pty"], "");
    assert_eq!(v["source_address"], serde_json::json!([]));
    assert_eq!(v["mfa_time"], "2025-03-01T12:00:00Z");
    assert!(v["reasons"].is_array());

    let deny = run(&case("x", "bob", &["nobody"]));
    let v = serde_json::to_value(&deny).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["code"], "no_role");
    assert_eq!(v["reason"], "no role is granted to bob (groups: nobody)");
}

#[test]
fn deny_codes_are_stable_snake_case() {
    let all = [
        (DenyCode::InvalidRequest, "invalid_request"),
        (DenyCode::NoRole, "no_role"),
        (DenyCode::DeniedByRule, "denied_by_rule"),
        (DenyCode::RecoveryRefused, "recovery_refused"),
        (DenyCode::FactorTooWeak, "factor_too_weak"),
        (DenyCode::MfaTooOld, "mfa_too_old"),
        (DenyCode::MfaInFuture, "mfa_in_future"),
        (DenyCode::NoPrincipals, "no_principals"),
        (DenyCode::LoginNotGranted, "login_not_granted"),
        (DenyCode::TargetNotAllowed, "target_not_allowed"),
        (DenyCode::InvalidHostName, "invalid_host_name"),
    ];
    for (code, s) in all {
        assert_eq!(code.as_str(), s);
        assert_eq!(code.to_string(), s);
        assert_eq!(serde_json::to_value(code).unwrap(), s);
    }
    let d = Denial::new(DenyCode::NoRole, "nope");
    assert_eq!(d.to_string(), "denied (no_role): nope");
}

#[test]
fn access_table() {
    use DenyCode::*;
    let policy = Policy::from_toml(P).unwrap();
    let cases: &[AccessCase] = &[
        ("bob", &["eng"], Factor::Totp, "bob", "web-1", Ok(&["dev"])),
        ("bob", &["eng"], Factor::Totp, "dev", "web-1", Ok(&["dev"])),
        (
            "bob",
            &["eng"],
            Factor::Totp,
            "bob",
            "prod-db",
            Err(TargetNotAllowed),
        ),
        (
            "bob",
            &["eng"],
            Factor::Totp,
            "bob",
            "PROD-db",
            Err(TargetNotAllowed),
        ),
        (
            "bob",
            &["eng"],
            Factor::Totp,
            "root",
            "web-1",
            Err(LoginNotGranted),
        ),
        (
            "carl",
            &["ops"],
            Factor::Totp,
            "ops",
            "prod-db",
            Ok(&["ops"]),
        ),
        (
            "carl",
            &["ops"],
            Factor::Totp,
            "carl",
            "prod-db",
            Err(LoginNotGranted),
        ),
        (
            "carl",
            &["ops"],
            Factor::Totp,
            "ops",
            "web-1",
            Err(TargetNotAllowed),
        ),
        (
            "dana",
            &["sre"],
            uv(),
            "root",
            "prod-db",
            Ok(&["prod-root"]),
        ),
        (
            "dana",
            &["sre"],
            Factor::Totp,
            "root",
            "prod-db",
            Err(TargetNotAllowed),
        ),
        (
            "carol",
            &["contractors"],
            uv(),
            "root",
            "prod-db",
            Err(TargetNotAllowed),
        ),
        (
            "carol",
            &["contractors"],
            uv(),
            "dev",
            "web-1",
            Err(LoginNotGranted),
        ),
        (
            "bob",
            &["vpnusers"],
            Factor::Totp,
            "vpn",
            "web-1",
            Err(TargetNotAllowed),
        ),
        (
            "bob",
            &["eng"],
            Factor::Totp,
            "bob",
            "*",
            Err(InvalidRequest),
        ),
        (
            "bob",
            &["eng"],
            Factor::Totp,
            "b b",
            "web-1",
            Err(InvalidRequest),
        ),
        (
            "mallory",
            &["eng"],
            Factor::Totp,
            "mallory",
            "web-1",
            Err(DeniedByRule),
        ),
        (
            "bob",
            &["eng"],
            Factor::Recovery,
            "bob",
            "web-1",
            Err(RecoveryRefused),
        ),
    ];
    for (user, groups, factor, login, target, want) in cases {
        let groups: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
        let no_labels = BTreeMap::new();
        let req = AccessRequest {
            user,
            groups: &groups,
            factor: factor.clone(),
            mfa_time: now(),
            login,
            target,
            labels: &no_labels,
        };
        let got = evaluate_access(&req, &policy, now());
        let label = format!("{user} {login}@{target}");
        match (want, &got) {
            (Ok(roles), Ok(g)) => {
                assert_eq!(g.roles(), *roles, "{label}");
                assert_eq!((g.user(), g.login(), g.target()), (*user, *login, *target));
                assert!(!g.reasons().is_empty());
            }
            (Err(code), Err(d)) => assert_eq!(d.code, *code, "{label}: {}", d.reason),
            _ => panic!("{label}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn host_approval() {
    let policy = Policy::from_toml(P).unwrap();
    let day = 86_400;
    let extras = vec![
        "db-1.example.com".to_owned(),
        "10.0.0.5".to_owned(),
        "db-1".to_owned(),
    ];
    let g = approve_host(&policy, "db-1", &extras, None).unwrap();
    assert_eq!(g.name(), "db-1");
    assert_eq!(g.principals(), ["db-1", "db-1.example.com", "10.0.0.5"]);
    assert_eq!(g.ttl(), Duration::from_secs(30 * day));
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["ttl_seconds"], 30 * day);

    let cases: &[HostCase] = &[
        ("db-1", &[], Some(90 * day), Ok(30 * day)),
        ("db-1", &[], Some(3600), Ok(3600)),
        ("db-1", &[], Some(0), Err(DenyCode::InvalidRequest)),
        ("-db", &[], None, Err(DenyCode::InvalidHostName)),
        ("", &[], None, Err(DenyCode::InvalidHostName)),
        ("db-1", &["a b"], None, Err(DenyCode::InvalidHostName)),
        (
            "db-1",
            &["*.example.com"],
            None,
            Err(DenyCode::InvalidHostName),
        ),
        ("::1", &[], None, Ok(30 * day)),
    ];
    for (name, extra, ttl, want) in cases {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let got = approve_host(&policy, name, &extra, ttl.map(Duration::from_secs));
        match (want, &got) {
            (Ok(secs), Ok(g)) => assert_eq!(g.ttl().as_secs(), *secs, "{name}"),
            (Err(code), Err(d)) => assert_eq!(d.code, *code, "{name}: {}", d.reason),
            _ => panic!("{name}: want {want:?}, got {got:?}"),
        }
    }

    let short = Policy::from_toml("version = 1\n[hosts]\nmax_ttl = \"7d\"\n").unwrap();
    let g = approve_host(&short, "db-1", &[], None).unwrap();
    assert_eq!(g.ttl(), Duration::from_secs(7 * day));
}

const LINK: &str = r#"
version = 1
[roles.anywhere]
principals = ["{user}"]
targets = { allow = ["*"] }
[roles.desk]
principals = ["root"]
min_factor = "unattested-key"
webauthn_link = false
targets = { allow = ["prod-*"] }
[groups]
desk = ["desk"]
both = ["anywhere", "desk"]
"#;

fn key(via_link: bool) -> Factor {
    Factor::Webauthn {
        user_verified: true,
        attested: true,
        via_link,
    }
}

/// A role with `webauthn_link = false` takes a key used from the user's own
/// machine and refuses the same key approved through the CA's page; other
/// roles are not affected, and other failures keep their own code.
#[test]
fn a_role_without_link_approval_refuses_a_key_used_through_the_page() {
    let policy = Policy::from_toml(LINK).unwrap();
    let cert = |groups: &[&str], factor: Factor| {
        let groups: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
        evaluate(
            &CertRequest {
                user: "alice",
                groups: &groups,
                factor,
                mfa_time: now(),
                requested_ttl: None,
                login: None,
            },
            &policy,
            now(),
        )
    };
    match cert(&["desk"], key(true)) {
        Decision::Deny(d) => {
            assert_eq!(d.code, DenyCode::WebauthnLinkRefused);
            assert_eq!(d.code.as_str(), "webauthn_link_refused");
            assert!(
                d.reason.contains("role desk") && d.reason.contains("own machine"),
                "{}",
                d.reason
            );
        }
        Decision::Allow(g) => panic!("link approval granted {:?}", g.principals()),
    }
    match cert(&["desk"], key(false)) {
        Decision::Allow(g) => assert_eq!(g.principals(), ["root"]),
        Decision::Deny(d) => panic!("direct key refused: {d:?}"),
    }
    // The strength check comes first: a TOTP code is simply too weak here.
    match cert(&["desk"], Factor::Totp) {
        Decision::Deny(d) => assert_eq!(d.code, DenyCode::FactorTooWeak),
        Decision::Allow(_) => panic!("totp granted an unattested-key role"),
    }
    // With a second role, the page approval gets that role only.
    match cert(&["both"], key(true)) {
        Decision::Allow(g) => {
            assert_eq!(g.principals(), ["alice"]);
            assert!(
                g.reasons()
                    .iter()
                    .any(|r| r.starts_with("not used: role desk accepts")),
                "{:?}",
                g.reasons()
            );
        }
        Decision::Deny(d) => panic!("{d:?}"),
    }
    match cert(&["both"], key(false)) {
        Decision::Allow(g) => assert_eq!(g.principals(), ["alice", "root"]),
        Decision::Deny(d) => panic!("{d:?}"),
    }
}

/// Bastion access applies the same rule, and the grant says whether a
/// per-session approval (always given on the page) could satisfy it.
#[test]
fn bastion_access_knows_whether_a_link_approval_would_do() {
    let policy = Policy::from_toml(LINK).unwrap();
    let no_labels = BTreeMap::new();
    let access = |groups: &[&str], factor: Factor, login: &str| {
        let groups: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
        evaluate_access(
            &AccessRequest {
                user: "alice",
                groups: &groups,
                factor,
                mfa_time: now(),
                login,
                target: "prod-db",
                labels: &no_labels,
            },
            &policy,
            now(),
        )
    };
    let d = access(&["desk"], key(true), "root").unwrap_err();
    assert_eq!(d.code, DenyCode::WebauthnLinkRefused);
    // Beside a role that reaches the target but not as root, the denial
    // still names the role the link kept out.
    let d = access(&["both"], key(true), "root").unwrap_err();
    assert_eq!(d.code, DenyCode::WebauthnLinkRefused);
    assert!(
        d.reason.contains("role desk would permit root@prod-db"),
        "{}",
        d.reason
    );
    // A login no role would grant is still just that.
    let d = access(&["both"], key(true), "nobody").unwrap_err();
    assert_eq!(d.code, DenyCode::LoginNotGranted);
    let g = access(&["desk"], key(false), "root").unwrap();
    assert!(!g.webauthn_link());
    // `anywhere` reaches prod-db too and keeps link approval on.
    let g = access(&["both"], key(false), "alice").unwrap();
    assert!(g.webauthn_link());
    assert_eq!(g.roles(), ["anywhere"]);
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["webauthn_link"], true);
    // The default is on.
    let plain = Policy::from_toml(
        "version = 1\n[roles.r]\nprincipals = [\"{user}\"]\ntargets = { allow = [\"*\"] }\n\
         [groups]\ng = [\"r\"]\n",
    )
    .unwrap();
    let groups = vec!["g".to_owned()];
    let g = evaluate_access(
        &AccessRequest {
            user: "alice",
            groups: &groups,
            factor: key(true),
            mfa_time: now(),
            login: "alice",
            target: "db",
            labels: &no_labels,
        },
        &plain,
        now(),
    )
    .unwrap();
    assert!(g.webauthn_link());
}
