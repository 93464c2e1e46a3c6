//! What a user's own certificate gets: the decision table, reasons, source
//! addresses, extensions, hardware-bound roles, lifetimes and wire forms.

use super::*;

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
