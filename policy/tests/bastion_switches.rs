//! The bastion switches of a policy role (`session_mfa`, `record_input`,
//! `port_forwarding`, `agent_forwarding`) and `target_labels`: how they combine
//! across the roles that permit an access, table-driven.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use rampart_policy::{evaluate_access, AccessRequest, DenyCode, Factor, LintSeverity, Policy};

const POLICY: &str = r#"
version = 1

# Plain access to staging: nothing optional.
[roles.staging]
principals = ["{user}"]
targets = { allow = ["*"] }
target_labels = { env = "staging" }

# Production databases: per-session MFA, keystrokes recorded.
[roles.prod-db]
principals = ["postgres"]
targets = { allow = ["db-*"] }
target_labels = { env = "prod", tier = "db" }
session_mfa = true
record_input = true

# Tunnels to anything in prod, no MFA of its own.
[roles.tunnels]
principals = ["{user}"]
targets = { allow = ["*"] }
target_labels = { env = "prod" }
port_forwarding = true

# Agent forwarding to build hosts, whatever their labels.
[roles.build]
principals = ["builder"]
targets = { allow = ["build-*"] }
agent_forwarding = true

[groups]
dev = ["staging", "tunnels"]
dba = ["prod-db", "tunnels"]
ci = ["build"]
"#;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// (session_mfa, record_input, port_forwarding, agent_forwarding)
type Switches = (bool, bool, bool, bool);

