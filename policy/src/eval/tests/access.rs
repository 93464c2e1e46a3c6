//! Bastion access: which login at which target, and host approvals.

use super::*;

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