#[test]
fn switches_combine_across_the_permitting_roles() {
    let policy = Policy::from_toml(POLICY).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let prod_db = labels(&[("env", "prod"), ("tier", "db")]);
    let prod = labels(&[("env", "prod")]);
    let staging = labels(&[("env", "staging")]);
    let none = labels(&[]);
    let prod_cased = labels(&[("env", "Prod")]);
    let staging_extra = labels(&[("env", "staging"), ("team", "x")]);
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        &str,
        &str,
        &str,
        &str,
        &BTreeMap<String, String>,
        Result<(Vec<&str>, Switches), DenyCode>,
    )> = vec![
        // A DBA as postgres on a prod db: only prod-db permits; its switches.
        (
            "ann",
            "postgres",
            "db-1",
            "dba",
            &prod_db,
            Ok((vec!["prod-db"], (true, true, false, false))),
        ),
        // The same DBA as themselves on it: tunnels permits (login {user}), no MFA.
        (
            "ann",
            "ann",
            "db-1",
            "dba",
            &prod_db,
            Ok((vec!["tunnels"], (false, false, true, false))),
        ),
        // A prod host without tier=db: prod-db does not reach it.
        (
            "ann",
            "postgres",
            "db-2",
            "dba",
            &prod,
            Err(DenyCode::LoginNotGranted),
        ),
        // A developer on staging: staging permits, tunnels needs env=prod.
        (
            "ann",
            "ann",
            "web-1",
            "dev",
            &staging,
            Ok((vec!["staging"], (false, false, false, false))),
        ),
        (
            "ann",
            "ann",
            "web-1",
            "dev",
            &prod,
            Ok((vec!["tunnels"], (false, false, true, false))),
        ),
        // Labels missing altogether: no labelled role reaches it.
        (
            "ann",
            "ann",
            "web-1",
            "dev",
            &none,
            Err(DenyCode::TargetNotAllowed),
        ),
        // A label with another value is not the label.
        (
            "ann",
            "ann",
            "web-1",
            "dev",
            &prod_cased,
            Err(DenyCode::TargetNotAllowed),
        ),
        // Extra labels on the target do not matter.
        (
            "ann",
            "ann",
            "web-1",
            "dev",
            &staging_extra,
            Ok((vec!["staging"], (false, false, false, false))),
        ),
        // A role without target_labels reaches by name alone.
        (
            "ann",
            "builder",
            "build-7",
            "ci",
            &none,
            Ok((vec!["build"], (false, false, false, true))),
        ),
    ];
    for (user, login, target, group, target_labels, want) in cases {
        let groups = vec![group.to_owned()];
        let got = evaluate_access(
            &AccessRequest {
                user,
                groups: &groups,
                factor: Factor::Totp,
                mfa_time: now,
                login,
                target,
                labels: target_labels,
            },
            &policy,
            now,
        );
        let label = format!("{user} {login}@{target} {target_labels:?}");
        match (want, got) {
            (Ok((roles, switches)), Ok(g)) => {
                assert_eq!(g.roles(), roles, "{label}");
                assert_eq!(
                    (
                        g.session_mfa(),
                        g.record_input(),
                        g.port_forwarding(),
                        g.agent_forwarding()
                    ),
                    switches,
                    "{label}"
                );
            }
            (Err(code), Err(d)) => assert_eq!(d.code, code, "{label}: {}", d.reason),
            (want, got) => panic!("{label}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn session_mfa_is_required_if_any_permitting_role_requires_it() {
    let policy = Policy::from_toml(
        r#"
version = 1
[roles.strict]
principals = ["root"]
targets = { allow = ["db-*"] }
session_mfa = true
[roles.loose]
principals = ["root"]
targets = { allow = ["*"] }
port_forwarding = true
[users]
ann = ["strict", "loose"]
"#,
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let no_labels = BTreeMap::new();
    let g = evaluate_access(
        &AccessRequest {
            user: "ann",
            groups: &[],
            factor: Factor::Totp,
            mfa_time: now,
            login: "root",
            target: "db-1",
            labels: &no_labels,
        },
        &policy,
        now,
    )
    .unwrap();
    assert_eq!(g.roles(), ["loose", "strict"]);
    assert!(
        g.session_mfa(),
        "a looser role does not lift the requirement"
    );
    assert!(g.port_forwarding(), "permissions add up");
    let json = serde_json::to_value(&g).unwrap();
    assert_eq!(json["session_mfa"], true);
    assert_eq!(json["agent_forwarding"], false);
}

#[test]
fn switches_default_off_and_labels_are_validated() {
    let policy = Policy::from_toml(
        "version = 1\n[roles.r]\nprincipals = [\"x\"]\ntargets = { allow = [\"*\"] }\n[users]\nann = [\"r\"]\n",
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let no_labels = BTreeMap::new();
    let g = evaluate_access(
        &AccessRequest {
            user: "ann",
            groups: &[],
            factor: Factor::Totp,
            mfa_time: now,
            login: "x",
            target: "t",
            labels: &no_labels,
        },
        &policy,
        now,
    )
    .unwrap();
    assert!(!g.session_mfa() && !g.record_input() && !g.port_forwarding() && !g.agent_forwarding());

    for bad in [
        "target_labels = { \"\" = \"x\" }",
        "target_labels = { \"a b\" = \"x\" }",
        "target_labels = { env = \"a\\u0007\" }",
        "session_mfa = \"yes\"",
        "record_inputs = true",
    ] {
        let src = format!("version = 1\n[roles.r]\nprincipals = [\"x\"]\n{bad}\n");
        assert!(Policy::from_toml(&src).is_err(), "{bad} must be refused");
    }
    let long_key = format!("target_labels = {{ {} = \"x\" }}", "k".repeat(65));
    let src = format!("version = 1\n[roles.r]\nprincipals = [\"x\"]\n{long_key}\n");
    assert!(Policy::from_toml(&src).is_err());
}

#[test]
fn switches_on_a_role_that_reaches_nothing_are_linted() {
    let policy = Policy::from_toml(
        "version = 1\n[roles.r]\nprincipals = [\"x\"]\nport_forwarding = true\ntarget_labels = { env = \"prod\" }\n[users]\nann = [\"r\"]\n",
    )
    .unwrap();
    let lints = policy.lint();
    let messages: Vec<&str> = lints.iter().map(|l| l.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("roles.r.port_forwarding has no effect")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("roles.r.target_labels has no effect")),
        "{messages:?}"
    );
    assert!(lints.iter().all(|l| l.severity == LintSeverity::Warning));
}

#[test]
fn the_sample_policy_asks_for_session_mfa_on_production_root() {
    let policy = Policy::from_toml(include_str!("fixtures/policy.toml")).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let sre = vec!["sre".to_owned()];
    let no_labels = BTreeMap::new();
    let g = evaluate_access(
        &AccessRequest {
            user: "alice",
            groups: &sre,
            factor: Factor::Webauthn {
                user_verified: true,
                attested: true,
                via_link: false,
            },
            mfa_time: now,
            login: "root",
            target: "prod-db-1",
            labels: &no_labels,
        },
        &policy,
        now,
    )
    .unwrap();
    assert_eq!(g.roles(), ["prod-root"]);
    assert!(g.session_mfa() && g.record_input());
    assert!(!g.port_forwarding() && !g.agent_forwarding());
}

/// `record = "metered"`: a grant meters only while every permitting role does,
/// with the largest of their allowances; bad values are refused at parse time
/// and a stray `record_metered_mib` is linted.
#[test]
fn metered_recording_needs_every_permitting_role_to_meter() {
    let policy = Policy::from_toml(
        r#"
version = 1
[roles.bulk]
principals = ["backup"]
targets = { allow = ["*"] }
record = "metered"
[roles.bulk-big]
principals = ["backup"]
targets = { allow = ["*"] }
record = "metered"
record_metered_mib = 64
[roles.full]
principals = ["backup"]
targets = { allow = ["*"] }
[users]
one = ["bulk"]
two = ["bulk", "bulk-big"]
three = ["bulk", "full"]
"#,
    )
    .unwrap();
    assert!(policy.lint().is_empty(), "{:?}", policy.lint());
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let no_labels = BTreeMap::new();
    let metered = |user: &str| {
        evaluate_access(
            &AccessRequest {
                user,
                groups: &[],
                factor: Factor::Totp,
                mfa_time: now,
                login: "backup",
                target: "nas-1",
                labels: &no_labels,
            },
            &policy,
            now,
        )
        .unwrap()
        .record_metered_mib()
    };
    assert_eq!(
        metered("one"),
        Some(rampart_policy::DEFAULT_RECORD_METERED_MIB)
    );
    assert_eq!(metered("two"), Some(64));
    assert_eq!(metered("three"), None, "a full-recording role wins");

    for (bad, want) in [
        ("record = \"none\"", "not a recording mode"),
        (
            "record = \"metered\"\nrecord_metered_mib = 0",
            "not between 1 and",
        ),
        (
            "record = \"metered\"\nrecord_metered_mib = 5000",
            "not between 1 and",
        ),
        ("record_metered_mib = \"16\"", "record_metered_mib"),
    ] {
        let err = Policy::from_toml(&format!(
            "version = 1\n[roles.r]\nprincipals = [\"x\"]\n{bad}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains(want), "{bad}: {err}");
    }
    let lints = Policy::from_toml(
        "version = 1\n[roles.r]\nprincipals = [\"x\"]\ntargets = { allow = [\"*\"] }\n\
         record_metered_mib = 8\n[users]\nann = [\"r\"]\n",
    )
    .unwrap()
    .lint();
    assert!(
        lints.iter().any(|l| l
            .message
            .contains("roles.r.record_metered_mib has no effect")),
        "{lints:?}"
    );
}
